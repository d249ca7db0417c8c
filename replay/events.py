"""What a replay observed and did, as typed events.

Each happening is one frozen value of its own class (a subflow established, the server's Fast
Open cookie, an ADD_ADDR echoed, a retransmission, the closure machine's step, the replay
aborted...), kept in order in :attr:`Replay.events <replay.core.Replay.events>` and in the
:class:`~replay.report.Report`.  Every event has ``time`` (seconds since the replay started) and
``subflow`` (the subflow's index, ``None`` when it concerns the connection); the other fields are
what a program needs to act on it.  They are plain data, as h11's events: no text, no advice;
whoever shows them words them (the command line: :func:`mptcpspec.cli.replay.render_event`, which
also names its own options where they help).

The classes are final: match on them (``isinstance`` or ``match``), do not subclass them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mptcpspec.codec.generated.closure import Event as ClosureEvent
from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.codec.options import TcpRstReason
from mptcpspec.replay.plan import SubflowKind

__all__ = [
    "AbortCause",
    "AddAddrEchoed",
    "AddAddrEchoReceived",
    "AddAddrSent",
    "ClientKey",
    "ClientSyn",
    "ChecksumsRequired",
    "CloseHow",
    "ClosureRefused",
    "ClosureStep",
    "ConnectionEstablished",
    "ConnectionOpening",
    "DataFinReceived",
    "DataFinSent",
    "DataRetransmitted",
    "FailCause",
    "FastOpenCookie",
    "FastOpenSettled",
    "FellBack",
    "FastRetransmit",
    "FastcloseSent",
    "FinReceived",
    "JoinOpening",
    "InfiniteMapping",
    "JoinVerified",
    "MpFailAnswer",
    "MpFailReceived",
    "PrioritySent",
    "Reinjected",
    "RemoveAddrSent",
    "ReplayAborted",
    "ReplayEvent",
    "Retransmitted",
    "SegmentKind",
    "SubflowClosed",
    "SubflowEstablished",
    "SubflowFailed",
    "SubflowReset",
]


class AbortCause(Enum):
    """Why a replay stopped before the connection closed."""

    #: the target sent nothing for the replay's timeout
    TARGET_SILENT = "target silent"
    #: the MP_CAPABLE subflow could not be opened
    FIRST_SUBFLOW_FAILED = "first subflow failed"
    #: the server answered the MP_CAPABLE SYN with a reset
    REFUSED = "refused"
    #: the server's SYN/ACK carried an MP_CAPABLE without its key (one without MP_CAPABLE is a
    #: fallback to TCP, which the replay follows: :class:`FellBack`)
    NO_MPTCP = "no MPTCP"
    #: the server answered with an MPTCP version other than 1
    VERSION = "MPTCP version"
    #: our DATA_FIN was never acknowledged
    DATA_FIN_UNACKNOWLEDGED = "DATA_FIN unacknowledged"
    #: data-level retransmissions were never acknowledged
    DATA_UNACKNOWLEDGED = "data unacknowledged"
    #: every subflow closed while the connection was still open
    SUBFLOWS_CLOSED_EARLY = "subflows closed early"
    #: the server reset the whole connection (MP_FASTCLOSE; for plain TCP, a RST) before it closed
    RESET_BY_SERVER = "reset by the server"
    #: server side: no client connected within the replay's timeout
    NO_CLIENT = "no client"
    #: server side: the live client reset the whole connection (MP_FASTCLOSE) when the captured one did not
    RESET_BY_CLIENT = "reset by the client"


class FailCause(Enum):
    """Why the replay gave a subflow up."""

    #: a segment (the SYN, data, a FIN) went unanswered through every retransmission
    NO_ANSWER = "no answer"
    #: the MP_JOIN third ACK was never acknowledged
    JOIN_ACK_UNACKNOWLEDGED = "MP_JOIN ACK unacknowledged"
    #: the SYN/ACK to an MP_JOIN SYN carried no MP_JOIN
    NO_MP_JOIN = "no MP_JOIN"
    #: the server's MP_JOIN HMAC is not the one its key gives (RFC 8684 §3.2)
    HMAC_MISMATCH = "HMAC mismatch"
    #: the subflow was still opening when the connection closed
    NOT_OPENED = "not opened"
    #: the server reset the subflow before its FIN exchange finished
    RESET = "reset"


class CloseHow(Enum):
    """How a subflow ended without failing."""

    #: both FINs sent and acknowledged
    FIN_EXCHANGE = "FIN exchange"
    #: the FIN exchange had not finished when the target fell silent for the replay's timeout after
    #: both DATA_FINs were acknowledged (the connection closed, RFC 8684 §3.3.3): reset
    RESET_AFTER_CLOSE = "reset after close"
    #: reset by us as the closure machine tore the connection down (MP_FASTCLOSE or a reset)
    RESET_BY_CLOSURE = "reset by closure"


class SegmentKind(Enum):
    """What a retransmitted segment carried."""

    SYN = "SYN"
    JOIN_ACK = "MP_JOIN ACK"
    DATA = "data"
    FIN = "FIN"


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """The base of every event: when, and which subflow (``None``: the connection)."""

    time: float  #: seconds since the replay started
    subflow: int | None  #: the subflow's index (0 is the MP_CAPABLE one), or None for the connection


@dataclass(frozen=True, slots=True)
class ConnectionOpening(ReplayEvent):
    """The MP_CAPABLE SYN went out."""

    local: str
    remote: str
    client_key: int
    key_captured: bool  #: the capture's client key (False: a new one)
    tcp: bool = False  #: a plain TCP SYN (no MP_CAPABLE): the connection is replayed as TCP


@dataclass(frozen=True, slots=True)
class JoinOpening(ReplayEvent):
    """An MP_JOIN SYN went out."""

    local: str
    remote: str
    address_id: int | None
    backup: bool


@dataclass(frozen=True, slots=True)
class ChecksumsRequired(ReplayEvent):
    """The server's SYN/ACK asked for DSS checksums the capture's client did not: they are on."""


@dataclass(frozen=True, slots=True)
class ConnectionEstablished(ReplayEvent):
    """The live server's MP_CAPABLE SYN/ACK: its key, and what follows from it."""

    server_key: int
    token: int  #: the server's token, from its key
    checksums: bool  #: DSS checksums are in use


