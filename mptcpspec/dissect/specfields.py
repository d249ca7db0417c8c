"""The fields of ``spec/`` (``mptcpspec.<format>.<field>``), under the names and in the display of
the generated Wireshark Lua plugin.

Their list is generated from the spec by ``mptcpspec regen``
(:mod:`mptcpspec.codec.specfields`, written to ``codec/generated/specfields.py``): a field added to
a draft's option comes with the codec that decodes it.  Each MPTCP option (kind 30) of a TCP header
is decoded as the plugin does, with no MPTCP version: the first format of its subtype that accepts
it, the catch-all for a subtype the spec lacks; an option that none accepts shows only
``mptcpspec.length`` and ``mptcpspec.subtype``.  ``mptcpspec.format`` is the format's name
(``mp_join_syn``).  The definitions are compiled with the other fields
(:data:`mptcpspec.dissect.fields.FIELDS`, ``source == "spec"``).

>>> from mptcpspec.dissect.specfields import SPEC_FIELDS
>>> [d.value for d in SPEC_FIELDS if d.name == "mptcpspec.mp_prio.backup"]
["['1' if y.backup else '0' for y in SPECOPTS(p)[1] if type(y) is SC_MpPrio]"]
"""

from __future__ import annotations

from mptcpspec.analysis import PacketInfo
from mptcpspec.capture.packets import Packet
from mptcpspec.codec.generated import options as mptcp_codecs
from mptcpspec.codec.generated.specfields import SPEC_FIELDS as ROWS
from mptcpspec.codec.names import snake
from mptcpspec.codec.options import KIND_MPTCP, MptcpOption, decode_mptcp_option
from mptcpspec.dissect.fieldgen import FieldDef
from mptcpspec.errors import DecodeError

__all__ = ["SPEC_ENV", "SPEC_FIELDS", "SpecOptions", "has_mptcpspec", "spec_options"]

#: One proto item per MPTCP option, as the plugin adds them: (length, subtype), each None where the
#: plugin shows none; and the options that decoded, in order.
SpecOptions = tuple[tuple[tuple[int | None, int | None], ...], tuple[MptcpOption, ...]]

_NOTHING: SpecOptions = ((), ())


def _walk(area: bytes) -> SpecOptions:
    """The options area walked as the plugin walks it (kind, length; NOP; EOL ends it)."""
    heads: list[tuple[int | None, int | None]] = []
    opts: list[MptcpOption] = []
    i, n = 0, len(area)
    while i < n:
        kind = area[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            break
        ln = area[i + 1]
        if ln < 2 or i + ln > n:
            if kind == KIND_MPTCP:
                heads.append((None, None))
            break
        if kind == KIND_MPTCP:
            heads.append((ln, area[i + 2] >> 4 if ln >= 3 else None))
            if ln >= 3:
                try:
                    opts.append(decode_mptcp_option(area[i : i + ln]))
                except DecodeError:
                    pass
        i += ln
    return tuple(heads), tuple(opts)


class _Last:
    """The latest options area walked (several fields of one packet ask for it in turn)."""

    __slots__ = ("area", "result")

    def __init__(self) -> None:
        self.area: bytes | None = None
        self.result: SpecOptions = _NOTHING


_LAST = _Last()


def spec_options(p: Packet) -> SpecOptions:
    """The plugin's view of a TCP header's MPTCP options (kept for the latest header asked)."""
    area = p.options
    if not area:
        return _NOTHING
    if area is not _LAST.area:
        _LAST.result = _walk(area)
        _LAST.area = area
    return _LAST.result


def has_mptcpspec(info: PacketInfo) -> bool:
    """The plugin's protocol ``mptcpspec`` is in the frame: a TCP header with an MPTCP option."""
    return info.packet is not None and bool(spec_options(info.packet)[0])


def _value(cls: str, attr: str, show: str, arg: int) -> str:
    """The list of a field's values over a packet's options, as an expression (see fieldgen)."""
    y = f"y.{attr}"
    each = f"for y in SPECOPTS(p)[1] if type(y) is SC_{cls}"
    present = f" and {y} is not None"
    if show == "dec":
        return f"[str(int({y})) {each}{present}]"
    if show == "hex":
        return f"[f'0x{{int({y}):0{arg}x}}' {each}{present}]"
    if show == "bool":
        return f"['1' if {y} else '0' {each}]"
    if show == "flag":
        return f"['1' if int({y}) & {arg:#x} else '0' {each}{present}]"
    if show in ("ipv4", "ipv6"):
        return f"[str({y}) {each}{present} and {y}.version == {show[-1]}]"
    if show == "bytes":
        return f"[{y}.hex() {each}{present} and {y}]"
    if show == "array":
        return f"[str(z) {each}{present} for z in {y}]"
    raise ValueError(f"{cls}.{attr}: unknown display {show!r} in the generated field list")


_FORMATS = {getattr(mptcp_codecs, cls): snake(cls) for cls in dict.fromkeys(r[1] for r in ROWS)}

#: The definitions: the plugin's length, subtype and format, then every field of the spec.
SPEC_FIELDS: list[FieldDef] = [
    FieldDef(
        "mptcpspec.length",
        "MPTCP option length (the Lua plugin's)",
        "[str(y[0]) for y in SPECOPTS(p)[0] if y[0] is not None]",
        "spec",
        when="p.options",
    ),
    FieldDef(
        "mptcpspec.subtype",
        "MPTCP option subtype (the Lua plugin's)",
        "[f'0x{y[1]:02x}' for y in SPECOPTS(p)[0] if y[1] is not None]",
        "spec",
        when="p.options",
    ),
    FieldDef(
        "mptcpspec.format",
        "the format of spec/ that decodes the option (mp_join_syn...)",
        "[SPECFORMAT[type(y)] for y in SPECOPTS(p)[1]]",
        "spec",
        when="p.options",
    ),
] + [
    FieldDef(name, desc, _value(cls, attr, show, arg), "spec", when="p.options")
    for name, cls, attr, show, arg, desc in ROWS
]

#: The names the definitions use.
SPEC_ENV: dict[str, object] = {
    "SPECOPTS": spec_options,
    "SPECFORMAT": _FORMATS,
    **{f"SC_{cls}": getattr(mptcp_codecs, cls) for cls in dict.fromkeys(r[1] for r in ROWS)},
}
