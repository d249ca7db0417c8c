"""From TCP segments to MPTCP connections: the :class:`Analyzer`.

:class:`Analyzer` takes decoded packets in capture order (:meth:`Analyzer.feed`) and returns a
:class:`~mptcpspec.analysis.model.PacketInfo` for each: the packet, its decoded options, the TCP
and MPTCP stream it belongs to, relative sequence numbers, data sequence numbers relative to the
IDSNs, the checks made on it and expert information.  It finds the subflow of each segment
(:class:`SubflowTable`), follows its TCP sequence numbers, and hands its MPTCP options to the parts
of the analysis: :mod:`~mptcpspec.analysis.handshake`, :mod:`~mptcpspec.analysis.datalevel`,
:mod:`~mptcpspec.analysis.addresses`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mptcpspec.analysis.addresses import Addresses
from mptcpspec.analysis.clock import FrameClock
from mptcpspec.analysis.context import PacketContext
from mptcpspec.analysis.datalevel import DssReader, Mappings
from mptcpspec.analysis.expert import expert
from mptcpspec.analysis.handshake import Handshakes, Links
from mptcpspec.analysis.model import (
    Connection,
    DssInfo,
    Found,
    IPAddress,
    PacketInfo,
    Subflow,
    stops_at_cut,
)
from mptcpspec.analysis.seqspace import M32, M64, SequenceSpace, blind
from mptcpspec.analysis.tcpanalysis import TcpAnalyzer
from mptcpspec.capture.packets import Layer, Packet, TcpFlags
from mptcpspec.codec.generated.options import decode_dss
from mptcpspec.codec.options import (
    KIND_MPTCP,
    OPTION_SPACE,
    AddAddr,
    AddAddrV0,
    CutOption,
    Dss,
    DssFlags,
    MalformedOption,
    MpCapable,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MptcpOption,
    MpTcpRst,
    Nop,
    RemoveAddr,
    Subtype,
    Timestamps,
    captured_option,
    decode_mptcp_options,
)
from mptcpspec.codec.runtime import fast_constructor
from mptcpspec.errors import DecodeError
from mptcpspec.fsm.observer import Observer
from mptcpspec.records import dataclass

__all__ = ["Analyzer", "HotParts", "SubflowTable", "OptionAreas"]

# Flag bits as plain ints: the hot path tests them on every segment.
_SYN, _ACK, _FIN, _RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.FIN), int(TcpFlags.RST)
#: how Linux starts the options of every segment with timestamps: NOP, NOP, timestamps (10 octets)
_NOP_NOP_TS = bytes((Nop.KIND, Nop.KIND, Timestamps.KIND, 10))
_DSS = int(Subtype.DSS)
_KEPT = 256  # option areas kept by OptionAreas

_info = fast_constructor(PacketInfo)
#: (source, source port, destination, destination port, IP version), the addresses as integers
FlowKey = tuple[int, int, int, int, int]


def _cut_area(pkt: Packet, conn: Connection | None, sf: Subflow, flags: int, cut_syns: set[int]) -> Found:
    """The MPTCP options of an area the snapshot length cut (the cut one last); a SYN's subflow noted."""
    if flags & _SYN:
        cut_syns.add(sf.index)
    area = pkt.hdr_len - 20 if pkt.hdr_len else None
    return decode_mptcp_options(pkt.options, conn.version if conn is not None else None, cut=True, size=area)


def _followed(
    ctx: PacketContext, found: Found, sf: Subflow, flags: int
) -> tuple[list[MptcpOption | MalformedOption | CutOption], Dss | None]:
    """Of options with a malformed or cut one: those the analysis follows (the malformed ones
    reported), and what a cut DSS says for certain.  Of a cut option only what it says for certain
    is followed (captured_option); an MP_CAPABLE after the SYNs, only with its keys or its
    connection known."""
    mptcp: list[MptcpOption | MalformedOption | CutOption] = [
        o for o in found if type(o) is not MalformedOption and type(o) is not CutOption
    ]
    for o in found:
        if isinstance(o, MalformedOption):
            ctx.expert("mptcp.option.malformed", str(o.error))
    last = found[-1]
    part = captured_option(last) if isinstance(last, CutOption) else None
    if type(part) is MpCapable:
        if flags & _SYN or sf.conn is not None or part.receiver_key is not None:
            mptcp.append(part)
        return mptcp, None
    return mptcp, part if isinstance(part, Dss) else None


