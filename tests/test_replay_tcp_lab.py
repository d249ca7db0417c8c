"""Plain TCP replay and fallback (RFC 8684 §3.7) against the Linux kernel, in the lab.

Captures are made in one lab (a plain TCP server, ``lab/peer.py --plain``; a plain or an MPTCP
client) and replayed from a fresh lab, so that no socket of the capture's run holds the addresses
and ports; the live server application must read exactly the captured client stream.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab import WHOLE_MTU, Lab, expected, need_lab
from lab.host import LabError
from lab.loss import lossy_paths
from lab.traffic import Peer
from mptcpspec.replay.plan import make_plan, make_tcp_plan
from tests.conftest import DATA, need_tshark
from tests.test_replay_lab import replay as run_replay

pytestmark = pytest.mark.lab

SIZE = 50000


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft"))


def peer(lab: Lab, role: str, timeout: float = 30, **opts) -> Peer:
    """``lab/peer.py`` as ``role`` with ``opts`` (``plain=True``: a plain TCP socket)."""
    p = Peer(lab, lab.popen(role, *lab.peer_argv(role, timeout=timeout, **opts)), f"lab {role}", timeout)
    if role == "server":
        p.wait_event("listening", timeout=timeout)
    return p


def capture(tmp_path: Path, name: str, *, plain_client: bool, family: int = 4, size: int = SIZE) -> Path:
    """A capture, on the client, of one ``size``-octet upload to a plain TCP server (made again, up
    to three times, when tcpdump could not keep up on a busy machine)."""
    cap = tmp_path / name
    for attempt in range(3):
        try:
            with Lab() as lab:
                srv = peer(lab, "server", family=family, plain=True)
                with lab.capture(cap, ns="client", buffer_kib=65536, snaplen=WHOLE_MTU):
                    dst = lab.addr("server", 0, family)
                    cli = peer(lab, "client", family=family, connect=dst, size=size, plain=plain_client)
                    cli.result(timeout=20)
                    assert srv.result(timeout=20)["length"] == size
            return cap
        except LabError as e:
            if "dropped by the kernel" not in str(e) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def replay(lab: Lab, cap: Path, target: str, *extra: str) -> tuple[int, dict]:
    code, report = run_replay(lab, cap, target, *extra)
    assert "mptcpspec_replay" not in lab.run("client", "nft", "list", "tables").stdout
    return code, report


def check(code: int, report: dict, server: dict, length: int, *, tcp: bool, fell_back: bool) -> None:
    assert code == 0 and report["ok"], report["reason"]
    assert (report["tcp"], report["fell_back"]) == (tcp, fell_back), report
    assert report["data_delivered"] == length
    assert server["length"] == length and server["sha256"] == expected(length, 0)["sha256"], server
    assert not server["reset"], server


@pytest.mark.parametrize("family, target", [(4, "198.51.100.2"), (6, "2001:db8:1::2")])
def test_plain_tcp_capture_replayed(tmp_path, family, target):
    need_tshark()
    cap = capture(tmp_path, "plain.pcap", plain_client=True, family=family)
    plan = make_tcp_plan(cap, 0)
    assert plan.tcp and not plan.fallback and plan.data_len == SIZE
    seen = tmp_path / "seen.pcap"
    with Lab() as lab:
        srv = peer(lab, "server", family=family, plain=True)
        with lab.capture(seen, ns="server"):
            code, report = replay(lab, cap, target, "--tcp-stream", "0")
        check(code, report, srv.result(timeout=10), SIZE, tcp=True, fell_back=False)
        assert not any("MP_CAPABLE" in e for e in report["events"])
    # Timestamps (RFC 7323), offered as the captured SYN did and taken by the kernel: on every
    # segment of ours, TSval never going back, TSecr a TSval the server had sent.
    rows = subprocess.run(
        ["tshark", "-r", str(seen), "-T", "fields", "-E", "separator=,", "-e", "tcp.dstport", "-e", "tcp.flags.syn"]
        + ["-e", "tcp.options.timestamp.tsval", "-e", "tcp.options.timestamp.tsecr"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    mine = [r.split(",") for r in rows if r.split(",")[0] == "5201"]
    theirs = {int(r.split(",")[2]) for r in rows if r.split(",")[0] != "5201" and r.split(",")[2]}
    assert len(mine) > SIZE // 1500 and all(tsval for _, _, tsval, _ in mine), mine[:3]
    vals = [int(tsval) for _, _, tsval, _ in mine]
    assert vals == sorted(vals) and vals[-1] > vals[0]
    assert all(int(tsecr) in theirs for _, syn, _, tsecr in mine if syn in ("0", "False")), theirs


def test_fallback_capture_replayed_as_tcp_and_with_try_mptcp(tmp_path):
    cap = capture(tmp_path, "fallback.pcap", plain_client=False)
    plan = make_plan(cap)  # no MPTCP connection: the captured fallback connection, as TCP
    assert plan.tcp and plan.fallback and plan.data_len == SIZE
    with Lab() as lab:
        srv = lab.serve(timeout=30)  # an MPTCP server: a plain SYN is plain TCP to it
        code, report = replay(lab, cap, "198.51.100.2")
        check(code, report, srv.result(timeout=10), SIZE, tcp=True, fell_back=False)
        srv = lab.serve(timeout=30)
        code, report = replay(lab, cap, "198.51.100.2", "--try-mptcp")
        check(code, report, srv.result(timeout=10), SIZE, tcp=False, fell_back=False)
        assert report["server_key"] is not None
        srv = peer(lab, "server", plain=True)
        code, report = replay(lab, cap, "198.51.100.2", "--try-mptcp")
        check(code, report, srv.result(timeout=10), SIZE, tcp=True, fell_back=True)


@pytest.mark.parametrize(
    "capture_name, target, family", [("v4-two-subflows", "198.51.100.2", 4), ("v6-two-subflows", "2001:db8:1::2", 6)]
)
def test_server_with_mptcp_disabled_gets_the_data_over_tcp(capture_name, target, family):
    with Lab() as lab:
        lab.sysctl("server", {"net.mptcp.enabled": 0})
        srv = peer(lab, "server", family=family, plain=True)
        code, report = replay(lab, DATA / f"{capture_name}.pcap", target)
        check(code, report, srv.result(timeout=10), 32768, tcp=True, fell_back=True)
        assert any("fell back to TCP" in e for e in report["events"])
        assert [s["result"] for s in report["subflows"]][1:] == ["not opened: the server fell back to TCP"]
        assert report["subflows"][0]["result"] == "closed"


def test_plain_tcp_replay_on_lossy_paths(tmp_path):
    """5 % of the TCP packets dropped each way (nftables, in the server's namespace): five replays
    of a 300 kB plain TCP upload in a row, each delivered exactly and closed cleanly."""
    size = 300_000
    cap = capture(tmp_path, "plain-300k.pcap", plain_client=True, size=size)
    with Lab() as lab:
        lossy_paths(lab, 5)
        retransmitted = 0
        for _ in range(5):
            srv = peer(lab, "server", plain=True)
            code, report = replay(lab, cap, "198.51.100.2", "--tcp-stream", "0")
            check(code, report, srv.result(timeout=20), size, tcp=True, fell_back=False)
            retransmitted += report["subflows"][0]["retransmitted"]
        assert retransmitted > 0, "no loss hit the replays"
