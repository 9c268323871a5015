#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Compares, side by side, RGBA frames from `videotestsrc pattern=black` at
# 1080p and 4K: in-process videotestsrc ! fakesink (the source's limit),
# the same with a queue (two threads), bipssink -> bipssrc and shmsink ->
# shmsrc across two processes.
# Prints frames/s, the ratio to the in-process rate, the consumer's CPU time
# per frame, the frames copied by bipssink (into a slot) and by bipssrc (out
# of one, past max-held), and bipssink's zero-copy count. Nothing is asserted.
#
# Usage: tests/bench/gst_compare.sh [BUILD_DIR]   (default: build)
# Env:   RUNS (default 3), FRAMES_1080 (1500), FRAMES_4K (300), WARMUP (12),
#        ANTICIPATE (µs, default 200; 0 leaves out the bipssrc anticipate=N row),
#        KINDS (default "inproc inproc_queue bips bips_anticipate shm"; inproc
#        must come first),
#        PACED_FPS (200; 0 leaves out the paced runs), FRAMES_PACED (600)
#
# Method: each process is a pipeline string run by a few lines of Python
# (/usr/bin/python3, PyGObject) that only wait on the bus: the frames never
# touch Python. The consumer records the clock and its getrusage() when the
# first frame reaches its fakesink, when frame WARMUP+1 does, and at EOS, so
# start-up, plugin loading and connecting are left out; "warm" figures also
# leave out the first touch of every slot / buffer page (at 4K one 31.6 MiB
# slot is ~8100 minor page faults). The kinds run in turn, RUNS rounds of
# one run each; every value is the median over the rounds, and a ratio is
# the median of (kind / in-process run of the same round).
# shmsrc gets no EOS over shm, so its fakesink stops itself after N frames.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
runs="${RUNS:-3}"
frames_1080="${FRAMES_1080:-1500}"
frames_4k="${FRAMES_4K:-300}"
warmup="${WARMUP:-12}"
anticipate="${ANTICIPATE:-200}"
paced_fps="${PACED_FPS:-200}"
frames_paced="${FRAMES_PACED:-600}"
py=/usr/bin/python3

[[ -e "$build/gst/libgstbips.so" ]] || { echo "no $build/gst/libgstbips.so: build first" >&2; exit 1; }
tmp="$(mktemp -d /tmp/bips-gstbench.XXXXXX)"
cleanup() {
  jobs -p | xargs -r kill -9 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# The bips channels' sockets live in a folder of this run (removed with it,
# also after a killed run).
export BIPS_DIR="$tmp/channels"
mkdir -m 700 "$BIPS_DIR"

export GST_PLUGIN_PATH_1_0="$build/gst"
export GST_REGISTRY_1_0="$tmp/registry.bin"
unset GST_DEBUG
gst-inspect-1.0 bipssink >/dev/null || { echo "bipssink does not load" >&2; exit 1; }
gst-inspect-1.0 shmsink >/dev/null || { echo "shmsink missing (gstreamer1.0-plugins-bad)" >&2; exit 1; }

# runner.py PIPELINE [WARMUP [DONE_FILE]]: runs it to EOS (exit 0) or
# error/timeout (exit 1), then, given DONE_FILE, waits for that file before
# stopping. If it has an element "out", prints "seconds cpu seconds cpu":
# from the first buffer at "out" to EOS, and from buffer WARMUP+1 to EOS.
# Then the `stats` of the elements "sink" and "src".
cat >"$tmp/runner.py" <<'PY'
import os, resource, sys, time
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)

def now():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.monotonic(), r.ru_utime + r.ru_stime

# Clock and CPU at the first frame and at frame WARMUP+1 reaching "out"
# (a probe on the first WARMUP+1 buffers only, then removed).
warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 0
pipeline = Gst.parse_launch(sys.argv[1])
marks = []
out = pipeline.get_by_name("out")
if out is not None:
    seen = [0]
    def on_buffer(pad, info):
        seen[0] += 1
        if seen[0] == 1:
            marks.append(now())
        if seen[0] == warmup + 1:
            marks.append(now())
            return Gst.PadProbeReturn.REMOVE
        return Gst.PadProbeReturn.OK
    out.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
