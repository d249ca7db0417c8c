"""Many connections at once against the Linux kernel's MPTCP server, in the lab.

Every connection the replay opens must reach the server's application as a connection of its
own, with exactly the captured client stream: the server (``lab/peer.py server --count N``) gives
one result per connection, with the length and sha256 of what it read and the peer's address.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import WHOLE_MTU, Lab, LabError, expected, need_lab
from mptcpspec.replay.fleet import members
from tests.conftest import DATA

pytestmark = pytest.mark.lab

CONNS = 20
SIZE = 20000


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft"))


def fleet(lab: Lab, capture: str | Path, *extra: str, timeout: float = 120) -> tuple[int, dict]:
    """``mptcpspec replay --json`` of many connections in the client namespace: (exit status, summary)."""
    r = lab.run(
        "client",
        sys.executable,
        "-m",
        "mptcpspec",
        "replay",
        "-r",
        str(DATA / capture),
        "--target",
        "198.51.100.2",
        "--timeout",
        "10",
        "--json",
        *extra,
        check=False,
        timeout=timeout,
    )
    assert r.stdout.strip(), f"no summary (exit {r.returncode}): {r.stderr[-2000:]}"
    return r.returncode, json.loads(r.stdout)


def check_server(results: list[dict], n: int, size: int) -> None:
    """``n`` connections reached the application, each with the whole stream, none reset."""
    want = expected(size, 0)["sha256"]
    assert len(results) == n
    bad = [r for r in results if r["length"] != size or r["sha256"] != want or r["reset"]]
    assert not bad, bad[:3]


def check_clean(lab: Lab) -> None:
    tables = lab.run("client", "nft", "list", "tables").stdout
    assert "mptcpspec_replay" not in tables, tables


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory) -> Path:
    """A capture of 20 concurrent kernel MPTCP connections, two subflows each, 20000 octets each."""
    need_lab(("ip", "tcpdump", "ss", "nft"))
    path = tmp_path_factory.mktemp("fleet") / "concurrent-20.pcap"
    for attempt in range(3):
        with Lab() as lab:
            lab.endpoint_add("client", lab.addr("client", 1), "subflow")
            try:
                with lab.capture(path, bpf="tcp", buffer_kib=65536, snaplen=WHOLE_MTU):
                    server = lab.serve(count=CONNS, timeout=60)
                    clients = [lab.connect(size=SIZE, first=1000, wait_subflows=2, timeout=60) for _ in range(CONNS)]
                    for c in clients:
                        c.result(timeout=60)
                    got = server.results(timeout=60)
            except LabError:
                if attempt == 2:
                    raise
                continue
        check_server(got, CONNS, SIZE)
        return path
    raise AssertionError("unreachable")


def test_stream_all_replays_twenty_concurrent_connections(concurrent):
    chosen = members(str(concurrent), None)
    assert len(chosen) == CONNS and all(len(m.plan.subflows) == 2 for m in chosen)
    starts = sorted(m.offset_ns for m in chosen)
    with Lab() as lab:
        srv = lab.serve(count=CONNS, timeout=60)
        code, summary = fleet(lab, concurrent, "--stream", "all", "--timing", "as-captured")
        check_server(srv.results(timeout=30), CONNS, SIZE)
        check_clean(lab)
    t = summary["totals"]
    assert code == 0, summary
    assert (t["connections"], t["delivered"], t["failed"]) == (CONNS, CONNS, 0)
    assert t["data_delivered"] == CONNS * SIZE
    assert sorted(c["stream"] for c in summary["connections"]) == sorted(m.plan.stream for m in chosen)
    # each started at its captured offset (as-captured timing), give or take the loop's granularity
    got = sorted(c["start"] for c in summary["connections"])
    assert all(abs(g - s / 1e9) < 0.05 for g, s in zip(got, starts, strict=True)), (got, starts)
    assert len({c["local"] for c in summary["connections"]}) == CONNS
    one = [c for c in summary["connections"] if c["subflows"] != 2]
    assert not one, json.dumps(one)
    assert t["handshake"]["p50"] > 0


def test_loop_fifty_with_ten_live(tmp_path):
    """--loop 50 --concurrency 10: 50 distinct connections at the server, each with the captured
    data, each with its own client key and ports."""
    with Lab() as lab:
        srv = lab.serve(count=50, reply=32768, timeout=90)
        code, summary = fleet(lab, "v4-two-subflows.pcap", "--loop", "50", "--concurrency", "10")
        results = srv.results(timeout=30)
        check_server(results, 50, 32768)
        check_clean(lab)
    assert code == 0, summary["totals"]
    t = summary["totals"]
    assert (t["connections"], t["delivered"], t["failed"], t["not_started"]) == (50, 50, 0, 0)
    conns = summary["connections"]
    assert len({tuple(r["peer"]) for r in results}) == 50  # 50 distinct client endpoints at the server
    assert len({c["local"] for c in conns}) == 50
    assert len({c["client_key"] for c in conns}) == 50
    assert all(c["data_delivered"] == 32768 for c in conns)
    print(f"loop 50/10: {t['connections_per_second']:.1f} connections/s, handshake {t['handshake']}")


def test_unique_ip_within_a_routed_prefix():
    """--unique-ip 192.0.2.0/27: each iteration's two subflows from two addresses of the prefix."""
    with Lab() as lab:
        for n in range(1, 31):
            lab.ip("client", "addr", "add", f"192.0.2.{n}/32", "dev", lab.dev(0))
        lab.ip("server", "route", "add", "192.0.2.0/27", "via", lab.addr("client", 0))
        srv = lab.serve(count=10, timeout=60)
        code, summary = fleet(
            lab,
            "v4-two-subflows.pcap",
            "--loop",
            "10",
            "--concurrency",
            "5",
            "--unique-ip",
            "192.0.2.0/27",
            "--map",
            "203.0.113.2=203.0.113.2",
        )
        results = srv.results(timeout=30)
        check_server(results, 10, 32768)
        check_clean(lab)
    assert code == 0, summary["totals"]
    peers = sorted(r["peer"][0] for r in results)
    assert peers == sorted(f"192.0.2.{2 * i + 1}" for i in range(10))  # the first subflow's address
    assert all(c["local"].startswith("192.0.2.") for c in summary["connections"])


