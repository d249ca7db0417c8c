"""Live capture with `mptcpspec dissect -i IFACE -w FILE` against `tcpdump -w` and `dumpcap -w`, on one run.

    sudo python3 bench/bench_live.py [--size MB] [--runs 3] [--snaplen 262144] [--buffer MIB] [--tcp]

The kernel lab (lab/) runs an unshaped bulk transfer, one MPTCP connection (plain TCP with --tcp)
from client to server over veth pair 0, offloads off as the lab sets them: every segment a wire
segment.  The two ends are a few lines of Python each here (the client sends one buffer over and
over, the server reads into one and throws it away), so that they cost the machine little.

In each run the three tools (or those --tools names) capture the client's veth0 at the same time, each in its own
process, with the same snapshot length and kernel buffer (-s, -B), writing to a file: mptcpspec
pcapng, dumpcap pcapng, tcpdump pcap.  Once the transfer is over and a quiet moment has passed,
each gets SIGINT; then its packets are counted in its file, its drops read from its own closing
report (tcpdump "dropped by kernel", dumpcap's per-interface received/dropped, ours "dropped
from"), and its CPU time (user + system) from wait4.  Medians over --runs; the three always run
together, so they share the machine and see the same packets.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PORT = 5301
OURS = [sys.executable, "-m", "mptcpspec", "dissect"]
SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, {proto})
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port})); s.listen(1); print("listening", flush=True)
c, _ = s.accept(); buf = bytearray(1 << 20); n = 0
while (k := c.recv_into(buf)): n += k
print(n, flush=True)
"""
CLIENT = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, {proto})
s.connect(("{dst}", {port})); buf = b"x" * (1 << 20); left = {size}; t = time.monotonic()
while left > 0: left -= s.send(buf[: min(left, len(buf))])
s.shutdown(socket.SHUT_WR); s.recv(1); s.close(); print(time.monotonic() - t, flush=True)
"""


def tools(path: Path, snaplen: int, buffer_mib: int) -> dict[str, list[str]]:
    """The capture commands, by the name of their row."""
    common = ["-i", "veth0", "-s", str(snaplen)]
    mib = ["-B", str(buffer_mib)]  # tcpdump's -B counts KiB
    return {
        "mptcpspec dissect -w": [*OURS, *common, *mib, "-w", str(path / "ours.pcapng")],
        "dumpcap -w": ["dumpcap", *common, *mib, "-w", str(path / "dumpcap.pcapng")],
        "tcpdump -w": [
            "tcpdump",
            *common,
            "-B",
            str(buffer_mib * 1024),
            "-n",
            "-Z",
            "root",
            "-w",
            str(path / "tcpdump.pcap"),
        ],
    }


READY = {"mptcpspec dissect -w": b"Capturing on", "dumpcap -w": b"Capturing on", "tcpdump -w": b"listening on"}
FILES = {"mptcpspec dissect -w": "ours.pcapng", "dumpcap -w": "dumpcap.pcapng", "tcpdump -w": "tcpdump.pcap"}


def dropped(name: str, text: str) -> int | None:
    """The drops a tool reports on closing."""
    rx = {
        "mptcpspec dissect -w": r"(\d+) packets? dropped from veth0",
        "dumpcap -w": r"Packets received/dropped on interface '[^']+': \d+/(\d+)",
        "tcpdump -w": r"(\d+) packets? dropped by kernel",
    }[name]
    m = re.search(rx, text)
    return int(m.group(1)) if m else None


def count(path: Path) -> int:
    from mptcpspec.capture.pcap import CaptureReader

    return sum(len(b) for b in CaptureReader(str(path)).batches())


def wait_ready(p: subprocess.Popen, word: bytes, timeout: float = 20.0) -> bytes:
    import select

    err = b""
    deadline = time.monotonic() + timeout
    while word not in err:
        left = deadline - time.monotonic()
        if p.poll() is not None or left <= 0:
            raise SystemExit(f"bench_live: {p.args} did not start: {err.decode(errors='replace')}")
        if select.select([p.stderr], [], [], left)[0]:
            err += os.read(p.stderr.fileno(), 4096)
    return err


def one_run(lab, folder: Path, a: argparse.Namespace) -> tuple[dict[str, dict], float]:
    procs = {}
    errs = {}
    for name, argv in tools(folder, a.snaplen, a.buffer).items():
        if name.split()[0] not in a.tools:
            continue
        p = lab.popen("client", *argv, stdout=subprocess.DEVNULL, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        procs[name] = p
        errs[name] = wait_ready(p, READY[name])
    proto = 6 if a.tcp else 262
    server = lab.popen("server", sys.executable, "-c", SERVER.format(proto=proto, port=PORT))
    assert server.stdout.readline().strip() == b"listening"
    size = a.size * 1_000_000
    dst = lab.addr("server", 0)
    client = lab.run(
        "client", sys.executable, "-c", CLIENT.format(proto=proto, dst=dst, port=PORT, size=size), timeout=600
    )
    took = float(client.stdout.strip())
    got = int(server.stdout.readline())
    if got != size:
        raise SystemExit(f"bench_live: the server read {got} of {size} octets")
    time.sleep(1.0)  # the last ACKs; every tool's ring blocks time out
    out = {}
    for p in procs.values():
        p.send_signal(signal.SIGINT)
    for name, p in procs.items():
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        errs[name] += p.stderr.read()
        text = errs[name].decode(errors="replace")
        out[name] = {
            "packets": count(folder / FILES[name]),
            "dropped": dropped(name, text),
            "cpu": usage.ru_utime + usage.ru_stime,
            "status": p.returncode,
        }
        (folder / FILES[name]).unlink()
    return out, took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1000, help="MB transferred per run (default 1000)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--snaplen", type=int, default=262144)
    ap.add_argument("--buffer", type=int, default=2, help="kernel buffer of each tool, MiB (default 2, theirs)")
    ap.add_argument("--tcp", action="store_true", help="plain TCP instead of MPTCP")
    ap.add_argument(
        "--tools",
        default="mptcpspec,dumpcap,tcpdump",
        type=lambda v: v.split(","),
        help="which capture at the same time (default all three: mptcpspec,dumpcap,tcpdump)",
    )
    a = ap.parse_args()
    from lab import Lab, need_lab

    need_lab(("ip", "ethtool", *(t for t in a.tools if t != "mptcpspec")))
    import compileall

    compileall.compile_dir(ROOT / "mptcpspec", quiet=1)
    runs: list[dict[str, dict]] = []
    took = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, Lab() as lab:
        for i in range(a.runs):
            res, t = one_run(lab, Path(tmp), a)
            runs.append(res)
            took.append(t)
            print(
                f"  run {i + 1}: transfer {t:.2f} s; " + "; ".join(f"{k}: {v}" for k, v in res.items()), file=sys.stderr
            )
    report(a, runs, took)
    return 0


def version(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True)
    except OSError:
        return f"no {argv[0]}"
    return (r.stdout + r.stderr).splitlines()[0].strip()


def report(a: argparse.Namespace, runs: list[dict[str, dict]], took: list[float]) -> None:
    from mptcpspec.capture.live import libpcap_version

    med = statistics.median
    # what crossed veth0: the most any tool saw (written + its own drops)
    packets = med(max(v["packets"] + (v["dropped"] or 0) for v in r.values()) for r in runs)
    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {version(['tcpdump', '--version'])}, "
        f"{version(['dumpcap', '--version'])}, {libpcap_version()}, {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs.  {a.size} MB over {'TCP' if a.tcp else 'MPTCP'} on a veth, unshaped, "
        f"median transfer {med(took):.2f} s, {packets:,.0f} packets on veth0 ({packets / med(took):,.0f}/s); "
        f"-s {a.snaplen} -B {a.buffer}; medians of {len(runs)} runs, the tools capturing the same runs together.\n"
    )
    print("| tool | packets written | dropped (its report) | CPU s | CPU µs/packet | CPU × tcpdump | CPU × dumpcap |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    cpu = {name: med(r[name]["cpu"] for r in runs) for name in runs[0]}
    base = {t: cpu.get(f"{t} -w") for t in ("tcpdump", "dumpcap")}
    for name in runs[0]:
        n = med(r[name]["packets"] for r in runs)
        drops = [r[name]["dropped"] for r in runs]
        shown = "/".join("?" if d is None else str(d) for d in drops)
        print(
            f"| `{name}` | {n:,.0f} | {shown} | {cpu[name]:.2f} | {cpu[name] / max(n, 1) * 1e6:.2f} | "
            + " | ".join(f"{cpu[name] / b:.2f}×" if b else "—" for b in base.values())
            + " |"
        )
    print("\nDropped: each run's count, in order.")


if __name__ == "__main__":
    sys.exit(main())
