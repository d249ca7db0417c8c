"""The closure of connections: MP_FASTCLOSE and the generated closure machine per endpoint."""

from __future__ import annotations

import struct

from mptcpspec.analysis import Analyzer
from mptcpspec.capture.packets import decode_frame
from mptcpspec.capture.pcap import read_records
from tests.conftest import DATA
from tests.dissect_helpers import experts, run


def test_fastclose_closes_both_sides_and_names_the_reason():
    infos, d = run(DATA / "v4-fastclose.pcap")
    s = d.connections()[0].summary()
    assert s.subflows[0].reset and s.subflows[0].tcprst_reason == "UNSPECIFIED"
    assert experts(infos) == {"mptcp.tcprst": 1}


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
    # no closure state before the MP_CAPABLE handshake is over (RFC 8684 Appendix D starts in M_ESTAB)
    assert seen[0] == (None, None) and seen[1] == ("M_ESTAB", "M_ESTAB") and seen[-1] == ("M_CLOSED", "M_CLOSED")
    assert len(seen) >= 4, seen  # passes through FIN_WAIT / CLOSE_WAIT (or CLOSING) / TIME_WAIT
    assert all(a.startswith("M_") and b.startswith("M_") for a, b in seen[1:])
