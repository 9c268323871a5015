# SPDX-License-Identifier: LGPL-2.1-or-later
"""Regions of interest and custom metas between Python and GStreamer, both
ways; the frame's own video layout through the one GI call; errors for
metadata that cannot travel."""

import numpy as np
import pytest

import bips
from helpers import wait_for

DETECTION = {"label": "person", "confidence": 0.93, "class-id": 1, "tracked": True,
             "frame": 2**40}


def _regions(k):
    person = bips.Region("person", 10 + k, 20, 100, 200, id=7, params={"detection": DETECTION})
    face = bips.Region("face", 30, 25, 40, 40, id=8, parent_id=7)
    return [person, face]


def test_python_to_python(channel):
    with bips.Producer.video(channel, 32, 24, "RGBA") as producer, \
            bips.Consumer(channel, timeout=5) as consumer:
        for k in range(3):
            producer.write(np.full((24, 32, 4), k, np.uint8), regions=_regions(k),
                           custom={"inference-info": {"model": "yolo-é", "k": k}},
                           offset=k, offset_end=k + 1)
        producer.write(np.zeros((24, 32, 4), np.uint8))  # nothing besides the bytes
        for k in range(3):
            with consumer.next(timeout=5) as frame:
                assert frame.regions == _regions(k)
                assert frame.custom_metas == {"inference-info": {"model": "yolo-é", "k": k}}
                assert (frame.offset, frame.offset_end) == (k, k + 1)
                assert isinstance(frame.regions[0].params["detection"]["class-id"], int)
        with consumer.next(timeout=5) as frame:
            assert frame.regions == [] and frame.custom_metas == {}
            assert frame.offset is None and frame.meta == b""
        # Metadata stays readable after release, as the timestamps do.
        assert frame.regions == []


def test_python_regions_reach_gstreamer_as_metas(Gst, channel):
    gi = pytest.importorskip("gi")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GstVideo

    producer = bips.Producer.video(channel, 32, 24, "RGBA")
    pipe = Gst.parse_launch(f"bipssrc channel={channel} timeout=5000 ! "
                            "appsink name=sink sync=false")
    try:
        pipe.set_state(Gst.State.PLAYING)
        wait_for(lambda: producer.consumer_count == 1, what="bipssrc to attach")
        producer.write(np.zeros((24, 32, 4), np.uint8), regions=_regions(0))
        sample = pipe.get_by_name("sink").emit("try-pull-sample", 5 * Gst.SECOND)
        assert sample is not None
        buffer = sample.get_buffer()
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, 7)
        assert roi is not None
        assert (roi.x, roi.y, roi.w, roi.h, roi.parent_id) == (10, 20, 100, 200, -1)
        assert GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, 8).parent_id == 7
        detection = roi.get_param("detection")
        assert detection.get_string("label") == "person"
        assert detection.get_int("class-id") == (True, 1)
        assert detection.get_double("confidence") == (True, 0.93)
        assert detection.get_boolean("tracked") == (True, True)
    finally:
        pipe.set_state(Gst.State.NULL)
        producer.close()


def test_gstreamer_regions_reach_python(Gst, channel):
    gi = pytest.importorskip("gi")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GstVideo

    pipe = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format=GRAY8,width=8,height=8,"
        f"framerate=30/1 ! bipssink channel={channel} wait-for-consumer=true")
    consumer = None
    try:
        pipe.set_state(Gst.State.PLAYING)
        consumer = bips.Consumer(channel, timeout=5)
        buffer = Gst.Buffer.new_wrapped(bytes(64))
        roi = GstVideo.buffer_add_video_region_of_interest_meta(buffer, "car", 1, 2, 3, 4)
        roi.id = 5
        s = Gst.Structure.new_from_string(
            "detection, label=(string)car, confidence=(double)0.5, rate=(fraction)30/1")
        roi.add_param(s)
        buffer.pts = 0
        assert pipe.get_by_name("src").emit("push-buffer", buffer) == Gst.FlowReturn.OK
        with consumer.next(timeout=5) as frame:
            (region,) = frame.regions
            assert (region.type, region.x, region.y, region.w, region.h, region.id) == \
                ("car", 1, 2, 3, 4, 5)
            # A GStreamer type Python has no plain form for comes as its text.
            assert region.params == {"detection": {"label": "car", "confidence": 0.5,
                                                   "rate": "30/1"}}
    finally:
        if consumer is not None:
            consumer.close()
        pipe.set_state(Gst.State.NULL)


def test_what_cannot_travel_is_refused_and_the_slot_stays(channel):
    with bips.Producer(channel, 64, meta_size=256) as producer:
        many = [bips.Region("car", i, i, 1, 1, id=i) for i in range(20)]
        with producer.acquire(timeout=1) as slot:
            with pytest.raises(bips.InvalidArgument, match=r"20 regions of interest.*meta-size"):
                slot.publish(regions=many)
            assert slot.pending
            with pytest.raises(bips.InvalidArgument, match="not valid metadata"):
                slot.publish(custom={"has space": {"a": 1}})
            with pytest.raises(TypeError, match="cannot travel"):
                slot.publish(custom={"ok": {"a": [1, 2]}})
            with pytest.raises(ValueError, match="64 bits"):
                slot.publish(custom={"ok": {"a": 2**64}})
            assert slot.pending
            slot.publish(regions=many[:2])


def test_an_unreadable_video_layout_falls_back_to_the_stream_info(Gst, channel):
    """A producer whose video meta does not describe its frames (a stride
    shorter than a row): the consumer warns once and shapes the frames by
    the caps instead of trusting it."""
    gi = pytest.importorskip("gi")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GstVideo

    width, height = 8, 4
    pipe = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format=RGBA,width={width},"
        f"height={height},framerate=30/1 ! bipssink channel={channel} "
        "wait-for-consumer=true")
    consumer = None
    try:
        pipe.set_state(Gst.State.PLAYING)
        consumer = bips.Consumer(channel, timeout=5)
        buffer = Gst.Buffer.new_wrapped(bytes(width * height * 4))
        GstVideo.buffer_add_video_meta_full(buffer, GstVideo.VideoFrameFlags.NONE,
                                            GstVideo.VideoFormat.RGBA, width, height, 1,
                                            [0, 0, 0, 0], [-5, 0, 0, 0])
        buffer.pts = 0
        assert pipe.get_by_name("src").emit("push-buffer", buffer) == Gst.FlowReturn.OK
        with pytest.warns(RuntimeWarning, match="unreadable video metadata"):
            frame = consumer.next(timeout=5)
        with frame:
            assert frame.array.shape == (height, width, 4)
            assert frame.array.strides == (width * 4, 4, 1)
    finally:
        if consumer is not None:
            consumer.close()
        pipe.set_state(Gst.State.NULL)
