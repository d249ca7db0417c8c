"""Generate specialised struct-based codecs from the schemas in ``spec/``.

For every :class:`~mptcpspec.codec.schema.OptionSpec` of a spec module this writes

* a frozen, slotted, keyword-only dataclass with one attribute per field
  (``length`` and constants are implied), flag properties and the option's
  name, kind, subtype and RFC as class attributes;
* ``decode_<name>(b, o, n, version=None)``: decode the ``n`` octets at
  offset ``o`` of ``b`` (:mod:`~mptcpspec.codec.decodegen`);
* ``encode_<name>(value) -> bytes``: the inverse, computing the length and
  refusing values the decoder could not have produced (:mod:`~mptcpspec.codec.encodegen`);
* ``decode(b, o, n, version=None)``: dispatch by MPTCP subtype (or TCP kind),
  then by length and MPTCP version where formats share a subtype
  (:mod:`~mptcpspec.codec.dispatchgen`).

The generated module is typed (it passes ``mypy --strict``), imports only the standard library and
:mod:`mptcpspec.errors` / :mod:`mptcpspec.codec.runtime`; construct is not needed at run time.
"""

from __future__ import annotations

import enum
import hashlib
import textwrap
from types import ModuleType

from mptcpspec.codec.decodegen import Unpackers, decoder_source
from mptcpspec.codec.dispatchgen import dispatch_source
from mptcpspec.codec.encodegen import encoder_source
from mptcpspec.codec.ir import IntEnumClass, PublicField
from mptcpspec.codec.layout import OptionLayout, layout, snake
from mptcpspec.codec.schema import OptionSpec
from mptcpspec.errors import SpecError

__all__ = ["generate", "snake"]


_ANNOTATIONS = {
    "uint": "int",
    "bool": "bool",
    "bytes": "bytes",
    "array": "tuple[int, ...]",
    "address": "IPv4Address | IPv6Address",
}


def _annotation(pf: PublicField) -> str:
    """The type of a public field, as source."""
    if pf.kind == "flags":
        t = pf.enum_class.__name__
    elif pf.kind == "enum":
        t = f"{pf.enum_class.__name__} | int"
    elif pf.kind in _ANNOTATIONS:
        t = _ANNOTATIONS[pf.kind]
    else:
        raise SpecError(f"field {pf.name!r}: no type for kind {pf.kind!r}")
    return f"{t} | None" if pf.optional else t


def _default(pf: PublicField) -> str | None:
    if pf.optional:
        return "None"
    if pf.kind == "uint":
        return "0"
    if pf.kind == "bool":
        return "False"
    if pf.kind == "flags":
        return f"{pf.enum_class.__name__}(0)"
    if pf.kind == "enum":
        return f"{pf.enum_class.__name__}({min(int(m) for m in pf.enum_class)})"
    if pf.kind == "bytes":
        return f"bytes({pf.size})" if pf.size else "b''"
    return None  # addresses and arrays are required


def _docstring(text: str, ind: str) -> list[str]:
    body = textwrap.wrap(text, 96 - len(ind))
    if len(body) == 1:
        return [f'{ind}"""{body[0]}"""']
    return [f'{ind}"""{body[0]}'] + [f"{ind}{ln}" for ln in body[1:]] + [f'{ind}"""']


def _gen_class(opt: OptionLayout) -> list[str]:
    """The public dataclass of one format, and the writable twin its decoders fill."""
    spec = opt.spec
    out = ["@dataclass(frozen=True, slots=True, kw_only=True)", f"class {spec.cls}:"]
    out += _docstring(f"{spec.name}: {spec.doc} ({spec.rfc})", "    ")
    out.append("")
    out.append(f"    NAME: ClassVar[str] = {spec.name!r}")
    out.append(f"    KIND: ClassVar[int] = {spec.kind}")
    out.append(f"    SUBTYPE: ClassVar[int | None] = {None if spec.subtype is None else int(spec.subtype)}")
    out.append(f"    VERSION: ClassVar[int | None] = {spec.version}")
    out.append(f"    RFC: ClassVar[str] = {spec.rfc!r}")
    if opt.pub:
        out.append("")
    for pf in opt.pub:
        d = _default(pf)
        out.append(f"    {pf.name}: {_annotation(pf)}" + (f" = {d}" if d is not None else ""))
        if pf.doc:
            out += _docstring(pf.doc, "    ")
    for pf in opt.pub:
        if pf.kind != "flags":
            continue
        flags = pf.enum_class
        for m in flags:
            if m.name is None:  # pragma: no cover - iterating a flag class gives named members
                continue
            prop = m.name.lower()
            if len(m.name) == 1 or m.name.startswith("RESERVED") or prop in {p.name for p in opt.pub}:
                continue
            out.append("")
            out.append("    @property")
            out.append(f"    def {prop}(self) -> bool:")
            doc = (m.__doc__ or "").strip()
            if doc and doc != flags.__doc__:
                out += _docstring(doc, "        ")
            out.append(f"        return self.{pf.name} is not None and bool(self.{pf.name} & {int(m):#x})")
    # The decoders fill a writable twin with the same slots, then give it the public class (no
    # per-field object.__setattr__).  The type checker is shown a subclass with writable fields.
    out += ["", "", "if TYPE_CHECKING:", ""]
    out.append(f"    class _W_{spec.cls}({spec.cls}):")
    out.append(f'        """A {spec.cls} being decoded: its fields writable until it becomes one."""')
    out.append("")
    out.append(f"        __class__: type[{spec.cls}]  # type: ignore[assignment]  # the decoders' last step")
    out += [f"        {pf.name}: {_annotation(pf)}" for pf in opt.pub]
    out += ["", "else:", ""]
    out.append(f"    class _W_{spec.cls}:")
    out.append(f"        __slots__ = {spec.cls}.__slots__")
    return out


