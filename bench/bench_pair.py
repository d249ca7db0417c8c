"""``mptcpspec pair`` on the lab's paired captures, beside tshark reading the same two captures with
its MPTCP analysis on (what one does without us: two dissections, matched by hand) and beside our
own ``connections`` of both: medians of ``--runs`` runs (alternating), peak memory.

    sudo python3 bench/bench_pair.py [--runs 5] [--size 20000000] [--cache DIR]

Two pairs, made by the kernel lab through its router (``lab.pairs``) the first time, then cached:
a bulk one (``loss``: ``--size`` octets up, every tenth data segment of path 1 dropped) and the
black hole (a path dropped for a second: reinjections, long waits out of order).  Prints a Markdown
table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_dissect import OURS, run  # noqa: E402

TSHARK_PREFS = [
    "-o",
    "mptcp.analyze_mptcp:TRUE",
    "-o",
    "mptcp.analyze_mappings:TRUE",
    "-o",
    "mptcp.intersubflows_retransmission:TRUE",
]


def made(cache: Path, name: str, **options: int) -> tuple[Path, Path, dict]:
    """The pair ``name`` in ``cache`` (made by the lab as root when missing)."""
    from lab.pairs import CLIENT_PCAP, FACTS, SERVER_PCAP
    from lab.pairs import run as make

    tag = "-".join([name, *(f"{k}{v}" for k, v in sorted(options.items()))])
    folder = cache / f"pair-{tag}"
    if not (folder / FACTS).exists():
        folder.mkdir(parents=True, exist_ok=True)
        make(name, folder, **options)
    return folder / CLIENT_PCAP, folder / SERVER_PCAP, json.loads((folder / FACTS).read_text())


def frames(path: Path) -> int:
    from mptcpspec.capture.pcap import read_records

    return sum(1 for _ in read_records(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=20_000_000, help="octets up in the bulk pair (20,000,000)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench",
    )
    args = ap.parse_args(argv)
    env = dict(os.environ)
    pairs = {"bulk (loss)": made(args.cache, "loss", size=args.size), "black hole": made(args.cache, "blackhole")}
    print("| pair | frames (client + server) | what | median s | peak RSS MB | × tshark |")
    print("|---|---:|---|---:|---:|---:|")
    for label, (client, server, _) in pairs.items():
        n = frames(client) + frames(server)
        modes = {
            "`tshark -T fields -e frame.number`, MPTCP analysis on, both captures": [
                ["tshark", "-n", "-r", str(p), *TSHARK_PREFS, "-T", "fields", "-e", "frame.number"]
                for p in (client, server)
            ],
            "`mptcpspec connections`, both captures": [[*OURS, "connections", "-r", str(p)] for p in (client, server)],
            "`mptcpspec pair`": [[*OURS, "pair", "-r", str(client), "-r", str(server)]],
            "`mptcpspec pair --json`": [[*OURS, "pair", "-r", str(client), "-r", str(server), "--json"]],
        }
        got: dict[str, list[tuple[float, int]]] = {m: [] for m in modes}
        for i in range(args.runs):
            for m, commands in modes.items():
                results = [run(c, env) for c in commands]
                got[m].append((sum(r[0] for r in results), max(r[1] for r in results)))
            print(f"  {label}: run {i + 1}/{args.runs}", file=sys.stderr)
        base = statistics.median(r[0] for r in next(iter(got.values())))
        for m, results in got.items():
            wall = statistics.median(r[0] for r in results)
            rss = statistics.median(r[1] for r in results) * 1024 / 1e6
            print(f"| {label} | {n:,} | {m} | {wall:.2f} | {rss:.0f} | {base / wall:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
