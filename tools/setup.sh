#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared set-up of the README commands: installs missing Debian packages,
# then configures (once) and builds the project into build/.
# Idempotent: the second run checks the packages and lets ninja do nothing.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
builddir="${BIPS_BUILD_DIR:-$root/build}"

packages=(
  meson ninja-build pkg-config g++ libgtest-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly iproute2 tini
  gobject-introspection libgirepository1.0-dev gir1.2-gstreamer-1.0
  gir1.2-gst-plugins-base-1.0 python3-gi python3-gst-1.0 python3-numpy python3-pytest python3-torch
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "bips: installing missing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    sudo=sudo
  else
    sudo=
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/bips-apt.log 2>&1; then
    $sudo apt-get update -q >>/tmp/bips-apt.log 2>&1
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/bips-apt.log 2>&1 || {
      echo "bips: apt-get install failed; see /tmp/bips-apt.log" >&2
      exit 1
    }
  fi
fi

if [[ ! -f "$builddir/build.ninja" ]]; then
  meson setup "$builddir" "$root" >/dev/null
fi
meson compile -C "$builddir" >/dev/null || meson compile -C "$builddir"
