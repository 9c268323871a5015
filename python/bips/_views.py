# SPDX-License-Identifier: LGPL-2.1-or-later
"""NumPy arrays over foreign memory whose owner lives exactly as long as they do.

The building block is a "region": a ctypes byte array placed at a raw
address, with a finalizer that gives the memory back (releases a bips frame,
unmaps a GstBuffer). Every array made here has the region at the bottom of
its `base` chain (ndarray -> memoryview -> region), and so does every view
NumPy derives from it (slices, reshapes, torch.from_numpy). The region -- and
with it the frame's slot or the buffer's mapping -- therefore stays alive
while any such array is referenced, and is given back as soon as the last
one goes, whatever order the garbage collector picks.
"""

from __future__ import annotations

import ctypes
import functools
import weakref
from typing import Callable, Optional, Tuple

import numpy as np

from .video import Planes2, Planes3, VideoLayout


@functools.lru_cache(maxsize=64)
def _region_type(size: int):
    # A subclass (not the plain array type) so that instances take weak
    # references.
    return type(f"_Region{size}", (ctypes.c_uint8 * size,), {})


# Weak references to live regions, by id (a weak reference to an unhashable
# object is unhashable). Each one's callback gives its region's memory back;
# they are kept here because a weak reference that is itself garbage never
# calls back. Adding and removing are atomic under the GIL, so the callbacks
# may run in any thread.
_live: dict = {}

_U8 = np.dtype(np.uint8)


def region(address: int, size: int, owner: object,
           release: Optional[Callable[[], object]] = None,
           writable: bool = False) -> Tuple[memoryview, weakref.ref]:
    """A memoryview of the `size` bytes at `address`, and a weak reference
    that tells whether anything still uses them.

    The view exports a ctypes array placed at `address` (the "region");
    every array built on the view keeps the region alive. When the last of
    them is gone, `release` is called once (from whichever thread dropped
    it) and `owner`, kept alive until then, is let go. If the interpreter
    exits first, `release` is not called: the process's mappings go with
    it, and a bips slot of a dead consumer is reclaimed by its producer.
    Hand the view to flat_array() only; keep no other reference to it.
    Cheap on purpose: it runs once per frame on the latency path.
    """
    block = _region_type(size).from_address(address)

    # `live` is bound here: at interpreter exit the module's globals may be
    # gone before the last callbacks run.
    def gone(ref, owner=owner, release=release, live=_live):
        live.pop(id(ref), None)
        if release is not None:
            release()

    ref = weakref.ref(block, gone)
    _live[id(ref)] = ref
    view = memoryview(block)
    return (view if writable else view.toreadonly()), ref


def flat_array(buffer: memoryview) -> np.ndarray:
    """A 1-D uint8 array over the whole buffer (no copy)."""
    return np.frombuffer(buffer, _U8)


_DTYPES: dict = {}


def _dtype(name: str) -> np.dtype:
    dtype = _DTYPES.get(name)
    if dtype is None:
        dtype = _DTYPES[name] = np.dtype(name)
    return dtype


def shaped(flat: np.ndarray, layout: Optional[VideoLayout]):
    """The frame seen through `layout`: one ndarray for packed formats, a
    Planes2/Planes3 named tuple of plane arrays for planar ones, or `flat`
    itself when there is no layout. Raises ValueError if the frame is too
    small for the layout. No copy either way.

    `flat` must be a flat_array(): the plane arrays take it as their base,
    so they inherit its lifetime and its read-only flag (built straight on
    the memoryview, NumPy would take the writable region below it as base,
    and setflags(write=True) would then succeed on read-only memory).
    """
    if layout is None:
        return flat
    if not layout.fits(flat.nbytes):
        raise ValueError(
            f"a {layout.format} {layout.width}x{layout.height} frame needs "
            f"{layout.needed} bytes, the frame holds "
            f"{flat.nbytes}; use .data for the raw bytes")
    arrays = [np.ndarray(p.shape, _dtype(p.dtype), flat, p.offset, p.strides)
              for p in layout.planes]
    if len(arrays) == 1:
        return arrays[0]
    if len(arrays) == 2:
        return Planes2(*arrays)
    return Planes3(*arrays)
