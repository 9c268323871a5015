#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Reads a bips channel as zero-copy NumPy arrays and reports rate and latency (no GStreamer).
"""Read a bips channel as read-only NumPy views and print what arrives.

Works with any producer: numpy_producer.py, a C++ program, or a GStreamer
pipeline ending in bipssink, e.g.

    gst-launch-1.0 videotestsrc is-live=true ! video/x-raw,format=RGBA,width=1280,height=720 \\
        ! bipssink channel=cam0
    meson devenv -C build -w . /usr/bin/python3 pipelines/numpy_consumer.py --channel cam0

Every second it prints frames/s, the latency from the producer's
timestamp to the array being in hand (p50/p99), the mean pixel value (so
the data is really read) and what a `latest` consumer skipped.
"""

import argparse
import signal
import sys
import time

import numpy as np

import bips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", default="cam0")
    parser.add_argument("--policy", default="latest", choices=("latest", "lossless"))
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds to wait for a producer (also after it restarts)")
    parser.add_argument("--anticipate", type=float, default=0.0,
                        help="for a paced camera: wake this many seconds before each "
                             "frame is due, warmed up and busy-waiting (e.g. 0.001; "
                             "lower latency for a little CPU)")
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

    consumer = bips.Consumer(args.channel, args.policy, timeout=args.wait,
                             anticipate=args.anticipate)
    print(f"bips: reading channel '{args.channel}' ({args.policy}), stream: "
          f"{consumer.stream_info or '(none yet)'}", flush=True)
    count, latencies = 0, []
    last_report, last_count = time.monotonic(), 0
    try:
        while not stop and (args.frames == 0 or count < args.frames):
            try:
                frame = consumer.next(timeout=1.0)
            except bips.Timeout:
                continue
            except bips.EndOfStream:
                print("end of stream")
                break
            except bips.ProducerGone:
                print("producer gone; waiting for a new one", flush=True)
                consumer.reattach(timeout=args.wait)
                print(f"attached to epoch {consumer.epoch}: {consumer.stream_info}", flush=True)
                continue
            with frame:
                view = frame.array
                if frame.pts is not None:
                    latencies.append(time.monotonic_ns() - frame.pts)
                first = view[0] if isinstance(view, tuple) else view
                mean = float(first[::8, ::8].mean()) if first.ndim >= 2 else float(first.mean())
                shape = tuple(p.shape for p in view) if isinstance(view, tuple) else view.shape
                del view, first
            count += 1
            now = time.monotonic()
            if now - last_report >= 1.0:
                lat = np.array(latencies) / 1e6 if latencies else np.array([np.nan])
                print(f"{(count - last_count) / (now - last_report):6.1f} fps  shape {shape}  "
                      f"latency p50 {np.percentile(lat, 50):.3f} ms p99 "
                      f"{np.percentile(lat, 99):.3f} ms  mean {mean:6.1f}  "
                      f"skipped {consumer.skipped}", flush=True)
                last_report, last_count, latencies = now, count, []
    finally:
        consumer.close()
    print(f"received {consumer.received} frames, skipped {consumer.skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
