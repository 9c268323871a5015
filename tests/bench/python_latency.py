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
  mpshm    the peer: what people write by hand to share NumPy arrays between
           containers. A Python producer owns a ring of --ring
           multiprocessing.shared_memory blocks, one frame each; it writes a
           frame through a NumPy view and sends "ready (index, stamp)" over a
           socketpair; the consumer attaches to each block once by name,
           makes an (H, W, 4) ndarray over it, reads a pixel and sends
           "released (index)" back. The producer reuses a block only once it
           is released (lossless). The producer unlinks its blocks on every
           exit it sees (end, error, Ctrl-C, SIGTERM); if it is killed, its
           multiprocessing resource tracker does, and so does this script.

Latency = CLOCK_MONOTONIC when the consumer holds the array and has read
one pixel of it, minus CLOCK_MONOTONIC just before the producer's publish
(bips pts / appsrc push / mpshm's ready notice). Both ends use the same clock, so the figures are
comparable across processes. The modes take turns over --rounds rounds;
per mode it prints the median of the rounds' p50s (and each of them), and
the p99 and max over every frame. When mpshm runs too, each other mode's
p50 is also shown as a ratio to mpshm's p50 of the same run (below 1:
faster than the hand-written peer).

In the bips modes the producer is tests/bench/paced_producer, a native
process like a camera pipeline (--producer python: bips.Producer, whose own
Python call then counts as latency too).

    meson devenv -C build -w . /usr/bin/python3 tests/bench/python_latency.py
    meson test -C build --benchmark python-latency --verbose

Not a test: nothing is asserted; the numbers depend on the machine.
"""

import argparse
import itertools
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque

import numpy as np

STAMP = np.dtype("<u8")

# The peer's messages, one per SOCK_SEQPACKET packet: "frame ready" (block
# index, CLOCK_MONOTONIC ns stamped just before sending) from the producer,
# "frame released" (block index) from the consumer. READY with index
# END_OF_FRAMES ends the stream.
READY = struct.Struct("<IQ")
RELEASED = struct.Struct("<I")
END_OF_FRAMES = 0xFFFFFFFF

# The mode every other one is compared with.
PEER = "mpshm"


# ------------------------------------------------------------------ producers


def paced(args):
    """Frame numbers 0 .. frames + warmup - 1, each yielded when its frame
    is due: --fps per second on an absolute schedule from 0.2 s on."""
    period = 1.0 / args.fps
    start = time.monotonic() + 0.2
    for k in range(args.frames + args.warmup):
        delay = start + k * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield k


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
    for k in paced(args):
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
    for k in paced(args):
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


def block_names(prefix, count):
    """Names of the peer's shared-memory blocks (under /dev/shm)."""
    return [f"{prefix}-{i}" for i in range(count)]


def attach_block(name):
    """Attaches to a block another process created and owns.

    Before Python 3.13 (no `track` argument), attaching also registers the
    block with this process's resource tracker, which would unlink it when
    this process exits and warn about a leak; the producer owns the block,
    so the registration is taken back.
    """
    from multiprocessing import resource_tracker, shared_memory

    try:
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        block = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(block._name, "shared_memory")  # noqa: SLF001
        return block


def unlink_blocks(names):
    """Removes whichever of the peer's blocks still exist (a backstop for a
    producer that was killed before it could unlink them)."""
    from multiprocessing import shared_memory

    for name in names:
        try:
            block = shared_memory.SharedMemory(name=name)
        except FileNotFoundError:
            continue
        block.close()
        block.unlink()


