#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Publishes a V4L2 camera (/dev/video0, or $2) on channel cam0 (or $1).
# videoconvert writes straight into the channel's slots (zero-copy publish);
# 8 slots leave room for several consumers. -e: Ctrl-C sends EOS, which ends
# the consumers' streams cleanly.
set -euo pipefail
source "$(dirname "$0")/build-env.sh"
channel="${1:-cam0}"
device="${2:-/dev/video0}"

exec gst-launch-1.0 -e v4l2src device="$device" ! videoconvert \
  ! bipssink channel="$channel" slots=8
