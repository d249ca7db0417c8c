"""``mptcpspec replay`` with many connections: ``--stream all`` (or a list), ``--loop``,
``--concurrency``, the rate limits, ``--unique-ip``; the summary and the progress line.

The engine is :mod:`mptcpspec.replay.fleet`; this module parses its options and renders its
report.  Exit status: OK when every connection was delivered (as MPTCP, or as plain TCP after the
live server's fallback); DAMAGED when one failed; INTERRUPTED (Ctrl-C) after the summary of what
was done; UNUSABLE when it could not start.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from typing import TYPE_CHECKING

from mptcpspec.cli.common import fail, note
from mptcpspec.cli.exitcode import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from mptcpspec.dissect.outcome import ReadOutcome
    from mptcpspec.replay.fleet import FleetReport, Progress
    from mptcpspec.replay.setup import ReplayError

__all__ = ["add_fleet_arguments", "cmd_fleet", "stream_spec", "wants_fleet"]

StreamSpec = int | tuple[int, ...] | str  #: one stream, a list, or "all"
LISTED = 100  #: the text summary lists every connection up to this many (else the failed ones)


def stream_spec(text: str) -> StreamSpec:
    """``N``, ``all`` or ``N,M,...``."""
    if text == "all":
        return "all"
    try:
        numbers = tuple(int(t) for t in text.split(","))
    except ValueError:
        numbers = ()
    if not numbers or any(n < 0 for n in numbers):
        raise argparse.ArgumentTypeError(f"expected a stream number, a list (0,3,5) or all, got {text!r}")
    return numbers[0] if len(numbers) == 1 and "," not in text else numbers


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return n


def _positive(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = 0.0
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return x


def _prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an address prefix (e.g. 192.0.2.0/24), got {text!r}") from None


def add_fleet_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "many connections",
        "with --stream all or a list (or --tcp-stream all or a list), or --loop, every chosen connection is "
        "replayed at once, each from its captured start (scaled by --timing; at once with fast), with fresh "
        "client ports, and the report is a summary",
    )
    g.add_argument("--loop", type=_positive_int, metavar="N", help="replay the chosen connections N times")
    g.add_argument("--concurrency", type=_positive_int, metavar="K", help="at most K connections live at once")
    g.add_argument("--cps", type=_positive, metavar="C", help="start at most C connections per second")
    g.add_argument("--mbps", type=_positive, metavar="M", help="send at most M Mbit/s (IP octets)")
    g.add_argument(
        "--unique-ip",
        type=_prefix,
        metavar="PREFIX",
        help="each connection's client addresses drawn in turn from PREFIX (routed to this host), so that "
        "the server sees each iteration from addresses of its own",
    )
    g.add_argument("--progress", action="store_true", help="a progress line on stderr (default: on a terminal)")


def wants_fleet(args: argparse.Namespace) -> bool:
    """Whether the command line asks for many connections."""
    many = (args.stream, args.tcp_stream)
    return (
        any(s is not None and not isinstance(s, int) for s in many)
        or any(getattr(args, a) is not None for a in ("loop", "concurrency", "cps", "mbps", "unique_ip"))
        or args.progress
    )


def _streams(spec: StreamSpec | None) -> list[int] | None:
    """``spec`` as the list of streams :func:`~replay.fleet.members` takes (None: all)."""
    if spec == "all":
        return None
    if isinstance(spec, int):
        return [spec]
    return list(spec) if isinstance(spec, tuple) else []


def cmd_fleet(
    args: argparse.Namespace,
    checked_capture: Callable[[str], ReadOutcome | None],
    with_read: Callable[[str, ReadOutcome, int], int],
    setup_problem: Callable[[ReplayError], str],
) -> int:
    """The command with many connections; the capture read and the set-up errors worded as
    :mod:`~mptcpspec.cli.replay` does it (its functions, given)."""
    from mptcpspec.replay.fleet import Fleet, catalog, fleet_live, local_ports, members
    from mptcpspec.replay.plan import PlanError
    from mptcpspec.replay.setup import ReplayError
    from mptcpspec.replay.transport import TransportError

    if args.mode == "raw" or args.side == "server":
        return fail(
            "many connections (--stream all or a list, --loop...) are for --mode stateful --side client", ExitCode.USAGE
        )
    if getattr(args, "report_fidelity", False):
        return fail("--report-fidelity is for one connection", ExitCode.USAGE)
    if args.target is None:
        return fail("--target HOST[:PORT] is required", ExitCode.USAGE)
    read = checked_capture(args.read)
    if read is None:
        return ExitCode.DAMAGED
    mptcp = _streams(args.stream) if args.stream is not None else []
    tcp = _streams(args.tcp_stream) if args.tcp_stream is not None else []
    try:
        if args.stream is None and args.tcp_stream is None:  # the first MPTCP stream, as for one connection
            mptcp = sorted(catalog(args.read)[0])[:1] or [0]
        skipped: list[str] = []
        chosen = members(args.read, mptcp, tcp, skipped)
        for why in skipped:
            note(f"not replayed: {why}")
        if args.try_mptcp:
            import dataclasses

            chosen = [dataclasses.replace(m, plan=dataclasses.replace(m.plan, tcp=False)) for m in chosen]
    except PlanError as e:
        return with_read(args.read, read, fail(str(e), ExitCode.UNUSABLE))
    target, port = args.target
    mapping = dict(args.map)
    tty = sys.stderr.isatty()
    try:
        fleet = Fleet(
            chosen,
            target=target,
            target_port=port,
            local=mapping,
            servers=mapping,
            loop=args.loop or 1,
            concurrency=args.concurrency,
            cps=args.cps,
            timing=args.timing,
            new_key=args.new_key,
            unique_ip=args.unique_ip,
            avoid_ports=local_ports(),
            progress=(lambda p: _progress(p, tty)) if args.progress or tty else None,
            timeout=args.timeout,
            fill=args.fill,
            require_payload=args.require_payload,
            tfo=not args.no_tfo,
            tfo_cookie=args.tfo_cookie,
        )
    except ReplayError as e:
        return with_read(args.read, read, fail(setup_problem(e), ExitCode.UNUSABLE))
    except ValueError as e:
        return with_read(args.read, read, fail(str(e), ExitCode.USAGE))
    try:
        report = fleet_live(fleet, rate=args.rate, mbps=args.mbps, gso=args.gso)
    except TransportError as e:
        return with_read(args.read, read, fail(str(e), ExitCode.UNUSABLE))
    except KeyboardInterrupt:  # while the transport opened or closed: nothing ran
        return fail("interrupted", ExitCode.INTERRUPTED)
    if fleet.progress is not None:
        import time

        _progress(fleet.where(time.monotonic()), tty)  # where it ended
        if tty:
            print(file=sys.stderr)  # the progress line ends
    if args.json:
        print(json.dumps(fleet_json(report)))
    else:
        _text(report, fleet.loop)
    if report.interrupted:
        note("interrupted: the summary is of what was done")
        return ExitCode.INTERRUPTED
    return with_read(args.read, read, ExitCode.OK if report.ok else ExitCode.DAMAGED)


def _progress(p: Progress, tty: bool) -> None:
    if tty:
        print(f"\r{p.line()}\033[K", end="", file=sys.stderr, flush=True)
    else:
        print(p.line(), file=sys.stderr, flush=True)


def fleet_json(report: FleetReport) -> dict[str, object]:
    """The summary as one JSON object: ``ok``, ``interrupted``, ``connections`` and ``totals``."""
    t = report.totals
    pps_out, pps_in = t.packets_per_second
    hs = t.handshake
    return {
        "ok": report.ok,
        "interrupted": report.interrupted,
        "connections": [
            {
                "number": r.number,
                "iteration": r.iteration,
                "stream": r.stream,
                "tcp": r.tcp,
                "outcome": r.outcome,
                "reason": r.reason,
                "local": r.local,
                "remote": r.remote,
                "start": r.start,
                "data_delivered": r.data_delivered,
                "data_planned": r.data_planned,
                "server_data": r.server_data,
                "handshake": r.handshake,
                "elapsed": r.elapsed,
                "packets_sent": r.packets_sent,
                "packets_received": r.packets_received,
                "subflows": r.subflows,
                "client_key": None if r.report is None else r.report.client_key,
            }
            for r in report.connections
        ],
        "totals": {
            "connections": t.connections,
            "started": t.started,
            "delivered": t.delivered,
            "fell_back": t.fell_back,
            "failed": t.failed,
            "not_started": t.not_started,
            "elapsed": t.elapsed,
            "connections_per_second": t.connections_per_second,
            "packets_sent": t.packets_sent,
            "packets_received": t.packets_received,
            "packets_per_second_sent": pps_out,
            "packets_per_second_received": pps_in,
            "octets_sent": t.octets_sent,
            "octets_received": t.octets_received,
            "data_delivered": t.data_delivered,
            "goodput_mbps": t.goodput_mbps,
            "handshake": None if hs is None else dict(zip(("p50", "p90", "p99", "max"), hs, strict=True)),
        },
    }


def _ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def _text(report: FleetReport, loop: int) -> None:
    t = report.totals
    pps_out, pps_in = t.packets_per_second
    streams = sorted({r.stream for r in report.connections})
    iterations = f", {loop} iterations" if loop > 1 else ""
    head = "interrupted: " if report.interrupted else ""
    print(
        f"replay of {t.connections} connections ({len(streams)} stream{'s' if len(streams) != 1 else ''}"
        f"{iterations}): {head}{t.delivered} delivered, {t.fell_back} fell back, {t.failed} failed"
        + (f", {t.not_started} not started" if t.not_started else "")
        + f" in {t.elapsed:.3f} s"
    )
    print(
        f"  rate      {t.connections_per_second:.1f} connections/s; {pps_out:,.0f} packets/s out, "
        f"{pps_in:,.0f} in; goodput {t.goodput_mbps:.2f} Mbit/s ({t.data_delivered} client octets acknowledged)"
    )
    if t.handshake is not None:
        p50, p90, p99, top = t.handshake
        print(f"  handshake SYN to established: p50 {_ms(p50)}, p90 {_ms(p90)}, p99 {_ms(p99)}, max {_ms(top)}")
    shown = (
        report.connections
        if len(report.connections) <= LISTED
        else [r for r in report.connections if r.outcome == "failed"]
    )
    for r in shown:
        hs = "" if r.handshake is None else f", handshake {_ms(r.handshake)}"
        kind = "TCP" if r.tcp else "MPTCP"
        print(
            f"  {r.number:<9} {kind} stream {r.stream}, iteration {r.iteration}, {r.local} → {r.remote}: "
            f"{r.outcome}"
            + (f" ({r.reason})" if r.outcome == "failed" else "")
            + f"; {r.data_delivered} of {r.data_planned} octets, {r.subflows} subflow{'s' if r.subflows != 1 else ''}"
            + f" in {r.elapsed:.3f} s{hs}"
        )
    if len(shown) < len(report.connections):
        print(f"  ({len(report.connections) - len(shown)} delivered connections not listed: --json lists every one)")
