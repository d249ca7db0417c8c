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
from mptcpspec.replay.fidelity import ANY, Held, Recorder, Why, fidelity, record
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
    # both waited for the server's first DSS, and went the moment it came: none of it the sender's
    assert s.held == ((Held.FIRST_DSS, 2),) and s.own_max == pytest.approx(0.0) and s.own_late == 0
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
    first, second, other = b"first", b"second", b"an ACK"
    rec.built(first)
    rec.rows.append((0, 21, 10, 0.8))
    rec.built(second)
    rec.handed(first, 0.6)
    rec.handed(other, 0.7)  # no rows: no mark
    assert rec.sent_times() == [0.6, 0.6, 0.8] and rec.marks == [(2, 0.6)]
    rec.handed(second, 0.9)
    assert rec.sent_times() == [0.6, 0.6, 0.9] and rec.pending == {}


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


class NarrowServer(LossyServer):
    """A :class:`LossyServer` whose receive window is ``window`` octets (no window scaling)."""

    def __init__(self, client_key: int, window: int) -> None:
        super().__init__(client_key, loss=0.0, seed=1)
        self.window = window

    def _reply(self, f, key, flags: int, options=(), seq: int | None = None) -> bytes:
        (src, sport), (dst, dport) = key
        return tcp_packet(dst, src, dport, sport, f.snd if seq is None else seq, f.rcv, flags, self.window, options)


def test_data_the_servers_window_held_back_is_the_live_connections_error_not_the_senders():
    """Forty 1000-octet segments due 0.1 ms apart through a 4000-octet window at a 1 ms round trip:
    most go late, each the moment an ACK opens the window (the four due before the server's first
    DSS comes back wait for it).  The report counts them held back by the server's window and the
    sender's own error is nil (simulated time: it sends at once)."""
    plan = _plan([(1000, 20 * MS + k * 100_000) for k in range(40)])
    core = Replay(plan, target=SERVER, rng=random.Random(3), timing="as-captured", timeout=5.0)
    rec = record(core)
    Logged(core, NarrowServer(core.keys.client, 4000)).run()
    assert core.report(core.conn.ended_at or 30.0).ok
    s = fidelity(core, rec).schedule
    assert s is not None and s.packets == 40
    late = sum(t - due / 1e9 > 1e-9 for (_, _, _, t), due in zip(rec.rows, _due(plan, rec)))
    assert late >= 20 and s.max > 0.003  # the window lets 4 segments go per round trip
    assert s.held == ((Held.CONNECTION_WINDOW, late - 4), (Held.FIRST_DSS, 4))
    assert s.own_max == pytest.approx(0.0) and s.own_p99 == pytest.approx(0.0) and s.own_late == 0
    # the sender's holds: the first DSS from the segment due at 20.1 ms until it came (21 ms), then
    # the window, from then on (each ACK let one segment go, the next stopped at the window again)
    assert rec.holding is None and [(h[2], h[3]) for h in rec.holds] == [
        (Held.FIRST_DSS, ANY),
        (Held.CONNECTION_WINDOW, ANY),
    ]
    assert rec.holds[0][:2] == pytest.approx((0.0201, 0.021)) and rec.holds[1][0] == pytest.approx(0.021)
    text = "\n".join(fidelity(core, rec).lines())
    assert (
        f"{late} held back past their time by the live connection: {late - 4} by the server's window at data "
        "level, 4 waiting for the server's first DSS" in text
    )
    assert "the sender's own error (from when each hold ended): median 0.000 ms, p99 0.000 ms" in text
    d = fidelity(core, rec).as_dict()["schedule"]
    assert d["held"] == {"connection_window": late - 4, "first_dss": 4} and d["own"]["max"] == pytest.approx(0.0)


def test_a_segment_late_with_nothing_holding_it_is_the_senders_own_error():
    """The same run, one segment's hand-off to the kernel moved 2 ms later (a machine that took
    the core away): held by nothing then, its lateness is the sender's own; a hold that ended
    before the segment was due does not excuse it."""
    plan = _plan([(1000, 20 * MS + k * 100_000) for k in range(40)] + [(1000, 80 * MS)])
    core = Replay(plan, target=SERVER, rng=random.Random(3), timing="as-captured", timeout=5.0)
    rec = record(core)
    Logged(core, NarrowServer(core.keys.client, 4000)).run()
    before = fidelity(core, rec).schedule
    assert before is not None and before.own_max == pytest.approx(0.0)
    last = len(rec.rows) - 1
    assert rec.rows[last][1] == 40_001 and rec.rows[last][3] == pytest.approx(0.08)
    assert rec.marks == []  # simulated: each row went at the engine's time; now a mark after each
    rec.marks += [(i + 1, row[3]) for i, row in enumerate(rec.rows[:last])] + [(last + 1, 0.082)]
    after = fidelity(core, rec).schedule
    assert after is not None and after.own_max == pytest.approx(0.002) and after.own_late == 1
    assert after.held == before.held and after.max == pytest.approx(max(before.max, 0.002))


class ClockedTransport:
    """The run loop's transport over a :class:`LossyServer` with no delay, on a clock of its own:
    each packet handed to it takes 1 ms."""

    def __init__(self, server: LossyServer) -> None:
        self.server, self.now, self.queue = server, 0.0, []
        self.data_sent: list[float] = []  # the clock after each data segment

    def clock(self) -> float:
        return self.now

    def send(self, packet: bytes) -> None:
        self.now += 0.001
        replies = self.server(packet, self.now)
        self.queue += replies
        if len(packet) > 80 and packet[9] == 6:  # IPv4 TCP with a payload past the options
            self.data_sent.append(self.now)

    def recv(self, timeout: float) -> list[bytes]:
        if not self.queue:
            self.now += max(timeout, 1e-6)
        out, self.queue = self.queue, []
        return out


def test_the_run_loop_marks_each_packet_when_it_was_handed_over():
    """Three segments that go together (they waited for the server's first DSS) each get the time
    they were handed to the transport, not the batch's end."""
    from mptcpspec.replay.run import run_replay

    plan = _plan()
    core = Replay(plan, target=SERVER, rng=random.Random(3), timing="as-captured", timeout=5.0)
    rec = record(core)
    transport = ClockedTransport(LossyServer(core.keys.client, loss=0.0, seed=1))
    core.clock.now = 0.0
    report = run_replay(core, transport, clock=transport.clock)
    assert report.ok and len(rec.rows) == 5
    times = rec.sent_times()
    assert times == sorted(times) and len(set(times)) == 5
    assert times == pytest.approx(transport.data_sent)