def _gen_enum(cls: IntEnumClass) -> list[str]:
    base = "IntFlag" if issubclass(cls, enum.Flag) else "IntEnum"
    out = [f"class {cls.__name__}({base}):"]
    out += _docstring((cls.__doc__ or cls.__name__).strip(), "    ")
    out.append("")
    for m in cls:
        out.append(f"    {m.name} = {int(m):#x}")
        doc = (m.__doc__ or "").strip()
        if doc and doc != (cls.__doc__ or "").strip():
            out += _docstring(doc, "    ")
    return out


def _specs(module: ModuleType) -> tuple[list[OptionSpec], OptionSpec]:
    """A spec module's ``OPTIONS`` and ``FALLBACK``, checked."""
    options, fallback = getattr(module, "OPTIONS", None), getattr(module, "FALLBACK", None)
    if not isinstance(options, (list, tuple)) or not all(isinstance(s, OptionSpec) for s in options):
        raise SpecError(f"{module.__name__}: OPTIONS must be a sequence of OptionSpec")
    if not isinstance(fallback, OptionSpec):
        raise SpecError(f"{module.__name__}: FALLBACK must be an OptionSpec")
    return list(options), fallback


def generate(module: ModuleType, source_name: str, source_text: str) -> str:
    """Python source of the codec module for one spec module (``OPTIONS``, ``FALLBACK``, ``ENUMS``)."""
    specs, fallback_spec = _specs(module)
    opts = [layout(s) for s in specs]
    fallback = layout(fallback_spec)
    mptcp = all(o.spec.subtype is not None for o in opts)
    enums: list[IntEnumClass] = list(getattr(module, "ENUMS", ()))
    for o in opts + [fallback]:
        for e in o.spec.enums:
            if e not in enums:
                enums.append(e)
        for pf in o.pub:
            if pf.enum is not None and pf.enum not in enums:
                enums.append(pf.enum)
    digest = hashlib.sha256(source_text.encode()).hexdigest()[:16]
    mod = Unpackers()
    body: list[str] = []
    for e in enums:
        body += _gen_enum(e) + ["", ""]
    for e in enums:
        if issubclass(e, enum.Flag):
            body.append(f"_T_{e.__name__} = FlagTable({e.__name__})  # value -> flags, made on first use")
        else:
            body.append(f"_E_{e.__name__} = {{int(m): m for m in {e.__name__}}}")
    body += ["", ""]
    for o in opts + [fallback]:
        body += _gen_class(o) + ["", ""]
        body += decoder_source(mod, o, fast=False) + ["", ""]
        body += decoder_source(mod, o, fast=True) + ["", ""]
        body += encoder_source(o) + ["", ""]
    body += dispatch_source(opts, fallback, mptcp)
    head = [
        f"# Generated by `mptcpspec regen` from spec/{source_name} (sha256 {digest}). Do not edit:",
        "# change the spec and run `mptcpspec regen`.",
        f'"""Codecs for {(module.__doc__ or module.__name__).strip().splitlines()[0].rstrip(".")}."""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import IntEnum, IntFlag",
        "from ipaddress import IPv4Address, IPv6Address",
        "from struct import Struct, pack, unpack_from",
        "from struct import error as StructError",
        "from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias",
        "",
        "from mptcpspec.codec.runtime import FlagTable, as_bytes, as_int, as_uints, ip, packed, short, too_big",
        "from mptcpspec.errors import DecodeError, EncodeError",
        "from mptcpspec.records import dataclass",
        "",
        "if TYPE_CHECKING:",
        "    from collections.abc import Callable",
        "",
        "_new = object.__new__",
    ]
    for sname, fmt in sorted(mod.structs.items()):
        head.append(f"{sname} = Struct({fmt!r}).unpack_from")
    for aname, code in sorted(mod.arrays.items()):
        head.append(f"{aname} = tuple(Struct('>%d{code}' % i).unpack_from for i in range(16))")
    text = "\n".join(head + ["", ""] + body) + "\n"
    return text
