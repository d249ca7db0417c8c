"""The end of the replayed connection, driven by the closure machine generated from
``spec/closure.fsm`` (RFC 8684 Appendix D and §3.5): DATA_FIN, the subflows' FINs, MP_FASTCLOSE.

:meth:`Closing.handle` feeds the machine one of its own events and carries out the actions of
the transition it takes.  Once both DATA_FINs are acknowledged (M_TIME_WAIT) the subflows end with
their FIN exchanges; a subflow still opening then is given up, as it can carry nothing more, and
one whose FIN exchange is unfinished when the target falls silent is reset.
"""

from __future__ import annotations

from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec import crypto
from mptcpspec.codec.generated.closure import ClosureMachine
from mptcpspec.codec.generated.closure import Event as ClosureEvent
from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.codec.options import Dss, DssFlags, MpFastclose, MpTcpRst, TcpOption
from mptcpspec.fsm.runtime import ProtocolError
from mptcpspec.replay.connection import Connection
from mptcpspec.replay.events import (
    AbortCause,
    CloseHow,
    ClosureRefused,
    ClosureStep,
    DataFinSent,
    FailCause,
    FastcloseSent,
    SegmentKind,
    SubflowClosed,
)
from mptcpspec.replay.subflow import OPEN, Subflow, SubflowState

__all__ = ["Closing"]

FIN, RST = int(TcpFlags.FIN), int(TcpFlags.RST)
DSS_DATA_FIN = (
    DssFlags.DATA_ACK_PRESENT | DssFlags.DATA_ACK_8 | DssFlags.MAPPING_PRESENT | DssFlags.DSN_8 | DssFlags.DATA_FIN
)
#: states in which the connection waits for its DATA_FIN exchange, subflows closed or not
DATA_FIN_EXCHANGE = frozenset(
    {ClosureState.M_FIN_WAIT_1, ClosureState.M_FIN_WAIT_2, ClosureState.M_CLOSING, ClosureState.M_LAST_ACK}
)
ENDED = frozenset({SubflowState.NEW, SubflowState.CLOSED, SubflowState.FAILED})


