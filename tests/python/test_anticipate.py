# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Python consumer with `anticipate`: it sleeps until shortly before the
next frame is due, warms up its per-frame path, then busy-waits. These
tests check that it loses nothing and keeps every promise of next()."""

import threading
import time

import pytest

import bips
import bips._anticipate
from helpers import assert_interrupt_ends_a_blocked_next, wait_for

PERIOD = 0.01  # a paced producer at 100 frames/s


def _paced(producer, count, start_value=0, eos=False):
    """Publishes `count` frames, one per PERIOD, from a thread; each
    frame's bytes hold its number."""

    def run():
        due = time.monotonic()
        for k in range(count):
            due += PERIOD
            time.sleep(max(0.0, due - time.monotonic()))
            with producer.acquire(timeout=5) as slot:
                slot.data[...] = (start_value + k) % 256
        if eos:
            producer.end_of_stream()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def count_warm_ups(monkeypatch):
    calls = []
    real = bips._anticipate.Anticipation.warm_up

    def counting(gconsumer):
        calls.append(1)
        real(gconsumer)

    monkeypatch.setattr(bips._anticipate.Anticipation, "warm_up", staticmethod(counting))
    return calls


def test_every_paced_frame_arrives_in_order_after_a_warm_up(channel, count_warm_ups):
    # Two slots: a warm-up that held one would soon wedge the producer.
    with bips.Producer.video(channel, 64, 48, "RGBA", slot_count=2) as producer, \
            bips.Consumer(channel, "lossless", timeout=5, anticipate=0.004) as consumer:
        wait_for(lambda: producer.consumer_count == 1, what="the consumer to attach")
        thread = _paced(producer, 40, eos=True)
        values = []
        for frame in consumer.frames(timeout=5):
            values.append(int(frame.array[0, 0, 0]))
            assert (frame.array == values[-1]).all()
        thread.join(timeout=10)
        assert values == list(range(40))
        # Once the pace is known, next() warms up before frames (most of
        # them; fewer on a loaded machine, where frames may bunch up).
        assert len(count_warm_ups) >= 5


def test_the_wake_time_is_the_librarys_estimate(channel):
    # Python keeps no frame timing of its own: it wakes `ahead` before the
    # library's next_due, which is on the clock of time.monotonic_ns().
    with bips.Producer(channel, 64) as producer, \
            bips.Consumer(channel, timeout=5, anticipate=0.004) as consumer:
        gconsumer = consumer.gobject
        assert gconsumer.get_next_due() == 0, "no frame yet"
        thread = _paced(producer, 5)
        for k in range(5):
            before = time.monotonic_ns()
            consumer.next(timeout=5).release()
            after = time.monotonic_ns()
            due = gconsumer.get_next_due()
            if k == 0:
                assert due == 0, "one frame gives no interval"
                continue
            # Generous: paced frames may bunch up on a loaded machine.
            assert before < due < after + 20 * int(PERIOD * 1e9)
            assert consumer._anticipation.wake_ns(gconsumer) == due - 4_000_000
        thread.join(timeout=10)
        producer.end_of_stream()
        with pytest.raises(bips.EndOfStream):
            consumer.next(timeout=5)
        consumer.reattach(timeout=5)
        assert gconsumer.get_next_due() == 0, "reattach() forgets the pace"
        assert consumer._anticipation.wake_ns(gconsumer) is None


def test_timeout_is_honoured_when_frames_stop(channel):
    with bips.Producer(channel, 64) as producer, \
            bips.Consumer(channel, timeout=5, anticipate=0.004) as consumer:
        thread = _paced(producer, 5)
        for _ in range(5):
            consumer.next(timeout=5).release()
        thread.join(timeout=10)
        # The next frame is "due" in 10 ms, but none comes.
        start = time.monotonic()
        with pytest.raises(bips.Timeout):
            consumer.next(timeout=0.3)
        elapsed = time.monotonic() - start
        assert elapsed >= 0.29, "next() gave up before its timeout"
        assert elapsed < 10, "next() overran its timeout"
        with pytest.raises(bips.Timeout):
            consumer.next(timeout=0)


def test_interrupt_ends_an_anticipating_wait(channel):
    with bips.Producer(channel, 64) as producer, \
            bips.Consumer(channel, timeout=5, anticipate=0.004) as consumer:
        thread = _paced(producer, 3)
        for _ in range(3):
            consumer.next(timeout=5).release()
        thread.join(timeout=10)
        assert_interrupt_ends_a_blocked_next(consumer)


def test_end_of_stream_and_a_new_producer_reach_an_anticipating_consumer(channel):
    consumer = None
    try:
        with bips.Producer(channel, 64) as producer:
            consumer = bips.Consumer(channel, timeout=5, anticipate=0.004)
            thread = _paced(producer, 5, eos=True)
            for k in range(5):
                with consumer.next(timeout=5) as frame:
                    assert frame.data[0] == k
            with pytest.raises(bips.EndOfStream):
                consumer.next(timeout=5)
            thread.join(timeout=10)
        with pytest.raises(bips.ProducerGone):
            consumer.next(timeout=5)
        with bips.Producer(channel, 64) as producer:
            consumer.reattach(timeout=5)
            thread = _paced(producer, 3, start_value=100)
            assert [consumer.next(timeout=5).data[0] for _ in range(3)] == [100, 101, 102]
            thread.join(timeout=10)
    finally:
        if consumer is not None:
            consumer.close()
