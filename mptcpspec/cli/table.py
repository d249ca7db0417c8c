"""``mptcpspec table`` and ``mptcpspec sql``: capture archives as Parquet tables, and SQL on them."""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from typing import TYPE_CHECKING

from mptcpspec.cli.common import CommandError, Subcommands, draw_progress, note, wipe_progress
from mptcpspec.cli.exitcode import ExitCode

if TYPE_CHECKING:
    from mptcpspec.tables import Archive

__all__ = ["ArchiveProgress", "add_parsers", "cmd_sql", "cmd_table"]


def _files(patterns: list[str]) -> list[str]:
    """The files of ``-r``: each a path or a glob (sorted: rotated captures' names sort in time)."""
    out: list[str] = []
    for p in patterns:
        found = sorted(glob.glob(p)) if any(ch in p for ch in "*?[") else [p]
        if not found:
            raise CommandError(ExitCode.UNUSABLE, f"{p}: no such file")
        out += found
    return out


class ArchiveProgress:
    """A one-line progress bar across the archive's files on stderr (a terminal, 8 MB or more):
    the share of octets read, the file being read, the frames so far."""

    def __init__(self, paths: list[str], enabled: bool) -> None:
        self.sizes = {}
        for p in paths:
            try:
                self.sizes[p] = os.path.getsize(p)
            except OSError:
                self.sizes[p] = 0
        self.total = sum(self.sizes.values())
        self.on = enabled and self.total > 8 << 20 and sys.stderr.isatty()
        self.paths = paths
        self.last = 0.0
        self.start = time.monotonic()

    def __call__(self, archive: Archive, frames: int) -> None:
        now = time.monotonic()
        if not self.on or now - self.last < 0.2:
            return
        self.last = now
        k = len(archive.starts) - 1
        before = sum(self.sizes[p] for p in self.paths[:k])
        done = min((before + min(archive.position, self.sizes[self.paths[k]])) / self.total, 1.0)
        draw_progress(done, frames, now - self.start, f"file {k + 1}/{len(self.paths)}  ")

    def done(self) -> None:
        if self.on:
            wipe_progress(78)  # the file's number makes the line longer


def cmd_table(args: argparse.Namespace) -> int:
    from mptcpspec.tables import KINDS, TableError
    from mptcpspec.tables.jobs import table_archive

    if args.list:
        for kind in KINDS.values():
            print(f"{kind.name}: {kind.what}")
            for c in kind.columns:
                print(f"  {c.name}\t{c.type}\t{c.what}")
        return ExitCode.OK
    if not args.read or not args.output:
        raise CommandError(ExitCode.USAGE, "give the captures and the folder: -r FILE_OR_GLOB... -o DIR")
    kinds = args.tables.split(",") if args.tables else list(KINDS)
    fields = args.fields.split(",") if args.fields else None
    if args.workers < 1:
        raise CommandError(ExitCode.USAGE, f"--workers {args.workers}: 1 or more")
    files = _files(args.read)
    progress = ArchiveProgress(files, not args.no_progress and args.workers == 1 and args.scheduler is None)
    try:
        run = table_archive(
            files,
            args.output,
            kinds=kinds,
            fields=fields,
            on_error=args.on_error,
            workers=args.workers,
            scheduler=args.scheduler,
            say=note,
            progress=progress if progress.on else None,
        )
    except TableError as e:
        raise CommandError(ExitCode.UNUSABLE, str(e)) from None
    finally:
        progress.done()
    damaged = [r for r in run.reads if not r.whole]
    for r in damaged:
        note(f"{r.file}: {r.problem} (the tables hold its frames up to there)")
    rows = ", ".join(f"{k} {n}" for k, n in run.rows.items())
    note(f"{run.frames} frames from {len(run.reads)} file(s) to {args.output}: {rows}")
    return ExitCode.DAMAGED if damaged else ExitCode.OK


def cmd_sql(args: argparse.Namespace) -> int:
    from mptcpspec.tables import TableError
    from mptcpspec.tables.sql import run_sql, write_result

    try:
        result = run_sql(args.folder, args.query)
    except TableError as e:
        raise CommandError(ExitCode.UNUSABLE, str(e)) from None
    write_result(result, sys.stdout, args.format)
    return ExitCode.OK


def add_parsers(sub: Subcommands) -> None:
    t = sub.add_parser(
        "table",
        help="capture files as Parquet tables: packets, connections, subflows, mappings, reinjections, ...",
        description="Read capture files in order as one capture (rotated captures: a connection that crosses "
        "files is one connection) and write one Parquet dataset per kind of table to a folder, for mptcpspec sql "
        "or any Parquet reader. Needs mptcpspec[tables].",
    )
    t.add_argument("-r", "--read", nargs="+", metavar="FILE", help="capture files or globs, read in the order given")
    t.add_argument("-o", "--output", metavar="DIR", help="the folder to write the tables to")
    t.add_argument("--tables", metavar="KIND,...", help="only these tables (default: all; --list names them)")
    t.add_argument("--fields", metavar="FIELD,...", help="the packet columns: dissect's field names")
    t.add_argument(
        "--on-error",
        choices=("skip", "stop"),
        default="skip",
        help="a damaged file: keep its frames up to the damage and go on (skip, default), or stop",
    )
    t.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="N worker processes on a local Dask cluster (default 1: this process); needs mptcpspec[dask]",
    )
    t.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="send the job to this Dask scheduler's workers (they must read the files and write the folder)",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    t.add_argument("--list", action="store_true", help="list the tables and their columns, then exit")
    t.set_defaults(func=cmd_table)
    s = sub.add_parser(
        "sql",
        help="SQL on the tables of mptcpspec table (DuckDB, embedded)",
        description="Run a SQL query on the tables mptcpspec table wrote: each is a view of its name "
        "(packets, connections, subflows, mappings, reinjections, checks, experts, events).",
    )
    s.add_argument("folder", metavar="DIR", help="the folder mptcpspec table wrote")
    s.add_argument("query", metavar="QUERY", help='a query, such as "SELECT * FROM connections"')
    s.add_argument("--format", choices=("table", "csv", "json"), default="table", help="the output (default: table)")
    s.set_defaults(func=cmd_sql)
