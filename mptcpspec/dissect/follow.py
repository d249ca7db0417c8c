"""MPTCP-level reassembly: each direction's data-level byte stream of one connection.

Feed :class:`~mptcpspec.analysis.model.PacketInfo` values of the connection; each payload whose data
sequence number is known (``payload_dsn``) is placed at that offset, whichever subflow carried it,
and written out in DSN order as soon as it is contiguous.  Overlaps (reinjections, retransmissions)
are written once.  What never arrived is reported as gaps.  Data held back behind a gap is bounded
(``hold`` octets per direction): past it, the gap is given up and reported, and the data that fills
it later is counted as ``late``, not written.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mptcpspec.analysis import Connection, PacketInfo

__all__ = ["Follower", "FollowResult", "StreamFiles", "StreamReport"]


@dataclass
class StreamReport:
    """What was written for one direction."""

    written: int = 0  #: octets written
    segments: int = 0
    duplicate: int = 0  #: octets seen again (reinjected or retransmitted)
    gaps: list[tuple[int, int]] = field(default_factory=list)  #: (relative DSN, length) never captured
    cut: int = 0  #: octets lost to the snapshot length
    unmapped: int = 0  #: payload octets whose DSN is unknown
    late: int = 0  #: octets that arrived after their gap had been given up (see ``hold``)


HOLD = 64 << 20  #: octets held back behind a gap, per direction, before the gap is given up


class _Direction:
    def __init__(self, out: BinaryIO, hold: int = HOLD) -> None:
        self.out = out
        self.next = 1  # relative DSN of the next octet to write: the first data octet is IDSN + 1
        self.pending: dict[int, bytes] = {}  # DSN -> data, beyond a gap
        self.starts: list[int] = []  # the keys of pending, as a heap
        self.held = 0  # octets in pending
        self.hold = hold
        self.given_up = 0  # DSN below which gaps were given up: data for them is late
        self.report = StreamReport()

    def add(self, dsn: int, data: bytes) -> None:
        r = self.report
        r.segments += 1
        if not r.written and not self.starts and dsn < self.next:
            self.next = dsn  # TCP Fast Open data on the SYN comes before IDSN + 1
        end = dsn + len(data)
        if dsn < self.next:  # written before, or in a gap given up
            below = min(end, self.next)
            late = self._late(dsn, below)
            r.late += late
            r.duplicate += below - dsn - late
            if end <= self.next:
                return
            data = data[self.next - dsn :]
            dsn = self.next
        if dsn > self.next:
            old = self.pending.get(dsn)
            if old is None:
                heapq.heappush(self.starts, dsn)
            else:
                r.duplicate += min(len(old), len(data))
            if old is None or len(old) < len(data):
                self.pending[dsn] = data
                self.held += len(data) - (len(old) if old is not None else 0)
                while self.held > self.hold:
                    self._skip()
            return
        self.out.write(data)
        r.written += len(data)
        self.next = end
        self._drain()

    def _late(self, dsn: int, end: int) -> int:
        """Octets of [dsn, end) in the gaps given up."""
        if dsn >= self.given_up:
            return 0
        n = 0
        for s, g in reversed(self.report.gaps):  # in DSN order
            if s + g <= dsn:
                break
            n += max(0, min(end, s + g) - max(dsn, s))
        return n

    def _skip(self) -> None:
        """Give up the gap before the first data held: report it and write on from there."""
        k = self.starts[0]
        self.report.gaps.append((self.next, k - self.next))
        self.next = self.given_up = k
        self._drain()

    def _drain(self) -> None:
        p, starts = self.pending, self.starts
        while starts:
            k = starts[0]
            if k > self.next:
                return
            heapq.heappop(starts)
            data = p.pop(k)
            self.held -= len(data)
            end = k + len(data)
            if end <= self.next:
                self.report.duplicate += len(data)
                continue
            self.report.duplicate += self.next - k
            data = data[self.next - k :]
            self.out.write(data)
            self.report.written += len(data)
            self.next = end

    def finish(self) -> None:
        """Write what is left after gaps (each gap reported, not filled)."""
        while self.starts:
            self._skip()


class Follower:
    """Reassemble MPTCP stream ``stream``: client→server into ``client_out``, the other way into
    ``server_out``; at most ``hold`` octets per direction are held back behind a gap.  ``conn`` is
    the stream's connection once seen (None: the capture has no such stream)."""

    def __init__(self, stream: int, client_out: BinaryIO, server_out: BinaryIO, hold: int = HOLD) -> None:
        self.stream = stream
        self.dirs = (_Direction(client_out, hold), _Direction(server_out, hold))
        self.seen = False
        self.conn: Connection | None = None
        # Data of connections not numbered yet: the payload of a v1 SYN (TCP Fast Open), which
        # comes before the SYN/ACK that numbers the connection.
        self._early: dict[int, list[PacketInfo]] = {}

    def feed(self, info: PacketInfo) -> None:
        c = info.connection
        if c is None or info.packet is None:
            return
        if self.conn is None:
            if c.stream is None:
                if info.packet.payload_len and len(self._early) < 1024:
                    self._early.setdefault(id(c), []).append(info)
                return
            if c.stream != self.stream:
                return
            self.conn = c
            for early in self._early.pop(id(c), []):
                self._add(early)
            self._early.clear()
        if c is self.conn and info.packet.payload_len:
            self._add(info)

    def _add(self, info: PacketInfo) -> None:
        self.seen = True
        d = self.dirs[0 if info.from_client else 1]
        p = info.packet
        assert p is not None  # fed only packets with a payload
        if info.payload_dsn is None:
            d.report.unmapped += p.payload_len
            return
        if p.payload_cut:
            d.report.cut += p.payload_len - len(p.payload)
        if p.payload:
            d.add(info.payload_dsn, p.payload)

    def finish(self) -> tuple[StreamReport, StreamReport]:
        for d in self.dirs:
            d.finish()
        return self.dirs[0].report, self.dirs[1].report


