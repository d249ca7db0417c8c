"""The frames of one MPTCP connection, read once from a dissection, for the plots."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mptcpspec.analysis import PacketInfo
from mptcpspec.analysis.model import Connection, Subflow
from mptcpspec.capture.pcap import CaptureError
from mptcpspec.dissect.outcome import ReadOutcome, outcome
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.errors import MptcpspecError
from mptcpspec.plot.model import SubflowLegend

__all__ = ["CLIENT", "SERVER", "ConnectionFrames", "PlotError", "legend", "seconds"]

CLIENT, SERVER = "client", "server"


class PlotError(MptcpspecError):
    """A plot that cannot be made: no such connection, nothing to draw, a renderer missing."""


def seconds(info: PacketInfo) -> float:
    """The frame's time since the capture's first frame (``frame.time_relative``), in seconds."""
    return (info.timestamp_ns - info.first_ns) / 1e9


def _ep(ep: tuple[object, int]) -> str:
    addr, port = ep
    text = str(addr)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


@dataclass(slots=True)
class ConnectionFrames:
    """Iterates the frames of MPTCP connection ``stream`` (``mptcp.stream``) of a dissection, each
    with whether the chosen direction's sender sent it; counts every frame read."""

    dissection: Dissection
    stream: int
    direction: str = CLIENT
    frames: int = 0
    connection: Connection | None = None
    damage: CaptureError | None = None  #: what ended the read before the end of the file

    def __iter__(self) -> Iterator[tuple[PacketInfo, bool]]:
        """(frame, sent in the chosen direction) for each frame of the connection (its subflows'
        frames from the one that numbers it on; a subflow's handshake before that is not the
        connection's yet).  Damage that ends the read ends the iteration (:meth:`outcome` says it)."""
        want_client = self.direction == CLIENT
        conn = None
        try:
            for info in self.dissection:
                self.frames += 1
                c = info.connection
                if c is None:
                    continue
                if conn is None:
                    if info.mptcp_stream != self.stream:
                        continue
                    conn = self.connection = c
                elif c is not conn:
                    continue
                yield info, info.from_client is want_client
        except CaptureError as e:
            self.damage = e

    def outcome(self, points: int) -> ReadOutcome:
        """How the read ended (raises the damage when not a frame could be read)."""
        d = self.dissection
        return outcome(d.frames, points, self.damage, d.problems, d.unsupported)

    def legends(self) -> tuple[SubflowLegend, ...]:
        """The connection's subflows, for the legend (after the iteration)."""
        conn = self.connection
        if conn is None:
            return ()
        return tuple(legend(sf) for sf in conn.subflows)

    def need(self) -> Connection:
        """The connection, after the iteration; PlotError when the capture has none of that number."""
        if self.connection is None:
            raise PlotError(f"MPTCP connection {self.stream}: not in the capture (mptcp.stream numbers start at 0)")
        return self.connection


def legend(sf: Subflow) -> SubflowLegend:
    """What the legend says of subflow ``sf``."""
    return SubflowLegend(sf.index, _ep(sf.client), _ep(sf.server), sf.kind, bool(sf.backup[0] or sf.backup[1]))
