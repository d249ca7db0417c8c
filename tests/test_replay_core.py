"""The replay engine without a network: its plan of a capture, and its sans-IO core fed by hand."""

from __future__ import annotations

import ipaddress
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.peer import pattern
from mptcpspec.capture.packets import decode_frame
from mptcpspec.codec import crypto
from mptcpspec.codec.options import (
    Dss,
    DssFlags,
    FastOpen,
    MpCapable,
    MpCapableFlags,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpTcpRst,
    Mss,
    decode_mptcp_options,
    decode_tcp_options,
    encode_tcp_options,
)
from mptcpspec.replay.core import Replay, ReplayError
from mptcpspec.replay.plan import PlanError, make_plan
from mptcpspec.replay.subflow import SubflowState
from mptcpspec.replay.wire import tcp_packet
from tests.conftest import DATA, ROOT

SERVER = ipaddress.ip_address("198.51.100.2")


@pytest.mark.parametrize(
    "name, subflows",
    [
        ("v4-two-subflows", 2),
        ("v6-two-subflows", 2),
        ("v4-checksum", 2),
        ("v4-add-addr", 3),
        ("v4-fastclose", 1),
        ("v4-tfo", 1),
        ("v4-remove-addr", 2),
    ],
)
def test_plan_holds_exactly_the_clients_data(name, subflows):
    plan = make_plan(DATA / f"{name}.pcap")
    assert len(plan.subflows) == subflows
    stream = bytearray(plan.data_len)
    for seg in plan.segments:
        stream[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    assert bytes(stream) == pattern(plan.data_len, 0)
    assert sum(len(s.data) for s in plan.segments) == plan.data_len  # each octet once
    assert plan.checksum == (name == "v4-checksum")
    assert [type(g.option).__name__ for g in plan.signals] == {
        "v4-add-addr": ["MpPrio"],
        "v4-remove-addr": ["RemoveAddr"],
    }.get(name, [])
    assert plan.fastclose == (name == "v4-fastclose")


def test_plan_refuses_what_it_cannot_replay():
    with pytest.raises(PlanError, match="no MPTCP stream 7"):
        make_plan(DATA / "v4-two-subflows.pcap", 7)


def test_plan_refuses_captures_of_other_stacks_it_cannot_replay(tcpdump_corpus):
    with pytest.raises(PlanError, match="handshake is not in the capture"):
        make_plan(tcpdump_corpus / "mptcp-tcprst.pcap")
    with pytest.raises(PlanError, match="only version 1"):
        make_plan(tcpdump_corpus / "mptcp-v0.pcap")


def _reply(pkt, flags, options=(), payload=b"", seq=5000, ack=None):
    return tcp_packet(
        pkt.dst, pkt.src, pkt.dport, pkt.sport, seq, pkt.seq + 1 if ack is None else ack, flags, 65535, options, payload
    )


def _core(**kw) -> Replay:
    return Replay(make_plan(DATA / "v4-two-subflows.pcap"), target=SERVER, rng=random.Random(7), **kw)


def test_handshake_rekeyed_for_the_live_server():
    core = _core()
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    assert int(p.flags) == 0x02 and str(p.dst) == "198.51.100.2" and p.dport == 5201 and p.sport == 34148
    (mpc,) = decode_mptcp_options(p.options)
    assert mpc == MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA)  # v1 SYN: no key
    server_key = 0x1122334455667788
    out = core.receive(
        _reply(p, 0x12, [Mss(mss=1460), MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=server_key)]),
        0.01,
    )
    third = decode_frame(101, out[0])
    (o,) = decode_mptcp_options(third.options)
    assert (o.sender_key, o.receiver_key) == (core.plan.client_key, server_key)  # the captured key, kept
    join = decode_frame(101, out[1])
    (j,) = decode_mptcp_options(join.options)
    assert type(j) is MpJoinSyn and j.token == crypto.key_token(server_key, 1) and str(join.src) == "203.0.113.1"
    first_data = decode_frame(101, out[2])
    (d,) = decode_mptcp_options(first_data.options)
    assert d.data_level_length == 1000 and first_data.payload == pattern(1000, 0)  # data with MP_CAPABLE (§3.1)
    # The rest waits until the server shows it holds the connection (a DSS): else, the MP_CAPABLE
    # third ACK and data lost, a later segment would make it fall back to TCP.
    assert len(out) == 3
    more = core.receive(_ack_with_dss(first_data, 1000, core.plan.client_key), 0.02)
    dss = decode_mptcp_options(decode_frame(101, more[0]).options)[0]
    assert type(dss) is Dss and dss.dsn == (crypto.key_idsn(core.plan.client_key, 1) + 1001) % 2**64
    assert dss.data_ack == (crypto.key_idsn(server_key, 1) + 1) % 2**64


