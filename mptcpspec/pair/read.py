"""One capture of a pair, read once into what matching needs: its subflows (the analysis' own
objects), their handshakes, and each TCP segment as a small record."""

from __future__ import annotations

from mptcpspec.analysis.model import Connection, PacketInfo, Subflow
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.capture.pcap import CaptureError
from mptcpspec.codec.options import MpCapable, MpJoinSyn
from mptcpspec.dissect.outcome import ReadOutcome, outcome
from mptcpspec.dissect.pipeline import Dissection, Source

__all__ = ["Seg", "SideView", "SubflowView", "read_side"]

_SYN, _FIN, _RST = int(TcpFlags.SYN), int(TcpFlags.FIN), int(TcpFlags.RST)


class Seg:
    """One TCP segment of a capture, as matching sees it."""

    __slots__ = (
        "frame",
        "t",
        "d",
        "seq",
        "ack",
        "flags",
        "plen",
        "ip_id",
        "ttl",
        "csum",
        "opts",
        "dsn",
        "reinj",
        "peer",
    )

    def __init__(self, info: PacketInfo, d: int) -> None:
        p = info.packet
        assert p is not None
        self.frame = info.number
        self.t = info.timestamp_ns
        self.d = d  # 0: from the subflow's initiator
        self.seq = info.tcp_seq if info.tcp_seq is not None else p.seq  # relative to the direction's ISN
        self.ack = info.tcp_ack if info.tcp_ack is not None else p.ack
        self.flags = int(p.flags)
        self.plen = p.payload_len
        self.ip_id = p.ip_id if p.version == 4 else None
        self.ttl = p.ttl
        self.csum = p.checksum
        self.opts = p.options
        self.dsn = info.payload_dsn64 if p.payload_len else None  # raw 64-bit DSN of the first octet
        self.reinj = info.reinjection_of  # frames that carried this data first, on another subflow
        self.peer: Seg | None = None  # the same segment in the other capture, once matched

    @property
    def end(self) -> int:
        """Relative sequence number after the segment's payload."""
        return self.seq + self.plen

    def key(self, with_id: bool) -> tuple[int | None, ...]:
        """What a copy of this segment keeps across a network that does not change it: its place
        in the sequence space, its length and SYN/FIN/RST, and (``with_id``) its IPv4
        identification or, for IPv6, its acknowledgement."""
        base = (self.seq, self.plen, self.flags & (_SYN | _FIN | _RST))
        if not with_id:
            return base
        return (*base, self.ip_id if self.ip_id is not None else self.ack)


class SubflowView:
    """One TCP stream of a capture: the analysis' subflow, its segments by direction, and what its
    handshake said."""

    __slots__ = ("sf", "segs", "join", "syn", "synack", "mptcp_syn")

    def __init__(self, sf: Subflow) -> None:
        self.sf = sf
        self.segs: tuple[list[Seg], list[Seg]] = ([], [])  # by direction, in capture order
        self.join: tuple[int, int] | None = None  # MP_JOIN SYN: (token, nonce)
        self.syn: Seg | None = None  # the first SYN, and the first SYN/ACK
        self.synack: Seg | None = None
        self.mptcp_syn = False  # the SYN carried MP_CAPABLE or MP_JOIN

    @property
    def stream(self) -> int:
        return self.sf.index

    @property
    def conn(self) -> Connection | None:
        return self.sf.conn


class SideView:
    """A whole capture, read."""

    __slots__ = ("name", "frames", "first_ns", "last_ns", "subflows", "mptcp_frames", "heads", "outcome")

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.subflows: dict[int, SubflowView] = {}  # by tcp.stream
        self.mptcp_frames = 0  # frames with an MPTCP option
        self.heads: list[tuple[int, bytes]] = []  # (time, octets) of the first frames: a capture given twice
        self.outcome: ReadOutcome | None = None  # how the read ended: damage, problems

    def connections(self) -> list[Connection]:
        """The MPTCP connections of the capture, in order of their first frame."""
        seen: dict[int, Connection] = {}
        for v in self.subflows.values():
            c = v.conn
            if c is not None:
                seen.setdefault(id(c), c)
        return sorted(seen.values(), key=lambda c: c.first_frame)


def read_side(source: Source, name: str) -> SideView:
    """Read a capture (a path, a binary file, or frames) into a :class:`SideView`; a capture
    damaged after its first frame is read up to the damage (``outcome`` says where)."""
    view = SideView(name)
    d = Dissection(source, verify=False, tcp_analysis=False)
    damage = None
    try:
        _read(d, view)
    except CaptureError as e:
        damage = e
    view.frames = d.frames
    view.outcome = outcome(d.frames, 0, damage, d.problems, d.unsupported)
    return view


def _read(d: Dissection, view: SideView, heads: int = 64) -> None:
    subflows = view.subflows
    for info in d:
        if view.first_ns is None:
            view.first_ns = info.timestamp_ns
        view.last_ns = info.timestamp_ns
        if len(view.heads) < heads:
            view.heads.append((info.timestamp_ns, d.frame[2]))
        p, sf = info.packet, info.subflow
        if p is None or sf is None:
            continue
        v = subflows.get(sf.index)
        if v is None:
            v = subflows[sf.index] = SubflowView(sf)
        direction = 0 if (p.src, p.sport) == sf.client else 1
        s = Seg(info, direction)
        v.segs[direction].append(s)
        if info.mptcp:
            view.mptcp_frames += 1
        if s.flags & _SYN:
            if direction == 0 and v.syn is None:
                v.syn = s
                for o in info.mptcp:
                    if type(o) is MpJoinSyn:
                        v.join = (o.token, o.nonce)
                    if type(o) in (MpJoinSyn, MpCapable):
                        v.mptcp_syn = True
            elif direction == 1 and v.synack is None:
                v.synack = s
