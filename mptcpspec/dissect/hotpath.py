"""The compiled hot path, where it was built: which mode this install runs in, and the engine for a
``-T fields`` run that it can take.

``pip install .`` compiles :mod:`mptcpspec.dissect.native` (Cython) where a C compiler exists; without
one the package is pure Python.  ``MPTCPSPEC_PURE=1`` in the environment makes an install with the
extension run the pure-Python path too: the reference, whose output the compiled path must equal.

>>> MODE in ("compiled", "pure")
True
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mptcpspec.dissect.pipeline import Dissection
    from mptcpspec.dissect.writers import FieldsWriter

__all__ = ["MODE", "Engine", "describe", "fields_engine", "summary_engine"]


class Engine(Protocol):
    """A compiled ``-T fields`` run: every frame read, its row written."""

    def run(self) -> None: ...


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get("MPTCPSPEC_PURE", "") not in ("", "0"):
        return None, "MPTCPSPEC_PURE is set"
    try:
        from mptcpspec.dissect import native  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None, "the compiled hot path was not built"
    return native, ""


_NATIVE, _WHY = _load()
#: "compiled" when the compiled hot path runs, else "pure"
MODE = "compiled" if _NATIVE is not None else "pure"


def describe() -> str:
    """The mode as ``mptcpspec --version`` names it."""
    return "compiled hot path" if _NATIVE is not None else f"pure Python: {_WHY}"


def fields_engine(d: Dissection, writer: FieldsWriter) -> Engine | None:
    """The compiled engine for writing every row of ``d`` with ``writer``, or None where this run
    needs what only the Python path has (a field or an output setting it does not write, the TCP
    analysis, two passes, a live capture...)."""
    native = _NATIVE
    if native is None or writer.row is None or not d.plain or d.analyzer.tcp.enabled:
        return None
    from mptcpspec.dissect.optionfields import option_cells

    kinds_of: dict[str, int] = native.FIELD_KINDS
    opt_names, cells, _ = option_cells(writer.names, writer.agg)
    kinds = []
    for n in writer.names:
        k = kinds_of.get(n)
        if k is None:
            if n not in opt_names:
                return None
            k = native.K_OPTION_BASE + opt_names.index(n)
        kinds.append(k)
    engine: Engine = native.FieldsEngine(d, writer, kinds, cells, writer.row, opt_names)
    return engine


def summary_engine(d: Dissection) -> Engine | None:
    """The compiled engine for reading the whole of ``d`` with no output (the analysis of
    ``connections``: its summaries, the subflow TCP analysis included), or None."""
    native = _NATIVE
    if native is None or not d.plain:
        return None
    engine: Engine = native.FieldsEngine(d, None, [], None, None)
    return engine
