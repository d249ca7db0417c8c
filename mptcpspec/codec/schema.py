"""The vocabulary of ``spec/``: construct plus a few typed fields and option metadata.

A schema in ``spec/`` is a flat construct ``Struct`` over one whole TCP option
(kind and length included).  The code generator (:mod:`mptcpspec.codec.codegen`)
understands exactly these building blocks:

* ``Const(value, IntNub)``, ``Int8ub`` .. ``Int64ub``, ``Bytes(n)`` (``n`` a
  number or an expression), ``GreedyBytes``, ``Array(count, Int8ub|Int32ub)``;
* ``BitStruct`` of ``Const(v, BitsInteger(n))``, ``BitsInteger(n)``/``Nibble``
  and ``Flag`` members: its members become fields of the option;
* :class:`Flags` (an 8- or 16-bit field read as an ``IntFlag``),
  :class:`Enum` (an integer read as an ``IntEnum`` member when known),
  :class:`IPAddress` (4 or 16 octets read as an ``ipaddress`` object);
* ``If(cond, subcon)``, ``IfThenElse(cond, a, b)``, ``Tell``, :class:`Require`
  and ``Terminated``.

Conditions are construct ``this`` expressions over fields already read, e.g.
``this.flags.MAPPING_PRESENT`` or ``this.length >= this._here + 8``.  Names that
start with ``_`` are positions or helpers, never fields of the decoded value.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import construct as c

__all__ = ["Flags", "Enum", "IPAddress", "Require", "OptionSpec"]


class Flags(c.FlagsEnum):  # type: ignore[misc]  # construct is untyped
    """An integer field whose bits are named by an ``IntFlag`` class.

    Parsing (construct side) gives a ``Container`` of booleans, one per member,
    so conditions can say ``this.flags.DATA_FIN``; the decoded public value is
    ``enum_class(raw)``.  Every bit of the field must be named (reserved bits
    too), so no information is lost in either direction.
    """

    def __init__(self, subcon: Any, enum_class: type[enum.IntFlag]) -> None:
        super().__init__(subcon, enum_class)
        self.enum_class = enum_class
        bits: int = 8 * subcon.sizeof()
        named = 0
        for member in enum_class:
            named |= int(member)
        if named != (1 << bits) - 1:
            raise TypeError(f"{enum_class.__name__} must name all {bits} bits (named: {named:#x})")


class Enum(c.Enum):  # type: ignore[misc]  # construct is untyped
    """An integer field whose known values are members of an ``IntEnum``.

    Unknown values stay plain ``int`` (a reason code from a newer draft is not
    an error).
    """

    def __init__(self, subcon: Any, enum_class: type[enum.IntEnum]) -> None:
        super().__init__(subcon, enum_class)
        self.enum_class = enum_class


class IPAddress(c.Adapter):  # type: ignore[misc]  # construct is untyped
    """4 or 16 octets <-> ``ipaddress.IPv4Address`` / ``IPv6Address``.

    Decoding: the octets in network order become an address object.
    Encoding: an address object (or anything ``ipaddress.ip_address`` accepts)
    becomes its packed octets; its family must match the size the schema
    expects at that point.
    """

    def _decode(self, obj: bytes, context: object, path: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(bytes(obj))

    def _encode(self, obj: str | int | bytes, context: object, path: str) -> bytes:
        return ipaddress.ip_address(obj).packed


class Require(c.Check):  # type: ignore[misc]  # construct is untyped
    """``Check`` with the reason spelled out for error messages."""

    def __init__(self, func: Callable[[Any], object] | object, reason: str) -> None:
        super().__init__(func)
        self.reason = reason


@dataclass(frozen=True)
class OptionSpec:
    """One TCP option format described by a construct schema.

    ``cls`` is the name of the generated dataclass, ``name`` the protocol name
    (``"DSS"``), ``kind`` the TCP option kind, ``subtype`` the MPTCP subtype
    (``None`` for non-MPTCP options or the catch-all), ``lengths`` the option
    lengths this format covers (``None``: any), ``version`` the MPTCP version
    whose format this is (``None``: all versions), ``rfc`` the sections that
    define it.
    """

    cls: str
    name: str
    kind: int
    schema: Any  # a construct Struct (construct is untyped)
    rfc: str
    doc: str
    subtype: int | None = None
    lengths: tuple[int, ...] | None = None
    version: int | None = None
    enums: tuple[type[enum.IntEnum] | type[enum.IntFlag], ...] = field(default=())
