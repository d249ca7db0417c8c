"""Sending what the capture's client sent: MP_JOIN subflows, data, MP_PRIO and REMOVE_ADDR, the close.

The client's data goes out as the capture has it: the same octets, segment sizes, DSNs (relative
to the IDSN) and subflows, as far as the live server's windows allow, at the captured pace if
asked.  When the next segment in capture order lies beyond the connection's window, the lowest
unsent one goes first (the capture's scheduler may have sent later data earlier; at the captured
pace, not before its own time); a subflow that
failed leaves its data to an established one.  Each subflow sends within its congestion window;
its lost segments go first (:meth:`Sender.recover`); a subflow that has lost segments leaves what it
has no room for to another, and when its retransmission timer expires its unacknowledged data goes
on another too (RFC 8684 §3.3.6).  When all data is acknowledged at data level, the connection
closes as the capture's did: DATA_FIN, or MP_FASTCLOSE.
"""

from __future__ import annotations

from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec import crypto
from mptcpspec.codec.generated.closure import Event as ClosureEvent
from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.codec.options import MpCapable, MpCapableFlags, MpFail, MpPrio, MpTcpRst, TcpRstReason
from mptcpspec.replay.closing import Closing
from mptcpspec.replay.connection import Connection
from mptcpspec.replay.datalevel import M64
from mptcpspec.replay.events import (
    AbortCause,
    DataRetransmitted,
    InfiniteMapping,
    JoinOpening,
    MpFailAnswer,
    MpFailReceived,
    PrioritySent,
    Reinjected,
    RemoveAddrSent,
    SegmentKind,
)
from mptcpspec.replay.fidelity import ANY, Held
from mptcpspec.replay.handshake import Handshake
from mptcpspec.replay.recovery import MAX_RTO
from mptcpspec.replay.setup import show_endpoint
from mptcpspec.replay.subflow import FAST, M32, OPEN, WINDOW, Subflow, SubflowState, Unacked
from mptcpspec.replay.wire import BURST_MAX, Burst, dss_data_option

__all__ = ["BURST_MAX", "Sender"]

PSH, ACK, FIN, RST = int(TcpFlags.PSH), int(TcpFlags.ACK), int(TcpFlags.FIN), int(TcpFlags.RST)
HALF = 0x80000000
OPTION_ROOM = 28  # the largest option block we put on data: DSS with 8-octet DATA_ACK and DSN and checksum
OPEN_WAIT = 1.0  # seconds data planned for a subflow that is opening waits for it
ESTABLISHED = SubflowState.ESTABLISHED
GONE = (SubflowState.FAILED, SubflowState.CLOSED)
OPENING = (SubflowState.NEW, SubflowState.SYN_SENT, SubflowState.PRE_ESTABLISHED)
HANDSHAKE = (SubflowState.SYN_SENT, SubflowState.PRE_ESTABLISHED)
SIGNAL_READY = (SubflowState.ESTABLISHED, SubflowState.FAILED, SubflowState.CLOSED)
CLOSABLE = (ClosureState.M_ESTAB, ClosureState.M_CLOSE_WAIT)
DATA = SegmentKind.DATA
CONNECTION_WINDOW, RECEIVE_WINDOW = Held.CONNECTION_WINDOW, Held.RECEIVE_WINDOW
CONGESTION_WINDOW, FIRST_DSS, JOIN_OPENING = Held.CONGESTION_WINDOW, Held.FIRST_DSS, Held.JOIN_OPENING


def holds_data(conn: Connection) -> bool:
    """Whether a subflow has data of ours it has not acknowledged (its own retransmissions then
    deal with it).  A join whose SYN went unanswered, or a FIN, holds no data: they must not keep
    the connection-level retransmission from data the subflows acknowledged and the server did not
    (the kernel can hold a DATA_ACK back until more data comes)."""
    return any(u.kind is DATA for sf in conn.subflows for u in sf.unacked)


