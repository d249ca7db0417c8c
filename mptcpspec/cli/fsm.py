"""``mptcpspec fsm show|dot|check FILE``: the commands behind the ``fsm`` subcommand.

Exit status (:class:`~mptcpspec.cli.exitcode.ExitCode`): 0 done (``check``: every check passed;
``check --mutations``: every removal caught or justified); 1 a check failed (a removal not caught),
or the file has an error (its line and column are said); 2 usage error; 3 the file cannot be used
(missing, unreadable, not text).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mptcpspec.cli.common import CommandError, Subcommands
from mptcpspec.cli.exitcode import ExitCode

if TYPE_CHECKING:
    from mptcpspec.fsm.model import Machine

__all__ = ["add_parser", "cmd_check", "cmd_dot", "cmd_show", "main"]


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _machine(path: str) -> Machine:
    """The machine written in the file ``path``, parsed (its static errors are left to ``check``)."""
    from mptcpspec.fsm.parser import parse

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CommandError(ExitCode.UNUSABLE, f"{path}: not a text file") from None
    return parse(text, path)


def cmd_show(args: argparse.Namespace) -> int:
    m = _machine(args.file)
    title = f"{m.name}: {m.title}" if m.title else m.name
    _out(f"{title}" + (f" ({m.ref})" if m.ref else "") + f"  [{args.file}]")
    if m.doc:
        _out(f"  {m.doc}")
    _out(f"  initial {m.initial}; final {', '.join(m.finals)}")
    _out()
    _out(f"states ({len(m.states)}):")
    w = max(len(s.name) for s in m.states)
    for s in m.states:
        _out(f"  {s.name:<{w}}  {s.doc}".rstrip())
    groups = (
        ("signals", [(s.name + (" (discard)" if s.discard else ""), s.doc) for s in m.signals]),
        ("events", [(f"{loc.kind} {loc.name}", loc.doc) for loc in m.locals]),
        ("guards", [(g.name, g.doc) for g in m.guards]),
        ("actions", [(a.name, a.doc) for a in m.effects]),
    )
    for head, rows in groups:
        if rows:
            _out()
            _out(f"{head} ({len(rows)}):")
            w = max(len(r[0]) for r in rows)
            for name, doc in rows:
                _out(f"  {name:<{w}}  {doc}".rstrip())
    _out()
    _out(f"transitions ({len(m.transitions)} lines, {len(m.edges)} from single states):")
    srcs = [t.source or ("* except " + ", ".join(t.excepts) if t.excepts else "*") for t in m.transitions]
    ws = max(len(s) for s in srcs)
    wt = max(len(t.target) for t in m.transitions)
    for src, t in zip(srcs, m.transitions):
        ref = f"  [{t.ref}, line {t.line}]" if t.ref else f"  [line {t.line}]"
        _out(f"  {src:<{ws}} -> {t.target:<{wt}}  {t.label}{ref}")
    if m.checks:
        _out()
        _out(f"checks ({len(m.checks)}):")
        for c in m.checks:
            _out(f"  {c.name}: {c.doc}".rstrip(": "))
    return ExitCode.OK


def cmd_dot(args: argparse.Namespace) -> int:
    from mptcpspec.fsm.render import render

    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lower().lstrip(".") if args.output else ""
        fmt = (
            {"gv": "dot", "mmd": "mermaid", "md": "mermaid"}.get(suffix, suffix)
            if suffix in ("dot", "gv", "svg", "png", "mmd", "md", "mermaid")
            else "dot"
        )
    data = render(_machine(args.file), fmt)
    if args.output and args.output != "-":
        Path(args.output).write_bytes(data)
        _out(f"wrote {args.output} ({fmt}, {len(data)} bytes)")
    elif fmt == "png":
        sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data.decode())
    return ExitCode.OK


def cmd_check(args: argparse.Namespace) -> int:
    from mptcpspec.fsm.coverage import report as coverage_report
    from mptcpspec.fsm.explore import run_checks
    from mptcpspec.fsm.static import report

    if args.mutations:
        return _mutations(args.file)
    path = Path(args.file)
    m = _machine(args.file)
    failed = False
    _out(f"{m.name} ({path}): {len(m.states)} states, {len(m.transitions)} transition lines")
    _out("static:")
    static_ok = True
    for r in report(m):
        mark = "ok  " if r.ok else "FAIL"
        _out(f"  {mark} {r.name}: {r.summary}")
        for p in r.problems:
            _out(f"         {p}")
        static_ok &= r.ok
    failed |= not static_ok
    if not m.checks:
        _out("dynamic: no `check` lines in the spec")
    elif not static_ok:
        _out("dynamic: skipped (fix the static errors first)")
    else:
        _out("dynamic (two endpoints A and B, every interleaving):")
        outcomes = run_checks(m)
        for o in outcomes:
            _out(f"  {'ok  ' if o.ok else 'FAIL'} {o.summary()}")
            for v in o.violations:
                _out("\n".join("         " + line for line in v.format().splitlines()))
            failed |= not o.ok
        _out("over all runs:")
        for c in coverage_report(m, outcomes):
            _out(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.summary}")
            for p in c.problems:
                _out(f"         {p}")
            failed |= not c.ok
        marked = [t for t in m.transitions if t.redundant is not None]
        if marked:
            _out(f"redundant by the spec's own comment ({len(marked)} line(s)):")
            for t in marked:
                _out(f"  {m.file}:{t.line}: {t.redundant}")
    if args.promela and static_ok and m.checks:
        from mptcpspec.fsm.promela import spin_available, verify

        if not spin_available():
            _out("promela: skipped (spin or a C compiler is not installed; Debian: apt-get install spin gcc)")
        else:
            _out("promela (spin, an independent second checker: assertions and invalid end states):")
            for res in verify(m):
                _out(f"  {'ok  ' if res.ok else 'FAIL'} {res.summary()}")
                if not res.ok:
                    _out("\n".join("         " + line for line in res.detail.splitlines()[-12:]))
                failed |= not res.ok
    _out("result: " + ("FAILED" if failed else "all checks passed"))
    return ExitCode.DAMAGED if failed else ExitCode.OK


def _mutations(file: str) -> int:
    from mptcpspec.fsm.mutation import failing, markdown, mutants

    m = _machine(file)
    _out(f"{m.name} ({file}): {len(m.transitions)} transition lines, each removed in turn")
    broken = failing(m)
    if broken:
        _out(f"the machine as written fails: {', '.join(broken)} (see `mptcpspec fsm check {file}`);")
        _out("a removal counts as caught by what it adds to those findings")
    rows = mutants(m)
    for line in markdown(rows):
        _out(line)
    missed = [r for r in rows if r.verdict == "NOT CAUGHT"]
    marked = [r for r in rows if r.redundant is not None]
    caught = sum(1 for r in rows if r.caught_by)
    _out(f"caught: {caught} of {len(rows)}; redundant by the spec's own comment: {len(marked)}")
    for r in marked:
        _out(
            f"  {m.file}:{r.line}: {r.redundant}"
            + (f" (its removal is caught all the same: {', '.join(r.caught_by)})" if r.caught_by else "")
        )
    for r in missed:
        _out(f"  {m.file}:{r.line}: NOT CAUGHT: no check fails without this line; add a check, or say why it is there")
    _out(
        "result: "
        + (f"FAILED ({len(missed)} removal(s) not caught)" if missed else "every removal caught or justified")
    )
    return ExitCode.DAMAGED if missed else ExitCode.OK


def main(args: argparse.Namespace) -> int:
    command: dict[str, Callable[[argparse.Namespace], int]] = {"show": cmd_show, "dot": cmd_dot, "check": cmd_check}
    return command[args.fsm_command](args)


def add_parser(sub: Subcommands) -> None:
    """``mptcpspec fsm show|dot|check FILE``: the state machines of spec/*.fsm."""
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
    c = fsub.add_parser(
        "check",
        help="static checks, every `check` scenario over in-order and lossy channels, then checks over all runs",
    )
    c.add_argument("file", metavar="FILE", help="a .fsm file")
    c.add_argument(
        "--mutations",
        action="store_true",
        help="remove each transition line in turn and print which check catches it (exit 1 if one is not caught "
        "and its line has no `# redundant: why` comment)",
    )
    c.add_argument(
        "--promela",
        action="store_true",
        help="also export to Promela and verify with spin (needs spin and a C compiler)",
    )
    for a in (s, d, c):
        a.set_defaults(func=main)
