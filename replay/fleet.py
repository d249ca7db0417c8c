"""Many connections at once: every chosen connection of a capture, looped, each a
:class:`~replay.core.Replay`.

:class:`Fleet` is sans-IO like :class:`~replay.core.Replay` (``start``, ``receive``, ``poll``,
``deadline``, ``done``, ``report``), with one transport for all the addresses.  Each
:class:`Member` (a connection of the capture, with its captured start offset from the first) is
started once per iteration (``loop``), at its offset scaled by the timing (at once with ``fast``),
with at most ``concurrency`` connections live (one in TIME-WAIT no longer counts) and at most
``cps`` started per second.  Every started connection gets fresh client ports (a round-robin
:class:`PortPool`: no 4-tuple is used again before the whole range was), a fresh client key after
the first iteration (or always, with ``new_key``) and, with ``unique_ip``, client addresses of its
own within that prefix.  Packets are routed to their connection by 4-tuple (a dict), timers merged
in a heap.  :func:`run_fleet` drives it over a transport (as :func:`~replay.run.run_replay` does
one engine; Ctrl-C ends in a report), :func:`fleet_live` over raw sockets.  :meth:`Fleet.report`
gives a :class:`FleetReport`: one :class:`ConnectionResult` per connection and the
:class:`FleetTotals`.
"""

from __future__ import annotations

import dataclasses
import heapq
import ipaddress
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mptcpspec.capture.packets import TcpFlags
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.replay.core import Replay
from mptcpspec.replay.events import FellBack, ReplayEvent, SubflowEstablished
from mptcpspec.replay.plan import PlanError, PlannedSubflow, ReplayPlan, make_plan, make_tcp_plan
from mptcpspec.replay.report import Report
from mptcpspec.replay.run import Transport, settled_heap
from mptcpspec.replay.setup import Address, Timing
from mptcpspec.replay.subflow import SubflowState
from mptcpspec.replay.transport import RawTransport, check_privileges
from mptcpspec.replay.wire import Burst, on_wire

__all__ = [
    "ConnectionResult",
    "Fleet",
    "FleetReport",
    "FleetTotals",
    "Member",
    "Paced",
    "PortPool",
    "Progress",
    "catalog",
    "fleet_live",
    "local_ports",
    "members",
    "run_fleet",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SYN, _ACK = int(TcpFlags.SYN), int(TcpFlags.ACK)
PORTS = (20000, 60999)  #: the client ports the fleet allocates from (inclusive)
#: connections started per call at most: their SYNs go out, and the next ones start with a fresh
#: ``now`` (their handshake times measured from when they are sent)
START_BATCH = 16


@dataclass(frozen=True, slots=True)
class Member:
    """A connection of the capture to replay: its plan and its first SYN's capture time after the
    first chosen connection's."""

    plan: ReplayPlan
    offset_ns: int


def catalog(path: str) -> tuple[dict[int, int], dict[int, int]]:
    """The capture's connections whose SYN it holds, one pass: MPTCP stream -> its first SYN's time
    (ns), and TCP stream (not an MPTCP subflow) -> its SYN's time."""
    first: dict[int, tuple[Any, int]] = {}  # id of an MPTCP connection -> it, its first SYN's time
    tcp: dict[int, int] = {}
    subflow_streams: set[int] = set()
    for info in Dissection(path, verify=False):
        p, c = info.packet, info.connection
        if p is None or info.tcp_stream is None:
            continue
        if c is not None:
            subflow_streams.add(info.tcp_stream)
        if int(p.flags) & (_SYN | _ACK) != _SYN:
            continue
        if c is not None:
            first.setdefault(id(c), (c, info.timestamp_ns))  # numbered after its SYN: see below
        else:
            tcp.setdefault(info.tcp_stream, info.timestamp_ns)
    mptcp = {c.stream: t for c, t in first.values() if c.stream is not None}
    return mptcp, {s: t for s, t in tcp.items() if s not in subflow_streams}


def members(
    path: str,
    streams: Sequence[int] | None,
    tcp_streams: Sequence[int] | None = (),
    skipped: list[str] | None = None,
) -> list[Member]:
    """The connections to replay, in capture order: MPTCP ``streams`` (None: all of them) and TCP
    ``tcp_streams`` (None: all of them).  :class:`~replay.plan.PlanError` for a stream the capture
    lacks or cannot replay, or when nothing is left to replay; with ``skipped``, a connection of
    "all" that cannot be replayed is left out instead and said there."""
    mptcp, tcp = catalog(path)
    chosen: list[tuple[int, bool, int, bool]] = []
    for want, have, is_tcp in ((streams, mptcp, False), (tcp_streams, tcp, True)):
        if want is None:
            chosen += [(t, is_tcp, s, True) for s, t in have.items()]
            continue
        for s in want:
            if s not in have:
                kind = "TCP" if is_tcp else "MPTCP"
                listed = ", ".join(map(str, sorted(have)[:20])) or "none"
                raise PlanError(f"{path}: no {kind} stream {s} with its SYN in the capture (have: {listed})")
            chosen.append((have[s], is_tcp, s, False))
    chosen.sort()
    out = []
    for t, is_tcp, s, of_all in chosen:
        try:
            plan = make_tcp_plan(path, s) if is_tcp else make_plan(path, s)
        except PlanError as e:
            if skipped is None or not of_all:
                raise
            skipped.append(str(e))
            continue
        out.append(Member(plan, t))
    if not out:
        raise PlanError(f"{path}: no connection to replay (no SYN of a chosen stream in the capture)")
    t0 = out[0].offset_ns
    return [dataclasses.replace(m, offset_ns=m.offset_ns - t0) for m in out]


def local_ports() -> set[int]:
    """The local ports of this network namespace's TCP sockets (``/proc/net/tcp`` and ``tcp6``):
    a replayed connection from one of them would meet the kernel's own socket."""
    out: set[int] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f, None)
                out.update(int(line.split()[1].rsplit(":", 1)[1], 16) for line in f if line.strip())
        except OSError:
            continue
    return out


