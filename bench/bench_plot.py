"""``mptcpspec plot dsn`` on the lab's bulk captures: the time to a PNG, to an HTML page and to
CSV, and the peak memory, medians of ``--runs`` runs (alternating), beside ``dissect -T fields`` of
one field on the same capture (the compiled hot path; a plot reads every frame through the
Python pipeline, without the TCP analysis).

    sudo python3 bench/bench_plot.py [--runs 5] [--cache DIR] [--packets 230000 460000]

The captures are bench_dissect.py's (made by the kernel lab as root the first time, then cached).
Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_dissect import OURS, bulk_capture, run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--packets", type=int, nargs="+", default=[230_000, 460_000])
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench",
    )
    args = ap.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    print("| capture | what | median s | peak RSS MB |")
    print("|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for packets in args.packets:
            cap = bulk_capture(args.cache, packets, False)
            name = f"{cap.path.name} ({cap.meta['packets']:,} packets)"
            modes = {
                "`dissect -T fields -e frame.number` (compiled hot path)": [
                    *OURS,
                    "dissect",
                    "-r",
                    str(cap.path),
                    "-T",
                    "fields",
                    "-e",
                    "frame.number",
                ],
                "`plot dsn -o x.png`": [*OURS, "plot", "dsn", "-r", str(cap.path), "-o", f"{tmp}/x.png"],
                "`plot dsn -o x.html`": [*OURS, "plot", "dsn", "-r", str(cap.path), "-o", f"{tmp}/x.html"],
                "`plot dsn --csv`": [*OURS, "plot", "dsn", "-r", str(cap.path), "--csv"],
            }
            got: dict[str, list[tuple[float, int]]] = {m: [] for m in modes}
            for i in range(args.runs):
                for m, argv_ in modes.items():
                    got[m].append(run(argv_, env))
                print(f"  {cap.path.name}: run {i + 1}/{args.runs}", file=sys.stderr)
            for m, results in got.items():
                wall = statistics.median(r[0] for r in results)
                rss = statistics.median(r[1] for r in results) * 1024 / 1e6
                print(f"| {name} | {m} | {wall:.2f} | {rss:.0f} |")
            page = Path(tmp) / "x.html"
            print(f"  page: {page.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
