"""The analysis's model: what it knows of packets, subflows and connections.

Results are frozen slotted dataclasses: :class:`PacketInfo` (one per frame), :class:`DssInfo`,
:class:`ConnectionSummary` and :class:`SubflowSummary`.  The state the analysis keeps while packets
come is slotted and mutable: :class:`Mapping`, :class:`Direction` (one direction of a subflow),
:class:`Subflow`, :class:`Side` (one side of a connection) and :class:`Connection`.  Only data
here, and what follows from it alone; the other modules of the wing update it.
"""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address, IPv6Address
from typing import TypeAlias

from mptcpspec.analysis.expert import Expert
from mptcpspec.analysis.tcpanalysis import TcpAnalysis
from mptcpspec.capture.packets import Layer, Packet
from mptcpspec.codec.crypto import Check
from mptcpspec.codec.generated.closure import ClosureMachine
from mptcpspec.codec.options import (
    CutOption,
    Dss,
    MalformedOption,
    MpCapableFlags,
    MpExperimental,
    MptcpOption,
    MpTcpRst,
    MptcpUnknown,
    TcpOptions,
    decode_tcp_options,
)
from mptcpspec.errors import DecodeError
from mptcpspec.fsm.observer import Observer
from mptcpspec.records import dataclass

__all__ = [
    "CLIENT",
    "SERVER",
    "SIDE_NAMES",
    "NO_HOLE",
    "IPAddress",
    "Endpoint",
    "Found",
    "DssMemo",
    "DssInfo",
    "PacketInfo",
    "PairFrame",
    "stops_at_cut",
    "Mapping",
    "Address",
    "Direction",
    "FinishedHandshake",
    "Subflow",
    "Side",
    "Connection",
    "SubflowSummary",
    "ConnectionSummary",
]

CLIENT, SERVER = 0, 1  #: the connection's sides: the client sent the first SYN
SIDE_NAMES = ("client", "server")
NO_HOLE = 1 << 65  #: above every DSN: :attr:`Side.hole_lo` when the side has no hole

IPAddress: TypeAlias = IPv4Address | IPv6Address
Endpoint: TypeAlias = tuple[IPAddress, int]  #: (address, port)
#: the MPTCP options of a segment, in wire order (a ``CutOption`` last where the snapshot length cut one)
Found: TypeAlias = tuple[MptcpOption | MalformedOption | CutOption, ...]


@dataclass(frozen=True, slots=True)
class DssInfo:
    """The data-level numbers of one DSS option, as 64-bit values and relative to the IDSNs.

    ``dsn``/``ack`` are None when the IDSN they are relative to is unknown (keys not seen)."""

    dsn64: int | None = None  #: mapping's DSN, expanded to 64 bits (Wireshark's mptcp.rawdsn64)
    dsn: int | None = None  #: relative to the sender's IDSN (mptcp.dsn)
    ack64: int | None = None  #: DATA_ACK expanded to 64 bits
    ack: int | None = None  #: relative to the receiver's IDSN... of the data it acknowledges (mptcp.ack)


# Of an MPTCP option cut by the snapshot length, the fields Wireshark 4.0 does not read: a cut in
# them leaves its dissection whole (the DSS checksum it never shows; what follows an unknown subtype).
_UNREAD: dict[type, frozenset[str]] = {
    Dss: frozenset({"checksum"}),
    MpExperimental: frozenset({"bits", "payload"}),
    MptcpUnknown: frozenset({"subtype", "bits", "payload"}),
}


def stops_at_cut(pkt: Packet, found: Found) -> bool:
    """Whether Wireshark 4.0's dissection of ``pkt``, whose options area the snapshot length cut and
    whose MPTCP options are ``found``, reads past the cut (and so stops there): always, but where
    the cut fell inside an MPTCP option that ends the area, in fields of it Wireshark does not read."""
    last = found[-1] if found else None
    return not (
        isinstance(last, CutOption)
        and last.option_class is not None
        and last.length is not None
        and last.offset + last.length == pkt.hdr_len - 20
        and set(last.cut_fields) <= _UNREAD.get(last.option_class, frozenset())
        and not any(type(o) is MalformedOption for o in found)
    )


