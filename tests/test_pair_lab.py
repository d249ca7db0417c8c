"""``mptcpspec pair`` against the kernel, through the lab's router (``lab.pairs``): what the router
did, counted by nftables, is what the pairing reports.

Each scenario captures one MPTCP connection at the client and at the server at once; the router
between them drops, translates, clamps or strips, and its own counters and rules are the ground
truth (``facts.json``).  tshark gives the independent counts where the router's counters cannot.
Lab tests (``-m lab``): root and the lab's tools, else they skip (fail with CI=true).
"""

from __future__ import annotations

import subprocess
import sys
from bisect import bisect_left
from pathlib import Path

import pytest

from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.pair import Flow, Pairing, SubflowPair, pair_captures
from tests.conftest import ROOT, need_tshark
from tests.tshark_fields import RECOMMENDED_PREFS

SCENARIOS = ("loss", "nat", "clamp", "strip", "blackhole")
PATH1 = "203.0.113.1"  # the client's address on path 1 (the joined subflow)


@pytest.fixture(scope="module")
def made(router_pairs) -> dict[str, tuple[Path, dict, Pairing]]:
    """Every scenario (made once for the session: ``router_pairs``), paired: (folder, facts, pairing)."""
    from lab.pairs import CLIENT_PCAP, SERVER_PCAP

    return {
        name: (folder, facts, pair_captures(folder / CLIENT_PCAP, folder / SERVER_PCAP))
        for name, (folder, facts) in router_pairs.items()
        if name in SCENARIOS
    }


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mptcpspec", *args], capture_output=True, text=True, cwd=ROOT)


def subflow(p: Pairing, on_path1: bool) -> SubflowPair:
    (c,) = p.report.connections
    (sf,) = [s for s in c.subflows if s.client_view.startswith(PATH1) == on_path1]
    return sf


def flow(sf: SubflowPair, direction: str) -> Flow:
    (f,) = [f for f in sf.flows if f.direction == direction]
    return f


def changes(f: Flow) -> set[tuple[str, str]]:
    return {(c.what, c.detail) for c in f.changes}


def tshark(path: Path, display_filter: str, *fields: str) -> list[list[str]]:
    """tshark's rows, its MPTCP analysis on (as the differential tests run it)."""
    argv = [need_tshark(), "-n", "-r", str(path), "-Y", display_filter, "-T", "fields", "-E", "occurrence=f"]
    for pref, value in RECOMMENDED_PREFS.items():
        argv += ["-o", f"{pref}:{value}"]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.mark.lab
def test_loss_equals_the_routers_counters(made):
    """The router drops every Nth data segment client -> server on path 1: the segments reported
    lost are exactly those, by count (nftables' counter), by IP octets (its byte counter), and one
    by one (the segments of the client's capture tshark cannot find in the server's)."""
    folder, facts, p = made["loss"]
    packets, octets = facts["loss"]["lost"]
    assert packets > 0
    joined = subflow(p, True)
    assert flow(joined, "client→server").lost == packets
    others = [f for s in p.report.connections[0].subflows for f in s.flows if f is not flow(joined, "client→server")]
    assert all(f.lost == 0 and f.injected == 0 for f in others)
    client = str(folder / "client.pcap")
    r = cli("dissect", "-r", client, "--pair-with", str(folder / "server.pcap"), "-Y", "mptcp.pair.lost",
            "-T", "fields", "-e", "frame.number", "-e", "ip.len")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert len(rows) == packets and sum(int(n) for _, n in rows) == octets
    # tshark: client data segments on path 1 whose IP ID and sequence number the server never saw
    want = "ip.src == 203.0.113.1 && tcp.len > 0"
    sent = {
        (ip, seq): int(n) for n, ip, seq in tshark(folder / "client.pcap", want, "frame.number", "ip.id", "tcp.seq")
    }
    got = {(ip, seq) for _, ip, seq in tshark(folder / "server.pcap", want, "frame.number", "ip.id", "tcp.seq")}
    assert sorted(n for k, n in sent.items() if k not in got) == sorted(int(n) for n, _ in rows)
    # nothing else dropped anything: the hosts' queues lost no packet
    assert not any(n for role in facts["qdisc_drops"].values() for n in role.values())


@pytest.mark.lab
def test_nat_named_and_join_still_matched(made):
    _, facts, p = made["nat"]
    nat = facts["nat"]
    joined = subflow(p, True)
    assert joined.kind == "MP_JOIN" and joined.matched_by == "the MP_JOIN SYN's token and nonce"
    a, b = nat["original"], nat["translated"]
    assert joined.server_view.startswith(f"{b['address']}:{b['port']} -> ")
    up, down = flow(joined, "client→server"), flow(joined, "server→client")
    assert {
        ("translated", f"source address {a['address']} -> {b['address']}"),
        ("translated", f"source port {a['port']} -> {b['port']}"),
        ("TCP checksum", "recomputed"),
    } == changes(up)
    assert ("translated", f"destination port {b['port']} -> {a['port']}") in changes(down)
    assert all(c.segments == up.matched for c in up.changes)  # every segment of it
    assert up.lost == down.lost == 0
    first = subflow(p, False)
    assert not any(f.changes for f in first.flows) and first.client_view == first.server_view


