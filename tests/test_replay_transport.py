"""The replay's raw-socket transport (``replay/transport.py``).

Lab tests (``-m lab``; root, the lab's tools and ``nft``; skipped without them, failing with
``CI=true``) run ``tests/replay_transport_probe.py`` in the lab's client namespace against TCP
listeners (MPTCP sockets; a plain SYN falls back to TCP) on the server's pair-0 addresses, port 5201.
The other tests need no privileges.
"""

from __future__ import annotations

import json
import select
import signal
import struct
import sys
from pathlib import Path

import pytest

from lab import TOOLS, Lab, need_lab
from mptcpspec.capture.packets import TcpFlags, decode_packet
from mptcpspec.capture.pcap import read_records
from mptcpspec.replay import transport
from mptcpspec.replay.transport import RawTransport, TransportError, nft_script
from tests import replay_transport_probe as probe

PROBE = Path(probe.__file__).resolve()
CLIENT, SERVER, PORT = probe.CLIENT, probe.SERVER, probe.PORT


# ---------------------------------------------------------------------------------- in the lab


@pytest.fixture(scope="module")
def lab():
    need_lab(TOOLS + ("nft",))
    with Lab() as lab:
        for fam in (4, 6):
            lab.serve(family=fam, port=PORT, bind=SERVER[fam], timeout=300)
        yield lab


def run_probe(lab: Lab, *args) -> dict:
    r = lab.run("client", sys.executable, PROBE, *args, timeout=60)
    return json.loads(r.stdout.splitlines()[-1])


def nft_tables(lab: Lab) -> str:
    return lab.run("client", "nft", "list", "tables").stdout


def client_rsts(pcap: Path, sport: int) -> list:
    """The RSTs from the client's port ``sport`` to the server's port 5201 in a capture."""
    pkts = (decode_packet(r) for r in read_records(pcap))
    return [
        p
        for p in pkts
        if p and p.flags & TcpFlags.RST and p.sport == sport and p.dport == PORT and str(p.src) in CLIENT.values()
    ]


@pytest.mark.lab
@pytest.mark.parametrize("family,sport", [(4, 45001), (6, 45002)], ids=["ipv4", "ipv6"])
def test_syn_gets_synack_and_the_kernel_rst_stays_home(lab, tmp_path, family, sport):
    with lab.capture(tmp_path / "syn.pcap") as cap:
        out = run_probe(lab, "syn", "--family", family, "--sport", sport)
    synack = out["synack"]
    assert synack, f"no SYN/ACK through recv(); other packets: {out['others']}"
    assert (synack["src"], synack["dst"], synack["ack"]) == (SERVER[family], CLIENT[family], 1001)
    assert synack["flags"] == probe.SYN | probe.ACK
    rsts = client_rsts(tmp_path / "syn.pcap", sport)
    # Only the probe's own RST|ACK (window 1234, sent with send()) is on the wire, not the kernel's RST.
    assert [(int(p.flags), p.window) for p in rsts] == [(probe.RST | probe.ACK, probe.OUR_WINDOW)]
    assert out["stats"]["sent"] == 2 and out["stats"]["received"] >= 1
    assert out["stats"]["dropped_by_filter"] == 0  # the BPF filter kept our own outgoing packets out
    assert out["stats"]["rst_suppressed"] >= 1
    assert cap.stats.get("dropped") == 0
    assert out["table"] in out["tables_open"]
    assert transport.TABLE_PREFIX not in out["tables_after"] + nft_tables(lab)


@pytest.mark.lab
def test_without_the_nft_table_the_kernel_rst_goes_out(lab, tmp_path):
    """The control for the test above: the capture would show the kernel's RST."""
    with lab.capture(tmp_path / "syn.pcap"):
        out = run_probe(lab, "syn", "--sport", 45003, "--no-nft")
    assert out["synack"] and out["tables_open"] == ""
    rsts = [(int(p.flags), p.window) for p in client_rsts(tmp_path / "syn.pcap", 45003)]
    assert (probe.RST, 0) in rsts and (probe.RST | probe.ACK, probe.OUR_WINDOW) in rsts


