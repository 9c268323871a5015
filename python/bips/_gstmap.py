# SPDX-License-Identifier: LGPL-2.1-or-later
"""Mapping a Gst.Buffer for reading through libgstreamer directly.

gst-python's Gst.Buffer.map() builds a Python MapInfo object, a flags
object and a memoryview on every call; on the per-frame path of a consumer
that sleeps between frames (caches cold) that costs about as much as the
whole rest of turning a sample into an array. This module calls
gst_buffer_map() / gst_buffer_unmap() through ctypes instead, with a
GstMapInfo of its own.

It needs the GstBuffer's C address. PyGObject hashes a boxed value by its
C pointer; that is checked once, on a buffer made for the purpose, against
the address PyGObject prints in the buffer's repr, without dereferencing
anything. If the check fails (another PyGObject) or libgstreamer cannot be
loaded, available() is False and callers use Gst.Buffer.map().
"""

from __future__ import annotations

import ctypes
import re
from typing import Optional, Tuple

__all__ = ["available", "map_read"]

_GST_MAP_READ = 1


class _MapInfo(ctypes.Structure):
    # GstMapInfo, unchanged across GStreamer 1.x (public, ABI-stable).
    _fields_ = [
        ("memory", ctypes.c_void_p),
        ("flags", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("size", ctypes.c_size_t),
        ("maxsize", ctypes.c_size_t),
        ("user_data", ctypes.c_void_p * 4),
        ("_gst_reserved", ctypes.c_void_p * 4),
    ]


_map = None
_unmap = None


def _setup(Gst) -> bool:
    global _map, _unmap
    try:
        lib = ctypes.CDLL("libgstreamer-1.0.so.0")
        gst_map, gst_unmap = lib.gst_buffer_map, lib.gst_buffer_unmap
    except (OSError, AttributeError):
        return False
    gst_map.argtypes = [ctypes.c_void_p, ctypes.POINTER(_MapInfo), ctypes.c_int]
    gst_map.restype = ctypes.c_int
    gst_unmap.argtypes = [ctypes.c_void_p, ctypes.POINTER(_MapInfo)]
    gst_unmap.restype = None
    probe = Gst.Buffer.new_allocate(None, 1, None)
    shown = re.search(r"\(GstBuffer at (0x[0-9a-fA-F]+)\)", repr(probe))
    if shown is None or int(shown.group(1), 16) != hash(probe) & (2**64 - 1):
        return False
    _map, _unmap = gst_map, gst_unmap
    return True


_checked: Optional[bool] = None


def available(Gst) -> bool:
    """Whether map_read() can be used (checked on the first call)."""
    global _checked
    if _checked is None:
        _checked = _setup(Gst)
    return _checked


def map_read(buffer) -> Tuple[int, int, object]:
    """Maps `buffer` (a Gst.Buffer) for reading: (address, size, unmap).

    Call unmap() exactly once, and keep `buffer` referenced until then.
    Raises RuntimeError if GStreamer refuses the mapping.
    """
    pointer = hash(buffer) & (2**64 - 1)
    info = _MapInfo()
    if not _map(pointer, info, _GST_MAP_READ):
        raise RuntimeError("could not map the buffer for reading")

    def unmap(pointer=pointer, info=info):
        _unmap(pointer, info)

    return info.data or 0, info.size, unmap
