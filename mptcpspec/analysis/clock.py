"""The times Wireshark gives each frame against others: the first frame's (``frame.time_relative``),
the previous frame's (``frame.time_delta``) and the last displayed frame's
(``frame.time_delta_displayed``).

>>> c = FrameClock()
>>> c.tick(5_000), c.tick(7_000)
((5000, 5000, 5000), (5000, 5000, 5000))
>>> c.filtering = True
>>> c.tick(9_000)  # no frame shown yet: its own time
(5000, 7000, 9000)
"""

from __future__ import annotations

from mptcpspec.analysis.model import PacketInfo

__all__ = ["FrameClock"]


class FrameClock:
    """Told each frame's capture time in capture order; a display stage tells it the frames it shows."""

    __slots__ = ("first_ns", "prev_ns", "filtering", "shown_ns")

    def __init__(self) -> None:
        self.first_ns: int | None = None  #: the capture time of the first frame
        self.prev_ns: int | None = None  #: the capture time of the frame told last
        #: a display filter picks the frames shown, and :attr:`shown_ns` is set for each one it
        #: keeps; without one, every frame is shown
        self.filtering = False
        self.shown_ns: int | None = None  #: the capture time of the last frame shown

    def tick(self, ts: int) -> tuple[int, int, int]:
        """The first frame's, the previous frame's and the last shown frame's capture times, for the
        frame captured at ``ts`` (each its own when there is none), which becomes the previous one."""
        first = self.first_ns
        if first is None:
            first = self.first_ns = ts
        prev = self.prev_ns
        self.prev_ns = ts
        if prev is None:
            prev = ts
        if not self.filtering:
            return first, prev, prev
        shown = self.shown_ns
        return first, prev, ts if shown is None else shown

    def info(self, number: int, ts: int, caplen: int, orig_len: int, **fields: object) -> PacketInfo:
        """The :class:`PacketInfo` of a frame without TCP, its times set."""
        first, prev, shown = self.tick(ts)
        return PacketInfo(
            number,
            ts,
            caplen,
            orig_len,
            first_ns=first,
            prev_ns=prev,
            prev_shown_ns=shown,
            **fields,  # type: ignore[arg-type]
        )
