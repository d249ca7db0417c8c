"""The server side of the replay against the Linux kernel's MPTCP client, in the lab.

``mptcpspec replay --side server`` runs in the server namespace on the captured server's addresses;
the kernel client (``lab/peer.py client``) in the client namespace sends the captured client's
stream and reads the reply.  The client must read exactly the captured server stream, join the
address the replayed ADD_ADDR announced (the kernel checks its HMAC), and close cleanly; a capture
of the run, dissected with verification on, shows every check verified.  Bad input: a listen address
that is not local, a client that never comes: one line, the documented exit status, no nftables
table left.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

from lab import Lab, need_lab, wait_until
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.replay.serverplan import make_server_plan
from tests.conftest import DATA

pytestmark = pytest.mark.lab

CAPTURE = DATA / "v4-add-addr.pcap"
SIGNALS = DATA / "v4-server-signals.pcap"  # the server's MP_PRIO halfway through its reply


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft"))


def replay_argv(*extra: str, capture: Path = CAPTURE) -> list[str]:
    return [sys.executable, "-m", "mptcpspec", "replay", "-r", str(capture), "--side", "server", *extra]


def tables(lab: Lab) -> str:
    return lab.run("server", "nft", "list", "tables").stdout


def server_stream(capture: Path) -> bytes:
    plan = make_server_plan(capture)
    return b"".join(s.data for s in sorted(plan.segments, key=lambda s: s.dsn))


def subflow_flags(lab: Lab, remote: str) -> str | None:
    """The MPTCP flags ``ss -ti`` shows for the client's subflow to ``remote`` (None: none open)."""
    lines = lab.run("client", "ss", "-tin", "dst", remote, check=False).stdout.splitlines()
    for line in lines:
        m = re.search(r"tcp-ulp-mptcp flags:(\S+)", line)
        if m:
            return m.group(1)
    return None


def serve(lab: Lab, tmp_path: Path, capture: Path, *extra: str, watch: str | None = None):
    """The replayed server of ``capture`` in the server namespace; the kernel client in the client
    namespace sends the captured client's 32768 octets as it sent them (1000, then the rest once two
    subflows are up) and reads the reply; a capture of it is taken in the client namespace.
    ``watch``: a live server address whose subflow flags ``ss`` shows are sampled meanwhile.
    Returns (replay report, client result, the flags seen in order, the summary of the capture)."""
    cap = tmp_path / f"{capture.stem}-replayed.pcap"
    flags: list[str] = []
    with lab.capture(cap, ns="client"):
        argv = replay_argv("--listen", "198.51.100.2", "--map", "203.0.113.2=203.0.113.2", *extra, capture=capture)
        proc = lab.popen("server", *argv, "--timeout", "10", "--json")
        try:
            wait_until(lambda: "mptcpspec_replay_" in tables(lab), "the replay's nftables table", timeout=20)
            client = lab.connect(size=32768, seed=0, first=1000, wait_subflows=2, timeout=20)
            while watch is not None and proc.poll() is None:
                f = subflow_flags(lab, watch)
                if f is not None and (not flags or flags[-1] != f):
                    flags.append(f)
            result = client.result(timeout=30)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert "mptcpspec_replay_" not in tables(lab)
    # the client closed cleanly: no subflow of it is left but in TIME-WAIT
    left = lab.run("client", "ss", "-tanH", "state", "connected", "exclude", "time-wait", check=False).stdout
    assert not left.strip(), left
    d = Dissection(cap)
    for _ in d:
        pass
    (conn,) = [c for c in d.connections() if c.stream is not None]
    return json.loads(out), result, flags, conn.summary()


def check_clean(report: dict, result: dict, summary, capture: Path) -> None:
    want = server_stream(capture)
    # the kernel client read exactly the captured server stream and closed cleanly
    assert result["reply"]["length"] == len(want) == 32768, result
    assert result["reply"]["sha256"] == hashlib.sha256(want).hexdigest()
    assert not result["reset"]
    assert report["ok"] and report["side"] == "server", report["reason"]
    assert report["server_data"] == 32768 and report["data_delivered"] == 32768
    # the kernel echoed the replayed ADD_ADDR and joined the address it announced
    assert any("ADD_ADDR id 5 echoed" in e for e in report["events"]), "\n".join(report["events"])
    joined = [s for s in report["subflows"] if s["local"] == "203.0.113.2:5201"]
    assert joined and "ESTABLISHED" in joined[0]["states"], "\n".join(report["events"])
    # the capture of the run, dissected with verification on: every check verified
    assert summary.checks and not [c for c in summary.checks if c[1] != "VERIFIED"], summary.checks
    checked = {what for what, _, _ in summary.checks}
    assert {"ADD_ADDR HMAC (v1)", "MP_JOIN SYN/ACK HMAC (v1)", "MP_JOIN ACK HMAC (v1)"} <= checked, checked
    assert len(summary.subflows) == 2
    assert (summary.client_state, summary.server_state) == ("M_CLOSED", "M_CLOSED")


def test_kernel_client_against_the_replayed_server(tmp_path: Path):
    """v4-add-addr.pcap: ADD_ADDR, the join to it (the captured SYN/ACK's backup flag), REMOVE_ADDR."""
    with Lab() as lab:
        report, result, _, summary = serve(lab, tmp_path, CAPTURE)
    check_clean(report, result, summary, CAPTURE)
    events = "\n".join(report["events"])
    assert "REMOVE_ADDR as in the capture: address id(s) 5" in events, events
    assert ("server REMOVE_ADDR id(s) 5") in [e for _, e in summary.history], summary.history


