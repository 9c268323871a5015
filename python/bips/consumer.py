# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reading a channel from Python: frames as read-only NumPy views, no copy."""

from __future__ import annotations

import collections
import functools
import threading
import time
import warnings
from typing import Deque, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import _gi
from ._gi import UNLIMITED_HELD, Bips, GLib, ReleasedError
from ._anticipate import Anticipation
from ._views import PreparedViews, View, shaped, unbound_view
from .metas import Fields, Region, custom_from, regions_from
from .video import SUPPORTED_FORMATS, VideoLayout, layout_for, video_layout

__all__ = ["Consumer", "Frame"]

# Gives a frame's slot back: Bips.Frame.release, looked up once.
_RELEASE = Bips.Frame.release

# How many of the latest Bips.Frames the consumer keeps a reference on (see
# next()).
_KEEP_RECENT = 2
_POLICIES = {
    "lossless": Bips.Policy.LOSSLESS,
    "latest": Bips.Policy.LATEST,
}


class Frame:
    """One frame from a Consumer, read in place in the channel's memory.

    `data` is a read-only 1-D uint8 ndarray over the frame's bytes and
    `array` the same bytes shaped by the stream info (an (H, W, C) or (H, W)
    ndarray for packed raw video, a Planes2(y, uv) / Planes3(y, u, v) named
    tuple for NV12/NV21 and I420/YV12, else the 1-D array). Neither copies.
    The strides and plane offsets come from the frame's GstVideoMeta when
    the producer sent one (bipssink does, for padded or aligned buffers),
    else they are GStreamer's defaults for the caps.

    Ownership: the frame holds its slot until released -- by release(), by
    leaving a `with` block, or when the Frame and every array taken from it
    are gone. After release(), `data` and `array` raise ReleasedError. An
    array that the caller kept from before release() stays valid: it keeps
    the slot (and the mapping) alive until it is dropped, and release()
    warns with a ResourceWarning in that case. So no array can ever point at
    unmapped or reused memory.

    Thread-safety: like a NumPy array, use one Frame from one thread at a
    time; the slot may be given back from any thread.
    """

    __slots__ = ("_gframe", "_block", "_region", "_data", "_array", "_layout", "_size",
                 "_metas", "__weakref__")

    def __init__(self, view: View, layout: Optional[VideoLayout], size: int):
        # Made ahead by the Consumer (PreparedViews) and handed out only
        # once next() has bound it to its Bips.Frame.
        self._gframe = None
        self._block = view.block
        self._metas = None
        self._layout = layout
        self._size = size
        self._data = view.flat
        self._array = view.shaped
        self._region = view.alive

    @classmethod
    def _prepare(cls, address: int, size: int, layout: Optional[VideoLayout]) -> "Frame":
        return cls(unbound_view(address, size, layout), layout, size)

    # -- data ---------------------------------------------------------------

    @property
    def data(self) -> np.ndarray:
        """Read-only 1-D uint8 view of the frame's bytes."""
        if self._data is None:
            raise ReleasedError(f"frame {self.sequence} was released; its data is gone")
        return self._data

    @property
    def array(self):
        """Read-only view shaped by the stream info (see the class doc)."""
        if self._data is None:
            raise ReleasedError(f"frame {self.sequence} was released; its data is gone")
        if self._array is None:
            self._array = shaped(self._data, self._layout) if self._layout else self._data
        return self._array

    @property
    def layout(self) -> Optional[VideoLayout]:
        """The frame's raw-video layout (stream info, refined by the frame's
        video meta), or None."""
        return self._layout

    @property
    def released(self) -> bool:
        return self._data is None

    def release(self) -> None:
        """Gives the slot back to the producer. Idempotent.

        If arrays taken from this frame are still referenced elsewhere, the
        slot is given back when the last of them goes (and a ResourceWarning
        says so); until then they stay valid.
        """
        self._release(warn=True)

    def _release(self, warn: bool) -> None:
        if self._data is None:
            return
        alive = self._region
        self._data = None
        self._array = None
        self._region = None
        if warn and alive() is not None:
            warnings.warn(
                f"frame {self.sequence} released while arrays of it are still "
                "referenced; its slot stays held until they are dropped",
                ResourceWarning, stacklevel=3)

    def __enter__(self) -> "Frame":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- metadata (readable after release) -----------------------------------

    @property
    def size(self) -> int:
        return self._size

    @property
    def pts(self) -> Optional[int]:
        """Presentation time (absolute CLOCK_MONOTONIC ns by convention),
        or None."""
        v = self._gframe.get_pts()
        return None if v == _gi.TIME_NONE else v

    @property
    def dts(self) -> Optional[int]:
        v = self._gframe.get_dts()
        return None if v == _gi.TIME_NONE else v

    @property
    def duration(self) -> Optional[int]:
        v = self._gframe.get_duration()
        return None if v == _gi.TIME_NONE else v

    @property
    def flags(self) -> int:
        return self._gframe.get_flags()

    @property
    def sequence(self) -> int:
        return self._gframe.get_sequence()

    @property
    def epoch(self) -> int:
        return self._gframe.get_epoch()

    @property
    def slot(self) -> int:
        return self._gframe.get_slot()

    @property
    def stream_info(self) -> str:
        return self._gframe.get_stream_info()

    @property
    def meta(self) -> bytes:
        """The raw bytes of the frame's metadata (bips' own format, see
        regions and custom_metas; or a C++ producer's own bytes)."""
        b = self._gframe.get_meta()
        return b.get_data() if b is not None else b""

    def _unpacked_metas(self) -> Dict:
        if self._metas is None:
            try:
                self._metas = self._gframe.get_metas().unpack()
            except GLib.Error as exc:
                raise _gi.translate(exc) from None
        return self._metas

    @property
    def regions(self) -> List[Region]:
        """The frame's regions of interest (bips.Region: type, box, id,
        parent id, parameter structures), in the producer's order; [] when
        it sent none. Raises bips.Corrupt if the producer's metadata cannot
        be read."""
        return regions_from(self._unpacked_metas())

    @property
    def custom_metas(self) -> Dict[str, Fields]:
        """The frame's custom metas: name -> fields (GstCustomMeta on the
        producer's side); {} when it sent none."""
        return custom_from(self._unpacked_metas())

    @property
    def offset(self) -> Optional[int]:
        """The buffer offset the producer sent (a sample or frame count
        for audio and video, a byte position for others), or None."""
        return self._unpacked_metas().get("offset")

    @property
    def offset_end(self) -> Optional[int]:
        return self._unpacked_metas().get("offset-end")

    @property
    def address(self) -> int:
        """Where the frame's bytes are mapped; 0 once released."""
        return 0 if self._data is None else self._gframe.get_data_address()

    def __repr__(self) -> str:
        state = "released" if self.released else f"{self._size} bytes"
        return f"<bips.Frame seq={self.sequence} epoch={self.epoch} {state}>"


