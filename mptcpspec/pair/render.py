"""``mptcpspec pair``'s report as text and as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from mptcpspec.pair.model import Change, ConnectionPair, Delays, Flow, Offset, PairReport, Reinjection, Reordering

__all__ = ["duration", "report_dict", "report_lines"]

_LISTED = 10  # reinjections and changes listed one by one in the text


def duration(ns: int | None) -> str:
    """``466 µs``, ``12.497 ms``, ``1.250 s``; ``-`` for none."""
    if ns is None:
        return "-"
    a = abs(ns)
    sign = "-" if ns < 0 else ""
    if a < 1_000_000:
        return f"{sign}{a / 1000:.0f} µs" if a % 1000 == 0 else f"{sign}{a / 1000:.3f} µs"
    if a < 1_000_000_000:
        return f"{sign}{a / 1e6:.3f} ms"
    return f"{sign}{a / 1e9:.3f} s"


def _delays(d: Delays) -> str:
    if not d.count:
        return "none"
    return (
        f"min {duration(d.min_ns)}, median {duration(d.median_ns)}, p95 {duration(d.p95_ns)}, max {duration(d.max_ns)}"
    )


def _offset(o: Offset) -> str:
    sign = "+" if o.offset_ns >= 0 else "-"
    text = f"server - client = {sign}{duration(abs(o.offset_ns))}"
    if o.given:
        return text + " (given)"
    if o.uncertainty_ns is None:
        one = "client→server" if o.forward_min_ns is not None else "server→client"
        return text + f" (segments matched {one} only: no bound; the smallest delay taken for zero)"
    return (
        text + f" ± {duration(o.uncertainty_ns)} (smallest delays {duration(o.forward_min_ns)} client→server, "
        f"{duration(o.reverse_min_ns)} server→client)"
    )


def _frames(c: Change) -> str:
    shown = ", ".join(f"{'-' if a is None else a}↔{'-' if b is None else b}" for a, b in c.frames)
    more = "…" if c.segments > len(c.frames) else ""
    return f"frames {shown}{more}"


def _flow(f: Flow) -> Iterator[str]:
    line = f"    {f.direction}  {f.sent} sent, {f.received} received, {f.lost} lost"
    if f.lost:
        more = "…" if f.lost > len(f.lost_frames) else ""
        line += f" ({f.lost_octets} octets; frames {', '.join(map(str, f.lost_frames))}{more})"
    if f.injected:
        line += f", {f.injected} never sent (frames {', '.join(map(str, f.injected_frames))})"
    if f.outside:
        line += f", {f.outside} while the other capture was not running"
    yield line
    yield f"      one-way delay  {_delays(f.owd)}" + ("" if f.hops is None else f"; {f.hops} hop(s)")
    for c in f.changes:
        yield f"      changed  {c.what} {c.detail} on {c.segments} segment(s) ({_frames(c)})"


def _reinjection(r: Reinjection) -> str:
    at = "lost" if r.receiver_frame is None else f"received in frame {r.receiver_frame}"
    saved = ""
    if r.saved_ns is not None:
        saved = f", {'saved' if r.saved_ns >= 0 else 'cost'} {duration(abs(r.saved_ns))}"
    first = ", ".join(map(str, r.originals))
    return (
        f"      frame {r.sender_frame} (tcp.stream {r.stream}, DSN {r.dsn}, {r.octets} octets, "
        f"first in frame {first}), "
        f"{at}: {r.verdict}: {r.reason}{saved}"
    )


def _reinjections(rs: tuple[Reinjection, ...]) -> Iterator[str]:
    for direction in ("client→server", "server→client"):
        mine = [r for r in rs if r.direction == direction]
        if not mine:
            continue
        useful = [r for r in mine if r.verdict == "useful"]
        redundant = [r for r in mine if r.verdict == "redundant"]
        lost = len(mine) - len(useful) - len(redundant)
        saved = Delays.of([r.saved_ns for r in useful if r.saved_ns is not None])
        cost = Delays.of([-r.saved_ns for r in redundant if r.saved_ns is not None])
        yield (
            f"  reinjections  {direction}  {len(mine)}: {len(useful)} useful"
            + (f" (saved median {duration(saved.median_ns)}, max {duration(saved.max_ns)})" if saved.count else "")
            + f", {len(redundant)} redundant"
            + (f" (later than the first copy by median {duration(cost.median_ns)})" if cost.count else "")
            + f", {lost} lost"
        )
        for r in mine[:_LISTED]:
            yield _reinjection(r)
        if len(mine) > _LISTED:
            yield f"      … {len(mine) - _LISTED} more (--json lists them all)"


def _reordering(o: Reordering) -> Iterator[str]:
    held = ", ".join(f"tcp.stream {s} ({n} segments, longest {duration(m)})" for s, n, m in o.held_up_by)
    yield (
        f"  reordering  {o.direction}  {o.waited} of {o.segments} data segments waited out of order "
        f"({o.waited_octets} octets): {_delays(o.delay)}; some data waiting for {duration(o.blocked_ns)} in all"
        + (f"; {o.never} never in order" if o.never else "")
    )
    if held:
        yield f"    held up by  {held} (the sender's tcp.stream of the missing data)"
    shares = ", ".join(f"tcp.stream {g.stream} {g.share:.1%} ({g.octets} octets)" for g in o.goodput)
    yield f"  goodput  {o.direction}  {o.octets} octets: {shares}"


def _connection(c: ConnectionPair) -> Iterator[str]:
    if c.client_stream is None and c.server_stream is None:
        head = "TCP connection: MPTCP tried, fell back" if c.fallback else "TCP connection (no MPTCP at either end)"
    else:
        a = "-" if c.client_stream is None else c.client_stream
        b = "-" if c.server_stream is None else c.server_stream
        head = f"MPTCP stream {a} ↔ {b}" + ("" if c.version is None else f"  v{c.version}")
        keys = []
        if c.client_key is not None:
            keys.append(f"client {c.client_key:#018x}")
        if c.server_key is not None:
            keys.append(f"server {c.server_key:#018x}")
        if keys:
            head += "  keys " + " ".join(keys)
    yield head
    if c.fallback:
        yield f"  fallback  {c.fallback}"
    for sf in c.subflows:
        view = (
            sf.client_view
            if sf.client_view == sf.server_view
            else f"{sf.client_view} (at the server: {sf.server_view})"
        )
        yield (
            f"  subflow  tcp.stream {sf.client_stream} ↔ {sf.server_stream}  {sf.kind}  {view}  "
            f"(matched by {sf.matched_by})"
        )
        for f in sf.flows:
            yield from _flow(f)
    yield from _reinjections(c.reinjections)
    for o in c.reordering:
        yield from _reordering(o)


def report_lines(r: PairReport) -> Iterator[str]:
    """The report as ``mptcpspec pair`` prints it."""
    yield f"client  {r.client}" + ("  (given second: the one-way delays say it is the client's)" if r.swapped else "")
    yield f"server  {r.server}"
    yield f"clock   {_offset(r.offset)}"
    for c in r.connections:
        yield ""
        yield from _connection(c)
    for what, left in (("client", r.client_only), ("server", r.server_only)):
        for v in left:
            yield f"only in the {what}'s capture: {v}"


def report_dict(r: PairReport) -> dict[str, object]:
    """The report as plain JSON values (times in nanoseconds)."""
    return dataclasses.asdict(r)