@pytest.mark.lab
def test_mss_clamp_and_option_removed(made):
    folder, facts, p = made["clamp"]
    clamp = facts["clamp"]
    first = subflow(p, False)
    before_c, after_c = clamp["mss_seen"]["client"][0], clamp["mss_seen"]["server"][0]
    up, down = flow(first, "client→server"), flow(first, "server→client")
    assert ("MSS", f"{before_c} -> {after_c}") in changes(up)
    assert ("MSS", f"{clamp['mss_seen']['server'][1]} -> {clamp['mss_seen']['client'][1]}") in changes(down)
    assert ("option removed", f"SACK_PERM ({clamp['removed_kind']})") in changes(up)
    assert not any(w == "option removed" for w, _ in changes(down))
    # the frames named are the SYN and the SYN/ACK in each capture
    syn = "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.srcport != 5201 && ip.src == 198.51.100.1"
    (c_syn,) = tshark(folder / "client.pcap", syn, "frame.number")
    (s_syn,) = tshark(folder / "server.pcap", syn, "frame.number")
    mss = [c for c in up.changes if c.what == "MSS"][0]
    assert mss.frames == ((int(c_syn[0]), int(s_syn[0])),) and mss.segments == 1
    assert not any(f.changes for f in subflow(p, True).flows)  # the join's path is not clamped


@pytest.mark.lab
def test_stripped_mptcp_explains_the_fallback(made):
    folder, facts, p = made["strip"]
    assert facts["strip"]["supported"] and facts["strip"]["fallback"]
    (c,) = p.report.connections
    (sf,) = c.subflows
    assert sf.matched_by == "both initial sequence numbers"
    up = flow(sf, "client→server")
    removed = [x for x in up.changes if x.what == "option removed"]
    assert [x.detail for x in removed] == ["MPTCP MP_CAPABLE (30)"] and removed[0].frames == ((1, 1),)
    assert c.fallback and "removed on the way" in c.fallback and "SYN/ACK carries no MP_CAPABLE" in c.fallback
    r = cli("pair", "-r", str(folder / "client.pcap"), "-r", str(folder / "server.pcap"))
    assert r.returncode == 0 and "TCP connection: MPTCP tried, fell back" in r.stdout


def reference_waits(path: Path) -> dict[int, int]:
    """The data-level waits of a receiver's capture, computed plainly: a data segment is in order
    once every octet before its first has arrived; its wait runs from its arrival to then."""
    infos = [i for i in Dissection(path, verify=False) if i.packet and i.packet.payload_len and i.payload_dsn]
    infos = [i for i in infos if i.from_client]
    have: list[tuple[int, int]] = []  # merged [start, end) received so far
    prefix_at: list[int] = []  # after each arrival: the end of the contiguous data from DSN 1
    for i in infos:
        a, b = i.payload_dsn, i.payload_dsn + i.packet.payload_len
        have.append((a, b))
        have.sort()
        merged: list[list[int]] = []
        for s, e in have:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        have = [(s, e) for s, e in merged]
        prefix_at.append(have[0][1] if have[0][0] <= 1 else 1)
    waits = {}
    for k, i in enumerate(infos):
        if i.payload_dsn + i.packet.payload_len <= (prefix_at[k - 1] if k else 1):
            continue  # a duplicate when it came
        j = bisect_left(prefix_at, i.payload_dsn, lo=k)  # prefix_at only grows
        if j < len(infos):
            waits[i.number] = infos[j].timestamp_ns - i.timestamp_ns
    return waits


@pytest.mark.lab
def test_blackhole_reinjections_and_waits(made):
    """Path 1 dropped both ways for a second: the segments lost are the router's drops; every
    reinjection (mptcp.reinjection_of) is qualified, useful exactly when the receiver got
    its data first from it; each data segment's wait at the receiver is the plain computation's."""
    folder, facts, p = made["blackhole"]
    hole = facts["blackhole"]
    joined = subflow(p, True)
    assert flow(joined, "client→server").lost == hole["dropped"]["client->server"][0] > 0
    assert flow(joined, "server→client").lost == hole["dropped"]["server->client"][0]
    (c,) = p.report.connections
    # the reinjections are the analysis' (mptcp.reinjection_of; tshark 4.0 leaves out some of those
    # whose data a subflow sent again after the black hole: the pairing qualifies the analysis' own)
    theirs = [i.number for i in Dissection(folder / "client.pcap", verify=False) if i.reinjection_of]
    assert sorted(r.sender_frame for r in c.reinjections) == theirs and theirs
    # each verdict from the receiver's capture alone: when did DSN x first arrive, and by which frame
    arrivals: list[tuple[int, int, int, int]] = []  # (dsn, end, time, frame) at the server
    for i in Dissection(folder / "server.pcap", verify=False):
        if i.packet and i.packet.payload_len and i.payload_dsn is not None and i.from_client:
            arrivals.append((i.payload_dsn, i.payload_dsn + i.packet.payload_len, i.timestamp_ns, i.number))
    client_frames = p.frames[0]
    for r in c.reinjections:
        assert r.verdict in ("useful", "redundant", "lost")
        if r.receiver_frame is None:
            assert r.verdict == "lost" and client_frames[r.sender_frame].lost
            continue
        mine = [a for a in arrivals if a[3] == r.receiver_frame]
        others = [a for a in arrivals if a[0] <= r.dsn < a[1] and a[3] != r.receiver_frame]
        first_other = min((a[2] for a in others), default=None)
        useful = first_other is None or first_other > mine[0][2]
        assert (r.verdict == "useful") == useful, r
        assert client_frames[r.sender_frame].reinjection_useful == useful
    assert any(r.verdict == "useful" for r in c.reinjections)
    # the receiver's waits: the plain computation, frame by frame
    ours = {n: f.ooo_delay_ns for n, f in p.frames[1].items() if f.ooo_delay_ns is not None}
    ref = reference_waits(folder / "server.pcap")
    assert {n: w for n, w in ours.items() if w} == {n: w for n, w in ref.items() if w}
    up = [o for o in c.reordering if o.direction == "client→server"][0]
    assert up.delay.max_ns == max(ref.values()) and up.waited >= sum(1 for w in ref.values() if w) > 0