@dataclass(frozen=True, slots=True)
class PairFrame:
    """What the capture taken at the other end of the connection says about a frame
    (``mptcpspec pair``, ``dissect --pair-with``): the ``mptcp.pair.*`` fields."""

    peer_frame: int | None = None  #: the same segment's frame in the other capture
    owd_ns: int | None = None  #: one-way delay, the clocks' offset taken out
    lost: bool = False  #: sent here, never received there (while the other capture ran)
    injected: bool = False  #: received here, never sent by the other end: made on the way
    reinjection_useful: bool | None = None  #: a reinjection: its data arrived first by it
    ooo_delay_ns: int | None = None  #: received here: time its data waited out of order at the data level
    changes: tuple[str, ...] = ()  #: what was changed on the way (``mss``, ``sport``, ``option 4 removed``...)


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """Everything the dissector knows about one captured frame."""

    number: int  #: frame number, from 1
    timestamp_ns: int
    caplen: int
    orig_len: int
    packet: Packet | None = None  #: None for a frame without TCP (or undecodable: see ``error``)
    mptcp: Found = ()  #: the MPTCP options, decoded, in wire order (a ``MalformedOption`` where one is bad)
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
    ip: tuple[int, IPAddress, IPAddress] | None = None  #: (version, source, destination) of an IP frame without TCP
    #: Wireshark shows its MPTCP analysis here: an MPTCP option (none malformed) of a numbered connection
    mptcp_shown: bool = False
    #: later frames that carried this data again on another subflow (Wireshark's mptcp.reinjected_in):
    #: known only to a second pass (``Dissection(..., two_pass=True)``, ``dissect -2``)
    reinjected_in: tuple[int, ...] = ()
    #: every header of a frame without TCP, outermost first: VLAN tags, tunnels, IP and UDP headers
    #: (:func:`~mptcpspec.capture.encap.frame_layers`)
    layers: tuple[Layer, ...] = ()
    #: the capture time of the first frame (Wireshark's reference for frame.time_relative)
    first_ns: int = 0
    prev_ns: int = 0  #: the capture time of the frame before (this frame's own for the first)
    #: the capture time of the last frame displayed before this one (one that passed the display
    #: filter; this frame's own when none has)
    prev_shown_ns: int = 0
    #: the subflow-level TCP analysis of a TCP segment, as Wireshark's ``tcp.analysis``; None without TCP
    tcp: TcpAnalysis | None = None
    #: what the capture at the other end says of this frame; None outside ``mptcpspec pair``
    pair: PairFrame | None = None

    @property
    def cut_short(self) -> bool:
        """Wireshark 4.0's dissection of this packet stopped at the snapshot length (its mark
        ``_ws.short``): it then shows no TCP nor MPTCP analysis of it (:func:`stops_at_cut`)."""
        p = self.packet
        return p is not None and p.options_cut and stops_at_cut(p, self.mptcp)

    @property
    def options(self) -> TcpOptions | None:
        """The whole TCP options area, decoded (computed on each call)."""
        p = self.packet
        if p is None or not p.options:
            return None
        c = self.connection
        return decode_tcp_options(p.options, c.version if c is not None else None, strict=False)


@dataclass(slots=True, eq=False)
class Mapping:
    """One DSS mapping of a subflow direction: subflow octets [ssn, end) carry data from ``dsn64``.

    Mutable: a segment that repeats the mapping makes it its ``frame``, and a checksum pending over
    segments gathers their payload in ``buffer``."""

    ssn: int  #: first subflow octet, relative to the direction's ISN (and its SYN's data)
    end: int  #: subflow octet after the last (a DATA_FIN's octet not counted)
    dsn64: int  #: data sequence number of ``ssn``, 64 bits
    frame: int  #: the latest frame that carried this mapping (Wireshark's mptcp.related_mapping)
    checksum: int | None  #: the DSS checksum still to verify (None: none, or verified already)
    buffer: bytearray | None  #: the mapping's payload gathered so far, while its checksum waits for it
    data_level_length: int  #: as sent: a DATA_FIN counts one octet (the checksum's pseudo-header has it)


#: What :class:`~mptcpspec.analysis.datalevel.DssReader` keeps of a direction's latest DSS for the
#: segments that repeat it: (option, info, connection, its DATA_ACK when of 32 bits, peer's IDSN,
#: own IDSN, mapping repeated, own side, peer side, direction, the subflow's ``to_client_side``).
DssMemo: TypeAlias = tuple[
    Dss, DssInfo, "Connection", int | None, int | None, int | None, Mapping | None, "Side", "Side", "Direction", bool
]


@dataclass(slots=True, eq=False)
class Address:
    """An address a side announced (ADD_ADDR), and when it was removed (REMOVE_ADDR)."""

    address: IPAddress
    port: int | None
    added: int  #: frame of the ADD_ADDR
    removed: int | None = None  #: frame of the REMOVE_ADDR


