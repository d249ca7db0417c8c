"""The replay against a live server that behaves differently from the captured one, in the lab.

Each test changes the lab's kernel server (its sysctls, its path manager, its application) so that
it no longer answers as the captured server did; the replay follows the live server as RFC 8684
says a client does, the report says what differed, and the server application reads exactly the
captured client stream (or, where the application itself resets, the replay ends with a clear
report, exit status 1, and leaves nothing behind).
"""

from __future__ import annotations

import pytest

from lab import Lab, expected, need_lab
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


def _no_join_server(lab: Lab, how: str) -> None:
    """The server refuses joins: its path manager's limit is 0 subflows (the kernel resets the join
    with MP_TCPRST), or its firewall drops them (no MP_JOIN SYN/ACK ever comes)."""
    if how == "limit":
        lab.run("server", "ip", "mptcp", "limits", "set", "subflows", "0")
    else:
        lab.run(
            "server",
            "nft",
            "-f",
            "-",
            input="table inet nojoin {\n chain i { type filter hook input priority 0; "
            "ip saddr 203.0.113.1 tcp flags syn drop; }\n}\n",
        )


@pytest.mark.parametrize("how", ["limit", "unanswered"])
def test_server_refuses_the_join(tmp_path, how):
    """RFC 8684 §3.2: a refused join is given up, the first subflow carries its data, the report names it."""
    with Lab() as lab:
        _no_join_server(lab, how)
        srv = lab.serve(reply=32768, timeout=30)
        cap = tmp_path / "server-side.pcap"
        with lab.capture(cap, ns="server"):
            code, report = replay(lab, "v4-two-subflows.pcap", "198.51.100.2")
        assert code == 0, report
        server = srv.result(timeout=10)
        summary = server_view(cap)
        assert report["ok"] and report["data_delivered"] == 32768
        assert server["length"] == 32768 and server["sha256"] == expected(32768, 0)["sha256"] and not server["reset"]
        assert report["refused_joins"] == [1], report["subflows"]
        first, join = report["subflows"]
        assert first["data_sent"] == 32768 and first["result"] == "closed"
        assert join["data_sent"] == 0 and join["result"].startswith("join refused by the server")
        if how == "limit":
            assert "ADMINISTRATIVELY_PROHIBITED" in join["result"], join
            assert any("the join is refused" in e for e in report["events"]), report["events"]
        else:
            assert "its SYN went unanswered" in join["result"] and join["retransmitted"] > 0, join
        # The dropped join SYNs are in the server-side capture (taken before the firewall): to the
        # dissector the client still has an unclosed subflow, so it stays in M_TIME_WAIT there.
        client_end = ("M_CLOSED",) if how == "limit" else ("M_CLOSED", "M_TIME_WAIT")
        assert summary.client_state in client_end and summary.server_state == "M_CLOSED", summary
        assert not [c for c in summary.checks if c[1] != "VERIFIED"], summary.checks
