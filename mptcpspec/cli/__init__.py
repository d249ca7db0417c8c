"""The cli wing: the ``mptcpspec`` command line, the top of the package.

It holds thin commands only: each parses its arguments, calls the wings below (dissect, export,
codec, fsm, replay) and renders what they return; the work itself is theirs.  One exit-status
convention for every command, :class:`~mptcpspec.cli.exitcode.ExitCode` (0 done, 1 done on damaged
input or with a failed outcome, 2 usage error, 3 unusable input, 130 interrupted), and one mapping
from errors to it and to the one-line message ``mptcpspec: error: ...``
(:func:`~mptcpspec.cli.common.run_command`).  Every command that reads a capture opens it with
:func:`~mptcpspec.cli.common.open_capture` and reports how the read ended with
:func:`~mptcpspec.cli.common.report_read`, so a missing, foreign or truncated file gets the same
status and message from each.

Modules: this one (the parser, ``main``, and the ``decode``, ``options`` and ``regen`` commands),
:mod:`~mptcpspec.cli.dissect` (``dissect``, ``connections``), :mod:`~mptcpspec.cli.export`,
:mod:`~mptcpspec.cli.fsm`, :mod:`~mptcpspec.cli.replay`, :mod:`~mptcpspec.cli.common` and
:mod:`~mptcpspec.cli.exitcode`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Sequence

from mptcpspec import __version__
from mptcpspec.cli.common import PROG, CommandError, Subcommands, open_capture, report_read, run_command, spec_folder
from mptcpspec.cli.exitcode import ExitCode

__all__ = ["PROG", "build_parser", "main"]


def cmd_decode(args: argparse.Namespace) -> int:
    from mptcpspec.codec.options import decode_tcp_options, encode_option
    from mptcpspec.dissect.show import options_dict, options_tree

    text = "".join(args.hex).replace(":", "").replace(" ", "")
    if text.startswith(("0x", "0X")):
        text = text[2:]
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise CommandError(ExitCode.USAGE, f"not hexadecimal: {text[:60]!r}") from None
    if not data:
        raise CommandError(ExitCode.USAGE, "no octets given")
    area = decode_tcp_options(data, args.mptcp_version)  # a DecodeError: the octets are damaged
    if args.json:
        import json

        print(json.dumps(options_dict(area, encode_option)))
    else:
        print("\n".join(options_tree(area, encode_option)))
    return ExitCode.OK


def cmd_regen(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mptcpspec.export.regen import regen

    out = None if args.out is None else Path(args.out)
    stale = regen(spec_folder(args.spec), out, check=args.check)
    if args.check:
        if stale:
            raise CommandError(ExitCode.DAMAGED, f"generated code is stale: {', '.join(stale)} (run `{PROG} regen`)")
        print("generated code is up to date")
        return ExitCode.OK
    print(f"regenerated: {', '.join(stale)}" if stale else "nothing to do: generated code is up to date")
    return ExitCode.OK


def cmd_options(args: argparse.Namespace) -> int:
    from mptcpspec.dissect.optlist import list_options

    with open_capture(args.read) as f:
        result = list_options(f, as_json=args.json, out=sys.stdout)
    return report_read(args.read, result)


class _Version(argparse.Action):
    """``--version``: the version and the mode of the hot path (compiled, or pure Python and why)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from mptcpspec.dissect.hotpath import describe

        print(f"{PROG} {__version__} ({describe()})")
        parser.exit()


def _add_decode(sub: Subcommands) -> None:
    d = sub.add_parser(
        "decode",
        help="decode TCP/MPTCP options given in hex",
        description="Decode one option or a whole TCP options area given in hex (spaces and colons are ignored).",
    )
    d.add_argument("hex", nargs="+", help="option octets in hex, e.g. 1e0c0081...")
    d.add_argument("--json", action="store_true", help="one JSON object instead of a tree")
    d.add_argument(
        "-V",
        "--mptcp-version",
        type=int,
        choices=(0, 1),
        default=None,
        help="MPTCP version of the connection (tells ADD_ADDR v0 from v1; default: guess)",
    )
    d.set_defaults(func=cmd_decode)


