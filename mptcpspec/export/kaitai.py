"""The Kaitai Struct parsers compiled from the generated .ksy files, ready to import.

``mptcpspec regen`` writes ``mptcp_options.ksy`` and ``tcp_options.ksy`` and,
with the pinned Kaitai Struct compiler, their Python parsers; they need the
``kaitaistruct`` runtime (``pip install 'mptcpspec[kaitai]'``)::

    from kaitaistruct import KaitaiStream, BytesIO
    from mptcpspec.export.kaitai import load
    k = load()
    opt = k.MptcpOptions(KaitaiStream(BytesIO(bytes.fromhex("1e0c1001e47f01421b665a18"))))
    opt.option.format, opt.option.body.token      # ('mp_join_syn', 3833528642)

The parsers import each other by their top-level names, as the compiler
writes them; :func:`load` imports them from a folder without touching
``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

from mptcpspec.errors import SpecError

__all__ = ["load", "KAITAI_DIR"]

KAITAI_DIR = Path(__file__).parent / "generated" / "kaitai"


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"{path}: cannot be loaded as a Python module")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load(directory: Path | str | None = None) -> SimpleNamespace:
    """``MptcpOptions`` and ``TcpOptions`` from the parsers in ``directory`` (default: the shipped ones)."""
    d = Path(directory) if directory else KAITAI_DIR
    try:
        import kaitaistruct  # noqa: F401
    except ImportError as exc:
        raise SpecError("the Kaitai parsers need the kaitaistruct runtime: pip install kaitaistruct==0.11") from exc
    if not (d / "mptcp_options.py").is_file():
        raise SpecError(f"no compiled Kaitai parsers in {d} (mptcpspec regen with the compiler installed)")
    mptcp = _import("mptcp_options", d / "mptcp_options.py")
    saved = sys.modules.get("mptcp_options")
    sys.modules["mptcp_options"] = mptcp
    try:
        tcp = _import("tcp_options", d / "tcp_options.py")
    finally:
        if saved is None:
            del sys.modules["mptcp_options"]
        else:
            sys.modules["mptcp_options"] = saved
    return SimpleNamespace(
        MptcpOptions=mptcp.MptcpOptions, TcpOptions=tcp.TcpOptions, mptcp_options=mptcp, tcp_options=tcp
    )
