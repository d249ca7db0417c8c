"""The analysis of handshakes, keys and signalling on the lab's captures: clean transfers verify
every HMAC, checksum and echoed key; a capture with one field changed in memory (a flipped HMAC
octet, a corrupted payload under checksums, a third ACK without its keys) raises its expert item.

The captures are the lab's (tests/data, see its README): the kernel talking to itself.
"""

from __future__ import annotations

import io
import struct

import pytest

from mptcpspec.analysis import Analyzer
from mptcpspec.analysis.expert import KINDS, Severity
from mptcpspec.capture.packets import decode_frame
from mptcpspec.capture.pcap import read_records
from mptcpspec.codec.crypto import Verdict
from mptcpspec.dissect.pipeline import Dissection
from tests.conftest import DATA
from tests.dissect_helpers import dissect_bytes, experts, flip_first, mutate, option_at, run, verdicts

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
