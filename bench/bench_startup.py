"""The start: ``mptcpspec`` commands on a 10-frame capture, beside ``python -c pass`` and tshark.

``python3 bench/bench_startup.py`` cuts ``tests/data/v4-two-subflows.pcap`` to its first 10 frames,
then runs each command ``--runs`` times (25), all of them in turn in one loop so that they share the
machine's moods, and prints the median wall-clock and CPU times.  The package is byte-compiled first
(``PYTHONDONTWRITEBYTECODE`` is dropped from the commands' environment and one run of each writes the
bytecode), as an installed package is.  ``--instructions`` also counts each command's instructions
with ``valgrind --tool=callgrind`` (one run each; steadier than times on a shared machine).

The interpreter is this script's (``sys.executable``), the package the one it imports; ``--python``
names another interpreter (an installed package's, for instance).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = (
    "frame.number tcp.stream tcp.srcport tcp.dstport tcp.len tcp.seq tcp.ack mptcp.stream tcp.options.mptcp.subtype "
    "tcp.options.mptcp.rawdataseqno tcp.options.mptcp.rawdataack tcp.options.mptcp.subflowseqno "
    "tcp.options.mptcp.datalvllen mptcp.dsn mptcp.ack"
).split()


def cut(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` records of a little-endian classic pcap file, its header kept."""
    data = src.read_bytes()
    p = 24
    for _ in range(frames):
        (size,) = struct.unpack_from("<I", data, p + 8)
        p += 16 + size
    dst.write_bytes(data[:p])
    return dst


def commands(python: str, capture: Path) -> dict[str, list[str]]:
    mptcpspec = [python, "-m", "mptcpspec"]
    fields = [a for f in FIELDS for a in ("-e", f)]
    out = {
        "python -c pass": [python, "-c", "pass"],
        "mptcpspec --version": [*mptcpspec, "--version"],
        "mptcpspec dissect": [*mptcpspec, "dissect", "-r", str(capture)],
        "mptcpspec dissect -T fields": [*mptcpspec, "dissect", "-r", str(capture), "-T", "fields", *fields],
        "mptcpspec connections": [*mptcpspec, "connections", "-r", str(capture)],
    }
    tshark = shutil.which("tshark")
    if tshark:
        out["tshark -r"] = [tshark, "-r", str(capture)]
        out["tshark -T fields"] = [tshark, "-r", str(capture), "-T", "fields", *fields]
    return out


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT / "bench")
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def instructions(cmd: list[str], env: dict[str, str]) -> int | None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    r = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT / "bench",
    )
    m = re.search(r"Collected : (\d+)", r.stderr)
    return int(m.group(1)) if m else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs mptcpspec")
    ap.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("PYTHONPATH", str(ROOT))  # the package of this checkout, from any directory
    with tempfile.TemporaryDirectory() as tmp:
        capture = cut(ROOT / "tests" / "data" / "v4-two-subflows.pcap", Path(tmp) / "ten.pcap", 10)
        cmds = commands(args.python, capture)
        for cmd in cmds.values():
            run(cmd, env)  # writes the bytecode
        walls: dict[str, list[float]] = {name: [] for name in cmds}
        cpus: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                wall, cpu = run(cmd, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        counts = {name: instructions(cmd, env) if args.instructions else None for name, cmd in cmds.items()}
    print(f"Python {sys.version.split()[0]}, medians of {args.runs} runs, one loop, a 10-frame capture")
    print()
    print("| command | wall ms | CPU ms | instructions |")
    print("|---|---:|---:|---:|")
    for name in cmds:
        n = counts[name]
        print(
            f"| `{name}` | {statistics.median(walls[name]) * 1e3:.0f} | {statistics.median(cpus[name]) * 1e3:.0f} "
            f"| {'' if n is None else f'{n / 1e6:.0f}M'} |"
        )


if __name__ == "__main__":
    main()
