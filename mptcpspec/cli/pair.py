"""``mptcpspec pair``: a capture taken at the client and one taken at the server, read together."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from mptcpspec.cli.common import CommandError, Subcommands, note, open_capture, report_read
from mptcpspec.cli.exitcode import ExitCode

if TYPE_CHECKING:
    from mptcpspec.pair import Pairing

__all__ = ["add_parser", "cmd_pair", "pair_files", "seconds_ns"]


def seconds_ns(text: str) -> int:
    """``--offset``: seconds, signed, as decimals (``-0.25``, ``3600``), to nanoseconds."""
    try:
        v = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of seconds, such as 0.25 or -3600") from None
    if not v.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r}: a number of seconds, such as 0.25 or -3600")
    return int(v * 1_000_000_000)


def pair_files(
    client: str, server: str, *, offset_ns: int | None = None, stream: int | None = None, say_swap: bool = True
) -> Pairing:
    """Pair two capture files (``-`` is not allowed: each is read once, both at once); a capture
    that cannot be paired stops the command with :attr:`ExitCode.UNUSABLE` and says why.
    ``say_swap``: say so on stderr when the captures were given server first."""
    from mptcpspec.pair import PairError, pair_captures

    if "-" in (client, server):
        raise CommandError(ExitCode.USAGE, "pair reads two files: standard input cannot be one of them")
    with open_capture(client) as a, open_capture(server) as b:
        try:
            pairing = pair_captures(a, b, offset_ns=offset_ns, stream=stream, names=(client, server))
        except PairError as e:
            raise CommandError(ExitCode.UNUSABLE, str(e)) from None
    if pairing.report.swapped and say_swap:
        note(f"{server} is the client's capture and {client} the server's (the one-way delays say so)")
    return pairing


def cmd_pair(args: argparse.Namespace) -> int:
    from mptcpspec.pair.render import report_dict, report_lines

    files = args.read or []
    if len(files) != 2:
        raise CommandError(ExitCode.USAGE, "give two captures: -r CLIENT_CAPTURE -r SERVER_CAPTURE")
    pairing = pair_files(files[0], files[1], offset_ns=args.offset, stream=args.stream)
    if args.json:
        import json

        sys.stdout.write(json.dumps(report_dict(pairing.report)) + "\n")
    else:
        for line in report_lines(pairing.report):
            sys.stdout.write(line + "\n")
    r = pairing.report
    client, server = (files[1], files[0]) if r.swapped else (files[0], files[1])
    a, b = report_read(client, r.client_read), report_read(server, r.server_read)
    return ExitCode.DAMAGED if ExitCode.DAMAGED in (a, b) else max(a, b)


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser(
        "pair",
        help="a client's and a server's capture of the same connections, read together",
        description="Match the capture taken at the client with the one taken at the server: connections by "
        "keys and tokens, subflows by their handshakes (robust to NAT), segments by sequence numbers. Reports "
        "the clocks' offset, one-way delays, losses, what a middlebox changed, which reinjections helped, how "
        "long data waited out of order at the receiver and which subflow carried the goodput. For the "
        "mptcp.pair.* fields on each frame: dissect -r ONE --pair-with OTHER.",
    )
    p.add_argument(
        "-r",
        "--read",
        action="append",
        metavar="FILE",
        help="the client's capture, then the server's (twice; pcap or pcapng, or gzip/zstd/lz4 of one)",
    )
    p.add_argument("--stream", type=int, metavar="N", help="only the connection that is mptcp.stream N at the client")
    p.add_argument(
        "--offset",
        type=seconds_ns,
        metavar="SECONDS",
        help="the server capture's clock minus the client's, when known (default: estimated)",
    )
    p.add_argument("--json", action="store_true", help="the report as one JSON object (times in nanoseconds)")
    p.set_defaults(func=cmd_pair)
