# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python half of a consumer's `anticipate`: warm up before a frame.

With `anticipate`, the library wakes a reader shortly before the next frame
is due and busy-waits for it, so that no wake-up stands between the
producer's publish() and next() returning. What is left is Python's own
work to turn the frame into an array, and after a frame interval asleep
that work runs from cold CPU caches: about 10-20x its warm cost, ~100 us
at 30 frames/s on the project's machines (docs/performance.md).

So a consumer with `anticipate` waits in two steps. It sleeps in the
library until the moment the library would start busy-waiting (`ahead`
before the frame is due, by the library's own estimate,
Bips.Consumer.get_next_due()), then runs steps like those that next() and
its caller run for a frame -- GObject-Introspection calls with out
arguments, the layout cache, NumPy views shaped like a frame over the
channel's own memory (next() prepares such views before it waits), one
pixel read -- and only then calls the library again, which busy-waits
for the frame. A frame that comes early ends the first step
at once. The warm-up costs about as much as one frame's Python work, in
the window that `anticipate` already spends awake.

Used by one reading thread at a time (Consumer.next()).
"""

from __future__ import annotations

from typing import Optional

from ._views import region, shaped
from .video import video_layout

__all__ = ["Anticipation"]


class Anticipation:
    """When to warm up before the next frame, and the warm-up itself.

    `ahead_ns` is the consumer's anticipate. When the next frame is due is
    the library's estimate (the one its own busy-wait goes by); nothing
    about frame timing is kept here.
    """

    __slots__ = ("ahead_ns",)

    def __init__(self, ahead_ns: int):
        self.ahead_ns = ahead_ns

    def wake_ns(self, gconsumer) -> Optional[int]:
        """CLOCK_MONOTONIC time to start warming up, or None while the
        library does not know when the next frame is due."""
        due = gconsumer.get_next_due()
        return due - self.ahead_ns if due else None

    @staticmethod
    def warm_up(gconsumer) -> None:
        """Runs, on the channel's memory, what next() runs on a frame.

        Touches nothing but the read-only mapping; holds no slot. Any
        error (a producer that just went away) is left to next() to
        report.
        """
        try:
            layout = video_layout(gconsumer.dup_stream_info())
            _ok, address, size = gconsumer.get_data_mapping()
            if not address or not size:
                return
            if layout is not None and layout.fits(size):
                size = layout.needed
            else:
                layout = None
            flat, _alive = region(address, size, None)
            array = shaped(flat, layout)
            plane = array[0] if isinstance(array, tuple) else array
            int(plane[(0,) * plane.ndim])
        except Exception:  # noqa: BLE001 - the real next() reports it
            pass
