"""``mptcpspec dissect`` and ``mptcpspec connections``: the command-line face of the dissector.

Exit status: 0 when the whole file was read; 1 when the file is damaged (truncated or corrupt
framing: everything before the damage was still dissected and printed); 2 for a usage error (bad
filter, unknown field, bad option); 3 when the file cannot be used at all (missing, unreadable,
not a capture) or has no MPTCP stream N for ``--follow N``.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import time
from pathlib import Path

from mptcpspec.capture.pcap import CaptureError

EXIT_OK, EXIT_DAMAGED, EXIT_USAGE, EXIT_UNUSABLE = 0, 1, 2, 3

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


def _err(msg: str, code: int) -> int:
    print(f"mptcpspec: error: {msg}", file=sys.stderr)
    return code


class _Progress:
    """A one-line progress bar on stderr, when stderr is a terminal and the file is large."""

    def __init__(self, path: str, enabled: bool) -> None:
        self.total = 0
        try:
            self.total = os.path.getsize(path)
        except OSError:
            pass
        self.on = enabled and self.total > 8 << 20 and sys.stderr.isatty()
        self.last = 0.0
        self.start = time.monotonic()

    def update(self, reader, frames: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        done = min(reader.position / self.total, 1.0) if self.total else 0
        bar = "#" * int(done * 30)
        rate = frames / max(now - self.start, 1e-9)
        sys.stderr.write(f"\r[{bar:<30}] {done * 100:5.1f}%  {frames} frames  {rate:,.0f}/s ")
        sys.stderr.flush()

    def done(self) -> None:
        if self.on:
            sys.stderr.write("\r" + " " * 72 + "\r")
            sys.stderr.flush()


def _parse_E(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep or k not in ("separator", "header", "occurrence", "aggregator", "quote", "bom"):
            raise ValueError(
                f"-E {v}: expected bom=y|n, separator=, header=y|n, occurrence=f|l|a|N, aggregator= or quote=d|s|n"
            )
        if (
            (k in ("header", "bom") and val not in ("y", "n"))
            or (k == "quote" and val not in ("d", "s", "n"))
            or (k == "occurrence" and val not in ("f", "l", "a") and re.fullmatch(r"-?[0-9]+", val) is None)
            or (k in ("separator", "aggregator") and not val)
        ):
            allowed = {
                "header": "y or n",
                "bom": "y or n",
                "quote": "d, s or n",
                "occurrence": "f, l, a or an occurrence number",
                "separator": "/t, /s or a character",
                "aggregator": ", /s or a character",
            }[k]
            raise ValueError(f"-E {v}: {k} is {allowed}")
        out[k] = val
    return out


def cmd_dissect(args) -> int:
    from mptcpspec.dissect.fields import FIELDS
    from mptcpspec.dissect.pipeline import Dissection
    from mptcpspec.dissect.writers import FieldsWriter, JsonWriter, TextWriter, expert_summary

    if args.list_fields:
        for name, f in FIELDS.items():
            print(f"{name}\t{f.source}\t{f.description}")
        return EXIT_OK
    if not args.read:
        return _err("-r FILE is required", EXIT_USAGE)
    out = sys.stdout
    flt = None
    if args.filter:
        from mptcpspec.dissect.filters import FilterError, compile_filter  # lark: imported only when needed

        try:
            flt = compile_filter(args.filter)
        except FilterError as e:
            return _err(str(e), EXIT_USAGE)
    if args.e and args.T != "fields":
        return _err("output fields were given with -e, but -T fields was not", EXIT_USAGE)
    if args.T == "fields":
        if not args.e:
            return _err("-T fields needs at least one -e FIELD (see --list-fields)", EXIT_USAGE)
        try:
            writer = FieldsWriter(out, args.e, _parse_E(args.E))
        except KeyError as e:
            return _err(f"unknown field {e.args[0]!r} (see --list-fields)", EXIT_USAGE)
        except ValueError as e:
            return _err(str(e), EXIT_USAGE)
    elif args.T == "json":
        writer = JsonWriter(out)
    else:
        writer = TextWriter(out, tree=not args.no_tree)
    if args.quiet:
        writer = None
    if args.two_pass and os.path.exists(args.read) and not (os.path.isfile(args.read) or os.path.isdir(args.read)):
        return _err(f"-2 reads the file twice: {args.read} is not a regular file", EXIT_USAGE)
    follower = files = None
    names: list[Path] = []

    def unusable(message: str) -> int:
        for f in files or ():  # no --follow files for a file that could not be read
            f.close()
        for n in names:
            n.unlink(missing_ok=True)
        return _err(message, EXIT_UNUSABLE)

    if args.follow is not None:
        from mptcpspec.dissect.follow import Follower

        folder = Path(args.follow_dir)
        folder.mkdir(parents=True, exist_ok=True)
        names = [folder / f"mptcp-stream-{args.follow}-client.bin", folder / f"mptcp-stream-{args.follow}-server.bin"]
        files = [open(n, "wb") for n in names]
        follower = Follower(args.follow, *files)
    d = Dissection(args.read, verify=not args.no_verify, two_pass=args.two_pass)
    progress = _Progress(args.read, not args.no_progress)
    status = EXIT_OK
    count = 0
    first_ts = None
    # What the imports made lives to the end: no collection need look at it again.  The packets'
    # objects die young, freed as they go; the cyclic collector runs less often for them.  Both
    # undone after the loop, for a caller that runs this in its own process.
    gc_threshold, gc_frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(20000, 20, 20)
    try:
        if isinstance(writer, FieldsWriter) and follower is None and flt is None and not args.count and not progress.on:
            writer.write_all(d)  # the rows and nothing else: the writer's own loop
        else:
            for info in d:
                if follower is not None:
                    follower.feed(info)
                if progress.on and not info.number & 0x3FFF:
                    progress.update(d.reader, info.number)
                if first_ts is None:
                    first_ts = info.timestamp_ns
                    if isinstance(writer, TextWriter):
                        writer.first_ts = first_ts  # times are relative to the first frame, as tshark's
                if flt is not None and not flt(info):
                    continue
                count += 1
                if writer is not None:
                    writer.write(info)
                if args.count and count >= args.count:
                    break
    except CaptureError as e:
        progress.done()
        if d.frames == 0:
            return unusable(f"{args.read}: {e}")
        print(
            f"mptcpspec: {args.read}: {e} (after {d.frames} frames; the output above is complete up to there)",
            file=sys.stderr,
        )
        status = EXIT_DAMAGED
    except FileNotFoundError:
        return unusable(f"{args.read}: no such file")
    except IsADirectoryError:
        return unusable(f"{args.read}: is a directory")
    except PermissionError:
        return unusable(f"{args.read}: permission denied")
    finally:
        progress.done()
        gc.set_threshold(*gc_threshold)
        if not gc_frozen:
            gc.unfreeze()
    if writer is not None and hasattr(writer, "flush"):
        writer.flush()
    for p in d.problems:
        print(f"mptcpspec: {args.read}: {p}", file=sys.stderr)
        status = EXIT_DAMAGED
    _unsupported(args.read, d)
    if args.T == "text" and not args.count:
        out.write("\n".join(expert_summary(d.analyzer.experts)) + "\n")
    if follower is not None:
        reports = follower.finish()
        for f in files:
            f.close()
        if follower.conn is None:
            for n in names:
                n.unlink()
            streams = sum(c.stream is not None for c in d.connections())
            have = f"streams 0 to {streams - 1}" if streams else "none"
            return _err(f"no MPTCP stream {args.follow} in {args.read} ({have})", EXIT_UNUSABLE)
        if not follower.seen:
            print(f"mptcpspec: MPTCP stream {args.follow} carried no data in this capture", file=sys.stderr)
        for name, r in zip(names, reports):
            gaps = ", ".join(f"{n} octets at DSN {s}" for s, n in r.gaps) or "none"
            print(
                f"{name}: {r.written} octets from {r.segments} segments ({r.duplicate} duplicate); gaps: {gaps}"
                + (f"; {r.late} octets after their gap was given up" if r.late else "")
                + (f"; {r.cut} octets cut by the snapshot length" if r.cut else "")
                + (f"; {r.unmapped} octets without a known DSN" if r.unmapped else ""),
                file=sys.stderr,
            )
    return status


def _unsupported(path, d) -> None:
    """Say which frames were left undecoded for their link type (the file itself is fine)."""
    for linktype, n in sorted(d.unsupported.items()):
        print(
            f"mptcpspec: {path}: {n} frame(s) of link type {linktype}, which is not supported "
            f"(Ethernet, Linux cooked v1/v2, raw IP, BSD null/loopback are): not decoded",
            file=sys.stderr,
        )


def cmd_connections(args) -> int:
    from mptcpspec.dissect.pipeline import Dissection
    from mptcpspec.dissect.writers import write_connections

    d = Dissection(args.read, verify=not args.no_verify)
    progress = _Progress(args.read, not args.no_progress)
    status = EXIT_OK
    try:
        if progress.on:
            for info in d:
                if not info.number & 0x3FFF:
                    progress.update(d.reader, info.number)
        else:
            for _ in d:
                pass
    except CaptureError as e:
        progress.done()  # before the message (done again, harmlessly, on the way out)
        if d.frames == 0:
            return _err(f"{args.read}: {e}", EXIT_UNUSABLE)
        print(f"mptcpspec: {args.read}: {e} (after {d.frames} frames)", file=sys.stderr)
        status = EXIT_DAMAGED
    except FileNotFoundError:
        return _err(f"{args.read}: no such file", EXIT_UNUSABLE)
    except (IsADirectoryError, PermissionError) as e:
        return _err(f"{args.read}: {e.strerror}", EXIT_UNUSABLE)
    finally:
        progress.done()
    for p in d.problems:
        print(f"mptcpspec: {args.read}: {p}", file=sys.stderr)
        status = EXIT_DAMAGED
    _unsupported(args.read, d)
    write_connections([c.summary() for c in d.connections()], sys.stdout, as_json=args.json)
    return status


def add_parsers(sub) -> None:
    import argparse

    p = sub.add_parser(
        "dissect",
        help="dissect a pcap/pcapng file: MPTCP connections, checks, expert info",
        description="Dissect a capture like tshark does, with the MPTCP analysis tshark lacks: "
        "HMACs, DSS checksums, mappings, reinjections, closure state.",
        epilog=DISSECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-r", "--read", metavar="FILE", help="pcap or pcapng file")
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
    p.add_argument("-c", "--count", type=int, metavar="N", help="stop after N printed packets")
    p.add_argument("-q", "--quiet", action="store_true", help="print no packets (with --follow, or for the summary)")
    p.add_argument("--no-tree", action="store_true", help="-T text: summary lines only")
    p.add_argument("--no-verify", action="store_true", help="skip HMAC and checksum verification (faster)")
    p.add_argument(
        "-2",
        dest="two_pass",
        action="store_true",
        help="two passes, as tshark -2: fills mptcp.reinjected_in (reads the file twice)",
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
    c.add_argument("-r", "--read", required=True, metavar="FILE", help="pcap or pcapng file")
    c.add_argument("--json", action="store_true", help="one JSON object per connection per line")
    c.add_argument("--no-verify", action="store_true", help="skip HMAC and checksum verification")
    c.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    c.set_defaults(func=cmd_connections)
