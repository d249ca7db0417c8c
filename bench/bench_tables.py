"""``mptcpspec table`` on the lab's captures: its throughput against ``dissect -T fields`` of the
same packet columns to a file (what Parquet and the other tables cost), the speed-up of two Dask
workers over one process, the Parquet folder's size against the capture's, and a cookbook query
on a table of a million packets.

    sudo python3 bench/bench_tables.py [--runs 3] [--cache DIR] [--only TEXT]

The captures are bench_dissect.py's (made by the kernel lab as root the first time, then cached):
the bulk one (one connection: nothing to share between workers), the mixed one (150 MPTCP
connections and 30 TCP ones, pcapng), and an archive: a mixed capture four times as large (600
MPTCP connections and 120 TCP ones) cut by ``editcap -c`` into eight files, as rotation leaves
them.  Prints Markdown tables for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_dissect import FULL_MIX, OURS, bulk_capture, mixed_capture, run  # noqa: E402
from lab.mixed import Mix  # noqa: E402
from mptcpspec.tables.schema import PACKET_FIELDS  # noqa: E402

QUERY = (
    "SELECT CAST(tcp_stream AS BIGINT) AS tcp_stream, count(*) AS samples, "
    "quantile_cont(CAST(tcp_analysis_ack_rtt AS DOUBLE), 0.95) AS p95 FROM packets "
    "WHERE tcp_analysis_ack_rtt IS NOT NULL GROUP BY 1 ORDER BY 1"
)


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


ARCHIVE_MIX = Mix(mptcp=600, plain=120, seed=2)
ARCHIVE_FILES = 8


def archive(cache: Path) -> tuple[list[Path], Path, int]:
    """The archive's files (cut from the large mixed capture once, then cached), the capture they were
    cut from (what ``dissect``, which reads one file, reads) and its packets."""
    cap = mixed_capture(cache, ARCHIVE_MIX, False)
    n = cap.meta["packets"]
    folder = cache / f"{ARCHIVE_MIX.key()}-{ARCHIVE_FILES}files"
    if not folder.is_dir() or len(list(folder.iterdir())) != ARCHIVE_FILES:
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        per = -(-n // ARCHIVE_FILES)
        subprocess.run(["editcap", "-c", str(per), str(cap.path), str(folder / "part.pcapng")], check=True)
    return sorted(folder.iterdir()), cap.path, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench",
    )
    ap.add_argument("--only", metavar="TEXT", help="only the captures whose name holds TEXT")
    args = ap.parse_args(argv)
    env = dict(os.environ)
    caps = [bulk_capture(args.cache, 250_000, False), mixed_capture(args.cache, FULL_MIX, False)]
    files, whole, archive_packets = archive(args.cache)
    inputs: list[tuple[str, list[str], str, int, int]] = [
        (c.path.name, [str(c.path)], str(c.path), c.meta["packets"], size(c.path)) for c in caps
    ]
    inputs.append((
        f"{ARCHIVE_MIX.key()}, {ARCHIVE_FILES} files", [str(f) for f in files], str(whole), archive_packets,
        sum(size(f) for f in files),
    ))  # fmt: skip
    fields = ["frame.number", *PACKET_FIELDS]
    print("| capture | what | median s | packets/s | peak RSS MB | output MB |")
    print("|---|---|---:|---:|---:|---:|")
    speedups = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, paths, whole_file, n, octets in inputs:
            if args.only and args.only not in name:
                continue
            reads = ["-r", *paths]
            out = {m: Path(tmp) / m for m in ("fields.txt", "t1", "t2")}
            modes = {
                "`dissect -T fields` (the same packet columns) to a file": (
                    [*OURS, "dissect", "-r", whole_file, "-T", "fields", *(a for f in fields for a in ("-e", f))],
                    out["fields.txt"]),
                "`table` (every table), one process": (
                    [*OURS, "table", *reads, "-o", str(out["t1"]), "--no-progress"], out["t1"]),
                "`table --workers 2` (a local Dask cluster)": (
                    [*OURS, "table", *reads, "-o", str(out["t2"]), "--workers", "2"], out["t2"]),
            }  # fmt: skip
            got: dict[str, list[tuple[float, int]]] = {m: [] for m in modes}
            for i in range(args.runs):
                for m, (argv_, _) in modes.items():
                    got[m].append(run(argv_, env))  # stdout to /dev/null: the rows are written, not kept
                print(f"  {name}: run {i + 1}/{args.runs}", file=sys.stderr)
            subprocess.run(
                [*OURS, "dissect", "-r", whole_file, "-T", "fields", *(a for f in fields for a in ("-e", f))],
                stdout=open(out["fields.txt"], "w"),  # noqa: SIM115
                check=True,
            )
            walls = {}
            for m, results in got.items():
                wall = walls[m] = statistics.median(r[0] for r in results)
                rss = statistics.median(r[1] for r in results) * 1024 / 1e6
                mb = size(modes[m][1]) / 1e6
                print(f"| {name} ({n:,} packets, {octets / 1e6:.1f} MB) | {m} | {wall:.2f} | "
                      f"{n / wall:,.0f} | {rss:.0f} | {mb:.1f} |")  # fmt: skip
            one, two = walls["`table` (every table), one process"], walls["`table --workers 2` (a local Dask cluster)"]
            speedups.append(f"{name}: ×{one / two:.2f} ({one:.2f} → {two:.2f} s)")
        # a million packets: the bulk capture's 500k twice, as an archive of two files
        big = bulk_capture(args.cache, 500_000, False)
        folder = Path(tmp) / "million"
        subprocess.run(
            [*OURS, "table", "-r", str(big.path), str(big.path), "-o", str(folder), "--tables", "packets",
             "--no-progress"],
            check=True,
        )  # fmt: skip
        import duckdb

        from mptcpspec.tables.sql import connect

        db = connect(str(folder))
        rows = db.execute("SELECT count(*) FROM packets").fetchone()[0]
        times = []
        for _ in range(5):
            t = time.perf_counter()
            db.execute(QUERY).fetchall()
            times.append(time.perf_counter() - t)
        print()
        print(f"- two workers against one process: {'; '.join(speedups)}")
        print(
            f"- the cookbook's RTT query on {rows:,} packets ({size(folder) / 1e6:.1f} MB of Parquet): "
            f"{statistics.median(times):.3f} s (median of 5, DuckDB {duckdb.__version__})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
