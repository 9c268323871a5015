#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Prints (or draws) the regions of interest that bipssrc attaches to a results channel's buffers.
"""Print the detections of a results channel, read through GStreamer.

    bipssrc channel=detections ! appsink   (GStreamer, in this process)
      -> each buffer's GstVideoRegionOfInterestMeta: type, box, id, and the
         "detection" parameter (label, confidence) as a GstStructure
      -> each buffer's GstCustomMeta "inference-info" (frame, timing)

One line per frame, e.g.

    pts 0:00:01.200000000  frame 37  1 region: #0 ball (150,110 38x38) label=ball \\
        confidence=0.975  detector latency 1.9 ms

where pts is the buffer's running time in this pipeline, and frame and the
detector's latency (from the camera frame's timestamp, which detect.py
keeps on its output, to the detection) come from the custom meta. At the end of the stream (or after
--frames N, or Ctrl-C) it prints "show-detections: N frames, M with
regions" and exits 0; a pipeline error exits 1.

PyGObject cannot walk a buffer's metas (gst_buffer_iterate_meta is not
introspectable), so this looks up gst_buffer_get_n_meta() regions by id,
0..n-1, the numbering detect.py uses; a region with another id is counted
as "not numbered" instead of printed. C code, or a GStreamer element,
would iterate the metas instead.

--display also shows the video with the boxes drawn (this draws them with
NumPy into a copy of each frame and pushes it through appsrc ! videoconvert
! autovideosink: GStreamer 1.22's base, good and bad plugins have no element
that draws GstVideoRegionOfInterestMeta). Without the boxes, a plain
pipeline shows the results channel too, as any channel:

    gst-launch-1.0 bipssrc channel=detections ! videoconvert ! autovideosink

Run inside the build's environment, after or before pipelines/detect.py:

    meson devenv -C build -w . /usr/bin/python3 pipelines/show-detections.py
    meson devenv -C build -w . /usr/bin/python3 pipelines/show-detections.py --display
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import List, Optional, Tuple

import gi
import numpy as np

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

import bips  # noqa: E402
import bips.gst  # noqa: E402

# (type, x, y, w, h, id, label or None, confidence or None) of one region.
RegionInfo = Tuple[str, int, int, int, int, int, Optional[str], Optional[float]]


def clock_time(t: int) -> str:
    """GStreamer's H:MM:SS.nnnnnnnnn form of a time in nanoseconds."""
    if t == Gst.CLOCK_TIME_NONE:
        return "none"
    s, ns = divmod(t, Gst.SECOND)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}.{ns:09d}"


def buffer_regions(buffer: Gst.Buffer) -> Tuple[List[RegionInfo], int]:
    """The regions of `buffer` with ids 0..n-1 (n: its number of
    GstVideoRegionOfInterestMeta), and how many others it has."""
    n = buffer.get_n_meta(GstVideo.video_region_of_interest_meta_api_get_type())
    found = []
    for rid in range(n):
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, rid)
        if roi is None:
            continue
        label, confidence = None, None
        detection = roi.get_param("detection")
        if detection is not None:
            label = detection.get_string("label")
            ok, value = detection.get_double("confidence")
            confidence = value if ok else None
        found.append((GLib.quark_to_string(roi.roi_type), roi.x, roi.y, roi.w, roi.h,
                      roi.id, label, confidence))
    return found, n - len(found)


def inference_info(buffer: Gst.Buffer) -> Optional[Gst.Structure]:
    meta = buffer.get_custom_meta("inference-info")
    return meta.get_structure() if meta is not None else None


def describe(pts: int, regions: List[RegionInfo], unnumbered: int,
             info: Optional[Gst.Structure]) -> str:
    """The line printed for one frame."""
    parts = [f"pts {clock_time(pts)}"]
    if info is not None:
        frame = info.get_value("frame") if info.has_field("frame") else None
        if frame is not None:
            parts.append(f"frame {frame}")
    text = f"{len(regions)} region{'' if len(regions) == 1 else 's'}"
    if regions:
        text += ": " + "; ".join(
            f"#{rid} {kind} ({x},{y} {w}x{h}) label={label or '-'} confidence="
            + ("-" if confidence is None else f"{confidence:.3f}")
            for kind, x, y, w, h, rid, label, confidence in regions)
    parts.append(text)
    if unnumbered:
        parts.append(f"({unnumbered} not numbered 0..n-1)")
    if info is not None and info.has_field("latency-ms"):
        parts.append(f"detector latency {info.get_value('latency-ms'):.1f} ms")
    return "  ".join(parts)