class Direction:
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
        "hidden",
    )

    def __init__(self) -> None:
        self.isn: int | None = None
        # Payload of our SYN (TCP Fast Open). Linux keeps it outside the MPTCP data sequence space
        # and counts subflow sequence numbers of mappings from the octet after it (the kernel's
        # net/mptcp/fastopen.c: "ssn_offset += skb->len"); a capture shows the same.
        self.syn_data = 0
        self.syn_taken = False  # the peer's SYN/ACK acknowledged syn_data
        self.mappings: list[Mapping] = []  # the latest, in the order made
        # Upper bounds of the subflow and data-level ends of every mapping made: octets at or
        # above them overlap none of ``mappings`` (the scans for overlaps are skipped).
        self.ssn_hi = 0
        self.dsn_hi = 0
        # The latest DSS of this direction and what it gave, for the segments that repeat it.
        self.memo: DssMemo | None = None
        self.map_hi = 0  # above every mapping's start + data-level length (a DATA_FIN's octet counted)
        self.last: Mapping | None = None  # the mapping found last (the next segment's, most often)
        self.fin: int | None = None  # sequence number of our FIN
        self.fin_acked = False
        self.seen_dss = False
        self.data = 0  # payload octets sent
        # relative sequence number of the latest segment whose mapping the snapshot length may have
        # cut off: the 64 KiB of data from there may be that mapping's (none is missing there)
        self.hidden: int | None = None


class FinishedHandshake:
    """A finished handshake machine: its states frozen, nothing more fed."""

    __slots__ = ("initiator", "listener")

    def __init__(self, obs: Observer) -> None:
        self.initiator, self.listener = obs.state("A"), obs.state("B")

    def state(self, endpoint: str) -> str:
        return self.initiator if endpoint == "A" else self.listener


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
        "retransmissions",
    )

    def __init__(self, index: int, client: Endpoint, server: Endpoint, first_frame: int) -> None:
        self.index = index
        self.client = client  # (address, port) of the subflow's initiator (the SYN's sender)
        self.server = server
        self.dirs = (Direction(), Direction())  # 0: from the initiator
        self.conn: Connection | None = None
        self.to_client_side = True  # the initiator is the connection's client
        self.kind: str | None = None  # "MP_CAPABLE" or "MP_JOIN"
        self.observer: Observer | FinishedHandshake | None = None  # the handshake machine
        self.address_ids: list[int | None] = [None, None]
        self.backup = [False, False]
        self.nonces: list[int | None] = [None, None]
        self.closed = False
        self.reset = False
        self.syn_seen = False
        self.tcprst: MpTcpRst | None = None
        self.first_frame = first_frame
        #: segments the TCP analysis found retransmitted (any kind: Wireshark's
        #: tcp.analysis.retransmission), from the initiator, from the listener
        self.retransmissions = [0, 0]

    @property
    def state(self) -> str | None:
        """The handshake machine's state of the initiator (``A``) and listener (``B``)."""
        if self.observer is None:
            return None
        return f"A={self.observer.state('A')} B={self.observer.state('B')}"

    def side(self, d: int) -> int:
        """The connection side (CLIENT or SERVER) that sends in subflow direction ``d``."""
        return d if self.to_client_side else 1 - d