pipeline.set_state(Gst.State.PLAYING)
msg = pipeline.get_bus().timed_pop_filtered(
    int(os.environ.get("RUNNER_TIMEOUT", "100")) * Gst.SECOND,
    Gst.MessageType.EOS | Gst.MessageType.ERROR)
end = now()
ok = msg is not None and msg.type == Gst.MessageType.EOS
if ok and len(marks) == 2:
    # seconds and CPU from the first frame, then from frame WARMUP+1
    print("%.6f %.6f %.6f %.6f" % (end[0] - marks[0][0], end[1] - marks[0][1],
                                   end[0] - marks[1][0], end[1] - marks[1][1]))
# A producer whose transport has no EOS (shm) stays up until told.
if len(sys.argv) > 3:
    deadline = time.monotonic() + 60
    while not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:
        time.sleep(0.01)
for name in ("sink", "src"):
    e = pipeline.get_by_name(name)
    if e is not None and e.find_property("stats") is not None:
        print(e.get_property("stats").to_string())
pipeline.set_state(Gst.State.NULL)
if not ok:
    print("error: " + ("timeout" if msg is None else msg.parse_error()[0].message),
          file=sys.stderr)
    sys.exit(1)
PY

caps() { echo "video/x-raw,format=RGBA,width=$1,height=$2,framerate=${rate:-30}/1"; }
field() { sed -n "s/.*[ ,]$1=(guint64)\([0-9]*\).*/\1/p" | head -n 1; }

# Each run_* prints "seconds cpu seconds_steady cpu_steady copied
# zero_copy" (consumer side) or nothing on failure (reported on stderr).
run_inproc() { # N W H [elements between source and sink, each ending in "!"]
  timeout 120 "$py" "$tmp/runner.py" "videotestsrc pattern=black num-buffers=$1 \
    ! $(caps "$2" "$3") ! ${4:-} fakesink name=out sync=false" "$warmup" |
    awk 'NR == 1 { print $1, $2, $3, $4, "-", "-" }'
}

# The same source and sink in one process but two threads (a queue
# between them): the cost of decoupling producer and consumer at all, with
# no shared memory involved. The source then fills a second buffer while
# the sink still holds the first, instead of refilling one cache-hot buffer.
run_inproc_queue() { run_inproc "$@" "queue max-size-buffers=1 !"; }

run_bips() { # N W H [bipssrc options]
  local ch="gstbench-$$-$RANDOM" stats
  timeout 120 "$py" "$tmp/runner.py" "bipssrc name=src channel=$ch policy=lossless \
    timeout=30000 ${4:-} ! fakesink name=out sync=false" "$warmup" >"$tmp/consumer.out" 2>"$tmp/consumer.err" &
  local cpid=$!
  stats=$(timeout 120 "$py" "$tmp/runner.py" "videotestsrc${live:-} pattern=black num-buffers=$1 \
    ! $(caps "$2" "$3") ! bipssink name=sink channel=$ch wait-for-consumer=true sync=false" \
    2>"$tmp/producer.err") || { echo "bips producer failed: $(cat "$tmp/producer.err")" >&2; }
  wait "$cpid" || { echo "bips consumer failed: $(cat "$tmp/consumer.err")" >&2; }
  local received
  received=$(field received <"$tmp/consumer.out")
  [[ "$received" == "$1" ]] || { echo "bips consumer received ${received:-?} of $1" >&2; return; }
  # copied: bipssink's (into a slot) + bipssrc's (out of one, max-held)
  awk -v c="$(field copied <<<"$stats")+$(field copied <"$tmp/consumer.out")" \
    -v z="$(field zero-copy <<<"$stats")" \
    'NR == 1 { print $1, $2, $3, $4, c, z }' "$tmp/consumer.out"
}

