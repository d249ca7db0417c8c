"""Fewer points for drawing, the picture kept: a series of many points is cut into time buckets
(about one per pixel column), and each bucket keeps what a pixel column can show of it.

Bars keep, per bucket, one bar from the lowest start to the highest end; lines and steps keep the
first, lowest, highest and last point; points and areas are left alone, and so are markers, bands
and every series of data sent again (reinjections, retransmissions): each of those is an event a
reader looks for.  A point made of several has frame 0; ``--csv`` writes the series whole.
"""

from __future__ import annotations

from array import array
from dataclasses import replace

from mptcpspec.plot.model import Plot, Series, Style

__all__ = ["BUCKETS", "reduce_plot"]

#: buckets across the time axis: about twice the pixel columns of a wide picture
BUCKETS = 4000
#: a series with fewer points than this is kept whole
_KEEP = 2 * BUCKETS


def reduce_plot(plot: Plot, buckets: int = BUCKETS) -> Plot:
    """``plot`` with its long series cut down for drawing (see the module)."""
    ts = [s.t for s in plot.series if len(s)]
    if not ts:
        return plot
    lo = min(t[0] for t in ts)
    hi = max(t[-1] for t in ts)
    width = (hi - lo) / buckets or 1.0
    return replace(plot, series=tuple(_reduce(s, lo, width, buckets) for s in plot.series))


def _reduce(s: Series, lo: float, width: float, buckets: int) -> Series:
    if len(s) <= 2 * buckets or s.role in ("reinjection", "retransmission"):
        return s
    if s.style == Style.BARS:
        return _bars(s, lo, width)
    if s.style in (Style.LINE, Style.STEPS):
        return _lines(s, lo, width)
    return s


def _bars(s: Series, lo: float, width: float) -> Series:
    t, y, y2, fr = array("d"), array("d"), array("d"), array("q")
    cur = -1
    for i in range(len(s.t)):
        b = int((s.t[i] - lo) / width)
        if b != cur:
            cur = b
            t.append(s.t[i])
            y.append(s.y[i])
            y2.append(s.y2[i])
            fr.append(s.frame[i])
            continue
        fr[-1] = 0
        if s.y[i] < y[-1]:
            y[-1] = s.y[i]
        if s.y2[i] > y2[-1]:
            y2[-1] = s.y2[i]
    return replace(s, t=t, y=y, y2=y2, frame=fr)


def _lines(s: Series, lo: float, width: float) -> Series:
    keep: list[int] = []
    start = 0
    n = len(s.t)
    while start < n:
        b = int((s.t[start] - lo) / width)
        end = start
        while end < n and int((s.t[end] - lo) / width) == b:
            end += 1
        seg = range(start, end)
        lo_i = min(seg, key=s.y.__getitem__)
        hi_i = max(seg, key=s.y.__getitem__)
        keep.extend(sorted({start, lo_i, hi_i, end - 1}))
        start = end
    return replace(
        s,
        t=array("d", (s.t[i] for i in keep)),
        y=array("d", (s.y[i] for i in keep)),
        frame=array("q", (s.frame[i] for i in keep)),
    )
