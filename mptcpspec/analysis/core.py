"""From TCP segments to MPTCP connections: linking, sequence spaces, mappings, checks, closure.

:class:`Analyzer` takes decoded packets in capture order (``feed(number, packet)``) and returns a
:class:`PacketInfo` for each: the packet, its decoded options, the TCP and MPTCP stream it belongs
to, relative sequence numbers, data sequence numbers relative to the IDSNs, the checks made on it
(HMACs, checksums, keys) and expert information.  :meth:`Analyzer.connections` gives the
:class:`Connection` objects, and :meth:`Connection.summary` a frozen
:class:`ConnectionSummary`.

What it follows (RFC 8684; RFC 6824 for v0):

* subflows are linked into connections by token: the keys of MP_CAPABLE (v0: SYN and SYN/ACK;
  v1: SYN/ACK, then the third ACK with both) give each side's token and IDSN; an MP_JOIN SYN names
  the token of the side it joins;
* each DSS mapping is checked against the subflow data it covers; data no mapping covers, mappings
  that disagree, reinjections (a data range mapped on a second subflow) and mappings below the
  highest data sequence number already seen are reported;
* MP_JOIN HMACs, ADD_ADDR HMACs, DSS checksums (when negotiated; their absence too), the key of
  MP_FASTCLOSE, echoed keys and token collisions are verified: each result is a
  :class:`~mptcpspec.codec.crypto.Check` (verified, mismatch, or unverifiable with the reason);
* the MP_CAPABLE and MP_JOIN handshakes and the connection's closure are followed with the state
  machines generated from ``spec/`` (:mod:`mptcpspec.fsm.observer`).

Memory is bounded by the live state of each connection, not by the number of packets.
"""

from __future__ import annotations

from bisect import bisect_right as _bisect_right
from collections import Counter
from dataclasses import dataclass

from mptcpspec.analysis.expert import Expert, expert
from mptcpspec.analysis.seqspace import expand  # re-exported for the replay engine until it imports seqspace
from mptcpspec.capture.packets import Packet
from mptcpspec.codec import crypto
from mptcpspec.codec.crypto import Check, Verdict
from mptcpspec.codec.generated.closure import ClosureMachine
from mptcpspec.codec.generated.establishment import EstablishmentMachine
from mptcpspec.codec.generated.join import JoinMachine
from mptcpspec.codec.generated.options import decode_dss as _decode_dss
from mptcpspec.codec.options import (
    MPTCP_CLASSES,
    AddAddr,
    AddAddrV0,
    Dss,
    MalformedOption,
    MpCapable,
    MpCapableFlags,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MpTcpRst,
    RemoveAddr,
    TcpOptions,
    decode_mptcp_options,
    decode_tcp_options,
)
from mptcpspec.codec.runtime import fast_constructor
from mptcpspec.errors import DecodeError
from mptcpspec.fsm.observer import Observer

__all__ = ["Analyzer", "PacketInfo", "DssInfo", "Connection", "Subflow", "ConnectionSummary", "SubflowSummary"]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_SYN, _ACK, _FIN, _RST = 0x02, 0x10, 0x01, 0x04
# DSS flag bits (RFC 8684 Figure 9)
_F_A, _F_a, _F_M, _F_m, _F_F = 0x01, 0x02, 0x04, 0x08, 0x10
_MAX_MAPPINGS = 64  # mappings remembered per subflow direction
_MAX_RANGES = 4096  # data ranges remembered per connection direction (reinjection detection)
_MAX_HOLES = 64  # data-level holes remembered per connection direction (gap detection)
_NO_HOLE = 1 << 65  # above every DSN
_NEAR = 1 << 32  # a DSN this close to a connection's data is taken to be of that connection

CLIENT, SERVER = 0, 1
_MPTCP_TYPES = frozenset(MPTCP_CLASSES)
_SIDE = ("client", "server")
_NOP_NOP_TS = b"\x01\x01\x08\x0a"  # how Linux starts the options of every segment with timestamps
_dss_cache: dict[bytes, tuple] = {}  # options after NOP, NOP, timestamps (a DSS, padding) -> (the DSS decoded,)
_DSS_CACHE_SIZE = 256


def _carried(side: _Side, start: int, end: int) -> None:
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
        if start < low:
            if end < low:
                _hole(side, end, low)
            side.seg_low = start


def _hole(side: _Side, start: int, end: int) -> None:
    holes = side.holes
    i = len(holes)
    while i and holes[i - 1][0] > start:
        i -= 1
    holes.insert(i, [start, end])
    if len(holes) > _MAX_HOLES:
        del holes[0]
    side.hole_lo = holes[0][0]


def _blind(side: _Side) -> None:
    """Some data of ``side`` is at DSNs the capture does not show: judge no gap of it from now on."""
    side.blind = True
    side.holes, side.hole_lo, side.seg_low, side.seg_high = [], _NO_HOLE, None, None


def _fill(side: _Side, start: int, end: int) -> None:
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
    side.hole_lo = out[0][0] if out else _NO_HOLE


@dataclass(frozen=True, slots=True)
class DssInfo:
    """The data-level numbers of one DSS option, as 64-bit values and relative to the IDSNs.

    ``dsn``/``ack`` are None when the IDSN they are relative to is unknown (keys not seen)."""

    dsn64: int | None = None  #: mapping's DSN, expanded to 64 bits (Wireshark's mptcp.rawdsn64)
    dsn: int | None = None  #: relative to the sender's IDSN (mptcp.dsn)
    ack64: int | None = None  #: DATA_ACK expanded to 64 bits
    ack: int | None = None  #: relative to the receiver's IDSN... of the data it acknowledges (mptcp.ack)


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """Everything the dissector knows about one captured frame."""

    number: int  #: frame number, from 1
    timestamp_ns: int
    caplen: int
    orig_len: int
    packet: Packet | None = None  #: None for a frame without TCP (or undecodable: see ``error``)
    mptcp: tuple = ()  #: the MPTCP options, decoded, in wire order (a ``MalformedOption`` where one is bad)
    error: DecodeError | None = None
    tcp_stream: int | None = None
    tcp_seq: int | None = None  #: relative to the ISN of its direction
    tcp_ack: int | None = None
    mptcp_stream: int | None = None
    from_client: bool | None = None  #: sent by the connection's client (the side of the first SYN)
    master: bool | None = None  #: on the subflow of the connection's latest MP_CAPABLE with a key
    dss: tuple[DssInfo, ...] = ()
    #: DSN of the first payload octet, relative to the sender's IDSN, when a mapping covers it (for a
    #: segment without payload: the DSN its sequence number maps to, when a mapping covers it)
    payload_dsn: int | None = None
    payload_dsn64: int | None = None  #: the same, 64 bits (Wireshark's mptcp.rawdsn64)
    mapping_frame: int | None = None  #: frame whose DSS mapping covers the payload (mptcp.related_mapping)
    reinjection_of: tuple[int, ...] = ()  #: frames that mapped this data on another subflow first
    checks: tuple[Check, ...] = ()
    experts: tuple[Expert, ...] = ()
    subflow: Subflow | None = None
    connection: Connection | None = None
    ip: tuple | None = None  #: (version, source, destination) of an IP frame without TCP
    #: Wireshark shows its MPTCP analysis here: an MPTCP option (none malformed) of a numbered connection
    mptcp_shown: bool = False
    #: later frames that carried this data again on another subflow (Wireshark's mptcp.reinjected_in):
    #: known only to a second pass (``Dissection(..., two_pass=True)``, ``dissect -2``)
    reinjected_in: tuple[int, ...] = ()

    @property
    def options(self) -> TcpOptions | None:
        """The whole TCP options area, decoded (computed on each call)."""
        p = self.packet
        if p is None or not p.options:
            return None
        c = self.connection
        return decode_tcp_options(p.options, c.version if c is not None else None, strict=False)


_info = fast_constructor(PacketInfo)
_dssinfo = fast_constructor(DssInfo)


