"""What a replay did, once it is over: :class:`Report`, with a :class:`SubflowReport` per subflow."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.replay.events import AbortCause, ReplayEvent
from mptcpspec.replay.plan import SubflowKind
from mptcpspec.replay.setup import show_endpoint
from mptcpspec.replay.subflow import JOIN_REFUSED, Subflow, SubflowState

__all__ = ["FastOpenOutcome", "FastOpenReport", "Report", "SubflowReport"]


class FastOpenOutcome(Enum):
    """What became of the TCP Fast Open SYN of the capture (RFC 7413; RFC 8684 Appendix B)."""

    #: sent on the SYN, and no SYN/ACK with MP_CAPABLE came back
    NO_ANSWER = "sent on the SYN; no SYN/ACK with MP_CAPABLE came back"
    #: the server took all of the SYN's data
    TAKEN = "SYN data taken"
    #: the server took part of the SYN's data; the rest went after the handshake
    PARTLY_TAKEN = "SYN data partly taken"
    #: the server took none of it (cookie refused, or Fast Open off): it went after the handshake
    NOT_TAKEN = "SYN data not taken: sent after the handshake"
    #: a cookie on the SYN, no data (the capture's SYN had none)
    COOKIE_ONLY = "cookie sent, no SYN data"
    #: an empty Fast Open option: a request for a cookie
    COOKIE_REQUEST = "cookie request"
    #: Fast Open was turned off for this replay: a plain SYN, its data after the handshake
    OFF = "not used"


@dataclass(frozen=True, slots=True)
class FastOpenReport:
    outcome: FastOpenOutcome
    offered: int  #: SYN data octets of the capture
    taken: int  #: of them, those the live server took with its SYN/ACK
    server_cookie: bytes | None  #: the cookie the live server gave in its SYN/ACK

    def describe(self) -> str:
        o = self.outcome
        if o is FastOpenOutcome.TAKEN:
            return f"SYN data taken ({self.taken} octets)"
        if o is FastOpenOutcome.PARTLY_TAKEN:
            return f"SYN data taken ({self.taken} octets); the rest sent after the handshake"
        if o is FastOpenOutcome.OFF:
            return "not used (Fast Open off)" + (": SYN data sent after the handshake" if self.offered else "")
        return str(o.value)


@dataclass(frozen=True, slots=True)
class SubflowReport:
    index: int
    kind: SubflowKind
    local: str
    remote: str
    state: SubflowState  #: where it ended
    result: str  #: what became of it, in words: "established", "failed: ...", "closed", "reset", "not opened"
    states: tuple[SubflowState, ...]  #: every state it went through, in order
    sent: int  #: packets, retransmissions included
    received: int
    retransmitted: int
    data_sent: int  #: payload octets sent (first transmissions)
    data_received: int

    @classmethod
    def of(cls, sf: Subflow) -> SubflowReport:
        return cls(
            sf.index,
            sf.kind,
            show_endpoint(sf.local),
            show_endpoint(sf.remote),
            sf.state,
            sf.result,
            tuple(sf.history),
            sf.sent,
            sf.received,
            sf.retransmitted,
            sf.data_sent,
            sf.data_received,
        )


@dataclass(frozen=True, slots=True)
class Report:
    ok: bool  #: the connection closed cleanly
    reason: str  #: "closed cleanly", or why not
    abort: AbortCause | None  #: why the replay stopped early, if it did
    elapsed: float  #: seconds from the first SYN to the end
    client_key: int
    server_key: int | None
    data_delivered: int  #: client octets the server acknowledged at data level (Fast Open SYN data included)
    data_planned: int
    server_data: int  #: server octets received in order at data level
    closure_state: ClosureState
    subflows: tuple[SubflowReport, ...]
    events: tuple[ReplayEvent, ...]
    #: None when the capture's SYN had no TCP Fast Open option
    fast_open: FastOpenReport | None = None
    tcp: bool = False  #: replayed as plain TCP (the plan's, or after the live server fell back)
    fell_back: bool = False  #: the live server answered without MP_CAPABLE (RFC 8684 §3.7)
    checksums: bool = False  #: DSS checksums were used (the C flag of either side, RFC 8684 §3.1)
    checksums_captured: bool = False  #: the capture's client asked for them (its C flag)
    #: why the connection went on as plain TCP (RFC 8684 §3.7), in words; None: it did not
    fallback: str | None = None
    #: what the replay did on the server's MP_FAIL (RFC 8684 §3.7), in words; None: none came
    mp_fail: str | None = None
    #: "client", or "server" (:class:`~replay.serving.ServerReplay`): then ``data_delivered`` and
    #: ``data_planned`` count the replayed server's octets, ``server_data`` the live client's received,
    #: ``client_key`` is the live client's and ``checksums_captured`` the captured server's C flag
    side: str = "client"

    @property
    def refused_joins(self) -> tuple[SubflowReport, ...]:
        """The MP_JOINs the live server refused (reset, or left unanswered, in their handshake)."""
        return tuple(s for s in self.subflows if s.result.startswith(JOIN_REFUSED))

    @property
    def checksums_why(self) -> str:
        """Whether DSS checksums were used, and whose C flag made it so, in words."""
        if self.tcp:
            return "none (plain TCP)"
        if self.checksums and self.checksums_captured:
            return "used: the captured client asked for them (RFC 8684 §3.1)"
        if self.checksums:
            return "used: the live server required them; the capture had none (RFC 8684 §3.1)"
        return "not used: neither the captured client nor the live server asked for them"

    @property
    def tfo(self) -> str | None:
        """What became of the Fast Open SYN, in words (None: the capture's SYN had no Fast Open)."""
        return None if self.fast_open is None else self.fast_open.describe()

    @property
    def tfo_cookie(self) -> str | None:
        """The live server's Fast Open cookie, in hexadecimal: with it, its next SYN data is taken."""
        fo = self.fast_open
        return fo.server_cookie.hex() if fo is not None and fo.server_cookie else None
