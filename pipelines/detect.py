#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Finds bright objects in a bips channel with NumPy and publishes them as regions of interest.
"""Detect bright objects in one channel and publish them into another.

    channel --input (cam0)  ->  bips.Consumer(policy="latest"), zero-copy view
      -> a threshold detector in NumPy: luminance above --threshold, split
         into 8-connected objects, one box each; confidence = the object's
         mean luminance / 255 (a solid white object: 1.0)
      -> channel --output (detections): a copy of the frame with the same
         caps and timestamps, one bips.Region("ball", ...) per object (params
         {"detection": {"label", "confidence"}}) and a custom meta
         "inference-info" (model, frame, objects, inference-ms, latency-ms)

No model to download: the objects are what `videotestsrc pattern=ball` draws
(a white ball on black), or anything bright on a dark background. Regions
are numbered 0..n-1 from the top-left, so a GStreamer consumer can find
each GstVideoRegionOfInterestMeta by id (pipelines/show-detections.py).
Reads packed 4-byte RGB formats: RGBA, BGRA, ARGB, ABGR, RGBx, BGRx, xRGB,
xBGR.

Run inside the build's environment (pipelines/detections-demo.sh runs the
whole chain without a display):

    gst-launch-1.0 videotestsrc pattern=ball is-live=true \\
        ! video/x-raw,format=RGBA,width=320,height=240,framerate=30/1 ! bipssink channel=cam0
    meson devenv -C build -w . /usr/bin/python3 pipelines/detect.py --input cam0
    meson devenv -C build -w . /usr/bin/python3 pipelines/show-detections.py

The input may stop and come back (it reattaches and follows a new format);
its end of stream, --frames N or Ctrl-C end the output with an end of
stream, so the consumers of the results channel end too.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

import bips
from bips.video import parse_caps

# Where R, G and B are in each packed 4-byte format this detector reads.
RGB_INDEX = {
    "RGBA": (0, 1, 2), "RGBx": (0, 1, 2),
    "BGRA": (2, 1, 0), "BGRx": (2, 1, 0),
    "ARGB": (1, 2, 3), "xRGB": (1, 2, 3),
    "ABGR": (3, 2, 1), "xBGR": (3, 2, 1),
}
SUPPORTED = tuple(RGB_INDEX)

# Exit status for an input this detector cannot read.
EXIT_UNSUPPORTED = 2


@dataclass
class Detection:
    """One object: its bounding box in pixels ((x, y) its top-left pixel,
    w and h counted in pixels), how many pixels it has and its confidence
    in [0, 1]."""

    x: int
    y: int
    w: int
    h: int
    area: int
    confidence: float


def luminance(image: np.ndarray, fmt: str) -> np.ndarray:
    """(H, W) uint8 luma (BT.601 weights, in integers) of an (H, W, 4)
    view in `fmt`. Reads the view once; returns a new array."""
    r, g, b = (image[..., i].astype(np.uint16) for i in RGB_INDEX[fmt])
    return ((77 * r + 150 * g + 29 * b) >> 8).astype(np.uint8)


def _runs(mask: np.ndarray):
    """The horizontal runs of True in `mask`, in row-major order:
    (rows, starts, ends) with `ends` one past the last column."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)  # column c of step: padded[c + 1] - padded[c]
    rows, starts = np.nonzero(step == 1)
    _rows, ends = np.nonzero(step == -1)
    return rows, starts, ends