def _meta_layout(fmt: str, width: int, height: int, offsets: tuple,
                 strides: tuple) -> Tuple[Optional[VideoLayout], Optional[str]]:
    """(layout, problem) for a frame's own video layout: the layout, or
    None with no problem for a format this package does not shape, or None
    and why the layout does not describe a frame."""
    if fmt not in SUPPORTED_FORMATS:
        return None, None
    try:
        planes = len(layout_for(fmt, width, height).planes)
        if len(strides) != planes:
            return None, f"a {fmt} video layout with {len(strides)} planes instead of {planes}"
        if any(s <= 0 for s in strides):
            return None, f"a video layout with strides {list(strides)}"
        return layout_for(fmt, width, height, strides=strides, offsets=offsets), None
    except ValueError as exc:
        return None, f"a video layout that does not describe a frame: {exc}"


def _frame_layout(gframe: "Bips.Frame") -> Optional[VideoLayout]:
    """The layout to shape `gframe` with (and the frames after it, until
    their layout id changes; Consumer.next() asks only then): the frame's
    own video layout when the producer sent a usable one (padded rows,
    aligned planes), else the stream info's."""
    _ok, _address, _size, info, fmt, width, height, planes, offsets, strides, problem = \
        gframe.get_view()
    caps_layout = video_layout(info)
    layout = None
    if caps_layout is not None and fmt is not None:
        layout, problem = _meta_layout(fmt, width, height, tuple(offsets[:planes]),
                                       tuple(strides[:planes]))
    if problem is not None:
        # The same text each time, so the default warning filter shows it once.
        warnings.warn(f"channel frames carry unreadable video metadata ({problem}); "
                      "shaping them by the stream info instead", RuntimeWarning, stacklevel=3)
    return layout or caps_layout


