# SPDX-License-Identifier: LGPL-2.1-or-later
"""Raw-video memory layouts read from GStreamer caps strings.

Pure Python (no GStreamer needed): parses the caps text that a channel
carries as its stream info and computes, for the supported raw formats, the
plane offsets, shapes, strides and dtype that GStreamer uses by default
(every row rounded up to 4 bytes, as gst_video_info_set_format() does).
"""

from __future__ import annotations

import collections
import functools
import re
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

__all__ = [
    "Plane",
    "VideoLayout",
    "Planes2",
    "Planes3",
    "SUPPORTED_FORMATS",
    "parse_caps",
    "video_layout",
    "layout_for",
    "caps_string",
]

# Planar formats come back as one of these: named tuples of plane arrays.
Planes2 = collections.namedtuple("Planes2", "y uv")
Planes3 = collections.namedtuple("Planes3", "y u v")


def _round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


@dataclass(frozen=True)
class Plane:
    """One plane: byte offset in the frame, array shape and byte strides."""

    offset: int
    shape: Tuple[int, ...]
    strides: Tuple[int, ...]
    dtype: str

    @property
    def extent(self) -> int:
        """Bytes from the plane's offset to one past its last element."""
        if any(n == 0 for n in self.shape):
            return 0
        itemsize = int(self.dtype[-1])
        return sum((n - 1) * s for n, s in zip(self.shape, self.strides)) + itemsize


@dataclass(frozen=True)
class VideoLayout:
    """Where the pixels of one raw video frame are."""

    format: str
    width: int
    height: int
    planes: Tuple[Plane, ...]
    size: int  # bytes of one frame with the default (or given) strides

    @property
    def planar(self) -> bool:
        return len(self.planes) > 1

    @functools.cached_property
    def needed(self) -> int:
        """Bytes a frame must hold to contain every plane."""
        return max(p.offset + p.extent for p in self.planes)

    def fits(self, nbytes: int) -> bool:
        """True if a frame of `nbytes` bytes holds every plane."""
        return self.needed <= nbytes


# Packed formats: (channels, bytes per channel, dtype).
_PACKED = {
    "RGBA": (4, "u1"), "BGRA": (4, "u1"), "ARGB": (4, "u1"), "ABGR": (4, "u1"),
    "RGBx": (4, "u1"), "BGRx": (4, "u1"), "xRGB": (4, "u1"), "xBGR": (4, "u1"),
    "RGB": (3, "u1"), "BGR": (3, "u1"),
    "GRAY8": (1, "u1"),
    "GRAY16_LE": (1, "<u2"), "GRAY16_BE": (1, ">u2"),
}
_SEMI_PLANAR = ("NV12", "NV21")
_PLANAR = ("I420", "YV12")

SUPPORTED_FORMATS = tuple(_PACKED) + _SEMI_PLANAR + _PLANAR


