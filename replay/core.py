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
capture has it (:mod:`replay.sending`), within each subflow's congestion window; lost segments are
sent again as a TCP sender does (SACK, fast retransmit and recovery, a tail loss probe, the
retransmission timer from measured round trips: :mod:`replay.subflow`, :mod:`replay.recovery`),
a stalled subflow's data also on another subflow, and data the connection does not acknowledge at
data level (:mod:`replay.datalevel`).  The connection closes with DATA_FIN, driven by the closure machine
generated from ``spec/closure.fsm`` (:mod:`replay.closing`), then the subflows' FINs.

The parts share one :class:`~replay.connection.Connection`: the handshake
(:mod:`replay.handshake`), what the server sends on open subflows (:mod:`replay.receiving`), what
we send on our own (:mod:`replay.sending`) and the closing; this module routes packets and timers
to them.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping

from mptcpspec.capture.packets import TcpFlags, decode_frame
from mptcpspec.capture.pcap import LinkType
from mptcpspec.codec import crypto
from mptcpspec.codec.options import MpFail, MptcpItem, MpTcpRst, decode_mptcp_options
from mptcpspec.errors import MptcpspecError
from mptcpspec.replay.closing import Closing
from mptcpspec.replay.connection import Connection, Keys
from mptcpspec.replay.datalevel import OutgoingData
from mptcpspec.replay.engine import Engine
from mptcpspec.replay.events import (
    AbortCause,
    ConnectionOpening,
    InfiniteMapping,
    MpFailAnswer,
    MpFailReceived,
    SubflowReset,
)
from mptcpspec.replay.handshake import Handshake
from mptcpspec.replay.plan import ReplayPlan
from mptcpspec.replay.receiving import Receiver
from mptcpspec.replay.recovery import MIN_RTO
from mptcpspec.replay.report import Report, SubflowReport
from mptcpspec.replay.sending import BURST_MAX, Sender
from mptcpspec.replay.setup import (
    Address,
    ReplayError,
    ReplayOptions,
    SetupProblem,
    Timing,
    live_endpoints,
    show_endpoint,
)
from mptcpspec.replay.subflow import OPEN, Subflow, SubflowState

__all__ = ["Replay", "ReplayError", "Report", "SubflowReport"]

FIN, SYN, RST, ACK = int(TcpFlags.FIN), int(TcpFlags.SYN), int(TcpFlags.RST), int(TcpFlags.ACK)


def _reason(opts: tuple[MptcpItem, ...]) -> int | None:
    """The MP_TCPRST reason a reset carries, if any."""
    return next((o.reason for o in opts if type(o) is MpTcpRst), None)


LINKTYPE_RAW = int(LinkType.RAW)
TIME_WAIT = 0.5  #: seconds in TIME-WAIT after a clean close: a Linux server sends its FIN again after 200 ms


