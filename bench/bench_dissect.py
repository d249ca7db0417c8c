"""`mptcpspec dissect` against tshark on a large lab capture, side by side, in one run.

    sudo python3 bench/bench_dissect.py [--packets N] [--connections N] [--runs 5] [--cache DIR] [--remake] [--text]
    python3 bench/bench_dissect.py --quick      # the small committed captures in tests/data, no root

Captures: the kernel lab (lab/) makes a bulk MPTCP transfer over two subflows (client
`subflow` endpoint on 203.0.113.1, both veth pairs shaped so the scheduler uses both), captured by
tcpdump on `-i any` with snaplen 200 and filter `tcp`: one of at least --packets packets and one of
at least twice that, to show whether memory stays flat as the capture grows.  A third, mixed
capture has --connections short connections one after another (1 to 60000 octets up, 20000 down;
every fifth plain TCP, the MPTCP ones joined by a second subflow), so that a speed-up tuned to one
bulk connection does not count.  They are cached in --cache (default ~/.cache/mptcpspec-bench)
and reused; each is checked with `mptcpspec connections` before it is measured.

Bytecode: mptcpspec is byte-compiled first (`compileall`), as `pip install` does; a checkout run
with PYTHONDONTWRITEBYTECODE=1 would otherwise compile its modules from source on every start.

Measurement: each command runs as a subprocess, stdout to /dev/null, the modes alternating,
--runs times; wall time and the child's peak RSS (wait4 rusage ru_maxrss) per run, medians shown.
tshark runs with `-n` and an empty WIRESHARK_CONFIG_DIR, once with its default preferences (the
baseline of the target) and once with the MPTCP analysis preferences of the differential tests.
Prints a Markdown table and the verdicts on the targets (>= 3x tshark's packets/s with -T fields,
peak RSS < 200 MB, flat memory); exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIELDS = (
    "frame.number tcp.stream tcp.srcport tcp.dstport tcp.len tcp.seq tcp.ack mptcp.stream "
    "tcp.options.mptcp.subtype tcp.options.mptcp.rawdataseqno tcp.options.mptcp.rawdataack "
    "tcp.options.mptcp.subflowseqno tcp.options.mptcp.datalvllen mptcp.dsn mptcp.ack"
).split()
QUICK = ("v4-two-subflows.pcap", "v6-two-subflows.pcap")
SNAPLEN = 200
OCTETS_PER_PACKET = 1000  # a first guess at transfer octets per captured packet (data + ACKs); corrected on a retry
TARGET_SPEEDUP, TARGET_RSS_MB, FLAT_RATIO = 3.0, 200.0, 1.25
MIXED_SIZE, MIXED_REPLY = 60000, 20000  # the mixed capture: client octets up to, server reply per connection
OURS = [sys.executable, "-m", "mptcpspec"]
ANALYSING = "tshark -T fields, MPTCP analysis on"  # the preferences the differential tests set


def count_packets(path: Path) -> int:
    """Records in a classic pcap file (what tcpdump -w writes)."""
    with open(path, "rb") as f:
        magic = f.read(24)[:4]
        endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        n = 0
        while len(head := f.read(16)) == 16:
            f.seek(struct.unpack(endian + "IIII", head)[2], 1)
            n += 1
    return n


# ------------------------------------------------------------------------------------ captures


def make_capture(path: Path, packets: int, tries: int = 3) -> dict:
    """A bulk transfer over two subflows with at least ``packets`` packets; returns its metadata."""
    from lab import Lab, LabError, expected

    octets = packets * OCTETS_PER_PACKET
    for attempt in range(1, tries + 1):
        half = octets // 2  # half each way: the peers hold what they send and receive in memory
        start = time.monotonic()
        try:
            with Lab() as lab:
                for role in ("client", "server"):
                    for pair in (0, 1):  # shaped so the scheduler spreads data over both subflows
                        lab.rate_limit(role, lab.dev(pair), "200mbit", burst=30000)
                lab.endpoint_add("client", lab.addr("client", 1), "subflow")
                with lab.capture(path, snaplen=SNAPLEN, bpf="tcp") as cap:
                    s, c = lab.transfer(
                        size=half, reply=half, first=1000, wait_subflows=2, chunk=65536, timeout=60 + octets / 2e6
                    )
        except LabError as e:
            print(f"  {path.name}: try {attempt}: {e}", file=sys.stderr)
            continue
        took = time.monotonic() - start
        if (s["sha256"], c["reply"]["sha256"]) != (expected(half)["sha256"], expected(half, 1)["sha256"]):
            print(f"  {path.name}: try {attempt}: the transfer's contents differ", file=sys.stderr)
            continue
        got = count_packets(path)
        print(
            f"  {path.name}: {got} packets from {octets / 1e6:.0f} MB transferred in {took:.1f} s "
            f"(tcpdump {cap.stats})",
            file=sys.stderr,
        )
        if got >= packets:
            meta = {"packets": got, "octets": octets, "seconds": round(took, 1), "tcpdump": cap.stats}
            path.with_suffix(".json").write_text(json.dumps(meta) + "\n")
            return meta
        octets = int(octets * packets / got * 1.03)
    raise SystemExit(f"bench_dissect: could not make {path} in {tries} tries")


def make_mixed_capture(path: Path, connections: int) -> dict:
    """``connections`` short connections one after another, as a busy server sees them: sizes of 1 to
    60000 octets each way, every fifth plain TCP, the MPTCP ones joined by a second subflow."""
    from lab import Lab

    start = time.monotonic()
    with Lab() as lab:
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        with lab.capture(path, snaplen=SNAPLEN, bpf="tcp") as cap:
            server = lab.serve(count=connections, reply=MIXED_REPLY, timeout=60 + connections / 10)
            client = lab.connect(
                size=MIXED_SIZE, repeat=connections, plain_every=5, chunk=65536, timeout=60 + connections / 10
            )
            # The server's results are read while the client runs: its pipe would fill and stop it.
            served: list[list[dict]] = []
            reader = threading.Thread(target=lambda: served.append(server.results()))
            reader.start()
            results = client.results()
            reader.join()
    if len(results) != connections:
        raise SystemExit(f"bench_dissect: {path}: {len(results)} of {connections} connections finished")
    meta = {
        "packets": count_packets(path),
        "connections": connections,
        "seconds": round(time.monotonic() - start, 1),
        "tcpdump": cap.stats,
    }
    path.with_suffix(".json").write_text(json.dumps(meta) + "\n")
    return meta


def check_connections(path: Path) -> str:
    """'' if ``mptcpspec connections`` sees what the capture was made with, else why not: one MPTCP
    connection with 2 subflows carrying data (bulk), or 4 in 5 connections MPTCP (mixed)."""
    r = subprocess.run([*OURS, "connections", "--json", "-r", str(path)], capture_output=True, text=True, cwd=ROOT)
    conns = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    subs = [s for c in conns for s in c["subflows"]]
    meta = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").exists() else {}
    if "connections" in meta:
        want = meta["connections"] - meta["connections"] // 5
        if r.returncode or len(conns) != want:
            return f"exit {r.returncode}, {len(conns)} MPTCP connection(s), {want} expected"
        return ""
    if r.returncode or len(conns) != 1 or len(subs) != 2 or not all(sum(s["bytes"]) for s in subs):
        return (
            f"exit {r.returncode}, {len(conns)} connection(s), subflow octets {[s['bytes'] for s in subs]}"
            f"{'; ' + r.stderr.strip() if r.stderr.strip() else ''}"
        )
    return ""


# ------------------------------------------------------------------------------------ measuring


def run(argv: list[str], env: dict) -> tuple[float, int]:
    """Run ``argv`` with stdout to /dev/null: (wall seconds, peak RSS in KiB)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if p.returncode != 0:
            err.seek(0)
            raise SystemExit(f"bench_dissect: {' '.join(argv)} exited {p.returncode}: {err.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss


def usable_fields() -> list[str]:
    """FIELDS less any that this mptcpspec does not know (left out of both tools, with a warning)."""
    r = subprocess.run([*OURS, "dissect", "--list-fields"], capture_output=True, text=True, cwd=ROOT, check=True)
    known = {line.split("\t")[0] for line in r.stdout.splitlines()}
    missing = [f for f in FIELDS if f not in known]
    if missing:
        print(f"WARNING: mptcpspec does not know {', '.join(missing)}: left out of both commands", file=sys.stderr)
    return [f for f in FIELDS if f in known]


def modes(path: Path, fields: list[str], text: bool) -> dict[str, list[str]]:
    e = [x for f in fields for x in ("-e", f)]
    from tests.tshark_fields import RECOMMENDED_PREFS

    o = [x for name, value in RECOMMENDED_PREFS.items() for x in ("-o", f"{name}:{value}")]
    m = {
        "tshark -T fields": ["tshark", "-n", "-r", str(path), "-T", "fields", *e],
        ANALYSING: ["tshark", "-n", "-r", str(path), "-T", "fields", *e, *o],
        "mptcpspec dissect -T fields": [*OURS, "dissect", "-r", str(path), "-T", "fields", *e],
        "mptcpspec connections": [*OURS, "connections", "-r", str(path)],
    }
    if text:
        m["tshark -V"] = ["tshark", "-n", "-r", str(path), "-V"]
        m["mptcpspec dissect -T text"] = [*OURS, "dissect", "-r", str(path), "-T", "text"]
    return m


def measure(path: Path, fields: list[str], runs: int, text: bool, env: dict) -> dict[str, tuple[float, float]]:
    """mode -> (median seconds, median peak RSS in MB), the modes alternating run by run."""
    cmds = modes(path, fields, text)
    times: dict[str, list] = {m: [] for m in cmds}
    for i in range(runs):
        for name, argv in cmds.items():
            wall, rss = run(argv, env)
            times[name].append((wall, rss * 1024 / 1e6))
        print(
            f"  {path.name}: run {i + 1}/{runs}: " + ", ".join(f"{m} {t[-1][0]:.2f} s" for m, t in times.items()),
            file=sys.stderr,
        )
    return {m: (statistics.median(w for w, _ in t), statistics.median(r for _, r in t)) for m, t in times.items()}


# ------------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=250_000, help="packets in the smaller capture (default 250000)")
    ap.add_argument("--runs", type=int, help="runs of each command (default 5; 3 with --quick)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench",
        help="where the captures are kept (default ~/.cache/mptcpspec-bench)",
    )
    ap.add_argument(
        "--connections",
        type=int,
        default=2000,
        help="connections in the mixed capture (default 2000; 0: no mixed capture)",
    )
    ap.add_argument("--remake", action="store_true", help="make the captures again even if cached")
    ap.add_argument("--text", action="store_true", help="also tshark -V against mptcpspec dissect -T text (slow)")
    ap.add_argument("--quick", action="store_true", help="the small committed captures in tests/data (no root)")
    a = ap.parse_args(argv)
    runs = a.runs or (3 if a.quick else 5)

    if a.quick:
        paths = [ROOT / "tests" / "data" / n for n in QUICK]
    else:
        from lab import lab_problem

        if why := lab_problem():
            print(f"bench_dissect: {why} (or use --quick)", file=sys.stderr)
            return 2
        a.cache.mkdir(parents=True, exist_ok=True)
        paths = []
        for n in (a.packets, 2 * a.packets):
            path = a.cache / f"bulk-{n // 1000}k-snap{SNAPLEN}.pcap"
            if a.remake or not path.exists() or not path.with_suffix(".json").exists():
                print(f"making {path} ...", file=sys.stderr)
                make_capture(path, n)
            meta = json.loads(path.with_suffix(".json").read_text())
            print(
                f"{path}: {meta['packets']} packets, {path.stat().st_size / 1e6:.1f} MB, made in "
                f"{meta['seconds']} s from {meta['octets'] / 1e6:.0f} MB transferred; tcpdump {meta['tcpdump']}",
                file=sys.stderr,
            )
            paths.append(path)
        if a.connections:
            path = a.cache / f"mixed-{a.connections}conn-snap{SNAPLEN}.pcap"
            if a.remake or not path.exists() or not path.with_suffix(".json").exists():
                print(f"making {path} ...", file=sys.stderr)
                make_mixed_capture(path, a.connections)
            meta = json.loads(path.with_suffix(".json").read_text())
            print(
                f"{path}: {meta['packets']} packets, {meta['connections']} connections, "
                f"{path.stat().st_size / 1e6:.1f} MB, made in {meta['seconds']} s; tcpdump {meta['tcpdump']}",
                file=sys.stderr,
            )
            paths.append(path)

    # As an installed package has it: every module byte-compiled (it is still read from this checkout).
    import compileall

    compileall.compile_dir(ROOT / "mptcpspec", quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-wireshark-") as prefs:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=prefs)  # no personal preferences
        tshark = subprocess.run(["tshark", "--version"], capture_output=True, text=True, env=env).stdout
        fields = usable_fields()
        rows, results = bench([p.resolve() for p in paths], fields, runs, a.text, env)
    report(tshark.split("\n")[0].rstrip("."), fields, runs, rows, results)
    return 0


def bench(paths: list[Path], fields: list[str], runs: int, text: bool, env: dict) -> tuple[list[str], list]:
    rows, results = [], []
    for path in paths:
        if why := check_connections(path):  # also brings the file into the page cache
            print(f"WARNING: {path.name}: not one MPTCP connection with 2 subflows: {why}", file=sys.stderr)
        packets = count_packets(path)
        res = measure(path, fields, runs, text, env)
        results.append((packets, res))
        base = {"fields": res["tshark -T fields"][0], "text": res.get("tshark -V", (0,))[0]}
        for mode, (sec, rss) in res.items():
            ref = base["text" if "-V" in mode or "-T text" in mode else "fields"]
            rows.append(
                f"| {path.name} ({packets:,} packets, {path.stat().st_size / 1e6:.1f} MB) | `{mode}` | "
                f"{sec:.2f} | {packets / sec:,.0f} | {ref / sec:.2f}× | {rss:.0f} |"
            )
    return rows, results


def report(tshark: str, fields: list[str], runs: int, rows: list[str], results: list) -> None:
    print(
        f"\n{platform.python_implementation()} {platform.python_version()} (mptcpspec byte-compiled), {tshark}, "
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs; medians of {runs} runs; "
        f"`-T fields` with the {len(fields)} fields {', '.join(fields)}.\n"
    )
    print("| capture | tool / mode | median s | packets/s | × tshark | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(
        "\n`mptcpspec connections`: the whole analysis (HMACs, checksums, mappings, closure) with one "
        "summary and no per-packet output. tshark runs with its default preferences, under which "
        "(mptcp.analyze_mappings off) it leaves mptcp.dsn empty, which ours fills: a conservative baseline. "
        f"`{ANALYSING}`: with the MPTCP analysis preferences of the differential tests "
        "(tests/tshark_fields.py), under which tshark fills mptcp.dsn too."
    )

    ours = "mptcpspec dissect -T fields"
    speedups = [r["tshark -T fields"][0] / r[ours][0] for _, r in results]
    analysing = [r[ANALYSING][0] / r[ours][0] for _, r in results]
    rss = [max(v[1] for m, v in r.items() if m.startswith("mptcpspec")) for _, r in results]
    growth = rss[1] / rss[0]  # the two bulk captures, one twice the other

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(
        f"\nTargets: ≥ {TARGET_SPEEDUP:g}× tshark's packets/s with -T fields: "
        f"{' / '.join(f'{s:.2f}×' for s in speedups)} ({verdict(min(speedups) >= TARGET_SPEEDUP)}; "
        f"{' / '.join(f'{s:.2f}×' for s in analysing)} against tshark with its MPTCP analysis on); "
        f"peak RSS < {TARGET_RSS_MB:g} MB: {max(rss):.0f} MB ({verdict(max(rss) < TARGET_RSS_MB)}); "
        f"flat memory: {rss[1]:.0f} MB on {results[1][0]:,} packets vs {rss[0]:.0f} MB on "
        f"{results[0][0]:,} (×{growth:.2f}; {verdict(growth <= FLAT_RATIO)}, flat meaning ≤ ×{FLAT_RATIO:g})."
    )


if __name__ == "__main__":
    sys.exit(main())
