"""The replay engine's sans-IO core: packets and ``now`` in, packets and events out.

:class:`Replay` plays the client side of a :class:`~replay.plan.ReplayPlan` against a live MPTCP
server.  It owns no socket and no clock: :meth:`Replay.start`, :meth:`Replay.receive` (one IP packet
from the server) and :meth:`Replay.poll` (timers, pacing) each take ``now`` (seconds, any epoch) and
return the IP packets to send; :meth:`Replay.deadline` says when to call :meth:`poll` next.

Re-keying (RFC 8684): the client key is the captured one unless a new one is asked for; the
server's key comes from the live SYN/ACK, and from the two keys everything the capture cannot supply
is computed afresh: tokens and IDSNs (§3.1), the MP_JOIN HMACs (§3.2; the server's truncated HMAC is
checked and a mismatch aborts that subflow), DATA_ACKs in the live server's data sequence space
(§3.3), DSS checksums when negotiated (§3.3.1), TCP checksums.  The client's data goes out as the
capture has it: the same octets, segment sizes, DSNs (relative to the IDSN) and subflows, as far as
the live server's windows allow.  Lost segments are sent again on a retransmission timeout with
exponential backoff.  The connection closes with DATA_FIN, driven by the closure machine generated
from ``spec/closure.fsm``, then the subflows' FINs.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
from dataclasses import dataclass, field

from mptcpspec.analysis.core import expand
from mptcpspec.capture.packets import decode_frame
from mptcpspec.codec import crypto
from mptcpspec.codec.generated.closure import ClosureMachine
from mptcpspec.codec.options import (
    AddAddr,
    Dss,
    DssFlags,
    FastOpen,
    MpCapable,
    MpCapableFlags,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MpTcpRst,
    Mss,
    decode_mptcp_options,
    decode_tcp_options,
)
from mptcpspec.errors import MptcpspecError
from mptcpspec.fsm.runtime import ProtocolError
from mptcpspec.replay.plan import PlannedSegment, ReplayPlan
from mptcpspec.replay.wire import Flow, dss_data_option, tcp_packet

__all__ = ["Replay", "ReplayError", "Event", "SubflowReport", "Report"]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_WINDOW = 65535  # we advertise no window scaling: 64 KiB is our receive window
_OPTION_ROOM = 28  # the largest option block we put on data: DSS with 8-octet DATA_ACK and DSN and checksum
_MIN_MSS = 536  # RFC 9293 §3.7.1: the MSS every host must accept; a smaller one from the peer is raised to it
_MAX_RANGES = 1024  # out-of-order server data ranges remembered
_DSS_DATA = DssFlags.DATA_ACK_PRESENT | DssFlags.DATA_ACK_8 | DssFlags.MAPPING_PRESENT | DssFlags.DSN_8
_DSS_ACK = DssFlags.DATA_ACK_PRESENT | DssFlags.DATA_ACK_8

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ReplayError(MptcpspecError):
    """A replay that cannot start or cannot go on, with the reason."""


def _after(a: int, b: int) -> bool:
    """32-bit sequence number a is after b."""
    return 0 < ((a - b) & _M32) < 0x80000000


@dataclass
class Event:
    time: float
    subflow: int | None
    text: str

    def __str__(self) -> str:
        where = "connection" if self.subflow is None else f"subflow {self.subflow}"
        return f"{self.time:9.3f} s  {where}: {self.text}"


@dataclass
class SubflowReport:
    index: int
    kind: str
    local: str
    remote: str
    result: str  #: "established", "failed: ...", "closed", "reset", "not opened"
    sent: int = 0
    received: int = 0
    retransmitted: int = 0
    data_sent: int = 0  #: payload octets sent (first transmissions)
    data_received: int = 0


@dataclass
class Report:
    ok: bool
    reason: str
    elapsed: float
    client_key: int | None
    server_key: int | None
    data_delivered: int  #: client octets the server acknowledged at data level
    data_planned: int
    server_data: int  #: server octets received in order at data level
    closure_state: str
    subflows: list[SubflowReport] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    #: TCP Fast Open: None (the capture's SYN had none), else what the live server did with it
    tfo: str | None = None
    #: the cookie the live server gave in its SYN/ACK (hex), to pass as --tfo-cookie next time
    tfo_cookie: str | None = None


class _Unacked:
    __slots__ = ("seq", "end", "packet", "sent_at", "tries")

    def __init__(self, seq: int, end: int, packet: bytes, now: float) -> None:
        self.seq, self.end, self.packet, self.sent_at, self.tries = seq, end, packet, now, 0


class _Subflow:
    def __init__(
        self,
        index: int,
        kind: str,
        local: tuple,
        remote: tuple,
        address_id: int | None,
        backup: bool,
        isn: int,
        nonce: int,
    ) -> None:
        self.index, self.kind, self.local, self.remote = index, kind, local, remote
        self.address_id, self.backup = address_id, backup
        self.state = "NEW"  # NEW SYN_SENT PRE_EST EST CLOSED FAILED
        self.result = "not opened"
        self.isn = isn
        self.snd_nxt = isn
        self.snd_una = isn
        self.rcv_nxt: int | None = None
        self.irs: int | None = None
        self.wnd = 0
        self.nonce_a = nonce
        self.nonce_b: int | None = None
        self.unacked: list[_Unacked] = []
        self.rto_base = 0.2
        self.join_ack: bytes | None = None  # our MP_JOIN third ACK, sent again until it is acknowledged
        self.join_ack_at = 0.0
        self.join_tries = 0
        self.mappings: list[tuple[int, int, int]] = []  # server's: (ssn, dsn64, length)
        self.fin_sent = False
        self.fin_acked = False
        self.peer_fin = False
        self.opened_at = 0.0
        self.report = SubflowReport(index, kind, _ep(local), _ep(remote), "not opened")
        self.mss = 536
        # Subflow sequence numbers in DSS mappings are relative to the ISN, past any Fast Open data
        # the SYN carried: that data is outside the data-level stream (Linux: ssn_offset += len).
        self.ssn_off = 0
        self.flow: Flow | None = None  # the packet builder of this subflow's direction to the server


def _ep(ep: tuple) -> str:
    a, p = ep
    return f"[{a}]:{p}" if a.version == 6 else f"{a}:{p}"


class Replay:
    """Play ``plan``'s client side.  ``local`` maps each captured client address to a local one,
    ``servers`` each captured server address to a live one (the first subflow's server address
    defaults to ``target``); ``target_port`` replaces the captured server port."""

    def __init__(
        self,
        plan: ReplayPlan,
        *,
        target: Address,
        target_port: int | None = None,
        local: dict | None = None,
        servers: dict | None = None,
        new_key: bool = False,
        timing: str | float = "fast",
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
        if not plan.subflows:
            raise ReplayError("the capture's client opened no subflow")
        if require_payload and plan.cut_octets:
            raise ReplayError(
                f"the capture lacks {plan.cut_octets} octets of the client's data (cut by its "
                "snapshot length) and --require-payload was given"
            )
        self.plan = plan
        self.rng = rng or random.SystemRandom()
        self.local = {ipaddress.ip_address(k): ipaddress.ip_address(v) for k, v in (local or {}).items()}
        self.servers = {ipaddress.ip_address(k): ipaddress.ip_address(v) for k, v in (servers or {}).items()}
        first = plan.subflows[0]
        self.servers.setdefault(first.server[0], ipaddress.ip_address(target))
        self.port = target_port
        self.timing = timing
        self.rto, self.max_tries, self.timeout = rto, max_tries, timeout
        self.fill = fill
        self.mss = mss
        if new_key or plan.client_key is None:
            self.key_c = crypto.generate_key(1)
        else:
            self.key_c = plan.client_key
        self.key_s: int | None = None
        self.idsn_c = crypto.key_idsn(self.key_c, 1)
        self.idsn_s: int | None = None
        self.token_s: int | None = None
        self.checksum = plan.checksum
        missing = sorted({str(ps.server[0]) for ps in plan.subflows if self.servers.get(ps.server[0]) is None})
        if missing:
            raise ReplayError(
                f"no live address for the captured server address(es) {', '.join(missing)}: give --map CAPTURED=LIVE"
            )
        self.subflows: list[_Subflow] = []
        for ps in plan.subflows:
            lad = self.local.get(ps.client[0], ps.client[0])
            rad = self.servers.get(ps.server[0])
            sf = _Subflow(
                ps.index,
                ps.kind,
                (lad, ps.client[1]),
                (rad, self.port or ps.server[1]),
                ps.address_id,
                ps.backup,
                self.rng.getrandbits(32),
                self.rng.getrandbits(32),
            )
            sf.rto_base = rto
            sf.flow = Flow(sf.local[0], sf.remote[0], sf.local[1], sf.remote[1])
            self.subflows.append(sf)
        self.by_index = {sf.index: sf for sf in self.subflows}
        self.by_flow = {(*sf.local, *sf.remote): sf for sf in self.subflows}  # a server packet's subflow
        if len(self.by_flow) != len(self.subflows):
            raise ReplayError("two subflows would have the same addresses and ports: check --map")
        for sf in self.subflows:
            if sf.local[0].version != sf.remote[0].version:
                raise ReplayError(
                    f"subflow {sf.index}: local {sf.local[0]} and server {sf.remote[0]} are not the "
                    "same IP version: give --map"
                )
        self.closure = ClosureMachine()
        # TCP Fast Open (RFC 7413; with MPTCP, RFC 8684 Appendix B): the capture's SYN data goes on
        # our SYN with its cookie (or ``tfo_cookie``).  A server that takes it maps it below the
        # IDSN, as the capture shows; one that does not gets it after the handshake, at DSN 1, and
        # the planned data moves up by its length.
        self.syn_data = plan.syn_data + bytes([fill]) * plan.syn_cut if plan.syn_data else b""
        self.tfo_option = None
        if tfo and (plan.tfo_cookie is not None or tfo_cookie is not None):
            self.tfo_option = FastOpen(cookie=tfo_cookie if tfo_cookie is not None else plan.tfo_cookie)
        # At most MSS - 40 octets on the SYN, as Linux sends: room for the SYN's own options.
        self.syn_payload = self.syn_data[: max(0, mss - 40)] if self.tfo_option is not None else b""
        self.syn_answered = False  # a SYN/ACK with MP_CAPABLE came back (Fast Open settled)
        self.syn_taken = 0  # SYN data octets the server acknowledged with its SYN/ACK
        self.server_cookie: bytes | None = None
        self.data_una = (self.idsn_c + 1) & _M64  # client data acknowledged by the server (64 bits)
        self._plan_segments(b"" if self.syn_payload else self.syn_data)
        self.dfin_sent_at: float | None = None
        self.dfin_tries = 0
        self.rcv_ranges: list[list[int]] = []  # server data received: DSN ranges not yet contiguous
        self.rcv_next: int | None = None  # next server DSN expected in order (our DATA_ACK)
        self.server_dfin: int | None = None
        self.mpc_data_sent = False
        self.next_signal = 0  # next MP_PRIO / REMOVE_ADDR of the plan
        self.conn_wnd = 0  # the server's latest window, from its latest DATA_ACK
        # Once both DATA_FINs are acknowledged the connection is closed (RFC 8684 §3.3.3); subflows
        # whose FIN exchange has not finished within ``linger`` are then reset.
        self.time_wait_since: float | None = None
        self.linger = max(2.0, 8 * rto)
        self.data_progress = 0.0  # when the server last acknowledged new data at data level
        self.reinject_tries = 0
        self.sent_high = (self.idsn_c + 1) & _M64  # end of the data sent so far (64-bit DSN)
        self.events: list[Event] = []
        self.t0: float | None = None
        self.last_heard = 0.0
        self.done = False
        self.failed: str | None = None
        self.ended_at: float | None = None
        self.addaddr: dict[int, tuple] = {}

    # ------------------------------------------------------------------ helpers

    def _plan_segments(self, lead: bytes) -> None:
        """The segments to send: ``lead`` (SYN data the server did not take) at DSN 1, then the
        planned ones after it; octets cut by the capture's snaplen filled with ``fill``, any
        longer than our MSS split (a live path may be narrower than the captured one)."""
        mss = self.mss
        self.segments: list[PlannedSegment] = []
        for k in range(0, len(lead), mss):
            self.segments.append(PlannedSegment(0, 1 + k, lead[k : k + mss], 0, 0))
        for seg in self.plan.segments:
            full = seg.data + bytes([self.fill]) * seg.cut
            for k in range(0, len(full), mss):
                self.segments.append(
                    PlannedSegment(seg.subflow, seg.dsn + len(lead) + k, full[k : k + mss], 0, seg.time_ns)
                )
        self._pace_at: float | None = None  # when pacing (captured timing) lets the next segment go
        self.next_seg = 0  # first segment, in capture order, not sent yet
        self.sent = bytearray(len(self.segments))
        self.unsent = len(self.segments)
        self.unsent_heap = [(seg.dsn, k) for k, seg in enumerate(self.segments)]
        heapq.heapify(self.unsent_heap)
        self.data_len = self.plan.data_len + len(lead)  # data-level octets
        self.data_end = (self.idsn_c + 1 + self.data_len) & _M64

    def _event(self, now: float, subflow: int | None, text: str) -> None:
        self.events.append(Event(now - (self.t0 or now), subflow, text))

    def _fail(self, now: float, reason: str) -> None:
        if not self.done:
            self.failed = reason
            self.done = True
            self.ended_at = now
            self._event(now, None, f"replay failed: {reason}")

    def _packet(self, sf: _Subflow, flags: int, options=(), payload: bytes = b"", seq: int | None = None) -> bytes:
        ack = sf.rcv_nxt if sf.rcv_nxt is not None else 0
        if sf.rcv_nxt is not None:
            flags |= _ACK
        pkt = tcp_packet(
            sf.local[0],
            sf.remote[0],
            sf.local[1],
            sf.remote[1],
            sf.snd_nxt if seq is None else seq,
            ack,
            flags,
            _WINDOW,
            options,
            payload,
        )
        sf.report.sent += 1
        return pkt

    def _data_ack(self) -> int:
        return self.rcv_next if self.rcv_next is not None else 0

    def _ack_dss(self) -> Dss:
        return Dss(flags=_DSS_ACK, data_ack=self._data_ack())

    # ------------------------------------------------------------------ the outside

    def start(self, now: float) -> list[bytes]:
        self.t0 = now
        self.last_heard = now
        sf = self.subflows[0]
        self._event(
            now,
            0,
            f"SYN with MP_CAPABLE from {_ep(sf.local)} to {_ep(sf.remote)}"
            f" (client key {self.key_c:#018x}{', captured' if self.key_c == self.plan.client_key else ', new'})",
        )
        return [self._syn(sf, now)]

    def _syn(self, sf: _Subflow, now: float) -> bytes:
        payload = b""
        if sf.kind == "MP_CAPABLE":
            flags = MpCapableFlags.HMAC_SHA | (MpCapableFlags.CHECKSUM_REQUIRED if self.checksum else 0)
            opts = [Mss(mss=self.mss), MpCapable(version=1, flags=MpCapableFlags(flags))]
            if self.tfo_option is not None:
                opts.append(self.tfo_option)
                payload = self.syn_payload
        else:
            opts = [
                Mss(mss=self.mss),
                MpJoinSyn(backup=sf.backup, address_id=sf.address_id or 0, token=self.token_s, nonce=sf.nonce_a),
            ]
        sf.state = "SYN_SENT"
        sf.opened_at = now
        pkt = self._packet(sf, _SYN, opts, payload, seq=sf.isn)
        sf.snd_nxt = (sf.isn + 1) & _M32
        sf.unacked.append(_Unacked(sf.isn, (sf.snd_nxt + len(payload)) & _M32, pkt, now))
        return pkt

    def _syn_acked(self, sf: _Subflow, ack: int) -> bool:
        """``ack`` acknowledges our SYN (and possibly the Fast Open data on it)."""
        extra = len(self.syn_payload) if sf.kind == "MP_CAPABLE" else 0
        return ((ack - sf.isn - 1) & _M32) <= extra

    def deadline(self) -> float | None:
        if self.done:
            return None
        times = [self.last_heard + self.timeout]
        for sf in self.subflows:
            if sf.unacked:
                u = sf.unacked[0]
                times.append(u.sent_at + sf.rto_base * (2**u.tries))
            if sf.join_ack is not None:
                times.append(sf.join_ack_at + self.rto * (2**sf.join_tries))
        if self.dfin_sent_at is not None:
            times.append(self.dfin_sent_at + self.rto * (2**self.dfin_tries))
        if (
            0 < ((self.sent_high - self.data_una) & _M64) < (1 << 63)
            and not any(sf.unacked for sf in self.subflows)
            and self._any_established() is not None
        ):
            times.append(self.data_progress + max(2 * self.rto, 0.2) * (2**self.reinject_tries))
        if self.time_wait_since is not None:
            times.append(self.time_wait_since + self.linger)
        if self._pace_at is not None:
            times.append(self._pace_at)  # the next segment waits for its captured time
        return min(times)

    def _pacing(self) -> float | None:
        """When the next planned segment may go, with captured timing."""
        if self.timing == "fast" or self.t0 is None:
            return None
        scale = 1.0 if self.timing == "as-captured" else 1.0 / float(self.timing)
        return self.t0 + self.segments[self.next_seg].time_ns / 1e9 * scale

    def poll(self, now: float) -> list[bytes]:
        if self.done:
            return []
        out: list[bytes] = []
        if now - self.last_heard >= self.timeout:
            self._fail(now, f"the target sent nothing for {self.timeout:g} s")
            return out
        for sf in self.subflows:
            if sf.unacked:
                u = sf.unacked[0]
                if now >= u.sent_at + sf.rto_base * (2**u.tries):
                    if u.tries >= self.max_tries:
                        self._subflow_failed(sf, now, f"no answer after {u.tries + 1} transmissions")
                        continue
                    u.tries += 1
                    u.sent_at = now
                    sf.report.retransmitted += 1
                    sf.report.sent += 1
                    out.append(u.packet)
            if sf.join_ack is not None and now >= sf.join_ack_at + self.rto * (2**sf.join_tries):
                if sf.join_tries >= self.max_tries:
                    self._subflow_failed(sf, now, "the MP_JOIN ACK was never acknowledged")
                    sf.join_ack = None
                else:
                    sf.join_tries += 1
                    sf.join_ack_at = now
                    sf.report.retransmitted += 1
                    sf.report.sent += 1
                    out.append(sf.join_ack)
        if self.dfin_sent_at is not None and now >= self.dfin_sent_at + self.rto * (2**self.dfin_tries):
            if self.dfin_tries >= self.max_tries:
                self._fail(now, "the DATA_FIN was never acknowledged")
                return out
            self.dfin_tries += 1
            self._closure(now, "RTO", out)
        if self.time_wait_since is not None and now >= self.time_wait_since + self.linger:
            self.time_wait_since = None
            for sf in self.subflows:
                if sf.state in ("EST", "PRE_EST"):
                    self._event(
                        now,
                        sf.index,
                        f"FIN exchange unfinished {self.linger:g} s after both DATA_FINs were acknowledged: reset",
                    )
                    out.append(self._packet(sf, _RST))
                    sf.state = "CLOSED"
                    sf.result = "closed (reset after the connection closed)"
                    sf.unacked.clear()
                elif sf.state == "SYN_SENT":
                    self._subflow_failed(sf, now, "never opened before the connection closed")
            self._check_all_closed(now, out)
        out += self._reinject(now)
        out += self._pump(now)
        return out

    def _reinject(self, now: float) -> list[bytes]:
        """Connection-level retransmission (RFC 8684 §3.3.6): data that every subflow has acknowledged
        but the connection has not (DATA_ACK stuck) is sent again, with the same DSNs, on an
        established subflow."""
        if (
            ((self.data_una - self.sent_high) & _M64) < (1 << 63)
            or any(sf.unacked for sf in self.subflows)
            or now < self.data_progress + max(2 * self.rto, 0.2) * (2**self.reinject_tries)
        ):
            return []
        sf = self._any_established()
        if sf is None:
            return []
        if self.reinject_tries >= self.max_tries:
            self._fail(now, "data-level retransmissions were never acknowledged")
            return []
        self.reinject_tries += 1
        una = (self.data_una - self.idsn_c) & _M64
        out = []
        budget = self.conn_wnd  # at most a window's worth, lowest DSN first
        for seg in sorted((g for k, g in enumerate(self.segments) if self.sent[k]), key=lambda g: g.dsn):
            if seg.dsn + len(seg.data) > una and budget > 0:
                data = seg.data[max(0, una - seg.dsn) :]
                budget -= len(data)
                out.append(self._send_data(sf, max(seg.dsn, una), data, now))
        self._event(now, sf.index, f"data-level retransmission from DSN {una} (relative): {len(out)} segment(s)")
        return out

    def _subflow_failed(self, sf: _Subflow, now: float, why: str) -> None:
        sf.state = "FAILED"
        sf.result = f"failed: {why}"
        sf.unacked.clear()
        self._event(now, sf.index, f"given up: {why}")
        if sf.index == self.subflows[0].index and sf.rcv_nxt is None:
            self._fail(now, f"the first subflow could not be opened: {why}")

    # ------------------------------------------------------------------ receiving

    def receive(self, data: bytes, now: float) -> list[bytes]:
        if self.done:
            return []
        try:
            pkt = decode_frame(101, data)
        except MptcpspecError:
            return []
        if pkt is None:
            return []
        sf = self.by_flow.get((pkt.dst, pkt.dport, pkt.src, pkt.sport))
        if sf is None or sf.state in ("NEW",):
            return []
        self.last_heard = now
        sf.report.received += 1
        out: list[bytes] = []
        opts = decode_mptcp_options(pkt.options, 1) if pkt.options else ()
        flags = int(pkt.flags)
        if flags & _RST:
            rst = next((o for o in opts if type(o) is MpTcpRst), None)
            fc = next((o for o in opts if type(o) is MpFastclose), None)
            why = f" (MP_TCPRST reason {getattr(rst.reason, 'name', rst.reason)})" if rst else ""
            sf.state = "CLOSED" if sf.fin_acked else "FAILED"
            sf.result = "reset" + why
            sf.unacked.clear()
            sf.join_ack = None
            self._event(now, sf.index, f"reset by the server{why}")
            if fc is not None:
                self._closure(now, "rcv RST+MP_FASTCLOSE", out, key_valid=fc.receiver_key == self.key_c)
            elif sf is self.subflows[0] and sf.rcv_nxt is None:
                self._fail(now, "the server refused the connection (RST)")
            self._check_all_closed(now, out)
            return out
        if flags & _SYN and flags & _ACK:
            return self._synack(sf, pkt, opts, now)
        if sf.state == "SYN_SENT" and flags & _ACK and not self._syn_acked(sf, pkt.ack):
            # RFC 9293 §3.10.7.3: an unacceptable ACK in SYN-SENT is answered with <SEQ=SEG.ACK><RST>.
            # It comes from a stale connection of the same addresses and ports on the server (an
            # earlier replay of the same capture): the reset clears it for our next SYN.
            out.append(tcp_packet(sf.local[0], sf.remote[0], sf.local[1], sf.remote[1], pkt.ack, 0, _RST, 0))
            sf.report.sent += 1
            return out
        if sf.state not in ("PRE_EST", "EST") or sf.rcv_nxt is None:
            return out
        # Acknowledgments.
        if flags & _ACK:
            if _after(pkt.ack, sf.snd_una) or pkt.ack == sf.snd_una:
                if _after(pkt.ack, sf.snd_una):
                    sf.snd_una = pkt.ack
                    while sf.unacked and not _after(sf.unacked[0].end, pkt.ack):
                        sf.unacked.pop(0)
                    if sf.unacked:
                        sf.unacked[0].sent_at = now
                        sf.unacked[0].tries = 0
                sf.wnd = pkt.window
            if sf.fin_sent and pkt.ack == sf.snd_nxt:
                sf.fin_acked = True
        if sf.state == "PRE_EST":
            sf.state = "EST"
            sf.result = "established"
            sf.join_ack = None
            self._event(now, sf.index, "MP_JOIN established (the server acknowledged our ACK)")
        # The receive window is the connection's, relative to the DATA_ACK of the same packet
        # (RFC 8684 §3.3.5): the latest one counts.
        self.conn_wnd = pkt.window
        # MPTCP signals.
        for o in opts:
            t = type(o)
            if t is Dss:
                self._dss_in(sf, o, now, out)
            elif t is AddAddr and not o.echo:
                self.addaddr[o.address_id] = (o.address, o.port)
                self._event(
                    now,
                    sf.index,
                    f"ADD_ADDR id {o.address_id} {o.address}" + (f" port {o.port}" if o.port else "") + ": echoed",
                )
                out.append(
                    self._packet(
                        sf,
                        0,
                        [AddAddr(echo=True, address_id=o.address_id, address=o.address, port=o.port), self._ack_dss()],
                    )
                )
            elif t is MpFastclose:
                self._closure(now, "rcv MP_FASTCLOSE", out, key_valid=o.receiver_key == self.key_c)
        # Data and FIN.
        n = pkt.payload_len
        if n or flags & _FIN:
            if pkt.seq == sf.rcv_nxt:
                if n:
                    self._data_in(sf, pkt, opts, now)
                    sf.rcv_nxt = (sf.rcv_nxt + n) & _M32
                    sf.report.data_received += n
                if flags & _FIN:
                    sf.rcv_nxt = (sf.rcv_nxt + 1) & _M32
                    sf.peer_fin = True
                    self._event(now, sf.index, "FIN from the server")
            out.append(self._packet(sf, 0, [self._ack_dss()]))
        self._server_data_fin(now, out)  # a DATA_FIN may come on a pure ACK
        if sf.fin_acked and sf.peer_fin and sf.state == "EST":
            sf.state = "CLOSED"
            sf.result = "closed"
            self._event(now, sf.index, "closed (both FINs acknowledged)")
            self._check_all_closed(now, out)
        out += self._pump(now)
        return out

    def _synack(self, sf: _Subflow, pkt, opts, now: float) -> list[bytes]:
        out: list[bytes] = []
        if sf.state != "SYN_SENT" or not self._syn_acked(sf, pkt.ack):
            if sf.state in ("FAILED", "CLOSED") or sf.rcv_nxt is None or (pkt.seq + 1) & _M32 != sf.rcv_nxt:
                return out
            # Our third ACK was lost and the server repeats its SYN/ACK: send it again.
            if sf.kind == "MP_JOIN":
                if sf.join_ack is not None:
                    out.append(sf.join_ack)
            else:
                out.append(self._packet(sf, 0, self._third_ack_options()))
            return out
        sf.irs = pkt.seq
        sf.rcv_nxt = (pkt.seq + 1) & _M32
        tcp_opts = decode_tcp_options(pkt.options, 1, strict=False).options
        mss = next((o.mss for o in tcp_opts if type(o) is Mss), 536)
        sf.mss = max(min(mss, self.mss), _MIN_MSS)
        sf.snd_una = pkt.ack
        sf.unacked.clear()
        sf.wnd = pkt.window
        if sf.kind == "MP_CAPABLE":
            self.conn_wnd = pkt.window
            mpc = next((o for o in opts if type(o) is MpCapable), None)
            if mpc is None or mpc.sender_key is None:
                self._fail(now, "the server answered without MP_CAPABLE: it does not speak MPTCP (fallback to TCP)")
                return out
            if mpc.version != 1:
                self._fail(now, f"the server answered with MPTCP version {mpc.version}")
                return out
            self.key_s = mpc.sender_key
            self.token_s = crypto.key_token(self.key_s, 1)
            self.idsn_s = crypto.key_idsn(self.key_s, 1)
            self.rcv_next = (self.idsn_s + 1) & _M64
            if mpc.flags & MpCapableFlags.CHECKSUM_REQUIRED and not self.checksum:
                self.checksum = True
                self._event(now, 0, "the server requires DSS checksums")
            sf.state = "EST"
            sf.result = "established"
            self._event(
                now,
                0,
                f"MP_CAPABLE established: server key {self.key_s:#018x}, "
                f"token {self.token_s:#010x}" + (", DSS checksums" if self.checksum else ""),
            )
            if self.tfo_option is not None:
                self._fast_open(sf, pkt, tcp_opts, now)
            out.append(self._packet(sf, 0, self._third_ack_options()))
        else:
            j = next((o for o in opts if type(o) is MpJoinSynAck), None)
            if j is None:
                self._subflow_failed(sf, now, "the server answered without MP_JOIN")
                out.append(self._packet(sf, _RST, [MpTcpRst(reason=0)]))
                return out
            sf.nonce_b = j.nonce
            want = crypto.join_synack_hmac(self.key_s, self.key_c, j.nonce, sf.nonce_a, 1)
            if want != j.truncated_hmac:
                self._subflow_failed(
                    sf,
                    now,
                    f"the server's MP_JOIN HMAC {j.truncated_hmac:#018x} is not {want:#018x}: wrong key or token",
                )
                out.append(self._packet(sf, _RST, [MpTcpRst(reason=0)]))
                return out
            hmac = crypto.join_ack_hmac(self.key_c, self.key_s, sf.nonce_a, j.nonce, 1)
            sf.state = "PRE_EST"
            sf.join_ack = self._packet(sf, 0, [MpJoinAck(hmac=hmac)])
            sf.join_ack_at = now
            self._event(now, sf.index, f"MP_JOIN SYN/ACK HMAC verified (server address id {j.address_id})")
            out.append(sf.join_ack)
        out += self._pump(now)
        return out

    def _fast_open(self, sf: _Subflow, pkt, tcp_opts, now: float) -> None:
        """What the server did with our Fast Open SYN (RFC 7413 §4.2.2)."""
        self.syn_answered = True
        cookie = next((o.cookie for o in tcp_opts if type(o) is FastOpen), None)
        if cookie:
            self.server_cookie = cookie
            self._event(now, 0, f"TCP Fast Open cookie from the server: {cookie.hex()}")
        taken = (pkt.ack - sf.isn - 1) & _M32
        if taken:
            # The kernel maps SYN data below the IDSN: the data-level stream starts after it.
            self.syn_taken = taken
            sf.snd_nxt = sf.snd_una = pkt.ack
            sf.ssn_off = taken
            sf.report.data_sent += taken
            rest = self.syn_data[taken:]
            self._event(now, 0, f"TCP Fast Open: the server took the {taken} octets of SYN data")
        else:
            rest = self.syn_data
            if rest:
                self._event(
                    now,
                    0,
                    f"TCP Fast Open: the server did not take the {len(rest)} octets of SYN data "
                    "(cookie refused or Fast Open off): they go after the handshake",
                )
        if rest:
            self.syn_payload = self.syn_payload[:taken]
            self._plan_segments(rest)

    def _third_ack_options(self) -> list:
        flags = MpCapableFlags.HMAC_SHA | (MpCapableFlags.CHECKSUM_REQUIRED if self.checksum else 0)
        return [MpCapable(version=1, flags=MpCapableFlags(flags), sender_key=self.key_c, receiver_key=self.key_s)]

    def _dss_in(self, sf: _Subflow, o: Dss, now: float, out: list) -> None:
        f = int(o.flags)
        if f & 0x01 and o.data_ack is not None:
            ack = o.data_ack if f & 0x02 else expand(o.data_ack, self.data_una)
            if ((ack - self.data_una) & _M64) < (1 << 63) and ack != self.data_una:
                self.data_una = ack
                self.data_progress = now
                self.reinject_tries = 0
            if self.dfin_sent_at is not None and ((ack - self.data_end - 1) & _M64) < (1 << 63):
                self.dfin_sent_at = None
                self._closure(now, "rcv DATA_ACK[DFIN]", out)
        if f & 0x04 and o.dsn is not None and self.idsn_s is not None:
            dsn = o.dsn if f & 0x08 else expand(o.dsn, self.rcv_next or self.idsn_s)
            if f & 0x10:
                self.server_dfin = (dsn + o.data_level_length - 1) & _M64
            if o.data_level_length and not (f & 0x10 and o.data_level_length == 1 and o.ssn == 0):
                sf.mappings.append((o.ssn, dsn, o.data_level_length - (1 if f & 0x10 else 0)))
                del sf.mappings[:-16]

    def _data_in(self, sf: _Subflow, pkt, opts, now: float) -> None:
        rel = (pkt.seq - sf.irs) & _M32
        for ssn, dsn, length in reversed(sf.mappings):
            if ssn <= rel < ssn + length:
                start = (dsn + rel - ssn) & _M64
                self._rcv_range(start, min(pkt.payload_len, ssn + length - rel))
                return

    def _rcv_range(self, start: int, n: int) -> None:
        """Server data [start, start+n) received: advance the DATA_ACK over what is now contiguous.

        Ranges are kept as offsets from the DATA_ACK (modulo 2**64), merged, and at most
        ``_MAX_RANGES`` of them: a hostile peer cannot make the list grow without bound."""
        if self.rcv_next is None:
            return
        lo = (start - self.rcv_next) & _M64
        if lo >= 1 << 63:  # starts before the DATA_ACK
            if ((start + n - self.rcv_next) & _M64) >= 1 << 63 or (start + n - self.rcv_next) & _M64 == 0:
                return
            lo = 0
        hi = (start + n - self.rcv_next) & _M64
        if hi > 1 << 62:
            return  # absurdly far ahead: ignore
        ranges = self.rcv_ranges
        ranges.append([lo, hi])
        ranges.sort()
        merged: list[list[int]] = []
        for a, b in ranges:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        if merged and merged[0][0] == 0:
            step = merged.pop(0)[1]
            self.rcv_next = (self.rcv_next + step) & _M64
            merged = [[a - step, b - step] for a, b in merged]
        self.rcv_ranges = merged[:_MAX_RANGES]

    def _server_data_fin(self, now: float, out: list) -> None:
        if self.server_dfin is not None and self.rcv_next == self.server_dfin:
            self.rcv_next = (self.server_dfin + 1) & _M64
            self._event(now, None, "DATA_FIN from the server")
            self._closure(now, "rcv DATA_FIN", out)

    # ------------------------------------------------------------------ closure machine

    def _closure(self, now: float, event: str, out: list, **guards) -> None:
        try:
            actions = self.closure.handle(event, **guards)
        except ProtocolError as e:
            self._event(now, None, f"closure machine refuses {event} in {self.closure.state.name}: {e}")
            return
        self._event(now, None, f"closure: {event} -> {self.closure.state.name}")
        if self.closure.state.name == "M_TIME_WAIT" and self.time_wait_since is None:
            self.time_wait_since = now
        for a in actions:
            name = a.name
            if a.kind == "snd" and name == "DATA_FIN":
                out.append(self._data_fin(now))
            elif a.kind == "snd" and name == "DATA_ACK[DFIN]":
                sf = self._any_established()
                if sf is not None:
                    out.append(self._packet(sf, 0, [self._ack_dss()]))
            elif name == "CLOSE_ALL_SUBFLOWS":
                for sf in self.subflows:
                    if sf.state in ("EST", "PRE_EST") and not sf.fin_sent:
                        out.append(self._fin(sf, now))
            elif a.kind == "snd" and name == "RST+MP_FASTCLOSE":
                for sf in self.subflows:
                    if sf.state in ("EST", "PRE_EST"):
                        out.append(self._packet(sf, _RST, [MpFastclose(receiver_key=self.key_s), MpTcpRst(reason=0)]))
                        sf.state = "CLOSED"
                        sf.result = "reset (MP_FASTCLOSE sent)"
                self._event(now, None, "MP_FASTCLOSE sent with the RST on every subflow (Option R)")
            elif name in ("RST_ALL_SUBFLOWS", "RST_OTHER_SUBFLOWS"):
                for sf in self.subflows:
                    if sf.state in ("EST", "PRE_EST", "SYN_SENT"):
                        out.append(self._packet(sf, _RST))
                        sf.state = "CLOSED"
                        sf.result = "reset"
            elif name == "DELETE_PCB":
                self.done = True
                self.ended_at = now
        if self.closure.is_final:
            self.done = True
            self.ended_at = now

    def _any_established(self) -> _Subflow | None:
        return next((s for s in self.subflows if s.state == "EST"), None)

    def _data_fin(self, now: float) -> bytes:
        sf = self._any_established() or self.subflows[0]
        csum = crypto.dss_checksum(self.data_end, 0, 1, b"") if self.checksum else None
        dss = Dss(
            flags=_DSS_DATA | DssFlags.DATA_FIN,
            data_ack=self._data_ack(),
            dsn=self.data_end,
            ssn=0,
            data_level_length=1,
            checksum=csum,
        )
        self.dfin_sent_at = now
        self._event(now, sf.index, f"DATA_FIN at DSN {self.data_len + 1} (relative)")
        return self._packet(sf, 0, [dss])

    def _fin(self, sf: _Subflow, now: float) -> bytes:
        pkt = self._packet(sf, _FIN, [self._ack_dss()])
        sf.unacked.append(_Unacked(sf.snd_nxt, (sf.snd_nxt + 1) & _M32, pkt, now))
        sf.snd_nxt = (sf.snd_nxt + 1) & _M32
        sf.fin_sent = True
        return pkt

    def _check_all_closed(self, now: float, out: list) -> None:
        if all(s.state in ("CLOSED", "FAILED", "NEW") for s in self.subflows):
            if self.closure.can_handle("ALL_SUBFLOWS_CLOSED"):
                self._closure(now, "ALL_SUBFLOWS_CLOSED", out)
            elif not self.done and self.closure.state.name not in (
                "M_FIN_WAIT_1",
                "M_FIN_WAIT_2",
                "M_CLOSING",
                "M_LAST_ACK",
            ):
                self._fail(now, "every subflow closed before the connection did")

    # ------------------------------------------------------------------ sending data

    def _pump(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        if self.done or self.key_s is None:
            return out
        # Subflows to open: joins, once the first subflow is established (at their captured time
        # relative to the first SYN, with captured timing).
        for sf, ps in zip(self.subflows, self.plan.subflows):
            if sf.state == "NEW" and sf.kind == "MP_JOIN" and self.closure.state.name == "M_ESTAB":
                if self.timing == "fast" or now >= self.t0 + ps.time_ns / 1e9 / (
                    1.0 if self.timing == "as-captured" else float(self.timing)
                ):
                    self._event(
                        now,
                        sf.index,
                        f"MP_JOIN SYN from {_ep(sf.local)} to {_ep(sf.remote)}, "
                        f"address id {sf.address_id}{', backup' if sf.backup else ''}",
                    )
                    out.append(self._syn(sf, now))
        segs = self.segments
        sent = self.sent
        self._pace_at = None
        while True:
            while self.next_seg < len(segs) and sent[self.next_seg]:
                self.next_seg += 1
            if self.next_seg >= len(segs):
                break
            k = self.next_seg
            seg = segs[k]
            at = self._pacing()
            if at is not None and now < at:
                self._pace_at = at
                break
            window = self.conn_wnd
            if ((self.idsn_c + seg.dsn - self.data_una) & _M64) + len(seg.data) > window:
                # The receive window is the connection's, counted from the DATA_ACK (RFC 8684
                # §3.3.5): when the next segment in capture order lies beyond it, fill the lowest
                # hole first (the capture's scheduler may have sent later data earlier).
                heap = self.unsent_heap
                while heap and sent[heap[0][1]]:
                    heapq.heappop(heap)
                if not heap:
                    break
                k = heap[0][1]
                seg = segs[k]
                if ((self.idsn_c + seg.dsn - self.data_una) & _M64) + len(seg.data) > window:
                    break
            sf = self.by_index.get(seg.subflow)
            if sf is None or sf.state in ("FAILED", "CLOSED"):
                sf = self.subflows[0]
            elif sf.state in ("SYN_SENT", "PRE_EST", "NEW") and now - (sf.opened_at or now) < 1.0:
                break  # the planned subflow is opening: wait for it (a second at most)
            if sf.state != "EST":
                sf = self._any_established()
                if sf is None:
                    break
            data = seg.data
            room = sf.mss - _OPTION_ROOM
            if len(data) > room:  # a narrower path than the captured one: the rest becomes a segment
                rest = PlannedSegment(seg.subflow, seg.dsn + room, data[room:], 0, seg.time_ns)
                segs.append(rest)
                sent.append(0)
                self.unsent += 1
                heapq.heappush(self.unsent_heap, (rest.dsn, len(segs) - 1))
                data = data[:room]
            if ((sf.snd_nxt - sf.snd_una) & _M32) + len(data) > sf.wnd:
                break
            out.append(self._send_data(sf, seg.dsn, data, now))
            sent[k] = 1
            self.unsent -= 1
        while self.next_signal < len(self.plan.signals):
            sig = self.plan.signals[self.next_signal]
            sent_to = (self.sent_high - self.idsn_c) & _M64
            sf = self.by_index.get(sig.subflow)
            if sent_to < sig.after or sf is None or sf.state not in ("EST", "FAILED", "CLOSED"):
                break
            self.next_signal += 1
            if sf.state != "EST":
                continue
            out.append(self._packet(sf, 0, [sig.option, self._ack_dss()]))
            self._event(
                now,
                sf.index,
                f"{sig.option.NAME} as in the capture: "
                + (
                    f"backup={int(sig.option.backup)}"
                    if type(sig.option) is MpPrio
                    else f"address id(s) {', '.join(map(str, sig.option.address_ids))}"
                ),
            )
        if (
            self.unsent == 0
            and self.closure.state.name in ("M_ESTAB", "M_CLOSE_WAIT")
            and self.data_una == self.data_end
            and self.dfin_sent_at is None
        ):
            if self.plan.fastclose:
                # The capture's client ended with MP_FASTCLOSE (Option R: a RST carrying it, RFC 8684 §3.5).
                self._closure(now, "M_FASTCLOSE_RST", out)
            else:
                self._closure(now, "M_CLOSE", out)
        return out

    def _send_data(self, sf: _Subflow, rel_dsn: int, data: bytes, now: float) -> bytes:
        dsn = (self.idsn_c + rel_dsn) & _M64
        ssn = (sf.snd_nxt - sf.isn - sf.ssn_off) & _M32
        if not self.mpc_data_sent and sf is self.subflows[0] and rel_dsn == 1 and ssn == 1:
            # RFC 8684 §3.1: the first data carries MP_CAPABLE with both keys and its length: the
            # implicit mapping is DSN IDSN + 1, subflow sequence number 1.
            flags = MpCapableFlags.HMAC_SHA | (MpCapableFlags.CHECKSUM_REQUIRED if self.checksum else 0)
            csum = crypto.dss_checksum(dsn, ssn, len(data), data) if self.checksum else None
            opts = [
                MpCapable(
                    version=1,
                    flags=MpCapableFlags(flags),
                    sender_key=self.key_c,
                    receiver_key=self.key_s,
                    data_level_length=len(data),
                    checksum=csum,
                )
            ]
            self.mpc_data_sent = True
        else:
            csum = crypto.dss_checksum(dsn, ssn, len(data), data) if self.checksum else None
            opts = None
        if opts is None:
            # The hot path: DSS (DATA_ACK, mapping) built by struct; tests check it against the codec.
            rcv = self.rcv_next
            pkt = sf.flow.packet(
                sf.snd_nxt,
                sf.rcv_nxt or 0,
                _PSH | (_ACK if sf.rcv_nxt is not None else 0),
                _WINDOW,
                dss_data_option(rcv if rcv is not None else 0, dsn, ssn, len(data), csum),
                data,
            )
            sf.report.sent += 1
        else:
            pkt = self._packet(sf, _PSH, opts, data)
        if not self.data_progress:
            self.data_progress = now
        end = (dsn + len(data)) & _M64
        if ((end - self.sent_high) & _M64) < (1 << 63):
            self.sent_high = end
        sf.unacked.append(_Unacked(sf.snd_nxt, (sf.snd_nxt + len(data)) & _M32, pkt, now))
        sf.snd_nxt = (sf.snd_nxt + len(data)) & _M32
        sf.report.data_sent += len(data)
        return pkt

    # ------------------------------------------------------------------ the end

    def report(self, now: float) -> Report:
        end = self.ended_at if self.ended_at is not None else now
        ok = self.done and self.failed is None and self.closure.state.name == "M_CLOSED"
        reason = self.failed or ("closed cleanly" if ok else f"unfinished: closure in {self.closure.state.name}")
        subs = []
        for sf in self.subflows:
            sf.report.result = sf.result
            subs.append(sf.report)
        server_data = 0 if self.rcv_next is None or self.idsn_s is None else (self.rcv_next - self.idsn_s - 1) & _M64
        if self.server_dfin is not None and self.rcv_next == (self.server_dfin + 1) & _M64:
            server_data -= 1
        delivered = (self.data_una - self.idsn_c - 1) & _M64
        if delivered > self.data_len:  # the DATA_FIN's octet
            delivered = self.data_len
        tfo = None
        if self.tfo_option is not None:
            if not self.syn_answered:
                tfo = "sent on the SYN; no SYN/ACK with MP_CAPABLE came back"
            elif self.syn_taken:
                tfo = f"SYN data taken ({self.syn_taken} octets)" + (
                    "; the rest sent after the handshake" if self.syn_taken < len(self.syn_data) else ""
                )
            elif self.syn_data:
                tfo = "SYN data not taken: sent after the handshake"
            else:
                tfo = "cookie sent, no SYN data" if self.tfo_option.cookie else "cookie request"
        elif self.plan.tfo_cookie is not None:
            tfo = "not used (--no-tfo)" + (": SYN data sent after the handshake" if self.syn_data else "")
        return Report(
            ok,
            reason,
            end - (self.t0 or end),
            self.key_c,
            self.key_s,
            delivered + self.syn_taken,
            self.plan.data_len + len(self.syn_data),
            server_data,
            self.closure.state.name,
            subs,
            [str(e) for e in self.events],
            tfo=tfo,
            tfo_cookie=self.server_cookie.hex() if self.server_cookie else None,
        )