class Replay(Engine):
    """Play ``plan``'s client side.  ``local`` maps each captured client address to a local one,
    ``servers`` each captured server address to a live one (the first subflow's server address
    defaults to ``target``); ``target_port`` replaces the captured server port.  The other
    arguments are those of :class:`~replay.setup.ReplayOptions`; ``rng`` draws ISNs and nonces;
    ``min_rto`` is the least retransmission timeout once round trips are measured (RFC 6298, with
    Linux's floor below its 1 s: :data:`~replay.recovery.MIN_RTO`); ``time_wait``: the seconds the
    replay stays in TIME-WAIT after a clean close, acknowledging a server's FIN sent again (our
    last ACK lost), before :attr:`done`.
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
        min_rto: float = MIN_RTO,
        time_wait: float = TIME_WAIT,
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
        super().__init__(time_wait)
        rng = rng or random.SystemRandom()
        fresh = new_key or plan.client_key is None
        keys = Keys(crypto.generate_key(1) if fresh else plan.client_key or 0, not fresh, plan.checksum)
        subflows = []
        for ps, mine, theirs in endpoints:
            isn = rng.getrandbits(32)
            subflows.append(Subflow(ps, mine, theirs, isn, rng.getrandbits(32), rto, min_rto, self.clock))
        self.conn = conn = Connection(plan, options, keys, subflows)
        self.closing = Closing(conn)
        self.handshake = Handshake(conn)
        self.sender = Sender(conn, self.handshake, self.closing)
        self.receiver = Receiver(conn, self.closing)

    # -- what it is and what happened

    @property
    def plan(self) -> ReplayPlan:
        return self.conn.plan

    @property
    def data(self) -> OutgoingData:
        """The client's data-level stream."""
        return self.conn.out

    def lingers(self) -> bool:
        """TIME-WAIT only once a server's FIN came (ours alone leaves nothing to acknowledge again)."""
        return any(sf.peer_fin for sf in self.conn.subflows)

    def _time_waiting(self, data: bytes, now: float) -> list[bytes]:
        """After the close, in TIME-WAIT: a server's FIN sent again is acknowledged again."""
        try:
            pkt = decode_frame(LINKTYPE_RAW, data)
        except MptcpspecError:
            return []
        if pkt is None:
            return []
        sf = self.conn.by_flow.get((pkt.dst, pkt.dport, pkt.src, pkt.sport))
        return [] if sf is None else self.receiver.fin_again(sf, pkt)

    def local_addresses(self) -> list[Address]:
        """The addresses the replay sends from."""
        return sorted({sf.local[0] for sf in self.conn.subflows}, key=str)

    def peer_addresses(self) -> list[Address]:
        """The live server addresses the replay sends to."""
        return sorted({sf.remote[0] for sf in self.conn.subflows}, key=str)

    # -- the outside

    def allow_bursts(self, octets: int) -> None:
        """Let a data segment carry up to ``octets`` of payload (at most
        :data:`~replay.sending.BURST_MAX`; 0: one segment's worth, the default), for a transport
        that cuts such a :class:`~replay.wire.Burst` into segments (GSO).  Never for the first data
        (MP_CAPABLE), nor on a subflow that has lost segments.  With paced timing a burst holds
        only segments already due, cut at their captured boundaries (the same segments on the
        wire, one DSS mapping over them)."""
        self.sender.burst = max(0, min(octets, BURST_MAX))

    def start(self, now: float) -> list[bytes]:
        """The first SYN."""
        conn = self.conn
        self.clock.now = now
        conn.t0 = conn.sched0 = conn.last_heard = now
        conn.started = True
        sf = conn.subflows[0]
        ends = show_endpoint(sf.local), show_endpoint(sf.remote)
        conn.emit(ConnectionOpening(0.0, sf.index, *ends, conn.keys.client, conn.keys.captured, conn.tcp))
        return [self.handshake.syn(sf, now)]

    def on_silence(self, now: float) -> None:
        timeout = self.conn.options.timeout
        self.conn.abort(now, AbortCause.TARGET_SILENT, f"the target sent nothing for {timeout:g} s")

    def due_more(self, now: float, out: list[bytes]) -> None:
        self.handshake.join_acks_due(now, out)

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """One IP packet from the server: what to send in answer."""
        self.clock.now = now
        conn = self.conn
        if conn.done:
            return self._time_waiting(data, now) if self.time_wait_until is not None else []
        out = self._receive(data, now)
        self.ending()
        return out

    def receive_all(self, packets: list[bytes], now: float) -> list[bytes]:
        """Several IP packets from the server, in the order they came (one ``recv()``): what to
        send in answer.  The server's pure ACKs in a row are all read before the data they let
        go is sent (one :meth:`Sender.pump` for them, as a kernel reads its backlog); any other
        packet is taken as :meth:`receive` takes it, after the data due before it."""
        self.clock.now = now
        conn = self.conn
        pure_ack, pump = self.receiver.pure_ack, self.sender.pump
        out: list[bytes] = []
        due = False
        for data in packets:
            if conn.done:
                if self.time_wait_until is not None:
                    out += self._time_waiting(data, now)
                continue
            got = pure_ack(data, now)
            if got is None:
                if due:
                    out += pump(now)
                    due = False
                got = self._general(data, now)
            else:
                due = True
            out += got
            self.ending()
        if due and not conn.done:
            out += pump(now)
            self.ending()
        return out

    def _receive(self, data: bytes, now: float) -> list[bytes]:
        out = self.receiver.pure_ack(data, now)  # the hot path: most of what the server sends
        if out is not None:
            out += self.sender.pump(now)
            return out
        return self._general(data, now)

    def _general(self, data: bytes, now: float) -> list[bytes]:
        conn = self.conn
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
        opts: tuple[MptcpItem, ...] = decode_mptcp_options(pkt.options, 1) if pkt.options else ()
        flags = int(pkt.flags)
        if flags & RST:
            if (
                sf.is_join
                and sf.state is SubflowState.SYN_SENT
                and not sf.rejoin
                and not any(s.dss_seen for s in conn.subflows)
            ):
                # The server refused the MP_JOIN before it held the connection (our MP_CAPABLE third
                # ACK lost, the SYN ahead of the data that repeats it): once more, when it does
                # (the kernel's client opens joins only then).
                sf.rejoin = True
                sf.drop_queue()
                sf.snd_una = sf.snd_nxt = sf.isn
                sf.enter(SubflowState.NEW, "refused before the connection was fully established")
                self.sender.joins_left += 1
                conn.emit(SubflowReset(conn.since(now), sf.index, _reason(opts)))
                return []
            if sf.state is SubflowState.FAILED:
                return []  # given up already: the server's resets of our segments still in flight
            fail = next((o for o in opts if type(o) is MpFail), None)
            if fail is not None:  # RFC 8684 §3.7: a checksum failed with other subflows in use
                rel = (fail.dsn - conn.out.idsn) & 0xFFFFFFFFFFFFFFFF
                conn.emit(MpFailReceived(conn.since(now), sf.index, rel, MpFailAnswer.SUBFLOW_RESET))
            live = self.sender.orphan(sf, now)  # RFC 8684 §3.3.6: an open subflow's data goes on the others
            out = self.receiver.reset(sf, opts, now)
            return out + self.sender.pump(now) if live else out
        if flags & SYN and flags & ACK:
            before = sf.state
            out = self.handshake.synack(sf, pkt, opts, now)
            if sf.state is not before and sf.state in OPEN:
                if not sf.timeouts:
                    sf.rtt.sample(now - sf.opened_at)  # the SYN's round trip, sent once (RFC 6298 §2)
                sf.rto_at = sf.timed_end = None  # the SYN's timer and timing: the data starts its own
                sf.timeouts = 0
                out += self.sender.pump(now)
            return out
        if sf.state is SubflowState.SYN_SENT and flags & ACK and not self.handshake.syn_acked(sf, pkt.ack):
            # RFC 9293 §3.10.7.3: an unacceptable ACK in SYN-SENT is answered with <SEQ=SEG.ACK><RST>.
            # It comes from a stale connection of the same addresses and ports on the server (an
            # earlier replay of the same capture): the reset clears it for our next SYN.
            return [sf.reset_packet(pkt.ack)]
        if sf.state is SubflowState.CLOSED:
            return self.receiver.fin_again(sf, pkt)  # its FIN exchange done, the connection not yet closed
        if sf.state not in OPEN or sf.rcv_nxt is None:
            return []
        out = self.receiver.established(sf, pkt, opts, flags, now)
        if opts and sf.state is SubflowState.ESTABLISHED:
            fail = next((o for o in opts if type(o) is MpFail), None)
            if fail is not None:
                out += self.sender.mp_fail(sf, fail.dsn, now)
        out += self.sender.pump(now)
        return out

    # -- the end

    def report(self, now: float) -> Report:
        """What the replay did, up to ``now`` (or its end)."""
        conn = self.conn
        ok, reason, seconds = self.outcome(now)
        fast_open = self.handshake.fast_open
        infinite = next((e for e in conn.events if type(e) is InfiniteMapping), None) is not None
        return Report(
            ok,
            reason,
            conn.abort_cause,
            seconds,
            conn.keys.client,
            conn.keys.server,
            conn.out.delivered() + fast_open.taken,
            conn.plan.data_len + len(fast_open.data),
            conn.inc.octets(),
            self.closing.state,
            tuple(SubflowReport.of(sf) for sf in conn.subflows),
            tuple(conn.events),
            fast_open.report(),
            conn.tcp and not infinite,
            conn.fell_back,
            conn.keys.checksum and not (conn.tcp and not infinite),
            conn.plan.checksum,
            *self._fallback(),
        )

    def _fallback(self) -> tuple[str | None, str | None]:
        """Why the connection went on as plain TCP (RFC 8684 §3.7), and what the replay did on the
        server's MP_FAIL, in words (None: nothing of the kind)."""
        conn = self.conn
        fails = [e for e in conn.events if type(e) is MpFailReceived]
        inf = next((e for e in conn.events if type(e) is InfiniteMapping), None)
        fallback = None
        if conn.fell_back:
            fallback = "the live server answered without MP_CAPABLE"
        elif inf is not None:
            fallback = (
                f"MP_FAIL: a DSS checksum failed on the way; infinite mapping from DSN {inf.dsn} (relative), "
                f"plain TCP on subflow {inf.subflow} after it"
            )
        if not fails:
            return fallback, None
        words = {
            MpFailAnswer.INFINITE_MAPPING: "echoed; infinite mapping "
            + ("sent" if inf is not None else "not sent: no new data came after it"),
            MpFailAnswer.SUBFLOW_RESET: "with the server's reset of the subflow: its data went on the others",
            MpFailAnswer.SUBFLOW_CLOSED: "other subflows open: the subflow reset, its data went on the others",
            MpFailAnswer.IGNORED: "after the fallback: ignored",
        }
        said = "; ".join(f"subflow {e.subflow} at DSN {e.dsn} (relative): {words[e.answer]}" for e in fails)
        return fallback, f"MP_FAIL from the server (a DSS checksum failed): {said}"
