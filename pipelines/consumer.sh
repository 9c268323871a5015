#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Shows the frames of channel cam0 (or $1) in a window; no caps needed.
# Start it before or after the producer: it waits for one.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BIPS_BUILD_DIR:-$root/build}"
if [[ -f "$build/gst/libgstbips.so" ]]; then
  export GST_PLUGIN_PATH="$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  export GST_REGISTRY="$build/gst-registry.bin"
fi
channel="${1:-cam0}"

exec gst-launch-1.0 bipssrc channel="$channel" ! videoconvert ! autovideosink
