# SPDX-License-Identifier: LGPL-2.1-or-later
"""The per-frame metadata that bipssink publishes, read without GStreamer.

bipssink sends, with every frame, the buffer's GstVideoMeta (format, size,
plane offsets and strides) when upstream attached one: padded rows or
aligned planes that the caps alone do not describe. The blob layout is
defined in gst/gstbipsmeta.h (native byte order):

    u32 magic "BMT1" | u16 version 1 | u16 record count
    records: u32 tag | u32 payload length | payload, padded to 8 bytes

Tag "VMET" is one video meta: char format[32] (GStreamer's name, NUL
padded), u32 flags, u32 width, u32 height, u32 n_planes, u64 offset[4],
i32 stride[4]. Other tags are skipped.
"""

from __future__ import annotations

import functools
import struct
from typing import Optional, Tuple

from .video import SUPPORTED_FORMATS, VideoLayout, layout_for

__all__ = ["meta_layout"]

_MAGIC = b"BMT1"
_VERSION = 1
_TAG_VIDEO_META = b"VMET"
_HEADER = struct.Struct("=4sHH")
_RECORD = struct.Struct("=4sI")
_VIDEO_META = struct.Struct("=32sIIII4Q4i")
_MAX_PLANES = 4


@functools.lru_cache(maxsize=64)
def meta_layout(blob: bytes) -> Tuple[Optional[VideoLayout], Optional[str]]:
    """(layout, problem) for a bipssink metadata blob.

    layout is the video meta's layout, or None when the blob has no video
    meta or one in a format this package does not shape; problem is None,
    or why the blob cannot be read (the caller then falls back to the
    stream info). Cached: a stream sends the same blob frame after frame.
    """
    if len(blob) < _HEADER.size:
        return None, f"{len(blob)} bytes are too few for a metadata header"
    magic, version, count = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        return None, "unknown magic (not written by bipssink?)"
    if version != _VERSION:
        return None, f"metadata version {version} is not supported"
    pos = _HEADER.size
    for _ in range(count):
        if pos + _RECORD.size > len(blob):
            return None, "a record header runs past the end of the blob"
        tag, length = _RECORD.unpack_from(blob, pos)
        pos += _RECORD.size
        if pos + length > len(blob):
            return None, f"record {tag!r} of {length} bytes runs past the end of the blob"
        if tag == _TAG_VIDEO_META:
            if length != _VIDEO_META.size:
                return None, f"a video meta record of {length} bytes, not {_VIDEO_META.size}"
            return _video_meta(blob[pos:pos + length])
        pos += (length + 7) & ~7
    return None, None


def _video_meta(record: bytes) -> Tuple[Optional[VideoLayout], Optional[str]]:
    name, _flags, width, height, n_planes, *rest = _VIDEO_META.unpack(record)
    offsets, strides = rest[:_MAX_PLANES], rest[_MAX_PLANES:]
    fmt = name.split(b"\0", 1)[0].decode("ascii", "replace")
    if not 0 < n_planes <= _MAX_PLANES:
        return None, f"a video meta with {n_planes} planes"
    if fmt not in SUPPORTED_FORMATS:
        return None, None
    try:
        planes = len(layout_for(fmt, width, height).planes)
    except ValueError as exc:
        return None, f"a video meta that does not describe a frame: {exc}"
    if n_planes != planes:
        return None, f"a {fmt} video meta with {n_planes} planes instead of {planes}"
    if any(s <= 0 for s in strides[:n_planes]):
        return None, f"a video meta with strides {list(strides[:n_planes])}"
    try:
        return layout_for(fmt, width, height, strides=strides[:n_planes],
                          offsets=offsets[:n_planes]), None
    except ValueError as exc:
        return None, f"a video meta that does not describe a frame: {exc}"
