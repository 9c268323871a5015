#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The README's two commands: producer and consumer as two gst-launch-1.0
# processes, no caps on the consumer side; both must exit 0 at EOS and the
# consumer must see every frame. Needs GST_PLUGIN_PATH_1_0 (meson sets it).
set -uo pipefail

frames=60
channel="gsttest-launch-$$"
shm="${BIPS_SHM_DIR:-/dev/shm}"
tmp="$(mktemp -d)"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  rm -f "$shm/bips-$channel"
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  shopt -s nullglob
  for f in "$tmp"/*.log; do
    echo "---- $(basename "$f")"
    cat "$f"
  done
  exit 1
}

command -v gst-launch-1.0 >/dev/null || { echo "SKIP: no gst-launch-1.0"; exit 77; }
gst-inspect-1.0 bipssrc >/dev/null 2>&1 || fail "bipssrc not found (GST_PLUGIN_PATH_1_0=${GST_PLUGIN_PATH_1_0:-})"

# Consumer first: it waits for the producer (bounded by its timeout). -v
# prints fakesink's last-message, one line per frame, and the caps that
# bipssrc took from the channel.
timeout 120 gst-launch-1.0 -v bipssrc channel="$channel" policy=lossless timeout=30000 \
  ! fakesink silent=false >"$tmp/consumer.log" 2>&1 &
consumer=$!
pids+=("$consumer")

timeout 120 gst-launch-1.0 videotestsrc num-buffers=$frames \
  ! video/x-raw,format=RGBA,width=320,height=240,framerate=30/1 \
  ! bipssink channel="$channel" wait-for-consumer=true >"$tmp/producer.log" 2>&1 &
producer=$!
pids+=("$producer")

wait "$producer"; pstatus=$?
wait "$consumer"; cstatus=$?
pids=()

((pstatus == 0)) || fail "producer exited with $pstatus"
((cstatus == 0)) || fail "consumer exited with $cstatus"
grep -q "Got EOS from element" "$tmp/consumer.log" || fail "consumer saw no EOS"
grep -q "caps = video/x-raw.*format=(string)RGBA.*width=(int)320" "$tmp/consumer.log" ||
  fail "consumer did not announce the producer's caps"
n=$(grep -c "last-message = chain" "$tmp/consumer.log")
((n == frames)) || fail "consumer got $n frames, expected $frames"
if [[ -e "$shm/bips-$channel" ]]; then
  echo "note: the segment $shm/bips-$channel is still there after a clean exit"
fi
echo "ok: $frames frames, both processes exited 0"
