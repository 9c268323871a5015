#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes raw video frames into a bips channel from NumPy, in place (no GStreamer).
"""Publish a moving test image on a bips channel from NumPy.

Each frame is drawn straight into a slot of the channel's shared memory
through a writable ndarray view, stamped with CLOCK_MONOTONIC (the bips
convention, so consumers can measure latency) and published.

Run inside the build's environment, then read it with any consumer:

    meson devenv -C build -w . /usr/bin/python3 pipelines/numpy_producer.py --channel cam0
    meson devenv -C build -w . /usr/bin/python3 pipelines/numpy_consumer.py --channel cam0
    gst-launch-1.0 bipssrc channel=cam0 ! videoconvert ! autovideosink
"""

import argparse
import fractions
import signal
import sys
import time

import numpy as np

import bips


def draw(frame, k: int, fmt: str) -> None:
    """A bar that moves one step per frame over a dark background."""
    target = frame.array
    if isinstance(target, tuple):  # planar YUV: draw on luma, grey chroma
        luma = target.y
        luma[...] = 16
        x = (k * 4) % luma.shape[1]
        luma[:, x : x + 16] = 235
        for plane in target[1:]:
            plane[...] = 128
        return
    target[...] = 32
    x = (k * 4) % target.shape[1]
    if target.ndim == 3 and target.shape[2] >= 3:
        target[:, x : x + 16, :3] = (255, 128, 0) if fmt.startswith("RGB") else (0, 128, 255)
        if target.shape[2] == 4:
            target[..., 3] = 255
    else:
        target[:, x : x + 16] = 235


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", default="cam0")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--format", default="RGBA", choices=bips.SUPPORTED_FORMATS)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    parser.add_argument("--slots", type=int, default=None,
                        help="slots in the channel (default: the library's, 8 like bipssink's)")
    args = parser.parse_args()

    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    rate = fractions.Fraction(args.fps).limit_denominator(1001)
    producer = bips.Producer.video(args.channel, args.width, args.height, args.format,
                                   framerate=(rate.numerator, rate.denominator),
                                   slot_count=args.slots)
    print(f"bips: producing {args.format} {args.width}x{args.height} at {args.fps:g} fps on "
          f"channel '{args.channel}' ({bips.channel_path(args.channel)})", flush=True)
    period = 1.0 / args.fps
    duration = int(period * 1e9)
    start = time.monotonic()
    k = 0
    last_report, last_count = start, 0
    try:
        while not stop and (args.frames == 0 or k < args.frames):
            try:
                slot = producer.acquire(timeout=1.0)
            except bips.Timeout:
                continue  # lossless consumers are behind: try again
            with slot:
                draw(slot, k, args.format)
                slot.publish(duration=duration)  # pts: now
            k += 1
            now = time.monotonic()
            if now - last_report >= 1.0:
                print(f"published {k} frames, {(k - last_count) / (now - last_report):.1f} fps, "
                      f"{producer.consumer_count} consumer(s)", flush=True)
                last_report, last_count = now, k
            delay = start + k * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.end_of_stream()
    finally:
        producer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
