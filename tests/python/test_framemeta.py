# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reading bipssink's per-frame metadata blob (format: gst/gstbipsmeta.h)."""

import struct

import bips
from bips._framemeta import meta_layout


def _record(tag: bytes, payload: bytes) -> bytes:
    padded = payload + b"\0" * (-len(payload) % 8)
    return struct.pack("=4sI", tag, len(payload)) + padded


def _video_meta(fmt=b"NV12", width=30, height=20, n_planes=2,
                offsets=(0, 2600, 0, 0), strides=(128, 128, 0, 0)) -> bytes:
    return _record(b"VMET", struct.pack("=32sIIII4Q4i", fmt, 0, width, height, n_planes,
                                        *offsets, *strides))


def _blob(*records: bytes, magic=b"BMT1", version=1) -> bytes:
    return struct.pack("=4sHH", magic, version, len(records)) + b"".join(records)


def test_video_meta_gives_the_layout_after_unknown_records():
    latency = _record(b"PLAT", struct.pack("=Q", 5_000_000))
    unknown = _record(b"XTRA", b"abc")  # padded to 8; readers skip it
    layout, problem = meta_layout(_blob(latency, unknown, _video_meta()))
    assert problem is None
    assert layout == bips.layout_for("NV12", 30, 20, strides=(128, 128), offsets=(0, 2600))
    assert layout.planes[1].strides[0] == 128


def test_no_video_meta_or_unshaped_format_is_not_a_problem():
    assert meta_layout(_blob()) == (None, None)
    assert meta_layout(_blob(_video_meta(fmt=b"v210", n_planes=1))) == (None, None)


def test_malformed_blobs_are_reported_not_raised():
    good = _blob(_video_meta())
    cases = {
        "too few": good[:4],
        "unknown magic": _blob(_video_meta(), magic=b"XXXX"),
        "version 2": _blob(_video_meta(), version=2),
        "runs past the end": good[:-8],
        "3 planes instead of 2": _blob(_video_meta(n_planes=3)),
        "strides": _blob(_video_meta(strides=(128, 0, 0, 0))),
        "does not describe a frame": _blob(_video_meta(width=0)),
    }
    for words, blob in cases.items():
        layout, problem = meta_layout(blob)
        assert layout is None
        assert problem is not None and words in problem, (words, problem)
