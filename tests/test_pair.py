"""``mptcpspec pair`` and ``dissect --pair-with`` on a kernel connection captured at both ends.

``tests/data/pair/direct-*.pcap``: one MPTCP connection, two subflows, 100,000 octets up and 10,000
down, captured at the same time in the client's and in the server's namespace (one clock, no
router: nothing lost or changed on the way).  tshark is the oracle for what matching must agree on:
the two copies of a segment have the same IP identification, length, relative sequence number
and flags, and the one-way delay is the difference of tshark's capture times.  The lab's
captures through a router (loss, NAT, MSS clamping, a black hole) are in ``test_pair_lab.py``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.errors import MptcpspecError
from mptcpspec.pair import PairError, pair_captures
from tests.conftest import DATA, need_tshark, need_wireshark
from tests.dissect_helpers import cli

CLIENT = DATA / "pair" / "direct-client.pcap"
SERVER = DATA / "pair" / "direct-server.pcap"
UP, DOWN = 100_000, 10_000  # octets the lab sent each way (and checked at the other end)
TSHARK_FIELDS = ("frame.number", "frame.time_epoch", "ip.id", "tcp.len", "tcp.seq", "tcp.flags", "tcp.stream")


def tshark_rows(path: Path) -> dict[int, dict[str, str]]:
    args = [need_tshark(), "-n", "-r", str(path), "-T", "fields"]
    for f in TSHARK_FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    rows = {}
    for line in out.splitlines():
        cells = dict(zip(TSHARK_FIELDS, line.split("\t")))
        rows[int(cells["frame.number"])] = cells
    return rows


def ns(epoch: str) -> int:
    return int(Decimal(epoch) * 1_000_000_000)


@pytest.fixture(scope="module")
def pairing():
    return pair_captures(CLIENT, SERVER, names=("client.pcap", "server.pcap"))


def test_subflows_and_connection(pairing):
    r = pairing.report
    assert not r.swapped and not r.client_only and not r.server_only
    (c,) = r.connections
    assert (c.client_stream, c.server_stream, c.version) == (0, 0, 1)
    assert c.client_key is not None and c.server_key is not None and c.fallback is None
    kinds = [(s.client_stream, s.server_stream, s.kind, s.matched_by) for s in c.subflows]
    assert kinds == [
        (0, 0, "MP_CAPABLE", "the MP_CAPABLE keys"),
        (1, 1, "MP_JOIN", "the MP_JOIN SYN's token and nonce"),
    ]
    for s in c.subflows:
        assert s.client_view == s.server_view  # no NAT
        for f in s.flows:
            assert f.sent == f.received == f.matched > 0
            assert (f.lost, f.injected, f.outside, f.changes, f.hops) == (0, 0, 0, (), 0)


def test_every_match_is_the_same_segment_for_tshark(pairing):
    """Each client frame and its peer: tshark shows the same IP ID, length, relative sequence
    number, flags and TCP stream; every frame of both captures is matched."""
    a, b = tshark_rows(CLIENT), tshark_rows(SERVER)
    client, server = pairing.frames
    assert set(client) == set(a) and set(server) == set(b)
    for n, got in client.items():
        peer = got.peer_frame
        assert peer is not None and server[peer].peer_frame == n
        for f in ("ip.id", "tcp.len", "tcp.seq", "tcp.flags", "tcp.stream"):
            assert a[n][f] == b[peer][f], (n, peer, f)


def test_one_way_delays_are_tshark_time_differences(pairing):
    a, b = tshark_rows(CLIENT), tshark_rows(SERVER)
    o = pairing.report.offset
    # one clock: the true offset (0) lies within the estimate's bound
    assert not o.given and o.uncertainty_ns is not None and abs(o.offset_ns) <= o.uncertainty_ns
    assert o.forward_min_ns is not None and o.reverse_min_ns is not None
    assert o.offset_ns == (o.forward_min_ns - o.reverse_min_ns) // 2
    client, server = pairing.frames
    c_infos = {i.number: i for i in Dissection(CLIENT, verify=False)}
    for n, got in client.items():
        peer = got.peer_frame
        assert peer is not None
        sent_here = c_infos[n].from_client is not False and (c_infos[n].from_client or c_infos[n].connection is None)
        delta = ns(b[peer]["frame.time_epoch"]) - ns(a[n]["frame.time_epoch"])
        want = delta - o.offset_ns if sent_here else -delta + o.offset_ns
        assert got.owd_ns == want == server[peer].owd_ns, n
        assert got.owd_ns is not None and got.owd_ns >= -o.uncertainty_ns
    owd = pairing.report.connections[0].subflows[0].flows[0].owd
    assert owd.count == owd_count(pairing, 0, 0) and owd.min_ns <= owd.median_ns <= owd.p95_ns <= owd.max_ns


def owd_count(pairing, subflow: int, flow: int) -> int:
    f = pairing.report.connections[0].subflows[subflow].flows[flow]
    return f.matched


def test_data_level(pairing):
    """The receiver's data level adds up to what the lab sent; each segment that waited became in
    order when a later frame of the receiver's capture arrived."""
    (c,) = pairing.report.connections
    up, down = c.reordering
    assert (up.direction, up.octets, down.direction, down.octets) == ("client→server", UP, "server→client", DOWN)
    for o in (up, down):
        assert sum(g.octets for g in o.goodput) == o.octets
        assert abs(sum(g.share for g in o.goodput) - 1) < 1e-9
        assert o.never == 0 and o.delay.count == o.waited
        assert sum(n for _, n, _ in o.held_up_by) == o.waited
    assert up.waited > 0  # two shaped subflows: data waits for the slower one
    assert not c.reinjections
    times = {i.number: i.timestamp_ns for i in Dissection(SERVER, verify=False)}
    server = pairing.frames[1]
    waits = {n: f.ooo_delay_ns for n, f in server.items() if f.ooo_delay_ns}
    assert up.delay.min_ns and len(waits) == up.waited  # every wait here is above zero
    assert max(waits.values()) == up.delay.max_ns
    later = set(times.values())
    for n, wait in waits.items():
        assert times[n] + wait in later, n


