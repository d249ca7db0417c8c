"""Plots as one self-contained HTML page: the plot's data and a small canvas renderer inlined,
nothing fetched (it opens offline, from a file or a mail).

The renderer is ours (``page.js`` beside this module, about 250 lines): a drag draws a box to
zoom into, shift-drag or the right button pans, the wheel zooms around the pointer (with Ctrl:
the time axis only), a double click or ``r`` goes back; the legend's boxes hide series; the
pointer names the nearest point: its series, frame number, time and value.  Why not a library:
plotly.js inlined is 3.5 MB per page and Bokeh brings a server-side stack; the plots need bars,
steps, bands and markers, which a canvas draws in a few lines each, and a page of 100,000 points
stays a few megabytes.
"""

from __future__ import annotations

import html
import json
import os
from importlib.resources import files
from pathlib import Path

from mptcpspec.plot.image import color
from mptcpspec.plot.model import Plot
from mptcpspec.plot.reduce import reduce_plot

__all__ = ["PAGE_BUCKETS", "page", "write_page"]

#: time buckets of a page's long series: finer than an image's, for zooming in
PAGE_BUCKETS = 20000

_STYLE = """
body { font: 13px sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
#wrap { position: relative; flex: 1; min-height: 300px; }
#plot { width: 100%; height: 100%; display: block; cursor: crosshair; }
#tip { position: absolute; display: none; background: #ffffe8; border: 1px solid #999; padding: 3px 6px;
       pointer-events: none; max-width: 320px; }
#legend { padding: 4px 8px; display: flex; flex-wrap: wrap; gap: 4px 14px; border-top: 1px solid #ccc; }
.sw { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin-left: 3px; }
#help { color: #666; padding: 2px 8px; }
"""


def _data(plot: Plot) -> dict[str, object]:
    names = {f"subflow {sf.tcp_stream}": sf.label() for sf in plot.subflows}
    return {
        "title": plot.title,
        "xlabel": plot.xlabel,
        "ylabel": plot.ylabel,
        "yname": plot.ylabel.split(" (")[0],
        "names": names,
        "series": [
            {
                "name": s.name,
                "style": s.style.name,
                "role": s.role,
                "color": color(s),
                "t": [round(v, 9) for v in s.t],
                "y": list(s.y),
                "y2": list(s.y2),
                "frame": list(s.frame),
                "labels": list(s.labels),
            }
            for s in plot.series
        ],
    }


def page(plot: Plot) -> str:
    """The HTML page of ``plot``."""
    data = json.dumps(_data(reduce_plot(plot, PAGE_BUCKETS)), separators=(",", ":"))
    script = files("mptcpspec.plot").joinpath("page.js").read_text(encoding="utf-8")
    title = html.escape(plot.title)
    # "</" never appears inside the inlined JSON and script: the page's parser sees them whole
    data = data.replace("</", "<\\/")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        '<div id="wrap"><canvas id="plot"></canvas><div id="tip"></div></div>'
        '<div id="legend"></div>'
        '<div id="help">drag: zoom to a box · shift-drag or right button: pan · wheel: zoom (Ctrl: time only) · '
        "double click or r: back · point at a mark to name its frame</div>"
        f'<script id="plot-data" type="application/json">{data}</script>'
        f"<script>{script}</script></body></html>\n"
    )


def write_page(plot: Plot, out: str | os.PathLike[str]) -> Path:
    """Write the HTML page of ``plot`` to ``out``."""
    path = Path(out)
    path.write_text(page(plot), encoding="utf-8")
    return path
