"""The replay's hot paths give what the general paths give: data segments built from a subflow's
constant parts and a payload sum computed beforehand (wire.Flow), the server's pure ACKs read in
place (Receiver.pure_ack)."""

from __future__ import annotations

import copy
import dataclasses
import gc
import heapq
import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.codec.options import Dss, DssFlags, MpPrio, Sack, Timestamps
from mptcpspec.replay import fidelity
from mptcpspec.replay.core import Replay
from mptcpspec.replay.plan import make_plan
from mptcpspec.replay.receiving import Receiver
from mptcpspec.replay.run import settled_heap
from mptcpspec.replay.subflow import SubflowState
from mptcpspec.replay.wire import Flow, payload_sum, tcp_packet
from tests.conftest import DATA
from tests.test_replay_recovery import SERVER, LossyServer, Sim

M32, M64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["198.51.100.1>198.51.100.2", "2001:db8::1>2001:db8::2", "203.0.113.1>192.0.2.9"]),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0x1FF),
    st.integers(0, 2**16 - 1),
    st.lists(st.sampled_from([Dss(flags=DssFlags(3), data_ack=2**64 - 1), MpPrio(backup=True)]), max_size=2),
    st.binary(max_size=1500),
    st.booleans(),
)
def test_flow_packet_equals_tcp_packet(pair, sport, dport, seq, ack, flags, window, options, payload, summed):
    """Any ports, numbers, flags, window, options and payload (odd lengths too), with the payload's
    sum given or not: byte for byte what the general packet builder gives."""
    from mptcpspec.codec.options import encode_tcp_options

    a, b = (ipaddress.ip_address(x) for x in pair.split(">"))
    opts = encode_tcp_options(options) if options else b""
    psum = payload_sum(payload) if summed else None
    got = Flow(a, b, sport, dport).packet(seq, ack, flags, window, opts, payload, psum)
    assert got == tcp_packet(a, b, sport, dport, seq, ack, flags, window, options, payload)


def test_payload_sums_are_those_of_the_planned_payloads():
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(1))
    sums = core.data.sums
    assert sums and all(sums[seg.data] == payload_sum(seg.data) for seg in plan.segments)


# -- the server's pure ACKs


def _state(core: Replay) -> tuple:
    """What a packet from the server may change."""
    conn = core.conn
    subflows = tuple(
        (
            sf.state,
            sf.snd_una,
            sf.snd_nxt,
            sf.wnd,
            sf.dupacks,
            sf.recovery,
            sf.marks,
            sf.rto_at,
            sf.cc.cwnd,
            sf.cc.ssthresh,
            sf.dss_seen,
            sf.received,
            sf.sent,
            sf.timed_end,
            sf.rtt.srtt,
            len(sf.unacked),
            sf.fin_acked,
        )
        for sf in conn.subflows
    )
    out = conn.out
    return (
        subflows,
        out.una,
        out.window,
        out.progress,
        out.unsent,
        conn.last_heard,
        core.closing.state,
        conn.done,
        tuple(conn.events),
    )


def _copy(core: Replay) -> Replay:
    plan = core.conn.plan  # read only: shared
    return copy.deepcopy(core, {id(plan): plan, id(core.data.sums): core.data.sums})


def _general(core: Replay) -> Replay:
    """A copy of ``core`` whose receiver never takes the hot path."""
    ref = _copy(core)
    ref.receiver.wire = {}
    return ref


class CheckedSim(Sim):
    """A :class:`Sim` whose every packet to the replay is also given to a copy of it that takes
    the general path: the same answer, the same state after."""

    def __init__(self, core: Replay, server: LossyServer) -> None:
        super().__init__(core, server)
        self.checked = 0

    def run(self, limit: float = 30.0, until_events=None, start: bool = True) -> None:
        core = self.core
        receive = core.receive

        def checked(data: bytes, now: float) -> list[bytes]:
            ref = _general(core)
            want = Replay.receive(ref, data, now)
            got = receive(data, now)
            assert got == want
            assert _state(core) == _state(ref)
            self.checked += 1
            return got

        core.receive = checked  # type: ignore[method-assign]
        try:
            super().run(limit, until_events, start)
        finally:
            del core.receive


@pytest.mark.parametrize(("seed", "loss"), [(0, 0.0), (1, 0.05), (2, 0.05), (3, 0.1)])
def test_pure_ack_path_answers_as_the_general_path(seed, loss, monkeypatch):
    """A whole replay against a simulated server (lossy: SACK, fast recovery, timeouts): each packet
    the hot path takes gets the answer the general path gives, and leaves the same state."""
    taken = []
    real = Receiver.pure_ack

    def counting(self, data, now):
        out = real(self, data, now)
        if out is not None and self.wire:
            taken.append(1)
        return out

    monkeypatch.setattr(Receiver, "pure_ack", counting)
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(seed), timeout=5.0)
    server = LossyServer(core.conn.keys.client, loss=loss, seed=100 + seed)
    sim = CheckedSim(core, server)
    sim.run()
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert sim.checked > 20 and len(taken) > 10, (sim.checked, len(taken))


