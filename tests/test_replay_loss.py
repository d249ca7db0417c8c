"""Loss recovery of the replay engine against the Linux kernel's MPTCP server, in the lab.

A 2 MB upload of the kernel's own client over two subflows is captured once; the lab's two paths
then drop 5 % of the TCP packets each way, at random (nftables, ``lab.loss.lossy_paths``), and
the replay of that capture must deliver the exact stream and close cleanly every time, with no
subflow reset after the close, in a time of the order of the kernel client's own in the same lab.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from lab import Lab, expected, need_lab
from lab.loss import lossy_paths
from mptcpspec.capture.packets import decode_frame
from mptcpspec.capture.pcap import read_records
from tests.test_replay_lab import replay as run_replay
from tests.test_replay_peer_lab import UPLOAD, upload  # noqa: F401  (the 2 MB two-subflow capture)

pytestmark = pytest.mark.lab

RUNS = 20


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft", "tc"))


def replay(lab: Lab, capture: Path) -> tuple[int, dict, float]:
    t = time.monotonic()
    code, report = run_replay(lab, capture, "198.51.100.2", "-q", wait="10", timeout=120)
    return code, report, time.monotonic() - t


def kernel_upload(lab: Lab, work: Path) -> float:
    """The kernel client's own 2 MB upload: seconds from its first SYN to the last packet of the
    connection, on a header-only capture in the client namespace (as bench_replay times it)."""
    path = work / "kernel.pcap"
    with lab.capture(path, snaplen=128, bpf="tcp", allow_drops=True):
        server = lab.serve(reply=0, timeout=60)
        lab.connect(size=UPLOAD, first=1000, chunk=65536, timeout=60).result(timeout=60)
        got = server.result(timeout=60)
    assert got["sha256"] == expected(UPLOAD)["sha256"]
    first = last = None
    for rec in read_records(path):
        pkt = decode_frame(rec.linktype, rec.data)
        if pkt is None:
            continue
        if first is None and int(pkt.flags) & 0x12 == 0x02:
            first = rec.timestamp_ns
        last = rec.timestamp_ns
    assert first is not None and last is not None
    return (last - first) / 1e9


def test_twenty_lossy_replays_in_a_row_deliver_exactly_and_close_cleanly(upload):  # noqa: F811
    """Both paths at 5 % loss each way: 20 runs, each delivering exactly the captured stream (the
    live server application reads it, byte for byte, and a clean EOF) and closing cleanly: both
    DATA_FINs and every subflow's FINs acknowledged, no reset after the close."""
    want = expected(UPLOAD)
    with Lab() as lab:
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        lossy_paths(lab, 5)
        lost = joined = 0
        for i in range(RUNS):
            srv = lab.serve(reply=0, timeout=60)
            code, report, _ = replay(lab, upload)
            assert code == 0 and report["ok"], (i, report["reason"], report["events"][-10:])
            server = srv.result(timeout=30)
            assert report["data_delivered"] == UPLOAD and report["closure_state"] == "M_CLOSED", i
            assert (server["length"], server["sha256"]) == (UPLOAD, want["sha256"]), (i, server)
            assert not server["reset"], (i, server)
            results = [s["result"] for s in report["subflows"]]
            # Its SYNs or SYN/ACKs all lost, or its SYNs unanswered (Linux answers no MP_JOIN while
            # the connection waits in its application's accept queue, on a loaded machine), the
            # join may never open before the replay's close, which waits 1 s for it: the data then
            # all goes on the first subflow (CI saw it once in 20 runs).
            assert results[0] == "closed", json.dumps([i, report["subflows"], report["events"][-25:]], indent=1)
            assert results[1] == "closed" or results[1].startswith("join refused by the server: never opened"), (
                i,
                report["subflows"],
            )
            joined += results[1] == "closed"
            assert not [e for e in report["events"] if "FIN exchange unfinished" in e], i
            lost += sum(s["retransmitted"] for s in report["subflows"])
        assert lost > RUNS * 20, "the loss hardly hit the replays"
        assert joined >= RUNS - 2, f"the join opened in {joined} of {RUNS} runs"
        tables = lab.run("client", "nft", "list", "tables").stdout
        assert "mptcpspec_replay" not in tables, tables


def test_lossy_replay_takes_the_kernels_time_within_a_generous_bound(upload, tmp_path):  # noqa: F811
    """Medians of 5, alternating in one lab: the replay's own elapsed time under 5 % loss each way
    is within 10x the kernel client's upload (the target, 3x on medians of 10, is bench_replay's)."""
    with Lab() as lab:
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        lossy_paths(lab, 5)
        ours, kernel = [], []
        for _ in range(5):
            kernel.append(kernel_upload(lab, tmp_path))
            srv = lab.serve(reply=0, timeout=60)
            code, report, _ = replay(lab, upload)
            srv.result(timeout=30)
            assert code == 0, report["reason"]
            ours.append(report["elapsed"])
        k, r = statistics.median(kernel), statistics.median(ours)
        assert r <= max(10 * k, 0.5), (ours, kernel)