@dataclass(frozen=True, slots=True)
class FellBack(ReplayEvent):
    """The live server answered the MP_CAPABLE SYN without MP_CAPABLE: the replay goes on as plain
    TCP with the same data on this subflow, and opens no other (RFC 8684 §3.7)."""


@dataclass(frozen=True, slots=True)
class JoinVerified(ReplayEvent):
    """An MP_JOIN SYN/ACK whose HMAC is right for the live server's key."""

    server_address_id: int


@dataclass(frozen=True, slots=True)
class SubflowEstablished(ReplayEvent):
    """A subflow is established: the MP_CAPABLE one on its SYN/ACK, an MP_JOIN one when the
    server acknowledged our third ACK."""

    kind: SubflowKind


@dataclass(frozen=True, slots=True)
class FastOpenCookie(ReplayEvent):
    """The server gave a TCP Fast Open cookie in its SYN/ACK (RFC 7413): with it, its next SYN
    data is taken."""

    cookie: bytes


@dataclass(frozen=True, slots=True)
class FastOpenSettled(ReplayEvent):
    """What the server did with the SYN's data: ``taken`` of the ``offered`` octets (the rest is
    sent after the handshake)."""

    offered: int
    taken: int


@dataclass(frozen=True, slots=True)
class AddAddrEchoed(ReplayEvent):
    """The server announced an address (ADD_ADDR); we echoed it."""

    address_id: int
    address: str
    port: int | None


@dataclass(frozen=True, slots=True)
class PrioritySent(ReplayEvent):
    """MP_PRIO sent at the point of the data where the capture's client sent it."""

    backup: bool


@dataclass(frozen=True, slots=True)
class RemoveAddrSent(ReplayEvent):
    """REMOVE_ADDR sent at the point of the data where the capture's client sent it."""

    address_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Retransmitted(ReplayEvent):
    """A segment sent again on its subflow's retransmission timer."""

    segment: SegmentKind
    sequence: int  #: its subflow sequence number, relative to our ISN
    attempt: int  #: 1 for the first retransmission


@dataclass(frozen=True, slots=True)
class FastRetransmit(ReplayEvent):
    """Duplicate ACKs, or SACK blocks above a hole, said a segment was lost (RFC 5681 §3.2, RFC
    6675 §5): it is sent again at once and the subflow's congestion window halved."""

    sequence: int  #: the lost segment's subflow sequence number, relative to our ISN
    cwnd: int  #: the congestion window after, in octets
    ssthresh: int  #: the slow-start threshold after, in octets
    sack: bool  #: found with SACK (else by counting duplicate ACKs)


@dataclass(frozen=True, slots=True)
class Reinjected(ReplayEvent):
    """A subflow's retransmission timer expired, or the server reset it: its data the connection had
    not acknowledged was sent on this subflow too (RFC 8684 §3.3.6)."""

    stalled: int  #: the index of the subflow whose timer expired (or that the server reset)
    dsn: int  #: the first DSN sent again, relative to our IDSN
    segments: int
    #: the server reset that subflow while the others lived: its data goes on them (the event's
    #: subflow is then None: the segments go wherever there is room)
    reset: bool = False


@dataclass(frozen=True, slots=True)
class DataRetransmitted(ReplayEvent):
    """Connection-level retransmission (RFC 8684 §3.3.6): data every subflow acknowledged but the
    connection did not, sent again from ``dsn``."""

    dsn: int  #: relative to our IDSN
    segments: int


@dataclass(frozen=True, slots=True)
class DataFinSent(ReplayEvent):
    """Our DATA_FIN (first transmission or again)."""

    dsn: int  #: relative to our IDSN


