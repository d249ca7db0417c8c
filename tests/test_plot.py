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
from tests.conftest import ROOT, in_ci, need_tshark, unavailable

DATA = ROOT / "tests" / "data"
CAPTURES = sorted(DATA.glob("*.pcap"))
FIELDS = [
    "frame.number",
    "frame.time_relative",
    "tcp.stream",
    "tcp.len",
    "tcp.seq",
    "tcp.ack",
    "mptcp.dsn",
    "mptcp.ack",
    "tcp.window_size",
    "tcp.analysis.ack_rtt",
    "tcp.analysis.bytes_in_flight",
    "mptcp.reinjection_of",
]
KINDS = ("dsn", "subflow", "tput", "rtt", "flight", "reinject")


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


def table(path: Path, direction: str, kind: str = "dsn", *more: str) -> list[dict[str, str]] | None:
    out = cli("plot", kind, "-r", str(path), "--direction", direction, "--csv", *more)
    if out.returncode == 3 and ("no data from the" in out.stderr or "nothing to draw" in out.stderr):
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


def test_markers_drawn_where_the_events_are(tmp_path: Path) -> None:
    """The SVG of the ADD_ADDR capture names its events; the two-subflow capture's has no ADD_ADDR."""
    pytest.importorskip("matplotlib") if not in_ci() else None
    from mptcpspec.plot.image import draw

    svg = draw(dsn_plot(Dissection(DATA / "v4-add-addr.pcap")), tmp_path / "a.svg").read_text()
    for label in ("ADD_ADDR", "REMOVE_ADDR", "MP_PRIO", "MP_JOIN", "DATA_FIN", "backup"):
        assert f">{label}<" in svg or label in svg, label
    plain = draw(dsn_plot(Dissection(DATA / "v4-two-subflows.pcap")), tmp_path / "b.svg").read_text()
    assert "ADD_ADDR" not in plain and "MP_JOIN" in plain


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
    """The SVG of a fixed capture is the same, octet for octet, as the committed one, and so are
    the manual's pictures (made by ``python -m tests.make_plot_golden``; matplotlib pinned by the
    test extra)."""
    pytest.importorskip("matplotlib") if not in_ci() else None
    from tests.make_plot_golden import GOLDEN, IMAGES, make, pictures

    fresh = make(tmp_path)
    assert fresh.read_bytes() == GOLDEN.read_bytes(), "run python -m tests.make_plot_golden and look at the change"
    for picture in pictures(tmp_path):  # the manual's pictures are what the command draws
        assert picture.read_bytes() == (IMAGES / picture.name).read_bytes(), picture.name


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


@pytest.mark.parametrize("path", [DATA / "v4-loss.pcap", DATA / "v4-reinjection.pcap"], ids=lambda p: p.stem)
def test_subflow_points_are_their_frames_fields(path: Path) -> None:
    """subflow: each bar its frame's tcp.seq to tcp.seq + tcp.len, each ACK point tcp.ack, each
    window point tcp.ack + tcp.window_size; retransmissions where the TCP analysis says so."""
    frames = fields(path)
    for stream in ("0", "1"):
        for direction in ("client", "server"):
            rows = table(path, direction, "subflow", "--tcp-stream", stream)
            if rows is None:
                continue
            for r in rows:
                f = frames[int(r["frame"])]
                assert f["tcp.stream"] == stream
                if r["style"] == "bars" and r["role"] != "sack":
                    assert (_int(r["value"]), _int(r["value2"])) == (
                        int(f["tcp.seq"]),
                        int(f["tcp.seq"]) + int(f["tcp.len"]),
                    ), r
                elif r["role"] == "ack":
                    assert _int(r["value"]) == int(f["tcp.ack"]), r
                elif r["role"] == "window":
                    assert _int(r["value"]) == int(f["tcp.ack"]) + int(f["tcp.window_size"]), r


def test_sack_blocks_are_tsharks(tmp_path: Path) -> None:
    """subflow's SACK bars: the blocks tshark 4.0 shows (tcp.options.sack_le, sack_re, relative)."""
    tshark = need_tshark()
    path = DATA / "v4-loss.pcap"
    out = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "tcp.stream",
            "-e",
            "tcp.options.sack_le",
            "-e",
            "tcp.options.sack_re",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    want = set()
    for line in out.splitlines():
        n, stream, le, re_ = line.split("\t")
        if le:
            want |= {(int(n), stream, int(a), int(b)) for a, b in zip(le.split(","), re_.split(","))}
    got = set()
    for stream in ("0", "1"):
        for direction in ("client", "server"):
            for r in table(path, direction, "subflow", "--tcp-stream", stream) or []:
                if r["role"] == "sack":
                    got.add((int(r["frame"]), stream, _int(r["value"]), _int(r["value2"])))
    assert want and got == want


