"""The dissector on the kernel's captures: clean transfers verify, broken ones are caught.

Captures are the lab's (tests/data, see its README): the kernel talking to itself, with known
data (``tests.lab_peer.pattern``).  The broken cases are those captures with one thing changed
in memory: a flipped HMAC octet, a corrupted payload under checksums, a cut option, a third ACK
without its keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mptcpspec.analysis.core import Analyzer
from mptcpspec.analysis.expert import KINDS, Severity
from mptcpspec.capture.packets import decode_frame
from mptcpspec.capture.pcap import read_records
from mptcpspec.codec.crypto import Verdict
from mptcpspec.dissect.follow import Follower
from mptcpspec.dissect.pipeline import Dissection
from tests.lab_peer import pattern

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def run(path) -> tuple[list, Dissection]:
    d = Dissection(path)
    return list(d), d


def experts(infos) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in infos:
        for e in i.experts:
            out[e.key] = out.get(e.key, 0) + 1
    return out


def verdicts(infos) -> dict[tuple[str, str], int]:
    out: dict = {}
    for i in infos:
        for c in i.checks:
            k = (c.what, c.verdict.name)
            out[k] = out.get(k, 0) + 1
    return out


# --------------------------------------------------------------------------- clean captures

CLEAN = {
    # file: (connections, subflows of the first, checks that must be verified at least once)
    "v4-two-subflows.pcap": (1, 2, {"MP_JOIN SYN/ACK HMAC (v1)", "MP_JOIN ACK HMAC (v1)", "MP_CAPABLE echoed key"}),
    "v6-two-subflows.pcap": (1, 2, {"MP_JOIN SYN/ACK HMAC (v1)", "MP_JOIN ACK HMAC (v1)"}),
    "v4-checksum.pcap": (1, 2, {"DSS checksum", "MP_JOIN ACK HMAC (v1)"}),
    "v4-add-addr.pcap": (1, 3, {"ADD_ADDR HMAC (v1)", "MP_JOIN SYN/ACK HMAC (v1)"}),
    "v4-fastclose.pcap": (1, 1, {"MP_FASTCLOSE key"}),
    "v4-tfo.pcap": (2, 1, {"MP_CAPABLE echoed key"}),
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_capture_verifies_and_raises_nothing(name):
    infos, d = run(DATA / name)
    nconn, nsub, must = CLEAN[name]
    conns = d.connections()
    assert len(conns) == nconn
    assert len(conns[0].subflows) == nsub
    v = verdicts(infos)
    assert not [k for k in v if k[1] != "VERIFIED"], v
    assert must <= {what for what, _ in v}, v
    # Nothing above "chat" on a clean transfer, but the MP_TCPRST the abortive close sends.
    loud = {k: n for k, n in experts(infos).items() if KINDS[k][0] > Severity.CHAT and k != "mptcp.tcprst"}
    assert loud == {}
    for c in conns:
        s = c.summary()
        assert (s.client_state, s.server_state) == ("M_CLOSED", "M_CLOSED"), s
        assert all(sf.state == "A=ESTABLISHED B=ESTABLISHED" for sf in s.subflows), s.subflows
        assert s.fallback is None


def test_checksum_capture_verifies_every_checksummed_mapping():
    infos, d = run(DATA / "v4-checksum.pcap")
    # Linux repeats a mapping on each segment it covers: each distinct mapping is checked once.
    # The first data's MP_CAPABLE (v1, 24 octets) carries the checksum of its implicit mapping.
    mappings = {
        (i.tcp_stream, i.from_client, getattr(o, "dsn", None), getattr(o, "ssn", None), o.data_level_length, o.checksum)
        for i in infos
        for o in i.mptcp
        if type(o).__name__ in ("Dss", "MpCapable") and o.checksum is not None
    }
    v = verdicts(infos)
    assert v[("DSS checksum", "VERIFIED")] == len(mappings) > 10


def test_add_addr_history_and_address_state():
    infos, d = run(DATA / "v4-add-addr.pcap")
    s = d.connections()[0].summary()
    events = [e for _, e in s.history]
    assert any(e.startswith("server ADD_ADDR id 5 203.0.113.2") for e in events)
    assert any("ADD_ADDR echo" in e for e in events)
    assert any("REMOVE_ADDR id(s) 5" in e for e in events)
    assert any("MP_PRIO backup=1" in e for e in events)
    ((side, aid, addr, port, added, removed),) = s.addresses
    assert (side, aid, addr) == ("server", 5, "203.0.113.2") and removed > added


def test_fastclose_closes_both_sides_and_names_the_reason():
    infos, d = run(DATA / "v4-fastclose.pcap")
    s = d.connections()[0].summary()
    assert s.subflows[0].reset and s.subflows[0].tcprst_reason == "UNSPECIFIED"
    assert experts(infos) == {"mptcp.tcprst": 1}


def test_data_level_bytes_equal_what_the_applications_sent():
    # (tests/data/README.md says what the lab's applications sent in each capture)
    sent = {
        "v4-two-subflows.pcap": [(32768, 32768)],
        "v4-fastclose.pcap": [(16384, 16384)],
        # the second connection's SYN carries 1000 of its 3000 octets (TCP Fast Open), and the server takes them
        "v4-tfo.pcap": [(3000, 4096), (3000, 4096)],
    }
    for name, want in sent.items():
        _, d = run(DATA / name)
        got = [(s.client_bytes, s.server_bytes) for s in (c.summary() for c in d.connections())]
        assert got == want, name


# --------------------------------------------------------------------------- follow


def follow(path, stream=0):
    a, b = io.BytesIO(), io.BytesIO()
    f = Follower(stream, a, b)
    for info in Dissection(path):
        f.feed(info)
    reports = f.finish()
    return a.getvalue(), b.getvalue(), reports


@pytest.mark.parametrize(
    "name, server_seed",
    [
        ("v4-two-subflows.pcap", 1),
        ("v6-two-subflows.pcap", 1),
        ("v4-checksum.pcap", 1),
        ("v4-add-addr.pcap", 1),
        ("v4-fastclose.pcap", 1),
        ("v4-reinjection.pcap", 1),
    ],
)
def test_follow_gives_the_bytes_the_applications_sent(name, server_seed):
    up, down, (ru, rd) = follow(DATA / name)
    assert up == pattern(len(up), 0) and len(up) >= 16384
    assert down == pattern(len(down), server_seed) and len(down) >= 16384
    assert ru.gaps == [] and rd.gaps == []


def test_reinjections_of_a_blackholed_subflow():
    """v4-reinjection.pcap: the joined subflow goes dark mid-transfer; the kernel sends its data again
    on the first subflow.  tshark 4.0 finds the same 7 reinjected segments (the differential test
    compares mptcp.reinjection_of on every packet)."""
    infos, d = run(DATA / "v4-reinjection.pcap")
    again = {i.number: i.reinjection_of for i in infos if i.reinjection_of}
    assert len(again) == 7 and experts(infos)["mptcp.dss.reinjection"] == 7
    s = d.connections()[0].summary()
    assert s.client_reinjected == sum(i.packet.payload_len for i in infos if i.reinjection_of)
    assert s.client_reinjected > 0 and s.server_reinjected == 0
    for n, earlier in again.items():  # the reinjection is on the other subflow, the data the same
        for e in earlier:
            a, b = infos[n - 1], infos[e - 1]
            assert a.subflow is not b.subflow and a.payload_dsn < b.payload_dsn + b.packet.payload_len
            assert b.payload_dsn < a.payload_dsn + a.packet.payload_len
    assert not any(i.reinjected_in for i in infos)  # known to a second pass only
    # Two passes: the links the other way, as Wireshark's mptcp.reinjected_in
    two = list(Dissection(DATA / "v4-reinjection.pcap", two_pass=True))
    back: dict[int, list[int]] = {}
    for n, earlier in again.items():
        for e in earlier:
            back.setdefault(e, []).append(n)
    assert {i.number: list(i.reinjected_in) for i in two if i.reinjected_in} == back
    assert [i.reinjection_of for i in two] == [i.reinjection_of for i in infos]
    with open(DATA / "v4-reinjection.pcap", "rb") as f:  # a file object is read twice too
        assert [i.reinjected_in for i in Dissection(f, two_pass=True)] == [i.reinjected_in for i in two]
    r = cli(
        "dissect",
        "-2",
        "-r",
        str(DATA / "v4-reinjection.pcap"),
        "-Y",
        "mptcp.reinjected_in",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "mptcp.reinjected_in",
    )
    assert r.returncode == 0 and r.stdout.splitlines() == [
        f"{e}\t{','.join(map(str, v))}" for e, v in sorted(back.items())
    ]


def test_follow_tfo_puts_the_syn_data_first():
    up, down, (ru, _) = follow(DATA / "v4-tfo.pcap", stream=1)
    assert up == pattern(3000, 0), "SYN data (1000 octets) then 2000 mapped octets"
    assert ru.gaps == []


def test_follow_reports_a_gap_where_segments_are_missing(tmp_path):
    recs = list(read_records(DATA / "v4-fastclose.pcap"))
    an = Analyzer()
    a, b = io.BytesIO(), io.BytesIO()
    f = Follower(0, a, b)
    dropped = None
    for n, r in enumerate(recs, 1):
        p = decode_frame(r.linktype, r.data)
        if dropped is None and p is not None and p.payload_len and p.sport != 5201 and n > 12:
            dropped = p.payload_len
            continue
        f.feed(an.feed(n, r.timestamp_ns, len(r.data), r.orig_len, p))
    ru, _ = f.finish()
    assert len(ru.gaps) == 1 and ru.gaps[0][1] == dropped
    assert len(a.getvalue()) == 16384 - dropped


def test_follow_direction_orders_bounds_and_reports():
    import random

    from mptcpspec.dissect.follow import _Direction

    data = bytes(random.Random(1).randrange(256) for _ in range(200_000))
    segs = [(1 + k, data[k : k + 100]) for k in range(0, len(data), 100)]
    # every segment, in a shuffled order, some twice: the data in order, no gap
    shuffled = segs + segs[::7]
    random.Random(2).shuffle(shuffled)
    out = io.BytesIO()
    d = _Direction(out)
    for dsn, chunk in shuffled:
        d.add(dsn, chunk)
    d.finish()
    assert out.getvalue() == data and d.report.gaps == [] and d.report.duplicate == 100 * len(segs[::7])
    # the first segment comes last, past the hold: its gap is given up, the rest written, it is late
    out = io.BytesIO()
    d = _Direction(out, hold=10_000)
    for dsn, chunk in segs[1:] + segs[:1]:
        d.add(dsn, chunk)
    d.finish()
    r = d.report
    assert r.gaps == [(1, 100)] and r.late == 100 and r.duplicate == 0 and out.getvalue() == data[100:]


def test_cli_follow_of_a_stream_the_capture_lacks(tmp_path):
    r = cli("dissect", "-r", str(DATA / "v4-tfo.pcap"), "-q", "--follow", "7", "--follow-dir", str(tmp_path))
    assert r.returncode == 3 and "no MPTCP stream 7" in r.stderr and "(streams 0 to 1)" in r.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- broken captures


def mutate(path, change) -> bytes:
    """A pcap whose records pass through ``change(number, packet, data) -> data``."""
    out = io.BytesIO()
    recs = list(read_records(path))
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, recs[0].linktype))
    for n, r in enumerate(recs, 1):
        p = decode_frame(r.linktype, r.data)
        data = change(n, p, r.data) if p is not None else r.data
        ts = r.timestamp_ns
        out.write(struct.pack("<IIII", ts // 10**9, ts % 10**9 // 1000, len(data), len(data)) + data)
    return out.getvalue()


def option_at(data: bytes, p, kind_subtype: int) -> int:
    """Offset in the frame of the first MPTCP option of that subtype."""
    opts = p.options
    i = 0
    while i < len(opts):
        k = opts[i]
        if k in (0, 1):
            i += 1
            continue
        if k == 30 and opts[i + 2] >> 4 == kind_subtype:
            return data.index(opts) + i
        i += opts[i + 1]
    return -1


def flip_first(subtype: int, offset_in_option: int, when=lambda p: True):
    done = []

    def change(n, p, data):
        if done or not when(p):
            return data
        at = option_at(data, p, subtype)
        if at < 0:
            return data
        done.append(n)
        b = bytearray(data)
        b[at + offset_in_option] ^= 0x01
        return bytes(b)

    return change, done


def dissect_bytes(blob: bytes):
    d = Dissection(io.BytesIO(blob))
    return list(d), d


def test_flipped_join_synack_hmac_is_a_mismatch():
    change, done = flip_first(1, 8, lambda p: int(p.flags) & 0x12 == 0x12)  # truncated HMAC at 4..11
    infos, _ = dissect_bytes(mutate(DATA / "v4-two-subflows.pcap", change))
    assert done
    assert verdicts(infos)[("MP_JOIN SYN/ACK HMAC (v1)", "MISMATCH")] == 1
    e = experts(infos)
    assert e["mptcp.join.hmac_mismatch"] == 1
    assert e.get("mptcp.handshake.illegal", 0) >= 1  # A answered a bad HMAC with its ACK, not a RST


def test_flipped_join_ack_hmac_is_a_mismatch():
    change, done = flip_first(1, 10, lambda p: len(p.options) >= 24 and not int(p.flags) & 0x02)
    infos, _ = dissect_bytes(mutate(DATA / "v4-two-subflows.pcap", change))
    assert done
    assert verdicts(infos)[("MP_JOIN ACK HMAC (v1)", "MISMATCH")] == 1
    assert experts(infos)["mptcp.join.hmac_mismatch"] == 1


def test_flipped_add_addr_hmac_is_a_mismatch():
    change, done = flip_first(3, -1 + 16, lambda p: True)  # last octet of the 16-octet ADD_ADDR
    infos, _ = dissect_bytes(mutate(DATA / "v4-add-addr.pcap", change))
    assert done
    assert verdicts(infos)[("ADD_ADDR HMAC (v1)", "MISMATCH")] == 1
    assert experts(infos)["mptcp.add_addr.hmac_mismatch"] == 1


def test_corrupted_payload_under_checksums_is_a_mismatch():
    done = []

    def change(n, p, data):
        if done or p.payload_len < 100:
            return data
        done.append(n)
        b = bytearray(data)
        b[-50] ^= 0xFF
        return bytes(b)

    infos, _ = dissect_bytes(mutate(DATA / "v4-checksum.pcap", change))
    assert done
    v = verdicts(infos)
    assert v[("DSS checksum", "MISMATCH")] == 1
    assert experts(infos)["mptcp.dss.checksum_mismatch"] == 1
    bad = [i for i in infos if any(c.verdict is Verdict.MISMATCH for c in i.checks)]
    assert bad[0].number >= done[0]


def test_checksum_missing_where_negotiated():
    done = []

    def change(n, p, data):
        # Drop the checksum of one DSS mapping: shorten the option by 2 and pad with NOPs.
        if done or p.payload_len == 0:
            return data
        at = option_at(data, p, 2)
        if at < 0 or not data[at + 3] & 0x04:
            return data
        ln = data[at + 1]
        done.append(n)
        b = bytearray(data)
        b[at + 1] = ln - 2
        b[at + ln - 2 : at + ln] = b"\x01\x01"
        return bytes(b)

    infos, _ = dissect_bytes(mutate(DATA / "v4-checksum.pcap", change))
    assert done
    assert experts(infos)["mptcp.dss.checksum_missing"] == 1


def test_truncated_option_is_malformed():
    done = []

    def change(n, p, data):
        if done or n < 20 or p.payload_len:  # a DATA_ACK on a pure ACK, after the handshake
            return data
        at = option_at(data, p, 2)
        if at < 0 or data[at + 1] < 8:
            return data
        done.append(n)
        b = bytearray(data)
        b[at + 1] = 3  # a DSS of three octets
        return bytes(b)

    infos, _ = dissect_bytes(mutate(DATA / "v4-two-subflows.pcap", change))
    assert done
    e = experts(infos)
    assert e["mptcp.option.malformed"] == 1
    bad = next(i for i in infos if i.number == done[0])
    assert [x.key for x in bad.experts] == ["mptcp.option.malformed"]
    assert "DSS" in bad.experts[0].message


def test_third_ack_without_keys_is_flagged():
    done = []

    def change(n, p, data):
        # The third ACK: pure ACK with a 20-octet MP_CAPABLE; turn the option into NOPs.
        if done or int(p.flags) != 0x10 or p.payload_len:
            return data
        at = option_at(data, p, 0)
        if at < 0 or data[at + 1] != 20:
            return data
        done.append(n)
        b = bytearray(data)
        b[at : at + 20] = b"\x01" * 20
        return bytes(b)

    infos, d = dissect_bytes(mutate(DATA / "v4-two-subflows.pcap", change))
    assert done == [3]
    # Flagged where it happens: A may not send a plain ACK after the SYN/ACK's MP_CAPABLE, and B
    # must fall back on it (RFC 8684 §3.1, spec/establishment.fsm); B's DSS then contradicts that.
    third = [(e.key, e.message) for e in infos[2].experts]
    assert third == [
        ("mptcp.handshake.illegal", "MP_CAPABLE ACK: sender A in MPC_ACK_SENT|MPC_DATA_SENT: A cannot send ACK here")
    ]
    e = experts(infos)
    assert (e["mptcp.handshake.illegal"], e["mptcp.fallback"]) == (2, 1)
    assert set(e) == {"mptcp.handshake.illegal", "mptcp.fallback"} | set(experts(run(DATA / "v4-two-subflows.pcap")[0]))


def test_option_space_over_40():
    from tests.test_pcap import ip4_tcp

    opts = b"\x1e\x0c\x20\x03" + b"\0" * 8 + b"\x01" * 32  # 44 octets: the data offset field cannot say so
    frame = bytearray(ip4_tcp(b"", options=opts[:40], flags=0x10))
    infos = [Analyzer().feed(1, 0, len(frame), len(frame), decode_frame(101, bytes(frame)))]
    assert "mptcp.option.space" not in experts(infos)  # 40 octets: at the limit, fine


# --------------------------------------------------------------------------- command line


def cli(*args, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mptcpspec", *args], capture_output=True, text=True, cwd=ROOT, input=stdin
    )


def test_cli_fields_header_and_separator():
    r = cli(
        "dissect",
        "-r",
        str(DATA / "v4-two-subflows.pcap"),
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "mptcp.stream",
        "-e",
        "tcp.options.mptcp.subtype",
        "-E",
        "header=y",
        "-E",
        "separator=,",
        "-c",
        "3",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["frame.number,mptcp.stream,tcp.options.mptcp.subtype", "1,,0", "2,0,0", "3,0,0"]
    # As Wireshark: the v1 SYN's MP_CAPABLE has no key, so the connection is numbered from the SYN/ACK.


def test_cli_fields_bom_as_tshark():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mptcpspec",
            "dissect",
            "-r",
            str(DATA / "v4-two-subflows.pcap"),
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-E",
            "bom=y",
            "-c",
            "2",
        ],
        capture_output=True,
        cwd=ROOT,
    )
    assert r.returncode == 0 and r.stdout == b"\xef\xbb\xbf1\n2\n"  # what tshark -E bom=y prints


def test_cli_json_one_object_per_packet():
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-T", "json", "-Y", "tcp.options.mptcp.subtype == 3")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(objs) == 2  # the ADD_ADDR and its echo
    assert objs[0]["mptcp"]["checks"][0]["verdict"] == "verified"


def test_cli_filter_error_names_the_column():
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-Y", "tcp.len >> 3")
    assert r.returncode == 2
    assert "column" in r.stderr and "Traceback" not in r.stderr
    for bad, why in [
        ("ip.src == 1.2.3.300", "column 11: '1.2.3.300' is not a valid IPv4 address"),
        ("ipv6.src == a:", "column 13: 'a:' is not a valid IPv6 address"),
    ]:
        r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-Y", bad)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args, why",
    [
        (["-T", "fields", "-e", "frame.number", "-E", "quote=x"], "quote is d, s or n"),
        (["-T", "fields", "-e", "frame.number", "-E", "occurrence=x"], "occurrence is f, l, a or an occurrence number"),
        (["-T", "fields", "-e", "frame.number", "-E", "header=x"], "header is y or n"),
        (["-e", "frame.number"], "-T fields was not"),
    ],
)
def test_cli_bad_output_options_are_usage_errors(args, why):
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), *args)
    assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr and not r.stdout


def test_cli_unknown_field_and_missing_file():
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-T", "fields", "-e", "mptcp.nope")
    assert r.returncode == 2 and "unknown field" in r.stderr
    r = cli("dissect", "-r", str(DATA / "nope.pcap"))
    assert r.returncode == 3 and "no such file" in r.stderr


@pytest.mark.parametrize("blob, code", [(b"", 3), (b"garbage that is no capture", 3)])
def test_cli_unusable_files(tmp_path, blob, code):
    f = tmp_path / "bad.pcap"
    f.write_bytes(blob)
    r = cli("dissect", "-r", str(f))
    assert r.returncode == code and "Traceback" not in r.stderr and r.stderr.startswith("mptcpspec: error:")


def test_cli_truncated_file_gives_partial_output_and_status_1(tmp_path):
    blob = (DATA / "v4-fastclose.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(blob[: len(blob) // 2])
    r = cli("dissect", "-r", str(cut), "-T", "fields", "-e", "frame.number")
    assert r.returncode == 1 and "ends inside" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stdout.splitlines()) >= 20


def test_truncated_capture_at_every_offset_never_raises():
    blob = (DATA / "v4-tfo.pcap").read_bytes()
    from mptcpspec.capture.pcap import CaptureError

    for cut in range(0, len(blob), 97):
        d = Dissection(io.BytesIO(blob[:cut]))
        try:
            for _ in d:
                pass
        except CaptureError:
            assert cut < 24


def test_cli_connections_json():
    r = cli("connections", "-r", str(DATA / "v4-two-subflows.pcap"), "--json")
    assert r.returncode == 0, r.stderr
    (c,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert c["version"] == 1 and len(c["subflows"]) == 2 and c["client_bytes"] == 32768
    assert {x["what"] for x in c["checks"]} >= {"MP_JOIN ACK HMAC (v1)"}


def test_cli_follow_writes_both_directions(tmp_path):
    r = cli("dissect", "-r", str(DATA / "v4-two-subflows.pcap"), "-q", "--follow", "0", "--follow-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    up = (tmp_path / "mptcp-stream-0-client.bin").read_bytes()
    down = (tmp_path / "mptcp-stream-0-server.bin").read_bytes()
    assert hashlib.sha256(up).digest() == hashlib.sha256(pattern(32768, 0)).digest()
    assert down == pattern(32768, 1)
    assert "gaps: none" in r.stderr


def test_cli_text_has_tree_and_expert_summary():
    r = cli("dissect", "-r", str(DATA / "v4-fastclose.pcap"))
    assert r.returncode == 0, r.stderr
    assert "Multipath TCP MP_FASTCLOSE (subtype 0x7)" in r.stdout
    assert "[Check: MP_FASTCLOSE key: VERIFIED]" in r.stdout
    assert "note           1  mptcp.tcprst" in r.stdout


# --------------------------------------------------------------------------- closure machine


def test_closure_flags_a_data_fin_after_fast_close():
    """The dissector runs the generated closure machine per endpoint: a DATA_FIN from a host that
    has already been fast-closed (M_CLOSED) is a signal its machine cannot send."""
    recs = list(read_records(DATA / "v4-fastclose.pcap"))
    last_server = next(r for r in reversed(recs) if decode_frame(r.linktype, r.data).sport == 5201)
    p = decode_frame(last_server.linktype, last_server.data)
    an = Analyzer()
    data_ack = None
    for n, r in enumerate(recs, 1):
        i = an.feed(n, r.timestamp_ns, len(r.data), r.orig_len, decode_frame(r.linktype, r.data))
        if i.packet.sport == 5201 and i.dss and i.dss[0].ack64 is not None:
            data_ack = i.dss[0].ack64 & 0xFFFFFFFF  # the server's latest DATA_ACK
    # DSS: A, M, F with a 4-octet DATA_ACK and DSN; SSN 0, data-level length 1: a DATA_FIN alone.
    dss = bytes([30, 18, 0x20, 0x15]) + struct.pack("!IIIH", data_ack, 16385, 0, 1)
    opts = dss + b"\x01" * (-len(dss) % 4)
    tcp = (
        struct.pack("!HHIIHHHH", p.sport, p.dport, p.seq, p.ack, ((20 + len(opts)) // 4) << 12 | 0x10, p.window, 0, 0)
        + opts
    )
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, p.src.packed, p.dst.packed)
    frame = last_server.data[:14] + ip + tcp
    conn = an.connections()[0]
    assert (conn.closure_state(0), conn.closure_state(1)) == ("M_CLOSED", "M_CLOSED")
    info = an.feed(len(recs) + 1, 0, len(frame), len(frame), decode_frame(1, frame))
    keys = [e.key for e in info.experts]
    assert keys == ["mptcp.closure.illegal"], [str(e) for e in info.experts]
    assert "server cannot send DATA_FIN" in info.experts[0].message
    assert (conn.closure_state(0), conn.closure_state(1)) == ("M_CLOSED", "M_CLOSED")  # nothing changed


def test_closure_states_follow_a_graceful_close():
    seen = []
    an = Analyzer()
    for n, r in enumerate(read_records(DATA / "v4-two-subflows.pcap"), 1):
        i = an.feed(n, r.timestamp_ns, len(r.data), r.orig_len, decode_frame(r.linktype, r.data))
        if i.connection is not None:
            pair = (i.connection.closure_state(0), i.connection.closure_state(1))
            if not seen or seen[-1] != pair:
                seen.append(pair)
    assert seen[0] == ("M_ESTAB", "M_ESTAB") and seen[-1] == ("M_CLOSED", "M_CLOSED")
    assert len(seen) >= 3, seen  # passes through FIN_WAIT / CLOSE_WAIT (or CLOSING) / TIME_WAIT
    assert all(a.startswith("M_") and b.startswith("M_") for a, b in seen)


# --------------------------------------------------------------------------- snaplen, fallback, collisions


def test_payload_cut_by_snaplen_is_unverifiable_not_wrong():
    recs = list(read_records(DATA / "v4-checksum.pcap"))
    out = io.BytesIO()
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 200, recs[0].linktype))
    for r in recs:
        data = r.data[:200]
        out.write(
            struct.pack("<IIII", r.timestamp_ns // 10**9, r.timestamp_ns % 10**9 // 1000, len(data), r.orig_len) + data
        )
    infos, d = dissect_bytes(out.getvalue())
    v = verdicts(infos)
    assert ("DSS checksum", "MISMATCH") not in v
    cut = [c for i in infos for c in i.checks if c.verdict is Verdict.UNVERIFIABLE]
    assert cut and all("snapshot length" in c.why for c in cut)
    # Everything that does not need the payload still verifies.
    assert v[("MP_JOIN ACK HMAC (v1)", "VERIFIED")] == 1
    assert d.connections()[0].summary().client_bytes == 32768


def test_synack_without_mp_capable_is_a_fallback():
    def change(n, p, data):
        if int(p.flags) & 0x12 != 0x12 or p.sport != 5201:
            return data
        at = option_at(data, p, 0)
        if at < 0:
            return data
        b = bytearray(data)
        b[at : at + data[at + 1]] = b"\x01" * data[at + 1]
        return bytes(b)

    infos, d = dissect_bytes(mutate(DATA / "v4-fastclose.pcap", change))
    e = experts(infos)
    assert e.get("mptcp.fallback", 0) >= 1, e
    assert d.connections()[0].summary().fallback


def test_token_collision_between_two_connections():
    recs = list(read_records(DATA / "v4-fastclose.pcap"))
    an = Analyzer()
    n = 0
    for shift in (0, 1):  # the same connection again from another client port: same keys, same tokens
        for r in recs:
            n += 1
            p = decode_frame(r.linktype, r.data)
            data = bytearray(r.data)
            if shift:
                off = 14 + 20 + (0 if p.sport == 34156 else 2)  # Ethernet + IPv4: the client's port
                struct.pack_into("!H", data, off, 34156 + shift)
            an.feed(n, r.timestamp_ns, len(data), len(data), decode_frame(r.linktype, bytes(data)))
    assert len(an.connections()) == 2
    assert an.experts["mptcp.token.collision"] >= 1


# --------------------------------------------------------------------------- fuzzing the whole pipeline

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FUZZ_BASE = [(DATA / n).read_bytes() for n in ("v4-add-addr.pcap", "v4-checksum.pcap", "v4-tfo.pcap")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2),
    st.lists(st.tuples(st.integers(24, 10**6), st.integers(0, 255)), min_size=1, max_size=40),
    st.integers(0, 10**6),
)
def test_mutated_captures_never_crash_the_dissector(which, flips, cut):
    """Octets of real captures overwritten at random (headers, options, payloads), and the file cut:
    dissection, fields, JSON and text all go through without any exception but CaptureError."""
    from mptcpspec.capture.pcap import CaptureError
    from mptcpspec.dissect.fields import FIELDS
    from mptcpspec.dissect.writers import JsonWriter, TextWriter, packet_dict

    blob = bytearray(_FUZZ_BASE[which])
    for at, value in flips:
        blob[at % len(blob)] = value if at % len(blob) >= 24 else blob[at % len(blob)]
    blob = bytes(blob[: max(24, cut % (len(blob) + 1))])
    text, js = TextWriter(io.StringIO()), JsonWriter(io.StringIO())
    d = Dissection(io.BytesIO(blob))
    try:
        for info in d:
            for f in FIELDS.values():
                f.get(info)
            text.write(info)
            js.write(info)
            packet_dict(info)
    except CaptureError:
        pass
    for c in d.connections():
        c.summary()


@pytest.mark.parametrize("version", [2, 15])
def test_mp_capable_of_an_unknown_version(version):
    """Found by the fuzz test: keys of an unknown version give no token, and say so."""

    def change(n, p, data):
        at = option_at(data, p, 0)
        if at < 0:
            return data
        b = bytearray(data)
        b[at + 2] = (b[at + 2] & 0xF0) | version
        return bytes(b)

    infos, d = dissect_bytes(mutate(DATA / "v4-two-subflows.pcap", change))
    assert experts(infos).get("mptcp.connection.unsupported_version", 0) >= 1
    assert all(c.verdict is not Verdict.MISMATCH for i in infos for c in i.checks)
    for c in d.connections():
        c.summary()


# --------------------------------------------------------------------------- the DSS shortcut


def _projection(infos) -> list:
    """Every field of every PacketInfo, the subflow and connection by number."""
    out = []
    for i in infos:
        row = {f: getattr(i, f) for f in i.__dataclass_fields__ if f not in ("subflow", "connection")}
        row["subflow"] = None if i.subflow is None else i.subflow.index
        row["connection"] = None if i.connection is None else (i.connection.stream, i.connection.first_frame)
        row["mptcp"] = repr(i.mptcp)  # a MalformedOption holds its DecodeError, equal only to itself
        row["error"] = repr(i.error)
        out.append(row)
    return out


def _scrambled(path, seed: int) -> bytes:
    """The capture with one octet of a DSS option changed in about one segment of five."""
    import random

    rnd = random.Random(seed)

    def change(n, p, data):
        at = option_at(data, p, 2)
        if at < 0 or rnd.random() > 0.2:
            return data
        b = bytearray(data)
        b[at + rnd.randrange(2, data[at + 1])] ^= 1 << rnd.randrange(8)
        return bytes(b)

    return mutate(path, change)


def _dss_sources():
    from tests.test_corpus_tcpdump import CORPUS

    for p in sorted(DATA.glob("*.pcap")):  # kernel captures: segments repeat their DSS, not under checksums
        yield pytest.param(lambda p=p: p.read_bytes(), "checksum" not in p.name, id=p.stem)
    for p in sorted(CORPUS.glob("*.pcap")) if CORPUS.is_dir() else ():
        yield pytest.param(lambda p=p: p.read_bytes(), False, id=p.stem)
    for p in sorted(DATA.glob("*.pcap")):
        for seed in range(3):
            yield pytest.param(lambda p=p, seed=seed: _scrambled(p, seed), False, id=f"{p.stem}-scrambled{seed}")


@pytest.mark.parametrize("blob, repeats", _dss_sources())
def test_dss_shortcut_changes_nothing(blob, repeats, monkeypatch):
    """A segment that repeats its direction's latest DSS object takes a shortcut in the analysis
    (_Ctx.dss); with the shortcut never taken, every packet and connection comes out the same."""
    from mptcpspec.analysis.core import _Ctx

    data = blob()
    full = []
    full_dss = _Ctx._dss
    monkeypatch.setattr(_Ctx, "_dss", lambda self, o: full.append(1) or full_dss(self, o))

    def everything():
        full.clear()
        d = Dissection(io.BytesIO(data))
        return _projection(d), [c.summary() for c in d.connections()], dict(d.analyzer.experts), len(full)

    *fast, fast_full = everything()
    monkeypatch.setattr(_Ctx, "_remember", lambda self, o, info: None)
    *slow, slow_full = everything()
    assert slow == fast
    assert slow_full == sum(len(i["dss"]) for i in fast[0])
    if repeats:
        assert fast_full < slow_full  # the shortcut is taken


def test_no_verify_checks_no_hmac_or_checksum():
    for name in ("v4-two-subflows.pcap", "v4-checksum.pcap", "v4-add-addr.pcap"):
        infos = list(Dissection(DATA / name, verify=False))
        whats = {c.what for i in infos for c in i.checks}
        assert not any("HMAC" in w or "checksum" in w for w in whats), (name, whats)
        assert whats <= {"MP_CAPABLE echoed key", "MP_FASTCLOSE key"}


def test_join_of_a_connection_the_capture_missed():
    """Only the MP_JOIN subflow: its token names no connection, its HMACs cannot be checked."""
    infos = list(Dissection(DATA / "v4-two-subflows.pcap"))
    join = {i.number for i in infos if i.subflow is not None and i.subflow.kind == "MP_JOIN"}
    blob = mutate(DATA / "v4-two-subflows.pcap", lambda n, p, data: data if n in join else b"")
    got, _ = dissect_bytes(blob)
    checks = [c for i in got for c in i.checks]
    assert [c.what for c in checks] == ["MP_JOIN SYN/ACK HMAC", "MP_JOIN ACK HMAC"]
    assert all(c.verdict is Verdict.UNVERIFIABLE for c in checks)
    assert all("the token names no connection of this capture" in c.why for c in checks), [c.why for c in checks]
    assert experts(got).get("mptcp.join.unknown_token") == 1


def test_options_cut_by_the_snapshot_length(tmp_path):
    """editcap -s 90: the options of most segments end inside the capture.  The headers are still
    decoded, the options captured whole are analysed, and what the cut hides raises no warning."""
    import os
    import shutil

    if shutil.which("editcap") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("editcap is required when CI=true (apt-get install tshark)")
        pytest.skip("editcap is not installed (Debian: apt-get install tshark)")
    cut = tmp_path / "cut.pcap"
    subprocess.run(["editcap", "-s", "90", str(DATA / "v4-two-subflows.pcap"), str(cut)], check=True)
    infos, d = run(cut)
    whole, _ = run(DATA / "v4-two-subflows.pcap")
    assert all(i.packet is not None for i in infos) and len(infos) == len(whole) == 119
    assert [i.tcp_stream for i in infos] == [i.tcp_stream for i in whole]
    cut_frames = [i for i in infos if i.packet.options_cut]
    assert len(cut_frames) > 40
    for i in cut_frames:
        assert "mptcp.packet.options_cut" in [e.key for e in i.experts]
        assert len(i.mptcp) < len(whole[i.number - 1].mptcp) or i.mptcp == whole[i.number - 1].mptcp
    assert set(experts(infos)) <= {"mptcp.packet.options_cut", "mptcp.dss.out_of_order"}
    conns = d.connections()
    assert len(conns) == 1 and len(conns[0].subflows) == 2
    r = cli("dissect", "-r", str(cut), "-c", "5", "--no-tree")
    assert r.returncode == 0 and "[Packet size limited during capture]" in r.stdout


def test_a_closed_connection_lets_its_data_ranges_go():
    """Reinjection detection keeps up to 4096 data ranges a side; once every subflow has closed
    they go, so a long capture holds them for the live connections only."""
    _, d = run(DATA / "v4-two-subflows.pcap")
    (conn,) = d.connections()
    assert all(sf.closed for sf in conn.subflows)
    assert all(side.ranges == [] and side.starts == [] for side in conn.sides)
    _, d = run(DATA / "v4-reinjection.pcap")  # its joined subflow never closes
    (conn,) = d.connections()
    assert not all(sf.closed for sf in conn.subflows) and conn.sides[0].ranges


@pytest.mark.parametrize(
    "name, after, server",
    [
        ("v4-fastclose.pcap", 12, False),
        ("v4-two-subflows.pcap", 30, False),
        ("v4-two-subflows.pcap", 40, True),
        ("v6-two-subflows.pcap", 9, True),
    ],
)
def test_data_acknowledged_but_never_captured_is_a_gap(name, after, server):
    """A data segment left out of the capture: the DATA_ACK that covers it raises mptcp.dss.gap,
    for exactly its octets, once; the capture as made raises none."""
    dropped = []

    def change(n, p, data):
        if not dropped and p.payload_len and (p.sport == 5201) == server and n > after:
            dropped.append((n, p.payload_len))
            return b""
        return data

    infos, _ = dissect_bytes(mutate(DATA / name, change))
    ((n, length),) = dropped
    gaps = [(i.number, e.message) for i in infos for e in i.experts if e.key == "mptcp.dss.gap"]
    assert len(gaps) == 1 and f", {length} octets of data sequence space" in gaps[0][1], gaps
    assert gaps[0][0] > n
    assert "mptcp.dss.gap" not in experts(run(DATA / name)[0])


def _strip(subtype: int, when):
    """A change for mutate(): the first MPTCP option of ``subtype`` turned into NOPs on packets ``when(n, p)``."""

    def change(n, p, data):
        if not when(n, p):
            return data
        at = option_at(data, p, subtype)
        if at < 0:
            return data
        b = bytearray(data)
        b[at : at + data[at + 1]] = b"\x01" * data[at + 1]
        return bytes(b)

    return change


def test_fallback_when_a_v0_syn_ack_has_no_mp_capable():
    from tests.test_corpus_tcpdump import CORPUS

    if not (CORPUS / "mptcp-v0.pcap").exists():
        pytest.skip("the corpus of other stacks' captures is not here")
    infos, d = dissect_bytes(mutate(CORPUS / "mptcp-v0.pcap", _strip(0, lambda n, p: int(p.flags) & 0x12 == 0x12)))
    (conn,) = d.connections()
    assert conn.version == 0 and conn.fallback.startswith("the SYN/ACK in frame 2 carries no MP_CAPABLE")
    assert [(i.number, e.key) for i in infos for e in i.experts][:1] == [(2, "mptcp.fallback")]


def test_fallback_when_the_options_vanish_mid_connection():
    """From frame 20 on, the data of the only subflow comes without its DSS (a middlebox stripping
    options): one fallback, not a missing mapping per segment."""
    blob = mutate(DATA / "v4-fastclose.pcap", _strip(2, lambda n, p: n >= 20 and p.payload_len))
    infos, d = dissect_bytes(blob)
    (conn,) = d.connections()
    assert conn.fallback.startswith("data without MPTCP options, after DSS options, in frame")
    e = experts(infos)
    assert e.get("mptcp.fallback") == 1 and "mptcp.dss.missing_mapping" not in e
    # with two subflows, the same is a missing mapping: the other subflow may carry the mappings
    blob = mutate(DATA / "v4-two-subflows.pcap", _strip(2, lambda n, p: n == 40 and p.payload_len))
    e = experts(dissect_bytes(blob)[0])
    assert "mptcp.fallback" not in e


def test_frames_of_a_link_type_not_supported_are_named(tmp_path):
    blob = bytearray((DATA / "v4-two-subflows.pcap").read_bytes())
    struct.pack_into("<I", blob, 20, 147)  # LINKTYPE_USER0
    f = tmp_path / "user0.pcap"
    f.write_bytes(bytes(blob))
    for args in (["dissect", "-r", str(f), "-c", "3"], ["connections", "-r", str(f)]):
        r = cli(*args)
        assert r.returncode == 0 and "Traceback" not in r.stderr
        assert "frame(s) of link type 147, which is not supported" in r.stderr, r.stderr


def _set(subtype: int, offset: int, value: bytes, when):
    """A change for mutate(): ``value`` written at ``offset`` of the first MPTCP option of ``subtype``
    on the first packet ``when(p)`` holds for; the frame number goes into the list returned with it."""
    done: list[int] = []

    def change(n, p, data):
        at = -1 if done or not when(p) else option_at(data, p, subtype)
        if at < 0:
            return data
        done.append(n)
        b = bytearray(data)
        b[at + offset : at + offset + len(value)] = value
        return bytes(b)

    return change, done


@pytest.mark.parametrize(
    "name, subtype, offset, value, when, key",
    [
        # the third ACK's echo of the server key (MP_CAPABLE octets 12..19), one octet changed
        (
            "v4-two-subflows.pcap",
            0,
            12,
            b"\x00",
            lambda p: int(p.flags) == 0x10 and not p.payload_len,
            "mptcp.connection.echoed_key_mismatch",
        ),
        # the SYN's MP_CAPABLE flags: no H, or H and another algorithm (RFC 8684 §3.1)
        ("v4-two-subflows.pcap", 0, 3, b"\x00", lambda p: int(p.flags) == 0x02, "mptcp.connection.missing_algorithm"),
        (
            "v4-two-subflows.pcap",
            0,
            3,
            b"\x03",
            lambda p: int(p.flags) == 0x02,
            "mptcp.connection.unsupported_algorithm",
        ),
        # the SYN/ACK answers with version 3
        ("v4-two-subflows.pcap", 0, 2, b"\x03", lambda p: int(p.flags) == 0x12, "mptcp.connection.unsupported_version"),
        # a DSS mapping of data-level length 0: octets 20..21 when the DATA_ACK has 4 octets and the DSN 8
        # (flags 0x0d, as Linux sends its data)
        (
            "v4-fastclose.pcap",
            2,
            20,
            b"\x00\x00",
            lambda p: p.payload_len and p.options[15] == 0x0D,
            "mptcp.dss.infinite_mapping",
        ),
        # MP_FASTCLOSE with another key (octets 4..11)
        ("v4-fastclose.pcap", 7, 4, b"\x00", lambda p: True, "mptcp.fastclose.key_mismatch"),
    ],
)
def test_each_broken_field_raises_its_expert_item(name, subtype, offset, value, when, key):
    change, done = _set(subtype, offset, value, when)
    infos, _ = dissect_bytes(mutate(DATA / name, change))
    (n,) = done
    assert key in [e.key for e in infos[n - 1].experts], [str(e) for e in infos[n - 1].experts]
    assert key not in experts(run(DATA / name)[0])


@pytest.mark.parametrize("name", ["v4-two-subflows.pcap", "v4-reinjection.pcap"])
def test_no_gap_is_judged_from_what_a_cut_hides(name):
    """The options of one data segment cut inside its DSS (each in turn): its data is at DSNs the
    capture does not show, so no gap, missing mapping or fallback may be concluded from it."""
    judged = ("mptcp.dss.gap", "mptcp.dss.missing_mapping", "mptcp.fallback", "mptcp.handshake.illegal")
    tried = 0
    for info in run(DATA / name)[0]:
        p = info.packet
        if not (p.payload_len and p.options and info.dss):
            continue
        cut_at = info.number

        def change(n, q, data, cut_at=cut_at, opts=p.options):
            return data[: data.index(opts) + 14] if n == cut_at else data  # 14 option octets: inside the DSS

        infos, _ = dissect_bytes(mutate(DATA / name, change))
        assert infos[cut_at - 1].packet.options_cut
        assert not [e.key for i in infos for e in i.experts if e.key in judged], cut_at
        tried += 1
    assert tried > 40


@pytest.mark.parametrize("name, lost", [("v4-two-subflows.pcap", {6}), ("v4-add-addr.pcap", {8, 12})])
def test_data_of_a_join_whose_syn_was_lost_is_no_gap(name, lost):
    """Without its SYN the join is linked to no connection; its mappings (64-bit DSNs) still say the
    data was captured, so the first subflow's DATA_ACKs find no gap."""
    infos, _ = dissect_bytes(mutate(DATA / name, lambda n, p, data: b"" if n in lost else data))
    assert any(i.connection is not None and i.connection.unlinked for i in infos)
    assert "mptcp.dss.gap" not in experts(infos)


