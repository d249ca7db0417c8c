"""A field defined once: one Python expression gives both its values and its ``-T fields`` cell.

A field's definition (:class:`FieldDef`) is the source text of an expression of ``i``, the
:class:`~mptcpspec.analysis.model.PacketInfo`, and ``p``, its :class:`~mptcpspec.capture.packets.Packet`
(never None in it: frames without TCP have no value, unless ``every`` or ``other`` say otherwise).
Its forms:

* one value: a ``str`` expression; where the field has no value it gives ``NONE`` (a conditional
  expression such as ``str(p.src) if p.version == 4 else NONE``);
* a list of values: an expression in brackets (a list display or comprehension), with an optional
  ``when``, a quick test without which the list is empty;
* one value per element ``x`` of a sequence ``each`` (``value`` in ``x``, ``NONE`` for none).

From it come two pieces of code: :func:`getter_source`, the field's ``get`` (the list of values,
``NONE`` read as None), and :func:`cell`, the expression that ``-T fields`` inlines in its row
function for TCP packets (the values joined with ``AGG``, ``NONE`` read as ``''``, one element of
``each`` taken without a list).  Both are compiled by :func:`compile_getters` and the row compiler,
with the names of the environment given here (option classes, key functions).  The option fields
use the same forms, as expressions of ``o``, one MPTCP option.

Names the expressions may bind with ``:=``: ``v``, ``c``, ``sf``; ``_v``, ``_s`` and ``x`` are the
generated code's; ``i``, ``p``, ``o``, ``m`` and names ending in a digit belong to the row function.
"""

from __future__ import annotations

import marshal
import os
import re
import sys
import zlib
from collections.abc import Callable, Mapping
from types import CodeType

from mptcpspec.records import dataclass

__all__ = ["FieldDef", "NONE", "cell", "compile_getters", "getter_source", "is_list"]

#: In a definition: the field has no value here.
NONE = "NONE"
_NONE = re.compile(r"\bNONE\b")
_X = re.compile(r"\bx\b")


@dataclass(frozen=True, slots=True)
class FieldDef:
    """The one definition of a field (see the module's docstring for the forms of ``value``)."""

    name: str
    description: str
    value: str
    source: str = "wireshark"  #: "wireshark" (Wireshark 4.0's name and meaning) or "mptcpspec"
    when: str | None = None  #: for a list value: a quick test; false means no value
    each: str | None = None  #: a sequence: ``value`` is taken for each element ``x`` of it
    every: bool = False  #: the same expression holds on frames without TCP (it must not use ``p``)
    other: str | None = None  #: the expression for frames without TCP, when it differs (None: no value)
    #: a list expression for a TCP packet with encapsulation layers (``p.tunnel``), when it differs
    tunnel: str | None = None


def _cached_code(src: str, filename: str) -> CodeType:
    """``compile(src, filename, "exec")``, read from ``__pycache__`` when a run before compiled the same
    source with this Python (compiling every field's getter is most of the dissector's start), and
    written there for the next run unless bytecode is not written (``sys.dont_write_bytecode``)."""
    name = f"fieldgetters-{zlib.crc32(src.encode()):08x}.{sys.implementation.cache_tag}.bin"  # one per source
    folder = os.path.join(os.path.dirname(__file__), "__pycache__")  # (os.path: pathlib costs a short run 4 ms)
    cache = os.path.join(folder, name)
    try:
        with open(cache, "rb") as f:
            kept_src, code = marshal.loads(f.read())
        if kept_src == src and isinstance(code, CodeType):
            return code
    except (OSError, ValueError, EOFError, TypeError):
        pass  # none yet, or not this source's
    code = compile(src, filename, "exec")
    if not sys.dont_write_bytecode:
        try:
            os.makedirs(folder, exist_ok=True)
            part = f"{cache[: -len('.bin')]}.{os.getpid()}.tmp"
            with open(part, "wb") as f:
                f.write(marshal.dumps((src, code)))
            os.replace(part, cache)
        except OSError:
            pass  # a read-only install: compiled on each start
    return code


def is_list(value: str) -> bool:
    """A definition in brackets gives a list of values; any other gives one (or ``NONE``)."""
    return value.startswith("[")


def _as_none(expr: str) -> str:
    return _NONE.sub("None", expr)


def _as_empty(expr: str) -> str:
    return _NONE.sub("''", expr)


def values_expr(value: str, when: str | None = None, each: str | None = None) -> str:
    """The list of values of a definition, as an expression."""
    if each is not None:
        if NONE in value:
            return f"[_v for x in {each} if (_v := ({_as_none(value)})) is not None]"
        return f"[{value} for x in {each}]"
    if is_list(value):
        return value if when is None else f"({value} if {when} else [])"
    if NONE in value:
        return f"([] if (_v := ({_as_none(value)})) is None else [_v])"
    return f"[{value}]"


def cell(value: str, when: str | None = None, each: str | None = None, tunnel: str | None = None) -> str:
    """The printed cell of a definition in the default output mode (every occurrence, joined with
    ``AGG``, no quotes), as an expression for a TCP packet."""
    if tunnel is not None:
        return f"(AGG.join({tunnel}) if p.tunnel else {cell(value, when, each)})"
    if each is not None:
        one = _as_empty(_X.sub("_s[0]", value))
        rest = values_expr(value, each="_s")
        return f"('' if not (_s := {each}) else ({one}) if len(_s) == 1 else AGG.join({rest}))"
    if is_list(value):
        return f"AGG.join({value})" if when is None else f"(AGG.join({value}) if {when} else '')"
    return f"({_as_empty(value)})"


def getter_source(fname: str, d: FieldDef) -> str:
    """``def fname(i): ...``: the field's ``get``, the list of its values on one PacketInfo."""
    tcp = values_expr(d.value, d.when, d.each)
    if d.every:
        return f"def {fname}(i):\n    return {tcp}\n"
    other = "[]" if d.other is None else values_expr(d.other)
    head = f"def {fname}(i):\n    p = i.packet\n    if p is None:\n        return {other}\n"
    if d.tunnel is not None:
        head += f"    if p.tunnel:\n        return {d.tunnel}\n"
    return f"{head}    return {tcp}\n"


def compile_getters(sources: Mapping[str, str], env: Mapping[str, object]) -> dict[str, Callable[..., list[str]]]:
    """Compile the functions whose sources are given (name -> ``def name...``) in one module of their
    own, with the names of ``env``; the functions by name.  The compiled code is kept beside the
    package's bytecode, as Python keeps a module's (:func:`_cached_code`)."""
    scope: dict[str, object] = dict(env)
    exec(_cached_code("".join(sources.values()), "<mptcpspec field definitions>"), scope)  # noqa: S102
    out: dict[str, Callable[..., list[str]]] = {}
    for name in sources:
        fn = scope[name]
        assert callable(fn)
        out[name] = fn
    return out