def draw_boxes(image: np.ndarray, fmt: str, regions: List[RegionInfo]) -> None:
    """Draws each region's box, 2 pixels wide, in green into `image`, an
    (H, W, C) or (H, W) array of a packed RGB or grey format, in place."""
    if image.ndim == 3 and "G" in fmt:
        color = np.zeros(image.shape[2], image.dtype)
        color[fmt.index("G")] = 255
        if "A" in fmt:
            color[fmt.index("A")] = 255
    else:
        color = 255
    h, w = image.shape[:2]
    for _kind, x, y, bw, bh, _rid, _label, _conf in regions:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(w, x + bw), min(h, y + bh)
        if x0 >= x1 or y0 >= y1:
            continue
        image[y0:min(y1, y0 + 2), x0:x1] = color
        image[max(y0, y1 - 2):y1, x0:x1] = color
        image[y0:y1, x0:min(x1, x0 + 2)] = color
        image[y0:y1, max(x0, x1 - 2):x1] = color


class Display:
    """appsrc ! videoconvert ! the chosen sink, fed with copies of the
    frames with their boxes drawn."""

    def __init__(self, sink: str):
        self.pipeline = Gst.parse_launch(
            "appsrc name=src format=time is-live=true do-timestamp=true "
            f"! videoconvert ! {sink}")
        self.src = self.pipeline.get_by_name("src")
        self.caps: Optional[Gst.Caps] = None
        self.warned = False

    def show(self, sample: Gst.Sample, regions: List[RegionInfo]) -> None:
        caps = sample.get_caps()
        layout = bips.gst.buffer_layout(sample.get_buffer(), caps)
        if layout is None or layout.planar:
            if not self.warned:
                print(f"show-detections: boxes are drawn on packed RGB or grey video only, "
                      f"not {caps.to_string()}", file=sys.stderr)
                self.warned = True
            return
        if self.caps is None or not caps.is_equal(self.caps):
            self.src.set_property("caps", caps)
            if self.caps is None:
                self.pipeline.set_state(Gst.State.PLAYING)
            self.caps = caps
        # A frame with GStreamer's default strides, since the caps alone
        # describe what is pushed: the source's (possibly padded) rows are
        # copied into it row by row.
        plain = bips.layout_for(layout.format, layout.width, layout.height)
        plane = plain.planes[0]
        out = np.zeros(plain.size, np.uint8)
        image = np.ndarray(plane.shape, np.dtype(plane.dtype), out, plane.offset, plane.strides)
        image[...] = bips.gst.sample_to_ndarray(sample)
        draw_boxes(image, layout.format, regions)
        del image
        self.src.emit("push-buffer", Gst.Buffer.new_wrapped(out.tobytes()))

    def close(self) -> None:
        self.src.emit("end-of-stream")
        self.pipeline.set_state(Gst.State.NULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", default="detections")
    parser.add_argument("--policy", default="lossless", choices=("lossless", "latest"),
                        help="lossless (default): every frame, the detector waits for this "
                             "reader; latest: the newest frame")
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    parser.add_argument("--timeout", type=int, default=30000,
                        help="ms bipssrc waits for a producer (-1: forever)")
    parser.add_argument("--display", action="store_true",
                        help="also show the video with the boxes drawn")
    parser.add_argument("--sink", default="autovideosink sync=false",
                        help="the display's sink (with --display)")
    args = parser.parse_args()

    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"bipssrc channel={args.channel} policy={args.policy} timeout={args.timeout} "
        "! appsink name=sink sync=false max-buffers=2")
    sink = pipeline.get_by_name("sink")
    bus = pipeline.get_bus()
    display = Display(args.sink) if args.display else None

    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        print("show-detections: could not start the pipeline", file=sys.stderr)
        return 1
    print(f"show-detections: reading channel '{args.channel}' ({args.policy})", flush=True)
    count = with_regions = 0
    status = 0
    try:
        while not stop and (args.frames == 0 or count < args.frames):
            sample = sink.emit("try-pull-sample", Gst.SECOND // 2)
            if sample is None:
                msg = bus.pop_filtered(Gst.MessageType.ERROR)
                if msg is not None:
                    err, debug = msg.parse_error()
                    print(f"show-detections: {err.message}\n{debug}", file=sys.stderr)
                    status = 1
                    break
                if sink.get_property("eos"):
                    break
                continue
            buffer = sample.get_buffer()
            regions, unnumbered = buffer_regions(buffer)
            print(describe(buffer.pts, regions, unnumbered, inference_info(buffer)),
                  flush=True)
            if display is not None:
                display.show(sample, regions)
            del buffer, sample  # gives the slot back
            count += 1
            with_regions += bool(regions)
    finally:
        pipeline.set_state(Gst.State.NULL)
        if display is not None:
            display.close()
    print(f"show-detections: {count} frames, {with_regions} with regions", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