def _ack_with_dss(pkt, acked: int, client_key: int, seq: int = 5001) -> bytes:
    """The server's ACK of ``acked`` data octets from ``pkt``'s sequence number, with a DSS DATA_ACK."""
    idsn_c = crypto.key_idsn(client_key, 1)
    data_ack = Dss(flags=DssFlags(3), data_ack=(idsn_c + 1 + acked) % 2**64)
    return tcp_packet(pkt.dst, pkt.src, pkt.dport, pkt.sport, seq, pkt.seq + acked, 0x10, 65535, [data_ack])


@pytest.mark.parametrize("path", ["pure ACK", "general"])
def test_the_connections_window_edge_only_moves_forward(path):
    """RFC 8684 §3.3.5: the sender takes a window only when DATA_ACK + window grows.  The server's
    newer ACK (1000 octets acknowledged, window 64535) read before its older one (none, window
    65535: the same right edge, as Linux never shrinks it): the window is what is left to that edge,
    64535 from the newer DATA_ACK, not the older packet's 65535 counted from it (1000 octets past
    the edge, which Linux drops at the connection level)."""
    core = _core()
    if path == "general":
        core.receiver.wire = {}  # every packet read whole (Receiver.established)
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    server_key = 0x1122334455667788
    out = core.receive(
        _reply(p, 0x12, [Mss(mss=1460), MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=server_key)]),
        0.01,
    )
    first = decode_frame(101, out[2])
    data = core.conn.out
    una = data.una
    assert data.window == 65535  # the SYN/ACK's, never scaled

    def ack(acked: int, window: int) -> bytes:
        dss = Dss(flags=DssFlags(3), data_ack=(una + acked) % 2**64)
        return tcp_packet(first.dst, first.src, first.dport, first.sport, 5001, first.seq + acked, 0x10, window, [dss])

    core.receive(ack(1000, 64535), 0.02)
    assert (data.una - una, data.window) == (1000, 64535)
    core.receive(ack(0, 65535), 0.021)  # the older one, read late
    assert (data.una - una, data.window) == (1000, 64535)
    core.receive(ack(1000, 65535), 0.022)  # the edge moves on
    assert (data.una - una, data.window) == (1000, 65535)
    core.receive(ack(1000, 30000), 0.023)  # a shrunk window: the edge stays where it was
    assert data.window == 65535


def _to_join(core: Replay, server_key: int):
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    out = core.receive(
        _reply(p, 0x12, [MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=server_key)]), 0.01
    )
    return decode_frame(101, out[1])


def test_join_verifies_the_servers_hmac_and_answers_with_its_own():
    core, key_s = _core(), 0x0102030405060708
    jsyn = _to_join(core, key_s)
    (j,) = decode_mptcp_options(jsyn.options)
    nonce_b = 0xCAFEF00D
    good = crypto.join_synack_hmac(key_s, core.plan.client_key, nonce_b, j.nonce, 1)
    out = core.receive(_reply(jsyn, 0x12, [MpJoinSynAck(address_id=0, truncated_hmac=good, nonce=nonce_b)]), 0.02)
    (ack,) = decode_mptcp_options(decode_frame(101, out[0]).options)
    assert ack == MpJoinAck(hmac=crypto.join_ack_hmac(core.plan.client_key, key_s, j.nonce, nonce_b, 1))


def test_join_with_a_wrong_hmac_is_aborted():
    core, key_s = _core(), 0x0102030405060708
    jsyn = _to_join(core, key_s)
    out = core.receive(_reply(jsyn, 0x12, [MpJoinSynAck(address_id=0, truncated_hmac=12345, nonce=1)]), 0.02)
    rst = decode_frame(101, out[0])
    assert int(rst.flags) & 0x04 and type(decode_mptcp_options(rst.options)[0]) is MpTcpRst
    assert core.subflows[1].state is SubflowState.FAILED and "HMAC" in core.subflows[1].result
    assert not core.done  # the connection goes on over the first subflow


