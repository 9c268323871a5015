# SPDX-License-Identifier: LGPL-2.1-or-later
"""Loads the Bips-1.0 typelib, turns its errors into Python exceptions and
waits in slices that Ctrl-C can interrupt."""

from __future__ import annotations

import math
import os
import time
from typing import Optional

import gi


def _preload(lib_dir: str) -> None:
    """Loads libbips and the facade from `lib_dir` (with RTLD_GLOBAL) before
    GI opens the facade. The library path given to GIRepository finds the
    facade but not libbips, which the dynamic loader then looks for only in
    the facade's RUNPATH and the system folders; once both are loaded, GI's
    dlopen of the facade returns the loaded copy. A library that cannot be
    loaded raises ImportError saying why, rather than failing later as a
    broken type."""
    import ctypes

    for name in ("libbips.so.0", "libbips-gobject-1.0.so.0"):
        path = os.path.join(lib_dir, name)
        if not os.path.exists(path):
            continue
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise ImportError(f"bips: cannot load {path}: {exc}") from None


def _require_bips() -> None:
    try:
        gi.require_version("Bips", "1.0")
        return
    except ValueError:
        pass
    # Not on the GI search path: an install under a prefix such as
    # /usr/local records where it put the typelib (absent in the source
    # tree, where `meson devenv` sets GI_TYPELIB_PATH instead).
    try:
        from . import _config
    except ImportError:
        _config = None
    if _config is not None and os.path.isdir(_config.TYPELIB_DIR):
        gi.require_version("GIRepository", "2.0")
        from gi.repository import GIRepository

        GIRepository.Repository.prepend_search_path(_config.TYPELIB_DIR)
        GIRepository.Repository.prepend_library_path(_config.LIB_DIR)
        _preload(_config.LIB_DIR)
        try:
            gi.require_version("Bips", "1.0")
            return
        except ValueError:
            pass
    raise ImportError(
        "the Bips-1.0 typelib was not found: install bips with introspection "
        "enabled, or run inside `meson devenv -C build` (which sets GI_TYPELIB_PATH)")


_require_bips()

from gi.repository import Bips, GLib  # noqa: E402

__all__ = [
    "Bips",
    "GLib",
    "Error",
    "InvalidArgument",
    "InvalidName",
    "NotFound",
    "Busy",
    "NoSpace",
    "PermissionDenied",
    "Corrupt",
    "Incompatible",
    "Timeout",
    "WouldBlock",
    "ProducerGone",
    "EndOfStream",
    "TooManyConsumers",
    "TooManyHeld",
    "SystemError_",
    "UNLIMITED_HELD",
    "ReleasedError",
    "TIME_NONE",
    "translate",
    "error",
    "timeout_ms",
    "SLICE_MS",
    "slice_ms",
    "wait_rest",
    "poll_until",
]

TIME_NONE = Bips.TIME_NONE