@pytest.mark.lab
@pytest.mark.parametrize("exc", ["RuntimeError", "KeyboardInterrupt"])
def test_no_table_left_after_an_exception_in_with(lab, exc):
    out = run_probe(lab, "raise", "--exc", exc)
    assert out["raised"] and out["table"] in out["tables_open"]
    assert transport.TABLE_PREFIX not in out["tables_after"] + nft_tables(lab)


@pytest.mark.lab
def test_send_refuses_non_peers_and_sends_nothing(lab, tmp_path):
    with lab.capture(tmp_path / "refuse.pcap"):
        out = run_probe(lab, "refuse")
    assert out["sent"] == 0
    assert len(out["errors"]) == 4
    assert "refusing to send to 198.51.100.3" in out["errors"][0]
    assert "refusing to send from 198.51.100.9" in out["errors"][1]
    assert "refusing to send to 2001:db8:1::2" in out["errors"][2]
    sent = [p for p in map(decode_packet, read_records(tmp_path / "refuse.pcap")) if p and p.sport == 40001]
    assert sent == []


@pytest.mark.lab
def test_rate_limit(lab):
    out = run_probe(lab, "rate", "--count", 200, "--rate", 1000)
    assert out["sent"] == 200
    assert 0.19 <= out["elapsed"] < 2.0


@pytest.mark.lab
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("gso", [True, False], ids=["kernel", "cut-here"])
def test_a_burst_reaches_the_server_as_the_segments_of_its_mss(lab, family, gso):
    """A Burst goes to the kernel to cut (GSO) or, without it, is cut here: either way the server
    gets the same segments, an MSS each (1460 octets, 1440 over IPv6) but the last (its RSTs
    acknowledge each one's end)."""
    args = ("burst", "--family", family) + (() if gso else ("--no-gso",))
    out = run_probe(lab, *args)
    mss = probe.BURST_MSS[family]
    ends = [*range(mss, probe.BURST_LEN, mss), probe.BURST_LEN]
    assert sorted(out["acks"]) == [probe.BURST_SEQ + e for e in ends], out
    st = out["stats"]
    assert (st["bursts"], st["bursts_cut"]) == ((1, 0) if gso else (0, 1)), st
    assert st["sent"] == 1 + len(ends)


@pytest.mark.lab
def test_links_read_over_netlink_are_what_ip_shows(lab):
    """The device and Ethernet header a burst goes with (find_link: the route and the neighbour
    table read over rtnetlink) are those `ip route get` and `ip neigh` give, IPv4 and IPv6, with
    and without a gateway on the route."""
    out = run_probe(lab, "links")
    assert len(out) == len(probe.LINK_PAIRS)
    for pair, v in out.items():
        assert v["want"] is not None, (pair, v)
        assert v["got"] == v["want"], pair


def test_sigterm_closes_then_dies_of_it(lab):
    p = lab.popen("client", sys.executable, PROBE, "hold")
    try:
        r, _, _ = select.select([p.stdout], [], [], 10)
        assert r, "the probe did not open its transport"
        table = json.loads(p.stdout.readline())["table"]
        assert table in nft_tables(lab)
        p.send_signal(signal.SIGTERM)  # `ip netns exec` execs the probe: this is its pid
        assert p.wait(timeout=10) == -signal.SIGTERM
    finally:
        p.kill()
    assert transport.TABLE_PREFIX not in nft_tables(lab)


@pytest.mark.lab
def test_atexit_closes_a_transport_never_closed(lab):
    out = run_probe(lab, "leak")
    assert out["table"] in out["tables_open"]
    assert transport.TABLE_PREFIX not in nft_tables(lab)


