"""``plot dsn``: the time-sequence graph of one direction of an MPTCP connection, at the data level.

Each data segment is a vertical bar from its data sequence number to the end of its payload, at its
time, in its subflow's colour; data sent again is drawn apart: a reinjection (the data was mapped
on another subflow first, RFC 8684 §3.3.6: ``mptcp.reinjection_of``) and a data-level
retransmission (data the same subflow had sent before).  The peer's DATA_ACK is a step line, and its receive window's
right edge (DATA_ACK + the window, RFC 8684 §3.3.4: the window is shared by the subflows and
relative to the DATA_ACK) a second one.  Events of the connection are markers: MP_JOIN,
ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FAIL, MP_FASTCLOSE, MP_TCPRST, DATA_FIN, a subflow's FIN and
RST, the fallback to TCP.  Data the peer acknowledged that the capture never showed is a shaded
band (a gap: the capture missed it).

Sequence numbers are relative to the sender's initial data sequence number (``mptcp.dsn``), as
Wireshark shows them; with ``relative=False`` they are the 64-bit DSNs themselves.

Given the receiver's capture too (paired: :mod:`mptcpspec.plot.owd`), each data segment's arrival
there is a point at the end of its data, and the highest data sequence number in order there a
step line, both on the sender's clock (the receiver's time less the clocks' offset).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

from mptcpspec.analysis import PacketInfo
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec.options import (
    AddAddr,
    AddAddrV0,
    Dss,
    DssFlags,
    MpFail,
    MpFastclose,
    MpJoinSyn,
    MpPrio,
    MpTcpRst,
    RemoveAddr,
)
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.plot.model import Plot, SeriesBuilder, Style
from mptcpspec.plot.select import CLIENT, ConnectionFrames, PlotError

if TYPE_CHECKING:
    from mptcpspec.plot.owd import Paired

__all__ = ["MARKERS", "dsn_plot"]

#: option class -> the marker it makes
_OPTION_MARKERS: dict[type, str] = {
    MpJoinSyn: "MP_JOIN",
    AddAddr: "ADD_ADDR",
    AddAddrV0: "ADD_ADDR",
    RemoveAddr: "REMOVE_ADDR",
    MpPrio: "MP_PRIO",
    MpFail: "MP_FAIL",
    MpFastclose: "MP_FASTCLOSE",
    MpTcpRst: "MP_TCPRST",
}
#: every marker this plot may show, in the legend's order
MARKERS = (
    "MP_JOIN",
    "ADD_ADDR",
    "REMOVE_ADDR",
    "MP_PRIO",
    "MP_FAIL",
    "MP_FASTCLOSE",
    "MP_TCPRST",
    "DATA_FIN",
    "FIN",
    "RST",
    "fallback",
)
_FIN, _RST, _SYN = int(TcpFlags.FIN), int(TcpFlags.RST), int(TcpFlags.SYN)
_FIN_RST = _FIN | _RST
_DATA_FIN = int(DssFlags.DATA_FIN)


class _Covered:
    """The data-level ranges seen, merged: [lo, hi) pairs in order."""

    __slots__ = ("los", "his")

    def __init__(self) -> None:
        self.los: list[int] = []
        self.his: list[int] = []

    def add(self, lo: int, hi: int) -> None:
        los, his = self.los, self.his
        if los and his[-1] >= lo and los[-1] <= lo:  # the common case: at or inside the last range
            if hi > his[-1]:
                his[-1] = hi
            return
        i = bisect_left(his, lo)  # the first range that ends at or after lo
        j = i
        while j < len(los) and los[j] <= hi:
            lo = min(lo, los[j])
            hi = max(hi, his[j])
            j += 1
        los[i:j] = [lo]
        his[i:j] = [hi]

    def holes(self, upto: int) -> list[tuple[int, int]]:
        """The ranges below ``upto`` not seen, from the first range seen on."""
        out = []
        for k in range(1, len(self.los)):
            lo, hi = self.his[k - 1], self.los[k]
            if lo >= upto:
                break
            out.append((lo, min(hi, upto)))
        if self.his and self.his[-1] < upto:
            out.append((self.his[-1], upto))
        return out


def dsn_plot(
    dissection: Dissection,
    stream: int = 0,
    direction: str = CLIENT,
    relative: bool = True,
    paired: Paired | None = None,
) -> Plot:
    """The ``dsn`` plot of MPTCP connection ``stream``: the data ``direction`` ("client" or
    "server") sent, and its peer's DATA_ACKs and window.  It needs no TCP analysis: a dissection
    made with ``tcp_analysis=False`` is read faster.

    ``paired`` (:func:`mptcpspec.plot.owd.paired`; ``dissection`` is then the sender's capture and
    ``stream`` its ``paired.stream``): each data segment's arrival in the receiver's capture too, a
    point at the end of its data, and the data level's in-order edge there (arrival +
    ``mptcp.pair.ooo_delay``), both on the sender's clock; their frames are the receiver's."""
    frames = ConnectionFrames(dissection, stream, direction)
    notes = paired.sender if paired is not None else None
    there = paired.receiver_role if paired is not None else ""
    arrival = SeriesBuilder(f"arrival at the {there}", Style.POINTS, role="arrival")
    ready: list[tuple[float, int, int]] = []  # (in order at, end, receiver's frame)
    bars: dict[tuple[int, str], SeriesBuilder] = {}
    ack = SeriesBuilder("DATA_ACK", Style.STEPS, role="data_ack")
    edge = SeriesBuilder("receive window", Style.STEPS, role="window")
    markers = SeriesBuilder("events", Style.MARKERS, role="markers")
    covered = _Covered()
    base: int | None = None  # relative=False, or keys unknown: the 64-bit DSN the plot starts from
    top = 0.0  # the highest data sequence number drawn so far (where markers sit)
    last_t = 0.0
    fins: set[int] = set()  # the DATA_FINs marked already (a DATA_FIN sent again is not marked again)
    sent: dict[int, int] = {}  # subflow -> the highest data sequence number it sent (before the end)
    for info, mine in frames:
        t = last_t = (info.timestamp_ns - info.first_ns) / 1e9  # seconds(info), inline
        pkt = info.packet
        if pkt is None:
            continue
        flags = int(pkt.flags)
        if mine and pkt.payload_len:
            dsn = _dsn(info, relative)
            if dsn is not None:
                if not relative or info.payload_dsn is None:
                    if base is None:
                        base = dsn if relative else 0
                    dsn -= base
                end = dsn + pkt.payload_len
                sf = info.subflow
                group = sf.index if sf is not None else -1
                role = (
                    "reinjection" if info.reinjection_of else "retransmission" if dsn < sent.get(group, dsn) else "new"
                )
                if end > sent.get(group, end - 1):
                    sent[group] = end
                b = bars.get((group, role))
                if b is None:
                    b = bars[(group, role)] = SeriesBuilder(_bar_name(group, role), Style.BARS, group, role)
                b.add(t, dsn, info.number, end)
                covered.add(dsn, end)
                if notes is not None:
                    note = notes.get(info.number)
                    if note is not None and note.owd_ns is not None and note.peer_frame is not None:
                        there_ns = info.timestamp_ns - info.first_ns + note.owd_ns  # on the sender's clock
                        arrival.add(there_ns / 1e9, end, note.peer_frame)
                        got = paired.receiver.get(note.peer_frame)  # type: ignore[union-attr]
                        if got is not None and got.ooo_delay_ns is not None:
                            ready.append(((there_ns + got.ooo_delay_ns) / 1e9, end, note.peer_frame))
                if end > top:
                    top = end
        if not mine:
            for dss in info.dss:
                a = dss.ack if relative else dss.ack64
                if a is None:
                    continue
                if not relative and base is None:
                    base = 0
                ack.add(t, a, info.number)
                if not flags & _SYN:
                    edge.add(t, a + frames.windows.window(info), info.number)
        found = info.mptcp
        if mine and info.dss and any(type(o) is Dss and o.flags & _DATA_FIN for o in found):
            for o, dss in zip((o for o in found if type(o) is Dss), info.dss):
                if not o.flags & _DATA_FIN or o.data_level_length is None:
                    continue
                at = dss.dsn if relative and dss.dsn is not None else dss.dsn64
                if at is None:
                    continue
                if not relative or dss.dsn is None:
                    at -= base or 0
                fin = at + max(o.data_level_length, 1) - 1  # the DATA_FIN's own octet (RFC 8684 §3.3.3)
                covered.add(fin, fin + 1)
                if fin not in fins:
                    fins.add(fin)
                    markers.add(t, fin, info.number, label="DATA_FIN")
        if flags & _FIN_RST or info.experts or len(found) != 1 or type(found[0]) is not Dss:
            for label in _markers(info):
                markers.add(t, top, info.number, label=label)
    conn = frames.need()
    shade = SeriesBuilder("not captured", Style.BANDS, role="gap")
    if len(ack):
        upto = int(max(ack.y))
        for lo, hi in covered.holes(upto):
            k = next((i for i, a in enumerate(ack.y) if a > lo), None)
            t0 = ack.t[k] if k is not None else ack.t[-1]
            shade.add(t0, lo, 0, hi)
            shade.extra.append(last_t)
    order = {"new": 0, "retransmission": 1, "reinjection": 2}
    series = [b.build() for _, b in sorted(bars.items(), key=lambda kv: (order[kv[0][1]], kv[0][0]))]
    if paired is not None:
        series += [s.build() for s in (arrival, _in_order(ready, there)) if len(s)]
    series += [s.build() for s in (ack, edge, shade, markers) if len(s)]
    read = frames.outcome(sum(len(s) for s in series))
    if not any(s.style == Style.BARS for s in series):
        raise PlotError(f"MPTCP connection {stream}: no data from the {direction} with a data sequence number")
    sender = "client" if direction == CLIENT else "server"
    title = f"MPTCP connection {conn.stream}: data from the {sender}"
    if paired is not None:
        from mptcpspec.plot.owd import clocks

        title += f", and its arrival at the {there} ({clocks(paired.offset)})"
    return Plot(
        "dsn",
        title,
        "time (s)",
        "data sequence number" + (" (relative)" if relative else ""),
        tuple(series),
        frames.legends(),
        read,
    )


def _in_order(ready: list[tuple[float, int, int]], where: str) -> SeriesBuilder:
    """The highest data sequence number in order at the receiver over time: a step up at each
    segment that moved it."""
    steps = SeriesBuilder(f"in order at the {where}", Style.STEPS, role="in_order")
    high = None
    for at, end, frame in sorted(ready):
        if high is None or end > high:
            high = end
            steps.add(at, end, frame)
    return steps


def _dsn(info: PacketInfo, relative: bool) -> int | None:
    if relative and info.payload_dsn is not None:
        return info.payload_dsn
    return info.payload_dsn64


def _bar_name(group: int, role: str) -> str:
    return f"subflow {group}" if role == "new" else f"subflow {group} {role}"


def _markers(info: PacketInfo) -> list[str]:
    out = []
    for o in info.mptcp:
        label = _OPTION_MARKERS.get(type(o))
        if label is not None:
            out.append(label)
    flags = int(info.packet.flags) if info.packet is not None else 0
    if flags & _FIN:
        out.append("FIN")
    if flags & _RST:
        out.append("RST")
    for e in info.experts:
        if e.key == "mptcp.fallback":
            out.append("fallback")
    return out