def test_ctrl_c_in_a_large_run_leaves_nothing_behind():
    """SIGINT in the middle of 1,000 connections: the summary (interrupted), exit status 130, no
    nftables table, no socket."""
    with Lab() as lab:
        lab.serve(count=1000, timeout=120)
        p = lab.popen(
            "client",
            sys.executable,
            "-m",
            "mptcpspec",
            "replay",
            "-r",
            str(DATA / "v4-two-subflows.pcap"),
            "--target",
            "198.51.100.2",
            "--loop",
            "1000",
            "--concurrency",
            "100",
            "--json",
        )
        deadline = time.monotonic() + 30
        while "mptcpspec_replay" not in lab.run("client", "nft", "list", "tables").stdout:
            assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.poll() is not None else ""
            time.sleep(0.05)
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        assert p.returncode == 130, err[-2000:]
        summary = json.loads(out)
        t = summary["totals"]
        assert summary["interrupted"] and not summary["ok"]
        assert t["started"] > 0 and t["not_started"] > 0, t
        assert t["started"] + t["not_started"] == 1000
        assert len(summary["connections"]) == t["started"]
        assert b"interrupted" in err
        check_clean(lab)
        left = lab.run("client", "ss", "-a", "-n", "-p", "-0", "-t").stdout
        assert "python" not in left, left


def test_mptcp_and_tcp_streams_all_with_progress(tmp_path):
    """--stream all --tcp-stream all on a capture of MPTCP and plain TCP connections: the server
    reads from the replay exactly what it read from the kernel clients; --progress lines on stderr."""
    cap = tmp_path / "mixed.pcap"
    with Lab() as lab:
        with lab.capture(cap, bpf="tcp"):
            srv = lab.serve(count=4, timeout=30)
            lab.connect(repeat=4, plain_every=2, size=30000, seed=3, timeout=30).result(timeout=30)
            captured = srv.results(timeout=30)
        srv = lab.serve(count=4, timeout=30)
        r = lab.run(
            "client",
            sys.executable,
            "-m",
            "mptcpspec",
            "replay",
            "-r",
            str(cap),
            "--target",
            "198.51.100.2",
            "--stream",
            "all",
            "--tcp-stream",
            "all",
            "--progress",
            "--json",
            check=False,
            timeout=60,
        )
        replayed = srv.results(timeout=30)
        check_clean(lab)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    assert sorted(c["tcp"] for c in summary["connections"]) == [False, False, True, True]
    assert summary["totals"]["delivered"] == 4
    assert sorted((x["length"], x["sha256"]) for x in replayed) == sorted((x["length"], x["sha256"]) for x in captured)
    assert "done," in r.stderr and "live," in r.stderr, r.stderr
