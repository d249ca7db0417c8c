"""Drive a :class:`~replay.core.Replay` with a transport and a clock (the only I/O of the engine)."""

from __future__ import annotations

import time
from collections.abc import Callable

from mptcpspec.replay.core import Replay, Report

__all__ = ["run_replay"]


def run_replay(
    core: Replay, transport, clock: Callable[[], float] = time.monotonic, on_event: Callable[[str], None] | None = None
) -> Report:
    """Run until the replay ends (cleanly, failed or timed out); return its report."""
    now = clock()
    for pkt in core.start(now):
        transport.send(pkt)
    shown = 0
    while not core.done:
        deadline = core.deadline()
        wait = 0.05 if deadline is None else min(max(deadline - clock(), 0.0), 0.05)
        packets = transport.recv(wait)
        now = clock()
        for data in packets:
            for pkt in core.receive(data, now):
                transport.send(pkt)
        for pkt in core.poll(now):
            transport.send(pkt)
        if on_event is not None:
            while shown < len(core.events):
                on_event(str(core.events[shown]))
                shown += 1
    if on_event is not None:
        for e in core.events[shown:]:
            on_event(str(e))
    return core.report(clock())
