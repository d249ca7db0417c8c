"""``plot rtt``: round-trip times of one direction of an MPTCP connection.

Per subflow, the time from a segment to the ACK that acknowledges it (``tcp.analysis.ack_rtt``),
and, where both ends send TCP timestamps (RFC 7323 §4), the time from a segment to the first
segment of the peer that echoes its TSval; for the connection, the DATA_ACK latency: the time from
data first sent to the first DATA_ACK that covers it.
"""

from __future__ import annotations

from collections import deque

from mptcpspec.codec.options import option_spans
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.plot.model import Plot, SeriesBuilder, Style
from mptcpspec.plot.rates import plot_of
from mptcpspec.plot.select import CLIENT, ConnectionFrames, seconds

__all__ = ["rtt_plot", "timestamps"]


def timestamps(options: bytes) -> tuple[int, int] | None:
    """(TSval, TSecr) of a TCP options area's timestamps option (RFC 7323 §3), or None."""
    for kind, i, ln in option_spans(options):
        if kind == 8 and ln == 10:
            return int.from_bytes(options[i + 2 : i + 6], "big"), int.from_bytes(options[i + 6 : i + 10], "big")
    return None


def rtt_plot(dissection: Dissection, stream: int = 0, direction: str = CLIENT) -> Plot:
    """RTT samples in milliseconds: per subflow from ACKs and from timestamps, and the DATA_ACK latency."""
    frames = ConnectionFrames(dissection, stream, direction)
    by_ack: dict[int, SeriesBuilder] = {}
    by_ts: dict[int, SeriesBuilder] = {}
    sent_ts: dict[tuple[int, int], float] = {}  # (subflow, TSval) -> time of its first segment
    latency = SeriesBuilder("DATA_ACK latency", Style.POINTS, role="data_ack_latency")
    pending: deque[tuple[int, float]] = deque()  # (end DSN, time sent) of new data, in DSN order
    high: int | None = None
    for info, mine in frames:
        p = info.packet
        sf = info.subflow
        if p is None or sf is None:
            continue
        t = seconds(info)
        g = sf.index
        ts = timestamps(p.options) if p.options else None
        if mine:
            if ts is not None and p.payload_len:
                sent_ts.setdefault((g, ts[0]), t)
            dsn = info.payload_dsn64
            if p.payload_len and dsn is not None:
                end = dsn + p.payload_len
                if high is None or end > high:
                    high = end
                    pending.append((end, t))
            continue
        tcp = info.tcp
        if tcp is not None and tcp.ack_rtt_ns is not None:
            b = by_ack.get(g)
            if b is None:
                b = by_ack[g] = SeriesBuilder(f"subflow {g} (ACK)", Style.POINTS, g, "rtt_ack")
            b.add(t, tcp.ack_rtt_ns / 1e6, info.number)
        if ts is not None:
            at = sent_ts.pop((g, ts[1]), None)
            if at is not None:
                b = by_ts.get(g)
                if b is None:
                    b = by_ts[g] = SeriesBuilder(f"subflow {g} (timestamps)", Style.LINE, g, "rtt_ts")
                b.add(t, (t - at) * 1e3, info.number)
        for dss in info.dss:
            if dss.ack64 is None:
                continue
            while pending and pending[0][0] <= dss.ack64:
                _, at = pending.popleft()
                latency.add(t, (t - at) * 1e3, info.number)
    series = [by_ack[g].build() for g in sorted(by_ack)] + [by_ts[g].build() for g in sorted(by_ts)]
    series.append(latency.build())
    return plot_of("rtt", "round-trip times", "milliseconds", series, frames)
