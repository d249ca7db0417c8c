"""Sending what the capture's client sent: MP_JOIN subflows, data, MP_PRIO and REMOVE_ADDR, the close.

The client's data goes out as the capture has it: the same octets, segment sizes, DSNs (relative
to the IDSN) and subflows, as far as the live server's windows allow, at the captured pace if
asked.  When the next segment in capture order lies beyond the connection's window, the lowest
unsent one goes first (the capture's scheduler may have sent later data earlier); a subflow that
failed leaves its data to an established one.  When all data is acknowledged at data level, the
connection closes as the capture's did: DATA_FIN, or MP_FASTCLOSE.
"""

from __future__ import annotations

from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec import crypto
from mptcpspec.codec.generated.closure import Event as ClosureEvent
from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.codec.options import MpCapable, MpCapableFlags, MpPrio
from mptcpspec.replay.closing import Closing
from mptcpspec.replay.connection import Connection
from mptcpspec.replay.datalevel import M64
from mptcpspec.replay.events import (
    AbortCause,
    DataRetransmitted,
    JoinOpening,
    PrioritySent,
    RemoveAddrSent,
    SegmentKind,
)
from mptcpspec.replay.handshake import Handshake
from mptcpspec.replay.setup import show_endpoint
from mptcpspec.replay.subflow import M32, WINDOW, Subflow, SubflowState
from mptcpspec.replay.wire import dss_data_option

__all__ = ["Sender"]

PSH, ACK = int(TcpFlags.PSH), int(TcpFlags.ACK)
OPTION_ROOM = 28  # the largest option block we put on data: DSS with 8-octet DATA_ACK and DSN and checksum
OPEN_WAIT = 1.0  # seconds data planned for a subflow that is opening waits for it
ESTABLISHED = SubflowState.ESTABLISHED
GONE = (SubflowState.FAILED, SubflowState.CLOSED)
OPENING = (SubflowState.NEW, SubflowState.SYN_SENT, SubflowState.PRE_ESTABLISHED)
SIGNAL_READY = (SubflowState.ESTABLISHED, SubflowState.FAILED, SubflowState.CLOSED)
CLOSABLE = (ClosureState.M_ESTAB, ClosureState.M_CLOSE_WAIT)


