#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Producer and consumer of stamped frames for tests/bridge.sh.

`produce` publishes a live videotestsrc picture on a channel through
bipssink, with the CLOCK_MONOTONIC time of publication (in microseconds,
40 bits) drawn into the top rows as black and white blocks that survive
lossy coding: one row of blocks for the bits, one for their complement.

`consume` reads a channel through bipssrc, checks the caps, reads the stamp
back from each frame and prints one JSON line: frames, caps, the latency
from publication on the first channel to arrival here (median, p95, max;
both ends read the same CLOCK_MONOTONIC, which network namespaces share),
and the spacing of the PTS bipssrc gave the frames.

Needs Debian's /usr/bin/python3 with python3-gi, gir1.2-gstreamer-1.0 and
python3-numpy, and the bips plugin on GST_PLUGIN_PATH.
"""

import argparse
import json
import signal
import statistics
import sys
import time

import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

BITS = 40
MASK = (1 << BITS) - 1


def now_us() -> int:
    return time.monotonic_ns() // 1000


def block_size(width: int) -> int:
    return width // BITS


def draw_stamp(rgba: np.ndarray, value: int) -> None:
    b = block_size(rgba.shape[1])
    for i in range(BITS):
        bit = (value >> (BITS - 1 - i)) & 1
        rgba[0:b, i * b:(i + 1) * b, :3] = 255 if bit else 0
        rgba[b:2 * b, i * b:(i + 1) * b, :3] = 0 if bit else 255
    rgba[0:2 * b, :, 3] = 255


def read_stamp(plane: np.ndarray) -> int | None:
    """plane: 2-D array of one byte per pixel (luma, or a channel of RGB)."""
    b = block_size(plane.shape[1])
    m = b // 4
    value = 0
    for i in range(BITS):
        top = plane[m:b - m, i * b + m:(i + 1) * b - m].mean()
        bottom = plane[b + m:2 * b - m, i * b + m:(i + 1) * b - m].mean()
        bit = top > 128
        if bit == (bottom > 128):
            return None  # the complement does not match: not a readable stamp
        value = (value << 1) | int(bit)
    return value


def stop_on_signals(loop_flag: dict) -> None:
    def on_signal(*_):
        loop_flag["stop"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def produce(args) -> int:
    caps = (f"video/x-raw,format=RGBA,width={args.width},height={args.height},"
            f"framerate={args.fps}/1")
    source = Gst.parse_launch(
        f"videotestsrc is-live=true pattern={args.pattern} horizontal-speed=4 "
        f"! {caps} ! appsink name=out sync=false max-buffers=2 drop=true")
    sink = Gst.parse_launch(
        f"appsrc name=in is-live=true format=time do-timestamp=true caps={caps} "
        f"! bipssink channel={args.channel} sync=false")
    out = source.get_by_name("out")
    appsrc = sink.get_by_name("in")
    sink.set_state(Gst.State.PLAYING)
    source.set_state(Gst.State.PLAYING)
    flag = {"stop": False}
    stop_on_signals(flag)
    frames = 0
    deadline = time.monotonic() + args.seconds if args.seconds else None
    while not flag["stop"] and (deadline is None or time.monotonic() < deadline):
        sample = out.emit("try-pull-sample", 100 * Gst.MSECOND)
        if sample is None:
            continue
        data = bytearray(sample.get_buffer().extract_dup(0, args.width * args.height * 4))
        rgba = np.frombuffer(data, dtype=np.uint8).reshape(args.height, args.width, 4)
        draw_stamp(rgba, now_us() & MASK)
        if appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(bytes(data))) != Gst.FlowReturn.OK:
            break
        frames += 1
        for message in iter(lambda: sink.get_bus().pop_filtered(Gst.MessageType.ERROR), None):
            err, dbg = message.parse_error()
            print(f"bridge_probe produce: {err.message} ({dbg})", file=sys.stderr)
            return 1
    source.set_state(Gst.State.NULL)
    sink.set_state(Gst.State.NULL)
    print(f"bridge_probe produce: published {frames} frames", file=sys.stderr)
    return 0


def stamp_plane(buffer, caps_struct, width: int) -> np.ndarray | None:
    """The rows that hold the stamp, one byte per pixel."""
    fmt = caps_struct.get_string("format")
    rows = 2 * block_size(width)
    ok, info = buffer.map(Gst.MapFlags.READ)
    if not ok:
        return None
    try:
        data = np.frombuffer(info.data, dtype=np.uint8)
        if fmt in ("RGBA", "BGRA", "RGBx", "BGRx", "xRGB", "xBGR", "ARGB", "ABGR", "AYUV"):
            # black and white blocks: every colour channel has the same value
            channel = 1 if fmt.startswith(("x", "A")) else 0
            plane = data[: width * rows * 4].reshape(rows, width, 4)[:, :, channel]
        elif fmt in ("I420", "YV12", "NV12", "NV21", "Y42B", "Y444", "GRAY8"):
            plane = data[: width * rows].reshape(rows, width)
        else:
            return None
        return plane.copy()
    finally:
        buffer.unmap(info)


def read_counter(path: str | None) -> int:
    if not path:
        return 0
    with open(path) as f:
        return int(f.read())


def consume(args) -> int:
    pipeline = Gst.parse_launch(
        f"bipssrc channel={args.channel} policy=lossless timeout={int(args.timeout * 1000)} "
        "! appsink name=out sync=false max-buffers=4")
    out = pipeline.get_by_name("out")
    pipeline.set_state(Gst.State.PLAYING)
    flag = {"stop": False}
    stop_on_signals(flag)
    clock = None
    latencies, lags, intervals = [], [], []
    frames = unreadable = 0
    caps_seen = None
    caps_ok = True
    last_pts = None
    start = time.monotonic()
    first = None
    errors = []
    window = None
    while not flag["stop"]:
        elapsed = time.monotonic() - start
        if first is None and elapsed > args.timeout:
            errors.append(f"no frame in {args.timeout:g} s")
            break
        if first is not None and time.monotonic() - first > args.warmup + args.seconds:
            break
        message = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        if message is not None:
            err, dbg = message.parse_error()
            errors.append(f"{err.message} ({dbg})")
            break
        sample = out.emit("try-pull-sample", 100 * Gst.MSECOND)
        if sample is None:
            continue
        arrival = now_us()
        if first is None:
            first = time.monotonic()
            clock = pipeline.get_clock()
        buffer = sample.get_buffer()
        s = sample.get_caps().get_structure(0)
        width, height = s.get_value("width"), s.get_value("height")
        _, fn, fd = s.get_fraction("framerate")
        seen = {"format": s.get_string("format"), "width": width, "height": height,
                "framerate": f"{fn}/{fd}"}
        if caps_seen is None:
            caps_seen = seen
        if seen != args.expect:
            caps_ok = False
            caps_seen = seen
        if time.monotonic() - first < args.warmup:
            continue
        if window is None:
            window = (time.monotonic(), read_counter(args.rx_bytes))
        frames += 1
        running = clock.get_time() - pipeline.get_base_time()
        pts = buffer.pts
        if pts != Gst.CLOCK_TIME_NONE:
            lags.append((running - pts) / 1e6)
            if last_pts is not None:
                intervals.append((pts - last_pts) / 1e6)
            last_pts = pts
        plane = stamp_plane(buffer, s, width)
        stamp = read_stamp(plane) if plane is not None else None
        if stamp is None:
            unreadable += 1
            continue
        latency = ((arrival & MASK) - stamp) & MASK
        if latency > 60_000_000:  # more than a minute: a misread stamp
            unreadable += 1
            continue
        latencies.append(latency / 1000)
    mbit_s = None
    if window is not None and args.rx_bytes:
        elapsed = time.monotonic() - window[0]
        mbit_s = round((read_counter(args.rx_bytes) - window[1]) * 8 / elapsed / 1e6, 2)
    pipeline.set_state(Gst.State.NULL)

    def pct(values, p):
        if not values:
            return None
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    result = {
        "frames": frames,
        "seconds": args.seconds,
        "fps": round(frames / args.seconds, 2),
        "caps": caps_seen,
        "caps_ok": caps_ok and caps_seen is not None,
        "stamped": len(latencies),
        "unreadable": unreadable,
        "latency_ms": {"median": pct(latencies, 0.5), "p95": pct(latencies, 0.95),
                       "max": pct(latencies, 1.0), "min": pct(latencies, 0.0)},
        "pts_interval_ms": {"median": pct(intervals, 0.5),
                            "mean": round(statistics.fmean(intervals), 2) if intervals else None,
                            "stdev": round(statistics.pstdev(intervals), 2) if intervals else None},
        "arrival_minus_pts_ms": {"median": pct(lags, 0.5), "p95": pct(lags, 0.95)},
        "mbit_s": mbit_s,
        "errors": errors,
    }
    print(json.dumps(result), flush=True)
    return 0 if not errors else 1


def main() -> int:
    Gst.init(None)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--channel", required=True)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--pattern", default="smpte")
    p.add_argument("--seconds", type=float, default=0, help="0: until SIGINT/SIGTERM")
    c = sub.add_parser("consume")
    c.add_argument("--channel", required=True)
    c.add_argument("--expect", required=True,
                   help="FORMAT,WIDTH,HEIGHT,FPS the frames must have, e.g. RGBA,1280,720,30/1")
    c.add_argument("--warmup", type=float, default=2.0)
    c.add_argument("--seconds", type=float, default=10.0)
    c.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for a frame")
    c.add_argument("--rx-bytes", help="a byte counter to read at the start and the end of the "
                   "measured window, e.g. /sys/class/net/eth0/statistics/rx_bytes")
    args = parser.parse_args()
    if args.mode == "produce":
        if args.width < BITS * 8:
            parser.error(f"--width must be at least {BITS * 8}")
        return produce(args)
    fmt, w, h, fps = args.expect.split(",")
    args.expect = {"format": fmt, "width": int(w), "height": int(h), "framerate": fps}
    return consume(args)


if __name__ == "__main__":
    sys.exit(main())
