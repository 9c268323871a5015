#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks that the C++ snippet of README.md and pipelines/cxx_example.cpp agree.

Usage: readme_sync.py README.md pipelines/cxx_example.cpp

Every non-blank line of the README's ```cpp block must appear, in the same
order, as a line of the example (whitespace runs compared as one space, so
indentation may differ). The example is compiled and run as a test, so a
snippet that passes this check compiles and runs as written.
"""
import re
import sys


def normalise(line):
    return re.sub(r"\s+", " ", line.strip())


def cpp_blocks(markdown):
    return re.findall(r"^```cpp\n(.*?)^```", markdown, flags=re.M | re.S)


def main():
    readme_path, example_path = sys.argv[1], sys.argv[2]
    with open(readme_path, encoding="utf-8") as f:
        blocks = cpp_blocks(f.read())
    if not blocks:
        print(f"{readme_path}: no ```cpp block found")
        return 1
    with open(example_path, encoding="utf-8") as f:
        example = [normalise(l) for l in f]

    at = 0  # the example's lines before `at` are used up
    missing = []
    for block in blocks:
        for number, line in enumerate(block.splitlines(), 1):
            want = normalise(line)
            if not want:
                continue
            try:
                at = example.index(want, at) + 1
            except ValueError:
                missing.append(line)
    if missing:
        print(f"These lines of the C++ snippet of {readme_path} are not in {example_path} "
              "(in that order); update one to match the other:")
        for line in missing:
            print("    " + line)
        return 1
    lines = sum(1 for b in blocks for l in b.splitlines() if l.strip())
    print(f"all {lines} lines of the README's C++ snippet are in {example_path}, in order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
