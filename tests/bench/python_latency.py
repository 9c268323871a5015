#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Benchmark: latency from a producer's publish to a NumPy array in a Python consumer's hand.
"""Publish-to-ndarray latency of Python consumers, 4K RGBA paced at 30 fps.

Modes (each with its own producer process, paced at --fps):

  gi       paced_producer (C++)       -> bips.Consumer (GI) -> frame.array
  appsink  paced_producer (C++)       -> bipssrc ! appsink  -> bips.gst.sample_to_ndarray
  appsink-signal  the same, handled in appsink's new-sample signal (in
           bipssrc's streaming thread) instead of a pulling Python thread
  +anticipate  the consumer wakes --anticipate seconds before a frame is due
  shm      appsrc ! shmsink (Python)  -> shmsrc ! appsink   -> bips.gst.sample_to_ndarray
           (GStreamer's own shared-memory pair, for scale; shmsink copies each
           frame into its area, and the timestamp travels in the frame's
           first 8 bytes because shm carries no buffer metadata)

Latency = CLOCK_MONOTONIC when the consumer holds the array and has read
one pixel of it, minus CLOCK_MONOTONIC just before the producer's publish
(bips pts / appsrc push). Both ends use the same clock, so the figures are
comparable across processes. The modes take turns over --rounds rounds;
per mode it prints the median of the rounds' p50s (and each of them), and
the p99 and max over every frame.

In the bips modes the producer is tests/bench/paced_producer, a native
process like a camera pipeline (--producer python: bips.Producer, whose own
Python call then counts as latency too).

    meson devenv -C build -w . /usr/bin/python3 tests/bench/python_latency.py
    meson test -C build --benchmark python-latency --verbose

Not a test: nothing is asserted; the numbers depend on the machine.
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

STAMP = np.dtype("<u8")


# ------------------------------------------------------------------ producers


def produce_bips(args) -> int:
    import bips

    producer = bips.Producer.video(args.channel, args.width, args.height, "RGBA",
                                   framerate=(int(args.fps), 1), slot_count=4)
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while producer.consumer_count < 1:
        if time.monotonic() > deadline:
            print("no consumer attached", file=sys.stderr)
            return 1
        time.sleep(0.001)
    period = 1.0 / args.fps
    start = time.monotonic() + 0.2
    for k in range(args.frames + args.warmup):
        delay = start + k * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        slot = producer.acquire(timeout=5)
        slot.data[:8].view(STAMP)[0] = k  # a frame counter; the pixels are left as they are
        slot.publish(pts=time.monotonic_ns())
    producer.end_of_stream()
    deadline = time.monotonic() + 10
    while producer.consumer_count > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    producer.close()
    return 0


def produce_shm(args) -> int:
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    size = args.width * args.height * 4
    pipeline = Gst.parse_launch(
        f"appsrc name=src is-live=true format=time "
        f"caps=video/x-raw,format=RGBA,width={args.width},height={args.height},"
        f"framerate={int(args.fps)}/1 ! "
        f"shmsink socket-path={args.socket} shm-size={size * 6} wait-for-connection=true "
        "sync=false")
    src = pipeline.get_by_name("src")
    # Recycled buffers, so their pages stay resident as a camera's would
    # (fresh 32 MiB allocations page-fault on every frame).
    pool = Gst.BufferPool()
    config = pool.get_config()
    Gst.BufferPool.config_set_params(config, None, size, 4, 8)
    pool.set_config(config)
    pool.set_active(True)
    pipeline.set_state(Gst.State.PLAYING)
    print("ready", flush=True)
    period = 1.0 / args.fps
    start = time.monotonic() + 0.2
    for k in range(args.frames + args.warmup):
        delay = start + k * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ret, buffer = pool.acquire_buffer(None)
        if ret != Gst.FlowReturn.OK:
            break
        ok, info = buffer.map(Gst.MapFlags.WRITE)
        np.frombuffer(info.data, STAMP, count=1)[0] = time.monotonic_ns()
        buffer.unmap(info)
        if src.emit("push-buffer", buffer) != Gst.FlowReturn.OK:
            break
    src.emit("end-of-stream")
    pipeline.get_bus().timed_pop_filtered(10 * Gst.SECOND,
                                          Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    pool.set_active(False)
    return 0


# ------------------------------------------------------------------ consumers


def consume_gi(args):
    import bips

    out = []
    with bips.Consumer(args.channel, args.policy, timeout=20,
                       anticipate=args.ahead) as consumer:
        while True:
            try:
                frame = consumer.next(timeout=10)
            except bips.EndOfStream:
                break
            with frame:
                array = frame.array
                int(array[0, 0, 0])
                now = time.monotonic_ns()
                out.append(now - frame.pts)
                del array
        skipped = consumer.skipped
    return out, skipped


def _consume_appsink(description, stamp_of):
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    import bips.gst

    Gst.init(None)
    pipeline = Gst.parse_launch(description)
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    out = []
    try:
        while True:
            sample = sink.emit("try-pull-sample", 10 * Gst.SECOND)
            if sample is None:
                break
            array = bips.gst.sample_to_ndarray(sample)
            int(array[0, 0, 0])
            now = time.monotonic_ns()
            out.append(now - stamp_of(sample, array, pipeline))
            del array, sample
    finally:
        pipeline.set_state(Gst.State.NULL)
    return out


def consume_appsink_signal(args):
    """appsink with emit-signals: the sample is handled in bipssrc's own
    streaming thread (one wake-up per frame instead of two)."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    import bips.gst

    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"bipssrc channel={args.channel} policy={args.policy} timeout=20000 "
        f"anticipate={int(args.ahead * 1e6)} ! "
        "appsink name=sink sync=false max-buffers=1 drop=false emit-signals=true")
    sink = pipeline.get_by_name("sink")
    out = []

    def on_sample(appsink):
        sample = appsink.emit("pull-sample")
        array = bips.gst.sample_to_ndarray(sample)
        int(array[0, 0, 0])
        now = time.monotonic_ns()
        out.append(now - (sample.get_buffer().pts + pipeline.get_base_time()))
        del array, sample
        return Gst.FlowReturn.OK

    sink.connect("new-sample", on_sample)
    pipeline.set_state(Gst.State.PLAYING)
    try:
        pipeline.get_bus().timed_pop_filtered(
            120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    finally:
        pipeline.set_state(Gst.State.NULL)
    return out, 0


def consume_appsink(args):
    def stamp(sample, _array, pipeline):
        return sample.get_buffer().pts + pipeline.get_base_time()

    return _consume_appsink(
        f"bipssrc channel={args.channel} policy={args.policy} timeout=20000 "
        f"anticipate={int(args.ahead * 1e6)} ! "
        "appsink name=sink sync=false max-buffers=1 drop=false", stamp), 0


def consume_shm(args):
    def stamp(_sample, array, _pipeline):
        return int(array.reshape(-1)[:8].view(STAMP)[0])

    return _consume_appsink(
        f"shmsrc socket-path={args.socket} is-live=true ! "
        f"capsfilter caps=video/x-raw,format=RGBA,width={args.width},height={args.height},"
        f"framerate={int(args.fps)}/1 ! appsink name=sink sync=false max-buffers=1 drop=false",
        stamp), 0


# ------------------------------------------------------------------ driver


def run_mode(mode, args):
    tag = f"{os.getpid()}-{mode.replace('+', '-')}"
    child_args = [sys.executable, os.path.abspath(__file__), "--role",
                  "produce-shm" if mode == "shm" else "produce-bips",
                  "--channel", f"bench-{tag}", "--socket", f"/tmp/bips-bench-{tag}.sock",
                  "--frames", str(args.frames), "--warmup", str(args.warmup),
                  "--width", str(args.width), "--height", str(args.height),
                  "--fps", str(args.fps)]
    if mode != "shm" and args.producer == "native":
        native = os.environ.get("BIPS_PACED_PRODUCER")
        if not native:
            raise RuntimeError("BIPS_PACED_PRODUCER is not set: run inside "
                               "`meson devenv -C build`, or pass --producer python")
        child_args = [native, f"bench-{tag}", str(args.width), str(args.height),
                      str(args.fps), str(args.frames + args.warmup)]
    producer = subprocess.Popen(child_args, stdout=subprocess.PIPE, text=True)
    try:
        if producer.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{mode}: the producer did not start")
        args.channel, args.socket = f"bench-{tag}", f"/tmp/bips-bench-{tag}.sock"
        base = mode.split("+")[0]
        args.ahead = args.anticipate if mode.endswith("+anticipate") else 0.0
        consume = {"gi": consume_gi, "appsink": consume_appsink,
                   "appsink-signal": consume_appsink_signal, "shm": consume_shm}[base]
        latencies, skipped = consume(args)
        producer.wait(timeout=30)
    finally:
        producer.kill()
        producer.wait()
        try:
            os.unlink(f"/tmp/bips-bench-{tag}.sock")
        except FileNotFoundError:
            pass
    lat = np.array(latencies[args.warmup:], dtype=np.float64) / 1e6
    return lat, skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    all_modes = ("gi", "gi+anticipate", "appsink", "appsink+anticipate", "appsink-signal",
                 "appsink-signal+anticipate", "shm")
    parser.add_argument("--mode", default="all", choices=("all",) + all_modes)
    parser.add_argument("--anticipate", type=float, default=0.001,
                        help="seconds the +anticipate modes wake before a frame is due")
    parser.add_argument("--frames", type=int, default=200,
                        help="measured frames per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every mode, in turn")
    parser.add_argument("--warmup", type=int, default=15, help="frames not counted")
    parser.add_argument("--width", type=int, default=3840)
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--producer", default="native", choices=("native", "python"),
                        help="who publishes in the bips modes: tests/bench/paced_producer "
                             "(C++, like a camera process) or bips.Producer in Python")
    parser.add_argument("--policy", default="lossless", choices=("lossless", "latest"))
    parser.add_argument("--role", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--channel", default="", help=argparse.SUPPRESS)
    parser.add_argument("--socket", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role == "produce-bips":
        return produce_bips(args)
    if args.role == "produce-shm":
        return produce_shm(args)

    modes = list(all_modes) if args.mode == "all" else [args.mode]
    print(f"publish -> ndarray latency, RGBA {args.width}x{args.height} "
          f"({args.width * args.height * 4 / 2**20:.1f} MiB/frame) at {args.fps:g} fps, "
          f"{args.frames} frames per mode and round, {args.rounds} rounds, "
          f"consumer policy {args.policy}, {args.producer} producer")
    # The modes take turns, one run each per round, so that every mode
    # sees the same spells of a busy machine; a mode's figure is the median
    # of its per-round p50s.
    per_round = {mode: [] for mode in modes}
    pooled = {mode: [] for mode in modes}
    for rnd in range(args.rounds):
        for mode in modes:
            lat, _skipped = run_mode(mode, args)
            if lat.size:
                per_round[mode].append(float(np.percentile(lat, 50)))
                pooled[mode].append(lat)
            print(f"round {rnd + 1} {mode:<26}"
                  + (f"p50 {per_round[mode][-1]:.3f} ms" if lat.size else "no frames"),
                  flush=True)
    print(f"{'mode':<27}{'frames':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  p50 ms by round")
    for mode in modes:
        if not pooled[mode]:
            print(f"{mode:<27}{0:>7}  (no frames)")
            continue
        lat = np.concatenate(pooled[mode])
        rounds = "/".join(f"{v:.3f}" for v in per_round[mode])
        print(f"{mode:<27}{lat.size:>7}{np.median(per_round[mode]):>9.3f}"
              f"{np.percentile(lat, 99):>9.3f}{lat.max():>9.3f}  {rounds}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
