"""A flat, typed view of a ``spec/`` schema, shared by every generator.

:func:`lower` walks one construct ``Struct`` (see :mod:`mptcpspec.codec.schema` for
the vocabulary) and returns a list of :class:`Item` in wire order.  The Python
codec generator, the construct reference adapter and the exporters all read
this list, so they agree on field names, types and conditions by
construction.  Anything outside the vocabulary raises :class:`SpecError`
naming the option and field.

Conditions and sizes stay construct ``this`` expressions; :func:`expr_source`
renders them as source text with each field reference replaced by a name the
caller chooses.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import construct as c

from mptcpspec.codec.schema import Enum, Flags, IPAddress, OptionSpec, Require
from mptcpspec.errors import SpecError

__all__ = [
    "Expr",
    "IntEnumClass",
    "Wrap",
    "Value",
    "Uint",
    "Raw",
    "Array",
    "BitMember",
    "Bits",
    "Choice",
    "Field",
    "Tell",
    "Check",
    "End",
    "Item",
    "lower",
    "expr_source",
    "expr_refs",
    "public_fields",
    "PublicField",
    "uint_fmt",
    "member_docs",
]

_UINT_FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}

#: A construct ``this`` expression (``this.length >= 12``), or a plain int or bool.  construct is
#: untyped, so expressions are checked where they are rendered (:func:`expr_source`), not here.
Expr: TypeAlias = object
#: The enum classes a schema can name: :class:`~mptcpspec.codec.schema.Flags` and
#: :class:`~mptcpspec.codec.schema.Enum` fields read an ``IntFlag`` or an ``IntEnum``.
IntEnumClass: TypeAlias = type[enum.IntFlag] | type[enum.IntEnum]


@dataclass(frozen=True)
class Uint:
    """Big-endian unsigned integer of ``size`` octets."""

    size: int


@dataclass(frozen=True)
class Raw:
    """Octets: ``size`` is an int, an expression, or ``None`` for "the rest of the option"."""

    size: int | Expr | None


@dataclass(frozen=True)
class Array:
    """``count`` (an expression or int) unsigned integers of ``item_size`` octets."""

    count: int | Expr
    item_size: int


@dataclass(frozen=True)
class BitMember:
    name: str
    bits: int
    shift: int
    const: int | None
    flag: bool
    doc: str


@dataclass(frozen=True)
class Bits:
    """An octet-aligned group of bit fields; members become fields of the option."""

    size: int
    members: tuple[BitMember, ...]


@dataclass(frozen=True)
class Choice:
    """``then`` when ``cond`` holds, else ``other`` (both :class:`Uint`)."""

    cond: Expr
    then: Uint
    other: Uint


#: What a :class:`Field` reads.
Value: TypeAlias = Uint | Raw | Array | Bits | Choice
#: How a field's integer or octets are presented: an enum class, ``"address"``, or as they are.
Wrap: TypeAlias = IntEnumClass | Literal["address"] | None


@dataclass(frozen=True)
class Field:
    """A named value read from the wire.

    ``value`` is a :class:`Uint`, :class:`Raw`, :class:`Array`, :class:`Bits` or
    :class:`Choice`; ``cond`` is the presence condition (``If``) or ``None``;
    ``wrap`` is the :class:`Flags`/:class:`Enum` class or ``"address"``;
    ``const`` the required value of a ``Const`` field.
    """

    name: str
    value: Value
    doc: str = ""
    cond: Expr | None = None
    wrap: Wrap = None
    const: int | None = None


@dataclass(frozen=True)
class Tell:
    """Binds ``name`` to the current offset from the start of the option."""

    name: str


@dataclass(frozen=True)
class Check:
    """Decoding fails with ``reason`` unless ``cond`` holds."""

    cond: Expr
    reason: str


@dataclass(frozen=True)
class End:
    """The option must end here."""


Item = Field | Tell | Check | End


def _fail(opt: OptionSpec, where: str, why: str) -> SpecError:
    return SpecError(f"{opt.name} ({opt.cls}) field {where!r}: {why}")


def _prim(opt: OptionSpec, name: str, sub: Any) -> Uint | Raw | Array | None:
    """A primitive (Uint, Raw, Array) from a construct subcon (untyped: any construct), or None."""
    if isinstance(sub, c.FormatField):
        fmt = sub.fmtstr
        if fmt[0] not in ">!" or fmt[1:] not in ("B", "H", "I", "L", "Q"):
            raise _fail(opt, name, f"only big-endian unsigned integers are supported, not {fmt!r}")
        return Uint(sub.sizeof())
    if isinstance(sub, c.BytesInteger):
        raise _fail(opt, name, "use Int8ub..Int64ub")
    if isinstance(sub, c.Bytes):
        return Raw(sub.length)
    if sub is c.GreedyBytes or isinstance(sub, type(c.GreedyBytes)):
        return Raw(None)
    if isinstance(sub, c.Array):
        item = _prim(opt, name, sub.subcon)
        if not isinstance(item, Uint):
            raise _fail(opt, name, "arrays hold unsigned integers only")
        return Array(sub.count, item.size)
    return None


def _unwrap(sc: Any) -> tuple[str | None, str, Any]:
    """Name, docs and the construct inside any number of ``Renamed`` layers."""
    name, doc = None, ""
    while isinstance(sc, c.Renamed):
        name = name or sc.name
        doc = doc or (sc.docs or "")
        sc = sc.subcon
    return name, doc, sc


def _bits(opt: OptionSpec, name: str, sub: Any) -> Bits:
    inner = sub.subcon
    if not isinstance(inner, c.Struct):
        raise _fail(opt, name, "BitStruct expected")
    raw: list[tuple[str, int, int | None, bool, str]] = []
    for m in inner.subcons:
        mname, mdoc, s = _unwrap(m)
        const = None
        if isinstance(s, c.Const):
            const = s.value
            s = s.subcon
        if s is c.Flag:
            nbits, flag = 1, True
        elif isinstance(s, c.BitsInteger):
            if s.signed or s.swapped:
                raise _fail(opt, f"{name}.{mname}", "unsigned big-endian bit fields only")
            nbits, flag = s.length, False
        else:
            raise _fail(opt, f"{name}.{mname}", f"unsupported bit field {type(s).__name__}")
        if not mname:
            raise _fail(opt, name, "every bit field needs a name")
        if const is not None and not isinstance(const, int):
            raise _fail(opt, f"{name}.{mname}", f"a bit field's constant is an integer, not {const!r}")
        raw.append((mname, nbits, const, flag, mdoc))
    total = sum(r[1] for r in raw)
    if total % 8:
        raise _fail(opt, name, f"bit fields add up to {total} bits, not whole octets")
    members: list[BitMember] = []
    shift = total
    for mname, nbits, const, flag, mdoc in raw:
        shift -= nbits
        members.append(BitMember(mname, nbits, shift, const, flag, mdoc))
    return Bits(total // 8, tuple(members))


def lower(opt: OptionSpec) -> list[Item]:
    """The items of ``opt.schema`` in wire order."""
    if not isinstance(opt.schema, c.Struct):
        raise _fail(opt, "-", "a schema is a construct Struct")
    items: list[Item] = []
    names: set[str] = set()

    def claim(n: str) -> None:
        if n in names:
            raise _fail(opt, n, "name used twice")
        names.add(n)

    for sc in opt.schema.subcons:
        name, doc, sub = _unwrap(sc)
        if sub is c.Terminated or isinstance(sub, type(c.Terminated)):
            items.append(End())
            continue
        if isinstance(sub, Require):
            items.append(Check(sub.func, sub.reason))
            continue
        if isinstance(sub, c.Check):
            raise _fail(opt, "Check", "use mptcpspec.codec.schema.Require, which says why")
        if not name:
            raise _fail(opt, "?", f"unnamed {type(sub).__name__}")
        if sub is c.Tell or isinstance(sub, type(c.Tell)):
            claim(name)
            items.append(Tell(name))
            continue
        cond: Expr | None = None
        if isinstance(sub, c.IfThenElse) and sub.elsesubcon is c.Pass:
            cond, sub = sub.condfunc, sub.thensubcon
        const: int | None = None
        wrap: Wrap = None
        if isinstance(sub, c.Const):
            if not isinstance(sub.value, int):
                raise _fail(opt, name, f"a constant field is an integer, not {sub.value!r}")
            const, sub = sub.value, sub.subcon
        if isinstance(sub, Flags):
            wrap, sub = sub.enum_class, sub.subcon
        elif isinstance(sub, Enum):
            wrap, sub = sub.enum_class, sub.subcon
        elif isinstance(sub, IPAddress):
            wrap, sub = "address", sub.subcon
        if isinstance(sub, c.Transformed):
            if cond is not None or const is not None or wrap is not None:
                raise _fail(opt, name, "a BitStruct cannot be conditional, constant or wrapped")
            bits = _bits(opt, name, sub)
            for m in bits.members:
                if m.const is None:
                    claim(m.name)
            items.append(Field(name, bits, doc))
            continue
        if isinstance(sub, c.IfThenElse):
            a, b = _prim(opt, name, sub.thensubcon), _prim(opt, name, sub.elsesubcon)
            if not (isinstance(a, Uint) and isinstance(b, Uint)):
                raise _fail(opt, name, "IfThenElse chooses between two unsigned integers")
            value: Value = Choice(sub.condfunc, a, b)
        else:
            prim = _prim(opt, name, sub)
            if prim is None:
                raise _fail(opt, name, f"unsupported construct {type(sub).__name__}")
            value = prim
        if wrap == "address" and not isinstance(value, Raw):
            raise _fail(opt, name, "IPAddress wraps Bytes")
        if isinstance(wrap, type) and not isinstance(value, (Uint, Choice)):
            raise _fail(opt, name, "Flags and Enum wrap an unsigned integer")
        if name != "length":
            claim(name)
        items.append(Field(name, value, doc, cond, wrap, const))
    if not items or not isinstance(items[0], Field) or items[0].name != "kind":
        raise _fail(opt, "kind", "the first field is the option kind")
    return items


_REF = re.compile(r"this\['(\w+)'\](?:\['(\w+)'\])?")


def expr_refs(expr: Expr) -> list[tuple[str, str | None]]:
    """The field references ``(field, member)`` in an expression, in order."""
    return [(m.group(1), m.group(2)) for m in _REF.finditer(repr(expr))]


def expr_source(expr: Expr, name: Callable[[str, str | None], str]) -> str:
    """Source text of ``expr`` with ``this[f]`` / ``this[f][m]`` replaced by ``name(f, m)``."""
    if isinstance(expr, (int, bool)):
        return repr(expr)
    if not isinstance(expr, c.expr.ExprMixin):
        raise SpecError(f"conditions must be construct 'this' expressions, not {expr!r}")
    text = repr(expr)
    if "this" in _REF.sub("", text):
        raise SpecError(f"unsupported expression {text}")
    return _REF.sub(lambda m: name(m.group(1), m.group(2)), text)


@dataclass(frozen=True)
class PublicField:
    """A field of the generated dataclass."""

    name: str
    kind: str  # "uint", "bool", "bytes", "array", "address", "flags", "enum"
    optional: bool
    doc: str
    size: int | None = None  # bits for uint/bool/flags/enum, octets for fixed-size bytes
    enum: IntEnumClass | None = None
    item_size: int | None = None
    source: Field | None = field(default=None, compare=False)
    member: BitMember | None = field(default=None, compare=False)

    @property
    def enum_class(self) -> IntEnumClass:
        """The enum of a ``flags`` or ``enum`` field."""
        if self.enum is None:
            raise SpecError(f"field {self.name!r} ({self.kind}) has no enum class")
        return self.enum

    @property
    def bits(self) -> int:
        """The size in bits of a ``uint``, ``bool``, ``flags`` or ``enum`` field."""
        if self.size is None:
            raise SpecError(f"field {self.name!r} ({self.kind}) has no fixed size")
        return self.size

    @property
    def item_octets(self) -> int:
        """The size in octets of one item of an ``array`` field."""
        if self.item_size is None:
            raise SpecError(f"field {self.name!r} ({self.kind}) is not an array")
        return self.item_size


def public_fields(items: list[Item]) -> list[PublicField]:
    """The fields a decoded value exposes, in wire order (``length`` and constants excluded)."""
    out: list[PublicField] = []
    for it in items:
        if not isinstance(it, Field) or it.name == "length" or it.const is not None:
            continue
        if isinstance(it.value, Bits):
            for m in it.value.members:
                if m.const is None:
                    out.append(
                        PublicField(
                            m.name, "bool" if m.flag else "uint", False, m.doc, size=m.bits, source=it, member=m
                        )
                    )
            continue
        opt = it.cond is not None
        v = it.value
        octets = v.size if isinstance(v, Uint) else max(v.then.size, v.other.size) if isinstance(v, Choice) else 0
        if it.wrap == "address":
            out.append(PublicField(it.name, "address", opt, it.doc, source=it))
        elif it.wrap is not None and issubclass(it.wrap, enum.Flag):
            out.append(PublicField(it.name, "flags", opt, it.doc, size=octets * 8, enum=it.wrap, source=it))
        elif it.wrap is not None:
            out.append(PublicField(it.name, "enum", opt, it.doc, size=octets * 8, enum=it.wrap, source=it))
        elif isinstance(v, (Uint, Choice)):
            out.append(PublicField(it.name, "uint", opt, it.doc, size=octets * 8, source=it))
        elif isinstance(v, Raw):
            out.append(
                PublicField(it.name, "bytes", opt, it.doc, size=v.size if isinstance(v.size, int) else None, source=it)
            )
        elif isinstance(v, Array):
            out.append(PublicField(it.name, "array", opt, it.doc, item_size=v.item_size, source=it))
    return out


def uint_fmt(size: int) -> str:
    return _UINT_FMT[size]


def member_docs(cls: type[enum.Enum]) -> dict[str, str]:
    """The doc strings written under an enum's members in the spec (``NAME = 1`` then ``\"\"\"doc\"\"\"``).

    Python keeps no per-member doc, so they are read from the class's source; ``{}`` when the source
    cannot be read.
    """
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out: dict[str, str] = {}
    for a, b in zip(body, body[1:]):
        if (
            isinstance(a, ast.Assign)
            and len(a.targets) == 1
            and isinstance(a.targets[0], ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            out[a.targets[0].id] = " ".join(b.value.value.split())
    return out
