# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Bips-1.0 binding itself: GIR contents, errors, frame and slot life cycles."""

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import bips
from bips import Bips
from gi.repository import GLib, GObject

from helpers import assert_in_channel_mapping

CORE = "http://www.gtk.org/introspection/core/1.0"


def _gir_path() -> Path:
    for d in os.environ.get("BIPS_GIR_DIR", "").split(os.pathsep):
        if d and Path(d, "Bips-1.0.gir").exists():
            return Path(d, "Bips-1.0.gir")
    pytest.fail("Bips-1.0.gir not found: BIPS_GIR_DIR is set by `meson test`")


def test_every_callable_in_the_gir_is_documented():
    root = ET.parse(_gir_path()).getroot()
    ns = root.find(f"{{{CORE}}}namespace")
    assert ns.get("name") == "Bips" and ns.get("version") == "1.0"
    includes = {i.get("name") for i in root.findall(f"{{{CORE}}}include")}
    assert "GObject" in includes
    callables = [e for tag in ("function", "method", "constructor")
                 for e in ns.iter(f"{{{CORE}}}{tag}")]
    assert len(callables) > 40
    undocumented = [c.get("name") for c in callables if c.find(f"{{{CORE}}}doc") is None]
    assert undocumented == []
    for name in ("Producer", "Consumer", "Frame", "Slot"):
        cls = ns.find(f"{{{CORE}}}class[@name='{name}']")
        assert cls is not None and cls.find(f"{{{CORE}}}doc") is not None
        for prop in cls.findall(f"{{{CORE}}}property"):
            assert prop.find(f"{{{CORE}}}doc") is not None, f"{name}:{prop.get('name')}"
    error = ns.find(f"{{{CORE}}}enumeration[@name='Error']")
    assert error.get("{http://www.gtk.org/introspection/glib/1.0}error-domain") == \
        "bips-error-quark"
    # Annotations made it: the constructor may fail and returns a new object.
    new = ns.find(f"{{{CORE}}}class[@name='Consumer']/{{{CORE}}}constructor[@name='new']")
    assert new.get("throws") == "1"
    assert new.find(f"{{{CORE}}}return-value").get("transfer-ownership") == "full"
    assert new.find(f"{{{CORE}}}return-value").get("nullable") == "1"


def test_error_codes_mirror_the_core():
    names = ["invalid-argument", "invalid-name", "not-found", "busy", "no-space",
             "permission-denied", "corrupt", "incompatible", "timeout", "would-block",
             "producer-gone", "end-of-stream", "too-many-consumers", "system",
             "too-many-held"]
    for value, name in enumerate(names, start=1):
        assert Bips.error_code_name(value) == name
        assert int(getattr(Bips.Error, name.upper().replace("-", "_"))) == value


def test_invalid_name_is_a_bips_error():
    with pytest.raises(GLib.Error) as info:
        Bips.Consumer.new("no/slashes", Bips.Policy.LOSSLESS, 0)
    assert info.value.matches(Bips.error_quark(), Bips.Error.INVALID_NAME)
    assert "'/'" in info.value.message
    with pytest.raises(GLib.Error) as info:
        Bips.Producer.new(".hidden", 2, 64, 0o600)
    assert info.value.matches(Bips.error_quark(), Bips.Error.INVALID_NAME)
    with pytest.raises(bips.InvalidName):
        bips.Consumer("x" * 201)
    with pytest.raises(bips.InvalidName) as info:
        bips.Producer("bad name", 64)
    assert info.value.code_name == "invalid-name"
    assert isinstance(info.value, ValueError)


def test_missing_producer_times_out(channel):
    with pytest.raises(GLib.Error) as info:
        Bips.Consumer.new(channel, Bips.Policy.LATEST, 50)
    assert info.value.matches(Bips.error_quark(), Bips.Error.TIMEOUT)
    with pytest.raises(bips.Timeout) as info:
        bips.Consumer(channel, timeout=0.05)
    assert channel in str(info.value)
    assert isinstance(info.value, TimeoutError)


def test_second_producer_is_busy(channel):
    first = Bips.Producer.new(channel, 2, 64, 0o600)
    with pytest.raises(bips.Busy):
        bips.Producer(channel, 64)
    assert first.close()