run_bips_anticipate() { run_bips "$@" "anticipate=$anticipate"; }

# The bips pair with a live source paced at $paced_fps: the consumer's CPU
# per frame at the same rate for both sizes (at full speed the rates differ,
# and a consumer that finds the next frame already there never sleeps).
run_bips_paced() { rate=$paced_fps live=" is-live=true" run_bips "$@"; }

run_shm() { # N W H
  local sock="$tmp/shm-$RANDOM" size=$(($2 * $3 * 4))
  rm -f "$tmp/done"
  timeout 120 "$py" "$tmp/runner.py" "videotestsrc pattern=black num-buffers=$1 \
    ! $(caps "$2" "$3") ! shmsink socket-path=$sock shm-size=$((size * 4 + 4096)) \
    wait-for-connection=true sync=false" 0 "$tmp/done" >/dev/null 2>"$tmp/producer.err" &
  local ppid=$!
  for _ in $(seq 1000); do [[ -S "$sock" ]] && break; sleep 0.01; done
  # shmsrc intermittently never gets all N frames (seen with GStreamer 1.22,
  # whatever shm-size): give up on such a run after 20 s.
  if RUNNER_TIMEOUT=20 timeout 120 "$py" "$tmp/runner.py" "shmsrc socket-path=$sock \
    is-live=true ! $(caps "$2" "$3") ! fakesink name=out sync=false num-buffers=$1" "$warmup" \
    >"$tmp/consumer.out" 2>"$tmp/consumer.err"; then
    # EOS does not cross shm: the producer stays up until the consumer has
    # its N frames (otherwise it closes the socket under the last ones).
    touch "$tmp/done"
    wait "$ppid" || echo "shm producer failed: $(cat "$tmp/producer.err")" >&2
  else
    echo "shm consumer failed: $(cat "$tmp/consumer.err")" >&2
    # The producer is stuck on a reader that went away: stop it now.
    kill -9 "$ppid" 2>/dev/null || true
    wait "$ppid" 2>/dev/null || true
    : >"$tmp/consumer.out"
  fi
  awk 'NR == 1 { print $1, $2, $3, $4, "-", "-" }' "$tmp/consumer.out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# One round runs every kind once, one after the other, so that the ratio
# of a kind to the in-process run of the same round compares runs made
# under the same machine load. Appends "seconds cpu seconds_warm cpu_warm
# copied zero_copy" to $tmp/<kind>.<size> (a failed run is retried once,
# then left out) and the warm ratio to $tmp/<kind>.<size>.ratio.
round() { # size N W H kinds...
  local size=$1 n=$2 w=$3 h=$4 kind line base=""
  shift 4
  for kind in "$@"; do
    line=$("run_$kind" "$n" "$w" "$h" || true)
    [[ -n "$line" ]] || line=$("run_$kind" "$n" "$w" "$h" || true)
    [[ -n "$line" ]] || continue
    echo "$line" >>"$tmp/$kind.$size"
    local fps
    fps=$(awk -v n="$((n - 1 - warmup))" '{ print n / $3 }' <<<"$line")
    if [[ $kind == inproc ]]; then
      base=$fps
    elif [[ -n "$base" ]]; then
      awk -v a="$fps" -v b="$base" 'BEGIN { print a / b }' >>"$tmp/$kind.$size.ratio"
    fi
  done
}

# Prints "fps_all fps_warm cpu_us_per_frame_warm copied zero_copy runs_ok
# ratio" for one kind and size: medians over its good runs.
summary() { # kind size N
  local f="$tmp/$1.$2" all=$(($3 - 1)) steady=$(($3 - 1 - warmup))
  [[ -s "$f" ]] || { echo "0 0 0 - - 0 0"; return; }
  printf "%s %s %s %s %s %s %s\n" \
    "$(awk -v n="$all" '{ print n / $1 }' "$f" | median)" \
    "$(awk -v n="$steady" '{ print n / $3 }' "$f" | median)" \
    "$(awk -v n="$steady" '{ print $4 * 1e6 / n }' "$f" | median)" \
    "$(awk 'END { print $5 }' "$f")" "$(awk 'END { print $6 }' "$f")" "$(grep -c . "$f")" \
    "$( { cat "$f.ratio" 2>/dev/null || echo 1; } | median)"
}

printf "gst_compare: median of %s rounds, %s CPUs, GStreamer %s\n" "$runs" "$(nproc)" \
  "$(gst-launch-1.0 --gst-version | awk '{ print $NF; exit }')"
row() { printf "%-5s %-32s %9s %9s %6s %13s %16s %9s %5s\n" "$@"; }
row size path "fps(all)" "fps(warm)" ratio "cons.µs/frame" "copied(sink+src)" zero-copy ok
kinds="inproc inproc_queue bips shm"
((anticipate > 0)) && kinds="inproc inproc_queue bips bips_anticipate shm"
kinds="${KINDS:-$kinds}"
for size in 1080p 4K; do
  if [[ $size == 1080p ]]; then w=1920 h=1080 n=$frames_1080; else w=3840 h=2160 n=$frames_4k; fi
  for ((r = 0; r < runs; r++)); do
    # shellcheck disable=SC2086
    round "$size" "$n" "$w" "$h" $kinds
  done
  for kind in $kinds; do
    read -r fps_all fps cpu copied zero ok ratio < <(summary "$kind" "$size" "$n")
    case $kind in
      inproc) label="videotestsrc ! fakesink (1 proc)"
        cpu="(all $(printf %.1f "$cpu"))" ratio=1 ;;
      inproc_queue) label="  same, ! queue ! (2 threads)"
        cpu="(all $(printf %.1f "$cpu"))" ;;
      bips) label="bipssink -> bipssrc (2 procs)" ;;
      bips_anticipate) label="  same, bipssrc anticipate=$anticipate" ;;
      shm) label="shmsink -> shmsrc (2 procs)" ;;
    esac
    [[ $cpu == "("* ]] || cpu=$(printf %.1f "$cpu")
    row "$size" "$label" "$(printf %.1f "$fps_all")" "$(printf %.1f "$fps")" \
      "$(printf %.2f "$ratio")" "$cpu" "$copied" "$zero" "$ok/$runs"
  done
