"""The Kaitai Struct compiler, as ``mptcpspec regen`` and the tests run it.

The pinned compiler (:data:`mptcpspec.export.ksy.KSC_VERSION`) is the npm
package ``kaitai-struct-compiler``, driven by ``tools/ksc/ksc.js`` of a source
checkout (``npm ci --prefix tools/ksc`` installs it).  ``MPTCPSPEC_KSC`` may
name another copy of that script.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mptcpspec.errors import SpecError

__all__ = ["find_ksc", "compile_ksy", "KSC_VERSION", "KSC_TARGETS"]

#: The Kaitai Struct compiler the exported files are compiled and tested with (tools/ksc).
KSC_VERSION = "0.11.0"
#: Its targets.
KSC_TARGETS = (
    "construct",
    "cpp_stl",
    "csharp",
    "go",
    "graphviz",
    "html",
    "java",
    "javascript",
    "lua",
    "nim",
    "perl",
    "php",
    "python",
    "ruby",
    "rust",
)

_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "ksc" / "ksc.js"


def find_ksc() -> list[str] | None:
    """The command that runs the pinned compiler, or ``None`` when it is not installed."""
    node = shutil.which("node")
    script = Path(os.environ.get("MPTCPSPEC_KSC", _SCRIPT))
    if node is None or not script.is_file():
        return None
    if not (script.parent / "node_modules" / "kaitai-struct-compiler").is_dir():
        return None
    return [node, str(script)]


def compile_ksy(files: dict[str, str], target: str, ksc: list[str] | None = None) -> dict[str, str]:
    """Compile ``{name.ksy: text}`` (imports resolved among them) for ``target``; ``{file: source}``."""
    import subprocess
    import tempfile

    ksc = ksc or find_ksc()
    if ksc is None:
        raise SpecError("the Kaitai Struct compiler is not installed (npm ci --prefix tools/ksc)")
    with tempfile.TemporaryDirectory(prefix="mptcpspec-ksc-") as tmp:
        src, out = Path(tmp, "src"), Path(tmp, "out")
        src.mkdir()
        for name, text in files.items():
            (src / name).write_text(text)
        r = subprocess.run(
            [*ksc, "--target", target, "--outdir", str(out), *sorted(str(src / n) for n in files)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise SpecError(f"kaitai-struct-compiler failed: {r.stderr.strip() or r.stdout.strip()}")
        return {p.name: p.read_text() for p in sorted(out.iterdir())}
