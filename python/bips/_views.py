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
from typing import Callable, Dict, List, NamedTuple, Optional, Set, Tuple

import numpy as np

from .video import Planes2, Planes3, VideoLayout


class _Region:
    """`size` bytes at `address`, seen by NumPy through the array interface
    (read-only unless `writable`); calls `release(owner)` once when
    destroyed.

    A region made without an owner (unbound_view()) gets `_owner` and
    `_release` set by the consumer before any array of it leaves the
    package; passing an unbound method (Bips.Frame.release) costs nothing
    there, where looking up a bound one on a GObject costs ~20 us with cold
    CPU caches.

    CPython destroys it when the last array over it goes (reference
    counting), from whichever thread dropped that array; `owner` is kept
    alive until then. The release runs at most once and never raises (an
    error is printed by Python, as for any failing destructor, only if the
    release itself raises, which the callers' releases do not).
    """

    __slots__ = ("__array_interface__", "_owner", "_release", "__weakref__")

    def __init__(self, address: int, size: int, owner: object,
                 release: Optional[Callable[[object], object]], writable: bool):
        self.__array_interface__ = {"data": (address, not writable), "shape": (size,),
                                    "typestr": "|u1", "version": 3}
        self._owner = owner
        self._release = release

    def __del__(self):
        release, self._release = self._release, None
        if release is not None:
            release(self._owner)


def region(address: int, size: int, owner: object,
           release: Optional[Callable[[object], object]] = None,
           writable: bool = False) -> Tuple[np.ndarray, weakref.ref]:
    """A 1-D uint8 array over the `size` bytes at `address` (no copy), and
    a weak reference that tells whether anything still uses them.

    Every array built on the returned one keeps the region alive. When the
    last of them is gone, `release(owner)` is called once (from whichever
    thread dropped it) and `owner`, kept alive until then, is let go. If the
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


class View(NamedTuple):
    """A frame's memory as the package hands it out: the region (bound to
    the frame before use), the flat array over it, the array shaped by
    the layout (None if the layout does not fit), and a weak reference
    to the region that tells whether any array still uses it."""

    block: _Region
    flat: np.ndarray
    shaped: object
    alive: weakref.ref


def unbound_view(address: int, size: int, layout: Optional[VideoLayout]) -> View:
    """A View of `size` bytes at `address` with no owner yet: bind its
    block before any of its arrays leaves the package."""
    block = _Region(address, size, None, None, False)
    flat = np.asarray(block)
    array = shaped(flat, layout) if layout is not None and layout.fits(size) else None
    return View(block, flat, array, weakref.ref(block))


class PreparedViews:
    """What a consumer hands out for a frame, built before the frame comes.

    A frame lands in one of a few slots, at the same address and, for raw
    video, with the same size and layout as the last frame there. So once
    the item for a frame is taken, the next one for its slot is built at
    the next prepare() -- called before the consumer waits, while the CPU
    caches are warm -- and the frame that comes next only needs a lookup
    and its owner set. Each item is still used once: every frame gets a
    region of its own, which gives its slot back when the last array over
    it goes.

    `build(address, size, layout)` makes an item (a View, or what the
    consumer wraps around one). Taking one is written out in the
    consumer, where every call counts: pop the address from `ready`; if
    the item is for another size, add the address to `varying` and build
    one now (also when none was ready); append (address, size) to
    `taken`. Addresses in `varying` (encoded streams, whose frames differ
    in size) get nothing prepared: it would be thrown away. An item
    serves only a frame with the same address, size and layout, so items
    left from an older mapping are never handed out for anything but what
    a frame says is there. Bounded: at most MAX_READY items and as many
    varying addresses. One thread at a time (Consumer.next()).
    """

    MAX_READY = 64

    __slots__ = ("layout", "build", "ready", "taken", "varying")

    def __init__(self, build: Callable[[int, int, Optional[VideoLayout]], object]):
        self.layout: Optional[VideoLayout] = None
        self.build = build
        self.ready: Dict[int, object] = {}
        self.taken: List[Tuple[int, int]] = []
        self.varying: Set[int] = set()

    def reset(self, layout: Optional[VideoLayout]) -> None:
        """Drops every prepared item; later ones are built for `layout`."""
        self.layout = layout
        self.ready.clear()
        self.taken.clear()
        self.varying.clear()

    def prepare(self) -> None:
        """Builds an item for each address taken since the last call."""
        if not self.taken:
            return
        if len(self.ready) + len(self.taken) > self.MAX_READY:
            self.ready.clear()
        if len(self.varying) > self.MAX_READY:
            self.varying.clear()
        for address, size in self.taken:
            if address not in self.varying:
                self.ready[address] = self.build(address, size, self.layout)
        self.taken.clear()
