# SPDX-License-Identifier: LGPL-2.1-or-later
"""Loads the Bips-1.0 typelib and turns its GLib errors into Python exceptions."""

from __future__ import annotations

import math
import os
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
    "SystemError_",
    "ReleasedError",
    "TIME_NONE",
    "translate",
    "timeout_ms",
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


class ReleasedError(RuntimeError):
    """The frame was released (or the slot published or discarded): its
    memory may no longer be touched through this object."""


_BY_CODE = {
    cls.code: cls
    for cls in (InvalidArgument, InvalidName, NotFound, Busy, NoSpace, PermissionDenied,
                Corrupt, Incompatible, Timeout, WouldBlock, ProducerGone, EndOfStream,
                TooManyConsumers, SystemError_)
}


def is_timeout(exc: GLib.Error) -> bool:
    """Whether a GLib.Error is bips' Timeout."""
    return (exc.domain == GLib.quark_to_string(Bips.error_quark())
            and exc.code == int(Bips.Error.TIMEOUT))


def translate(exc: GLib.Error) -> BaseException:
    """The Python exception for a GLib.Error (bips errors get their own
    class; other domains are returned unchanged)."""
    if exc.domain != GLib.quark_to_string(Bips.error_quark()):
        return exc
    cls = _BY_CODE.get(exc.code, Error)
    return cls(exc.message, exc.code)


def timeout_ms(seconds: Optional[float]) -> int:
    """Seconds (None: forever) to the facade's milliseconds (negative:
    forever). Positive fractions of a millisecond round up, so a small
    timeout still waits."""
    if seconds is None:
        return Bips.TIMEOUT_FOREVER
    if seconds <= 0:
        return 0
    return max(1, math.ceil(seconds * 1000.0))
