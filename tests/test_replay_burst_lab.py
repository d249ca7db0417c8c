"""``mptcpspec replay --gso`` against the kernel, in the lab: the data in bursts the kernel cuts.

The server-side capture shows the segments as the server got them (the lab's veths have no
offloads: the client's kernel cut each burst before it left): a DSS mapping longer than the
segment it rides on is a burst's, and the dissector verifies every mapping (with the DSS
checksum, where the server asks for it) over the segments that carry it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import WHOLE_MTU, Lab, expected, need_lab
from mptcpspec.capture.packets import decode_packet
from mptcpspec.capture.pcap import read_records
from mptcpspec.codec.options import Dss, decode_tcp_options
from tests.test_replay_lab import replay, run_case, server_view
from tests.test_replay_peer_lab import UPLOAD, upload  # noqa: F401  (the 2 MB two-subflow capture)

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft"))


def spanning(pcap: Path) -> int:
    """Client segments whose DSS mapping is longer than their own payload."""
    n = 0
    for rec in read_records(pcap):
        p = decode_packet(rec)
        if p is None or p.dport != 5201 or not p.payload_len:
            continue
        for o in decode_tcp_options(p.options, strict=False).options:
            if type(o) is Dss and o.data_level_length and o.data_level_length > p.payload_len:
                n += 1
    return n


@pytest.mark.parametrize(
    ("capture", "target", "family", "checksum"),
    [
        ("v4-two-subflows.pcap", "198.51.100.2", 4, False),
        ("v4-checksum.pcap", "198.51.100.2", 4, True),
        ("v6-two-subflows.pcap", "2001:db8:1::2", 6, False),
    ],
)
def test_bursts_reach_the_kernel_whole_and_verified(tmp_path, capture, target, family, checksum):
    with Lab(checksum=checksum) as lab:
        report, summary = run_case(lab, tmp_path, capture, target, 2, "--gso", family=family)
    assert summary.checksum == checksum
    assert spanning(tmp_path / f"{capture}-server-side.pcap") > 0
    assert sum(s["sent"] for s in report["subflows"]) > 0


def test_a_large_upload_in_bursts(upload):  # noqa: F811
    """The 2 MB two-subflow upload: the server reads exactly the captured stream, clean close."""
    with Lab() as lab:
        srv = lab.serve(reply=0, timeout=60)
        code, report = replay(lab, upload, "198.51.100.2", "--gso", wait="10", timeout=120)
        got = srv.result(timeout=30)
    assert code == 0, (report.get("reason"), report.get("events"))
    assert report["data_delivered"] == UPLOAD
    assert got["length"] == UPLOAD and got["sha256"] == expected(UPLOAD, 0)["sha256"] and not got["reset"]
    assert report["closure_state"] == "M_CLOSED", report["closure_state"]


def test_paced_bursts_keep_the_captured_segments(upload, tmp_path):  # noqa: F811
    """--gso --timing as-captured: what falls due together goes as one burst the kernel cuts at the
    captured boundaries.  The fidelity report finds every captured segment sent whole and none
    early; the server-side capture shows bursts (mappings over several segments), each verified."""
    server_side = tmp_path / "server-side.pcap"
    with Lab() as lab:
        srv = lab.serve(reply=0, timeout=60)
        with lab.capture(server_side, ns="server", snaplen=WHOLE_MTU, buffer_kib=65536):
            code, report = replay(
                lab, upload, "198.51.100.2", "--gso", "--timing", "as-captured", "--report-fidelity", wait="10"
            )
            got = srv.result(timeout=30)
    assert code == 0, (report.get("reason"), report.get("events"))
    assert got["length"] == UPLOAD and got["sha256"] == expected(UPLOAD, 0)["sha256"] and not got["reset"]
    sizes, schedule = report["fidelity"]["sizes"], report["fidelity"]["schedule"]
    assert sizes["kept"] == sizes["captured"]["count"] == sizes["live"]["count"], sizes
    assert (sizes["split"], sizes["merged"], sizes["unsent"]) == (0, 0, 0), sizes
    assert schedule["min"] >= 0, schedule
    assert spanning(server_side) > 0
    checks = server_view(server_side).checks
    assert checks and not [c for c in checks if c[1] != "VERIFIED"], checks


def test_many_connections_in_bursts():
    """--loop 10 --concurrency 5 --gso: every connection delivered whole, each from its own ports."""
    from tests.test_replay_fleet_lab import check_server, fleet

    with Lab() as lab:
        srv = lab.serve(count=10, reply=32768, timeout=60)
        code, summary = fleet(lab, "v4-two-subflows.pcap", "--loop", "10", "--concurrency", "5", "--gso")
        check_server(srv.results(timeout=30), 10, 32768)
    t = summary["totals"]
    assert code == 0, t
    assert (t["connections"], t["delivered"], t["failed"]) == (10, 10, 0)
    assert t["data_delivered"] == 10 * 32768
    # each connection's segments on the wire, bursts counted cut: at least one per 1,460 octets
    assert t["packets_sent"] >= 10 * 32768 // 1460, t
