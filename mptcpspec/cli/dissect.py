"""``mptcpspec dissect`` and ``mptcpspec connections``: the command-line face of the dissector.

Exit status (:class:`~mptcpspec.cli.exitcode.ExitCode`): 0 when the whole file was read; 1 when the
file is damaged (truncated or corrupt framing: everything before the damage was still dissected and
printed); 2 for a usage error (bad filter, unknown field, bad option); 3 when the file cannot be used
at all (missing, unreadable, not a capture) or has no MPTCP stream N for ``--follow N``.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING

from mptcpspec.capture.pcap import CaptureError
from mptcpspec.capture.writer import LinkTypeError
from mptcpspec.cli.common import (
    CommandError,
    Progress,
    Subcommands,
    frame_output,
    note,
    open_capture,
    report_read,
)
from mptcpspec.cli.exitcode import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from mptcpspec.analysis import PacketInfo
    from mptcpspec.dissect.outcome import ReadOutcome
    from mptcpspec.dissect.writers import PacketWriter

__all__ = ["add_parsers", "cmd_connections", "cmd_dissect", "fields_settings", "packet_writer"]

DISSECT_EPILOG = """\
examples:
  mptcpspec dissect -r cap.pcapng                         packet list, MPTCP parts as a tree
  mptcpspec dissect -r cap.pcap -Y 'mptcp.stream == 0 and tcp.len > 0'
  mptcpspec dissect -r cap.pcap -T fields -e frame.number -e mptcp.dsn -e mptcp.ack -E header=y
  mptcpspec dissect -r cap.pcap -T json | jq .mptcp.checks
  mptcpspec dissect -r cap.pcap -q --follow 0             write stream 0's data, both directions
  mptcpspec dissect --list-fields                         every field, Wireshark's and ours

