"""Opening subflows, re-keyed for the live server (RFC 8684 §3.1, §3.2), and TCP Fast Open.

The MP_CAPABLE SYN carries the client key only in its third ACK (version 1); the server's key
comes from its SYN/ACK, and with it the token and IDSN.  An MP_JOIN SYN carries the server's token
and our nonce; the server's truncated HMAC in its SYN/ACK is checked (a mismatch fails that
subflow with a reset) and our third ACK carries our full HMAC, sent again until the server
acknowledges it.  The capture's TCP Fast Open SYN (RFC 7413; with MPTCP, RFC 8684 Appendix B)
goes out with its cookie (or another) and data: a server that takes the data maps it below the
IDSN, as the capture shows; one that does not gets it after the handshake, at DSN 1.
"""

from __future__ import annotations

import hmac as _hmac  # noqa: F401  (crypto imports it on the first HMAC: milliseconds a paced replay has not)

from mptcpspec.capture.packets import Packet, TcpFlags
from mptcpspec.codec import crypto
from mptcpspec.codec.options import (
    FastOpen,
    MpCapable,
    MpCapableFlags,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MptcpItem,
    MpTcpRst,
    Mss,
    SackPermitted,
    TcpOption,
    Timestamps,
    WindowScale,
    decode_tcp_options,
)
from mptcpspec.replay.connection import Connection
from mptcpspec.replay.events import (
    AbortCause,
    ChecksumsRequired,
    ConnectionEstablished,
    FailCause,
    FastOpenCookie,
    FastOpenSettled,
    FellBack,
    JoinVerified,
    Retransmitted,
    SegmentKind,
    SubflowEstablished,
)
from mptcpspec.replay.report import FastOpenOutcome, FastOpenReport
from mptcpspec.replay.subflow import M32, Subflow, SubflowState

__all__ = ["FastOpenSyn", "Handshake"]

SYN, RST = int(TcpFlags.SYN), int(TcpFlags.RST)
MIN_MSS = 536  # RFC 9293 §3.7.1: the MSS every host must accept; a smaller one from the peer is raised to it


class FastOpenSyn:
    """The capture's Fast Open SYN as replayed: its option, its data, and what the server did."""

    __slots__ = ("option", "data", "payload", "answered", "taken", "server_cookie", "captured")

    def __init__(self, conn: Connection) -> None:
        plan, options = conn.plan, conn.options
        self.captured = plan.tfo_cookie is not None  #: the capture's SYN had a Fast Open option
        self.data = plan.syn_data + bytes([options.fill]) * plan.syn_cut if plan.syn_data else b""
        cookie = options.tfo_cookie if options.tfo_cookie is not None else plan.tfo_cookie
        self.option = FastOpen(cookie=cookie) if options.tfo and cookie is not None else None
        # At most MSS - 40 octets on the SYN, as Linux sends: room for the SYN's own options.
        self.payload = self.data[: max(0, options.mss - 40)] if self.option is not None else b""
        self.answered = False  #: a SYN/ACK with MP_CAPABLE came back
        self.taken = 0  #: SYN data octets the server acknowledged with its SYN/ACK
        self.server_cookie: bytes | None = None

    def report(self) -> FastOpenReport | None:
        offered = len(self.data)
        if self.option is None:
            if not self.captured:
                return None
            outcome = FastOpenOutcome.OFF
        elif not self.answered:
            outcome = FastOpenOutcome.NO_ANSWER
        elif self.taken:
            outcome = FastOpenOutcome.TAKEN if self.taken >= offered else FastOpenOutcome.PARTLY_TAKEN
        elif self.data:
            outcome = FastOpenOutcome.NOT_TAKEN
        else:
            outcome = FastOpenOutcome.COOKIE_ONLY if self.option.cookie else FastOpenOutcome.COOKIE_REQUEST
        return FastOpenReport(outcome, offered, self.taken, self.server_cookie)


