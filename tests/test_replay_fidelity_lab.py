"""--report-fidelity against the Linux kernel's MPTCP server, in the lab: a committed capture
replayed with --timing as-captured keeps every segment's size and subflow, and its schedule error
is measured (no timing threshold: the machine may be busy)."""

from __future__ import annotations

import json
import math
import sys

import pytest

from lab import Lab, expected, need_lab
from mptcpspec.replay.plan import make_plan
from tests.conftest import DATA

pytestmark = pytest.mark.lab

CAPTURE = "v4-two-subflows.pcap"


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft"))


def _replay(lab: Lab, *extra: str):
    return lab.run(
        "client",
        sys.executable,
        "-m",
        "mptcpspec",
        "replay",
        "-r",
        str(DATA / CAPTURE),
        "--target",
        "198.51.100.2",
        "--timeout",
        "5",
        "--timing",
        "as-captured",
        "--report-fidelity",
        *extra,
        check=False,
        timeout=60,
    )


def test_as_captured_replay_keeps_sizes_and_subflows_and_measures_its_schedule():
    plan = make_plan(DATA / CAPTURE)
    per: dict[int, int] = {}
    for seg in plan.segments:
        per[seg.subflow] = per.get(seg.subflow, 0) + len(seg.data)
    assert len(per) == 2
    with Lab() as lab:
        srv = lab.serve(reply=32768, timeout=30)
        r = _replay(lab, "--json")
        assert r.returncode == 0, r.stderr[-2000:]
        assert srv.result(timeout=10)["sha256"] == expected(32768, 0)["sha256"]
        f = json.loads(r.stdout)["fidelity"]
        sizes = f["sizes"]
        assert sizes["kept"] == sizes["captured"]["count"] == sizes["live"]["count"] == len(plan.segments)
        assert sizes["captured"] == sizes["live"] and (sizes["split"], sizes["merged"], sizes["unsent"]) == (0, 0, 0)
        assert [(s["index"], s["captured"], s["live"]) for s in f["subflows"]] == [
            (i, n, n) for i, n in sorted(per.items())
        ]
        assert f["moved"] == [] and f["moved_octets"] == 0
        sched = f["schedule"]
        assert sched["packets"] == len(plan.segments) and f["timing"] == "as-captured"
        assert all(math.isfinite(sched[k]) for k in ("median", "p99", "max", "min"))
        assert sched["min"] <= sched["median"] <= sched["p99"] <= sched["max"]

        # the same in words, after the report
        srv = lab.serve(reply=32768, timeout=30)
        r = _replay(lab, "-q")
        assert r.returncode == 0, r.stderr[-2000:]
        srv.result(timeout=10)
        text = r.stdout
        assert "fidelity (what was sent against the capture)" in text
        n = len(plan.segments)
        assert f"{n} of {n} kept their size; 0 split, 0 merged, 0 not (all) sent" in text
        assert "0 octets first sent on another subflow than captured" in text
        assert f"schedule  error over {n} data packets: median" in text
