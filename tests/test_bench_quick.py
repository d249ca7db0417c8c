"""``bench/bench_dissect.py --quick``, the form CI runs: it prints its table, and the outputs that
must be byte-identical (ours, ``MPTCPSPEC_PURE=1``, ``-j 1``/``-j 2`` where ``dissect`` has ``-j``)
are; nothing about speed is asserted.

As root it makes its two small captures with the kernel lab (a bulk transfer, and the mixed capture
of ``lab/mixed.py``: 50 MPTCP connections at once, half with DSS checksums, 10 plain TCP); without
root that test skips, except with ``CI=true``, where it fails.  The form on the committed captures
runs anywhere tshark is.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from lab import TOOLS, need_lab
from lab.mixed import TOOLS as MIXED_TOOLS
from tests.conftest import ROOT, unavailable

BENCH = ROOT / "bench" / "bench_dissect.py"
MODES = (
    "tshark -T fields",
    "tshark -T fields, MPTCP analysis on",
    "mptcpspec dissect -T fields",
    "mptcpspec dissect -T fields, MPTCPSPEC_PURE=1",
    "mptcpspec connections",
)
JOBS = ("mptcpspec dissect -T fields -j 1", "mptcpspec dissect -T fields -j 2")
HEADER = "| capture | tool / mode | median s | packets/s | × tshark | peak RSS MB |"


def need_tshark() -> None:
    if shutil.which("tshark") is None:
        unavailable("tshark is not installed")


def quick(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, str(BENCH), "--quick", *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "FAILED" not in r.stderr
    return r.stdout


def rows(out: str, capture: str) -> dict[str, list[str]]:
    """mode -> the cells after it, of ``capture``'s rows of the table."""
    found = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith(capture + " ("):
            found[cells[1].strip("`")] = cells[2:]
    return found


def assert_identical(out: str, capture: str) -> str:
    """The capture's line saying what was compared; both groups were compared with the pure mode."""
    line = next(x for x in out.splitlines() if x.startswith(f"- {capture}: checked: "))
    assert "`mptcpspec dissect -T fields` alone = with MPTCPSPEC_PURE=1" in line
    assert "`mptcpspec connections` alone = with MPTCPSPEC_PURE=1" in line
    return line


def jobs_listed() -> bool:
    from bench.bench_dissect import has_jobs

    return has_jobs()


@pytest.mark.lab
def test_quick_makes_both_captures_with_the_lab() -> None:
    need_lab((*TOOLS, *MIXED_TOOLS))
    need_tshark()
    out = quick()
    assert HEADER in out
    bulk, mixed = "bulk-20k-snap200.pcap", "mixed-50mptcp-10tcp-max65536-seed1-snap128.pcapng"
    for capture in (bulk, mixed):
        got = rows(out, capture)
        assert set(MODES) <= set(got), got
        for mode in MODES:
            assert got[mode][0] != "n/a" and float(got[mode][0]) > 0, (mode, got[mode])
        assert_identical(out, capture)
    got = rows(out, mixed)
    if jobs_listed():
        assert all(got[m][0] != "n/a" for m in JOBS)
        assert "with -j 1 = with -j 2" in assert_identical(out, mixed)
    else:
        assert all(got[m] == ["n/a"] * 4 for m in JOBS)
    line = assert_identical(out, mixed)
    assert "50 MPTCP connections, 50 open at once, 25 with checksums" in line
    assert "10 plain TCP, all v1" in line
    assert "one MPTCP connection, two subflows carrying data" in assert_identical(out, bulk)
    assert "Targets (--quick" in out


def test_quick_on_the_committed_captures() -> None:
    need_tshark()
    out = quick("--committed")
    assert HEADER in out
    for capture in ("v4-two-subflows.pcap", "v6-two-subflows.pcap"):
        assert set(MODES) <= set(rows(out, capture))
        line = assert_identical(out, capture)
        if jobs_listed():
            assert "with -j 1 = with -j 2" in line


def test_a_difference_stops_the_bench(monkeypatch) -> None:
    """The comparison can fail: the pure mode printing one more octet is a BenchFailure."""
    from bench import bench_dissect as b

    def output(mode, env):
        return (b"1\t0\n" + (b"x" if mode.env else b""), b"")

    monkeypatch.setattr(b, "output", output)
    cap = b.Capture(ROOT / "tests" / "data" / "v4-two-subflows.pcap", "committed")
    with pytest.raises(b.BenchFailure, match="MPTCPSPEC_PURE=1 prints another stdout"):
        b.identical(cap, list(b.FIELDS), False, {})


def test_a_difference_between_job_counts_stops_the_bench(monkeypatch) -> None:
    """With -j, its outputs are compared too: -j 2 printing rows in another order is a BenchFailure."""
    from bench import bench_dissect as b

    def output(mode, env):
        two = mode.argv[-2:] == ["-j", "2"]
        return (b"2\t1\n1\t0\n" if two else b"1\t0\n2\t1\n", b"")

    monkeypatch.setattr(b, "output", output)
    cap = b.Capture(ROOT / "tests" / "data" / "v4-two-subflows.pcap", "committed")
    with pytest.raises(b.BenchFailure, match="with -j 2 prints another stdout"):
        b.identical(cap, list(b.FIELDS), True, {})
    monkeypatch.setattr(b, "output", lambda mode, env: (b"1\t0\n", b""))
    assert "with MPTCPSPEC_PURE=1 = with -j 1 = with -j 2" in b.identical(cap, list(b.FIELDS), True, {})[1]


def test_the_jobs_option_is_found_in_the_help() -> None:
    from bench.bench_dissect import lists_jobs

    assert lists_jobs("usage: mptcpspec dissect [-h] [-r FILE] [-j N]\n")
    assert lists_jobs("options:\n  -j N, --jobs N        worker processes\n")
    assert not lists_jobs("usage: mptcpspec dissect [-h] [-r FILE] [--no-verify]\n  -2  two passes (-jobs)\n")
