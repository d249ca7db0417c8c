"""Reading compressed captures: `mptcpspec dissect -T fields` against tshark, plain and gzip, in one run.

    sudo python3 bench/bench_compressed.py [--packets N] [--no-mixed] [--runs 5] [--cache DIR]
    python3 bench/bench_compressed.py --quick      # the small committed captures in tests/data, no root

Captures: those of bench/bench_dissect.py (a bulk lab transfer over two subflows and a mixed one
of many concurrent connections, pcapng; made there, cached and reused), each also written gzip-compressed
(`gzip -6`, the default level), zstd (`zstd -3`) and lz4 (`lz4 -1`).  tshark 4.0 reads gzip only;
ours reads all three.  Both tools print the same fields as bench_dissect's, stdout to /dev/null;
commands alternate run by run; medians of wall time and of each child's peak RSS.

The target: on gzip, ours against tshark at least the ratio of the uncompressed files.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_dissect import (  # noqa: E402 - after the path is set
    FIELDS,
    FULL_MIX,
    OURS,
    QUICK,
    SNAPLEN,
    count_packets,
    make_capture,
    mixed_capture,
    run,
)

COMPRESSORS = {  # suffix -> command that writes the compressed file to stdout
    ".gz": ["gzip", "-6", "-c"],
    ".zst": ["zstd", "-3", "-q", "-c"],
    ".lz4": ["lz4", "-1", "-q", "-c"],
}


def compressed(path: Path, suffix: str, folder: Path) -> Path | None:
    """``path`` compressed into ``folder`` (made once), or None without the compressor."""
    out = folder / (path.name + suffix)
    argv = COMPRESSORS[suffix]
    if shutil.which(argv[0]) is None:
        print(f"WARNING: no {argv[0]}: the {suffix} rows are left out", file=sys.stderr)
        return None
    if not out.exists() or out.stat().st_mtime < path.stat().st_mtime:
        with open(out, "wb") as f:
            subprocess.run([*argv, str(path)], stdout=f, check=True)
    return out


def captures(a: argparse.Namespace) -> list[Path]:
    if a.quick:
        return [ROOT / "tests" / "data" / n for n in QUICK]
    from lab import lab_problem

    if why := lab_problem():
        raise SystemExit(f"bench_compressed: {why} (or use --quick)")
    a.cache.mkdir(parents=True, exist_ok=True)
    bulk = a.cache / f"bulk-{a.packets // 1000}k-snap{SNAPLEN}.pcap"
    if not bulk.exists():
        make_capture(bulk, a.packets)
    paths = [bulk]
    if a.mixed:
        paths.append(mixed_capture(a.cache, FULL_MIX, False).path)  # bench_dissect's mixed capture
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=230_000, help="packets of the bulk capture (default 230000)")
    ap.add_argument("--no-mixed", dest="mixed", action="store_false", help="leave out bench_dissect.py's mixed capture")
    ap.add_argument("--runs", type=int, help="runs of each command (default 5; 3 with --quick)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench",
        help="where the captures are kept (default ~/.cache/mptcpspec-bench, shared with bench_dissect.py)",
    )
    ap.add_argument("--quick", action="store_true", help="the small committed captures in tests/data (no root)")
    a = ap.parse_args(argv)
    runs = a.runs or (3 if a.quick else 5)
    e = [x for f in FIELDS for x in ("-e", f)]

    import compileall

    compileall.compile_dir(ROOT / "mptcpspec", quiet=1)
    rows, verdicts = [], []
    with tempfile.TemporaryDirectory(prefix="bench-wireshark-") as prefs, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)  # the compressed copies of --quick's committed captures
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=prefs)
        tshark = subprocess.run(["tshark", "--version"], capture_output=True, text=True, env=env).stdout
        for path in captures(a):
            packets = count_packets(path)
            files = {"pcap": path}
            for suffix in COMPRESSORS:
                if (z := compressed(path, suffix, tmp if a.quick else a.cache)) is not None:
                    files[suffix[1:]] = z
            cmds = {}
            for kind, f in files.items():
                if kind in ("pcap", "gz"):
                    cmds[("tshark", kind)] = ["tshark", "-n", "-r", str(f), "-T", "fields", *e]
                cmds[("mptcpspec", kind)] = [*OURS, "dissect", "-r", str(f), "-T", "fields", *e]
            # Same output, before anything is timed.
            outs = {k: subprocess.run(v, capture_output=True, env=env, cwd=ROOT).stdout for k, v in cmds.items()}
            for k, out in outs.items():
                if out != outs[(k[0], "pcap")]:
                    raise SystemExit(f"bench_compressed: {k[0]} prints something else from the {k[1]} file")
            times: dict = {k: [] for k in cmds}
            for i in range(runs):
                for k, argv_ in cmds.items():
                    times[k].append(run(argv_, env))
                print(f"  {path.name}: run {i + 1}/{runs}", file=sys.stderr)
            med = {
                k: (statistics.median(w for w, _ in t), statistics.median(r for _, r in t) / 1024)
                for k, t in times.items()
            }
            for (tool, kind), (sec, rss) in med.items():
                base = med[("tshark", kind if kind in ("pcap", "gz") else "pcap")][0]
                size = files[kind].stat().st_size / 1e6
                rows.append(
                    f"| {path.name} | {kind} ({size:.1f} MB) | {tool} | {sec:.2f} | {packets / sec:,.0f} | "
                    f"{base / sec:.2f}× | {rss:.0f} |"
                )
            plain = med[("tshark", "pcap")][0] / med[("mptcpspec", "pcap")][0]
            gz = med[("tshark", "gz")][0] / med[("mptcpspec", "gz")][0]
            verdicts.append(
                f"{path.name}: {gz:.2f}× on gzip, {plain:.2f}× uncompressed ({'met' if gz >= plain else 'MISSED'})"
            )
    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {tshark.splitlines()[0].rstrip('.')}, "
        f"{os.cpu_count()} CPUs; medians of {runs} runs; `-T fields` with the {len(FIELDS)} fields of "
        "bench_dissect.py.\n"
    )
    print("| capture | file | tool | median s | packets/s | × tshark (same file; zstd, lz4: its pcap) | peak RSS MB |")
    print("|---|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    print("\nTarget: gzip ratio ≥ the uncompressed ratio: " + "; ".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
