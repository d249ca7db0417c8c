"""``mptcpspec regen``: load ``spec/`` and (re)write every generated file.

The codecs and state machines go to ``mptcpspec/codec/generated/``; the exports for
other tools (``.ksy``, the Wireshark Lua plugin, the compiled Kaitai parsers) to
``mptcpspec/export/generated/``.  With ``out_dir`` everything goes to that one folder.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from mptcpspec.codec.regen import GENERATED as CODEC_GENERATED
from mptcpspec.codec.regen import default_spec_dir, load_spec, render_codecs
from mptcpspec.errors import SpecError

__all__ = ["EXPORT_GENERATED", "render", "render_compiled", "regen", "target_path"]

EXPORT_GENERATED = Path(__file__).parent / "generated"


def render(spec_dir: Path | None = None) -> dict[str, str]:
    """Generated file name -> source text, for every spec file: codecs, machines and exports."""
    from mptcpspec.export.ksy import render_ksy
    from mptcpspec.export.lua import render_lua

    spec_dir = Path(spec_dir) if spec_dir else default_spec_dir()
    modules = load_spec(spec_dir)
    out = render_codecs(spec_dir, modules)
    for name, text in {
        **render_ksy(modules["options.py"], modules["tcp_options.py"]),
        **render_lua(modules["options.py"]),
    }.items():
        if name in out:
            raise SpecError(f"{name}: an export would replace a generated module")
        out[name] = text
    return out


def render_compiled(rendered: dict[str, str]) -> dict[str, str] | None:
    """The Python parsers the pinned Kaitai Struct compiler makes of the .ksy files, under ``kaitai/``.

    ``None`` when the compiler is not installed.
    """
    from mptcpspec.export.ksc import compile_ksy, find_ksc

    ksc = find_ksc()
    if ksc is None:
        return None
    ksy = {n: t for n, t in rendered.items() if n.endswith(".ksy")}
    return {f"kaitai/{n}": t for n, t in compile_ksy(ksy, "python", ksc).items()}


def target_path(name: str, out_dir: Path | None = None) -> Path:
    """Where generated file ``name`` is written: ``out_dir``, else its wing's ``generated/``."""
    if out_dir is not None:
        return Path(out_dir) / name
    is_export = name.endswith((".ksy", ".lua")) or name.startswith("kaitai/")
    return (EXPORT_GENERATED if is_export else CODEC_GENERATED) / name


def regen(
    spec_dir: Path | None = None, out_dir: Path | None = None, check: bool = False, compiled: bool | None = None
) -> list[str]:
    """Write (or with ``check``, compare) the generated files; return the names that differ.

    The Kaitai Python parsers (``kaitai/*.py``) are made and checked when the Kaitai Struct
    compiler is installed (``compiled=None``), always (``True``: an error without it), or never.
    """
    stale = []
    files = render(spec_dir)
    if compiled is not False:
        more = render_compiled(files)
        if more is None and compiled:
            raise SpecError("the Kaitai Struct compiler is not installed (npm ci --prefix tools/ksc)")
        if more is None:
            sys.stderr.write(
                "note: kaitai/*.py left as they are: the Kaitai Struct compiler is not installed "
                "(npm ci --prefix tools/ksc)\n"
            )
        else:
            files.update(more)
    for name, text in files.items():
        target = target_path(name, out_dir)
        old = target.read_text() if target.is_file() else None
        if old == text:
            continue
        stale.append(name)
        if check:
            diff = difflib.unified_diff(
                (old or "").splitlines(True),
                text.splitlines(True),
                f"{target} (committed)",
                f"{target} (from spec)",
                n=1,
            )
            sys.stderr.writelines(list(diff)[:40])
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    return stale
