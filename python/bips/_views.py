# SPDX-License-Identifier: LGPL-2.1-or-later
"""NumPy arrays over foreign memory whose owner lives exactly as long as they do.

The building block is a "region": a small object that describes the memory
to NumPy (its __array_interface__) and gives it back (releases a bips
frame, unmaps a GstBuffer) when it is destroyed. Every array made here has
the region as the `base` of its chain (plane array -> flat array ->
region), and so does every view NumPy derives from it (slices, reshapes,
torch.from_numpy). The region -- and with it the frame's slot or the
buffer's mapping -- therefore stays alive while any such array is
referenced, and is given back as soon as the last one goes, whatever order
the garbage collector picks.
"""

from __future__ import annotations

import weakref
from typing import Callable, Optional, Tuple

import numpy as np

from .video import Planes2, Planes3, VideoLayout


class _Region:
    """`size` bytes at `address`, seen by NumPy through the array interface
    (read-only unless `writable`); calls `release` once when destroyed.

    CPython destroys it when the last array over it goes (reference
    counting), from whichever thread dropped that array; `owner` is kept
    alive until then. The release runs at most once and never raises (an
    error is printed by Python, as for any failing destructor, only if the
    release itself raises, which the callers' releases do not).
    """

    __slots__ = ("__array_interface__", "_owner", "_release", "__weakref__")

    def __init__(self, address: int, size: int, owner: object,
                 release: Optional[Callable[[], object]], writable: bool):
        self.__array_interface__ = {"data": (address, not writable), "shape": (size,),
                                    "typestr": "|u1", "version": 3}
        self._owner = owner
        self._release = release

    def __del__(self):
        release, self._release = self._release, None
        if release is not None:
            release()


def region(address: int, size: int, owner: object,
           release: Optional[Callable[[], object]] = None,
           writable: bool = False) -> Tuple[np.ndarray, weakref.ref]:
    """A 1-D uint8 array over the `size` bytes at `address` (no copy), and
    a weak reference that tells whether anything still uses them.

    Every array built on the returned one keeps the region alive. When the
    last of them is gone, `release` is called once (from whichever thread
    dropped it) and `owner`, kept alive until then, is let go. If the
    interpreter exits first, `release` may not be called: the process's
    mappings go with it, and a bips slot of a dead consumer is reclaimed by
    its producer. The array is read-only unless `writable`: NumPy refuses
    setflags(write=True) on it, as the region offers no writable buffer.
    Cheap on purpose: it runs once per frame on the latency path.
    """
    block = _Region(address, size, owner, release, writable)
    return np.asarray(block), weakref.ref(block)


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

    `flat` must be an array made by region(): the plane arrays take it as
    their base, so they inherit its lifetime and its read-only flag.
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
