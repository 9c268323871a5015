# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers of the Python suite: /proc/self/maps checks, waits, test patterns."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time


def mappings():
    """(start, end, perms, device, inode, path) of every mapping of this
    process, from /proc/self/maps."""
    out = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            major, minor = (int(x, 16) for x in fields[3].split(":"))
            path = fields[5].strip() if len(fields) > 5 else ""
            out.append((start, end, fields[1], os.makedev(major, minor), int(fields[4]), path))
    return out


def assert_in_channel_mapping(address: int, size: int, channel: str) -> str:
    """Fails unless [address, address + size) lies in one mapping of the
    channel's shared-memory file /dev/shm/bips-<channel>: the mapping shows
    that path (consumers), or the file's device and inode (a producer maps
    the file under the temporary name it was created with, which
    /proc/self/maps shows "(deleted)"). Returns the mapping's path."""
    import bips

    path = bips.segment_path(channel)
    assert path.endswith("/bips-" + channel)
    try:
        st = os.stat(path)
        ident = (st.st_dev, st.st_ino)
    except FileNotFoundError:  # the producer is gone and removed the name
        ident = None
    for start, end, _perms, dev, inode, mapped in mappings():
        if start <= address and address + size <= end:
            same_path = mapped.split(" (deleted)")[0] == path
            assert same_path or (dev, inode) == ident, (
                f"{size} bytes at {address:#x} lie in {mapped or 'an anonymous mapping'}, "
                f"not in {path}: the data was copied")
            return mapped
    raise AssertionError(f"{address:#x} is not in any mapping of this process")


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def pattern(size: int, k: int):
    """The bytes bips-pytest-producer writes into frame k."""
    import numpy as np

    i = np.arange(size, dtype=np.uint64)
    return ((i * 7 + k * 13) & 0xFF).astype(np.uint8)


def python_child(code: str, *args: str) -> subprocess.Popen:
    """Runs `code` in another /usr/bin/python3 with this environment."""
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def assert_interrupt_ends_a_blocked_next(consumer) -> None:
    """Blocks `consumer.next(timeout=None)` in a thread, calls interrupt()
    0.1 s later, and asserts that the wait ended with bips.Timeout."""
    import bips

    errors = []

    def wait():
        try:
            consumer.next(timeout=None)
        except bips.Timeout as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    threading.Event().wait(0.1)
    consumer.interrupt()
    thread.join(timeout=5)
    assert not thread.is_alive() and len(errors) == 1