def test_frame_accessors_and_release(channel):
    producer = Bips.Producer.new(channel, 2, 256, 0o600)
    assert producer.props.name == channel and producer.props.epoch >= 1
    producer.set_stream_info("application/x-test")
    consumer = Bips.Consumer.new(channel, Bips.Policy.LOSSLESS, 1000)
    slot = producer.acquire(1000)
    assert slot.is_pending() and slot.get_capacity() == 256
    assert producer.publish(slot, 100, 11, 22, 33, 0x5)
    assert not slot.is_pending() and slot.get_data_address() == 0
    with pytest.raises(GLib.Error) as info:  # a second publish of the same slot
        producer.publish(slot, 100, 0, 0, 0, 0)
    assert info.value.matches(Bips.error_quark(), Bips.Error.INVALID_ARGUMENT)

    frame = consumer.next(1000)
    assert (frame.get_size(), frame.get_pts(), frame.get_dts(), frame.get_duration(),
            frame.get_flags()) == (100, 11, 22, 33, 5)
    assert frame.get_stream_info() == "application/x-test"
    assert frame.get_epoch() == producer.props.epoch
    ok, address, size = frame.get_data_region()
    assert ok and size == 100 and address == frame.get_data_address()
    assert_in_channel_mapping(address, size, channel)
    assert consumer.props.received == 1

    frame.release()
    frame.release()  # idempotent
    assert frame.is_released()
    assert frame.get_data_address() == 0 and frame.get_size() == 0
    with pytest.raises(GLib.Error) as info:
        frame.get_data_region()
    assert info.value.matches(Bips.error_quark(), Bips.Error.INVALID_ARGUMENT)
    assert frame.get_pts() == 11  # metadata stays readable


def test_end_of_stream_and_producer_gone(channel):
    producer = Bips.Producer.new(channel, 2, 64, 0o600)
    consumer = Bips.Consumer.new(channel, Bips.Policy.LOSSLESS, 1000)
    producer.end_of_stream()
    with pytest.raises(GLib.Error) as info:
        consumer.next(1000)
    assert info.value.matches(Bips.error_quark(), Bips.Error.END_OF_STREAM)
    assert producer.close()
    with pytest.raises(GLib.Error) as info:
        consumer.next(2000)
    assert info.value.matches(Bips.error_quark(), Bips.Error.PRODUCER_GONE)


def test_producer_close_waits_for_slots(channel):
    producer = Bips.Producer.new(channel, 2, 64, 0o600)
    slot = producer.acquire(0)
    with pytest.raises(GLib.Error) as info:
        producer.close()
    assert info.value.matches(Bips.error_quark(), Bips.Error.BUSY)
    assert producer.discard(slot)
    assert not producer.discard(slot)
    del slot
    assert producer.close() and producer.props.closed
    with pytest.raises(GLib.Error):
        producer.acquire(0)


def test_frames_outlive_a_closed_consumer(channel):
    producer = Bips.Producer.new(channel, 2, 64, 0o600)
    consumer = Bips.Consumer.new(channel, Bips.Policy.LATEST, 1000)
    slot = producer.acquire(0)
    producer.publish(slot, 64, 1, 1, 1, 0)
    frame = consumer.next(1000)
    consumer.close()
    assert consumer.props.closed
    with pytest.raises(GLib.Error):
        consumer.next(0)
    del consumer
    ok, address, size = frame.get_data_region()
    assert_in_channel_mapping(address, size, channel)
    frame.release()


def test_unreleased_frames_block_a_lossless_producer(channel):
    producer = Bips.Producer.new(channel, 2, 64, 0o600)
    # No hold limit: this program means to hold every slot.
    consumer = Bips.Consumer(name=channel, policy=Bips.Policy.LOSSLESS, timeout_ms=1000,
                             max_held=GLib.MAXUINT)
    consumer.init(None)
    for _ in range(2):
        producer.publish(producer.acquire(0), 64, 0, 0, 0, 0)
    held = [consumer.next(1000), consumer.next(1000)]
    with pytest.raises(GLib.Error) as info:
        producer.acquire(0)
    assert info.value.matches(Bips.error_quark(), Bips.Error.WOULD_BLOCK)
    held[0].release()
    producer.discard(producer.acquire(0))
    del held


def test_channel_path_is_the_channel_socket(channel):
    import stat

    path = Bips.channel_path(channel)
    assert path == bips.channel_path(channel)
    assert path == os.path.join(os.environ.get("BIPS_DIR") or "/dev/shm", f"bips-{channel}")
    assert not os.path.lexists(path)
    producer = Bips.Producer.new(channel, 2, 64, 0o600)
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert producer.close()
    assert not os.path.lexists(path)