@dataclass(frozen=True, slots=True)
class FollowResult:
    """How ``--follow N`` ended."""

    stream: int
    found: bool  #: the capture has MPTCP stream N (else its files were removed)
    streams: int  #: MPTCP streams numbered in the capture
    carried_data: bool  #: the stream carried data in the capture
    #: each direction's file (client→server first) and what was written to it
    files: tuple[tuple[Path, StreamReport], ...] = ()


class StreamFiles:
    """The two files of ``--follow N`` in ``folder``: ``mptcp-stream-N-client.bin`` (client→server)
    and ``mptcp-stream-N-server.bin``, written by :attr:`follower`.  :meth:`discard` removes them
    (a capture that could not be read); :meth:`finish` closes them, and removes them when the
    capture had no stream N."""

    def __init__(self, stream: int, folder: Path, hold: int = HOLD) -> None:
        self.stream = stream
        self.paths = (folder / f"mptcp-stream-{stream}-client.bin", folder / f"mptcp-stream-{stream}-server.bin")
        self.files: list[BinaryIO] = []
        try:
            for p in self.paths:
                self.files.append(open(p, "wb"))  # closed by finish or discard
        except OSError:
            self.discard()
            raise
        self.follower = Follower(stream, self.files[0], self.files[1], hold)

    def discard(self) -> None:
        for f in self.files:
            f.close()
        for p in self.paths[: len(self.files)]:
            p.unlink(missing_ok=True)

    def finish(self, connections: list[Connection]) -> FollowResult:
        """Write what is left, close the files; ``connections``: the capture's, all of them."""
        reports = self.follower.finish()
        for f in self.files:
            f.close()
        streams = sum(c.stream is not None for c in connections)
        if self.follower.conn is None:
            for p in self.paths:
                p.unlink()
            return FollowResult(self.stream, False, streams, False)
        return FollowResult(self.stream, True, streams, self.follower.seen, tuple(zip(self.paths, reports)))
