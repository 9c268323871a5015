#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Publishes a live 1280x720 RGBA test pattern on channel cam0 (or $1).
# Runs against the build tree (build/, or $BIPS_BUILD_DIR) when it exists.
# Ctrl-C stops it; consumers then wait for the next producer. Use
# `gst-launch-1.0 -e ...` instead to send EOS, which ends the consumers too.
set -euo pipefail
source "$(dirname "$0")/build-env.sh"
channel="${1:-cam0}"

exec gst-launch-1.0 videotestsrc is-live=true \
  ! video/x-raw,format=RGBA,width=1280,height=720,framerate=30/1 \
  ! bipssink channel="$channel"
