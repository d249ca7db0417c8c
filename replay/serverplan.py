"""What to replay on the server side: the server of one MPTCP connection of a capture.

:func:`make_server_plan` keeps, for MPTCP stream ``N``: the captured server's key and checksum
flag, its address and port, the subflows the client opened to it (which server address each went
to, the server's address ID and backup flag on each), the server's data as the segments it sent
(retransmissions and reinjections dropped, as :func:`~replay.plan.make_plan` does), each with the
client data-level octets the captured server had received when it sent it (the high point of its
DATA_ACKs, the client's DATA_FIN counting one octet), the signals it sent (ADD_ADDR, MP_PRIO,
REMOVE_ADDR) with the same two points, and how it closed.  The live server sends a segment or a
signal only once the live client's data reached its point, so request/response sessions keep
their order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec import crypto
from mptcpspec.codec.options import (
    AddAddr,
    Dss,
    DssFlags,
    MpCapable,
    MpCapableFlags,
    MpFastclose,
    MpPrio,
    RemoveAddr,
)
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.replay.plan import (
    Address,
    PlanError,
    PlannedSegment,
    PlannedSubflow,
    ReplayPlan,
    SubflowKind,
    cover,
    uncovered,
)

__all__ = ["ServerPlan", "ServerSegment", "ServerSignal", "ServerSubflow", "make_server_plan"]

Endpoint = tuple[Address, int]
M32, M64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
_SYN = int(TcpFlags.SYN)


@dataclass(frozen=True, slots=True)
class ServerSubflow:
    """A subflow the captured client opened to the captured server."""

    index: int  #: order in the connection: 0 is the MP_CAPABLE subflow
    kind: SubflowKind
    client: Endpoint  #: captured client address and port
    server: Endpoint  #: captured server address and port
    address_id: int  #: the server's address ID on it (its MP_JOIN SYN/ACK; 0 for the MP_CAPABLE one)
    backup: bool  #: the backup flag of the server's MP_JOIN SYN/ACK
    time_ns: int  #: its SYN's capture time, relative to the connection's first SYN


@dataclass(frozen=True, slots=True)
class ServerSegment:
    subflow: int  #: index of the subflow that carried it
    dsn: int  #: relative DSN of its first octet (1 is the first octet of the server's stream)
    data: bytes
    cut: int  #: octets missing at the end (snaplen)
    time_ns: int
    needs: int  #: client data-level octets (its DATA_FIN counting one) the captured server had received


@dataclass(frozen=True, slots=True)
class ServerSignal:
    """An ADD_ADDR, MP_PRIO or REMOVE_ADDR the server sent, and where in both streams it came."""

    subflow: int  #: index of the subflow it was sent on
    after: int  #: relative DSN the server had sent up to (exclusive)
    needs: int  #: client octets the server had received (as :attr:`ServerSegment.needs`)
    option: AddAddr | MpPrio | RemoveAddr
    time_ns: int
    #: the captured subflows it concerns that were open when the server sent it (MP_PRIO: its own;
    #: REMOVE_ADDR: those to the addresses it removes): the live replay waits a little for them
    waits: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerPlan:
    stream: int
    checksum: bool  #: the server's SYN/ACK asked for DSS checksums (its C flag)
    server_key: int  #: the captured server key (the live server's too)
    client_key: int | None  #: the captured client key (for the record)
    server: Endpoint  #: the captured server's first address and port
    subflows: tuple[ServerSubflow, ...]
    segments: tuple[ServerSegment, ...]
    data_len: int  #: server data-level octets
    client_data_len: int  #: what the client sent in the capture
    data_fin: bool  #: the server closed with DATA_FIN in the capture
    fastclose: bool  #: the server ended the connection with MP_FASTCLOSE
    close_needs: int  #: client octets (DATA_FIN counting one) received before the server closed
    cut_octets: int  #: server octets the capture lacks (snaplen)
    signals: tuple[ServerSignal, ...] = ()  #: in capture order
    client_fastclose: bool = False  #: the captured client ended the connection with MP_FASTCLOSE

    @property
    def data_fin_after_client(self) -> bool:
        """The captured server sent its DATA_FIN after the client's had reached it."""
        return self.data_fin and self.close_needs > self.client_data_len

    def addresses(self) -> list[Address]:
        """The captured server addresses: of its subflows and its ADD_ADDRs, first address first."""
        out = [self.server[0]]
        for sf in self.subflows:
            if sf.server[0] not in out:
                out.append(sf.server[0])
        for sig in self.signals:
            if isinstance(sig.option, AddAddr) and sig.option.address not in out:
                out.append(sig.option.address)
        return out

    def replay_plan(self) -> ReplayPlan:
        """The server's side as the data-level parts of the engine read a plan: our segments, our
        key, our close (:class:`~replay.datalevel.OutgoingData`, :class:`~replay.connection.Connection`)."""
        subflows = tuple(
            PlannedSubflow(s.index, s.kind, s.server, s.client, s.address_id, s.backup, s.time_ns)
            for s in self.subflows
        )
        segments = tuple(PlannedSegment(s.subflow, s.dsn, s.data, s.cut, s.time_ns) for s in self.segments)
        return ReplayPlan(
            self.stream,
            1,
            self.checksum,
            self.server_key,
            subflows,
            segments,
            self.data_len,
            self.client_data_len,
            self.data_fin,
            self.fastclose,
            self.cut_octets,
        )