def test_cli_two_passes_over_a_damaged_file_and_bad_inputs(tmp_path):
    # framing damaged at record 31: both passes stop there, the output before it is printed, status 1
    blob = bytearray((DATA / "v4-two-subflows.pcap").read_bytes())
    off = 24
    for _ in range(30):
        off += 16 + struct.unpack_from("<I", blob, off + 8)[0]
    struct.pack_into("<I", blob, off + 8, 0x7FFFFFFF)
    bad = tmp_path / "damaged.pcap"
    bad.write_bytes(bytes(blob))
    for extra in ([], ["-2"]):
        r = cli("dissect", *extra, "-r", str(bad), "-T", "fields", "-e", "frame.number")
        assert r.returncode == 1 and r.stdout.split() == [str(n) for n in range(1, 31)], (extra, r.stderr)
    # a file that cannot be read: no --follow files left behind
    r = cli("dissect", "-r", str(tmp_path / "missing.pcap"), "-q", "--follow", "0", "--follow-dir", str(tmp_path / "f"))
    assert r.returncode == 3 and list((tmp_path / "f").iterdir()) == []
    r = cli("dissect", "-r", str(DATA / "v4-tfo.pcap"), "-T", "fields", "-e", "frame.number", "-E", "occurrence=--1")
    assert r.returncode == 2 and "occurrence is" in r.stderr and "Traceback" not in r.stderr


