"""One subflow of a replay: its TCP state, sequence numbers, retransmission queue and counters.

A :class:`Subflow` goes through the states of :class:`SubflowState`, each change recorded in
``history``::

    NEW -> SYN_SENT -> ESTABLISHED ------------> CLOSED      (the MP_CAPABLE subflow)
    NEW -> SYN_SENT -> PRE_ESTABLISHED -> ESTABLISHED -> CLOSED      (an MP_JOIN subflow)
                 any state but NEW -> FAILED (given up, or reset before its FINs were acknowledged)

It builds its own packets and keeps what it sent until the server acknowledges it, and recovers
from losses as a TCP sender does (:mod:`replay.recovery`): SACK when both SYNs offered it (RFC
2018), fast retransmit and recovery on duplicate ACKs or SACK blocks (RFC 5681, RFC 6582, RFC 6675;
lost retransmissions found by RACK's rule, RFC 8985 §6.2), a tail loss probe (RFC 8985 §7), the
retransmission timer from measured round trips (RFC 6298), and a congestion window.  What the
subflow means for the connection (keys, data-level sequence numbers) is the core's.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec.options import Nop, TcpOption, Timestamps, decode_tcp_options
from mptcpspec.replay.events import SegmentKind
from mptcpspec.replay.plan import PlannedSubflow, SubflowKind
from mptcpspec.replay.recovery import DUP_THRESH, MIN_RTO, PTO_EXTRA, Congestion, RtoEstimator, sack_blocks
from mptcpspec.replay.setup import Endpoint
from mptcpspec.replay.wire import Flow, tcp_packet

__all__ = ["FAST", "M32", "Clock", "NONE", "OPEN", "TIMEOUT", "WINDOW", "Subflow", "SubflowState", "Unacked", "after"]

M32 = 0xFFFFFFFF
WINDOW = 65535  #: our receive window, unscaled (a window scale we offer is shift 0)
ACK = int(TcpFlags.ACK)
RST = int(TcpFlags.RST)
SYN = int(TcpFlags.SYN)
NOP = Nop()
TS_HEAD = bytes((1, 1, 8, 10))  # NOP, NOP, kind 8 (timestamps), length 10 (RFC 7323 §3.2)
HALF = 0x80000000
#: a subflow's loss recovery: none, fast recovery (RFC 6675, or RFC 6582 without SACK), after a timeout
NONE, FAST, TIMEOUT = 0, 1, 2


class Clock:
    """The replay's latest ``now`` (seconds), which the core sets as time comes in; the subflows'
    timestamps are read from it (packets are built where no ``now`` is passed)."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0


#: the start of the result of an MP_JOIN the server refused (reset or left unanswered in its handshake)
JOIN_REFUSED = "join refused by the server"


class SubflowState(Enum):
    """Where a subflow is in its life."""

    #: planned, its SYN not sent yet
    NEW = "new"
    #: SYN sent, no acceptable SYN/ACK yet
    SYN_SENT = "SYN sent"
    #: MP_JOIN: the server's HMAC verified and our third ACK sent, not yet acknowledged (RFC 8684 §3.2)
    PRE_ESTABLISHED = "pre-established"
    #: data may flow
    ESTABLISHED = "established"
    #: ended without failing (both FINs acknowledged, or reset as the connection closed)
    CLOSED = "closed"
    #: given up, or reset by the server before its FIN exchange finished
    FAILED = "failed"


#: the states in which a subflow carries acknowledgments, signals and FINs (a tuple: tested by
#: identity, with no hashing, on every packet)
OPEN = (SubflowState.PRE_ESTABLISHED, SubflowState.ESTABLISHED)


def after(a: int, b: int) -> bool:
    """32-bit sequence number ``a`` is after ``b``."""
    return 0 < ((a - b) & M32) < 0x80000000