def test_given_server_first_is_turned_round(pairing):
    p = pair_captures(SERVER, CLIENT, names=("server.pcap", "client.pcap"))
    assert p.report.swapped
    assert (p.report.client, p.report.server) == ("client.pcap", "server.pcap")
    assert p.report.connections == pairing.report.connections
    assert p.frames == pairing.frames[::-1]  # as given: the first dict is the first capture's


def test_offset_recovered_from_shifted_capture(tmp_path, pairing):
    """editcap -t shifts the server's capture by a known amount: the estimate recovers it within
    its own stated bound, and --offset given reproduces the unshifted delays."""
    shifted = tmp_path / "server-shifted.pcap"
    subprocess.run([need_wireshark("editcap"), "-t", "2.5", str(SERVER), str(shifted)], check=True, timeout=60)
    p = pair_captures(CLIENT, shifted)
    o = p.report.offset
    assert o.uncertainty_ns is not None
    assert abs(o.offset_ns - 2_500_000_000) <= o.uncertainty_ns
    assert abs(o.offset_ns - 2_500_000_000) <= 100_000  # a loaded lab still has delays under 0.1 ms
    base = pairing.report.offset.offset_ns
    given = pair_captures(CLIENT, shifted, offset_ns=2_500_000_000 + base)
    assert given.report.offset.given and given.frames == pairing.frames
    r = cli(
        "pair", "-r", str(CLIENT), "-r", str(shifted), "--json", "--offset", f"{Decimal(2_500_000_000 + base) / 10**9}"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["offset"]["offset_ns"] == 2_500_000_000 + base


def test_cli_report_and_json():
    r = cli("pair", "-r", str(CLIENT), "-r", str(SERVER))
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == f"client  {CLIENT}" and lines[1] == f"server  {SERVER}"
    assert any(line.startswith("MPTCP stream 0 ↔ 0  v1  keys client 0x") for line in lines)
    assert sum(1 for line in lines if line.startswith("  subflow  tcp.stream")) == 2
    assert any(line.startswith(f"  goodput  client→server  {UP} octets: tcp.stream 0 ") for line in lines)
    j = json.loads(cli("pair", "-r", str(CLIENT), "-r", str(SERVER), "--json").stdout)
    assert [s["kind"] for s in j["connections"][0]["subflows"]] == ["MP_CAPABLE", "MP_JOIN"]
    swapped = cli("pair", "-r", str(SERVER), "-r", str(CLIENT))
    assert swapped.returncode == 0 and "is the client's capture" in swapped.stderr
    assert cli("pair", "-r", str(CLIENT), "-r", str(SERVER), "--stream", "0").stdout == r.stdout


def test_fields_and_filters_with_pair_with(pairing):
    r = cli(
        "dissect", "-r", str(SERVER), "--pair-with", str(CLIENT), "-Y", "mptcp.pair.ooo_delay > 0",
        "-T", "fields", "-e", "frame.number", "-e", "mptcp.pair.peer_frame", "-e", "mptcp.pair.owd",
        "-e", "mptcp.pair.ooo_delay",
    )  # fmt: skip
    assert r.returncode == 0 and r.stderr == "", r.stderr
    server = pairing.frames[1]
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert [int(x[0]) for x in rows] == sorted(n for n, f in server.items() if f.ooo_delay_ns)
    for n, peer, owd, wait in rows:
        f = server[int(n)]
        assert int(peer) == f.peer_frame
        assert ns(owd) == f.owd_ns and ns(wait) == f.ooo_delay_ns
    # without a second capture the fields are empty, and the compiled path gives the same row
    plain = cli("dissect", "-r", str(SERVER), "-T", "fields", "-e", "frame.number", "-e", "mptcp.pair.owd")
    assert plain.returncode == 0 and all(line.endswith("\t") for line in plain.stdout.splitlines())
    usage = cli("dissect", "-r", str(SERVER), "--pair-offset", "1")
    assert usage.returncode == 2 and "--pair-with" in usage.stderr


def test_fields_listed():
    r = cli("dissect", "--list-fields")
    names = [line.split("\t")[0] for line in r.stdout.splitlines()]
    for n in ("owd", "lost", "injected", "peer_frame", "reinjection_useful", "ooo_delay", "changes"):
        assert f"mptcp.pair.{n}" in names


# --------------------------------------------------------------------------- bad input


def test_same_capture_twice(tmp_path):
    copy = tmp_path / "copy.pcap"
    copy.write_bytes(CLIENT.read_bytes())
    with pytest.raises(PairError, match="same capture"):
        pair_captures(CLIENT, copy)
    r = cli("pair", "-r", str(CLIENT), "-r", str(copy))
    assert r.returncode == 3 and "the same capture" in r.stderr and "Traceback" not in r.stderr


def test_captures_of_different_connections():
    other = DATA / "v4-two-subflows.pcap"
    r = cli("pair", "-r", str(CLIENT), "-r", str(other))
    assert r.returncode == 3 and "share no connection" in r.stderr and "Traceback" not in r.stderr
    assert "client key 0x" in r.stderr  # it says which connections each holds


def without_mptcp(src: Path, dst: Path, shift_s: int = 0) -> None:
    """A copy of a capture (pcap, Linux cooked v1) with every MPTCP option overwritten by NOPs and
    the times shifted: what a plain TCP connection's capture holds."""
    blob = bytearray(src.read_bytes())
    assert struct.unpack_from("<I", blob, 20)[0] == 113  # LINUX_SLL
    off = 24
    while off < len(blob):
        sec, _, incl, _ = struct.unpack_from("<IIII", blob, off)
        struct.pack_into("<I", blob, off, sec + shift_s)
        ip = off + 16 + 16
        if blob[ip] >> 4 == 4 and blob[ip + 9] == 6:
            tcp = ip + (blob[ip] & 15) * 4
            end = tcp + (blob[tcp + 12] >> 4) * 4
            i = tcp + 20
            while i < end and blob[i] != 0:
                if blob[i] == 1:
                    i += 1
                    continue
                size = blob[i + 1]
                if blob[i] == 30:
                    blob[i : i + size] = b"\x01" * size
                i += size
        off += 16 + incl
    dst.write_bytes(bytes(blob))


def test_captures_without_mptcp(tmp_path):
    """Two captures of a plain TCP connection: nothing to pair at the MPTCP level."""
    a, b = tmp_path / "plain-client.pcap", tmp_path / "plain-server.pcap"
    without_mptcp(CLIENT, a)
    without_mptcp(SERVER, b, shift_s=1)
    assert (
        "mptcp"
        not in subprocess.run(
            [need_tshark(), "-r", str(a), "-Y", "mptcp"], capture_output=True, text=True, check=True
        ).stdout
    )
    r = cli("pair", "-r", str(a), "-r", str(b))
    assert r.returncode == 3 and "neither" in r.stderr and "MPTCP" in r.stderr and "Traceback" not in r.stderr


def test_usage_errors(tmp_path):
    one = cli("pair", "-r", str(CLIENT))
    assert one.returncode == 2 and "two captures" in one.stderr
    missing = cli("pair", "-r", str(CLIENT), "-r", str(tmp_path / "nope.pcap"))
    assert missing.returncode == 3 and "no such file" in missing.stderr
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all" * 10)
    bad = cli("pair", "-r", str(CLIENT), "-r", str(junk))
    assert bad.returncode == 3 and "Traceback" not in bad.stderr
    stream = cli("pair", "-r", str(CLIENT), "-r", str(SERVER), "--stream", "7")
    assert stream.returncode == 3 and "no MPTCP stream 7" in stream.stderr
    offset = cli("pair", "-r", str(CLIENT), "-r", str(SERVER), "--offset", "soon")
    assert offset.returncode == 2


def test_cut_capture_is_read_to_the_cut(tmp_path):
    """A server capture cut inside a record: paired up to the cut, said on stderr, exit status 1;
    what the client sent after the cut is neither lost nor received."""
    cut = tmp_path / "cut.pcap"
    blob = SERVER.read_bytes()
    cut.write_bytes(blob[: len(blob) // 2 + 7])
    r = cli("pair", "-r", str(CLIENT), "-r", str(cut), "--json")
    assert r.returncode == 1 and f"{cut}: the file ends inside record" in r.stderr and "Traceback" not in r.stderr
    j = json.loads(r.stdout)
    assert j["server_read"]["problems"] and not j["client_read"]["problems"]
    flows = [f for s in j["connections"][0]["subflows"] for f in s["flows"]]
    assert all(f["lost"] == 0 for f in flows) and sum(f["outside"] for f in flows) > 0


_SERVER_BYTES = SERVER.read_bytes()


def _records(blob: bytes) -> list[tuple[int, int]]:
    """(offset of the frame, its length) of each record of a pcap file."""
    out, off = [], 24
    while off + 16 <= len(blob):
        incl = struct.unpack_from("<I", blob, off + 8)[0]
        out.append((off + 16, incl))
        off += 16 + incl
    return out


_RECORDS = _records(_SERVER_BYTES)


@settings(max_examples=40 if os.environ.get("CI") == "true" else 25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_RECORDS) - 1), st.integers(16, 120), st.integers(0, 255)), max_size=12))
def test_mangled_server_capture(tmp_path_factory, changes):
    """Octets of the server's frames changed (headers, options: what a middlebox or a bad capture
    does): the pairing either reports or says why it cannot, and its counts add up."""
    blob = bytearray(_SERVER_BYTES)
    for record, at, value in changes:
        start, size = _RECORDS[record]
        if at < size:
            blob[start + at] = value
    path = tmp_path_factory.mktemp("mangled") / "server.pcap"
    path.write_bytes(bytes(blob))
    try:
        p = pair_captures(CLIENT, path)
    except MptcpspecError:
        return
    for c in p.report.connections:
        for s in c.subflows:
            for f in s.flows:
                assert f.matched + f.lost == f.sent  # a segment received joined to others counts as matched
                assert f.owd.count == f.matched
        for o in c.reordering:
            assert sum(g.octets for g in o.goodput) == o.octets