def test_filter_ne_and_any_ne_agree_on_one_value():
    from mptcpspec.dissect.fields import FIELDS
    from mptcpspec.dissect.filters import compile_filter

    infos = run(DATA / "v4-two-subflows.pcap")[0]
    for text in ("mptcp.subflow.kind", "tcp.len", "mptcp.stream"):
        for lit in ("1", '"MP_JOIN"', "0"):
            ne, any_ne = compile_filter(f"{text} != {lit}"), compile_filter(f"{text} ~= {lit}")
            single = [i for i in infos if len(FIELDS[text].get(i)) == 1]
            assert [ne(i) for i in single] == [any_ne(i) for i in single], (text, lit)


def test_gap_bookkeeping_matches_a_set_of_octets():
    """The data-level holes (_Ctx._segment_range with its shortcuts, analysis._carried,
    _Ctx._acked_holes) against the plainest model: the octets seen, and a DATA_ACK reports each
    octet below it from IDSN + 1 on that was neither seen nor reported before."""
    import random

    from mptcpspec.analysis.core import _Ctx, _Side

    class Ctx:  # what the two methods read of a _Ctx
        def __init__(self):
            conn = type("Conn", (), {"fallback": None, "unlinked": False})()
            self.sf = type("Subflow", (), {"conn": conn, "index": 0})()
            self.number = 0
            self.reinjection_of: list[int] = []
            self.reported: list[str] = []

        def expert(self, key, message):
            if key == "mptcp.dss.gap":
                self.reported.append(message)

    for seed in range(300):
        rnd = random.Random(seed)
        side, ctx = _Side(), Ctx()
        side.idsn = 999
        side.seg_low = side.seg_high = base = 1000  # as when the key is learnt: data starts at IDSN + 1
        seen: set[int] = set()
        reported: set[int] = set()
        for k in range(rnd.randrange(1, 40)):
            ctx.number = k + 1
            if rnd.random() < 0.7:
                start, n = rnd.randrange(base, base + 400), rnd.randrange(1, 30)
                seen.update(range(start, start + n))
                _Ctx._segment_range(ctx, side, start, n)
            else:
                ack = rnd.randrange(base, base + 450)
                before = len(ctx.reported)
                if ack > side.hole_lo or (side.seg_high is not None and ack > side.seg_high):  # as dss() asks
                    _Ctx._acked_holes(ctx, side, ack)
                got = sum(int(m.split(", ")[1].split()[0]) for m in ctx.reported[before:])
                want = {o for o in range(base, ack) if o not in seen and o not in reported}
                reported |= want
                assert got == len(want), (seed, k, ack, sorted(want)[:5], ctx.reported[before:])
