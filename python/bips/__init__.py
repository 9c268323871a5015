# SPDX-License-Identifier: LGPL-2.1-or-later
"""bips for Python: zero-copy NumPy views over bips shared-memory channels.

    import bips
    with bips.Consumer("cam0", policy="latest") as consumer:
        with consumer.next(timeout=1.0) as frame:
            image = frame.array        # read-only (H, W, 4) uint8 view, no copy
            print(image.mean(), frame.pts)

    with bips.Producer.video("cam1", 640, 480, "RGBA") as producer:
        with producer.acquire() as slot:
            slot.array[:] = 255        # written in place in shared memory
        # published on leaving the block

Every wait (attaching, next(), frames(), reattach(), acquire(), write())
returns to Python at least every 0.1 s, so Ctrl-C raises KeyboardInterrupt
promptly and leaves the consumer or producer usable; timeouts are kept
exactly otherwise.

Built on the Bips-1.0 GObject-Introspection binding (`bips.Bips` is the raw
GI namespace); bips.gst turns Gst.Samples from appsink into arrays.
"""

from ._gi import (  # noqa: F401
    TIME_NONE,
    Bips,
    Busy,
    Corrupt,
    EndOfStream,
    Error,
    Incompatible,
    InvalidArgument,
    InvalidName,
    NoSpace,
    NotFound,
    PermissionDenied,
    ProducerGone,
    ReleasedError,
    SystemError_,
    Timeout,
    TooManyConsumers,
    TooManyHeld,
    UNLIMITED_HELD,
    WouldBlock,
)
from .consumer import Consumer, Frame  # noqa: F401
from .metas import Region  # noqa: F401
from .producer import Producer, WriteFrame  # noqa: F401
from .video import (  # noqa: F401
    Planes2,
    Planes3,
    SUPPORTED_FORMATS,
    VideoLayout,
    caps_string,
    layout_for,
    parse_caps,
    video_layout,
)


def channel_path(channel: str) -> str:
    """The unix-domain socket of `channel`, where consumers attach:
    $BIPS_DIR/bips-<channel> (/dev/shm/bips-<channel> unless $BIPS_DIR says
    otherwise). The channel's memory is not a file: its producer hands it
    to each consumer over this socket."""
    return Bips.channel_path(channel)


def validate_channel_name(channel: str) -> None:
    """Raises bips.InvalidName unless `channel` is a valid channel name."""
    from ._gi import GLib, translate

    try:
        Bips.validate_channel_name(channel)
    except GLib.Error as exc:
        raise translate(exc) from None
