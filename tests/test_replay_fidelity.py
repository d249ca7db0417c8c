"""The fidelity report (replay.fidelity), without a network: a simulated MPTCP server, plans whose
times and sizes are known, the report's numbers exact; recording changes no packet."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from mptcpspec.replay import events as ev
from mptcpspec.replay.core import Replay
from mptcpspec.replay.fidelity import Recorder, Why, fidelity, record
from mptcpspec.replay.plan import PlannedSegment, PlannedSubflow, ReplayPlan, SubflowKind, make_plan
from mptcpspec.replay.wire import tcp_packet
from tests.conftest import DATA, ROOT, need_tshark
from tests.test_replay_recovery import CLIENT, KEY_C, SERVER, LossyServer, Sim

MS = 1_000_000  # nanoseconds


class Logged(Sim):
    """A :class:`Sim` that keeps every packet the replay sent."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.out: list[bytes] = []

    def _send(self, packets: list[bytes], to_server: bool) -> None:
        if to_server:
            self.out += packets
        super()._send(packets, to_server)


def _plan(sizes_times=None) -> ReplayPlan:
    """One subflow, by default: 1000 octets at 10 ms, 1000 at 10.2 ms and 10.4 ms (before the
    server's first DSS comes back at 11 ms: they wait for it), 1000 at 20 ms, 500 at 30 ms."""
    ps = PlannedSubflow(0, SubflowKind.MP_CAPABLE, (CLIENT, 40000), (SERVER, 5201), None, False, 0, True)
    if sizes_times is None:
        sizes_times = [(1000, 10 * MS), (1000, 10_200_000), (1000, 10_400_000), (1000, 20 * MS), (500, 30 * MS)]
    segs, dsn = [], 1
    for k, (n, t) in enumerate(sizes_times):
        segs.append(PlannedSegment(0, dsn, bytes([k + 1]) * n, 0, t))
        dsn += n
    return ReplayPlan(0, 1, False, KEY_C, (ps,), tuple(segs), dsn - 1, 0, True, False, 0)


def _run(plan: ReplayPlan, timing="as-captured", recorded: bool = True, seed: int = 3):
    core = Replay(plan, target=SERVER, rng=random.Random(seed), timing=timing, timeout=5.0)
    rec = record(core) if recorded else None
    server = LossyServer(core.keys.client, loss=0.0, seed=1)
    sim = Logged(core, server)  # one-way delay 0.5 ms: the handshake ends at 1 ms
    sim.run()
    assert core.report(core.conn.ended_at or 30.0).ok
    return core, rec, sim


def test_sizes_subflows_and_schedule_exact():
    plan = _plan()
    core, rec, _ = _run(plan)
    f = fidelity(core, rec)
    assert (f.planned.count, f.planned.octets) == (5, 4500)
    assert (f.planned.min, f.planned.p50, f.planned.max) == (500, 1000, 1000)
    assert f.live == f.planned and (f.kept, f.split, f.merged, f.unsent) == (5, 0, 0, 0)
    assert [(s.subflow, s.planned, s.sent, s.again) for s in f.subflows] == [(0, 4500, 4500, 0)]
    assert f.moved == () and f.moved_octets == 0
    s = f.schedule
    assert s is not None and s.packets == 5
    # on time but the two that waited for the server's first DSS at 11 ms: 0.8 ms and 0.6 ms late
    errors = sorted(round(t - at / 1e9, 9) for (_, _, _, t), at in zip(rec.rows, _due(plan, rec)))
    assert errors == [0.0, 0.0, 0.0, 0.0006, 0.0008]
    assert s.max == pytest.approx(0.0008) and s.p99 == pytest.approx(0.0008)
    assert s.median == pytest.approx(0.0) and s.min == pytest.approx(0.0) and s.late == 0
    d = f.as_dict()
    assert d["schedule"]["packets"] == 5 and d["sizes"]["kept"] == 5 and d["timing"] == "as-captured"
    json.dumps(d)
    text = "\n".join(f.lines())
    assert "5 of 5 kept their size; 0 split" in text and "p99 0.800 ms" in text


