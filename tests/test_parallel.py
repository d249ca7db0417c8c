"""``dissect -j N``: the rows of N worker processes are the rows of one process, octet for octet.

Every committed capture is read alone and merged with others (their frames interleaved in time, so
that every frame's neighbours are another connection's); each is dissected by one process and by
two and three workers, with several field sets (the benchmark's 15, the frame and stream times, the
TCP analysis, the MPTCP options, and every field at once), and the outputs and read outcomes are
compared.  The merged captures must really be shared (the first pass says why not, where not).
Where the compiled hot path was built, the tests that take ``mode`` run on both builds' ways: the
compiled first pass, workers on the compiled engine told to take only their share, the compiled
merge; and the pure-Python ones (as ``MPTCPSPEC_PURE=1`` runs them).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_dissect import FIELDS as BENCH_FIELDS
from mptcpspec.capture.pcap import CaptureReader, Frame
from mptcpspec.capture.stream import open_input
from mptcpspec.capture.writer import CaptureWriter
from mptcpspec.cli import main
from mptcpspec.dissect import hotpath, parallel, planner, reading
from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.filters import compile_filter
from mptcpspec.dissect.hotpath import MODE
from mptcpspec.dissect.outcome import ReadOutcome
from mptcpspec.dissect.parallel import ShareDissection, ShareMismatch, dissect_parallel, plan_shares
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.reading import dissect_capture
from mptcpspec.dissect.tcpfields import needs_tcp_analysis
from mptcpspec.dissect.writers import FieldsWriter
from tests.conftest import CAPTURES, DATA, ROOT

ENCAP = tuple(sorted((DATA / "encap").glob("*.pcap")))
STRAYS = tuple(sorted((DATA / "strays").glob("*.pcap")))
EVERY = (*CAPTURES, *ENCAP, *STRAYS)

TIMES = [
    "frame.number",
    "frame.time_epoch",
    "frame.time_relative",
    "frame.time_delta",
    "frame.time_delta_displayed",
    "tcp.time_relative",
    "tcp.time_delta",
    "tcp.stream",
    "mptcp.stream",
]
TCP_ANALYSIS = ["frame.number", "tcp.stream", *(n for n in FIELDS if n.startswith("tcp.analysis"))]
OPTIONS = ["tcp.stream", "mptcp.stream", *(n for n in FIELDS if n.startswith(("tcp.options", "mptcp.")))]
FIELD_SETS = {
    "bench": list(BENCH_FIELDS),
    "times": TIMES,
    "tcp-analysis": TCP_ANALYSIS,
    "options": OPTIONS,
    "all": list(FIELDS),
}
MODES = ("compiled", "pure") if MODE == "compiled" else ("pure",)
#: captures merged with each other one: their ports are their own
PARTNERS = (DATA / "v4-tfo.pcap", DATA / "v4-checksum.pcap", DATA / "v4-fastclose.pcap")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The build's way ("compiled") or the pure-Python way, here and in the workers forked from here."""
    if request.param == "pure":
        for module, name in ((parallel, "fields_engine"), (reading, "fields_engine"), (parallel, "firstpass_module")):
            monkeypatch.setattr(module, name, lambda *args: None)
        monkeypatch.setattr(planner, "firstpass_module", lambda: None)
    return str(request.param)


def single(path: Path, fields: list[str], *, options=None, filter_text=None) -> tuple[str, ReadOutcome]:
    """What one process writes, and how its read ended."""
    out = io.StringIO()
    writer = FieldsWriter(out, fields, options)
    keep = compile_filter(filter_text) if filter_text else None
    with open_input(str(path)) as f:
        d = Dissection(f, tcp_analysis=needs_tcp_analysis(fields, filter_text))
        result = dissect_capture(d, writer=writer, keep=keep)
    return out.getvalue(), result


def shared(
    path: Path, fields: list[str], jobs: int, *, options=None, filter_text=None, sparing=False
) -> tuple[str, ReadOutcome | None]:
    """What ``jobs`` workers write (the header as the command writes it first), and how the read
    ended (None: one process must read it, and nothing was written but the header).  Shared even
    where one process is faster (``sparing`` False): small captures too, and the workers run the
    compiled hot path where it was built and takes the fields."""
    out = io.StringIO()
    writer = FieldsWriter(out, fields, options)
    keep = compile_filter(filter_text) if filter_text else None
    result = dissect_parallel(
        str(path),
        writer,
        jobs,
        keep=keep,
        filter_text=filter_text,
        tcp_analysis=needs_tcp_analysis(fields, filter_text),
        sparing=sparing,
    )
    return out.getvalue(), result