class Sender:
    """What we send on our own initiative (not in answer to a packet)."""

    __slots__ = ("conn", "handshake", "closing", "pace_at", "next_signal", "mpc_data_sent", "joins_left")

    def __init__(self, conn: Connection, handshake: Handshake, closing: Closing) -> None:
        self.conn, self.handshake, self.closing = conn, handshake, closing
        self.pace_at: float | None = None  #: when the captured pace lets the next segment go
        self.next_signal = 0  #: the next MP_PRIO / REMOVE_ADDR of the plan
        self.mpc_data_sent = False  #: the first data went, with MP_CAPABLE
        self.joins_left = sum(sf.is_join for sf in conn.subflows)  #: MP_JOIN subflows not opened yet

    def pump(self, now: float) -> list[bytes]:
        """Everything that may go now."""
        out: list[bytes] = []
        conn = self.conn
        if conn.done or conn.keys.server is None:
            return out
        if self.joins_left and self.closing.state is ClosureState.M_ESTAB:
            self._open_joins(now, out)
        self._data(now, out)
        if self.next_signal < len(conn.plan.signals):
            self._signals(now, out)
        data = conn.out
        if data.unsent == 0 and data.dfin_sent_at is None and data.una == data.end and self.closing.state in CLOSABLE:
            if conn.plan.fastclose:
                # The capture's client ended with MP_FASTCLOSE (Option R: a RST carrying it, RFC 8684 §3.5).
                self.closing.handle(now, ClosureEvent.M_FASTCLOSE_RST, out)
            else:
                self.closing.handle(now, ClosureEvent.M_CLOSE, out)
        return out

    def _open_joins(self, now: float, out: list[bytes]) -> None:
        """MP_JOIN subflows, once the first is established (at their captured time, with captured timing)."""
        conn = self.conn
        for sf, ps in zip(conn.subflows, conn.plan.subflows):
            if sf.state is SubflowState.NEW and sf.is_join:
                at = conn.options.at(conn.t0, ps.time_ns)
                if at is None or now >= at:
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
        self.pace_at = None
        idsn = data.idsn
        while True:
            k = data.next_planned()
            if k is None:
                break
            seg = segs[k]
            if paced:
                at = options.at(conn.t0, seg.time_ns)
                if at is not None and now < at:
                    self.pace_at = at
                    break
            window = data.window  # the connection's, counted from its DATA_ACK (RFC 8684 §3.3.5)
            if ((idsn + seg.dsn - data.una) & M64) + len(seg.data) > window:
                low = data.lowest_unsent()
                if low is None:
                    break
                k, seg = low, segs[low]
                if ((idsn + seg.dsn - data.una) & M64) + len(seg.data) > window:
                    break
            sf = by_index.get(seg.subflow)
            if sf is None or sf.state in GONE:
                sf = first
            elif sf.state in OPENING and now - (sf.opened_at or now) < OPEN_WAIT:
                break  # the planned subflow is opening: wait for it
            if sf.state is not ESTABLISHED:
                sf = conn.established()
                if sf is None:
                    break
            payload = seg.data
            room = sf.mss - OPTION_ROOM
            if len(payload) > room:  # a narrower path than the captured one: the rest becomes a segment
                payload = data.split(k, room)
            if ((sf.snd_nxt - sf.snd_una) & M32) + len(payload) > sf.wnd:
                break
            out.append(self.send_data(sf, seg.dsn, payload, now))
            sent[k] = 1
            data.unsent -= 1

    def send_data(self, sf: Subflow, rel_dsn: int, payload: bytes, now: float) -> bytes:
        """``payload`` at relative DSN ``rel_dsn`` on ``sf``, kept for retransmission."""
        conn = self.conn
        data = conn.out
        dsn = (data.idsn + rel_dsn) & M64
        ssn = (sf.snd_nxt - sf.isn - sf.ssn_off) & M32
        n = len(payload)
        csum = crypto.dss_checksum(dsn, ssn, n, payload) if conn.keys.checksum else None
        if not self.mpc_data_sent and rel_dsn == 1 and ssn == 1 and sf is conn.subflows[0]:
            # RFC 8684 §3.1: the first data carries MP_CAPABLE with both keys and its length: the
            # implicit mapping is DSN IDSN + 1, subflow sequence number 1.
            keys = conn.keys
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
            pkt = sf.packet(PSH, [mpc], payload)
        else:
            # The hot path: DSS (DATA_ACK, mapping) built by struct; tests check it against the codec.
            rcv = sf.rcv_nxt
            data_ack = conn.inc.next
            pkt = sf.flow.packet(
                sf.snd_nxt,
                rcv or 0,
                PSH | ACK if rcv is not None else PSH,
                WINDOW,
                dss_data_option(0 if data_ack is None else data_ack, dsn, ssn, n, csum),
                payload,
            )
            sf.sent += 1
        if not data.progress:
            data.progress = now
        end = (dsn + n) & M64
        if ((end - data.sent_high) & M64) < (1 << 63):
            data.sent_high = end
        sf.keep(pkt, n, now, SegmentKind.DATA)
        sf.data_sent += n
        return pkt

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
        if not data.outstanding or any(sf.unacked for sf in conn.subflows) or now < data.reinject_at(conn.options.rto):
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
        """When pacing lets the next segment go, and when unacknowledged data is reinjected."""
        conn = self.conn
        times = [] if self.pace_at is None else [self.pace_at]
        data = conn.out
        if data.outstanding and not any(sf.unacked for sf in conn.subflows) and conn.established() is not None:
            times.append(data.reinject_at(conn.options.rto))
        return times
