#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs every test: sets up and builds (tools/setup.sh), runs the meson test
# suites in build/, then the core suite again under ASan+UBSan in
# build-asan/. Ends with "N passed, N failed, N skipped"; exits non-zero on
# any failure. Extra arguments go to both `meson test` calls.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

asan="$root/build-asan"
if [[ ! -f "$asan/build.ninja" ]]; then
  meson setup "$asan" "$root" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dgst=disabled -Dintrospection=disabled -Dbuildtype=debug >/dev/null ||
    { echo "0 passed, 1 failed"; exit 1; }
fi
meson compile -C "$asan" >/dev/null || meson compile -C "$asan" ||
  { echo "0 passed, 1 failed"; exit 1; }

status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C "$asan" --suite core --print-errorlogs --num-processes 2 "$@" || status=1

# Sum the outcomes of both runs from meson's JSON logs.
summary=$(python3 - "$root/build/meson-logs/testlog.json" "$asan/meson-logs/testlog.json" <<'PY'
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
