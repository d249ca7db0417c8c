"""Plots as images (PNG, SVG, PDF) or in a window, drawn with matplotlib (``pip install
'mptcpspec[plot]'``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mptcpspec.plot.model import Plot, Series, Style
from mptcpspec.plot.reduce import reduce_plot
from mptcpspec.plot.select import PlotError

__all__ = ["COLORS", "IMAGE_SUFFIXES", "MissingMatplotlib", "color", "draw", "show"]

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
#: a subflow's colour by its tcp.stream (matplotlib's tab10, the same in the page)
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#d62728",
)
_ROLE_COLORS = {
    "data_ack": "#000000",
    "ack": "#000000",
    "window": "#888888",
    "gap": "#f4cccc",
    "markers": "#444444",
    "sack": "#333399",
    "goodput": "#000000",
    "flight": "#000000",
    "data_ack_latency": "#000000",
    "arrival": "#e377c2",  # two captures: the segments at the receiver
    "in_order": "#17becf",  # and the receiver's in-order edge
}
#: marker label -> matplotlib marker
_SHAPES = {"reinjection": "D", "retransmission": "x"}


class MissingMatplotlib(PlotError):
    """Images were asked for, and matplotlib (the ``plot`` extra) is not installed."""


def color(s: Series) -> str:
    """The colour a series is drawn in (a subflow's, or its role's)."""
    if s.group >= 0:
        return COLORS[s.group % len(COLORS)]
    return _ROLE_COLORS.get(s.role, "#000000")


def _pyplot(interactive: bool) -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingMatplotlib("images need matplotlib: pip install 'mptcpspec[plot]'") from None
    if not interactive:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "mptcpspec"  # the same SVG for the same plot
    plt.rcParams["svg.fonttype"] = "none"  # text as text: an SVG's labels can be searched and copied
    plt.rcParams["path.simplify"] = True
    return plt


def _figure(plt: Any, plot: Plot, size: tuple[float, float]) -> Any:
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=size, dpi=100)
    plot = reduce_plot(plot)
    for s in plot.series:
        c = color(s)
        if s.style == Style.BARS:
            lines = LineCollection(
                [((t, a), (t, b)) for t, a, b in zip(s.t, s.y, s.y2)],
                colors=c,
                linewidths=3.0 if s.role == "reinjection" else 2.0,
                antialiaseds=False,  # crisp bars, in their subflow's own colour
                label=s.name,
            )
            ax.add_collection(lines)
            if s.role in _SHAPES:
                ax.plot(s.t, s.y2, linestyle="", marker=_SHAPES[s.role], color=c, markeredgecolor="black", ms=5)
        elif s.style == Style.STEPS:
            dots = "o" if s.role == "reinjection" else None  # each reinjection a point on its sum
            ax.step(s.t, s.y, where="post", color=c, linewidth=1, label=s.name, marker=dots, ms=4)
        elif s.style == Style.LINE:
            ax.plot(s.t, s.y, color=c, linewidth=1, label=s.name)
        elif s.style == Style.POINTS:
            ax.plot(s.t, s.y, linestyle="", marker=".", ms=3, color=c, label=s.name)
        elif s.style == Style.AREA:
            ax.fill_between(
                s.t, s.y2 if len(s.y2) else [0.0] * len(s), s.y, step="post", color=c, alpha=0.6, label=s.name
            )
        elif s.style == Style.BANDS:
            for t0, a, b, t1 in zip(s.t, s.y, s.y2, s.extra):
                ax.axhspan(a, b, xmin=0, xmax=1, color=c, alpha=0.5, label=s.name)
                ax.axvline(t0, color=c, linewidth=0.5)
                _ = t1
        elif s.style == Style.MARKERS:
            ax.plot(s.t, s.y, linestyle="", marker="v", color=c, ms=6, label=s.name)
            if len(set(s.labels)) <= 1 and len(s) > 1:
                continue  # markers of one kind (lost segments): the legend names them
            span = (max(s.t) - min(s.t)) or 1.0
            start, k = None, 0
            for t, y, text in sorted(zip(s.t, s.y, s.labels)):
                # the labels of events close in time side by side, not on each other
                if start is not None and t - start < span / 100:
                    k += 1
                else:
                    start, k = t, 0
                ax.annotate(
                    text,
                    (t, y),
                    textcoords="offset points",
                    xytext=(9 * k, 6),
                    rotation=90,
                    fontsize=7,
                    ha="center",
                    va="bottom",
                )
    ax.autoscale_view()
    ax.set_title(plot.title)
    ax.set_xlabel(plot.xlabel)
    ax.set_ylabel(plot.ylabel)
    ax.grid(True, linewidth=0.3)
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for h, text in zip(handles, labels):
        seen.setdefault(text, h)
    names = {f"subflow {sf.tcp_stream}": sf.label() for sf in plot.subflows}
    ax.legend(list(seen.values()), [names.get(k, k) for k in seen], fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def draw(plot: Plot, out: str | os.PathLike[str], size: tuple[float, float] = (12.0, 7.0)) -> Path:
    """Draw ``plot`` to ``out``, a ``.png``, ``.svg`` or ``.pdf`` file (by its suffix)."""
    path = Path(out)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise PlotError(f"{path}: an image is {', '.join(IMAGE_SUFFIXES)} (or .html for the page, .csv for the table)")
    plt = _pyplot(False)
    fig = _figure(plt, plot, size)
    try:
        fig.savefig(path, metadata={"Date": None} if path.suffix.lower() == ".svg" else None)
    finally:
        plt.close(fig)
    return path


def show(plot: Plot, size: tuple[float, float] = (12.0, 7.0)) -> None:
    """Show ``plot`` in a window (a display is needed)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise PlotError("no display to show the plot on: give -o FILE (.png, .svg, .pdf, .html or .csv)")
    plt = _pyplot(True)
    _figure(plt, plot, size)
    plt.show()
