"""Bursts (replay.wire.Burst, replay.gso): data segments longer than the MSS that the transport
cuts, as the kernel cuts its own TSO/GSO packets.  Without a network: :func:`~replay.wire.cut`
against the packet builder, the partial checksum the kernel completes, and the engine's bursts
cut on their way to a simulated server.  The kernel's own cutting is checked against ``cut`` in
the lab (tests/test_replay_transport.py)."""

from __future__ import annotations

import ipaddress
import math
import random
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.codec.options import Dss, decode_tcp_options
from mptcpspec.replay import fidelity, gso
from mptcpspec.replay.core import Replay
from mptcpspec.replay.gso import GSO_TCPV4, GSO_TCPV6, VNET_HDR
from mptcpspec.replay.plan import make_plan
from mptcpspec.replay.subflow import SubflowState
from mptcpspec.replay.wire import (
    BURST_MAX,
    Burst,
    Flow,
    cut,
    dss_data_option,
    fold,
    on_wire,
    partial_checksum,
    payload_sum,
)
from tests.conftest import DATA, ROOT
from tests.test_replay_recovery import SERVER, LossyServer, Sim

V4 = (ipaddress.ip_address("198.51.100.1"), ipaddress.ip_address("198.51.100.2"))
V6 = (ipaddress.ip_address("2001:db8:1::1"), ipaddress.ip_address("2001:db8:1::2"))
PSH_ACK, FIN_PSH_ACK = 0x18, 0x19


def _tcp_at(packet: bytes) -> int:
    return (packet[0] & 15) * 4 if packet[0] >> 4 == 4 else 40


@settings(max_examples=300, deadline=None)
@given(
    v6=st.booleans(),
    n=st.integers(1, 20000),
    mss=st.integers(536, 9000),
    opts=st.sampled_from(["none", "dss", "dss-csum", "ts"]),
    fin=st.booleans(),
    seq=st.integers(0, 2**32 - 1),
)
def test_cut_makes_the_segments_the_builder_makes(v6, n, mss, opts, fin, seq):
    """Each piece is the packet Flow.packet builds for its sequence number and part of the payload,
    the same options, PSH and FIN on the last one only; together, the payload."""
    src, dst = V6 if v6 else V4
    flow = Flow(src, dst, 40000, 5201)
    o = {
        "none": b"",
        "dss": dss_data_option(5, 2**40, 1, n, None),
        "dss-csum": dss_data_option(5, 2**40, 1, n, 0xBEEF),
        "ts": b"\x01\x01\x08\x0a" + bytes(range(8)),
    }[opts]
    payload = random.Random(n).randbytes(n)
    flags = FIN_PSH_ACK if fin else PSH_ACK
    packet = flow.packet(seq, 77, flags, 1000, o, payload)
    pieces = cut(packet, mss)
    size = mss - len(o)
    want = []
    for off in range(0, n, size):
        last = off + size >= n
        want.append(flow.packet(seq + off, 77, flags if last else 0x10, 1000, o, payload[off : off + size]))
    assert pieces == want
    assert b"".join(p[_tcp_at(p) + 20 + len(o) :] for p in pieces) == payload
    assert all(len(p) - _tcp_at(p) - 20 <= mss for p in pieces)
    assert on_wire(Burst.of(packet, mss)) == (len(pieces), sum(map(len, pieces)))


