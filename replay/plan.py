"""What to replay: the client side of one MPTCP connection of a capture, as the dissector sees it.

:func:`make_plan` runs the dissector over a capture and keeps, for MPTCP stream ``N``: the
subflows the client opened (the MP_CAPABLE one, then each MP_JOIN, with their captured addresses,
address IDs, backup flags and start times), and the client's data as the segments it sent, in
capture order, each with its data sequence number relative to the client's IDSN, so that the live
replay sends the same octets with the same sizes on the same subflows.  Retransmissions and
reinjections are dropped: the live connection makes its own.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from enum import Enum

from mptcpspec.analysis.model import PacketInfo
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec.options import (
    FastOpen,
    MpCapable,
    MpCapableFlags,
    MpFastclose,
    MpPrio,
    RemoveAddr,
    SackPermitted,
    Timestamps,
    WindowScale,
    decode_tcp_options,
)
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.errors import MptcpspecError

__all__ = [
    "PlanError",
    "PlannedSegment",
    "PlannedSignal",
    "PlannedSubflow",
    "ReplayPlan",
    "SubflowKind",
    "cover",
    "make_plan",
    "make_tcp_plan",
    "uncovered",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_SYN = int(TcpFlags.SYN)
_SYN_ACK = int(TcpFlags.SYN | TcpFlags.ACK)


class PlanError(MptcpspecError):
    """A capture (or a stream of it) that cannot be replayed, with the reason."""


class SubflowKind(Enum):
    """How a subflow was opened: the connection's first (MP_CAPABLE) or an added one (MP_JOIN)."""

    MP_CAPABLE = "MP_CAPABLE"
    MP_JOIN = "MP_JOIN"


@dataclass(frozen=True, slots=True)
class PlannedSubflow:
    index: int  #: order in the connection: 0 is the MP_CAPABLE subflow
    kind: SubflowKind
    client: tuple[Address, int]  #: captured client address and port
    server: tuple[Address, int]  #: captured server address and port
    address_id: int | None  #: the client's address ID (MP_JOIN SYN)
    backup: bool  #: the MP_JOIN SYN's backup flag
    time_ns: int  #: its SYN's capture time, relative to the connection's first SYN
    sack_permitted: bool = False  #: its SYN offered SACK (RFC 2018 §2)
    window_scale: bool = False  #: its SYN offered window scaling (RFC 7323 §2)
    timestamps: bool = False  #: its SYN offered timestamps (RFC 7323 §3)
    #: the server's SYN/ACK's capture time, relative to the connection's first SYN (None: not captured)
    answer_ns: int | None = None


@dataclass(frozen=True, slots=True)
class PlannedSegment:
    subflow: int  #: index of the subflow that carried it
    dsn: int  #: relative DSN of its first octet (1 is the first octet of the data stream)
    data: bytes  #: the captured payload (``cut`` octets missing at the end when snaplen cut it)
    cut: int
    time_ns: int  #: capture time, relative to the connection's first SYN


@dataclass(frozen=True, slots=True)
class PlannedSignal:
    """An MP_PRIO or REMOVE_ADDR the client sent, and where in its data it came."""

    subflow: int  #: index of the subflow it was sent on
    after: int  #: relative DSN the client had sent up to (exclusive) when it sent the option
    option: MpPrio | RemoveAddr
    time_ns: int


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    stream: int
    version: int
    checksum: bool  #: the client asked for DSS checksums (flag A of its MP_CAPABLE)
    client_key: int | None  #: the captured client key (kept unless a new one is asked for)
    subflows: tuple[PlannedSubflow, ...]
    segments: tuple[PlannedSegment, ...]
    data_len: int  #: client data-level octets
    server_data_len: int  #: what the server sent in the capture (for the report)
    data_fin: bool  #: the client closed with DATA_FIN in the capture
    fastclose: bool  #: the client ended the connection with MP_FASTCLOSE in the capture
    cut_octets: int  #: client octets the capture lacks (snaplen)
    signals: tuple[PlannedSignal, ...] = ()  #: in capture order
    #: TCP Fast Open data the client carried on its MP_CAPABLE SYN (RFC 8684 Appendix B), before
    #: the data-level stream (the kernel maps it below the IDSN); ``syn_cut`` octets of it are
    #: missing from the capture (snaplen).
    syn_data: bytes = b""
    syn_cut: int = 0
    tfo_cookie: bytes | None = None  #: the cookie of that SYN's Fast Open option
    #: replayed as plain TCP (no MPTCP option sent): a TCP connection of the capture, or a captured
    #: fallback connection (its SYN/ACK without MP_CAPABLE, RFC 8684 §3.7) without ``--try-mptcp``
    tcp: bool = False
    fallback: bool = False  #: the captured client offered MP_CAPABLE and the captured server did not take it


