# SPDX-License-Identifier: LGPL-2.1-or-later
"""Ctrl-C during the package's waits: a child blocked in attach, next(),
frames(), reattach() or acquire()/write() gets SIGINT many times, at random
moments, and must raise KeyboardInterrupt within 1 s each time (never
PyGObject's "RuntimeError: Converting the GError failed"), then go on or
close cleanly and exit 0. Plus the timeouts that the waits in slices must
keep."""

from __future__ import annotations

import queue
import random
import signal
import threading
import time

import pytest

import bips

from helpers import assert_interrupt_ends_a_blocked_next, python_child, wait_for

ROUNDS = 20  # SIGINTs per child
MAX_DELAY = 0.15  # seconds: random moments across the 0.1 s slices

# What every child runs: `rounds(wait)` calls wait(i) ROUNDS times, each
# time after telling the parent "waiting i", and reports what ended it.
CHILD_COMMON = r"""
import sys, time
import bips

channel = sys.argv[1]
ROUNDS = int(sys.argv[2])

def report(line):
    print(line, flush=True)

def rounds(wait):
    for i in range(ROUNDS):
        try:
            report(f"waiting {i}")
            wait(i)
            report("returned")
        except KeyboardInterrupt:
            report("caught KeyboardInterrupt")
        except BaseException as exc:
            report(f"caught {type(exc).__name__}: {exc}")
"""

CHILD_NEXT = CHILD_COMMON + r"""
consumer = bips.Consumer(channel, "lossless", timeout=10)
report("attached")

def wait(i):
    if i % 3 == 0:
        consumer.next(timeout=None)
    elif i % 3 == 1:
        consumer.next(timeout=60)
    else:
        for _frame in consumer.frames(timeout=None):
            pass

rounds(wait)
with consumer.next(timeout=10) as frame:  # still usable
    report(f"frame {frame.sequence}")
consumer.close()
report("closed")
"""

CHILD_ATTACH = CHILD_COMMON + r"""
def wait(i):
    if i % 2:
        bips.Consumer(channel, policy="latest")  # the README's snippet: 5 s
    else:
        bips.Consumer(channel, timeout=None)

rounds(wait)
report("attaching")
with bips.Consumer(channel, timeout=10) as consumer:
    report(f"attached {consumer.epoch}")
report("closed")
"""

CHILD_REATTACH = CHILD_COMMON + r"""
consumer = bips.Consumer(channel, timeout=10)
report("attached")
try:
    consumer.next(timeout=10)
except bips.ProducerGone:
    report("gone")
rounds(lambda i: consumer.reattach(timeout=None if i % 2 else 60))
report("reattaching")
consumer.reattach(timeout=10)
report(f"reattached {consumer.epoch}")
consumer.close()
report("closed")
"""

CHILD_GONE = CHILD_COMMON + r"""
consumer = bips.Consumer(channel, timeout=10)

def wait(i):
    if i:
        consumer.reattach(timeout=10)
    report("attached")
    try:
        consumer.next(timeout=None)
    except bips.ProducerGone:
        time.sleep(10)  # then the SIGINT lands here

rounds(wait)
consumer.close()
report("closed")
"""

CHILD_ACQUIRE = CHILD_COMMON + r"""
import numpy as np

producer = bips.Producer(channel, 64, slot_count=2, max_wait=None)
report("ready")
deadline = time.monotonic() + 10
while producer.consumer_count < 1 and time.monotonic() < deadline:
    time.sleep(0.005)
for k in range(2):
    producer.write(np.full(64, k, np.uint8), timeout=5)
report("full")

def wait(i):
    if i % 2:
        producer.acquire(timeout=None)
    else:
        producer.write(np.zeros(64, np.uint8), timeout=60)

rounds(wait)
report("acquiring")
with producer.acquire(timeout=10) as slot:  # still usable
    slot.data[:] = 7
report(f"published {producer.published}")
producer.close()
report("closed")
"""


class _Child:
    """A python_child() whose stdout lines are read by a thread, so the
    parent can wait for each with a timeout."""

    def __init__(self, code: str, channel: str):
        self.proc = python_child(code, channel, str(ROUNDS))
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def line(self, timeout: float = 10.0) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.proc.kill()
            raise AssertionError(f"the child said nothing in {timeout} s (exit "
                                 f"{self.proc.wait()}): {self.proc.stderr.read()}")
        return line

    def expect(self, prefix: str) -> str:
        line = self.line()
        assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}"
        return line

    def interrupt_rounds(self, prepare=None, deliver=None) -> dict:
        """Sends SIGINT once per round, at a random moment of the wait
        (after `prepare(i)`, through `deliver(rng)` if given); returns what
        the child caught, counted, and the longest time from SIGINT to the
        child's report."""
        seed = random.randrange(1 << 32)
        rng = random.Random(seed)
        caught: dict = {}
        slowest = 0.0
        for i in range(ROUNDS):
            self.expect(f"waiting {i}")
            if prepare is not None:
                prepare(i)
            time.sleep(rng.uniform(0.0, MAX_DELAY))
            sent = time.monotonic()
            if deliver is not None:
                deliver(rng)
            else:
                self.proc.send_signal(signal.SIGINT)
            line = self.line(timeout=5.0)
            slowest = max(slowest, time.monotonic() - sent)
            caught[line] = caught.get(line, 0) + 1
        print(f"seed {seed}: {caught}, slowest {slowest:.3f} s")
        return {"caught": caught, "slowest": slowest}

    def finish(self) -> None:
        assert self.proc.wait(timeout=10) == 0, self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _assert_every_sigint_interrupted(result: dict) -> None:
    assert result["caught"] == {"caught KeyboardInterrupt": ROUNDS}, result
    assert result["slowest"] < 1.0, result


