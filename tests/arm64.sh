#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Cross-builds the core library, the core tests and the `bips` tool for
# aarch64 with Debian's cross toolchain (tools/cross/aarch64-linux-gnu.ini)
# into build-arm64/, runs the core suite under qemu-aarch64, then the tool
# itself under qemu, and ends with
#   "arm64: N core tests passed, M failed, K skipped (G gtest cases, S skipped); CLI ok"
# Exits non-zero on any failure. Extra arguments go to `meson test`.
# Idempotent: packages are installed and build-arm64/ configured only when
# missing; a second run only checks, lets ninja do nothing, and tests.
# The outcome of each core test is in build-arm64/meson-logs/testlog.json.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1
build="${BIPS_ARM64_BUILD_DIR:-$root/build-arm64}"
cross="$root/tools/cross/aarch64-linux-gnu.ini"
sysroot=/usr/aarch64-linux-gnu
qemu=(qemu-aarch64 -L "$sysroot")

# A failure before the tests must not leave an old outcome to be counted.
rm -f "$build/meson-logs/testlog.json"

die() {
  echo "arm64: $*" >&2
  echo "arm64: 0 core tests passed, 1 failed; CLI not run"
  exit 1
}

# -- Packages: the build tools, the cross compiler (with the aarch64 libc
# and libstdc++ under /usr/aarch64-linux-gnu), qemu-user and GoogleTest for
# arm64 (static libraries and a .pc file under /usr/lib/aarch64-linux-gnu).
packages=(meson ninja-build pkg-config python3
  g++-aarch64-linux-gnu qemu-user libgtest-dev:arm64)

if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
export DEBIAN_FRONTEND=noninteractive
aptlog=/tmp/bips-arm64-apt.log

updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "arm64: adding the arm64 dpkg architecture"
  $sudo dpkg --add-architecture arm64 || die "dpkg --add-architecture arm64 failed"
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "arm64: installing missing Debian packages: ${missing[*]}"
  : >"$aptlog"
  # The arm64 package lists exist only after an update that knew arm64.
  if ! compgen -G '/var/lib/apt/lists/*_binary-arm64_Packages*' >/dev/null; then
    $sudo apt-get update -q >>"$aptlog" 2>&1 || die "apt-get update failed; see $aptlog"
    updated=1
  fi
  if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1; then
    ((updated)) && die "apt-get install failed; see $aptlog"
    $sudo apt-get update -q >>"$aptlog" 2>&1 || die "apt-get update failed; see $aptlog"
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1 ||
      die "apt-get install failed; see $aptlog"
  fi
fi

echo "arm64: packages ready (${SECONDS}s)"
t=$SECONDS

# -- Configure once, build (ninja does nothing when nothing changed).
if [[ ! -f "$build/build.ninja" ]]; then
  rm -rf "$build" # a half-configured folder from an interrupted set-up
  setup_log="$(mktemp)"
  meson setup "$build" "$root" --cross-file "$cross" \
    -Dgst=disabled -Dintrospection=disabled -Dtests=enabled >"$setup_log" 2>&1 || {
    cat "$setup_log" >&2
    rm -f "$setup_log"
    die "meson setup failed"
  }
  rm -f "$setup_log"
fi
meson compile -C "$build" >/dev/null || meson compile -C "$build" || die "build failed"

echo "arm64: built in $build ($((SECONDS - t))s)"
t=$SECONDS

bips="$build/tools/bips/bips"
LC_ALL=C aarch64-linux-gnu-readelf -h "$bips" | grep 'Machine:.*AArch64' >/dev/null ||
  die "$bips is not an AArch64 executable"

# -- The core suite under qemu (the cross file's exe_wrapper).
status=0
rm -f "$build"/*.xml
# qemu runs the tests several times slower: twice the usual time-outs.
meson test -C "$build" --no-rebuild --suite core --print-errorlogs --num-processes 2 \
  --timeout-multiplier 2 "$@" ||
  status=1

# Meson's outcome per test program (testlog.json), and the GoogleTest cases
# inside them (the JUnit file NAME.xml that protocol 'gtest' writes in the
# build folder); a case skipped with GTEST_SKIP is named here.
read -r passed failed skipped cases case_skips < <(python3 - "$build" <<'PY'
import json, os, sys
import xml.etree.ElementTree as ET
build = sys.argv[1]
passed = failed = skipped = cases = case_skips = 0
try:
    lines = open(os.path.join(build, "meson-logs", "testlog.json")).read().splitlines()
except OSError:
    lines = []
    failed = 1
for line in lines:
    if not line.strip():
        continue
    entry = json.loads(line)
    r = entry.get("result")
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
    short = entry.get("name", "").split(" / ")[-1]
    try:
        root = ET.parse(os.path.join(build, short + ".xml")).getroot()
    except (OSError, ET.ParseError):
        continue
    for case in root.iter("testcase"):
        cases += 1
        if case.get("result") == "skipped" or case.find("skipped") is not None:
            case_skips += 1
            print(f"arm64: skipped {case.get('classname')}.{case.get('name')} ({short})",
                  file=sys.stderr)
print(passed, failed, skipped, cases, case_skips)
PY
)
[[ -n "${case_skips:-}" ]] || { passed=0; failed=1; skipped=0; cases=0; case_skips=0; }
((failed == 0 && passed > 0)) || status=1
echo "arm64: core suite under qemu took $((SECONDS - t))s"
t=$SECONDS

# -- The tool under qemu, on a private channel folder.
cli=ok
BIPS_DIR="$(mktemp -d)" || die "mktemp failed"
export BIPS_DIR
trap 'rm -rf "$BIPS_DIR"' EXIT
run_cli() {
  echo "arm64: qemu-aarch64 bips $*"
  local out rc
  out=$(timeout 300 "${qemu[@]}" "$bips" "$@" 2>&1)
  rc=$?
  if ((rc != 0)); then
    printf '%s\n' "$out"
    echo "arm64: 'bips $*' exited with $rc" >&2
    cli="failed (bips $1)"
    status=1
    return 1
  fi
  printf '%s\n' "$out" | sed 's/^/  /'
}
run_cli --help &&
  run_cli list &&
  run_cli demo --frames 20 --slot-size 64k &&
  run_cli bench --frames 2000 --latency-frames 200
if [[ -n "$(ls -A "$BIPS_DIR")" ]]; then
  echo "arm64: the tool left channels behind in BIPS_DIR: $(ls -A "$BIPS_DIR")" >&2
  [[ $cli == ok ]] && cli="failed (channels left behind)"
  status=1
fi

echo "arm64: the tool under qemu took $((SECONDS - t))s; ${SECONDS}s in all"
echo "arm64: $passed core tests passed, $failed failed, $skipped skipped" \
  "($cases gtest cases, $case_skips skipped); CLI $cli"
exit $status
