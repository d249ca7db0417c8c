"""Generate the compiled hot path's option decoders (Cython) from the same layouts as the Python ones.

:func:`render_native` writes ``native_options.pxi``, which the compiled dissector
(``mptcpspec/dissect/native.pyx``) includes: one ``decode_<name>_at(b, n)`` per format of
:data:`NATIVE`, reading the ``n`` octets at ``b`` with C integers and building the same frozen
dataclass as ``decode_<name>``.  Where the Python decoder would find the option malformed (a bound,
a constant, a length, a left-over octet) it returns None, and the hot path hands the option to the
Python decoder, which says what is wrong.  Formats are read field by field in wire order; only fixed
widths (integers, bit groups, a choice of two widths, under presence conditions) are generated.
"""

from __future__ import annotations

import enum
from types import ModuleType

from mptcpspec.codec.ir import Bits, Check, Choice, End, Field, Tell, Uint
from mptcpspec.codec.layout import LocalNames, OptionLayout, layout
from mptcpspec.errors import SpecError

__all__ = ["NATIVE", "render_native"]

#: the option formats the compiled hot path decodes itself (by class name)
NATIVE = ("Dss",)


def _read(size: int) -> str:
    return {1: "b[p]", 2: "rd_be16(b + p)", 4: "rd_be32(b + p)", 8: "rd_be64(b + p)"}[size]


def _decoder(opt: OptionLayout) -> list[str]:
    spec = opt.spec
    nm = LocalNames(opt)
    fn = f"decode_{opt.fn}_at"
    head = [
        f"cdef object {fn}(const uint8_t* b, Py_ssize_t n):",
        f'    """{spec.name} ({spec.cls}) from the ``n`` octets at ``b``, as ``decode_{opt.fn}`` gives it;',
        '    None where that decoder would find it malformed."""',
        "    cdef Py_ssize_t p = 0",
    ]
    body: list[str] = []
    typed: list[str] = []  # C variables: fields always present, bit members, positions
    objects: list[str] = []  # Python variables: optional fields (None when absent)

    def read_into(var: str, size: int, ind: str) -> None:
        body.append(f"{ind}if p + {size} > n:")
        body.append(f"{ind}    return None")
        body.append(f"{ind}{var} = {_read(size)}")
        body.append(f"{ind}p += {size}")

    for it in opt.items:
        if isinstance(it, Tell):
            typed.append(f"t_{it.name}")
            body.append(f"    t_{it.name} = p")
        elif isinstance(it, Check):
            body.append(f"    if not ({nm.src(it.cond)}):")
            body.append("        return None")
        elif isinstance(it, End):
            body.append("    if p != n:")
            body.append("        return None")
        elif isinstance(it, Field):
            var = f"h_{it.name}" if isinstance(it.value, Bits) else f"f_{it.name}"
            ind = "    "
            if it.cond is not None:
                if isinstance(it.value, Bits):
                    raise SpecError(f"{spec.name}: an optional bit group is not generated natively")
                objects.append(var)
                body.append(f"    if {nm.src(it.cond)}:")
                ind = "        "
            else:
                typed.append(var)
            v = it.value
            if isinstance(v, (Uint, Bits)):
                read_into(var, v.size, ind)
            elif isinstance(v, Choice):
                body.append(f"{ind}if {nm.src(v.cond)}:")
                read_into(var, v.then.size, ind + "    ")
                body.append(f"{ind}else:")
                read_into(var, v.other.size, ind + "    ")
            else:
                raise SpecError(f"{spec.name}: field {it.name!r} ({type(v).__name__}) is not generated natively")
            if it.cond is not None:
                body.append("    else:")
                body.append(f"        {var} = None")
            if isinstance(v, Bits):
                for m in v.members:
                    mask = (1 << m.bits) - 1
                    ex = f"({var} >> {m.shift} & {mask})" if m.shift else f"({var} & {mask})"
                    if m.const is not None:
                        body.append(f"    if {ex} != {m.const}:")
                        body.append("        return None")
                    else:
                        typed.append(f"f_{m.name}")
                        body.append(f"    f_{m.name} = {ex}")
            if it.const is not None:
                body.append(f"    if {var} != {it.const}:")
                body.append("        return None")
            if it.name == "length":
                body.append(f"    if {var} != n:")
                body.append("        return None")
    decl = [f"    cdef uint64_t {', '.join(dict.fromkeys(typed))}"] if typed else []
    decl += [f"    {v} = None" for v in dict.fromkeys(objects)]
    args = []
    for pf in opt.pub:
        fv = f"f_{pf.name}"
        if pf.kind == "flags":
            val = f"_NT_{pf.enum_class.__name__}[{fv}]"
        elif pf.kind == "enum":
            val = f"_NE_{pf.enum_class.__name__}.get({fv}, {fv})"
        elif pf.kind == "bool":
            val = f"{fv} == 1"
        elif pf.kind == "uint":
            val = fv
        else:
            raise SpecError(f"{spec.name}: field {pf.name!r} ({pf.kind}) is not generated natively")
        if pf.optional and val != fv:
            val = f"None if {fv} is None else {val}"
        args.append(val)
    build = [f"    r = _object_new({spec.cls})"]
    build += [f"    put(r, _NS_{spec.cls}_{pf.name}, {val})" for pf, val in zip(opt.pub, args)]
    return [*head, *decl, *body, *build, "    return r"]