def merge(paths, target: Path, *, step_ns: int = 1_000_003, snap: int | None = None) -> Path:
    """The frames of ``paths`` in one pcapng file, each capture's moved to start ``step_ns`` after
    the previous one's start, so that their frames interleave; ``snap``: each frame cut to that
    many octets, as a snapshot length cuts them."""
    frames: list[tuple[int, int, int, Frame]] = []
    for i, path in enumerate(paths):
        got = list(CaptureReader(str(path)).frames())
        start = got[0][0]
        for k, (ts, linktype, data, orig_len, _, truncated) in enumerate(got):
            moved = 1_700_000_000_000_000_000 + i * step_ns + ts - start
            frames.append((moved, i, k, (moved, linktype, data[:snap], orig_len, i, truncated)))
    frames.sort()
    with open(target, "wb") as f, CaptureWriter(f, "pcapng") as w:
        w.write_many(frame for *_, frame in frames)
    return target


def partners(path: Path) -> list[Path]:
    return [p for p in PARTNERS if p != path][:2]


_SINGLE: dict[tuple, tuple[str, ReadOutcome]] = {}


def assert_same(path: Path, fields: list[str], jobs: int, **kw) -> ReadOutcome | None:
    """The workers' rows and outcome are one process's; None where one process must read it."""
    text, result = shared(path, fields, jobs, **kw)
    if result is None:
        assert text == "" or text.count("\n") == 1  # nothing but the header
        return None
    args = {k: v for k, v in kw.items() if k != "sparing"}
    compiled = reading.fields_engine is hotpath.fields_engine
    key = (path, path.stat().st_mtime_ns, tuple(fields), repr(sorted(args.items())), compiled)
    if key not in _SINGLE:
        _SINGLE.clear()  # one capture at a time
        _SINGLE[key] = single(path, fields, **args)
    one_text, one = _SINGLE[key]
    assert result == one
    assert text == one_text
    return result


def name(p: Path) -> str:
    return str(p.relative_to(DATA))


# --------------------------------------------------------------------------- every capture


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_every_capture_alone(path: Path) -> None:
    """A capture of one connection has nothing to share: one process reads it (the same rows)."""
    for fields, jobs in (("bench", 2), ("all", 2), ("all", 3)):
        assert_same(path, FIELD_SETS[fields], jobs)


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_every_capture_merged_with_others(path: Path, tmp_path: Path, mode: str) -> None:
    """Merged with two others: shared, and the rows are one process's.  The field sets that take
    each way through the dissector: the compiled path where built (bench), the Python path without
    the TCP analysis (options) and with it (all: the times and the TCP analysis among them)."""
    merged = merge([path, *partners(path)], tmp_path / "merged.pcapng")
    for fields, jobs in (("bench", 2), ("bench", 3), ("options", 2), ("all", 2), ("all", 3)):
        plan = plan_shares(str(merged), jobs)
        result = assert_same(merged, FIELD_SETS[fields], jobs)
        if path.name == "v4-add-addr-no-keys.pcap":  # its subflow's handshake is not in it
            assert plan.shares == 1 and "handshake was not seen" in (plan.why or "")
            assert result is None
        else:
            assert plan.shares == jobs, plan
            assert result is not None, plan.why


def test_many_connections(tmp_path: Path, mode: str) -> None:
    """Every committed kernel capture in one: many connections, two and three subflows each."""
    merged = merge([*CAPTURES, *STRAYS[1:]], tmp_path / "many.pcapng", step_ns=250_000)
    plan = plan_shares(str(merged), 3)
    assert plan.shares == 3 and plan.why is None
    assert len(plan.numbered) >= 10 and len(plan.tcp_starts) >= 20
    for fields in FIELD_SETS.values():
        for jobs in (2, 3):
            assert assert_same(merged, fields, jobs) is not None
    assert assert_same(merged, BENCH_FIELDS, 5) is not None


@pytest.mark.parametrize("snap", [54, 60, 68, 80, 96, 120])
def test_cut_by_the_snapshot_length(snap: int, tmp_path: Path, mode: str) -> None:
    merged = merge([*CAPTURES, *STRAYS[1:]], tmp_path / "cut.pcapng", step_ns=250_000, snap=snap)
    plan = plan_shares(str(merged), 2)
    for fields in ("bench", "all"):
        result = assert_same(merged, FIELD_SETS[fields], 2)
        assert (result is None) == (plan.shares == 1), plan.why
    if snap in (54, 120):  # no MPTCP option captured at all, or every handshake's whole
        assert plan.shares == 2, plan.why
    else:  # a handshake's MPTCP options cut: the first pass cannot tell how it is linked
        assert "snapshot length" in (plan.why or "")