class PortPool:
    """Client ports from ``first`` to ``last``, handed out round-robin from ``start`` (default
    ``first``): a port comes again only after all the others did, and never while in use
    (``avoid``: ports never to use, e.g. those of the host's own sockets)."""

    def __init__(
        self, first: int = PORTS[0], last: int = PORTS[1], avoid: Iterable[int] = (), start: int | None = None
    ) -> None:
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"port range {first}-{last}: expected 1 <= first <= last <= 65535")
        self.first, self.last = first, last
        self.next = first if start is None else first + (start - first) % (last - first + 1)
        self.in_use: set[int] = set(avoid)

    def take(self) -> int:
        """A free port (ValueError when every port of the range is in use)."""
        size = self.last - self.first + 1
        for _ in range(size):
            p = self.next
            self.next = self.first if p == self.last else p + 1
            if p not in self.in_use:
                self.in_use.add(p)
                return p
        raise ValueError(f"every client port of {self.first}-{self.last} is in use")

    def give(self, port: int) -> None:
        self.in_use.discard(port)


def unique_address(prefix: Network, n: int) -> Address:
    """The ``n``-th host address of ``prefix`` (the network address, and IPv4's broadcast, skipped),
    wrapping around."""
    hosts = prefix.num_addresses - (2 if prefix.version == 4 and prefix.num_addresses > 2 else 1)
    if hosts < 1:
        raise ValueError(f"{prefix}: no host address")
    return prefix.network_address + 1 + n % hosts


@dataclass(frozen=True, slots=True)
class ConnectionResult:
    """One replayed connection: ``outcome`` is "delivered" (closed cleanly, every octet
    acknowledged), "fell back" (the same, as plain TCP after the live server's fallback), "failed"
    (``reason`` says why), or "not started" (the run was interrupted first)."""

    number: int  #: in start order, from 0
    iteration: int
    stream: int
    tcp: bool  #: a TCP connection of the capture
    outcome: str
    reason: str
    local: str  #: the first subflow's local endpoint
    remote: str
    start: float  #: seconds after the fleet's start
    data_delivered: int
    data_planned: int
    server_data: int
    handshake: float | None  #: seconds from the SYN to the first subflow established
    elapsed: float
    packets_sent: int
    packets_received: int
    subflows: int  #: subflows that were established
    report: Report | None = None


