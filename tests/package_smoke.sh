#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Smoke test of the Debian packages: builds them (tools/package.sh), installs
# dist/*.deb with apt, then uses the installed bips the way a user would,
# from a temporary folder in a clean environment (no build tree, no
# LD_LIBRARY_PATH, GST_PLUGIN_PATH, GI_TYPELIB_PATH or PYTHONPATH):
# gst-inspect-1.0, a gst-launch-1.0 producer and consumer, the Python
# package, a C++ program built with pkg-config, and the bips tool. Purges
# the packages at the end, whatever happened, so that they never shadow the
# build tree in the other tests (they are purged even if they were installed
# before), and removes its temporary files.
#
# Prints one line per check and a summary; exits 0 when every check passed,
# 1 on any failure, 77 (skipped) without root or sudo, or when
# BIPS_SKIP_PACKAGE_SMOKE=1. With --json FILE, also writes one line per
# check to FILE in the format of meson's testlog.json (name, result OK,
# FAIL or SKIP, duration, stdout), for tests/run.sh's summary.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
json=
case "${1:-}" in
--json)
  json=${2:?--json needs a file name}
  rm -f "$json"
  ;;
"") ;;
*)
  echo "usage: $0 [--json FILE]" >&2
  exit 2
  ;;
esac

# record NAME RESULT SECONDS [LOGFILE]: one testlog.json line.
record() {
  [[ -n "$json" ]] || return 0
  python3 - "$@" >>"$json" <<'PY'
import json, sys
name, result, duration = sys.argv[1:4]
out = open(sys.argv[4], errors="replace").read()[-4000:] if len(sys.argv) > 4 else ""
print(json.dumps({"name": "package-smoke / " + name, "result": result,
                  "duration": float(duration), "stdout": out}))
PY
}

