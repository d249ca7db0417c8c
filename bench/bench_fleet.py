"""Many MPTCP connections at once: `mptcpspec replay --loop N --concurrency K` against one kernel
server, and the kernel's own client opening the same sessions, side by side, in one run.

    sudo python3 bench/bench_fleet.py [--connections 1000] [--concurrency 1000] [--runs 3]
    sudo python3 bench/bench_fleet.py --quick       # 100 connections, one run each: a smoke run

Capture (cached in --cache, default ~/.cache/mptcpspec-bench, as fleet-SIZE.pcap): in the kernel
lab (lab/), one small MPTCP session over two subflows (client `subflow` endpoint on 203.0.113.1):
the kernel client sends --size octets (`lab.peer.pattern(size, 0)`, the first 1000 before the join
is waited for), the kernel server reads them and closes.

Measurement, in one fresh lab (client `subflow` endpoint; the server's somaxconn and SYN backlog
4096), --runs times each, alternating: a fresh `bench/fleet_peers.py server` (one selector loop,
accepting at once; it hashes every connection's octets), then either
  * ours: `mptcpspec replay -r CAPTURE --loop N --concurrency K --json` from the client namespace:
    its totals' `elapsed`, `connections_per_second`, handshake percentiles; the same with `--gso`
    (each session's data in bursts the kernel cuts); or
  * kernel: `bench/fleet_peers.py client --count N --concurrency K` (IPPROTO_MPTCP sockets, the same
    octets): its `elapsed`;
and each run counts only if the server read N distinct connections, every one exactly the
captured octets; the table gives how many connections had two subflows at their end (the
server's MPTCP_TCPINFO), median of the runs.  Prints a Markdown table (medians) and ours over
the kernel's connections/s.  Exits 0 either way (2 when the lab cannot run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEERS = ROOT / "bench" / "fleet_peers.py"
SERVER = "198.51.100.2"


def make_capture(path: Path, size: int) -> None:
    from lab import Lab, LabError, expected

    for attempt in range(3):
        with Lab() as lab:
            lab.endpoint_add("client", lab.addr("client", 1), "subflow")
            try:
                with lab.capture(path, bpf="tcp"):
                    server = lab.serve(timeout=30)
                    lab.connect(size=size, first=1000, wait_subflows=2, timeout=30).result(timeout=30)
                    got = server.result(timeout=30)
            except LabError:
                if attempt == 2:
                    raise
                continue
        assert got["sha256"] == expected(size)["sha256"], got
        return


def check_capture(path: Path, size: int) -> bool:
    from mptcpspec.replay.fleet import members

    try:
        (m,) = members(str(path), None)
    except Exception:
        return False
    return len(m.plan.subflows) == 2 and m.plan.data_len == size


def start_server(lab, n: int, size: int, timeout: float):
    from lab.traffic import Peer

    argv = [sys.executable, str(PEERS), "server", "--count", str(n), "--size", str(size), "--timeout", str(timeout)]
    peer = Peer(lab, lab.popen("server", *argv), "fleet server", timeout)
    peer.wait_event("listening", timeout=10)
    return peer


def server_result(peer, timeout: float) -> dict:
    peer.proc.wait(timeout=timeout)
    out = peer.proc.stdout.read().decode()
    return json.loads(out.strip().splitlines()[-1])


def ours(lab, cap: Path, n: int, k: int, size: int, timeout: float, *extra: str) -> dict:
    srv = start_server(lab, n, size, timeout)
    r = lab.run(
        "client",
        sys.executable,
        "-m",
        "mptcpspec",
        "replay",
        "-r",
        str(cap),
        "--target",
        SERVER,
        "--loop",
        str(n),
        "--concurrency",
        str(k),
        "--timeout",
        "20",
        "--json",
        *extra,
        check=False,
        timeout=timeout + 30,
    )
    got = server_result(srv, timeout + 10)
    t = json.loads(r.stdout)["totals"] if r.stdout.strip() else {}
    return {
        "elapsed": t.get("elapsed"),
        "delivered": t.get("delivered"),
        "handshake": t.get("handshake"),
        "server": got,
        "exit": r.returncode,
        "ok": r.returncode == 0 and got["connections"] == n and got["verified"] == n and got["peers"] == n,
    }


def kernel(lab, n: int, k: int, size: int, timeout: float) -> dict:
    srv = start_server(lab, n, size, timeout)
    argv = ["client", "--connect", SERVER, "--count", str(n), "--concurrency", str(k), "--size", str(size)]
    r = lab.run("client", sys.executable, str(PEERS), *argv, "--timeout", str(timeout), timeout=timeout + 30)
    got = server_result(srv, timeout + 10)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return {
        "elapsed": res["elapsed"],
        "delivered": res["ok"],
        "handshake": res["handshake"],
        "server": got,
        "exit": r.returncode,
        "ok": got["connections"] == n and got["verified"] == n and got["peers"] == n,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--size", type=int, default=10000, help="octets each session sends (default 10000)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench",
    )
    a = p.parse_args()
    if a.quick:
        a.connections, a.concurrency, a.runs = 100, 100, 1
    from lab import Lab, lab_problem

    problem = lab_problem()
    if problem:
        print(f"bench_fleet: the lab cannot run: {problem}", file=sys.stderr)
        return 2
    a.cache.mkdir(parents=True, exist_ok=True)
    cap = a.cache / f"fleet-{a.size}.pcap"
    if not (cap.exists() and check_capture(cap, a.size)):
        make_capture(cap, a.size)
        if not check_capture(cap, a.size):
            print(f"bench_fleet: the capture {cap.name} is not one two-subflow session", file=sys.stderr)
            return 2
    results: dict[str, list[dict]] = {"ours": [], "ours --gso": [], "kernel": []}
    n, k = a.connections, a.concurrency
    run = {
        "ours": lambda: ours(lab, cap, n, k, a.size, a.timeout),
        "ours --gso": lambda: ours(lab, cap, n, k, a.size, a.timeout, "--gso"),
        "kernel": lambda: kernel(lab, n, k, a.size, a.timeout),
    }
    with Lab() as lab:
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        lab.sysctl("server", {"net.core.somaxconn": 4096, "net.ipv4.tcp_max_syn_backlog": 4096})
        for i in range(a.runs):
            modes = list(results)
            for mode in modes if i % 2 == 0 else reversed(modes):
                t = time.monotonic()
                res = run[mode]()
                results[mode].append(res)
                print(
                    f"run {i + 1} {mode}: {res['elapsed']} s, server {res['server']}, ok {res['ok']} "
                    f"({time.monotonic() - t:.1f} s wall)",
                    file=sys.stderr,
                )
                time.sleep(1.0)  # the last connections' TIME-WAIT and FINs settle
    print(f"\n{n} connections, at most {k} at once, {a.size} octets each over two subflows; {a.runs} run(s) each\n")
    print("| client | runs ok | elapsed (median) | connections/s | handshake p50 / p99 | with two subflows |")
    print("|---|---|---|---|---|---|")
    rate = {}
    for mode, res in results.items():
        good = [r for r in res if r["ok"]]
        if not good:
            print(f"| {mode} | 0 of {len(res)} | - | - | - | - |")
            continue
        el = statistics.median(r["elapsed"] for r in good)
        rate[mode] = n / el
        hs = [r["handshake"] for r in good if r["handshake"]]
        p50 = statistics.median(h["p50"] for h in hs) * 1000 if hs else float("nan")
        p99 = statistics.median(h["p99"] for h in hs) * 1000 if hs else float("nan")
        name = "kernel client (IPPROTO_MPTCP)" if mode == "kernel" else mode.replace("ours", "mptcpspec replay")
        two = statistics.median(r["server"]["subflows"].get("2", 0) for r in good)
        print(
            f"| {name} | {len(good)} of {len(res)} | {el:.3f} s | {n / el:,.0f} | {p50:.1f} / {p99:.1f} ms "
            f"| {two:,.0f} of {n} |"
        )
    if "kernel" in rate:
        for mode in ("ours", "ours --gso"):
            if mode in rate:
                print(f"\n{mode} / kernel connections/s: {rate[mode] / rate['kernel']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
