"""The fields of ``spec/`` as the Wireshark Lua plugin names and shows them, for the dissector.

:func:`spec_fields` walks each option's schema (:func:`~mptcpspec.codec.ir.lower`) as the Lua
export declares its ``ProtoField``\\ s: ``mptcpspec.<format>.<field>`` for every field that is not
a constant, kind or length; a bit field's members one by one; a flags field and then each flag
(``<field>.<flag>``); an address as ``<field>`` (IPv4) or ``<field>6`` (IPv6).  Each comes with how
``tshark -T fields`` prints the plugin's value (:class:`Show`).  ``mptcpspec regen`` writes the list
as ``specfields.py`` beside the codecs (:func:`render_specfields`), so a draft change brings its
fields to ``mptcpspec dissect`` with the codec that decodes them.

>>> from mptcpspec.codec.regen import load_spec
>>> rows = spec_fields(load_spec()["options.py"])
>>> [(r.cls, r.attr, r.show, r.arg) for r in rows if r.name == "mptcpspec.dss.flags.data_fin"]
[('Dss', 'flags', 'flag', 16)]
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from types import ModuleType

from mptcpspec.codec.ir import Array, Bits, Choice, Field, Raw, Uint, lower, member_docs
from mptcpspec.codec.layout import snake
from mptcpspec.codec.schema import OptionSpec
from mptcpspec.errors import SpecError

__all__ = ["SHOWS", "SpecField", "render_specfields", "spec_fields"]

#: How a value is printed (``arg`` in brackets): ``dec`` decimal; ``hex`` 0x and (``arg``) digits;
#: ``bool`` 1 or 0; ``flag`` 1 when the bit (``arg``) of the flags field is set; ``ipv4`` and
#: ``ipv6`` the address, when it is of that family; ``bytes`` hexadecimal, none when empty;
#: ``array`` each item in decimal.
SHOWS = ("dec", "hex", "bool", "flag", "ipv4", "ipv6", "bytes", "array")

#: Fields the Lua plugin shows in hexadecimal (keys, tokens, nonces, HMACs, checksums).
_HEX = re.compile(r"key|token|nonce|hmac|checksum")


@dataclass(frozen=True, slots=True)
class SpecField:
    """One field of the spec: its name, the option class and attribute it reads, how it is shown."""

    name: str
    cls: str
    attr: str
    show: str
    arg: int
    description: str


def _label(doc: str, name: str) -> str:
    """The plugin's label: the first line of the field's doc, or its name."""
    doc = (doc or "").strip().split("\n")[0]
    return doc if doc and len(doc) <= 80 else name


def _option(opt: OptionSpec) -> list[SpecField]:
    fmt = snake(opt.cls)
    out: list[SpecField] = []

    def add(name: str, attr: str, show: str, arg: int, doc: str) -> None:
        out.append(SpecField(f"mptcpspec.{fmt}.{name}", opt.cls, attr, show, arg, doc))

    for it in lower(opt):
        if not isinstance(it, Field):
            continue
        v = it.value
        if isinstance(v, Bits):
            for m in v.members:
                if m.const is None:
                    add(m.name, m.name, "bool" if m.flag else "dec", 0, _label(m.doc, m.name))
            continue
        if it.name in ("kind", "length") and isinstance(v, Uint) and v.size == 1:
            continue  # shown once per option: mptcpspec.length
        label = _label(it.doc, it.name)
        if isinstance(v, (Uint, Choice)):
            if it.const is not None:
                continue
            width = v.size * 8 if isinstance(v, Uint) else max(v.then.size, v.other.size) * 8
            wrap = it.wrap
            if isinstance(wrap, type) and issubclass(wrap, enum.Flag):
                add(it.name, it.name, "hex", width // 4, label)
                docs = member_docs(wrap)
                for flag in wrap:
                    fname = flag.name or f"bit_{int(flag):#x}"
                    add(f"{it.name}.{fname.lower()}", it.name, "flag", int(flag), _label(docs.get(fname, ""), fname))
            elif isinstance(wrap, type) or not _HEX.search(it.name):
                add(it.name, it.name, "dec", 0, label)
            else:
                add(it.name, it.name, "hex", width // 4, label)
        elif isinstance(v, Raw):
            if it.wrap == "address":
                add(it.name, it.name, "ipv4", 0, label)
                add(it.name + "6", it.name, "ipv6", 0, label)
            else:
                add(it.name, it.name, "bytes", 0, label)
        elif isinstance(v, Array):
            add(it.name, it.name, "array", 0, label)
        else:  # pragma: no cover - lower() yields no other value
            raise SpecError(f"{opt.name} ({opt.cls}) field {it.name!r}: unsupported value {v!r}")
    return out


def spec_fields(mptcp_module: ModuleType) -> list[SpecField]:
    """Every field of every MPTCP option format of the spec module (the catch-all last), in the
    order of the plugin's declarations."""
    opts: list[OptionSpec] = [*mptcp_module.OPTIONS, mptcp_module.FALLBACK]
    out = [f for o in opts for f in _option(o)]
    seen: set[str] = set()
    for f in out:
        if f.name in seen:
            raise SpecError(f"field {f.name} is defined twice: two formats share a class name?")
        seen.add(f.name)
    return out


def render_specfields(mptcp_module: ModuleType) -> dict[str, str]:
    """``{"specfields.py": text}``: the list of :func:`spec_fields` as a generated module."""
    src = getattr(mptcp_module, "__spec_file__", "options.py")
    rows = "".join(
        f"    ({f.name!r}, {f.cls!r}, {f.attr!r}, {f.show!r}, {f.arg}, {f.description!r}),\n"
        for f in spec_fields(mptcp_module)
    )
    text = (
        f"# Generated by `mptcpspec regen` from spec/{src}. Do not edit: change the spec and run `mptcpspec regen`.\n"
        '"""The fields of spec/ as the Lua plugin names them: (name, option class, attribute, how it is shown,\n'
        'its argument, description); see mptcpspec.codec.specfields."""\n'
        "\n"
        "SPEC_FIELDS: tuple[tuple[str, str, str, str, int, str], ...] = (\n"
        f"{rows})\n"
    )
    return {"specfields.py": text}
