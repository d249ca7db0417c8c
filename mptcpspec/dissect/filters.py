"""Display filters (``mptcpspec dissect -Y``), parsed with lark and compiled to a predicate.

>>> from mptcpspec.dissect.filters import compile_filter
>>> f = compile_filter('mptcp.stream == 0 and tcp.options.mptcp.subtype in {1, 2}')
>>> f.text
'mptcp.stream == 0 and tcp.options.mptcp.subtype in {1, 2}'
>>> compile_filter('tcp.port in {80 443}')
Traceback (most recent call last):
mptcpspec.dissect.filters.FilterError: filter column 17: "443" was unexpected in this context.
    tcp.port in {80 443}
                    ^~~

The language is Wireshark 4.0's, and so are its types: the fields Wireshark has keep its type
(:mod:`~mptcpspec.dissect.wstypes`), the fields of spec/ the Lua plugin's.  A bare field or protocol
name (``frame``, ``ip``, ``tcp``, ``mptcp``, ``mptcpspec``...) tests presence.  Comparisons: ``==``
(``eq``, ``any_eq``: any occurrence), ``!=`` (``ne``, ``all_ne``: every occurrence differs),
``===`` (``all_eq``), ``!==`` (``~=``, ``any_ne``), ``< <= > >=`` (``lt le gt ge``), ``contains``,
``matches`` (``~``, case-insensitive) on strings; ``in {a, b, c..d}`` and ``not in`` (members
separated by commas, ranges with ``..``); ``field & mask`` (``bitwise_and``), alone (not zero) or
compared; ``len()``, ``count()``, ``upper()``, ``lower()`` of a field; a field on the right compares
two fields.  ``and``/``&&`` binds tighter than ``or``/``||``; ``not``/``!``; parentheses.  Values of
an integer field: decimal, ``0x`` hex, ``0`` octal, ``'c'`` characters, or the names of its value
strings (``tcp.options.mptcp.subtype == "Data Sequence Signal"``, any case); of a boolean: a number,
``True``, ``False`` or its true/false strings (``Set``); of an address: an address or a network
(``198.51.100.0/24``).  A comparison is false for a packet without the field.  What tshark refuses,
we refuse, with its words and the column of the mistake.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from mptcpspec.analysis import PacketInfo
from mptcpspec.capture import encap
from mptcpspec.codec.generated.specfields import SPEC_FIELDS as SPEC_ROWS
from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.specfields import has_mptcpspec
from mptcpspec.dissect.wstypes import TRUE_FALSE, TYPE_NAMES, TYPES, VALUES
from mptcpspec.errors import MptcpspecError

__all__ = ["FilterError", "Filter", "PROTOCOLS", "compile_filter", "field_type"]

_parser: Lark | None = None


def _lark() -> Lark:
    global _parser
    if _parser is None:
        text = resources.files("mptcpspec.dissect").joinpath("filter.lark").read_text()
        _parser = Lark(text, parser="lalr", propagate_positions=True)
    return _parser


class FilterError(MptcpspecError, ValueError):
    """A display filter that cannot be parsed or compiled; ``column`` (1-based) and ``width`` mark
    the text at fault, ``reason`` is tshark's message."""

    def __init__(self, text: str, column: int, reason: str, width: int = 1) -> None:
        self.text = text
        self.column = column
        self.reason = reason
        self.width = max(width, 1)
        mark = " " * (column - 1) + "^" + "~" * (self.width - 1)
        super().__init__(f"filter column {column}: {reason}\n    {text}\n    {mark}")


def _layer(cls: type, test: Callable[[Any], bool] = lambda x: True) -> Callable[[PacketInfo], bool]:
    """The frame has an encapsulation layer of class ``cls`` (for which ``test`` holds)."""

    def has(i: PacketInfo) -> bool:
        layers = i.layers if i.packet is None else i.packet.tunnel
        return any(type(x) is cls and test(x) for x in layers)

    return has


def _ip(version: int) -> Callable[[PacketInfo], bool]:
    outer = _layer(encap.Ip, lambda x: x.version == version)
    return lambda i: (i.packet is not None and i.packet.version == version) or outer(i)


