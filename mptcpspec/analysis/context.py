"""The packet under analysis and what its analysis found, shared by the parts of the analysis.

The analyzer sets the frame number, packet, subflow and direction of each packet here before the
parts (:mod:`~mptcpspec.analysis.datalevel`, :mod:`~mptcpspec.analysis.handshake`,
:mod:`~mptcpspec.analysis.addresses`) look at it; they add the checks made, the expert items and
the frames reinjected, which the analyzer puts in the packet's
:class:`~mptcpspec.analysis.model.PacketInfo`.
"""

from __future__ import annotations

from mptcpspec.analysis.expert import Expert, expert
from mptcpspec.analysis.model import SIDE_NAMES, Connection, Subflow
from mptcpspec.capture.packets import Packet
from mptcpspec.codec.crypto import Check

__all__ = ["PacketContext"]


class PacketContext:
    """One packet's analysis: what is analysed (set per packet) and what was found."""

    __slots__ = ("verify", "number", "pkt", "sf", "d", "checks", "experts", "reinjection_of")

    # Set by the analyzer for each packet before any part reads them.
    pkt: Packet
    sf: Subflow

    def __init__(self, verify: bool) -> None:
        self.verify = verify  #: check HMACs and checksums
        self.number = 0  #: frame number
        self.d = 0  #: direction on the subflow: 0 from its initiator
        self.checks: list[Check] = []
        self.experts: list[Expert] = []
        self.reinjection_of: list[int] = []

    def expert(self, key: str, message: str | None = None) -> None:
        self.experts.append(expert(key, message))

    def check(self, c: Check) -> None:
        self.checks.append(c)
        conn = self.sf.conn
        if conn is not None:
            conn.checks[(c.what, c.verdict.name)] += 1

    def closure(self, conn: Connection, signal: str, **guards: bool) -> None:
        """Feed ``signal``, sent by this packet's sender, to the closure machine of ``conn``."""
        side = self.sf.side(self.d)
        for f in conn.closure.feed((SIDE_NAMES[side], SIDE_NAMES[1 - side]), signal, **guards):
            self.expert(
                "mptcp.closure.illegal", f"{f.signal}: {f.role} {f.endpoint} in {'|'.join(f.states)}: {f.reason}"
            )
