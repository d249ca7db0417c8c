"""Sequence spaces: 32-bit numbers expanded to 64 bits, data ranges and data-level holes.

:func:`expand` gives a 32-bit sequence number its 64-bit value (the replay engine uses it too).
:class:`SequenceSpace` follows each connection side's data sequence space as segments carry it:
the ranges carried per subflow (a range carried on a second subflow is a reinjection) and the
holes between them (data acknowledged at the data level that no captured segment carried is a
gap).  The functions below keep a :class:`~mptcpspec.analysis.model.Side`'s holes.
"""

from __future__ import annotations

from bisect import bisect_right

from mptcpspec.analysis.context import PacketContext
from mptcpspec.analysis.model import NO_HOLE, Connection, Side

__all__ = ["M32", "M64", "expand", "carried", "blind", "data_starts", "SequenceSpace"]

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
MAX_RANGES = 4096  # data ranges remembered per connection direction (reinjection detection)
MAX_HOLES = 64  # data-level holes remembered per connection direction (gap detection)
NEAR = 1 << 32  # a DSN this close to a connection's data is taken to be of that connection


def expand(value: int, reference: int) -> int:
    """A 32-bit sequence number expanded to the 64-bit number closest to ``reference``."""
    v = (reference & ~M32) | value
    if v - reference > 0x80000000:
        v -= 1 << 32
    elif reference - v > 0x80000000:
        v += 1 << 32
    return v & M64


def data_starts(side: Side, dsn64: int) -> None:
    """``side``'s data starts at ``dsn64`` (IDSN + 1): data acknowledged above it must have been captured."""
    if side.seg_high is None and not side.blind:
        side.seg_low = side.seg_high = dsn64


def carried(side: Side, start: int, end: int) -> None:
    """Data [start, end) of ``side`` was carried by a segment of the capture: its data-level holes
    (ranges between the data seen) follow."""
    high = side.seg_high
    if high is None:
        if not side.blind:
            side.seg_low, side.seg_high = start, end
    elif start > high:
        _hole(side, high, start)
        side.seg_high = end
    else:
        if end > side.hole_lo:
            h = side.holes[0]
            if start <= h[0] and end < h[1]:  # the common case: the next data of the lowest hole
                h[0] = side.hole_lo = end
            elif start < side.holes[-1][1]:
                _fill(side, start, end)
        if end > high:
            side.seg_high = end
        low = side.seg_low
        assert low is not None  # set with seg_high
        if start < low:
            if end < low:
                _hole(side, end, low)
            side.seg_low = start


def _hole(side: Side, start: int, end: int) -> None:
    holes = side.holes
    i = len(holes)
    while i and holes[i - 1][0] > start:
        i -= 1
    holes.insert(i, [start, end])
    if len(holes) > MAX_HOLES:
        del holes[0]
    side.hole_lo = holes[0][0]


def blind(side: Side) -> None:
    """Some data of ``side`` is at DSNs the capture does not show: judge no gap of it from now on."""
    side.blind = True
    side.holes, side.hole_lo, side.seg_low, side.seg_high = [], NO_HOLE, None, None


def _fill(side: Side, start: int, end: int) -> None:
    """Take [start, end), now carried by a segment, out of ``side``'s holes."""
    out = []
    for h in side.holes:
        if h[1] <= start or h[0] >= end:
            out.append(h)
        else:
            if h[0] < start:
                out.append([h[0], start])
            if h[1] > end:
                out.append([end, h[1]])
    side.holes = out
    side.hole_lo = out[0][0] if out else NO_HOLE


