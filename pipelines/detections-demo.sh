#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The detection chain without a display: a GStreamer camera channel, a
# Python detector that publishes regions of interest into a results
# channel, and a GStreamer consumer that prints them:
#
#   videotestsrc pattern=ball ! bipssink channel=cam-PID
#     -> pipelines/detect.py --input cam-PID --output detections-PID
#     -> pipelines/show-detections.py --channel detections-PID
#                                  (bipssrc ! appsink, GstVideoRegionOfInterestMeta)
#
# Runs against the build tree (build/, or $BIPS_BUILD_DIR) when it exists.
# DEMO_FRAMES (default 90, 3 s) sets the length. Exits 0 when the consumer
# printed a detection for at least 80% of the camera's frames.
set -euo pipefail
source "$(dirname "$0")/build-env.sh"

camera="cam-$$"
results="detections-$$"
frames="${DEMO_FRAMES:-90}"
python=/usr/bin/python3
logdir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$logdir"
}
trap cleanup EXIT

echo "== camera '$camera' -> detect.py -> results '$results' -> show-detections.py"

wait_for_line() {  # log file, line start, pid: until the line appears or the process ends
  for _ in $(seq 200); do
    grep -q "^$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || return 0
    sleep 0.1
  done
}

# The processes start from the end of the chain, each once the one after
# it is waiting for its channel, so that no frame waits for a Python
# start-up. First the display:
timeout 60 "$python" "$root/pipelines/show-detections.py" --channel "$results" \
  --timeout 20000 >"$logdir/show.log" 2>&1 &
show=$!
pids+=("$show")
wait_for_line "$logdir/show.log" "show-detections: reading" "$show"

# Then the detector. It opens the results channel as soon as it attaches
# to the camera, so the display misses at most the frames published
# before its bipssrc notices the new channel.
timeout 60 "$python" "$root/pipelines/detect.py" --input "$camera" --output "$results" \
  --wait 20 >"$logdir/detect.log" 2>&1 &
detect=$!
pids+=("$detect")
wait_for_line "$logdir/detect.log" "detect: waiting" "$detect"

# Then the camera: wait-for-consumer holds its first frame until detect.py
# attaches (at once: it is waiting). Its end of stream ends detect.py,
# whose end of stream ends show-detections.py.
timeout 60 gst-launch-1.0 -q videotestsrc pattern=ball is-live=true num-buffers="$frames" \
  ! video/x-raw,format=RGBA,width=320,height=240,framerate=30/1 \
  ! bipssink channel="$camera" wait-for-consumer=true >"$logdir/camera.log" 2>&1 &
camera_pid=$!
pids+=("$camera_pid")

status=0
# detect.py first: if it fails, the camera would wait for a consumer.
wait "$detect" || status=$?
if ((status != 0)); then
  echo "detect.py failed (exit $status):"; cat "$logdir/detect.log"; exit 1
fi
wait "$camera_pid" || status=$?
if ((status != 0)); then
  echo "camera pipeline failed (exit $status):"; cat "$logdir/camera.log"; exit 1
fi
wait "$show" || status=$?
if ((status != 0)); then
  echo "show-detections.py failed (exit $status):"; cat "$logdir/show.log"; exit 1
fi
pids=()

echo "-- detect.py"
cat "$logdir/detect.log"
echo "-- show-detections.py (first and last lines)"
# awk, not grep | head: head may leave before grep is done, and the
# SIGPIPE would fail the script under pipefail.
awk '/^pts/ && n++ < 3' "$logdir/show.log"
echo "   ..."
grep '^pts' "$logdir/show.log" | tail -2
tail -1 "$logdir/show.log"

detected=$(grep -c '^pts .* ball (' "$logdir/show.log" || true)
if ((detected * 100 < frames * 80)); then
  echo "FAILED: detections printed for $detected of $frames frames (80% needed)"
  exit 1
fi
echo "OK: detections printed for $detected of $frames frames"