class Handshake:
    """SYNs out, SYN/ACKs in."""

    __slots__ = ("conn", "fast_open")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fast_open = FastOpenSyn(conn)
        if self.fast_open.data and not self.fast_open.payload:
            conn.out.replan(self.fast_open.data)  # no Fast Open: the SYN's data leads the stream

    def _capable(self, sender_key: int | None = None, receiver_key: int | None = None) -> MpCapable:
        flags = MpCapableFlags.HMAC_SHA | (MpCapableFlags.CHECKSUM_REQUIRED if self.conn.keys.checksum else 0)
        return MpCapable(version=1, flags=MpCapableFlags(flags), sender_key=sender_key, receiver_key=receiver_key)

    def syn(self, sf: Subflow, now: float) -> bytes:
        """``sf``'s SYN, kept for retransmission."""
        conn = self.conn
        payload = b""
        opts: list[TcpOption]
        if sf.is_join:
            join = MpJoinSyn(
                backup=sf.backup, address_id=sf.address_id or 0, token=conn.keys.token_server or 0, nonce=sf.nonce
            )
            opts = [Mss(mss=conn.options.mss), join]
        else:
            opts = [Mss(mss=conn.options.mss), self._capable()]
            if self.fast_open.option is not None:
                opts.append(self.fast_open.option)
                payload = self.fast_open.payload
        if sf.sack_permitted:
            opts.append(SackPermitted())  # as the captured SYN (RFC 2018 §2)
        if sf.window_scale:
            opts.append(WindowScale(shift=0))  # as the captured SYN offered it; our window stays unscaled
        sf.plain = self.conn.tcp
        sf.enter(SubflowState.SYN_SENT)
        sf.opened_at = now
        pkt = sf.packet(SYN, opts, payload, seq=sf.isn)
        sf.keep(pkt, 1 + len(payload), now, SegmentKind.SYN)
        sf.snd_nxt = (sf.isn + 1) & M32  # the SYN's data counts once the server says it took it
        return pkt

    def syn_acked(self, sf: Subflow, ack: int) -> bool:
        """``ack`` acknowledges our SYN (and possibly the Fast Open data on it)."""
        extra = 0 if sf.is_join else len(self.fast_open.payload)
        return ((ack - sf.isn - 1) & M32) <= extra

    def third_ack_options(self) -> list[TcpOption]:
        keys = self.conn.keys
        return [self._capable(sender_key=keys.client, receiver_key=keys.server)]

    def synack(self, sf: Subflow, pkt: Packet, opts: tuple[MptcpItem, ...], now: float) -> list[bytes]:
        """A SYN/ACK on ``sf``: the subflow opens (or fails); what to send."""
        out: list[bytes] = []
        if sf.state is not SubflowState.SYN_SENT or not self.syn_acked(sf, pkt.ack):
            if sf.state in (SubflowState.FAILED, SubflowState.CLOSED) or (pkt.seq + 1) & M32 != sf.rcv_nxt:
                return out
            # Our third ACK was lost and the server repeats its SYN/ACK: send it again.
            if sf.is_join:
                if sf.join_ack is not None:
                    out.append(sf.join_ack)
            else:
                out.append(sf.packet(0, self.third_ack_options()))
            return out
        sf.irs = pkt.seq
        sf.rcv_nxt = (pkt.seq + 1) & M32
        tcp_opts = decode_tcp_options(pkt.options, 1, strict=False).options
        mss = next((o.mss for o in tcp_opts if type(o) is Mss), MIN_MSS)
        sf.mss = max(min(mss, self.conn.options.mss), MIN_MSS)
        sf.sack_ok = sf.sack_permitted and any(type(o) is SackPermitted for o in tcp_opts)
        ts = next((o for o in tcp_opts if type(o) is Timestamps), None)
        if sf.timestamps and sf.plain and ts is not None:
            sf.ts_ok, sf.ts_recent = True, ts.tsval  # RFC 7323 §3.2: offered by both SYNs
        shift = next((o.shift for o in tcp_opts if type(o) is WindowScale), None)
        sf.snd_shift = min(shift, 14) if sf.window_scale and shift is not None else 0  # RFC 7323 §2.3
        sf.snd_una = pkt.ack
        sf.unacked.clear()
        sf.wnd = pkt.window
        if sf.is_join:
            self._join(sf, opts, now, out)
        else:
            self.conn.answered(sf.index, now)
            self._first(sf, pkt, tcp_opts, opts, now, out)
        return out

    def _first(
        self,
        sf: Subflow,
        pkt: Packet,
        tcp_opts: tuple[TcpOption, ...],
        opts: tuple[MptcpItem, ...],
        now: float,
        out: list[bytes],
    ) -> None:
        conn = self.conn
        keys = conn.keys
        conn.out.advertised(pkt.window, conn.out.una)  # a SYN/ACK's window is never scaled (RFC 7323 §2.3)
        mpc = next((o for o in opts if type(o) is MpCapable), None)
        if mpc is None:
            self._tcp(sf, pkt, tcp_opts, now, out)
            return
        if mpc.sender_key is None:
            conn.abort(
                now,
                AbortCause.NO_MPTCP,
                "the server's MP_CAPABLE SYN/ACK carries no key (RFC 8684 §3.1 requires it)",
            )
            return
        if mpc.version != 1:
            conn.abort(now, AbortCause.VERSION, f"the server answered with MPTCP version {mpc.version}")
            return
        keys.learn(mpc.sender_key)
        conn.inc.start(keys.idsn_server or 0)
        if mpc.flags & MpCapableFlags.CHECKSUM_REQUIRED and not keys.checksum:
            keys.checksum = True
            conn.emit(ChecksumsRequired(conn.since(now), sf.index))
        sf.enter(SubflowState.ESTABLISHED)
        conn.emit(
            ConnectionEstablished(conn.since(now), sf.index, mpc.sender_key, keys.token_server or 0, keys.checksum)
        )
        conn.emit(SubflowEstablished(conn.since(now), sf.index, sf.kind))
        if self.fast_open.option is not None:
            self._fast_open(sf, pkt, tcp_opts, now)
        out.append(sf.packet(0, self.third_ack_options()))

    def _tcp(self, sf: Subflow, pkt: Packet, tcp_opts: tuple[TcpOption, ...], now: float, out: list[bytes]) -> None:
        """A SYN/ACK without MP_CAPABLE: plain TCP, planned or as the live server fell back (RFC 8684
        §3.7: the client goes on as TCP with the same data on this subflow; no join is opened)."""
        conn = self.conn
        if not conn.tcp:
            conn.tcp = conn.fell_back = True
            conn.emit(FellBack(conn.since(now), sf.index))
            for other in conn.subflows[1:]:
                other.give_up("not opened: the server fell back to TCP")
        sf.plain = True
        conn.inc.start(0)
        sf.enter(SubflowState.ESTABLISHED)
        conn.emit(SubflowEstablished(conn.since(now), sf.index, sf.kind))
        if self.fast_open.option is not None:
            self._fast_open(sf, pkt, tcp_opts, now)
        out.append(sf.packet(0))

    def _join(self, sf: Subflow, opts: tuple[MptcpItem, ...], now: float, out: list[bytes]) -> None:
        conn = self.conn
        keys = conn.keys
        j = next((o for o in opts if type(o) is MpJoinSynAck), None)
        if j is None:
            conn.give_up(sf, now, FailCause.NO_MP_JOIN, "the server answered without MP_JOIN")
            out.append(sf.packet(RST, [MpTcpRst(reason=0)]))
            return
        server = keys.server or 0
        want = crypto.join_synack_hmac(server, keys.client, j.nonce, sf.nonce, 1)
        if want != j.truncated_hmac:
            conn.give_up(
                sf,
                now,
                FailCause.HMAC_MISMATCH,
                f"the server's MP_JOIN HMAC {j.truncated_hmac:#018x} is not {want:#018x}: wrong key or token",
            )
            out.append(sf.packet(RST, [MpTcpRst(reason=0)]))
            return
        hmac = crypto.join_ack_hmac(keys.client, server, sf.nonce, j.nonce, 1)
        sf.enter(SubflowState.PRE_ESTABLISHED)
        sf.join_ack = sf.packet(0, [MpJoinAck(hmac=hmac)])
        sf.join_ack_at = now
        conn.emit(JoinVerified(conn.since(now), sf.index, j.address_id))
        out.append(sf.join_ack)

    def join_acks_due(self, now: float, out: list[bytes]) -> None:
        """Our MP_JOIN third ACKs not acknowledged in time go again (RFC 8684 §3.2: the server
        acknowledges it once the subflow is established), until ``max_tries``."""
        conn = self.conn
        max_tries, rto = conn.options.max_tries, conn.options.rto
        for sf in conn.subflows:
            if sf.join_ack is None or now < sf.join_ack_at + sf.join_rto(rto) * (1 << sf.join_tries):
                continue
            if sf.join_tries >= max_tries:
                conn.give_up(sf, now, FailCause.JOIN_ACK_UNACKNOWLEDGED, "the MP_JOIN ACK was never acknowledged")
                continue
            sf.join_tries += 1
            sf.join_ack_at = now
            sf.retransmitted += 1
            sf.sent += 1
            out.append(sf.join_ack)
            conn.emit(Retransmitted(conn.since(now), sf.index, SegmentKind.JOIN_ACK, 1, sf.join_tries))

    def _fast_open(self, sf: Subflow, pkt: Packet, tcp_opts: tuple[TcpOption, ...], now: float) -> None:
        """What the server did with our Fast Open SYN (RFC 7413 §4.2.2)."""
        conn, fo = self.conn, self.fast_open
        fo.answered = True
        cookie = next((o.cookie for o in tcp_opts if type(o) is FastOpen), None)
        if cookie:
            fo.server_cookie = cookie
            conn.emit(FastOpenCookie(conn.since(now), sf.index, cookie))
        taken = (pkt.ack - sf.isn - 1) & M32
        if taken:
            # The kernel maps SYN data below the IDSN: the data-level stream starts after it.
            fo.taken = taken
            sf.snd_nxt = sf.snd_una = pkt.ack
            sf.ssn_off = taken
            sf.data_sent += taken
        if taken or fo.data:
            conn.emit(FastOpenSettled(conn.since(now), sf.index, len(fo.data), taken))
        rest = fo.data[taken:]
        if rest:
            fo.payload = fo.payload[:taken]
            conn.out.replan(rest)
