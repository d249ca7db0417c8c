"""Fallback to regular TCP: a SYN/ACK without MP_CAPABLE, options that vanish mid-connection."""

from __future__ import annotations

from tests.conftest import DATA
from tests.dissect_helpers import dissect_bytes, experts, mutate, option_at


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


def test_fallback_when_a_v0_syn_ack_has_no_mp_capable(tcpdump_corpus):
    infos, d = dissect_bytes(
        mutate(tcpdump_corpus / "mptcp-v0.pcap", _strip(0, lambda n, p: int(p.flags) & 0x12 == 0x12))
    )
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
