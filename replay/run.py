"""Drive a :class:`~replay.core.Replay` with a transport and a clock (the only I/O of the engine)."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from mptcpspec.replay.core import Replay
from mptcpspec.replay.events import ReplayEvent
from mptcpspec.replay.report import Report
from mptcpspec.replay.serving import ServerReplay, require_local
from mptcpspec.replay.transport import RawTransport, check_privileges

__all__ = ["Transport", "replay_live", "run_replay", "serve_live", "settled_heap"]


class Transport(Protocol):
    """Sends IP packets, receives the peers' (:class:`~replay.transport.RawTransport`, or a test's)."""

    def send(self, packet: bytes) -> None: ...

    def recv(self, timeout: float) -> list[bytes]: ...


def run_replay(
    core: Replay | ServerReplay,
    transport: Transport,
    clock: Callable[[], float] = time.monotonic,
    on_event: Callable[[ReplayEvent], None] | None = None,
) -> Report:
    """Run until the replay ends (cleanly, failed or timed out); return its report.  ``on_event``
    sees each event as soon as the replay has it."""
    now = clock()
    rec = core.conn.record  # --report-fidelity: when the data went (replay.fidelity)
    send = transport.send
    if rec is not None:
        handed = rec.handed

        def send(packet: bytes) -> None:  # the clock after each packet handed to the kernel
            transport.send(packet)
            handed(packet, clock())

    for pkt in core.start(now):
        send(pkt)
    events = core.events
    shown = 0
    paced = core.conn.options.timing != "fast"
    burst = getattr(transport, "burst", 0)  # a transport that cuts bursts (GSO): data goes in them
    if burst and isinstance(core, Replay):
        core.allow_bursts(burst)
    # The client side takes each recv()'s packets together: its pure ACKs all read, then one pump
    # for the data they let go (paced or not: at the captured rate, one pump per ACK fell behind
    # the schedule by tens of ms); the server side takes them one by one, each at its own time.
    together = getattr(core, "receive_all", None)
    while not core.done:
        deadline = core.deadline()
        wait = 0.05 if deadline is None else min(max(deadline - clock(), 0.0), 0.05)
        packets = transport.recv(wait)
        now = clock()
        if together is not None and packets:  # one batch: its pure ACKs all read, then the data they let go
            for pkt in together(packets, now):
                send(pkt)
            packets = []
        for data in packets:
            if paced:
                now = clock()
            for pkt in core.receive(data, now):
                send(pkt)
        for pkt in core.poll(now):
            send(pkt)
        if on_event is not None:
            while shown < len(events):
                on_event(events[shown])
                shown += 1
    if on_event is not None:
        for e in events[shown:]:
            on_event(e)
    return core.report(clock())


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """While the block runs, the objects made before it (a plan: a hundred thousand segments and
    more) are out of the cyclic garbage collector's sight (``gc.freeze``): its collections then
    look at what the replay makes, not at them.  Without it, one collection took 4 ms in the
    middle of a paced replay (the schedule error's p99 is about 1 ms).  Garbage is collected first,
    and the objects are given back to the collector afterwards."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def replay_live(
    core: Replay,
    *,
    rate: float | None = None,
    on_event: Callable[[ReplayEvent], None] | None = None,
    gso: bool = False,
) -> Report:
    """Run ``core`` over raw sockets from its local addresses to its live server addresses (at
    most ``rate`` packets per second; with ``gso``, its data in bursts the kernel cuts, see
    :meth:`~replay.core.Replay.allow_bursts`).  :class:`~replay.transport.TransportError` when the
    transport cannot open (privileges, nftables)."""
    check_privileges()
    with RawTransport(core.local_addresses(), core.peer_addresses(), rate=rate, gso=gso) as transport, settled_heap():
        return run_replay(core, transport, on_event=on_event)


def serve_live(
    core: ServerReplay, *, rate: float | None = None, on_event: Callable[[ReplayEvent], None] | None = None
) -> Report:
    """Run the server side ``core`` over raw sockets: packets from any peer to its listen addresses
    and ports, the kernel's resets from those ports suppressed.  :class:`~replay.setup.ReplayError`
    (``NOT_LOCAL``) when a listen address is not this host's, before anything is set up;
    :class:`~replay.transport.TransportError` when the transport cannot open."""
    require_local(core.local_addresses())
    check_privileges()
    with RawTransport(core.local_addresses(), (), rate=rate, listen_ports=core.ports) as transport, settled_heap():
        return run_replay(core, transport, on_event=on_event)
