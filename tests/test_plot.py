"""``mptcpspec plot``: each series traced back to the frames it came from, the images, the page in
a real browser.

The series are checked against the dissection itself: every point of ``--csv`` names a frame, and
that frame's fields in ``dissect -T fields`` (``mptcp.dsn``, ``tcp.len``, ``tcp.stream``,
``mptcp.ack``, ``tcp.window_size``; tests/test_tshark_dissect.py holds them equal to tshark 4.0's)
give the point's values.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.plot.dsn import dsn_plot
from mptcpspec.plot.image import COLORS
from mptcpspec.plot.model import Style
from mptcpspec.plot.table import COLUMNS, write_csv
from tests.conftest import ROOT, in_ci, unavailable

DATA = ROOT / "tests" / "data"
CAPTURES = sorted(DATA.glob("*.pcap"))
FIELDS = ["frame.number", "tcp.stream", "tcp.len", "mptcp.dsn", "mptcp.ack", "tcp.window_size"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mptcpspec", *args], capture_output=True, text=True, cwd=ROOT)


def fields(path: Path) -> dict[int, dict[str, str]]:
    out = cli("dissect", "-r", str(path), "-T", "fields", *(a for n in FIELDS for a in ("-e", n)))
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        cells = line.split("\t")
        rows[int(cells[0])] = dict(zip(FIELDS, cells))
    return rows


def table(path: Path, direction: str) -> list[dict[str, str]] | None:
    out = cli("plot", "dsn", "-r", str(path), "--direction", direction, "--csv")
    if out.returncode == 3 and "no data from the" in out.stderr:
        return None
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows and tuple(rows[0]) == COLUMNS
    return rows


def _without(path: Path, frames: set[int]) -> bytes:
    """The classic pcap ``path`` without the records of ``frames`` (numbered from 1)."""
    data = path.read_bytes()
    out, p, n = [data[:24]], 24, 0
    while p < len(data):
        size = int.from_bytes(data[p + 8 : p + 12], "little")
        n += 1
        if n not in frames:
            out.append(data[p : p + 16 + size])
        p += 16 + size
    return b"".join(out)


def _int(v: str) -> int:
    return int(float(v))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_dsn_points_are_their_frames_fields(path: Path) -> None:
    """Each bar is its frame's mptcp.dsn to mptcp.dsn + tcp.len on its tcp.stream; each DATA_ACK
    point its frame's mptcp.ack, each window point mptcp.ack + tcp.window_size."""
    frames = fields(path)
    drawn = 0
    for direction in ("client", "server"):
        rows = table(path, direction)
        if rows is None:
            continue
        for r in rows:
            f = frames[int(r["frame"])] if r["frame"] != "0" else None
            if r["style"] == "bars":
                assert f is not None
                assert f["mptcp.dsn"] != "", r
                assert _int(r["value"]) == int(f["mptcp.dsn"]), r
                assert _int(r["value2"]) - _int(r["value"]) == int(f["tcp.len"]), r
                assert r["subflow"] == f["tcp.stream"], r
                drawn += 1
            elif r["role"] == "data_ack":
                assert f is not None and _int(r["value"]) == int(f["mptcp.ack"]), r
            elif r["role"] == "window":
                assert f is not None
                assert _int(r["value"]) == int(f["mptcp.ack"]) + int(f["tcp.window_size"]), r
    if path.stem != "v4-fastclose":  # a connection closed before its data
        assert drawn > 0


def test_reinjections_marked_as_tshark_shows_them() -> None:
    """The reinjection capture's 7 segments that tshark 4.0 shows with mptcp.reinjection_of
    (tests/data/README.md) are the reinjection bars."""
    p = dsn_plot(Dissection(DATA / "v4-reinjection.pcap"))
    assert sum(len(s) for s in p.series if s.role == "reinjection") == 7


def test_events_marked() -> None:
    labels = {
        name: set(dsn_plot(Dissection(DATA / f"{name}.pcap")).named("events").labels)
        for name in ("v4-add-addr", "v4-fastclose", "v4-remove-addr", "v4-two-subflows")
    }
    assert {"ADD_ADDR", "REMOVE_ADDR", "MP_PRIO", "MP_JOIN", "DATA_FIN", "FIN"} <= labels["v4-add-addr"]
    assert {"MP_FASTCLOSE", "MP_TCPRST", "RST"} <= labels["v4-fastclose"]
    assert "REMOVE_ADDR" in labels["v4-remove-addr"]
    assert "ADD_ADDR" not in labels["v4-two-subflows"]