def test_a_segment_wider_than_the_path_is_reported_split():
    plan = _plan([(2000, 0), (500, 0)])
    core, rec, _ = _run(plan, timing="fast")
    f = fidelity(core, rec)
    # the 2000 octets: cut to the MSS (1460) by the plan, then to 1460 - 28 (room for the DSS)
    assert sorted(n for _, _, n, _ in rec.rows) == [28, 500, 540, 1432]
    assert (f.live.count, f.live.octets, f.live.max) == (4, 2500, 1432)
    assert (f.kept, f.split, f.merged, f.unsent) == (1, 1, 0, 0) and f.schedule is None


def test_the_rest_of_a_split_segment_goes_with_it():
    """Split for a narrower path, a segment's pieces go one after the other, at its time (the rest
    used to wait for every later planned segment: 10 ms late here)."""
    plan = _plan([(2000, 10 * MS), (500, 30 * MS)])
    core, rec, _ = _run(plan)
    # the first piece carries MP_CAPABLE: the others wait for the server's DSS (11 ms)
    got = [(dsn, n, round(t, 6)) for _, dsn, n, t in rec.rows]
    assert got == [(1, 1432, 0.01), (1433, 28, 0.011), (1461, 540, 0.011), (2001, 500, 0.03)]
    f = fidelity(core, rec)
    assert f.schedule is not None and f.schedule.max == pytest.approx(0.001) and f.split == 1


def _due(plan: ReplayPlan, rec: Recorder) -> list[int]:
    """Each row's planned time (ns): its planned segment's."""
    starts = [(s.dsn, s.dsn + len(s.data), s.time_ns) for s in plan.segments]
    return [next(t for a, b, t in starts if a <= dsn < b) for _, dsn, _, _ in rec.rows]


def test_faster_timing_scales_the_plan_and_fast_measures_no_schedule():
    core, rec, _ = _run(_plan(), timing=2.0)
    f = fidelity(core, rec)
    assert f.timing == "x2" and f.schedule is not None and f.schedule.packets == 5
    # at x2, 10.2 ms and 10.4 ms are due at 5.1 and 5.2 ms; all three first ones wait: the first
    # goes at 5 ms, the DSS comes back at 6 ms
    assert f.schedule.max == pytest.approx(0.0009)
    core, rec, _ = _run(_plan(), timing="fast")
    f = fidelity(core, rec)
    assert f.schedule is None and f.kept == 5 and "not measured" in "\n".join(f.lines())


def test_recording_changes_no_packet():
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    for timing in ("fast", "as-captured"):
        _, _, plain = _run(plan, timing, recorded=False, seed=9)
        _, rec, recorded = _run(plan, timing, recorded=True, seed=9)
        assert plain.out == recorded.out
        assert rec is not None and rec.rows


def test_two_subflows_as_captured():
    """Without loss the data goes on the captured subflows with the captured sizes."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core, rec, _ = _run(plan, "as-captured")
    f = fidelity(core, rec)
    assert f.kept == f.planned.count == len(plan.segments) and f.live == f.planned
    per = {}
    for seg in plan.segments:
        per[seg.subflow] = per.get(seg.subflow, 0) + len(seg.data)
    assert [(s.subflow, s.planned, s.sent, s.again) for s in f.subflows] == [
        (i, n, n, 0) for i, n in sorted(per.items())
    ]
    assert len(per) == 2 and f.moved == ()
    assert f.schedule is not None and f.schedule.packets == len(plan.segments)


def test_a_reset_subflows_data_is_reported_moved_with_why():
    """The server resets the second subflow with data in flight: that data goes again on the first
    (reset, sent again), and what was planned for the second after it goes on the first instead."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(5), timeout=5.0)
    rec = record(core)
    server = LossyServer(core.keys.client, loss=0.0, seed=1)
    sim = Sim(core, server)
    second = core.subflows[1]
    sim.run(until_events=lambda: sum(u.payload is not None for u in second.unacked) >= 3, limit=5.0)
    in_flight = sum(len(u.payload) for u in second.unacked if u.payload is not None)
    sent_before = second.data_sent
    server.blackhole = {second.local}
    (src, sport), (dst, dport) = second.remote, second.local
    sim._send(
        core.receive(tcp_packet(src, dst, sport, dport, second.rcv_nxt or 0, second.snd_nxt, 0x14, 0), sim.now), True
    )
    sim.run(start=False)
    assert core.report(core.conn.ended_at or 30.0).ok
    f = fidelity(core, rec)
    planned_second = sum(len(s.data) for s in plan.segments if s.subflow == 1)
    again = [m for m in f.moved if m.again]
    instead = [m for m in f.moved if not m.again]
    assert [(m.planned, m.live, m.why, m.octets) for m in again] == [(1, 0, Why.RESET, in_flight)]
    assert [(m.planned, m.live, m.why, m.octets) for m in instead] == [(1, 0, Why.RESET, planned_second - sent_before)]
    shares = {s.subflow: s for s in f.subflows}
    assert shares[1].sent == sent_before and shares[0].again == in_flight
    assert shares[0].sent + shares[1].sent == plan.data_len == f.live.octets
    assert any(isinstance(e, ev.SubflowReset) for e in core.events)


