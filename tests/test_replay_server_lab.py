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
import sys
from pathlib import Path

import pytest

from lab import Lab, need_lab, wait_until
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.replay.serverplan import make_server_plan
from tests.conftest import DATA

pytestmark = pytest.mark.lab

CAPTURE = DATA / "v4-add-addr.pcap"


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft"))


def replay_argv(*extra: str) -> list[str]:
    return [sys.executable, "-m", "mptcpspec", "replay", "-r", str(CAPTURE), "--side", "server", *extra]


def tables(lab: Lab) -> str:
    return lab.run("server", "nft", "list", "tables").stdout


def server_stream() -> bytes:
    plan = make_server_plan(CAPTURE)
    return b"".join(s.data for s in sorted(plan.segments, key=lambda s: s.dsn))


def test_kernel_client_against_the_replayed_server(tmp_path: Path):
    want = server_stream()
    with Lab() as lab:
        cap = tmp_path / "server-side.pcap"
        with lab.capture(cap, ns="client"):
            proc = lab.popen(
                "server",
                *replay_argv("--listen", "198.51.100.2", "--map", "203.0.113.2=203.0.113.2", "--timeout", "10"),
                "--json",
            )
            try:
                wait_until(lambda: "mptcpspec_replay_" in tables(lab), "the replay's nftables table", timeout=20)
                client = lab.connect(size=32768, seed=0, timeout=20)
                result = client.result(timeout=30)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert proc.returncode == 0, err.decode()[-3000:]
        report = json.loads(out)
        assert "mptcpspec_replay_" not in tables(lab)
    # the kernel client read exactly the captured server stream and closed cleanly
    assert result["reply"]["length"] == len(want) == 32768, result
    assert result["reply"]["sha256"] == hashlib.sha256(want).hexdigest()
    assert not result["reset"]
    assert report["ok"] and report["side"] == "server", report["reason"]
    assert report["server_data"] == 32768 and report["data_delivered"] == 32768
    # the kernel joined the address the replayed ADD_ADDR announced, after echoing it
    joined = [s for s in report["subflows"] if s["local"] == "203.0.113.2:5201"]
    assert joined and joined[0]["states"][-1] in ("CLOSED", "ESTABLISHED", "FAILED"), report["subflows"]
    assert any("ADD_ADDR id 5 echoed" in e for e in report["events"]), "\n".join(report["events"])
    # the capture, dissected with verification on: every check verified
    d = Dissection(cap)
    for _ in d:
        pass
    (conn,) = [c for c in d.connections() if c.stream is not None]
    summary = conn.summary()
    assert summary.checks and not [c for c in summary.checks if c[1] != "VERIFIED"], summary.checks
    checked = {what for what, _, _ in summary.checks}
    assert any("ADD_ADDR" in w for w in checked), checked
    assert any("MP_JOIN" in w or "HMAC" in w for w in checked), checked
    assert (summary.client_state, summary.server_state) == ("M_CLOSED", "M_CLOSED")
    print("checks", summary.checks, "subflows", len(summary.subflows))


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
