"""Display filters (``mptcpspec dissect -Y``), parsed with lark and compiled to a predicate.

>>> from mptcpspec.dissect.filters import compile_filter
>>> f = compile_filter('mptcp.stream == 0 and tcp.options.mptcp.subtype in {1, 2}')
>>> f.text
'mptcp.stream == 0 and tcp.options.mptcp.subtype in {1, 2}'
>>> compile_filter('tcp.len >')
Traceback (most recent call last):
mptcpspec.dissect.filters.FilterError: filter column 10: a value was expected after '>'
    tcp.len >
             ^

The language is Wireshark's, for the fields in :data:`mptcpspec.dissect.fields.FIELDS`: a bare field
tests existence (``mptcp.dss.checksum``), as do the protocol names ``frame``, ``ip``, ``ipv6``,
``tcp`` and ``mptcp``; comparisons ``== != ~= < <= > >=`` (or ``eq ne any_ne lt le gt ge``),
``&`` (bitwise and, true when not zero), ``in {a, b, c}``; ``and``/``&&``, ``or``/``||``,
``not``/``!`` and parentheses.  Values are integers (decimal or ``0x`` hex; ``True`` and ``False``
are 1 and 0), IPv4/IPv6 addresses, ``"strings"`` or bare words (``mismatch``).  As in Wireshark
4.0, a comparison is false for a packet without the field; for a field that occurs several times in
a packet, ``==`` and the others hold when any occurrence does, ``!=`` when every occurrence differs,
``~=`` when any does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from mptcpspec.analysis import PacketInfo
from mptcpspec.capture import encap
from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.specfields import has_mptcpspec
from mptcpspec.errors import MptcpspecError

__all__ = ["FilterError", "Filter", "compile_filter"]

_parser: Lark | None = None


def _lark() -> Lark:
    global _parser
    if _parser is None:
        text = resources.files("mptcpspec.dissect").joinpath("filter.lark").read_text()
        _parser = Lark(text, parser="lalr", propagate_positions=True)
    return _parser


class FilterError(MptcpspecError, ValueError):
    """A display filter that cannot be parsed or names an unknown field; ``column`` is 1-based."""

    def __init__(self, text: str, column: int, reason: str) -> None:
        self.text = text
        self.column = column
        self.reason = reason
        super().__init__(f"filter column {column}: {reason}\n    {text}\n    {' ' * (column - 1)}^")


def _layer(cls: type, test: Callable[[Any], bool] = lambda x: True) -> Callable[[PacketInfo], bool]:
    """The frame has an encapsulation layer of class ``cls`` (for which ``test`` holds)."""

    def has(i: PacketInfo) -> bool:
        layers = i.layers if i.packet is None else i.packet.tunnel
        return any(type(x) is cls and test(x) for x in layers)

    return has


def _ip(version: int) -> Callable[[PacketInfo], bool]:
    outer = _layer(encap.Ip, lambda x: x.version == version)
    return lambda i: (i.packet is not None and i.packet.version == version) or outer(i)


_PROTOCOLS: dict[str, Callable[[PacketInfo], bool]] = {
    "frame": lambda i: True,
    "tcp": lambda i: i.packet is not None,
    "ip": _ip(4),
    "ipv6": _ip(6),
    "mptcp": lambda i: i.connection is not None or bool(i.mptcp),
    "mptcpspec": has_mptcpspec,  # the Lua plugin's protocol: an MPTCP option in a TCP header
    "vlan": _layer(encap.Vlan, lambda x: x.tpid != encap.EtherType.QINQ),
    "ieee8021ad": _layer(encap.Vlan, lambda x: x.tpid == encap.EtherType.QINQ),
    "mpls": _layer(encap.Mpls),
    "ppp": _layer(encap.Ppp),
    "pppoes": _layer(encap.Pppoe, lambda x: not x.discovery),
    "pppoed": _layer(encap.Pppoe, lambda x: x.discovery),
    "gre": _layer(encap.Gre),
    "udp": _layer(encap.Udp),
    "vxlan": _layer(encap.Vxlan),
    "geneve": _layer(encap.Geneve),
    "gtp": _layer(encap.Gtp, lambda x: x.teid is not None),  # GTP' is tshark's gtpprime
}


class Filter:
    """A compiled display filter: call it with a :class:`~mptcpspec.analysis.model.PacketInfo`."""

    __slots__ = ("text", "_pred", "fields")

    def __init__(self, text: str, pred: Callable[[PacketInfo], bool], fields: frozenset[str]) -> None:
        self.text = text
        self._pred = pred
        self.fields = fields

    def __call__(self, info: PacketInfo) -> bool:
        return self._pred(info)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


def _as_int(v: str) -> int | None:
    try:
        return int(v, 0)
    except ValueError:
        try:
            return int(v)
        except ValueError:
            return None


def _column(tok: Token) -> int:
    """The 1-based column of a token (1 when lark does not know it)."""
    return tok.column if tok.column is not None else 1


def _literal(node: Tree[Token]) -> tuple[str, object]:
    kind = node.data
    tok = node.children[0]
    assert isinstance(tok, Token)  # the grammar's literals are one token each
    s = str(tok)
    if kind == "integer":
        return "int", int(s, 0)
    if kind == "address":
        try:
            return "addr", ipaddress.ip_address(s)
        except ValueError:
            raise _BadLiteral(tok, f"{s!r} is not a valid IPv{6 if ':' in s else 4} address") from None
    if kind == "string":
        try:
            return "str", s[1:-1].encode().decode("unicode_escape")
        except UnicodeDecodeError as e:
            raise _BadLiteral(tok, f"bad escape in {s}: {e.reason}") from None
    if s in ("True", "False"):
        return "int", int(s == "True")
    return "str", s


class _BadLiteral(Exception):
    """A value that the grammar takes but that is not one (an address out of range...)."""

    def __init__(self, tok: Token, reason: str) -> None:
        super().__init__(reason)
        self.tok = tok
        self.reason = reason


def _matcher(kind: str, lit: object) -> Callable[[str], object]:
    """A function from a field's displayed value to something comparable with ``lit`` (None: not comparable)."""
    if kind == "int":
        return _as_int
    if kind == "addr":

        def addr(v: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
            try:
                return ipaddress.ip_address(v)
            except ValueError:
                return None

        return addr
    return lambda v: v


# Any: the operands are whatever a field's matcher and the literal are (ints, addresses, strings);
# a comparison between kinds that do not compare raises TypeError, which the test catches.
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "bitand": lambda a, b: bool(a & b),
}


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text
        self.fields: set[str] = set()

    def field(self, tok: Token) -> Callable[[PacketInfo], list[str]] | None:
        name = str(tok)
        if name in _PROTOCOLS:
            return None
        f = FIELDS.get(name)
        if f is None:
            close = [n for n in FIELDS if n.startswith(name.rsplit(".", 1)[0] + ".")][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise FilterError(self.text, _column(tok), f"unknown field {name!r}{hint}")
        self.fields.add(name)
        return f.get

    def compile(self, node: Tree[Token] | Token) -> Callable[[PacketInfo], bool]:
        if isinstance(node, Token):  # pragma: no cover - the grammar wraps every leaf
            raise FilterError(self.text, _column(node), f"unexpected {node!s}")
        op = node.data
        if op == "or_expr":
            parts = [self.compile(c) for c in node.children]
            return lambda i: any(p(i) for p in parts)
        if op == "and_expr":
            parts = [self.compile(c) for c in node.children]
            return lambda i: all(p(i) for p in parts)
        if op == "negation":
            inner = self.compile(node.children[0])
            return lambda i: not inner(i)
        tok = node.children[0]
        assert isinstance(tok, Token)  # a comparison starts with its field
        get = self.field(tok)
        if op == "exists":
            if get is None:
                return _PROTOCOLS[str(tok)]
            return lambda i: bool(get(i))
        if get is None:
            raise FilterError(self.text, _column(tok), f"{tok!s} is a protocol: it can only be tested for presence")
        try:
            lits = [_literal(c) for c in node.children[1:] if isinstance(c, Tree)]
        except _BadLiteral as e:
            raise FilterError(self.text, _column(e.tok), e.reason) from None
        if op == "member":
            convs = [(_matcher(k, v), v) for k, v in lits]
            return lambda i: any(conv(x) == v for x in get(i) for conv, v in convs)
        ((kind, lit),) = lits
        conv = _matcher(kind, lit)
        if op in ("lt", "le", "gt", "ge", "bitand") and kind != "int":
            if not (kind == "addr" and op != "bitand"):
                value = node.children[1]
                column = value.meta.column if isinstance(value, Tree) else 1
                raise FilterError(self.text, column, f"'{op}' compares numbers; {lit!r} is not one")
        if op == "ne":  # every occurrence differs (Wireshark 4.0's all_ne): false without the field

            def all_ne(i: PacketInfo) -> bool:
                values = get(i)
                return bool(values) and all((y := conv(x)) is not None and y != lit for x in values)

            return all_ne
        if op == "any_ne":
            return lambda i: any((y := conv(x)) is not None and y != lit for x in get(i))
        fn = _OPS[op]

        def test(i: PacketInfo) -> bool:
            for x in get(i):
                y = conv(x)
                if y is not None:
                    try:
                        if fn(y, lit):
                            return True
                    except TypeError:
                        pass
            return False

        return test


def compile_filter(text: str) -> Filter:
    """Parse and compile a display filter; a :class:`FilterError` names the column of a mistake."""
    if not text.strip():
        raise FilterError(text, 1, "empty filter")
    try:
        tree = _lark().parse(text)
    except UnexpectedEOF:
        raise FilterError(text, len(text) + 1, "the filter ends early") from None
    except UnexpectedCharacters as e:
        at = text[e.pos_in_stream] if e.pos_in_stream is not None else ""
        raise FilterError(text, e.column, f"unexpected character {at!r}") from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            end = len(text.rstrip()) + 1
            if "RPAR" in e.expected or "RBRACE" in e.expected:
                raise FilterError(text, end, f"a closing {')' if 'RPAR' in e.expected else '}'!r} is missing") from None
            if e.expected & {"INT", "HEX", "IPV4", "IPV6", "STRING", "WORD"}:
                last = text.rstrip().split()[-1]
                raise FilterError(text, end, f"a value was expected after {last!r}") from None
            raise FilterError(text, end, "the filter ends early") from None
        raise FilterError(text, e.column, f"unexpected {str(e.token)!r}") from None
    except UnexpectedInput as e:  # pragma: no cover - the three above cover lark's cases
        raise FilterError(text, getattr(e, "column", 1), "cannot parse") from None
    c = _Compiler(text)
    pred = c.compile(tree) if isinstance(tree, Tree) else None
    return Filter(text, pred, frozenset(c.fields))
