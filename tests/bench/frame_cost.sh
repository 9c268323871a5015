#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Instructions per frame spent inside bips (publish + next + release), for
# 64 B and 4K RGBA slots, counted by callgrind: repeatable on a noisy machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BIPS_BUILD_DIR:-$root/build}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
exe="$build/tests/bench/frame_cost"
frames=20000
for size in 64 33177600; do
  out="$(mktemp)"
  LD_LIBRARY_PATH="$build/lib" valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$exe" "$size" "$frames" >/dev/null 2>&1
  total=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
  rm -f "$out"
  base_out="$(mktemp)"
  LD_LIBRARY_PATH="$build/lib" valgrind --tool=callgrind --callgrind-out-file="$base_out" \
    "$exe" "$size" 1 >/dev/null 2>&1
  base=$(grep -m1 '^summary:' "$base_out" | awk '{print $2}')
  rm -f "$base_out"
  awk -v s="$size" -v t="$total" -v b="$base" -v n="$frames" \
    'BEGIN { printf "slot size %9d B: %.0f instructions per frame (publish + next + release)\n", s, (t - b) / (n - 1) }'
done
"$exe" 64 200000
"$exe" 33177600 200000