class Error(Exception):
    """A failure reported by bips (the BIPS_ERROR GLib domain).

    `code` is the Bips.Error value, `code_name` its short name
    ("timeout", "invalid-name", ...), `message` the text for people.
    """

    code: Optional[int] = None

    def __init__(self, message: str, code: Optional[int] = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def code_name(self) -> str:
        return Bips.error_code_name(self.code) if self.code is not None else "unknown"


class InvalidArgument(Error, ValueError):
    code = int(Bips.Error.INVALID_ARGUMENT)


class InvalidName(Error, ValueError):
    code = int(Bips.Error.INVALID_NAME)


class NotFound(Error):
    code = int(Bips.Error.NOT_FOUND)


class Busy(Error):
    code = int(Bips.Error.BUSY)


class NoSpace(Error):
    code = int(Bips.Error.NO_SPACE)


class PermissionDenied(Error, PermissionError):
    code = int(Bips.Error.PERMISSION_DENIED)


class Corrupt(Error):
    code = int(Bips.Error.CORRUPT)


class Incompatible(Error):
    code = int(Bips.Error.INCOMPATIBLE)


class Timeout(Error, TimeoutError):
    code = int(Bips.Error.TIMEOUT)


class WouldBlock(Error):
    code = int(Bips.Error.WOULD_BLOCK)


class ProducerGone(Error):
    code = int(Bips.Error.PRODUCER_GONE)


class EndOfStream(Error):
    code = int(Bips.Error.END_OF_STREAM)


class TooManyConsumers(Error):
    code = int(Bips.Error.TOO_MANY_CONSUMERS)


class SystemError_(Error, OSError):
    code = int(Bips.Error.SYSTEM)


class TooManyHeld(Error):
    """The consumer already holds `max_held` frames (Frame objects or NumPy
    arrays made from them that are still alive): release one, or copy what
    you keep (``frame.array.copy()``), before reading the next."""
    code = int(Bips.Error.TOO_MANY_HELD)


# Consumer(max_held=UNLIMITED_HELD) removes the hold limit.
UNLIMITED_HELD = 0xFFFFFFFF


class ReleasedError(RuntimeError):
    """The frame was released (or the slot published or discarded): its
    memory may no longer be touched through this object."""


_BY_CODE = {
    cls.code: cls
    for cls in (InvalidArgument, InvalidName, NotFound, Busy, NoSpace, PermissionDenied,
                Corrupt, Incompatible, Timeout, WouldBlock, ProducerGone, EndOfStream,
                TooManyConsumers, SystemError_, TooManyHeld)
}


def translate(exc: GLib.Error) -> BaseException:
    """The Python exception for a GLib.Error (bips errors get their own
    class; other domains are returned unchanged)."""
    if exc.domain != GLib.quark_to_string(Bips.error_quark()):
        return exc
    cls = _BY_CODE.get(exc.code, Error)
    return cls(exc.message, exc.code)


def error(code: int, message: str) -> Error:
    """The Python exception for a bips error code and message (as the
    poll_* methods of the binding report them)."""
    return _BY_CODE.get(code, Error)(message, code)


def timeout_ms(seconds: Optional[float]) -> int:
    """Seconds (None: forever) to the facade's milliseconds (negative:
    forever). Positive fractions of a millisecond round up, so a small
    timeout still waits."""
    if seconds is None:
        return Bips.TIMEOUT_FOREVER
    if seconds <= 0:
        return 0
    return max(1, math.ceil(seconds * 1000.0))


# -- waiting in slices -------------------------------------------------------
#
# Python runs its signal handlers (KeyboardInterrupt for Ctrl-C) only
# between calls into C, and PyGObject cannot turn a GError into an
# exception while a signal is pending ("Converting the GError failed").
# So every blocking call of this package waits through the binding's
# poll_* methods, which report their outcome in values (result, code,
# message) rather than a GError, in calls of at most SLICE_MS. The first
# call carries the whole wait when it is shorter; when a result is ready it
# is the only call, as cheap as a plain next() or acquire().

SLICE_MS = 100
_SLICE_S = SLICE_MS / 1000
_SLICE_NS = SLICE_MS * 1_000_000


def slice_ms(seconds: Optional[float]) -> int:
    """The first slice of a wait of `seconds` (None: forever; 0 or less:
    do not wait), in the milliseconds of timeout_ms(), at most SLICE_MS."""
    if seconds is None:
        return SLICE_MS
    if seconds <= 0:
        return 0
    if seconds >= _SLICE_S:
        return SLICE_MS
    return max(1, math.ceil(seconds * 1000.0))


def wait_rest(poll, seconds: Optional[float], code: int, message: Optional[str]):
    """Goes on with a wait of `seconds` (None: forever) after its first
    slice, `poll(slice_ms(seconds))`, returned no result but `code` and
    `message`. Returns the result of a later slice (with its more values,
    as poll_until() does); raises the bips
    exception of a failure, or bips.Timeout once the whole wait ran out.
    KeyboardInterrupt (or whatever a signal handler raises) comes out of
    it within a slice; the object polled stays usable."""
    if code:
        raise error(code, message)
    deadline = None
    if seconds is not None:
        rest = seconds - slice_ms(seconds) / 1000.0
        if rest <= 0:
            raise Timeout(message)
        deadline = time.monotonic_ns() + math.ceil(rest * 1e9)
    result, message = poll_until(poll, deadline)
    if not result:
        raise Timeout(message)
    return result


def poll_until(poll, deadline_ns: Optional[int], round_up: bool = True):
    """Calls `poll(ms)` -- a poll_* method of the binding, which returns
    (result, code, message) or (result, code, message, *more) -- at least
    once and in slices of at most SLICE_MS until it returns a result or
    `deadline_ns` (time.monotonic_ns(); None: never) is reached. The last
    slice is rounded up to a whole millisecond, or down if `round_up` is
    false (then up to 1 ms is left for the caller).

    Returns (result, None) -- or ((result, *more), None) for a poll with
    more values -- or (None, the timeout's text) when the time ran out.
    Raises the bips exception of a failure."""
    while True:
        last = False
        ms = SLICE_MS
        if deadline_ns is not None:
            left = deadline_ns - time.monotonic_ns()
            if left <= _SLICE_NS:
                last = True
                ms = max(0, -(-left // 1_000_000) if round_up else left // 1_000_000)
        result, code, message, *more = poll(ms)
        if result:
            return ((result, *more) if more else result), None
        if code:
            raise error(code, message)
        if last:
            return None, message