def test_the_kernel_client_sees_the_servers_mp_prio(tmp_path: Path):
    """v4-server-signals.pcap at the captured pace: the subflow to the added address turns backup on
    the client (``ss``: the peer's backup flag B) when the replayed MP_PRIO comes, halfway through
    the reply."""
    with Lab() as lab:
        report, result, flags, summary = serve(lab, tmp_path, SIGNALS, "--timing", "as-captured", watch="203.0.113.2")
    check_clean(report, result, summary, SIGNALS)
    assert any(e.endswith("MP_PRIO as in the capture: backup=1") for e in report["events"]), report["events"]
    assert flags and "B" not in flags[0] and "B" in flags[-1], flags
    assert "server MP_PRIO backup=1" in [e for _, e in summary.history], summary.history


@pytest.mark.parametrize(
    ("capture", "listen", "family", "checksum"),
    [("v4-checksum.pcap", "198.51.100.2", 4, True), ("v6-two-subflows.pcap", "2001:db8:1::2", 6, False)],
)
def test_checksums_and_ipv6(tmp_path: Path, capture: str, listen: str, family: int, checksum: bool):
    """One subflow (the kernel client has no endpoint of its own): with DSS checksums (the captured
    server's C flag, and the client's), every checksum of the run verified; over IPv6."""
    path = DATA / capture
    cap = tmp_path / "replayed.pcap"
    with Lab(checksum=checksum) as lab:
        with lab.capture(cap, ns="client"):
            proc = lab.popen("server", *replay_argv("--listen", listen, capture=path), "--json", "--timeout", "10")
            try:
                wait_until(lambda: "mptcpspec_replay_" in tables(lab), "the replay's nftables table", timeout=20)
                result = lab.connect(family=family, size=32768, seed=0, first=1000, timeout=20).result(timeout=30)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert proc.returncode == 0, err.decode()[-3000:]
        assert "mptcpspec_replay_" not in tables(lab)
    report = json.loads(out)
    assert report["ok"] and report["checksums"] is checksum, report["reason"]
    assert result["reply"]["sha256"] == hashlib.sha256(server_stream(path)).hexdigest() and not result["reset"]
    d = Dissection(cap)
    for _ in d:
        pass
    (conn,) = [c for c in d.connections() if c.stream is not None]
    summary = conn.summary()
    assert not [c for c in summary.checks if c[1] != "VERIFIED"], summary.checks
    sums = [n for what, _, n in summary.checks if what == "DSS checksum"]
    assert (sums[0] > 20) if checksum else not sums, summary.checks
    assert (summary.client_state, summary.server_state) == ("M_CLOSED", "M_CLOSED")


def fast_closed(lab: Lab, capture: str, **client) -> tuple[int, dict, dict]:
    """The replayed server of ``capture``; the kernel client closes with SO_LINGER {1, 0}
    (MP_FASTCLOSE). Returns (exit status, report, client result)."""
    proc = lab.popen("server", *replay_argv("--listen", "198.51.100.2", capture=DATA / capture), "--json")
    try:
        wait_until(lambda: "mptcpspec_replay_" in tables(lab), "the replay's nftables table", timeout=20)
        result = lab.connect(seed=0, abort=True, timeout=20, **client).result(timeout=30)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "mptcpspec_replay_" not in tables(lab)
    return proc.returncode, json.loads(out), result


def test_the_client_fast_closes_as_captured():
    """v4-fastclose.pcap: the captured client read the reply and closed with MP_FASTCLOSE; the live
    one does the same: a clean end."""
    with Lab() as lab:
        code, report, result = fast_closed(lab, "v4-fastclose.pcap", size=16384, read_reply=16384)
    assert code == 0 and report["ok"], report["reason"]
    assert result["reply"]["sha256"] == hashlib.sha256(server_stream(DATA / "v4-fastclose.pcap")).hexdigest()
    assert report["events"][-1].endswith("closure: rcv RST+MP_FASTCLOSE -> M_CLOSED")


def test_the_client_fast_closes_early():
    """The live client resets the connection before the captured server's data went: exit 1, the
    reason says so."""
    with Lab() as lab:
        code, report, _ = fast_closed(lab, "v4-two-subflows.pcap", size=32768)
    assert code == 1 and report["abort"] == "reset by the client", report
    assert report["reason"] == (
        "the client reset the connection (MP_FASTCLOSE) after acknowledging 0 of 32768 server octets at data level"
    )


def test_listen_address_not_local():
    with Lab() as lab:
        r = lab.run("server", *replay_argv("--listen", "192.0.2.77", "--timeout", "2"), check=False)
        assert r.returncode == 3, r
        lines = r.stderr.strip().splitlines()
        assert lines == ["mptcpspec: error: listen address 192.0.2.77 is not an address of this host"], lines
        assert "mptcpspec_replay_" not in tables(lab)


def test_no_client_comes():
    with Lab() as lab:
        r = lab.run("server", *replay_argv("--listen", "198.51.100.2", "--timeout", "1"), check=False)
        assert r.returncode == 1, r
        lines = r.stderr.strip().splitlines()
        assert lines == ["mptcpspec: error: no client connected to 198.51.100.2:5201 within 1 s"], lines
        assert "mptcpspec_replay_" not in tables(lab)
