"""Many connections at once (replay.fleet), without a network: simulated MPTCP servers, one per
connection, in simulated time."""

from __future__ import annotations

import dataclasses
import heapq
import ipaddress

import pytest

from mptcpspec.replay.fleet import Fleet, Member, PortPool, members, unique_address
from mptcpspec.replay.plan import make_plan
from tests.conftest import DATA
from tests.test_replay_recovery import SERVER, LossyServer

PLAN = make_plan(DATA / "v4-two-subflows.pcap")


def _stream(plan) -> bytes:
    out = bytearray(plan.data_len)
    for seg in plan.segments:
        out[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    return bytes(out)


class Servers:
    """One :class:`LossyServer` per live connection, found by the client's address and port."""

    def __init__(self, fleet: Fleet, loss: float, seed: int) -> None:
        self.fleet, self.loss, self.seed = fleet, loss, seed
        self.by_number: dict[int, LossyServer] = {}
        self.by_client: dict[tuple, LossyServer] = {}
        self.keys: dict[int, int] = {}
        self.ends: dict[int, list] = {}

    def __call__(self, pkt: bytes, now: float) -> list[bytes]:
        v6 = pkt[0] >> 4 == 6
        addr, tcp = (pkt[8:24], 40) if v6 else (pkt[12:16], 20)
        src = (ipaddress.ip_address(addr), int.from_bytes(pkt[tcp : tcp + 2], "big"))
        server = self.by_client.get(src)
        if server is None:
            live = next(x for x in self.fleet.live.values() if any(sf.local == src for sf in x.engine.subflows))
            server = self.by_number.get(live.number)
            if server is None:
                server = LossyServer(live.engine.keys.client, self.loss, self.seed + live.number)
                self.by_number[live.number] = server
                self.keys[live.number] = live.engine.keys.client
                self.ends[live.number] = [sf.local for sf in live.engine.subflows]
            self.by_client[src] = server
        if server.lose(0):
            return []
        return [p for p in server(pkt, now) if not server.lose(1)]

    def tick(self) -> list[bytes]:
        return [p for s in self.by_number.values() for p in s.tick()]


def run(
    fleet: Fleet,
    servers: Servers,
    limit: float = 60.0,
    delay: float = 0.0005,
    stop_at: float | None = None,
    batches: list[int] | None = None,
):
    """Run the fleet against ``servers`` in simulated time; the most connections live at once.
    With ``batches``, the packets for the fleet due at the same time go to it in one
    :meth:`Fleet.receive_all` (as ``run_fleet`` gives it each ``recv()``), their sizes appended."""
    queue: list = []
    seq = 0
    now = 0.0
    tick_at = 0.05
    most = 0

    def send(packets, to_server):
        nonlocal seq
        for p in packets:
            seq += 1
            heapq.heappush(queue, (now + delay, seq, to_server, p))

    send(fleet.start(now), True)
    while not fleet.done and now < limit:
        if stop_at is not None and now >= stop_at:
            break
        most = max(most, fleet.active)
        times = [t for t in (fleet.deadline(), queue[0][0] if queue else None, tick_at) if t is not None]
        now = max(now, min(times))
        batch = []
        while queue and queue[0][0] <= now:
            _, _, to_server, p = heapq.heappop(queue)
            if to_server:
                send(servers(p, now), False)
            elif batches is None:
                send(fleet.receive(p, now), True)
            else:
                batch.append(p)
        if batch:
            batches.append(len(batch))
            send(fleet.receive_all(batch, now), True)
        if now >= tick_at:
            send(servers.tick(), False)
            tick_at = now + 0.05
        send(fleet.poll(now), True)
    return now, most


def test_port_pool_round_robin_skips_ports_in_use():
    pool = PortPool(100, 103, avoid=[101])
    assert [pool.take() for _ in range(3)] == [100, 102, 103]
    with pytest.raises(ValueError, match="every client port of 100-103 is in use"):
        pool.take()
    pool.give(102)
    pool.give(100)
    assert pool.take() == 100  # the round goes on from the start of the range
    assert pool.take() == 102


def test_unique_addresses_stay_in_the_prefix():
    net = ipaddress.ip_network("192.0.2.0/30")
    assert [str(unique_address(net, n)) for n in range(3)] == ["192.0.2.1", "192.0.2.2", "192.0.2.1"]
    v6 = ipaddress.ip_network("2001:db8:5::/126")
    assert [str(unique_address(v6, n)) for n in range(4)] == [
        "2001:db8:5::1",
        "2001:db8:5::2",
        "2001:db8:5::3",
        "2001:db8:5::1",
    ]


@pytest.mark.parametrize("batched", [False, True], ids=["each", "batched"])
@pytest.mark.parametrize("loss", [0.0, 0.02])
def test_loop_with_a_concurrency_limit_delivers_every_connection(loss, batched):
    """12 connections (loop 12), at most 4 live: every one delivered whole to its own server, with
    its own ports, and a fresh key after the first; the same when the packets come in batches that
    mix the connections (:meth:`Fleet.receive_all`)."""
    fleet = Fleet([Member(PLAN, 0)], target=SERVER, loop=12, concurrency=4, timeout=5.0)
    servers = Servers(fleet, loss, 7)
    batches: list[int] | None = [] if batched else None
    _, most = run(fleet, servers, batches=batches)
    if batches is not None:
        assert max(batches) > 1 and fleet.received == sum(batches)
    assert fleet.done
    report = fleet.report(99.0)
    t = report.totals
    assert report.ok, [r.reason for r in report.connections if r.outcome != "delivered"]
    assert (t.connections, t.started, t.delivered, t.failed, t.not_started) == (12, 12, 12, 0, 0)
    assert most == 4
    want = _stream(PLAN)
    assert len(servers.by_number) == 12
    assert all(bytes(s.stream) == want for s in servers.by_number.values())
    assert t.data_delivered == 12 * PLAN.data_len
    ends = [e for es in servers.ends.values() for e in es]
    assert len(set(ends)) == 24  # two subflows each, no 4-tuple twice
    keys = [servers.keys[n] for n in range(12)]
    assert keys[0] == PLAN.client_key and len(set(keys)) == 12
    assert [r.iteration for r in report.connections] == list(range(12))
    assert t.handshake is not None and 0 < t.handshake[0] <= t.handshake[1] <= t.handshake[2] <= t.handshake[3]
    assert t.packets_sent == sum(r.packets_sent for r in report.connections)
    assert all(r.subflows == 2 for r in report.connections)


def test_ipv6_connections_are_routed_by_their_addresses_and_ports():
    plan = make_plan(DATA / "v6-two-subflows.pcap")
    server = ipaddress.ip_address("2001:db8:1::2")
    fleet = Fleet([Member(plan, 0)], target=server, loop=4)
    sim = Servers(fleet, 0.0, 3)
    run(fleet, sim)
    report = fleet.report(99.0)
    assert report.ok and all(r.subflows == 2 for r in report.connections), report.connections
    assert all(bytes(s.stream) == _stream(plan) for s in sim.by_number.values()) and len(sim.by_number) == 4


def test_unique_ip_gives_each_iteration_its_own_addresses():
    net = ipaddress.ip_network("192.0.2.0/24")
    local = {ipaddress.ip_address("198.51.100.1"): ipaddress.ip_address("198.51.100.1")}
    servers = {"203.0.113.2": "203.0.113.2"}
    fleet = Fleet([Member(PLAN, 0)], target=SERVER, local=local, servers=servers, loop=3, unique_ip=net)
    sim = Servers(fleet, 0.0, 1)
    run(fleet, sim)
    assert fleet.report(99.0).ok
    addrs = [str(a) for es in sim.ends.values() for a, _ in es]
    assert addrs == [f"192.0.2.{n}" for n in range(1, 7)]
    assert [str(a) for a in fleet.local_addresses()] == [f"192.0.2.{n}" for n in range(1, 7)]


def test_connections_start_at_their_captured_offsets_and_at_most_cps():
    late = dataclasses.replace(PLAN, stream=1)
    fleet = Fleet([Member(PLAN, 0), Member(late, 300_000_000)], target=SERVER, timing="as-captured")
    sim = Servers(fleet, 0.0, 1)
    run(fleet, sim)
    report = fleet.report(99.0)
    assert report.ok
    assert [(r.stream, r.start) for r in report.connections] == [(0, 0.0), (1, pytest.approx(0.3))]

    fleet = Fleet([Member(PLAN, 0)], target=SERVER, loop=5, cps=10.0)
    sim = Servers(fleet, 0.0, 1)
    end, _ = run(fleet, sim)
    report = fleet.report(end)
    assert report.ok
    assert [r.start for r in report.connections] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_an_interrupted_fleet_reports_the_live_and_the_unstarted():
    fleet = Fleet([Member(PLAN, 0)], target=SERVER, loop=10, concurrency=2)
    sim = Servers(fleet, 0.0, 1)
    now, _ = run(fleet, sim, stop_at=0.004)
    report = fleet.report(now, interrupted=True)
    t = report.totals
    assert report.interrupted and not report.ok
    assert t.started == len(report.connections) and t.not_started == 10 - t.started > 0
    live = [r for r in report.connections if r.reason.startswith("interrupted")]
    assert live and all(r.outcome == "failed" for r in live)


def test_members_of_a_capture():
    (m,) = members(str(DATA / "v4-two-subflows.pcap"), None)
    assert m.offset_ns == 0 and m.plan.stream == PLAN.stream and m.plan.data_len == PLAN.data_len
    two = members(str(DATA / "v4-tfo.pcap"), None)  # two connections, the second 79 ms after the first
    assert [m.plan.stream for m in two] == [0, 1] and two[0].offset_ns == 0 and 0 < two[1].offset_ns < 10**9
    with pytest.raises(Exception, match="no MPTCP stream 5"):
        members(str(DATA / "v4-two-subflows.pcap"), [5])


def test_progress_is_reported_on_its_interval():
    seen = []
    fleet = Fleet([Member(PLAN, 0)], target=SERVER, loop=4, concurrency=2, progress=seen.append, progress_every=0.01)
    sim = Servers(fleet, 0.0, 1)
    run(fleet, sim)
    assert seen and all(p.connections == 4 and p.live <= 2 for p in seen)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert "4/4 done, 0 live, 0 failed" in fleet.where(1.0).line()


def test_paced_sends_at_most_the_rate(monkeypatch):
    """--mbps: 1250-octet packets at 1 Mbit/s go 10 ms apart."""
    from mptcpspec.replay import fleet as fleet_module

    clock = [0.0]
    slept = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    class Inner:
        sent: list[bytes] = []

        def send(self, p: bytes) -> None:
            self.sent.append(p)

        def recv(self, timeout: float) -> list[bytes]:
            return []

    monkeypatch.setattr(fleet_module.time, "sleep", sleep)
    inner = Inner()
    paced = fleet_module.Paced(inner, 1.0, clock=lambda: clock[0])
    for _ in range(5):
        paced.send(bytes(1250))
    assert len(inner.sent) == 5
    assert clock[0] == pytest.approx(0.04)