def _label_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A component number (0..k-1) for each run: runs on adjacent rows that
    touch, diagonally included (8-connectivity), get the same number."""
    n = len(rows)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # first[r]..first[r + 1] are the runs of row r.
    first = np.searchsorted(rows, np.arange(int(rows[-1]) + 2)) if n else np.zeros(1, int)
    s, e = starts.tolist(), ends.tolist()
    for r in range(1, len(first) - 1):
        i, i_end = int(first[r - 1]), int(first[r])
        j, j_end = int(first[r]), int(first[r + 1])
        # Sweep both rows' runs left to right; two runs touch when each
        # starts at most one column after the other ends.
        while i < i_end and j < j_end:
            if s[i] <= e[j] and s[j] <= e[i]:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if e[i] < e[j]:
                i += 1
            else:
                j += 1
    roots = np.fromiter((find(i) for i in range(n)), dtype=np.int64, count=n)
    return np.unique(roots, return_inverse=True)[1].reshape(-1)


def detect(image: np.ndarray, fmt: str, threshold: int = 128,
           min_area: int = 16, max_objects: int = 32) -> List[Detection]:
    """The objects of an (H, W, 4) `fmt` image: 8-connected pixels whose
    luma is above `threshold`, at least `min_area` pixels each; the
    `max_objects` largest, ordered top to bottom, then left to right.
    Only reads `image` (it may be a read-only view of a channel)."""
    luma = luminance(image, fmt)
    rows, starts, ends = _runs(luma > threshold)
    if len(rows) == 0:
        return []
    label = _label_runs(rows, starts, ends)
    k = int(label.max()) + 1
    lengths = ends - starts
    # A run's luma sum from the row's running sums.
    sums = np.zeros((luma.shape[0], luma.shape[1] + 1), np.int64)
    np.cumsum(luma, axis=1, out=sums[:, 1:])
    run_sum = sums[rows, ends] - sums[rows, starts]

    area = np.bincount(label, weights=lengths, minlength=k).astype(np.int64)
    total = np.bincount(label, weights=run_sum, minlength=k)
    x0 = np.full(k, np.iinfo(np.int64).max)
    y0 = np.full(k, np.iinfo(np.int64).max)
    x1 = np.zeros(k, np.int64)
    y1 = np.zeros(k, np.int64)
    np.minimum.at(x0, label, starts)
    np.maximum.at(x1, label, ends)
    np.minimum.at(y0, label, rows)
    np.maximum.at(y1, label, rows + 1)

    keep = [c for c in range(k) if area[c] >= min_area]
    keep = sorted(keep, key=lambda c: -area[c])[:max_objects]
    keep.sort(key=lambda c: (y0[c], x0[c]))
    return [Detection(int(x0[c]), int(y0[c]), int(x1[c] - x0[c]), int(y1[c] - y0[c]),
                      int(area[c]), round(float(total[c]) / (255.0 * area[c]), 3))
            for c in keep]


def regions(found: List[Detection], label: str = "ball") -> List[bips.Region]:
    """The regions to publish: ids 0..n-1 in `found`'s order, no parent."""
    return [bips.Region(label, d.x, d.y, d.w, d.h, id=k,
                        params={"detection": {"label": label, "confidence": d.confidence}})
            for k, d in enumerate(found)]


def _framerate(stream_info: str) -> Optional[Tuple[int, int]]:
    """The framerate of raw-video caps text, or None."""
    _media, fields = parse_caps(stream_info)
    text = str(fields.get("framerate", ""))
    num, _, den = text.partition("/")
    if num.isdigit() and den.isdigit() and int(den) > 0:
        return int(num), int(den)
    return None


class Output:
    """The results channel, opened for the input's format and opened again
    when that format changes (a new producer on the input)."""

    def __init__(self, channel: str):
        self.channel = channel
        self.producer: Optional[bips.Producer] = None
        self._key = None

    def follow(self, layout: bips.VideoLayout, stream_info: str) -> bips.Producer:
        rate = _framerate(stream_info)
        key = (layout.format, layout.width, layout.height, rate)
        if key != self._key:
            if self.producer is not None:
                # Its consumers see the producer go and wait for the next.
                self.producer.close()
                self.producer = None
            self.producer = bips.Producer.video(self.channel, layout.width, layout.height,
                                                layout.format, framerate=rate)
            self._key = key
            print(f"detect: publishing {layout.format} {layout.width}x{layout.height} on "
                  f"channel '{self.channel}'", flush=True)
        return self.producer

    def close(self, end_of_stream: bool) -> None:
        if self.producer is None:
            return
        if end_of_stream:
            self.producer.end_of_stream()
        self.producer.close()
        self.producer = None


