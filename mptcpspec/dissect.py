"""The dissector's pipeline: capture file -> records -> packets -> options -> connections.

>>> from mptcpspec.dissect import Dissection
>>> d = Dissection("tests/data/v4-two-subflows.pcap")
>>> infos = list(d)
>>> len(d.connections()) >= 1
True

Each step is its own module (:mod:`mptcpspec.pcap`, :mod:`mptcpspec.packets`,
:mod:`mptcpspec.options`, :mod:`mptcpspec.analysis`); this one only joins them and keeps the
counts.  Iterating a :class:`Dissection` yields one :class:`~mptcpspec.analysis.PacketInfo` per
frame, streaming; after it, :meth:`Dissection.connections` has every MPTCP connection and
:attr:`Dissection.problems` what was wrong with the file but did not stop it.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

from mptcpspec.analysis import Analyzer, Connection, PacketInfo
from mptcpspec.errors import DecodeError
from mptcpspec.packets import decode_frame, ip_addresses
from mptcpspec.pcap import CaptureReader

__all__ = ["Dissection", "dissect"]


class Dissection:
    """One pass over a capture."""

    def __init__(self, source: str | os.PathLike | BinaryIO, *, verify: bool = True) -> None:
        self.reader = CaptureReader(source)
        self.analyzer = Analyzer(verify=verify)
        self.frames = 0

    def __iter__(self) -> Iterator[PacketInfo]:
        an = self.analyzer
        feed, tcp, counts = an.feed, an._tcp, an.counts
        frames = self.frames
        for batch in self.reader.batches():
            for ts, linktype, data, orig_len, _, _ in batch:
                frames += 1
                self.frames = frames
                try:
                    pkt = decode_frame(linktype, data, ts)
                except DecodeError as e:
                    yield feed(frames, ts, len(data), orig_len, None, e)
                    continue
                if pkt is None:
                    yield feed(frames, ts, len(data), orig_len, None, None, ip_addresses(linktype, data))
                    continue
                counts["TCP"] += 1  # Analyzer.feed for a TCP segment, without its call
                yield tcp(frames, ts, len(data), orig_len, pkt)

    @property
    def problems(self) -> list[str]:
        return self.reader.problems

    def connections(self) -> list[Connection]:
        return self.analyzer.connections()


def dissect(source: str | os.PathLike | BinaryIO, *, verify: bool = True) -> Iterator[PacketInfo]:
    """The :class:`~mptcpspec.analysis.PacketInfo` of every frame of a capture."""
    return iter(Dissection(source, verify=verify))
