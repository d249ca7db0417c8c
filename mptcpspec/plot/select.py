"""The frames of one MPTCP connection, read once from a dissection, for the plots."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mptcpspec.analysis import PacketInfo
from mptcpspec.analysis.model import Connection, Subflow
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.capture.pcap import CaptureError
from mptcpspec.codec.options import option_spans
from mptcpspec.dissect.outcome import ReadOutcome, outcome
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.errors import MptcpspecError
from mptcpspec.plot.model import SubflowLegend

__all__ = ["CLIENT", "SERVER", "ConnectionFrames", "PlotError", "WindowScales", "legend", "seconds"]

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
    #: the windows, scaled as tcp.window_size (every frame's SYN seen, the connection's or not)
    windows: WindowScales = field(default_factory=lambda: WindowScales())

    def __iter__(self) -> Iterator[tuple[PacketInfo, bool]]:
        """(frame, sent in the chosen direction) for each frame of the connection (its subflows'
        frames from the one that numbers it on; a subflow's handshake before that is not the
        connection's yet).  Damage that ends the read ends the iteration (:meth:`outcome` says it)."""
        want_client = self.direction == CLIENT
        conn = None
        try:
            windows = self.windows
            for info in self.dissection:
                self.frames += 1
                p = info.packet
                if p is not None and p.flags & _SYN:
                    windows.feed(info)
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


_SYN, _ACK = int(TcpFlags.SYN), int(TcpFlags.ACK)


def _wscale(options: bytes) -> int | None:
    """The shift of a window scale option (RFC 7323 §2.3; at most 14) in an options area, or None."""
    for kind, i, ln in option_spans(options):
        if kind == 3 and ln == 3:
            return min(options[i + 2], 14)
    return None


class WindowScales:
    """The windows of TCP segments scaled as ``tcp.window_size`` is (RFC 7323 §2.2, with Wireshark's
    rules for what the capture missed), without the TCP analysis: told every frame with TCP in
    capture order (:meth:`feed`), it scales a segment's window (:meth:`window`).

    Per stream and direction the shift is unknown (-1) until a SYN: a SYN with the option sets it, a
    SYN without sets both directions to no scaling (-2), and so does a SYN/ACK without after a SYN
    without; an unknown or absent shift leaves the window as sent."""

    __slots__ = ("shifts",)

    def __init__(self) -> None:
        self.shifts: dict[int, list[int]] = {}  # tcp.stream -> [initiator's shift, listener's]

    def feed(self, info: PacketInfo) -> None:
        p, sf = info.packet, info.subflow
        if p is None or sf is None or info.tcp_stream is None:
            return
        flags = int(p.flags)
        if not flags & _SYN:
            return
        s = self.shifts.setdefault(info.tcp_stream, [-1, -1])
        d = 0 if (p.src, p.sport) == sf.client else 1
        ws = _wscale(p.options)
        if ws is not None:
            s[d] = ws
        if p.options_cut:
            return
        if s[d] == -1:
            s[0] = s[1] = -2
        elif flags & _ACK and s[1 - d] == -2:
            s[d] = -2

    def window(self, info: PacketInfo) -> int:
        """``info``'s window, scaled (a SYN's never is)."""
        p, sf = info.packet, info.subflow
        assert p is not None
        if sf is None or info.tcp_stream is None or int(p.flags) & _SYN:
            return p.window
        s = self.shifts.get(info.tcp_stream)
        if s is None:
            return p.window
        shift = s[0 if (p.src, p.sport) == sf.client else 1]
        return p.window << shift if shift >= 0 else p.window
