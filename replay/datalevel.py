"""The connection level (RFC 8684 §3.3): data sequence numbers, the window, DATA_ACKs, and
connection-level retransmission.

:class:`OutgoingData` is the client's stream as the replay sends it: the planned segments with
their DSNs, what was sent, what the server acknowledged at data level (its DATA_ACK), its receive
window (the connection's, counted from that DATA_ACK, §3.3.5), and the retransmission of data that
subflows acknowledged but the connection did not (§3.3.6).  :class:`IncomingData` is the server's
stream as we receive it: the DATA_ACK we send, the ranges received out of order, its DATA_FIN.
DSNs are 64 bits; a plan's are relative to the IDSN (1 is the first octet).
"""

from __future__ import annotations

import heapq

from mptcpspec.analysis.seqspace import expand
from mptcpspec.replay.plan import PlannedSegment, ReplayPlan
from mptcpspec.replay.wire import payload_sum

__all__ = ["M64", "IncomingData", "OutgoingData"]

M64 = 0xFFFFFFFFFFFFFFFF
HALF = 1 << 63
MAX_RANGES = 1024  #: out-of-order server data ranges remembered


class OutgoingData:
    """The client's data-level stream: what to send, what was sent, what the server acknowledged.

    ``lead``: data to send before the planned segments, at DSN 1 (the SYN's Fast Open data a
    server did not take); octets the capture lacks are ``fill``; segments longer than ``mss`` are
    split.
    """

    __slots__ = (
        "idsn",
        "una",
        "end",
        "length",
        "sent_high",
        "progress",
        "reinject_tries",
        "edge",
        "acked",
        "segments",
        "sent",
        "unsent",
        "heap",
        "order",
        "pos",
        "low",
        "next_seg",
        "rest",
        "dfin_sent_at",
        "dfin_tries",
        "sums",
        "_plan",
        "_fill",
        "_mss",
    )

    def __init__(self, idsn: int, plan: ReplayPlan, fill: int, mss: int, lead: bytes = b"") -> None:
        self.idsn = idsn
        self.una = (idsn + 1) & M64  #: the server's DATA_ACK: what it acknowledged (64 bits)
        self.sent_high = self.una  #: the end of the data sent so far
        self.progress = 0.0  #: when the server last acknowledged new data at data level
        self.reinject_tries = 0
        #: the right edge of the server's window at data level (DATA_ACK + window, 64 bits): the
        #: largest any of its packets allowed (:meth:`advertised`)
        self.edge = self.una
        self.acked = self.una  #: the DATA_ACK of the server's packet read last (64 bits)
        self.dfin_sent_at: float | None = None  #: our DATA_FIN, while it is not acknowledged
        self.dfin_tries = 0
        self._plan, self._fill, self._mss = plan, fill, mss
        #: each planned payload's one's complement sum (wire.payload_sum), by its octets: summed once,
        #: before the replay starts, so that a data segment's TCP checksum adds only its headers'
        self.sums: dict[bytes, int] = {seg.data: payload_sum(seg.data) for seg in plan.segments if not seg.cut}
        self.replan(lead)

    def replan(self, lead: bytes) -> None:
        """The segments to send: ``lead`` at DSN 1, then the planned ones after it."""
        mss = self._mss
        segments = [PlannedSegment(0, 1 + k, lead[k : k + mss], 0, 0) for k in range(0, len(lead), mss)]
        for seg in self._plan.segments:
            full = seg.data + bytes([self._fill]) * seg.cut
            for k in range(0, len(full), mss):
                segments.append(PlannedSegment(seg.subflow, seg.dsn + len(lead) + k, full[k : k + mss], 0, seg.time_ns))
        self.segments = segments  #: in capture order, then pieces split off later
        self.sent = bytearray(len(segments))  #: 1 for each segment sent
        self.unsent = len(segments)
        #: the segments in DSN order (capture order among equal DSNs), and where the unsent ones begin
        self.order = sorted(range(len(segments)), key=lambda k: segments[k].dsn)
        self.pos = [0] * len(segments)  #: each planned segment's place in ``order``
        for p, k in enumerate(self.order):
            self.pos[k] = p
        self.low = 0
        self.heap: list[tuple[int, int]] = []  #: pieces split off later, lowest DSN first
        self.next_seg = 0  #: the first segment, in capture order, not sent yet
        self.rest: int | None = None  #: the rest of the segment split last: it goes next
        self.length = self._plan.data_len + len(lead)  #: data-level octets
        self.end = (self.idsn + 1 + self.length) & M64  #: the DSN of our DATA_FIN

    # -- choosing what goes next

    def next_planned(self) -> int | None:
        """The rest of the segment split last, if unsent; else the first segment in capture order not sent yet."""
        if self.rest is not None:
            if not self.sent[self.rest]:
                return self.rest
            self.rest = None
        k, sent, n = self.next_seg, self.sent, len(self.segments)
        while k < n and sent[k]:
            k += 1
        self.next_seg = k
        return k if k < n else None

    def lowest_unsent(self) -> int | None:
        """The unsent segment of the lowest DSN."""
        order, sent, p = self.order, self.sent, self.low
        n = len(order)
        while p < n and sent[order[p]]:
            p += 1
        self.low = p
        heap = self.heap
        if not heap:
            return order[p] if p < n else None
        while heap and sent[heap[0][1]]:
            heapq.heappop(heap)
        if p < n and (not heap or self.segments[order[p]].dsn <= heap[0][0]):
            return order[p]  # a planned segment before a piece split off at the same DSN (lower index)
        return heap[0][1] if heap else None

    def following(self, k: int) -> int | None:
        """The planned segment after segment ``k`` in DSN order (None at the end, and after a piece
        split off later)."""
        if k >= len(self.pos):
            return None
        p = self.pos[k] + 1
        return self.order[p] if p < len(self.order) else None

    def split(self, k: int, room: int) -> bytes:
        """Segment ``k`` cut to its first ``room`` octets, returned; the rest becomes a segment of its own."""
        seg = self.segments[k]
        rest = PlannedSegment(seg.subflow, seg.dsn + room, seg.data[room:], 0, seg.time_ns)
        self.segments[k] = PlannedSegment(seg.subflow, seg.dsn, seg.data[:room], 0, seg.time_ns)
        self.segments.append(rest)
        self.sent.append(0)
        self.unsent += 1
        heapq.heappush(self.heap, (rest.dsn, len(self.segments) - 1))
        self.rest = len(self.segments) - 1
        return seg.data[:room]

    def sent_to(self) -> int:
        """The relative DSN the data sent so far reaches (exclusive)."""
        return (self.sent_high - self.idsn) & M64

    @property
    def finished(self) -> bool:
        """Every octet sent and acknowledged at data level."""
        return self.unsent == 0 and self.una == self.end

    # -- acknowledgments

    def data_ack(self, value: int, is64: bool, now: float) -> bool:
        """The server's DATA_ACK ``value`` (``is64``: all 64 bits, else the low 32); True when it
        acknowledges our DATA_FIN for the first time."""
        una = self.una
        ack = value if is64 else expand(value, una)
        self.acked = ack
        if ack != una and ((ack - una) & M64) < HALF:
            self.una = ack
            self.progress = now
            self.reinject_tries = 0
        if self.dfin_sent_at is not None and ((ack - self.end - 1) & M64) < HALF:
            self.dfin_sent_at = None
            return True
        return False

    def advertised(self, window: int, ack: int) -> None:
        """The server's packet carried ``window`` with DATA_ACK ``ack`` (64 bits): the right edge
        moves only forward.  RFC 8684 §3.3.5: the sender updates its window only when the largest
        sequence number allowed (DATA_ACK + window) increases (Linux: ``msk->wnd_end``).  Taking
        the latest packet's window from the highest DATA_ACK instead overshot the edge whenever an
        older packet of another subflow was read after a newer one, with a window since shrunk:
        Linux drops such data at the connection level (``MPTcpExtNoDSSInWindow``) after its subflow
        acknowledged it, and only a data-level retransmission fills the hole."""
        edge = (ack + window) & M64
        if ((edge - self.edge) & M64) < HALF:
            self.edge = edge

    @property
    def window(self) -> int:
        """The server's window at data level, from its DATA_ACK to the right edge (0 when closed)."""
        room = (self.edge - self.una) & M64
        return room if room < HALF else 0

    def delivered(self) -> int:
        """Octets the server acknowledged at data level (the DATA_FIN's not counted)."""
        return min((self.una - self.idsn - 1) & M64, self.length)

    # -- connection-level retransmission (RFC 8684 §3.3.6)

    @property
    def outstanding(self) -> bool:
        """Some data sent is not acknowledged at data level."""
        return 0 < ((self.sent_high - self.una) & M64) < HALF

    def reinject_at(self, rto: float) -> float:
        """When data still unacknowledged at data level is sent again, if no subflow holds any:
        twice ``rto`` (a subflow's measured retransmission timeout) after the last progress, doubled
        on each try."""
        return self.progress + 2 * rto * (1 << self.reinject_tries)

    def reinjection(self) -> list[tuple[int, bytes]]:
        """What to send again, as (relative DSN, data): from the DATA_ACK on, lowest DSN first, at
        most a window's worth."""
        self.reinject_tries += 1
        una = (self.una - self.idsn) & M64
        budget = self.window
        out = []
        for seg in sorted((g for k, g in enumerate(self.segments) if self.sent[k]), key=lambda g: g.dsn):
            if seg.dsn + len(seg.data) > una and budget > 0:
                data = seg.data[max(0, una - seg.dsn) :]
                budget -= len(data)
                out.append((max(seg.dsn, una), data))
        return out


