"""The start: ``mptcpspec`` commands on a 10-frame capture, beside ``python -c pass`` and tshark.

``python3 bench/bench_startup.py`` installs this checkout into a new virtual environment (``python
-m venv``, then ``pip install``, which builds the compiled hot path and byte-compiles the package),
cuts ``tests/data/v4-two-subflows.pcap`` to its first 10 frames, then runs each command ``--runs``
times (25), all of them in turn in one loop so that they share the machine's moods, and prints the
median wall-clock and CPU times.  The commands are the environment's ``mptcpspec`` script, as a user
runs it.  ``--before REV`` installs the checkout's revision ``REV`` (``git archive``) into a second
environment and times its commands in the same loop.  ``--instructions`` also counts each command's
instructions with ``valgrind --tool=callgrind`` (one run each; steadier than times on a shared
machine).

Why a new environment: a development one starts every interpreter with its own site start-up (an
editable install's import finder, ``.pth`` files of other packages, the modules they import), which
costs a development environment 20 ms or more before ``mptcpspec`` runs and hides what the package
imports itself; a user's ``pip install`` has none of it.  ``--python PY`` measures an interpreter as
it is instead (``PY -m mptcpspec``, the checkout on ``PYTHONPATH`` unless set), no environment made.
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


def install(source: Path, folder: Path, python: str) -> Path:
    """A new virtual environment in ``folder`` with the package of ``source`` installed; its ``bin``."""
    subprocess.run([python, "-m", "venv", str(folder)], check=True)
    bin_dir = folder / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(source)], check=True)
    return bin_dir


def revision(rev: str, folder: Path) -> Path:
    """The checkout's files at ``rev`` (committed ones only), written into ``folder``."""
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def commands(python: str, mptcpspec: list[str], capture: Path, tag: str = "") -> dict[str, list[str]]:
    fields = [a for f in FIELDS for a in ("-e", f)]
    out = {
        f"mptcpspec --version{tag}": [*mptcpspec, "--version"],
        f"mptcpspec dissect{tag}": [*mptcpspec, "dissect", "-r", str(capture)],
        f"mptcpspec dissect -T fields{tag}": [*mptcpspec, "dissect", "-r", str(capture), "-T", "fields", *fields],
        f"mptcpspec connections{tag}": [*mptcpspec, "connections", "-r", str(capture)],
    }
    if tag:
        return out
    out = {"python -c pass": [python, "-c", "pass"], **out}
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
    ap.add_argument("--python", help="measure this interpreter as it is (python -m mptcpspec), no environment made")
    ap.add_argument("--base", default=sys.executable, help="the interpreter the environments are made with")
    ap.add_argument("--before", metavar="REV", help="also time the checkout's revision REV, in the same loop")
    ap.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    with tempfile.TemporaryDirectory() as tmp:
        capture = cut(ROOT / "tests" / "data" / "v4-two-subflows.pcap", Path(tmp) / "ten.pcap", 10)
        if args.python:
            env["PYTHONPATH"] = os.environ.get("PYTHONPATH", str(ROOT))  # the package of this checkout
            python, where = args.python, f"{args.python} as it is"
            cmds = commands(python, [python, "-m", "mptcpspec"], capture)
        else:
            bin_dir = install(ROOT, Path(tmp) / "venv", args.base)
            python, where = str(bin_dir / "python"), "a new environment with this checkout installed"
            cmds = commands(python, [str(bin_dir / "mptcpspec")], capture)
        if args.before:
            before = install(revision(args.before, Path(tmp) / "before"), Path(tmp) / "venv-before", args.base)
            cmds |= commands(str(before / "python"), [str(before / "mptcpspec")], capture, f" ({args.before})")
        for cmd in cmds.values():
            run(cmd, env)  # writes the bytecode
        walls: dict[str, list[float]] = {name: [] for name in cmds}
        cpus: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                wall, cpu = run(cmd, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        version = subprocess.run(
            [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
        )
        counts = {name: instructions(cmd, env) if args.instructions else None for name, cmd in cmds.items()}
    print(f"Python {version.stdout.strip()} ({where}), medians of {args.runs} runs, one loop, a 10-frame capture")
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
