"""``mptcpspec table`` and ``mptcpspec sql``: a capture split into many files gives the tables of
the whole capture, the packet table is ``dissect -T fields``, and the cookbook's queries give the
analysis' own answers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mptcpspec.dissect import planner
from mptcpspec.tables import KINDS, write_tables
from mptcpspec.tables.extract import Archive
from mptcpspec.tables.schema import PACKET_FIELDS
from mptcpspec.tables.sql import run_sql
from tests.conftest import DATA, need_wireshark
from tests.dissect_helpers import cli

pq = pytest.importorskip("pyarrow.parquet", reason="the tables extra (pyarrow) is not installed")

PIECES = (2, 7, 50)
#: the per-connection and per-frame tables, compared without the file columns (which differ by design)
COMPARED = ("connections", "subflows", "reinjections", "checks", "mappings", "experts", "events")


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """Two lab captures one after the other (249 frames): a blackholed subflow's reinjections and a
    clean two-subflow transfer."""
    out = tmp_path_factory.mktemp("whole") / "whole.pcap"
    subprocess.run(
        [need_wireshark("mergecap"), "-a", "-F", "pcap", "-w", str(out),
         str(DATA / "v4-reinjection.pcap"), str(DATA / "v4-add-addr.pcap")],
        check=True,
    )  # fmt: skip
    return out


def split(whole: Path, files: int, folder: Path) -> list[str]:
    """The capture cut into ``files`` pieces of nearly equal frames (``editcap -r``, frame ranges),
    through handshakes and mappings."""
    frames = sum(1 for _ in open_frames(whole))
    folder.mkdir(parents=True, exist_ok=True)
    pieces = []
    for k in range(files):
        first, last = k * frames // files + 1, (k + 1) * frames // files
        piece = folder / f"piece-{k:03d}.pcap"
        subprocess.run([need_wireshark("editcap"), "-r", str(whole), str(piece), f"{first}-{last}"], check=True)
        pieces.append(str(piece))
    return pieces


def open_frames(path: Path):
    from mptcpspec.capture.pcap import read_records

    return read_records(path)


def rows(folder: Path, kind: str, drop: tuple[str, ...] = ("file", "file_frame")) -> list[dict]:
    t = pq.read_table(folder / kind)
    return [{k: v for k, v in r.items() if k not in drop} for r in t.to_pylist()]


@pytest.mark.parametrize("files", PIECES)
def test_pieces_give_the_whole(whole, tmp_path, files):
    one = tmp_path / "one"
    write_tables([str(whole)], str(one))
    pieces = split(whole, files, tmp_path / "pieces")
    many = tmp_path / "many"
    run = write_tables(pieces, str(many))
    assert [r.file for r in run.reads] == pieces and all(r.whole for r in run.reads)
    for kind in COMPARED:
        assert rows(many, kind) == rows(one, kind), kind
    assert rows(one, "connections") and rows(one, "reinjections") and rows(one, "events")
    # the file columns say where each frame came from
    got = pq.read_table(many / "packets").to_pylist()
    assert {r["file"] for r in got} == set(pieces)
    starts, n = {}, 0
    for r in run.reads:
        starts[r.file] = n
        n += r.frames
    assert all(r["frame"] == starts[r["file"]] + r["file_frame"] for r in got)


def test_packets_are_dissect_fields(whole, tmp_path):
    pieces = split(whole, 7, tmp_path / "pieces")
    write_tables(pieces, str(tmp_path / "t"))
    fields = ["frame.number", *PACKET_FIELDS]
    r = cli("dissect", "-r", str(whole), "-T", "fields", *(a for f in fields for a in ("-e", f)))
    assert r.returncode == 0, r.stderr
    want = [line.split("\t") for line in r.stdout.splitlines()]
    got = pq.read_table(tmp_path / "t" / "packets").to_pylist()
    cols = [f.replace(".", "_") for f in PACKET_FIELDS]
    assert [[str(g["frame"]), *("" if g[c] is None else g[c] for c in cols)] for g in got] == want


def test_cookbook_answers(tmp_path):
    """The reinjection capture: the reinjected octets are the analysis' own count; the subflows
    and the handshake checks are those of connections --json."""
    folder = tmp_path / "t"
    write_tables([str(DATA / "v4-reinjection.pcap")], str(folder))
    summary = json.loads(cli("connections", "-r", str(DATA / "v4-reinjection.pcap"), "--json").stdout)
    q = run_sql(
        str(folder),
        "SELECT stream, sum(length) AS octets FROM (SELECT DISTINCT stream, frame, length FROM reinjections) "
        "GROUP BY stream",
    )
    assert q.rows == [(0, summary["client_reinjected"])] and summary["client_reinjected"] > 0
    q = run_sql(str(folder), "SELECT tcp_stream, kind FROM subflows ORDER BY tcp_stream")
    assert q.rows == [(s["tcp_stream"], s["kind"]) for s in summary["subflows"]]
    q = run_sql(str(folder), "SELECT what, verdict, count(*) FROM checks GROUP BY what, verdict ORDER BY what")
    assert sorted(q.rows) == sorted((c["what"], c["verdict"], c["count"]) for c in summary["checks"])


@pytest.mark.parametrize("files", PIECES)
def test_first_pass_over_the_files_is_the_pythons(whole, tmp_path, files, monkeypatch):
    """``table --workers``' first pass: the compiled one, file after file, plans as the Python one
    reading the archive as one capture; where a file is damaged, the Python pass plans."""
    fast = planner.firstpass_module()
    if fast is None:
        pytest.skip("the compiled first pass is not built (or MPTCPSPEC_PURE is set)")
    made = []

    def first_pass(*a, **kw):
        made.append(1)
        return fast.FirstPass(*a, **kw)

    compiled = type(fast)("counted")
    compiled.__dict__.update(weights=fast.weights, owners=fast.owners, FirstPass=first_pass)
    monkeypatch.setattr(planner, "firstpass_module", lambda: compiled)
    pieces = split(whole, files, tmp_path / "pieces")
    for jobs in (2, 3):
        want = planner.plan_shares(Archive(pieces), jobs, compiled=False)
        assert want.shares == 2  # the two connections
        made.clear()
        assert planner.plan_shares(Archive(pieces), jobs, files=pieces) == want
        assert made == [1]
    # a piece cut in the middle of a record: the Python pass reads the archive, and plans as it does
    cut = tmp_path / "pieces" / "cut.pcap"
    data = Path(pieces[-1]).read_bytes()
    cut.write_bytes(data[: len(data) - 7])
    damaged = [*pieces[:-1], str(cut)]
    assert planner.plan_shares(Archive(damaged), 2, files=damaged) == planner.plan_shares(
        Archive(damaged), 2, compiled=False
    )


def test_damaged_file_in_the_archive(tmp_path, whole):
    pieces = split(whole, 2, tmp_path / "pieces")[:2]
    bad = tmp_path / "pieces" / "piece-bad.pcap"
    bad.write_bytes(b"this is no capture" * 4)
    order = [pieces[0], str(bad), pieces[1]]
    r = cli("table", "-r", *order, "-o", str(tmp_path / "t"))
    assert r.returncode == 1 and f"{bad}:" in r.stderr and "Traceback" not in r.stderr
    described = json.loads((tmp_path / "t" / "_mptcpspec.json").read_text())
    assert [(f["file"], f["whole"]) for f in described["files"]] == [
        (pieces[0], True),
        (str(bad), False),
        (pieces[1], True),
    ]
    stop = cli("table", "-r", *order, "-o", str(tmp_path / "t2"), "--on-error", "stop")
    assert stop.returncode == 3 and "--on-error stop" in stop.stderr


def test_cli_table_and_sql(tmp_path):
    out = tmp_path / "t"
    r = cli("table", "-r", str(DATA / "v4-*.pcap"), "-o", str(out), "--tables", "connections,packets",
            "--fields", "tcp.stream,tcp.len")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["_mptcpspec.json", "connections", "packets"]
    q = cli("sql", str(out), "SELECT count(*) AS n FROM connections", "--format", "csv")
    assert q.returncode == 0 and q.stdout.splitlines()[0] == "n" and int(q.stdout.splitlines()[1]) > 5
    q = cli("sql", str(out), "SELECT tcp_len FROM packets LIMIT 1", "--format", "json")
    assert json.loads(q.stdout) == {"tcp_len": "0"}
    bad = cli("sql", str(out), "SELECT nothing FROM nowhere")
    assert bad.returncode == 3 and "SQL:" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("sql", str(tmp_path), "SELECT 1").returncode == 3
    unknown = cli("table", "-r", str(DATA / "v4-tfo.pcap"), "-o", str(tmp_path / "u"), "--tables", "nothing")
    assert unknown.returncode == 3 and "no table 'nothing'" in unknown.stderr
    listed = cli("table", "--list").stdout
    assert all(f"{k}:" in listed for k in KINDS)


def test_join_delay_query_is_tsharks(tmp_path):
    """The cookbook's MP_JOIN delay after MP_CAPABLE, on the two-subflow capture: tshark's times of
    the two SYNs."""
    folder = tmp_path / "t"
    write_tables([str(DATA / "v4-two-subflows.pcap")], str(folder))
    page = (Path(__file__).resolve().parent.parent / "docs" / "tables.md").read_text()
    query = next(line for line in page.splitlines() if "join_after_ms" in line and line.startswith("$ mptcpspec sql"))
    query = query.split('"', 1)[1].rsplit('"', 1)[0]
    got = run_sql(str(folder), query).rows
    out = subprocess.run(
        [need_wireshark("tshark"), "-n", "-r", str(DATA / "v4-two-subflows.pcap"), "-Y",
         "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields", "-e", "tcp.stream", "-e", "frame.time_epoch"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    syn = {int(out[i]): float(out[i + 1]) for i in range(0, len(out), 2)}
    want = [(0, s, round((syn[s] - syn[0]) * 1000, 3)) for s in sorted(syn) if s != 0]
    assert [(a, b, c) for a, b, c in got] == want and want
