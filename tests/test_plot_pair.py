"""``mptcpspec plot owd`` and ``plot dsn -r CLIENT -r SERVER``: the plots of a connection seen from
both ends, held to the pair analysis' own fields.

Every point is checked against ``dissect -r SENDER --pair-with RECEIVER -T fields`` (the
``mptcp.pair.*`` fields of the same frames, tests/test_pair.py's subject) and the clocks' offset
``pair --json`` reports; the captures are tests/data/pair's (one kernel connection captured at the
client and at the server at once), and copies of them with frames cut (losses), a checksum
rewritten (a change made on the way) or the server's clock put forward.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.pair import pair_captures
from mptcpspec.plot.model import Style
from mptcpspec.plot.owd import owd_plot, paired
from mptcpspec.plot.table import COLUMNS, write_csv
from tests.conftest import ROOT, in_ci

PAIR = ROOT / "tests" / "data" / "pair"
CLIENT, SERVER = PAIR / "direct-client.pcap", PAIR / "direct-server.pcap"
FIELDS = [
    "frame.number",
    "frame.time_epoch",
    "frame.time_relative",
    "tcp.stream",
    "tcp.len",
    "mptcp.dsn",
    "mptcp.pair.peer_frame",
    "mptcp.pair.owd",
    "mptcp.pair.lost",
    "mptcp.pair.ooo_delay",
    "mptcp.pair.changes",
]


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mptcpspec", *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )


def pair_fields(capture: Path, other: Path, *more: str) -> dict[int, dict[str, str]]:
    """``capture``'s frames' fields, paired with ``other`` (by frame number)."""
    out = cli(
        "dissect", "-r", capture, "--pair-with", other, *more, "-T", "fields", *(a for n in FIELDS for a in ("-e", n))
    )
    assert out.returncode == 0, out.stderr
    return {int(cells[0]): dict(zip(FIELDS, cells)) for cells in (line.split("\t") for line in out.stdout.splitlines())}


def sent_by(capture: Path, direction: str) -> set[int]:
    """The frames of ``capture`` that ``direction`` sent on MPTCP connection 0."""
    return {
        i.number
        for i in Dissection(str(capture), tcp_analysis=False)
        if i.mptcp_stream == 0 and i.from_client is (direction == "client")
    }


def rows(*args: str | Path) -> list[dict[str, str]]:
    out = cli("plot", *args, "--csv")
    assert out.returncode == 0, out.stderr
    got = list(csv.DictReader(io.StringIO(out.stdout)))
    assert got and tuple(got[0]) == COLUMNS
    return got


def ns(seconds: str) -> int:
    return int(Decimal(seconds) * 1_000_000_000)


def offset_ns(client: Path, server: Path, *more: str) -> int:
    out = cli("pair", "-r", client, "-r", server, "--json", *more)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["offset"]["offset_ns"]


def _records(path: Path) -> tuple[bytes, list[bytearray]]:
    """A classic pcap's header and its records (header and data each)."""
    data = path.read_bytes()
    out, p = [], 24
    while p < len(data):
        size = int.from_bytes(data[p + 8 : p + 12], "little")
        out.append(bytearray(data[p : p + 16 + size]))
        p += 16 + size
    return data[:24], out


def _write(path: Path, head: bytes, records: list[bytearray]) -> Path:
    path.write_bytes(head + b"".join(records))
    return path


