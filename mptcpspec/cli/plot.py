"""``mptcpspec plot``: the graphs of an MPTCP connection, as images, an interactive page or a table."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mptcpspec.cli.common import CommandError, Subcommands, open_capture, report_read
from mptcpspec.cli.exitcode import ExitCode

if TYPE_CHECKING:
    from mptcpspec.capture.stream import Input
    from mptcpspec.plot.model import Plot

__all__ = ["KINDS", "add_parser", "cmd_plot"]

#: plot kind -> what it shows (``plot --help``)
KINDS = {
    "dsn": "data-level time-sequence graph: segments by subflow, DATA_ACK, window, reinjections, events",
    "subflow": "one TCP stream's time-sequence graph (--tcp-stream): segments, ACK, window, SACK, retransmissions",
    "tput": "throughput per subflow (stacked) and the connection's goodput (--interval, --average)",
    "rtt": "round-trip times per subflow (ACKs, timestamps) and the DATA_ACK latency",
    "flight": "octets in flight: the connection's against the peer's window, and each subflow's",
    "reinject": "reinjected octets over time, by the subflow they left and the one that sent them again",
    "owd": "one-way delay per subflow, from a client's and a server's capture (-r CLIENT -r SERVER); lost segments",
}
#: the kinds that read a client's and a server's capture together (owd needs both; dsn may)
PAIRED = ("owd", "dsn")


def _size(text: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: WIDTHxHEIGHT in inches, e.g. 12x7") from None
    if not (0 < w <= 100 and 0 < h <= 100):
        raise argparse.ArgumentTypeError(f"{text!r}: each side from above 0 to 100 inches")
    return w, h


def _make(f: Input, args: argparse.Namespace) -> Plot:
    from mptcpspec.dissect.pipeline import Dissection

    kind = args.kind
    # no plot shows the checks (HMACs, DSS checksums), and only rtt and flight the TCP analysis
    d = Dissection(f, verify=False, tcp_analysis=kind in ("rtt", "flight"))
    if kind == "dsn":
        from mptcpspec.plot.dsn import dsn_plot

        return dsn_plot(d, args.stream, args.direction, relative=not args.absolute)
    if kind == "subflow":
        from mptcpspec.plot.subflow import subflow_plot

        return subflow_plot(d, args.tcp_stream, args.direction)
    if kind == "rtt":
        from mptcpspec.plot.delay import rtt_plot

        return rtt_plot(d, args.stream, args.direction)
    from mptcpspec.plot.rates import flight_plot, reinject_plot, tput_plot

    if kind == "tput":
        return tput_plot(d, args.stream, args.direction, args.interval, args.average)
    return (
        flight_plot(d, args.stream, args.direction)
        if kind == "flight"
        else reinject_plot(d, args.stream, args.direction)
    )


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = 0.0
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of seconds above 0")
    return v


def _seconds_ns(text: str) -> int:
    from mptcpspec.cli.pair import seconds_ns

    return seconds_ns(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of intervals, 1 or more")
    return int(text)


def _make_paired(args: argparse.Namespace) -> tuple[str, Plot]:
    """The plot of a client's and a server's capture read together: the capture it is drawn from
    (the sender's) and the plot."""
    from mptcpspec.cli.pair import pair_files
    from mptcpspec.dissect.pipeline import Dissection
    from mptcpspec.plot.owd import owd_plot, paired
    from mptcpspec.plot.select import PlotError

    files = args.read
    pairing = pair_files(files[0], files[1], offset_ns=args.offset, stream=args.stream)
    try:
        pair = paired(pairing, args.stream, args.direction)
    except PlotError as e:
        raise CommandError(ExitCode.UNUSABLE, f"{files[0]} and {files[1]}: {e}") from None
    sender = files[pair.given]
    with open_capture(sender) as f:
        d = Dissection(f, verify=False, tcp_analysis=False)
        try:
            if args.kind == "owd":
                return sender, owd_plot(d, pair)
            from mptcpspec.plot.dsn import dsn_plot

            return sender, dsn_plot(d, pair.stream, args.direction, relative=not args.absolute, paired=pair)
        except PlotError as e:
            raise CommandError(ExitCode.UNUSABLE, f"{sender}: {e}") from None


def _captures(args: argparse.Namespace) -> None:
    """One capture, or two for the kinds that read a client's and a server's together."""
    n = len(args.read)
    if args.kind == "owd" and n != 2:
        raise CommandError(
            ExitCode.USAGE,
            "plot owd needs both captures: -r CLIENT_CAPTURE -r SERVER_CAPTURE (the client's, then the server's)",
        )
    if n > 2 or (n == 2 and args.kind not in PAIRED):
        raise CommandError(
            ExitCode.USAGE,
            f"plot {args.kind} reads one capture: give -r once "
            f"(two, the client's and the server's, for {' and '.join(PAIRED)})",
        )
    if n == 1 and args.offset is not None:
        raise CommandError(ExitCode.USAGE, "--offset goes with two captures: -r CLIENT_CAPTURE -r SERVER_CAPTURE")


def cmd_plot(args: argparse.Namespace) -> int:
    from mptcpspec.plot.select import PlotError

    _captures(args)
    out = args.output
    suffix = out.rsplit(".", 1)[-1].lower() if out and "." in out else ""
    table = args.csv or suffix == "csv"
    if out and not table and suffix not in ("png", "svg", "pdf", "html"):
        raise CommandError(
            ExitCode.USAGE, f"{out}: the output's suffix says what it is: .png, .svg, .pdf, .html or .csv"
        )
    if len(args.read) == 2:
        path, plot = _make_paired(args)
    else:
        path = args.read[0]
        with open_capture(path) as f:
            try:
                plot = _make(f, args)
            except PlotError as e:
                raise CommandError(ExitCode.UNUSABLE, f"{path}: {e}") from None
    if table:
        from mptcpspec.plot.table import write_csv

        if out in (None, "-"):
            write_csv(plot, sys.stdout)
        else:
            with open(out, "w", encoding="utf-8", newline="") as fh:
                write_csv(plot, fh)
    elif suffix == "html":
        from mptcpspec.plot.page import write_page

        write_page(plot, out)
    else:
        from mptcpspec.plot.image import MissingMatplotlib, draw, show

        try:
            if out:
                draw(plot, out, args.size)
            else:
                show(plot, args.size)
        except MissingMatplotlib as e:
            raise CommandError(ExitCode.UNUSABLE, str(e)) from None
        except PlotError as e:
            raise CommandError(ExitCode.USAGE, str(e)) from None
    return report_read(path, plot.read)


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser(
        "plot",
        help="graphs of an MPTCP connection: images, an interactive page, or the series as CSV",
        description="Draw one MPTCP connection of a capture. Kinds: "
        + "; ".join(f"{k}: {v}" for k, v in KINDS.items())
        + ". The output's suffix picks the form: .png, .svg, .pdf (images, needs mptcpspec[plot]), "
        ".html (a page that works offline: zoom, pan, a hover naming the frame), .csv (the series, each point "
        "with its frame). Without -o, a window where a display is. owd, and dsn given two captures, read the "
        "client's and the server's capture of the same connection together (see pair).",
    )
    p.add_argument("kind", choices=tuple(KINDS), help="what to draw")
    p.add_argument(
        "-r",
        "--read",
        required=True,
        action="append",
        metavar="FILE",
        help="pcap or pcapng file (or gzip/zstd/lz4 of one); owd, and dsn with arrivals: twice, the client's "
        "capture then the server's",
    )
    p.add_argument("-o", "--output", metavar="OUT", help="the file to write: .png, .svg, .pdf, .html or .csv")
    p.add_argument(
        "--stream",
        type=int,
        default=0,
        metavar="N",
        help="the MPTCP connection (mptcp.stream; with two captures, in the client's; default 0)",
    )
    p.add_argument(
        "--tcp-stream", type=int, default=0, metavar="N", help="subflow: the TCP stream (tcp.stream; default 0)"
    )
    p.add_argument(
        "--direction",
        choices=("client", "server"),
        default="client",
        help="whose data to draw: the client's (the side of the first SYN; for subflow: the stream's initiator; "
        "default) or the server's",
    )
    p.add_argument(
        "--absolute", action="store_true", help="64-bit data sequence numbers, not relative to the sender's IDSN"
    )
    p.add_argument(
        "--interval", type=_positive, metavar="S", help="tput: the interval in seconds (default: the duration / 100)"
    )
    p.add_argument(
        "--average", type=_count, default=1, metavar="N", help="tput: the goodput's moving average, in intervals (1)"
    )
    p.add_argument(
        "--offset",
        type=_seconds_ns,
        metavar="SECONDS",
        help="with two captures: the server capture's clock minus the client's, when known (default: estimated)",
    )
    p.add_argument("--csv", action="store_true", help="write the series as CSV (to -o, or standard output)")
    p.add_argument("--size", type=_size, default=(12.0, 7.0), metavar="WxH", help="image size in inches (12x7)")
    p.set_defaults(func=cmd_plot)
