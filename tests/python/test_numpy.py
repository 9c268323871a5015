# SPDX-License-Identifier: LGPL-2.1-or-later
"""The NumPy layer: zero-copy views, release semantics, producers and consumers
in this and other processes (C++ and Python)."""

import gc
import subprocess
import threading
import time

import numpy as np
import pytest

import bips
from helpers import (assert_in_channel_mapping, assert_interrupt_ends_a_blocked_next, pattern,
                     python_child, wait_for)


def _publish_fill(producer, value):
    with producer.acquire(timeout=1) as slot:
        slot.array[...] = value


def test_consumer_array_is_a_view_of_the_channel(channel):
    with bips.Producer.video(channel, 64, 48, "RGBA") as producer, \
            bips.Consumer(channel, timeout=1) as consumer:
        image = np.arange(48 * 64 * 4, dtype=np.uint32).reshape(48, 64, 4).astype(np.uint8)
        with producer.acquire(timeout=1) as slot:
            assert_in_channel_mapping(slot.data.ctypes.data, slot.capacity, channel,
                                      writable=True)
            slot.array[...] = image
        with consumer.next(timeout=1) as frame:
            array = frame.array
            assert array.shape == (48, 64, 4) and array.dtype == np.uint8
            assert not array.flags.writeable and not array.flags.owndata
            np.testing.assert_array_equal(array, image)
            path = assert_in_channel_mapping(array.ctypes.data, array.nbytes, channel)
            assert path == f"/memfd:bips-{channel} (deleted)"
            start, size = consumer.data_mapping
            assert start <= array.ctypes.data and array.ctypes.data + array.nbytes <= start + size
            with pytest.raises(ValueError):
                array[0, 0, 0] = 1
            with pytest.raises(ValueError):
                array.setflags(write=True)
            del array


def test_release_semantics(channel):
    with bips.Producer.video(channel, 8, 8, "GRAY8", slot_count=2) as producer, \
            bips.Consumer(channel, "lossless", timeout=1) as consumer:
        for v in (1, 2):
            _publish_fill(producer, v)

        # Context manager.
        with consumer.next(timeout=1) as frame:
            assert frame.array[0, 0] == 1
        assert frame.released
        with pytest.raises(bips.ReleasedError):
            frame.array
        with pytest.raises(bips.ReleasedError):
            frame.data
        assert frame.pts is not None and frame.sequence == 0  # metadata stays

        # Explicit release, twice.
        frame = consumer.next(timeout=1)
        assert frame.data[0] == 2
        frame.release()
        frame.release()
        with pytest.raises(bips.ReleasedError):
            frame.array
        assert frame.address == 0

        # Both slots were given back: the producer can fill both again.
        a = producer.acquire(timeout=0)
        b = producer.acquire(timeout=0)
        a.discard()
        b.discard()


def test_a_kept_array_holds_its_slot_until_dropped(channel):
    with bips.Producer.video(channel, 8, 8, "GRAY8", slot_count=2) as producer, \
            bips.Consumer(channel, "lossless", timeout=1,
                          max_held=bips.UNLIMITED_HELD) as consumer:
        _publish_fill(producer, 7)
        _publish_fill(producer, 8)
        frame = consumer.next(timeout=1)
        kept = frame.array[2:4]  # a derived view
        with pytest.warns(ResourceWarning):
            frame.release()
        with pytest.raises(bips.ReleasedError):
            frame.array
        del frame
        gc.collect()
        # Still mapped and still this frame's bytes: no crash, no reuse.
        assert (kept == 7).all()
        consumer.next(timeout=1).release()
        free = producer.acquire(timeout=0)
        with pytest.raises(bips.WouldBlock):
            producer.acquire(timeout=0)  # the other slot is held by `kept`
        free.discard()
        del kept
        both = [producer.acquire(timeout=0), producer.acquire(timeout=0)]
        for slot in both:
            slot.discard()


def test_arrays_outlive_consumer_and_producer_safely(channel):
    producer = bips.Producer.video(channel, 16, 16, "RGBA")
    consumer = bips.Consumer(channel, timeout=1)
    _publish_fill(producer, 9)
    frame = consumer.next(timeout=1)
    array = frame.array
    consumer.close()
    producer.close()
    del consumer, producer, frame
    gc.collect()
    assert int(array.sum()) == 9 * 16 * 16 * 4
    assert_in_channel_mapping(array.ctypes.data, array.nbytes, channel)


