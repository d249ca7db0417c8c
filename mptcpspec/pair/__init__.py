"""Two ends of one connection: a capture taken at the client and one taken at the server, read
together (``mptcpspec pair``).

>>> from mptcpspec.pair import pair_captures
>>> p = pair_captures("tests/data/pair/client.pcap", "tests/data/pair/server.pcap")  # doctest: +SKIP
>>> p.report.connections[0].subflows[0].flows[0].owd.median_ns  # doctest: +SKIP

Matching: subflows by their handshakes (the MP_JOIN SYN's token and nonce, the MP_CAPABLE keys,
the initial sequence numbers: robust to address and port translation), segments by their place in
the subflow's sequence space, length, flags and IPv4 identification (:mod:`~mptcpspec.pair.match`).
From the matched copies: the clocks' offset (the smallest one-way delays both ways bound it), each
segment's one-way delay, the segments lost and those made on the way, what a middlebox changed;
at the data level (:mod:`~mptcpspec.pair.datalevel`): which reinjections helped, how long data
waited out of order at the receiver, which subflow carried the goodput.  Each frame of both
captures gets its :class:`~mptcpspec.analysis.model.PairFrame` (the ``mptcp.pair.*`` fields).
"""

from __future__ import annotations

from mptcpspec.analysis.model import CLIENT, SERVER, Connection, PairFrame
from mptcpspec.dissect.outcome import ReadOutcome
from mptcpspec.dissect.pipeline import Source
from mptcpspec.pair.datalevel import Carried, qualify_reinjections, reordering
from mptcpspec.pair.match import FlowMatch, endpoint, flow_changes, match_flow, match_subflows, sender_is_client
from mptcpspec.pair.model import (
    Change,
    ConnectionPair,
    Delays,
    Flow,
    Offset,
    PairError,
    Pairing,
    PairReport,
    Reinjection,
    Reordering,
    Share,
    SubflowPair,
)
from mptcpspec.pair.read import Seg, SideView, SubflowView, read_side

__all__ = [
    "Change",
    "ConnectionPair",
    "Delays",
    "Flow",
    "Offset",
    "PairError",
    "PairReport",
    "Pairing",
    "Reinjection",
    "Reordering",
    "Share",
    "SubflowPair",
    "pair_captures",
]

_EXAMPLES = 20  # frames listed per loss


class _Notes:
    """The fields of one capture's frames, gathered."""

    def __init__(self) -> None:
        self.by: dict[int, dict[str, object]] = {}

    def set(self, frame: int, **values: object) -> None:
        self.by.setdefault(frame, {}).update(values)

    def frames(self) -> dict[int, PairFrame]:
        return {f: PairFrame(**v) for f, v in self.by.items()}  # type: ignore[arg-type]


def _same_capture(a: SideView, b: SideView) -> bool:
    return a.frames == b.frames and a.heads == b.heads


def _handshake_gap(v: SubflowView) -> int | None:
    if v.syn is None or v.synack is None:
        return None
    return v.synack.t - v.syn.t


def _given_server_first(pairs: list[tuple[SubflowView, SubflowView, str]]) -> bool:
    """Whether the first capture was taken at the server: a host sees the SYN/ACK follow the SYN
    after a round trip at the client, at once at the server."""
    first = second = 0
    for a, b, _ in pairs:
        ga, gb = _handshake_gap(a), _handshake_gap(b)
        if ga is None or gb is None:
            continue
        if ga * 2 < gb:
            first += 1
        elif gb * 2 < ga:
            second += 1
    return first > second


def _describe(v: SubflowView) -> str:
    sf = v.sf
    what = f"tcp.stream {v.stream}"
    if sf.conn is not None and sf.conn.stream is not None:
        what += f" (mptcp.stream {sf.conn.stream})"
    return f"{what} {endpoint(sf.client)} -> {endpoint(sf.server)}"


