# SPDX-License-Identifier: LGPL-2.1-or-later
"""Caps parsing and raw-video layouts, checked against GstVideo.VideoInfo."""

import gi
import pytest

import bips
from bips import video

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402

Gst.init(None)

SIZES = [(1, 1), (2, 2), (3, 5), (15, 7), (64, 48), (641, 479), (1920, 1080)]


@pytest.mark.parametrize("fmt", bips.SUPPORTED_FORMATS)
@pytest.mark.parametrize("width,height", SIZES)
def test_default_layout_matches_gstreamer(fmt, width, height):
    info = GstVideo.VideoInfo()
    info.set_format(GstVideo.VideoFormat.from_string(fmt), width, height)
    layout = bips.layout_for(fmt, width, height)
    assert layout.size == info.size
    n = info.finfo.n_planes
    gst_planes = [(info.offset[i], info.stride[i]) for i in range(n)]
    ours = [(p.offset, p.strides[0]) for p in layout.planes]
    if fmt == "YV12":
        # Our planes are listed Y, U, V; GStreamer lists YV12's in memory
        # order (Y, V, U).
        assert ours == [gst_planes[0], gst_planes[2], gst_planes[1]]
    else:
        assert ours == gst_planes
    assert layout.fits(info.size)


def test_caps_from_gstreamer_parse():
    caps = Gst.Caps.from_string(
        "video/x-raw(memory:SystemMemory),format=NV12,width=641,height=479,"
        "framerate=30000/1001,colorimetry=\"bt709\",pixel-aspect-ratio=1/1")
    media, fields = bips.parse_caps(caps.to_string())
    assert media == "video/x-raw"
    assert fields["format"] == "NV12"
    assert fields["width"] == 641 and fields["height"] == 479
    assert fields["framerate"] == "30000/1001"
    layout = bips.video_layout(caps.to_string())
    assert layout.format == "NV12"
    assert [p.shape for p in layout.planes] == [(479, 641), (240, 321, 2)]


@pytest.mark.parametrize("text", [
    "",
    "application/octet-stream",
    "video/x-raw,format=UYVY,width=4,height=4",
    "video/x-raw,format=RGBA,width=(int)[ 1, 100 ],height=4",
    "video/x-raw,format={ RGBA, BGRA },width=4,height=4",
    "video/x-raw,format=RGBA,width=4",
    "video/x-raw,format=RGBA,width=0,height=4",
    "audio/x-raw,format=S16LE,rate=48000",
])
def test_not_a_supported_fixed_video_layout(text):
    assert bips.video_layout(text) is None


def test_caps_string_round_trip():
    text = bips.caps_string("BGR", 33, 17, (25, 1))
    caps = Gst.Caps.from_string(text)
    assert caps.is_fixed()
    layout = bips.video_layout(caps.to_string())
    assert (layout.format, layout.width, layout.height) == ("BGR", 33, 17)
    assert layout.planes[0].strides == (100, 3, 1)  # 33 * 3 = 99, rounded up to 100


def test_quoted_values_and_several_structures():
    media, fields = video.parse_caps('video/x-raw, format=(string)"GRAY8", width=(int)8, '
                                     'height=(int)2, note="a, b; c"; video/x-raw, width=1')
    assert media == "video/x-raw"
    assert fields == {"format": "GRAY8", "width": 8, "height": 2, "note": "a, b; c"}