def test_max_wait_is_a_construct_property(channel):
    spec = Bips.Producer.find_property("max-wait")
    assert spec is not None and spec.default_value == 2000 and spec.minimum == 0
    assert spec.flags & GObject.ParamFlags.CONSTRUCT_ONLY
    producer = Bips.Producer(name=channel, slot_count=2, slot_size=64, max_wait=0)
    producer.init(None)
    assert producer.props.max_wait == 0
    assert producer.close()
    producer = Bips.Producer.new(channel, 2, 64, 0o600)
    assert producer.props.max_wait == 2000
    assert producer.close()


def _publish(producer, metas=None):
    slot = producer.acquire(1000)
    if metas is None:
        assert producer.publish(slot, 16, 0, 0, 0, 0)
    else:
        assert producer.publish_with_metas(slot, 16, 0, 0, 0, 0, metas)


def test_poll_next_into_fills_an_empty_frame_and_names_its_layout(channel):
    """The frame is made before the wait and filled once; the layout id
    stays while the stream info does (other metadata does not count), and
    changes with it. (The frame's own video layout counts too:
    test_metas.py.)"""
    producer = Bips.Producer.new(channel, 8, 64, 0o600)
    producer.set_stream_info("video/x-raw,format=GRAY8,width=4,height=4")
    consumer = Bips.Consumer.new(channel, Bips.Policy.LOSSLESS, 1000)

    empty = Bips.Frame.new()
    assert empty.is_released() and empty.get_sequence() == 0 and empty.get_data_address() == 0
    with pytest.raises(GLib.Error) as info:
        empty.get_data_region()
    assert "empty" in info.value.message and "poll_next_into" in info.value.message
    ok, code, message, address, size, layout_id = consumer.poll_next_into(empty, 0)
    assert (ok, code, address, size, layout_id) == (False, 0, 0, 0, 0) and message

    offset = GLib.Variant("a{sv}", {"offset": GLib.Variant("t", 7)})
    for metas in (None, offset, None):
        _publish(producer, metas)
    producer.set_stream_info("video/x-raw,format=GRAY8,width=4,height=2")
    _publish(producer)
    _publish(producer, offset)
    producer.set_stream_info("video/x-raw,format=GRAY8,width=2,height=2")
    _publish(producer)
    ids = []
    for _ in range(6):
        frame = Bips.Frame.new()
        ok, code, message, address, size, layout_id = consumer.poll_next_into(frame, 1000)
        assert ok and code == 0 and message is None
        assert (address, size) == frame.get_data_region()[1:] and size == 16
        ids.append(layout_id)
        # Filled once: a second fill is refused, and the frame keeps its own.
        ok, code, message, *_ = consumer.poll_next_into(frame, 0)
        assert not ok and code == Bips.Error.INVALID_ARGUMENT
        assert "new one with bips_frame_new()" in message
        assert frame.get_size() == 16
        frame.release()
    assert ids[0] == ids[1] == ids[2] and ids[3] == ids[4]
    assert len({ids[0], ids[3], ids[5]}) == 3 and 0 not in ids


def test_an_empty_frame_has_no_metas_and_gets_them_once_filled(channel):
    producer = Bips.Producer.new(channel, 2, 64, 0o600)
    consumer = Bips.Consumer.new(channel, Bips.Policy.LOSSLESS, 1000)
    frame = Bips.Frame.new()
    with pytest.raises(GLib.Error) as info:
        frame.get_metas()
    assert info.value.matches(Bips.error_quark(), Bips.Error.INVALID_ARGUMENT)
    assert "empty" in info.value.message
    _publish(producer, GLib.Variant("a{sv}", {"offset": GLib.Variant("t", 7)}))
    ok, *_ = consumer.poll_next_into(frame, 1000)
    assert ok and frame.get_metas().unpack() == {"offset": 7}


def test_a_frame_being_filled_is_refused_to_a_second_call(channel):
    """While one call waits to fill a frame, another call with the same
    frame is refused at once; the first still gets its frame."""
    import threading

    producer = Bips.Producer.new(channel, 2, 64, 0o600)
    consumer = Bips.Consumer.new(channel, Bips.Policy.LOSSLESS, 1000)
    frame = Bips.Frame.new()
    first = []
    waiter = threading.Thread(target=lambda: first.append(consumer.poll_next_into(frame, 5000)))
    waiter.start()
    time.sleep(0.2)
    ok, code, message, *_ = consumer.poll_next_into(frame, 0)
    assert not ok and code == Bips.Error.INVALID_ARGUMENT and "another call" in message
    _publish(producer)
    waiter.join(timeout=10)
    assert first and first[0][0] and frame.get_size() == 16