fields: Wireshark 4.0's names (tcp.options.mptcp.*, mptcp.stream, mptcp.dsn, ...) print exactly as
tshark -T fields prints them; the analysis Wireshark lacks has names of its own (mptcp.dss.checksum.status,
mptcp.closure.client, mptcp.expert, ...).  exit status: 0 ok, 1 damaged file (partial output),
2 usage error, 3 unusable file.
"""

_SETTINGS = {
    "header": "y or n",
    "bom": "y or n",
    "quote": "d, s or n",
    "occurrence": "f, l, a or an occurrence number",
    "separator": "/t, /s or a character",
    "aggregator": ", /s or a character",
}


def fields_settings(values: list[str] | None) -> dict[str, str]:
    """The ``-E`` settings of ``-T fields``, checked (a usage error names the one that is wrong)."""
    out = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep or k not in _SETTINGS:
            raise CommandError(
                ExitCode.USAGE,
                f"-E {v}: expected bom=y|n, separator=, header=y|n, occurrence=f|l|a|N, aggregator= or quote=d|s|n",
            )
        if (
            (k in ("header", "bom") and val not in ("y", "n"))
            or (k == "quote" and val not in ("d", "s", "n"))
            or (k == "occurrence" and val not in ("f", "l", "a") and re.fullmatch(r"-?[0-9]+", val) is None)
            or (k in ("separator", "aggregator") and not val)
        ):
            raise CommandError(ExitCode.USAGE, f"-E {v}: {k} is {_SETTINGS[k]}")
        out[k] = val
    return out


def packet_writer(args: argparse.Namespace) -> PacketWriter | None:
    """The writer that ``-T``, ``-e``, ``-E`` and ``-q`` ask for (None: no packets printed)."""
    from mptcpspec.dissect.writers import FieldsWriter, JsonWriter, TextWriter

    if args.e and args.T != "fields":
        raise CommandError(ExitCode.USAGE, "output fields were given with -e, but -T fields was not")
    if args.T == "fields":
        if not args.e:
            raise CommandError(ExitCode.USAGE, "-T fields needs at least one -e FIELD (see --list-fields)")
        from mptcpspec.dissect.fields import UnknownFieldError  # the field table: only for -T fields

        try:
            writer: PacketWriter = FieldsWriter(sys.stdout, args.e, fields_settings(args.E))
        except UnknownFieldError as e:
            raise CommandError(ExitCode.USAGE, f"{e} (see --list-fields)") from None
    elif args.T == "json":
        writer = JsonWriter(sys.stdout)
    else:
        writer = TextWriter(sys.stdout, tree=not args.no_tree)
    return None if args.quiet else writer


def _needs_tcp(args: argparse.Namespace, stats: object) -> bool:
    """The subflow TCP analysis is run unless nothing asked needs it: ``-T fields`` of other fields,
    a display filter on other fields, no statistics (the outputs are the same either way)."""
    if args.T != "fields" or stats is not None:
        return True
    from mptcpspec.dissect.tcpfields import needs_tcp_analysis

    return needs_tcp_analysis(args.e or (), args.filter)


def cmd_dissect(args: argparse.Namespace) -> int:
    from mptcpspec.dissect.pipeline import Dissection
    from mptcpspec.dissect.reading import dissect_capture
    from mptcpspec.dissect.writers import expert_summary

    if args.list_fields:
        from mptcpspec.dissect.fields import FIELDS

        for name, field in FIELDS.items():
            print(f"{name}\t{field.source}\t{field.description}")
        return ExitCode.OK
    if args.list_interfaces or args.interface:
        if args.z:
            raise CommandError(ExitCode.USAGE, "-z reads a file: give -r FILE")
        if args.read:
            raise CommandError(ExitCode.USAGE, "-r and -i cannot go together: read a file or capture live")
        from mptcpspec.cli.live import cmd_live

        return cmd_live(args)
    live_only = [
        opt
        for opt, given in (
            ("-f", args.capture_filter),
            ("-s", args.snapshot_length),
            ("-a", args.autostop),
            ("-B", args.buffer_size),
            ("-p", args.no_promiscuous_mode),
        )
        if given
    ]
    if live_only:
        raise CommandError(ExitCode.USAGE, f"{', '.join(live_only)} set(s) a live capture: give -i IFACE")
    if not args.read:
        raise CommandError(ExitCode.USAGE, "-r FILE (or - for standard input) or -i IFACE is required")
    keep = None
    if args.filter:
        from mptcpspec.dissect.filters import FilterError, compile_filter  # lark: imported only when needed

        try:
            keep = compile_filter(args.filter)
        except FilterError as e:
            raise CommandError(ExitCode.USAGE, str(e)) from None
    writer = packet_writer(args)
    stats = None
    if args.z:
        from mptcpspec.stats import Statistics, StatsError, parse_stat

        if args.write == "-":
            raise CommandError(ExitCode.USAGE, "-z prints to standard output, where -w - writes the capture")
        try:
            stats = Statistics([parse_stat(z) for z in args.z], tree=args.T != "text")
        except StatsError as e:
            raise CommandError(ExitCode.USAGE, str(e)) from None
    folder = None
    if args.follow is not None:
        from pathlib import Path  # only here: the rest of a run makes no path

        folder = Path(args.follow_dir)  # made first: a folder that cannot be made is said before any reading
        folder.mkdir(parents=True, exist_ok=True)
    if args.write is not None and args.write == "-" and writer is not None:
        raise CommandError(ExitCode.USAGE, "-w - writes the capture to standard output: add -q to print no packets")
    files = None
    pair = None
    if args.pair_with is not None:
        from mptcpspec.cli.pair import pair_files

        pair = pair_files(args.read, args.pair_with, offset_ns=args.pair_offset, say_swap=False).frames[0]
    elif args.pair_offset is not None:
        raise CommandError(ExitCode.USAGE, "--pair-offset goes with --pair-with FILE")
    with open_capture(args.read, twice=args.two_pass) as f:
        d = Dissection(f, verify=not args.no_verify, two_pass=args.two_pass, tcp_analysis=_needs_tcp(args, stats))
        d.pair = pair
        if folder is not None:
            from mptcpspec.dissect.follow import StreamFiles

            files = StreamFiles(args.follow, folder)
        progress = Progress(f, not args.no_progress)
        out = None
        try:
            with frame_output(args.write, args.file_format) as out:
                result = _in_parallel(args, writer, keep, stats, progress) or dissect_capture(
                    d,
                    writer=writer,
                    keep=keep if stats is None else stats.tap(keep),  # statistics see every packet
                    follower=None if files is None else files.follower,
                    count=args.count,
                    progress=progress if progress.on else None,
                    frames_out=None if out is None else out.write,
                    line_buffered=args.line_buffered,
                )
        except CaptureError:
            if files is not None:
                files.discard()  # no --follow files for a file that could not be read
            raise
        except LinkTypeError as e:  # -F pcap and a second link type: the file keeps the frames before it, as tshark's
            raise CommandError(ExitCode.USAGE, f"{args.write}: frame {d.frames} of {args.read} {e.reason}") from None
        finally:
            progress.done()
    status = report_read(args.read, result)
    if args.T == "text" and not args.count and args.write != "-" and not (stats is not None and args.quiet):
        sys.stdout.write("\n".join(expert_summary(d.analyzer.experts)) + "\n")  # -w -: stdout is the capture
    if stats is not None:
        sys.stdout.write(stats.render())
    if files is not None:
        follow = files.finish(d.connections())
        if not follow.found:
            have = {0: "none", 1: "stream 0"}.get(follow.streams, f"streams 0 to {follow.streams - 1}")
            raise CommandError(ExitCode.UNUSABLE, f"{args.read}: no MPTCP stream {args.follow} ({have})")
        if not follow.carried_data:
            note(f"MPTCP stream {args.follow} carried no data in this capture")
        for path, r in follow.files:
            gaps = ", ".join(f"{n} octets at DSN {s}" for s, n in r.gaps) or "none"
            print(
                f"{path}: {r.written} octets from {r.segments} segments ({r.duplicate} duplicate); gaps: {gaps}"
                + (f"; {r.late} octets after their gap was given up" if r.late else "")
                + (f"; {r.cut} octets cut by the snapshot length" if r.cut else "")
                + (f"; {r.unmapped} octets without a known DSN" if r.unmapped else ""),
                file=sys.stderr,
            )
    return status


def _in_parallel(
    args: argparse.Namespace,
    writer: PacketWriter | None,
    keep: Callable[[PacketInfo], bool] | None,
    stats: object,
    progress: Progress,
) -> ReadOutcome | None:
    """``-j N``: the read by N worker processes, or None where one process reads the capture (the
    output is the same; see docs/dissect.md)."""
    if (
        args.jobs == 1
        or args.pair_with is not None
        or writer is None
        or stats is not None
        or args.follow is not None
        or args.two_pass
        or args.count
        or args.line_buffered
        or args.write is not None
    ):
        return None
    from mptcpspec.dissect.parallel import dissect_parallel

    return dissect_parallel(
        args.read,
        writer,
        args.jobs,
        keep=keep,
        filter_text=args.filter,
        verify=not args.no_verify,
        tcp_analysis=_needs_tcp(args, stats),
        progress=progress if progress.on else None,
    )


def cmd_connections(args: argparse.Namespace) -> int:
    from mptcpspec.dissect.pipeline import Dissection
    from mptcpspec.dissect.reading import read_connections
    from mptcpspec.dissect.writers import write_connections

    with open_capture(args.read) as f:
        d = Dissection(f, verify=not args.no_verify)
        progress = Progress(f, not args.no_progress)
        try:
            result, summaries = read_connections(d, progress if progress.on else None)
        finally:
            progress.done()
    status = report_read(args.read, result)
    write_connections(summaries, sys.stdout, as_json=args.json)
    return status


def _packet_count(text: str) -> int:
    """``-c N``: refused as tshark 4.0 refuses it (zero, negative, not a decimal number)."""
    try:
        n = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f'The specified packet count "{text}" isn\'t a decimal number') from None
    if n == 0:
        raise argparse.ArgumentTypeError("The specified packet count is zero")
    if n < 0:
        raise argparse.ArgumentTypeError(f'The specified packet count "{text}" is a negative number')
    return n


def _seconds_ns(text: str) -> int:
    from mptcpspec.cli.pair import seconds_ns

    return seconds_ns(text)


def _jobs(text: str) -> int:
    """``-j N``: worker processes; 0 or auto: one per processor."""
    if text == "auto":
        text = "0"
    try:
        n = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of processes, or auto") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text}: a number of processes is 0 (auto) or more")
    if n == 0:
        from mptcpspec.dissect.parallel import cpu_count

        return cpu_count()
    return n


def add_parsers(sub: Subcommands) -> None:
    p = sub.add_parser(
        "dissect",
        help="dissect a pcap/pcapng file: MPTCP connections, checks, expert info",
        description="Dissect a capture like tshark does, with the MPTCP analysis tshark lacks: "
        "HMACs, DSS checksums, mappings, reinjections, closure state.",
        epilog=DISSECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-r",
        "--read",
        metavar="FILE",
        help="pcap or pcapng file, or gzip/zstd/lz4 of one; - reads standard input",
    )
    p.add_argument(
        "-T",
        choices=("text", "json", "fields"),
        default="text",
        help="output: text (default), json (one object per packet per line), fields (with -e)",
    )
    p.add_argument("-e", action="append", metavar="FIELD", help="a field to print with -T fields (repeat)")
    p.add_argument(
        "-E",
        action="append",
        metavar="OPT=VAL",
        help="fields output option: bom=y|n, separator=/t|/s|C, header=y|n, occurrence=f|l|a, "
        "aggregator=C, quote=d|s|n",
    )
    p.add_argument(
        "-Y",
        "--display-filter",
        dest="filter",
        metavar="FILTER",
        help="print only packets that match, e.g. 'mptcp.stream == 0 and tcp.len > 0'",
    )
    p.add_argument(
        "-c", "--count", type=_packet_count, metavar="N", help="stop after N packets read or captured, as tshark -c"
    )
    p.add_argument("-l", dest="line_buffered", action="store_true", help="flush the output after each packet")
    p.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="-T fields of a capture file by N processes, by connection (0 or auto: one per processor); "
        "the same output; where it cannot be, one process reads the file",
    )
    p.add_argument(
        "-w",
        "--write",
        metavar="FILE",
        help="write the packets read (those -Y selects) or captured to FILE (- for standard output)",
    )
    p.add_argument(
        "-F",
        dest="file_format",
        choices=("pcapng", "pcap", "nsecpcap"),
        default="pcapng",
        help="format of the -w file (default pcapng)",
    )
    live = p.add_argument_group("live capture")
    live.add_argument(
        "-i", "--interface", action="append", metavar="IFACE", help="capture on IFACE (repeat; any: all of them)"
    )
    live.add_argument("-f", dest="capture_filter", metavar="BPF", help="capture filter, as tcpdump's: 'tcp port 5201'")
    live.add_argument("-s", "--snapshot-length", type=int, metavar="SNAPLEN", help="octets kept of each packet")
    live.add_argument(
        "-a",
        "--autostop",
        action="append",
        metavar="COND",
        help="stop after duration:SECONDS or packets:N",
    )
    live.add_argument("-B", "--buffer-size", type=int, metavar="MIB", help="kernel capture buffer, in MiB (default 2)")
    live.add_argument(
        "-p", "--no-promiscuous-mode", action="store_true", help="do not put the interface in promiscuous mode"
    )
    live.add_argument("-P", dest="print_packets", action="store_true", help="with -w: print packets as well")
    live.add_argument(
        "-D", "--list-interfaces", action="store_true", help="list the interfaces that can capture, and exit"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print no packets (with --follow, or for the summary)")
    p.add_argument(
        "-z",
        action="append",
        metavar="STAT",
        help="statistics, as tshark's: conv,tcp conv,mptcp endpoints,tcp endpoints,mptcp expert "
        "io,stat,INTERVAL[,FILTER]... (each may end with ,FILTER; repeat; with -q only they print)",
    )
    p.add_argument("--no-tree", action="store_true", help="-T text: summary lines only")
    p.add_argument("--no-verify", action="store_true", help="skip HMAC and checksum verification (faster)")
    p.add_argument(
        "-2",
        dest="two_pass",
        action="store_true",
        help="two passes, as tshark -2: fills mptcp.reinjected_in (reads the file twice)",
    )
    p.add_argument(
        "--pair-with",
        metavar="FILE",
        help="the capture taken at the other end of the connections: fills the mptcp.pair.* fields (see pair)",
    )
    p.add_argument(
        "--pair-offset",
        type=_seconds_ns,
        metavar="SECONDS",
        help="with --pair-with: the server capture's clock minus the client's (default: estimated)",
    )
    p.add_argument("--follow", type=int, metavar="N", help="write MPTCP stream N's data, each direction to a file")
    p.add_argument("--follow-dir", metavar="DIR", default=".", help="folder for --follow files (default: .)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    p.add_argument("--list-fields", action="store_true", help="list every field name and exit")
    p.set_defaults(func=cmd_dissect)

    c = sub.add_parser(
        "connections",
        help="one row per MPTCP connection in a capture",
        description="Every MPTCP connection: endpoints, version, keys and tokens, subflows, "
        "data-level bytes, reinjections, closure state, checks and expert info.",
    )
    c.add_argument(
        "-r",
        "--read",
        required=True,
        metavar="FILE",
        help="pcap or pcapng file, or gzip/zstd/lz4 of one; - reads standard input",
    )
    c.add_argument("--json", action="store_true", help="one JSON object per connection per line")
    c.add_argument("--no-verify", action="store_true", help="skip HMAC and checksum verification")
    c.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    c.set_defaults(func=cmd_connections)
