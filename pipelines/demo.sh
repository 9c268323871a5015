#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The README's first command: sets up and builds (tools/setup.sh), then runs
# a GStreamer producer process and a GStreamer consumer process on one
# channel (no caps on the consumer side) and prints both elements' stats,
# then the core library's own zero-copy demo (`bips demo`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/setup.sh"
build="${BIPS_BUILD_DIR:-$root/build}"

export GST_PLUGIN_PATH_1_0="$build/gst${GST_PLUGIN_PATH_1_0:+:$GST_PLUGIN_PATH_1_0}"
export GST_REGISTRY_1_0="$build/gst-registry.bin"

channel="demo-$$"
frames="${DEMO_FRAMES:-300}"
logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT

echo "== GStreamer: producer and consumer in two processes, channel '$channel'"
echo "   producer: videotestsrc num-buffers=$frames ! video/x-raw,format=RGBA,width=1920,height=1080 ! bipssink channel=$channel wait-for-consumer=true sync=false"
echo "   consumer: bipssrc channel=$channel ! fakesink   (no caps: they come from the channel)"

# The consumer starts first and waits (bounded) for the producer.
timeout 120 gst-launch-1.0 -m -v bipssrc channel="$channel" timeout=20000 \
  ! fakesink sync=false >"$logdir/consumer.log" 2>&1 &
consumer=$!

start=$(date +%s.%N)
timeout 120 gst-launch-1.0 -m videotestsrc num-buffers="$frames" pattern=ball \
  ! video/x-raw,format=RGBA,width=1920,height=1080,framerate=60/1 \
  ! bipssink channel="$channel" wait-for-consumer=true sync=false >"$logdir/producer.log" 2>&1 || {
  echo "producer failed:"; cat "$logdir/producer.log"; kill "$consumer" 2>/dev/null; exit 1; }
status=0
wait "$consumer" || status=$?
end=$(date +%s.%N)
if ((status != 0)); then
  echo "consumer failed (exit $status):"; cat "$logdir/consumer.log"; exit 1
fi

stats() { grep -o "$1, .*;" "$2" | tail -1 | sed -e 's/([a-z0-9]*)//g' -e 's/;$//'; }
echo
echo "bipssink stats: $(stats GstBipsSinkStats "$logdir/producer.log")"
echo "bipssrc  stats: $(stats GstBipsSrcStats "$logdir/consumer.log")"
awk -v n="$frames" -v s="$start" -v e="$end" \
  'BEGIN { printf "%d frames of 1920x1080 RGBA in %.2f s: %.0f frames/s end to end\n", n, e - s, n / (e - s) }'
echo "consumer caps (from the channel): $(grep -o "caps = video/x-raw[^\"]*" "$logdir/consumer.log" | head -1 | cut -c8- || true)"
echo
echo "== Core library: producer and consumer processes, latency and zero-copy evidence"
"$build/tools/bips/bips" demo
