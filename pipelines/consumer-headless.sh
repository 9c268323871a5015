#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Reads channel cam0 (or $1) without a display, as a `latest` consumer that
# never slows the producer (pass `lossless` as $2 to get every frame and
# hold the producer back instead). -v prints the caps taken from the channel.
# Start it before or after the producer: it waits for one.
set -euo pipefail
source "$(dirname "$0")/build-env.sh"
channel="${1:-cam0}"
policy="${2:-latest}"

exec gst-launch-1.0 -v bipssrc channel="$channel" policy="$policy" ! fakesink sync=false