def make_server_plan(path: str | os.PathLike[str], stream: int | None = None) -> ServerPlan:
    """The server-side plan of MPTCP stream ``stream`` (default: the first) of a capture."""
    d = Dissection(path, verify=False)
    infos = []
    chosen = None
    for info in d:
        c = info.connection
        if c is None:
            continue
        if chosen is None:
            if c.stream is None or (stream is not None and c.stream != stream):
                continue
            chosen = c
        if c is chosen:
            infos.append(info)
    conns = [c for c in d.connections() if c.stream is not None]
    if not conns:
        raise PlanError(f"{path}: no MPTCP connection in the capture (the server side replays MPTCP only)")
    if chosen is None:
        have = ", ".join(str(c.stream) for c in conns)
        raise PlanError(f"{path}: no MPTCP stream {stream} (stream{'s' if len(conns) > 1 else ''} {have})")
    conn = chosen
    if conn.unlinked or conn.version != 1:
        what = "its handshake is not in the capture" if conn.unlinked else f"MPTCP version {conn.version}"
        raise PlanError(f"MPTCP stream {conn.stream}: {what}: only version 1 handshakes are replayed")
    server_key, client_key = conn.sides[1].key, conn.sides[0].key
    first = conn.subflows[0]
    if server_key is None or first.kind != "MP_CAPABLE":
        raise PlanError(f"MPTCP stream {conn.stream}: the server's MP_CAPABLE SYN/ACK (its key) is not in the capture")
    if client_key is None:
        raise PlanError(f"MPTCP stream {conn.stream}: the client's key (its third ACK) is not in the capture")
    t0 = infos[0].timestamp_ns
    order = {sf.index: k for k, sf in enumerate(conn.subflows)}
    subflows = []
    for k, sf in enumerate(conn.subflows):
        if not sf.to_client_side:
            continue  # a subflow the server opened: not replayed
        start = next((i.timestamp_ns for i in infos if i.subflow is sf), t0)
        sid = sf.address_ids[1] if len(sf.address_ids) > 1 and sf.address_ids[1] is not None else 0
        backup = bool(sf.backup[1]) if len(sf.backup) > 1 else False
        subflows.append(
            ServerSubflow(k, SubflowKind(sf.kind or "MP_JOIN"), sf.client, sf.server, sid, backup, start - t0)
        )
    client_idsn = crypto.key_idsn(client_key, 1)
    checksum = False
    received = 0  # client octets the captured server had acknowledged at data level
    client_high = 0
    segments: list[ServerSegment] = []
    signals: list[ServerSignal] = []
    covered: list[list[int]] = []
    cut = 0
    close_needs: int | None = None
    fastclose = client_fastclose = False
    opened: set[int] = set()
    for i in infos:
        p = i.packet
        if p is None:
            continue
        on = order.get(i.subflow.index, 0) if i.subflow is not None else 0
        if i.subflow is not None:
            opened.add(on)
        if i.from_client:
            client_fastclose = client_fastclose or any(type(o) is MpFastclose for o in i.mptcp)
            if p.payload_len and i.payload_dsn is not None:
                client_high = max(client_high, i.payload_dsn + p.payload_len - 1)
            continue
        for o in i.mptcp:
            if type(o) is MpCapable and int(p.flags) & _SYN and o.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                checksum = True
            elif type(o) is Dss and o.flags & DssFlags.DATA_ACK_PRESENT and o.data_ack is not None:
                mask = M64 if o.flags & DssFlags.DATA_ACK_8 else M32
                rel = (o.data_ack - client_idsn - 1) & mask
                if rel < 1 << 31:
                    received = max(received, rel)
            elif type(o) is MpFastclose:
                fastclose = True
                if close_needs is None:
                    close_needs = received
        high = max((e for _, e in covered), default=1)
        for o in i.mptcp:
            if (type(o) is AddAddr and not o.echo) or type(o) is MpPrio or type(o) is RemoveAddr:
                if type(o) is MpPrio:
                    waits: tuple[int, ...] = (on,)
                elif type(o) is RemoveAddr:
                    waits = tuple(s.index for s in subflows if s.index in opened and s.address_id in o.address_ids)
                else:
                    waits = ()
                signals.append(ServerSignal(on, high, received, o, i.timestamp_ns - t0, waits))
            if type(o) is Dss and o.flags & DssFlags.DATA_FIN and close_needs is None:
                close_needs = received
        if not p.payload_len or i.payload_dsn is None or int(p.flags) & _SYN:
            continue
        start, end = i.payload_dsn, i.payload_dsn + p.payload_len
        data = p.payload + bytes(p.payload_len - len(p.payload))
        for a, b in uncovered(covered, start, end):
            captured = max(0, min(len(p.payload), b - start) - (a - start))
            missing = (b - a) - captured
            cut += missing
            piece = data[a - start : b - start]
            segments.append(ServerSegment(on, a, piece[:captured], missing, i.timestamp_ns - t0, received))
            cover(covered, a, b)
    high = max((e for _, e in covered), default=1)
    data_fin = conn.sides[1].dfin is not None
    client_len = max(client_high, 0)
    if close_needs is None or not (data_fin or fastclose):
        close_needs = client_len + 1  # the capture shows no close of the server's: close after the client
    return ServerPlan(
        conn.stream or 0,
        checksum,
        server_key,
        client_key,
        first.server,
        tuple(subflows),
        tuple(segments),
        high - 1,
        client_len,
        data_fin,
        fastclose,
        close_needs,
        cut,
        tuple(signals),
        client_fastclose,
    )
