"""Conditions and sizes of ``spec/`` schemas, rendered for other languages.

A schema's conditions are construct ``this`` expressions (``this.length >= 20``,
``this.flags.DSN_8``, ``8 + 12 * (this.header.ip_version == 6)``).  Python
mixes booleans and integers freely; Kaitai Struct's expression language and
Lua do not.  :func:`render` walks the expression tree, works out which
sub-expressions are booleans, and writes it in the target's syntax with the
conversions made explicit::

    >>> from construct import this
    >>> render(this.length == 8 + 12 * (this.header.ip_version == 6), KSY, lambda f, m: m or f)
    'length == 8 + 12 * (ip_version == 6 ? 1 : 0)'

``ref(field, member)`` names a field reference in the target; it returns the
target's text, or ``(text, "bool")`` for a reference that is a boolean there.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import construct.expr as cx

from mptcpspec.codec.ir import Expr
from mptcpspec.errors import SpecError

__all__ = ["Dialect", "KSY", "LUA", "Ref", "render"]


@dataclass(frozen=True)
class Dialect:
    name: str
    and_: str
    or_: str
    not_: str
    ne: str
    bool_to_int: str  # format with {0}
    int_div: str  # format with {0} {1}
    bit_and: str  # format with {0} {1}
    bit_or: str


KSY = Dialect("Kaitai Struct", "and", "or", "not ", "!=", "({0} ? 1 : 0)", "{0} / {1}", "{0} & {1}", "{0} | {1}")
LUA = Dialect(
    "Lua",
    "and",
    "or",
    "not ",
    "~=",
    "({0} and 1 or 0)",
    "math.floor({0} / {1})",
    "bit32.band({0}, {1})",
    "bit32.bor({0}, {1})",
)

_CMP = {operator.eq: "==", operator.ne: None, operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">="}
_ARITH = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.mod: "%"}
# Precedence, loosest first, shared by both targets for what we emit.
_P_OR, _P_AND, _P_NOT, _P_CMP, _P_BIT, _P_ADD, _P_MUL, _P_ATOM = range(8)


def _path(e: cx.Path) -> tuple[str, str | None]:
    parts = []
    while getattr(e, "_Path__parent", None) is not None:
        parts.append(e._Path__field)
        e = e._Path__parent
    if e._Path__name != "this" or not 1 <= len(parts) <= 2:
        raise SpecError(f"unsupported reference {e!r}")
    parts.reverse()
    return parts[0], parts[1] if len(parts) > 1 else None


#: How a renderer names a field reference ``(field, member)``: its text, or its text and type
#: (``"int"`` or ``"bool"``); text alone is an integer.
Ref: TypeAlias = Callable[[str, str | None], str | tuple[str, str]]


def render(expr: Expr, dialect: Dialect, ref: Ref, want: str | None = None) -> str:
    """``expr`` as source text of ``dialect``; raises :class:`SpecError` for what it cannot say.

    ``want="bool"`` makes an integer result a truth value (``x != 0``), as a condition needs;
    ``want="int"`` makes a boolean result 0 or 1, as a size needs.
    """

    def go(e: Expr) -> tuple[str, str, int]:  # text, type ("int" | "bool"), precedence
        if isinstance(e, bool):
            return ("true" if e else "false"), "bool", _P_ATOM
        if isinstance(e, int):
            return str(e), "int", _P_ATOM
        if isinstance(e, cx.Path):
            r = ref(*_path(e))
            if isinstance(r, tuple):
                return r[0], r[1], _P_ATOM
            return r, "int", _P_ATOM
        if isinstance(e, cx.BinExpr):
            op = e.op
            lt, lty, lp = go(e.lhs)
            rt, rty, rp = go(e.rhs)
            if op in (operator.or_, operator.and_) and lty == rty == "bool":
                p = _P_OR if op is operator.or_ else _P_AND
                word = dialect.or_ if op is operator.or_ else dialect.and_
                return f"{wrap(lt, lp, p)} {word} {wrap(rt, rp, p + 1)}", "bool", p
            if op in (operator.or_, operator.and_):
                a, b = as_int(lt, lty, lp), as_int(rt, rty, rp)
                fmt = dialect.bit_or if op is operator.or_ else dialect.bit_and
                return fmt.format(wrap(*a, _P_BIT + 1), wrap(*b, _P_BIT + 1)), "int", _P_BIT
            if op in _CMP:
                sym = _CMP[op] or dialect.ne
                if lty != rty:
                    (lt, lp), (rt, rp) = as_int(lt, lty, lp), as_int(rt, rty, rp)
                return f"{wrap(lt, lp, _P_CMP + 1)} {sym} {wrap(rt, rp, _P_CMP + 1)}", "bool", _P_CMP
            if op in _ARITH:
                p = _P_ADD if op in (operator.add, operator.sub) else _P_MUL
                a, b = as_int(lt, lty, lp), as_int(rt, rty, rp)
                return f"{wrap(*a, p)} {_ARITH[op]} {wrap(*b, p + 1)}", "int", p
            if op is operator.floordiv:
                a, b = as_int(lt, lty, lp), as_int(rt, rty, rp)
                return dialect.int_div.format(wrap(*a, _P_MUL), wrap(*b, _P_MUL + 1)), "int", _P_MUL
            raise SpecError(f"operator {cx.opnames.get(op, op)} cannot be exported to {dialect.name}")
        if isinstance(e, cx.UniExpr):
            t, ty, p = go(e.operand)
            if e.op is operator.not_ or (e.op is operator.inv and ty == "bool"):
                # Lua's `not` binds tighter than a comparison, Kaitai's and Python's looser: always bracket.
                return f"{dialect.not_}({t})", "bool", _P_NOT
            if e.op is operator.neg:
                return f"-{wrap(*as_int(t, ty, p), _P_ATOM)}", "int", _P_MUL
            raise SpecError(f"operator {cx.opnames.get(e.op, e.op)} cannot be exported to {dialect.name}")
        raise SpecError(f"unsupported expression {e!r}")

    def as_int(t: str, ty: str, p: int) -> tuple[str, int]:
        if ty == "bool":
            return dialect.bool_to_int.format(t), _P_ATOM
        return t, p

    def wrap(t: str, p: int, need: int) -> str:
        return t if p >= need else f"({t})"

    text, ty, p = go(expr)
    if want == "bool" and ty == "int":
        return f"{wrap(text, p, _P_CMP + 1)} {dialect.ne} 0"
    if want == "int" and ty == "bool":
        return as_int(text, ty, p)[0]
    return text