class Unacked:
    """A segment sent and not yet acknowledged, with its place on the SACK scoreboard (RFC 6675).

    Data segments keep their relative DSN and payload: sent again, they are rebuilt with the
    acknowledgments of the moment (``fresh``), or on another subflow (reinjection); the others
    (SYN, FIN, the data carrying MP_CAPABLE) are sent again as they were."""

    __slots__ = (
        "seq",
        "end",
        "packet",
        "sent_at",
        "tries",
        "kind",
        "dsn",
        "payload",
        "fresh",
        "sacked",
        "lost",
        "rexmit",
        "marked",
        "reinjected",
    )

    def __init__(
        self,
        seq: int,
        end: int,
        packet: bytes,
        now: float,
        kind: SegmentKind,
        dsn: int = 0,
        payload: bytes | None = None,
        fresh: bool = False,
    ) -> None:
        self.seq, self.end, self.packet, self.sent_at, self.tries, self.kind = seq, end, packet, now, 0, kind
        self.dsn = dsn  #: relative DSN of a data segment
        self.payload = payload  #: a data segment's octets (None for the others)
        self.fresh = fresh  #: rebuilt when sent again (a data segment with a DSS mapping)
        self.sacked = False  #: the server SACKed it (RFC 2018): never sent again
        self.lost = False  #: taken for lost (RFC 6675 IsLost, a third duplicate ACK, or a timeout)
        self.rexmit = False  #: sent again since it was taken for lost (in the pipe again)
        self.marked = False  #: one of the three above was ever set: the pipe is no longer the flight
        self.reinjected = False  #: also sent on another subflow (RFC 8684 §3.3.6)


class SackBoard:
    """The sender's queue of a subflow as a SACK scoreboard (RFC 6675): what is outstanding, what
    the server SACKed, what is taken for lost, what is in the pipe."""

    __slots__ = ("isn", "snd_nxt", "snd_una", "unacked", "marks", "delivered", "sack_ok", "rtt", "cc", "rescued")

    def __init__(self, isn: int, rto: float, min_rto: float) -> None:
        self.isn = isn  #: our ISN
        self.snd_nxt = self.snd_una = isn
        self.unacked: list[Unacked] = []  #: the retransmission queue and SACK scoreboard, in sequence order
        self.marks = 0  #: segments of the queue ever SACKed, taken for lost or sent again
        self.delivered = 0.0  #: when the latest segment found delivered (ACKed or SACKed) was sent (RACK)
        self.sack_ok = False  #: SACK in use: offered by us and by the server's SYN/ACK (RFC 2018 §2)
        self.rtt = RtoEstimator(rto, min_rto)  #: the retransmission timeout (RFC 6298); ``rto`` until measured
        self.cc = Congestion(536)  #: the congestion window (RFC 5681), made anew when the MSS is known
        self.rescued = False  #: the rescue retransmission of this recovery was sent (RFC 6675 NextSeg rule 4)

    def flight(self) -> int:
        """Octets sent and not cumulatively acknowledged (FlightSize)."""
        return (self.snd_nxt - self.snd_una) & M32

    def pipe(self) -> int:
        """Octets presumed in the network (RFC 6675 SetPipe): the flight less what was SACKed and
        what is taken for lost, plus what was sent again."""
        if not self.marks:
            return (self.snd_nxt - self.snd_una) & M32
        p = 0
        for u in self.unacked:
            if u.sacked:
                continue
            n = (u.end - u.seq) & M32
            if not u.lost:
                p += n
            if u.rexmit:
                p += n
        return p

    def _mark(self, u: Unacked) -> None:
        if not u.marked:
            u.marked = True
            self.marks += 1

    def _sack(self, options: bytes, una: int, flight: int) -> int:
        """The SACK blocks of ``options`` onto the scoreboard (RFC 6675 Update), then IsLost: an
        unSACKed segment with DupThresh SACKed segments above it, or more than (DupThresh - 1) *
        SMSS SACKed octets, is lost.  Returns the octets newly SACKed."""
        blocks = sack_blocks(options)
        if not blocks:
            return 0
        q = self.unacked
        new = 0
        for left, right in blocks:
            lo, hi = (left - una) & M32, (right - una) & M32
            if not 0 < lo < hi <= flight:
                continue  # below the cumulative ACK (D-SACK, RFC 2883), or nonsense
            for u in q:
                s = (u.seq - una) & M32
                if s >= hi:
                    break
                if s >= lo and not u.sacked and ((u.end - una) & M32) <= hi:
                    u.sacked = True
                    self._mark(u)
                    new += (u.end - u.seq) & M32
                    if u.sent_at > self.delivered:
                        self.delivered = u.sent_at
        if new:
            limit = (DUP_THRESH - 1) * self.cc.smss
            count = octets = 0
            for u in reversed(q):
                if u.sacked:
                    count += 1
                    octets += (u.end - u.seq) & M32
                elif (count >= DUP_THRESH or octets > limit) and not u.lost:
                    u.lost = True
                    u.rexmit = False
                    self._mark(u)
        return new

    def _rack(self) -> None:
        """RACK's rule (RFC 8985 §6.2), for a path that keeps order: a segment not SACKed that was
        sent (or sent again) a reordering window before one that arrived is lost; a lost
        retransmission so is found without waiting for the timer."""
        delivered = self.delivered - (self.rtt.srtt or 0.0) / 4  # the reordering window: RTT / 4
        for u in self.unacked:
            if u.sent_at >= delivered:
                continue
            if not u.sacked and (u.rexmit or not u.lost) and u.kind is not SegmentKind.SYN:
                u.lost = True
                u.rexmit = False
                self._mark(u)

    def next_lost(self) -> Unacked | None:
        """The first segment taken for lost, not SACKed and not sent again since (RFC 6675
        NextSeg rule 1)."""
        if not self.marks:
            return None
        for u in self.unacked:
            if u.lost and not u.rexmit and not u.sacked:
                return u
        return None

    def next_unsacked(self) -> Unacked | None:
        """With no new data to send in fast recovery: the first segment not SACKed, not sent again
        and below the highest SACKed one (RFC 6675 NextSeg rule 3), else, once per recovery, the
        last one not SACKed (rule 4, the rescue retransmission)."""
        q = self.unacked
        high = None
        for k in range(len(q) - 1, -1, -1):
            if q[k].sacked:
                high = k
                break
        if high is not None:
            for u in q[:high]:
                if not u.sacked and not u.rexmit:
                    return u
        if not self.rescued:
            for u in reversed(q):
                if not u.sacked:
                    self.rescued = True
                    return u
        return None


