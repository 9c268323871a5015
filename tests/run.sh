#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs every test: sets up and builds (tools/setup.sh), runs the meson test
# suites in build/, then the core and gst suites again under ASan+UBSan in
# build-asan/. Ends with "N passed, N failed, N skipped"; exits non-zero on
# any failure. Extra arguments go to every `meson test` call.
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

# Sum the outcomes of all runs from meson's JSON logs.
summary=$(python3 - "$root/build/meson-logs/testlog.json" "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
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