def render_native(module: ModuleType, source_name: str) -> dict[str, str]:
    """``native_options.pxi``: the decoders of :data:`NATIVE` among the formats of ``module``."""
    specs = {s.cls: s for s in getattr(module, "OPTIONS", ())}
    missing = [c for c in NATIVE if c not in specs]
    if missing:
        raise SpecError(f"spec/{source_name} has no format {missing[0]} for the compiled hot path")
    opts = [layout(specs[c]) for c in NATIVE]
    enums: list[type[enum.Enum]] = []
    for o in opts:
        for pf in o.pub:
            if pf.enum is not None and pf.enum not in enums:
                enums.append(pf.enum)
    names = sorted({o.spec.cls for o in opts} | {e.__name__ for e in enums})
    out = [
        f"# Generated by `mptcpspec regen` from spec/{source_name}. Do not edit: change the spec and run",
        "# `mptcpspec regen`.  Included by mptcpspec/dissect/native.pyx (the compiled hot path), which gives it",
        "# slot_offset, put and _object_new: each option is built as fast_constructor builds it.",
        "",
        f"from mptcpspec.codec.options import {', '.join(names)}",
        "from mptcpspec.codec.runtime import FlagTable as _NFlagTable",
        "",
    ]
    for e in enums:
        if issubclass(e, enum.Flag):
            out.append(f"cdef object _NT_{e.__name__} = _NFlagTable({e.__name__})")
        else:
            out.append(f"cdef dict _NE_{e.__name__} = {{int(m): m for m in {e.__name__}}}")
    for o in opts:
        for pf in o.pub:
            out.append(f'cdef Py_ssize_t _NS_{o.spec.cls}_{pf.name} = slot_offset({o.spec.cls}, "{pf.name}")')
    out.append("")
    out += [
        "",
        "cdef inline uint64_t rd_be16(const uint8_t* b) noexcept nogil:",
        "    return (<uint64_t>b[0] << 8) | b[1]",
        "",
        "",
        "cdef inline uint64_t rd_be32(const uint8_t* b) noexcept nogil:",
        "    return (<uint64_t>b[0] << 24) | (<uint64_t>b[1] << 16) | (<uint64_t>b[2] << 8) | b[3]",
        "",
        "",
        "cdef inline uint64_t rd_be64(const uint8_t* b) noexcept nogil:",
        "    return (rd_be32(b) << 32) | rd_be32(b + 4)",
    ]
    for o in opts:
        out += ["", "", *_decoder(o)]
    return {"native_options.pxi": "\n".join(out) + "\n"}
