"""``plot --csv``: the series of a plot as one CSV table, every point with the frame it came from.

Columns: ``series`` (its legend name), ``style``, ``role``, ``subflow`` (the ``tcp.stream`` of a
subflow's series, empty for the connection's), ``time`` (seconds since the capture's first frame),
``value``, ``value2`` (a bar's or band's high end), ``frame`` (0: a point made of several frames),
``label`` (a marker's).  The series are written whole, never reduced.
"""

from __future__ import annotations

import csv
from typing import TextIO

from mptcpspec.plot.model import Plot

__all__ = ["COLUMNS", "write_csv"]

COLUMNS = ("series", "style", "role", "subflow", "time", "value", "value2", "frame", "label")


def _num(v: float) -> str:
    return str(int(v)) if v == int(v) else repr(v)


def write_csv(plot: Plot, out: TextIO) -> int:
    """Write ``plot``'s points to ``out``; the number of points written."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    n = 0
    for s in plot.series:
        sub = str(s.group) if s.group >= 0 else ""
        style = s.style.name.lower()
        has2, has_label = len(s.y2) == len(s), len(s.labels) == len(s)
        for i in range(len(s)):
            w.writerow(
                (
                    s.name,
                    style,
                    s.role,
                    sub,
                    repr(s.t[i]),
                    _num(s.y[i]),
                    _num(s.y2[i]) if has2 else "",
                    s.frame[i],
                    s.labels[i] if has_label else "",
                )
            )
            n += 1
    return n
