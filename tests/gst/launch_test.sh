#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The README's two commands: producer and consumer as two gst-launch-1.0
# processes, no caps on the consumer side; both must exit 0 at EOS and the
# consumer must see every frame, and nothing may be left in the channel
# folder afterwards. Needs GST_PLUGIN_PATH_1_0 (meson sets it).
set -uo pipefail

frames=60
channel="gsttest-launch-$$"
tmp="$(mktemp -d)"
# A private channel folder (only the channel's socket lives there; the
# frames travel in memory handed over it), so that it can be checked empty.
export BIPS_DIR="$tmp/channels"
mkdir -m 0700 "$BIPS_DIR"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
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
left="$(ls -A "$BIPS_DIR")"
[[ -z "$left" ]] || fail "left in the channel folder after a clean exit: $left"

# A live producer stopped by a signal leaves nothing behind either: SIGTERM
# (gst-launch does not handle it: bips removes the name and dies of it) and
# SIGINT (gst-launch stops the pipeline itself).
# --foreground: timeout passes the signal to gst-launch only; without it,
# it also sends it to the whole process group a moment later, and a second
# SIGINT ends gst-launch by the default action once it has stopped handling
# them (a double Ctrl-C; the name is then left as a dead channel, which the
# next producer takes over and `bips clean` removes).
for sig in TERM INT; do
  live="$channel-$sig"
  timeout --foreground 60 gst-launch-1.0 videotestsrc is-live=true \
    ! video/x-raw,format=RGBA,width=160,height=120,framerate=30/1 \
    ! bipssink channel="$live" >"$tmp/producer-$sig.log" 2>&1 &
  producer=$!
  pids+=("$producer")
  for _ in $(seq 100); do [[ -S "$BIPS_DIR/bips-$live" ]] && break; sleep 0.1; done
  [[ -S "$BIPS_DIR/bips-$live" ]] || fail "producer for SIG$sig never created its socket"
  timeout 30 gst-launch-1.0 bipssrc channel="$live" num-buffers=3 ! fakesink \
    >"$tmp/consumer-$sig.log" 2>&1 || fail "consumer of the SIG$sig producer failed"
  kill -s "$sig" "$producer"
  wait "$producer"
  pids=()
  left="$(ls -A "$BIPS_DIR")"
  [[ -z "$left" ]] || fail "left in the channel folder after SIG$sig: $left"
done
echo "ok: $frames frames, both processes exited 0; SIGTERM and SIGINT leave nothing behind"
