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

from mptcpspec.analysis import Analyzer, Connection, PacketInfo, PairFrame
from mptcpspec.capture.encap import frame_layers
from mptcpspec.capture.packets import LINKTYPES, decode_frame, ip_addresses
from mptcpspec.capture.pcap import CaptureError, CaptureReader, Frame, Readable
from mptcpspec.capture.source import FrameSource
from mptcpspec.capture.stream import Input
from mptcpspec.errors import DecodeError
from mptcpspec.records import dataclass

__all__ = ["Dissection", "FirstPass", "Source", "dissect", "reinjections"]

#: A capture: a file's path, a binary file object open on it, or frames from elsewhere (a live capture).
Source: TypeAlias = Readable | FrameSource


class Dissection:
    """One pass over a capture."""

    def __init__(
        self, source: Source, *, verify: bool = True, two_pass: bool = False, tcp_analysis: bool = True
    ) -> None:
        """``two_pass``: read the capture once first to learn which later frames reinjected each
        frame's data (:attr:`~mptcpspec.analysis.model.PacketInfo.reinjected_in`), as ``tshark -2``; the
        source is then read again (a file object must be seekable).  ``tcp_analysis`` False: no
        subflow TCP analysis (:attr:`~mptcpspec.analysis.model.PacketInfo.tcp` None), for a reader that
        needs none of its fields (:func:`~mptcpspec.dissect.tcpfields.needs_tcp_analysis`)."""
        self.source = source  #: as given
        self.reader: FrameSource = source if isinstance(source, FrameSource) else CaptureReader(source)
        #: the frame of the packet last yielded, as read: ``(timestamp_ns, linktype, data, orig_len,
        #: interface, truncated)``
        self.frame: Frame = (0, 0, b"", 0, 0, False)
        self.analyzer = Analyzer(verify=verify)
        self.analyzer.tcp.enabled = tcp_analysis
        self.frames = 0
        self.unsupported: dict[int, int] = {}  #: link type -> frames of it, for link types not decoded
        self._source = source if two_pass else None
        self._subflow_of: dict[int, int] = {}
        #: what the capture at the other end says of each frame, by frame number
        #: (:func:`mptcpspec.pair.pair_captures`): sets :attr:`PacketInfo.pair`
        self.pair: dict[int, PairFrame] | None = None

    def _first_pass(self, source: Source) -> None:
        self._source = None
        if isinstance(source, Input):
            with source.reopen() as again:
                first = FirstPass.of(again)
        elif isinstance(source, FrameSource):
            raise TypeError("a live capture cannot be read twice")
        elif isinstance(source, (str, os.PathLike)):
            first = FirstPass.of(source)
        else:
            start = source.tell()
            first = FirstPass.of(source)
            source.seek(start)
        self.analyzer.reinjected_in = first.reinjected_in or None
        self._subflow_of = first.subflow_of

    def __iter__(self) -> Iterator[PacketInfo]:
        if self._source is not None:
            self._first_pass(self._source)
        infos = self._frames()
        if self._subflow_of:
            infos = self._with_subflows(infos, self._subflow_of)
        if self.pair is not None:
            infos = self._with_pair(infos, self.pair)
        return infos

    @staticmethod
    def _with_subflows(infos: Iterator[PacketInfo], subflow_of: dict[int, int]) -> Iterator[PacketInfo]:
        """The second pass: a frame of a TCP stream that becomes a subflow later (its first SYN)
        already has the connection's :attr:`~mptcpspec.analysis.model.PacketInfo.mptcp_stream`."""
        from dataclasses import replace

        for info in infos:
            if info.mptcp_stream is None and info.tcp_stream is not None:
                stream = subflow_of.get(info.tcp_stream)
                if stream is not None:
                    info = replace(info, mptcp_stream=stream)
            yield info

    @staticmethod
    def _with_pair(infos: Iterator[PacketInfo], pair: dict[int, PairFrame]) -> Iterator[PacketInfo]:
        from dataclasses import replace

        for info in infos:
            got = pair.get(info.number)
            yield info if got is None else replace(info, pair=got)

    def _frames(self) -> Iterator[PacketInfo]:
        feed = self.feed_frame
        frames = self.frames
        for batch in self.reader.batches():
            for frame in batch:
                self.frame = frame
                frames += 1
                self.frames = frames
                yield feed(frames, frame)

    def feed_frame(self, number: int, frame: Frame) -> PacketInfo:
        """Frame ``number`` of the capture, as read, to the analyzer: its
        :class:`~mptcpspec.analysis.model.PacketInfo` (for a reader of its own frames, such as the
        compiled hot path, which hands this one the frames it does not take)."""
        ts, linktype, data, orig_len, _, _ = frame
        an = self.analyzer
        try:
            pkt = decode_frame(linktype, data, ts)
        except DecodeError as e:
            return an.feed(number, ts, len(data), orig_len, None, e)
        if pkt is None:
            if linktype not in LINKTYPES:
                self.unsupported[linktype] = self.unsupported.get(linktype, 0) + 1
            return an.feed(
                number, ts, len(data), orig_len, None, None, ip_addresses(linktype, data), frame_layers(linktype, data)
            )
        an.counts["TCP"] += 1  # Analyzer.feed for a TCP segment, without its call
        return an.feed_tcp(number, ts, len(data), orig_len, pkt)

    @property
    def plain(self) -> bool:
        """One pass, nothing learnt beforehand: each frame's analysis is its own and the frames'
        before it (no ``two_pass``)."""
        return (
            self._source is None and not self._subflow_of and self.analyzer.reinjected_in is None and self.pair is None
        )

    @property
    def problems(self) -> list[str]:
        return self.reader.problems

    def connections(self) -> list[Connection]:
        """The MPTCP connections seen so far: all of them once the iteration has ended."""
        return self.analyzer.connections()


def dissect(source: Source, *, verify: bool = True, two_pass: bool = False) -> Iterator[PacketInfo]:
    """The :class:`~mptcpspec.analysis.model.PacketInfo` of every frame of a capture."""
    return iter(Dissection(source, verify=verify, two_pass=two_pass))


@dataclass(frozen=True, slots=True)
class FirstPass:
    """What a first pass over a whole capture learns for the second (``dissect -2``)."""

    #: frame -> the later frames that carried its data again on another subflow (the reverse of
    #: :attr:`~mptcpspec.analysis.model.PacketInfo.reinjection_of`)
    reinjected_in: dict[int, tuple[int, ...]]
    #: TCP stream -> the MPTCP stream it is a subflow of
    subflow_of: dict[int, int]

    @classmethod
    def of(cls, source: Source) -> FirstPass:
        """Read ``source`` through; memory grows with the reinjections and the TCP streams only."""
        later: dict[int, list[int]] = {}
        subflow_of: dict[int, int] = {}
        try:
            for info in Dissection(source, verify=False):
                for f in info.reinjection_of:
                    later.setdefault(f, []).append(info.number)
                if info.mptcp_stream is not None and info.tcp_stream is not None:
                    subflow_of[info.tcp_stream] = info.mptcp_stream
        except CaptureError:
            pass  # damaged framing: what came before it counts; the second pass reports the damage
        return cls({f: tuple(v) for f, v in later.items()}, subflow_of)


def reinjections(source: Source) -> dict[int, tuple[int, ...]]:
    """Frame -> the later frames that carried its data again on another subflow, over the whole
    capture (the reverse of :attr:`~mptcpspec.analysis.model.PacketInfo.reinjection_of`)."""
    return FirstPass.of(source).reinjected_in