def _default_planes(fmt: str, width: int, height: int):
    """Default strides and offsets, as GStreamer computes them."""
    if fmt in _PACKED:
        channels, dtype = _PACKED[fmt]
        itemsize = int(dtype[-1])
        stride = _round_up(width * channels * itemsize, 4)
        return [stride], [0], stride * height
    h2 = _round_up(height, 2) // 2
    if fmt in _SEMI_PLANAR:
        stride = _round_up(width, 4)
        uv_offset = stride * _round_up(height, 2)
        return [stride, stride], [0, uv_offset], uv_offset + stride * h2
    if fmt in _PLANAR:
        ystride = _round_up(width, 4)
        cstride = _round_up(_round_up(width, 2) // 2, 4)
        o1 = ystride * _round_up(height, 2)
        o2 = o1 + cstride * h2
        return [ystride, cstride, cstride], [0, o1, o2], o2 + cstride * h2
    raise ValueError(f"unsupported raw video format {fmt!r}; supported: "
                     f"{', '.join(SUPPORTED_FORMATS)}")


def layout_for(fmt: str, width: int, height: int,
               strides: Optional[Sequence[int]] = None,
               offsets: Optional[Sequence[int]] = None) -> VideoLayout:
    """The layout of a `fmt` frame of width x height.

    Without `strides`/`offsets`, GStreamer's defaults; with them (for
    example from a GstVideoMeta), those planes' values instead.
    Raises ValueError for an unsupported format or a bad size.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"bad video size {width}x{height}")
    d_strides, d_offsets, size = _default_planes(fmt, width, height)
    if strides is not None:
        d_strides = [int(s) for s in list(strides)[: len(d_strides)]]
    if offsets is not None:
        d_offsets = [int(o) for o in list(offsets)[: len(d_offsets)]]
    planes = []
    if fmt in _PACKED:
        channels, dtype = _PACKED[fmt]
        itemsize = int(dtype[-1])
        if channels == 1:
            planes.append(Plane(d_offsets[0], (height, width), (d_strides[0], itemsize), dtype))
        else:
            planes.append(Plane(d_offsets[0], (height, width, channels),
                                (d_strides[0], channels * itemsize, itemsize), dtype))
    else:
        h2 = _round_up(height, 2) // 2
        w2 = _round_up(width, 2) // 2
        planes.append(Plane(d_offsets[0], (height, width), (d_strides[0], 1), "u1"))
        if fmt in _SEMI_PLANAR:
            planes.append(Plane(d_offsets[1], (h2, w2, 2), (d_strides[1], 2, 1), "u1"))
        else:
            u, v = (1, 2) if fmt == "I420" else (2, 1)  # YV12 stores V first
            planes.append(Plane(d_offsets[u], (h2, w2), (d_strides[u], 1), "u1"))
            planes.append(Plane(d_offsets[v], (h2, w2), (d_strides[v], 1), "u1"))
    if (strides is not None or offsets is not None) and \
            tuple(planes) != layout_for(fmt, width, height).planes:
        # Padded or moved planes: the frame ends where its last plane does.
        # (Given the default values, the layout equals the default one.)
        size = max(p.offset + p.extent for p in planes)
    return VideoLayout(fmt, width, height, tuple(planes), size)


def _split_top(text: str, sep: str):
    """Splits on `sep` outside quotes, brackets, braces and angle brackets."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "[{<(":
            depth += 1
        elif c in "]}>)":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


_TYPED = re.compile(r"^\(\s*([A-Za-z0-9_]+)\s*\)\s*(.*)$", re.S)


def _value(text: str):
    text = text.strip()
    kind = None
    m = _TYPED.match(text)
    if m:
        kind, text = m.group(1), m.group(2).strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind in (None, "int", "i", "uint", "gint", "guint"):
        try:
            return int(text, 0)
        except ValueError:
            pass
    return text


def parse_caps(text: str) -> Tuple[str, Dict[str, object]]:
    """Media type and fields of the first structure of a caps string.

    Typed values ("(int)640", "(string)RGBA") lose their type annotation;
    integers become int, everything else stays text. Features such as
    "(memory:SystemMemory)" after the media type are dropped.
    """
    first = _split_top(text.strip(), ";")[0].strip()
    items = _split_top(first, ",")
    media = items[0].strip()
    media = media.split("(", 1)[0].strip()
    fields: Dict[str, object] = {}
    for item in items[1:]:
        if "=" not in item:
            continue
        key, value = item.split("=", 1)
        fields[key.strip()] = _value(value)
    return media, fields


@functools.lru_cache(maxsize=64)
def video_layout(stream_info: str) -> Optional[VideoLayout]:
    """The layout described by raw-video caps, or None.

    None when the text is not video/x-raw caps with a supported fixed
    format, width and height. Results are cached (layouts are immutable):
    a consumer asks this for every frame of a stream whose caps rarely
    change.
    """
    if not stream_info:
        return None
    try:
        media, fields = parse_caps(stream_info)
    except Exception:  # malformed text from another process: not video
        return None
    if media != "video/x-raw":
        return None
    fmt, width, height = fields.get("format"), fields.get("width"), fields.get("height")
    if fmt not in SUPPORTED_FORMATS or not isinstance(width, int) or not isinstance(height, int):
        return None
    try:
        return layout_for(fmt, width, height)
    except ValueError:
        return None


def caps_string(fmt: str, width: int, height: int,
                framerate: Optional[Tuple[int, int]] = (30, 1)) -> str:
    """Raw-video caps text for a producer's stream info."""
    if fmt not in SUPPORTED_FORMATS:
        raise ValueError(f"unsupported raw video format {fmt!r}")
    caps = f"video/x-raw,format=(string){fmt},width=(int){int(width)},height=(int){int(height)}"
    if framerate is not None:
        caps += f",framerate=(fraction){int(framerate[0])}/{int(framerate[1])}"
    return caps
