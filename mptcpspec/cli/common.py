"""What every command shares: the error line, the one mapping from errors to exit codes, the one way
to open a capture and to report how its read ended, and the progress bar.

Every message goes to stderr, prefixed ``mptcpspec: ``; an error that stops a command is one line,
``mptcpspec: error: WHAT: WHY``.  A file that cannot be used (missing, a directory, unreadable, not
a capture) stops the command with :attr:`ExitCode.UNUSABLE`; a capture damaged part way (a record
cut short, corrupt framing after some frames) is read up to the damage, reported after the output,
and ends the command with :attr:`ExitCode.DAMAGED`.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from mptcpspec.cli.exitcode import ExitCode
from mptcpspec.errors import MptcpspecError

# The capture modules are imported where a command reads a capture: the commands that read none
# (decode, regen, export, fsm, --version) start without them.
if TYPE_CHECKING:
    from pathlib import Path  # imported where a path is made: a command that reads a capture needs none

    from mptcpspec.capture.stream import Input
    from mptcpspec.capture.writer import CaptureWriter
    from mptcpspec.dissect.outcome import ReadOutcome

__all__ = [
    "PROG",
    "CommandError",
    "Progress",
    "Subcommands",
    "draw_progress",
    "fail",
    "file_error",
    "frame_output",
    "note",
    "open_capture",
    "report_read",
    "run_command",
    "spec_folder",
    "wipe_progress",
]

PROG = "mptcpspec"


class Subcommands(Protocol):
    """Where a command module adds its subcommand: what ``ArgumentParser.add_subparsers`` returns."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


class CommandError(MptcpspecError):
    """Stops a command: ``message`` is printed as its error line and ``code`` is its exit status."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fail(message: str, code: ExitCode) -> ExitCode:
    """Print ``mptcpspec: error: message``; return ``code``."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def note(message: str) -> None:
    """Print ``mptcpspec: message``: something the user should know that does not stop the command."""
    print(f"{PROG}: {message}", file=sys.stderr)


