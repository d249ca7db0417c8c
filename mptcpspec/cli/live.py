"""``mptcpspec dissect -i IFACE`` and ``-D``: live capture, printed as it comes, recorded, or both.

Exit status: 0 after a stop asked for (``-c``, ``-a``, Ctrl-C, SIGTERM); 1 when an interface failed
during the capture (deleted, down: what was read before it is printed and written); 2 for a usage
error (a capture filter that does not compile included); 3 when the capture cannot start (libpcap
missing, no such interface, no permission); 4 when frames of a link type not decoded were captured.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from mptcpspec.capture.live import (
    DEFAULT_SNAPLEN,
    CaptureFilterError,
    InterfaceStats,
    LiveCapture,
    LiveCaptureError,
    list_interfaces,
    stop_on_signals,
)
from mptcpspec.capture.writer import CaptureWriter, LinkTypeError, WriteError, open_writer
from mptcpspec.cli.common import CommandError, file_error, note, report_read
from mptcpspec.cli.exitcode import ExitCode

if TYPE_CHECKING:
    from mptcpspec.dissect.writers import PacketWriter

__all__ = ["capturing_on", "cmd_live", "parse_autostop"]


def parse_autostop(values: list[str] | None) -> tuple[int | None, float | None]:
    """(packets, seconds) of tshark's ``-a packets:N`` and ``-a duration:S`` (None: not given)."""
    packets: int | None = None
    seconds: float | None = None
    for v in values or []:
        key, _, val = v.partition(":")
        try:
            if key == "packets" and int(val) > 0:
                packets = int(val) if packets is None else min(packets, int(val))
                continue
            if key == "duration" and float(val) > 0:
                seconds = float(val) if seconds is None else min(seconds, float(val))
                continue
        except ValueError:
            pass
        raise CommandError(ExitCode.USAGE, f"-a {v}: expected duration:SECONDS or packets:N, more than 0")
    return packets, seconds


def capturing_on(names: list[str]) -> str:
    """tshark's ``Capturing on 'a', 'b', and 'c'``."""
    out = ""
    for i, name in enumerate(names):
        if i:
            out += ("," if len(names) > 2 else "") + " " + ("and " if i == len(names) - 1 else "")
        out += f"'{name}'"
    return f"Capturing on {out}"


def _check(args: argparse.Namespace) -> None:
    """Usage errors of a live capture, before anything is opened."""
    for opt, given, why in (
        ("-2", args.two_pass, "a live capture is read once"),
        ("--follow", args.follow is not None, "capture with -w FILE, then --follow N -r FILE"),
    ):
        if given:
            raise CommandError(ExitCode.USAGE, f"{opt} cannot go with -i: {why}")
    if args.snapshot_length is not None and args.snapshot_length < 0:
        raise CommandError(ExitCode.USAGE, f"-s {args.snapshot_length}: the snapshot length is 0 (the most) or more")
    if args.buffer_size is not None and args.buffer_size <= 0:
        raise CommandError(ExitCode.USAGE, f"-B {args.buffer_size}: the buffer size is 1 MiB or more")
    if args.count is not None and args.count <= 0:
        raise CommandError(ExitCode.USAGE, f"-c {args.count}: the packet count is 1 or more")


def _open(args: argparse.Namespace) -> LiveCapture:
    packets, seconds = parse_autostop(args.autostop)
    counts = [n for n in (args.count, packets) if n]
    try:
        return LiveCapture(
            args.interface,
            snaplen=args.snapshot_length or DEFAULT_SNAPLEN,
            promisc=not args.no_promiscuous_mode,
            buffer_mib=args.buffer_size,
            bpf=args.capture_filter,
            count=min(counts) if counts else None,
            duration=seconds,
        )
    except CaptureFilterError as e:
        raise CommandError(ExitCode.USAGE, str(e)) from None
    except LiveCaptureError as e:
        raise CommandError(ExitCode.UNUSABLE, str(e)) from None