def pair_captures(
    client: Source,
    server: Source,
    *,
    offset_ns: int | None = None,
    stream: int | None = None,
    names: tuple[str, str] = ("client", "server"),
) -> Pairing:
    """Read the capture taken at the client and the one taken at the server and pair them.

    ``offset_ns``: the server capture's clock minus the client's, when known (else estimated).
    ``stream``: only the connection that is mptcp.stream ``stream`` in the client's capture.
    Captures given server first are taken the right way round (``report.swapped``).  Raises
    :class:`PairError` for captures that share no connection, hold no MPTCP at all, or are the
    same capture twice."""
    a, b = read_side(client, names[0]), read_side(server, names[1])
    if _same_capture(a, b):
        raise PairError(f"{names[0]} and {names[1]} are the same capture: give the client's and the server's")
    if not a.mptcp_frames and not b.mptcp_frames:
        raise PairError(f"neither {names[0]} nor {names[1]} holds an MPTCP option: nothing to pair")
    pairs, left_a, left_b = match_subflows(a, b)
    if not pairs:
        raise PairError(
            f"{names[0]} and {names[1]} share no connection: "
            + f"{names[0]} has {_listing(a)}; {names[1]} has {_listing(b)}"
        )
    pairer = _Pairer(a, b, pairs, offset_ns, stream, False)
    flows = pairer.match_all()
    fwd, rev = _smallest_delays(flows)
    # Taken at the client and at the server, the smallest delays both ways add up to the smallest
    # one-way delays, whatever the clocks' offset: a negative sum means the captures were given
    # the other way round.  With matches one way only, the handshakes' times say it.
    swapped = fwd + rev < 0 if fwd is not None and rev is not None else _given_server_first(pairs)
    if swapped:
        for view in (a, b):
            for v in view.subflows.values():
                for seg in (*v.segs[0], *v.segs[1]):
                    seg.peer = None
        a, b = b, a
        pairer = _Pairer(a, b, [(y, x, how) for x, y, how in pairs], offset_ns, stream, True)
        flows = pairer.match_all()
        left_a, left_b = left_b, left_a
    return pairer.run(flows, left_a, left_b)


_FlowMatches = list[tuple[SubflowView, SubflowView, int, bool, FlowMatch]]


def _smallest_delays(flows: _FlowMatches) -> tuple[int | None, int | None]:
    """The smallest (receiver's time - sender's time) of a matched segment, client to server and
    server to client."""
    fwd: int | None = None
    rev: int | None = None
    for _, _, _, at_client, m in flows:
        for snd in m.sent:
            r = snd.peer
            if r is None or r.peer is not snd:
                continue
            delta = r.t - snd.t
            if at_client:
                fwd = delta if fwd is None or delta < fwd else fwd
            else:
                rev = delta if rev is None or delta < rev else rev
    return fwd, rev


def _listing(v: SideView) -> str:
    if not v.subflows:
        return "no TCP stream"
    conns = v.connections()
    keys = ", ".join(
        f"mptcp.stream {c.stream} (client key {_hex(c.sides[CLIENT].key)})" for c in conns if c.stream is not None
    )
    return f"{len(v.subflows)} TCP stream(s)" + (f", {keys}" if keys else ", no MPTCP connection")


def _hex(k: int | None) -> str:
    return "unknown" if k is None else f"{k:#018x}"