class _Dir:
    """One direction of a subflow: sequence base and recent mappings."""

    __slots__ = (
        "isn",
        "syn_data",
        "mappings",
        "last",
        "fin",
        "fin_acked",
        "seen_dss",
        "data",
        "ssn_hi",
        "dsn_hi",
        "map_hi",
        "memo",
        "syn_taken",
    )

    def __init__(self) -> None:
        self.isn: int | None = None
        # Payload of our SYN (TCP Fast Open). Linux keeps it outside the MPTCP data sequence space
        # and counts subflow sequence numbers of mappings from the octet after it (the kernel's
        # net/mptcp/fastopen.c: "ssn_offset += skb->len"); a capture shows the same.
        self.syn_data = 0
        self.syn_taken = False  # the peer's SYN/ACK acknowledged syn_data
        self.mappings: list[list] = []  # [ssn_start, ssn_end, dsn64, frame, checksum, buffer]
        # Upper bounds of the subflow and data-level ends of every mapping made: octets at or
        # above them overlap none of ``mappings`` (the scans for overlaps are skipped).
        self.ssn_hi = 0
        self.dsn_hi = 0
        # The latest DSS of this direction and what it gave, for the segments that repeat it (see _Ctx.dss).
        self.memo: tuple | None = None
        self.map_hi = 0  # above every mapping's start + data-level length (a DATA_FIN's octet counted)
        self.last: list | None = None
        self.fin: int | None = None  # sequence number of our FIN
        self.fin_acked = False
        self.seen_dss = False
        self.data = 0  # payload octets sent


class Subflow:
    """One TCP connection (a ``tcp.stream``), possibly part of an MPTCP connection."""

    __slots__ = (
        "index",
        "client",
        "server",
        "dirs",
        "conn",
        "to_client_side",
        "kind",
        "observer",
        "address_ids",
        "backup",
        "nonces",
        "closed",
        "reset",
        "syn_seen",
        "tcprst",
        "first_frame",
    )

    def __init__(self, index: int, client: tuple, server: tuple, first_frame: int) -> None:
        self.index = index
        self.client = client  # (address, port) of the subflow's initiator (the SYN's sender)
        self.server = server
        self.dirs = (_Dir(), _Dir())  # 0: from the initiator
        self.conn: Connection | None = None
        self.to_client_side = True  # the initiator is the connection's client
        self.kind: str | None = None  # "MP_CAPABLE" or "MP_JOIN"
        self.observer: Observer | None = None
        self.address_ids: list = [None, None]
        self.backup = [False, False]
        self.nonces: list = [None, None]
        self.closed = False
        self.reset = False
        self.syn_seen = False
        self.tcprst: MpTcpRst | None = None
        self.first_frame = first_frame

    @property
    def state(self) -> str | None:
        """The handshake machine's state of the initiator (``A``) and listener (``B``)."""
        if self.observer is None:
            return None
        return f"A={self.observer.state('A')} B={self.observer.state('B')}"

    def side(self, d: int) -> int:
        """The connection side (CLIENT or SERVER) that sends in subflow direction ``d``."""
        return d if self.to_client_side else 1 - d


class _Side:
    """One side of an MPTCP connection: its key and data sequence space."""

    __slots__ = (
        "key",
        "token",
        "idsn",
        "dsn_ref",
        "ack_ref",
        "dfin",
        "dfin_acked",
        "first_dsn",
        "high",
        "ranges",
        "starts",
        "max_seg",
        "reinjected",
        "flags",
        "addresses",
        "checked_first",
        "seg_low",
        "seg_high",
        "holes",
        "hole_lo",
        "blind",
    )

    def __init__(self) -> None:
        self.key: int | None = None
        self.token: int | None = None
        self.idsn: int | None = None
        self.dsn_ref: int | None = None  # last 64-bit DSN seen (for 32-bit expansion)
        self.ack_ref: int | None = None  # last 64-bit DATA_ACK this side sent
        self.dfin: int | None = None  # DSN of this side's DATA_FIN
        self.dfin_acked = False
        self.first_dsn: int | None = None
        self.high: int | None = None  # highest DSN end mapped so far
        self.ranges: list[tuple[int, int, int, int]] = []  # (start, end, subflow, frame), sorted by start
        self.starts: list[int] = []
        self.max_seg = 0  # longest segment in ranges
        self.reinjected = 0
        self.flags: MpCapableFlags | None = None
        self.addresses: dict[int, list] = {}  # address id -> [address, port, frame, removed frame]
        self.checked_first = False
        # Data-level holes: DSN ranges between the segments captured that no captured segment
        # carried (yet), [start, end) in order; hole_lo is the first start (_NO_HOLE: none).
        self.seg_low: int | None = None
        self.seg_high: int | None = None
        self.holes: list[list[int]] = []
        self.hole_lo = _NO_HOLE
        self.blind = False  # some data of this side lies at DSNs the capture does not show: no gap is judged

    def span(self) -> int:
        """Data-level octets this side sent: the span of its mapped data sequence space."""
        return 0 if self.first_dsn is None else self.high - self.first_dsn


class Connection:
    """One MPTCP connection: two sides, their subflows, and what was checked."""

    __slots__ = (
        "stream",
        "version",
        "sides",
        "subflows",
        "checksum",
        "fallback",
        "closure",
        "checks",
        "experts",
        "history",
        "first_frame",
        "last_frame",
        "master_sf",
        "unlinked",
    )

    def __init__(self, stream: int | None, version: int | None, first_frame: int) -> None:
        # Numbered (``mptcp.stream``) when first shown: a v1 SYN, whose MP_CAPABLE has no key, is
        # not shown as MPTCP yet, as in Wireshark; the SYN/ACK is.
        self.stream = stream
        self.version = version
        self.master_sf: Subflow | None = None  # subflow of the latest MP_CAPABLE with a key
        self.unlinked = False  # made from a subflow whose handshake the capture missed
        self.sides = (_Side(), _Side())
        self.subflows: list[Subflow] = []
        self.checksum = False
        self.fallback: str | None = None
        self.closure = Observer(ClosureMachine, ("client", "server"))
        self.checks: Counter = Counter()  # (what, verdict name) -> count
        self.experts: Counter = Counter()  # key -> count
        self.history: list[tuple[int, str]] = []  # (frame, event) for address management
        self.first_frame = first_frame
        self.last_frame = first_frame

    @property
    def client_key(self) -> int | None:
        return self.sides[CLIENT].key

    @property
    def server_key(self) -> int | None:
        return self.sides[SERVER].key

    def _syn_data(self, side: int) -> int:
        """Octets of TCP Fast Open data that ``side`` sent on an MP_CAPABLE SYN and the peer took:
        data-level octets that precede every mapping (RFC 8684 §3.1)."""
        return sum(
            sf.dirs[d].syn_data
            for sf in self.subflows
            if sf.kind == "MP_CAPABLE"
            for d in (0, 1)
            if sf.dirs[d].syn_taken and sf.side(d) == side
        )

    def closure_state(self, side: int) -> str:
        return self.closure.state(_SIDE[side])

    def summary(self) -> ConnectionSummary:
        c, s = self.sides
        first = self.subflows[0] if self.subflows else None
        return ConnectionSummary(
            stream=self.stream,
            version=self.version,
            client=_ep(first.client) if first else "",
            server=_ep(first.server) if first else "",
            client_key=c.key,
            server_key=s.key,
            client_token=c.token,
            server_token=s.token,
            checksum=self.checksum,
            fallback=self.fallback,
            subflows=tuple(_subflow_summary(sf) for sf in self.subflows),
            client_bytes=c.span() + self._syn_data(CLIENT),
            server_bytes=s.span() + self._syn_data(SERVER),
            client_reinjected=c.reinjected,
            server_reinjected=s.reinjected,
            client_state=self.closure_state(CLIENT),
            server_state=self.closure_state(SERVER),
            checks=tuple(sorted((what, verdict, n) for (what, verdict), n in self.checks.items())),
            experts=tuple(sorted(self.experts.items())),
            addresses=tuple(
                (_SIDE[i], aid, str(a[0]), a[1], a[2], a[3])
                for i, side in enumerate(self.sides)
                for aid, a in sorted(side.addresses.items())
            ),
            history=tuple(self.history),
            unlinked=self.unlinked,
            first_frame=self.first_frame,
            last_frame=self.last_frame,
        )


def _ep(ep: tuple) -> str:
    addr, port = ep
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


@dataclass(frozen=True, slots=True)
class SubflowSummary:
    tcp_stream: int
    kind: str | None  #: "MP_CAPABLE" or "MP_JOIN"
    initiator: str
    listener: str
    address_ids: tuple
    backup: tuple
    state: str | None
    closed: bool
    reset: bool
    tcprst_reason: str | None
    bytes: tuple[int, int]  #: payload octets from the initiator, from the listener