def test_a_silent_target_times_out_with_a_clear_reason():
    core = _core(timeout=2.0, rto=0.2, max_tries=3)
    core.start(0.0)
    t, steps = 0.0, 0
    while not core.done and steps < 200:  # a deadline that does not move would spin: bounded here
        t = core.deadline()
        core.poll(t)
        steps += 1
    assert core.done and steps < 50, (steps, t)
    assert core.failed and ("could not be opened" in core.failed or "sent nothing" in core.failed)
    assert t <= 2.5
    assert core.subflows[0].retransmitted >= 2  # the SYN went again, with backoff


def test_server_without_mptcp_makes_the_replay_fall_back_to_tcp():
    core = _core()
    (syn,) = core.start(0.0)
    out = core.receive(_reply(decode_frame(101, syn), 0x12, [Mss(mss=1460)]), 0.01)
    assert not core.done and core.conn.fell_back and core.conn.tcp  # RFC 8684 §3.7
    assert out and all(not decode_mptcp_options(decode_frame(101, p).options or b"") for p in out)


def test_new_key_and_missing_payload():
    assert _core(new_key=True).keys.client != make_plan(DATA / "v4-two-subflows.pcap").client_key
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    cut = type(plan)(**{**{f: getattr(plan, f) for f in plan.__dataclass_fields__}, "cut_octets": 10})
    with pytest.raises(ReplayError, match="snapshot length"):
        Replay(cut, target=SERVER, require_payload=True)


def test_cli_errors_without_touching_the_network(tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "mptcpspec", "replay", *args], capture_output=True, text=True, cwd=ROOT
        )

    r = cli("-r", str(DATA / "v4-two-subflows.pcap"), "--stream", "3", "--target", "198.51.100.2")
    assert r.returncode == 3 and "no MPTCP stream 3" in r.stderr and "Traceback" not in r.stderr
    r = cli("-r", str(tmp_path / "none.pcap"), "--target", "198.51.100.2")
    assert r.returncode == 3 and "no such file" in r.stderr
    r = cli("-r", str(DATA / "v4-two-subflows.pcap"), "--target", "not-an-address")
    assert r.returncode == 2 and "address" in r.stderr
    r = cli("-r", str(DATA / "v4-two-subflows.pcap"), "--target", "198.51.100.2", "--timing", "sometimes")
    assert r.returncode == 2


def test_raw_rewrite_incremental_equals_full_recompute():
    """--mode raw updates checksums incrementally (RFC 1624); they equal a full recompute."""
    from mptcpspec.capture.packets import ip_payload_offset
    from mptcpspec.capture.pcap import read_records
    from mptcpspec.replay.raw import raw_frames, rewrite

    ip = ipaddress.ip_address
    m = {
        ip("198.51.100.1"): ip("198.51.100.11"),
        ip("198.51.100.2"): ip("198.51.100.12"),
        ip("2001:db8:1::1"): ip("2001:db8:9::1"),
        ip("2001:db8:1::2"): ip("2001:db8:9::2"),
    }
    allowed = set(m.values()) | {ip("203.0.113.1"), ip("2001:db8:2::1")}
    n = 0
    for name in ("v4-two-subflows", "v6-two-subflows"):
        path = DATA / f"{name}.pcap"
        for rec, (_, _, pkt) in zip(read_records(path), raw_frames(path, m, allowed)):
            if pkt:
                assert pkt == rewrite(rec.data[ip_payload_offset(rec.linktype, rec.data) :], m)
                n += 1
    assert n > 150


def test_stale_connection_on_the_server_gets_a_reset():
    """RFC 9293 §3.10.7.3: an ACK that does not acknowledge our SYN (a stale connection of the same
    ports on the server, from an earlier replay) is answered with <SEQ=SEG.ACK><RST>."""
    core = _core()
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    (rst,) = core.receive(_reply(p, 0x10, ack=p.seq + 5000, seq=77), 0.01)
    r = decode_frame(101, rst)
    assert int(r.flags) == 0x04 and r.seq == (p.seq + 5000) % 2**32
    assert core.subflows[0].state is SubflowState.SYN_SENT  # the SYN goes again on its timer


def test_small_mss_splits_segments_and_keeps_count():
    core = _core()
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    out = core.receive(
        _reply(p, 0x12, [Mss(mss=536), MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=0x1122)]), 0.01
    )
    data = [decode_frame(101, b) for b in out if decode_frame(101, b).payload_len]
    assert data and max(x.payload_len for x in data) <= 536 - 28
    assert core.data.unsent == len(core.data.segments) - sum(core.data.sent)  # the DATA_FIN waits on this count
    core2 = _core()
    (syn,) = core2.start(0.0)
    core2.receive(
        _reply(
            decode_frame(101, syn),
            0x12,
            [Mss(mss=8), MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=0x1122)],
        ),
        0.01,
    )
    assert core2.subflows[0].mss == 536  # a peer's MSS below RFC 9293's 536 is not believed