class _Pairer:
    def __init__(
        self,
        c: SideView,
        s: SideView,
        pairs: list[tuple[SubflowView, SubflowView, str]],
        offset_ns: int | None,
        stream: int | None,
        swapped: bool,
    ) -> None:
        self.c, self.s, self.pairs = c, s, pairs
        self.given = offset_ns
        self.stream = stream
        self.swapped = swapped
        self.notes = (_Notes(), _Notes())  # client's capture, server's

    def match_all(self) -> _FlowMatches:
        """Every direction of every matched subflow: (views, direction, sent by the client, match)."""
        flows: _FlowMatches = []
        for cv, sv, _ in self.pairs:
            for d in (0, 1):
                at_client = sender_is_client(cv, d)
                snd, rcv = (cv, sv) if at_client else (sv, cv)
                flows.append((cv, sv, d, at_client, match_flow(snd.segs[d], rcv.segs[d])))
        return flows

    def run(self, flows: _FlowMatches, left_c: list[SubflowView], left_s: list[SubflowView]) -> Pairing:
        offset = self._offset(flows)
        self.offset = offset
        by_pair: dict[tuple[int, int], list[Flow]] = {}
        for cv, sv, d, at_client, m in flows:
            by_pair.setdefault((cv.stream, sv.stream), []).append(self._flow(cv, sv, d, at_client, m))
        groups: dict[int, list[tuple[SubflowView, SubflowView, str]]] = {}
        for cv, sv, how in self.pairs:
            conn = cv.conn or sv.conn
            groups.setdefault(id(conn) if conn is not None else -1 - cv.stream, []).append((cv, sv, how))
        conns = []
        for members in groups.values():
            cp = self._connection(members, by_pair)
            if self.stream is None or cp.client_stream == self.stream:
                conns.append(cp)
        if self.stream is not None and not conns:
            have = sorted({cp for cp in (v.conn.stream for v in self.c.subflows.values() if v.conn) if cp is not None})
            raise PairError(
                f"{self.c.name}: no MPTCP stream {self.stream} paired"
                + (f" (paired: {', '.join(map(str, have))})" if have else " (no MPTCP connection)")
            )
        conns.sort(key=lambda cp: (cp.client_stream is None, cp.client_stream, cp.subflows[0].client_stream))
        report = PairReport(
            self.c.name,
            self.s.name,
            self.swapped,
            offset,
            tuple(conns),
            tuple(_describe(v) for v in left_c),
            tuple(_describe(v) for v in left_s),
            _outcome(self.c),
            _outcome(self.s),
        )
        frames = (self.notes[0].frames(), self.notes[1].frames())
        return Pairing(report, frames[::-1] if self.swapped else frames)  # as given

    # -- the clocks
    def _offset(self, flows: _FlowMatches) -> Offset:
        fwd, rev = _smallest_delays(flows)
        if self.given is not None:
            return Offset(self.given, 0, True, fwd, rev)
        if fwd is not None and rev is not None:
            return Offset((fwd - rev) // 2, (fwd + rev + 1) // 2, False, fwd, rev)
        # one way only: no bound; the smallest delay taken for zero
        return Offset(fwd if fwd is not None else -(rev or 0), None, False, fwd, rev)

    def _to_receiver(self, at_client: bool) -> int:
        """What to add to a sender's time to get the receiver's clock (offset only)."""
        return self.offset.offset_ns if at_client else -self.offset.offset_ns

    # -- one direction of a subflow
    def _flow(self, cv: SubflowView, sv: SubflowView, d: int, at_client: bool, m: FlowMatch) -> Flow:
        sender_notes, receiver_notes = (self.notes[0], self.notes[1]) if at_client else (self.notes[1], self.notes[0])
        rcv_view, snd_view = (self.s, self.c) if at_client else (self.c, self.s)
        shift = self._to_receiver(at_client)
        changes, hops, on_sent, on_received = flow_changes(m, at_client, (cv, sv), d)
        owds: list[int] = []
        lost: list[Seg] = []
        outside = matched = 0
        lo, hi = rcv_view.first_ns, rcv_view.last_ns
        assert lo is not None and hi is not None
        unmatched: list[Seg] = []
        for snd in m.sent:
            r = snd.peer
            if r is not None:
                owd = r.t - snd.t - shift
                matched += 1
                owds.append(owd)
                sender_notes.set(snd.frame, peer_frame=r.frame, owd_ns=owd)
                if r.peer is snd:
                    receiver_notes.set(r.frame, peer_frame=snd.frame, owd_ns=owd)
            else:
                unmatched.append(snd)
        # A segment counts as lost (or as made on the way) only when the other capture ran from
        # before it was sent until after it arrived: the longest delay seen bounds its flight.
        flight = max(0, max(owds, default=0))
        for snd in unmatched:
            at = snd.t + shift
            if lo <= at and at + flight <= hi:
                lost.append(snd)
                sender_notes.set(snd.frame, lost=True)
            else:
                outside += 1
        injected: list[Seg] = []
        slo, shi = snd_view.first_ns, snd_view.last_ns
        assert slo is not None and shi is not None
        for r in m.received:
            if r.peer is None:
                at = r.t - shift
                if slo <= at - flight and at <= shi:
                    injected.append(r)
                    receiver_notes.set(r.frame, injected=True)
                else:
                    outside += 1
        for frame, names in on_sent.items():
            sender_notes.set(frame, changes=tuple(names))
        for frame, names in on_received.items():
            receiver_notes.set(frame, changes=tuple(names))
        return Flow(
            "client→server" if at_client else "server→client",
            len(m.sent) - (len(unmatched) - len(lost)),
            len(m.received),
            matched,
            len(lost),
            sum(x.plen for x in lost),
            tuple(x.frame for x in lost[:_EXAMPLES]),
            len(injected),
            tuple(x.frame for x in injected[:_EXAMPLES]),
            outside,
            Delays.of(owds),
            hops,
            tuple(changes),
        )

    # -- a connection
    def _connection(
        self, members: list[tuple[SubflowView, SubflowView, str]], by_pair: dict[tuple[int, int], list[Flow]]
    ) -> ConnectionPair:
        cconn = next((cv.conn for cv, _, _ in members if cv.conn is not None), None)
        sconn = next((sv.conn for _, sv, _ in members if sv.conn is not None), None)
        subflows = []
        for cv, sv, how in members:
            sf = cv.sf
            kind = sf.kind or sv.sf.kind or "TCP"
            subflows.append(
                SubflowPair(
                    cv.stream,
                    sv.stream,
                    kind,
                    f"{endpoint(sf.client)} -> {endpoint(sf.server)}",
                    f"{endpoint(sv.sf.client)} -> {endpoint(sv.sf.server)}",
                    how,
                    tuple(by_pair[(cv.stream, sv.stream)]),
                )
            )
        reinjections: list[Reinjection] = []
        reorders: list[Reordering] = []
        conn = cconn or sconn
        if conn is not None and (cconn is not None or sconn is not None):
            for side in (CLIENT, SERVER):
                r, o = self._data_level(members, side, cconn, sconn)
                reinjections += r
                if o is not None:
                    reorders.append(o)
        return ConnectionPair(
            None if cconn is None else cconn.stream,
            None if sconn is None else sconn.stream,
            (cconn or sconn).version if (cconn or sconn) is not None else None,  # type: ignore[union-attr]
            _key(cconn, sconn, CLIENT),
            _key(cconn, sconn, SERVER),
            members[0][2],
            self._fallback(members, cconn, sconn),
            tuple(subflows),
            tuple(reinjections),
            tuple(reorders),
        )

    def _data_level(
        self,
        members: list[tuple[SubflowView, SubflowView, str]],
        side: int,
        cconn: Connection | None,
        sconn: Connection | None,
    ) -> tuple[list[Reinjection], Reordering | None]:
        """One direction of the data level: the data ``side`` sends."""
        at_client = side == CLIENT
        sent: list[Carried] = []
        received: list[Carried] = []
        for cv, sv, _ in members:
            for d in (0, 1):
                if sender_is_client(cv, d) != at_client:
                    continue
                snd, rcv = (cv, sv) if at_client else (sv, cv)
                sent += [Carried(x, snd.stream) for x in snd.segs[d] if x.dsn is not None]
                received += [Carried(x, rcv.stream) for x in rcv.segs[d] if x.dsn is not None]
        if not sent and not received:
            return [], None
        idsn = next(
            (c.sides[side].idsn for c in (cconn, sconn) if c is not None and c.sides[side].idsn is not None), None
        )
        if idsn is not None:
            base, relative = idsn, True
        else:  # the keys were not seen: count from before the lowest DSN either end saw
            lowest = min((c.seg.dsn for c in sent + received if c.seg.dsn is not None), default=1)
            base, relative = (lowest - 1) & ((1 << 64) - 1), False
        direction = "client→server" if at_client else "server→client"
        reinj, on_sent, on_received = qualify_reinjections(direction, sent, received, base, relative)
        summary, delays = reordering(direction, received, sent, base)
        sender_notes, receiver_notes = (self.notes[0], self.notes[1]) if at_client else (self.notes[1], self.notes[0])
        for f, v in on_sent.items():
            sender_notes.set(f, reinjection_useful=v)
        for f, v in on_received.items():
            receiver_notes.set(f, reinjection_useful=v)
        for f, wait in delays.items():
            receiver_notes.set(f, ooo_delay_ns=wait)
        return reinj, summary if summary.segments else None

    def _fallback(
        self, members: list[tuple[SubflowView, SubflowView, str]], cconn: Connection | None, sconn: Connection | None
    ) -> str | None:
        """Why the connection fell back to TCP, from both ends: each end's own reason, and an MPTCP
        option removed on the way."""
        if cconn is None and sconn is None:
            return None  # plain TCP at both ends: nothing fell back
        reasons = []
        for name, conn in ((self.c.name, cconn), (self.s.name, sconn)):
            if conn is not None and conn.fallback:
                reasons.append(f"{name}: {conn.fallback}")
        first = members[0]
        cv, sv = first[0], first[1]
        if cv.mptcp_syn != sv.mptcp_syn:
            a, b = (cv, sv) if cv.mptcp_syn else (sv, cv)
            sent_by, got_by = (self.c.name, self.s.name) if cv.mptcp_syn else (self.s.name, self.c.name)
            syn_a, syn_b = a.syn, b.syn
            where = f" (frame {syn_a.frame} -> frame {syn_b.frame})" if syn_a and syn_b else ""
            reasons.insert(
                0,
                f"the SYN left {sent_by} with an MPTCP option and reached {got_by} without it{where}: "
                f"removed on the way, so {got_by} answered as plain TCP",
            )
        elif sconn is None and cconn is not None and cconn.fallback:
            reasons.append(f"{self.s.name}: no MPTCP connection")
        return "; ".join(reasons) or None


def _outcome(v: SideView) -> ReadOutcome:
    assert v.outcome is not None
    return v.outcome


def _key(c: Connection | None, s: Connection | None, side: int) -> int | None:
    for conn in (c, s):
        if conn is not None and conn.sides[side].key is not None:
            return conn.sides[side].key
    return None