def data_frames(capture: Path, direction: str, stream: int) -> list[int]:
    return [
        i.number
        for i in Dissection(str(capture), tcp_analysis=False)
        if i.packet is not None
        and i.packet.payload_len
        and i.from_client is (direction == "client")
        and i.tcp_stream == stream
    ]


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's capture with its clock 3 s ahead: the pairing's estimated offset takes it out."""
    head, records = _records(SERVER)
    assert head[:4] == bytes.fromhex("d4c3b2a1")  # microseconds, little-endian
    for r in records:
        r[0:4] = (int.from_bytes(r[0:4], "little") + 3).to_bytes(4, "little")
    return _write(tmp_path_factory.mktemp("shifted") / "server.pcap", head, records)


@pytest.mark.parametrize("direction", ["client", "server"])
@pytest.mark.parametrize("server", ["direct", "shifted"])
def test_owd_points_are_the_pair_fields(direction: str, server: str, shifted: Path) -> None:
    """Each point is a segment the direction's sender sent, at its frame.time_relative in the
    sender's capture, its mptcp.pair.owd in ms, in its tcp.stream's series; every data segment of
    the direction has one."""
    srv = SERVER if server == "direct" else shifted
    sender, receiver = (CLIENT, srv) if direction == "client" else (srv, CLIENT)
    fields = pair_fields(sender, receiver)
    got = rows("owd", "-r", CLIENT, "-r", srv, "--direction", direction)
    points = [r for r in got if r["role"] == "owd"]
    assert {r["role"] for r in got} == {"owd"}  # nothing lost, nothing changed
    mine = sent_by(sender, direction)
    for r in points:
        f = fields[int(r["frame"])]
        assert int(r["frame"]) in mine, r
        assert r["style"] == "points" and r["series"] == f"subflow {r['subflow']}"
        assert r["subflow"] == f["tcp.stream"], r
        assert f["mptcp.pair.owd"] != "", r
        assert round(float(r["value"]) * 1e6) == ns(f["mptcp.pair.owd"]), r
        assert round(float(r["time"]) * 1e9) == ns(f["frame.time_relative"]), r
    drawn = {int(r["frame"]) for r in points}
    data = {n for n in mine if fields[n]["tcp.len"] not in ("", "0")}
    assert data and data <= drawn
    with_owd = {n for n in mine if fields[n]["mptcp.pair.owd"]}
    assert drawn <= with_owd and len(with_owd - drawn) <= 2  # the handshake before the connection is numbered
    assert len({r["subflow"] for r in points}) == 2


def test_shifted_clock_changes_no_delay(shifted: Path) -> None:
    """The server's clock 3 s ahead: the estimated offset is 3 s more, the delays the same."""
    assert offset_ns(CLIENT, shifted) - offset_ns(CLIENT, SERVER) == 3_000_000_000
    for direction in ("client", "server"):
        a = rows("owd", "-r", CLIENT, "-r", SERVER, "--direction", direction)
        b = rows("owd", "-r", CLIENT, "-r", shifted, "--direction", direction)
        assert [(r["frame"], r["value"]) for r in a] == [(r["frame"], r["value"]) for r in b]


def test_captures_given_server_first() -> None:
    """-r SERVER -r CLIENT: the pairing finds which is which; the plot is the same."""
    for direction in ("client", "server"):
        a = rows("owd", "-r", CLIENT, "-r", SERVER, "--direction", direction)
        b = rows("owd", "-r", SERVER, "-r", CLIENT, "--direction", direction)
        assert a == b


def test_given_offset() -> None:
    """--offset: the delays are those of dissect --pair-offset (the offset taken out as given)."""
    fields = pair_fields(CLIENT, SERVER, "--pair-offset", "0.25")
    got = [r for r in rows("owd", "-r", CLIENT, "-r", SERVER, "--offset", "0.25") if r["role"] == "owd"]
    assert got
    for r in got:
        assert round(float(r["value"]) * 1e6) == ns(fields[int(r["frame"])]["mptcp.pair.owd"]), r
        assert float(r["value"]) < -249  # about -250 ms: the clocks are in fact together