@pytest.mark.lab
def test_cleanup_leftovers_removes_only_those_of_dead_processes(lab):
    out = run_probe(lab, "cleanup")
    dead, live = out["names"]
    assert out["gone"] == [dead]
    assert live in out["left"] and dead not in out["left"]
    assert out["after"] == ""


# ---------------------------------------------------------------------------------- no root


def test_nft_script():
    text = nft_script("mptcpspec_replay_7_0", ["198.51.100.1", "2001:db8:1::1", "203.0.113.1"], 0x4D50)
    assert text.startswith("add table inet mptcpspec_replay_7_0\ndelete table inet mptcpspec_replay_7_0\n")
    assert "type filter hook output priority 0; policy accept;" in text
    assert "ip saddr { 198.51.100.1, 203.0.113.1 } tcp flags & rst == rst meta mark != 0x00004d50 counter drop" in text
    assert "ip6 saddr { 2001:db8:1::1 } tcp flags & rst == rst meta mark != 0x00004d50 counter drop" in text
    assert "ip6" not in nft_script("t", ["198.51.100.1"], 1)


def test_filter_incoming():
    t = RawTransport([CLIENT[4], CLIENT[6]], [SERVER[4], SERVER[6]])
    v4 = probe.tcp_ip(SERVER[4], CLIENT[4], PORT, 45001, 7, 1001, probe.SYN | probe.ACK, payload=b"x")
    v6 = probe.tcp_ip(SERVER[6], CLIENT[6], PORT, 45001, 7, 1001, probe.SYN | probe.ACK)
    assert t.filter_incoming(v4) == v4 and t.filter_incoming(v6) == v6
    assert t.filter_incoming(v4 + b"\0" * 5) == v4  # Ethernet padding cut
    refused = {
        "outgoing direction": probe.tcp_ip(CLIENT[4], SERVER[4], 45001, PORT, 1, 0, probe.SYN),
        "other source": probe.tcp_ip("198.51.100.7", CLIENT[4], PORT, 45001, 1, 0, probe.SYN),
        "other destination": probe.tcp_ip(SERVER[4], "203.0.113.1", PORT, 45001, 1, 0, probe.SYN),
        "UDP": v4[:9] + b"\x11" + v4[10:],
        "IPv4 fragment": v4[:6] + b"\x20\x00" + v4[8:],
        "IPv6 extension header": v6[:6] + b"\x00" + v6[7:],
        "cut short": v4[:-1],
        "not IP": b"\x00" * 60,
    }
    assert {k: t.filter_incoming(p) for k, p in refused.items()} == dict.fromkeys(refused)


def test_send_refusals_need_no_socket():
    t = RawTransport([CLIENT[4]], [SERVER[4]])
    with pytest.raises(TransportError, match=r"refusing to send to 198\.51\.100\.3: not a peer address"):
        t.send(probe.tcp_ip(CLIENT[4], "198.51.100.3", 1, 2, 0, 0, probe.SYN))
    with pytest.raises(TransportError, match="not an IPv4 or IPv6 packet"):
        t.send(b"")
    with pytest.raises(TransportError, match="not open"):
        t.send(probe.syn(4, 45001))
    with pytest.raises(TransportError, match="not open"):
        t.recv(0)
    t.close()  # closing a transport never opened is fine
    assert t.stats["sent"] == 0


@pytest.mark.parametrize("kw", [{"mark": 0}, {"rate": 0}, {"local_addrs": []}])
def test_constructor_checks(kw):
    args = {"local_addrs": [CLIENT[4]], "peer_addrs": [SERVER[4]], **kw}
    with pytest.raises(TransportError):
        RawTransport(args.pop("local_addrs"), args.pop("peer_addrs"), **args)


def test_check_privileges_says_what_is_missing(monkeypatch):
    def no_raw(*a, **kw):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(transport.socket, "socket", no_raw)
    with pytest.raises(TransportError, match="needs root or CAP_NET_RAW and CAP_NET_ADMIN"):
        transport.check_privileges()