class Consumer:
    """Reads one channel; each frame is a zero-copy read-only NumPy view.

    `policy` is "lossless" (every frame; the producer waits for this
    consumer) or "latest" (the newest frame; never slows the producer).
    `timeout` is how long to wait for a producer, in seconds (None:
    forever). `spin` busy-waits that many seconds for a frame before
    sleeping (lower latency, more CPU). `anticipate`, for paced streams
    such as cameras, wakes that many seconds before the next frame is due,
    runs its per-frame Python steps once on the channel's memory so that
    they are in the CPU caches, and busy-waits for the frame (e.g. 0.001
    at 30 fps: about 3% of a core, for a reader that is awake and warm
    when the frame lands; give it at least 0.0005, the warm-up takes
    about 0.0001). See bips._anticipate.

    `max_held` caps how many frames this consumer may hold at once: every
    Frame not yet released, and every NumPy array made from one that is
    still alive, keeps its slot from the producer, so a program that keeps
    frames (a list, a batch, a queue) would starve the ring. Past the limit
    next() raises bips.TooManyHeld and takes nothing: release a frame, or
    keep a copy (``frame.array.copy()``) instead of the view. 0 takes the
    default, (slots - 2) / 3 and at least 2, so that the previous frame's
    array may live on while the next is read (2 for 4 or 8 slots);
    bips.UNLIMITED_HELD removes the limit (the producer's max_wait then
    drops a consumer that holds it back too long).

    Raises bips.InvalidName, bips.Timeout (no producer in time),
    bips.PermissionDenied, bips.TooManyConsumers, ...

    Every wait (for a producer here and in reattach(), for a frame in
    next() and frames()) is interruptible: it returns to Python at least
    every 0.1 s, so Ctrl-C raises KeyboardInterrupt promptly, without
    changing how long the wait lasts otherwise. After a KeyboardInterrupt
    the consumer is still usable, and close() always works. (bips._gi
    explains how.)

    Thread-safety: next() and reattach() may be called from one thread at a
    time (others wait); interrupt() and close() from any thread.
    """

    def __init__(self, channel: str, policy: str = "lossless",
                 timeout: Optional[float] = 5.0, spin: float = 0.0,
                 anticipate: float = 0.0, max_held: int = 0):
        if policy not in _POLICIES:
            raise ValueError(f"policy must be one of {sorted(_POLICIES)}, not {policy!r}")
        self._c = Bips.Consumer(name=channel, policy=_POLICIES[policy],
                                timeout_ms=_gi.timeout_ms(timeout),
                                spin_ns=max(0, int(spin * 1e9)),
                                anticipate_ns=max(0, int(anticipate * 1e9)),
                                max_held=max(0, min(int(max_held), UNLIMITED_HELD)))
        # Bound once: the lookup costs as much as the out arguments of
        # poll_next() that replaced next()'s GError.
        self._poll_next_into = self._c.poll_next_into
        # Made ahead of the frames, used by next() only: the empty
        # Bips.Frame the next frame is read into; the layout of the frames
        # whose layout id is _layout_id, and Frames with their views built
        # for them.
        self._reading = threading.Lock()  # next() from one thread at a time
        self._empty: Optional["Bips.Frame"] = None
        self._recent: Deque["Bips.Frame"] = collections.deque()
        self._layout_id = 0
        self._views = PreparedViews(Frame._prepare)
        # Attaches as init(None) would, in slices.
        ok, code, message = self._c.poll_attach(_gi.slice_ms(timeout))
        if not ok:
            _gi.wait_rest(self._c.poll_attach, timeout, code, message)
        self._anticipation = Anticipation(int(anticipate * 1e9)) if anticipate > 0 else None

    def next(self, timeout: Optional[float] = None) -> Frame:
        """The next frame, waiting up to `timeout` seconds (None: forever,
        0: do not wait). Ctrl-C interrupts the wait (KeyboardInterrupt
        within 0.1 s); the consumer stays usable.

        Raises bips.Timeout, bips.EndOfStream (once per marker),
        bips.ProducerGone (the producer went away, or dropped this consumer
        for holding it back past its max_wait; the message says which: call
        reattach()). Frames that fail validation are skipped and counted
        in `skipped`, never returned.
        """
        with self._reading:
            views = self._views
            views.prepare()
            # The latest frames' Bips.Frames are let go of here, not when
            # the caller drops the Frame (typically on `frame =
            # consumer.next()`, right after the next wake-up), where
            # destroying the wrapper and the GObject costs ~30 us with cold
            # CPU caches. Dropping a Frame then only drops a reference; the
            # slots are not concerned (a frame's slot goes back with its
            # region).
            recent = self._recent
            while len(recent) > _KEEP_RECENT:
                recent.popleft()
            # The frame to fill, made before the wait like the views. Out
            # of self._empty during the call; put back only while still
            # empty.
            gframe = self._empty
            if gframe is None:
                gframe = Bips.Frame.new()
            self._empty = None
            try:
                if self._anticipation is None or timeout == 0:
                    # One call per frame: each call through
                    # GObject-Introspection costs tens of microseconds
                    # right after a wake-up (docs/performance.md).
                    ok, code, message, *where = self._poll_next_into(gframe,
                                                                     _gi.slice_ms(timeout))
                    if not ok:
                        _ok, *where = _gi.wait_rest(
                            functools.partial(self._poll_next_into, gframe), timeout, code,
                            message)
                else:
                    _ok, *where = self._next_anticipating(gframe, timeout)
            except BaseException:
                # A timeout, a failure, or Ctrl-C during the wait. If a
                # frame came with the Ctrl-C, it is dropped here and its
                # GObject gives the slot back.
                if gframe.is_released():
                    self._empty = gframe
                raise
            address, size, layout_id = where
            if layout_id != self._layout_id:
                views.reset(_frame_layout(gframe))
                self._layout_id = layout_id
            # Taking a prepared Frame and binding it, written out: after a
            # wake-up every Python call costs microseconds. The frame's
            # region gives the slot back once neither the Frame nor any
            # array built from it refers to the memory.
            frame = views.ready.pop(address, None)
            if frame is None or frame._size != size:
                if frame is not None:
                    views.varying.add(address)
                frame = Frame._prepare(address, size, views.layout)
            views.taken.append((address, size))
            frame._gframe = gframe
            block = frame._block
            block._owner = gframe
            block._release = _RELEASE
            frame._block = None
            recent.append(gframe)
            return frame

    def _next_anticipating(self, gframe: "Bips.Frame", timeout: Optional[float]) -> tuple:
        """next() into `gframe` with the Python warm-up of `anticipate`
        (bips._anticipate), waiting in slices like next(). Returns what
        poll_next_into() does with a frame: (True, address, size, layout
        id).

        Raises the bips exceptions of next().
        """
        poll = functools.partial(self._poll_next_into, gframe)
        a = self._anticipation
        start = time.monotonic_ns()
        deadline = None if timeout is None else start + int(timeout * 1e9)
        wake = a.wake_ns(self._c)
        if wake is not None and deadline is not None:
            wake = min(wake, deadline)
        if wake is not None and wake - start >= 1_000_000:
            # Step one: sleep in the library until the warm-up is due; a
            # frame that comes sooner is returned at once. Milliseconds,
            # rounded down; the rest of the wait is a short sleep here.
            got, _message = _gi.poll_until(poll, wake, round_up=False)
            if got is not None:
                return got
        if wake is not None and wake > start:
            rest = wake - time.monotonic_ns()
            if rest > 0:
                time.sleep(rest / 1e9)
            Anticipation.warm_up(self._c)
        got, message = _gi.poll_until(poll, deadline)
        if got is None:
            raise _gi.Timeout(message)
        return got

    def reattach(self, timeout: Optional[float] = None) -> None:
        """After ProducerGone: waits for a live producer on the channel (a
        new one, or the same one if it only dropped this consumer) and
        attaches to it. Ctrl-C interrupts the wait (KeyboardInterrupt
        within 0.1 s); until a later reattach() succeeds, next() may then
        raise bips.ProducerGone (the old attachment is already let go)."""
        ok, code, message = self._c.poll_reattach(_gi.slice_ms(timeout))
        if not ok:
            _gi.wait_rest(self._c.poll_reattach, timeout, code, message)

    def frames(self, timeout: Optional[float] = None, reattach: bool = False) -> Iterator[Frame]:
        """Frames until end of stream (or until the producer goes, unless
        `reattach` is true, in which case it waits for the next producer).

        Each frame is released when the loop asks for the next one, so a
        lossless producer is never held back by frames the loop is done
        with. Arrays the loop body kept stay valid (they hold their slot
        until dropped); copy what must outlive them for long. Its waits are
        those of next() and reattach(): Ctrl-C ends the loop with
        KeyboardInterrupt within 0.1 s, and the frame it held is released.
        """
        frame = None
        try:
            while True:
                try:
                    frame = self.next(timeout)
                except _gi.EndOfStream:
                    return
                except _gi.ProducerGone:
                    if not reattach:
                        return
                    self.reattach(timeout)
                    continue
                yield frame
                frame._release(warn=False)
                frame = None
        finally:
            if frame is not None:
                frame._release(warn=False)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def interrupt(self) -> None:
        """Makes a blocked next() raise bips.Timeout now (and every later
        one until resume()). Any thread."""
        self._c.interrupt()

    def resume(self) -> None:
        self._c.resume()

    def close(self) -> None:
        """Detaches now; frames already returned stay valid. Idempotent."""
        self._c.close()

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def name(self) -> str:
        return self._c.get_name()

    @property
    def policy(self) -> str:
        return "latest" if self._c.get_policy() == Bips.Policy.LATEST else "lossless"

    @property
    def epoch(self) -> int:
        return self._c.get_epoch()

    @property
    def received(self) -> int:
        return self._c.get_received()

    @property
    def skipped(self) -> int:
        return self._c.get_skipped()

    @property
    def stream_info(self) -> str:
        return self._c.dup_stream_info()

    @property
    def layout(self) -> Optional[VideoLayout]:
        return video_layout(self.stream_info)

    @property
    def data_mapping(self) -> Tuple[int, int]:
        """(address, size) of the channel's frame data in this process."""
        _ok, address, size = self._c.get_data_mapping()
        return address, size

    @property
    def gobject(self) -> "Bips.Consumer":
        """The underlying Bips.Consumer."""
        return self._c