def test_lost_segments_are_markers(tmp_path: Path) -> None:
    """Three of the client's data segments cut from the server's capture: each is a ``lost`` marker
    (the frames dissect --pair-with says mptcp.pair.lost), at its subflow's last delay."""
    head, records = _records(SERVER)
    cut = set(data_frames(SERVER, "client", 1)[5:8])
    server = _write(tmp_path / "server.pcap", head, [r for n, r in enumerate(records, 1) if n not in cut])
    fields = pair_fields(CLIENT, server)
    lost = {n for n, f in fields.items() if f["mptcp.pair.lost"] == "1"}
    assert len(lost) == 3
    got = rows("owd", "-r", CLIENT, "-r", server)
    markers = [r for r in got if r["role"] == "lost"]
    assert {int(r["frame"]) for r in markers} == lost
    for m in markers:
        assert (
            m["style"] == "markers" and m["label"] == "lost" and m["subflow"] == fields[int(m["frame"])]["tcp.stream"]
        )
        before = [
            r
            for r in got
            if r["role"] == "owd" and r["subflow"] == m["subflow"] and float(r["time"]) < float(m["time"])
        ]
        assert m["value"] == before[-1]["value"], m
    # a lost segment is no owd point
    assert not lost & {int(r["frame"]) for r in got if r["role"] == "owd"}


def test_changes_on_the_way_are_markers(tmp_path: Path) -> None:
    """Two of the client's segments arrive at the server with another TCP checksum (a middlebox
    rewrote it): a marker at each, named by its mptcp.pair.changes."""
    head, records = _records(SERVER)
    picked = data_frames(SERVER, "client", 0)[3:8:4]
    for n in picked:
        r = records[n - 1]
        ip = 16 + 16  # the record's header, then Linux cooked capture (SLL)
        assert int.from_bytes(head[20:24], "little") == 113 and r[ip] >> 4 == 4
        at = ip + (r[ip] & 15) * 4 + 16  # the TCP checksum
        r[at] ^= 0xFF
    server = _write(tmp_path / "server.pcap", head, records)
    fields = pair_fields(CLIENT, server)
    changed = {n: f["mptcp.pair.changes"] for n, f in fields.items() if f["mptcp.pair.changes"]}
    assert len(changed) == 2
    got = [r for r in rows("owd", "-r", CLIENT, "-r", server) if r["role"] == "changes"]
    assert {int(r["frame"]): r["label"] for r in got} == changed
    for r in got:
        assert round(float(r["value"]) * 1e6) == ns(fields[int(r["frame"])]["mptcp.pair.owd"])


@pytest.mark.parametrize("direction", ["client", "server"])
@pytest.mark.parametrize("server", ["direct", "shifted"])
def test_dsn_arrivals_on_the_senders_clock(direction: str, server: str, shifted: Path) -> None:
    """Paired dsn: the sender's bars as the one-capture plot draws them; each bar's data arrives at
    the receiver (its mptcp.pair.peer_frame) at the receiver's time, less the offset client to
    server (plus it server to client), from the sender's first frame; its data is in order there
    mptcp.pair.ooo_delay later."""
    srv = SERVER if server == "direct" else shifted
    sender, receiver = (CLIENT, srv) if direction == "client" else (srv, CLIENT)
    offset = offset_ns(CLIENT, srv)
    shift = offset if direction == "client" else -offset
    at_sender, at_receiver = pair_fields(sender, receiver), pair_fields(receiver, sender)
    got = rows("dsn", "-r", CLIENT, "-r", srv, "--direction", direction)
    alone = rows("dsn", "-r", sender, "--direction", direction)
    assert [r for r in got if r["role"] not in ("arrival", "in_order")] == alone
    first = ns(at_sender[1]["frame.time_epoch"])
    bars = {int(r["frame"]): r for r in got if r["style"] == "bars"}
    arrivals = [r for r in got if r["role"] == "arrival"]
    assert len(arrivals) == len(bars)  # nothing lost
    by_frame = {}
    for r in arrivals:
        frame = int(r["frame"])  # the receiver's
        f = at_receiver[frame]
        sent = bars[int(f["mptcp.pair.peer_frame"])]
        assert at_sender[int(sent["frame"])]["mptcp.pair.peer_frame"] == str(frame)
        assert r["value"] == sent["value2"], r  # the end of its data
        assert round(float(r["time"]) * 1e9) == ns(f["frame.time_epoch"]) - shift - first, r
        assert r["subflow"] == "" and r["style"] == "points"
        by_frame[frame] = r
    steps = [r for r in got if r["role"] == "in_order"]
    assert steps and steps[-1]["value"] == max((r["value2"] for r in bars.values()), key=float)
    ends = [float(r["value"]) for r in steps]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)
    for r in steps:
        f = at_receiver[int(r["frame"])]
        arrived = round(float(by_frame[int(r["frame"])]["time"]) * 1e9)
        assert round(float(r["time"]) * 1e9) == arrived + ns(f["mptcp.pair.ooo_delay"]), r
    if direction == "client":  # the client's data waited out of order at the server
        assert any(at_receiver[int(r["frame"])]["mptcp.pair.ooo_delay"] not in ("", "0.000000000") for r in steps)


