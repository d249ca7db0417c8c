"""``mptcpspec replay``: play the client side of a captured MPTCP connection against a live server,
or (``--side server``) its server side for a live client.

Argument parsing and rendering only; the engine is :mod:`mptcpspec.replay`, whose typed events are
worded here (:func:`render_event`).  The capture is opened and read once with
:func:`~mptcpspec.cli.common.open_capture` before anything is sent, and how its read ended is said
with :func:`~mptcpspec.cli.common.report_read`, as every command that reads a capture does.  Exit
status (:class:`~mptcpspec.cli.exitcode.ExitCode`): OK when the replay ran to a clean close; DAMAGED
when it started but did not finish cleanly (the report says why), or the capture was damaged (a
record cut short: replayed up to it; framing damaged part way: not replayed); USAGE for a usage
error; UNUSABLE when it could not start (a missing or foreign file, no such stream, missing
privileges, unreachable target...).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import math
import sys
from typing import TYPE_CHECKING

from mptcpspec.cli.common import CommandError, Subcommands, fail, file_error, note, open_capture, report_read
from mptcpspec.cli.exitcode import ExitCode
from mptcpspec.cli.replay_fleet import add_fleet_arguments, cmd_fleet, stream_spec, wants_fleet

if TYPE_CHECKING:
    from mptcpspec.capture.stream import Input
    from mptcpspec.dissect.outcome import ReadOutcome
    from mptcpspec.replay.events import ReplayEvent
    from mptcpspec.replay.report import Report
    from mptcpspec.replay.setup import Address, ReplayError, Timing

EPILOG = """\
examples (as root, or with CAP_NET_RAW and CAP_NET_ADMIN):
  mptcpspec replay -r cap.pcap --target 198.51.100.2
  mptcpspec replay -r cap.pcap --stream 1 --target 198.51.100.2:8080 --map 10.0.0.1=198.51.100.1 \\
      --map 10.0.1.1=203.0.113.1 --timing x2 --json
  mptcpspec replay -r cap.pcap --side server --listen 198.51.100.2 --map 10.0.1.2=203.0.113.2