def test_tput_sums_the_segments(tmp_path: Path) -> None:
    """tput: each subflow's octets in an interval are the tcp.len of its data frames there (the
    frames the dsn plot draws); the stack's layers sit on each other."""
    path = DATA / "v4-reinjection.pcap"
    frames = fields(path)
    bars = table(path, "client") or []
    step = 0.001
    rows = table(path, "client", "tput", "--interval", str(step)) or []
    t0 = min(float(r["time"]) for r in rows)
    want: dict[tuple[str, int], int] = {}
    for r in bars:
        if r["style"] == "bars":
            f = frames[int(r["frame"])]
            b = int((float(f["frame.time_relative"]) - t0) / step + 1e-9)
            want[(r["subflow"], b)] = want.get((r["subflow"], b), 0) + int(f["tcp.len"])
    got: dict[tuple[str, int], int] = {}
    for r in rows:
        if r["role"] == "throughput":
            octets = (float(r["value"]) - float(r["value2"])) * step / 8
            if round(octets):
                got[(r["subflow"], round((float(r["time"]) - t0) / step))] = round(octets)
    assert got == want


def test_rtt_flight_reinject_points_are_their_frames_fields() -> None:
    path = DATA / "v4-reinjection.pcap"
    frames = fields(path)
    rtt = table(path, "client", "rtt") or []
    assert {r["role"] for r in rtt} == {"rtt_ack", "rtt_ts", "data_ack_latency"}
    for r in rtt:
        f = frames[int(r["frame"])]
        if r["role"] == "rtt_ack":
            assert float(r["value"]) == pytest.approx(float(f["tcp.analysis.ack_rtt"]) * 1e3, abs=1e-6)
        elif r["role"] == "data_ack_latency":
            assert f["mptcp.ack"] != ""
    flight = table(path, "client", "flight") or []
    for r in flight:
        f = frames[int(r["frame"])]
        if r["style"] == "points":
            assert _int(r["value"]) == int(f["tcp.analysis.bytes_in_flight"]), r
        elif r["role"] == "window":
            assert _int(r["value"]) == int(f["tcp.window_size"]), r
    reinjected = [f for f in frames.values() if f["mptcp.reinjection_of"]]
    rows = table(path, "client", "reinject") or []
    assert {int(r["frame"]) for r in rows} == {int(f["frame.number"]) for f in reinjected}
    finals: dict[str, int] = {}
    for r in rows:
        finals[r["series"]] = _int(r["value"])
    assert sum(finals.values()) == sum(int(f["tcp.len"]) for f in reinjected)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_draws_every_capture(kind: str, tmp_path: Path) -> None:
    """Each kind as a PNG (of the size asked for) for every capture that has what it draws."""
    pytest.importorskip("matplotlib") if not in_ci() else None
    import matplotlib.image

    from mptcpspec.plot.delay import rtt_plot
    from mptcpspec.plot.image import draw
    from mptcpspec.plot.rates import flight_plot, reinject_plot, tput_plot
    from mptcpspec.plot.select import PlotError
    from mptcpspec.plot.subflow import subflow_plot

    make = {"dsn": dsn_plot, "subflow": subflow_plot, "tput": tput_plot, "rtt": rtt_plot}
    make |= {"flight": flight_plot, "reinject": reinject_plot}
    drawn = 0
    for path in CAPTURES:
        try:
            plot = make[kind](Dissection(path))
        except PlotError:
            continue
        out = draw(plot, tmp_path / f"{path.stem}.png", (6.0, 4.0))
        assert matplotlib.image.imread(out).shape[:2] == (400, 600)
        drawn += 1
    assert drawn >= (1 if kind == "reinject" else 8), drawn


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_as_a_page(kind: str, tmp_path: Path) -> None:
    """Each kind's page loads offline in the browser and draws all its series' points."""
    page = tmp_path / f"{kind}.html"
    r = cli("plot", kind, "-r", str(DATA / "v4-reinjection.pcap"), "-o", str(page))
    assert r.returncode == 0, r.stderr
    dom = _browse(page, "--dump-dom").stdout
    assert int(dom.split('data-drawn="')[1].split('"')[0]) > 0
