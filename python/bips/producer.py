# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writing a channel from Python: fill a slot through a writable NumPy view."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np

from . import _gi
from ._gi import Bips, GLib, ReleasedError
from ._views import region, shaped
from .metas import Region, to_variant
from .video import VideoLayout, caps_string, layout_for, video_layout

__all__ = ["Producer", "WriteFrame"]


def _max_wait_ms(seconds: Optional[float]) -> int:
    """Seconds (None or 0: forever) to the max-wait property's milliseconds
    (0: forever). A positive fraction of a millisecond rounds up, so it
    never turns into forever."""
    if seconds is None or seconds == 0:
        return 0
    if seconds < 0:
        raise ValueError(f"max_wait must be None or at least 0 seconds, not {seconds}")
    return max(1, math.ceil(seconds * 1000.0))


def _now_ns() -> int:
    # The timestamp convention of bips: absolute CLOCK_MONOTONIC
    # nanoseconds, the clock GStreamer's system clock uses.
    return time.monotonic_ns()


class WriteFrame:
    """A slot acquired from a Producer, to be filled in place and published.

    `data` is a writable 1-D uint8 ndarray over the whole slot and `array`
    the same memory shaped by the producer's video layout (or `data` if it
    has none). Write into them, then publish() or discard() exactly once;
    as a context manager it publishes on a clean exit and discards if the
    block raised.

    Ownership: after publish() or discard(), `data` and `array` raise
    ReleasedError. An array kept from before stays memory-safe (it keeps
    the slot object and with it the producer's mapping alive), but once
    published the memory belongs to the consumers: writing through it then
    corrupts frames they read.

    Thread-safety: one thread at a time, like a NumPy array; publishing the
    same slot from two threads gives one success and one error.
    """

    __slots__ = ("_producer", "_gslot", "_data", "_array", "_capacity", "_index")

    def __init__(self, producer: "Producer", gslot: "Bips.Slot"):
        self._producer = producer
        self._gslot = gslot
        self._capacity = gslot.get_capacity()
        self._index = gslot.get_index()
        # The region keeps the Bips.Slot (and so the Bips.Producer and its
        # mapping) alive while any array of it exists. Nothing to release
        # when it goes: publish/discard (or the slot's own finalizer, which
        # discards a slot still pending) give the slot back.
        self._data, _alive = region(gslot.get_data_address(), self._capacity, gslot,
                                    writable=True)
        self._array = None

    @property
    def data(self) -> np.ndarray:
        """Writable 1-D uint8 view of the whole slot."""
        if self._data is None:
            raise ReleasedError(f"slot {self._index} was already published or discarded")
        return self._data

    @property
    def array(self):
        """Writable view shaped by the producer's layout (see the class doc)."""
        if self._data is None:
            raise ReleasedError(f"slot {self._index} was already published or discarded")
        if self._array is None:
            layout = self._producer.layout
            self._array = shaped(self._data, layout) if layout else self._data
        return self._array

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def index(self) -> int:
        return self._index

    @property
    def pending(self) -> bool:
        return self._data is not None

    def publish(self, size: Optional[int] = None, pts: Optional[int] = None,
                dts: Optional[int] = None, duration: Optional[int] = None,
                flags: int = 0, regions: Optional[List[Region]] = None,
                custom: Optional[Mapping[str, Mapping[str, Any]]] = None,
                offset: Optional[int] = None, offset_end: Optional[int] = None) -> None:
        """Publishes the slot to every consumer.

        `size` defaults to the layout's frame size, else the whole slot.
        `pts` defaults to now (time.monotonic_ns(), the bips convention);
        pass bips.TIME_NONE for no timestamp. `dts`/`duration` default to
        none.

        `regions` (bips.Region objects) and `custom` ({name: {field:
        value}}) travel with the frame: Python consumers read them from
        Frame.regions and Frame.custom_metas, bipssrc attaches them as
        GstVideoRegionOfInterestMeta and GstCustomMeta (bips.metas says
        which values travel). `offset`/`offset_end` become the buffer
        offsets. Raises bips.InvalidArgument, the slot staying pending,
        when they do not fit the producer's meta_size or a name is not
        valid (a letter, then letters, digits and /-_.:+), and TypeError
        for a value that cannot travel.
        """
        if self._data is None:
            raise ReleasedError(f"slot {self._index} was already published or discarded")
        if size is None:
            layout = self._producer.layout
            size = layout.size if layout and layout.size <= self._capacity else self._capacity
        none = _gi.TIME_NONE
        times = (_now_ns() if pts is None else pts, none if dts is None else dts,
                 none if duration is None else duration)
        metas = to_variant(regions, custom, offset, offset_end)
        try:
            if metas is None:
                self._producer._p.publish(self._gslot, size, *times, flags)
            else:
                self._producer._p.publish_with_metas(self._gslot, size, *times, flags, metas)
        except GLib.Error as exc:
            raise _gi.translate(exc) from None
        self._drop()

    def discard(self) -> None:
        """Gives the slot back unpublished. Idempotent."""
        if self._data is None:
            return
        self._producer._p.discard(self._gslot)
        self._drop()

    def _drop(self) -> None:
        self._data = None
        self._array = None
        self._gslot = None

    def __enter__(self) -> "WriteFrame":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._data is None:
            return
        if exc_type is None:
            self.publish()
        else:
            self.discard()