class Persist:
    """The persist timer (RFC 9293 §3.8.6.1): when the server's window keeps our data back and no
    ACK to come would open it, a window probe goes: our last sequence number again, no data,
    which the server answers with an ACK carrying its window (§3.10.7.4; Linux's zero window
    probe), again after twice as long each time, at most :data:`~replay.recovery.MAX_RTO`."""

    __slots__ = ("conn", "at", "on", "probes")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.at: float | None = None  #: when the next probe goes
        self.on: Subflow | None = None  #: the subflow whose window is closed (None: the connection's)
        self.probes = 0  #: probes sent since the window last let data go

    def stopped(self, now: float, blocked: bool, went: bool, closed: Subflow | None) -> None:
        """The sender stopped (``blocked``: at a window closed on ``closed``, or the connection's
        when None; ``went``: after sending data): the timer stops, or starts."""
        if not blocked or went or closed is not self.on:
            self.at, self.on, self.probes = None, None, 0  # data went, or another window
        if blocked and self.at is None:
            # a closed window, and no ACK to come that would open it (nothing in flight on the
            # subflow whose window it is; for the connection's, nowhere): were the server's update
            # lost, nothing would ever open it again
            conn = self.conn
            quiet = (
                closed.rto_at is None
                if closed is not None
                else not conn.out.outstanding and all(s.rto_at is None for s in conn.subflows)
            )
            sf = closed if closed is not None else conn.established()
            if quiet and sf is not None:
                self.at, self.on = now + sf.rtt.rto, closed

    def probe(self, now: float, out: list[bytes]) -> None:
        """The timer expired: a window probe on the subflow whose window is closed (or another)."""
        conn = self.conn
        sf = self.on
        if sf is None or sf.state is not ESTABLISHED:
            sf = conn.established()
        if sf is None:
            self.at = None
            return
        out.append(sf.packet(0, [conn.ack_dss()], seq=(sf.snd_nxt - 1) & M32))
        self.probes += 1
        self.at = now + min(MAX_RTO, sf.rtt.rto * (1 << self.probes))