done
if ((paced_fps > 0)); then
  echo "bipssink -> bipssrc with videotestsrc is-live=true at $paced_fps fps, $frames_paced frames:"
  # The sizes take turns, so that both see the same spells of load.
  for ((r = 0; r < runs; r++)); do
    for size in 1080p 4K; do
      if [[ $size == 1080p ]]; then w=1920 h=1080; else w=3840 h=2160; fi
      line=$(run_bips_paced "$frames_paced" "$w" "$h" || true)
      [[ -n "$line" ]] && echo "$line" >>"$tmp/paced.$size"
    done
  done
  for size in 1080p 4K; do
    read -r _ fps cpu _ _ ok _ < <(summary paced "$size" "$frames_paced")
    printf "%-5s consumer %s µs/frame at %s fps (%s/%s runs)\n" "$size" \
      "$(printf %.1f "$cpu")" "$(printf %.1f "$fps")" "$ok" "$runs"
  done
fi
echo "N = $frames_1080 (1080p) / $frames_4k (4K) frames per run, timed at the consumer from its first"
echo "frame to EOS (all) and from frame $((warmup + 1)) to EOS (warm: first-touch page faults of the"
echo "slots and buffers are over). ratio = median over rounds of warm fps / in-process warm fps"
echo "of the same round; µs/frame is the consumer's warm CPU time (the in-process row: the whole"
echo "process, source + sink)."
