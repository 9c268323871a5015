#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Reads channel cam0 (or $1) without a display, as a `latest` consumer that
# never slows the producer (pass `lossless` as $2 to get every frame and
# hold the producer back instead). -v prints the caps taken from the channel.
# Start it before or after the producer: it waits for one.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BIPS_BUILD_DIR:-$root/build}"
if [[ -f "$build/gst/libgstbips.so" ]]; then
  export GST_PLUGIN_PATH="$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  export GST_REGISTRY="$build/gst-registry.bin"
fi
channel="${1:-cam0}"
policy="${2:-latest}"

exec gst-launch-1.0 -v bipssrc channel="$channel" policy="$policy" ! fakesink sync=false