def _subflow_summary(sf: Subflow) -> SubflowSummary:
    r = sf.tcprst
    return SubflowSummary(
        sf.index,
        sf.kind,
        _ep(sf.client),
        _ep(sf.server),
        tuple(sf.address_ids),
        tuple(sf.backup),
        sf.state,
        sf.closed,
        sf.reset,
        (getattr(r.reason, "name", str(r.reason)) if r is not None else None),
        (sf.dirs[0].data, sf.dirs[1].data),
    )


@dataclass(frozen=True, slots=True)
class ConnectionSummary:
    """What ``mptcpspec connections`` prints for one connection."""

    stream: int | None  #: None for a connection never shown as MPTCP (a v1 SYN left unanswered)
    version: int | None
    client: str
    server: str
    client_key: int | None
    server_key: int | None
    client_token: int | None
    server_token: int | None
    checksum: bool
    fallback: str | None
    subflows: tuple[SubflowSummary, ...]
    #: data-level octets the client sent: highest DSN mapped - first DSN, plus the TCP Fast Open data
    #: of its SYN when the server took it
    client_bytes: int
    server_bytes: int
    client_reinjected: int
    server_reinjected: int
    client_state: str  #: closure machine state
    server_state: str
    checks: tuple  #: (what, verdict, count)
    experts: tuple  #: (key, count)
    addresses: tuple  #: (side, address id, address, port, frame added, frame removed)
    history: tuple  #: (frame, event): ADD_ADDR, REMOVE_ADDR, MP_PRIO as they happened
    unlinked: bool  #: the capture missed the handshake: keys unknown, nothing linked by token
    first_frame: int
    last_frame: int


