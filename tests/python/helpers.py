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


def channel_memfd_name(channel: str) -> str:
    """How /proc/self/maps names a mapping of the channel's memory: the
    producer's memfd "bips-<channel>", which has no file system name."""
    return f"/memfd:bips-{channel} (deleted)"


def assert_in_channel_mapping(address: int, size: int, channel: str,
                              writable: bool = False) -> str:
    """Fails unless [address, address + size) lies in one mapping of the
    channel's memory: the memfd the producer hands to consumers, which
    /proc/self/maps shows as "/memfd:bips-<channel> (deleted)" (not the
    consumers' own "bips-<channel>-consumer" memfds nor the doorbell).
    Consumers map it read-only and only the producer writable, so the
    mapping must be writable exactly when `writable` is true (a producer's
    slot). Returns the mapping's path."""
    expected = channel_memfd_name(channel)
    for start, end, perms, _dev, _inode, mapped in mappings():
        if start <= address and address + size <= end:
            assert mapped == expected, (
                f"{size} bytes at {address:#x} lie in {mapped or 'an anonymous mapping'}, "
                f"not in {expected}: the data was copied")
            assert perms[0] == "r" and perms[3] == "s", (
                f"the mapping of {expected} at {address:#x} is {perms}, not readable and shared")
            assert (perms[1] == "w") == writable, (
                f"the mapping of {expected} at {address:#x} is {perms}: expected "
                f"{'writable (the producer)' if writable else 'read-only (a consumer)'}")
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