def _unjudged_gaps(sf: Subflow, table: SubflowTable, conns: list[Connection]) -> None:
    """``sf`` is met unlinked: if the snapshot length cut its handshake, the data it carries may be
    any connection's, so no gap of theirs is judged from now on."""
    if sf.index in table.cut_syns:
        for c in conns:
            blind(c.sides[0])
            blind(c.sides[1])


def _mapping_hidden(sf: Subflow, d: int, rel: int) -> None:
    """The snapshot length may have cut a mapping off the segment at relative sequence ``rel``: the
    data after it is not judged unmapped (Mappings), and its side's first mapping not checked."""
    sf.dirs[d].hidden = rel
    if sf.conn is not None:
        sf.conn.sides[sf.side(d)].checked_first = True


def _may_hide_mapping(found: Found) -> bool:
    """Whether the snapshot length may have cut a mapping off a packet whose MPTCP options are
    ``found``: no DSS captured whole, nor a cut one whose flags say it has no mapping or whose
    mapping was captured whole."""
    if any(type(o) is Dss for o in found):
        return False
    last = found[-1] if found else None
    part = captured_option(last) if type(last) is CutOption else None
    return not (type(part) is Dss and (part.dsn is not None or not part.flags & DssFlags.MAPPING_PRESENT))


class OptionAreas:
    """:func:`~mptcpspec.codec.options.decode_mptcp_options` for the analyzer, its common case kept.

    The common case: NOP, NOP, timestamps, then one MPTCP option of subtype DSS and nothing after
    it but NOPs (or an EOL).  Every segment of a mapping repeats its DSS, often octet for octet: the
    decoded (immutable) option is kept by the octets after the timestamps, all it depends on, and a
    segment that repeats them gets the same object (which :class:`DssReader` takes a shortcut for).
    """

    __slots__ = ("kept",)

    def __init__(self) -> None:
        #: options after NOP, NOP, timestamps (a DSS, padding) -> (the DSS decoded,)
        self.kept: dict[bytes, Found] = {}

    def decode(self, raw: bytes, version: int | None) -> Found:
        """decode_mptcp_options(raw, version), the common case decoded directly and kept."""
        nraw = len(raw)
        if nraw > 14 and raw[12] == KIND_MPTCP and raw[14] >> 4 == _DSS and raw[:4] == _NOP_NOP_TS:
            end = 12 + raw[13]
            if raw[13] > 2 and (end == nraw or end < nraw and (raw[end] == 0 or not raw[end:].strip(b"\x01"))):
                try:
                    o = decode_dss(raw, 12, end - 12, version)
                except DecodeError:
                    return decode_mptcp_options(raw, version)
                if nraw > OPTION_SPACE:  # not kept: a kept area is taken for one within the limit
                    return (o,)
                kept = self.kept
                if len(kept) >= _KEPT:
                    kept.clear()
                found = kept[raw[12:]] = (o,)
                return found
        return decode_mptcp_options(raw, version)


class SubflowTable:
    """The subflows of a capture, by their addresses and ports."""

    __slots__ = ("flows", "subflows", "space", "cut_syns")

    def __init__(self, space: SequenceSpace) -> None:
        self.flows: dict[FlowKey, tuple[Subflow, int]] = {}
        self.subflows: list[Subflow] = []
        self.space = space
        self.cut_syns: set[int] = set()  #: subflows whose SYN or SYN/ACK had its options cut

    def subflow_of(self, number: int, pkt: Packet, key: FlowKey) -> tuple[Subflow, int]:
        """The subflow of ``pkt`` (frame ``number``, flow ``key``) and its direction on it: made when new."""
        hit = self.flows.get(key)
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
            sf = Subflow(len(self.subflows), (pkt.dst, pkt.dport), (pkt.src, pkt.sport), number)
            d = 1
        else:
            sf = Subflow(len(self.subflows), (pkt.src, pkt.sport), (pkt.dst, pkt.dport), number)
            d = 0
        self.subflows.append(sf)
        self.flows[key] = (sf, d)
        self.flows[(key[2], key[3], key[0], key[1], key[4])] = (sf, 1 - d)
        return sf, d

    def closed(self, sf: Subflow) -> None:
        """``sf`` was reset, or both its FINs acknowledged."""
        if sf.closed:
            return
        sf.closed = True
        conn = sf.conn
        if conn is not None and all(s.closed for s in conn.subflows):
            for side in ("client", "server"):
                conn.closure.notify(side, "ALL_SUBFLOWS_CLOSED")
            self.space.forget(conn)