class Analyzer:
    """Feed packets in capture order; get a :class:`PacketInfo` for each."""

    def __init__(self, *, verify: bool = True, reinjected_in: dict[int, tuple[int, ...]] | None = None) -> None:
        """``reinjected_in``: frame -> the later frames that reinjected its data, from a first pass
        (:func:`reinjections`); it fills :attr:`PacketInfo.reinjected_in`."""
        self.verify = verify
        self._later = reinjected_in or None
        self._flows: dict[tuple, tuple[Subflow, int]] = {}
        self._subflows: list[Subflow] = []
        self._conns: list[Connection] = []
        self._tokens: dict[int, Connection] = {}
        self.counts: Counter = Counter()
        self.experts: Counter = Counter()
        self._ctx = _Ctx(self)
        self._next_stream = 0
        self._join_tokens: dict[int, Connection] = {}  # unknown tokens of MP_JOIN SYNs

    # ------------------------------------------------------------------ public

    def connections(self) -> list[Connection]:
        return list(self._conns)

    def subflows(self) -> list[Subflow]:
        return list(self._subflows)

    def feed(
        self,
        number: int,
        timestamp_ns: int,
        caplen: int,
        orig_len: int,
        pkt: Packet | None,
        error: DecodeError | None = None,
        ip: tuple | None = None,
    ) -> PacketInfo:
        if pkt is None:
            if error is not None:
                self.counts["malformed"] += 1
                ex = (expert("mptcp.packet.malformed", str(error)),)
                self.experts["mptcp.packet.malformed"] += 1
                return PacketInfo(number, timestamp_ns, caplen, orig_len, error=error, experts=ex)
            self.counts["not TCP"] += 1
            return PacketInfo(number, timestamp_ns, caplen, orig_len, ip=ip)
        self.counts["TCP"] += 1
        return self._tcp(number, timestamp_ns, caplen, orig_len, pkt)

    # ------------------------------------------------------------------ per packet

    def _subflow_of(self, number: int, pkt: Packet) -> tuple[Subflow, int]:
        key = (pkt.src._ip, pkt.sport, pkt.dst._ip, pkt.dport, pkt.version)
        hit = self._flows.get(key)
        flags = int(pkt.flags)
        if hit is not None:
            sf, d = hit
            if not (
                flags & _SYN
                and not flags & _ACK
                and d == 0
                and sf.dirs[0].isn is not None
                and sf.dirs[0].isn != pkt.seq
                and (sf.closed or sf.reset or sf.dirs[0].data or sf.dirs[1].data)
            ):
                return hit
        # A new TCP stream: unseen addresses, or a new SYN on a finished one (port reuse).
        if flags & _SYN and flags & _ACK:
            client, server, d = (pkt.dst, pkt.dport), (pkt.src, pkt.sport), 1
        else:
            client, server, d = (pkt.src, pkt.sport), (pkt.dst, pkt.dport), 0
        sf = Subflow(len(self._subflows), client, server, number)
        self._subflows.append(sf)
        v = pkt.version
        self._flows[(client[0]._ip, client[1], server[0]._ip, server[1], v)] = (sf, 0)
        self._flows[(server[0]._ip, server[1], client[0]._ip, client[1], v)] = (sf, 1)
        return sf, d

    def _tcp(self, number: int, ts: int, caplen: int, orig_len: int, pkt: Packet) -> PacketInfo:
        # The hot path of the dissector: kept to plain locals, with the common case (a segment of a
        # known subflow whose only MPTCP option is a DSS) first.
        flags = int(pkt.flags)
        hit = self._flows.get((pkt.src._ip, pkt.sport, pkt.dst._ip, pkt.dport, pkt.version))
        if hit is None or flags & _SYN:
            hit = self._subflow_of(number, pkt)
        sf, d = hit
        dirs = sf.dirs
        if d:
            me, peer = dirs[1], dirs[0]
        else:
            me, peer = dirs
        seq = pkt.seq
        n = pkt.payload_len
        if flags & _SYN:
            if me.isn is None or not sf.syn_seen or d == 1:
                me.isn = seq
                me.syn_data = n
            if d == 0:
                sf.syn_seen = True
            elif flags & _ACK and peer.syn_data and peer.isn is not None:
                # TCP Fast Open: the SYN/ACK acknowledges the SYN's data when the server took it
                peer.syn_taken = pkt.ack == (peer.isn + 1 + peer.syn_data) & _M32
            isn = me.isn
        else:
            isn = me.isn
            if isn is None:
                isn = me.isn = (seq - 1) & _M32  # no SYN seen: relative numbers start at 1, as Wireshark's do
        tcp_seq = (seq - isn) & _M32
        if flags & _ACK:
            pack = pkt.ack
            pisn = peer.isn
            if pisn is None:
                pisn = peer.isn = (pack - 1) & _M32  # the peer's SYN not seen: acks start at 1, as Wireshark's
            tcp_ack = (pack - pisn) & _M32
            if peer.fin is not None and not peer.fin_acked and pack == (peer.fin + 1) & _M32:
                peer.fin_acked = True
        else:
            tcp_ack = pkt.ack  # without ACK, Wireshark shows the field as it is
        if n:
            me.data += n
        if flags & _FIN and me.fin is None:
            me.fin = (seq + n) & _M32
        conn = sf.conn
        raw = pkt.options
        cut = pkt.options_cut
        if raw and not cut:
            # NOP, NOP, timestamps, then one MPTCP option of subtype DSS and nothing after it but
            # NOPs (or an EOL): what decode_mptcp_options gives for it, without its walk over the area.
            # Every segment of a mapping repeats its DSS, often octet for octet: the decoded
            # (immutable) option is kept by the octets after the timestamps, all it depends on.
            if raw[:4] == _NOP_NOP_TS and (found := _dss_cache.get(raw[12:])) is not None:
                one_dss, big = True, False  # a kept area: one DSS, in at most 40 octets
            else:
                found = self._options_area(raw, conn.version if conn is not None else None)
                one_dss = len(found) == 1 and type(found[0]) is Dss
                big = len(raw) > 40
        elif cut:  # the snapshot length cut the options area: the options captured whole
            found = decode_mptcp_options(raw, conn.version if conn is not None else None, cut=True)
            one_dss = len(found) == 1 and type(found[0]) is Dss
            big = False
        elif conn is None:
            return _info(
                number,
                ts,
                caplen,
                orig_len,
                pkt,
                (),
                None,
                sf.index,
                tcp_seq,
                tcp_ack,
                None,
                None,
                None,
                (),
                None,
                None,
                None,
                (),
                (),
                (),
                sf,
                None,
                None,
                False,
                self._later.get(number, ()) if self._later else (),
            )
        else:
            found = ()
            one_dss = big = False
        ctx = self._ctx
        ctx.number = number
        ctx.pkt = pkt
        ctx.sf = sf
        ctx.d = d
        checks = ctx.checks
        if checks:
            checks = ctx.checks = []
        experts = ctx.experts
        if experts:
            experts = ctx.experts = []
        reinj = ctx.reinjection_of
        if reinj:
            reinj = ctx.reinjection_of = []
        mptcp = found
        if big:
            ctx.expert("mptcp.option.space", f"options area of {len(raw)} octets exceeds 40")
        if cut:
            ctx.expert(
                "mptcp.packet.options_cut",
                f"the snapshot length cut the TCP options after {len(raw)} octets: what follows is not seen",
            )
        dss = ()
        if found:
            if one_dss:
                dss = (ctx.dss(found[0]),)
            else:
                if any(type(o) is MalformedOption for o in found):
                    mptcp = [o for o in found if type(o) is not MalformedOption]
                    for o in found:
                        if type(o) is MalformedOption:
                            ctx.expert("mptcp.option.malformed", str(o.error))
                dss = tuple(self._options(ctx, sf, mptcp))
            conn = sf.conn
            if conn is None and mptcp and not (flags & _SYN and not flags & _ACK and type(mptcp[0]) is MpCapable):
                conn = self._unlinked(sf, number)
        payload_dsn = payload_dsn64 = mapping_frame = None
        if conn is not None:
            if (
                conn.stream is None
                and found
                and not (
                    flags & _SYN and not flags & _ACK and conn.sides[d if sf.to_client_side else 1 - d].key is None
                )
            ):
                conn.stream = self._next_stream
                self._next_stream += 1
            conn.last_frame = number
            if (
                flags & _SYN
                and flags & _ACK
                and sf.observer is None
                and sf.kind == "MP_CAPABLE"
                and not cut
                and conn.fallback is None
                and not any(type(o) is MpCapable for o in mptcp)
            ):
                # A v0 handshake (v1's is the machine's business): no MP_CAPABLE in the SYN/ACK
                conn.fallback = f"the SYN/ACK in frame {number} carries no MP_CAPABLE (RFC 6824 §3.1)"
                ctx.expert("mptcp.fallback", f"fallback to regular TCP: {conn.fallback}")
            if type(sf.observer) is Observer:
                if cut:  # its options not all seen: the handshake of this subflow cannot be followed
                    sf.observer = None
                else:
                    ctx.handshake(mptcp)
            if n:
                if not conn.fallback and not conn.unlinked:
                    got = ctx._data(sf, d, conn, flags, seq, n)
                    if got is not None:
                        payload_dsn, payload_dsn64, mapping_frame = got
            elif not flags & _SYN and me.mappings and (rel := (seq - me.isn - me.syn_data) & _M32) < me.map_hi:
                # No payload: the DSN this sequence number maps to, when a mapping covers it; a
                # mapping with DATA_FIN covers one more (its data-level length counts the DATA_FIN).
                for m in reversed(me.mappings):
                    if m[0] <= rel < m[0] + m[6]:
                        payload_dsn64 = (m[2] + rel - m[0]) & _M64
                        idsn = conn.sides[sf.side(d)].idsn
                        payload_dsn = None if idsn is None else (payload_dsn64 - idsn) & _M64
                        break
            if flags & _RST:
                sf.reset = True
                if not any(type(o) is MpFastclose for o in mptcp):
                    ctx.closure("RST")
                self._subflow_closed(sf)
            elif dirs[0].fin_acked and dirs[1].fin_acked and not sf.closed:
                self._subflow_closed(sf)
            from_client = (d == 0) == sf.to_client_side
            master = conn.master_sf is sf
            stream = conn.stream
        else:
            from_client = master = stream = None
            if flags & _RST:
                sf.reset = True
        if experts:
            for e in experts:
                self.experts[e.key] += 1
                if conn is not None:
                    conn.experts[e.key] += 1
            experts = tuple(experts)
        else:
            experts = ()
        return _info(
            number,
            ts,
            caplen,
            orig_len,
            pkt,
            found,
            None,
            sf.index,
            tcp_seq,
            tcp_ack,
            stream,
            from_client,
            master,
            dss,
            payload_dsn,
            payload_dsn64,
            mapping_frame,
            tuple(reinj) if reinj else (),
            tuple(checks) if checks else (),
            experts,
            sf,
            conn,
            None,
            stream is not None and mptcp is found and bool(found),
            self._later.get(number, ()) if self._later else (),
        )

    @staticmethod
    def _options_area(raw: bytes, version: int | None) -> tuple:
        """decode_mptcp_options(raw, version), the common case (see _tcp) decoded directly and kept."""
        nraw = len(raw)
        if nraw > 14 and raw[12] == 30 and raw[14] >> 4 == 2 and raw[:4] == _NOP_NOP_TS:
            end = 12 + raw[13]
            if raw[13] > 2 and (end == nraw or end < nraw and (raw[end] == 0 or not raw[end:].strip(b"\x01"))):
                try:
                    o = _decode_dss(raw, 12, end - 12, version)
                except DecodeError:
                    return decode_mptcp_options(raw, version)
                if nraw > 40:  # not kept: _tcp takes a kept area for one within the limit
                    return (o,)
                if len(_dss_cache) >= _DSS_CACHE_SIZE:
                    _dss_cache.clear()
                found = _dss_cache[raw[12:]] = (o,)
                return found
        return decode_mptcp_options(raw, version)

    @staticmethod
    def _options(ctx: _Ctx, sf: Subflow, mptcp) -> list:
        dss = []
        for o in mptcp:
            t = type(o)
            if t is Dss:
                dss.append(ctx.dss(o))
            elif t is MpCapable:
                ctx.mp_capable(o)
            elif t is MpJoinSyn or t is MpJoinSynAck or t is MpJoinAck:
                ctx.mp_join(o)
            elif t is AddAddr or t is AddAddrV0:
                ctx.add_addr(o)
            elif t is RemoveAddr:
                ctx.remove_addr(o)
            elif t is MpPrio:
                ctx.mp_prio(o)
            elif t is MpFastclose:
                ctx.fastclose(o)
            elif t is MpTcpRst:
                sf.tcprst = o
                ctx.expert(
                    "mptcp.tcprst",
                    f"subflow reset, reason {getattr(o.reason, 'name', o.reason)}"
                    + (" (transient)" if o.transient else ""),
                )
        return dss

    def _subflow_closed(self, sf: Subflow) -> None:
        if sf.closed:
            return
        sf.closed = True
        conn = sf.conn
        if conn is not None and all(s.closed for s in conn.subflows):
            for side in ("client", "server"):
                conn.closure.notify(side, "ALL_SUBFLOWS_CLOSED")
            # Its data ranges (up to _MAX_RANGES a side) serve reinjection detection only, which
            # ends with the subflows: memory follows the live connections, not the capture.
            for side in conn.sides:
                side.ranges, side.starts, side.max_seg = [], [], 0
                side.holes, side.hole_lo = [], _NO_HOLE

    # ------------------------------------------------------------------ connections

    def _orphan_data(self, dsn64: int, length: int) -> None:
        """A mapping on a subflow linked to no connection (its handshake not captured): its data may
        be a linked connection's, found by its 64-bit DSN (random IDSNs keep connections' data
        sequence spaces apart); that connection's data is then not missing from the capture."""
        for conn in self._conns:
            if conn.unlinked:
                continue
            for side in conn.sides:
                if side.seg_high is not None and side.seg_low - _NEAR <= dsn64 <= side.seg_high + _NEAR:
                    _carried(side, dsn64, dsn64 + length)

    def new_connection(self, version: int | None, number: int) -> Connection:
        conn = Connection(None, version, number)
        self._conns.append(conn)
        return conn

    def _unlinked(self, sf: Subflow, number: int, kind: str | None = None) -> Connection:
        """A connection for a subflow met without its handshake (or joining an unknown token)."""
        conn = self.new_connection(None, number)
        conn.unlinked = True
        conn.subflows.append(sf)
        sf.conn = conn
        sf.kind = kind
        return conn

    def register_key(self, conn: Connection, side: int, key: int, ctx: _Ctx) -> None:
        s = conn.sides[side]
        if s.key == key:
            return
        s.key = key
        if conn.version not in (0, 1):
            ctx.expert(
                "mptcp.connection.unsupported_version",
                f"MPTCP version {conn.version}: no token or IDSN can be derived from its keys",
            )
            return
        s.token = crypto.key_token(key, conn.version)
        s.idsn = crypto.key_idsn(key, conn.version)
        if (
            s.seg_high is None and not s.blind
        ):  # its data starts at IDSN + 1: data acknowledged above that must have been captured
            s.seg_low = s.seg_high = (s.idsn + 1) & _M64
        other = self._tokens.get(s.token)
        if other is not None and other is not conn:
            ctx.expert(
                "mptcp.token.collision",
                f"token {s.token:#010x} of the {_SIDE[side]} is also the token of MPTCP stream {other.stream}",
            )
        self._tokens[s.token] = conn


