"""The rarer items of the subflow-level TCP analysis, from the kernel (``lab/stall.py``): keep-alives
and their ACKs, full and zero windows, a zero-window probe and its ACK, window updates, ports
reused after a close, ACKs of segments the capture missed.

Each must occur in ``tests/data/v4-stall.pcap`` as tshark 4.0 counts it, and every TCP field and
expert item of ours must be tshark's there; in the lab (``-m lab``) the same on a fresh capture.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from lab.capture import Capture
from lab.stall import keepalives, zero_window_probe
from mptcpspec.capture.pcap import read_records
from tests.conftest import DATA, need_tshark
from tests.test_tshark_tcp import PREFS, compare, compare_experts
from tests.tshark_fields import tshark_mptcp_fields

STALL = DATA / "v4-stall.pcap"
CLIENT, SERVER = "198.51.100.1", "198.51.100.2"
#: what the capture must hold (tshark's counts of frames with the field)
RARE = (
    "tcp.analysis.keep_alive",
    "tcp.analysis.keep_alive_ack",
    "tcp.analysis.window_full",
    "tcp.analysis.zero_window",
    "tcp.analysis.zero_window_probe",
    "tcp.analysis.zero_window_probe_ack",
    "tcp.analysis.window_update",
    "tcp.analysis.reused_ports",
    "tcp.analysis.lost_segment",
    "tcp.analysis.ack_lost_segment",
)
#: the expert items of those, as ``tshark -z expert`` names them
RARE_EXPERTS = (
    "TCP keep-alive segment",
    "ACK to a TCP keep-alive segment",
    "TCP window specified by the receiver is now completely full",
    "TCP Zero Window segment",
    "TCP Zero Window Probe",
    "ACK to a TCP Zero Window Probe",
    "TCP window update",
    "A new tcp session is started with the same ports as an earlier session in this trace",
    "ACKed segment that wasn't captured (common at capture start)",
)


def assert_stalls(path: Path) -> None:
    """Each rare item occurs (tshark's count), and our fields and expert items are tshark's."""
    present = compare(path)
    missing = [n for n in RARE if not present[n]]
    assert not missing, f"{path.name} has none of {missing}"
    totals = compare_experts(path)
    summaries = {s for _, _, s in totals}
    assert not [s for s in RARE_EXPERTS if s not in summaries], sorted(summaries)


def test_stall_capture_holds_the_rare_items():
    need_tshark()
    assert_stalls(STALL)


def test_stall_capture_streams():
    """Two TCP streams on the same ends; the second's SYN is the one that reuses the ports."""
    need_tshark()
    names = ["tcp.stream", "tcp.srcport", "tcp.flags.syn", "tcp.flags.ack", "tcp.analysis.reused_ports"]
    rows = tshark_mptcp_fields(STALL, names, PREFS)
    assert {r["tcp.srcport"][0] for r in rows.values()} == {"40404", "5201"}
    assert {r["tcp.stream"][0] for r in rows.values()} == {"0", "1"}
    reused = [n for n, r in rows.items() if r["tcp.analysis.reused_ports"]]
    first = min(n for n, r in rows.items() if r["tcp.stream"] == ["1"])
    assert reused == [first] and rows[first]["tcp.flags.syn"] == ["1"] and rows[first]["tcp.flags.ack"] == ["0"]


def _prefix(src: Path, dst: Path, frames: int) -> Capture:
    blob = src.read_bytes()
    pos = 24
    for _ in range(frames):
        pos += 16 + struct.unpack_from("<I", blob, pos + 8)[0]
    dst.write_bytes(blob[:pos])
    return Capture(dst, "client", "veth0")


def test_lab_watchers_on_the_committed_capture(tmp_path):
    """The scenario's watchers on the frames before the probe (where they ran): the client's
    keep-alives are those tshark finds, and the probe rebuilt from them is, octet for octet, the
    frame sent."""
    need_tshark()
    rows = tshark_mptcp_fields(STALL, ["ip.src", "tcp.analysis.keep_alive", "tcp.analysis.zero_window_probe"], PREFS)
    (probe,) = [n for n, r in rows.items() if r["tcp.analysis.zero_window_probe"]]
    before = _prefix(STALL, tmp_path / "before.pcap", probe - 1)  # what the watchers saw
    alive = sum(1 for n, r in rows.items() if n < probe and r["tcp.analysis.keep_alive"] and r["ip.src"] == [CLIENT])
    assert keepalives(before, CLIENT) == alive >= 2
    frames = [rec.data for rec in read_records(STALL)]
    assert zero_window_probe(before, CLIENT) == frames[probe - 1]


@pytest.mark.lab
def test_fresh_stall_capture(tmp_path, lab_host):
    """A new capture from the lab (lab/stall.py): every rare item, every field and expert item as tshark's."""
    need_tshark()
    from lab.stall import stall

    path = tmp_path / "stall.pcap"
    stats = stall(path)
    assert stats.get("dropped") == 0 and stats.get("captured", 0) > 40
    assert_stalls(path)
