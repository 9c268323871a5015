#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Benchmark: what single Python steps cost right after a frame interval asleep.
"""The cost of single Python, GObject-Introspection and NumPy steps, cold and warm.

A paced consumer sleeps between frames, and every step it runs after the
wake-up finds the CPU caches cold. This script times single steps the way
such a consumer meets them: sleep one frame interval (--sleep, default
1/30 s), run the step once, take the time; median over --samples. "warm"
is the same step run back to back. It explains the Python rows of
docs/performance.md: each GI call costs tens of microseconds cold, so a
path's latency is set by how many distinct steps it runs, not by the
transport.

    meson devenv -C build -w . /usr/bin/python3 tests/bench/python_cold_calls.py

Not a test: nothing is asserted; the numbers depend on the machine.
"""

import argparse
import os
import socket
import statistics
import time

import numpy as np

import bips
from bips._views import region, shaped


def cold(step, sleep_s: float, samples: int) -> float:
    """Median µs of `step` run once after each sleep."""
    times = []
    for _ in range(samples):
        time.sleep(sleep_s)
        t0 = time.monotonic_ns()
        step()
        times.append(time.monotonic_ns() - t0)
    return statistics.median(times) / 1000


def warm(step, runs: int = 1000) -> float:
    """Mean µs of `step` run back to back."""
    step()
    t0 = time.monotonic_ns()
    for _ in range(runs):
        step()
    return (time.monotonic_ns() - t0) / runs / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=1 / 30, help="seconds asleep before a step")
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()

    channel = f"cold-calls-{os.getpid()}"
    with bips.Producer.video(channel, 3840, 2160, "RGBA") as producer, \
            bips.Consumer(channel, timeout=5) as consumer:
        producer.write(np.zeros((2160, 3840, 4), np.uint8))
        frame = consumer.next(timeout=5)
        gframe, gconsumer = frame._gframe, consumer.gobject
        empty = bips.Bips.Frame.new()
        address, size, layout = frame.address, frame.size, frame.layout
        flat, _alive = region(address, size, None)
        # The hand-rolled peer's wake-up: a notice read from a socket (sent
        # here beforehand, so the step does not wait).
        notices, sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

        def read_notice():
            sender.send(b"0123456789abcdef")
            return notices.recv(64)

        steps = {
            "a Python call that does nothing": lambda: None,
            "socket: send and recv a 16-byte notice": read_notice,
            "GI: a getter returning an int": gconsumer.get_received,
            "GI: poll_next_into, nothing pending": lambda: gconsumer.poll_next_into(empty, 0),
            "GI: a frame's get_view": gframe.get_view,
            "NumPy: np.ndarray over a frame": lambda: np.ndarray(
                (2160, 3840, 4), np.uint8, flat, 0, (15360, 4, 1)),
            "bips: region + shaped array + a pixel": lambda: int(
                shaped(region(address, size, None)[0], layout)[0, 0, 0]),
        }
        print(f"each step once after {args.sleep * 1000:.1f} ms asleep (median of "
              f"{args.samples}), and back to back")
        print(f"{'step':42s} {'cold us':>8s} {'warm us':>8s}")
        for name, step in steps.items():
            print(f"{name:42s} {cold(step, args.sleep, args.samples):8.1f} {warm(step):8.2f}")
        frame.release()
        notices.close()
        sender.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
