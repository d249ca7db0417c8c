"""Plain TCP replay and fallback (RFC 8684 §3.7) without a network: the sans-IO core against a
plain TCP server written here, with and without loss."""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import subprocess
import sys

import pytest

from mptcpspec.capture.packets import decode_frame
from mptcpspec.codec.options import Mss, SackPermitted, decode_mptcp_options, decode_tcp_options
from mptcpspec.replay import events as ev
from mptcpspec.replay.core import Replay
from mptcpspec.replay.plan import PlanError, ReplayPlan, make_plan, make_tcp_plan
from mptcpspec.replay.subflow import M32, SubflowState
from mptcpspec.replay.wire import tcp_packet
from tests.conftest import DATA
from tests.test_replay_recovery import Sim

SERVER = ipaddress.ip_address("198.51.100.2")


def _stream(plan: ReplayPlan) -> bytes:
    out = bytearray(plan.data_len)
    for seg in plan.segments:
        out[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    return bytes(out)


class PlainServer:
    """A strict plain TCP server: in-order delivery (out-of-order segments kept and SACKed when
    SACK was offered), one ACK per segment, its FIN once ours came, sent again until acknowledged;
    any MPTCP option it receives is counted.  ``loss``: the chance of dropping each packet, each way."""

    def __init__(self, loss: float = 0.0, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.dropped = [0, 0]
        self.stream = bytearray()
        self.key: tuple | None = None
        self.rcv = 0
        self.snd = 7000
        self.ooo: dict[int, tuple[bytes, bool]] = {}
        self.fin_at: int | None = None
        self.fin_acked = False
        self.sack = False
        self.syns = 0
        self.mptcp_options = 0  #: MPTCP options seen after the SYN

    def lose(self, way: int) -> bool:
        if self.loss and self.rng.random() < self.loss:
            self.dropped[way] += 1
            return True
        return False

    def _reply(self, flags: int, options=(), seq: int | None = None) -> bytes:
        assert self.key is not None
        (src, sport), (dst, dport) = self.key
        return tcp_packet(dst, src, dport, sport, self.snd if seq is None else seq, self.rcv, flags, 65535, options)

    def _sack(self) -> list:
        if not self.sack or not self.ooo:
            return []
        edges: list[int] = []
        for seq in sorted(self.ooo, key=lambda s: (s - self.rcv) & M32)[:3]:
            n = len(self.ooo[seq][0]) + self.ooo[seq][1]
            edges += [seq, (seq + n) & M32]
        from mptcpspec.codec.options import Sack

        return [Sack(edges=tuple(edges))]

    def __call__(self, raw: bytes, now: float) -> list[bytes]:
        p = decode_frame(101, raw)
        flags = int(p.flags)
        if flags & 0x04:
            return []
        if flags & 0x02:
            self.syns += 1
            self.key = ((p.src, p.sport), (p.dst, p.dport))
            self.rcv = (p.seq + 1) & M32
            self.sack = any(type(o) is SackPermitted for o in decode_tcp_options(p.options, strict=False).options)
            return [self._reply(0x12, [Mss(mss=1460)] + ([SackPermitted()] if self.sack else []), seq=6999)]
        if p.options and decode_mptcp_options(p.options):
            self.mptcp_options += 1
        if flags & 0x10 and self.fin_at is not None and p.ack == (self.fin_at + 1) & M32:
            self.fin_acked = True
        if not p.payload_len and not flags & 0x01:
            return []
        off = (p.seq - self.rcv) & M32
        if off < 1 << 31:
            self.ooo[p.seq] = (p.payload, bool(flags & 0x01))
            while self.rcv in self.ooo:
                data, fin = self.ooo.pop(self.rcv)
                self.stream += data
                self.rcv = (self.rcv + len(data) + fin) & M32
                if fin and self.fin_at is None:
                    self.fin_at, self.snd = self.snd, (self.snd + 1) & M32
        if self.fin_at is not None and not self.fin_acked:
            return [self._reply(0x11, self._sack(), seq=self.fin_at)]
        return [self._reply(0x10, self._sack())]

    def tick(self) -> list[bytes]:
        if self.fin_at is not None and not self.fin_acked:
            return [self._reply(0x11, seq=self.fin_at)]
        return []


def _tcp_plan() -> ReplayPlan:
    """A plain TCP plan: the client data of a two-subflow capture, on one subflow."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    segs = tuple(dataclasses.replace(s, subflow=0) for s in plan.segments)
    return dataclasses.replace(plan, subflows=plan.subflows[:1], segments=segs, tcp=True, client_key=None)


@pytest.mark.parametrize("loss, seed", [(0.0, 0), (0.05, 1), (0.05, 2), (0.05, 3)])
def test_plain_tcp_replay_delivers_the_stream_and_closes_with_fins(loss, seed):
    plan = _tcp_plan()
    core = Replay(plan, target=SERVER, rng=random.Random(seed), timeout=5.0)
    server = PlainServer(loss, 100 + seed)
    Sim(core, server).run()
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert bytes(server.stream) == _stream(plan)
    assert server.mptcp_options == 0 and server.fin_acked
    assert report.tcp and not report.fell_back
    assert report.data_delivered == plan.data_len
    assert not any(isinstance(e, ev.FellBack) for e in core.events)
    assert core.subflows[0].state is SubflowState.CLOSED


def test_plain_tcp_syn_has_no_mptcp_option():
    core = Replay(_tcp_plan(), target=SERVER, rng=random.Random(1))
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    assert not decode_mptcp_options(p.options)
    assert any(type(o) is Mss for o in decode_tcp_options(p.options, strict=False).options)


@pytest.mark.parametrize("loss, seed", [(0.0, 0), (0.05, 4), (0.05, 5)])
def test_fallback_goes_on_as_tcp_on_the_first_subflow(loss, seed):
    """An MPTCP plan of two subflows against a server without MPTCP: the data in order on the
    first subflow, no join opened, no MPTCP option after the SYN, the report says it fell back."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    assert len(plan.subflows) == 2 and not plan.tcp
    core = Replay(plan, target=SERVER, rng=random.Random(seed), timeout=5.0)
    server = PlainServer(loss, 200 + seed)
    Sim(core, server).run()
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert report.fell_back and report.tcp
    assert bytes(server.stream) == _stream(plan)
    assert server.syns >= 1 and server.mptcp_options == 0
    assert [type(e) for e in core.events if isinstance(e, ev.FellBack)] == [ev.FellBack]
    assert core.subflows[1].state is SubflowState.FAILED and core.subflows[1].sent == 0
    assert not any(isinstance(e, ev.JoinOpening) for e in core.events)


def test_mptcp_syn_offers_mp_capable_until_the_server_falls_back():
    core = Replay(make_plan(DATA / "v4-two-subflows.pcap"), target=SERVER, rng=random.Random(1))
    (syn,) = core.start(0.0)
    assert decode_mptcp_options(decode_frame(101, syn).options)
    assert not core.conn.tcp


def test_tcp_plan_of_a_capture(tmp_path):
    """A TCP stream of a capture: an MPTCP subflow is refused, a missing stream named, a capture
    without TCP said to be one."""
    with pytest.raises(PlanError, match="MPTCP subflow"):
        make_tcp_plan(DATA / "v4-two-subflows.pcap", 0)
    with pytest.raises(PlanError, match="no TCP stream 9"):
        make_tcp_plan(DATA / "v4-two-subflows.pcap", 9)


def _udp_only(path) -> None:
    """A pcap (raw IPv4) of one UDP datagram: no TCP at all."""
    import struct

    udp = struct.pack("!HHHH", 5353, 5353, 12, 0) + b"ping"
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
    )
    pkt = ip + udp
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    path.write_bytes(header + struct.pack("<IIII", 1, 0, len(pkt), len(pkt)) + pkt)


def test_a_capture_without_tcp_is_one_clear_line(tmp_path):
    cap = tmp_path / "udp.pcap"
    _udp_only(cap)
    with pytest.raises(PlanError, match="no TCP in the capture"):
        make_tcp_plan(cap, 0)
    for which in (["--tcp-stream", "0"], []):
        r = subprocess.run(
            [sys.executable, "-m", "mptcpspec", "replay", "-r", str(cap), *which, "--target", "198.51.100.2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 3 and not r.stdout, r
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("mptcpspec: error: "), r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "replay", "-r", str(DATA / "v4-two-subflows.pcap")]
        + ["--tcp-stream", "9", "--target", "198.51.100.2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 3 and r.stderr.strip().endswith("no TCP stream 9 (streams 0, 1)"), r.stderr


def test_window_scale_offered_as_captured_and_the_servers_shift_applied():
    """RFC 7323 §2: the SYN offers scaling (shift 0: our window stays unscaled) as the captured one
    did; the server's windows after its SYN/ACK are scaled by the shift it gave, the SYN/ACK's not."""
    from mptcpspec.codec.options import WindowScale

    plan = _tcp_plan()
    assert plan.subflows[0].window_scale
    core = Replay(plan, target=SERVER, rng=random.Random(2))
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    assert [o for o in decode_tcp_options(p.options).options if type(o) is WindowScale] == [WindowScale(shift=0)]
    synack = tcp_packet(
        p.dst, p.src, p.dport, p.sport, 6999, p.seq + 1, 0x12, 300, [Mss(mss=1460), WindowScale(shift=7)]
    )
    core.receive(synack, 0.01)
    sf = core.subflows[0]
    assert sf.wnd == 300 and sf.snd_shift == 7
    core.receive(tcp_packet(p.dst, p.src, p.dport, p.sport, 7000, p.seq + 1, 0x10, 300, []), 0.02)
    assert sf.wnd == 300 << 7
    unscaled = Replay(
        dataclasses.replace(plan, subflows=(dataclasses.replace(plan.subflows[0], window_scale=False),)),
        target=SERVER,
        rng=random.Random(2),
    )
    (syn,) = unscaled.start(0.0)
    assert not [o for o in decode_tcp_options(decode_frame(101, syn).options).options if type(o) is WindowScale]
    unscaled.receive(
        tcp_packet(
            p.dst,
            p.src,
            p.dport,
            p.sport,
            6999,
            decode_frame(101, syn).seq + 1,
            0x12,
            300,
            [Mss(mss=1460), WindowScale(shift=7)],
        ),
        0.01,
    )
    assert unscaled.subflows[0].snd_shift == 0  # not offered: not in use (RFC 7323 §2.2)


def _timestamps(raw: bytes):
    from mptcpspec.codec.options import Timestamps

    p = decode_frame(101, raw)
    return next((o for o in decode_tcp_options(p.options).options if type(o) is Timestamps), None)


def test_timestamps_offered_as_captured_and_echoed_on_every_segment():
    """RFC 7323 §3.2: the plain TCP SYN offers timestamps as the captured one did; once the server's
    SYN/ACK carries them, every segment does: TSval our clock in milliseconds (from a random
    offset), TSecr the server's latest in-order TSval (TS.Recent, §4.3); an older one is not echoed."""
    from mptcpspec.codec.options import Timestamps

    plan = _tcp_plan()
    assert plan.subflows[0].timestamps  # the kernel's SYN in the capture offered them
    core = Replay(plan, target=SERVER, rng=random.Random(4))
    (syn,) = core.start(10.0)
    p = decode_frame(101, syn)
    offer = _timestamps(syn)
    assert offer is not None and offer.tsecr == 0
    synack = tcp_packet(
        p.dst,
        p.src,
        p.dport,
        p.sport,
        6999,
        p.seq + 1,
        0x12,
        65535,
        [Mss(mss=1460), Timestamps(tsval=500, tsecr=offer.tsval)],
    )
    out = core.receive(synack, 10.25)
    assert out and all(_timestamps(x) == Timestamps(tsval=(offer.tsval + 250) & M32, tsecr=500) for x in out)
    sent = decode_frame(101, out[-1])
    # an in-order ACK with a newer TSval moves TS.Recent; a stale one (reordered) does not
    ack = tcp_packet(
        p.dst,
        p.src,
        p.dport,
        p.sport,
        7000,
        sent.seq + len(sent.payload),
        0x10,
        65535,
        [Timestamps(tsval=510, tsecr=1)],
    )
    out = core.receive(ack, 10.5)
    assert out and {_timestamps(x).tsecr for x in out} == {510}
    old = tcp_packet(
        p.dst,
        p.src,
        p.dport,
        p.sport,
        7000,
        sent.seq + len(sent.payload),
        0x10,
        65535,
        [Timestamps(tsval=505, tsecr=1)],
    )
    core.receive(old, 10.6)
    assert core.subflows[0].ts_recent == 510
    assert all(_timestamps(x) is not None for x in core.poll(11.0) + core.poll(12.0))


def test_no_timestamps_unless_both_syns_carry_them():
    """A server whose SYN/ACK has no timestamps gets none (RFC 7323 §3.2); an MPTCP SYN offers none
    (the replay's DSS leaves no room for them on full-sized segments)."""
    plan = _tcp_plan()
    core = Replay(plan, target=SERVER, rng=random.Random(4))
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    out = core.receive(tcp_packet(p.dst, p.src, p.dport, p.sport, 6999, p.seq + 1, 0x12, 65535, [Mss(mss=1460)]), 0.01)
    assert out and not any(_timestamps(x) for x in out)
    mptcp = Replay(make_plan(DATA / "v4-two-subflows.pcap"), target=SERVER, rng=random.Random(4))
    assert _timestamps(mptcp.start(0.0)[0]) is None