def produce_mpshm(args) -> int:
    """The peer's producer: a ring of shared-memory blocks and a socketpair.

    The blocks are this process's: it creates them and unlinks them in the
    finally below, which every exit it sees reaches (SIGTERM is turned into
    SystemExit for that). Creating them also registers them with
    multiprocessing's resource tracker, which unlinks them if this process
    is killed outright.
    """
    from multiprocessing import shared_memory

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    link = socket.socket(fileno=args.notice_fd)
    shape = (args.height, args.width, 4)
    size = args.width * args.height * 4
    blocks, frames = [], []
    try:
        for name in block_names(args.channel, args.ring):
            blocks.append(shared_memory.SharedMemory(name=name, create=True, size=size))
        frames = [np.ndarray(shape, np.uint8, buffer=b.buf) for b in blocks]
        for index in range(args.ring):
            # Written once, so the pages are resident as a camera's
            # buffers would be.
            frames[index][...] = 0
        free = deque(range(args.ring))

        def take_releases(timeout):
            # Blocks for one release message when `timeout` is not 0, then
            # takes whatever else has arrived. False once the consumer closed
            # its end.
            link.settimeout(timeout)
            while True:
                try:
                    message = link.recv(RELEASED.size)
                except (BlockingIOError, TimeoutError):
                    return True
                if not message:
                    return False
                free.append(RELEASED.unpack(message)[0])
                link.settimeout(0)

        print("ready", flush=True)
        for k in paced(args):
            if not take_releases(0):
                return 0
            if not free:
                # Lossless: a block is reused only once the consumer is done
                # with it.
                if not take_releases(5) or not free:
                    print("mpshm: the consumer released no block in 5 s", file=sys.stderr)
                    return 1
            index = free.popleft()
            frames[index].reshape(-1)[:8].view(STAMP)[0] = k  # a frame counter, like paced_producer
            link.send(READY.pack(index, time.monotonic_ns()))
        link.send(READY.pack(END_OF_FRAMES, 0))
        # The consumer may still attach to blocks named in notices it has not
        # read yet; unlink once it has released every block (or gone).
        deadline = time.monotonic() + 10
        while len(free) < args.ring and time.monotonic() < deadline:
            if not take_releases(max(0.0, deadline - time.monotonic())):
                break
        return 0
    finally:
        frames = None  # SharedMemory.close() refuses while a view exists
        for block in blocks:
            block.close()
            block.unlink()
        link.close()


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


def consume_mpshm(args):
    """The peer's consumer: waits for a notice, views the block, reads a
    pixel, releases the block. Attaches to each block the first time it is
    named and closes them all on the way out (the producer unlinks them)."""
    link = args.notices
    link.settimeout(10)
    shape = (args.height, args.width, 4)
    blocks = {}
    out = []
    array = None
    try:
        while True:
            try:
                message = link.recv(READY.size)
            except TimeoutError:
                break
            except ConnectionResetError:
                raise RuntimeError("mpshm: the producer went away mid-stream "
                                   "(its error, if any, is above)") from None
            if not message:
                break
            index, stamp = READY.unpack(message)
            if index == END_OF_FRAMES:
                break
            block = blocks.get(index)
            if block is None:
                block = blocks[index] = attach_block(f"{args.channel}-{index}")
            array = np.ndarray(shape, np.uint8, buffer=block.buf)
            int(array[0, 0, 0])
            now = time.monotonic_ns()
            out.append(now - stamp)
            array = None
            link.send(RELEASED.pack(index))
    finally:
        array = None  # SharedMemory.close() refuses while a view exists
        for block in blocks.values():
            block.close()
    return out, 0


# ------------------------------------------------------------------ driver

_runs = itertools.count()


