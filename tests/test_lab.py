"""The kernel lab, and the captures of kernel MPTCP traffic checked against the codecs and the crypto.

Lab tests (``-m lab``) need root, ``ip``, ``tcpdump``, ``ethtool``, ``tc`` and a kernel with MPTCP;
without them they skip and say why, except with ``CI=true``, where they fail.  They make a fresh
two-subflow capture (checksums off and on), check that the server received exactly what the client
sent and back, run :func:`tests.kernel_check.check_capture` on it, and check that the lab removes
everything it created, also when the ``with`` block raises.

The committed captures in ``tests/data`` (made by ``tests/data/make_captures.py``) are checked
without root.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from lab import PREFIX, Lab, cleanup_leftovers, expected, list_namespaces, need_lab
from lab import host as labhost
from mptcpspec.capture.packets import TcpFlags, decode_packet
from mptcpspec.capture.pcap import read_records
from mptcpspec.codec.options import MpCapable, decode_tcp_options
from tests.conftest import DATA
from tests.kernel_check import check_capture

TOKEN = "MP_JOIN SYN token = token of the receiver's key"
FIRST_DSN = "first DSN = IDSN + 1"
SYNACK = "MP_JOIN SYN/ACK truncated HMAC"
JOIN_ACK = "MP_JOIN ACK HMAC"
REENCODED = "options area re-encoded byte-identical"
ECHOED = "MP_CAPABLE echoes the peer's key"
JOIN_CHECKS = (REENCODED, ECHOED, TOKEN, FIRST_DSN, SYNACK, JOIN_ACK)
JOIN_OPTIONS = ("MpCapable", "MpJoinSyn", "MpJoinSynAck", "MpJoinAck", "Dss")

LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL = 1, 113


def assert_checked(rep, checks) -> None:
    assert rep.failures == []
    zero = [c for c in checks if rep.checked[c] == 0]
    assert not zero, f"nothing checked for {zero}; checked: {dict(rep.checked)}"


# ---------------------------------------------------------------------------------- in the lab


@pytest.mark.lab
@pytest.mark.parametrize("checksum", [False, True], ids=["plain", "dss-checksum"])
def test_two_subflow_transfer_is_exact_and_checks(tmp_path, checksum, lab_host):
    pcap = tmp_path / "two-subflows.pcap"
    size, reply = 40000, 30000
    with Lab(checksum=checksum) as lab:
        names = set(lab.ns_names.values())
        assert names <= set(list_namespaces())
        lab.rate_limit_all()
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        with lab.capture(pcap) as cap:
            server, client = lab.transfer(size=size, reply=reply, first=1000, wait_subflows=2)
    assert not names & set(list_namespaces()), "the lab left namespaces behind"

    assert {k: server[k] for k in ("length", "sha256")} == expected(size)
    assert client["reply"] == expected(reply, 1)
    assert client["subflows"] == 2 and not server["reset"] and not client["reset"]
    assert cap.stats.get("dropped") == 0 and cap.stats.get("captured", 0) > 20

    rep = check_capture(pcap)
    assert all(rep.options[o] for o in JOIN_OPTIONS), dict(rep.options)
    if checksum:
        assert_checked(rep, JOIN_CHECKS + ("DSS checksum present when negotiated", "DSS checksum"))
        assert not rep.unverifiable, dict(rep.unverifiable)
    else:
        assert_checked(rep, JOIN_CHECKS + ("no DSS checksum unless negotiated",))


@pytest.mark.lab
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_lab_cleans_up_when_the_block_raises(tmp_path, exc, lab_host):
    with pytest.raises(exc, match="inside the lab"):
        with Lab() as lab:
            names = set(lab.ns_names.values())
            sleeper = lab.popen("server", "sleep", "60")
            with lab.capture(tmp_path / "x.pcap"):
                raise exc("inside the lab")
    assert sleeper.poll() is not None, "a process started in the lab outlived it"
    assert not names & set(list_namespaces())


@pytest.mark.lab
def test_cleanup_leftovers_removes_only_those_of_dead_processes(lab_host):
    prefix = f"{PREFIX}test{os.getpid()}"
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone_name, live_name = f"{prefix}-{dead.pid}-0-client", f"{prefix}-{os.getpid()}-0-client"
    try:
        for ns in (gone_name, live_name):
            subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
        assert cleanup_leftovers(prefix) == [gone_name]
        assert list_namespaces(prefix) == [live_name]
        assert cleanup_leftovers(prefix, everything=True) == [live_name]
        assert list_namespaces(prefix) == []
    finally:
        cleanup_leftovers(prefix, everything=True)


# ---------------------------------------------------------------------------------- no root


def test_need_root_skips_or_fails_in_ci(monkeypatch):
    monkeypatch.setattr(labhost, "lab_problem", lambda tools=labhost.TOOLS: "no lab here")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no lab here"):
        need_lab()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no lab here"):
        need_lab()
    monkeypatch.setattr(labhost, "lab_problem", lambda tools=labhost.TOOLS: None)
    need_lab()


# What each committed capture must exercise: option classes seen, checks verified (non-zero).
COMMITTED = {
    "v4-two-subflows.pcap": (LINKTYPE_LINUX_SLL, JOIN_OPTIONS, JOIN_CHECKS + ("no DSS checksum unless negotiated",)),
    "v6-two-subflows.pcap": (LINKTYPE_LINUX_SLL, JOIN_OPTIONS, JOIN_CHECKS + ("no DSS checksum unless negotiated",)),
    "v4-checksum.pcap": (
        LINKTYPE_LINUX_SLL,
        JOIN_OPTIONS,
        JOIN_CHECKS + ("DSS checksum present when negotiated", "DSS checksum"),
    ),
    "v4-add-addr.pcap": (
        LINKTYPE_LINUX_SLL,
        JOIN_OPTIONS + ("AddAddr", "RemoveAddr", "MpPrio"),
        JOIN_CHECKS + ("ADD_ADDR HMAC",),
    ),
    "v4-server-signals.pcap": (
        LINKTYPE_LINUX_SLL,
        JOIN_OPTIONS + ("AddAddr", "MpPrio"),
        JOIN_CHECKS + ("ADD_ADDR HMAC",),
    ),
    "v4-remove-addr.pcap": (
        LINKTYPE_LINUX_SLL,
        JOIN_OPTIONS + ("RemoveAddr",),
        JOIN_CHECKS + ("no DSS checksum unless negotiated",),
    ),
    "v4-reinjection.pcap": (LINKTYPE_LINUX_SLL, JOIN_OPTIONS, JOIN_CHECKS + ("no DSS checksum unless negotiated",)),
    "v4-fastclose.pcap": (
        LINKTYPE_ETHERNET,
        ("MpCapable", "Dss", "MpFastclose", "MpTcpRst"),
        (REENCODED, ECHOED, FIRST_DSN),
    ),
    "v4-tfo.pcap": (LINKTYPE_ETHERNET, ("MpCapable", "Dss"), (REENCODED, ECHOED, FIRST_DSN)),
    "v4-loss.pcap": (LINKTYPE_LINUX_SLL, JOIN_OPTIONS, JOIN_CHECKS + ("no DSS checksum unless negotiated",)),
    "v4-stall.pcap": (LINKTYPE_ETHERNET, ("MpCapable", "Dss"), (REENCODED, ECHOED, FIRST_DSN)),
}


def test_committed_captures_are_the_documented_ones():
    present = {p.name for p in DATA.glob("*.pcap")}
    assert present == set(COMMITTED)
    sizes = {p.name: p.stat().st_size for p in DATA.glob("*.pcap")}
    assert all(s < 200_000 for s in sizes.values()), sizes
    assert sum(sizes.values()) < 1_000_000
    readme = (DATA / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in COMMITTED)


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_committed_capture_checks(name):
    linktype, options, checks = COMMITTED[name]
    path = DATA / name
    assert {rec.linktype for rec in read_records(path)} == {linktype}
    rep = check_capture(path)
    missing = [o for o in options if rep.options[o] == 0]
    assert not missing, f"{name} lacks {missing}; has {dict(rep.options)}"
    assert_checked(rep, checks)
    assert not rep.unverifiable, dict(rep.unverifiable)


def test_committed_tfo_capture_has_data_in_a_syn_with_mp_capable():
    syns = []
    for rec in read_records(DATA / "v4-tfo.pcap"):
        pkt = decode_packet(rec)
        if pkt is None or not pkt.flags & TcpFlags.SYN or pkt.flags & TcpFlags.ACK:
            continue
        if pkt.payload and any(isinstance(o, MpCapable) for o in decode_tcp_options(pkt.options).mptcp):
            syns.append(pkt)
    assert len(syns) == 1 and len(syns[0].payload) == 1000