The replay sends from the captured client addresses (or their --map replacements), which must be
addresses of this host; while it runs, an nftables rule keeps the local kernel from answering the
replayed flows with TCP resets, and it is removed on every exit.  With --side server the replay
waits on --listen (and the live addresses --map gives the captured server's other addresses, those
its ADD_ADDRs announce), which must be addresses of this host, for one live MPTCP client.
"""


def _endpoint(text: str) -> tuple[Address, int | None]:
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        return ipaddress.ip_address(host), (int(port) if port else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address[:port]: {text!r}") from None


def _mapping(text: str) -> tuple[Address, Address]:
    a, sep, b = text.partition("=")
    try:
        return ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CAPTURED_IP=LOCAL_IP, got {text!r}") from None


def _timing(text: str) -> Timing:
    if text == "fast":
        return "fast"
    if text == "as-captured":
        return "as-captured"
    if text.startswith("x"):
        try:
            factor = float(text[1:])
        except ValueError:
            factor = 0.0
        if math.isfinite(factor) and factor > 0:
            return factor
    raise argparse.ArgumentTypeError(f"expected fast, as-captured or xN (e.g. x2), got {text!r}")


def _multiplier(text: str) -> Timing:
    try:
        return _timing("x" + text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive number (e.g. 2 or 0.5), got {text!r}") from None


def _pps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number of packets per second, got {text!r}")
    return value


def _octet(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"expected an octet, 0 to 255 (or 0x00 to 0xff), got {text!r}")
    return value


def _cookie(text: str) -> bytes:
    try:
        cookie = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hexadecimal") from None
    if not (len(cookie) == 0 or (4 <= len(cookie) <= 16 and len(cookie) % 2 == 0)):
        raise argparse.ArgumentTypeError("a TCP Fast Open cookie is 4 to 16 octets, an even number (RFC 7413 §4.1.1)")
    return cookie


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a captured MPTCP connection's client side against a live server (or its server side)",
        description="Play the client side of MPTCP stream N of a capture against a live MPTCP "
        "server over raw sockets, re-keyed: tokens, HMACs, DATA_ACKs and DSS "
        "checksums are computed for the live server's key.  With --side server, play its server "
        "side for a live MPTCP client instead.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-r", "--read", required=True, metavar="FILE", help="pcap or pcapng file, or gzip/zstd/lz4 of one")
    which = p  # --stream and --tcp-stream together: lists or all (many connections)
    which.add_argument(
        "--stream",
        type=stream_spec,
        metavar="N|all|N,M,...",
        help="MPTCP stream to replay (default: the first); all, or a list: those streams at once",
    )
    which.add_argument(
        "--tcp-stream",
        type=stream_spec,
        metavar="N|all|N,M,...",
        help="replay TCP connection tcp.stream == N as plain TCP (any TCP connection, fallback ones too); "
        "all, or a list: those at once",
    )
    p.add_argument(
        "--try-mptcp",
        action="store_true",
        help="a captured fallback (or TCP) connection: offer MP_CAPABLE all the same (the live server may "
        "take it, else the replay falls back to TCP)",
    )
    p.add_argument(
        "--target",
        type=_endpoint,
        metavar="HOST[:PORT]",
        help="the live server (its port defaults to the captured one); required for --mode stateful on the client side",
    )
    p.add_argument(
        "--side",
        choices=("client", "server"),
        default="client",
        help="the captured side to play: client (default, against --target) or server (for a live client, on --listen)",
    )
    p.add_argument(
        "--listen",
        type=_endpoint,
        metavar="ADDR[:PORT]",
        help="--side server: the live address (and port; default the captured one) of the captured "
        "server's first address",
    )
    p.add_argument(
        "--mode",
        choices=("stateful", "raw"),
        default="stateful",
        help="stateful (default): play the client against a live server; raw: send every captured "
        "packet, both directions, onto --iface with rewritten addresses, like tcpreplay",
    )
    p.add_argument("--iface", metavar="IF", help="--mode raw: the interface to send on")
    p.add_argument(
        "-K",
        "--preload",
        action="store_true",
        help="--mode raw: read, rewrite and lay out every frame before the clock starts (as tcpreplay -K)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=1024,
        metavar="N",
        help="--mode raw: at most N frames per system call (sendmmsg; 1: one send each; default 1024)",
    )
    p.add_argument(
        "--map",
        action="append",
        type=_mapping,
        default=[],
        metavar="CAPTURED_IP=LIVE_IP",
        help="replace a captured address (client side: a local address; server side: a live one)",
    )
    p.add_argument(
        "--timing",
        type=_timing,
        default="fast",
        metavar="fast|as-captured|xN",
        help="send as fast as the windows allow (default), at captured times, or N times faster",
    )
    p.add_argument(
        "-x",
        "--multiplier",
        dest="timing",
        type=_multiplier,
        metavar="N",
        help="as tcpreplay -x: the captured times N times faster (--timing xN)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="give up when the target sends nothing for S seconds (default 10); --side server: also "
        "when no client connects within S seconds",
    )
    p.add_argument("--new-key", action="store_true", help="a fresh client key instead of the captured one")
    p.add_argument(
        "--require-payload",
        action="store_true",
        help="refuse a capture whose client data was cut by its snapshot length",
    )
    p.add_argument(
        "--fill", type=_octet, default=0, metavar="BYTE", help="octet for data the capture lacks (default 0x00)"
    )
    p.add_argument(
        "-p", "--pps", "--rate", dest="rate", type=_pps, metavar="PPS", help="at most PPS packets per second"
    )
    p.add_argument(
        "--no-tfo",
        action="store_true",
        help="a plain SYN even if the captured one used TCP Fast Open (its data goes after the handshake)",
    )
    p.add_argument(
        "--tfo-cookie",
        type=_cookie,
        metavar="HEX",
        help="TCP Fast Open cookie for the SYN instead of the captured one (the report gives the live server's)",
    )
    p.add_argument(
        "--gso",
        action="store_true",
        help="the data in bursts of up to 64 kB that the kernel cuts into segments (GSO), as its "
        "own TCP sends: far fewer packets to build.  With --timing fast, for speed: the segments and "
        "DSS mappings are then not the captured ones; with paced timing, a burst holds segments "
        "already due and is cut at their captured boundaries (one DSS mapping over it)",
    )
    p.add_argument("--json", action="store_true", help="the report as one JSON object")
    p.add_argument(
        "--report-fidelity",
        action="store_true",
        help="after the report, what was sent against the capture: segment sizes, subflows, and with "
        '--timing as-captured or xN the schedule error (JSON: a "fidelity" object)',
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no event lines while running")
    add_fleet_arguments(p)
    p.set_defaults(func=cmd_replay)


# -- rendering: what the engine says, with the options of this command where they help


def _setup_problem(e: ReplayError) -> str:
    from mptcpspec.replay.setup import SetupProblem

    advice = {
        SetupProblem.PAYLOAD_CUT: " (--require-payload)",
        SetupProblem.NO_LIVE_ADDRESS: ": give --map CAPTURED=LIVE",
        SetupProblem.SAME_FLOW: ": check --map",
        SetupProblem.IP_VERSION: ": give --map",
    }
    return f"{e}{advice.get(e.problem, '')}"


def describe_event(e: ReplayEvent, peer: str = "server") -> str:
    """What an event says happened, in words, without its time and subflow and without advice;
    ``peer``: the live peer ("client" for a server-side replay)."""
    from mptcpspec.replay import events as ev
    from mptcpspec.replay.plan import SubflowKind

    match e:
        case ev.ConnectionOpening():
            if e.tcp:
                return f"SYN (plain TCP) from {e.local} to {e.remote}"
            key = "captured" if e.key_captured else "new"
            return f"SYN with MP_CAPABLE from {e.local} to {e.remote} (client key {e.client_key:#018x}, {key})"
        case ev.JoinOpening():
            backup = ", backup" if e.backup else ""
            return f"MP_JOIN SYN from {e.local} to {e.remote}, address id {e.address_id}{backup}"
        case ev.ChecksumsRequired():
            return f"the {peer} requires DSS checksums"
        case ev.ConnectionEstablished():
            return f"MP_CAPABLE established: server key {e.server_key:#018x}, token {e.token:#010x}" + (
                ", DSS checksums" if e.checksums else ""
            )
        case ev.FellBack():
            return "the server answered without MP_CAPABLE: it fell back to TCP; the data goes on here as plain TCP"
        case ev.JoinVerified():
            return f"MP_JOIN SYN/ACK HMAC verified (server address id {e.server_address_id})"
        case ev.SubflowEstablished():
            if e.kind is SubflowKind.MP_JOIN and peer == "client":
                return "MP_JOIN established (the client's HMAC verified; the fourth ACK sent)"
            if e.kind is SubflowKind.MP_JOIN:
                return "MP_JOIN established (the server acknowledged our ACK)"
            return "established"
        case ev.FastOpenCookie():
            return f"TCP Fast Open cookie from the server: {e.cookie.hex()}"
        case ev.FastOpenSettled():
            if e.taken:
                return f"TCP Fast Open: the server took the {e.taken} octets of SYN data"
            return (
                f"TCP Fast Open: the server did not take the {e.offered} octets of SYN data "
                "(cookie refused or Fast Open off): they go after the handshake"
            )
        case ev.AddAddrEchoed():
            port = f" port {e.port}" if e.port else ""
            return f"ADD_ADDR id {e.address_id} {e.address}{port}: echoed"
        case ev.PrioritySent():
            return f"MP_PRIO as in the capture: backup={int(e.backup)}"
        case ev.RemoveAddrSent():
            return f"REMOVE_ADDR as in the capture: address id(s) {', '.join(map(str, e.address_ids))}"
        case ev.Retransmitted():
            what = e.segment.value if e.segment is not ev.SegmentKind.DATA else f"data at {e.sequence}"
            return f"{what} sent again (retransmission {e.attempt})"
        case ev.FastRetransmit():
            how = "SACK" if e.sack else "duplicate ACKs"
            return (
                f"data at {e.sequence} lost ({how}): sent again, congestion window {e.cwnd}, "
                f"slow-start threshold {e.ssthresh}"
            )
        case ev.Reinjected():
            if e.reset:
                return (
                    f"{e.segments} segment(s) of subflow {e.stalled}, reset by the {peer}, go again on the "
                    f"others from DSN {e.dsn} (relative)"
                )
            return f"{e.segments} segment(s) of stalled subflow {e.stalled} sent again here from DSN {e.dsn} (relative)"
        case ev.DataRetransmitted():
            return f"data-level retransmission from DSN {e.dsn} (relative): {e.segments} segment(s)"
        case ev.DataFinSent():
            return f"DATA_FIN at DSN {e.dsn} (relative)"
        case ev.DataFinReceived():
            return f"DATA_FIN from the {peer}"
        case ev.FinReceived():
            return f"FIN from the {peer}"
        case ev.ClosureStep():
            return f"closure: {e.event.value} -> {e.state.name}"
        case ev.ClosureRefused():
            return f"closure machine refuses {e.event.value} in {e.state.name}: {e.reason}"
        case ev.FastcloseSent():
            return "MP_FASTCLOSE sent with the RST on every subflow (Option R)"
        case ev.SubflowClosed():
            if e.how is ev.CloseHow.RESET_AFTER_CLOSE:
                return f"FIN exchange unfinished {e.linger:g} s after both DATA_FINs were acknowledged: reset"
            if e.how is ev.CloseHow.RESET_BY_CLOSURE:
                return "reset as the connection closed"
            return "closed (both FINs acknowledged)"
        case ev.SubflowReset():
            refused = " during its MP_JOIN handshake: the join is refused" if e.refused else ""
            return f"reset by the {peer}" + refused + ev.reset_reason(e.reason)
        case ev.SubflowFailed():
            return f"given up: {e.detail}"
        case ev.MpFailReceived():
            said = {
                ev.MpFailAnswer.INFINITE_MAPPING: "echoed; an infinite mapping goes on the next new data (fallback)",
                ev.MpFailAnswer.SUBFLOW_RESET: "with the server's reset of the subflow: its data goes on the others",
                ev.MpFailAnswer.SUBFLOW_CLOSED: "other subflows are open: this one is reset, its data goes on them",
                ev.MpFailAnswer.IGNORED: "the connection has fallen back already: ignored",
            }[e.answer]
            return f"MP_FAIL from the server: a DSS checksum failed at DSN {e.dsn} (relative): {said}"
        case ev.InfiniteMapping():
            return (
                f"infinite mapping from DSN {e.dsn} (relative) at sequence {e.sequence}: "
                "the rest goes as plain TCP here (RFC 8684 §3.7)"
            )
        case ev.ReplayAborted():
            return f"replay failed: {e.detail}"
        case ev.ClientSyn():
            if e.kind is SubflowKind.MP_JOIN:
                backup = ", backup" if e.backup else ""
                return f"MP_JOIN SYN from {e.remote} to {e.local}, address id {e.address_id}{backup}: SYN/ACK sent"
            return f"SYN with MP_CAPABLE from {e.remote} to {e.local}: SYN/ACK sent with the captured server key"
        case ev.ClientKey():
            return f"MP_CAPABLE established: client key {e.client_key:#018x}, token {e.token:#010x}" + (
                ", DSS checksums" if e.checksums else ""
            )
        case ev.AddAddrSent():
            port = f" port {e.port}" if e.port else ""
            again = f" (again, {e.attempt})" if e.attempt else ""
            return f"ADD_ADDR id {e.address_id} {e.address}{port} with its HMAC for the live keys{again}"
        case ev.AddAddrEchoReceived():
            return f"ADD_ADDR id {e.address_id} echoed by the client"
    raise TypeError(f"no wording for the replay event {type(e).__name__}")


def event_line(e: ReplayEvent, peer: str = "server") -> str:
    """An event as one line: its time, its subflow (or the connection), what happened."""
    where = "connection" if e.subflow is None else f"subflow {e.subflow}"
    return f"{e.time:9.3f} s  {where}: {describe_event(e, peer)}"


def render_event(e: ReplayEvent, peer: str = "server") -> str:
    """An event line, with the option of this command that acts on it where there is one."""
    from mptcpspec.replay.events import FastOpenCookie

    line = event_line(e, peer)
    if isinstance(e, FastOpenCookie):
        return f"{line} (--tfo-cookie {e.cookie.hex()} sends it next time)"
    return line


def _report_json(report: Report) -> str:
    return json.dumps(
        {
            "ok": report.ok,
            "reason": report.reason,
            "abort": None if report.abort is None else report.abort.value,
            "elapsed": report.elapsed,
            "client_key": report.client_key,
            "server_key": report.server_key,
            "data_delivered": report.data_delivered,
            "data_planned": report.data_planned,
            "server_data": report.server_data,
            "closure_state": report.closure_state.name,
            "subflows": [
                {
                    "index": s.index,
                    "kind": s.kind.value,
                    "local": s.local,
                    "remote": s.remote,
                    "state": s.state.name,
                    "states": [state.name for state in s.states],
                    "result": s.result,
                    "sent": s.sent,
                    "received": s.received,
                    "retransmitted": s.retransmitted,
                    "data_sent": s.data_sent,
                    "data_received": s.data_received,
                }
                for s in report.subflows
            ],
            "events": [event_line(e, "client" if report.side == "server" else "server") for e in report.events],
            "tfo": report.tfo,
            "tfo_cookie": report.tfo_cookie,
            "tcp": report.tcp,
            "fell_back": report.fell_back,
            "checksums": report.checksums,
            "checksums_captured": report.checksums_captured,
            "refused_joins": [s.index for s in report.refused_joins],
            "fallback": report.fallback,
            "mp_fail": report.mp_fail,
            "side": report.side,
        }
    )


def _report_text(report: Report, stream: int, tcp: bool = False) -> None:
    from mptcpspec.replay.report import FastOpenOutcome

    if report.side == "server":
        _server_report_text(report, stream)
        return
    print(f"replay of {'TCP' if tcp else 'MPTCP'} stream {stream}: {report.reason} in {report.elapsed:.3f} s")
    if report.fell_back:
        print("  fallback  the live server answered without MP_CAPABLE: the data went as plain TCP (RFC 8684 §3.7)")
    elif report.fallback:
        print(f"  fallback  {report.fallback} (RFC 8684 §3.7)")
    if report.mp_fail:
        print(f"  mp_fail   {report.mp_fail}")
    if not tcp:
        server = f"{report.server_key:#018x}" if report.server_key is not None else "-"
        print(f"  keys      client {report.client_key:#018x}  server {server}")
        if not report.tcp:
            print(f"  checksums {report.checksums_why}")
    level = "" if report.tcp else " at data level"
    print(
        f"  data      {report.data_delivered} of {report.data_planned} client octets acknowledged{level}; "
        f"{report.server_data} server octets received"
    )
    print(f"  closure   {report.closure_state.name}")
    for s in report.refused_joins:
        print(f"  refused   subflow {s.index} {s.local} → {s.remote}: {s.result}; its data went on the other subflows")
    fo = report.fast_open
    if fo is not None:
        if fo.outcome is FastOpenOutcome.OFF:
            what = "not used (--no-tfo)" + (": SYN data sent after the handshake" if fo.offered else "")
        else:
            what = fo.describe()
        cookie = report.tfo_cookie
        print(f"  fast open {what}" + (f"; server cookie {cookie} (--tfo-cookie {cookie} next time)" if cookie else ""))
    for s in report.subflows:
        print(
            f"  subflow   {s.index} {s.kind.value} {s.local} → {s.remote}: {s.result}; sent {s.sent} "
            f"(retransmitted {s.retransmitted}), received {s.received}; data {s.data_sent} out, "
            f"{s.data_received} in"
        )


def _server_report_text(report: Report, stream: int) -> None:
    print(f"server-side replay of MPTCP stream {stream}: {report.reason} in {report.elapsed:.3f} s")
    print(f"  keys      server {report.server_key:#018x} (captured)  client {report.client_key:#018x}")
    print(f"  checksums {'used' if report.checksums else 'not used'}")
    print(
        f"  data      {report.data_delivered} of {report.data_planned} server octets acknowledged at data level; "
        f"{report.server_data} client octets received"
    )
    print(f"  closure   {report.closure_state.name}")
    for s in report.subflows:
        print(
            f"  subflow   {s.index} {s.kind.value} {s.remote} → {s.local}: {s.result}; sent {s.sent} "
            f"(retransmitted {s.retransmitted}), received {s.received}; data {s.data_sent} out, "
            f"{s.data_received} in"
        )


# -- the command


def _read_capture(f: Input) -> ReadOutcome:
    """Read the whole capture once, before anything is sent: how its read ends.  A file that is no
    capture (foreign, empty, its first record damaged) raises its CaptureError, which
    :func:`~mptcpspec.cli.common.open_capture` turns into the one UNUSABLE message."""
    from mptcpspec.capture.pcap import CaptureError, CaptureReader
    from mptcpspec.dissect.outcome import outcome

    reader = CaptureReader(f)
    frames = 0
    damage = None
    try:
        for batch in reader.batches():
            frames += len(batch)
    except CaptureError as e:
        damage = e
    return outcome(frames, 0, damage, reader.problems)


def _checked_capture(path: str) -> ReadOutcome | None:
    """The capture ``path`` opened and read as every command does it, before any network action:
    an unusable file stops the command (UNUSABLE, ``PATH: why``); framing damaged part way is
    reported as ``dissect`` reports it and the replay refused (None: the caller ends DAMAGED), as
    the replay engine cannot read past it; a record cut short is left to be reported after the
    replay, which plays what was read.  Standard input cannot be replayed: the capture is read
    more than once (a usage error)."""
    if path == "-":
        raise CommandError(
            ExitCode.USAGE, "-r -: replay reads the capture more than once; save standard input to a file"
        )
    with open_capture(path) as f:
        result = _read_capture(f)
    if result.damage is not None:
        report_read(path, result)
        note(f"{path}: not replayed: the capture is damaged part way")
        return None
    return result


def _gso_problem(args: argparse.Namespace) -> str | None:
    """Why ``--gso`` cannot be, or None."""
    if not args.gso:
        return None
    for clash, what in (
        (args.rate is not None or getattr(args, "mbps", None) is not None, "no --pps or --mbps"),
        (args.mode == "raw", "the stateful mode (raw mode sends the captured packets)"),
        (args.side == "server", "the client side"),
    ):
        if clash:
            return f"--gso needs {what}"
    return None


def cmd_replay(args: argparse.Namespace) -> int:
    problem = _gso_problem(args)
    if problem is not None:
        return fail(problem, ExitCode.USAGE)
    if wants_fleet(args):
        return cmd_fleet(args, _checked_capture, _with_read, _setup_problem)
    if args.stream is not None and args.tcp_stream is not None:
        return fail("--stream N and --tcp-stream N: one connection is one or the other", ExitCode.USAGE)
    if args.mode == "raw":
        return _raw(args)
    if args.side == "server":
        return _serve(args)
    if args.listen is not None:
        return fail("--listen is for --side server (the client side replays against --target)", ExitCode.USAGE)
    if args.target is None:
        return fail("--target HOST[:PORT] is required (or --mode raw)", ExitCode.USAGE)
    from mptcpspec.replay import fidelity
    from mptcpspec.replay.core import Replay
    from mptcpspec.replay.plan import PlanError, make_plan, make_tcp_plan
    from mptcpspec.replay.run import replay_live
    from mptcpspec.replay.setup import ReplayError
    from mptcpspec.replay.transport import TransportError

    read = _checked_capture(args.read)
    if read is None:
        return ExitCode.DAMAGED
    try:
        if args.tcp_stream is not None:
            plan = make_tcp_plan(args.read, args.tcp_stream)
        else:
            plan = make_plan(args.read, args.stream)
        if args.try_mptcp and plan.tcp:
            plan = dataclasses.replace(plan, tcp=False)
    except PlanError as e:
        return _with_read(args.read, read, fail(str(e), ExitCode.UNUSABLE))
    target, port = args.target
    mapping = dict(args.map)
    try:
        core = Replay(
            plan,
            target=target,
            target_port=port,
            local=mapping,
            servers=mapping,
            new_key=args.new_key,
            timing=args.timing,
            timeout=args.timeout,
            fill=args.fill,
            require_payload=args.require_payload,
            tfo=not args.no_tfo,
            tfo_cookie=args.tfo_cookie,
        )
    except ReplayError as e:
        return _with_read(args.read, read, fail(_setup_problem(e), ExitCode.UNUSABLE))
    show = None if args.quiet or args.json else (lambda e: print(render_event(e), file=sys.stderr))
    rec = fidelity.record(core) if args.report_fidelity else None
    try:
        report = replay_live(core, rate=args.rate, on_event=show, gso=args.gso)
    except TransportError as e:
        return _with_read(args.read, read, fail(str(e), ExitCode.UNUSABLE))
    except KeyboardInterrupt:
        return fail("interrupted", ExitCode.INTERRUPTED)
    fid = None if rec is None else fidelity.fidelity(core, rec)
    if args.json:
        print(
            _report_json(report)
            if fid is None
            else json.dumps(json.loads(_report_json(report)) | {"fidelity": fid.as_dict()})
        )
    else:
        _report_text(report, plan.stream, plan.tcp)
        if fid is not None:
            print("fidelity (what was sent against the capture)")
            print("\n".join(fid.lines()))
    return _with_read(args.read, read, ExitCode.OK if report.ok else ExitCode.DAMAGED)


def _serve(args: argparse.Namespace) -> int:
    """``--side server``: wait on --listen for a live client and answer as the captured server."""
    from mptcpspec.replay.plan import PlanError
    from mptcpspec.replay.run import serve_live
    from mptcpspec.replay.serverplan import make_server_plan
    from mptcpspec.replay.serving import ServerReplay
    from mptcpspec.replay.setup import ReplayError
    from mptcpspec.replay.transport import TransportError

    if args.target is not None:
        return fail("--target is for the client side; --side server takes --listen ADDR[:PORT]", ExitCode.USAGE)
    if args.report_fidelity:
        return fail("--report-fidelity is for the client side (--side client)", ExitCode.USAGE)
    if args.listen is None:
        return fail("--side server needs --listen ADDR[:PORT]", ExitCode.USAGE)
    if args.tcp_stream is not None:
        return fail("--side server replays an MPTCP stream (--stream), not --tcp-stream", ExitCode.USAGE)
    read = _checked_capture(args.read)
    if read is None:
        return ExitCode.DAMAGED
    try:
        plan = make_server_plan(args.read, args.stream)
    except PlanError as e:
        return _with_read(args.read, read, fail(str(e), ExitCode.UNUSABLE))
    listen, port = args.listen
    core = ServerReplay(
        plan,
        listen=listen,
        listen_port=port,
        servers=dict(args.map),
        timing=args.timing,
        timeout=args.timeout,
        fill=args.fill,
    )
    from mptcpspec.replay.events import AbortCause, ReplayAborted

    def show(e: ReplayEvent) -> None:
        if not (isinstance(e, ReplayAborted) and e.cause is AbortCause.NO_CLIENT):  # said once, below
            print(render_event(e, "client"), file=sys.stderr)

    try:
        report = serve_live(core, rate=args.rate, on_event=None if args.quiet or args.json else show)
    except ReplayError as e:
        return _with_read(args.read, read, fail(str(e), ExitCode.UNUSABLE))
    except TransportError as e:
        return _with_read(args.read, read, fail(str(e), ExitCode.UNUSABLE))
    except KeyboardInterrupt:
        return fail("interrupted", ExitCode.INTERRUPTED)
    if args.json:
        print(_report_json(report))
    elif report.abort is AbortCause.NO_CLIENT:
        # nothing happened: one line says so (DAMAGED, as every replay that started and did not finish)
        return _with_read(args.read, read, fail(report.reason, ExitCode.DAMAGED))
    else:
        _report_text(report, plan.stream)
    return _with_read(args.read, read, ExitCode.OK if report.ok else ExitCode.DAMAGED)


def _with_read(path: str, read: ReadOutcome, status: int) -> int:
    """``status``, after saying how the read of the capture ended (as ``dissect`` does, after the
    output); a damaged capture makes a clean outcome DAMAGED."""
    return max(int(status), int(report_read(path, read)))


def _raw(args: argparse.Namespace) -> int:
    from mptcpspec.replay.raw import send_raw

    if not args.iface:
        return fail("--mode raw needs --iface IF", ExitCode.USAGE)
    if not 1 <= args.batch <= 1024:
        return fail(f"--batch {args.batch}: give 1 to 1024 frames per system call", ExitCode.USAGE)
    if args.report_fidelity:
        return fail("--report-fidelity is for --mode stateful (raw mode sends the capture as it is)", ExitCode.USAGE)
    mapping = dict(args.map)
    allowed = set(mapping.values()) | ({args.target[0]} if args.target else set())
    if not allowed:
        return fail(
            "--mode raw sends only to addresses named on the command line: give --map CAPTURED=LIVE "
            "(e.g. --map 198.51.100.2=198.51.100.2) or --target",
            ExitCode.USAGE,
        )
    read = _checked_capture(args.read)
    if read is None:
        return ExitCode.DAMAGED
    try:
        rep = send_raw(
            args.read,
            args.iface,
            mapping,
            allowed,
            timing=args.timing,
            rate=args.rate,
            preload=args.preload,
            batch=args.batch,
        )
    except OSError as e:
        if e.filename is not None:  # the capture file (its open, or a read that went wrong)
            return fail(file_error(args.read, e), ExitCode.UNUSABLE)
        if isinstance(e, PermissionError):
            return fail("--mode raw needs root or CAP_NET_RAW (a packet socket)", ExitCode.UNUSABLE)
        return fail(f"{args.iface}: {e.strerror or e}", ExitCode.UNUSABLE)
    pps = rep.sent / rep.elapsed if rep.elapsed else 0.0
    if args.json:
        print(
            json.dumps(
                {
                    "sent": rep.sent,
                    "skipped": rep.skipped,
                    "octets": rep.octets,
                    "elapsed": rep.elapsed,
                    "packets_per_second": pps,
                    "calls": rep.calls,
                    "preload": rep.preload,
                }
            )
        )
    else:
        print(
            f"raw replay on {args.iface}: {rep.sent} packets ({rep.octets} octets) in {rep.elapsed:.3f} s, "
            f"{pps:,.0f} packets/s; {rep.skipped} skipped (not IP, or to an address not given)"
        )
    return _with_read(args.read, read, ExitCode.OK)