def test_missing_privileges_for_real():
    """The command, run with no capabilities at all (root's bounding set emptied by setpriv): exit 3
    and one line that says what is missing, before any packet or nftables table."""
    import shutil
    import subprocess

    need_lab(("setpriv", "nft"))
    r = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-all",
            sys.executable,
            "-m",
            "mptcpspec",
            "replay",
            "-r",
            str(Path(__file__).parent / "data" / "v4-two-subflows.pcap"),
            "--target",
            "198.51.100.2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 3, r.stderr
    assert r.stderr.splitlines() == [
        "mptcpspec: error: the replay transport needs root or CAP_NET_RAW and "
        "CAP_NET_ADMIN (raw sockets, nftables): [Errno 1] Operation not permitted"
    ]
    listing = subprocess.run([shutil.which("nft"), "list", "tables"], capture_output=True, text=True).stdout
    assert "mptcpspec_replay" not in listing


def test_cleanup_leftovers_parses_and_deletes_dead_tables(monkeypatch):
    calls = []
    listing = (
        "table inet filter\ntable inet mptcpspec_replay_999999999_0\n"
        "table inet mptcpspec_replay_1_3\ntable ip mptcpspec_other\n"
    )

    def fake_nft(*args, script=None, check=True):
        calls.append(args)
        return type("R", (), {"stdout": listing if args == ("list", "tables") else "", "returncode": 0})()

    monkeypatch.setattr(transport, "_nft", fake_nft)
    monkeypatch.setattr(transport, "_pid_alive", lambda pid: pid == 1)
    assert transport.cleanup_leftovers() == ["mptcpspec_replay_999999999_0"]
    assert calls[1:] == [("delete", "table", "inet", "mptcpspec_replay_999999999_0")]


def test_signal_handlers_only_where_the_default_would_kill(monkeypatch):
    saved = {sig: signal.getsignal(sig) for sig in transport._FATAL}
    mine = lambda *a: None  # noqa: E731
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, mine)
        transport._install_handlers()
        assert signal.getsignal(signal.SIGTERM) is transport._on_fatal_signal
        assert signal.getsignal(signal.SIGHUP) is mine
        transport._remove_handlers()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is mine
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        transport._installed.clear()


def run_bpf(prog: bytes, packet: bytes, pkttype: int) -> int:
    """A classic BPF interpreter for the instructions the transport's filter uses."""
    insns = [struct.unpack("HBBI", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    proto = {4: 0x0800, 6: 0x86DD}.get(packet[0] >> 4, 0)
    pc = a = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code in (0x20, 0x28, 0x30):
            size = {0x20: 4, 0x28: 2, 0x30: 1}[code]
            a = {0xFFFFF000: proto, 0xFFFFF004: pkttype}.get(k)
            if a is None:
                a = int.from_bytes(packet[k : k + size], "big")
        elif code in (0x15, 0x45):
            pc += jt if (a == k if code == 0x15 else a & k) else jf
        else:
            assert code == 0x06
            return k


def test_bpf_filter_keeps_incoming_tcp_only():
    prog = transport._bpf_tcp()
    v4 = probe.tcp_ip(SERVER[4], CLIENT[4], PORT, 45001, 7, 1001, probe.SYN | probe.ACK)
    v6 = probe.tcp_ip(SERVER[6], CLIENT[6], PORT, 45001, 7, 1001, probe.SYN | probe.ACK)
    assert run_bpf(prog, v4, 0) and run_bpf(prog, v6, 0)
    assert not run_bpf(prog, v4, transport.PACKET_OUTGOING)
    assert not run_bpf(prog, v4[:9] + b"\x11" + v4[10:], 0)
    assert not run_bpf(prog, v4[:6] + b"\x20\x00" + v4[8:], 0)
    assert not run_bpf(prog, v6[:6] + b"\x11" + v6[7:], 0)