@dataclass(frozen=True, slots=True)
class FleetTotals:
    connections: int  #: planned: members x iterations
    started: int
    delivered: int
    fell_back: int
    failed: int
    not_started: int
    elapsed: float  #: seconds from the start to the last connection's end (TIME-WAIT not counted), or the interruption
    connections_per_second: float  #: connections finished per second
    packets_sent: int
    packets_received: int
    octets_sent: int  #: IP octets
    octets_received: int
    data_delivered: int  #: client octets acknowledged at data level, all connections
    goodput_mbps: float  #: ``data_delivered`` in Mbit/s over ``elapsed``
    #: SYN to established, seconds: p50, p90, p99, max (None: no handshake completed)
    handshake: tuple[float, float, float, float] | None

    @property
    def packets_per_second(self) -> tuple[float, float]:
        """Packets per second sent and received."""
        t = self.elapsed or math.inf
        return self.packets_sent / t, self.packets_received / t


@dataclass(frozen=True, slots=True)
class FleetReport:
    connections: tuple[ConnectionResult, ...]
    totals: FleetTotals
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Every planned connection was started and delivered (as MPTCP or after a fallback)."""
        t = self.totals
        return not self.interrupted and t.failed == 0 and t.not_started == 0


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run is: connections done, live, failed; what went out."""

    elapsed: float
    done: int  #: connections that ended (in TIME-WAIT, or over)
    live: int  #: connections open
    failed: int  #: of the connections over, those that failed
    connections: int
    octets_sent: int

    def line(self) -> str:
        mbps = self.octets_sent * 8 / 1e6 / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"{self.elapsed:7.1f} s  {self.done}/{self.connections} done, {self.live} live, "
            f"{self.failed} failed, {mbps:.1f} Mbit/s out"
        )


def percentiles(values: Sequence[float]) -> tuple[float, float, float, float] | None:
    """p50, p90, p99 (nearest rank) and the maximum of ``values`` (None: empty)."""
    if not values:
        return None
    v = sorted(values)

    def rank(q: float) -> float:
        return v[max(0, math.ceil(q * len(v)) - 1)]

    return rank(0.5), rank(0.9), rank(0.99), v[-1]


def _flow_key(local: tuple[Address, int], remote: tuple[Address, int]) -> bytes:
    """How an incoming packet of a subflow is looked up: destination and source address, then the
    TCP ports as they are on the wire (see :meth:`Fleet.receive`)."""
    return local[0].packed + remote[0].packed + remote[1].to_bytes(2, "big") + local[1].to_bytes(2, "big")


def incoming_key(data: bytes) -> bytes:
    """How an IP packet from a server is looked up: destination and source address, then its TCP
    ports as they are on the wire (see :func:`_flow_key`); empty for what is not IPv4 or IPv6."""
    if len(data) < 40:
        return b""
    v = data[0] >> 4
    if v == 4:
        tcp = (data[0] & 15) * 4
        return data[16:20] + data[12:16] + data[tcp : tcp + 4]
    if v == 6:
        return data[24:40] + data[8:24] + data[40:44]
    return b""


def relocated(
    plan: ReplayPlan, address: Callable[[Address], Address], port: Callable[[PlannedSubflow], int]
) -> ReplayPlan:
    """``plan`` with each subflow's client address and port replaced."""
    subflows = tuple(dataclasses.replace(ps, client=(address(ps.client[0]), port(ps))) for ps in plan.subflows)
    return dataclasses.replace(plan, subflows=subflows)


