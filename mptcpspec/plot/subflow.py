"""``plot subflow``: the time-sequence graph of one TCP stream (a subflow, or plain TCP), as
tcptrace draws it: each segment a bar from its relative sequence number to its end, one that
sends again what was sent before apart (a retransmission), the peer's ACK as a step line, its window's
right edge (ACK + the scaled window) as another, and the SACK blocks the peer reports (RFC 2018) as
bars at the time of the ACK that carried them.

Sequence numbers are relative to the direction's initial sequence number, as ``tcp.seq``.
"""

from __future__ import annotations

from collections.abc import Iterator

from mptcpspec.analysis import PacketInfo
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.capture.pcap import CaptureError
from mptcpspec.codec.options import option_spans
from mptcpspec.dissect.outcome import outcome
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.plot.model import Plot, SeriesBuilder, Style, SubflowLegend
from mptcpspec.plot.select import CLIENT, PlotError, WindowScales, legend, seconds

__all__ = ["sack_blocks", "subflow_plot"]

_M32 = 0xFFFFFFFF
_SYN = int(TcpFlags.SYN)


def sack_blocks(options: bytes) -> list[tuple[int, int]]:
    """The SACK blocks (left edge, right edge) of a TCP options area (RFC 2018 §3), raw."""
    out: list[tuple[int, int]] = []
    for kind, i, ln in option_spans(options):
        if kind == 5:
            for j in range(i + 2, i + ln - 7, 8):
                out.append((int.from_bytes(options[j : j + 4], "big"), int.from_bytes(options[j + 4 : j + 8], "big")))
    return out


def _frames(
    d: Dissection, tcp_stream: int, initiator: bool, state: dict[str, object], windows: WindowScales
) -> Iterator[tuple[PacketInfo, bool]]:
    """(frame, sent by the chosen end) for each frame of TCP stream ``tcp_stream``."""
    try:
        for info in d:
            windows.feed(info)
            if info.tcp_stream != tcp_stream or info.packet is None or info.subflow is None:
                continue
            sf = info.subflow
            state["subflow"] = sf
            p = info.packet
            from_initiator = (p.src, p.sport) == sf.client
            yield info, from_initiator is initiator
    except CaptureError as e:
        state["damage"] = e


def subflow_plot(dissection: Dissection, tcp_stream: int = 0, direction: str = CLIENT) -> Plot:
    """The ``subflow`` plot of TCP stream ``tcp_stream``: what ``direction`` sent ("client": the
    stream's initiator, the SYN's sender; "server": the other end), and its peer's ACKs."""
    state: dict[str, object] = {}
    new = SeriesBuilder(f"subflow {tcp_stream}", Style.BARS, tcp_stream, "new")
    again = SeriesBuilder(f"subflow {tcp_stream} retransmission", Style.BARS, tcp_stream, "retransmission")
    ack = SeriesBuilder("ACK", Style.STEPS, role="ack")
    edge = SeriesBuilder("receive window", Style.STEPS, role="window")
    sacks = SeriesBuilder("SACK", Style.BARS, role="sack")
    isn: int | None = None
    high: int | None = None  # the highest relative sequence number sent so far
    windows = WindowScales()
    for info, mine in _frames(dissection, tcp_stream, direction == CLIENT, state, windows):
        p = info.packet
        assert p is not None
        t = seconds(info)
        if mine:
            if isn is None:
                isn = (p.seq - (info.tcp_seq or 0)) & _M32
            if p.payload_len and info.tcp_seq is not None:
                end = info.tcp_seq + p.payload_len
                b = again if high is not None and info.tcp_seq < high else new
                b.add(t, info.tcp_seq, info.number, end)
                if high is None or end > high:
                    high = end
            continue
        if not p.flags & TcpFlags.ACK or info.tcp_ack is None:
            continue
        ack.add(t, info.tcp_ack, info.number)
        if not int(p.flags) & _SYN:
            edge.add(t, info.tcp_ack + windows.window(info), info.number)
        if isn is not None and p.options:
            for left, right in sack_blocks(p.options):
                sacks.add(t, (left - isn) & _M32, info.number, (right - isn) & _M32)
    sf = state.get("subflow")
    damage = state.get("damage")
    if sf is None:
        raise PlotError(f"TCP stream {tcp_stream}: not in the capture (tcp.stream numbers start at 0)")
    series = tuple(s.build() for s in (new, again, ack, edge, sacks) if len(s))
    if not len(new) and not len(again):
        raise PlotError(
            f"TCP stream {tcp_stream}: no data from the {'initiator' if direction == CLIENT else 'listener'}"
        )
    read = outcome(
        dissection.frames,
        sum(len(s) for s in series),
        damage if isinstance(damage, CaptureError) else None,
        dissection.problems,
        dissection.unsupported,
    )
    lg: SubflowLegend = legend(sf)  # type: ignore[arg-type]
    who = lg.initiator if direction == CLIENT else lg.listener
    return Plot(
        "subflow",
        f"TCP stream {tcp_stream}: data from {who}",
        "time (s)",
        "sequence number (relative)",
        series,
        (lg,),
        read,
    )