def test_committed_router_captures_match_their_facts():
    """The committed captures through the lab's router (``tests/data/pair/make.py``): the losses
    are nftables' counts, segments and IP octets; the translation is the router's."""
    pair_dir = DATA / "pair"
    facts = json.loads((pair_dir / "loss-facts.json").read_text())
    p = pair_captures(pair_dir / "loss-client.pcap", pair_dir / "loss-server.pcap")
    flows = {(s.client_view.split(":")[0], f.direction): f for s in p.report.connections[0].subflows for f in s.flows}
    packets, octets = facts["loss"]["lost"]
    assert flows[("203.0.113.1", "client→server")].lost == packets > 0
    assert sum(f.lost for f in flows.values()) == packets
    r = cli("dissect", "-r", str(pair_dir / "loss-client.pcap"), "--pair-with", str(pair_dir / "loss-server.pcap"),
            "-Y", "mptcp.pair.lost", "-T", "fields", "-e", "ip.len")  # fmt: skip
    assert sum(map(int, r.stdout.split())) == octets
    nat = json.loads((pair_dir / "nat-facts.json").read_text())["nat"]
    p = pair_captures(pair_dir / "nat-client.pcap", pair_dir / "nat-server.pcap")
    joined = [s for s in p.report.connections[0].subflows if s.kind == "MP_JOIN"][0]
    a, b = nat["original"], nat["translated"]
    assert joined.client_view.startswith(f"{a['address']}:{a['port']} ")
    assert joined.server_view.startswith(f"{b['address']}:{b['port']} ")
    details = {c.detail for c in joined.flows[0].changes}
    assert f"source port {a['port']} -> {b['port']}" in details


