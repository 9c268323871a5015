#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the standard benchmark matrix (`bips bench --matrix`) with the tool in
# build/ and prints its table. Builds first; extra arguments go to bips bench
# (for example --touch full or --spin-us 20).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
builddir="${BIPS_BUILD_DIR:-$root/build}"

if [[ -f "$builddir/build.ninja" ]]; then
  meson compile -C "$builddir" >/dev/null 2>&1 || meson compile -C "$builddir"
else
  BIPS_BUILD_DIR="$builddir" "$root/tools/setup.sh"
fi

exec "$builddir/tools/bips/bips" bench --matrix "$@"