class Resender:
    """Data segments, and what is sent again: segments taken for lost on their subflow (loss
    recovery), a stalled subflow's data on another (RFC 8684 §3.3.6)."""

    __slots__ = ("conn", "mpc_data_sent", "orphans", "failing", "burst")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        #: octets of payload one data segment may carry beyond the MSS (0: none): consecutive planned
        #: segments of a subflow go as one :class:`~replay.wire.Burst` the transport cuts (GSO)
        self.burst = 0
        self.mpc_data_sent = False  #: the first data went, with MP_CAPABLE
        #: data of subflows the server reset, as (subflow, relative DSN, payload): for the others
        self.orphans: list[tuple[int, int, bytes]] = []
        #: the subflow whose MP_FAIL we answered, until our infinite mapping goes on it (RFC 8684 §3.7)
        self.failing: Subflow | None = None

    def _dss(self, sf: Subflow, seq: int, rel_dsn: int, payload: bytes) -> bytes:
        """The DSS of a data segment of ``sf`` at ``seq``: its mapping with our DATA_ACK; the
        infinite mapping (data-level length 0, checksum 0) at our infinite mapping's sequence number
        (sent again as it was); nothing after it, nor on a plain TCP subflow (there, its timestamps
        when in use)."""
        conn = self.conn
        inf = sf.infinite_seq
        if inf is not None:
            d = (seq - inf) & M32
            if d and d < HALF:
                return b""
        elif sf.plain:
            return sf.ts_octets() if sf.ts_ok else b""
        data_ack = conn.inc.next
        ack = 0 if data_ack is None else data_ack
        dsn = (conn.out.idsn + rel_dsn) & M64
        ssn = (seq - sf.isn - sf.ssn_off) & M32
        if inf == seq:
            return dss_data_option(ack, dsn, ssn, 0, 0 if conn.keys.checksum else None)
        n = len(payload)
        csum = crypto.dss_checksum(dsn, ssn, n, payload) if conn.keys.checksum else None
        return dss_data_option(ack, dsn, ssn, n, csum)

    def send_data(self, sf: Subflow, rel_dsn: int, payload: bytes, now: float, piece: int = 0) -> bytes:
        """``payload`` at relative DSN ``rel_dsn`` on ``sf``, kept for retransmission; ``piece``:
        a burst cut into segments of that many octets of payload (0: of the subflow's MSS)."""
        conn = self.conn
        data = conn.out
        n = len(payload)
        fresh = True
        if not self.mpc_data_sent and rel_dsn == 1 and sf is conn.subflows[0] and not sf.plain:
            ssn = (sf.snd_nxt - sf.isn - sf.ssn_off) & M32
            if ssn == 1:
                # RFC 8684 §3.1: the first data carries MP_CAPABLE with both keys and its length: the
                # implicit mapping is DSN IDSN + 1, subflow sequence number 1.  It goes again as it is.
                keys = conn.keys
                dsn = (data.idsn + rel_dsn) & M64
                csum = crypto.dss_checksum(dsn, ssn, n, payload) if keys.checksum else None
                flags = MpCapableFlags.HMAC_SHA | (MpCapableFlags.CHECKSUM_REQUIRED if keys.checksum else 0)
                mpc = MpCapable(
                    version=1,
                    flags=MpCapableFlags(flags),
                    sender_key=keys.client,
                    receiver_key=keys.server,
                    data_level_length=n,
                    checksum=csum,
                )
                self.mpc_data_sent = True
                fresh = False
                pkt = sf.packet(PSH, [mpc], payload)
        infinite = fresh and self.failing is sf and rel_dsn == data.sent_to()
        if infinite:
            # RFC 8684 §3.7: the data sent so far is contiguous up to here: the infinite mapping
            sf.infinite_seq, sf.infinite_dsn = sf.snd_nxt, rel_dsn
        if fresh:
            pkt = self._data_packet(sf, sf.snd_nxt, rel_dsn, payload, piece)
        if not data.progress:
            data.progress = now
        end = (data.idsn + rel_dsn + n) & M64
        if ((end - data.sent_high) & M64) < (1 << 63):
            data.sent_high = end
        sf.keep(pkt, n, now, SegmentKind.DATA, rel_dsn, payload, fresh)
        sf.data_sent += n
        if conn.record is not None:  # --report-fidelity (replay.fidelity): each segment on the wire
            rows = conn.record.rows
            if piece and n > piece:
                rows.extend((sf.index, rel_dsn + o, min(piece, n - o), now) for o in range(0, n, piece))
            else:
                rows.append((sf.index, rel_dsn, n, now))
            conn.record.built(pkt)
        if infinite:
            self._fell_back(sf, now)
        return pkt

    def _fell_back(self, sf: Subflow, now: float) -> None:
        """Our infinite mapping went on ``sf``: the connection is plain TCP there from now on (RFC
        8684 §3.7): no more MPTCP options, the subflow's ACKs stand for DATA_ACKs, the server's data
        after its own fallback is taken in sequence from where its data level stands."""
        conn = self.conn
        self.failing = None
        conn.tcp = True
        sf.plain = True
        if conn.inc.next is not None and sf.rcv_nxt is not None:
            sf.rcv_base = (sf.rcv_nxt, conn.inc.next)
        seq = sf.infinite_seq or 0
        conn.emit(InfiniteMapping(conn.since(now), sf.index, sf.infinite_dsn, (seq - sf.isn) & M32))

    def _data_packet(self, sf: Subflow, seq: int, rel_dsn: int, payload: bytes, piece: int = 0) -> bytes:
        """A data segment of ``sf`` at ``seq`` with its DSS mapping and our latest acknowledgments,
        counted in ``sf.sent``; a :class:`~replay.wire.Burst` (its TCP checksum left to the
        transport) when it carries more than one segment's worth: ``piece`` octets of payload each
        (0: as many as the MSS leaves).  The hot path: DSS (DATA_ACK, mapping) built by struct;
        tests check it against the codec."""
        rcv = sf.rcv_nxt
        opts = self._dss(sf, seq, rel_dsn, payload)
        size = piece or sf.mss - len(opts)
        n = len(payload)
        flags = PSH | ACK if rcv is not None else PSH
        if n <= size:
            sf.sent += 1
            return sf.flow.packet(seq, rcv or 0, flags, WINDOW, opts, payload, self.conn.out.sums.get(payload))
        sf.sent += -(-n // size)  # the segments it is cut into
        return Burst.of(sf.flow.packet(seq, rcv or 0, flags, WINDOW, opts, payload, 0), size + len(opts))

    def again(self, sf: Subflow, u: Unacked, now: float) -> bytes:
        """``u`` sent again on ``sf``: a data segment rebuilt with our latest acknowledgments, a FIN
        too, the others as they were."""
        sf.sent_again(u, now)
        sf.retransmitted += 1
        if u.fresh and u.payload is not None:
            return self._data_packet(sf, u.seq, u.dsn, u.payload)
        if u.kind is SegmentKind.FIN:
            return sf.packet(FIN, [self.conn.ack_dss()], seq=u.seq)
        sf.sent += 1
        return u.packet

    def recover(self, now: float, out: list[bytes]) -> None:
        """Loss recovery on each subflow: the fast retransmission that is due, then the segments
        taken for lost, lowest first, while the congestion window has room (RFC 6675 §5 (C),
        NextSeg rule 1; after a timeout, in slow start)."""
        for sf in self.conn.subflows:
            if not sf.marks or sf.state is not ESTABLISHED:
                continue
            pipe = -1
            if sf.must:
                sf.must = False
                u = sf.next_lost()
                if u is not None:
                    out.append(self.again(sf, u, now))
            cwnd = sf.cc.cwnd
            while (u := sf.next_lost()) is not None:
                n = (u.end - u.seq) & M32
                if pipe < 0:
                    pipe = sf.pipe()
                if pipe + n > cwnd:
                    break
                out.append(self.again(sf, u, now))
                pipe += n

    def _tail(self, now: float, out: list[bytes]) -> None:
        """No new data to send: subflows in fast recovery with room send what NextSeg's rules 3
        and 4 give (RFC 6675 §4)."""
        for sf in self.conn.subflows:
            if sf.recovery != FAST or not sf.sack_ok or sf.state is not ESTABLISHED:
                continue
            pipe = sf.pipe()
            while pipe + sf.mss <= sf.cc.cwnd and (u := sf.next_unsacked()) is not None:
                out.append(self.again(sf, u, now))
                pipe += (u.end - u.seq) & M32

    def orphan(self, sf: Subflow, now: float) -> bool:
        """RFC 8684 §3.3.6: the server resets ``sf``; if it was open (MPTCP, its FIN not
        acknowledged: True), its data the connection has not acknowledged, and no other subflow
        holds, goes on the others (:meth:`send_orphans`; SACKed data too: the reset subflow's
        queue at the server is gone)."""
        conn = self.conn
        if sf.state is not ESTABLISHED or conn.tcp or sf.fin_acked:
            return False
        una = (conn.out.una - conn.out.idsn) & M64
        moved = [
            (sf.index, u.dsn, u.payload)
            for u in sf.unacked
            if u.kind is SegmentKind.DATA and u.payload is not None and not u.reinjected
            if u.dsn + len(u.payload) > una
        ]
        if moved:
            self.orphans += moved
            self.orphans.sort(key=lambda o: o[1])
            conn.emit(Reinjected(conn.since(now), None, sf.index, moved[0][1], len(moved), True))
        return True

    def send_orphans(self, now: float, out: list[bytes]) -> None:
        """The data of reset subflows, before new data, on established subflows with room."""
        conn = self.conn
        data = conn.out
        una = (data.una - data.idsn) & M64
        others = [o for o in conn.subflows if o.state is ESTABLISHED and not o.fin_sent]
        while self.orphans:
            _, dsn, payload = self.orphans[0]
            n = len(payload)
            if dsn + n <= una:
                del self.orphans[0]
                continue
            target = next((o for o in others if o.flight() + n <= o.wnd and o.pipe() + n <= o.cc.cwnd), None)
            if target is None:
                break
            del self.orphans[0]
            out.append(self.send_data(target, dsn, payload, now))
            target.retransmitted += 1

    def reinject_stalled(self, sf: Subflow, now: float) -> list[bytes]:
        """RFC 8684 §3.3.6: ``sf``'s retransmission timer expired; its data the connection has not
        acknowledged goes also on another established subflow, as far as that one's windows allow."""
        conn = self.conn
        data = conn.out
        others = [o for o in conn.subflows if o is not sf and o.state is ESTABLISHED and not o.fin_sent]
        if not others or conn.tcp:
            return []
        una = (data.una - data.idsn) & M64
        out: list[bytes] = []
        first = 0
        target = None
        # From the second expiry in a row on (the hole's copy lost again), SACKed data too: the
        # server's subflow holds it out of order and gives the connection none of it until the hole
        # below it fills, which may never happen.  Not at the first, where the hole's copy usually
        # arrives: a copy the server does not need may come after its connection closed (the
        # likely cause of a lab run, one in hundreds, whose server reset a subflow after the close).
        sacked_too = sf.timeouts >= 2
        for u in sf.unacked:
            if u.kind is not SegmentKind.DATA or u.reinjected or u.payload is None or (u.sacked and not sacked_too):
                continue
            n = len(u.payload)
            if u.dsn + n <= una:
                continue
            target = next((o for o in others if o.flight() + n <= o.wnd and o.pipe() + n <= o.cc.cwnd), None)
            if target is None:
                break
            u.reinjected = True
            if not out:
                first = u.dsn
            out.append(self.send_data(target, u.dsn, u.payload, now))
            target.retransmitted += 1
        if out and target is not None:
            conn.emit(Reinjected(conn.since(now), target.index, sf.index, first, len(out)))
        return out

    def _gather(self, k: int, payload: bytes, sf: Subflow, burst: int, window: int, due: float | None) -> bytes:
        """``payload`` (of planned segment ``k``, to go on ``sf``) and the unsent planned segments
        that continue it in DSN order on the same planned subflow, as long as the windows and
        ``burst`` let them go at once: one burst (the kernel's TSO: one mapping).  With paced timing
        (``due``: now), only segments due by then, each as long as the first but the last, which
        may be shorter: cut into pieces of the first's size, the burst is the planned segments."""
        conn = self.conn
        data = conn.out
        segs, sent = data.segments, data.sent
        seg = segs[k]
        flight = (sf.snd_nxt - sf.snd_una) & M32
        end = seg.dsn + len(payload)
        room = min(
            burst,
            sf.wnd - flight,
            sf.cc.cwnd - (sf.pipe() if sf.marks else flight),
            window - ((data.idsn + seg.dsn - data.una) & M64),
        )
        total = len(payload)
        parts = [payload]
        size = sf.mss - OPTION_ROOM
        if due is not None:
            if total > size or total < len(seg.data):
                return payload  # cut to a narrower path than the captured one: segments of their own
            size = total
        at, t0 = conn.options.at, conn.sched0
        last = k
        while True:
            j = data.following(last)
            if j is None or sent[j]:
                break
            last = j
            nxt = segs[j]
            n = len(nxt.data)
            if nxt.subflow != seg.subflow or nxt.dsn != end or n > size or total + n > room:
                break
            if due is not None:
                when = at(t0, nxt.time_ns)
                if when is not None and when > due:
                    break
            parts.append(nxt.data)
            total += n
            end += n
            sent[j] = 1
            data.unsent -= 1
            if due is not None and n < size:
                break  # a shorter one ends a burst cut at the captured boundaries
        return payload if len(parts) == 1 else b"".join(parts)


class Sender(Resender):
    """What we send on our own initiative (not in answer to a packet)."""

    __slots__ = (
        "handshake",
        "closing",
        "pace_at",
        "next_signal",
        "joins_left",
        "held",
        "persist",
    )

    def __init__(self, conn: Connection, handshake: Handshake, closing: Closing) -> None:
        super().__init__(conn)
        self.handshake, self.closing = handshake, closing
        self.pace_at: float | None = None  #: when the captured pace lets the next segment go
        self.next_signal = 0  #: the next MP_PRIO / REMOVE_ADDR of the plan
        self.joins_left = sum(sf.is_join for sf in conn.subflows)  #: MP_JOIN subflows not opened yet
        self.held = False  #: the server sent a DSS: it holds the connection (fully established, RFC 8684 §3.1)
        self.persist = Persist(conn)  #: the persist timer: window probes

    def pump(self, now: float) -> list[bytes]:
        """Everything that may go now."""
        out: list[bytes] = []
        conn = self.conn
        if conn.done or (conn.keys.server is None and not (conn.tcp and conn.subflows[0].state is ESTABLISHED)):
            return out
        if not self.held:
            self.held = any(sf.dss_seen for sf in conn.subflows)
        if self.joins_left and self.closing.state is ClosureState.M_ESTAB:
            self._open_joins(now, out)
        self.recover(now, out)
        if self.orphans:
            self.send_orphans(now, out)
        if self.persist.at is not None and now >= self.persist.at:
            self.persist.probe(now, out)
        self._data(now, out)
        if conn.out.unsent == 0:
            self._tail(now, out)
        if self.next_signal < len(conn.plan.signals):
            self._signals(now, out)
        data = conn.out
        if data.unsent == 0 and data.dfin_sent_at is None and data.una == data.end and self.closing.state in CLOSABLE:
            if self._joining(now):
                return out
            if conn.plan.fastclose:
                # The capture's client ended with MP_FASTCLOSE (Option R: a RST carrying it, RFC 8684 §3.5).
                self.closing.handle(now, ClosureEvent.M_FASTCLOSE_RST, out)
            else:
                self.closing.handle(now, ClosureEvent.M_CLOSE, out)
        return out

    def _joining(self, now: float) -> bool:
        """Whether the close waits for a join still in its handshake: up to :data:`OPEN_WAIT`
        after its SYN, as data planned on it does (a live server can hold a join back: Linux
        answers none for a connection its application has not accepted yet)."""
        until = [
            sf.opened_at + OPEN_WAIT
            for sf in self.conn.subflows
            if sf.state in HANDSHAKE and now < sf.opened_at + OPEN_WAIT
        ]
        if until:
            self.pace_at = min(until) if self.pace_at is None else min(self.pace_at, *until)
        return bool(until)

    def mp_fail(self, sf: Subflow, dsn: int, now: float) -> list[bytes]:
        """The server's MP_FAIL on open subflow ``sf``: a DSS checksum of ours failed at ``dsn``
        (64 bits) on the way, as RFC 8684 §3.7 says a sender answers.  With no other subflow open,
        MP_FAIL is echoed (Linux waits for it, then resets) and the next new data carries an
        infinite mapping, once the data sent is contiguous (:meth:`send_data`); no subflow is opened
        any more.  With others open, ``sf`` is reset (MP_TCPRST, middlebox interference) and its
        data goes on them."""
        conn = self.conn
        rel = (dsn - conn.out.idsn) & M64
        if conn.tcp or self.failing is not None:
            conn.emit(MpFailReceived(conn.since(now), sf.index, rel, MpFailAnswer.IGNORED))
            return []
        if any(o is not sf and o.state in OPEN for o in conn.subflows):
            conn.emit(MpFailReceived(conn.since(now), sf.index, rel, MpFailAnswer.SUBFLOW_CLOSED))
            self.orphan(sf, now)
            out = [sf.packet(RST, [MpTcpRst(reason=TcpRstReason.MIDDLEBOX_INTERFERENCE)])]
            sf.give_up("reset after the server's MP_FAIL (RFC 8684 §3.7)")
            return out
        conn.emit(MpFailReceived(conn.since(now), sf.index, rel, MpFailAnswer.INFINITE_MAPPING))
        self.failing = sf
        self.joins_left = 0
        for other in conn.subflows:
            if other.state is SubflowState.NEW:
                other.give_up("not opened: the connection falls back to TCP after MP_FAIL")
        return [sf.packet(0, [MpFail(dsn=dsn), conn.ack_dss()])]

    def _open_joins(self, now: float, out: list[bytes]) -> None:
        """MP_JOIN subflows, once the first is established (at their captured time, with captured
        timing); the SYN's first timeout is the first subflow's measured one, when shorter."""
        conn = self.conn
        held = self.held
        measured = conn.subflows[0].rtt.measured()
        for sf, ps in zip(conn.subflows, conn.plan.subflows):
            if sf.state is SubflowState.NEW and sf.is_join and (held or not sf.rejoin):
                at = conn.options.at(conn.sched0, ps.time_ns)
                if at is None or now >= at:
                    if measured is not None and measured < sf.rtt.rto:
                        sf.rtt.rto = measured  # the SYN's first timeout from the connection's round trips
                    conn.emit(
                        JoinOpening(
                            conn.since(now),
                            sf.index,
                            show_endpoint(sf.local),
                            show_endpoint(sf.remote),
                            sf.address_id,
                            sf.backup,
                        )
                    )
                    out.append(self.handshake.syn(sf, now))
                    self.joins_left -= 1

    def _data(self, now: float, out: list[bytes]) -> None:
        conn = self.conn
        data = conn.out
        segs, sent, by_index, first = data.segments, data.sent, conn.by_index, conn.subflows[0]
        options = conn.options
        paced = options.timing != "fast"
        burst = self.burst
        self.pace_at = None
        idsn = data.idsn
        # one byte stream (or about to be one: an infinite mapping due): the data goes in sequence order
        tcp = conn.tcp or self.failing is not None
        blocked = False  # the server's window keeps the next data back
        sent_before = len(out)
        closed: Subflow | None = None  # the subflow whose window does (None: the connection's)
        held: Held | None = None  # what keeps a due segment back (paced: for the fidelity report)
        opening = ANY  # the subflow whose handshake does, if that is what keeps it back
        while True:
            k = data.lowest_unsent() if tcp else data.next_planned()
            if k is None:
                break
            seg = segs[k]
            if paced:
                at = options.at(conn.sched0, seg.time_ns)
                if at is not None and now < at:
                    self.pace_at = at
                    break
            window = data.window  # the connection's, counted from its DATA_ACK (RFC 8684 §3.3.5)
            if ((idsn + seg.dsn - data.una) & M64) + len(seg.data) > window:
                held = CONNECTION_WINDOW
                low = data.lowest_unsent()
                if low is None:
                    break
                k, seg = low, segs[low]
                if ((idsn + seg.dsn - data.una) & M64) + len(seg.data) > window:
                    blocked = True
                    break
                if paced:  # not before its own time either
                    at = options.at(conn.sched0, seg.time_ns)
                    if at is not None and now < at:
                        self.pace_at = at
                        break
                held = None
            sf = by_index.get(seg.subflow)
            if sf is None or sf.state in GONE:
                sf = first
            elif sf.state in OPENING and now - (sf.opened_at or now) < OPEN_WAIT:
                held, opening = JOIN_OPENING, sf.index
                break  # the planned subflow is opening: wait for it
            if sf.state is not ESTABLISHED:
                sf = conn.established()
                if sf is None:
                    break
            if self.mpc_data_sent and not self.held:
                # Until the server shows it holds the connection, only the data carrying MP_CAPABLE
                # goes: were it and our third ACK lost, a later segment (DSS, no MP_CAPABLE) would be
                # the first the server sees, and it would fall back to TCP (Linux does: RFC 8684 §3.7)
                held = FIRST_DSS
                break
            payload = seg.data
            room = sf.mss - OPTION_ROOM
            if len(payload) > room:  # a narrower path than the captured one: the rest becomes a segment
                payload = data.split(k, room)
            flight = (sf.snd_nxt - sf.snd_una) & M32
            if flight + len(payload) > sf.wnd or (sf.pipe() if sf.marks else flight) + len(payload) > sf.cc.cwnd:
                # The windows are full (the congestion window, RFC 5681: a lossy path is not
                # flooded).  A subflow that has lost segments (its slow-start threshold set) leaves
                # the segment to another with room; without loss the captured subflows are kept.
                if not sf.cc.lossy:
                    blocked = flight + len(payload) > sf.wnd
                    closed = sf
                    held = RECEIVE_WINDOW if blocked else CONGESTION_WINDOW
                    break
                other = next(
                    (
                        o
                        for o in conn.subflows
                        if o is not sf
                        and o.state is ESTABLISHED
                        and not o.fin_sent
                        and len(payload) <= o.mss - OPTION_ROOM
                        and ((o.snd_nxt - o.snd_una) & M32) + len(payload) <= o.wnd
                        and o.pipe() + len(payload) <= o.cc.cwnd
                    ),
                    None,
                )
                if other is None:
                    blocked = flight + len(payload) > sf.wnd
                    closed = sf
                    held = RECEIVE_WINDOW if blocked else CONGESTION_WINDOW
                    break
                sf = other
            sent[k] = 1
            data.unsent -= 1
            piece = 0
            if burst and self.mpc_data_sent and not tcp and not sf.cc.lossy and sf.infinite_seq is None:
                n = len(payload)
                payload = self._gather(k, payload, sf, burst, window, now if paced else None)
                piece = n if paced else 0
            out.append(self.send_data(sf, seg.dsn, payload, now, piece))
        rec = conn.record
        if rec is not None and paced:  # --report-fidelity: what kept due data back (replay.fidelity)
            if held is None:
                rec.release(now)
            else:
                rec.hold(now, held, opening if closed is None else closed.index)
        self.persist.stopped(now, blocked, len(out) > sent_before, closed)

    def _signals(self, now: float, out: list[bytes]) -> None:
        """The capture's MP_PRIO and REMOVE_ADDR, each once the data sent reaches where the client sent it."""
        conn = self.conn
        signals = conn.plan.signals
        while self.next_signal < len(signals):
            sig = signals[self.next_signal]
            sf = conn.by_index.get(sig.subflow)
            if conn.out.sent_to() < sig.after or sf is None or sf.state not in SIGNAL_READY:
                break
            self.next_signal += 1
            if sf.state is not ESTABLISHED:
                continue
            out.append(sf.packet(0, [sig.option, conn.ack_dss()]))
            o = sig.option
            if isinstance(o, MpPrio):
                conn.emit(PrioritySent(conn.since(now), sf.index, bool(o.backup)))
            else:
                conn.emit(RemoveAddrSent(conn.since(now), sf.index, tuple(o.address_ids)))

    def reinject(self, now: float) -> list[bytes]:
        """Connection-level retransmission (RFC 8684 §3.3.6): data that every subflow has acknowledged
        but the connection has not (DATA_ACK stuck) is sent again, with the same DSNs, on an
        established subflow."""
        conn = self.conn
        data = conn.out
        if not data.outstanding or conn.tcp or holds_data(conn):
            return []
        if now < data.reinject_at(self.closing.rto()):
            return []
        sf = conn.established()
        if sf is None:
            return []
        if data.reinject_tries >= conn.options.max_tries:
            conn.abort(now, AbortCause.DATA_UNACKNOWLEDGED, "data-level retransmissions were never acknowledged")
            return []
        una = (data.una - data.idsn) & M64
        out = [self.send_data(sf, dsn, payload, now) for dsn, payload in data.reinjection()]
        conn.emit(DataRetransmitted(conn.since(now), sf.index, una, len(out)))
        return out

    def timers(self) -> list[float]:
        """When pacing lets the next segment go, when a closed window is probed, and when
        unacknowledged data is reinjected."""
        conn = self.conn
        times = [] if self.pace_at is None else [self.pace_at]
        if self.persist.at is not None:
            times.append(self.persist.at)
        data = conn.out
        if data.outstanding and not conn.tcp and not holds_data(conn) and conn.established() is not None:
            times.append(data.reinject_at(self.closing.rto()))
        return times
