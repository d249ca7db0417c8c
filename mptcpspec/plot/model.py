"""What a plot shows, as plain data: series of points, each traced back to the frames it came from.

Every plot is a :class:`Plot`: a title, axis labels and :class:`Series`.  A series is a table of
columns (``array`` objects, no pandas): the time of each point in seconds from the capture's
first frame, one or two values, and the frame number that gave the point.  The renderers (images,
the interactive page) and ``--csv`` read only this; another tool can plot it itself::

    plot = dsn_plot(Dissection("capture.pcap"), stream=0)
    for s in plot.series:
        print(s.name, len(s))
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from enum import IntEnum

from mptcpspec.dissect.outcome import ReadOutcome

__all__ = ["Plot", "Series", "SeriesBuilder", "Style", "SubflowLegend"]


class Style(IntEnum):
    """How a series is drawn."""

    BARS = 1  #: a vertical bar from ``y`` to ``y2`` at each ``t`` (a segment's sequence range)
    STEPS = 2  #: a step line: ``y`` holds from each ``t`` to the next
    LINE = 3  #: a line through the points
    POINTS = 4  #: points alone
    MARKERS = 5  #: an event at ``t`` (drawn at ``y``), named by its label
    BANDS = 6  #: a shaded band from ``y`` to ``y2``, from ``t`` to ``t2`` (``y2`` column; ``t2`` in ``extra``)
    AREA = 7  #: a stacked area: the values ``y`` of consecutive intervals starting at ``t``


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a plot: columns of equal length, a point per row."""

    name: str  #: what the legend says
    style: Style
    #: the colour group: a subflow's ``tcp.stream``, or -1 for the connection's own series
    group: int
    t: array[float]  #: seconds since the capture's first frame ('d')
    y: array[float]  #: the value, or the low end of a bar or band ('d')
    y2: array[float]  #: the high end of a bar or band; empty for other styles ('d')
    frame: array[int]  #: the frame each point came from; 0 for a point made of several ('q')
    labels: tuple[str, ...] = ()  #: a label per point (markers)
    extra: array[float] = field(default_factory=lambda: array("d"))  #: bands: where each ends in time ('d')
    #: what the series stands for beyond its name: "new", "reinjection", "retransmission", "data_ack"...
    role: str = ""

    def __len__(self) -> int:
        return len(self.t)


@dataclass(frozen=True, slots=True)
class SubflowLegend:
    """What the legend says of a subflow."""

    tcp_stream: int
    initiator: str  #: address:port of the SYN's sender
    listener: str
    kind: str | None  #: "MP_CAPABLE" or "MP_JOIN"
    backup: bool  #: either end asked for it to be a backup path

    def label(self) -> str:
        tag = self.kind or "TCP"
        return f"{self.tcp_stream}: {self.initiator} → {self.listener} ({tag}{', backup' if self.backup else ''})"


@dataclass(frozen=True, slots=True)
class Plot:
    """One plot, ready to draw or to write as a table."""

    kind: str  #: "dsn", "subflow", "tput", "rtt", "flight", "reinject"
    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    subflows: tuple[SubflowLegend, ...] = ()
    #: how the read of the capture ended: its frames, the points drawn (``written``), any damage
    read: ReadOutcome = ReadOutcome(0)

    def named(self, name: str) -> Series:
        """The series called ``name`` (KeyError when none)."""
        for s in self.series:
            if s.name == name:
                return s
        raise KeyError(name)


class SeriesBuilder:
    """A series being filled point by point, then frozen with :meth:`build`."""

    __slots__ = ("name", "style", "group", "role", "t", "y", "y2", "frame", "labels", "extra")

    def __init__(self, name: str, style: Style, group: int = -1, role: str = "") -> None:
        self.name, self.style, self.group, self.role = name, style, group, role
        self.t, self.y, self.y2, self.frame = array("d"), array("d"), array("d"), array("q")
        self.labels: list[str] = []
        self.extra = array("d")

    def add(self, t: float, y: float, frame: int, y2: float | None = None, label: str | None = None) -> None:
        self.t.append(t)
        self.y.append(y)
        self.frame.append(frame)
        if y2 is not None:
            self.y2.append(y2)
        if label is not None:
            self.labels.append(label)

    def __len__(self) -> int:
        return len(self.t)

    def build(self) -> Series:
        return Series(
            self.name,
            self.style,
            self.group,
            self.t,
            self.y,
            self.y2,
            self.frame,
            tuple(self.labels),
            self.extra,
            self.role,
        )