@dataclass(frozen=True, slots=True)
class DataFinReceived(ReplayEvent):
    """The server's DATA_FIN, in order: it sends no more data."""


@dataclass(frozen=True, slots=True)
class FinReceived(ReplayEvent):
    """The server's FIN on a subflow, in order."""


@dataclass(frozen=True, slots=True)
class ClosureStep(ReplayEvent):
    """The closure machine (RFC 8684 Appendix D) took ``event`` into ``state``."""

    event: ClosureEvent
    state: ClosureState


@dataclass(frozen=True, slots=True)
class ClosureRefused(ReplayEvent):
    """The closure machine has no transition for ``event`` in ``state``; nothing changed."""

    event: ClosureEvent
    state: ClosureState
    reason: str


@dataclass(frozen=True, slots=True)
class FastcloseSent(ReplayEvent):
    """MP_FASTCLOSE sent with a reset on every subflow (RFC 8684 §3.5, Option R)."""


@dataclass(frozen=True, slots=True)
class SubflowClosed(ReplayEvent):
    """A subflow ended without failing; ``linger``: the seconds its FIN exchange was given after
    the connection closed (for ``RESET_AFTER_CLOSE``)."""

    how: CloseHow
    linger: float = 0.0


@dataclass(frozen=True, slots=True)
class SubflowReset(ReplayEvent):
    """The server reset a subflow; ``reason``: its MP_TCPRST reason (RFC 8684 §3.6), if it gave one."""

    reason: TcpRstReason | int | None
    refused: bool = False  #: during the MP_JOIN handshake: the server refused the join


class MpFailAnswer(Enum):
    """What the replay did on the server's MP_FAIL (RFC 8684 §3.7)."""

    #: the only subflow: MP_FAIL echoed, an infinite mapping on the next new data, then plain TCP there
    INFINITE_MAPPING = "infinite mapping"
    #: it came with the server's reset of the subflow: the subflow's data goes on the others
    SUBFLOW_RESET = "subflow reset by the server"
    #: other subflows are in use: we reset this one (MP_TCPRST middlebox interference); its data goes on the others
    SUBFLOW_CLOSED = "subflow reset by us"
    #: the connection had already fallen back: nothing more to do
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class MpFailReceived(ReplayEvent):
    """The server's MP_FAIL: a DSS checksum of ours failed at ``dsn`` (a middlebox changed the data)."""

    dsn: int  #: the DSN the server names, relative to our IDSN
    answer: MpFailAnswer


@dataclass(frozen=True, slots=True)
class InfiniteMapping(ReplayEvent):
    """Our infinite mapping (a DSS mapping of data-level length 0, RFC 8684 §3.7) went out: from
    ``dsn`` on, the subflow carries the rest of the data as plain TCP, without MPTCP options."""

    dsn: int  #: the first DSN of the mapping, relative to our IDSN
    sequence: int  #: its subflow sequence number, relative to our ISN


@dataclass(frozen=True, slots=True)
class SubflowFailed(ReplayEvent):
    """The replay gave a subflow up."""

    cause: FailCause
    detail: str  #: what exactly went wrong


@dataclass(frozen=True, slots=True)
class ReplayAborted(ReplayEvent):
    """The replay stopped before the connection closed."""

    cause: AbortCause
    detail: str  #: what exactly went wrong


# -- the server side (replay.serving)


@dataclass(frozen=True, slots=True)
class ClientSyn(ReplayEvent):
    """Server side: a live client's SYN (MP_CAPABLE or MP_JOIN) came to a listen address; our
    SYN/ACK went out (for MP_JOIN, with the truncated HMAC for the live keys)."""

    local: str
    remote: str
    kind: SubflowKind
    address_id: int | None  #: the client's address ID (MP_JOIN)
    backup: bool  #: the client's backup flag (MP_JOIN)


@dataclass(frozen=True, slots=True)
class ClientKey(ReplayEvent):
    """Server side: the live client's MP_CAPABLE third ACK (or first data) gave its key."""

    client_key: int
    token: int  #: the client's token, from its key
    checksums: bool  #: DSS checksums are in use


@dataclass(frozen=True, slots=True)
class AddAddrSent(ReplayEvent):
    """Server side: the captured server's ADD_ADDR, with its HMAC over the live keys (RFC 8684
    §3.4.1), at the point of the data where the captured server sent it, or again (no echo yet)."""

    address_id: int
    address: str
    port: int | None
    attempt: int  #: 0 for the first transmission


@dataclass(frozen=True, slots=True)
class AddAddrEchoReceived(ReplayEvent):
    """Server side: the live client echoed our ADD_ADDR."""

    address_id: int


def reset_reason(reason: TcpRstReason | int | None) -> str:
    """`` (MP_TCPRST reason NAME)`` for a reset that gave one, else nothing."""
    if reason is None:
        return ""
    return f" (MP_TCPRST reason {reason.name if isinstance(reason, TcpRstReason) else reason})"
