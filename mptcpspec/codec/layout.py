"""What the code generators know of one option format, and how generated code names its fields.

:func:`layout` turns an :class:`~mptcpspec.codec.schema.OptionSpec` into an
:class:`OptionLayout`: its IR items (:mod:`mptcpspec.codec.ir`), public fields, bit members and
the fields at fixed offsets.  :class:`LocalNames` renders the spec's ``this`` expressions with
the local variables the generated decoders and encoders use (``f_<field>``, ``t_<position>``).
The decoder (:mod:`~mptcpspec.codec.decodegen`), encoder (:mod:`~mptcpspec.codec.encodegen`)
and dispatch (:mod:`~mptcpspec.codec.dispatchgen`) generators all read it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mptcpspec.codec.ir import (
    BitMember,
    Bits,
    Choice,
    Expr,
    Field,
    Item,
    PublicField,
    Raw,
    Tell,
    Uint,
    expr_refs,
    expr_source,
    lower,
    public_fields,
    uint_fmt,
)
from mptcpspec.codec.names import snake
from mptcpspec.codec.schema import OptionSpec
from mptcpspec.errors import SpecError

__all__ = [
    "OPTION_SPACE",
    "LocalNames",
    "OptionLayout",
    "field_offset_hint",
    "field_size",
    "layout",
    "needs_length",
    "snake",
    "static_offsets",
    "static_size",
    "struct_code",
]

OPTION_SPACE = 40  # RFC 9293 §3.1: at most 40 octets of options (RFC 6824 Appendix A)


@dataclass(frozen=True)
class OptionLayout:
    """One option format as the generators see it.

    ``items`` in wire order, ``pub`` the fields of the generated dataclass, ``fields`` every
    named field, ``members`` each bit member with the bit group holding it, ``tells`` the
    names bound to positions.
    """

    spec: OptionSpec
    items: list[Item]
    pub: list[PublicField]
    fields: dict[str, Field]
    members: dict[str, tuple[Field, BitMember]]
    tells: frozenset[str]

    @property
    def fn(self) -> str:
        """The name part of the generated functions (``decode_<fn>``, ``encode_<fn>``)."""
        return snake(self.spec.cls)


def layout(spec: OptionSpec) -> OptionLayout:
    """The :class:`OptionLayout` of one option format."""
    items = lower(spec)
    fields = {it.name: it for it in items if isinstance(it, Field)}
    members: dict[str, tuple[Field, BitMember]] = {}
    for it in items:
        if isinstance(it, Field) and isinstance(it.value, Bits):
            for m in it.value.members:
                members[m.name] = (it, m)
    tells = frozenset(it.name for it in items if isinstance(it, Tell))
    return OptionLayout(spec, items, public_fields(items), fields, members, tells)


class LocalNames:
    """Maps ``this`` references of one option to local variable names."""

    def __init__(self, opt: OptionLayout) -> None:
        self.opt = opt

    def __call__(self, f: str, m: str | None) -> str:
        opt = self.opt
        if m is None:
            if f in opt.tells:
                return f"t_{f}"
            if f not in opt.fields:
                raise SpecError(f"{opt.spec.name}: condition refers to unknown field {f!r}")
            return f"f_{f}"
        it = opt.fields.get(f)
        if it is None:
            raise SpecError(f"{opt.spec.name}: condition refers to unknown field {f!r}")
        if isinstance(it.value, Bits):
            if m not in opt.members:
                raise SpecError(f"{opt.spec.name}: no bit field {f}.{m}")
            return f"f_{m}"
        if it.wrap is not None and it.wrap != "address" and issubclass(it.wrap, enum.Flag):
            mask = int(it.wrap[m])
            if mask & (mask - 1):
                raise SpecError(f"{opt.spec.name}: {f}.{m} is not a single bit")
            return f"(f_{f} >> {mask.bit_length() - 1} & 1)"
        raise SpecError(f"{opt.spec.name}: {f}.{m} is not a member of a bit field or flags")

    def src(self, expr: Expr) -> str:
        """Source text of ``expr`` over the local variables."""
        return expr_source(expr, self)

    @staticmethod
    def human(expr: Expr) -> str:
        """The condition as a reader of the spec would write it."""
        return expr_source(expr, lambda f, m: f if m is None else f"{f}.{m}").replace("_here", "offset")


def needs_length(expr: Expr) -> bool:
    """Whether ``expr`` reads the option's length (known to an encoder only at the end)."""
    return any(f == "length" for f, _ in expr_refs(expr))


def field_offset_hint(opt: OptionLayout, expr: Expr) -> tuple[str | None, str]:
    """The field an expression first refers to, and that field's offset (as source)."""
    offsets = static_offsets(opt)
    for f, m in expr_refs(expr):
        if f == "length":
            return "length", "o + 1"
        if f in opt.fields and f in offsets:
            return (m if isinstance(opt.fields[f].value, Bits) else f), f"o + {offsets[f]}"
    return None, "o"


def static_offsets(opt: OptionLayout) -> dict[str, int]:
    """Offsets of the fields before the first one whose position depends on the octets."""
    offs: dict[str, int] = {}
    st = 0
    for it in opt.items:
        if isinstance(it, Field):
            offs[it.name] = st
            size = static_size(it)
            if size is None or it.cond is not None:
                break
            st += size
    return offs


def static_size(it: Field) -> int | None:
    """A field's size in octets where the schema fixes it, else None."""
    v = it.value
    if isinstance(v, (Uint, Bits)):
        return v.size
    if isinstance(v, Raw) and isinstance(v.size, int):
        return v.size
    return None


def struct_code(it: Field, choice_branch: bool | None = None) -> str:
    """The ``struct`` code of a fixed-size field (of one branch of a :class:`Choice`)."""
    v = it.value
    if isinstance(v, Uint):
        return uint_fmt(v.size)
    if isinstance(v, Bits):
        if v.size not in (1, 2, 4, 8):
            raise SpecError(f"bit group {it.name!r} of {v.size} octets")
        return uint_fmt(v.size)
    if isinstance(v, Raw) and isinstance(v.size, int):
        return f"{v.size}s"
    if isinstance(v, Choice):
        return uint_fmt((v.then if choice_branch else v.other).size)
    raise SpecError(f"field {it.name!r} has no fixed size")


def field_size(it: Field, choice_branch: bool | None = None) -> int:
    """The size in octets of a fixed-size field (of one branch of a :class:`Choice`)."""
    v = it.value
    if isinstance(v, Choice):
        return (v.then if choice_branch else v.other).size
    size = static_size(it)
    if size is None:
        raise SpecError(f"field {it.name!r} has no fixed size")
    return size
