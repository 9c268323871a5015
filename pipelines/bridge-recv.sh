#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Receives what pipelines/bridge-send.sh sends to PORT and republishes it
# on this machine as channel CHANNEL, with the sender's caps (decoded to raw
# video when it was encoded) and timestamps on this machine's clock, so
# consumers here use bipssrc or the bips APIs exactly as on the sender's
# machine. Any --codec of the sender works without telling this side.
# Ctrl-C or SIGTERM stops it cleanly (the channel goes; its consumers wait
# for it to come back). Runs against the build tree (build/, or
# $BIPS_BUILD_DIR) when it exists. See docs/bridge.md.
set -euo pipefail
# shellcheck source=pipelines/bridge-common.sh
source "$(dirname "$0")/bridge-common.sh"

usage() {
  cat <<'EOF'
usage: bridge-recv.sh [options] PORT CHANNEL

  --format FMT          convert the frames to raw format FMT (RGBA, NV12, ...)
                        before republishing; by default they keep the format
                        they arrive in: the sender's for --codec raw, the
                        decoder's (I420) for h264, vp8 and jpeg
  --latency MS          how long the jitter buffer waits for a late or
                        reordered packet (default 40); see --sync
  --sync                publish each frame at its timestamp plus the
                        pipeline latency (which includes --latency), as a
                        sink normally does: evenly spaced frames, later.
                        By default each frame is published as soon as it is
                        decoded, with the same timestamps
  --transport udp|srt   as the sender's (default udp); srt listens on PORT
  --srt-latency MS      SRT retransmission window (default 120; the larger
                        of the two sides' values is used)
  --passphrase WORDS    SRT encryption, as on the sender
  --slots N             slots of the republished channel (bipssink's default 8)
  --buffer BYTES        UDP receive buffer (default 16 MiB, which holds a
                        few raw 720p frames)
EOF
}

format="" latency=40 sync=false transport=udp srt_latency=120 passphrase=""
slots="" buffer=$((16 * 1024 * 1024))
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --format) format="${2:?}"; shift 2 ;;
    --latency) latency="${2:?}"; shift 2 ;;
    --sync) sync=true; shift ;;
    --transport) transport="${2:?}"; shift 2 ;;
    --srt-latency) srt_latency="${2:?}"; shift 2 ;;
    --passphrase) passphrase="${2:?}"; shift 2 ;;
    --slots) slots="${2:?}"; shift 2 ;;
    --buffer) buffer="${2:?}"; shift 2 ;;
    --) shift; break ;;
    -*) usage >&2; bridge_die "unknown option $1" ;;
    *) break ;;
  esac
done
(($# == 2)) || { usage >&2; exit 2; }
port="$1" channel="$2"
bridge_uint PORT "$port"
bridge_uint --latency "$latency"
bridge_uint --srt-latency "$srt_latency"
bridge_uint --buffer "$buffer"
[[ -z $slots ]] || bridge_uint --slots "$slots"
[[ -z $format || $format =~ ^[A-Za-z0-9_]+$ ]] || bridge_die "--format takes a raw video format name such as RGBA"

rtp_caps=application/x-rtp,media=application,clock-rate=90000,encoding-name=X-GST
case "$transport" in
  udp)
    src=(udpsrc "port=$port" "buffer-size=$buffer" "caps=$rtp_caps")
    ;;
  srt)
    bridge_need srtsrc gstreamer1.0-plugins-bad
    src=(srtsrc "uri=srt://:$port" mode=listener "latency=$srt_latency")
    [[ -z $passphrase ]] || src+=("passphrase=$passphrase")
    src+=(! "$rtp_caps")
    ;;
  *) bridge_die "--transport is udp or srt, not '$transport'" ;;
esac

bridge_need rtpgstdepay gstreamer1.0-plugins-good
bridge_need rtpjitterbuffer gstreamer1.0-plugins-good
# rtpgstdepay restores the sender's caps; decodebin decodes whatever codec
# they name (and passes raw video through), so this side needs no --codec.
args=("${src[@]}" ! rtpjitterbuffer "latency=$latency" ! rtpgstdepay
  ! decodebin ! videoconvert)
[[ -z $format ]] || args+=(! "video/x-raw,format=$format")
args+=(! bipssink "channel=$channel" "sync=$sync")
[[ -z $slots ]] || args+=("slots=$slots")
bridge_run "${args[@]}"