@pytest.mark.parametrize("timing", ["as-captured", 2.0])
def test_paced_replay_against_a_silent_target_does_not_spin(timing):
    core = _core(timeout=2.0, timing=timing)
    core.start(0.0)
    steps = 0
    while not core.done and steps < 200:
        core.poll(core.deadline())
        steps += 1
    assert core.done and steps < 50


def test_repeated_synack_on_a_failed_join_sends_no_keys():
    core, key_s = _core(), 0x0102030405060708
    jsyn = _to_join(core, key_s)
    bad = _reply(jsyn, 0x12, [MpJoinSynAck(address_id=0, truncated_hmac=12345, nonce=1)])
    core.receive(bad, 0.02)
    assert core.receive(bad, 0.03) == []


def test_cli_refuses_bad_timing_and_fill():
    for args in (["--timing", "x0"], ["--timing", "x-1"], ["--timing", "xnan"], ["--fill", "300"]):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "mptcpspec",
                "replay",
                "-r",
                str(DATA / "v4-tfo.pcap"),
                "--target",
                "198.51.100.2",
                *args,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)


def _tfo_core(**kw) -> Replay:
    return Replay(make_plan(DATA / "v4-tfo.pcap", 1), target=SERVER, rng=random.Random(7), **kw)


def test_plan_keeps_the_fast_open_syn_data():
    plan = make_plan(DATA / "v4-tfo.pcap", 1)
    stream = bytearray(plan.data_len)
    for seg in plan.segments:
        stream[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    # The application's stream: the SYN's data (below the IDSN, as the kernel maps it), then DSN 1...
    assert plan.syn_data + bytes(stream) == pattern(3000, 0)
    assert len(plan.syn_data) == 1000 and len(plan.tfo_cookie) == 8
    assert make_plan(DATA / "v4-tfo.pcap", 0).tfo_cookie == b""  # the first connection asked for a cookie


def _server_synack(core: Replay, ack_extra: int, cookie: bytes = b""):
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    opts = [Mss(mss=1460), FastOpen(cookie=cookie)] if cookie else [Mss(mss=1460)]
    key = 0x1122334455667788
    synack = tcp_packet(
        p.dst,
        p.src,
        p.dport,
        p.sport,
        5000,
        p.seq + 1 + ack_extra,
        0x12,
        65535,
        opts + [MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=key)],
    )
    out = core.receive(synack, 0.01)
    # The server's first DSS (acknowledging nothing new): the rest of the data may go.
    ack = tcp_packet(p.dst, p.src, p.dport, p.sport, 5001, p.seq + 1 + ack_extra, 0x10, 65535, [_data_ack(core)])
    return p, out + core.receive(ack, 0.02)


def _data_ack(core: Replay) -> Dss:
    return Dss(flags=DssFlags(3), data_ack=(crypto.key_idsn(core.keys.client, 1) + 1) % 2**64)


def test_fast_open_syn_data_taken():
    core = _tfo_core()
    p, out = _server_synack(core, 1000, cookie=bytes(range(8)))
    assert p.payload == pattern(1000, 0) and p.payload_len == 1000
    assert [type(o).__name__ for o in decode_tcp_options(p.options).options if o.KIND > 1] == [
        "Mss",
        "MpCapable",
        "FastOpen",
        "SackPermitted",  # as the captured SYN
        "WindowScale",
    ]
    third, first = decode_frame(101, out[0]), decode_frame(101, out[1])
    assert third.payload_len == 0 and third.seq == p.seq + 1001
    (mpc,) = decode_mptcp_options(first.options)
    # The first data after the SYN's: MP_CAPABLE with its length, at subflow sequence 1001, DSN 1.
    assert type(mpc) is MpCapable and mpc.data_level_length == len(first.payload) and first.seq == p.seq + 1001
    assert first.payload == pattern(3000, 0)[1000 : 1000 + len(first.payload)]
    rep = core.report(1.0)
    assert rep.tfo == "SYN data taken (1000 octets)" and rep.tfo_cookie == bytes(range(8)).hex()
    assert rep.data_planned == 3000