class Side:
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
        self.addresses: dict[int, Address] = {}  # by address id
        self.checked_first = False
        # Data-level holes: DSN ranges between the segments captured that no captured segment
        # carried (yet), [start, end) in order; hole_lo is the first start (NO_HOLE: none).
        self.seg_low: int | None = None
        self.seg_high: int | None = None
        self.holes: list[list[int]] = []
        self.hole_lo = NO_HOLE
        self.blind = False  # some data of this side lies at DSNs the capture does not show: no gap is judged

    def span(self) -> int:
        """Data-level octets this side sent: the span of its mapped data sequence space."""
        if self.first_dsn is None or self.high is None:
            return 0
        return self.high - self.first_dsn


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
        "established",
    )

    def __init__(self, stream: int | None, version: int | None, first_frame: int) -> None:
        # Numbered (``mptcp.stream``) when first shown: a v1 SYN, whose MP_CAPABLE has no key, is
        # not shown as MPTCP yet, as in Wireshark; the SYN/ACK is.
        self.stream = stream
        self.version = version
        self.master_sf: Subflow | None = None  # subflow of the latest MP_CAPABLE with a key
        self.unlinked = False  # made from a subflow whose handshake the capture missed
        # The MP_CAPABLE handshake is over (its third ACK, a join, or met after it): the closure
        # machine starts there, in M_ESTAB ("connection established", RFC 8684 Appendix D).
        self.established = False
        self.sides = (Side(), Side())
        self.subflows: list[Subflow] = []
        self.checksum = False
        self.fallback: str | None = None
        self.closure = Observer(ClosureMachine, SIDE_NAMES)
        self.checks: Counter[tuple[str, str]] = Counter()  # (what, verdict name) -> count
        self.experts: Counter[str] = Counter()  # key -> count
        self.history: list[tuple[int, str]] = []  # (frame, event) for address management
        self.first_frame = first_frame
        self.last_frame = first_frame

    @property
    def client_key(self) -> int | None:
        return self.sides[CLIENT].key

    @property
    def server_key(self) -> int | None:
        return self.sides[SERVER].key

    def syn_data(self, side: int) -> int:
        """Octets of TCP Fast Open data that ``side`` sent on an MP_CAPABLE SYN and the peer took:
        data-level octets that precede every mapping (RFC 8684 §3.1)."""
        return sum(
            sf.dirs[d].syn_data
            for sf in self.subflows
            if sf.kind == "MP_CAPABLE"
            for d in (0, 1)
            if sf.dirs[d].syn_taken and sf.side(d) == side
        )

    def closure_state(self, side: int) -> str | None:
        """The closure machine's state of ``side``; None before the connection is established."""
        return self.closure.state(SIDE_NAMES[side]) if self.established else None

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
            subflows=tuple(SubflowSummary.of(sf) for sf in self.subflows),
            client_bytes=c.span() + self.syn_data(CLIENT),
            server_bytes=s.span() + self.syn_data(SERVER),
            client_reinjected=c.reinjected,
            server_reinjected=s.reinjected,
            client_state=self.closure_state(CLIENT),
            server_state=self.closure_state(SERVER),
            checks=tuple(sorted((what, verdict, n) for (what, verdict), n in self.checks.items())),
            experts=tuple(sorted(self.experts.items())),
            addresses=tuple(
                (SIDE_NAMES[i], aid, str(a.address), a.port, a.added, a.removed)
                for i, side in enumerate(self.sides)
                for aid, a in sorted(side.addresses.items())
            ),
            history=tuple(self.history),
            unlinked=self.unlinked,
            first_frame=self.first_frame,
            last_frame=self.last_frame,
        )


def _ep(ep: Endpoint) -> str:
    addr, port = ep
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


@dataclass(frozen=True, slots=True)
class SubflowSummary:
    tcp_stream: int
    kind: str | None  #: "MP_CAPABLE" or "MP_JOIN"
    initiator: str
    listener: str
    address_ids: tuple[int | None, int | None]
    backup: tuple[bool, bool]
    state: str | None
    closed: bool
    reset: bool
    tcprst_reason: str | None
    bytes: tuple[int, int]  #: payload octets from the initiator, from the listener
    #: segments retransmitted on this subflow (TCP level: Wireshark's tcp.analysis.retransmission), from
    #: the initiator, from the listener; data sent again on another subflow is a reinjection, counted by
    #: the connection
    retransmissions: tuple[int, int] = (0, 0)

    @classmethod
    def of(cls, sf: Subflow) -> SubflowSummary:
        r = sf.tcprst
        return cls(
            sf.index,
            sf.kind,
            _ep(sf.client),
            _ep(sf.server),
            (sf.address_ids[0], sf.address_ids[1]),
            (sf.backup[0], sf.backup[1]),
            sf.state,
            sf.closed,
            sf.reset,
            (getattr(r.reason, "name", str(r.reason)) if r is not None else None),
            (sf.dirs[0].data, sf.dirs[1].data),
            (sf.retransmissions[0], sf.retransmissions[1]),
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
    client_state: str | None  #: closure machine state (None: the connection was never established)
    server_state: str | None
    checks: tuple[tuple[str, str, int], ...]  #: (what, verdict, count)
    experts: tuple[tuple[str, int], ...]  #: (key, count)
    #: (side, address id, address, port, frame added, frame removed)
    addresses: tuple[tuple[str, int, str, int | None, int, int | None], ...]
    history: tuple[tuple[int, str], ...]  #: (frame, event): ADD_ADDR, REMOVE_ADDR, MP_PRIO as they happened
    unlinked: bool  #: the capture missed the handshake: keys unknown, nothing linked by token
    first_frame: int
    last_frame: int
