# SPDX-License-Identifier: LGPL-2.1-or-later
"""GStreamer helpers: a Gst.Sample (e.g. from `bipssrc ! appsink`) as an ndarray, no copy.

Importing this module needs PyGObject's Gst and GstVideo. Buffers are
mapped through python3-gst-1.0's Gst.Buffer.map() override.

Nothing here waits. appsink's own "pull-sample" does, inside GStreamer,
where Python cannot run its Ctrl-C handler until a sample comes; to keep
Ctrl-C prompt as bips.Consumer does, pull with "try-pull-sample" and a
timeout of Gst.SECOND // 10 in a loop.
"""

from __future__ import annotations

import functools
from typing import Optional

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402

import numpy as np  # noqa: E402

from ._views import region, shaped  # noqa: E402
from .video import SUPPORTED_FORMATS, VideoLayout, layout_for, video_layout  # noqa: E402

__all__ = ["sample_to_ndarray", "buffer_to_ndarray", "buffer_layout"]


def buffer_layout(buffer: "Gst.Buffer", caps: Optional["Gst.Caps"]) -> Optional[VideoLayout]:
    """The raw-video layout of `buffer`: format and size from `caps`,
    strides and offsets from the buffer's GstVideoMeta when it has one
    (bipssrc attaches the producer's), else GStreamer's defaults. None if
    the caps are not raw video in a supported format."""
    if caps is None:
        return None
    layout = _caps_layout(caps)  # None for empty or non-video caps
    if layout is None:
        return None
    meta = GstVideo.buffer_get_video_meta(buffer)
    if meta is None:
        return layout
    n = meta.n_planes
    return _meta_layout(meta.format, meta.width, meta.height,
                        tuple(meta.stride)[:n], tuple(meta.offset)[:n]) or layout


# The caps of the last sample and their layout. PyGObject compares two
# Gst.Caps by the GstCaps they wrap, so a stream's samples, which share
# one GstCaps until the caps change, hit this without turning the caps
# into text per frame; keeping the Gst.Caps keeps that GstCaps alive, so
# its address cannot be reused by other caps meanwhile. One tuple,
# replaced whole: safe from any thread.
_last_caps: tuple = (None, None)


def _caps_layout(caps: "Gst.Caps") -> Optional[VideoLayout]:
    global _last_caps
    last, layout = _last_caps
    if last is not None and caps == last:
        return layout
    layout = video_layout(caps.to_string())
    _last_caps = (caps, layout)
    return layout


@functools.lru_cache(maxsize=64)
def _meta_layout(video_format, width: int, height: int, strides: tuple,
                 offsets: tuple) -> Optional[VideoLayout]:
    """The layout a GstVideoMeta describes, or None for a format this
    package does not shape. Cached: the meta of a stream rarely changes."""
    fmt = GstVideo.VideoFormat.to_string(video_format)
    if fmt not in SUPPORTED_FORMATS:
        return None
    return layout_for(fmt, width, height, strides=strides, offsets=offsets)


def buffer_to_ndarray(buffer: "Gst.Buffer", caps: Optional["Gst.Caps"] = None):
    """Maps `buffer` for reading and returns its bytes as a read-only
    NumPy view: shaped (or in planes) when `caps` are supported raw video,
    else 1-D uint8.

    Ownership: the returned array (and every view derived from it) keeps
    the buffer referenced and mapped; the buffer is unmapped when the last
    of them is garbage. No copy is made when the buffer has one memory, as
    bipssrc's buffers do (GStreamer merges several memories into a new copy
    when mapping).
    """
    address, size, unmap = _map_read(buffer)
    try:
        layout = buffer_layout(buffer, caps) if size else None
    except BaseException:
        unmap()
        raise
    if size == 0:
        unmap()
        return np.empty(0, dtype=np.uint8)
    flat, _alive = region(address, size, buffer, unmap)
    return shaped(flat, layout)


def _map_read(buffer: "Gst.Buffer"):
    """(address, size, unmap) through gst-python's Gst.Buffer.map()."""
    ok, info = buffer.map(Gst.MapFlags.READ)
    if not ok:
        raise RuntimeError("could not map the buffer for reading")

    def unmap(_owner=None):
        buffer.unmap(info)

    try:
        # The address of the mapped bytes, through a throw-away array: the
        # memoryview itself must have no exports left when it is unmapped.
        size = len(info.data)
        return (_address_of(info.data) if size else 0), size, unmap
    except BaseException:
        unmap()
        raise


def _address_of(view: memoryview) -> int:
    tmp = np.frombuffer(view, dtype=np.uint8)
    address = tmp.__array_interface__["data"][0]
    del tmp
    return address


def sample_to_ndarray(sample: "Gst.Sample"):
    """The buffer of `sample` as a read-only NumPy view, shaped by the
    sample's caps (see buffer_to_ndarray(); no copy)."""
    buffer = sample.get_buffer()
    if buffer is None:
        raise ValueError("the sample has no buffer")
    return buffer_to_ndarray(buffer, sample.get_caps())