def _established() -> tuple[Replay, LossyServer, Sim]:
    """A replay in the middle of its data, segments outstanding on the first subflow."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(7), timeout=5.0)
    server = LossyServer(core.conn.keys.client, loss=0.0, seed=1)
    sim = Sim(core, server)
    first = core.conn.subflows[0]
    sim.run(until_events=lambda: first.state is SubflowState.ESTABLISHED and len(first.unacked) >= 3, limit=5.0)
    assert first.state is SubflowState.ESTABLISHED and len(first.unacked) >= 3
    return core, server, sim


@pytest.mark.parametrize(
    "shape",
    [
        "ack64",
        "ack32",
        "no-data-ack",
        "timestamps",
        "nops",
        "no-dss",
        "duplicate",
        "sack",
        "payload",
        "fin",
        "psh",
        "mapping",
        "mp-prio",
        "two-dss",
        "bad-length",
        "ip-options",
        "other-port",
    ],
)
def test_pure_ack_path_takes_only_what_it_reads_whole(shape):
    """Each shape of server packet: the hot path either answers as the general path does (and
    leaves the same state), or leaves the packet to it (None)."""
    core, _, _ = _established()
    sf = core.conn.subflows[0]
    (src, sport), (dst, dport) = sf.remote, sf.local
    u = sf.unacked[0]
    ack = u.end if shape != "duplicate" else sf.snd_una
    data_ack = (core.conn.out.idsn + 1 + u.dsn + len(u.payload or b"")) & M64
    dss = Dss(flags=DssFlags(3), data_ack=data_ack)
    flags, payload, seq = 0x10, b"", sf.rcv_nxt or 0
    opts: list = [dss]
    if shape == "ack32":
        opts = [Dss(flags=DssFlags(1), data_ack=data_ack & M32)]
    elif shape == "no-data-ack":
        opts = [Dss(flags=DssFlags(0))]
    elif shape == "timestamps":
        opts = [Timestamps(tsval=5, tsecr=6), dss]
    elif shape == "no-dss":
        opts = []
    elif shape == "sack":
        opts = [Sack(edges=(u.end, (u.end + 100) & M32)), dss]
    elif shape == "payload":
        payload = b"x" * 10
    elif shape == "fin":
        flags = 0x11
    elif shape == "psh":
        flags = 0x18
    elif shape == "mapping":
        opts = [Dss(flags=DssFlags(7), data_ack=data_ack, dsn=1, ssn=1, data_level_length=0)]
    elif shape == "mp-prio":
        opts = [MpPrio(backup=True), dss]
    elif shape == "two-dss":
        opts = [dss, Dss(flags=DssFlags(1), data_ack=data_ack & M32)]
    pkt = tcp_packet(src, dst, sport, dport, seq, ack, flags, 60000, opts, payload)
    if shape == "nops":
        pkt = tcp_packet(src, dst, sport, dport, seq, ack, flags, 60000, [], b"")
        pkt = bytearray(pkt)
        opt = b"\x01\x01\x01\x01" + bytes([30, 12, 0x20, 3]) + data_ack.to_bytes(8, "big")
        pkt[32] = (20 + len(opt)) // 4 << 4
        pkt = pkt[:40] + opt
        pkt[2:4] = len(pkt).to_bytes(2, "big")
        pkt = bytes(pkt)  # checksums not checked by the replay
    elif shape == "bad-length":
        pkt = bytearray(pkt)
        pkt[41] = 11  # the DSS's length field, one short of its 8-octet DATA_ACK
        pkt = bytes(pkt)
    elif shape == "ip-options":
        pkt = bytes([0x46]) + pkt[1:2] + (len(pkt) + 4).to_bytes(2, "big") + pkt[4:20] + b"\x01\x01\x01\x00" + pkt[20:]
    elif shape == "other-port":
        pkt = tcp_packet(src, dst, sport, dport + 1, seq, ack, flags, 60000, opts, payload)
    ref = _general(core)
    taken = _copy(core).receiver.pure_ack(pkt, 0.5) is not None
    assert taken == (shape in ("ack64", "ack32", "no-data-ack", "timestamps", "nops", "no-dss", "duplicate"))
    assert core.receive(pkt, 0.5) == ref.receive(pkt, 0.5)
    assert _state(core) == _state(ref)


# -- batches: Replay.receive_all


class BatchSim(Sim):
    """A :class:`Sim` whose replay takes the packets due at the same time in one batch
    (:meth:`Replay.receive_all`), as ``run_replay`` gives it each ``recv()``; with ``check``, each
    batch of one is also given to a copy by :meth:`Replay.receive`: the same answer, the same state."""

    def __init__(self, core: Replay, server: LossyServer, delay: float, check: bool) -> None:
        super().__init__(core, server, delay)
        self.check = check
        self.batches: list[int] = []

    def run(self, limit: float = 30.0, until_events=None, start: bool = True) -> None:
        core = self.core
        if start:
            self._send(core.start(0.0), True)
        while not core.done and self.now < limit:
            deadline = core.deadline()
            times = [t for t in (deadline, self.queue[0][0] if self.queue else None, self.tick_at) if t is not None]
            self.now = max(self.now, min(times))
            batch = []
            while self.queue and self.queue[0][0] <= self.now:
                _, _, to_server, pkt = heapq.heappop(self.queue)
                if to_server:
                    self._send(self.server(pkt, self.now), False)
                else:
                    batch.append(pkt)
            if batch:
                self.batches.append(len(batch))
                ref = _copy(core) if self.check and len(batch) == 1 else None
                out = core.receive_all(batch, self.now)
                if ref is not None:
                    assert out == ref.receive(batch[0], self.now)
                    assert _state(core) == _state(ref)
                self._send(out, True)
            if self.now >= self.tick_at:
                self._send(self.server.tick(), False)
                self.tick_at = self.now + 0.05
            self._send(core.poll(self.now), True)


@pytest.mark.parametrize(
    ("seed", "loss", "delay", "timing"),
    [
        (0, 0.0, 0.0005, "fast"),
        (1, 0.05, 0.0005, "fast"),
        (2, 0.05, 0.0, "fast"),
        (3, 0.1, 0.0, "fast"),
        (4, 0.0, 0.0005, "as-captured"),
        (5, 0.05, 0.0, "as-captured"),
    ],
)
def test_batches_deliver_the_stream_and_close_cleanly(seed, loss, delay, timing):
    """Packets taken in batches (with no delay, every answer to a burst in one): the server reads
    the whole stream and the close is a FIN exchange on every subflow; a batch of one is what
    :meth:`Replay.receive` does with its packet; at captured times too, where no segment goes
    before its time."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(seed), timeout=5.0, timing=timing)
    rec = None if timing == "fast" else fidelity.record(core)
    server = LossyServer(core.conn.keys.client, loss=loss, seed=200 + seed)
    sim = BatchSim(core, server, delay, check=delay > 0)
    sim.run()
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    stream = bytearray(plan.data_len)
    for seg in plan.segments:
        stream[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    assert bytes(server.stream) == bytes(stream)
    assert all(s.state is SubflowState.CLOSED for s in core.subflows)
    assert max(sim.batches) > 1
    if rec is not None:  # each segment's first transmission no earlier than its captured time
        first: dict[int, float] = {}
        for _, dsn, _, at in rec.rows:
            first.setdefault(dsn, at)
        assert all(first[seg.dsn] >= seg.time_ns / 1e9 - 1e-9 for seg in plan.segments), first


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_lowest_unsent_is_the_unsent_segment_of_the_lowest_dsn(data):
    """Segments sent in any order, some split (the rest becomes a segment of its own): the lowest
    unsent one is always the unsent segment of the lowest (DSN, index)."""
    from mptcpspec.replay.datalevel import OutgoingData
    from mptcpspec.replay.plan import PlannedSegment

    plan = make_plan(DATA / "v4-two-subflows.pcap")
    lens = data.draw(st.lists(st.integers(1, 50), min_size=1, max_size=30))
    dsns, at = [], 1
    for n in lens:
        dsns.append(at)
        at += n
    order = data.draw(st.permutations(range(len(lens))))
    segments = tuple(PlannedSegment(0, dsns[k], bytes(lens[k]), 0, 0) for k in order)
    plan = dataclasses.replace(plan, segments=segments, data_len=at - 1)
    out = OutgoingData(0, plan, 0, 1460)
    for _ in range(len(lens) * 3):
        want = min(((s.dsn, k) for k, s in enumerate(out.segments) if not out.sent[k]), default=None)
        got = out.lowest_unsent()
        assert got == (None if want is None else want[1])
        if got is None:
            break
        action = data.draw(st.sampled_from(["send-lowest", "send-other", "split"]))
        unsent = [k for k in range(len(out.segments)) if not out.sent[k]]
        k = got if action == "send-lowest" else data.draw(st.sampled_from(unsent))
        if action == "split" and len(out.segments[k].data) > 1:
            out.split(k, data.draw(st.integers(1, len(out.segments[k].data) - 1)))
        else:
            out.sent[k] = 1
            out.unsent -= 1


def test_settled_heap_hides_what_was_made_before_and_gives_it_back():
    """The live replay's run: the plan out of the collector's sight (gc.freeze), given back after,
    even when the run raises."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")  # made before: frozen within
    before = gc.get_freeze_count()
    with pytest.raises(RuntimeError), settled_heap():
        assert gc.get_freeze_count() > before
        assert gc.is_tracked(plan.segments)
        raise RuntimeError("the run failed")
    assert gc.get_freeze_count() == before == 0