def test_gap_shaded_where_frames_are_missing(tmp_path: Path) -> None:
    """Data frames cut out of a capture: the peer acknowledges what the capture no longer shows,
    and the plot shades it; the whole capture has no band."""
    whole = dsn_plot(Dissection(DATA / "v4-two-subflows.pcap"))
    assert not any(s.style == Style.BANDS for s in whole.series)
    bars = [f for s in whole.series if s.style == Style.BARS for f in s.frame]
    cut = _without(DATA / "v4-two-subflows.pcap", set(bars[3:5]))
    holed = dsn_plot(Dissection(io.BytesIO(cut)))
    band = holed.named("not captured")
    assert len(band) >= 1


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_png_for_every_capture(path: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib") if not in_ci() else None
    import matplotlib.image

    out = tmp_path / "dsn.png"
    r = cli("plot", "dsn", "-r", str(path), "-o", str(out), "--size", "8x5")
    if r.returncode == 3 and "no data" in r.stderr:
        return
    assert r.returncode == 0, r.stderr
    img = matplotlib.image.imread(out)
    assert img.shape[:2] == (500, 800)
    rgb = {tuple(int(round(c * 255)) for c in px[:3]) for px in img.reshape(-1, img.shape[2])}
    for sf in range(2 if path.stem not in ("v4-fastclose", "v4-stall", "v4-tfo") else 1):
        want = tuple(int(COLORS[sf][i : i + 2], 16) for i in (1, 3, 5))
        assert any(sum(abs(a - b) for a, b in zip(want, c)) < 30 for c in rgb), (path.stem, sf)


def test_svg_is_the_golden_one(tmp_path: Path) -> None:
    """The SVG of a fixed capture is the same, octet for octet, as the committed one (made by
    ``python -m tests.make_plot_golden``; matplotlib pinned by the test extra)."""
    pytest.importorskip("matplotlib") if not in_ci() else None
    from tests.make_plot_golden import GOLDEN, make

    fresh = make(tmp_path)
    assert fresh.read_bytes() == GOLDEN.read_bytes(), "run python -m tests.make_plot_golden and look at the change"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    unavailable("headless Chromium is not installed (apt-get install chromium)")


def _browse(page: Path, *flags: str, fragment: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no name resolves
            "--window-size=1200,700",
            *flags,
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(page.parent)},
    )


def test_page_in_a_real_browser(tmp_path: Path) -> None:
    """The page loads offline, draws every point, and pointing at a frame's bar names the frame."""
    page = tmp_path / "dsn.html"
    r = cli("plot", "dsn", "-r", str(DATA / "v4-reinjection.pcap"), "-o", str(page))
    assert r.returncode == 0, r.stderr
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    dom = _browse(page, "--dump-dom", fragment="#frame=14").stdout
    assert 'data-drawn="' in dom
    drawn = int(dom.split('data-drawn="')[1].split('"')[0])
    plot = dsn_plot(Dissection(DATA / "v4-reinjection.pcap"))
    assert drawn >= sum(len(s) for s in plot.series if s.style == Style.BARS)
    tip = dom.split('<div id="tip"')[1].split("</div>")[0]
    assert "frame 14" in tip and "subflow 1" in tip
    shot = tmp_path / "shot.png"
    _browse(page, f"--screenshot={shot}")
    pytest.importorskip("matplotlib") if not in_ci() else None
    import matplotlib.image

    img = matplotlib.image.imread(shot)
    rgb = {tuple(int(round(c * 255)) for c in px[:3]) for px in img.reshape(-1, img.shape[2])}
    for sf in (0, 1):
        want = tuple(int(COLORS[sf][i : i + 2], 16) for i in (1, 3, 5))
        assert want in rgb, sf


def test_csv_to_a_file_and_usage_errors(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    assert cli("plot", "dsn", "-r", str(DATA / "v4-loss.pcap"), "-o", str(out)).returncode == 0
    buf = io.StringIO()
    write_csv(dsn_plot(Dissection(DATA / "v4-loss.pcap")), buf)
    assert out.read_text() == buf.getvalue()
    r = cli("plot", "dsn", "-r", str(DATA / "v4-loss.pcap"), "-o", str(tmp_path / "x.gif"))
    assert r.returncode == 2 and ".png, .svg, .pdf, .html or .csv" in r.stderr
    r = cli("plot", "dsn", "-r", str(DATA / "v4-loss.pcap"), "--stream", "7", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 3 and "MPTCP connection 7: not in the capture" in r.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "plot", "dsn", "-r", str(DATA / "v4-loss.pcap")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 2 and "give -o FILE" in r.stderr
    r = cli("plot", "dsn", "-r", str(tmp_path / "none.pcap"), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 3 and "Traceback" not in r.stderr
