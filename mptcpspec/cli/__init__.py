"""The ``mptcpspec`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from mptcpspec import __version__
from mptcpspec.errors import MptcpspecError

PROG = "mptcpspec"


def _fail(msg: str, code: int = 1) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return code


def cmd_decode(args) -> int:
    from mptcpspec.codec.options import decode_tcp_options, encode_option
    from mptcpspec.dissect.show import option_dict, options_tree

    text = "".join(args.hex).replace(":", "").replace(" ", "")
    if text.startswith(("0x", "0X")):
        text = text[2:]
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return _fail(f"not hexadecimal: {text[:60]!r}", 2)
    if not data:
        return _fail("no octets given", 2)
    area = decode_tcp_options(data, args.mptcp_version)
    if args.json:
        out, off = [], 0
        for opt in area.options:
            n = 1 if opt.KIND in (0, 1) else len(encode_option(opt))
            out.append(option_dict(opt, off, n))
            off += n
        print(
            json.dumps(
                {"size": area.size, "space_left": area.space_left, "options": out, "padding": area.padding.hex()}
            )
        )
    else:
        print("\n".join(options_tree(area, encode_option)))
    return 0


def cmd_regen(args) -> int:
    from mptcpspec.export.regen import regen

    stale = regen(args.spec, args.out, check=args.check)
    if args.check:
        if stale:
            return _fail(f"generated code is stale: {', '.join(stale)} (run `{PROG} regen`)")
        print("generated code is up to date")
        return 0
    print(f"regenerated: {', '.join(stale)}" if stale else "nothing to do: generated code is up to date")
    return 0


def cmd_options(args) -> int:
    from mptcpspec.dissect.optlist import list_options

    return list_options(args.read, as_json=args.json, out=sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Multipath TCP from a formal spec to working tools.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    o = sub.add_parser("options", help="list the MPTCP options in a pcap/pcapng file")
    o.add_argument("-r", "--read", required=True, metavar="FILE", help="capture file")
    o.add_argument("--json", action="store_true", help="one JSON object per option per line")
    o.set_defaults(func=cmd_options)

    r = sub.add_parser("regen", help="regenerate mptcpspec/generated/ from spec/")
    r.add_argument("--check", action="store_true", help="only check; exit 1 when the generated code is stale")
    r.add_argument("--spec", metavar="DIR", help="spec folder (default: the project's spec/)")
    r.add_argument("--out", metavar="DIR", help="output folder (default: mptcpspec/generated/)")
    r.set_defaults(func=cmd_regen)
    from mptcpspec.cli.export import add_parser as add_export

    add_export(sub)
    _add_fsm_parser(sub)
    from mptcpspec.cli.dissect import add_parsers

    add_parsers(sub)
    try:
        from mptcpspec.cli.replay import add_parser as add_replay
    except ImportError:  # pragma: no cover - an install without the replay package
        pass
    else:
        add_replay(sub)
    return p


def _add_fsm_parser(sub) -> None:
    """``mptcpspec fsm show|dot|check FILE``: the state machines of spec/*.fsm."""

    def run(args) -> int:
        from mptcpspec.cli.fsm import main as fsm_main

        return fsm_main(args)

    f = sub.add_parser(
        "fsm",
        help="show, draw or check a state machine (spec/*.fsm)",
        description="State machines written in the DSL of spec/*.fsm.",
    )
    fsub = f.add_subparsers(dest="fsm_command", required=True, metavar="ACTION")
    s = fsub.add_parser("show", help="print states, signals, events and transitions")
    s.add_argument("file", metavar="FILE", help="a .fsm file, e.g. spec/closure.fsm")
    d = fsub.add_parser("dot", help="draw the machine: DOT (default), SVG or PNG (needs Graphviz), Mermaid")
    d.add_argument("file", metavar="FILE", help="a .fsm file")
    d.add_argument("-o", "--output", metavar="OUT", help="output file (default: standard output)")
    d.add_argument(
        "--format",
        choices=("dot", "svg", "png", "mermaid"),
        default=None,
        help="picture format (default: from the OUT suffix, else dot)",
    )
    c = fsub.add_parser("check", help="static checks, then every `check` scenario over in-order and lossy channels")
    c.add_argument("file", metavar="FILE", help="a .fsm file")
    c.add_argument(
        "--promela",
        action="store_true",
        help="also export to Promela and verify with spin (needs spin and a C compiler)",
    )
    for a in (s, d, c):
        a.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MptcpspecError as e:
        return _fail(str(e))
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        return 0
    except OSError as e:
        return _fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "))
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
