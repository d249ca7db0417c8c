"""Render decoded options for people (an indented tree) and for scripts (JSON-ready dicts)."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable

from mptcpspec.codec.options import CutOption, MalformedOption, MptcpUnknown, TcpOption, TcpOptions
from mptcpspec.records import field_names

__all__ = ["jsonable", "option_dict", "option_tree", "options_dict", "options_tree", "value_text"]

# Fields shown in hexadecimal: keys, tokens, nonces, HMACs and checksums are opaque numbers.
_HEX = ("key", "token", "nonce", "hmac", "checksum")


def jsonable(v: object) -> object:
    """A field value as a plain JSON value: enums as integers, octets and bytes-like as hex, addresses as text."""
    if isinstance(v, enum.Enum):
        return int(v) if isinstance(v, int) else v.value
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def _names(v: enum.Flag) -> list[str]:
    """The names of the flags set in ``v``."""
    return [m.name for m in type(v) if m in v and m.name is not None]


def option_dict(opt: TcpOption | CutOption, offset: int | None = None, length: int | None = None) -> dict[str, object]:
    """One option as a dict of plain JSON values (flags and enums as integers, with their names beside)."""
    if isinstance(opt, CutOption):
        cls = opt.option_class
        return {
            "option": "cut",
            "class": None if cls is None else cls.__name__,
            "kind": opt.kind,
            "subtype": opt.subtype,
            "offset": opt.offset,
            "length": opt.length,
            "data": opt.data.hex(),
            "captured": {n: jsonable(v) for n, v in opt.fields},
        }
    if isinstance(opt, MalformedOption):
        return {
            "option": "malformed",
            "kind": opt.kind,
            "offset": opt.offset,
            "data": opt.data.hex(),
            "error": str(opt.error),
        }
    d: dict[str, object] = {"option": opt.NAME, "class": type(opt).__name__, "kind": opt.KIND}
    if opt.SUBTYPE is not None:
        d["subtype"] = opt.SUBTYPE
    if offset is not None:
        d["offset"] = offset
    if length is not None:
        d["length"] = length
    for name in field_names(type(opt)):
        v = getattr(opt, name)
        d[name] = jsonable(v)
        if isinstance(v, enum.Flag):
            d[f"{name}_names"] = _names(v)
        elif isinstance(v, enum.Enum):
            d[f"{name}_name"] = v.name
    return d


def value_text(name: str, v: object) -> str:
    """A field value for people: flags with their names, enums with theirs, keys and other opaque numbers
    (``name`` says which) in hexadecimal, ``(absent)`` for None."""
    if v is None:
        return "(absent)"
    if isinstance(v, enum.Flag):
        names = _names(v)
        return f"{v.value:#04x}" + (f"  {' | '.join(names)}" if names else "")
    if isinstance(v, enum.Enum):
        return f"{v.value} ({v.name})"
    if isinstance(v, bool):
        return "set" if v else "not set"
    if isinstance(v, (bytes, bytearray)):
        return v.hex() if v else "(empty)"
    if isinstance(v, int) and any(h in name for h in _HEX):
        return f"{v:#x}"
    if isinstance(v, tuple):
        return ", ".join(map(str, v))
    return str(v)


def option_tree(
    opt: TcpOption | CutOption,
    offset: int | None = None,
    length: int | None = None,
    indent: str = "",
    hide_absent: bool = False,
) -> list[str]:
    """Lines of an indented tree, in the manner of ``tshark -V`` (``hide_absent``: skip absent fields)."""
    if isinstance(opt, CutOption):
        cls = opt.option_class
        name = getattr(cls, "NAME", None) or ("option" if opt.subtype is None else f"subtype {opt.subtype:#x}")
        lines = [
            f"{indent}Multipath TCP {name} [cut by the snapshot length: {len(opt.data)} of "
            f"{'?' if opt.length is None else opt.length} octets captured, offset {opt.offset}]"
        ]
        lines += [f"{indent}    {n}: {value_text(n, v)}" for n, v in opt.fields]
        return lines + [f"{indent}    [the rest of the option was not captured]"]
    if isinstance(opt, MalformedOption):
        return [
            f"{indent}Malformed option (kind {opt.kind}) at offset {opt.offset}: {opt.error}",
            f"{indent}    octets: {opt.data.hex()}",
        ]
    head = opt.NAME
    if opt.KIND == 30 and opt.SUBTYPE is not None:
        head = f"Multipath TCP {opt.NAME} (subtype {opt.SUBTYPE:#x})"
    elif isinstance(opt, MptcpUnknown):
        head = f"Multipath TCP, unknown subtype {opt.subtype:#x}"
    extra = []
    if length is not None:
        extra.append(f"{length} octets")
    if offset is not None:
        extra.append(f"offset {offset}")
    lines = [f"{indent}{head}" + (f" [{', '.join(extra)}]" if extra else "") + f"  ({opt.RFC})"]
    for name in field_names(type(opt)):
        v = getattr(opt, name)
        if v is None and hide_absent:
            continue
        lines.append(f"{indent}    {name}: {value_text(name, v)}")
    return lines


def options_tree(area: TcpOptions, encode: Callable[[TcpOption], bytes] | None = None) -> list[str]:
    """Tree lines for every option of an area, with offsets and lengths."""
    lines = [
        f"TCP options: {area.size} octets, {len(area.options)} option(s)"
        + (f", {-area.space_left} octets over the 40-octet budget" if area.over_budget else "")
    ]
    off = 0
    for opt in area.options:
        if isinstance(opt, MalformedOption):
            lines += option_tree(opt, indent="    ")
            off = opt.offset + len(opt.data)
            continue
        n = 1 if opt.KIND in (0, 1) else len(encode(opt)) if encode else None
        lines += option_tree(opt, off, n, indent="    ")
        off += n or 0
    if area.padding:
        lines.append(f"    padding after EOL: {area.padding.hex()}")
    return lines


def options_dict(area: TcpOptions, encode: Callable[[TcpOption], bytes]) -> dict[str, object]:
    """A whole options area as a dict of plain JSON values: each option with its offset and length."""
    options, off = [], 0
    for opt in area.options:
        if isinstance(opt, MalformedOption):  # in a leniently decoded area
            options.append(option_dict(opt))
            off = opt.offset + len(opt.data)
            continue
        n = 1 if opt.KIND in (0, 1) else len(encode(opt))
        options.append(option_dict(opt, off, n))
        off += n
    return {"size": area.size, "space_left": area.space_left, "options": options, "padding": area.padding.hex()}