def test_recorder_marks_give_the_wire_time():
    rec = Recorder()
    rec.rows += [(0, 1, 10, 0.5), (0, 11, 10, 0.5)]
    rec.wired(0.6)
    rec.wired(0.7)  # nothing new: no mark
    rec.rows.append((0, 21, 10, 0.8))
    assert rec.sent_times() == [0.6, 0.6, 0.8] and rec.marks == [(2, 0.6)]


def test_cli_refuses_fidelity_where_it_does_not_apply(tmp_path):
    cap = str(DATA / "v4-two-subflows.pcap")
    for extra in (["--side", "server", "--listen", "198.51.100.2"], ["--mode", "raw", "--iface", "lo"]):
        r = subprocess.run(
            [sys.executable, "-m", "mptcpspec", "replay", "-r", cap, "--report-fidelity", *extra],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert r.returncode == 2 and "--report-fidelity is for" in r.stderr, r.stderr


@pytest.mark.parametrize("name", ["v4-two-subflows.pcap", "v6-two-subflows.pcap", "v4-add-addr.pcap"])
def test_the_plan_knows_when_each_syn_was_answered(name):
    """Each planned subflow's SYN/ACK time (from the connection's first SYN) is tshark's."""
    need_tshark()
    plan = make_plan(DATA / name)
    r = subprocess.run(
        ["tshark", "-r", str(DATA / name), "-Y", "tcp.flags.syn == 1", "-T", "fields"]
        + ["-e", "frame.time_relative", "-e", "tcp.flags.ack", "-e", "tcp.srcport", "-e", "tcp.dstport"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    syn0 = float(rows[0][0])
    answers = {(int(d), int(s)): float(t) - syn0 for t, ack, s, d in rows if ack in ("1", "True")}
    assert len(answers) >= len(plan.subflows)
    for ps in plan.subflows:
        assert ps.answer_ns is not None
        assert ps.answer_ns / 1e9 == pytest.approx(answers[(ps.client[1], ps.server[1])], abs=1e-6), ps.index


def test_a_late_handshake_moves_the_schedule_not_the_error():
    """The live SYN/ACK comes 4 ms after the SYN, the captured one far sooner: the captured times
    count from that much later (data cannot go before the handshake); the report says by how much,
    and measures the error from there."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    answer = plan.subflows[0].answer_ns
    assert answer is not None and 0 < answer < plan.segments[0].time_ns
    core = Replay(plan, target=SERVER, rng=random.Random(3), timing="as-captured", timeout=5.0)
    rec = record(core)
    sim = Logged(core, LossyServer(core.keys.client, loss=0.0, seed=1), delay=0.002)
    sim.run()
    assert core.report(core.conn.ended_at or 30.0).ok
    shift = 0.004 - answer / 1e9
    assert core.conn.sched0 - core.conn.t0 == pytest.approx(shift)
    # the bulk of the data, captured 52 ms after the first SYN, goes 52 ms + shift after ours
    later = [(t, due) for (_, _, _, t), due in zip(rec.rows, _due(plan, rec)) if due > 40 * MS]
    assert later and later[0][0] - core.conn.t0 == pytest.approx(later[0][1] / 1e9 + shift)
    f = fidelity(core, rec)
    assert f.schedule is not None and f.schedule.shift == pytest.approx(shift) and f.schedule.min >= 0
    assert f.as_dict()["schedule"]["start_shift"] == pytest.approx(shift)
    assert f"the live SYN/ACK came {shift * 1e3:.3f} ms later" in "\n".join(f.lines())
    # fast timing: nothing is scheduled, nothing moves
    core = Replay(plan, target=SERVER, rng=random.Random(3), timeout=5.0)
    Logged(core, LossyServer(core.keys.client, loss=0.0, seed=1), delay=0.002).run()
    assert core.conn.sched0 == core.conn.t0
