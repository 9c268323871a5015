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
from typing import Callable, Optional

import numpy as np

from .video import Planes2, Planes3, VideoLayout


@functools.lru_cache(maxsize=64)
def _region_type(size: int):
    # A subclass (not the plain array type) so instances take weak
    # references and attributes.
    return type(f"_Region{size}", (ctypes.c_uint8 * size,), {})


class Region:
    """A byte range at `address` and the finalizer that gives it back.

    `release` is called once, when the region object is gone (no array
    refers to it any more), or at interpreter exit. `owner` is kept alive
    as long as the region. `alive` tells whether any array still uses it.
    Not thread-safe by itself: the objects built on it are meant to be used
    from one thread at a time, like NumPy arrays.
    """

    __slots__ = ("_ref", "_finalizer", "size", "_first")

    def __init__(self, address: int, size: int, owner: object,
                 release: Optional[Callable[[], object]] = None):
        region = _region_type(size).from_address(address)
        region.owner = owner
        self._ref = weakref.ref(region)
        self._finalizer = weakref.finalize(region, release) if release else None
        self.size = size
        # Handed over once by buffer(), then dropped: the region must live
        # only through the arrays.
        self._first = region

    def buffer(self, writable: bool) -> memoryview:
        """The memoryview at the bottom of every array of this region.

        Callable once: afterwards the region lives only through the
        returned view and what is built on it.
        """
        region = self._first
        self._first = None
        if region is None:
            raise RuntimeError("Region.buffer() may be called only once")
        view = memoryview(region).cast("B")
        return view if writable else view.toreadonly()

    @property
    def alive(self) -> bool:
        return self._ref() is not None


def flat_array(buffer: memoryview) -> np.ndarray:
    """A 1-D uint8 array over the whole buffer (no copy)."""
    return np.frombuffer(buffer, dtype=np.uint8)


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
    arrays = [
        np.ndarray(shape=p.shape, dtype=np.dtype(p.dtype), buffer=flat, offset=p.offset,
                   strides=p.strides)
        for p in layout.planes
    ]
    if len(arrays) == 1:
        return arrays[0]
    if len(arrays) == 2:
        return Planes2(*arrays)
    return Planes3(*arrays)
