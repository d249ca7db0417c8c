"""Reading captures: our reader and frame decoder against the pcap libraries, side by side.

    python3 bench/bench_pcap.py [FILE] [--runs 5]

FILE defaults to the dissector benchmark's smaller capture (bench/bench_dissect.py makes it) or,
without it, tests/data/v4-two-subflows.pcap repeated.  A pcapng copy is made with editcap for the
pcapng rows.  The libraries are optional: dpkt (pcap, and its IP/TCP decoding) and python-pcapng;
a row is left out when its library is not installed (`pip install dpkt python-pcapng`).  They are
not dependencies of mptcpspec: this benchmark is why (the issue asks for a library where one is fast
enough).  Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mptcpspec.capture.packets import decode_frame  # noqa: E402
from mptcpspec.capture.pcap import CaptureReader  # noqa: E402

CACHED = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench" / "bulk-250k-snap200.pcap"


def ours_records(path: Path) -> int:
    n = 0
    for batch in CaptureReader(path).batches():
        n += len(batch)
    return n


def ours_tcp(path: Path) -> int:
    n = 0
    for batch in CaptureReader(path).batches():
        for ts, linktype, data, _, _, _ in batch:
            p = decode_frame(linktype, data, ts)
            n += p is not None and p.sport > 0
    return n


def dpkt_records(path: Path) -> int:
    import dpkt

    with open(path, "rb") as f:
        return sum(1 for _ in dpkt.pcap.Reader(f))


def dpkt_tcp(path: Path) -> int:
    import dpkt

    n = 0
    with open(path, "rb") as f:
        r = dpkt.pcap.Reader(f)
        link = {1: dpkt.ethernet.Ethernet, 113: dpkt.sll.SLL, 276: dpkt.sll2.SLL2}[r.datalink()]
        for _, buf in r:
            ip = link(buf).data
            tcp = getattr(ip, "data", None)
            n += isinstance(tcp, dpkt.tcp.TCP) and tcp.sport > 0
    return n


def pcapng_records(path: Path) -> int:
    from pcapng import FileScanner
    from pcapng.blocks import EnhancedPacket

    with open(path, "rb") as f:
        return sum(1 for b in FileScanner(f) if isinstance(b, EnhancedPacket))


def have(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def repeated(path: Path, copies: int = 2000) -> None:
    src = (ROOT / "tests" / "data" / "v4-two-subflows.pcap").read_bytes()
    with open(path, "wb") as f:
        f.write(src[:24])
        for _ in range(copies):
            f.write(src[24:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, help="a classic pcap file")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = a.file or (CACHED if CACHED.exists() else None)
        if path is None:
            path = Path(tmp) / "repeated.pcap"
            repeated(path)
        ng = Path(tmp) / "copy.pcapng"
        if shutil.which("editcap"):
            subprocess.run(["editcap", "-F", "pcapng", str(path), str(ng)], check=True)
        rows = [
            ("pcap", "records", "mptcpspec CaptureReader", ours_records, path),
            ("pcap", "records", "dpkt.pcap.Reader", dpkt_records if have("dpkt") else None, path),
            ("pcap", "IP/TCP decoded", "mptcpspec decode_frame", ours_tcp, path),
            ("pcap", "IP/TCP decoded", "dpkt (link, IP, TCP)", dpkt_tcp if have("dpkt") else None, path),
            ("pcapng", "records", "mptcpspec CaptureReader", ours_records, ng if ng.exists() else None),
            (
                "pcapng",
                "records",
                "python-pcapng FileScanner",
                pcapng_records if have("pcapng") else None,
                ng if ng.exists() else None,
            ),
        ]
        print(
            f"{path.name}: {struct.unpack('<I', path.read_bytes()[:4])[0]:#x} magic, "
            f"{path.stat().st_size / 1e6:.1f} MB; medians of {a.runs} runs\n"
        )
        print("| file | what | reader | median s | packets | packets/s | × mptcpspec |")
        print("|---|---|---|---:|---:|---:|---:|")
        base: dict[tuple, float] = {}
        for fmt, what, name, fn, p in rows:
            if fn is None or p is None:
                continue
            times, count = [], 0
            for _ in range(a.runs):
                start = time.perf_counter()
                count = fn(p)
                times.append(time.perf_counter() - start)
            med = statistics.median(times)
            base.setdefault((fmt, what), med)
            print(
                f"| {fmt} | {what} | {name} | {med:.3f} | {count:,} | {count / med:,.0f} | "
                f"{base[(fmt, what)] / med:.2f}× |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
