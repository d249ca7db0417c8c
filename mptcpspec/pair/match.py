"""Matching two captures: subflows by their handshakes, segments by their place in the sequence
space, and what a middlebox changed between the two copies of a segment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from mptcpspec.analysis.model import CLIENT, Endpoint
from mptcpspec.codec.generated import options as mptcp_options
from mptcpspec.codec.generated import tcp_options
from mptcpspec.codec.options import option_spans
from mptcpspec.pair.model import Change
from mptcpspec.pair.read import Seg, SideView, SubflowView

__all__ = [
    "FlowMatch",
    "endpoint",
    "flow_changes",
    "match_flow",
    "match_subflows",
    "option_name",
    "sender_is_client",
]

KIND_MPTCP = 30
#: TCP option kinds and MPTCP subtypes by the names the spec gives them (spec/tcp_options.py, spec/options.py)
_KINDS = {c.KIND: c.NAME for c in tcp_options.CLASSES if c.KIND >= 0}
_SUBTYPES = {c.SUBTYPE: c.NAME for c in mptcp_options.CLASSES if c.SUBTYPE is not None}
_EXAMPLES = 5  # frames kept per change


def option_name(kind: int, data: bytes) -> str:
    """``MSS (2)``, ``MPTCP DSS (30)``, ``TCP option 253``."""
    if kind == KIND_MPTCP:
        sub = _SUBTYPES.get(data[2] >> 4) if len(data) > 2 else None
        return f"MPTCP {sub} (30)" if sub else "MPTCP (30)"
    name = _KINDS.get(kind)
    return f"{name} ({kind})" if name else f"TCP option {kind}"


def endpoint(ep: Endpoint) -> str:
    addr, port = ep
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


def _walk(area: bytes) -> list[tuple[int, bytes]]:
    """The options of a TCP options area as (kind, whole option), NOP and EOL left out."""
    return [(kind, area[i : i + ln]) for kind, i, ln in option_spans(area)]


# --------------------------------------------------------------------------- subflows


def match_subflows(
    client: SideView, server: SideView
) -> tuple[list[tuple[SubflowView, SubflowView, str]], list[SubflowView], list[SubflowView]]:
    """Pairs of the same subflow in the two captures, and what matched them, strongest first: the
    MP_JOIN SYN's token and nonce, the MP_CAPABLE keys, both initial sequence numbers, and last the
    addresses and ports.  Returns (pairs, left in the client's, left in the server's)."""
    left_c = dict(client.subflows)
    left_s = dict(server.subflows)
    pairs: list[tuple[SubflowView, SubflowView, str]] = []

    def take(how: str, key_of: Callable[[SubflowView], object]) -> None:
        index: dict[object, list[SubflowView]] = {}
        for v in left_s.values():
            k = key_of(v)
            if k is not None:
                index.setdefault(k, []).append(v)
        for stream, v in list(left_c.items()):
            k = key_of(v)
            found = index.get(k) if k is not None else None
            if found:
                w = found.pop(0)
                pairs.append((v, w, how))
                del left_c[stream]
                del left_s[w.stream]

    def keys(v: SubflowView) -> object:
        c = v.conn
        if c is None or v.sf.kind != "MP_CAPABLE":
            return None
        ck, sk = c.sides[0].key, c.sides[1].key
        return None if ck is None and sk is None else (ck, sk)

    def isns(v: SubflowView) -> object:
        a, b = v.sf.dirs[0].isn, v.sf.dirs[1].isn
        return None if a is None or v.syn is None else (a, b)

    take("the MP_JOIN SYN's token and nonce", lambda v: v.join)
    take("the MP_CAPABLE keys", keys)
    take("the MP_CAPABLE keys", lambda v: _one_key(v, 0))  # one end missed a key
    take("the MP_CAPABLE keys", lambda v: _one_key(v, 1))
    take("both initial sequence numbers", isns)
    take("the initiator's initial sequence number", lambda v: None if v.syn is None else v.sf.dirs[0].isn)
    take("addresses and ports", lambda v: (v.sf.client, v.sf.server))
    pairs.sort(key=lambda t: t[0].stream)
    return pairs, list(left_c.values()), list(left_s.values())


def _one_key(v: SubflowView, side: int) -> object:
    c = v.conn
    if c is None or v.sf.kind != "MP_CAPABLE":
        return None
    k = c.sides[side].key
    return None if k is None else (side, k)


def sender_is_client(v: SubflowView, d: int) -> bool:
    """Whether the host that sends in direction ``d`` of subflow ``v`` (0: its initiator) is the
    connection's client (the host of the client's capture)."""
    sf = v.sf
    if sf.conn is None:
        return d == 0
    return sf.side(d) == CLIENT


# --------------------------------------------------------------------------- segments


class FlowMatch:
    """The segments of one direction of a subflow at the sender and at the receiver, matched."""

    __slots__ = ("sent", "received", "split", "coalesced")

    def __init__(self, sent: list[Seg], received: list[Seg]) -> None:
        self.sent = sent
        self.received = received
        self.split: list[tuple[Seg, Seg]] = []  # (sent, a piece received)
        self.coalesced: list[tuple[Seg, Seg]] = []  # (a sent segment, the received one holding it)


def _pair_up(sent: Iterable[Seg], received: Iterable[Seg], with_id: bool) -> None:
    index: dict[tuple[int | None, ...], list[Seg]] = {}
    for r in received:
        if r.peer is None:
            index.setdefault(r.key(with_id), []).append(r)
    for s in sent:
        if s.peer is not None:
            continue
        found = index.get(s.key(with_id))
        if found:
            r = found.pop(0)
            s.peer, r.peer = r, s


def match_flow(sent: list[Seg], received: list[Seg]) -> FlowMatch:
    """Match the copies of each segment: first by place, length, flags and IPv4 identification
    (IPv6: acknowledgement), each in capture order; then, for what is left (a middlebox that
    rewrites the identification), without it; then a received segment that overlaps segments left
    unmatched is taken for a piece of one (split) or for several joined (coalesced)."""
    m = FlowMatch(sent, received)
    _pair_up(sent, received, True)
    _pair_up(sent, received, False)
    rest = sorted((s for s in sent if s.peer is None and s.plen), key=lambda s: s.seq)
    if rest:
        starts = [s.seq for s in rest]
        from bisect import bisect_left

        for r in received:
            if r.peer is not None or not r.plen:
                continue
            i = bisect_left(starts, r.seq)
            i = max(0, i - 1)
            over = []
            while i < len(rest) and rest[i].seq < r.end:
                s = rest[i]
                if s.end > r.seq:
                    over.append(s)
                i += 1
            if not over:
                continue
            if len(over) == 1 and over[0].seq <= r.seq and r.end <= over[0].end:
                s = over[0]
                m.split.append((s, r))
                r.peer = s
            else:
                for s in over:
                    m.coalesced.append((s, r))
                r.peer = over[0]
        for s, r in m.split + m.coalesced:
            if s.peer is None:
                s.peer = r
    return m


# --------------------------------------------------------------------------- changes


class _Tally:
    def __init__(self) -> None:
        self.count: Counter[tuple[str, str]] = Counter()
        self.frames: dict[tuple[str, str], list[tuple[int | None, int | None]]] = {}

    def add(self, what: str, detail: str, frames: tuple[int | None, int | None]) -> None:
        k = (what, detail)
        self.count[k] += 1
        got = self.frames.setdefault(k, [])
        if len(got) < _EXAMPLES:
            got.append(frames)

    def changes(self) -> list[Change]:
        return [Change(w, d, n, tuple(self.frames[(w, d)])) for (w, d), n in self.count.items()]


def segment_changes(s: Seg, r: Seg) -> list[tuple[str, str]]:
    """What differs between a segment as sent (``s``) and as received (``r``): options removed,
    added or rewritten (the MSS by value), the TCP checksum."""
    out: list[tuple[str, str]] = []
    if s.opts != r.opts:
        a, b = _walk(s.opts), _walk(r.opts)
        if a != b:
            kinds_a = Counter(k for k, _ in a)
            kinds_b = Counter(k for k, _ in b)
            data_a = {k: v for k, v in a}
            data_b = {k: v for k, v in b}
            for k in kinds_a:
                if kinds_b[k] < kinds_a[k]:
                    out.append(("option removed", option_name(k, data_a[k])))
            for k in kinds_b:
                if kinds_a[k] < kinds_b[k]:
                    out.append(("option added", option_name(k, data_b[k])))
            for k in kinds_a:
                if kinds_b[k] and [v for kk, v in a if kk == k] != [v for kk, v in b if kk == k]:
                    if k == 2 and len(data_a[k]) == 4 and len(data_b[k]) == 4:
                        before = int.from_bytes(data_a[k][2:4], "big")
                        after = int.from_bytes(data_b[k][2:4], "big")
                        out.append(("MSS", f"{before} -> {after}"))
                    else:
                        out.append(("option rewritten", option_name(k, data_a[k])))
    if s.csum != r.csum:
        out.append(("TCP checksum", "recomputed"))
    return out


def flow_changes(
    m: FlowMatch,
    sender_client: bool,
    views: tuple[SubflowView, SubflowView],
    d: int,
) -> tuple[list[Change], int | None, dict[int, list[str]], dict[int, list[str]]]:
    """The changes of one direction of a matched subflow: addresses and ports translated, the
    sequence numbers shifted, each segment's changes, segments split or coalesced; the hop count;
    and, by frame of the sender's and of the receiver's capture, the names of the changes on it
    (the ``mptcp.pair.changes`` field)."""
    tally = _Tally()
    cv, sv = views  # the subflow in the client's capture, in the server's

    def frames(s: Seg, r: Seg | None) -> tuple[int | None, int | None]:
        rf = None if r is None else r.frame
        return (s.frame, rf) if sender_client else (rf, s.frame)

    on_sent: dict[int, list[str]] = {}
    on_received: dict[int, list[str]] = {}
    # the endpoints, as each capture shows them (from the initiator: client, server)
    src_c, dst_c = (cv.sf.client, cv.sf.server) if d == 0 else (cv.sf.server, cv.sf.client)
    src_s, dst_s = (sv.sf.client, sv.sf.server) if d == 0 else (sv.sf.server, sv.sf.client)
    at_sender, at_receiver = (src_c, dst_c), (src_s, dst_s)
    if not sender_client:
        at_sender, at_receiver = at_receiver, at_sender
    (src_a, dst_a), (src_b, dst_b) = at_sender, at_receiver
    translated = []
    for what, x, y in (
        ("source address", src_a[0], src_b[0]),
        ("source port", src_a[1], src_b[1]),
        ("destination address", dst_a[0], dst_b[0]),
        ("destination port", dst_a[1], dst_b[1]),
    ):
        if x != y:
            translated.append((what, f"{x} -> {y}"))
    isn_a = (cv if sender_client else sv).sf.dirs[d].isn
    isn_b = (sv if sender_client else cv).sf.dirs[d].isn
    shift = None
    if isn_a is not None and isn_b is not None and isn_a != isn_b:
        delta = (isn_b - isn_a) & 0xFFFFFFFF
        shift = f"{delta:+d}" if delta < 1 << 31 else f"{delta - (1 << 32):+d}"
    hops: Counter[int] = Counter()
    for s in m.sent:
        r = s.peer
        if r is None or (r.peer is not s):
            continue
        names: list[str] = []
        for what, detail in translated:
            tally.add("translated", f"{what} {detail}", frames(s, r))
            names.append(what.replace("source ", "s").replace("destination ", "d").replace("address", "addr"))
        if shift is not None:
            tally.add("sequence numbers shifted", shift, frames(s, r))
            names.append("seq")
        for what, detail in segment_changes(s, r):
            tally.add(what, detail, frames(s, r))
            names.append(_short(what, detail))
        hops[s.ttl - r.ttl] += 1
        if names:
            on_sent[s.frame] = names
            on_received[r.frame] = names
    for s, r in m.split:
        tally.add("split", "a segment received in pieces", frames(s, r))
        on_sent.setdefault(s.frame, []).append("split")
        on_received.setdefault(r.frame, []).append("split")
    for s, r in m.coalesced:
        tally.add("coalesced", "segments received joined", frames(s, r))
        on_sent.setdefault(s.frame, []).append("coalesced")
        if "coalesced" not in on_received.get(r.frame, ()):
            on_received.setdefault(r.frame, []).append("coalesced")
    hop = hops.most_common(1)[0][0] if hops else None
    return tally.changes(), hop, on_sent, on_received


def _short(what: str, detail: str) -> str:
    """The name of a change in the ``mptcp.pair.changes`` field."""
    if what == "MSS":
        return "mss"
    if what == "TCP checksum":
        return "checksum"
    kind = detail.rsplit("(", 1)[-1].rstrip(")") if detail.endswith(")") else detail
    return f"option {kind} {what.split()[-1]}"
