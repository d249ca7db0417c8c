"""Every field we share with tshark 4.0, on a capture the kernel lab makes now.

``tests/test_tshark_dissect.py`` compares the committed captures and the corpus; this test makes a
fresh one (two subflows, with and without DSS checksums, a reply, a rate limit so that the
transfer spans many segments) and runs the same comparison on it, frame by frame and field by
field, so a kernel or lab change that brings new packet shapes is compared too.
"""

from __future__ import annotations

import pytest

from tests.conftest import need_tshark
from tests.test_tshark_dissect import compare


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("wireshark-config")


@pytest.mark.lab
@pytest.mark.parametrize("checksum", [False, True], ids=["plain", "dss-checksum"])
def test_fresh_lab_capture_equals_tshark(tmp_path, checksum, config_dir, lab_host):
    need_tshark()
    from lab import Lab

    pcap = tmp_path / "fresh.pcap"
    with Lab(checksum=checksum) as lab:
        lab.rate_limit_all()
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        with lab.capture(pcap):
            lab.transfer(size=200_000, reply=50_000, first=1000, wait_subflows=2)
    frames, equal, allowed = compare(pcap, config_dir)
    assert frames > 50
    # what the comparison covered: the frame, IP and TCP fields and the MPTCP analysis, non-empty
    for name in ("frame.time_delta", "ip.addr", "tcp.port", "tcp.options.mptcp.subtype", "mptcp.dsn"):
        assert equal[name] > 0, (name, dict(equal))