def _add_options(sub: Subcommands) -> None:
    o = sub.add_parser("options", help="list the MPTCP options in a pcap/pcapng file")
    o.add_argument(
        "-r",
        "--read",
        required=True,
        metavar="FILE",
        help="pcap or pcapng file, or gzip/zstd/lz4 of one; - reads standard input",
    )
    o.add_argument("--json", action="store_true", help="one JSON object per option per line")
    o.set_defaults(func=cmd_options)


def _add_regen(sub: Subcommands) -> None:
    r = sub.add_parser("regen", help="regenerate the generated code (codec/generated, export/generated) from spec/")
    r.add_argument("--check", action="store_true", help="only check; exit 1 when the generated code is stale")
    r.add_argument("--spec", metavar="DIR", help="spec folder (default: the project's spec/)")
    r.add_argument(
        "--out", metavar="DIR", help="one output folder for every file (default: codec/generated and export/generated)"
    )
    r.set_defaults(func=cmd_regen)


def _add_export(sub: Subcommands) -> None:
    from mptcpspec.cli.export import add_parser

    add_parser(sub)


def _add_fsm(sub: Subcommands) -> None:
    from mptcpspec.cli.fsm import add_parser

    add_parser(sub)


def _add_dissect(sub: Subcommands) -> None:
    from mptcpspec.cli.dissect import add_parsers

    add_parsers(sub)


def _add_plot(sub: Subcommands) -> None:
    from mptcpspec.cli.plot import add_parser

    add_parser(sub)


def _add_pair(sub: Subcommands) -> None:
    from mptcpspec.cli.pair import add_parser

    add_parser(sub)


def _add_table(sub: Subcommands) -> None:
    from mptcpspec.cli.table import add_parsers

    add_parsers(sub)


def _add_replay(sub: Subcommands) -> None:
    from mptcpspec.cli.replay import add_parser

    add_parser(sub)


#: Who adds each command's parser, in the order ``--help`` lists them, with the commands it adds.
_COMMANDS: tuple[tuple[Callable[[Subcommands], None], tuple[str, ...]], ...] = (
    (_add_decode, ("decode",)),
    (_add_options, ("options",)),
    (_add_regen, ("regen",)),
    (_add_export, ("export",)),
    (_add_fsm, ("fsm",)),
    (_add_dissect, ("dissect", "connections")),
    (_add_plot, ("plot",)),
    (_add_pair, ("pair",)),
    (_add_table, ("table", "sql")),
    (_add_replay, ("replay",)),
)


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser, with every command (``commands`` None), or only those named (and
    the commands their modules add beside them): a parser for a command line that names its command
    first, which parses it as the whole parser does, and imports only that command's module."""
    p = argparse.ArgumentParser(prog=PROG, description="Multipath TCP from a formal spec to working tools.")
    p.add_argument(
        "--version", action=_Version, nargs=0, help="show the version and the mode (compiled or pure Python), then exit"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, names in _COMMANDS:
        if commands is None or any(n in commands for n in names):
            add(sub)
    return p


def _needed(argv: Sequence[str]) -> Collection[str] | None:
    """The commands a parser needs for ``argv`` (None: every one).  No option of ``mptcpspec`` itself
    takes a value, so a first word that is a command's name is the command; ``--version`` first is
    done before any command is looked at; anything else (help, a wrong name) needs them all."""
    if not argv:
        return None
    if argv[0] == "--version":
        return ()
    if any(argv[0] in names for _, names in _COMMANDS):
        return (argv[0],)
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: the process's); its exit status (a usage error that
    argparse finds exits at once with :attr:`ExitCode.USAGE`, argparse's own message)."""
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(_needed(argv)).parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
