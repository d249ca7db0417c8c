"""What the parts of a replay share: the MPTCP connection being replayed.

:class:`Connection` holds the keys, the subflows, both data-level streams, the events and the
outcome; the handshake, the sender and the closing work on it, and the core drives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mptcpspec.codec import crypto
from mptcpspec.codec.options import Dss, DssFlags
from mptcpspec.replay.datalevel import IncomingData, OutgoingData
from mptcpspec.replay.events import AbortCause, FailCause, ReplayAborted, ReplayEvent, SubflowFailed
from mptcpspec.replay.plan import ReplayPlan
from mptcpspec.replay.setup import ReplayOptions
from mptcpspec.replay.subflow import JOIN_REFUSED, Subflow, SubflowState

if TYPE_CHECKING:
    from mptcpspec.replay.fidelity import Recorder

__all__ = ["Connection", "Keys"]

DSS_ACK = DssFlags.DATA_ACK_PRESENT | DssFlags.DATA_ACK_8


class Keys:
    """The connection's keys (RFC 8684 §3.1) and what follows from them."""

    __slots__ = ("client", "captured", "idsn_client", "server", "idsn_server", "token_server", "checksum")

    def __init__(self, client: int, captured: bool, checksum: bool) -> None:
        self.client = client
        self.captured = captured  #: the capture's own client key
        self.idsn_client = crypto.key_idsn(client, 1)
        self.server: int | None = None  #: from the live server's SYN/ACK
        self.idsn_server: int | None = None
        self.token_server: int | None = None
        self.checksum = checksum  #: DSS checksums in use

    def learn(self, server: int) -> None:
        """The live server's key."""
        self.server = server
        self.token_server = crypto.key_token(server, 1)
        self.idsn_server = crypto.key_idsn(server, 1)


class Connection:
    """The replayed connection: ``subflows`` in plan order (the first is the MP_CAPABLE one)."""

    __slots__ = (
        "plan",
        "options",
        "keys",
        "subflows",
        "by_index",
        "by_flow",
        "out",
        "inc",
        "events",
        "t0",
        "sched0",
        "started",
        "last_heard",
        "done",
        "failure",
        "abort_cause",
        "ended_at",
        "tcp",
        "fell_back",
        "record",
    )

    def __init__(self, plan: ReplayPlan, options: ReplayOptions, keys: Keys, subflows: list[Subflow]) -> None:
        self.plan, self.options, self.keys = plan, options, keys
        self.subflows = subflows
        self.by_index = {sf.index: sf for sf in subflows}
        #: a server packet's subflow, by (local address, local port, server address, server port)
        self.by_flow = {(*sf.local, *sf.remote): sf for sf in subflows}
        self.out = OutgoingData(keys.idsn_client, plan, options.fill, options.mss)
        self.inc = IncomingData()
        self.events: list[ReplayEvent] = []
        self.t0 = 0.0  #: when the replay started
        #: where the captured times count from: ``t0``, moved later by as much as the live server's
        #: first SYN/ACK came later than the captured one (:meth:`answered`)
        self.sched0 = 0.0
        self.started = False
        self.last_heard = 0.0
        self.done = False
        self.failure: str | None = None  #: why the replay stopped early
        self.abort_cause: AbortCause | None = None
        self.ended_at: float | None = None
        #: plain TCP, no MPTCP option (the plan's, or since the live server fell back)
        self.tcp = plan.tcp
        #: the live server answered our MP_CAPABLE SYN without MP_CAPABLE (RFC 8684 §3.7)
        self.fell_back = False
        #: what was sent, for the fidelity report (:func:`~replay.fidelity.record`); None: not kept
        self.record: Recorder | None = None

    def answered(self, index: int, now: float) -> None:
        """The live server's SYN/ACK of the first subflow (``index``) came at ``now``: with paced
        timing, the captured times count from later by as much as it came later than the captured
        one (data cannot go before the handshake ends: it keeps its captured offsets from there)."""
        ps = next((p for p in self.plan.subflows if p.index == index), None)
        due = None if ps is None or ps.answer_ns is None else self.options.at(self.t0, ps.answer_ns)
        if due is not None and now > due:
            self.sched0 = self.t0 + (now - due)

    def since(self, now: float) -> float:
        """``now`` as seconds since the replay started (an event's time)."""
        return now - self.t0

    def emit(self, event: ReplayEvent) -> None:
        self.events.append(event)

    def end(self, now: float) -> None:
        if not self.done:
            self.done = True
            self.ended_at = now

    def abort(self, now: float, cause: AbortCause, detail: str) -> None:
        """Stop the replay (once): ``detail`` says what went wrong."""
        if not self.done:
            self.failure, self.abort_cause = detail, cause
            self.end(now)
            self.emit(ReplayAborted(self.since(now), None, cause, detail))

    def give_up(self, sf: Subflow, now: float, cause: FailCause, detail: str) -> None:
        """Fail ``sf``; the replay too when it is the first subflow and never opened."""
        # An MP_JOIN failing in its handshake was refused, unless its HMAC was wrong or the
        # connection merely closed before its SYN's first timeout (a SYN in flight says nothing).
        refused = (
            sf.joining
            and cause is not FailCause.HMAC_MISMATCH
            and (cause is not FailCause.NOT_OPENED or sf.retransmitted > 0)
        )
        sf.give_up(f"{JOIN_REFUSED}: {detail}" if refused else f"failed: {detail}")
        self.emit(SubflowFailed(self.since(now), sf.index, cause, detail))
        if sf is self.subflows[0] and sf.rcv_nxt is None:
            self.abort(now, AbortCause.FIRST_SUBFLOW_FAILED, f"the first subflow could not be opened: {detail}")

    def established(self) -> Subflow | None:
        """An established subflow (the first in plan order), if any."""
        for sf in self.subflows:
            if sf.state is SubflowState.ESTABLISHED:
                return sf
        return None

    def ack_dss(self) -> Dss:
        """A DSS with our DATA_ACK alone."""
        return Dss(flags=DSS_ACK, data_ack=self.inc.data_ack())
