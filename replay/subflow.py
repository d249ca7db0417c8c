"""One subflow of a replay: its TCP state, sequence numbers, retransmission queue and counters.

A :class:`Subflow` goes through the states of :class:`SubflowState`, each change recorded in
``history``::

    NEW -> SYN_SENT -> ESTABLISHED ------------> CLOSED      (the MP_CAPABLE subflow)
    NEW -> SYN_SENT -> PRE_ESTABLISHED -> ESTABLISHED -> CLOSED      (an MP_JOIN subflow)
                 any state but NEW -> FAILED (given up, or reset before its FINs were acknowledged)

It builds its own packets and keeps what it sent until the server acknowledges it; what the
subflow means for the connection (keys, data-level sequence numbers) is the core's.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec.options import TcpOption
from mptcpspec.replay.events import SegmentKind
from mptcpspec.replay.plan import PlannedSubflow, SubflowKind
from mptcpspec.replay.setup import Endpoint
from mptcpspec.replay.wire import Flow, tcp_packet

__all__ = ["M32", "OPEN", "WINDOW", "Subflow", "SubflowState", "Unacked", "after"]

M32 = 0xFFFFFFFF
WINDOW = 65535  #: our receive window: we advertise no window scaling
ACK = int(TcpFlags.ACK)
RST = int(TcpFlags.RST)


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
    """A segment sent and not yet acknowledged: resent as it was on a timeout."""

    __slots__ = ("seq", "end", "packet", "sent_at", "tries", "kind")

    def __init__(self, seq: int, end: int, packet: bytes, now: float, kind: SegmentKind) -> None:
        self.seq, self.end, self.packet, self.sent_at, self.tries, self.kind = seq, end, packet, now, 0, kind


class Subflow:
    """One subflow, from our side: ``local`` to ``remote``, our ISN ``isn``, our MP_JOIN nonce ``nonce``."""

    __slots__ = (
        "index",
        "kind",
        "local",
        "remote",
        "address_id",
        "backup",
        "state",
        "history",
        "result",
        "isn",
        "snd_nxt",
        "snd_una",
        "rcv_nxt",
        "irs",
        "wnd",
        "mss",
        "ssn_off",
        "nonce",
        "unacked",
        "rto",
        "join_ack",
        "join_ack_at",
        "join_tries",
        "mappings",
        "fin_sent",
        "fin_acked",
        "peer_fin",
        "opened_at",
        "flow",
        "sent",
        "received",
        "retransmitted",
        "data_sent",
        "data_received",
    )

    def __init__(
        self, planned: PlannedSubflow, local: Endpoint, remote: Endpoint, isn: int, nonce: int, rto: float
    ) -> None:
        self.index = planned.index
        self.kind = planned.kind
        self.local, self.remote = local, remote
        self.address_id, self.backup = planned.address_id, planned.backup
        self.state = SubflowState.NEW
        self.history = [SubflowState.NEW]  #: every state it was in, in order
        self.result = "not opened"  #: what became of it, in words
        self.isn = isn
        self.snd_nxt = self.snd_una = isn
        self.rcv_nxt: int | None = None  #: None until the SYN/ACK
        self.irs = 0  #: the server's ISN
        self.wnd = 0  #: the server's window on this subflow
        self.mss = 536
        # Subflow sequence numbers in DSS mappings are relative to the ISN, past any Fast Open data
        # the SYN carried: that data is outside the data-level stream (Linux: ssn_offset += len).
        self.ssn_off = 0
        self.nonce = nonce  #: our MP_JOIN nonce
        self.unacked: list[Unacked] = []
        self.rto = rto
        self.join_ack: bytes | None = None  #: our MP_JOIN third ACK, sent again until it is acknowledged
        self.join_ack_at = 0.0
        self.join_tries = 0
        self.mappings: list[tuple[int, int, int]] = []  #: the server's: (ssn, 64-bit dsn, length)
        self.fin_sent = self.fin_acked = self.peer_fin = False
        self.opened_at = 0.0
        self.flow = Flow(local[0], remote[0], local[1], remote[1])  #: the data path's packet builder
        self.sent = self.received = self.retransmitted = self.data_sent = self.data_received = 0

    def __repr__(self) -> str:
        return f"<Subflow {self.index} {self.kind.value} {self.state.name}>"

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

    def keep(self, packet: bytes, length: int, now: float, kind: SegmentKind) -> None:
        """``packet`` just sent at ``snd_nxt`` with ``length`` octets of sequence space: advance
        ``snd_nxt`` and keep it until it is acknowledged."""
        seq = self.snd_nxt
        end = (seq + length) & M32
        self.unacked.append(Unacked(seq, end, packet, now, kind))
        self.snd_nxt = end

    def reset_packet(self, seq: int) -> bytes:
        """A bare RST at ``seq`` (RFC 9293 §3.10.7.3: the answer to an unacceptable ACK)."""
        self.sent += 1
        return tcp_packet(self.local[0], self.remote[0], self.local[1], self.remote[1], seq, 0, RST, 0)

    # -- acknowledgments and timers

    def acknowledged(self, ack: int, window: int, now: float) -> None:
        """An acceptable ACK from the server: drop what it covers, take its window, note our FIN acknowledged."""
        una = self.snd_una
        if ack == una:
            self.wnd = window
        elif 0 < ((ack - una) & M32) < 0x80000000:
            self.snd_una = ack
            q = self.unacked
            while q and not 0 < ((q[0].end - ack) & M32) < 0x80000000:
                q.pop(0)
            if q:
                q[0].sent_at = now  # the timer restarts for what is left
                q[0].tries = 0
            self.wnd = window
        if self.fin_sent and ack == self.snd_nxt:
            self.fin_acked = True

    def due(self, now: float) -> Unacked | None:
        """The oldest unacknowledged segment if its retransmission timer has expired."""
        if self.unacked:
            u = self.unacked[0]
            if now >= u.sent_at + self.rto * (1 << u.tries):
                return u
        return None

    def resend(self, u: Unacked, now: float) -> bytes:
        """``u`` again, its timer doubled."""
        u.tries += 1
        u.sent_at = now
        self.retransmitted += 1
        self.sent += 1
        return u.packet

    def timers(self, rto: float) -> list[float]:
        """When this subflow's retransmission timers expire (``rto``: the MP_JOIN ACK's first timeout)."""
        times = []
        if self.unacked:
            u = self.unacked[0]
            times.append(u.sent_at + self.rto * (1 << u.tries))
        if self.join_ack is not None:
            times.append(self.join_ack_at + rto * (1 << self.join_tries))
        return times

    def give_up(self, result: str) -> None:
        """Failed: nothing more is sent again."""
        self.enter(SubflowState.FAILED, result)
        self.unacked.clear()
        self.join_ack = None

    # -- the server's data

    def map(self, dsn: int, ssn: int, length: int) -> None:
        """The server's mapping of ``length`` octets from subflow sequence ``ssn`` (relative) to ``dsn``."""
        self.mappings.append((ssn, dsn, length))
        del self.mappings[:-16]

    def dsn_of(self, seq: int, length: int) -> tuple[int, int] | None:
        """The data-level range (64-bit DSN, length) of ``length`` octets received at ``seq``, by the
        latest mapping that covers them; None when none does."""
        rel = (seq - self.irs) & M32
        for ssn, dsn, n in reversed(self.mappings):
            if ssn <= rel < ssn + n:
                return (dsn + rel - ssn) & 0xFFFFFFFFFFFFFFFF, min(length, ssn + n - rel)
        return None