class SequenceSpace:
    """The data carried at each connection side's data level: reinjections and gaps."""

    __slots__ = ("ctx", "conns")

    def __init__(self, ctx: PacketContext, conns: list[Connection]) -> None:
        self.ctx = ctx
        self.conns = conns  # every connection, in the order made (the analyzer's list)

    def segment(self, side: Side, dsn64: int, n: int, subflow: int, number: int) -> None:
        """Frame ``number`` carried data [dsn64, dsn64 + n) of ``side`` on subflow ``subflow``.

        Reinjection: this segment's data-level range was carried on another subflow before.  As
        Wireshark's ``mptcp.reinjection_of``: per segment, across subflows only (a retransmission
        on the same subflow is TCP's business), earlier frames only.  Also keeps the side's
        data-level holes (see :meth:`acked`)."""
        end = dsn64 + n
        # carried(side, dsn64, end), its two common cases inline: data that continues the highest
        # seen, and data that continues the lowest hole (the other subflow's share, arriving)
        if dsn64 == side.seg_high:
            side.seg_high = end
        elif dsn64 == side.hole_lo and end < side.holes[0][1]:
            side.holes[0][0] = side.hole_lo = end
        else:
            carried(side, dsn64, end)
        starts, ranges = side.starts, side.ranges
        i = len(starts)
        if i and dsn64 < starts[-1]:  # else it goes at the end (bisect_right's answer too)
            i = bisect_right(starts, dsn64)
        hits: list[int] | None = None
        j = i - 1
        reach = dsn64 - side.max_seg  # a range starting at or below this one ends before dsn64
        while j >= 0:
            s, e, sub, frame = ranges[j]
            if s <= reach:
                break
            if e > dsn64 and sub != subflow:
                if hits is None:
                    hits = []
                hits.append(frame)
            j -= 1
        k = i
        nranges = len(ranges)
        while k < nranges and ranges[k][0] < end:
            if ranges[k][2] != subflow:
                if hits is None:
                    hits = []
                hits.append(ranges[k][3])
            k += 1
        if hits:
            hits.sort()
            self.ctx.reinjection_of.extend(hits)
            side.reinjected += n
            self.ctx.expert(
                "mptcp.dss.reinjection",
                f"DSN {dsn64:#x}+{n} was sent on another subflow in frame(s) {', '.join(map(str, hits))}",
            )
        if n > side.max_seg:
            side.max_seg = n
        if i == nranges:
            starts.append(dsn64)
            ranges.append((dsn64, end, subflow, number))
        else:
            starts.insert(i, dsn64)
            ranges.insert(i, (dsn64, end, subflow, number))
        if nranges >= MAX_RANGES:  # one more now
            del ranges[: MAX_RANGES // 2]
            del starts[: MAX_RANGES // 2]

    def acked(self, side: Side, ack64: int, conn: Connection) -> None:
        """A DATA_ACK up to ``ack64`` of ``side``'s data (of ``conn``): the holes below it were
        received by the peer, but no captured segment carried them (not captured, or carried
        without a mapping seen)."""
        if conn.fallback or conn.unlinked:  # its data is not followed at the data level
            blind(side)
            return
        holes = side.holes
        idsn = side.idsn
        high = side.seg_high
        if high is not None and ack64 > high:
            # beyond every segment captured (a DATA_FIN takes one DSN after the data, and no data after it)
            limit = side.dfin if side.dfin is not None and high <= side.dfin < ack64 else ack64
            if limit > high:
                _hole(side, high, limit)
            side.seg_high = ack64  # accounted: the later DATA_ACKs that repeat it need no look
        while holes and holes[0][0] < ack64:
            start, end = holes[0]
            top = min(end, ack64)
            rel = "" if idsn is None else f" (relative {(start - idsn) & M64}..{(top - idsn) & M64})"
            self.ctx.expert(
                "mptcp.dss.gap",
                f"DSN {start:#x}..{top:#x}{rel}, {top - start} octets of data sequence "
                f"space (data, or a DATA_FIN), acknowledged here but mapped by no "
                f"segment of the capture",
            )
            if top >= end:
                del holes[0]
            else:
                holes[0][0] = top
        side.hole_lo = holes[0][0] if holes else NO_HOLE

    def orphan_data(self, dsn64: int, length: int) -> None:
        """A mapping on a subflow linked to no connection (its handshake not captured): its data may
        be a linked connection's, found by its 64-bit DSN (random IDSNs keep connections' data
        sequence spaces apart); that connection's data is then not missing from the capture."""
        for conn in self.conns:
            if conn.unlinked:
                continue
            for side in conn.sides:
                low, high = side.seg_low, side.seg_high
                if high is not None and low is not None and low - NEAR <= dsn64 <= high + NEAR:
                    carried(side, dsn64, dsn64 + length)

    @staticmethod
    def forget(conn: Connection) -> None:
        """Every subflow of ``conn`` is closed: its data ranges (up to MAX_RANGES a side) serve
        reinjection detection only, which ends with the subflows: memory follows the live
        connections, not the capture."""
        for side in conn.sides:
            side.ranges, side.starts, side.max_seg = [], [], 0
            side.holes, side.hole_lo = [], NO_HOLE
