#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Shows the frames of channel cam0 (or $1) in a window; no caps needed.
# Start it before or after the producer: it waits for one.
set -euo pipefail
source "$(dirname "$0")/build-env.sh"
channel="${1:-cam0}"

exec gst-launch-1.0 bipssrc channel="$channel" ! videoconvert ! autovideosink
