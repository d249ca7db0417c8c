"""The progress bar of ``mptcpspec dissect`` and ``connections``: on a terminal, for a large file, never in output."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

from mptcpspec.capture.pcap import read_records
from tests.conftest import DATA


def big_capture(path: Path, size: int = 24 << 20) -> int:
    """A pcap of the two-subflow capture's frames over and over (times moving on), ``size`` octets or more."""
    recs = list(read_records(DATA / "v4-two-subflows.pcap"))
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, recs[0].linktype)]  # nanosecond pcap
    total, n, t = 24, 0, recs[0].timestamp_ns
    while total < size:
        for r in recs:
            t += 1000
            out.append(struct.pack("<IIII", t // 10**9, t % 10**9, len(r.data), r.orig_len) + r.data)
            total += 16 + len(r.data)
            n += 1
    path.write_bytes(b"".join(out))
    return n


def dissect(path: Path, *extra: str, tty: bool, command: str = "dissect"):
    argv = [
        sys.executable,
        "-m",
        "mptcpspec",
        "dissect",
        "-r",
        str(path),
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "mptcp.stream",
        *extra,
    ]
    if command == "connections":
        argv = [sys.executable, "-m", "mptcpspec", "connections", "-r", str(path), *extra]
    if not tty:
        r = subprocess.run(argv, capture_output=True, timeout=300)
        return r.returncode, r.stdout, r.stderr.decode()
    master, slave = os.openpty()
    out_path = path.with_suffix(".out")
    try:
        with open(out_path, "wb") as out_file:  # a file, not a pipe: nothing blocks while we read the terminal
            p = subprocess.Popen(argv, stdout=out_file, stderr=slave)
            os.close(slave)
            err = bytearray()
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other end is closed
                    break
                if not chunk:
                    break
                err += chunk
            p.wait(timeout=300)
    finally:
        os.close(master)
    return p.returncode, out_path.read_bytes(), err.decode()


def test_progress_bar_on_a_terminal_only(tmp_path):
    path = tmp_path / "big.pcap"
    frames = big_capture(path)
    assert frames > 32768 and path.stat().st_size > 8 << 20
    code, out, err = dissect(path, tty=True)
    assert code == 0
    bars = re.findall(r"\r\[(#*) *\] +(\d+\.\d)%  (\d+) frames  [\d,]+/s ", err)
    assert bars, repr(err[:300])
    # Frames counted in multiples of 16384, the share of the file read growing, and the line wiped at the end.
    assert all(int(n) % 16384 == 0 for _, _, n in bars)
    assert [float(p) for _, p, _ in bars] == sorted(float(p) for _, p, _ in bars)
    assert 0 < float(bars[-1][1]) <= 100.0
    assert err.endswith("\r" + " " * 72 + "\r")
    # The rows are the same as without a terminal, and so is the frame count.
    code2, out2, err2 = dissect(path, tty=False)
    assert code2 == 0 and err2 == "" and out2 == out
    assert len(out.splitlines()) == frames
    # --no-progress: nothing on the terminal.
    code3, out3, err3 = dissect(path, "--no-progress", tty=True)
    assert code3 == 0 and err3 == "" and out3 == out


def test_connections_has_the_progress_bar_too(tmp_path):
    path = tmp_path / "big.pcap"
    big_capture(path)
    code, out, err = dissect(path, tty=True, command="connections")
    assert code == 0 and re.search(r"\r\[#* *\] +\d+\.\d%  \d+ frames", err) and err.endswith("\r" + " " * 72 + "\r")
    code2, out2, err2 = dissect(path, tty=False, command="connections")
    assert code2 == 0 and err2 == "" and out2 == out and b"MPTCP stream" in out


def test_no_progress_bar_for_a_small_file(tmp_path):
    small = tmp_path / "small.pcap"
    small.write_bytes((DATA / "v4-two-subflows.pcap").read_bytes())
    code, out, err = dissect(small, tty=True)
    assert code == 0 and err == "" and out
