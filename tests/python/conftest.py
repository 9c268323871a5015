# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures of the Python suite: unique channel names, the C++ producer, GStreamer."""

from __future__ import annotations

import itertools
import os
import re
import shutil
from pathlib import Path

import pytest

_counter = itertools.count()


@pytest.fixture
def channel(request):
    """A channel name that no other test (or earlier run) uses.

    If a test leaves the channel behind (a producer it killed, or one that
    failed mid-test), teardown takes the dead channel over and closes it,
    which removes its socket from the channel directory ($BIPS_DIR, else
    /dev/shm); a live producer's is left alone."""
    import bips

    test = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:60]
    name = f"pyt-{os.getpid()}-{next(_counter)}-{test}"
    yield name
    for leftover in Path(bips.channel_path(name)).parent.glob(f"bips-{name}*"):
        try:
            bips.Producer(leftover.name[len("bips-"):], 64).close()
        except bips.Error:
            pass


@pytest.fixture(scope="session")
def cxx_producer() -> str:
    """Path of bips-pytest-producer (tests/python/cxx_producer.cpp)."""
    path = os.environ.get("BIPS_PYTEST_PRODUCER")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("BIPS_PYTEST_PRODUCER is not set: run this suite through `meson test`")
    return path


def _plugin_present() -> bool:
    dirs = os.environ.get("GST_PLUGIN_PATH_1_0", "").split(os.pathsep)
    return any(Path(d, "libgstbips.so").exists() for d in dirs if d)


@pytest.fixture(scope="session")
def Gst():
    """PyGObject's Gst, initialised, with the bips plugin loadable.

    Skips when the plugin was not built (configured with -Dgst=disabled);
    fails if it was built but its elements cannot be found."""
    if not _plugin_present():
        pytest.skip("the bips GStreamer plugin was not built (gst option disabled)")
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst as _Gst

    _Gst.init(None)
    for name in ("bipssrc", "bipssink"):
        assert _Gst.ElementFactory.find(name) is not None, (
            f"{name} not found in GST_PLUGIN_PATH_1_0={os.environ.get('GST_PLUGIN_PATH_1_0')}")
    return _Gst


@pytest.fixture(scope="session")
def gst_launch(Gst) -> str:
    path = shutil.which("gst-launch-1.0")
    if path is None:
        pytest.skip("gst-launch-1.0 is not installed (Debian package gstreamer1.0-tools)")
    return path