class IncomingData:
    """The server's data-level stream as we receive it; ``idsn`` is known from its key."""

    __slots__ = ("idsn", "next", "ranges", "dfin")

    def __init__(self) -> None:
        self.idsn: int | None = None
        self.next: int | None = None  #: the next DSN expected in order: our DATA_ACK
        self.ranges: list[list[int]] = []  #: received beyond ``next``: offsets from it, merged
        self.dfin: int | None = None  #: the DSN of the server's DATA_FIN

    def start(self, idsn: int) -> None:
        self.idsn = idsn
        self.next = (idsn + 1) & M64

    def data_ack(self) -> int:
        """Our DATA_ACK (0 before the server's key is known)."""
        return 0 if self.next is None else self.next

    def expand(self, dsn: int) -> int:
        """A 32-bit DSN of the server's, expanded to 64 bits."""
        return expand(dsn, self.next if self.next is not None else self.idsn or 0)

    def add(self, start: int, n: int) -> None:
        """Server data [start, start+n) received: advance the DATA_ACK over what is now contiguous.

        Ranges are kept as offsets from the DATA_ACK (modulo 2**64), merged, and at most
        ``MAX_RANGES`` of them: a hostile peer cannot make the list grow without bound."""
        nxt = self.next
        if nxt is None:
            return
        lo = (start - nxt) & M64
        hi = (start + n - nxt) & M64
        if lo >= HALF:  # starts before the DATA_ACK
            if hi >= HALF or hi == 0:
                return
            lo = 0
        if hi > 1 << 62:
            return  # absurdly far ahead: ignore
        ranges = self.ranges
        ranges.append([lo, hi])
        ranges.sort()
        merged: list[list[int]] = []
        for a, b in ranges:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        if merged and merged[0][0] == 0:
            step = merged.pop(0)[1]
            self.next = (nxt + step) & M64
            merged = [[a - step, b - step] for a, b in merged]
        self.ranges = merged[:MAX_RANGES]

    def data_fin_reached(self) -> bool:
        """The server's DATA_FIN is next in order: acknowledge it (True once)."""
        if self.dfin is not None and self.next == self.dfin:
            self.next = (self.dfin + 1) & M64
            return True
        return False

    def octets(self) -> int:
        """Server octets received in order (its DATA_FIN not counted)."""
        if self.next is None or self.idsn is None:
            return 0
        n = (self.next - self.idsn - 1) & M64
        if self.dfin is not None and self.next == (self.dfin + 1) & M64:
            n -= 1
        return n
