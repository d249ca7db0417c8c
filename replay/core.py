"""The replay engine's sans-IO core: packets and ``now`` in, packets and events out.

:class:`Replay` plays the client side of a :class:`~replay.plan.ReplayPlan` against a live MPTCP
server.  It owns no socket and no clock: :meth:`Replay.start`, :meth:`Replay.receive` (one IP packet
from the server) and :meth:`Replay.poll` (timers, pacing) each take ``now`` (seconds, any epoch) and
return the IP packets to send; :meth:`Replay.deadline` says when to call :meth:`poll` next, and
:attr:`Replay.events` holds what happened (:mod:`replay.events`), in order.

Re-keying (RFC 8684): the client key is the captured one unless a new one is asked for; the
server's key comes from the live SYN/ACK, and from the two keys everything the capture cannot supply
is computed afresh: tokens and IDSNs (§3.1), the MP_JOIN HMACs (§3.2; the server's truncated HMAC is
checked and a mismatch aborts that subflow), DATA_ACKs in the live server's data sequence space
(§3.3), DSS checksums when negotiated (§3.3.1), TCP checksums.  The client's data goes out as the
capture has it (:mod:`replay.sending`); lost segments are sent again on a retransmission timeout
with exponential backoff, on their subflow (:mod:`replay.subflow`) or at data level
(:mod:`replay.datalevel`).  The connection closes with DATA_FIN, driven by the closure machine
generated from ``spec/closure.fsm`` (:mod:`replay.closing`), then the subflows' FINs.

The parts share one :class:`~replay.connection.Connection`; this module routes packets and timers
to them.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping

from mptcpspec.capture.packets import Packet, decode_frame
from mptcpspec.codec import crypto
from mptcpspec.codec.generated.closure import Event as ClosureEvent
from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.codec.options import AddAddr, Dss, MpFastclose, MptcpOption, MpTcpRst, decode_mptcp_options
from mptcpspec.errors import MptcpspecError
from mptcpspec.replay.closing import Closing
from mptcpspec.replay.connection import Connection, Keys
from mptcpspec.replay.datalevel import M64, OutgoingData
from mptcpspec.replay.events import (
    AbortCause,
    AddAddrEchoed,
    CloseHow,
    ConnectionOpening,
    DataFinReceived,
    FailCause,
    FinReceived,
    ReplayEvent,
    Retransmitted,
    SegmentKind,
    SubflowClosed,
    SubflowEstablished,
    SubflowReset,
    reset_reason,
)
from mptcpspec.replay.handshake import Handshake
from mptcpspec.replay.plan import ReplayPlan
from mptcpspec.replay.report import Report, SubflowReport
from mptcpspec.replay.sending import Sender
from mptcpspec.replay.setup import (
    Address,
    ReplayError,
    ReplayOptions,
    SetupProblem,
    Timing,
    live_endpoints,
    show_endpoint,
)
from mptcpspec.replay.subflow import M32, OPEN, Subflow, SubflowState

__all__ = ["Replay", "ReplayError", "Report", "SubflowReport"]

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
LINKTYPE_RAW = 101


class Replay:
    """Play ``plan``'s client side.  ``local`` maps each captured client address to a local one,
    ``servers`` each captured server address to a live one (the first subflow's server address
    defaults to ``target``); ``target_port`` replaces the captured server port.  The other
    arguments are those of :class:`~replay.setup.ReplayOptions`; ``rng`` draws ISNs and nonces.
    :class:`ReplayError` when the replay cannot start."""

    def __init__(
        self,
        plan: ReplayPlan,
        *,
        target: Address | str,
        target_port: int | None = None,
        local: Mapping[Address | str, Address | str] | None = None,
        servers: Mapping[Address | str, Address | str] | None = None,
        new_key: bool = False,
        timing: Timing = "fast",
        rto: float = 0.2,
        max_tries: int = 8,
        timeout: float = 10.0,
        fill: int = 0,
        require_payload: bool = False,
        mss: int = 1460,
        tfo: bool = True,
        tfo_cookie: bytes | None = None,
        rng: random.Random | None = None,
    ) -> None:
        options = ReplayOptions(timing, rto, max_tries, timeout, fill, require_payload, mss, new_key, tfo, tfo_cookie)
        if require_payload and plan.cut_octets:
            raise ReplayError(
                SetupProblem.PAYLOAD_CUT,
                f"the capture lacks {plan.cut_octets} octets of the client's data (cut by its snapshot length) "
                "and the payload is required whole",
            )
        ip = ipaddress.ip_address
        endpoints = live_endpoints(
            plan,
            ip(target),
            target_port,
            {ip(k): ip(v) for k, v in (local or {}).items()},
            {ip(k): ip(v) for k, v in (servers or {}).items()},
        )
        rng = rng or random.SystemRandom()
        fresh = new_key or plan.client_key is None
        keys = Keys(crypto.generate_key(1) if fresh else plan.client_key or 0, not fresh, plan.checksum)
        subflows = []
        for ps, mine, theirs in endpoints:
            isn = rng.getrandbits(32)
            subflows.append(Subflow(ps, mine, theirs, isn, rng.getrandbits(32), rto))
        self.conn = conn = Connection(plan, options, keys, subflows)
        self.closing = Closing(conn)
        self.handshake = Handshake(conn)
        self.sender = Sender(conn, self.handshake, self.closing)

    # -- what it is and what happened

    @property
    def plan(self) -> ReplayPlan:
        return self.conn.plan

    @property
    def keys(self) -> Keys:
        return self.conn.keys

    @property
    def subflows(self) -> list[Subflow]:
        return self.conn.subflows

    @property
    def data(self) -> OutgoingData:
        """The client's data-level stream."""
        return self.conn.out

    @property
    def events(self) -> list[ReplayEvent]:
        return self.conn.events

    @property
    def done(self) -> bool:
        return self.conn.done

    @property
    def failed(self) -> str | None:
        """Why the replay stopped early (None: it did not)."""
        return self.conn.failure

    @property
    def closure_state(self) -> ClosureState:
        return self.closing.state

    def local_addresses(self) -> list[Address]:
        """The addresses the replay sends from."""
        return sorted({sf.local[0] for sf in self.conn.subflows}, key=str)

    def peer_addresses(self) -> list[Address]:
        """The live server addresses the replay sends to."""
        return sorted({sf.remote[0] for sf in self.conn.subflows}, key=str)

    # -- the outside

    def start(self, now: float) -> list[bytes]:
        """The first SYN."""
        conn = self.conn
        conn.t0 = conn.last_heard = now
        conn.started = True
        sf = conn.subflows[0]
        conn.emit(
            ConnectionOpening(
                0.0, sf.index, show_endpoint(sf.local), show_endpoint(sf.remote), conn.keys.client, conn.keys.captured
            )
        )
        return [self.handshake.syn(sf, now)]

    def deadline(self) -> float | None:
        """When :meth:`poll` has something to do (None: the replay is over)."""
        conn = self.conn
        if conn.done:
            return None
        times = [conn.last_heard + conn.options.timeout]
        for sf in conn.subflows:
            times += sf.timers(conn.options.rto)
        times += self.closing.timers()
        times += self.sender.timers()
        return min(times)

    def poll(self, now: float) -> list[bytes]:
        """Timers and pacing: what to send now."""
        conn = self.conn
        if conn.done:
            return []
        out: list[bytes] = []
        if now - conn.last_heard >= conn.options.timeout:
            conn.abort(now, AbortCause.TARGET_SILENT, f"the target sent nothing for {conn.options.timeout:g} s")
            return out
        self._retransmit(now, out)
        if not self.closing.poll(now, out):
            return out
        out += self.sender.reinject(now)
        out += self.sender.pump(now)
        return out

    def _retransmit(self, now: float, out: list[bytes]) -> None:
        conn = self.conn
        max_tries, rto = conn.options.max_tries, conn.options.rto
        for sf in conn.subflows:
            u = sf.due(now)
            if u is not None:
                if u.tries >= max_tries:
                    conn.give_up(sf, now, FailCause.NO_ANSWER, f"no answer after {u.tries + 1} transmissions")
                    continue
                out.append(sf.resend(u, now))
                conn.emit(Retransmitted(conn.since(now), sf.index, u.kind, (u.seq - sf.isn) & M32, u.tries))
            if sf.join_ack is not None and now >= sf.join_ack_at + rto * (1 << sf.join_tries):
                if sf.join_tries >= max_tries:
                    conn.give_up(sf, now, FailCause.JOIN_ACK_UNACKNOWLEDGED, "the MP_JOIN ACK was never acknowledged")
                else:
                    sf.join_tries += 1
                    sf.join_ack_at = now
                    sf.retransmitted += 1
                    sf.sent += 1
                    out.append(sf.join_ack)
                    conn.emit(Retransmitted(conn.since(now), sf.index, SegmentKind.JOIN_ACK, 1, sf.join_tries))

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """One IP packet from the server: what to send in answer."""
        conn = self.conn
        if conn.done:
            return []
        try:
            pkt = decode_frame(LINKTYPE_RAW, data)
        except MptcpspecError:
            return []
        if pkt is None:
            return []
        sf = conn.by_flow.get((pkt.dst, pkt.dport, pkt.src, pkt.sport))
        if sf is None or sf.state is SubflowState.NEW:
            return []
        conn.last_heard = now
        sf.received += 1
        opts: tuple[MptcpOption, ...] = decode_mptcp_options(pkt.options, 1) if pkt.options else ()
        flags = int(pkt.flags)
        if flags & RST:
            return self._reset(sf, opts, now)
        if flags & SYN and flags & ACK:
            before = sf.state
            out = self.handshake.synack(sf, pkt, opts, now)
            if sf.state is not before and sf.state in OPEN:
                out += self.sender.pump(now)
            return out
        if sf.state is SubflowState.SYN_SENT and flags & ACK and not self.handshake.syn_acked(sf, pkt.ack):
            # RFC 9293 §3.10.7.3: an unacceptable ACK in SYN-SENT is answered with <SEQ=SEG.ACK><RST>.
            # It comes from a stale connection of the same addresses and ports on the server (an
            # earlier replay of the same capture): the reset clears it for our next SYN.
            return [sf.reset_packet(pkt.ack)]
        if sf.state not in OPEN or sf.rcv_nxt is None:
            return []
        out = []
        if flags & ACK:
            sf.acknowledged(pkt.ack, pkt.window, now)
        if sf.state is SubflowState.PRE_ESTABLISHED:
            sf.enter(SubflowState.ESTABLISHED)
            sf.join_ack = None
            conn.emit(SubflowEstablished(conn.since(now), sf.index, sf.kind))
        # The receive window is the connection's, relative to the DATA_ACK of the same packet
        # (RFC 8684 §3.3.5): the latest one counts.
        conn.out.window = pkt.window
        for o in opts:
            if type(o) is Dss:
                self._dss(sf, o, now, out)
            elif type(o) is AddAddr:
                self._add_addr(sf, o, now, out)
            elif type(o) is MpFastclose:
                self.closing.handle(now, ClosureEvent.RCV_MP_FASTCLOSE, out, o.receiver_key == conn.keys.client)
        if pkt.payload_len or flags & FIN:
            self._segment(sf, pkt, flags, now, out)
        if conn.inc.data_fin_reached():  # a DATA_FIN may come on a pure ACK
            conn.emit(DataFinReceived(conn.since(now), None))
            self.closing.handle(now, ClosureEvent.RCV_DATA_FIN, out)
        if sf.fin_acked and sf.peer_fin and sf.state is SubflowState.ESTABLISHED:
            sf.enter(SubflowState.CLOSED)
            conn.emit(SubflowClosed(conn.since(now), sf.index, CloseHow.FIN_EXCHANGE))
            self.closing.check_all_closed(now, out)
        out += self.sender.pump(now)
        return out

    def _reset(self, sf: Subflow, opts: tuple[MptcpOption, ...], now: float) -> list[bytes]:
        """The server reset ``sf``."""
        conn = self.conn
        out: list[bytes] = []
        rst = next((o for o in opts if type(o) is MpTcpRst), None)
        reason = None if rst is None else rst.reason
        if sf.fin_acked:
            sf.enter(SubflowState.CLOSED, "reset" + reset_reason(reason))
        else:
            sf.give_up("reset" + reset_reason(reason))
        sf.unacked.clear()
        sf.join_ack = None
        conn.emit(SubflowReset(conn.since(now), sf.index, reason))
        fastclose = next((o for o in opts if type(o) is MpFastclose), None)
        if fastclose is not None:
            key_valid = fastclose.receiver_key == conn.keys.client
            self.closing.handle(now, ClosureEvent.RCV_RST_MP_FASTCLOSE, out, key_valid)
        elif sf is conn.subflows[0] and sf.rcv_nxt is None:
            conn.abort(now, AbortCause.REFUSED, "the server refused the connection (RST)")
        self.closing.check_all_closed(now, out)
        return out

    def _dss(self, sf: Subflow, o: Dss, now: float, out: list[bytes]) -> None:
        conn = self.conn
        f = int(o.flags)
        if f & 0x01 and o.data_ack is not None and conn.out.data_ack(o.data_ack, bool(f & 0x02), now):
            self.closing.handle(now, ClosureEvent.RCV_DATA_ACK_DFIN, out)
        inc = conn.inc
        if f & 0x04 and o.dsn is not None and inc.idsn is not None:
            dsn = o.dsn if f & 0x08 else inc.expand(o.dsn)
            length = o.data_level_length or 0
            if f & 0x10:
                inc.dfin = (dsn + length - 1) & M64
            if length and not (f & 0x10 and length == 1 and o.ssn == 0):
                sf.map(dsn, o.ssn or 0, length - (1 if f & 0x10 else 0))

    def _add_addr(self, sf: Subflow, o: AddAddr, now: float, out: list[bytes]) -> None:
        """The server announced an address: echo it (RFC 8684 §3.4.1)."""
        if o.echo:
            return
        conn = self.conn
        conn.emit(AddAddrEchoed(conn.since(now), sf.index, o.address_id, str(o.address), o.port))
        echo = AddAddr(echo=True, address_id=o.address_id, address=o.address, port=o.port)
        out.append(sf.packet(0, [echo, conn.ack_dss()]))

    def _segment(self, sf: Subflow, pkt: Packet, flags: int, now: float, out: list[bytes]) -> None:
        """Data or a FIN on ``sf``: taken if in order, acknowledged either way."""
        conn = self.conn
        n = pkt.payload_len
        if pkt.seq == sf.rcv_nxt:
            if n:
                where = sf.dsn_of(pkt.seq, n)
                if where is not None:
                    conn.inc.add(*where)
                sf.rcv_nxt = (pkt.seq + n) & M32
                sf.data_received += n
            if flags & FIN:
                sf.rcv_nxt = (pkt.seq + n + 1) & M32
                sf.peer_fin = True
                conn.emit(FinReceived(conn.since(now), sf.index))
        out.append(sf.packet(0, [conn.ack_dss()]))

    # -- the end

    def report(self, now: float) -> Report:
        """What the replay did, up to ``now`` (or its end)."""
        conn = self.conn
        state = self.closing.state
        end = conn.ended_at if conn.ended_at is not None else now
        ok = conn.done and conn.failure is None and state is ClosureState.M_CLOSED
        reason = conn.failure or ("closed cleanly" if ok else f"unfinished: closure in {state.name}")
        fast_open = self.handshake.fast_open
        return Report(
            ok,
            reason,
            conn.abort_cause,
            end - conn.t0 if conn.started else 0.0,
            conn.keys.client,
            conn.keys.server,
            conn.out.delivered() + fast_open.taken,
            conn.plan.data_len + len(fast_open.data),
            conn.inc.octets(),
            state,
            tuple(SubflowReport.of(sf) for sf in conn.subflows),
            tuple(conn.events),
            fast_open.report(),
        )