class ClientAddresses:
    """The client addresses of ``members``' plans, after ``local`` (capture address to live one),
    and with ``unique_ip`` those of each iteration, shifted within that prefix.  :class:`ValueError`
    when the prefix is not of the addresses' IP version."""

    def __init__(
        self,
        members: Sequence[Member],
        local: Mapping[Address | str, Address | str] | None,
        unique_ip: Network | None,
    ) -> None:
        self.local = {ipaddress.ip_address(k): ipaddress.ip_address(v) for k, v in (local or {}).items()}
        self.unique_ip = unique_ip
        #: the client addresses of the capture, after ``local``: their order gives each its unique one
        self.captured = sorted(
            {self.local.get(ps.client[0], ps.client[0]) for m in members for ps in m.plan.subflows}, key=str
        )
        if unique_ip is not None and any(a.version != unique_ip.version for a in self.captured):
            raise ValueError(
                f"--unique-ip {unique_ip}: the capture's client addresses are not all IPv{unique_ip.version}"
            )

    def of(self, a: Address, iteration: int) -> Address:
        """The address ``a`` of the capture sends from in ``iteration``."""
        a = self.local.get(a, a)
        if self.unique_ip is None:
            return a
        return unique_address(self.unique_ip, iteration * len(self.captured) + self.captured.index(a))

    def every(self, loop: int) -> list[Address]:
        """Every address ``loop`` iterations may send from."""
        if self.unique_ip is None:
            return list(self.captured)
        rounds = min(loop, self.unique_ip.num_addresses // len(self.captured) + 1)  # then the same again
        return sorted({self.of(a, i) for i in range(rounds) for a in self.captured})


class _Live:
    """A started connection: its engine and what the fleet keeps for it."""

    __slots__ = ("closed", "due", "engine", "iteration", "keys", "member", "number", "ports", "start")

    def __init__(self, number: int, iteration: int, member: Member, engine: Replay, start: float) -> None:
        self.number, self.iteration, self.member, self.engine = number, iteration, member, engine
        self.start = start
        self.closed = False  #: the connection ended (it may linger in TIME-WAIT)
        self.ports = [sf.local[1] for sf in engine.subflows]
        self.keys = [_flow_key(sf.local, sf.remote) for sf in engine.subflows]
        self.due: float | None = None


class Fleet:
    """Replay ``members``, ``loop`` times, at most ``concurrency`` connections live (None: no
    limit) and at most ``cps`` started per second.  ``target``, ``target_port``, ``local`` and
    ``servers`` are those of :class:`~replay.core.Replay` (``local`` applied before ``unique_ip``);
    ``replay_options``: its other keyword arguments (``timing`` is taken from here too: the start
    offsets are scaled by it).  ``new_key``: a fresh client key for every connection (otherwise
    after the first iteration).  ``ports``: the client port range, used from ``port_start`` on
    (default: a random port of it, so that a run does not begin with the ports of the one before),
    never those of ``avoid_ports`` (e.g. :func:`local_ports`).  ``progress`` is called every
    ``progress_every`` seconds with a :class:`Progress`.  :class:`ValueError` for bad limits;
    :class:`~replay.setup.ReplayError` (from a connection's set-up) when the members cannot be
    replayed."""

    def __init__(
        self,
        members: Sequence[Member],
        *,
        target: Address | str,
        target_port: int | None = None,
        local: Mapping[Address | str, Address | str] | None = None,
        servers: Mapping[Address | str, Address | str] | None = None,
        loop: int = 1,
        concurrency: int | None = None,
        cps: float | None = None,
        timing: Timing = "fast",
        new_key: bool = False,
        unique_ip: Network | None = None,
        ports: tuple[int, int] = PORTS,
        port_start: int | None = None,
        avoid_ports: Iterable[int] = (),
        progress: Callable[[Progress], None] | None = None,
        progress_every: float = 0.5,
        **replay_options: object,
    ) -> None:
        if not members:
            raise ValueError("a fleet needs at least one connection")
        if loop < 1:
            raise ValueError(f"loop {loop}: at least 1 iteration")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency {concurrency}: at least 1")
        if cps is not None and not cps > 0:
            raise ValueError(f"cps {cps}: must be positive")
        self.members = list(members)
        self.loop, self.concurrency, self.cps = loop, concurrency, cps
        self.timing, self.new_key, self.unique_ip = timing, new_key, unique_ip
        self.target = ipaddress.ip_address(target)
        self.target_port = target_port
        self.servers: dict[Address | str, Address | str] = dict(servers or {})
        self.options = replay_options
        start = random.SystemRandom().randint(*ports) if port_start is None else port_start
        self.pool = PortPool(*ports, avoid=avoid_ports, start=start)
        self.progress, self.progress_every = progress, progress_every
        self.addresses = ClientAddresses(self.members, local, unique_ip)
        self.burst = 0  #: see Replay.allow_bursts: run_fleet sets the transport's
        self.events: list[ReplayEvent] = []  #: (none: each connection keeps its own; run_replay reads this)
        self.flows: dict[bytes, _Live] = {}
        self.live: dict[int, _Live] = {}
        self.active = 0  #: live connections not yet ended (those in TIME-WAIT are not counted)
        self.heap: list[tuple[float, int]] = []
        self.results: list[ConnectionResult] = []
        self.next_member = 0  #: index into the start order: iteration * len(members) + member
        self.started = 0
        self.t0: float | None = None
        self.iteration_start = 0.0
        self.last_start: float | None = None
        self.next_progress = 0.0
        self.batch_due: float | None = None  #: connections due and left for the next call (START_BATCH)
        self.sent = self.received = self.octets_out = self.octets_in = 0
        self.failed = 0
        #: when the last connection ended (its TIME-WAIT not counted), once all did
        self.ended_at: float | None = None
        self._check_first()

    # -- what it sends from and to

    def local_addresses(self) -> list[Address]:
        """Every address a connection of the fleet may send from."""
        return self.addresses.every(self.loop)

    def peer_addresses(self) -> list[Address]:
        """The live server addresses."""
        first = self._engine(self.members[0], 0, check=True)
        peers = set(first.peer_addresses())
        for m in self.members[1:]:
            peers.update(self._engine(m, 0, check=True).peer_addresses())
        return sorted(peers, key=str)

    def _check_first(self) -> None:
        for m in self.members:
            self._engine(m, 0, check=True)  # a ReplayError now rather than in the middle

    def _engine(self, member: Member, iteration: int, check: bool = False) -> Replay:
        """The engine of ``member`` in ``iteration``: its own ports (none taken when ``check``),
        addresses and key."""
        plan = relocated(
            member.plan,
            lambda a: self.addresses.of(a, iteration),
            (lambda ps: ps.client[1]) if check else (lambda ps: self.pool.take()),
        )
        engine = Replay(
            plan,
            target=self.target,
            target_port=self.target_port,
            servers=self.servers,
            new_key=self.new_key or iteration > 0,
            timing=self.timing,
            **self.options,  # type: ignore[arg-type]
        )
        engine.allow_bursts(self.burst)
        return engine

    # -- the outside

    @property
    def total(self) -> int:
        return len(self.members) * self.loop

    @property
    def done(self) -> bool:
        return self.next_member >= self.total and not self.live

    def start(self, now: float) -> list[bytes]:
        """The first connections' SYNs (those due now)."""
        self.t0 = self.iteration_start = now
        self.next_progress = now + self.progress_every
        return self._start_due(now)

    def _due_at(self, k: int) -> float:
        """When the ``k``-th connection of the start order is due (before the limits)."""
        member = self.members[k % len(self.members)]
        if self.timing == "fast":
            t = self.iteration_start
        else:
            scale = 1.0 if self.timing == "as-captured" else 1.0 / float(self.timing)
            t = self.iteration_start + member.offset_ns / 1e9 * scale
        if self.cps is not None and self.last_start is not None:
            t = max(t, self.last_start + 1.0 / self.cps)
        return t

    def _start_due(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        batch = START_BATCH
        while self.next_member < self.total and (self.concurrency is None or self.active < self.concurrency):
            if not batch:
                self.batch_due = now  # more are due: the caller comes back with a fresh ``now``
                break
            batch -= 1
            k = self.next_member
            if k % len(self.members) == 0 and k and self.last_start is not None and self.started == k:
                # a new iteration: its offsets count from when its first connection may start
                self.iteration_start = max(self.iteration_start, self.last_start)
            if self._due_at(k) > now:
                break
            try:
                engine = self._engine(self.members[k % len(self.members)], k // len(self.members))
            except ValueError:  # every port in use: wait for a connection to end
                break
            self.next_member += 1
            live = _Live(self.started, k // len(self.members), self.members[k % len(self.members)], engine, now)
            self.started += 1
            self.last_start = now
            self.live[live.number] = live
            self.active += 1
            for key in live.keys:
                self.flows[key] = live
            out += self._count(engine.start(now))
            self._after(live, now)
        return out

    def _count(self, packets: list[bytes]) -> list[bytes]:
        self.sent += len(packets)
        for p in packets:
            if type(p) is Burst:  # what the wire carries: the segments it is cut into
                n, octets = on_wire(p)
                self.sent += n - 1
                self.octets_out += octets
            else:
                self.octets_out += len(p)
        return packets

    def _after(self, live: _Live, now: float) -> None:
        """After ``live``'s engine ran: its end, or its next timer in the heap."""
        engine = live.engine
        if not live.closed and engine.conn.done:
            live.closed = True  # in TIME-WAIT at most: its place goes to the next connection
            self.active -= 1
            if not self.active and self.next_member >= self.total:
                self.ended_at = now
        if engine.done:
            self._finish(live, now)
            return
        due = engine.deadline()
        if due is not None and due != live.due:
            live.due = due
            heapq.heappush(self.heap, (due, live.number))

    def _finish(self, live: _Live, now: float) -> None:
        del self.live[live.number]
        for key in live.keys:
            self.flows.pop(key, None)
        for p in live.ports:
            self.pool.give(p)
        result = _result(live, live.engine.report(now), self.t0 or 0.0)
        self.failed += result.outcome == "failed"
        self.results.append(result)

    def _route(self, data: bytes) -> _Live | None:
        """The connection an IP packet from a server is for, counted."""
        live = self.flows.get(incoming_key(data))
        if live is not None:
            self.received += 1
            self.octets_in += len(data)
        return live

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """One IP packet from a server: to the connection of its 4-tuple."""
        live = self._route(data)
        if live is None:
            return []
        out = self._count(live.engine.receive(data, now))
        self._after(live, now)
        return out

    def receive_all(self, packets: list[bytes], now: float) -> list[bytes]:
        """Several IP packets (one ``recv()``): each connection's, in the order they came, to it at
        once (:meth:`~replay.core.Replay.receive_all`: its pure ACKs all read, then the data they
        let go), as :meth:`receive` with a paced timing."""
        if self.timing != "fast":
            return [p for data in packets for p in self.receive(data, now)]
        batches: dict[int, tuple[_Live, list[bytes]]] = {}
        for data in packets:
            live = self._route(data)
            if live is not None:
                batches.setdefault(live.number, (live, []))[1].append(data)
        out: list[bytes] = []
        for live, got in batches.values():
            out += self._count(live.engine.receive_all(got, now))
            self._after(live, now)
        return out

    def deadline(self) -> float | None:
        """When :meth:`poll` has something to do (None: the fleet is done)."""
        if self.done:
            return None
        heap = self.heap
        while heap:
            due, number = heap[0]
            live = self.live.get(number)
            if live is not None and live.due == due:
                break
            heapq.heappop(heap)
        times = [heap[0][0]] if heap else []
        if self.next_member < self.total and (self.concurrency is None or self.active < self.concurrency):
            times.append(self._due_at(self.next_member))
        if self.batch_due is not None:
            times.append(self.batch_due)
        if self.progress is not None:
            times.append(self.next_progress)
        return min(times) if times else None

    def poll(self, now: float) -> list[bytes]:
        """The connections' due timers, the connections due to start."""
        out: list[bytes] = []
        heap = self.heap
        while heap and heap[0][0] <= now:
            due, number = heapq.heappop(heap)
            live = self.live.get(number)
            if live is None or live.due != due:
                continue  # stale: the connection ended, or its timer moved
            live.due = None
            out += self._count(live.engine.poll(now))
            self._after(live, now)
        self.batch_due = None
        out += self._start_due(now)
        if self.progress is not None and now >= self.next_progress:
            self.next_progress = now + self.progress_every
            self.progress(self.where(now))
        return out

    def where(self, now: float) -> Progress:
        """Where the run is."""
        return Progress(
            now - (self.t0 or now), self.started - self.active, self.active, self.failed, self.total, self.octets_out
        )

    # -- the end

    def report(self, now: float, interrupted: bool = False) -> FleetReport:
        """Every connection's result and the totals, up to ``now``; the connections still open count
        as failed (interrupted: the run was stopped) and those not started as not started."""
        results = list(self.results)
        for live in sorted(self.live.values(), key=lambda x: x.number):
            # one that ended and lingers in TIME-WAIT is what it became; the others were cut short
            results.append(_result(live, live.engine.report(now), self.t0 or 0.0, interrupted=not live.closed))
        not_started = self.total - self.next_member
        end = self.ended_at if self.ended_at is not None else now
        elapsed = max(end - (self.t0 if self.t0 is not None else end), 0.0)
        totals = _totals(self, results, not_started, elapsed)
        results.sort(key=lambda r: r.number)
        return FleetReport(tuple(results), totals, interrupted)


def _result(live: _Live, report: Report, t0: float, interrupted: bool = False) -> ConnectionResult:
    """What became of a connection, from its report (``t0``: the fleet's start)."""
    plan = live.member.plan
    if interrupted:
        outcome, reason = "failed", f"interrupted: {report.reason}"
    elif report.ok and report.data_delivered == report.data_planned:
        outcome, reason = ("fell back" if report.fell_back or report.fallback else "delivered"), report.reason
    elif report.ok:
        outcome = "failed"
        reason = f"closed with {report.data_delivered} of {report.data_planned} octets acknowledged"
    else:
        outcome, reason = "failed", report.reason
    hs = next(
        (e.time for e in report.events if (type(e) is SubflowEstablished or type(e) is FellBack) and e.subflow == 0),
        None,
    )
    first = report.subflows[0]
    return ConnectionResult(
        live.number,
        live.iteration,
        plan.stream,
        plan.tcp,
        outcome,
        reason,
        first.local,
        first.remote,
        live.start - t0,
        report.data_delivered,
        report.data_planned,
        report.server_data,
        hs,
        report.elapsed,
        sum(s.sent for s in report.subflows),
        sum(s.received for s in report.subflows),
        sum(SubflowState.ESTABLISHED in s.states for s in report.subflows),
        report,
    )


def _totals(fleet: Fleet, results: list[ConnectionResult], not_started: int, elapsed: float) -> FleetTotals:
    """The totals of ``fleet``'s ``results`` over ``elapsed`` seconds."""
    delivered = sum(r.data_delivered for r in results)
    rate = elapsed or math.inf
    return FleetTotals(
        fleet.total,
        fleet.started,
        sum(r.outcome == "delivered" for r in results),
        sum(r.outcome == "fell back" for r in results),
        sum(r.outcome == "failed" for r in results),
        not_started,
        elapsed,
        len(fleet.results) / rate,
        fleet.sent,
        fleet.received,
        fleet.octets_out,
        fleet.octets_in,
        delivered,
        delivered * 8 / 1e6 / rate,
        percentiles([r.handshake for r in results if r.handshake is not None]),
    )


def run_fleet(fleet: Fleet, transport: Transport, clock: Callable[[], float] = time.monotonic) -> FleetReport:
    """Run ``fleet`` over ``transport`` until every connection ended; on Ctrl-C (KeyboardInterrupt)
    stop there: the report says so (the live connections interrupted, the others not started)."""
    fleet.burst = getattr(transport, "burst", 0)
    try:
        for pkt in fleet.start(clock()):
            transport.send(pkt)
        while not fleet.done:
            deadline = fleet.deadline()
            wait = 0.05 if deadline is None else min(max(deadline - clock(), 0.0), 0.05)
            packets = transport.recv(wait)
            now = clock()
            for pkt in fleet.receive_all(packets, now):
                transport.send(pkt)
            for pkt in fleet.poll(now):
                transport.send(pkt)
    except KeyboardInterrupt:
        return fleet.report(clock(), interrupted=True)
    return fleet.report(clock())


def fleet_live(fleet: Fleet, *, rate: float | None = None, mbps: float | None = None, gso: bool = False) -> FleetReport:
    """Run ``fleet`` over one raw transport for all its addresses (at most ``rate`` packets and
    ``mbps`` megabits per second; with ``gso``, data in bursts the kernel cuts, see
    :meth:`~replay.core.Replay.allow_bursts`).  :class:`~replay.transport.TransportError` when it
    cannot open; the transport (and its nftables table) is closed on every exit, Ctrl-C included."""
    check_privileges()
    with RawTransport(fleet.local_addresses(), fleet.peer_addresses(), rate=rate, gso=gso) as raw, settled_heap():
        return run_fleet(fleet, raw if mbps is None else Paced(raw, mbps))


class Paced:
    """A transport that sends at most ``mbps`` megabits per second (IP octets) through ``inner``."""

    def __init__(self, inner: Transport, mbps: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not mbps > 0:
            raise ValueError(f"mbps {mbps}: must be positive")
        self.inner = inner
        self.per_octet = 8 / (mbps * 1e6)
        self.clock = clock
        self.next = 0.0

    def send(self, packet: bytes) -> None:
        now = self.clock()
        if self.next < now - 0.002:
            self.next = now
        elif self.next > now:
            time.sleep(self.next - now)
        self.next += len(packet) * self.per_octet
        self.inner.send(packet)

    def recv(self, timeout: float) -> list[bytes]:
        return self.inner.recv(timeout)
