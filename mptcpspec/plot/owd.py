"""``plot owd`` and the paired ``plot dsn``: one direction of an MPTCP connection seen from both
ends, a capture taken at the client and one taken at the server (:func:`~mptcpspec.pair.pair_captures`).

``owd``: each segment's one-way delay (``mptcp.pair.owd``: the receiver's time less the sender's,
the clocks' offset taken out) at its time in the sender's capture, a line per subflow; the segments
the receiver's capture never showed as ``lost`` markers, at the subflow's last delay; where what a
middlebox changed on a subflow's segments starts or changes, a marker naming it
(``mptcp.pair.changes``).  The paired ``dsn`` (:func:`~mptcpspec.plot.dsn.dsn_plot` given a
:class:`Paired`) adds each data segment's arrival at the receiver and the data level's in-order
edge there, both on the sender's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.plot.model import Plot, SeriesBuilder, Style
from mptcpspec.plot.select import CLIENT, ConnectionFrames, PlotError, seconds
from mptcpspec.records import dataclass

if TYPE_CHECKING:
    from mptcpspec.analysis.model import PairFrame
    from mptcpspec.pair import Pairing
    from mptcpspec.pair.model import Offset

__all__ = ["Paired", "clocks", "owd_plot", "paired"]


@dataclass(frozen=True, slots=True)
class Paired:
    """One direction of a paired MPTCP connection, as the plots read it: the pairing's frames of
    the sender's capture and of the receiver's, and where the sender's capture is."""

    direction: str  #: whose data: "client" or "server"
    client_stream: int  #: the connection's mptcp.stream in the client's capture
    stream: int  #: and in the sender's capture
    given: int  #: the sender's capture is the first (0) or the second (1) of the two given
    sender: Mapping[int, PairFrame]  #: by frame number of the sender's capture
    receiver: Mapping[int, PairFrame]  #: by frame number of the receiver's capture
    offset: Offset

    @property
    def receiver_role(self) -> str:
        return "server" if self.direction == CLIENT else "client"


def paired(pairing: Pairing, stream: int = 0, direction: str = CLIENT) -> Paired:
    """The ``direction`` of the connection that is mptcp.stream ``stream`` in the client's capture;
    PlotError when the pairing has no such connection, or when it is not MPTCP in the sender's capture."""
    report = pairing.report
    conn = next((c for c in report.connections if c.client_stream == stream), None)
    if conn is None:
        have = sorted(c.client_stream for c in report.connections if c.client_stream is not None)
        listed = ", ".join(map(str, have)) if have else "none"
        raise PlotError(f"MPTCP connection {stream}: not paired (the client's mptcp.stream paired: {listed})")
    at_client = direction == CLIENT
    mine = conn.client_stream if at_client else conn.server_stream
    if mine is None:
        why = conn.fallback or "no MP_CAPABLE there"
        raise PlotError(f"MPTCP connection {stream}: not MPTCP in the server's capture ({why})")
    client = 1 if report.swapped else 0  # pairing.frames are in the order the captures were given
    given = client if at_client else 1 - client
    return Paired(
        direction,
        stream,
        mine,
        given,
        pairing.frames[given],
        pairing.frames[1 - given],
        report.offset,
    )


def clocks(offset: Offset) -> str:
    """The clocks' offset as a title says it: ``server − client = +12 µs ± 3 µs``."""
    from mptcpspec.pair.render import duration

    sign = "+" if offset.offset_ns >= 0 else "−"
    text = f"server − client = {sign}{duration(abs(offset.offset_ns))}"
    if offset.given:
        return text + " (given)"
    return text + (" (no bound)" if offset.uncertainty_ns is None else f" ± {duration(offset.uncertainty_ns)}")


def owd_plot(dissection: Dissection, pair: Paired) -> Plot:
    """One-way delays in milliseconds of every segment the sender sent on the connection's subflows
    (``dissection``: the sender's capture), at its time there; lost segments and changes made on
    the way as markers.  Each point's frame is the sender's."""
    frames = ConnectionFrames(dissection, pair.stream, pair.direction)
    notes = pair.sender
    lines: dict[int, SeriesBuilder] = {}
    lost: dict[int, SeriesBuilder] = {}
    changed = SeriesBuilder("changed on the way", Style.MARKERS, role="changes")
    last: dict[int, float] = {}  # subflow -> its last delay (ms)
    was: dict[int, tuple[str, ...]] = {}  # subflow -> the changes on its last segment that arrived
    unplaced: list[tuple[SeriesBuilder, int]] = []  # lost before the subflow's first delay
    for info, mine in frames:
        if not mine or info.subflow is None:
            continue
        note = notes.get(info.number)
        if note is None:
            continue
        g = info.subflow.index
        t = seconds(info)
        if note.owd_ns is not None:
            ms = note.owd_ns / 1e6
            b = lines.get(g)
            if b is None:
                b = lines[g] = SeriesBuilder(f"subflow {g}", Style.POINTS, g, "owd")
            b.add(t, ms, info.number)
            last[g] = ms
            if note.changes != was.get(g, ()):
                was[g] = note.changes
                if note.changes:
                    changed.add(t, ms, info.number, label=", ".join(note.changes))
        elif note.lost:
            m = lost.get(g)
            if m is None:
                m = lost[g] = SeriesBuilder(f"subflow {g} lost", Style.MARKERS, g, "lost")
            y = last.get(g)
            if y is None:
                unplaced.append((m, len(m)))
            m.add(t, 0.0 if y is None else y, info.number, label="lost")
    frames.need()
    if unplaced:
        top = max((max(b.y) for b in lines.values() if len(b)), default=0.0)
        for m, i in unplaced:
            m.y[i] = top
    series = [lines[g].build() for g in sorted(lines)] + [lost[g].build() for g in sorted(lost)]
    if len(changed):
        series.append(changed.build())
    if not series:
        raise PlotError(
            f"MPTCP connection {pair.client_stream}: no segment from the {pair.direction} found in the "
            f"{pair.receiver_role}'s capture, and none lost: nothing to draw"
        )
    return Plot(
        "owd",
        f"MPTCP connection {pair.client_stream}: one-way delay from the {pair.direction} to the "
        f"{pair.receiver_role} ({clocks(pair.offset)})",
        f"time in the {pair.direction}'s capture (s)",
        "one-way delay (ms)",
        tuple(series),
        frames.legends(),
        frames.outcome(sum(len(s) for s in series)),
    )