def test_python_api_csv_page_image(tmp_path: Path) -> None:
    """paired() and owd_plot() make what the command writes: the CSV to a file, the page, an image."""
    pairing = pair_captures(str(CLIENT), str(SERVER))
    pair = paired(pairing, 0, "server")
    assert pair.given == 1 and pair.stream == 0 and pair.receiver_role == "client"
    plot = owd_plot(Dissection(str(SERVER), tcp_analysis=False), pair)
    assert plot.kind == "owd" and plot.ylabel == "one-way delay (ms)"
    assert {s.style for s in plot.series} == {Style.POINTS} and [s.group for s in plot.series] == [0, 1]
    out = tmp_path / "owd.csv"
    r = cli("plot", "owd", "-r", CLIENT, "-r", SERVER, "--direction", "server", "-o", out)
    assert r.returncode == 0, r.stderr
    buf = io.StringIO()
    write_csv(plot, buf)
    assert out.read_text() == buf.getvalue()
    for kind in ("owd", "dsn"):
        page = tmp_path / f"{kind}.html"
        r = cli("plot", kind, "-r", CLIENT, "-r", SERVER, "-o", page)
        assert r.returncode == 0, r.stderr
        text = page.read_text()
        assert "http://" not in text and "https://" not in text
        assert ("one-way delay" if kind == "owd" else "arrival at the server") in text
    pytest.importorskip("matplotlib") if not in_ci() else None
    import matplotlib.image

    for kind in ("owd", "dsn"):
        png = tmp_path / f"{kind}.png"
        r = cli("plot", kind, "-r", CLIENT, "-r", SERVER, "-o", png, "--size", "6x4")
        assert r.returncode == 0, r.stderr
        assert matplotlib.image.imread(png).shape[:2] == (400, 600)


def test_usage_and_pairing_errors(tmp_path: Path) -> None:
    """Two captures where one is read, one where two are needed: usage errors (2); captures that
    cannot be paired: the pairing's reason and status 3, never a traceback."""
    loss = ROOT / "tests" / "data" / "v4-loss.pcap"
    png = tmp_path / "x.png"
    for args, code, said in [
        (("owd", "-r", CLIENT), 2, "plot owd needs both captures: -r CLIENT_CAPTURE -r SERVER_CAPTURE"),
        (("tput", "-r", CLIENT, "-r", SERVER), 2, "plot tput reads one capture: give -r once"),
        (("dsn", "-r", CLIENT, "-r", SERVER, "-r", CLIENT), 2, "plot dsn reads one capture"),
        (("dsn", "-r", CLIENT, "--offset", "1"), 2, "--offset goes with two captures"),
        (("owd", "-r", "-", "-r", SERVER), 2, "standard input cannot be one of them"),
        (("owd", "-r", CLIENT, "-r", CLIENT), 3, "are the same capture"),
        (("owd", "-r", CLIENT, "-r", loss), 3, "share no connection"),
        (("dsn", "-r", loss, "-r", SERVER), 3, "share no connection"),
        (("owd", "-r", CLIENT, "-r", SERVER, "--stream", "4"), 3, "no MPTCP stream 4 paired (paired: 0)"),
        (("owd", "-r", CLIENT, "-r", tmp_path / "none.pcap"), 3, "none.pcap: no such file"),
        (("owd", "-r", CLIENT, "-r", SERVER, "--offset", "x"), 2, "a number of seconds"),
    ]:
        r = cli("plot", *args, "-o", png)
        assert r.returncode == code and said in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert not png.exists()
