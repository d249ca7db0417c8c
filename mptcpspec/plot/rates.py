"""``plot tput``, ``plot flight`` and ``plot reinject``: rates and amounts of one direction of an
MPTCP connection over time.

* ``tput``: each subflow's throughput (payload octets it carried, as bit/s over intervals), stacked,
  and the connection's goodput: data-level octets sent for the first time (beyond the highest data
  sequence number sent before), so reinjections and retransmissions do not count twice.
* ``flight``: the connection's octets in flight (the highest data sequence number sent, less the
  peer's DATA_ACK) against the peer's receive window (RFC 8684 §3.3.4), and each subflow's own
  (``tcp.analysis.bytes_in_flight``).
* ``reinject``: the octets sent again on another subflow, summed over time, by the subflow they
  first left on and the one that carried them again (RFC 8684 §3.3.6).
"""

from __future__ import annotations

from array import array

from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.plot.model import Plot, Series, SeriesBuilder, Style
from mptcpspec.plot.select import CLIENT, ConnectionFrames, PlotError, seconds

__all__ = ["flight_plot", "plot_of", "reinject_plot", "tput_plot"]


def _sender(direction: str) -> str:
    return "client" if direction == CLIENT else "server"


def plot_of(kind: str, title: str, ylabel: str, series: list[Series], frames: ConnectionFrames) -> Plot:
    conn = frames.need()
    if not any(len(s) for s in series):
        raise PlotError(f"MPTCP connection {frames.stream}: nothing to draw for {kind} from the {frames.direction}")
    return Plot(
        kind,
        f"MPTCP connection {conn.stream}: {title} from the {_sender(frames.direction)}",
        "time (s)",
        ylabel,
        tuple(s for s in series if len(s)),
        frames.legends(),
        frames.outcome(sum(len(s) for s in series)),
    )


def tput_plot(
    dissection: Dissection,
    stream: int = 0,
    direction: str = CLIENT,
    interval: float | None = None,
    average: int = 1,
) -> Plot:
    """Throughput per subflow (stacked) and goodput, in bit/s over ``interval`` seconds (None: the
    connection's duration in 100 intervals), goodput smoothed over ``average`` intervals."""
    frames = ConnectionFrames(dissection, stream, direction)
    t, sub, octets, fresh = array("d"), array("q"), array("q"), array("q")
    high: int | None = None
    for info, mine in frames:
        p = info.packet
        if not mine or p is None or not p.payload_len or info.subflow is None:
            continue
        new = 0
        dsn = info.payload_dsn64
        if dsn is not None:
            end = dsn + p.payload_len
            new = end - max(dsn, high) if high is not None else p.payload_len
            new = max(new, 0)
            high = end if high is None or end > high else high
        t.append(seconds(info))
        sub.append(info.subflow.index)
        octets.append(p.payload_len)
        fresh.append(new)
    if not t:
        return plot_of("tput", "throughput", "bit/s", [], frames)
    t0, t1 = t[0], t[-1]
    step = interval if interval else max((t1 - t0) / 100, 1e-6)
    nb = int((t1 - t0) / step) + 1
    groups = sorted(set(sub))
    per = {g: [0] * nb for g in groups}
    good = [0] * nb
    for i in range(len(t)):
        b = int((t[i] - t0) / step)
        per[sub[i]][b] += octets[i]
        good[b] += fresh[i]
    series: list[Series] = []
    below = [0.0] * nb
    for g in groups:
        s = SeriesBuilder(f"subflow {g}", Style.AREA, g, "throughput")
        for b in range(nb):
            rate = per[g][b] * 8 / step
            s.add(t0 + b * step, below[b] + rate, 0, below[b])
            below[b] += rate
        series.append(s.build())
    gs = SeriesBuilder("goodput", Style.LINE, role="goodput")
    k = max(1, average)
    for b in range(nb):
        lo = max(0, b - k + 1)
        gs.add(t0 + b * step, sum(good[lo : b + 1]) * 8 / step / (b + 1 - lo), 0)
    series.append(gs.build())
    return plot_of("tput", "throughput", f"bit/s (intervals of {step:.6g} s)", series, frames)


def flight_plot(dissection: Dissection, stream: int = 0, direction: str = CLIENT) -> Plot:
    """The connection's octets in flight and the peer's receive window; each subflow's in flight."""
    frames = ConnectionFrames(dissection, stream, direction)
    conn_flight = SeriesBuilder("in flight (connection)", Style.STEPS, role="flight")
    window = SeriesBuilder("receive window", Style.STEPS, role="window")
    subs: dict[int, SeriesBuilder] = {}
    high: int | None = None
    acked: int | None = None
    for info, mine in frames:
        p = info.packet
        if p is None:
            continue
        t = seconds(info)
        if mine:
            dsn = info.payload_dsn64
            if p.payload_len and dsn is not None:
                end = dsn + p.payload_len
                if high is None or end > high:
                    high = end
                    if acked is not None:
                        conn_flight.add(t, max(high - acked, 0), info.number)
            tcp = info.tcp
            if tcp is not None and tcp.bytes_in_flight is not None and info.subflow is not None:
                g = info.subflow.index
                b = subs.get(g)
                if b is None:
                    b = subs[g] = SeriesBuilder(f"subflow {g}", Style.POINTS, g, "flight")
                b.add(t, tcp.bytes_in_flight, info.number)
            continue
        for dss in info.dss:
            if dss.ack64 is None:
                continue
            acked = dss.ack64
            if high is not None:
                conn_flight.add(t, max(high - acked, 0), info.number)
            window.add(t, frames.windows.window(info), info.number)
    series = [conn_flight.build(), window.build()] + [subs[g].build() for g in sorted(subs)]
    return plot_of("flight", "octets in flight", "octets", series, frames)


def reinject_plot(dissection: Dissection, stream: int = 0, direction: str = CLIENT) -> Plot:
    """Reinjected octets over time, summed, by (first subflow, subflow that carried them again)."""
    frames = ConnectionFrames(dissection, stream, direction)
    subflow_of = array("i")  # frame number - 1 -> tcp.stream of the data it carried (-1: none)
    sums: dict[tuple[int, int], SeriesBuilder] = {}
    total: dict[tuple[int, int], int] = {}
    for info, mine in frames:
        p = info.packet
        if not mine or p is None or not p.payload_len or info.subflow is None:
            continue
        to = info.subflow.index
        if len(subflow_of) < info.number:
            subflow_of.extend([-1] * (info.number - len(subflow_of)))
        subflow_of[info.number - 1] = to
        if not info.reinjection_of:
            continue
        first = info.reinjection_of[0]
        source = subflow_of[first - 1] if first <= len(subflow_of) else -1
        key = (source, to)
        b = sums.get(key)
        if b is None:
            name = f"from subflow {source} on subflow {to}" if source >= 0 else f"on subflow {to}"
            b = sums[key] = SeriesBuilder(name, Style.STEPS, to, "reinjection")
            total[key] = 0
        total[key] += p.payload_len
        b.add(seconds(info), total[key], info.number)
    series = [sums[k].build() for k in sorted(sums)]
    return plot_of("reinject", "reinjected octets", "octets sent again (sum)", series, frames)
