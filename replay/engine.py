"""What the two sides of a replay share: the outside of a sans-IO engine and its timers.

:class:`Engine` is the common part of :class:`~replay.core.Replay` (the client side) and
:class:`~replay.serving.ServerReplay` (the server side): what happened (``events``, ``done``,
``failed``, the closure state), when to call ``poll`` next (:meth:`Engine.deadline`), ``poll``
itself (silence, the subflows' retransmission timers and tail loss probes, the closing, new data),
the TIME-WAIT after a clean close, and the outcome a report starts from.  Each side supplies the
parts that differ: :meth:`Engine.on_silence` (what a silent peer means),
:meth:`Engine.due_more` (its own timers: our MP_JOIN third ACK, the server's ADD_ADDR),
:meth:`Engine.on_gave_up` and :meth:`Engine.lingers`.
"""

from __future__ import annotations

from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.replay.closing import Closing
from mptcpspec.replay.connection import Connection, Keys
from mptcpspec.replay.events import FailCause, ReplayEvent, Retransmitted, SegmentKind
from mptcpspec.replay.receiving import Receiver
from mptcpspec.replay.sending import Sender
from mptcpspec.replay.subflow import M32, Clock, Subflow

__all__ = ["Engine"]


class Engine:
    """The outside of a replay engine; ``time_wait``: the seconds it stays in TIME-WAIT after a
    clean close, before :attr:`done`.  The sides set ``conn``, ``closing``, ``sender`` and
    ``receiver``; ``clock`` holds the latest ``now`` for what is built without one (timestamps)."""

    conn: Connection
    closing: Closing
    sender: Sender
    receiver: Receiver

    def __init__(self, time_wait: float) -> None:
        self.clock = Clock()
        self.time_wait = time_wait
        #: the end of TIME-WAIT (RFC 9293 §3.10.7.4), once the connection closed cleanly
        self.time_wait_until: float | None = None
        self.ended = False  #: the connection's end was seen (TIME-WAIT decided)

    # -- what it is and what happened

    @property
    def keys(self) -> Keys:
        return self.conn.keys

    @property
    def subflows(self) -> list[Subflow]:
        return self.conn.subflows

    @property
    def events(self) -> list[ReplayEvent]:
        return self.conn.events

    @property
    def done(self) -> bool:
        """The replay is over (and its TIME-WAIT too)."""
        return self.conn.done and self.time_wait_until is None

    @property
    def failed(self) -> str | None:
        """Why the replay stopped early (None: it did not)."""
        return self.conn.failure

    @property
    def closure_state(self) -> ClosureState:
        return self.closing.state

    # -- what the sides supply

    def on_silence(self, now: float) -> None:
        """The peer sent nothing for the replay's timeout: abort (each side words it)."""
        raise NotImplementedError

    def due_more(self, now: float, out: list[bytes]) -> None:
        """The side's own timers that are due, their packets appended to ``out``."""

    def on_gave_up(self, sf: Subflow, now: float) -> None:
        """``sf`` was given up: its segment went unanswered too often."""

    def lingers(self) -> bool:
        """After a clean close, whether to stay in TIME-WAIT (a peer's FIN may come again)."""
        return True

    # -- the timers

    def deadline(self) -> float | None:
        """When :meth:`poll` has something to do (None: the replay is over)."""
        conn = self.conn
        if conn.done:
            return self.time_wait_until
        times = [conn.last_heard + conn.options.timeout]
        for sf in conn.subflows:
            times += sf.timers(conn.options.rto)
        times += self.closing.timers()
        times += self.sender.timers()
        return min(times)

    def poll(self, now: float) -> list[bytes]:
        """Timers and pacing: what to send now."""
        self.clock.now = now
        conn = self.conn
        if conn.done:
            if self.time_wait_until is not None and now >= self.time_wait_until:
                self.time_wait_until = None
            return []
        out: list[bytes] = []
        if now - conn.last_heard >= conn.options.timeout:
            if self.closing.state is ClosureState.M_TIME_WAIT:
                self.closing.reset_unfinished(now, out)
                self.ending()
            else:
                self.on_silence(now)
            return out
        self.retransmit(now, out)
        self.due_more(now, out)
        if self.closing.poll(now, out):
            out += self.sender.reinject(now)
            out += self.sender.pump(now)
        self.ending()
        return out

    def retransmit(self, now: float, out: list[bytes]) -> None:
        """Each subflow's segment whose timer expired goes again (RFC 6298 §5.4), or its tail loss
        probe (RFC 8985 §7); a subflow that had no answer ``max_tries`` times is given up."""
        conn = self.conn
        max_tries = conn.options.max_tries
        for sf in conn.subflows:
            u = sf.due(now)
            if u is None:
                continue
            if sf.probing:
                # a tail loss probe: the last segment again; no window change
                out.append(self.sender.again(sf, sf.probe(now), now))
                continue
            if sf.timeouts >= max_tries:
                conn.give_up(sf, now, FailCause.NO_ANSWER, f"no answer after {sf.timeouts + 1} transmissions")
                self.on_gave_up(sf, now)
                continue
            sf.expire(u, now)
            out.append(self.sender.again(sf, u, now))
            conn.emit(Retransmitted(conn.since(now), sf.index, u.kind, (u.seq - sf.isn) & M32, u.tries))
            if u.kind is SegmentKind.DATA:
                out += self.sender.reinject_stalled(sf, now)

    def ending(self) -> None:
        """If the connection just ended: TIME-WAIT if it closed cleanly and the side lingers."""
        conn = self.conn
        if not conn.done or self.ended:
            return
        self.ended = True
        if conn.failure is None and self.time_wait > 0 and self.lingers():
            self.time_wait_until = (conn.ended_at or 0.0) + self.time_wait

    # -- the end

    def outcome(self, now: float) -> tuple[bool, str, float]:
        """Whether the connection closed cleanly, why not in words, and the seconds it took (up
        to ``now`` if it has not ended), for the side's report."""
        conn = self.conn
        state = self.closing.state
        end = conn.ended_at if conn.ended_at is not None else now
        ok = conn.done and conn.failure is None and state is ClosureState.M_CLOSED
        reason = conn.failure or ("closed cleanly" if ok else f"unfinished: closure in {state.name}")
        return ok, reason, end - conn.t0 if conn.started else 0.0
