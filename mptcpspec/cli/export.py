"""``mptcpspec export ksy|wireshark -o DIR``: the generated codecs for other tools.

Exit status (:class:`~mptcpspec.cli.exitcode.ExitCode`): 0 done; 1 the ``--spec`` folder has an
error; 2 usage error; 3 ``--spec`` is no folder, or the output folder cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mptcpspec.cli.common import Subcommands, spec_folder
from mptcpspec.cli.exitcode import ExitCode

__all__ = ["add_parser", "run"]


def _files(spec: Path | None, what: str) -> dict[str, str]:
    """The exported files: the committed ones, or freshly rendered from ``spec``."""
    from mptcpspec.export.regen import EXPORT_GENERATED, render, render_compiled

    names = {"ksy": ("mptcp_options.ksy", "tcp_options.ksy"), "wireshark": ("mptcpspec.lua",)}[what]
    if spec is None:
        out = {n: (EXPORT_GENERATED / n).read_text() for n in names}
        if what == "ksy":
            for n in ("mptcp_options.py", "tcp_options.py"):
                out[n] = (EXPORT_GENERATED / "kaitai" / n).read_text()
        return out
    rendered = render(spec)
    out = {n: rendered[n] for n in names}
    if what == "ksy":
        compiled = render_compiled(rendered)
        if compiled is None:
            sys.stderr.write(
                "note: no Python parsers: the Kaitai Struct compiler is not installed (npm ci --prefix tools/ksc)\n"
            )
        else:
            out.update({n.split("/", 1)[1]: t for n, t in compiled.items()})
    return out


def run(args: argparse.Namespace) -> int:
    from mptcpspec.export.ksc import KSC_VERSION, compile_ksy

    out = Path(args.output)
    files = _files(spec_folder(args.spec), args.what)  # a SpecError: the spec has an error
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
        print(out / name)
    if args.what == "ksy":
        ksy = {n: t for n, t in files.items() if n.endswith(".ksy")}
        for target in args.target or ():
            for name, text in compile_ksy(ksy, target).items():
                (out / target).mkdir(exist_ok=True)
                (out / target / name).write_text(text)
                print(out / target / name)
        if not args.target:
            print(
                f"# compile for your language: kaitai-struct-compiler {KSC_VERSION} "
                f"-t LANG {out / 'tcp_options.ksy'} {out / 'mptcp_options.ksy'}",
                file=sys.stderr,
            )
    else:
        print(f"# load it: tshark -X lua_script:{out / 'mptcpspec.lua'} -r FILE -Y mptcpspec -V", file=sys.stderr)
    return ExitCode.OK


def add_parser(sub: Subcommands) -> None:
    e = sub.add_parser(
        "export",
        help="write the Kaitai Struct files or the Wireshark Lua plugin",
        description="Codecs for other tools, generated from spec/: 'ksy' writes "
        "mptcp_options.ksy and tcp_options.ksy with their Python parsers "
        "(kaitaistruct 0.11); 'wireshark' writes the Lua plugin mptcpspec.lua.",
    )
    e.add_argument("what", choices=("ksy", "wireshark"))
    e.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if needed)")
    e.add_argument("--spec", metavar="DIR", help="render from this spec folder instead of the shipped files")
    from mptcpspec.export.ksc import KSC_TARGETS

    e.add_argument(
        "-t",
        "--target",
        action="append",
        metavar="LANG",
        choices=KSC_TARGETS,
        help=f"ksy: also compile for LANG with the pinned compiler (repeatable; {', '.join(KSC_TARGETS)})",
    )
    e.set_defaults(func=run)  # errors: mapped by cli.common.run_command