def test_text_and_json_show_the_other_end():
    pair_dir = DATA / "pair"
    args = ("-r", str(pair_dir / "loss-client.pcap"), "--pair-with", str(pair_dir / "loss-server.pcap"), "-c", "14")
    text = cli("dissect", *args).stdout.splitlines()
    at = [k for k, line in enumerate(text) if line.startswith("    14 ")][0]
    assert text[at + 1] == "    [Other end: never received (lost on the way)]"  # the router dropped frame 14
    rows = [json.loads(line) for line in cli("dissect", *args, "-T", "json").stdout.splitlines()]
    assert rows[-1]["pair"]["lost"] is True and rows[-1]["frame"] == 14
    assert rows[12]["pair"]["peer_frame"] == 13 and rows[12]["pair"]["owd_ns"] > 0


def rewritten_server(dst: Path, shift: int, forge_after: int) -> int:
    """The server's capture as a middlebox that shifts the client's sequence numbers by ``shift``
    (and the server's acknowledgements back) would leave it, plus one segment no host sent (a copy
    of frame ``forge_after`` with another IP identification and sequence number) put after that
    frame: returns the forged frame's number."""
    blob = SERVER.read_bytes()
    out = bytearray(blob[:24])
    number = forged = 0
    for start, size in _records(blob):
        head = bytearray(blob[start - 16 : start])
        frame = bytearray(blob[start : start + size])
        ip = 16
        tcp = ip + (frame[ip] & 15) * 4
        from_client = frame[ip + 12 : ip + 16] in (bytes([198, 51, 100, 1]), bytes([203, 0, 113, 1]))
        field = tcp + 4 if from_client else tcp + 8  # the client's sequence space: its seq, the server's ack
        if frame[tcp + 13] & 0x10 or from_client:
            value = (struct.unpack_from(">I", frame, field)[0] + shift) & 0xFFFFFFFF
            struct.pack_into(">I", frame, field, value)
        out += head + frame
        number += 1
        if number == forge_after:
            fake = bytearray(frame)
            struct.pack_into(">H", fake, ip + 4, (struct.unpack_from(">H", fake, ip + 4)[0] + 7777) & 0xFFFF)
            struct.pack_into(">I", fake, tcp + 4, (struct.unpack_from(">I", fake, tcp + 4)[0] + 5_000_000) & 0xFFFFFFFF)
            out += head + fake
            number += 1
            forged = number
    dst.write_bytes(bytes(out))
    return forged