def test_fast_open_syn_data_not_taken_goes_after_the_handshake():
    core = _tfo_core()
    p, out = _server_synack(core, 0)
    frames = [decode_frame(101, x) for x in out[1:]]
    data = b"".join(f.payload for f in frames)
    assert data == pattern(3000, 0)[: len(data)] and len(data) > 1000  # the SYN data first, at DSN 1
    (mpc,) = decode_mptcp_options(frames[0].options)
    assert type(mpc) is MpCapable and frames[0].seq == p.seq + 1
    assert core.data.end == (core.data.idsn + 1 + 3000) % 2**64
    assert core.report(1.0).tfo == "SYN data not taken: sent after the handshake"


def test_no_tfo_sends_a_plain_syn():
    core = _tfo_core(tfo=False)
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    assert p.payload_len == 0 and all(type(o).__name__ != "FastOpen" for o in decode_tcp_options(p.options).options)
    assert core.data.end == (core.data.idsn + 1 + 3000) % 2**64


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["198.51.100.1>198.51.100.2", "2001:db8::1>2001:db8::2"]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**16 - 1),
    st.none() | st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=1500),
)
def test_fast_data_path_equals_the_codec_and_tcp_packet(pair, ack, dsn, ssn, length, csum, seq, tack, payload):
    """The replay's data segments are built by struct (wire.Flow, wire.dss_data_option): byte for byte
    what the DSS codec and the general packet builder give."""
    from mptcpspec.replay.wire import Flow, dss_data_option

    a, b = (ipaddress.ip_address(x) for x in pair.split(">"))
    dss = Dss(flags=DssFlags(0x0F), data_ack=ack, dsn=dsn, ssn=ssn, data_level_length=length, checksum=csum)
    opts = dss_data_option(ack, dsn, ssn, length, csum)
    assert opts == encode_tcp_options([dss])
    assert Flow(a, b, 40000, 5201).packet(seq, tack, 0x18, 65535, opts, payload) == tcp_packet(
        a, b, 40000, 5201, seq, tack, 0x18, 65535, [dss], payload
    )


def test_fast_open_syn_data_fits_the_mss_and_a_partial_take_sends_the_rest():
    core = _tfo_core(mss=536)
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    assert p.payload_len == 536 - 40 and len(syn) <= 20 + 40 + 536  # room left for the SYN's options
    assert core.report(0.0).tfo == "sent on the SYN; no SYN/ACK with MP_CAPABLE came back"
    synack = tcp_packet(
        p.dst,
        p.src,
        p.dport,
        p.sport,
        5000,
        p.seq + 1 + 300,
        0x12,
        65535,
        [Mss(mss=536), MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=7)],
    )
    out = core.receive(synack, 0.01)
    out += core.receive(
        tcp_packet(p.dst, p.src, p.dport, p.sport, 5001, p.seq + 301, 0x10, 65535, [_data_ack(core)]), 0.02
    )
    frames = [decode_frame(101, x) for x in out[1:]]
    # 300 octets taken below the IDSN; the other 700 of the SYN's 1000 lead the data stream at DSN 1.
    assert frames[0].seq == p.seq + 301
    stream = bytearray(2700)
    for f in frames:
        if not f.payload_len:
            continue
        (o,) = decode_mptcp_options(f.options)
        rel = 1 if type(o) is MpCapable else (o.dsn - core.data.idsn) % 2**64
        stream[rel - 1 : rel - 1 + f.payload_len] = f.payload
    assert bytes(stream[:700]) == pattern(3000, 0)[300:1000]
    assert core.data.end == (core.data.idsn + 1 + 2700) % 2**64
    assert core.report(1.0).tfo == "SYN data taken (300 octets); the rest sent after the handshake"


def test_fast_open_cookie_without_data():
    core = Replay(make_plan(DATA / "v4-tfo.pcap", 0), target=SERVER, rng=random.Random(7), tfo_cookie=bytes(8))
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    assert p.payload_len == 0
    assert [o for o in decode_tcp_options(p.options).options if type(o) is FastOpen] == [FastOpen(cookie=bytes(8))]
    _p, _out = (
        p,
        core.receive(
            tcp_packet(
                p.dst,
                p.src,
                p.dport,
                p.sport,
                5000,
                p.seq + 1,
                0x12,
                65535,
                [MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=7)],
            ),
            0.01,
        ),
    )
    assert core.report(1.0).tfo == "cookie sent, no SYN data"
    assert Replay(make_plan(DATA / "v4-tfo.pcap", 0), target=SERVER).report(0.0).tfo.startswith("sent on the SYN")
