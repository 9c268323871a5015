#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs a small PyTorch CNN on frames from `bipssrc ! appsink`, without copying them into Python.
"""Per-frame inference on a bips channel with PyTorch.

    bipssrc channel=cam0 ! appsink   (GStreamer, in this process)
      -> bips.gst.sample_to_ndarray   (read-only view of the slot, no copy)
      -> torch.from_numpy             (a tensor over the same memory, no copy)
      -> a small convolutional network built here (random weights: no download)

Prints frames/s and, per frame, the latency from the producer's timestamp
(bipssink and the bips Python producer stamp absolute CLOCK_MONOTONIC times;
bipssrc maps them to this pipeline's running time) to the end of inference.

Start a producer first, e.g.

    gst-launch-1.0 videotestsrc is-live=true ! video/x-raw,format=RGBA,width=1280,height=720 \\
        ! bipssink channel=cam0
    meson devenv -C build -w . /usr/bin/python3 pipelines/inference.py --channel cam0
"""

import argparse
import sys
import time
import warnings

import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

import bips.gst  # noqa: E402

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - told to the user below
    torch = None


def build_network(in_channels: int) -> "nn.Module":
    """A small CNN: three strided convolutions, global pooling, a linear head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    ).eval()


def as_tensor(view) -> "torch.Tensor":
    """An (H, W, C) or (H, W) uint8 tensor sharing the frame's memory."""
    if isinstance(view, tuple):  # planar YUV: use the luma plane
        view = view.y
    with warnings.catch_warnings():
        # The view is read-only shared memory; the network only reads it.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(view)
    return tensor if tensor.dim() == 3 else tensor.unsqueeze(-1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", default="cam0")
    parser.add_argument("--policy", default="latest", choices=("latest", "lossless"))
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    parser.add_argument("--subsample", type=int, default=2,
                        help="feed every Nth pixel in each direction (a strided view, no copy)")
    parser.add_argument("--timeout", type=int, default=30000,
                        help="ms bipssrc waits for a producer")
    args = parser.parse_args()
    if torch is None:
        print("inference.py needs PyTorch: apt-get install python3-torch", file=sys.stderr)
        return 1

    Gst.init(None)
    # With `latest`, appsink keeps only the newest frame, so a slow network
    # always gets the freshest one; with `lossless` it blocks bipssrc (and
    # so the producer) instead.
    drop = "true" if args.policy == "latest" else "false"
    pipeline = Gst.parse_launch(
        f"bipssrc channel={args.channel} policy={args.policy} timeout={args.timeout} ! "
        f"appsink name=sink sync=false max-buffers=1 drop={drop}")
    sink = pipeline.get_by_name("sink")
    bus = pipeline.get_bus()
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        print("could not start the pipeline", file=sys.stderr)
        return 1

    network = None
    count, latencies = 0, []
    start = last_report = time.monotonic()
    last_count = 0
    status = 0
    try:
        with torch.inference_mode():
            while args.frames == 0 or count < args.frames:
                sample = sink.emit("try-pull-sample", Gst.SECOND // 2)
                if sample is None:
                    msg = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
                    if msg is not None and msg.type == Gst.MessageType.ERROR:
                        err, debug = msg.parse_error()
                        print(f"error: {err.message}\n{debug}", file=sys.stderr)
                        status = 1
                        break
                    if sink.get_property("eos"):
                        print("end of stream")
                        break
                    continue
                buffer = sample.get_buffer()
                # The producer's absolute timestamp = running time + base time.
                produced = buffer.pts + pipeline.get_base_time() \
                    if buffer.pts != Gst.CLOCK_TIME_NONE else None
                view = bips.gst.sample_to_ndarray(sample)
                del sample, buffer  # the view keeps the buffer (and its slot) alive
                frame = as_tensor(view)[:: args.subsample, :: args.subsample]
                if network is None:
                    network = build_network(frame.shape[-1])
                    print(f"input {tuple(frame.shape)} (from {tuple(as_tensor(view).shape)}), "
                          f"network: {sum(p.numel() for p in network.parameters())} parameters",
                          flush=True)
                # uint8 HWC -> float NCHW: the first computation of the network
                # reads the shared memory directly.
                x = frame.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
                scores = network(x)
                label = int(scores.argmax())
                del frame, view  # gives the slot back
                if produced is not None:
                    latencies.append(time.monotonic_ns() - produced)
                count += 1
                now = time.monotonic()
                if now - last_report >= 1.0:
                    lat = np.array(latencies) / 1e6 if latencies else np.array([np.nan])
                    print(f"{(count - last_count) / (now - last_report):6.1f} frames/s  latency "
                          f"p50 {np.percentile(lat, 50):7.2f} ms  p99 {np.percentile(lat, 99):7.2f}"
                          f" ms  class {label}", flush=True)
                    last_report, last_count, latencies = now, count, []
    finally:
        pipeline.set_state(Gst.State.NULL)
    elapsed = time.monotonic() - start
    print(f"{count} frames in {elapsed:.1f} s ({count / elapsed if elapsed else 0:.1f} frames/s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