def test_sequence_shift_and_a_segment_made_on_the_way(tmp_path):
    server = tmp_path / "server.pcap"
    forged = rewritten_server(server, 1000, 40)
    p = pair_captures(CLIENT, server)
    for s in p.report.connections[0].subflows:
        up = [f for f in s.flows if f.direction == "client→server"][0]
        shifted = [c for c in up.changes if c.what == "sequence numbers shifted"]
        assert [c.detail for c in shifted] == ["+1000"] and shifted[0].segments == up.matched == up.sent
        assert up.lost == 0
    injected = [f for s in p.report.connections[0].subflows for f in s.flows if f.injected]
    assert len(injected) == 1 and injected[0].injected_frames == (forged,)
    assert p.frames[1][forged].injected and p.frames[1][forged].peer_frame is None


def test_two_connections_each_with_its_own(tmp_path):
    """The loss and the NAT captures merged (mergecap) at each end: two connections, each paired
    with its own, as when each is paired alone; --stream picks one."""
    pair_dir = DATA / "pair"
    merged = {}
    for role in ("client", "server"):
        merged[role] = tmp_path / f"{role}.pcap"
        parts = [str(pair_dir / f"{name}-{role}.pcap") for name in ("loss", "nat")]
        subprocess.run([need_wireshark("mergecap"), "-F", "pcap", "-w", str(merged[role]), *parts], check=True)
    both = pair_captures(merged["client"], merged["server"]).report
    alone = [
        pair_captures(pair_dir / f"{n}-client.pcap", pair_dir / f"{n}-server.pcap").report for n in ("loss", "nat")
    ]
    assert len(both.connections) == 2 and not both.client_only and not both.server_only

    def summary(c):  # frame numbers differ once merged: the counts and the changes' details
        return [[(f.sent, f.lost, [x.detail for x in f.changes]) for f in s.flows] for s in c.subflows]

    for got, want in zip(both.connections, [a.connections[0] for a in alone]):
        assert (got.client_key, got.server_key) == (want.client_key, want.server_key)
        assert summary(got) == summary(want)
        assert [o.octets for o in got.reordering] == [o.octets for o in want.reordering]
    one = pair_captures(merged["client"], merged["server"], stream=1).report
    assert [c.client_stream for c in one.connections] == [1]