def test_the_first_pass_reads_the_common_segment_as_decoding_does(tmp_path: Path) -> None:
    merged = merge([*CAPTURES, *ENCAP, *STRAYS[1:]], tmp_path / "all.pcapng", step_ns=100_000)
    for jobs in (2, 4):
        quick, slow = plan_shares(str(merged), jobs), plan_shares(str(merged), jobs, quick=False)
        assert quick == slow
        assert quick.shares == jobs


def test_the_shares_are_balanced(tmp_path: Path) -> None:
    merged = merge([*CAPTURES, *STRAYS[1:]], tmp_path / "many.pcapng")
    plan = plan_shares(str(merged), 2)
    assert sum(plan.loads) == plan.frames == len(plan.owner)
    assert max(plan.loads) - min(plan.loads) <= max(150, plan.frames // 10), plan.loads
    assert [plan.owner.count(w) for w in range(plan.shares)] == list(plan.loads)


@pytest.mark.skipif(MODE != "compiled", reason="the compiled hot path is not built")
def test_the_compiled_engine_takes_only_its_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker of a compiled build: its engine analyses the frames of its share only (no frame of
    another share reaches the Python pipeline or makes a row), and its rows are one process's rows of
    those frames."""
    merged = merge([*CAPTURES, *STRAYS[1:]], tmp_path / "many.pcapng", step_ns=250_000)
    plan = plan_shares(str(merged), 3)
    rows = single(merged, BENCH_FIELDS)[0].splitlines(keepends=True)
    assert plan.shares == 3 and len(rows) == plan.frames
    real = ShareDissection.feed_frame

    def feed(self, number, frame):
        assert self.mine[number - 1], f"frame {number} is another share's"
        return real(self, number, frame)

    monkeypatch.setattr(ShareDissection, "feed_frame", feed)
    for share in range(plan.shares):
        out = io.StringIO()
        writer = FieldsWriter(out, BENCH_FIELDS)
        d = ShareDissection(str(merged), plan, share, tcp_analysis=False)
        engine = hotpath.fields_engine(d, writer)
        assert engine is not None
        engine.only(d.mine, d.skip)  # type: ignore[attr-defined]
        engine.run()
        writer.flush()
        d.finish()
        assert out.getvalue() == "".join(row for row, w in zip(rows, plan.owner) if w == share)


# --------------------------------------------------------------------------- settings and filters


@pytest.mark.parametrize(
    "options",
    [
        {"separator": ",", "aggregator": ";"},
        {"occurrence": "f"},
        {"occurrence": "l", "quote": "d"},
        {"quote": "s", "separator": "/s"},
        {"header": "y", "bom": "y"},
    ],
    ids=str,
)
def test_fields_settings(options, tmp_path: Path, mode: str) -> None:
    merged = merge([*CAPTURES[:4]], tmp_path / "m.pcapng")
    assert assert_same(merged, OPTIONS, 2, options=options) is not None


def test_rows_that_hold_newlines_are_left_to_one_process(tmp_path: Path) -> None:
    merged = merge([*CAPTURES[:3]], tmp_path / "m.pcapng")
    assert assert_same(merged, ["frame.number", "tcp.stream"], 2, options={"separator": "/n"}) is None


@pytest.mark.parametrize(
    "filter_text",
    ["tcp.len > 0", "mptcp.stream == 1", "tcp.analysis.retransmission or mptcp.expert", "not tcp", "frame.number < 0"],
)
def test_display_filters(filter_text: str, tmp_path: Path, mode: str) -> None:
    merged = merge([*CAPTURES[:5]], tmp_path / "m.pcapng")
    fields = [*TIMES[:4], *TIMES[5:], *TCP_ANALYSIS[2:6]]  # not frame.time_delta_displayed
    assert assert_same(merged, fields, 2, filter_text=filter_text) is not None


def test_the_last_frame_shown_needs_one_process(tmp_path: Path) -> None:
    merged = merge([*CAPTURES[:3]], tmp_path / "m.pcapng")
    assert assert_same(merged, TIMES, 2, filter_text="tcp.len > 0") is None
    assert assert_same(merged, ["frame.number"], 2, filter_text="frame.time_delta_displayed > 0") is None
    assert assert_same(merged, TIMES, 2) is not None  # without a filter, every frame is shown


def test_what_one_process_reads_faster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files (smaller still for a run the compiled hot path takes, where it was built), and a
    capture whose largest share would hold most frames, are left to one process."""
    small = merge([*CAPTURES, *STRAYS[1:]], tmp_path / "many.pcapng", step_ns=250_000)
    assert small.stat().st_size < parallel.MIN_SIZE
    assert shared(small, TCP_ANALYSIS, 2, sparing=True)[1] is None
    assert shared(small, TCP_ANALYSIS, 2)[1] is not None
    big = big_capture(tmp_path)
    assert assert_same(big, TCP_ANALYSIS, 2, sparing=True) is not None  # the Python path: shared
    assert big.stat().st_size < parallel.MIN_SIZE_COMPILED
    assert (shared(big, BENCH_FIELDS, 2, sparing=True)[1] is None) == (MODE == "compiled")
    monkeypatch.setattr(parallel, "MIN_SIZE_COMPILED", big.stat().st_size)
    assert assert_same(big, BENCH_FIELDS, 2, sparing=True) is not None  # large enough: shared
    # one connection again and again (its ports and keys each time), and a small one
    lopsided = merge(
        [*[DATA / "v4-two-subflows.pcap"] * 14, DATA / "v4-tfo.pcap"], tmp_path / "l.pcapng", step_ns=10**11
    )
    assert lopsided.stat().st_size >= parallel.MIN_SIZE
    plan = plan_shares(str(lopsided), 2)
    assert plan.shares == 2 and max(plan.loads) > parallel.MOST * plan.frames, plan.loads
    assert shared(lopsided, TCP_ANALYSIS, 2, sparing=True)[1] is None
    assert assert_same(lopsided, TCP_ANALYSIS, 2) is not None


# --------------------------------------------------------------------------- damage and failures


def test_damaged_captures(tmp_path: Path, mode: str) -> None:
    merged = merge([*CAPTURES[:6]], tmp_path / "m.pcapng")
    whole = merged.read_bytes()
    for cut in (len(whole) // 3, len(whole) // 2 + 7, len(whole) - 5):
        short = tmp_path / f"cut{cut}.pcapng"
        short.write_bytes(whole[:cut])
        result = assert_same(short, FIELD_SETS["bench"], 2)
        assert result is not None and result.damaged
    # a block length that breaks the framing in the middle of the file
    broken = bytearray(whole)
    at = len(whole) // 2
    at = whole.index(b"\x06\x00\x00\x00", at)  # an Enhanced Packet Block
    broken[at + 4 : at + 8] = b"\xff\xff\xff\x7f"
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(broken))
    result = assert_same(bad, TIMES, 2)
    assert result is not None and result.damage is not None


def test_not_a_capture_raises_as_one_process_does(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all" * 100)
    with pytest.raises(Exception) as one:
        single(junk, ["frame.number"])
    with pytest.raises(type(one.value), match=re.escape(str(one.value))):
        shared(junk, ["frame.number"], 2)


def test_a_worker_checks_the_first_pass(tmp_path: Path, mode: str) -> None:
    """A stream numbered otherwise than the first pass said drops the run (ShareMismatch)."""
    merged = merge([*CAPTURES[:4]], tmp_path / "m.pcapng")
    plan = plan_shares(str(merged), 2)
    frame, stream = next(iter(plan.tcp_starts.items()))
    wrong = parallel.Plan(
        plan.frames, plan.shares, plan.owner, {**plan.tcp_starts, frame: stream + 1}, plan.numbered, plan.loads
    )
    with pytest.raises(ShareMismatch):
        d = ShareDissection(str(merged), wrong, plan.owner[frame - 1])
        dissect_capture(d, writer=FieldsWriter(io.StringIO(), ["tcp.stream"]))
        d.finish()
    for share in range(plan.shares):  # as the first pass said, each share passes
        d = ShareDissection(str(merged), plan, share)
        dissect_capture(d, writer=FieldsWriter(io.StringIO(), ["tcp.stream"]))
        d.finish()
    if mode == "compiled":  # the engine of a worker, told which frames are its own
        with pytest.raises(ShareMismatch):
            d = ShareDissection(str(merged), wrong, plan.owner[frame - 1], tcp_analysis=False)
            engine = hotpath.fields_engine(d, FieldsWriter(io.StringIO(), ["tcp.stream"]))
            assert engine is not None
            engine.only(d.mine, d.skip)  # type: ignore[attr-defined]
            engine.run()
            d.finish()
        d = ShareDissection(str(merged), plan, 0, tcp_analysis=False)
        engine = hotpath.fields_engine(d, FieldsWriter(io.StringIO(), ["tcp.stream"]))
        assert engine is not None
        with pytest.raises(ShareMismatch, match="not of this share"):
            engine.run()  # not told: a frame of another share reaches the share's pipeline


def test_a_failing_worker_leaves_the_capture_to_one_process(tmp_path: Path, monkeypatch) -> None:
    merged = merge([*CAPTURES[:4]], tmp_path / "m.pcapng")

    def broken(self, number, frame):
        raise RuntimeError("a bug in a worker")

    monkeypatch.setattr(ShareDissection, "feed_frame", broken)
    text, result = shared(merged, ["frame.number"], 2)
    assert result is None and text == ""


# --------------------------------------------------------------------------- the command


def big_capture(tmp_path: Path) -> Path:
    """A capture of many connections larger than parallel.MIN_SIZE."""
    path = merge([*CAPTURES, *ENCAP], tmp_path / "big.pcapng", step_ns=50_000)
    assert path.stat().st_size >= parallel.MIN_SIZE
    return path


def run(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mptcpspec", "dissect", *args], capture_output=True, cwd=ROOT, env=env)


def test_the_command(tmp_path: Path) -> None:
    path = big_capture(tmp_path)
    assert plan_shares(str(path), 2).shares == 2
    e = [x for f in BENCH_FIELDS for x in ("-e", f)]
    env = {**os.environ, "MPTCPSPEC_PURE": "1"}  # the Python path: the workers run
    one = run("-r", str(path), "-T", "fields", *e, "-E", "header=y", env=env)
    assert one.returncode == 0 and one.stdout
    for jobs in ("2", "3", "0", "auto"):
        r = run("-r", str(path), "-T", "fields", *e, "-E", "header=y", "-j", jobs, env=env)
        assert (r.returncode, r.stdout, r.stderr) == (0, one.stdout, b"")
    r = run("-r", str(path), "-T", "fields", *e, "-j", "2")  # the compiled path, where built: one process
    assert (r.returncode, r.stdout, r.stderr) == (0, one.stdout.split(b"\n", 1)[1], b"")


def test_the_command_runs_the_workers(tmp_path: Path, capsysbinary, monkeypatch) -> None:
    """In the command itself: the workers ran (fields the compiled path leaves to Python)."""
    path = big_capture(tmp_path)
    ran: list[ReadOutcome | None] = []
    real = parallel.dissect_parallel

    def spy(*args, **kw):
        ran.append(real(*args, **kw))
        return ran[-1]

    monkeypatch.setattr(parallel, "dissect_parallel", spy)
    argv = ["dissect", "-r", str(path), "-T", "fields", *(x for f in TCP_ANALYSIS for x in ("-e", f))]
    assert main(argv) == 0
    one = capsysbinary.readouterr()
    assert main([*argv, "-j", "2"]) == 0
    assert ran and ran[0] is not None
    assert capsysbinary.readouterr() == one


def test_the_command_on_a_damaged_capture(tmp_path: Path) -> None:
    path = big_capture(tmp_path)
    whole = path.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    env = {**os.environ, "MPTCPSPEC_PURE": "1"}
    e = [x for f in TIMES for x in ("-e", f)]
    one = run("-r", str(cut), "-T", "fields", *e, env=env)
    two = run("-r", str(cut), "-T", "fields", *e, "-j", "2", env=env)
    assert one.returncode == 1 and b"offset" in one.stderr
    assert (two.returncode, two.stdout, two.stderr) == (one.returncode, one.stdout, one.stderr)


@pytest.mark.parametrize("bad", ["-1", "two", ""])
def test_jobs_refused(bad: str) -> None:
    r = run("-r", str(CAPTURES[0]), "-T", "fields", "-e", "frame.number", "-j", bad)
    assert r.returncode == 2 and b"-j" in r.stderr


def test_jobs_with_what_needs_one_process(tmp_path: Path) -> None:
    """-c, -z, --follow, -2, -w, text and JSON: one process, the same output as without -j."""
    path = big_capture(tmp_path)
    env = {**os.environ, "MPTCPSPEC_PURE": "1"}
    for args in (
        ["-T", "fields", "-e", "frame.number", "-c", "100"],
        ["-T", "fields", "-e", "mptcp.reinjected_in", "-2"],
        ["-q", "-z", "conv,mptcp"],
        ["-T", "json", "-c", "500"],
        ["-c", "300"],
    ):
        one = run("-r", str(path), *args, env=env)
        assert run("-r", str(path), *args, "-j", "2", env=env).stdout == one.stdout, args