def _record(cap: LiveCapture, out: CaptureWriter) -> None:
    """Record only: what libpcap dumps goes straight to the file; the running count on a terminal."""
    tty = sys.stderr.isatty()
    shown = 0.0
    out.flush()  # the header and the interfaces
    write = out.stream.write
    for data in cap.records(out.file_format):
        write(data)
        if tty and time.monotonic() - shown > 0.2:
            shown = time.monotonic()
            sys.stderr.write(f"\r{cap.captured} ")
            sys.stderr.flush()
    if tty:
        sys.stderr.write("\r")


def _report(cap: LiveCapture, stats: list[InterfaceStats]) -> None:
    """tshark's closing lines: packets captured, then the kernel's drops for each interface."""
    n = cap.frames
    print(f"{n} packet{'s' if n != 1 else ''} captured", file=sys.stderr)
    for s in stats:
        if s.dropped is None:
            print(f"the kernel's drop count of {s.name} is not known", file=sys.stderr)
            continue
        line = f"{s.dropped} packet{'s' if s.dropped != 1 else ''} dropped from {s.name}"
        if s.interface_dropped:
            line += f" ({s.interface_dropped} more dropped by the interface)"
        print(line, file=sys.stderr)


def cmd_live(args: argparse.Namespace) -> int:
    """``-D``: list the interfaces; ``-i``: capture (see the module for the exit status)."""
    if args.list_interfaces:
        try:
            devices = list_interfaces()
        except LiveCaptureError as e:
            raise CommandError(ExitCode.UNUSABLE, str(e)) from None
        for i, dev in enumerate(devices, 1):
            print(f"{i}. {dev.name}" + (" (Loopback)" if dev.loopback else ""))
        return ExitCode.OK
    _check(args)
    record_only = args.write is not None and not args.print_packets
    keep = None
    writer: PacketWriter | None = None
    if not record_only:
        from mptcpspec.cli.dissect import packet_writer  # the same -T, -e, -E and -q as -r

        if args.filter:
            from mptcpspec.dissect.filters import FilterError, compile_filter

            try:
                keep = compile_filter(args.filter)
            except FilterError as e:
                raise CommandError(ExitCode.USAGE, str(e)) from None
        writer = packet_writer(args)
        if args.write == "-" and writer is not None:
            raise CommandError(ExitCode.USAGE, "-w - writes the capture to standard output: add -q to print no packets")
    cap = _open(args)
    status: int = ExitCode.OK
    try:
        try:
            out = None if args.write is None else open_writer(args.write, args.file_format, cap.interfaces)
        except OSError as e:
            raise CommandError(ExitCode.UNUSABLE, file_error(args.write, e)) from None
        except WriteError as e:
            raise CommandError(ExitCode.USAGE, f"{args.write}: {e}") from None
        print(capturing_on(cap.names), file=sys.stderr, flush=True)
        d = None
        try:
            with stop_on_signals(cap):
                if out is not None and record_only:
                    _record(cap, out)
                else:
                    from mptcpspec.dissect.pipeline import Dissection
                    from mptcpspec.dissect.reading import dissect_capture

                    d = Dissection(cap, verify=not args.no_verify)
                    result = dissect_capture(
                        d,
                        writer=writer,
                        keep=keep,
                        frames_out=None if out is None else out.write,
                        line_buffered=args.line_buffered,
                    )
        except LinkTypeError as e:
            raise CommandError(ExitCode.USAGE, f"{args.write}: {e}") from None
        finally:
            cap.close()
            if out is not None:
                for i, s in enumerate(cap.stats):
                    out.statistics(i, s.received, s.dropped, time.time_ns())
                out.close()
        if d is not None:
            status = report_read(", ".join(cap.names), result)
            if args.T == "text" and not args.count and args.write != "-":
                from mptcpspec.dissect.writers import expert_summary

                sys.stdout.write("\n".join(expert_summary(d.analyzer.experts)) + "\n")
                sys.stdout.flush()
    finally:
        cap.close()
    _report(cap, cap.stats)
    if cap.failure is not None:
        note(f"{cap.failure}; the capture has stopped (everything read before it was kept)")
        return ExitCode.DAMAGED
    return status