class _Ctx:
    """The analysis of one packet (kept apart so the per-packet state is plain locals)."""

    __slots__ = ("an", "number", "pkt", "sf", "d", "checks", "experts", "reinjection_of")

    def __init__(self, an: Analyzer) -> None:
        self.an = an
        self.number = 0
        self.pkt: Packet | None = None
        self.sf: Subflow | None = None
        self.d = 0
        self.checks: list[Check] = []
        self.experts: list[Expert] = []
        self.reinjection_of: list[int] = []

    def expert(self, key: str, message: str | None = None) -> None:
        self.experts.append(expert(key, message))

    def check(self, c: Check) -> None:
        self.checks.append(c)
        conn = self.sf.conn
        if conn is not None:
            conn.checks[(c.what, c.verdict.name)] += 1

    def closure(self, signal: str, **guards: bool) -> None:
        sf, conn = self.sf, self.sf.conn
        src = _SIDE[sf.side(self.d)]
        dst = _SIDE[1 - sf.side(self.d)]
        for f in conn.closure.feed((src, dst), signal, **guards):
            self.expert(
                "mptcp.closure.illegal", f"{f.signal}: {f.role} {f.endpoint} in {'|'.join(f.states)}: {f.reason}"
            )

    # ------------------------------------------------------------------ MP_CAPABLE

    def mp_capable(self, o: MpCapable) -> None:
        self._mp_capable(o)
        if self.sf.conn is not None and o.sender_key is not None:
            self.sf.conn.master_sf = self.sf

    def _mp_capable(self, o: MpCapable) -> None:
        an, sf, pkt, d = self.an, self.sf, self.pkt, self.d
        flags = int(pkt.flags)
        conn = sf.conn
        if flags & _SYN and not flags & _ACK:
            if conn is None:
                conn = sf.conn = an.new_connection(o.version, self.number)
                conn.subflows.append(sf)
                sf.kind = "MP_CAPABLE"
                sf.to_client_side = d == 0
                if o.version == 1:  # the machine in spec/establishment.fsm is v1's handshake
                    sf.observer = Observer(EstablishmentMachine, ("A", "B"))
            self._algorithm(o)
            conn.sides[sf.side(d)].flags = o.flags
            if o.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                conn.checksum = True
            if o.sender_key is not None:
                an.register_key(conn, sf.side(d), o.sender_key, self)
            return
        if conn is None:
            # The capture missed the SYN: start from what this packet says.
            if flags & _SYN:
                conn = sf.conn = an.new_connection(o.version, self.number)
                sf.to_client_side = d == 1
            elif o.receiver_key is not None:
                conn = sf.conn = an.new_connection(o.version, self.number)
                sf.to_client_side = d == 0
            else:
                return
            conn.subflows.append(sf)
            sf.kind = "MP_CAPABLE"
        if sf.kind != "MP_CAPABLE":
            self.expert("mptcp.option.unexpected", "MP_CAPABLE on an MP_JOIN subflow")
            return
        side = sf.side(d)
        if flags & _SYN:  # SYN/ACK
            self._algorithm(o)
            if o.version != conn.version:
                conn.version = o.version  # the listener's answer decides
            conn.sides[side].flags = o.flags
            if o.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                conn.checksum = True
            if o.sender_key is not None:
                an.register_key(conn, side, o.sender_key, self)
            return
        # Third ACK, or (v1) the first data with MP_CAPABLE: the sender's key, then the receiver's.
        s, r = conn.sides[side], conn.sides[1 - side]
        if o.sender_key is not None:
            if s.key is not None and s.key != o.sender_key:
                self.expert(
                    "mptcp.connection.echoed_key_mismatch",
                    f"sender's key {o.sender_key:#018x} differs from the SYN's {s.key:#018x}",
                )
            elif s.key is None:
                an.register_key(conn, side, o.sender_key, self)
        if o.receiver_key is not None:
            if r.key is not None and r.key != o.receiver_key:
                self.expert(
                    "mptcp.connection.echoed_key_mismatch",
                    f"receiver's key {o.receiver_key:#018x} differs from the SYN/ACK's {r.key:#018x}",
                )
                self.check(Check(Verdict.MISMATCH, "MP_CAPABLE echoed key", r.key, o.receiver_key))
            elif r.key is None:
                an.register_key(conn, 1 - side, o.receiver_key, self)
            else:
                self.check(Check(Verdict.VERIFIED, "MP_CAPABLE echoed key", r.key, o.receiver_key))
        if o.data_level_length is not None and self.pkt.payload_len:
            # v1: the first data rides on MP_CAPABLE, mapped from IDSN + 1 (RFC 8684 §3.1).
            # The mapping is implicit: DSN IDSN + 1, subflow sequence number 1; the kernel repeats the
            # option on every segment of that first mapping.
            if s.idsn is not None:
                s.checked_first = True
                self.mapping(d, 1, (s.idsn + 1) & _M64, o.data_level_length, o.checksum, o.data_level_length)

    def _algorithm(self, o: MpCapable) -> None:
        f = int(o.flags)
        if not f & 0x01:
            self.expert("mptcp.connection.missing_algorithm", "MP_CAPABLE sets no HMAC algorithm flag (H)")
        elif f & 0x3E:
            self.expert(
                "mptcp.connection.unsupported_algorithm",
                f"MP_CAPABLE flags {f:#04x} ask for an algorithm besides HMAC-SHA1/SHA256",
            )

    # ------------------------------------------------------------------ MP_JOIN

    def mp_join(self, o) -> None:
        an, sf, d, pkt = self.an, self.sf, self.d, self.pkt
        t = type(o)
        if t is MpJoinSyn:
            if not int(pkt.flags) & _SYN or int(pkt.flags) & _ACK:
                self.expert("mptcp.option.unexpected", "MP_JOIN of SYN length on a packet that is not a SYN")
                return
            sf.address_ids[d] = o.address_id
            sf.backup[d] = o.backup
            sf.nonces[d] = o.nonce
            conn = an._tokens.get(o.token)
            if sf.conn is None:
                sf.kind = "MP_JOIN"
                sf.observer = Observer(JoinMachine, ("A", "B"))
            if conn is None:
                self.expert("mptcp.join.unknown_token", f"token {o.token:#010x} names no connection seen")
                if sf.conn is None:
                    other = an._join_tokens.get(o.token)
                    if other is not None:
                        other.subflows.append(sf)
                        sf.conn = other
                    else:
                        an._join_tokens[o.token] = an._unlinked(sf, self.number, "MP_JOIN")
                    sf.observer = None
                return
            if sf.conn is None:
                sf.conn = conn
                conn.subflows.append(sf)
                # The token is the receiver's: the initiator is the other side.
                sf.to_client_side = conn.sides[SERVER].token == o.token
            return
        conn = sf.conn
        if conn is None:
            return
        a = sf.side(0)  # the initiator's connection side
        ka, kb = conn.sides[a].key, conn.sides[1 - a].key
        if t is MpJoinSynAck:
            sf.address_ids[d] = o.address_id
            sf.backup[d] = o.backup
            sf.nonces[d] = o.nonce
        if not an.verify:
            return
        if conn.version not in (0, 1):
            why = (
                "the keys are unknown: the token names no connection of this capture"
                if conn.unlinked
                else f"MPTCP version {conn.version} has no known HMAC"
            )
            c = Check(
                Verdict.UNVERIFIABLE, f"MP_JOIN {'SYN/ACK' if t is MpJoinSynAck else 'ACK'} HMAC", None, None, why
            )
        elif t is MpJoinSynAck:
            c = crypto.verify_join_synack(kb, ka, o.nonce, sf.nonces[0], o.truncated_hmac, conn.version)
        else:
            c = crypto.verify_join_ack(ka, kb, sf.nonces[0], sf.nonces[1], o.hmac, conn.version)
        self.check(c)
        if c.verdict is Verdict.MISMATCH:
            self.expert("mptcp.join.hmac_mismatch", str(c))

    # ------------------------------------------------------------------ handshake machines

    def handshake(self, mptcp: list) -> None:
        sf, pkt, d = self.sf, self.pkt, self.d
        obs = sf.observer
        flags = int(pkt.flags)
        direction = ("A", "B") if d == 0 else ("B", "A")
        guards: dict[str, bool] = {}
        if sf.kind == "MP_JOIN":
            types = {type(o) for o in mptcp}
            if flags & _RST:
                sig = "RST"
            elif flags & _SYN and not flags & _ACK:
                sig = "SYN+MP_JOIN" if MpJoinSyn in types else None
                guards["token_ok"] = sf.conn is not None
            elif flags & _SYN:
                sig = "SYN_ACK+MP_JOIN" if MpJoinSynAck in types else "SYN_ACK"
                guards["hmac_ok"] = self._verified("MP_JOIN SYN/ACK")
            elif MpJoinAck in types:
                sig = "ACK+MP_JOIN"
                guards["hmac_ok"] = self._verified("MP_JOIN ACK")
            else:
                sig = "ACK"
        else:
            mpc = next((o for o in mptcp if type(o) is MpCapable), None)
            dss = next((o for o in mptcp if type(o) is Dss), None)
            if flags & _SYN and not flags & _ACK:
                sig = "SYN+MP_CAPABLE" if mpc else "SYN"
            elif flags & _SYN:
                sig = "SYN_ACK+MP_CAPABLE" if mpc else "SYN_ACK"
                if mpc is None and sf.conn is not None and sf.conn.fallback is None:
                    sf.conn.fallback = "the SYN/ACK carries no MP_CAPABLE"
                    self.expert("mptcp.fallback", f"fallback to regular TCP: {sf.conn.fallback}")
            elif mpc is not None:
                sig = "DATA+MP_CAPABLE" if mpc.data_level_length is not None else "ACK+MP_CAPABLE"
            elif dss is not None:
                if int(dss.flags) & _F_M and dss.data_level_length == 0:
                    sig = "DSS[INFINITE_MAPPING]"
                elif int(dss.flags) & _F_M and pkt.payload_len:
                    sig = "DATA+DSS"
                else:
                    sig = "ACK+DSS"
            elif flags & _RST:
                sig = None
            else:
                sig = "ACK"
        if sig is not None:
            for f in obs.feed(direction, sig, **guards):
                self.expert(
                    "mptcp.handshake.illegal",
                    f"{sf.kind} {f.signal}: {f.role} {f.endpoint} in {'|'.join(f.states)}: {f.reason}",
                )
        if obs.is_final("A") and obs.is_final("B"):
            states = obs.states("A") | obs.states("B")
            if "FALLBACK" in states and sf.conn is not None and sf.conn.fallback is None:
                sf.conn.fallback = "the MP_CAPABLE handshake did not complete (no MP_CAPABLE on the SYN/ACK or ACK)"
                self.expert("mptcp.fallback", sf.conn.fallback)
            sf.observer = _Done(obs)

    def _verified(self, prefix: str) -> bool:
        return all(c.verdict is not Verdict.MISMATCH for c in self.checks if c.what.startswith(prefix))

    # ------------------------------------------------------------------ DSS

    def dss(self, o: Dss) -> DssInfo:
        sf = self.sf
        d = self.d
        memo = sf.dirs[d].memo
        if memo is not None and memo[0] is o:
            # The same DSS object as this direction's latest (the options cache hands every segment
            # that repeats a DSS octet for octet the same object): what the full path below would
            # do, when nothing it depends on has changed since.
            _, info, conn, narrow, pidsn, midsn, m, me, peer, fl, to_client = memo
            if (
                sf.conn is conn
                and sf.to_client_side is to_client
                and not conn.checksum
                and peer.idsn == pidsn
                and me.idsn == midsn
                and (m is None or fl.mappings[-1] is m)
            ):
                ack64 = info.ack64
                if narrow:  # a 32-bit DATA_ACK, expanded against the references of now
                    ref = peer.dsn_ref
                    if ref is None:
                        ref = me.ack_ref
                        if ref is None and pidsn is not None:
                            ref = (pidsn + 1) & _M64
                    v = (ref & ~_M32) | o.data_ack
                    if v - ref > 0x80000000:
                        v -= 1 << 32
                    elif ref - v > 0x80000000:
                        v += 1 << 32
                    fresh = (v & _M64) == ack64
                else:
                    fresh = True
                if fresh:
                    if ack64 is not None:
                        me.ack_ref = ack64
                        if ack64 > peer.hole_lo or (peer.seg_high is not None and ack64 > peer.seg_high):
                            self._acked_holes(peer, ack64)
                        if (
                            peer.dfin is not None
                            and not peer.dfin_acked
                            and ((ack64 - peer.dfin) & _M64) - 1 < (1 << 62)
                        ):
                            peer.dfin_acked = True
                            self.closure("DATA_ACK[DFIN]")
                    if m is not None:
                        me.dsn_ref = info.dsn64
                        m[3] = self.number  # the mapping as this packet repeats it (Wireshark's related_mapping)
                        fl.last = m
                    return info
        info = self._dss(o)
        self._remember(o, info)
        return info

    def _remember(self, o: Dss, info: DssInfo) -> None:
        """Keep ``info`` for the segments that repeat ``o``, when :meth:`dss` can take it for them:
        no DATA_FIN, no infinite mapping, no checksums, 64-bit DSN, and the direction's latest
        mapping is the one ``o`` repeats."""
        sf, d = self.sf, self.d
        fl = sf.dirs[d]
        conn = sf.conn
        f = int(o.flags)
        fl.memo = None
        if conn is None or conn.checksum or o.checksum is not None or f & _F_F:
            return
        if f & _F_A and (o.data_ack is None or info.ack64 is None):
            return
        m = None
        if f & _F_M:
            if not f & _F_m or info.dsn64 is None or not o.data_level_length:
                return
            ms = fl.mappings
            m = ms[-1] if ms else None
            ssn, dl, dsn64 = o.ssn, o.data_level_length, info.dsn64
            # what dss finds when it looks for the mapping a segment repeats
            if (
                m is None
                or m is not fl.last
                or not (
                    m[0] == ssn and m[1] == ssn + dl and ssn < m[1] and ((m[2] - ssn) & _M64) == ((dsn64 - ssn) & _M64)
                )
            ):
                return
        side = sf.side(d)
        me, peer = conn.sides[side], conn.sides[1 - side]
        if f & _F_M and not me.checked_first and me.idsn is not None:
            return
        fl.memo = (
            o,
            info,
            conn,
            bool(f & _F_A and not f & _F_a),
            peer.idsn,
            me.idsn,
            m,
            me,
            peer,
            fl,
            sf.to_client_side,
        )

    def _dss(self, o: Dss) -> DssInfo:
        sf = self.sf
        conn = sf.conn
        if conn is None:
            return DssInfo()
        d = self.d
        f = int(o.flags)
        side = d if sf.to_client_side else 1 - d
        sides = conn.sides
        me, peer = sides[side], sides[1 - side]
        sf.dirs[d].seen_dss = True
        ack64 = ack = dsn64 = dsn = None
        if f & _F_A:
            data_ack = o.data_ack
            if data_ack is not None:
                if f & _F_a:
                    ack64 = data_ack
                else:
                    ref = peer.dsn_ref
                    if ref is None:
                        ref = me.ack_ref
                        if ref is None and peer.idsn is not None:
                            ref = (peer.idsn + 1) & _M64
                    if ref is not None:  # expand(data_ack, ref), inline
                        v = (ref & ~_M32) | data_ack
                        if v - ref > 0x80000000:
                            v -= 1 << 32
                        elif ref - v > 0x80000000:
                            v += 1 << 32
                        ack64 = v & _M64
                if ack64 is not None:
                    me.ack_ref = ack64
                    if ack64 > peer.hole_lo or (peer.seg_high is not None and ack64 > peer.seg_high):
                        self._acked_holes(peer, ack64)
                    if peer.idsn is not None:
                        ack = (ack64 - peer.idsn) & _M64
                    if peer.dfin is not None and not peer.dfin_acked and ((ack64 - peer.dfin) & _M64) - 1 < (1 << 62):
                        peer.dfin_acked = True
                        self.closure("DATA_ACK[DFIN]")
        if f & _F_M:
            odsn = o.dsn
            if odsn is None:
                return _dssinfo(dsn64, dsn, ack64, ack)
            if f & _F_m:
                dsn64 = odsn
            else:
                ref = me.dsn_ref if me.dsn_ref is not None else ((me.idsn + 1) & _M64 if me.idsn is not None else None)
                dsn64 = expand(odsn, ref) if ref is not None else None
            if dsn64 is not None:
                me.dsn_ref = dsn64
                if me.idsn is not None:
                    dsn = (dsn64 - me.idsn) & _M64
            dl = o.data_level_length
            if dl == 0:
                self.expert("mptcp.dss.infinite_mapping")
                if conn.fallback is None:
                    conn.fallback = f"infinite mapping in frame {self.number}"
                    self.expert("mptcp.fallback", f"fallback to regular TCP: {conn.fallback}")
            fin = 1 if f & _F_F else 0
            checksum = o.checksum
            if conn.checksum:
                if checksum is None:
                    self.expert("mptcp.dss.checksum_missing")
            elif checksum is not None and sides[0].flags is not None:
                self.expert("mptcp.dss.checksum_unexpected")
            if dsn64 is not None and dl:
                if fin:
                    me.dfin = (dsn64 + dl - 1) & _M64
                ssn = o.ssn
                if not (fin and dl == 1 and ssn == 0):
                    # The mapping the subflow's latest one repeats (each segment of a mapping carries it):
                    # what mapping() finds first in its scan, settled here.
                    fl = sf.dirs[d]
                    ms = fl.mappings
                    m = ms[-1] if ms else None
                    if (
                        m is not None
                        and m[0] == ssn
                        and m[1] == ssn + dl - fin
                        and ssn < m[1]
                        and ((m[2] - ssn) & _M64) == ((dsn64 - ssn) & _M64)
                    ):
                        m[3] = self.number  # the mapping as this packet repeats it (Wireshark's related_mapping)
                        fl.last = m
                    else:
                        self.mapping(d, ssn, dsn64, dl - fin, checksum, dl)
                elif conn.checksum and checksum is not None and self.an.verify:
                    # A DATA_FIN alone: the checksum covers the pseudo-header only (RFC 8684 §3.3.1).
                    c = crypto.verify_dss_checksum(dsn64, 0, 1, b"", checksum)
                    self.check(c)
                    if c.verdict is Verdict.MISMATCH:
                        self.expert("mptcp.dss.checksum_mismatch", str(c))
                if not me.checked_first and me.idsn is not None:
                    me.checked_first = True
                    self._first_dsn(me, side, dsn64)
            if fin:
                self.closure("DATA_FIN")
        return _dssinfo(dsn64, dsn, ack64, ack)

    def _first_dsn(self, me: _Side, side: int, dsn64: int) -> None:
        expect = (me.idsn + 1) & _M64
        if dsn64 != expect:
            self.expert(
                "mptcp.dss.first_dsn",
                f"the {_SIDE[side]}'s first mapping starts at DSN {dsn64:#x}, IDSN + 1 is {expect:#x}",
            )

    def mapping(self, d: int, ssn: int, dsn64: int, length: int, checksum: int | None, dl: int) -> None:
        """Record a mapping of ``length`` subflow octets from relative ``ssn`` to ``dsn64``; ``dl`` is the
        data-level length as sent (with the DATA_FIN's octet), which the checksum covers."""
        sf = self.sf
        conn = sf.conn
        fl = sf.dirs[d]
        end = ssn + length
        ms = fl.mappings
        known = None
        if ssn < fl.ssn_hi:  # else no mapping reaches these subflow octets
            for m in reversed(ms):
                if m[0] < end and ssn < m[1]:  # overlapping subflow data
                    if ((m[2] - m[0]) & _M64) != ((dsn64 - ssn) & _M64):
                        self.expert(
                            "mptcp.dss.mapping_conflict",
                            f"subflow octets {ssn}..{end} mapped to DSN {dsn64:#x}, frame {m[3]} mapped "
                            f"them to {(m[2] + ssn - m[0]) & _M64:#x}",
                        )
                    elif m[0] == ssn and m[1] == end:
                        known = m
                        m[3] = self.number  # the mapping as this packet repeats it (Wireshark's related_mapping)
                    break
        if known is None:
            m = [ssn, end, dsn64, self.number, checksum if self.an.verify and conn.checksum else None, None, dl]
            ms.append(m)
            if len(ms) > _MAX_MAPPINGS:
                del ms[0]
            fl.last = m
            if end > fl.ssn_hi:
                fl.ssn_hi = end
            if ssn + dl > fl.map_hi:
                fl.map_hi = ssn + dl
            if length:
                self._data_range(conn.sides[sf.side(d)], dsn64, length, ssn)
                if conn.unlinked:
                    self.an._orphan_data(dsn64, length)
            dend = dsn64 + end - ssn
            if dend > fl.dsn_hi:
                fl.dsn_hi = dend
        else:
            fl.last = known

    def _data_range(self, side: _Side, dsn64: int, length: int, ssn: int) -> None:
        """Account a data range at connection level: new data, reinjection, order."""
        end = dsn64 + length
        below = False
        if side.first_dsn is None:
            side.first_dsn = dsn64
            side.high = end
        elif end > side.high:
            side.high = end
        else:
            below = True
        if dsn64 < side.first_dsn:
            side.first_dsn = dsn64
        # A data-level retransmission on this same subflow (at other subflow octets): the mapping
        # ranges this subflow direction made before.
        again = None
        fl = self.sf.dirs[self.d]
        if dsn64 < fl.dsn_hi:  # else none of the mappings before this one reaches its data
            for m in fl.mappings[:-1]:
                if m[2] < end and dsn64 < m[2] + (m[1] - m[0]) and m[0] != ssn:
                    again = m[3]
        if again is not None:
            self.expert(
                "mptcp.dss.retransmission",
                f"DSN {dsn64:#x}+{length} was mapped on this subflow before, in frame {again}, at other subflow octets",
            )
        elif below:
            self.expert(
                "mptcp.dss.out_of_order", f"mapping at DSN {dsn64:#x} starts below the highest DSN seen, {side.high:#x}"
            )

    def _segment_range(self, side: _Side, dsn64: int, n: int) -> None:
        """Reinjection: this segment's data-level range was carried on another subflow before.

        As Wireshark's ``mptcp.reinjection_of``: per segment, across subflows only (a
        retransmission on the same subflow is TCP's business), earlier frames only.  Also keeps
        the side's data-level holes (see :meth:`_acked_holes`)."""
        end = dsn64 + n
        # _carried(side, dsn64, end), its two common cases inline: data that continues the highest
        # seen, and data that continues the lowest hole (the other subflow's share, arriving)
        if dsn64 == side.seg_high:
            side.seg_high = end
        elif dsn64 == side.hole_lo and end < side.holes[0][1]:
            side.holes[0][0] = side.hole_lo = end
        else:
            _carried(side, dsn64, end)
        starts, ranges = side.starts, side.ranges
        i = len(starts)
        if i and dsn64 < starts[-1]:  # else it goes at the end (bisect_right's answer too)
            i = _bisect_right(starts, dsn64)
        me = self.sf.index
        hits = None
        j = i - 1
        reach = dsn64 - side.max_seg  # a range starting at or below this one ends before dsn64
        while j >= 0:
            s, e, sub, frame = ranges[j]
            if s <= reach:
                break
            if e > dsn64 and sub != me:
                if hits is None:
                    hits = []
                hits.append(frame)
            j -= 1
        k = i
        nranges = len(ranges)
        while k < nranges and ranges[k][0] < end:
            if ranges[k][2] != me:
                if hits is None:
                    hits = []
                hits.append(ranges[k][3])
            k += 1
        if hits:
            hits.sort()
            self.reinjection_of.extend(hits)
            side.reinjected += n
            self.expert(
                "mptcp.dss.reinjection",
                f"DSN {dsn64:#x}+{n} was sent on another subflow in frame(s) {', '.join(map(str, hits))}",
            )
        if n > side.max_seg:
            side.max_seg = n
        if i == nranges:
            starts.append(dsn64)
            ranges.append((dsn64, end, me, self.number))
        else:
            starts.insert(i, dsn64)
            ranges.insert(i, (dsn64, end, me, self.number))
        if nranges >= _MAX_RANGES:  # one more now
            del ranges[: _MAX_RANGES // 2]
            del starts[: _MAX_RANGES // 2]

    def _acked_holes(self, side: _Side, ack64: int) -> None:
        """A DATA_ACK up to ``ack64`` of ``side``'s data: the holes below it were received by the
        peer, but no captured segment carried them (not captured, or carried without a mapping
        seen)."""
        conn = self.sf.conn
        if conn.fallback or conn.unlinked:  # its data is not followed at the data level
            _blind(side)
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
            rel = "" if idsn is None else f" (relative {(start - idsn) & _M64}..{(top - idsn) & _M64})"
            self.expert(
                "mptcp.dss.gap",
                f"DSN {start:#x}..{top:#x}{rel}, {top - start} octets of data sequence "
                f"space (data, or a DATA_FIN), acknowledged here but mapped by no "
                f"segment of the capture",
            )
            if top >= end:
                del holes[0]
            else:
                holes[0][0] = top
        side.hole_lo = holes[0][0] if holes else _NO_HOLE

    def data(self, mptcp: list) -> int | None:
        """Check the payload against the mappings; return its relative DSN when mapped."""
        sf, d, pkt = self.sf, self.d, self.pkt
        return self._data(sf, d, sf.conn, int(pkt.flags), pkt.seq, pkt.payload_len)

    def _data(self, sf: Subflow, d: int, conn: Connection, flags: int, seq: int, n: int):
        """:meth:`data`, given what the caller has at hand."""
        fl = sf.dirs[d]
        if fl.isn is None:
            return None
        if flags & _SYN:
            # TFO data on the SYN: before IDSN + 1 in the data stream, outside any mapping.
            if sf.kind != "MP_CAPABLE":
                return None
            idsn = conn.sides[sf.side(d)].idsn
            return 1 - n, (None if idsn is None else (idsn + 1 - n) & _M64), None
        rel = (seq - fl.isn - fl.syn_data) & _M32
        m = fl.last
        if m is None or not (m[0] <= rel < m[1]):
            m = None
            for cand in reversed(fl.mappings):
                if cand[0] <= rel < cand[1]:
                    m = fl.last = cand
                    break
        if m is None:
            if self.pkt.options_cut:
                # its mapping may be in what the snapshot length cut: where its data lies is unknown,
                # so the data-level holes of this side are too (found again from the next segment)
                _blind(conn.sides[sf.side(d)])
                return None
            if not fl.seen_dss and not sf.dirs[1 - d].seen_dss and sf.kind == "MP_CAPABLE":
                if conn.fallback is None and conn.sides[0].key is not None and conn.sides[1].key is not None:
                    conn.fallback = f"data without any DSS option in frame {self.number}"
                    self.expert("mptcp.fallback", f"fallback to regular TCP: {conn.fallback}")
                return None
            if (
                conn.fallback is None
                and len(conn.subflows) == 1
                and sf.kind == "MP_CAPABLE"
                and not decode_mptcp_options(self.pkt.options)
            ):
                # MPTCP options gone from the only subflow, mid-connection (a middlebox stripping
                # them): regular TCP from here on (RFC 8684 §3.7)
                conn.fallback = f"data without MPTCP options, after DSS options, in frame {self.number}"
                self.expert("mptcp.fallback", f"fallback to regular TCP: {conn.fallback}")
                return None
            self.expert("mptcp.dss.missing_mapping", f"subflow octets {rel}..{rel + n} are covered by no mapping")
            return None
        if rel + n > m[1]:
            self.expert(
                "mptcp.dss.missing_mapping", f"subflow octets {m[1]}..{rel + n} run past the mapping of frame {m[3]}"
            )
        dsn64 = (m[2] + rel - m[0]) & _M64
        if m[4] is not None:
            self._checksum(m, rel, n)
        side = conn.sides[d if sf.to_client_side else 1 - d]
        self._segment_range(side, dsn64, n)
        return ((dsn64 - side.idsn) & _M64 if side.idsn is not None else None), dsn64, m[3]

    def _checksum(self, m: list, rel: int, n: int) -> None:
        pkt = self.pkt
        ssn, end, dsn64, frame, csum, buf = m[:6]
        want = end - ssn
        payload = pkt.payload
        if buf is None:
            if rel != ssn:
                return  # a retransmission covering part of a mapping already checked, or a gap
            if pkt.payload_cut:
                self.check(
                    Check(
                        Verdict.UNVERIFIABLE,
                        "DSS checksum",
                        None,
                        csum,
                        f"payload cut by the snapshot length ({len(payload)} of {n} octets captured)",
                    )
                )
                m[4] = None
                return
            if n >= want:
                self._verify_csum(m, payload[:want])
                return
            m[5] = bytearray(payload)
            return
        if rel != ssn + len(buf) or pkt.payload_cut:
            if pkt.payload_cut:
                self.check(
                    Check(
                        Verdict.UNVERIFIABLE,
                        "DSS checksum",
                        None,
                        csum,
                        f"payload cut by the snapshot length (mapping of frame {frame})",
                    )
                )
                m[4] = None
            return
        buf += payload[: want - len(buf)]
        if len(buf) >= want:
            self._verify_csum(m, bytes(buf))

    def _verify_csum(self, m: list, payload: bytes) -> None:
        ssn, end, dsn64, frame, csum, _, dl = m
        # The pseudo-header's data-level length is the one sent: it counts a DATA_FIN's octet.
        c = crypto.verify_dss_checksum(dsn64, ssn, dl, payload, csum)
        if frame != self.number:
            c = Check(
                c.verdict, c.what, c.expected, c.actual, (c.why + "; " if c.why else "") + f"mapping of frame {frame}"
            )
        self.check(c)
        if c.verdict is Verdict.MISMATCH:
            self.expert("mptcp.dss.checksum_mismatch", str(c))
        m[4] = None
        m[5] = None

    # ------------------------------------------------------------------ address management, close

    def add_addr(self, o) -> None:
        sf, d = self.sf, self.d
        conn = sf.conn
        if conn is None:
            return
        side = sf.side(d)
        echo = getattr(o, "echo", False)
        port = o.port
        what = "ADD_ADDR echo" if echo else "ADD_ADDR"
        conn.history.append(
            (self.number, f"{_SIDE[side]} {what} id {o.address_id} {o.address}" + (f" port {port}" if port else ""))
        )
        if echo:
            return
        conn.sides[side].addresses[o.address_id] = [o.address, port, self.number, None]
        if type(o) is AddAddr and o.hmac is not None and self.an.verify and conn.version in (0, 1):
            c = crypto.verify_add_addr(
                conn.sides[side].key, conn.sides[1 - side].key, o.address_id, o.address, port, o.hmac, conn.version
            )
            self.check(c)
            if c.verdict is Verdict.MISMATCH:
                self.expert("mptcp.add_addr.hmac_mismatch", str(c))

    def remove_addr(self, o: RemoveAddr) -> None:
        conn = self.sf.conn
        if conn is None:
            return
        side = self.sf.side(self.d)
        for aid in o.address_ids:
            a = conn.sides[side].addresses.get(aid)
            if a is not None:
                a[3] = self.number
        conn.history.append((self.number, f"{_SIDE[side]} REMOVE_ADDR id(s) {', '.join(map(str, o.address_ids))}"))

    def mp_prio(self, o: MpPrio) -> None:
        conn = self.sf.conn
        if conn is None:
            return
        side = self.sf.side(self.d)
        if o.address_id is None:
            self.sf.backup[1 - self.d] = o.backup  # v1: the receiver is asked to treat this subflow as backup
        conn.history.append(
            (
                self.number,
                f"{_SIDE[side]} MP_PRIO backup={int(o.backup)}"
                + (f" id {o.address_id}" if o.address_id is not None else ""),
            )
        )

    def fastclose(self, o: MpFastclose) -> None:
        sf, d, pkt = self.sf, self.d, self.pkt
        conn = sf.conn
        if conn is None:
            return
        receiver = conn.sides[1 - sf.side(d)]
        if receiver.key is None:
            c = Check(Verdict.UNVERIFIABLE, "MP_FASTCLOSE key", None, o.receiver_key, "unknown: the receiver's key")
        else:
            c = Check(
                Verdict.VERIFIED if receiver.key == o.receiver_key else Verdict.MISMATCH,
                "MP_FASTCLOSE key",
                receiver.key,
                o.receiver_key,
            )
        self.check(c)
        if c.verdict is Verdict.MISMATCH:
            self.expert("mptcp.fastclose.key_mismatch", str(c))
        key_valid = c.verdict is not Verdict.MISMATCH
        self.closure("RST+MP_FASTCLOSE" if int(pkt.flags) & _RST else "MP_FASTCLOSE", key_valid=key_valid)


class _Done:
    """A finished handshake observer: its states frozen, nothing more fed."""

    __slots__ = ("_a", "_b")

    def __init__(self, obs: Observer) -> None:
        self._a, self._b = obs.state("A"), obs.state("B")

    def state(self, endpoint: str) -> str:
        return self._a if endpoint == "A" else self._b