@dataclass(frozen=True, slots=True)
class HotParts:
    """What a compiled hot path needs of an :class:`Analyzer` to take a common segment itself, on
    the analyzer's own objects: the subflows by flow, the option areas, the packet context and the
    data-level parts whose rare branches it calls."""

    flows: dict[FlowKey, tuple[Subflow, int]]
    areas: OptionAreas
    ctx: PacketContext
    reader: DssReader
    mappings: Mappings
    space: SequenceSpace
    table: SubflowTable


class Analyzer:
    """Feed packets in capture order; get a :class:`~mptcpspec.analysis.model.PacketInfo` for each."""

    __slots__ = (
        "reinjected_in",
        "counts",
        "experts",
        "_next_stream",
        "_conns",
        "_ctx",
        "_table",
        "_links",
        "_handshakes",
        "_parts",
        "_areas",
        "_reader",
        "_mappings",
        "_flows",
        "_kept",
        "clock",
        "tcp",
    )

    def __init__(self, *, verify: bool = True, reinjected_in: dict[int, tuple[int, ...]] | None = None) -> None:
        """``verify``: check HMACs and checksums.  ``reinjected_in``: frame -> the later frames that
        reinjected its data, from a first pass (``mptcpspec.dissect.pipeline.reinjections``); it fills
        :attr:`PacketInfo.reinjected_in`."""
        self.reinjected_in = reinjected_in or None  #: as given; may be set before the first packet
        self.counts: Counter[str] = Counter()  #: frames: "TCP", "not TCP", "malformed"
        self.experts: Counter[str] = Counter()  #: expert key -> count, over every packet
        self._next_stream = 0
        self._conns: list[Connection] = []
        self._ctx = ctx = PacketContext(verify)
        space = SequenceSpace(ctx, self._conns)
        mappings = Mappings(ctx, space)
        self._table = table = SubflowTable(space)
        self._links = links = Links(ctx, self._conns)
        self._handshakes = Handshakes(ctx, links, mappings)
        self._areas = areas = OptionAreas()
        self._reader = DssReader(ctx, space, mappings)
        self._parts = (self._reader, self._handshakes, Addresses(ctx))  # each option to its part: _follow
        self._mappings = mappings
        self.clock = FrameClock()  #: the frames' times; a display stage tells it the frames it shows
        # The hot path's dictionaries, one lookup away (methods are called on their objects: a
        # bound method kept in an attribute is looked up the slow way on each call).
        self._flows = table.flows
        self._kept = areas.kept
        self.tcp = TcpAnalyzer()  #: the subflow TCP analysis (``tcp.enabled = False``: PacketInfo.tcp None)

    @property
    def verify(self) -> bool:
        """HMACs and checksums are checked."""
        return self._ctx.verify

    def connections(self) -> list[Connection]:
        return list(self._conns)

    def skip_stream(self) -> int:
        """Take the next ``mptcp.stream`` number without numbering a connection with it, and return
        it: the connection that number is of is another reader's (``dissect -j``: a worker skips the
        connections of the other shares, so that its own take the numbers one process gives them)."""
        number = self._next_stream
        self._next_stream = number + 1
        return number

    def hot_parts(self) -> HotParts:
        """The parts a compiled hot path drives itself (``mptcpspec.dissect.native``)."""
        return HotParts(
            self._flows, self._areas, self._ctx, self._reader, self._mappings, self._table.space, self._table
        )

    def subflows(self) -> list[Subflow]:
        return list(self._table.subflows)

    def feed(
        self,
        number: int,
        timestamp_ns: int,
        caplen: int,
        orig_len: int,
        pkt: Packet | None,
        error: DecodeError | None = None,
        ip: tuple[int, IPAddress, IPAddress] | None = None,
        layers: tuple[Layer, ...] = (),
    ) -> PacketInfo:
        """Frame ``number``: ``pkt`` its TCP segment, or None with the ``error`` that stopped its
        decoding, or for a frame without TCP (``ip``: its IP version and addresses, if IP;
        ``layers``: its headers)."""
        if pkt is None:
            if error is not None:
                self.counts["malformed"] += 1
                ex = (expert("mptcp.packet.malformed", str(error)),)
                self.experts["mptcp.packet.malformed"] += 1
                return self.clock.info(number, timestamp_ns, caplen, orig_len, error=error, experts=ex)
            self.counts["not TCP"] += 1
            return self.clock.info(number, timestamp_ns, caplen, orig_len, ip=ip, layers=layers)
        self.counts["TCP"] += 1
        return self.feed_tcp(number, timestamp_ns, caplen, orig_len, pkt)

    def feed_tcp(self, number: int, ts: int, caplen: int, orig_len: int, pkt: Packet) -> PacketInfo:
        """:meth:`feed` for a frame with a TCP segment, without counting it in :attr:`counts` (the
        caller does: ``counts["TCP"] += 1``).  The dissector's hot path."""
        # Kept to plain locals, with the common case (a segment of a known subflow whose only
        # MPTCP option is a DSS) first.
        t_first, t_prev, t_shown = self.clock.tick(ts)
        flags = int(pkt.flags)
        # the addresses as the ints ipaddress keeps (a hash without a call)
        key = (pkt.src._ip, pkt.sport, pkt.dst._ip, pkt.dport, pkt.version)  # type: ignore[union-attr]
        hit = self._flows.get(key)
        if hit is None or flags & _SYN:
            hit = self._table.subflow_of(number, pkt, key)
        sf, d = hit
        dirs = sf.dirs
        if d:
            me, peer = dirs[1], dirs[0]
        else:
            me, peer = dirs
        seq = pkt.seq
        n = pkt.payload_len
        isn = me.isn
        if flags & _SYN:
            if isn is None or not sf.syn_seen or d == 1:
                isn = me.isn = seq
                me.syn_data = n
            if d == 0:
                sf.syn_seen = True
            elif flags & _ACK and peer.syn_data and peer.isn is not None:
                # TCP Fast Open: the SYN/ACK acknowledges the SYN's data when the server took it
                peer.syn_taken = pkt.ack == (peer.isn + 1 + peer.syn_data) & M32
        elif isn is None:
            isn = me.isn = (seq - 1) & M32  # no SYN seen: relative numbers start at 1, as Wireshark's do
        tcp_seq = (seq - isn) & M32
        if flags & _ACK:
            pack = pkt.ack
            pisn = peer.isn
            if pisn is None:
                pisn = peer.isn = (pack - 1) & M32  # the peer's SYN not seen: acks start at 1, as Wireshark's
            tcp_ack = (pack - pisn) & M32
            if peer.fin is not None and not peer.fin_acked and pack == (peer.fin + 1) & M32:
                peer.fin_acked = True
        else:
            tcp_ack = pkt.ack  # without ACK, Wireshark shows the field as it is
        if n:
            me.data += n
        if flags & _FIN and me.fin is None:
            me.fin = (seq + n) & M32
        conn = sf.conn
        raw = pkt.options
        cut = pkt.options_cut
        found: Found
        if raw and not cut:
            # One DSS after NOP, NOP, timestamps: kept by OptionAreas, found without a call.
            if raw[:4] == _NOP_NOP_TS and (kept := self._kept.get(raw[12:])) is not None:
                found, one_dss, big = kept, True, False  # a kept area: one DSS, in at most 40 octets
            else:
                found = self._areas.decode(raw, conn.version if conn is not None else None)
                one_dss = len(found) == 1 and type(found[0]) is Dss
                big = len(raw) > OPTION_SPACE
        elif cut:  # the snapshot length cut the options area: the options captured whole
            found = _cut_area(pkt, conn, sf, flags, self._table.cut_syns)
            one_dss = len(found) == 1 and type(found[0]) is Dss
            big = False
        elif conn is None:
            later = self.reinjected_in
            return _info(
                number, ts, caplen, orig_len, pkt, (), None, sf.index, tcp_seq, tcp_ack, None, None, None, (),
                None, None, None, (), (), (), sf, None, None, False, later.get(number, ()) if later else (), (),
                t_first, t_prev, t_shown, self.tcp.feed(number, ts, pkt, sf.index, d, None, (), sf.retransmissions),
                None,
            )  # fmt: skip
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
        mptcp: Sequence[MptcpOption | MalformedOption | CutOption] = found
        if big:
            ctx.expert("mptcp.option.space", f"options area of {len(raw)} octets exceeds 40")
        if cut:
            ctx.expert(
                "mptcp.packet.options_cut",
                f"the snapshot length cut the TCP options after {len(raw)} octets: what follows is not seen",
            )
        dss: tuple[DssInfo, ...] = ()
        if found:
            if one_dss:
                dss = (self._reader.dss(found[0], sf, d, number),)  # type: ignore[arg-type]  # one_dss: a Dss
            else:
                part = None
                if any(type(o) is MalformedOption or type(o) is CutOption for o in found):
                    mptcp, part = _followed(ctx, found, sf, flags)
                dss = _follow(ctx, self._parts, sf, d, number, mptcp)
                if part is not None:  # a cut DSS: its checksum unknown, the reader is told
                    dss += (self._reader.dss(part, sf, d, number, cut=True),)
            conn = sf.conn
            if conn is None and mptcp and not (flags & _SYN and not flags & _ACK and type(mptcp[0]) is MpCapable):
                conn = self._links.unlinked(sf, number)
                _unjudged_gaps(sf, self._table, self._conns)
        if cut and _may_hide_mapping(found):
            _mapping_hidden(sf, d, (seq - isn - me.syn_data) & M32)
        payload_dsn = payload_dsn64 = mapping_frame = None
        from_client: bool | None
        master: bool | None
        stream: int | None
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
            obs = sf.observer
            if cut and type(obs) is Observer:  # its options not all seen: the handshake cannot be followed
                sf.observer = None
            # out of the handshake's order (see Handshakes.handshake): a RST there closes nothing
            stray = type(obs) is Observer and not cut and self._handshakes.handshake(obs, mptcp)
            if n:
                if not conn.fallback and not conn.unlinked:
                    got = self._mappings.data(sf, d, conn, flags, seq, n, number)
                    if got is not None:
                        payload_dsn, payload_dsn64, mapping_frame = got
            elif not flags & _SYN and me.mappings and (rel := (seq - isn - me.syn_data) & M32) < me.map_hi:
                # No payload: the DSN this sequence number maps to, when a mapping covers it; a
                # mapping with DATA_FIN covers one more (its data-level length counts the DATA_FIN).
                for m in reversed(me.mappings):
                    if m.ssn <= rel < m.ssn + m.data_level_length:
                        payload_dsn64 = (m.dsn64 + rel - m.ssn) & M64
                        idsn = conn.sides[sf.side(d)].idsn
                        payload_dsn = None if idsn is None else (payload_dsn64 - idsn) & M64
                        break
            if flags & _RST and not stray:
                sf.reset = True
                if not any(type(o) is MpFastclose for o in mptcp):
                    ctx.closure(conn, "RST")
                self._table.closed(sf)
            elif dirs[0].fin_acked and dirs[1].fin_acked and not sf.closed:
                self._table.closed(sf)
            from_client = (d == 0) == sf.to_client_side
            master = conn.master_sf is sf
            stream = conn.stream
        else:
            from_client = master = None
            stream = None
            if flags & _RST:
                sf.reset = True
        if experts:
            for e in experts:
                self.experts[e.key] += 1
                if conn is not None:
                    conn.experts[e.key] += 1
            shown = tuple(experts)
        else:
            shown = ()
        later = self.reinjected_in
        return _info(
            number, ts, caplen, orig_len, pkt, found, None, sf.index, tcp_seq, tcp_ack, stream, from_client,
            master, dss, payload_dsn, payload_dsn64, mapping_frame, tuple(reinj) if reinj else (),
            tuple(checks) if checks else (), shown, sf, conn, None,
            stream is not None and bool(found) and (mptcp is found if not cut else not stops_at_cut(pkt, found)),
            later.get(number, ()) if later else (), (),
            t_first, t_prev, t_shown, self.tcp.feed(number, ts, pkt, sf.index, d, conn, found, sf.retransmissions),
            None,
        )  # fmt: skip


