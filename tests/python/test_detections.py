# SPDX-License-Identifier: LGPL-2.1-or-later
"""pipelines/detect.py: its detector on known images in every format it
reads, and the whole chain -- a Python producer of moving squares, the
detector as a process, bipssrc ! appsink on the results channel -- with
every box, label, confidence, timestamp and pixel checked."""

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bips
from helpers import wait_for

DETECT_PY = Path(__file__).resolve().parents[2] / "pipelines" / "detect.py"


@pytest.fixture(scope="module")
def detect():
    """pipelines/detect.py as a module (it is a script, not in a package)."""
    spec = importlib.util.spec_from_file_location("bips_detect_example", DETECT_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


WIDTH, HEIGHT = 160, 120
SQUARE = 20
GREY_BOX = (130, 100, 8, 6)  # x, y, w, h of a grey (200) box on odd frames


def square_box(k):
    """Where frame k's white square is: it moves every frame, in the top
    half, so it never touches the grey box."""
    return (5 + 7 * k) % (WIDTH - 40 - SQUARE), (3 + 5 * k) % (HEIGHT // 2 - SQUARE), \
        SQUARE, SQUARE


def expected(k):
    """Frame k's objects, in the detector's order (top to bottom, then
    left to right): (x, y, w, h, confidence)."""
    boxes = [square_box(k) + (1.0,)]
    if k % 2:
        boxes.append(GREY_BOX + (round(200 / 255, 3),))
    return boxes


def draw(image, fmt, k):
    """Frame k into an (H, W, 4) array of `fmt`: a dark blue background
    (luma 28, below the threshold unless blue is read as green), alpha or
    padding at 255 everywhere (the detector must not read it)."""
    r, g, b = RGB_INDEX[fmt]
    image[...] = 255
    image[..., r] = 0
    image[..., g] = 0
    x, y, w, h = square_box(k)
    image[y:y + h, x:x + w, [r, g, b]] = 255
    if k % 2:
        x, y, w, h = GREY_BOX
        image[y:y + h, x:x + w, [r, g, b]] = 200


RGB_INDEX = {
    "RGBA": (0, 1, 2), "RGBx": (0, 1, 2), "BGRA": (2, 1, 0), "BGRx": (2, 1, 0),
    "ARGB": (1, 2, 3), "xRGB": (1, 2, 3), "ABGR": (3, 2, 1), "xBGR": (3, 2, 1),
}


@pytest.mark.parametrize("fmt", sorted(RGB_INDEX))
def test_detector_finds_the_objects_in_every_packed_format(detect, fmt):
    assert set(detect.SUPPORTED) == set(RGB_INDEX)
    image = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    for k in range(4):
        draw(image, fmt, k)
        image.flags.writeable = False  # it must only read, as from a channel
        found = detect.detect(image, fmt)
        image.flags.writeable = True
        assert [(d.x, d.y, d.w, d.h, d.confidence) for d in found] == expected(k)
        assert [d.area for d in found] == [w * h for _x, _y, w, h, _c in expected(k)]


def test_detector_joins_diagonal_neighbours_and_drops_specks(detect):
    image = np.zeros((40, 40, 4), np.uint8)
    image[5:10, 5:10, :3] = 255
    image[10:15, 10:15, :3] = 255  # touches the first at a corner: one object
    image[30, 30, :3] = 255  # one pixel: below min_area
    image[20:24, 30:34, :3] = 255
    found = detect.detect(image, "RGBx", min_area=4)
    assert [(d.x, d.y, d.w, d.h, d.area) for d in found] == [(5, 5, 10, 10, 50),
                                                             (30, 20, 4, 4, 16)]
    regions = detect.regions(found)
    assert [(r.type, r.id, r.parent_id) for r in regions] == [("ball", 0, -1), ("ball", 1, -1)]
    assert regions[1].params == {"detection": {"label": "ball", "confidence": 1.0}}


def _run_detect(*args):
    return subprocess.Popen([sys.executable, str(DETECT_PY), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=10):
    """(stdout, stderr) of `proc` once it exited; kills it after `timeout`
    seconds. ("", "") when an earlier call already read them."""
    if proc.stdout.closed:
        return "", ""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_detections_reach_a_gstreamer_consumer(Gst, channel):
    """Every result that bipssrc delivers carries the input frame's PTS,
    its pixels, and one region per object with the known box, id, label
    and confidence, plus the inference-info custom meta; after the first,
    none is lost; the input's end of stream ends the results channel."""
    gi = pytest.importorskip("gi")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GLib, GstVideo

    import bips.gst

    fmt = "BGRA"
    results = channel + "-out"
    pipe = Gst.parse_launch(f"bipssrc channel={results} timeout=10000 ! "
                            "appsink name=sink sync=false")
    sink = pipe.get_by_name("sink")
    producer = bips.Producer.video(channel, WIDTH, HEIGHT, fmt)
    proc = _run_detect("--input", channel, "--output", results, "--wait", "10")
    published = {}  # pts -> frame number
    got = []
    try:
        pipe.set_state(Gst.State.PLAYING)
        wait_for(lambda: producer.consumer_count == 1, what="detect.py to attach")

        # Lockstep: publish a frame, wait for its result. Until the first
        # result, bipssrc may not have attached yet and frames may be lost;
        # after it, every frame must come back.
        k = 0
        while len(got) < 12:
            assert k < 100, "no results from detect.py"
            with producer.acquire(timeout=5) as slot:
                draw(slot.array, fmt, k)
                pts = time.monotonic_ns()
                slot.publish(pts=pts)
            published[pts] = k
            k += 1
            sample = sink.emit("try-pull-sample", (2000 if got else 200) * Gst.MSECOND)
            assert sample is not None or not got, f"no result for frame {k - 1}"
            if sample is not None:
                got.append(sample)
        producer.end_of_stream()
        assert sink.emit("try-pull-sample", 5 * Gst.SECOND) is None
        assert sink.get_property("eos"), "the results channel did not end"
        out, err = _finish(proc)
        assert proc.returncode == 0, err
        assert "end of stream on the input" in out

        numbers = []
        base = pipe.get_base_time()
        api = GstVideo.video_region_of_interest_meta_api_get_type()
        for sample in got:
            buffer = sample.get_buffer()
            assert buffer.pts + base in published, "the input's PTS was not kept"
            n = published[buffer.pts + base]
            numbers.append(n)
            want = expected(n)
            assert buffer.get_n_meta(api) == len(want)
            for rid, (x, y, w, h, confidence) in enumerate(want):
                roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, rid)
                assert roi is not None, f"frame {n}: no region {rid}"
                assert GLib.quark_to_string(roi.roi_type) == "ball"
                assert (roi.x, roi.y, roi.w, roi.h, roi.parent_id) == (x, y, w, h, -1)
                detection = roi.get_param("detection")
                assert detection.get_string("label") == "ball"
                assert detection.get_double("confidence") == (True, confidence)
            info = buffer.get_custom_meta("inference-info").get_structure()
            assert info.get_string("model") == "threshold"
            assert info.get_value("frame") == n  # the input's sequence number
            assert info.get_value("objects") == len(want)
            assert info.get_value("latency-ms") >= 0
            frame = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
            draw(frame, fmt, n)
            assert np.array_equal(bips.gst.sample_to_ndarray(sample), frame)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert sample.get_caps().get_structure(0).get_string("format") == fmt
    finally:
        got.clear()
        pipe.set_state(Gst.State.NULL)
        _finish(proc)
        producer.close()


def test_detector_refuses_formats_it_cannot_read(channel):
    with bips.Producer.video(channel, 32, 24, "I420") as producer:
        proc = _run_detect("--input", channel, "--output", channel + "-out", "--wait", "10")
        try:
            wait_for(lambda: producer.consumer_count == 1, what="detect.py to attach")
            producer.write(np.zeros(producer.layout.size, np.uint8))
            _out, err = _finish(proc)
        finally:
            _finish(proc)
    assert proc.returncode == 2, err
    assert "carries I420" in err
    assert all(fmt in err for fmt in RGB_INDEX), err
