"""Where frames come from: anything that hands them on as a capture file's reader does.

A :class:`~mptcpspec.capture.pcap.CaptureReader` is one (a file, standard input, a compressed
file: :mod:`mptcpspec.capture.stream`); a live capture is another.  The dissector reads either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from mptcpspec.capture.pcap import Frame

__all__ = ["FrameSource"]


@runtime_checkable
class FrameSource(Protocol):
    """Anything frames are read from, as :class:`~mptcpspec.capture.pcap.CaptureReader` gives
    them: a capture file, or a live capture."""

    problems: list[str]  #: what was wrong but did not stop the read

    def batches(self) -> Iterator[list[Frame]]:
        """The frames, in lists, as they come."""
        ...

    @property
    def position(self) -> int:
        """How far the read is (a file offset; 0 when that means nothing)."""
        ...
