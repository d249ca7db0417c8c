"""The dissector's pipeline: capture file -> records -> packets -> options -> connections.

>>> from mptcpspec.dissect.pipeline import Dissection
>>> d = Dissection("tests/data/v4-two-subflows.pcap")
>>> infos = list(d)
>>> len(d.connections()) >= 1
True

Each step is its own module (:mod:`mptcpspec.capture.pcap`, :mod:`mptcpspec.capture.packets`,
:mod:`mptcpspec.codec.options`, :mod:`mptcpspec.analysis`); this one only joins them and keeps the
counts.  Iterating a :class:`Dissection` yields one :class:`~mptcpspec.analysis.model.PacketInfo` per
frame, streaming; after it, :meth:`Dissection.connections` has every MPTCP connection and
:attr:`Dissection.problems` what was wrong with the file but did not stop it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TypeAlias

from mptcpspec.analysis import Analyzer, Connection, PacketInfo
from mptcpspec.capture.encap import frame_layers
from mptcpspec.capture.packets import LINKTYPES, decode_frame, ip_addresses
from mptcpspec.capture.pcap import CaptureError, CaptureReader, Frame, Readable
from mptcpspec.capture.source import FrameSource
from mptcpspec.capture.stream import Input
from mptcpspec.errors import DecodeError

__all__ = ["Dissection", "Source", "dissect", "reinjections"]

#: A capture: a file's path, a binary file object open on it, or frames from elsewhere (a live capture).
Source: TypeAlias = Readable | FrameSource


class Dissection:
    """One pass over a capture."""

    def __init__(self, source: Source, *, verify: bool = True, two_pass: bool = False) -> None:
        """``two_pass``: read the capture once first to learn which later frames reinjected each
        frame's data (:attr:`~mptcpspec.analysis.model.PacketInfo.reinjected_in`), as ``tshark -2``; the
        source is then read again (a file object must be seekable)."""
        self.reader: FrameSource = source if isinstance(source, FrameSource) else CaptureReader(source)
        #: the frame of the packet last yielded, as read: ``(timestamp_ns, linktype, data, orig_len,
        #: interface, truncated)``
        self.frame: Frame = (0, 0, b"", 0, 0, False)
        self.analyzer = Analyzer(verify=verify)
        self.frames = 0
        self.unsupported: dict[int, int] = {}  #: link type -> frames of it, for link types not decoded
        self._source = source if two_pass else None

    def _first_pass(self, source: Source) -> None:
        self._source = None
        if isinstance(source, (str, os.PathLike)):
            self.analyzer.reinjected_in = reinjections(source) or None
            return
        if isinstance(source, Input):
            with source.reopen() as again:
                self.analyzer.reinjected_in = reinjections(again) or None
            return
        if isinstance(source, FrameSource):
            raise TypeError("a live capture cannot be read twice")
        start = source.tell()
        self.analyzer.reinjected_in = reinjections(source) or None
        source.seek(start)

    def __iter__(self) -> Iterator[PacketInfo]:
        if self._source is not None:
            self._first_pass(self._source)
        an = self.analyzer
        feed, tcp, counts = an.feed, an.feed_tcp, an.counts
        frames = self.frames
        for batch in self.reader.batches():
            for frame in batch:
                self.frame = frame
                ts, linktype, data, orig_len, _, _ = frame
                frames += 1
                self.frames = frames
                try:
                    pkt = decode_frame(linktype, data, ts)
                except DecodeError as e:
                    yield feed(frames, ts, len(data), orig_len, None, e)
                    continue
                if pkt is None:
                    if linktype not in LINKTYPES:
                        self.unsupported[linktype] = self.unsupported.get(linktype, 0) + 1
                    yield feed(
                        frames,
                        ts,
                        len(data),
                        orig_len,
                        None,
                        None,
                        ip_addresses(linktype, data),
                        frame_layers(linktype, data),
                    )
                    continue
                counts["TCP"] += 1  # Analyzer.feed for a TCP segment, without its call
                yield tcp(frames, ts, len(data), orig_len, pkt)

    @property
    def problems(self) -> list[str]:
        return self.reader.problems

    def connections(self) -> list[Connection]:
        """The MPTCP connections seen so far: all of them once the iteration has ended."""
        return self.analyzer.connections()


def dissect(source: Source, *, verify: bool = True, two_pass: bool = False) -> Iterator[PacketInfo]:
    """The :class:`~mptcpspec.analysis.model.PacketInfo` of every frame of a capture."""
    return iter(Dissection(source, verify=verify, two_pass=two_pass))


def reinjections(source: Source) -> dict[int, tuple[int, ...]]:
    """Frame -> the later frames that carried its data again on another subflow, over the whole
    capture (the reverse of :attr:`~mptcpspec.analysis.model.PacketInfo.reinjection_of`).  Memory grows
    with the reinjections only."""
    later: dict[int, list[int]] = {}
    try:
        for info in Dissection(source, verify=False):
            for f in info.reinjection_of:
                later.setdefault(f, []).append(info.number)
    except CaptureError:
        pass  # damaged framing: what came before it counts; the second pass reports the damage
    return {f: tuple(v) for f, v in later.items()}