def _follow(
    ctx: PacketContext,
    parts: tuple[DssReader, Handshakes, Addresses],
    sf: Subflow,
    d: int,
    number: int,
    mptcp: Sequence[MptcpOption | MalformedOption | CutOption],
) -> tuple[DssInfo, ...]:
    """Each MPTCP option of the packet to the part of the analysis that follows it; the DSS
    options read."""
    reader, handshakes, addresses = parts
    dss = []
    for o in mptcp:
        if isinstance(o, Dss):
            dss.append(reader.dss(o, sf, d, number))
        elif isinstance(o, MpCapable):
            handshakes.mp_capable(o)
        elif isinstance(o, MpJoinSyn | MpJoinSynAck | MpJoinAck):
            handshakes.mp_join(o)
        elif isinstance(o, AddAddr | AddAddrV0):
            addresses.add_addr(o)
        elif isinstance(o, RemoveAddr):
            addresses.remove_addr(o)
        elif isinstance(o, MpPrio):
            addresses.mp_prio(o)
        elif isinstance(o, MpFastclose):
            handshakes.fastclose(o)
        elif isinstance(o, MpTcpRst):
            sf.tcprst = o
            ctx.expert(
                "mptcp.tcprst",
                f"subflow reset, reason {getattr(o.reason, 'name', o.reason)}"
                + (" (transient)" if o.transient else ""),
            )
    return tuple(dss)
