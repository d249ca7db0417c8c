"""What the server's packets carry on a subflow once it is open: acknowledgments, windows, DSS
(DATA_ACKs and mappings), ADD_ADDR, MP_FASTCLOSE, data, FINs and resets."""

from __future__ import annotations

import struct

from mptcpspec.capture.packets import Packet, TcpFlags
from mptcpspec.codec.generated.closure import Event as ClosureEvent
from mptcpspec.codec.options import AddAddr, Dss, DssFlags, MpFastclose, MptcpItem, MpTcpRst
from mptcpspec.replay.closing import Closing
from mptcpspec.replay.connection import Connection
from mptcpspec.replay.datalevel import M64
from mptcpspec.replay.events import (
    AbortCause,
    AddAddrEchoed,
    CloseHow,
    DataFinReceived,
    FastRetransmit,
    FinReceived,
    SubflowClosed,
    SubflowEstablished,
    SubflowReset,
    reset_reason,
)
from mptcpspec.replay.subflow import JOIN_REFUSED, M32, Subflow, SubflowState

__all__ = ["Receiver"]

#: an IPv4 packet's total length, then its TCP segment's sequence and acknowledgment numbers, data
#: offset and flags, window (the IPv4 header without options)
_PURE_ACK = struct.Struct("!2xH20xIIHH")
KIND_MPTCP, KIND_TIMESTAMPS, DSS_SUBTYPE = 30, 8, 2
ESTABLISHED = SubflowState.ESTABLISHED

FIN, ACK, RST = int(TcpFlags.FIN), int(TcpFlags.ACK), int(TcpFlags.RST)
DATA_ACK_PRESENT, DATA_ACK_8 = int(DssFlags.DATA_ACK_PRESENT), int(DssFlags.DATA_ACK_8)
MAPPING_PRESENT, DSN_8, DATA_FIN = int(DssFlags.MAPPING_PRESENT), int(DssFlags.DSN_8), int(DssFlags.DATA_FIN)