def test_planar_formats_are_plane_tuples(channel):
    for fmt, planes in (("NV12", ("y", "uv")), ("I420", ("y", "u", "v"))):
        name = f"{channel}-{fmt}"
        with bips.Producer.video(name, 15, 7, fmt) as producer, \
                bips.Consumer(name, timeout=1) as consumer:
            with producer.acquire(timeout=1) as slot:
                out = slot.array
                assert out._fields == planes
                for i, plane in enumerate(out):
                    plane[...] = 10 * (i + 1)
                del out
            with consumer.next(timeout=1) as frame:
                got = frame.array
                assert got._fields == planes
                assert got.y.shape == (7, 15)
                if fmt == "NV12":
                    assert got.uv.shape == (4, 8, 2)
                else:
                    assert got.u.shape == got.v.shape == (4, 8)
                for i, plane in enumerate(got):
                    assert (plane == 10 * (i + 1)).all()
                    assert_in_channel_mapping(plane.ctypes.data, 1, name)
                del got, plane


def test_cxx_producer_bytes(channel, cxx_producer):
    width, height, frames = 32, 16, 5
    proc = subprocess.Popen([cxx_producer, channel, str(frames), str(width), str(height), "1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with bips.Consumer(channel, "lossless", timeout=5) as consumer:
            seen = 0
            for frame in consumer.frames(timeout=10):
                array = frame.array
                assert array.shape == (height, width, 4)
                np.testing.assert_array_equal(array.reshape(-1), pattern(width * height * 4, seen))
                assert_in_channel_mapping(array.ctypes.data, array.nbytes, channel)
                assert frame.pts is not None
                seen += 1
                del array
            assert seen == frames and consumer.received == frames
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait()


CHILD_CONSUMER = r"""
import sys, numpy as np, bips
channel, count = sys.argv[1], int(sys.argv[2])
with bips.Consumer(channel, "lossless", timeout=10) as consumer:
    print("attached", flush=True)
    for k, frame in enumerate(consumer.frames(timeout=10)):
        with frame:
            a = frame.array
            expected = np.full(a.shape, k % 251, np.uint8)
            if not np.array_equal(a, expected):
                sys.exit(f"frame {k} differs")
            del a
    print("received", consumer.received, flush=True)
"""


def test_python_producer_to_python_consumer_in_another_process(channel):
    count = 20
    with bips.Producer.video(channel, 40, 30, "BGR") as producer:
        child = python_child(CHILD_CONSUMER, channel, str(count))
        try:
            assert child.stdout.readline().strip() == "attached"
            wait_for(lambda: producer.consumer_count == 1, what="the child to attach")
            for k in range(count):
                with producer.acquire(timeout=5) as slot:
                    slot.array[...] = k % 251
            producer.end_of_stream()
            out, err = child.communicate(timeout=30)
            assert child.returncode == 0, err
            assert out.strip() == f"received {count}"
        finally:
            child.kill()
            child.wait()


def test_two_consumers_with_different_policies(channel):
    count = 30
    with bips.Producer.video(channel, 8, 8, "GRAY8", slot_count=4) as producer, \
            bips.Consumer(channel, "lossless", timeout=1) as lossless, \
            bips.Consumer(channel, "latest", timeout=1) as latest:
        got_lossless = []

        def read_all():
            for frame in lossless.frames(timeout=10):
                got_lossless.append(int(frame.array[0, 0]))

        reader = threading.Thread(target=read_all)
        reader.start()
        for k in range(count):
            with producer.acquire(timeout=5) as slot:
                slot.array[...] = k
        producer.end_of_stream()
        reader.join(timeout=30)
        assert not reader.is_alive()
        # The lossless reader saw every frame, in order.
        assert got_lossless == list(range(count))
        # The latest reader, which never read meanwhile, gets the newest frame
        # and counts what it skipped.
        with latest.next(timeout=1) as frame:
            assert int(frame.array[0, 0]) == count - 1
        assert latest.skipped == count - 1
        assert latest.received == 1
        with pytest.raises(bips.EndOfStream):
            latest.next(timeout=1)


def test_clean_producer_restart_is_seen(channel):
    first = bips.Producer.video(channel, 8, 8, "GRAY8")
    consumer = bips.Consumer(channel, "lossless", timeout=1)
    _publish_fill(first, 1)
    with consumer.next(timeout=1) as frame:
        assert frame.array.shape == (8, 8) and frame.array[0, 0] == 1
    first.close()
    with pytest.raises(bips.ProducerGone):
        consumer.next(timeout=2)

    second = bips.Producer.video(channel, 16, 4, "RGBA")
    consumer.reattach(timeout=2)
    assert "RGBA" in consumer.stream_info
    _publish_fill(second, 2)
    with consumer.next(timeout=1) as frame:
        assert frame.array.shape == (4, 16, 4)  # the new producer's caps
        assert (frame.array == 2).all()
        assert_in_channel_mapping(frame.data.ctypes.data, frame.size, channel)
    second.close()
    consumer.close()


CHILD_PRODUCER = r"""
import sys, time, bips
producer = bips.Producer.video(sys.argv[1], 8, 8, "GRAY8")
deadline = time.monotonic() + 10
while producer.consumer_count < 1 and time.monotonic() < deadline:
    time.sleep(0.005)
with producer.acquire(timeout=5) as slot:
    slot.array[...] = 42
print("published", producer.epoch, flush=True)
time.sleep(60)
"""


def test_killed_producer_is_taken_over_under_a_new_epoch(channel):
    child = python_child(CHILD_PRODUCER, channel)
    try:
        consumer = bips.Consumer(channel, "lossless", timeout=10)
        line = child.stdout.readline().split()
        assert line[0] == "published", child.stderr.read()
        with consumer.next(timeout=5) as frame:
            assert frame.array[0, 0] == 42
            old_epoch = frame.epoch
        child.kill()  # SIGKILL: the producer cannot clean up
        child.wait()
        with pytest.raises(bips.ProducerGone):
            consumer.next(timeout=5)
        with bips.Producer.video(channel, 8, 8, "GRAY8") as successor:
            assert successor.epoch > old_epoch  # took the dead producer's channel over
            consumer.reattach(timeout=5)
            assert consumer.epoch == successor.epoch
            _publish_fill(successor, 43)
            with consumer.next(timeout=5) as frame:
                assert frame.epoch == successor.epoch and frame.array[0, 0] == 43
        consumer.close()
    finally:
        child.kill()
        child.wait()


def test_restart_through_frames_with_reattach(channel):
    results = []
    first = bips.Producer.video(channel, 4, 4, "GRAY8")
    consumer = bips.Consumer(channel, "lossless", timeout=1)

    def read():
        for frame in consumer.frames(timeout=5, reattach=True):
            results.append((frame.epoch, int(frame.array[0, 0])))
            if len(results) == 2:
                return

    reader = threading.Thread(target=read)
    reader.start()
    _publish_fill(first, 5)
    wait_for(lambda: len(results) == 1, what="the first frame")
    first.close()
    second = bips.Producer.video(channel, 4, 4, "GRAY8")
    wait_for(lambda: second.consumer_count == 1, what="the consumer to reattach")
    _publish_fill(second, 6)
    reader.join(timeout=10)
    assert [v for _, v in results] == [5, 6]
    assert results[1][0] > results[0][0]  # the new producer's epoch is greater
    second.close()
    consumer.close()


def _hold_the_producer_back(producer, consumer):
    """Publishes two frames into a two-slot channel and holds both in a
    lossless consumer, then acquires: past the producer's max_wait it
    drops the consumer. Returns how long the acquire waited."""
    for v in (1, 2):
        producer.write(np.full(64, v, np.uint8))
    held = [consumer.next(timeout=1), consumer.next(timeout=1)]
    start = time.monotonic()
    with producer.acquire(timeout=5) as slot:
        slot.data[:] = 3
    waited = time.monotonic() - start
    for frame in held:
        frame.release()
    return waited


def test_max_wait_drops_a_consumer_that_holds_the_producer_back(channel):
    with bips.Producer(channel, 64, slot_count=2, max_wait=0.2) as producer, \
            bips.Consumer(channel, "lossless", timeout=1,
                          max_held=bips.UNLIMITED_HELD) as consumer:
        assert _hold_the_producer_back(producer, consumer) >= 0.15
        assert producer.consumer_count == 0
        for _ in range(4):  # see the next test for the frames it may still get
            try:
                consumer.next(timeout=2).release()
            except bips.ProducerGone as exc:
                assert "max_wait" in str(exc)
                break
        else:
            pytest.fail("the dropped consumer never saw ProducerGone")
        # It may reattach: to the same producer, under the same epoch.
        consumer.reattach(timeout=2)
        assert consumer.epoch == producer.epoch
        wait_for(lambda: producer.consumer_count == 1, what="the consumer to rejoin")
        producer.write(np.full(64, 4, np.uint8))
        with consumer.next(timeout=1) as frame:
            assert frame.data[0] == 4


def test_a_dropped_consumer_gets_no_frame_published_after_the_drop(channel):
    with bips.Producer(channel, 64, slot_count=2, max_wait=0.2) as producer, \
            bips.Consumer(channel, "lossless", timeout=1,
                          max_held=bips.UNLIMITED_HELD) as consumer:
        _hold_the_producer_back(producer, consumer)
        with pytest.raises(bips.ProducerGone, match="max_wait"):
            consumer.next(timeout=2).release()


def test_max_wait_none_waits_forever_for_a_lossless_consumer(channel):
    with bips.Producer(channel, 64, slot_count=2, max_wait=None) as producer, \
            bips.Consumer(channel, "lossless", timeout=1) as consumer:
        assert producer.gobject.props.max_wait == 0
        for v in (1, 2):
            producer.write(np.full(64, v, np.uint8))
        with pytest.raises(bips.Timeout):
            producer.acquire(timeout=0.5)
        with consumer.next(timeout=1) as frame:
            assert frame.data[0] == 1
        producer.write(np.full(64, 3, np.uint8), timeout=1)
        for v in (2, 3):
            with consumer.next(timeout=1) as frame:
                assert frame.data[0] == v
    with pytest.raises(ValueError):
        bips.Producer(channel, 64, max_wait=-1)


def test_producer_slot_views_and_write(channel):
    with bips.Producer(channel, 1000, stream_info="application/x-bytes") as producer, \
            bips.Consumer(channel, timeout=1) as consumer:
        assert producer.layout is None
        producer.write(np.arange(10, dtype=np.uint16), pts=1234, flags=3)
        with consumer.next(timeout=1) as frame:
            assert frame.size == 20 and frame.pts == 1234 and frame.flags == 3
            assert frame.array.shape == (20,)
            np.testing.assert_array_equal(frame.data.view(np.uint16), np.arange(10))
        slot = producer.acquire(timeout=1)
        slot.publish(size=1, pts=bips.TIME_NONE)
        with pytest.raises(bips.ReleasedError):
            slot.data
        with pytest.raises(bips.ReleasedError):
            slot.publish()
        with consumer.next(timeout=1) as frame:
            assert frame.pts is None and frame.size == 1
        with pytest.raises(bips.InvalidArgument):
            producer.acquire(timeout=1).publish(size=1001)
        # An exception inside the block discards the slot.
        with pytest.raises(RuntimeError):
            with producer.acquire(timeout=1):
                raise RuntimeError("boom")
        with pytest.raises(bips.Timeout):
            consumer.next(timeout=0.05)


def test_interrupt_wakes_a_blocked_next(channel):
    with bips.Producer(channel, 64) as producer, bips.Consumer(channel, timeout=1) as consumer:
        assert_interrupt_ends_a_blocked_next(consumer)
        assert producer.consumer_count == 1


def test_a_program_that_keeps_frames_gets_too_many_held(channel):
    # The default limit on 8 slots is 2: a third kept frame is refused,
    # nothing is taken, and dropping one (or keeping a copy) goes on.
    with bips.Producer(channel, 64, slot_count=8) as producer, \
            bips.Consumer(channel, "lossless", timeout=1) as consumer:
        for v in range(4):
            producer.write(np.full(64, v, np.uint8))
        kept = [consumer.next(timeout=1).array, consumer.next(timeout=1).array]
        with pytest.raises(bips.TooManyHeld, match="already holds 2 frames"):
            consumer.next(timeout=1)
        copies = [a.copy() for a in kept]
        del kept
        gc.collect()
        with consumer.next(timeout=1) as frame:
            assert frame.data[0] == 2, "the refusal took nothing"
        assert [c[0] for c in copies] == [0, 1]


def test_frames_views_are_prepared_ahead_only_where_sizes_repeat(channel):
    """next() hands out views built before the wait for slots whose frames
    keep one size, and builds them on arrival where sizes vary; either
    way every frame reads its own bytes, at its own size."""
    with bips.Producer(channel, 4096, slot_count=2) as producer, \
            bips.Consumer(channel, timeout=1) as consumer:
        views = consumer._views
        for k in range(8):  # one size: after the first round, from `ready`
            producer.write(bytes([k]) * 100, timeout=1)
            ready_before = set(views.ready)
            with consumer.next(timeout=1) as frame:
                assert frame.size == 100 and bytes(frame.data) == bytes([k]) * 100
                if k >= 2:
                    assert frame.address in ready_before
        assert not views.varying
        sizes = [10, 300, 4096, 7, 300, 1000, 20, 3000]
        for k, size in enumerate(sizes):
            producer.write(bytes([k + 1]) * size, timeout=1)
            with consumer.next(timeout=1) as frame:
                assert frame.size == size and bytes(frame.data) == bytes([k + 1]) * size
        # Both slots' sizes changed: nothing is prepared for them any more.
        assert len(views.varying) == 2 and not views.ready