skip() {
  echo "package_smoke: skipped ($1)"
  record "all" SKIP 0
  exit 77
}
[[ "${BIPS_SKIP_PACKAGE_SMOKE:-0}" != 1 ]] || skip "BIPS_SKIP_PACKAGE_SMOKE=1"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  skip "installing packages needs root or sudo"
fi
export DEBIAN_FRONTEND=noninteractive

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bips-package-smoke.XXXXXX")
chmod 755 "$tmp"
packages=()
pids=()
passed=0
failed=0
results=()
start=$SECONDS

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  if ((${#packages[@]})); then
    echo "package_smoke: purging ${packages[*]}"
    if ! "${sudo[@]}" apt-get purge -y -q "${packages[@]}" >"$tmp/purge.log" 2>&1; then
      cat "$tmp/purge.log" >&2
      echo "package_smoke: error: apt-get purge failed" >&2
    fi
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check NAME COMMAND...: runs COMMAND (output to a log shown on failure).
check() {
  local name=$1
  shift
  local log="$tmp/log.$((passed + failed))"
  local t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    results+=("PASS  $name")
    echo "package_smoke: PASS  $name ($((SECONDS - t0)) s)"
    sed 's/^/    /' "$log" | tail -n 5
    record "$name" OK $((SECONDS - t0)) "$log"
    return 0
  fi
  failed=$((failed + 1))
  results+=("FAIL  $name")
  echo "package_smoke: FAIL  $name ($((SECONDS - t0)) s)"
  record "$name" FAIL $((SECONDS - t0)) "$log"
  sed 's/^/    /' "$log" | tail -n 40
  return 1
}

summary() {
  echo
  echo "package_smoke summary ($((SECONDS - start)) s):"
  printf '  %s\n' "${results[@]}"
  echo "$passed passed, $failed failed"
}

# A user's shell, in the temporary folder: nothing from the build tree.
clean() {
  (cd "$tmp" && env -i PATH=/usr/bin:/bin HOME="$HOME" timeout 300 "$@")
}

# ---- build and install -----------------------------------------------------

if ! check "build the packages (tools/package.sh)" "$root/tools/package.sh"; then
  summary
  exit 1
fi

shopt -s nullglob
debs=("$root"/dist/*.deb)
shopt -u nullglob
installable=()
for deb in "${debs[@]}"; do
  case "$deb" in
  *-dbgsym_*) ;; # BIPS_PACKAGE_DBGSYM=1: not needed to run anything
  *)
    installable+=("$deb")
    packages+=("$(dpkg-deb -f "$deb" Package)")
    ;;
  esac
done
debs=("${installable[@]}")

# Also what the checks use that the packages do not depend on.
install_packages() {
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${debs[@]}" \
    gstreamer1.0-tools gstreamer1.0-plugins-base g++ pkgconf ||
    { "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q \
      --no-install-recommends "${debs[@]}" gstreamer1.0-tools gstreamer1.0-plugins-base g++ pkgconf; }
}
if ((${#debs[@]} == 0)) || ! check "apt-get install ./dist/*.deb (${#debs[@]} packages)" install_packages; then
  summary
  exit 1
fi

installed_list() {
  local p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Package} ${Version} ${Status}\n' "$p" | grep ' install ok installed$' || return 1
  done
}
check "installed: ${packages[*]}" installed_list

# ---- the installed files ---------------------------------------------------

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
libdir="/usr/lib/$multiarch"

# Debian policy: no RPATH/RUNPATH in the packaged binaries.
no_rpath() {
  local f bad=0
  for f in /usr/bin/bips "$libdir"/libbips.so.0 "$libdir"/libbips-gobject-1.0.so.0 \
    "$libdir"/gstreamer-1.0/libgstbips.so; do
    [[ -e "$f" ]] || { echo "missing: $f"; bad=1; continue; }
    if readelf -d "$f" | grep -E 'RPATH|RUNPATH'; then
      echo "has a run path: $f"
      bad=1
    else
      echo "no run path: $f"
    fi
  done
  return $bad
}
check "no RPATH in the installed binaries" no_rpath

# ---- GStreamer -------------------------------------------------------------

inspect() {
  local out
  out=$(clean gst-inspect-1.0 bipssink) || { echo "$out"; return 1; }
  echo "$out" | grep -E '^\s*(Filename|Version)\s'
  # /lib is /usr/lib on a merged-/usr system: either name is the system's.
  echo "$out" | grep -Eq "Filename +(/usr)?/lib/$multiarch/gstreamer-1.0/libgstbips.so\$" ||
    { echo "bipssink is not loaded from $libdir/gstreamer-1.0"; return 1; }
}
check "gst-inspect-1.0 bipssink (system plugin folder)" inspect

gst_pair() {
  local channel="smoke-$$-gst" ppid_ rc_p rc_c
  clean timeout 120 gst-launch-1.0 -q videotestsrc num-buffers=30 \
    ! bipssink channel="$channel" wait-for-consumer=true >"$tmp/gst-producer.log" 2>&1 &
  ppid_=$!
  pids+=("$ppid_")
  clean timeout 120 gst-launch-1.0 -v bipssrc channel="$channel" timeout=30000 \
    ! fakesink silent=false >"$tmp/gst-consumer.log" 2>&1
  rc_c=$?
  wait "$ppid_"
  rc_p=$?
  echo "producer exit $rc_p, consumer exit $rc_c;" \
    "consumer received $(grep -c 'chain' "$tmp/gst-consumer.log") buffers"
  if ((rc_p != 0 || rc_c != 0)); then
    echo "--- producer:"; tail -n 20 "$tmp/gst-producer.log"
    echo "--- consumer:"; grep -v 'chain' "$tmp/gst-consumer.log" | tail -n 20
    return 1
  fi
}
check "gst-launch-1.0 producer (bipssink) and consumer (bipssrc)" gst_pair

# ---- Python ----------------------------------------------------------------

py_import() {
  clean /usr/bin/python3 -c 'import bips; print(bips.__file__)' | tee "$tmp/py-import.out" &&
    grep -q '^/usr/lib/python3/dist-packages/bips/' "$tmp/py-import.out"
}
check "/usr/bin/python3 -c 'import bips'" py_import

cat >"$tmp/pair.py" <<'PY'
import sys

import numpy as np

import bips

channel = sys.argv[1]
with bips.Producer(channel, slot_size=4096) as producer:
    with bips.Consumer(channel, timeout=10.0) as consumer:
        for i in range(5):
            producer.write(np.full(4096, i, dtype=np.uint8), pts=i * 1000)
            with consumer.next(timeout=10.0) as frame:
                data = frame.data
                assert frame.size == 4096 and frame.pts == i * 1000, (frame.size, frame.pts)
                assert int(data.min()) == i and int(data.max()) == i, "wrong bytes"
print(f"read 5 frames of 4096 bytes through channel {channel}")
PY
check "Python bips.Producer and bips.Consumer" clean /usr/bin/python3 "$tmp/pair.py" "smoke-$$-py"

# ---- C++ against the -dev package ------------------------------------------

cat >"$tmp/pair.cpp" <<'CPP'
// A producer and a consumer (two threads) pass one frame through a channel.
#include <bips/bips.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *channel = argv[1];
    constexpr uint64_t size = 64 * 1024;
    bips::ProducerOptions opts;
    opts.slot_size = size;
    auto producer = bips::Producer::create(channel, opts);
    if (!producer) {
        std::fprintf(stderr, "create: %s\n", producer.error().message.c_str());
        return 1;
    }
    std::atomic<bool> done{false};
    std::atomic<int> produce_status{0};
    std::thread writer([&] {
        while (!done) {
            auto slot = (*producer)->acquire(std::chrono::milliseconds(100));
            if (!slot && slot.error().code == bips::Errc::Timeout)
                continue; // the consumer holds its frame and reads no more: ring full
            if (!slot) {
                std::fprintf(stderr, "acquire: %s\n", slot.error().message.c_str());
                produce_status = 1;
                return;
            }
            std::memset(slot->data, 0x5a, size);
            if (auto r = (*producer)->publish(*slot, bips::FrameInfo{.size = size}); !r) {
                std::fprintf(stderr, "publish: %s\n", r.error().message.c_str());
                produce_status = 1;
                return;
            }
        }
    });
    int status = 1;
    auto consumer = bips::Consumer::attach(channel, {}, std::chrono::seconds(10));
    if (!consumer) {
        std::fprintf(stderr, "attach: %s\n", consumer.error().message.c_str());
    } else if (auto frame = (*consumer)->next(std::chrono::seconds(10)); !frame) {
        std::fprintf(stderr, "next: %s\n", frame.error().message.c_str());
    } else {
        const auto *p = reinterpret_cast<const unsigned char *>(frame->data());
        bool ok = frame->size() == size;
        for (uint64_t i = 0; ok && i < size; ++i)
            ok = p[i] == 0x5a;
        if (ok) {
            std::printf("read one %llu-byte frame through channel %s (libbips %s)\n",
                        static_cast<unsigned long long>(size), channel, BIPS_VERSION);
            status = 0;
        } else {
            std::fprintf(stderr, "the frame read is not the frame written\n");
        }
    }
    done = true;
    writer.join();
    return status | produce_status;
}
CPP

cxx_build() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  clean sh -c 'set -x; g++ $(pkg-config --cflags bips-1.0) pair.cpp -o pair $(pkg-config --libs bips-1.0)' &&
    { local libs; libs=$(ldd "$tmp/pair") && echo "$libs" | grep libbips &&
      grep -Eq "libbips.so.0 => (/usr)?/lib/$multiarch/libbips.so.0 " <<<"$libs"; }
}
if check "g++ \$(pkg-config --cflags --libs bips-1.0)" cxx_build; then
  check "C++ producer and consumer pass one frame" clean ./pair "smoke-$$-cxx"
fi

# ---- the tool --------------------------------------------------------------

check "bips --help" clean bips --help

# ---- purge -----------------------------------------------------------------

purge() {
  local to_purge=("${packages[@]}")
  packages=()
  "${sudo[@]}" apt-get purge -y -q "${to_purge[@]}" || return 1
  local p left=0
  for p in "${to_purge[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
      echo "still installed: $p"
      left=1
    fi
  done
  [[ ! -e "$libdir/gstreamer-1.0/libgstbips.so" && ! -e /usr/lib/python3/dist-packages/bips ]] ||
    { echo "files left behind"; left=1; }
  return $left
}
check "apt-get purge ${packages[*]}" purge

summary
((failed == 0))
