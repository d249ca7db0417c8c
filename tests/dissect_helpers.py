"""Helpers of the dissector's tests: dissect a capture, count its expert items and check verdicts,
change a capture's records in memory, run the command line.

The captures are the lab's (tests/data, see its README): the kernel talking to itself, with known
data (``lab.peer.pattern``).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys

from mptcpspec.capture.packets import decode_frame
from mptcpspec.capture.pcap import read_records
from mptcpspec.dissect.follow import Follower
from mptcpspec.dissect.pipeline import Dissection
from tests.conftest import ROOT


def run(path) -> tuple[list, Dissection]:
    d = Dissection(path)
    return list(d), d


def experts(infos) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in infos:
        for e in i.experts:
            out[e.key] = out.get(e.key, 0) + 1
    return out


def verdicts(infos) -> dict[tuple[str, str], int]:
    out: dict = {}
    for i in infos:
        for c in i.checks:
            k = (c.what, c.verdict.name)
            out[k] = out.get(k, 0) + 1
    return out


def follow(path, stream=0):
    a, b = io.BytesIO(), io.BytesIO()
    f = Follower(stream, a, b)
    for info in Dissection(path):
        f.feed(info)
    reports = f.finish()
    return a.getvalue(), b.getvalue(), reports


def mutate(path, change) -> bytes:
    """A pcap whose records pass through ``change(number, packet, data) -> data``."""
    out = io.BytesIO()
    recs = list(read_records(path))
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, recs[0].linktype))
    for n, r in enumerate(recs, 1):
        p = decode_frame(r.linktype, r.data)
        data = change(n, p, r.data) if p is not None else r.data
        ts = r.timestamp_ns
        out.write(struct.pack("<IIII", ts // 10**9, ts % 10**9 // 1000, len(data), len(data)) + data)
    return out.getvalue()


def option_at(data: bytes, p, kind_subtype: int) -> int:
    """Offset in the frame of the first MPTCP option of that subtype."""
    opts = p.options
    i = 0
    while i < len(opts):
        k = opts[i]
        if k in (0, 1):
            i += 1
            continue
        if k == 30 and opts[i + 2] >> 4 == kind_subtype:
            return data.index(opts) + i
        i += opts[i + 1]
    return -1


def flip_first(subtype: int, offset_in_option: int, when=lambda p: True):
    done = []

    def change(n, p, data):
        if done or not when(p):
            return data
        at = option_at(data, p, subtype)
        if at < 0:
            return data
        done.append(n)
        b = bytearray(data)
        b[at + offset_in_option] ^= 0x01
        return bytes(b)

    return change, done


def dissect_bytes(blob: bytes):
    d = Dissection(io.BytesIO(blob))
    return list(d), d


def cli(*args, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mptcpspec", *args], capture_output=True, text=True, cwd=ROOT, input=stdin
    )
