"""The replay against a live server that behaves differently from the captured one, in the lab.

Each test changes the lab's kernel server (its sysctls, its path manager, its application) so that
it no longer answers as the captured server did; the replay follows the live server as RFC 8684
says a client does, the report says what differed, and the server application reads exactly the
captured client stream (or, where the application itself resets, the replay ends with a clear
report, exit status 1, and leaves nothing behind).
"""

from __future__ import annotations

import pytest

from lab import Lab, need_lab
from tests.test_replay_lab import check_clean, replay, server_view

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft"))


def test_server_requires_checksums_the_capture_had_none(tmp_path):
    """RFC 8684 §3.1: the live server's C flag turns DSS checksums on; the replay sends them right."""
    with Lab() as lab:
        lab.run("server", "sysctl", "-qw", "net.mptcp.checksum_enabled=1")
        srv = lab.serve(reply=32768, timeout=30)
        cap = tmp_path / "server-side.pcap"
        with lab.capture(cap, ns="server"):
            code, report = replay(lab, "v4-two-subflows.pcap", "198.51.100.2")
        assert code == 0, report
        summary = server_view(cap)
        check_clean(report, srv.result(timeout=10), summary, 2)
        assert report["checksums"] and not report["checksums_captured"]
        assert any("the server requires DSS checksums" in e for e in report["events"]), report["events"]
        assert summary.checksum
        assert any(what == "DSS checksum" and n > 10 for what, _, n in summary.checks), summary.checks


def test_capture_had_checksums_the_server_does_not_ask(tmp_path):
    """The reverse: the captured client's C flag alone keeps DSS checksums on (either side's flag)."""
    with Lab() as lab:
        srv = lab.serve(reply=32768, timeout=30)
        cap = tmp_path / "server-side.pcap"
        with lab.capture(cap, ns="server"):
            code, report = replay(lab, "v4-checksum.pcap", "198.51.100.2")
        assert code == 0, report
        summary = server_view(cap)
        check_clean(report, srv.result(timeout=10), summary, 2)
        assert report["checksums"] and report["checksums_captured"]
        assert not any("the server requires DSS checksums" in e for e in report["events"])
        assert summary.checksum
        assert any(what == "DSS checksum" and n > 10 for what, _, n in summary.checks), summary.checks