class Retransmitter(SackBoard):
    """A subflow's sender: acknowledgments, loss recovery and the retransmission timer (RFC 5681,
    RFC 6582, RFC 6675, RFC 6298, RFC 8985)."""

    __slots__ = (
        "wnd",
        "rto_at",
        "timeouts",
        "dupacks",
        "recovery",
        "recover",
        "must",
        "probing",
        "probed",
        "timed_end",
        "timed_at",
        "fin_sent",
        "fin_acked",
    )

    def __init__(self, isn: int, rto: float, min_rto: float) -> None:
        super().__init__(isn, rto, min_rto)
        self.wnd = 0  #: the server's window on this subflow
        self.rto_at: float | None = None  #: when the retransmission timer expires (None: not running)
        self.timeouts = 0  #: timer expiries since the server last acknowledged something new
        self.dupacks = 0  #: duplicate ACKs since the last new acknowledgment (RFC 5681, RFC 6675 §2)
        self.recovery = NONE  #: NONE, FAST (fast recovery) or TIMEOUT (after the timer expired)
        self.recover = isn  #: RecoveryPoint (RFC 6675): snd_nxt when recovery began
        self.must = False  #: the fast retransmission due now, whatever the window (RFC 6675 §5 step 4.3)
        self.probing = False  #: the timer running is a tail loss probe's (RFC 8985 §7)
        self.probed = False  #: a probe went since the server last acknowledged new data
        #: the segment being timed for a round-trip sample, one at a time (RFC 6298 §3): its end, when sent
        self.timed_end: int | None = None
        self.timed_at = 0.0
        self.fin_sent = self.fin_acked = False  #: our FIN sent; acknowledged

    def acknowledged(self, ack: int, window: int, now: float, options: bytes = b"", pure: bool = False) -> bool:
        """An ACK from the server (``options``: its TCP options, for SACK; ``pure``: it carries no
        data, SYN or FIN): drop what it acknowledges, sample the round trip (Karn: on segments sent
        once), grow or keep the congestion window, read its SACK blocks, count it if it is a
        duplicate, take segments for lost, note our FIN acknowledged.  True when it starts fast
        recovery: the first lost segment is then due (``must``)."""
        una = self.snd_una
        off = (ack - una) & M32
        flight = (self.snd_nxt - una) & M32
        if off > flight:
            return False  # old, or for data never sent (RFC 9293 §3.10.7.4): nothing to learn
        q = self.unacked
        if off and not self.marks and not self.recovery and not (options and b"\x05" in options):
            # The hot path: new data acknowledged, nothing SACKed, lost or sent again
            self.wnd = window
            k = 0
            for u in q:
                if ((u.end - una) & M32) > off:
                    break
                k += 1
            if k:
                del q[:k]
            timed = self.timed_end
            if timed is not None and ((timed - una) & M32) <= off:
                self.rtt.sample(now - self.timed_at)
                self.timed_end = None
            self.snd_una = ack
            self.timeouts = self.dupacks = 0
            self.probed = False
            if q:
                self.arm(now)
            else:
                self.rto_at = None
            if self.fin_sent and ack == self.snd_nxt:
                self.fin_acked = True
            self.cc.acked(off)
            return False
        same_window = window == self.wnd
        self.wnd = window
        newly = 0
        if off:
            k, ambiguous = 0, False
            if self.marks:
                delivered = self.delivered
                for u in q:
                    if ((u.end - una) & M32) > off:
                        break
                    if u.tries:
                        ambiguous = True
                    if not u.sacked:
                        newly += (u.end - u.seq) & M32
                        if u.sent_at > delivered:
                            delivered = u.sent_at
                    if u.marked:
                        self.marks -= 1
                    k += 1
                self.delivered = delivered
            else:  # nothing SACKed, lost or sent again: the hot path
                for u in q:
                    if ((u.end - una) & M32) > off:
                        break
                    k += 1
                newly = off
            if k:
                del q[:k]
            timed = self.timed_end
            if timed is not None and ((timed - una) & M32) <= off:
                # The timed segment acknowledged: a sample, unless the ACK also covers a segment sent
                # more than once (Karn: it may answer either sending, or a hole just filled)
                if not ambiguous:
                    self.rtt.sample(now - self.timed_at)
                self.timed_end = None
            self.snd_una = una = ack
            self.timeouts = self.dupacks = 0
            self.probed = False
            if q:
                self.arm(now)  # RFC 6298 §5.3
            else:
                self.rto_at = None  # §5.2
            if self.fin_sent and ack == self.snd_nxt:
                self.fin_acked = True
        elif not q:
            return False
        sacked = 0
        if self.sack_ok and q:
            if options and b"\x05" in options:  # a SACK option's kind, or a DSS octet: read them
                sacked = self._sack(options, una, (self.snd_nxt - una) & M32)
            if self.marks:
                self._rack()
        recovery = self.recovery
        if off:
            if recovery and ((ack - self.recover) & M32) < HALF:
                self.recovery = NONE  # RecoveryPoint acknowledged: recovery is over (RFC 6675 §5 (A))
                self.rescued = False
                if recovery == FAST and not self.sack_ok:
                    self.cc.cwnd = self.cc.ssthresh  # deflated (RFC 6582 §3.2 step 3)
            elif recovery == FAST and not self.sack_ok:
                # RFC 6582 §3.2 step 5: a partial ACK; the next hole is lost too, the window deflated
                if q:
                    q[0].lost = True
                    q[0].rexmit = False
                    self._mark(q[0])
                    self.must = True
                cc = self.cc
                cc.cwnd = max(cc.cwnd - off, cc.smss) + (cc.smss if off >= cc.smss else 0)
            elif recovery != FAST:
                self.cc.acked(newly)  # slow start or congestion avoidance, also after a timeout
        if not q:
            return False
        # A duplicate ACK: with SACK, one that SACKs something new (RFC 6675 §2); without, RFC
        # 5681's (outstanding data, no data, no SYN or FIN, no new acknowledgment, the same window).
        if (sacked if self.sack_ok else (pure and not off and same_window)) and q[0].kind is not SegmentKind.SYN:
            self.dupacks += 1
            if self.recovery == FAST and not self.sack_ok:
                self.cc.cwnd += self.cc.smss  # RFC 5681 §3.2 step 4
        if self.recovery or q[0].kind is SegmentKind.SYN:
            return False
        if self.dupacks >= DUP_THRESH or (self.sack_ok and q[0].lost):
            # Fast retransmit (RFC 5681 §3.2, RFC 6675 §5 step 4): RecoveryPoint = HighData,
            # ssthresh = cwnd = max(FlightSize / 2, 2 SMSS), the first segment taken for lost.
            cc = self.cc
            cc.halve((self.snd_nxt - una) & M32)
            if not self.sack_ok:
                cc.cwnd = cc.ssthresh + DUP_THRESH * cc.smss  # RFC 5681 §3.2 step 2
            self.recovery = FAST
            self.recover = self.snd_nxt
            self.rescued = False
            u = q[0]
            u.lost = True
            u.rexmit = False
            self._mark(u)
            self.must = True
            return True
        return False

    def arm(self, now: float) -> None:
        """(Re)start the timer: the retransmission timeout, or sooner a tail loss probe (RFC 8985
        §7.2: PTO = 2 SRTT, plus the clock's 2 ms as Linux, or plus the least RTO when one segment
        is in flight: the server may be delaying its ACK of a lone segment, RFC 8985's WCDelAckT)
        when no probe went since the last new acknowledgment.  Unlike RFC 8985, a probe may also
        go in fast recovery: there it stands for RACK's reordering timer, which this sender lacks
        (a segment sent again and lost, with nothing sent after it whose SACK would show it)."""
        rto = self.rtt.rto
        srtt = self.rtt.srtt
        self.probing = False
        if self.sack_ok and srtt is not None and not self.probed and not self.timeouts:
            lone = ((self.snd_nxt - self.snd_una) & M32) <= self.cc.smss
            pto = 2 * srtt + (self.rtt.min_rto if lone else PTO_EXTRA)
            if pto < rto:
                rto = pto
                self.probing = True
        self.rto_at = now + rto

    def probe(self, now: float) -> Unacked:
        """The probe timer expired: the last segment not SACKed goes again (RFC 8985 §7.3), the
        window unchanged; its answer (a SACK) shows what was lost before it.  The timer restarts
        as the retransmission timer."""
        self.probed = True
        u = next((v for v in reversed(self.unacked) if not v.sacked), self.unacked[-1])
        self.arm(now)
        return u

    def sent_again(self, u: Unacked, now: float) -> None:
        """``u`` was just sent again: in the pipe again, its round trip no longer measurable (Karn)."""
        u.tries += 1
        u.sent_at = now
        if self.timed_end is not None and 0 < ((self.timed_end - u.seq) & M32) <= ((u.end - u.seq) & M32):
            self.timed_end = None
        if u.kind is SegmentKind.SYN:
            return
        u.rexmit = True
        self._mark(u)

    def due(self, now: float) -> Unacked | None:
        """The segment to send again if the retransmission timer has expired (None: it has not,
        or nothing is outstanding)."""
        at = self.rto_at
        if at is None or now < at:
            return None
        if not self.unacked:
            self.rto_at = None
            return None
        return next((u for u in self.unacked if not u.sacked), self.unacked[0])

    def expire(self, u: Unacked, now: float) -> None:
        """The timer expired with ``u`` first: after a SYN, only the timer backs off; after data,
        the window falls to one segment (RFC 5681 §3.1), every segment not SACKed is taken for lost
        (RFC 6675 §5.1: recovery ends; none starts before RecoveryPoint is acknowledged), and ``u``
        is to be sent again now (RFC 6298 §5.4 to §5.6)."""
        if u.kind is not SegmentKind.SYN:
            self.cc.timeout(self.flight(), again=self.timeouts > 0)
            self.recovery = TIMEOUT
            self.recover = self.snd_nxt
            self.dupacks = 0
            self.must = False
            for v in self.unacked:
                if not v.sacked:
                    v.lost = True
                    v.rexmit = False
                    self._mark(v)
        self.timeouts += 1
        self.rtt.back_off()
        self.arm(now)

    def drop_queue(self) -> None:
        """Nothing more is sent again on this subflow."""
        self.unacked.clear()
        self.marks = 0
        self.rto_at = self.timed_end = None
        self.probing = False
        self.recovery = NONE
        self.must = False