def run_mode(mode, args):
    # A new tag for every run: the resource tracker of a killed mpshm
    # producer unlinks its blocks some time after the kill, and must not
    # find the next run's blocks under the same names.
    tag = f"{os.getpid()}-{next(_runs)}-{mode.replace('+', '-')}"
    args.channel, args.socket = f"bench-{tag}", f"/tmp/bips-bench-{tag}.sock"
    role = {"shm": "produce-shm", "mpshm": "produce-mpshm"}.get(mode, "produce-bips")
    child_args = [sys.executable, os.path.abspath(__file__), "--role", role,
                  "--channel", args.channel, "--socket", args.socket,
                  "--frames", str(args.frames), "--warmup", str(args.warmup),
                  "--width", str(args.width), "--height", str(args.height),
                  "--fps", str(args.fps), "--ring", str(args.ring)]
    if role == "produce-bips" and args.producer == "native":
        native = os.environ.get("BIPS_PACED_PRODUCER")
        if not native:
            raise RuntimeError("BIPS_PACED_PRODUCER is not set: run inside "
                               "`meson devenv -C build`, or pass --producer python")
        child_args = [native, args.channel, str(args.width), str(args.height),
                      str(args.fps), str(args.frames + args.warmup)]
    args.notices = producer = None
    try:
        theirs = None
        if mode == "mpshm":
            args.notices, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            child_args += ["--notice-fd", str(theirs.fileno())]
        try:
            producer = subprocess.Popen(child_args, stdout=subprocess.PIPE, text=True,
                                        pass_fds=(theirs.fileno(),) if theirs else ())
        finally:
            if theirs is not None:
                theirs.close()  # the producer's end; its copy lives in the child
        if producer.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{mode}: the producer did not start")
        base = mode.split("+")[0]
        args.ahead = args.anticipate if mode.endswith("+anticipate") else 0.0
        consume = {"gi": consume_gi, "appsink": consume_appsink,
                   "appsink-signal": consume_appsink_signal, "shm": consume_shm,
                   "mpshm": consume_mpshm}[base]
        latencies, skipped = consume(args)
        producer.wait(timeout=30)
    finally:
        if producer is not None:
            if producer.poll() is None:
                # SIGTERM first, so that a producer that cleans up (the
                # mpshm one unlinks its blocks) can.
                producer.terminate()
                try:
                    producer.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    producer.kill()
            producer.wait()
        if args.notices is not None:
            args.notices.close()
        if mode == "mpshm":
            unlink_blocks(block_names(args.channel, args.ring))
        try:
            os.unlink(args.socket)
        except FileNotFoundError:
            pass
    lat = np.array(latencies[args.warmup:], dtype=np.float64) / 1e6
    return lat, skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    all_modes = ("gi", "gi+anticipate", "appsink", "appsink+anticipate", "appsink-signal",
                 "appsink-signal+anticipate", "shm", PEER)
    parser.add_argument("--mode", default="all",
                        help="all, or modes separated by commas: " + ", ".join(all_modes))
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
    parser.add_argument("--ring", type=int, default=4,
                        help="shared-memory blocks of the mpshm producer (one frame each)")
    parser.add_argument("--role", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--channel", default="", help=argparse.SUPPRESS)
    parser.add_argument("--socket", default="", help=argparse.SUPPRESS)
    parser.add_argument("--notice-fd", type=int, default=-1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ring < 1:
        parser.error(f"--ring must be at least 1, not {args.ring}")

    if args.role == "produce-bips":
        return produce_bips(args)
    if args.role == "produce-shm":
        return produce_shm(args)
    if args.role == "produce-mpshm":
        return produce_mpshm(args)

    modes = list(all_modes) if args.mode == "all" else args.mode.split(",")
    unknown = [m for m in modes if m not in all_modes]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(all_modes)}")
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
    # "x peer": a mode's p50 over the peer's p50 of this same run.
    peer_p50 = float(np.median(per_round[PEER])) if per_round.get(PEER) else None
    print(f"{'mode':<27}{'frames':>7}{'p50 ms':>9}{'x peer':>8}{'p99 ms':>9}{'max ms':>9}"
          "  p50 ms by round")
    for mode in modes:
        label = f"{mode} (peer)" if mode == PEER else mode
        if not pooled[mode]:
            print(f"{label:<27}{0:>7}  (no frames)")
            continue
        lat = np.concatenate(pooled[mode])
        p50 = float(np.median(per_round[mode]))
        ratio = "-" if peer_p50 is None or mode == PEER else f"{p50 / peer_p50:.2f}"
        rounds = "/".join(f"{v:.3f}" for v in per_round[mode])
        print(f"{label:<27}{lat.size:>7}{p50:>9.3f}{ratio:>8}"
              f"{np.percentile(lat, 99):>9.3f}{lat.max():>9.3f}  {rounds}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