#: The protocol names a filter tests for presence.
PROTOCOLS: dict[str, Callable[[PacketInfo], bool]] = {
    "frame": lambda i: True,
    "tcp": lambda i: i.packet is not None,
    "ip": _ip(4),
    "ipv6": _ip(6),
    "mptcp": lambda i: bool(i.mptcp) or i.mptcp_shown,  # an MPTCP option, or the analysis shown
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

# --------------------------------------------------------------------------- types

_SPEC_TYPES = {"dec": "FT_UINT32", "hex": "FT_UINT64", "bool": "FT_BOOLEAN", "flag": "FT_BOOLEAN"}
_SPEC_TYPES.update({"ipv4": "FT_IPv4", "ipv6": "FT_IPv6", "bytes": "FT_BYTES", "array": "FT_UINT32"})
_SPEC: dict[str, str] = {r[0]: _SPEC_TYPES[r[3]] for r in SPEC_ROWS}
_SPEC.update({"mptcpspec.length": "FT_UINT8", "mptcpspec.subtype": "FT_UINT8", "mptcpspec.format": "FT_STRING"})
_TYPE_NAMES = {**TYPE_NAMES, "FT_UINT32": "Unsigned integer (4 bytes)", "FT_UINT64": "Unsigned integer (8 bytes)"}
_TYPE_NAMES.update({"FT_BOOLEAN": "Boolean", "FT_IPv4": "IPv4 address", "FT_IPv6": "IPv6 address"})
_TYPE_NAMES.update(
    {"FT_BYTES": "Byte sequence", "FT_STRING": "Character string", "FT_UINT8": "Unsigned integer (1 byte)"}
)


def field_type(name: str) -> str | None:
    """Wireshark's type of a field (``FT_UINT16``...), the plugin's for the fields of spec/; None for
    the fields of our own, whose values compare as numbers where they are numbers, else as text."""
    return TYPES.get(name) or _SPEC.get(name)


def _kind(ftype: str | None) -> str:
    """The family of a type: int, bool, ipv4, ipv6, string, bytes, time, none, protocol, any."""
    if ftype is None:
        return "any"
    if ftype.startswith(("FT_UINT", "FT_INT")) and not ftype.endswith(("_STRING", "_BYTES")):
        return "int"
    return {
        "FT_FRAMENUM": "int",
        "FT_CHAR": "int",
        "FT_BOOLEAN": "bool",
        "FT_IPv4": "ipv4",
        "FT_IPv6": "ipv6",
        "FT_STRING": "string",
        "FT_STRINGZ": "string",
        "FT_UINT_STRING": "string",
        "FT_BYTES": "bytes",
        "FT_UINT_BYTES": "bytes",
        "FT_RELATIVE_TIME": "time",
        "FT_ABSOLUTE_TIME": "time",
        "FT_DOUBLE": "time",
        "FT_FLOAT": "time",
        "FT_NONE": "none",
        "FT_PROTOCOL": "protocol",
    }.get(ftype, "string")


def _int(s: str) -> int | None:
    """A number as tshark reads one: decimal, 0x hex, 0 octal, 0b binary, with a sign."""
    m = re.fullmatch(r"([-+]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)", s)
    if m is None:
        return None
    body = m.group(2)
    if body[:2] in ("0x", "0X", "0b", "0B"):
        v = int(body[2:], 16 if body[1] in "xX" else 2)
    else:
        v = int(body, 8 if body[0] == "0" else 10)
    return -v if m.group(1) == "-" else v


_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+")


def _display(kind: str) -> Callable[[str], object]:
    """A field's printed value -> the value its filters compare (None: not comparable)."""
    if kind in ("int", "bool"):

        def num(v: str) -> int | None:
            try:
                n = int(v, 0)
            except ValueError:
                try:
                    n = int(v)
                except ValueError:
                    return None
            return int(n != 0) if kind == "bool" else n

        return num
    if kind in ("ipv4", "ipv6"):

        def addr(v: str) -> object:
            try:
                return ipaddress.ip_address(v)
            except ValueError:
                return None

        return addr
    if kind == "time":

        def real(v: str) -> float | None:
            try:
                return float(v)
            except ValueError:
                return None

        return real
    if kind == "bytes":
        return lambda v: v.replace(":", "").lower()
    if kind == "any":

        def loose(v: str) -> object:
            n = _int(v)
            if n is not None or v[:2] in ("0x", "0X"):
                return n if n is not None else v
            try:
                return int(v)
            except ValueError:
                pass
            if _DECIMAL.fullmatch(v):  # a time in seconds (mptcp.pair.owd): compares as a number
                return float(v)
            return v

        return loose
    return lambda v: v


# --------------------------------------------------------------------------- the compiled filter


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


class _Operand:
    """The left side of a test: its values on a packet, as the comparisons compare them."""

    def __init__(self, name: str, kind: str, values: Callable[[PacketInfo], list[Any]], ftype: str | None) -> None:
        self.name = name
        self.kind = kind
        self.values = values
        self.ftype = ftype


_CMP = {
    "==": "any_eq", "eq": "any_eq", "any_eq": "any_eq", "===": "all_eq", "all_eq": "all_eq",
    "!=": "all_ne", "ne": "all_ne", "all_ne": "all_ne", "!==": "any_ne", "~=": "any_ne", "any_ne": "any_ne",
    "<": "lt", "lt": "lt", "<=": "le", "le": "le", ">": "gt", "gt": "gt", ">=": "ge", "ge": "ge",
    "contains": "contains", "matches": "matches", "~": "matches",
}  # fmt: skip

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def _equal(a: object, b: object) -> bool:
    if isinstance(b, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return isinstance(a, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and a.version == b.version and a in b
    return a == b


def _safe(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def test(a: Any, b: Any) -> bool:
        try:
            return a is not None and fn(a, b)
        except TypeError:
            return False

    return test


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text
        self.fields: set[str] = set()

    def fail(self, tok: Token, reason: str) -> FilterError:
        col = tok.column if tok.column is not None else 1
        return FilterError(self.text, col, reason, len(str(tok)))

    # ----------------------------------------------------------------- operands

    def field(self, tok: Token, side: str | None) -> _Operand:
        name = str(tok)
        if name in PROTOCOLS and name not in FIELDS:
            pred = PROTOCOLS[name]
            return _Operand(name, "protocol", lambda i: [name] if pred(i) else [], "FT_PROTOCOL")
        f = FIELDS.get(name)
        if f is None:
            if side is None:
                raise self.fail(tok, f"{name} is neither a field nor a protocol name.")
            raise self.fail(tok, f'Left side of "{side}" expression must be a field or function, not {name}.')
        self.fields.add(name)
        ftype = field_type(name)
        kind = _kind(ftype)
        conv = _display(kind)
        get = f.get
        return _Operand(name, kind, lambda i: [conv(v) for v in get(i)], ftype)

    def operand(self, node: Tree[Token], side: str | None) -> _Operand:
        kids = [c for c in node.children]
        first = kids[0]
        assert isinstance(first, Token)
        if node.data == "field":
            return self.field(first, side)
        if node.data == "call":
            arg = kids[1]
            assert isinstance(arg, Token)
            return self.call(first, self.field(arg, None))
        # masked: field & value
        op = self.field(first, "&")
        if op.kind not in ("int", "bool", "any"):
            raise self.fail(first, f"{op.name} (type={self.type_name(op)}) cannot participate in bitwise and.")
        mask = self.literal(op, kids[1])
        values = op.values
        return _Operand(op.name, "int", lambda i: [v & mask for v in values(i) if isinstance(v, int)], op.ftype)

    def type_name(self, op: _Operand) -> str:
        return _TYPE_NAMES.get(op.ftype or "", "Character string")

    def call(self, fn: Token, op: _Operand) -> _Operand:
        name = str(fn)
        values = op.values
        if name == "count":
            return _Operand(name, "int", lambda i: [len(values(i))], "FT_UINT32")
        if name in ("upper", "lower"):
            if op.kind not in ("string", "any"):
                raise FilterError(
                    self.text,
                    fn.column or 1,
                    f"Only string type fields can be used as parameter for {name}()",
                    len(name) + len(op.name) + 2,
                )
            case = str.upper if name == "upper" else str.lower
            return _Operand(name, "string", lambda i: [case(str(v)) for v in values(i)], "FT_STRING")
        if name == "len":
            if op.kind == "bytes":
                return _Operand(name, "int", lambda i: [len(v) // 2 for v in values(i)], "FT_UINT32")
            if op.kind in ("string", "any"):
                return _Operand(name, "int", lambda i: [len(str(v)) for v in values(i)], "FT_UINT32")
            size = {"FT_UINT8": 1, "FT_UINT16": 2, "FT_UINT24": 3, "FT_UINT32": 4, "FT_UINT64": 8}.get(op.ftype or "")
            if size is None:
                size = 4 if op.kind == "ipv4" else 16 if op.kind == "ipv6" else 0
            return _Operand(name, "int", lambda i: [size for _ in values(i)], "FT_UINT32")
        raise self.fail(fn, f"The function '{name}' does not exist.")

    # ----------------------------------------------------------------- literals

    def literal(self, op: _Operand, tok: Tree[Token] | Token) -> Any:
        """A value of the filter's text, read as the operand's type reads it."""
        assert isinstance(tok, Token)
        s = str(tok)
        kind = op.kind
        if tok.type == "STRING":
            try:
                text = s[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
            except UnicodeDecodeError as e:
                raise self.fail(tok, f"{s} has a bad escape: {e.reason}.") from None
        else:
            text = s
        if tok.type == "CHAR":
            body = s[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
            if len(body) != 1:
                raise self.fail(tok, f"{s} is not a valid character constant.")
            if kind in ("int", "bool", "any"):
                return ord(body)
            text = body
        if kind in ("int", "bool"):
            return self.number(op, tok, text)
        if kind in ("ipv4", "ipv6"):
            return self.address(op, tok, text)
        if kind == "time":
            try:
                return float(text)
            except ValueError:
                raise self.fail(tok, f'"{text}" is not a valid time.') from None
        if kind == "bytes":
            if re.fullmatch(r"([0-9a-fA-F]{2}([:.\-]?[0-9a-fA-F]{2})*)", text) and tok.type != "STRING":
                return re.sub(r"[:.\-]", "", text).lower()
            return text.encode().hex()
        if kind in ("none", "protocol"):
            raise self.fail(tok, f"{op.name} (type={self.type_name(op)}) cannot be compared with a value.")
        if kind == "any" and tok.type != "STRING":
            return _display("any")(text)
        return text

    def number(self, op: _Operand, tok: Token, text: str) -> int:
        vals = VALUES.get(op.name, {})
        if tok.type != "STRING":
            n = _int(text)
            if n is not None:
                return int(n != 0) if op.kind == "bool" else n
        if op.kind == "bool":
            if tok.type != "STRING" and text in ("True", "False"):
                return int(text == "True")
            tf = TRUE_FALSE.get(op.name, ("True", "False"))
            for value, word in ((1, tf[0]), (0, tf[1])):
                if text.lower() == word.lower():
                    return value
            raise self.fail(tok, f'"{text}" cannot be found among the possible values for {op.name}.')
        if text.lower() in vals:
            return vals[text.lower()]
        if vals:
            raise self.fail(tok, f'"{text}" cannot be found among the possible values for {op.name}.')
        if tok.type == "STRING":
            raise self.fail(tok, f'{self.type_name(op)} cannot be converted from a string ("{text}").')
        raise self.fail(tok, f'"{text}" is not a valid number.')

    def address(self, op: _Operand, tok: Token, text: str) -> object:
        version = 4 if op.kind == "ipv4" else 6
        try:
            if "/" in text:
                net = ipaddress.ip_network(text, strict=False)
                if net.version == version:
                    return net
            else:
                a = ipaddress.ip_address(text)
                if a.version == version:
                    return a
        except ValueError:
            pass
        raise self.fail(tok, f'"{text}" is not a valid hostname or IPv{version} address.')

    # ----------------------------------------------------------------- tests

    def compare(self, node: Tree[Token]) -> Callable[[PacketInfo], bool]:
        left, cmp, right = node.children
        assert isinstance(left, Tree) and isinstance(cmp, Token)
        op = self.operand(left, str(cmp))
        how = _CMP[str(cmp)]
        if how in ("contains", "matches") and op.kind not in ("string", "bytes", "any", "protocol"):
            first = left.children[0]
            assert isinstance(first, Token)
            raise self.fail(first, f"{op.name} (type={self.type_name(op)}) cannot participate in {how} comparison.")
        if op.kind == "none":
            first = left.children[0]
            assert isinstance(first, Token)
            raise self.fail(first, f"{op.name} (type=Label) cannot participate in '{cmp}' comparison.")
        # a field on the right: the two fields compared
        if isinstance(right, Token) and right.type == "UNPARSED" and str(right) in FIELDS and how != "matches":
            other = self.field(right, None)
            return self.relation(op, how, other.values)
        if how == "matches":
            assert isinstance(right, Token)
            pattern = str(right)[1:-1] if right.type == "STRING" else str(right)
            try:
                rx = re.compile(pattern, re.IGNORECASE)
            except re.error as e:
                raise self.fail(right, f'"{pattern}" is not a valid regular expression: {e}.') from None
            values = op.values
            return lambda i: any(rx.search(str(v)) for v in values(i))
        if how == "contains":
            assert isinstance(right, Token)
            lit = self.literal(op, right)
            values = op.values
            return lambda i: any(str(lit) in str(v) for v in values(i))
        lit = self.literal(op, right)
        return self.relation(op, how, lambda i: [lit])

    def relation(
        self, op: _Operand, how: str, rights: Callable[[PacketInfo], list[Any]]
    ) -> Callable[[PacketInfo], bool]:
        values = op.values
        eq = _safe(_equal)
        if how == "any_eq":
            return lambda i: any(eq(a, b) for b in rights(i) for a in values(i))
        if how == "all_eq":
            return lambda i: bool(vs := values(i)) and all(any(eq(a, b) for b in rights(i)) for a in vs)
        if how == "all_ne":
            return lambda i: bool(vs := values(i)) and not any(eq(a, b) for b in rights(i) for a in vs)
        if how == "any_ne":
            return lambda i: any(a is not None and not eq(a, b) for b in rights(i) for a in values(i))
        fn = _safe(_ORDER[how])
        return lambda i: any(fn(a, b) for b in rights(i) for a in values(i))

    def member(self, node: Tree[Token]) -> Callable[[PacketInfo], bool]:
        left, *items = node.children
        assert isinstance(left, Tree)
        op = self.operand(left, "in")
        if op.kind == "none":
            first = left.children[0]
            assert isinstance(first, Token)
            raise self.fail(first, f"{op.name} (type=Label) cannot participate in 'in' comparison.")
        singles: list[Any] = []
        ranges: list[tuple[Any, Any]] = []
        for it in items:
            assert isinstance(it, Tree)
            toks = [t for t in it.children if isinstance(t, Token)]
            if it.data == "range":
                ranges.append((self.literal(op, toks[0]), self.literal(op, toks[1])))
            elif toks[0].type == "UNPARSED" and ".." in str(toks[0]):
                lo, _, hi = str(toks[0]).partition("..")
                if not lo or not hi:
                    raise self.fail(toks[0], f'"{toks[0]}" is not a valid range.')
                ranges.append((self.literal(op, toks[0].update(value=lo)), self.literal(op, toks[0].update(value=hi))))
            else:
                singles.append(self.literal(op, toks[0]))
        eq = _safe(_equal)
        le = _safe(lambda a, b: a <= b)
        values = op.values

        def within(a: Any) -> bool:
            return any(eq(a, b) for b in singles) or any(le(lo, a) and le(a, hi) for lo, hi in ranges)

        return lambda i: any(within(a) for a in values(i))

    def compile(self, node: Tree[Token] | Token) -> Callable[[PacketInfo], bool]:
        if isinstance(node, Token):  # pragma: no cover - the grammar wraps every leaf
            raise self.fail(node, f'"{node}" was unexpected in this context.')
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
        if op == "compare":
            return self.compare(node)
        if op == "member":
            return self.member(node)
        if op == "not_member":
            inner = self.member(node)
            return lambda i: not inner(i)
        # exists: a field, a protocol, a function's value or a masked field
        left = node.children[0]
        assert isinstance(left, Tree)
        first = left.children[0]
        assert isinstance(first, Token)
        if left.data == "field" and str(first) in PROTOCOLS and str(first) not in FIELDS:
            return PROTOCOLS[str(first)]
        operand = self.operand(left, None)
        values = operand.values
        if left.data == "masked":
            return lambda i: any(v != 0 for v in values(i))
        return lambda i: bool(values(i))


def _unexpected(text: str, tok: Token | None, pos: int) -> FilterError:
    if tok is None:
        ch = text[pos] if pos < len(text) else ""
        return FilterError(text, pos + 1, f'"{ch}" was unexpected in this context.')
    return FilterError(text, tok.column or pos + 1, f'"{tok}" was unexpected in this context.', len(str(tok)))


def compile_filter(text: str) -> Filter:
    """Parse and compile a display filter; a :class:`FilterError` gives tshark's reason and the
    column of the mistake."""
    if not text.strip():
        raise FilterError(text, 1, "empty filter")
    try:
        tree = _lark().parse(text)
    except UnexpectedEOF:
        raise FilterError(text, len(text.rstrip()) + 1, "Unexpected end of filter expression.") from None
    except UnexpectedCharacters as e:
        raise _unexpected(text, None, e.pos_in_stream or 0) from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            raise FilterError(text, len(text.rstrip()) + 1, "Unexpected end of filter expression.") from None
        raise _unexpected(text, e.token, e.token.start_pos or 0) from None
    except UnexpectedInput as e:  # pragma: no cover - the three above cover lark's cases
        raise FilterError(text, getattr(e, "column", 1), "cannot parse") from None
    c = _Compiler(text)
    pred = c.compile(tree)
    return Filter(text, pred, frozenset(c.fields))