class Subflow(Retransmitter):
    """One subflow, from our side: ``local`` to ``remote``, our ISN ``isn``, our MP_JOIN nonce ``nonce``."""

    __slots__ = (
        "plain",
        "index",
        "kind",
        "local",
        "remote",
        "address_id",
        "backup",
        "state",
        "history",
        "result",
        "rcv_nxt",
        "irs",
        "_mss",
        "ssn_off",
        "nonce",
        "sack_permitted",
        "window_scale",
        "snd_shift",
        "timestamps",
        "ts_ok",
        "ts_recent",
        "clock",
        "dss_seen",
        "rejoin",
        "join_ack",
        "join_ack_at",
        "join_tries",
        "mappings",
        "peer_fin",
        "infinite_seq",
        "infinite_dsn",
        "rcv_base",
        "opened_at",
        "flow",
        "sent",
        "received",
        "retransmitted",
        "data_sent",
        "data_received",
    )

    def __init__(
        self,
        planned: PlannedSubflow,
        local: Endpoint,
        remote: Endpoint,
        isn: int,
        nonce: int,
        rto: float,
        min_rto: float = MIN_RTO,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(isn, rto, min_rto)
        self.index = planned.index
        self.kind = planned.kind
        self.local, self.remote = local, remote
        self.address_id, self.backup = planned.address_id, planned.backup
        self.state = SubflowState.NEW
        self.history = [SubflowState.NEW]  #: every state it was in, in order
        self.result = "not opened"  #: what became of it, in words
        self.rcv_nxt: int | None = None  #: None until the SYN/ACK
        self.irs = 0  #: the server's ISN
        self._mss = 536
        # Subflow sequence numbers in DSS mappings are relative to the ISN, past any Fast Open data
        # the SYN carried: that data is outside the data-level stream (Linux: ssn_offset += len).
        self.ssn_off = 0
        self.nonce = nonce  #: our MP_JOIN nonce
        self.plain = False  #: plain TCP: MPTCP options are left out of its packets
        self.sack_permitted = planned.sack_permitted  #: our SYN offers SACK (as the capture's did)
        self.window_scale = planned.window_scale  #: our SYN offers window scaling, shift 0 (as the capture's did)
        self.snd_shift = 0  #: the server's window shift, once both SYNs offered scaling (RFC 7323 §2.3)
        self.timestamps = planned.timestamps  #: the captured SYN offered timestamps: ours does, on plain TCP
        self.ts_ok = False  #: timestamps in use: both SYNs carried them (RFC 7323 §3.2): on every segment
        self.ts_recent = 0  #: TS.Recent, the server's timestamp we echo (RFC 7323 §4.3)
        #: the replay's latest ``now``: our TSval is its milliseconds, from an offset of our nonce's
        #: random bits (RFC 7323 §5.4: a random offset per connection)
        self.clock = clock or Clock()
        self.dss_seen = False  #: the server sent a DSS on this subflow: it holds the connection (RFC 8684 §3.1)
        self.rejoin = False  #: an MP_JOIN SYN refused before the connection was fully established: once more
        self.join_ack: bytes | None = None  #: our MP_JOIN third ACK, sent again until it is acknowledged
        self.join_ack_at = 0.0
        self.join_tries = 0
        self.mappings: list[tuple[int, int, int]] = []  #: the server's: (ssn, 64-bit dsn, length)
        self.peer_fin = False
        #: our infinite mapping (RFC 8684 §3.7): its subflow sequence number (None: none sent) and
        #: relative DSN; from there on the subflow is one byte stream with the data level
        self.infinite_seq: int | None = None
        self.infinite_dsn = 0
        #: the server's data without a mapping, once one byte stream: (its sequence number, DSN) of
        #: one point of it; None: its first octet is DSN 1 (plain TCP from the SYN)
        self.rcv_base: tuple[int, int] | None = None
        self.opened_at = 0.0
        self.flow = Flow(local[0], remote[0], local[1], remote[1])  #: the data path's packet builder
        self.sent = self.received = self.retransmitted = self.data_sent = self.data_received = 0

    def __repr__(self) -> str:
        return f"<Subflow {self.index} {self.kind.value} {self.state.name}>"

    @property
    def mss(self) -> int:
        """The path's MSS (the server's, at most ours)."""
        return self._mss

    @mss.setter
    def mss(self, value: int) -> None:
        self._mss = value
        if not self.data_sent:
            self.cc = Congestion(value)  # the initial window in segments of this path

    @property
    def rto(self) -> float:
        """The retransmission timeout now (RFC 6298), backed off or not."""
        return self.rtt.rto

    @property
    def is_join(self) -> bool:
        return self.kind is SubflowKind.MP_JOIN

    def enter(self, state: SubflowState, result: str | None = None) -> None:
        """Move to ``state``; ``result`` (default: the state's own word) says what became of the subflow."""
        if state is not self.state:
            self.state = state
            self.history.append(state)
        self.result = state.value if result is None else result

    # -- sending

    def packet(
        self, flags: int, options: Iterable[TcpOption] = (), payload: bytes = b"", seq: int | None = None
    ) -> bytes:
        """A segment of this subflow to the server, acknowledging what we received (once we have)."""
        ack = self.rcv_nxt
        self.sent += 1
        if self.plain:
            options = [o for o in options if type(o).__module__.endswith("tcp_options")]
        if self.ts_ok or (flags & SYN and self.timestamps and self.plain):
            options = [NOP, NOP, Timestamps(tsval=self.tsval(), tsecr=self.ts_recent), *options]
        return tcp_packet(
            self.local[0],
            self.remote[0],
            self.local[1],
            self.remote[1],
            self.snd_nxt if seq is None else seq,
            0 if ack is None else ack,
            flags if ack is None else flags | ACK,
            WINDOW,
            options,
            payload,
        )

    def tsval(self) -> int:
        """Our timestamp now: the clock's milliseconds from the offset."""
        return (self.nonce + int(self.clock.now * 1000)) & M32

    def ts_octets(self) -> bytes:
        """NOP, NOP, our timestamps option (the data path's options, built by struct)."""
        return TS_HEAD + (self.tsval() << 32 | self.ts_recent).to_bytes(8, "big")

    def saw_timestamp(self, options: bytes, seq: int) -> None:
        """The server's segment at ``seq`` with TCP ``options``: its TSval becomes TS.Recent if the
        segment starts at or before the next octet we expect and the TSval is not older (RFC 7323
        §4.3; our ACKs go at once, so Last.ACK.sent is ``rcv_nxt``)."""
        ts = next((o for o in decode_tcp_options(options, strict=False).options if type(o) is Timestamps), None)
        if ts is None or self.rcv_nxt is None:
            return
        if not after(seq, self.rcv_nxt) and not after(self.ts_recent, ts.tsval):
            self.ts_recent = ts.tsval

    def keep(
        self,
        packet: bytes,
        length: int,
        now: float,
        kind: SegmentKind,
        dsn: int = 0,
        payload: bytes | None = None,
        fresh: bool = False,
    ) -> None:
        """``packet`` just sent at ``snd_nxt`` with ``length`` octets of sequence space: advance
        ``snd_nxt`` and keep it until it is acknowledged; the timer starts if it is not running
        (RFC 6298 §5.1).  ``dsn``, ``payload``, ``fresh``: see :class:`Unacked`."""
        seq = self.snd_nxt
        end = (seq + length) & M32
        self.unacked.append(Unacked(seq, end, packet, now, kind, dsn, payload, fresh))
        self.snd_nxt = end
        if self.timed_end is None:
            self.timed_end, self.timed_at = end, now
        if self.rto_at is None:
            self.arm(now)

    def reset_packet(self, seq: int) -> bytes:
        """A bare RST at ``seq`` (RFC 9293 §3.10.7.3: the answer to an unacceptable ACK)."""
        self.sent += 1
        return tcp_packet(self.local[0], self.remote[0], self.local[1], self.remote[1], seq, 0, RST, 0)

    def join_rto(self, rto: float) -> float:
        """The MP_JOIN ACK's first timeout: the round trips of the SYN/ACK (RFC 6298), else ``rto``."""
        measured = self.rtt.measured()
        return rto if measured is None else measured

    def timers(self, rto: float) -> list[float]:
        """When this subflow's retransmission timers expire (``rto``: the MP_JOIN ACK's first timeout
        before a round trip is measured)."""
        times = []
        if self.rto_at is not None:
            times.append(self.rto_at)
        if self.join_ack is not None:
            times.append(self.join_ack_at + self.join_rto(rto) * (1 << self.join_tries))
        return times

    @property
    def joining(self) -> bool:
        """An MP_JOIN whose handshake is not over: a failure now is the server refusing the join."""
        return self.is_join and self.state in (SubflowState.SYN_SENT, SubflowState.PRE_ESTABLISHED)

    def give_up(self, result: str) -> None:
        """Failed: nothing more is sent again."""
        self.enter(SubflowState.FAILED, result)
        self.drop_queue()
        self.join_ack = None

    # -- the server's data

    def map(self, dsn: int, ssn: int, length: int) -> None:
        """The server's mapping of ``length`` octets from subflow sequence ``ssn`` (relative) to ``dsn``."""
        self.mappings.append((ssn, dsn, length))
        del self.mappings[:-16]

    def stream_dsn(self, seq: int) -> int | None:
        """Our subflow sequence number ``seq`` as a relative DSN, the subflow being one byte stream
        with the data level (plain TCP: relative DSN 1 is the first octet after the SYN and its Fast
        Open data; after an infinite mapping, from its DSN on); None before the infinite mapping."""
        inf = self.infinite_seq
        if inf is None:
            return (seq - self.isn - self.ssn_off) & M32
        d = (seq - inf) & M32
        return None if d >= HALF else self.infinite_dsn + d

    def stream_rcv(self, seq: int, length: int) -> tuple[int, int]:
        """The data-level range (DSN, length) of server data at ``seq`` with no mapping, the subflow
        being one byte stream (see ``rcv_base``)."""
        base = self.rcv_base
        if base is None:
            return (seq - self.irs) & M32, length
        return (base[1] + ((seq - base[0]) & M32)) & 0xFFFFFFFFFFFFFFFF, length

    def dsn_of(self, seq: int, length: int) -> tuple[int, int] | None:
        """The data-level range (64-bit DSN, length) of ``length`` octets received at ``seq``, by the
        latest mapping that covers them; None when none does."""
        rel = (seq - self.irs) & M32
        for ssn, dsn, n in reversed(self.mappings):
            if ssn <= rel < ssn + n:
                return (dsn + rel - ssn) & 0xFFFFFFFFFFFFFFFF, min(length, ssn + n - rel)
        return None