def uncovered(covered: list[list[int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of [start, end) that no range in ``covered`` (sorted, merged) covers: the new
    octets of a segment, its retransmitted or reinjected ones left out."""
    out = []
    pos = start
    for s, e in covered:
        if e <= pos:
            continue
        if s >= end:
            break
        if s > pos:
            out.append((pos, s))
        pos = max(pos, e)
        if pos >= end:
            break
    if pos < end:
        out.append((pos, end))
    return out


def cover(covered: list[list[int]], start: int, end: int) -> None:
    """Add [start, end) to ``covered``, kept sorted and merged."""
    covered.append([start, end])
    covered.sort()
    merged: list[list[int]] = []
    for s, e in covered:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    covered[:] = merged


def make_plan(path: str | os.PathLike[str], stream: int | None = None) -> ReplayPlan:
    """The replay plan of MPTCP stream ``stream`` (default: the first) of a capture."""
    d = Dissection(path, verify=False)
    infos = []
    chosen = None
    number = 0  # the chosen connection's stream number
    for info in d:
        c = info.connection
        if c is None:
            continue
        if chosen is None:
            if c.stream is None or (stream is not None and c.stream != stream):
                if c.stream is None:
                    infos.append(info)  # a v1 SYN before the connection is numbered
                continue
            chosen, number = c, c.stream
        if c is chosen:
            infos.append(info)
    conns = [c for c in d.connections() if c.stream is not None]
    if not conns:
        if stream is None:
            try:
                return make_tcp_plan(path, None, fallback=True)  # a captured fallback connection
            except PlanError:
                pass
        raise PlanError(f"{path}: no MPTCP connection in the capture (a TCP one is replayed with --tcp-stream)")
    if chosen is None:
        have = ", ".join(str(c.stream) for c in conns)
        raise PlanError(f"{path}: no MPTCP stream {stream} (stream{'s' if len(conns) > 1 else ''} {have})")
    conn = chosen
    infos = [i for i in infos if i.connection is conn]
    if conn.unlinked or conn.version != 1:
        raise PlanError(
            f"MPTCP stream {conn.stream}: "
            + (
                "its handshake is not in the capture"
                if conn.unlinked
                else f"MPTCP version {conn.version}: only version 1 (RFC 8684) is replayed"
            )
        )
    first = conn.subflows[0]
    if first.kind != "MP_CAPABLE" or not first.syn_seen:
        raise PlanError(f"MPTCP stream {conn.stream}: the MP_CAPABLE SYN is not in the capture")
    t0 = next(i.timestamp_ns for i in infos if i.subflow is first)
    order = {sf.index: k for k, sf in enumerate(conn.subflows)}
    subflows = []
    for k, sf in enumerate(conn.subflows):
        start = next((i.timestamp_ns for i in infos if i.subflow is sf), t0)
        from_client = sf.to_client_side  # the subflow's initiator is the connection's client
        if not from_client:
            continue  # a subflow the server opened: the live server opens its own
        syn = next(
            (
                i.packet
                for i in infos
                if i.subflow is sf and i.packet is not None and int(i.packet.flags) & _SYN_ACK == _SYN
            ),
            None,
        )
        syn_opts = decode_tcp_options(syn.options, strict=False).options if syn is not None else ()
        sack = any(type(o) is SackPermitted for o in syn_opts)
        scale = any(type(o) is WindowScale for o in syn_opts)
        stamps = any(type(o) is Timestamps for o in syn_opts)
        answer = next(
            (
                i.timestamp_ns - t0
                for i in infos
                if i.subflow is sf and i.packet is not None and int(i.packet.flags) & _SYN_ACK == _SYN_ACK
            ),
            None,
        )
        subflows.append(
            PlannedSubflow(
                k,
                SubflowKind(sf.kind or "MP_JOIN"),
                sf.client,
                sf.server,
                sf.address_ids[0],
                bool(sf.backup[0]),
                start - t0,
                sack,
                scale,
                stamps,
                answer,
            )
        )
    checksum = False
    for i in infos:
        for o in i.mptcp:
            if type(o) is MpCapable and i.from_client and o.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                checksum = True
    segments = []
    covered: list[list[int]] = []  # merged [start, end) data ranges already planned
    cut = 0
    server_high = 0
    signals = []
    syn_data, syn_cut, tfo_cookie = b"", 0, None
    syn_seq = syn_taken = None
    for i in infos:
        p = i.packet
        if (
            p is not None
            and not i.from_client
            and i.subflow is first
            and int(p.flags) & _SYN_ACK == _SYN_ACK
            and syn_seq is not None
            and syn_taken is None
        ):
            syn_taken = (p.ack - syn_seq - 1) & 0xFFFFFFFF  # SYN data octets the captured server took
        if p is not None and i.from_client and i.subflow is first and int(p.flags) & _SYN_ACK == _SYN and p.options:
            # The MP_CAPABLE SYN: its TCP Fast Open option (a cookie, or a request for one) and
            # data (RFC 8684 Appendix B) are replayed on the live SYN; data the live server does
            # not take goes after the handshake.
            tfo = next((o for o in decode_tcp_options(p.options, strict=False).options if type(o) is FastOpen), None)
            if tfo is not None:
                tfo_cookie = tfo.cookie
            syn_seq = p.seq
            if p.payload_len:
                syn_data, syn_cut = p.payload, p.payload_len - len(p.payload)
        on = order.get(i.subflow.index, 0) if i.subflow is not None else 0  # the subflow's index in the plan
        if p is not None and i.from_client:
            for o in i.mptcp:
                if type(o) is MpPrio or type(o) is RemoveAddr:
                    high = max((e for _, e in covered), default=1)
                    signals.append(PlannedSignal(on, high, o, i.timestamp_ns - t0))
        if p is None or not p.payload_len or i.payload_dsn is None:
            continue
        if not i.from_client:
            server_high = max(server_high, i.payload_dsn + p.payload_len - 1)
            continue
        if int(p.flags) & _SYN:
            continue  # TCP Fast Open data on the SYN: see above
        start, end = i.payload_dsn, i.payload_dsn + p.payload_len
        data = p.payload + bytes(p.payload_len - len(p.payload))  # zeros where snaplen cut it, for now
        for piece_start, piece_end in uncovered(covered, start, end):
            piece = data[piece_start - start : piece_end - start]
            captured = max(0, min(len(p.payload), piece_end - start) - (piece_start - start))
            missing = (piece_end - piece_start) - captured
            cut += missing
            segments.append(PlannedSegment(on, piece_start, piece[:captured], missing, i.timestamp_ns - t0))
            cover(covered, piece_start, piece_end)
    if syn_taken is not None and syn_taken < len(syn_data) + syn_cut:
        # The captured server did not take (all of) the SYN data: the client sent the rest again after
        # the handshake, in the data stream the segments above already hold.
        syn_data, syn_cut = syn_data[:syn_taken], max(0, min(syn_cut, syn_taken - len(syn_data)))
    cut += syn_cut
    high = max((e for _, e in covered), default=1)
    dfin = conn.sides[0].dfin is not None
    fastclose = any(type(o) is MpFastclose and i.from_client for i in infos for o in i.mptcp)
    return ReplayPlan(
        number,
        conn.version,
        checksum,
        conn.sides[0].key,
        tuple(subflows),
        tuple(segments),
        high - 1,
        server_high,
        dfin,
        fastclose,
        cut,
        tuple(signals),
        syn_data,
        syn_cut,
        tfo_cookie,
    )


def make_tcp_plan(path: str | os.PathLike[str], stream: int | None = None, *, fallback: bool = False) -> ReplayPlan:
    """The replay plan of TCP connection ``tcp.stream == stream`` of a capture, replayed as plain
    TCP: the client's data as the segments it sent (retransmissions dropped), numbered from 1 as
    data-level octets are.  ``stream`` None: the first connection whose SYN is in the capture
    (with ``fallback``, the first whose client offered MP_CAPABLE and whose SYN/ACK had none)."""
    d = Dissection(path, verify=False)
    infos: list[PacketInfo] = []
    chosen: int | None = None
    seen_tcp = False
    streams: set[int] = set()
    offered: dict[int, bool] = {}
    for info in d:
        p = info.packet
        if p is None or info.tcp_stream is None:
            continue
        seen_tcp = True
        streams.add(info.tcp_stream)
        if chosen is None:
            if stream is not None and info.tcp_stream != stream:
                continue
            flags = int(p.flags)
            if flags & _SYN_ACK != _SYN:
                if fallback and flags & _SYN_ACK == _SYN_ACK and offered.get(info.tcp_stream):
                    if not any(type(o) is MpCapable for o in info.mptcp):
                        chosen = info.tcp_stream
                        infos = [i for i in infos if i.tcp_stream == chosen]
                    else:
                        offered[info.tcp_stream] = False
                elif stream is not None:
                    raise PlanError(f"TCP stream {stream}: its SYN is not in the capture")
                if chosen is None:
                    continue
            elif fallback:
                offered[info.tcp_stream] = any(type(o) is MpCapable for o in info.mptcp)
                infos.append(info)
                continue
            else:
                chosen = info.tcp_stream
        if info.tcp_stream == chosen:
            infos.append(info)
    if not seen_tcp:
        raise PlanError(f"{path}: no TCP in the capture")
    if chosen is None:
        if fallback:
            raise PlanError(f"{path}: no fallback connection in the capture")
        if stream is None:
            raise PlanError(f"{path}: no TCP connection with its SYN in the capture")
        have = ", ".join(str(n) for n in sorted(streams)[:10]) + (", ..." if len(streams) > 10 else "")
        raise PlanError(f"{path}: no TCP stream {stream} (streams {have})")
    syn = next(i for i in infos if i.packet is not None and int(i.packet.flags) & _SYN_ACK == _SYN)
    sp = syn.packet
    assert sp is not None
    client, server = (sp.src, sp.sport), (sp.dst, sp.dport)
    isn = sp.seq
    t0 = syn.timestamp_ns
    syn_opts = decode_tcp_options(sp.options, strict=False).options
    sack = any(type(o) is SackPermitted for o in syn_opts)
    scale = any(type(o) is WindowScale for o in syn_opts)
    stamps = any(type(o) is Timestamps for o in syn_opts)
    offered_mptcp = any(type(o) is MpCapable for o in syn.mptcp)
    took_mptcp = False
    segments = []
    covered: list[list[int]] = []
    cut = 0
    server_high = 0
    fin = False
    server_isn: int | None = None
    answer: int | None = None
    for i in infos:
        p = i.packet
        assert p is not None
        mine = (p.src, p.sport) == client and (p.dst, p.dport) == server
        flags = int(p.flags)
        if not mine:
            if flags & _SYN_ACK == _SYN_ACK:
                server_isn = p.seq
                if answer is None:
                    answer = i.timestamp_ns - t0
                took_mptcp = took_mptcp or any(type(o) is MpCapable for o in i.mptcp)
            elif p.payload_len and server_isn is not None:
                server_high = max(server_high, (p.seq - server_isn + p.payload_len - 1) & 0xFFFFFFFF)
            continue
        if flags & int(TcpFlags.FIN):
            fin = True
        if not p.payload_len or flags & _SYN:
            continue
        start = (p.seq - isn) & 0xFFFFFFFF
        end = start + p.payload_len
        data = p.payload + bytes(p.payload_len - len(p.payload))
        for piece_start, piece_end in uncovered(covered, start, end):
            captured = max(0, min(len(p.payload), piece_end - start) - (piece_start - start))
            missing = (piece_end - piece_start) - captured
            cut += missing
            piece = data[piece_start - start : piece_end - start]
            segments.append(PlannedSegment(0, piece_start, piece[:captured], missing, i.timestamp_ns - t0))
            cover(covered, piece_start, piece_end)
    if took_mptcp:
        raise PlanError(f"TCP stream {chosen} is an MPTCP subflow: replay its MPTCP stream with --stream")
    high = max((e for _, e in covered), default=1)
    sub = PlannedSubflow(0, SubflowKind.MP_CAPABLE, client, server, None, False, 0, sack, scale, stamps, answer)
    return ReplayPlan(
        chosen,
        1,
        False,
        None,
        (sub,),
        tuple(segments),
        high - 1,
        server_high,
        fin,
        False,
        cut,
        tcp=True,
        fallback=offered_mptcp,
    )
