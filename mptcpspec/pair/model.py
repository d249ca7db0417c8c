"""What ``mptcpspec pair`` reports: frozen records, times in nanoseconds."""

from __future__ import annotations

from mptcpspec.analysis.model import PairFrame
from mptcpspec.dissect.outcome import ReadOutcome
from mptcpspec.errors import MptcpspecError
from mptcpspec.records import dataclass

__all__ = [
    "Change",
    "ConnectionPair",
    "Delays",
    "Flow",
    "Offset",
    "PairError",
    "PairReport",
    "Pairing",
    "Reinjection",
    "Reordering",
    "Share",
    "SubflowPair",
]


class PairError(MptcpspecError):
    """Two captures that cannot be paired: ``what`` says why (no MPTCP, no connection in common,
    the same capture twice)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what

    def __str__(self) -> str:
        return self.what


@dataclass(frozen=True, slots=True)
class Delays:
    """A distribution of times: how many, and their minimum, median, 95th percentile and maximum
    (nearest rank); the times are None when there are none."""

    count: int
    min_ns: int | None = None
    median_ns: int | None = None
    p95_ns: int | None = None
    max_ns: int | None = None

    @classmethod
    def of(cls, values: list[int]) -> Delays:
        if not values:
            return cls(0)
        v = sorted(values)
        n = len(v)

        def rank(q: float) -> int:
            return v[min(n - 1, max(0, -(-int(q * n * 1000) // 1000) - 1))]

        return cls(n, v[0], rank(0.5), rank(0.95), v[-1])


@dataclass(frozen=True, slots=True)
class Offset:
    """The offset of the server capture's clock from the client capture's (server minus client),
    as estimated from the smallest one-way delays both ways, or as given: the true offset lies in
    ``offset_ns ± uncertainty_ns`` if no segment travelled faster than light; ``uncertainty_ns`` is
    None when segments matched in one direction only (no bound)."""

    offset_ns: int
    uncertainty_ns: int | None
    given: bool
    forward_min_ns: int | None  #: smallest (server time - client time) of a segment client -> server
    reverse_min_ns: int | None  #: smallest (client time - server time) of a segment server -> client


@dataclass(frozen=True, slots=True)
class Change:
    """One kind of change made on the way, on how many segments, with the first frames it was
    seen on as (client capture frame, server capture frame)."""

    what: str  #: e.g. ``source address``, ``MSS``, ``option removed``, ``TCP checksum``
    detail: str  #: e.g. ``203.0.113.1 -> 203.0.113.100``, ``1460 -> 1200``, ``SACK permitted (4)``
    segments: int
    frames: tuple[tuple[int | None, int | None], ...]


@dataclass(frozen=True, slots=True)
class Flow:
    """One direction of a subflow seen at both ends."""

    direction: str  #: ``client->server`` or ``server->client`` (of the connection)
    sent: int  #: segments in the sender's capture while the receiver's capture ran
    received: int  #: segments in the receiver's capture
    matched: int
    lost: int  #: sent, never received
    lost_octets: int
    lost_frames: tuple[int, ...]  #: in the sender's capture
    injected: int  #: received, never sent: made on the way
    injected_frames: tuple[int, ...]  #: in the receiver's capture
    outside: int  #: sent while the receiver's capture was not running: neither lost nor received
    owd: Delays
    hops: int | None  #: IP TTL / hop limit lost on the way (the most common difference)
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class SubflowPair:
    """A subflow found in both captures."""

    client_stream: int  #: its tcp.stream in the client's capture
    server_stream: int  #: and in the server's
    kind: str  #: ``MP_CAPABLE``, ``MP_JOIN`` or ``TCP``
    client_view: str  #: initiator -> listener, as the client's capture shows it
    server_view: str  #: as the server's capture shows it
    matched_by: str  #: what identified it at both ends
    flows: tuple[Flow, ...]  #: from the initiator, from the listener


@dataclass(frozen=True, slots=True)
class Reinjection:
    """A segment sent again on another subflow, and what became of it at the receiver."""

    direction: str
    sender_frame: int
    receiver_frame: int | None  #: None: it was lost
    stream: int  #: tcp.stream in the sender's capture
    originals: tuple[int, ...]  #: sender frames that carried the data first (``mptcp.reinjection_of``)
    dsn: int  #: relative to the sender's IDSN when known, else raw
    octets: int
    verdict: str  #: ``useful``, ``redundant`` or ``lost``
    reason: str
    #: how much sooner the data arrived thanks to it than by the first other copy (negative: how
    #: much later than that copy); None when no other copy arrived or the reinjection was lost
    saved_ns: int | None


@dataclass(frozen=True, slots=True)
class Share:
    """Octets a subflow delivered first at the data level."""

    stream: int  #: tcp.stream in the receiver's capture
    octets: int
    share: float


@dataclass(frozen=True, slots=True)
class Reordering:
    """The data level of one direction at the receiver: what waited out of order, for how long,
    held up by which subflow, and which subflow carried the goodput."""

    direction: str
    segments: int  #: data segments received
    octets: int  #: data-level octets delivered in order
    waited: int  #: segments that arrived out of order and waited
    waited_octets: int
    delay: Delays  #: of the segments that waited
    blocked_ns: int  #: time during which some data waited
    never: int  #: segments still out of order when the capture ends
    #: (tcp.stream in the sender's capture of the data that was missing, segments it held up, longest wait)
    held_up_by: tuple[tuple[int, int, int], ...]
    goodput: tuple[Share, ...]


@dataclass(frozen=True, slots=True)
class ConnectionPair:
    """One connection seen at both ends."""

    client_stream: int | None  #: mptcp.stream in the client's capture (None: not MPTCP there)
    server_stream: int | None
    version: int | None
    client_key: int | None
    server_key: int | None
    matched_by: str
    fallback: str | None  #: why it fell back to TCP, from both ends
    subflows: tuple[SubflowPair, ...]
    reinjections: tuple[Reinjection, ...]
    reordering: tuple[Reordering, ...]


@dataclass(frozen=True, slots=True)
class PairReport:
    """Two captures of the same connections, taken at the client and at the server."""

    client: str
    server: str
    swapped: bool  #: the captures were given server first (found from the handshakes' times)
    offset: Offset
    connections: tuple[ConnectionPair, ...]
    client_only: tuple[str, ...]  #: TCP streams of the client's capture with no match
    server_only: tuple[str, ...]
    client_read: ReadOutcome  #: how the read of the client's capture ended (damage, problems)
    server_read: ReadOutcome


@dataclass(frozen=True, slots=True)
class Pairing:
    """The report, and what each frame of each capture got: ``frames[0]`` by frame number of the
    client's capture, ``frames[1]`` of the server's."""

    report: PairReport
    frames: tuple[dict[int, PairFrame], dict[int, PairFrame]]