def test_sigint_interrupts_next_and_frames(channel):
    with bips.Producer(channel, 64) as producer:  # live, publishes nothing
        child = _Child(CHILD_NEXT, channel)
        try:
            child.expect("attached")
            _assert_every_sigint_interrupted(child.interrupt_rounds())
            with producer.acquire(timeout=5) as slot:
                slot.data[:] = 1
            assert child.line() == "frame 0"
            assert child.line() == "closed"
            child.finish()
            wait_for(lambda: producer.consumer_count == 0, what="the child's consumer to go")
        finally:
            child.close()


def test_sigint_interrupts_attach(channel):
    child = _Child(CHILD_ATTACH, channel)
    try:
        _assert_every_sigint_interrupted(child.interrupt_rounds())
        child.expect("attaching")
        with bips.Producer(channel, 64) as producer:
            assert child.line() == f"attached {producer.epoch}"
            assert child.line() == "closed"
            child.finish()
            assert producer.consumer_count == 0
    finally:
        child.close()


def test_sigint_interrupts_reattach(channel):
    child = _Child(CHILD_REATTACH, channel)
    try:
        with bips.Producer(channel, 64):
            child.expect("attached")
        child.expect("gone")
        _assert_every_sigint_interrupted(child.interrupt_rounds())
        child.expect("reattaching")
        with bips.Producer(channel, 64) as successor:
            assert child.line() == f"reattached {successor.epoch}"
            assert child.line() == "closed"
            child.finish()
    finally:
        child.close()


def test_sigint_as_the_producer_goes(channel):
    """Ctrl-C in a shell that runs both: the producer closes as the
    consumer gets SIGINT, so its wait ends in ProducerGone while the
    KeyboardInterrupt is pending. Once a GError, that was PyGObject's
    RuntimeError; now the KeyboardInterrupt wins every time."""
    producers = [bips.Producer(channel, 64)]
    child = _Child(CHILD_GONE, channel)

    def prepare(i):
        if i:
            producers.append(bips.Producer(channel, 64))
        child.expect("attached")

    def deliver(rng):
        # The close and the signal within 3 ms of each other, either first.
        gap = rng.uniform(-0.003, 0.003)
        if gap < 0:
            producers[-1].close()
            time.sleep(-gap)
            child.proc.send_signal(signal.SIGINT)
        else:
            child.proc.send_signal(signal.SIGINT)
            time.sleep(gap)
            producers[-1].close()

    try:
        _assert_every_sigint_interrupted(child.interrupt_rounds(prepare, deliver))
        assert child.line() == "closed"
        child.finish()
    finally:
        child.close()
        for producer in producers:
            producer.close()


def test_sigint_interrupts_acquire_held_back_by_a_lossless_consumer(channel):
    child = _Child(CHILD_ACQUIRE, channel)
    try:
        child.expect("ready")
        with bips.Consumer(channel, "lossless", timeout=10) as consumer:
            # Both slots hold frames this lossless consumer has not read
            # (max_wait=None: the producer waits for it forever).
            child.expect("full")
            _assert_every_sigint_interrupted(child.interrupt_rounds())
            child.expect("acquiring")
            with consumer.next(timeout=5) as frame:
                assert frame.sequence == 0 and (frame.data == 0).all()
            assert child.line() == "published 3"
            for k in (1, 2):
                with consumer.next(timeout=5) as frame:
                    assert frame.sequence == k and (frame.data == (1, 7)[k - 1]).all()
            assert child.line() == "closed"
            child.finish()
    finally:
        child.close()


def _raises_after(exc_type, call):
    """Runs call(), which must raise exc_type; returns the time it took."""
    start = time.monotonic()
    with pytest.raises(exc_type):
        call()
    return time.monotonic() - start


def _assert_lasted(elapsed: float, timeout: float) -> None:
    # Never early (the last slice rounds up to a millisecond); late by at
    # most a generous second.
    assert timeout - 0.002 <= elapsed < timeout + 1.0, (elapsed, timeout)


