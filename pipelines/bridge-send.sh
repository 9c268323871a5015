#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Reads channel CHANNEL on this machine and sends it to HOST:PORT, where
# pipelines/bridge-recv.sh republishes it as a channel of raw video with
# this side's caps (the format too with --codec raw, or the receiver's
# --format) and timestamps on its own clock. Either side may start first
# (over SRT the sender keeps calling). Ctrl-C or SIGTERM stops it cleanly.
# Runs against the build tree (build/, or $BIPS_BUILD_DIR) when it exists.
# See docs/bridge.md for the modes and what they cost.
# shellcheck disable=SC2054 # commas belong to caps, not to the arrays
set -euo pipefail
# shellcheck source=pipelines/bridge-common.sh
source "$(dirname "$0")/bridge-common.sh"

usage() {
  cat <<'EOF'
usage: bridge-send.sh [options] CHANNEL HOST PORT

  --codec h264|vp8|jpeg|raw  h264 (default): x264enc tune=zerolatency, or
                             openh264enc when x264enc is not installed;
                             raw: the frames as they are (LAN only: about
                             width*height*bytes-per-pixel*fps, 885 Mbit/s
                             for 1280x720 RGBA at 30 fps)
  --bitrate KBIT             target of h264 and vp8, kbit/s (default 4000)
  --keyint FRAMES            h264/vp8: a key frame at least every FRAMES
                             frames (default 30), which bounds how long a
                             lost packet or a receiver that joins late
                             waits for a clean picture
  --quality 1..100           jpeg quality (default 85)
  --transport udp|srt        udp (default): RTP over UDP to HOST:PORT;
                             srt: the same RTP packets over SRT (caller to a
                             listening bridge-recv.sh), retransmitting lost
                             packets within --srt-latency
  --srt-latency MS           SRT retransmission window (default 120)
  --passphrase WORDS         SRT encryption (AES); the same on both sides
  --mtu BYTES                RTP packet size: default 1400 over udp, but
                             60000 for --codec raw (the kernel splits those
                             into IP fragments: far fewer packets for
                             GStreamer to handle), and 1316, the most SRT
                             carries, over srt
  --policy latest|lossless   how bipssrc reads the channel (default latest:
                             the network never holds the producer back)
EOF
}

codec=h264 bitrate=4000 keyint=30 quality=85 transport=udp srt_latency=120
passphrase="" mtu="" policy=latest
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --codec) codec="${2:?}"; shift 2 ;;
    --bitrate) bitrate="${2:?}"; shift 2 ;;
    --keyint) keyint="${2:?}"; shift 2 ;;
    --quality) quality="${2:?}"; shift 2 ;;
    --transport) transport="${2:?}"; shift 2 ;;
    --srt-latency) srt_latency="${2:?}"; shift 2 ;;
    --passphrase) passphrase="${2:?}"; shift 2 ;;
    --mtu) mtu="${2:?}"; shift 2 ;;
    --policy) policy="${2:?}"; shift 2 ;;
    --) shift; break ;;
    -*) usage >&2; bridge_die "unknown option $1" ;;
    *) break ;;
  esac
done
(($# == 3)) || { usage >&2; exit 2; }
channel="$1" host="$2" port="$3"
bridge_uint PORT "$port"
bridge_uint --bitrate "$bitrate"
bridge_uint --keyint "$keyint"
bridge_uint --quality "$quality"
bridge_uint --srt-latency "$srt_latency"
[[ -z $mtu ]] || bridge_uint --mtu "$mtu"
case "$policy" in latest | lossless) ;; *) bridge_die "--policy is latest or lossless" ;; esac

# The encoder; after it every mode is the same: rtpgstpay carries the
# buffers with their caps (resent every second, so a receiver that starts
# later learns them) and their timestamps (as RTP time).
case "$codec" in
  h264)
    if bridge_have x264enc; then
      enc=(x264enc tune=zerolatency speed-preset=ultrafast "bitrate=$bitrate"
        "key-int-max=$keyint")
    elif bridge_have openh264enc; then
      echo "$bridge_name: x264enc not installed (gstreamer1.0-plugins-ugly); using openh264enc" >&2
      enc=(openh264enc "bitrate=$((bitrate * 1000))" rate-control=bitrate
        "gop-size=$keyint" complexity=low)
    else
      bridge_die "no H.264 encoder: install gstreamer1.0-plugins-ugly (x264enc) or gstreamer1.0-plugins-bad (openh264enc), or use --codec vp8"
    fi
    # 4:2:0 8-bit, which every H.264 decoder reads; h264parse repeats the
    # SPS and PPS before every key frame for receivers that join late
    pipe=(videoconvert ! video/x-raw,format=I420 ! "${enc[@]}" ! h264parse config-interval=-1)
    ;;
  vp8)
    bridge_need vp8enc gstreamer1.0-plugins-good
    pipe=(videoconvert ! video/x-raw,format=I420
      ! vp8enc deadline=1 cpu-used=8 lag-in-frames=0 end-usage=cbr
      "target-bitrate=$((bitrate * 1000))" "keyframe-max-dist=$keyint"
      error-resilient=default)
    ;;
  jpeg)
    bridge_need jpegenc gstreamer1.0-plugins-good
    pipe=(videoconvert ! jpegenc "quality=$quality")
    ;;
  raw)
    pipe=()
    ;;
  *) bridge_die "--codec is h264, vp8, jpeg or raw, not '$codec'" ;;
esac

case "$transport" in
  udp)
    # Raw frames are megabytes: as 1400-byte packets they cost GStreamer
    # (payloader, udpsink, udpsrc, jitter buffer) per packet more CPU than
    # the network does. 60000-byte datagrams are IP-fragmented by the
    # kernel instead, and a frame that lost any fragment is dropped either
    # way, so this costs nothing on a LAN; networks that drop IP fragments
    # need --mtu 1400 (or 8900 with jumbo frames).
    if [[ $codec == raw ]]; then mtu="${mtu:-60000}"; else mtu="${mtu:-1400}"; fi
    out=(udpsink "host=$host" "port=$port" sync=false async=false)
    ;;
  srt)
    bridge_need srtsink gstreamer1.0-plugins-bad
    mtu="${mtu:-1316}"
    ((mtu <= 1316)) || bridge_die "SRT carries at most 1316 bytes a packet; lower --mtu"
    out=(srtsink "uri=srt://$host:$port" mode=caller "latency=$srt_latency"
      wait-for-connection=false sync=false async=false)
    [[ -z $passphrase ]] || out+=("passphrase=$passphrase")
    ;;
  *) bridge_die "--transport is udp or srt, not '$transport'" ;;
esac

bridge_need rtpgstpay gstreamer1.0-plugins-good
# With policy=latest bipssrc hands over the newest frame whenever the
# encoder or the network is ready for one, so a slow link skips frames
# (counted in bipssrc's stats) instead of building up a backlog.
args=(bipssrc "channel=$channel" "policy=$policy" !)
((${#pipe[@]} == 0)) || args+=("${pipe[@]}" !)
args+=(rtpgstpay config-interval=1 "mtu=$mtu" ! "${out[@]}")
bridge_run "${args[@]}"