class Closing:
    """The closure machine of our end of ``conn``, and what its actions do."""

    __slots__ = ("conn", "machine", "time_wait_at")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.machine = ClosureMachine()
        self.time_wait_at: float | None = None  #: when both DATA_FINs were acknowledged (M_TIME_WAIT)

    @property
    def state(self) -> ClosureState:
        state: ClosureState = self.machine.state
        return state

    def handle(self, now: float, event: ClosureEvent, out: list[bytes], key_valid: bool | None = None) -> None:
        """Feed ``event`` to the machine (``key_valid``: the MP_FASTCLOSE key was ours) and do what it says."""
        conn = self.conn
        before = self.state
        try:
            if key_valid is None:
                actions = self.machine.handle(event)
            else:
                actions = self.machine.handle(event, key_valid=key_valid)
        except ProtocolError as e:
            conn.emit(ClosureRefused(conn.since(now), None, event, before, e.reason))
            return
        conn.emit(ClosureStep(conn.since(now), None, event, self.state))
        if self.state is ClosureState.M_TIME_WAIT and before is not ClosureState.M_TIME_WAIT:
            self.time_wait_at = now
            for opening in conn.subflows:
                if opening.state is SubflowState.SYN_SENT:
                    unanswered = f"; its SYN went unanswered ({opening.sent} sent)" if opening.retransmitted else ""
                    conn.give_up(
                        opening, now, FailCause.NOT_OPENED, "never opened before the connection closed" + unanswered
                    )
        for a in actions:
            name = a.name
            if a.kind == "snd" and name == "DATA_FIN":
                out.append(self.data_fin(now))
            elif a.kind == "snd" and name == "DATA_ACK[DFIN]":
                sf = conn.established()
                if sf is not None:
                    out.append(sf.packet(0, [conn.ack_dss()]))
            elif name == "CLOSE_ALL_SUBFLOWS":
                for sf in conn.subflows:
                    if sf.state in OPEN and not sf.fin_sent:
                        out.append(self.fin(sf, now))
            elif a.kind == "snd" and name == "RST+MP_FASTCLOSE":
                fastclose: list[TcpOption] = [MpFastclose(receiver_key=conn.keys.server or 0), MpTcpRst(reason=0)]
                for sf in conn.subflows:
                    if sf.state in OPEN:
                        out.append(sf.packet(RST, fastclose))
                        self._reset(sf, now, "reset (MP_FASTCLOSE sent)")
                conn.emit(FastcloseSent(conn.since(now), None))
            elif name in ("RST_ALL_SUBFLOWS", "RST_OTHER_SUBFLOWS"):
                for sf in conn.subflows:
                    if sf.state in OPEN or sf.state is SubflowState.SYN_SENT:
                        out.append(sf.packet(RST))
                        self._reset(sf, now, "reset")
            elif name == "DELETE_PCB":
                conn.end(now)
        if self.machine.is_final:
            conn.end(now)

    def _reset(
        self, sf: Subflow, now: float, result: str, how: CloseHow = CloseHow.RESET_BY_CLOSURE, linger: float = 0.0
    ) -> None:
        sf.enter(SubflowState.CLOSED, result)
        self.conn.emit(SubflowClosed(self.conn.since(now), sf.index, how, linger))

    def data_fin(self, now: float) -> bytes:
        """Our DATA_FIN (RFC 8684 §3.3.3), on an established subflow."""
        conn = self.conn
        out = conn.out
        sf = conn.established() or conn.subflows[0]
        if conn.tcp:
            # Plain TCP (or fallback, RFC 8684 §3.7): the FIN closes the one byte stream; its ACK
            # stands for the DATA_ACK of a DATA_FIN (see Receiver.established).
            out.dfin_sent_at = now
            return self.fin(sf, now)
        csum = crypto.dss_checksum(out.end, 0, 1, b"") if conn.keys.checksum else None
        dss = Dss(
            flags=DSS_DATA_FIN, data_ack=conn.inc.data_ack(), dsn=out.end, ssn=0, data_level_length=1, checksum=csum
        )
        out.dfin_sent_at = now
        conn.emit(DataFinSent(conn.since(now), sf.index, out.length + 1))
        return sf.packet(0, [dss])

    def fin(self, sf: Subflow, now: float) -> bytes:
        """``sf``'s FIN, kept until it is acknowledged."""
        pkt = sf.packet(FIN, [self.conn.ack_dss()])
        sf.keep(pkt, 1, now, SegmentKind.FIN)
        sf.fin_sent = True
        return pkt

    def reset_unfinished(self, now: float, out: list[bytes]) -> None:
        """The target fell silent for the replay's timeout after both DATA_FINs were acknowledged
        (M_TIME_WAIT): the connection is closed (RFC 8684 §3.3.3), so each subflow whose FIN
        exchange is unfinished is reset, and the replay ends as the connection did.  Seen on a
        lossy path: our FIN lost, its next retransmission backed off past the timeout."""
        linger = 0.0 if self.time_wait_at is None else now - self.time_wait_at
        result = f"reset: its FIN exchange unfinished {linger:.1f} s after the close"
        for sf in self.conn.subflows:
            if sf.state not in ENDED:
                out.append(sf.packet(RST))
                self._reset(sf, now, result, CloseHow.RESET_AFTER_CLOSE, linger)
        self.check_all_closed(now, out)

    def check_all_closed(self, now: float, out: list[bytes]) -> None:
        """Every subflow ended: the connection closes if its DATA_FINs are done, else the replay fails."""
        conn = self.conn
        if all(s.state in ENDED for s in conn.subflows):
            if self.machine.can_handle(ClosureEvent.ALL_SUBFLOWS_CLOSED):
                self.handle(now, ClosureEvent.ALL_SUBFLOWS_CLOSED, out)
            elif not conn.done and self.state not in DATA_FIN_EXCHANGE:
                conn.abort(now, AbortCause.SUBFLOWS_CLOSED_EARLY, "every subflow closed before the connection did")

    # -- timers

    def rto(self) -> float:
        """The DATA_FIN's first timeout: the round trips measured on an established subflow (RFC
        6298, not backed off), else the replay's first timeout."""
        sf = self.conn.established()
        measured = None if sf is None else sf.rtt.measured()
        return self.conn.options.rto if measured is None else measured

    def timers(self) -> list[float]:
        """When the DATA_FIN is sent again."""
        out = self.conn.out
        if out.dfin_sent_at is not None and not self.conn.tcp:
            return [out.dfin_sent_at + self.rto() * (1 << out.dfin_tries)]
        return []

    def poll(self, now: float, out: list[bytes]) -> bool:
        """The DATA_FIN's retransmission; False when the replay had to stop."""
        conn = self.conn
        data, options = conn.out, conn.options
        due = data.dfin_sent_at is not None and now >= data.dfin_sent_at + self.rto() * (1 << data.dfin_tries)
        if due and not conn.tcp:
            if data.dfin_tries >= options.max_tries:
                conn.abort(now, AbortCause.DATA_FIN_UNACKNOWLEDGED, "the DATA_FIN was never acknowledged")
                return False
            data.dfin_tries += 1
            self.handle(now, ClosureEvent.RTO, out)
        return True