class Producer:
    """Creates and owns a channel; frames are written in place in its slots.

    `slot_size` is the largest frame in bytes; `stream_info` is what
    consumers read the format from (raw-video caps give them shaped
    arrays). Producer.video() sizes the slots from a raw video format.
    `slot_count` is how many frames the channel holds, 2 to 1024 (default
    8, the library's and bipssink's): a lossless producer waits only when
    every slot is unread or held.

    `meta_size` is how many bytes of metadata (regions of interest,
    custom metas) each frame may carry, at most 65536 (default 16384, the
    library's).

    `max_wait` bounds, in seconds, how long acquire() waits for consumers
    that hold the producer back (lossless consumers behind, slots held):
    past it the producer drops the one that holds it back most, whose
    next() then raises bips.ProducerGone saying why (it may reattach()).
    None or 0 waits forever (strict lossless).

    Raises bips.InvalidName, bips.Busy (a live producer owns the channel),
    bips.NoSpace (too little memory for the slots), bips.InvalidArgument,
    ...

    The waits of acquire() and write() are interruptible: they return to
    Python at least every 0.1 s, so Ctrl-C raises KeyboardInterrupt
    promptly; the producer stays usable and closable.

    Thread-safety: acquire/publish/discard may be called from any thread.
    """

    def __init__(self, channel: str, slot_size: int, slot_count: Optional[int] = None,
                 mode: int = 0o600, stream_info: Optional[str] = None,
                 max_consumers: int = 16, max_wait: Optional[float] = 2.0,
                 meta_size: Optional[int] = None):
        # None: the library's default (Bips.Producer:slot-count, 8 like
        # bipssink's; Bips.Producer:meta-size).
        extra = {} if slot_count is None else {"slot_count": slot_count}
        if meta_size is not None:
            extra["meta_size"] = meta_size
        self._p = Bips.Producer(name=channel, slot_size=slot_size,
                                mode=mode, max_consumers=max_consumers,
                                max_wait=_max_wait_ms(max_wait), **extra)
        try:
            self._p.init(None)
        except GLib.Error as exc:
            raise _gi.translate(exc) from None
        # Bound once: the lookup costs as much as the out arguments of
        # poll_acquire() that replaced acquire()'s GError.
        self._poll_acquire = self._p.poll_acquire
        self._layout: Optional[VideoLayout] = None
        if stream_info is not None:
            self.set_stream_info(stream_info)

    @classmethod
    def video(cls, channel: str, width: int, height: int, format: str = "RGBA",
              framerate: Optional[Tuple[int, int]] = (30, 1), slot_count: Optional[int] = None,
              mode: int = 0o600, max_consumers: int = 16,
              max_wait: Optional[float] = 2.0,
              meta_size: Optional[int] = None) -> "Producer":
        """A producer of raw video: caps as stream info, slots of one frame
        (default GStreamer strides), `array` shaped (H, W, C) or in planes."""
        layout = layout_for(format, width, height)
        return cls(channel, layout.size, slot_count=slot_count, mode=mode,
                   stream_info=caps_string(format, width, height, framerate),
                   max_consumers=max_consumers, max_wait=max_wait, meta_size=meta_size)

    def acquire(self, timeout: Optional[float] = None) -> WriteFrame:
        """A free slot, waiting up to `timeout` seconds (None: forever, 0:
        do not wait) while lossless consumers hold every slot. Ctrl-C
        interrupts the wait (KeyboardInterrupt within 0.1 s); the producer
        stays usable, and max_wait counts the time it was held back across
        such interrupted calls.

        Raises bips.Timeout, bips.WouldBlock (timeout 0), bips.Busy (after
        interrupt())."""
        gslot, code, message = self._poll_acquire(_gi.slice_ms(timeout))
        if gslot is None:
            gslot = _gi.wait_rest(self._poll_acquire, timeout, code, message)
        return WriteFrame(self, gslot)

    def write(self, array, pts: Optional[int] = None, timeout: Optional[float] = None,
              **publish_args) -> None:
        """Copies `array` (anything NumPy can view as bytes) into a slot and
        publishes it: one copy, from the caller's memory into the channel.
        To avoid even that copy, fill acquire().array in place instead.
        Waits for the slot like acquire() (interruptible by Ctrl-C)."""
        src = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        with self.acquire(timeout) as frame:
            if src.size > frame.capacity:
                frame.discard()
                raise ValueError(f"{src.size} bytes do not fit a slot of {frame.capacity}")
            frame.data[: src.size] = src
            frame.publish(size=src.size, pts=pts, **publish_args)

    def set_stream_info(self, stream_info: str) -> None:
        """Sets what consumers read the format from (e.g. raw-video caps);
        frames published afterwards carry it."""
        try:
            self._p.set_stream_info(stream_info)
        except GLib.Error as exc:
            raise _gi.translate(exc) from None
        self._layout = video_layout(stream_info)

    def end_of_stream(self) -> None:
        """Publishes an end-of-stream marker after the frames so far."""
        try:
            self._p.end_of_stream()
        except GLib.Error as exc:
            raise _gi.translate(exc) from None

    def interrupt(self) -> None:
        """Makes a blocked acquire() raise bips.Busy now (and every later
        one until resume())."""
        self._p.interrupt()

    def resume(self) -> None:
        self._p.resume()

    def close(self) -> None:
        """Ends the channel now. Raises bips.Busy while WriteFrames (or
        arrays of them) of this producer are still referenced."""
        try:
            self._p.close()
        except GLib.Error as exc:
            raise _gi.translate(exc) from None

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.close()
        except _gi.Busy as err:
            # Arrays of slots are still referenced: the channel ends when
            # the last of them and this object are gone.
            warnings.warn(str(err), ResourceWarning, stacklevel=2)

    @property
    def layout(self) -> Optional[VideoLayout]:
        return self._layout

    @property
    def name(self) -> str:
        return self._p.get_name()

    @property
    def epoch(self) -> int:
        return self._p.get_epoch()

    @property
    def published(self) -> int:
        return self._p.get_published()

    @property
    def consumer_count(self) -> int:
        return self._p.get_consumer_count()

    @property
    def slot_size(self) -> int:
        return self._p.get_slot_size()

    @property
    def slot_count(self) -> int:
        return self._p.get_slot_count()

    @property
    def closed(self) -> bool:
        return self._p.is_closed()

    @property
    def gobject(self) -> "Bips.Producer":
        """The underlying Bips.Producer."""
        return self._p
