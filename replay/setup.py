"""What a replay is given before it starts: its options, the live addresses of its subflows, and
the error that says why it cannot start."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from mptcpspec.errors import MptcpspecError
from mptcpspec.replay.plan import PlannedSubflow, ReplayPlan

__all__ = [
    "Address",
    "Endpoint",
    "ReplayError",
    "ReplayOptions",
    "SetupProblem",
    "Timing",
    "live_endpoints",
    "show_endpoint",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Endpoint = tuple[Address, int]
#: "fast" (as fast as the windows allow), "as-captured", or a factor (2.0: twice as fast as captured)
Timing = Literal["fast", "as-captured"] | float


class SetupProblem(Enum):
    """Why a replay cannot start."""

    #: the capture's client opened no subflow
    NO_SUBFLOW = "no subflow"
    #: client data is missing from the capture (snapshot length) and the payload is required whole
    PAYLOAD_CUT = "payload cut"
    #: a captured server address has no live address
    NO_LIVE_ADDRESS = "no live address"
    #: two subflows would have the same addresses and ports
    SAME_FLOW = "same flow"
    #: a subflow's local and server addresses are not of the same IP version
    IP_VERSION = "IP version"
    #: server side: a listen address (or a live address an ADD_ADDR announces) is not on this host
    NOT_LOCAL = "not local"


class ReplayError(MptcpspecError):
    """A replay that cannot start: ``problem`` says which kind of problem, the message what and where."""

    def __init__(self, problem: SetupProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How to replay.

    ``timing``: see :data:`Timing`; ``rto``: the first retransmission timeout (it doubles on each
    retransmission), ``max_tries``: retransmissions before a segment is given up; ``timeout``:
    seconds of silence from the target before the replay is; ``fill``: the octet for data the
    capture lacks; ``require_payload``: refuse a capture that lacks some; ``mss``: ours;
    ``new_key``: a new client key instead of the captured one; ``tfo``: replay the captured TCP
    Fast Open SYN (cookie and data), with ``tfo_cookie`` instead of the captured cookie if given.
    """

    timing: Timing = "fast"
    rto: float = 0.2
    max_tries: int = 8
    timeout: float = 10.0
    fill: int = 0
    require_payload: bool = False
    mss: int = 1460
    new_key: bool = False
    tfo: bool = True
    tfo_cookie: bytes | None = None

    def at(self, start: float, time_ns: int) -> float | None:
        """When something captured ``time_ns`` after the first SYN is due, for a replay started at
        ``start``; None with fast timing (at once)."""
        if self.timing == "fast":
            return None
        scale = 1.0 if self.timing == "as-captured" else 1.0 / float(self.timing)
        return start + time_ns / 1e9 * scale


def show_endpoint(ep: Endpoint) -> str:
    """``address:port``, IPv6 addresses in brackets."""
    a, p = ep
    return f"[{a}]:{p}" if a.version == 6 else f"{a}:{p}"


def live_endpoints(
    plan: ReplayPlan,
    target: Address,
    target_port: int | None,
    local: Mapping[Address, Address],
    servers: Mapping[Address, Address],
) -> list[tuple[PlannedSubflow, Endpoint, Endpoint]]:
    """Each planned subflow with its local and live server endpoints.

    ``local`` maps captured client addresses to local ones, ``servers`` captured server addresses
    to live ones; the first subflow's server address defaults to ``target``, every server port to
    ``target_port`` (else the captured one).  :class:`ReplayError` when a subflow has no live
    server address, two subflows would be the same flow, or a subflow mixes IP versions.
    """
    if not plan.subflows:
        raise ReplayError(SetupProblem.NO_SUBFLOW, "the capture's client opened no subflow")
    live = dict(servers)
    live.setdefault(plan.subflows[0].server[0], target)
    missing = sorted({str(ps.server[0]) for ps in plan.subflows if ps.server[0] not in live}, key=str)
    if missing:
        raise ReplayError(
            SetupProblem.NO_LIVE_ADDRESS, f"no live address for the captured server address(es) {', '.join(missing)}"
        )
    out = [
        (ps, (local.get(ps.client[0], ps.client[0]), ps.client[1]), (live[ps.server[0]], target_port or ps.server[1]))
        for ps in plan.subflows
    ]
    if len({(*mine, *theirs) for _, mine, theirs in out}) != len(out):
        raise ReplayError(SetupProblem.SAME_FLOW, "two subflows would have the same addresses and ports")
    for ps, mine, theirs in out:
        if mine[0].version != theirs[0].version:
            raise ReplayError(
                SetupProblem.IP_VERSION,
                f"subflow {ps.index}: local {mine[0]} and server {theirs[0]} are not the same IP version",
            )
    return out