@settings(max_examples=200, deadline=None)
@given(v6=st.booleans(), n=st.integers(0, 3000), seq=st.integers(0, 2**32 - 1))
def test_the_partial_checksum_completes_to_the_checksum(v6, n, seq):
    """What the kernel does with CHECKSUM_PARTIAL (sum the segment from the TCP header on, the
    pseudo-header's sum in the checksum field, and complement) gives the packet's own checksum."""
    src, dst = V6 if v6 else V4
    payload = bytes(range(256)) * (n // 256) + bytes(n % 256)
    packet = Flow(src, dst, 40000, 5201).packet(seq, 1, PSH_ACK, 500, b"", payload)
    t = _tcp_at(packet)
    partial = partial_checksum(packet)
    assert partial[: t + 16] == packet[: t + 16] and partial[t + 18 :] == packet[t + 18 :]
    done = ~fold(payload_sum(partial[t:])) & 0xFFFF
    assert done == int.from_bytes(packet[t + 16 : t + 18], "big")


def test_the_virtio_header_is_what_the_kernel_reads():
    """struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (10 octets)."""
    assert VNET_HDR.size == 10
    assert (GSO_TCPV4, GSO_TCPV6) == (1, 4)  # VIRTIO_NET_HDR_GSO_TCPV4, _TCPV6 (include/uapi/linux/virtio_net.h)


class CuttingSim(Sim):
    """:class:`Sim` with a Burst cut (:func:`cut`) on its way, as the transport or the kernel cuts
    it, and its pieces lost one by one."""

    def __init__(self, core: Replay, server: LossyServer, delay: float = 0.0005) -> None:
        super().__init__(core, server, delay)
        self.bursts = self.wire = 0
        self.longest = 0  #: octets of the longest burst

    def _send(self, packets: list[bytes], to_server: bool) -> None:
        for pkt in packets:
            pieces = [pkt]
            if isinstance(pkt, Burst):
                self.bursts += 1
                self.longest = max(self.longest, len(pkt))
                pieces = cut(pkt, pkt.mss)
            self.wire += len(pieces) if to_server else 0
            super()._send(pieces, to_server)


def _stream(plan) -> bytes:
    out = bytearray(plan.data_len)
    for seg in plan.segments:
        out[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    return bytes(out)


@pytest.mark.parametrize(("seed", "loss"), [(0, 0.0), (1, 0.0), (2, 0.03), (3, 0.05), (4, 0.05)])
def test_bursts_deliver_the_stream_and_count_their_segments(seed, loss):
    """With bursts allowed, the data goes in fewer, longer packets, each with one mapping over its
    payload; cut on the way (and lost piece by piece), the server still reads the whole stream,
    the close is clean, and each subflow's ``sent`` counts the segments on the wire."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(seed), timeout=5.0)
    core.allow_bursts(10**9)
    assert core.sender.burst == BURST_MAX
    server = LossyServer(core.keys.client, loss=loss, seed=300 + seed)
    sim = CuttingSim(core, server)
    sim.run()
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert bytes(server.stream) == _stream(plan)
    assert all(s.state is SubflowState.CLOSED for s in core.subflows)
    assert sim.bursts > 0
    if not loss:  # the planned segments that continue one another on a subflow, in DSN order, go together
        assert sim.longest > 4 * 1424, sim.longest
    assert sum(s.sent for s in core.subflows) == sim.wire


def test_a_burst_carries_one_mapping_over_its_payload():
    """RFC 8684 §3.3.1: the DSS of a burst maps all of its payload, from its first octet."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(0), timeout=5.0)
    core.allow_bursts(BURST_MAX)
    server = LossyServer(core.keys.client, loss=0.0, seed=1)
    seen: list[Burst] = []
    sim = CuttingSim(core, server)
    send = sim._send

    def spy(packets, to_server):
        seen.extend(p for p in packets if isinstance(p, Burst))
        send(packets, to_server)

    sim._send = spy  # type: ignore[method-assign]
    sim.run()
    assert seen
    for b in seen:
        t = _tcp_at(b)
        th = (b[t + 12] >> 4) * 4
        dss = [o for o in decode_tcp_options(b[t + 20 : t + th]).options if type(o) is Dss]
        assert len(dss) == 1 and dss[0].data_level_length == len(b) - t - th


def test_no_bursts_unless_allowed():
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(0), timeout=5.0)
    sim = CuttingSim(core, LossyServer(core.keys.client, loss=0.0, seed=1))
    sim.run()
    assert core.report(core.conn.ended_at or 30.0).ok
    assert sim.bursts == 0


class LateSim(CuttingSim):
    """:class:`CuttingSim` on a machine that runs the replay only every ``step`` seconds: what
    falls due in between is due together when it runs."""

    def __init__(self, core: Replay, server: LossyServer, step: float) -> None:
        super().__init__(core, server)
        self.step = step
        deadline = core.deadline

        def late() -> float | None:
            d = deadline()
            return None if d is None else math.ceil(d / step) * step

        core.deadline = late  # type: ignore[method-assign]


@pytest.mark.parametrize(("step", "loss"), [(0.0, 0.0), (0.002, 0.0), (0.004, 0.0), (0.002, 0.03)])
def test_paced_bursts_are_the_captured_segments_and_none_goes_early(step, loss):
    """At paced timing the segments due together go as one burst cut at the captured boundaries:
    every planned segment arrives with its own size and DSN, and none before its captured time.
    With a replay that keeps the schedule exactly (step 0) no burst forms: each segment has its own
    time.  Under loss the bursts stop on the lossy subflow and the stream is still whole."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(7), timeout=5.0, timing="as-captured")
    core.allow_bursts(BURST_MAX)
    rec = fidelity.record(core)
    server = LossyServer(core.keys.client, loss=loss, seed=11)
    sim = LateSim(core, server, step) if step else CuttingSim(core, server)
    sim.run()
    assert core.report(core.conn.ended_at or 30.0).ok
    assert bytes(server.stream) == _stream(plan)
    got = fidelity.fidelity(core, rec)
    assert got.schedule is not None and got.schedule.min >= 0, got.schedule
    if not loss:
        assert got.kept == got.planned.count == got.live.count, (got.kept, got.planned, got.live)
        assert sum(s.sent for s in core.subflows) == sim.wire
    if step:
        assert sim.bursts > 0 and got.schedule.max <= step
    else:
        assert sim.bursts == 0


@pytest.mark.parametrize("extra", [("--pps", "1000"), ("--mode", "raw", "--iface", "lo")])
def test_gso_with_what_cuts_by_the_capture_is_a_usage_error(extra):
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "replay", "-r", str(DATA / "v4-two-subflows.pcap")]
        + ["--target", "198.51.100.2", "--gso", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "--gso needs" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_links_are_kept_and_looked_up_again_only_after_a_while(monkeypatch):
    """A pair's link is looked up once and kept; a pair without one is looked up again only after
    RETRY seconds; a pair whose sends failed, never again."""
    calls: list[bytes] = []
    link = ("veth0", bytes(14))

    def find(src: bytes, dst: bytes, mark: int = 0):
        calls.append(src + dst)
        return link if dst == b"up" else None

    monkeypatch.setattr(gso, "find_link", find)
    monkeypatch.setattr(gso, "RETRY", 0.2)
    links = gso.Links()
    assert links.get(b"a", b"up") == link and links.get(b"a", b"up") == link
    assert calls == [b"aup"]
    assert links.get(b"a", b"down") is None and links.get(b"a", b"down") is None
    assert calls.count(b"adown") == 1
    time.sleep(0.25)
    assert links.get(b"a", b"down") is None and calls.count(b"adown") == 2
    links.failed(b"a", b"up")
    time.sleep(0.25)
    assert links.get(b"a", b"up") is None and calls.count(b"aup") == 1
