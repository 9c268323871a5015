#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks that libbips and libbips-gobject export only their public API.

Usage: exports.py NM INCLUDE_DIR LIBBIPS [LIBBIPS_GOBJECT]

libbips: exactly the classes and free functions that the headers in
INCLUDE_DIR mark BIPS_EXPORT (each of them, so lib/libbips.map is complete,
and nothing else: no bips::detail, no std:: instantiations).
libbips-gobject: only bips_* C functions, none of the facade's C++ helpers.
"""
import pathlib
import re
import subprocess
import sys


def exported(nm, lib):
    out = subprocess.run([nm, "-DC", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    # "address type name": the name may hold spaces (C++ signatures).
    return [line.split(" ", 2)[2] for line in out.splitlines() if line.count(" ") >= 2]


def public_api(include_dir):
    classes, functions = set(), set()
    for header in sorted(pathlib.Path(include_dir).glob("*.h")):
        text = header.read_text(encoding="utf-8")
        classes.update(re.findall(r"\bclass\s+BIPS_EXPORT\s+(\w+)", text))
        for decl in re.findall(r"^BIPS_EXPORT\s+([^;{]*?)\(", text, flags=re.M):
            functions.add(re.findall(r"\w+", decl)[-1])
    return classes, functions


def main():
    nm, include_dir, libbips = sys.argv[1], sys.argv[2], sys.argv[3]
    failures = []

    classes, functions = public_api(include_dir)
    if not classes or not functions:
        failures.append(f"no BIPS_EXPORT declarations found in {include_dir}")
    names = exported(nm, libbips)

    def public(name):
        return (any(name.startswith(f"bips::{c}::") for c in classes) or
                any(re.match(rf"bips::{f}(\[|\()", name) for f in functions))

    failures += [f"{libbips} exports a symbol that is not public API: {n}"
                 for n in names if "bips::detail" in n or not public(n)]
    for c in sorted(classes):
        if not any(n.startswith(f"bips::{c}::") for n in names):
            failures.append(f"{libbips} exports nothing of class bips::{c} (lib/libbips.map?)")
    for f in sorted(functions):
        if not any(re.match(rf"bips::{f}(\[|\()", n) for n in names):
            failures.append(f"{libbips} does not export bips::{f} (lib/libbips.map?)")
    print(f"{libbips}: {len(names)} symbols, "
          f"{sum('bips::detail' in n for n in names)} of bips::detail; public API: "
          f"{len(classes)} classes, {len(functions)} free functions")

    if len(sys.argv) > 4:
        gobject = sys.argv[4]
        names = exported(nm, gobject)
        c_api = [n for n in names if n.startswith("bips_") and "(" not in n]
        other = [n for n in names if n not in c_api]
        failures += [f"{gobject} exports a symbol that is not its C API: {n}" for n in other]
        if "bips_consumer_get_type" not in c_api:
            failures.append(f"{gobject} does not export bips_consumer_get_type")
        print(f"{gobject}: {len(c_api)} bips_* C functions, {len(other)} other symbols")

    for f in failures:
        print("error: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