def unsupported(channel: str, layout: Optional[bips.VideoLayout], stream_info: str) -> str:
    what = layout.format if layout is not None else (stream_info or "no stream info")
    return (f"detect: channel '{channel}' carries {what}; this detector reads packed "
            f"4-byte RGB video only: {', '.join(SUPPORTED)} (convert upstream, e.g. "
            "`videoconvert ! video/x-raw,format=RGBA ! bipssink`)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="cam0", help="channel to read (default cam0)")
    parser.add_argument("--output", default="detections",
                        help="channel to publish the results into (default detections)")
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    parser.add_argument("--threshold", type=int, default=128,
                        help="luma (0-255) above which a pixel belongs to an object")
    parser.add_argument("--min-area", type=int, default=16,
                        help="smallest object, in pixels")
    parser.add_argument("--max-objects", type=int, default=32,
                        help="most objects per frame (the largest are kept)")
    parser.add_argument("--label", default="ball", help="type and label of each region")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds to wait for the input's producer (also after it restarts)")
    args = parser.parse_args()

    consumer = None
    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True
        if consumer is not None:
            consumer.interrupt()  # wakes a blocked next()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    print(f"detect: waiting for channel '{args.input}'", flush=True)
    try:
        consumer = bips.Consumer(args.input, policy="latest", timeout=args.wait)
    except bips.Timeout as exc:
        print(f"detect: {exc}", file=sys.stderr)
        return 1
    print(f"detect: reading channel '{args.input}': {consumer.stream_info or '(no caps yet)'}",
          flush=True)
    output = Output(args.output)
    # Open the results channel now when the input's format is known, so
    # that its consumers can attach before the first frame.
    layout = consumer.layout
    if layout is not None and layout.format in SUPPORTED:
        output.follow(layout, consumer.stream_info)

    count = found_in = 0
    last_report, last_count = time.monotonic(), 0
    # The output ends with an end of stream when this loop ends as asked
    # (the input ended, --frames, Ctrl-C); after an error it just closes.
    end_of_stream = False
    status = 0
    try:
        while not stop and (args.frames == 0 or count < args.frames):
            try:
                frame = consumer.next(timeout=1.0)
            except bips.Timeout:
                continue  # no frame yet, or interrupted by a signal
            except bips.EndOfStream:
                print("detect: end of stream on the input", flush=True)
                break
            except bips.ProducerGone as exc:
                print(f"detect: {exc}", flush=True)
                try:
                    consumer.reattach(timeout=args.wait)
                except bips.Timeout as exc2:
                    print(f"detect: {exc2}", file=sys.stderr)
                    status = 1
                    break
                print(f"detect: attached again: {consumer.stream_info}", flush=True)
                continue
            with frame:
                received = time.monotonic_ns()
                layout = frame.layout
                if layout is None or layout.format not in SUPPORTED:
                    print(unsupported(args.input, layout, frame.stream_info), file=sys.stderr)
                    status = EXIT_UNSUPPORTED
                    break
                producer = output.follow(layout, frame.stream_info)
                image = frame.array
                objects = detect(image, layout.format, args.threshold, args.min_area,
                                 args.max_objects)
                inferred = time.monotonic_ns()
                info = {"model": "threshold", "frame": frame.sequence, "objects": len(objects),
                        "inference-ms": round((inferred - received) / 1e6, 3)}
                if frame.pts is not None:
                    info["latency-ms"] = round((inferred - frame.pts) / 1e6, 3)
                # The copy is the only write: the input frame stays as its
                # producer published it.
                with producer.acquire() as slot:
                    slot.array[...] = image
                    slot.publish(pts=bips.TIME_NONE if frame.pts is None else frame.pts,
                                 dts=frame.dts, duration=frame.duration,
                                 regions=regions(objects, args.label),
                                 custom={"inference-info": info})
                del image
            count += 1
            found_in += bool(objects)
            now = time.monotonic()
            if now - last_report >= 1.0:
                print(f"detect: {(count - last_count) / (now - last_report):5.1f} frames/s, "
                      f"{len(objects)} object(s) in the last, skipped {consumer.skipped}",
                      flush=True)
                last_report, last_count = now, count
        end_of_stream = status == 0
    finally:
        output.close(end_of_stream)
        consumer.close()
    print(f"detect: {count} frames, objects in {found_in}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