class Receiver:
    """The server's packets on open subflows, for ``conn``."""

    __slots__ = ("conn", "closing", "wire")

    def __init__(self, conn: Connection, closing: Closing) -> None:
        self.conn, self.closing = conn, closing
        #: the IPv4 subflows by the server's packets' addresses and ports as sent (for :meth:`pure_ack`)
        self.wire = {
            sf.remote[0].packed + sf.local[0].packed + struct.pack("!HH", sf.remote[1], sf.local[1]): sf
            for sf in conn.subflows
            if sf.local[0].version == 4
        }

    def pure_ack(self, data: bytes, now: float) -> list[bytes] | None:
        """The hot path of :meth:`established`: what to answer the IP packet ``data`` if it is the
        server's pure ACK (IPv4, no IP options, flags ACK alone, no payload) on an established
        MPTCP subflow, its options a DSS with a DATA_ACK alone, timestamps and NOPs; read in place,
        with no :class:`~capture.packets.Packet` nor option objects.  None for any other packet
        (and for one this path does not read whole): :meth:`established` answers it."""
        if len(data) < 40 or data[0] != 0x45 or data[9] != 6 or data[6] & 0x3F or data[7]:
            return None
        total, seq, ack, off_flags, win = _PURE_ACK.unpack_from(data)
        hl = (off_flags >> 12) * 4
        if off_flags & 0x0FFF != ACK or hl < 20 or total != 20 + hl or len(data) < total:
            return None
        sf = self.wire.get(data[12:24])
        conn = self.conn
        if sf is None or sf.state is not ESTABLISHED or conn.tcp or sf.ts_ok or sf.rcv_nxt is None:
            return None
        options = data[40:total]
        n = len(options)
        i = 0
        dss = False
        data_ack: int | None = None
        is64 = False
        while i < n:
            kind = options[i]
            if kind == 1:
                i += 1
                continue
            if kind == 0:
                break
            if i + 1 >= n:
                return None
            length = options[i + 1]
            if length < 2 or i + length > n:
                return None
            if kind == KIND_MPTCP:
                if dss or length < 4 or options[i + 2] >> 4 != DSS_SUBTYPE or options[i + 3] & ~0x03:
                    return None
                f = options[i + 3]
                dss = True
                if f & DATA_ACK_PRESENT:
                    is64 = bool(f & DATA_ACK_8)
                    if length != (12 if is64 else 8):
                        return None
                    data_ack = int.from_bytes(options[i + 4 : i + length], "big")
                elif length != 4:
                    return None
            elif kind != KIND_TIMESTAMPS or length != 10:
                return None
            i += length
        conn.last_heard = now
        sf.received += 1
        out: list[bytes] = []
        window = win << sf.snd_shift
        if sf.acknowledged(ack, window, now, options, True):
            self._fast_retransmit(sf, now)
        level = conn.out
        if dss:
            sf.dss_seen = True
            if data_ack is not None and level.data_ack(data_ack, is64, now):
                self.closing.handle(now, ClosureEvent.RCV_DATA_ACK_DFIN, out)
        # the connection's window, relative to this packet's DATA_ACK (RFC 8684 §3.3.5)
        level.advertised(window, level.acked if data_ack is not None else level.una)
        self._after(sf, False, now, out)
        return out

    def _fast_retransmit(self, sf: Subflow, now: float) -> None:
        conn = self.conn
        cc = sf.cc
        seq = (sf.snd_una - sf.isn) & M32
        conn.emit(FastRetransmit(conn.since(now), sf.index, seq, cc.cwnd, cc.ssthresh, sf.sack_ok))

    def established(self, sf: Subflow, pkt: Packet, opts: tuple[MptcpItem, ...], flags: int, now: float) -> list[bytes]:
        """A packet on ``sf`` (pre-established or established): what to answer."""
        conn = self.conn
        out: list[bytes] = []
        if sf.ts_ok:
            sf.saw_timestamp(pkt.options, pkt.seq)
        window = pkt.window << sf.snd_shift  # RFC 7323 §2.3: a SYN/ACK's is never scaled, the others are
        if flags & ACK and sf.acknowledged(pkt.ack, window, now, pkt.options, not (pkt.payload_len or flags & FIN)):
            self._fast_retransmit(sf, now)
        if conn.tcp and flags & ACK:
            # One byte stream (plain TCP, or fallback: RFC 8684 §3.7): the subflow's ACK is the
            # data-level one (Subflow.stream_dsn: from the SYN, or from our infinite mapping).
            rel = sf.stream_dsn(sf.snd_una)
            if rel is not None and conn.out.data_ack((conn.out.idsn + rel) & M64, True, now):
                self.closing.handle(now, ClosureEvent.RCV_DATA_ACK_DFIN, out)
        if sf.state is SubflowState.PRE_ESTABLISHED:
            sf.enter(SubflowState.ESTABLISHED)
            sf.join_ack = None
            conn.emit(SubflowEstablished(conn.since(now), sf.index, sf.kind))
        data = conn.out
        acked = None  # this packet's DATA_ACK (one byte stream: the subflow's ACK, taken above)
        dfin = False
        for o in opts:
            if type(o) is Dss:
                dfin = self.dss(sf, o, now, out) or dfin
                if o.data_ack is not None and o.flags & DATA_ACK_PRESENT:
                    acked = data.acked
            elif type(o) is AddAddr:
                self.add_addr(sf, o, now, out)
            elif type(o) is MpFastclose:
                self.closing.handle(now, ClosureEvent.RCV_MP_FASTCLOSE, out, o.receiver_key == conn.keys.client)
        # The receive window is the connection's, relative to the DATA_ACK of the same packet
        # (RFC 8684 §3.3.5); without one, to the DATA_ACK known
        data.advertised(window, data.una if acked is None else acked)
        if pkt.payload_len or flags & FIN:
            had_fin = sf.peer_fin
            self.segment(sf, pkt, flags, now, out)
            if conn.tcp and sf.peer_fin and not had_fin:
                self.closing.handle(now, ClosureEvent.RCV_DATA_FIN, out)  # the FIN ends the byte stream
        self._after(sf, dfin, now, out)
        return out

    def _after(self, sf: Subflow, dfin: bool, now: float, out: list[bytes]) -> None:
        """The end of a packet on ``sf``: the server's DATA_FIN reached (or again: ``dfin``), the
        subflow's FIN exchange over."""
        conn = self.conn
        inc = conn.inc
        if inc.data_fin_reached():  # a DATA_FIN may come on a pure ACK
            conn.emit(DataFinReceived(conn.since(now), None))
            self.closing.handle(now, ClosureEvent.RCV_DATA_FIN, out)
        elif dfin and inc.dfin is not None and inc.next == (inc.dfin + 1) & M64:
            # The server's DATA_FIN again: our DATA_ACK of it was lost.  It is acknowledged again
            # (RFC 8684 §3.3.3, the closure machine's rcv DATA_FIN / snd DATA_ACK[DFIN]); else the
            # server keeps its DATA_FIN outstanding and its subflows open, and their FINs never come.
            self.closing.handle(now, ClosureEvent.RCV_DATA_FIN, out)
        if sf.fin_acked and sf.peer_fin and sf.state is SubflowState.ESTABLISHED:
            sf.enter(SubflowState.CLOSED)
            conn.emit(SubflowClosed(conn.since(now), sf.index, CloseHow.FIN_EXCHANGE))
            self.closing.check_all_closed(now, out)

    def reset(self, sf: Subflow, opts: tuple[MptcpItem, ...], now: float) -> list[bytes]:
        """The server reset ``sf``."""
        conn = self.conn
        out: list[bytes] = []
        rst = next((o for o in opts if type(o) is MpTcpRst), None)
        reason = None if rst is None else rst.reason
        # A reset before the MP_JOIN handshake is over: the server refused the join (RFC 8684
        # §3.2, e.g. its path manager's limit); the data goes on the other subflows.
        refused = sf.joining
        if sf.fin_acked:
            sf.enter(SubflowState.CLOSED, "reset" + reset_reason(reason))
        elif refused:
            sf.give_up(JOIN_REFUSED + ": reset" + reset_reason(reason))
        else:
            sf.give_up("reset" + reset_reason(reason))
        sf.drop_queue()
        sf.join_ack = None
        conn.emit(SubflowReset(conn.since(now), sf.index, reason, refused))
        fastclose = next((o for o in opts if type(o) is MpFastclose), None)
        if fastclose is not None:
            key_valid = fastclose.receiver_key == conn.keys.client
            if key_valid:
                self.reset_by_server(now, "MP_FASTCLOSE")
            self.closing.handle(now, ClosureEvent.RCV_RST_MP_FASTCLOSE, out, key_valid)
        elif sf is conn.subflows[0] and sf.rcv_nxt is None:
            conn.abort(now, AbortCause.REFUSED, "the server refused the connection (RST)")
        elif conn.tcp and sf is conn.subflows[0] and not sf.fin_acked:
            self.reset_by_server(now, "RST")
        self.closing.check_all_closed(now, out)
        return out

    def reset_by_server(self, now: float, how: str) -> None:
        """The server reset the whole connection before it closed (its application's abortive
        close, RFC 8684 §3.5; for plain TCP, RFC 9293 §3.10.7.4): the replay has failed."""
        conn = self.conn
        level = "" if conn.tcp else " at data level"
        conn.abort(
            now,
            AbortCause.RESET_BY_SERVER,
            f"the server reset the connection ({how}) after acknowledging {conn.out.delivered()} of "
            f"{conn.plan.data_len} client octets{level}",
        )

    def fin_again(self, sf: Subflow, pkt: Packet) -> list[bytes]:
        """A server's FIN again on ``sf``, closed with it: acknowledged again (RFC 9293 §3.10.7.4,
        TIME-WAIT: our ACK of it was lost; unanswered, the server's subflow would stay in LAST-ACK,
        sending its FIN again and again, until our kernel resets it)."""
        flags = int(pkt.flags)
        if not flags & FIN or flags & RST or not sf.peer_fin or sf.rcv_nxt != (pkt.seq + pkt.payload_len + 1) & M32:
            return []
        sf.received += 1
        return [sf.packet(0, [self.conn.ack_dss()])]

    def dss(self, sf: Subflow, o: Dss, now: float, out: list[bytes]) -> bool:
        """A DSS from the server: its DATA_ACK, its mapping; True when it carries a DATA_FIN."""
        conn = self.conn
        sf.dss_seen = True
        f = int(o.flags)
        if f & DATA_ACK_PRESENT and o.data_ack is not None and conn.out.data_ack(o.data_ack, bool(f & DATA_ACK_8), now):
            self.closing.handle(now, ClosureEvent.RCV_DATA_ACK_DFIN, out)
        inc = conn.inc
        if f & MAPPING_PRESENT and o.dsn is not None and inc.idsn is not None:
            dsn = o.dsn if f & DSN_8 else inc.expand(o.dsn)
            length = o.data_level_length or 0
            if f & DATA_FIN:
                inc.dfin = (dsn + length - 1) & M64
            if length and not (f & DATA_FIN and length == 1 and o.ssn == 0):
                sf.map(dsn, o.ssn or 0, length - (1 if f & DATA_FIN else 0))
        return bool(f & DATA_FIN)

    def add_addr(self, sf: Subflow, o: AddAddr, now: float, out: list[bytes]) -> None:
        """The server announced an address: echo it (RFC 8684 §3.4.1)."""
        if o.echo:
            return
        conn = self.conn
        conn.emit(AddAddrEchoed(conn.since(now), sf.index, o.address_id, str(o.address), o.port))
        echo = AddAddr(echo=True, address_id=o.address_id, address=o.address, port=o.port)
        out.append(sf.packet(0, [echo, conn.ack_dss()]))

    def segment(self, sf: Subflow, pkt: Packet, flags: int, now: float, out: list[bytes]) -> None:
        """Data or a FIN on ``sf``: taken if in order, acknowledged either way."""
        conn = self.conn
        n = pkt.payload_len
        if pkt.seq == sf.rcv_nxt:
            if n:
                where = sf.dsn_of(pkt.seq, n)
                if where is None and conn.tcp:
                    where = sf.stream_rcv(pkt.seq, n)  # one byte stream: no mapping needed
                if where is not None:
                    conn.inc.add(*where)
                sf.rcv_nxt = (pkt.seq + n) & M32
                sf.data_received += n
            if flags & FIN:
                sf.rcv_nxt = (pkt.seq + n + 1) & M32
                sf.peer_fin = True
                conn.emit(FinReceived(conn.since(now), sf.index))
        out.append(sf.packet(0, [conn.ack_dss()]))