def test_sliced_waits_keep_their_timeouts(channel):
    _assert_lasted(_raises_after(bips.Timeout, lambda: bips.Consumer(channel, timeout=0.35)),
                   0.35)
    assert _raises_after(bips.Timeout, lambda: bips.Consumer(channel, timeout=0)) < 0.5
    producer = bips.Producer(channel, 64, slot_count=2, max_wait=None)
    consumer = bips.Consumer(channel, "lossless", timeout=1)
    anticipating = bips.Consumer(channel, "latest", timeout=1, anticipate=0.001)
    try:
        _assert_lasted(_raises_after(bips.Timeout, lambda: consumer.next(timeout=0.25)),
                       0.25)
        _assert_lasted(_raises_after(bips.Timeout, lambda: anticipating.next(timeout=0.25)), 0.25)
        assert _raises_after(bips.Timeout, lambda: consumer.next(timeout=0)) < 0.5

        # interrupt() still ends a blocked next() at once, and resume()
        # makes later waits last their whole timeout again.
        assert_interrupt_ends_a_blocked_next(consumer)
        assert _raises_after(bips.Timeout, lambda: consumer.next(timeout=5)) < 0.5
        consumer.resume()
        _assert_lasted(_raises_after(bips.Timeout, lambda: consumer.next(timeout=0.15)),
                       0.15)

        for k in range(2):
            producer.write(bytes([k]) * 64, timeout=1)
        _assert_lasted(_raises_after(bips.Timeout, lambda: producer.acquire(timeout=0.25)),
                       0.25)
        with pytest.raises(bips.WouldBlock):
            producer.acquire(timeout=0)
        producer.interrupt()
        assert _raises_after(bips.Busy, lambda: producer.acquire(timeout=5)) < 0.5
        producer.resume()
    finally:
        producer.close()
    for k in range(2):
        with consumer.next(timeout=1) as frame:
            assert frame.data[0] == k
    with pytest.raises(bips.ProducerGone):
        consumer.next(timeout=5)
    _assert_lasted(_raises_after(bips.Timeout, lambda: consumer.reattach(timeout=0.25)),
                   0.25)
    consumer.close()
    anticipating.close()


def test_a_ready_frame_or_slot_takes_one_call(channel):
    """The common case does not wait in slices: one poll of the binding."""
    with bips.Producer(channel, 64) as producer, \
            bips.Consumer(channel, "lossless", timeout=1) as consumer:
        calls = []
        poll_acquire, poll_next = producer._poll_acquire, consumer._poll_next_into
        producer._poll_acquire = lambda ms: calls.append(("acquire", ms)) or poll_acquire(ms)
        consumer._poll_next_into = lambda f, ms: calls.append(("next", ms)) or poll_next(f, ms)
        producer.write(b"x" * 64, timeout=None)
        with consumer.next(timeout=None):
            pass
        producer.write(b"y" * 64, timeout=0.03)
        with consumer.next(timeout=2.5):
            pass
        assert calls == [("acquire", 100), ("next", 100), ("acquire", 30), ("next", 100)]
        with pytest.raises(bips.Timeout):
            consumer.next(timeout=0)
        assert calls[-1] == ("next", 0)


def test_ctrl_c_as_a_frame_comes_leaves_the_consumer_usable(channel):
    """A KeyboardInterrupt raised right after the library filled the frame
    (the signal handler runs as the call returns) drops that frame and its
    slot, and the next call reads the next frame into a new, empty one."""
    with bips.Producer(channel, 16, slot_count=2) as producer, \
            bips.Consumer(channel, "lossless", timeout=1, max_held=bips.UNLIMITED_HELD) \
            as consumer:
        real = consumer._poll_next_into

        def interrupted(gframe, ms):
            result = real(gframe, ms)
            raise KeyboardInterrupt

        consumer._poll_next_into = interrupted
        producer.write(b"a" * 16, timeout=1)
        with pytest.raises(KeyboardInterrupt):
            consumer.next(timeout=1)
        consumer._poll_next_into = real
        # The dropped frame's slot is free again: two more writes fit the
        # two slots while nothing else is read.
        producer.write(b"b" * 16, timeout=1)
        producer.write(b"c" * 16, timeout=1)
        for expected in (b"b", b"c"):
            with consumer.next(timeout=1) as frame:
                assert bytes(frame.data[:1]) == expected


def test_two_threads_never_get_the_same_frame(channel):
    """next() from two threads: each frame goes to one of them, in its own
    slot, and each array keeps reading its own frame while the producer
    writes on."""
    with bips.Producer(channel, 16, slot_count=8) as producer, \
            bips.Consumer(channel, "lossless", timeout=1, max_held=bips.UNLIMITED_HELD) \
            as consumer:
        got = queue.Queue()

        def read():
            frame = consumer.next(timeout=5)
            got.put((frame.sequence, frame.data))

        threads = [threading.Thread(target=read) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.1)  # both are waiting
        producer.write(b"A" * 16, timeout=1)
        producer.write(b"B" * 16, timeout=1)
        for t in threads:
            t.join(timeout=10)
        results = sorted([got.get_nowait(), got.get_nowait()], key=lambda r: r[0])
        assert [seq for seq, _ in results] == [0, 1]
        for k in range(6):  # would reuse a slot given back by mistake
            producer.write(bytes([ord("a") + k]) * 16, timeout=1)
        assert [bytes(data[:1]) for _, data in results] == [b"A", b"B"]
