# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python and the GStreamer elements: bipssrc ! appsink views, gst-launch
producers read from NumPy, Python producers read by gst-launch."""

import gc
import hashlib
import subprocess
import time

import numpy as np
import pytest

import bips
from helpers import assert_in_channel_mapping, wait_for


def _reference_frame(Gst, caps: str, pattern: str):
    """One frame of videotestsrc in this process, copied out (the expected
    bytes for the cross-process tests)."""
    pipe = Gst.parse_launch(f"videotestsrc num-buffers=1 pattern={pattern} ! {caps} ! "
                            "appsink name=sink sync=false")
    pipe.set_state(Gst.State.PLAYING)
    sample = pipe.get_by_name("sink").emit("try-pull-sample", 5 * Gst.SECOND)
    assert sample is not None
    ok, info = sample.get_buffer().map(Gst.MapFlags.READ)
    data = bytes(info.data)
    sample.get_buffer().unmap(info)
    pipe.set_state(Gst.State.NULL)
    return data


def _appsink_pipeline(Gst, channel, policy="lossless"):
    pipe = Gst.parse_launch(f"bipssrc channel={channel} policy={policy} timeout=5000 ! "
                            "appsink name=sink sync=false max-buffers=1")
    return pipe, pipe.get_by_name("sink")


def test_appsink_array_is_zero_copy_and_keeps_the_buffer(Gst, channel):
    import bips.gst

    producer = bips.Producer.video(channel, 64, 48, "RGBA", slot_count=4)
    pipe, sink = _appsink_pipeline(Gst, channel)
    try:
        assert pipe.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE
        wait_for(lambda: producer.consumer_count == 1, what="bipssrc to attach")
        image = np.random.default_rng(1).integers(0, 256, (48, 64, 4), dtype=np.uint8)
        with producer.acquire(timeout=1) as slot:
            slot.array[...] = image
        sample = sink.emit("try-pull-sample", 5 * Gst.SECOND)
        assert sample is not None

        array = bips.gst.sample_to_ndarray(sample)
        assert array.shape == (48, 64, 4) and not array.flags.writeable
        np.testing.assert_array_equal(array, image)
        path = assert_in_channel_mapping(array.ctypes.data, array.nbytes, channel)
        assert path == f"/memfd:bips-{channel} (deleted)"
        with pytest.raises(ValueError):
            array.setflags(write=True)

        buffer = sample.get_buffer()
        view = array[10:20, 5]  # derived views keep the mapping too
        del sample
        pipe.set_state(Gst.State.NULL)
        gc.collect()
        refs_with_array = buffer.mini_object.refcount
        del array
        gc.collect()
        np.testing.assert_array_equal(view, image[10:20, 5])  # still mapped, still valid
        assert buffer.mini_object.refcount == refs_with_array
        del view
        gc.collect()
        # The arrays' hold on the buffer (and its mapping) went with the last.
        assert buffer.mini_object.refcount == refs_with_array - 1
        del buffer
    finally:
        pipe.set_state(Gst.State.NULL)
        gc.collect()
        producer.close()


def test_appsink_planar_view(Gst, channel):
    import bips.gst

    with bips.Producer.video(channel, 30, 20, "I420") as producer:
        pipe, sink = _appsink_pipeline(Gst, channel)
        try:
            pipe.set_state(Gst.State.PLAYING)
            wait_for(lambda: producer.consumer_count == 1, what="bipssrc to attach")
            with producer.acquire(timeout=1) as slot:
                slot.array.y[...] = 1
                slot.array.u[...] = 2
                slot.array.v[...] = 3
            sample = sink.emit("try-pull-sample", 5 * Gst.SECOND)
            planes = bips.gst.sample_to_ndarray(sample)
            assert planes._fields == ("y", "u", "v")
            assert planes.y.shape == (20, 30) and planes.u.shape == (10, 15)
            assert (planes.y == 1).all() and (planes.u == 2).all() and (planes.v == 3).all()
            assert_in_channel_mapping(planes.v.ctypes.data, 1, channel)
            del planes, sample
        finally:
            pipe.set_state(Gst.State.NULL)
            gc.collect()


@pytest.mark.parametrize("fmt,width,height", [("RGBA", 64, 48), ("BGR", 30, 20),
                                              ("NV12", 30, 20), ("GRAY8", 33, 9)])
def test_gst_launch_producer_to_numpy(Gst, gst_launch, channel, fmt, width, height):
    caps = f"video/x-raw,format={fmt},width={width},height={height},framerate=60/1"
    # A static pattern, compared pixel by pixel (row padding is undefined).
    layout = bips.layout_for(fmt, width, height)
    reference = np.frombuffer(_reference_frame(Gst, caps, "colors"), np.uint8)
    expected = [np.ndarray(p.shape, np.dtype(p.dtype), reference, p.offset, p.strides)
                for p in layout.planes]
    frames = 40
    consumer = None
    proc = subprocess.Popen([gst_launch, "-q", "videotestsrc", f"num-buffers={frames}",
                             "pattern=colors", "!", caps, "!", "bipssink", f"channel={channel}"],
                            stderr=subprocess.PIPE, text=True)
    try:
        consumer = bips.Consumer(channel, "lossless", timeout=10)
        seen, last_pts = 0, None
        for frame in consumer.frames(timeout=10):
            assert frame.layout == layout
            view = frame.array
            planes = view if isinstance(view, tuple) else (view,)
            for got, want in zip(planes, expected):
                np.testing.assert_array_equal(got, want)
                assert_in_channel_mapping(got.ctypes.data, 1, channel)
            assert frame.pts is not None and (last_pts is None or frame.pts > last_pts)
            # bipssink stamps absolute CLOCK_MONOTONIC times.
            assert 0 <= time.monotonic_ns() - frame.pts < 60 * 10**9
            last_pts = frame.pts
            seen += 1
            del view, planes, got
        # The consumer may attach after the first frames went out.
        assert 0 < seen <= frames
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
    finally:
        if consumer is not None:
            consumer.close()
        proc.kill()
        proc.wait()


def test_python_producer_to_gst_launch(gst_launch, channel):
    frames, width, height = 12, 32, 24
    with bips.Producer.video(channel, width, height, "RGBA") as producer:
        proc = subprocess.Popen([gst_launch, "-q", "bipssrc", f"channel={channel}",
                                 "timeout=10000", "!", "checksumsink", "hash=sha1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: producer.consumer_count == 1, what="gst-launch to attach")
            rng = np.random.default_rng(7)
            digests = []
            for _ in range(frames):
                image = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
                digests.append(hashlib.sha1(image.tobytes()).hexdigest())
                with producer.acquire(timeout=5) as slot:
                    slot.array[...] = image
            producer.end_of_stream()
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            got = [line.split()[-1] for line in out.splitlines() if line.strip()]
            assert got == digests
        finally:
            proc.kill()
            proc.wait()


def test_python_consumer_beside_a_gst_consumer(Gst, gst_launch, channel):
    """A latest Python consumer and a lossless gst-launch consumer on one
    Python producer: gst sees every frame, Python the newest."""
    frames = 20
    with bips.Producer.video(channel, 16, 16, "GRAY8", slot_count=4) as producer, \
            bips.Consumer(channel, "latest", timeout=1) as latest:
        proc = subprocess.Popen([gst_launch, "-q", "bipssrc", f"channel={channel}",
                                 "timeout=10000", "!", "checksumsink", "hash=md5"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: producer.consumer_count == 2, what="gst-launch to attach")
            for k in range(frames):
                with producer.acquire(timeout=5) as slot:
                    slot.array[...] = k
            producer.end_of_stream()
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            assert len([line for line in out.splitlines() if line.strip()]) == frames
            with latest.next(timeout=1) as frame:
                assert (frame.array == frames - 1).all()
            assert latest.skipped == frames - 1
        finally:
            proc.kill()
            proc.wait()


def _padded_rgba(width, height, stride, offset):
    """A frame of RGBA pixels laid out with `stride` bytes per row after
    `offset` bytes, the padding filled with 0xEE, and the pixels alone."""
    pixels = (np.arange(height * width * 4, dtype=np.uint32) % 251).astype(np.uint8)
    pixels = pixels.reshape(height, width, 4)
    raw = np.full(offset + stride * height, 0xEE, np.uint8)
    view = np.ndarray((height, width, 4), np.uint8, raw, offset, (stride, 4, 1))
    view[...] = pixels
    return raw.tobytes(), pixels


def test_gi_consumer_follows_the_frames_video_meta(Gst, channel):
    """Rows padded beyond the caps' default stride, and a plane offset,
    travel in bipssink's per-frame GstVideoMeta: the GI consumer's arrays
    follow them instead of assuming the caps' default layout."""
    gi = pytest.importorskip("gi")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GstVideo

    width, height, stride, offset = 30, 20, 128, 64  # the caps alone say stride 120, offset 0
    raw, pixels = _padded_rgba(width, height, stride, offset)
    pipe = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format=RGBA,width={width},"
        f"height={height},framerate=30/1 ! bipssink channel={channel} slot-size=4096 "
        "wait-for-consumer=true")
    consumer = None
    try:
        pipe.set_state(Gst.State.PLAYING)
        consumer = bips.Consumer(channel, "lossless", timeout=5)
        buffer = Gst.Buffer.new_wrapped(raw)
        GstVideo.buffer_add_video_meta_full(buffer, GstVideo.VideoFrameFlags.NONE,
                                            GstVideo.VideoFormat.RGBA, width, height, 1,
                                            [offset, 0, 0, 0], [stride, 0, 0, 0])
        buffer.pts = 0
        assert pipe.get_by_name("src").emit("push-buffer", buffer) == Gst.FlowReturn.OK
        with consumer.next(timeout=5) as frame:
            assert frame.layout.planes[0].offset == offset
            array = frame.array
            assert array.shape == (height, width, 4)
            assert array.strides == (stride, 4, 1)
            np.testing.assert_array_equal(array, pixels)
            assert_in_channel_mapping(array.ctypes.data, array.nbytes, channel)
            del array
    finally:
        if consumer is not None:
            consumer.close()
        pipe.set_state(Gst.State.NULL)
