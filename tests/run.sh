#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs every test: sets up and builds (tools/setup.sh), runs the meson test
# suites in build/, then the core and gst suites again under ASan+UBSan in
# build-asan/, the core suite under ThreadSanitizer in build-tsan/, and the
# core suite and the tool cross-built for aarch64 under qemu (tests/arm64.sh,
# build-arm64/), and last the Debian packages' smoke test. Ends
# with "N passed, N failed, N skipped"; exits non-zero on any failure. Extra
# arguments go to every `meson test` call.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

asan="$root/build-asan"
if [[ ! -f "$asan/build.ninja" ]]; then
  meson setup "$asan" "$root" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dintrospection=disabled -Dbuildtype=debug >/dev/null ||
    { echo "0 passed, 1 failed"; exit 1; }
fi
meson compile -C "$asan" >/dev/null || meson compile -C "$asan" ||
  { echo "0 passed, 1 failed"; exit 1; }

# ThreadSanitizer: the library and the core suite only. The GStreamer
# plugin and the GObject facade are not built (their dependencies are not
# instrumented), nor is anything the core suite does not run (the tool,
# benchmarks, examples): only the core tests' targets are compiled, which
# are exactly what `meson test --suite core` would rebuild.
tsan="$root/build-tsan"
if [[ ! -f "$tsan/build.ninja" ]]; then
  meson setup "$tsan" "$root" -Db_sanitize=thread -Db_lundef=false \
    -Dgst=disabled -Dintrospection=disabled -Dbuildtype=debug >/dev/null ||
    { echo "0 passed, 1 failed"; exit 1; }
fi
# Regenerates first when a meson.build changed, so the list is current.
ninja -C "$tsan" build.ninja >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
# The files of the targets the core tests depend on, from meson's
# introspection data (as `meson test` finds them).
mapfile -t tsan_targets < <(python3 - "$tsan" <<'PY'
import json, os, sys
wd = sys.argv[1]
def info(kind):
    with open(os.path.join(wd, "meson-info", f"intro-{kind}.json")) as f:
        return json.load(f)
files = {t["id"]: t["filename"] for t in info("targets")}
deps = {d for t in info("tests") if "bips:core" in t["suite"] for d in t["depends"]}
for f in sorted(f for d in deps for f in files[d]):
    print(os.path.relpath(f, wd))
PY
)
((${#tsan_targets[@]})) || { echo "0 passed, 1 failed"; exit 1; }
ninja -C "$tsan" "${tsan_targets[@]}" >/dev/null || ninja -C "$tsan" "${tsan_targets[@]}" ||
  { echo "0 passed, 1 failed"; exit 1; }

status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  meson test -C "$asan" --suite core --print-errorlogs --num-processes 2 "$@" || status=1
cp "$asan/meson-logs/testlog.json" "$asan/meson-logs/testlog-core.json" 2>/dev/null
# The element tests under the sanitizers: the plugin is scanned in-process
# (an uninstrumented gst-plugin-scanner cannot load it), and leak checking
# is off because GStreamer keeps global allocations until exit.
if [[ -f "$asan/gst/libgstbips.so" ]]; then
  GST_REGISTRY_FORK=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    meson test -C "$asan" --suite gst --print-errorlogs \
    --num-processes 2 "$@" || status=1
  logs=("$asan/meson-logs/testlog-core.json" "$asan/meson-logs/testlog.json")
else
  logs=("$asan/meson-logs/testlog.json")
fi

# The core suite under ThreadSanitizer (build-tsan/). TSAN_OPTIONS:
#  halt_on_error=1        the first report ends the process (exit code 66).
#                         Forked children leave with _exit() or are SIGKILLed
#                         by their test; this way a race in a child shows up
#                         as an unexpected exit status and fails the test
#                         instead of only being printed.
#  second_deadlock_stack=1 lock-order-inversion reports show where both
#                         mutexes were taken, not only one of them.
#  history_size=4         remembers the last 512K memory accesses of each
#                         thread instead of 128K, so that the stack of the
#                         earlier access of a race can still be restored in
#                         the long-running stress and process tests.
# Left at their defaults on purpose: die_after_fork=1 (children forked while
# the parent has threads, e.g. a producer's service thread, start no thread
# of their own; one that did would be killed with a clear message rather
# than run in a state TSan does not support) and report_signal_unsafe=1
# (the library's signal handler only makes async-signal-safe calls).
# No suppressions: no report is expected, and any report fails the run.
# GCC 12's TSan cannot map its shadow memory when the kernel randomises
# mmap addresses with more than 28 bits (vm.mmap_rnd_bits; "FATAL:
# ThreadSanitizer: unexpected memory mapping"): ASLR is then turned off for
# this run only.
no_aslr=()
if [[ $(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28) -gt 28 ]]; then
  no_aslr=(setarch "$(uname -m)" -R)
fi
rm -f "$tsan/meson-logs/testlog.json"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4 \
  "${no_aslr[@]}" meson test -C "$tsan" --suite core --print-errorlogs \
  --num-processes 2 "$@" || status=1
logs+=("$tsan/meson-logs/testlog.json")

# aarch64: the library, the core tests and the tool cross-built with
# Debian's cross toolchain and run under qemu-aarch64 (tests/arm64.sh).
# It removes its old log first, so a failure before the tests counts as a
# missing log; a failure of its CLI checks alone counts as one more.
./tests/arm64.sh "$@"
arm64_status=$?
((arm64_status == 0)) || status=1
arm64_log="$root/build-arm64/meson-logs/testlog.json"
logs+=("$arm64_log")

# Last, so that the installed packages never shadow the build tree: build
# the Debian packages, install them, use them from the system paths only,
# and purge them (tests/package_smoke.sh; 77 = skipped, e.g. not root).
smoke_log="$root/build/meson-logs/testlog-package-smoke.json"
./tests/package_smoke.sh --json "$smoke_log" || (($? == 77)) || status=1
logs+=("$smoke_log")

# Sum the outcomes of all runs from meson's JSON logs. A test whose output
# holds a sanitizer report counts as failed even if it passed.
summary=$(ARM64_STATUS=$arm64_status ARM64_LOG="$arm64_log" \
  python3 - "$root/build/meson-logs/testlog.json" "${logs[@]}" <<'PY'
import json, os, sys
passed = failed = skipped = 0
arm64_failed = 0
for path in sys.argv[1:]:
    before = failed
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        r = t.get("result")
        output = t.get("stdout", "") + t.get("stderr", "")
        if "WARNING: ThreadSanitizer:" in output:
            r = "FAIL"
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
    if path == os.environ.get("ARM64_LOG"):
        arm64_failed = failed - before
if os.environ.get("ARM64_STATUS", "0") != "0" and arm64_failed == 0:
    failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
)
echo "$summary"
case "$summary" in
  *" 0 failed"*) ;;
  *) status=1 ;;
esac
exit $status
