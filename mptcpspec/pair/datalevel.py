"""The data level seen from both ends: which reinjections helped, how long data waited out of order
at the receiver and for which subflow, and which subflow carried the goodput."""

from __future__ import annotations

import heapq
from bisect import bisect_right
from dataclasses import dataclass

from mptcpspec.pair.model import Delays, Reinjection, Reordering, Share
from mptcpspec.pair.read import Seg

__all__ = ["Carried", "qualify_reinjections", "reordering"]

M64 = (1 << 64) - 1


@dataclass(slots=True)
class Carried:
    """A data segment of one direction of a connection, with its subflow (tcp.stream) in the
    capture it comes from."""

    seg: Seg
    stream: int


class _Index:
    """Segments by data sequence number, to find those that carry a given octet."""

    def __init__(self, segs: list[Carried], base: int) -> None:
        rows = sorted((((c.seg.dsn - base) & M64), c.seg.frame, c) for c in segs if c.seg.dsn is not None)
        self.starts = [r[0] for r in rows]
        self.rows = [r[2] for r in rows]
        self.longest = max((c.seg.plen for c in self.rows), default=0)
        self.base = base

    def covering(self, x: int) -> list[Carried]:
        """The segments whose data holds octet ``x`` (relative), in capture order."""
        out = []
        i = bisect_right(self.starts, x) - 1
        while i >= 0 and self.starts[i] > x - self.longest:
            if self.starts[i] + self.rows[i].seg.plen > x:
                out.append(self.rows[i])
            i -= 1
        out.sort(key=lambda c: c.seg.frame)
        return out


def qualify_reinjections(
    direction: str, sent: list[Carried], received: list[Carried], base: int, relative: bool
) -> tuple[list[Reinjection], dict[int, bool], dict[int, bool]]:
    """Each reinjection in the sender's capture, qualified at the receiver: useful when its data
    arrived first by it (the original lost, or late), redundant when another copy (the original, a
    retransmission, an earlier reinjection) came first, lost when it never arrived.  ``base``: the
    DSN octet 0 is counted from (the IDSN when ``relative``).  Returns the reinjections and, by frame
    of the sender's and of the receiver's capture, whether it was useful (the
    ``mptcp.pair.reinjection_useful`` field)."""
    index = _Index(received, base)
    out: list[Reinjection] = []
    on_sent: dict[int, bool] = {}
    on_received: dict[int, bool] = {}
    for c in sent:
        s = c.seg
        if not s.reinj or s.dsn is None or not s.plen:
            continue
        x = (s.dsn - base) & M64
        r = s.peer if s.peer is not None and s.peer.peer is s else None
        # the first other copy of its first octet at the receiver
        first = min((got.seg for got in index.covering(x) if got.seg is not r), key=lambda g: g.t, default=None)
        if r is None:
            verdict, reason, saved = "lost", "the reinjection never arrived", None
        elif first is None:
            verdict, reason, saved = "useful", "no other copy of its data arrived", None
        elif first.t > r.t:
            verdict, reason, saved = (
                "useful",
                f"its data arrived first by it (the next copy: frame {first.frame})",
                first.t - r.t,
            )
        else:
            verdict, reason, saved = "redundant", f"its data had arrived before (frame {first.frame})", first.t - r.t
        out.append(
            Reinjection(
                direction, s.frame, None if r is None else r.frame, c.stream, tuple(s.reinj),
                x if relative else s.dsn, s.plen, verdict, reason, saved,
            )
        )  # fmt: skip
        if r is not None:
            on_sent[s.frame] = on_received[r.frame] = verdict == "useful"
    return out, on_sent, on_received


def reordering(
    direction: str,
    received: list[Carried],
    sent: list[Carried],
    base: int,
) -> tuple[Reordering, dict[int, int]]:
    """Replay the receiver's data level: each data segment received is in order when its first
    octet is at or below the next expected DSN; else it waits until the octets before it arrive.
    ``base``: the DSN before the first octet (the IDSN).  Returns the summary and, by frame of the
    receiver's capture, the time its data waited (0: in order at once; the ``mptcp.pair.ooo_delay``
    field)."""
    senders = _Index(sent, base)
    nxt = 1
    pending: list[tuple[int, int, int, int, int]] = []  # (start, frame, end, time, stream)
    delays: dict[int, int] = {}
    waits: list[int] = []
    waited_octets = 0
    credit: dict[int, int] = {}
    held: dict[int, list[int]] = {}
    blocked = 0
    since: int | None = None
    segments = 0
    for c in sorted(received, key=lambda c: c.seg.frame):
        s = c.seg
        if s.dsn is None or not s.plen:
            continue
        segments += 1
        a = (s.dsn - base) & M64
        b = a + s.plen
        if b <= nxt:
            continue  # data already in order: a duplicate
        if a > nxt:
            if not pending:
                since = s.t
            heapq.heappush(pending, (a, s.frame, b, s.t, c.stream))
            continue
        credit[c.stream] = credit.get(c.stream, 0) + b - nxt
        delays[s.frame] = 0
        hole_at, nxt = nxt, b
        if not pending or pending[0][0] > nxt:
            continue
        hole = senders.covering(hole_at)
        late = hole[0].stream if hole else c.stream
        record = held.setdefault(late, [0, 0])
        while pending and pending[0][0] <= nxt:
            start, frame, end, t, stream = heapq.heappop(pending)
            wait = s.t - t
            delays[frame] = wait
            waits.append(wait)
            waited_octets += end - start
            record[0] += 1
            record[1] = max(record[1], wait)
            if end > nxt:
                credit[stream] = credit.get(stream, 0) + end - nxt
                nxt = end
        if not pending and since is not None:
            blocked += s.t - since
            since = None
    total = sum(credit.values())
    shares = tuple(Share(k, v, v / total if total else 0.0) for k, v in sorted(credit.items()))
    summary = Reordering(
        direction,
        segments,
        total,
        len(waits),
        waited_octets,
        Delays.of(waits),
        blocked,
        len(pending),
        tuple((k, n, m) for k, (n, m) in sorted(held.items())),
        shares,
    )
    return summary, delays