def file_error(path: str | os.PathLike[str] | None, e: OSError) -> str:
    """``PATH: why`` for a file that could not be opened, read or written."""
    why = {
        FileNotFoundError: "no such file",
        FileExistsError: "exists and is not a folder",
        IsADirectoryError: "is a directory",
        NotADirectoryError: "a part of the path is not a folder",
        PermissionError: "permission denied",
    }.get(type(e), e.strerror or str(e))
    where = path if path is not None else e.filename
    return f"{os.fspath(where)}: {why}" if where is not None else why


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; every error it lets out becomes its message and exit status, the same for all:

    * :class:`CommandError`: its own code;
    * any other :class:`~mptcpspec.errors.MptcpspecError` (octets that do not decode, a spec with
      an error): :attr:`ExitCode.DAMAGED`, the input was read but is wrong;
    * a file that cannot be opened or read (:class:`OSError`): :attr:`ExitCode.UNUSABLE`;
    * Ctrl-C: :attr:`ExitCode.INTERRUPTED`; a closed output pipe (``| head``): :attr:`ExitCode.OK`.
    """
    try:
        return int(func(args))
    except CommandError as e:
        return fail(e.message, e.code)
    except MptcpspecError as e:
        return fail(str(e), ExitCode.DAMAGED)
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        return ExitCode.OK
    except OSError as e:
        return fail(file_error(None, e), ExitCode.UNUSABLE)
    except KeyboardInterrupt:  # pragma: no cover
        return ExitCode.INTERRUPTED


@contextmanager
def open_capture(path: str, *, twice: bool = False) -> Iterator[Input]:
    """The capture ``path`` (``-``: standard input), open for reading and decompressed when it is
    gzip, zstd or lz4 (:func:`~mptcpspec.capture.source.open_input`).  Every way it cannot be used
    stops the command with :attr:`ExitCode.UNUSABLE` and one message ``PATH: why``: missing, a
    directory, permission denied, unreadable, compressed without its optional module, and, raised in
    the ``with`` block before a frame was read, not a capture (a
    :class:`~mptcpspec.capture.pcap.CaptureError`: empty, foreign, a header the reader refuses).  A
    file cut inside a record, the first one included, is not unusable: the reader yields what is
    there and :func:`report_read` says where it ends (:attr:`ExitCode.DAMAGED`).
    ``twice``: it will be read twice, so it must be a regular file (else a usage error)."""
    from mptcpspec.capture.pcap import CaptureError
    from mptcpspec.capture.stream import MissingModuleError, open_input

    if twice:
        try:
            mode = os.stat(path).st_mode if path != "-" else 0
        except OSError:
            pass  # reported by the open below
        else:
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                what = "standard input" if path == "-" else path
                raise CommandError(ExitCode.USAGE, f"-2 reads the file twice: {what} is not a regular file")
    try:
        f = open_input(path)
    except OSError as e:
        raise CommandError(ExitCode.UNUSABLE, file_error(path, e)) from None
    except MissingModuleError as e:
        raise CommandError(ExitCode.UNUSABLE, f"{path}: {e}") from None
    with f:
        try:
            yield f
        except CaptureError as e:
            raise CommandError(ExitCode.UNUSABLE, f"{path}: {e}") from None


@contextmanager
def frame_output(path: str | None, file_format: str) -> Iterator[CaptureWriter | None]:
    """The ``-w`` file (``-``: standard output) in ``file_format``, closed complete on leaving,
    whatever stopped the command; None without ``-w``.  A file that cannot be made stops the
    command with :attr:`ExitCode.UNUSABLE` before anything is read."""
    if path is None:
        yield None
        return
    from mptcpspec.capture.writer import open_writer

    try:
        w = open_writer(path, file_format)
    except OSError as e:
        raise CommandError(ExitCode.UNUSABLE, file_error(path, e)) from None
    try:
        yield w
    finally:
        w.close()


def report_read(path: str, result: ReadOutcome) -> ExitCode:
    """Say on stderr how the read of ``path`` ended, after the output: the damage that ended it, the
    problems met, frames of link types not decoded.  :attr:`ExitCode.DAMAGED` when the file was
    damaged; else :attr:`ExitCode.UNDECODED` when frames of a link type not decoded were met; else
    :attr:`ExitCode.OK`."""
    from mptcpspec.capture.linktypes import linktype_name

    if result.damage is not None:
        note(f"{path}: {result.damage} (after {result.frames} frames; the output covers the frames before it)")
    for p in result.problems:
        note(f"{path}: {p}")
    for linktype, n in result.unsupported:  # the file itself is fine
        note(
            f"{path}: {n} frame{'s' if n != 1 else ''} of link type {linktype} ({linktype_name(linktype)}), "
            "which is not decoded: counted, not dissected"
        )
    if result.damaged:
        return ExitCode.DAMAGED
    return ExitCode.UNDECODED if result.unsupported else ExitCode.OK


def spec_folder(path: str | None) -> Path | None:
    """The ``--spec DIR`` of a command, checked to be a folder (None: the project's own)."""
    if path is None:
        return None
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise CommandError(ExitCode.UNUSABLE, f"{path}: no such folder")
    if not p.is_dir():
        raise CommandError(ExitCode.UNUSABLE, f"{path}: not a folder")
    return p


class Progress:
    """A one-line progress bar on stderr, when stderr is a terminal and the file is large: call it
    with (file offset reached, frames so far); :meth:`done` wipes the line."""

    def __init__(self, f: Input, enabled: bool) -> None:
        self.f = f
        self.total = f.size
        self.on = enabled and self.total > 8 << 20 and sys.stderr.isatty()
        self.last = 0.0
        self.start = time.monotonic()

    def __call__(self, position: int, frames: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        if self.f.compression is not None:
            position = self.f.compressed_offset  # the file's size is compressed octets
        draw_progress(min(position / self.total, 1.0) if self.total else 0, frames, now - self.start)

    def done(self) -> None:
        if self.on:
            wipe_progress()


def draw_progress(done: float, frames: int, seconds: float, where: str = "") -> None:
    """The progress line on stderr: a bar of ``done`` (0 to 1), ``where`` (such as the file being
    read), the frames so far and their rate."""
    rate = frames / max(seconds, 1e-9)
    sys.stderr.write(f"\r[{'#' * int(done * 30):<30}] {done * 100:5.1f}%  {where}{frames} frames  {rate:,.0f}/s ")
    sys.stderr.flush()


def wipe_progress(width: int = 72) -> None:
    """The progress line cleared (``width``: as long as the longest line drawn)."""
    sys.stderr.write("\r" + " " * width + "\r")
    sys.stderr.flush()
