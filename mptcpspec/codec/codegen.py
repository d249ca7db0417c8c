"""Generate specialised struct-based codecs from the schemas in ``spec/``.

For every :class:`~mptcpspec.codec.schema.OptionSpec` of a spec module this writes

* a frozen, slotted, keyword-only dataclass with one attribute per field
  (``length`` and constants are implied), flag properties and the option's
  name, kind, subtype and RFC as class attributes;
* ``decode_<name>(b, o, n, version=None)``: decode the ``n`` octets at
  offset ``o`` of ``b``.  Consecutive fixed-size reads under the same
  condition are fused into one precompiled ``struct`` call;
* ``encode_<name>(value) -> bytes``: the inverse, computing the length and
  refusing values the decoder could not have produced;
* ``decode(b, o, n, version=None)``: dispatch by MPTCP subtype (or TCP kind),
  then by length and MPTCP version where formats share a subtype.

The generated module imports only the standard library and
:mod:`mptcpspec.errors` / :mod:`mptcpspec.codec.runtime`; construct is not needed at
run time.
"""

from __future__ import annotations

import enum
import hashlib
import re
import textwrap
from dataclasses import dataclass

from mptcpspec.codec.ir import (
    Array,
    Bits,
    Check,
    Choice,
    End,
    Field,
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
from mptcpspec.codec.schema import OptionSpec
from mptcpspec.errors import SpecError

OPTION_SPACE = 40  # RFC 9293 §3.1: at most 40 octets of options (RFC 6824 Appendix A)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class _Opt:
    spec: OptionSpec
    items: list
    pub: list[PublicField]
    fields: dict  # name -> Field
    members: dict  # bit member name -> (Field, BitMember)
    tells: set

    @property
    def fn(self) -> str:
        return snake(self.spec.cls)


def _analyse(spec: OptionSpec) -> _Opt:
    items = lower(spec)
    fields = {it.name: it for it in items if isinstance(it, Field)}
    members = {}
    for it in items:
        if isinstance(it, Field) and isinstance(it.value, Bits):
            for m in it.value.members:
                members[m.name] = (it, m)
    tells = {it.name for it in items if isinstance(it, Tell)}
    return _Opt(spec, items, public_fields(items), fields, members, tells)


class _Names:
    """Maps ``this`` references of one option to local variable names."""

    def __init__(self, opt: _Opt) -> None:
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
        if isinstance(it.wrap, type) and issubclass(it.wrap, enum.Flag):
            mask = int(it.wrap[m])
            if mask & (mask - 1):
                raise SpecError(f"{opt.spec.name}: {f}.{m} is not a single bit")
            return f"(f_{f} >> {mask.bit_length() - 1} & 1)"
        raise SpecError(f"{opt.spec.name}: {f}.{m} is not a member of a bit field or flags")

    def src(self, expr) -> str:
        return expr_source(expr, self)

    @staticmethod
    def human(expr) -> str:
        """The condition as a reader of the spec would write it."""
        return expr_source(expr, lambda f, m: f if m is None else f"{f}.{m}").replace("_here", "offset")


def _needs_length(expr) -> bool:
    return any(f == "length" for f, _ in expr_refs(expr))


def _field_offset_hint(opt: _Opt, expr) -> tuple[str | None, str]:
    """The field an expression first refers to, and that field's offset (as source)."""
    for f, m in expr_refs(expr):
        if f == "length":
            return "length", "o + 1"
        if f in opt.fields and f in _static_offsets(opt):
            return (m if isinstance(opt.fields[f].value, Bits) else f), f"o + {_static_offsets(opt)[f]}"
    return None, "o"


def _static_offsets(opt: _Opt) -> dict:
    offs, st = {}, 0
    for it in opt.items:
        if isinstance(it, Field):
            offs[it.name] = st
            size = _static_size(it)
            if size is None or it.cond is not None:
                break
            st += size
    return offs


def _static_size(it: Field) -> int | None:
    v = it.value
    if isinstance(v, (Uint, Bits)):
        return v.size
    if isinstance(v, Raw) and isinstance(v.size, int):
        return v.size
    return None


def _fmt(it: Field, choice_branch: bool | None = None) -> str:
    v = it.value
    if isinstance(v, Uint):
        return uint_fmt(v.size)
    if isinstance(v, Bits):
        if v.size not in (1, 2, 4, 8):
            raise SpecError(f"bit group {it.name!r} of {v.size} octets")
        return uint_fmt(v.size)
    if isinstance(v, Raw):
        return f"{v.size}s"
    if isinstance(v, Choice):
        return uint_fmt((v.then if choice_branch else v.other).size)
    raise AssertionError(it)


def _fsize(it: Field, choice_branch: bool | None = None) -> int:
    v = it.value
    if isinstance(v, Choice):
        return (v.then if choice_branch else v.other).size
    return _static_size(it)


def _is_fusable(it) -> bool:
    return isinstance(it, Field) and (_static_size(it) is not None or isinstance(it.value, Choice))


def _cond_key(it: Field) -> str | None:
    return None if it.cond is None else repr(it.cond)


class _Module:
    """Source text of one generated module."""

    def __init__(self) -> None:
        self.structs: dict[str, str] = {}
        self.arrays: dict[str, str] = {}
        self.lines: list[str] = []

    def array_unpacker(self, item_size: int) -> str:
        """A table of unpackers for 0..15 items of one size."""
        name = f"_A_{uint_fmt(item_size)}"
        self.arrays[name] = uint_fmt(item_size)
        return name

    def unpacker(self, fmt: str) -> str:
        name = "_U_" + fmt.lstrip(">").replace("s", "S")
        self.structs[name] = fmt
        return name


def _emit_bits(it: Field, hv: str, ind: str, out: list, name: str, pos: str, must: list | None = None) -> None:
    """Split bit group ``hv`` into member variables, checking constants (or adding them to ``must``)."""
    for m in it.value.members:
        mask = (1 << m.bits) - 1
        ex = f"{hv} >> {m.shift} & {mask}" if m.shift else f"{hv} & {mask}"
        if m.shift + m.bits == it.value.size * 8:
            ex = f"{hv} >> {m.shift}" if m.shift else hv
        if m.const is not None:
            if must is not None:
                must.append(f"{ex} == {m.const}")
                continue
            out.append(f"{ind}if {ex} != {m.const}:")
            out.append(
                f"{ind}    raise DecodeError({name!r}, {m.name!r}, {pos}, 'expected {m.const}, got %d' % ({ex}))"
            )
        elif m.flag:
            out.append(f"{ind}f_{m.name} = ({ex}) == 1")
        else:
            out.append(f"{ind}f_{m.name} = {ex}")


def _gen_decoder(mod: _Module, opt: _Opt, fast: bool) -> list[str]:
    """A decoder function for one option format.

    The checked variant (``fast=False``, named ``_checked_<name>``) tests every
    bound and constant where it is read and raises the precise error.  The
    fast variant (``decode_<name>``) reads without bounds checks inside one
    ``try`` (free in CPython 3.11 when nothing is raised), tests constants,
    requirements and the final offset in as few comparisons as possible, and
    hands any input that fails them to the checked variant, which raises.
    """
    spec = opt.spec
    name = spec.name
    nm = _Names(opt)
    fn = f"decode_{opt.fn}" if fast else f"_checked_{opt.fn}"
    out = [f"def {fn}(b, o, n, version=None):"]
    if fast:
        out.append(f'    """Decode {spec.name} ({spec.cls}) from the ``n`` octets at ``o`` in ``b``."""')
        out.append("    try:")
        base = "        "
    else:
        out.append(f'    """{spec.cls}: the checked decoder; raises the precise DecodeError."""')
        out.append("    end = o + n")
        base = "    "
    slow = f"return _checked_{opt.fn}(b, o, n)"
    must: list[str] = []  # fast variant: conditions that every valid input meets
    items = opt.items
    st = 0  # static offset while ``dynamic`` is False
    dynamic = False

    def pos() -> str:
        return "p" if dynamic else f"o + {st}"

    def go_dynamic(ind: str) -> None:
        nonlocal dynamic
        if not dynamic:
            out.append(f"{ind}p = o + {st}")
            dynamic = True

    def cond_src(expr) -> str:
        """Condition source; a lone flag test needs no normalisation to 0/1."""
        text = nm.src(expr)
        m = re.fullmatch(r"\(f_(\w+) >> (\d+) & 1\)", text)
        if m:
            return f"f_{m.group(1)} & {1 << int(m.group(2)):#x}"
        return text

    def read_group(group: list[Field], ind: str) -> None:
        """Fused read of fixed-size fields (Choices expanded into branches)."""
        nonlocal st
        choices = [it for it in group if isinstance(it.value, Choice)]

        def emit_combo(combo, ind2):
            pick = dict(zip((id(c) for c in choices), combo))
            fmt = ">" + "".join(_fmt(it, pick.get(id(it))) for it in group)
            size = sum(_fsize(it, pick.get(id(it))) for it in group)
            sizes = tuple((it.name, _fsize(it, pick.get(id(it)))) for it in group)
            u = mod.unpacker(fmt)
            targets = [f"h_{it.name}" if isinstance(it.value, Bits) else f"f_{it.name}" for it in group]
            at0 = "p" if dynamic else (f"o + {st}" if st else "o")
            if not fast:
                if dynamic:
                    out.append(f"{ind2}if p + {size} > end:")
                    out.append(f"{ind2}    raise short({name!r}, {sizes!r}, p, end)")
                else:
                    out.append(f"{ind2}if n < {st + size}:")
                    out.append(f"{ind2}    raise short({name!r}, {sizes!r}, o + {st}, end)")
            out.append(f"{ind2}{', '.join(targets)}, = {u}(b, {at0})")
            k = 0 if dynamic else st
            for it in group:
                rel = k - (0 if dynamic else st)
                at = f"{at0} + {rel}" if rel else at0
                if isinstance(it.value, Bits):
                    _emit_bits(it, f"h_{it.name}", ind2, out, name, at, must if fast else None)
                if it.const is not None:
                    if fast:
                        must.append(f"f_{it.name} == {it.const}")
                    else:
                        out.append(f"{ind2}if f_{it.name} != {it.const}:")
                        out.append(
                            f"{ind2}    raise DecodeError({name!r}, {it.name!r}, {at}, "
                            f"'expected {it.const}, got %d' % f_{it.name})"
                        )
                if it.name == "length":
                    if fast:
                        must.append("f_length == n")
                    else:
                        out.append(f"{ind2}if f_length != n:")
                        out.append(
                            f"{ind2}    raise DecodeError({name!r}, 'length', {at}, "
                            "'length field says %d, the option has %d octets' % (f_length, n))"
                        )
                k += _fsize(it, pick.get(id(it)))
            if dynamic:
                out.append(f"{ind2}p += {size}")
            return size

        if not choices:
            size = emit_combo((), ind)
            if not dynamic:
                st += size
            return
        go_dynamic(ind)

        def nest(k, combo, ind2):
            if k == len(choices):
                emit_combo(combo, ind2)
                return
            out.append(f"{ind2}if {cond_src(choices[k].value.cond)}:")
            nest(k + 1, combo + (True,), ind2 + "    ")
            out.append(f"{ind2}else:")
            nest(k + 1, combo + (False,), ind2 + "    ")

        nest(0, (), ind)

    i = 0
    while i < len(items):
        it = items[i]
        if isinstance(it, Field) and _is_fusable(it):
            key = _cond_key(it)
            j = i + 1
            while j < len(items) and _is_fusable(items[j]) and _cond_key(items[j]) == key:
                j += 1
            group = items[i:j]
            if key is None:
                read_group(group, base)
            else:
                go_dynamic(base)
                out.append(f"{base}if {cond_src(it.cond)}:")
                read_group(group, base + "    ")
                out.append(f"{base}else:")
                out.append(f"{base}    " + " = ".join(f"f_{g.name}" for g in group) + " = None")
            i = j
            continue
        i += 1
        if isinstance(it, Tell):
            out.append(f"{base}t_{it.name} = {'p - o' if dynamic else st}")
        elif isinstance(it, Check):
            fld, off = _field_offset_hint(opt, it.cond)
            out.append(f"{base}if not ({nm.src(it.cond)}):")
            out.append(
                f"{base}    " + (slow if fast else f"raise DecodeError({name!r}, {fld!r}, {off}, {it.reason!r})")
            )
        elif isinstance(it, End):
            if fast:
                must.append("p == o + n" if dynamic else f"n == {st}")
            else:
                out.append(f"{base}if {pos()} != end:")
                out.append(
                    f"{base}    raise DecodeError({name!r}, None, {pos()}, "
                    f"'%d octets left over after the last field' % (end - ({pos()})))"
                )
        elif isinstance(it, Field):
            go_dynamic(base)
            ind = base
            if it.cond is not None:
                out.append(f"{base}if {cond_src(it.cond)}:")
                ind = base + "    "
            v = it.value
            fv = f"f_{it.name}"
            if isinstance(v, Raw) and v.size is None:
                out.append(f"{ind}{fv} = b[p:o + n]")
                out.append(f"{ind}p = o + n")
            elif isinstance(v, Raw):
                out.append(f"{ind}sz = {nm.src(v.size)}")
                if fast:
                    out.append(f"{ind}if sz < 0:")
                    out.append(f"{ind}    {slow}")
                else:
                    out.append(f"{ind}if sz < 0 or p + sz > end:")
                    out.append(f"{ind}    raise short({name!r}, (({it.name!r}, max(sz, 0)),), p, end)")
                out.append(f"{ind}{fv} = b[p:p + sz]")
                out.append(f"{ind}p += sz")
            elif isinstance(v, Array):
                out.append(f"{ind}cnt = {nm.src(v.count)}")
                if fast:
                    out.append(f"{ind}if cnt < 0 or p + cnt * {v.item_size} > o + n:")
                    out.append(f"{ind}    {slow}")
                else:
                    out.append(f"{ind}if cnt < 0 or p + cnt * {v.item_size} > end:")
                    out.append(f"{ind}    raise short({name!r}, (({it.name!r}, max(cnt, 0) * {v.item_size}),), p, end)")
                if v.item_size == 1:
                    out.append(f"{ind}{fv} = tuple(b[p:p + cnt])")
                else:
                    arr = mod.array_unpacker(v.item_size)
                    out.append(
                        f"{ind}{fv} = {arr}[cnt](b, p) if cnt < 16 else "
                        f"unpack_from('>%d{uint_fmt(v.item_size)}' % cnt, b, p)"
                    )
                out.append(f"{ind}p += cnt * {v.item_size}")
            else:  # pragma: no cover - lower() admits nothing else
                raise SpecError(f"{name}: cannot generate {it}")
            if it.cond is not None:
                out.append(f"{base}else:")
                out.append(f"{base}    {fv} = None")
    if fast:
        out.append("    except StructError:")
        out.append(f"        {slow}")
        if must:
            out.append(f"    if not ({' and '.join(must)}):")
            out.append(f"        {slow}")
    # Result: fill the mutable twin, then give it the public (frozen) class.
    out.append(f"    r = _new(_W_{spec.cls})")
    for pf in opt.pub:
        fv = f"f_{pf.name}"
        if pf.kind == "flags":
            val = f"_T_{pf.enum.__name__}[{fv}]"
        elif pf.kind == "enum":
            val = f"_E_{pf.enum.__name__}.get({fv}, {fv})"
        elif pf.kind == "address":
            val = f"ip({fv})"
        else:  # bytes fields are slices of ``b``, which callers pass as ``bytes``
            val = fv
        if pf.optional and val != fv:
            val = f"None if {fv} is None else {val}"
        out.append(f"    r.{pf.name} = {val}")
    out.append(f"    r.__class__ = {spec.cls}")
    out.append("    return r")
    return out


def _gen_encoder(opt: _Opt) -> list[str]:
    spec = opt.spec
    name = spec.name
    nm = _Names(opt)
    out = [f"def encode_{opt.fn}(v):", f'    """Encode a {spec.cls} as the octets of one {spec.name} option."""']
    # Bind every public field.
    for pf in opt.pub:
        fv = f"f_{pf.name}"
        src = f"v.{pf.name}"
        if pf.kind in ("flags", "enum"):
            src = f"as_int({name!r}, {pf.name!r}, v.{pf.name}, {pf.optional})"
        elif pf.kind == "address":
            src = (
                f"None if v.{pf.name} is None else packed({name!r}, {pf.name!r}, v.{pf.name})"
                if pf.optional
                else f"packed({name!r}, {pf.name!r}, v.{pf.name})"
            )
        elif pf.kind == "bytes":
            src = (
                f"None if v.{pf.name} is None else as_bytes({name!r}, {pf.name!r}, v.{pf.name})"
                if pf.optional
                else f"as_bytes({name!r}, {pf.name!r}, v.{pf.name})"
            )
        out.append(f"    {fv} = {src}")
        if pf.kind in ("uint", "bool", "flags", "enum"):
            limit = (1 << pf.size) - 1
            guard = f"{fv} is not None and " if pf.optional else ""
            out.append(f"    if {guard}not (isinstance({fv}, int) and 0 <= {fv} <= {limit:#x}):")
            out.append(f"        raise too_big({name!r}, {pf.name!r}, {fv}, {pf.size})")
        elif pf.kind == "array":
            lim = (1 << (8 * pf.item_size)) - 1
            out.append(f"    {fv} = as_tuple({name!r}, {pf.name!r}, {fv})")
            out.append(f"    for x in {fv}:")
            out.append(f"        if not (isinstance(x, int) and 0 <= x <= {lim:#x}):")
            out.append(f"            raise too_big({name!r}, {pf.name!r}, x, {8 * pf.item_size})")
    out.append("    fmt = '>'")
    out.append("    vals = []")
    out.append("    pos = 0")
    deferred: list[str] = []
    has_length = "length" in opt.fields
    for it in opt.items:
        if isinstance(it, Tell):
            out.append(f"    t_{it.name} = pos")
            continue
        if isinstance(it, Check):
            fld, _ = _field_offset_hint(opt, it.cond)
            deferred.append(f"    if not ({nm.src(it.cond)}):")
            deferred.append(f"        raise EncodeError({name!r}, {fld!r}, {it.reason!r})")
            continue
        if isinstance(it, End):
            continue
        fv = f"f_{it.name}"
        v = it.value
        ind = "    "
        if it.cond is not None:
            cond = nm.src(it.cond)
            if _needs_length(it.cond):
                deferred.append(f"    if ({cond}) != ({fv} is not None):")
                deferred.append(
                    f"        raise EncodeError({name!r}, {it.name!r}, "
                    f"('missing' if {fv} is None else 'not allowed') + "
                    f"' in an option of length %d' % f_length)"
                )
            else:
                out.append(f"    if ({cond}) != ({fv} is not None):")
                out.append(
                    f"        raise EncodeError({name!r}, {it.name!r}, ('missing' if {fv} is None "
                    f"else 'not allowed') + ' when {nm.human(it.cond)} is ' + "
                    f"str(bool({cond})))"
                )
            out.append(f"    if {fv} is not None:")
            ind = "        "
        if it.name == "length" and it.const is None:
            out.append(f"{ind}fmt += 'B'")
            out.append(f"{ind}i_length = len(vals)")
            out.append(f"{ind}vals.append(0)")
            out.append(f"{ind}pos += 1")
        elif it.const is not None:
            out.append(f"{ind}fmt += {uint_fmt(v.size)!r}")
            out.append(f"{ind}vals.append({it.const})")
            out.append(f"{ind}pos += {v.size}")
        elif isinstance(v, Bits):
            parts = []
            for m in v.members:
                src = str(m.const) if m.const is not None else f"f_{m.name}"
                parts.append(f"({src} << {m.shift})" if m.shift else src)
            out.append(f"{ind}fmt += {uint_fmt(v.size)!r}")
            out.append(f"{ind}vals.append({' | '.join(parts)})")
            out.append(f"{ind}pos += {v.size}")
        elif isinstance(v, Uint):
            out.append(f"{ind}fmt += {uint_fmt(v.size)!r}")
            out.append(f"{ind}vals.append({fv})")
            out.append(f"{ind}pos += {v.size}")
        elif isinstance(v, Choice):
            cond = nm.src(v.cond)
            if _needs_length(v.cond):
                raise SpecError(f"{name}.{it.name}: an IfThenElse that depends on the length cannot be encoded")
            big, small = v.then.size, v.other.size
            out.append(f"{ind}if {cond}:")
            out.append(f"{ind}    fmt += {uint_fmt(big)!r}")
            out.append(f"{ind}    pos += {big}")
            out.append(f"{ind}else:")
            lim = (1 << (8 * small)) - 1
            out.append(f"{ind}    if {fv} > {lim:#x}:")
            why = f" (the field is {small} octets when {nm.human(v.cond)} is false)"
            out.append(f"{ind}        raise too_big({name!r}, {it.name!r}, {fv}, {8 * small}, {why!r})")
            out.append(f"{ind}    fmt += {uint_fmt(small)!r}")
            out.append(f"{ind}    pos += {small}")
            out.append(f"{ind}vals.append({fv})")
        elif isinstance(v, Raw):
            if isinstance(v.size, int):
                out.append(f"{ind}if len({fv}) != {v.size}:")
                out.append(
                    f"{ind}    raise EncodeError({name!r}, {it.name!r}, 'needs {v.size} octets, got %d' % len({fv}))"
                )
            elif v.size is not None:
                deferred.append(f"    if {fv} is not None and len({fv}) != ({nm.src(v.size)}):")
                deferred.append(
                    f"        raise EncodeError({name!r}, {it.name!r}, '%d octets do not fit an "
                    f"option of length %d' % (len({fv}), f_length))"
                )
            out.append(f"{ind}fmt += '%ds' % len({fv})")
            out.append(f"{ind}vals.append({fv})")
            out.append(f"{ind}pos += len({fv})")
        elif isinstance(v, Array):
            deferred.append(f"    if {fv} is not None and len({fv}) != ({nm.src(v.count)}):")
            deferred.append(
                f"        raise EncodeError({name!r}, {it.name!r}, '%d items do not fit an "
                f"option of length %d' % (len({fv}), f_length))"
            )
            out.append(f"{ind}fmt += '%d{uint_fmt(v.item_size)}' % len({fv})")
            out.append(f"{ind}vals.extend({fv})")
            out.append(f"{ind}pos += {v.item_size} * len({fv})")
    out.append("    f_length = pos")
    out.append(f"    if pos > {OPTION_SPACE}:")
    out.append(
        f"        raise EncodeError({name!r}, 'length', 'the option would be %d octets; "
        f"the TCP option space is {OPTION_SPACE}' % pos)"
    )
    if has_length:
        out.append("    vals[i_length] = pos")
    out.extend(deferred)
    out.append("    return pack(fmt, *vals)")
    return out


def _annotation(pf: PublicField) -> str:
    t = {
        "uint": "int",
        "bool": "bool",
        "bytes": "bytes",
        "array": "tuple[int, ...]",
        "address": "IPv4Address | IPv6Address",
    }.get(pf.kind)
    if pf.kind == "flags":
        t = pf.enum.__name__
    elif pf.kind == "enum":
        t = f"{pf.enum.__name__} | int"
    return f"{t} | None" if pf.optional else t


def _default(pf: PublicField) -> str | None:
    if pf.optional:
        return "None"
    if pf.kind == "uint":
        return "0"
    if pf.kind == "bool":
        return "False"
    if pf.kind == "flags":
        return f"{pf.enum.__name__}(0)"
    if pf.kind == "enum":
        return f"{pf.enum.__name__}({min(int(m) for m in pf.enum)})"
    if pf.kind == "bytes":
        return f"bytes({pf.size})" if pf.size else "b''"
    return None  # addresses and arrays are required


def _docstring(text: str, ind: str) -> list[str]:
    body = textwrap.wrap(text, 96 - len(ind))
    if len(body) == 1:
        return [f'{ind}"""{body[0]}"""']
    return [f'{ind}"""{body[0]}'] + [f"{ind}{ln}" for ln in body[1:]] + [f'{ind}"""']


def _gen_class(opt: _Opt) -> list[str]:
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
        for m in pf.enum:
            prop = m.name.lower()
            if len(m.name) == 1 or m.name.startswith("RESERVED") or prop in {p.name for p in opt.pub}:
                continue
            out.append("")
            out.append("    @property")
            out.append(f"    def {prop}(self) -> bool:")
            doc = (m.__doc__ or "").strip()
            if doc and doc != pf.enum.__doc__:
                out += _docstring(doc, "        ")
            out.append(f"        return self.{pf.name} is not None and bool(self.{pf.name} & {int(m):#x})")
    out.append("")
    out.append("")
    out.append(f"class _W_{spec.cls}:")
    out.append(f"    __slots__ = {spec.cls}.__slots__")
    return out


def _gen_enum(cls: type[enum.Enum]) -> list[str]:
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


def _gen_dispatch(opts: list[_Opt], fallback: _Opt, mptcp: bool) -> list[str]:
    by_key: dict[int, list[_Opt]] = {}
    for o in opts:
        key = int(o.spec.subtype) if mptcp else o.spec.kind
        by_key.setdefault(key, []).append(o)
    out: list[str] = []
    table = {}
    for key, group in sorted(by_key.items()):
        if len(group) == 1 and group[0].spec.lengths is None and group[0].spec.version is None:
            table[key] = f"decode_{group[0].fn}"
            continue
        fn = f"_decode_{'subtype' if mptcp else 'kind'}_{key}"
        table[key] = fn
        name = group[0].spec.name
        allowed = sorted({ln for g in group for ln in (g.spec.lengths or ())})
        out.append(f"def {fn}(b, o, n, version=None):")
        out.append(
            f'    """{name}: pick the format by length{" and MPTCP version" if any(g.spec.version is not None for g in group) else ""}."""'  # noqa: E501
        )
        out.append("    err = None")
        for g in group:
            conds = []
            if g.spec.lengths is not None:
                conds.append(f"n in {tuple(g.spec.lengths)!r}")
            if g.spec.version is not None:
                conds.append(f"version in (None, {g.spec.version})")
            out.append(f"    if {' and '.join(conds) or 'True'}:")
            out.append("        try:")
            out.append(f"            return decode_{g.fn}(b, o, n)")
            out.append("        except DecodeError as e:")
            out.append("            err = e")
            out.append("            if version is not None:")
            out.append("                raise")
        out.append("    if err is not None:")
        out.append("        raise err")
        vnote = ""
        if any(g.spec.version is not None for g in group):
            vnote = "%s' % (n, '' if version is None else ' for MPTCP version %d' % version)"
        else:
            vnote = "' % n"
        out.append(
            f"    raise DecodeError({name!r}, 'length', o + 1, 'length %d is none of "
            f"{', '.join(map(str, allowed))}{vnote})"
        )
        out.append("")
        out.append("")
    out.append("_BY_KEY = {")
    for key, fn in table.items():
        out.append(f"    {key:#x}: {fn},")
    out.append("}")
    out.append("")
    out.append("")
    if mptcp:
        out.append("def decode(b, o, n, version=None):")
        out.append('    """Decode the MPTCP option of ``n`` octets at ``o`` in ``b`` (``version``: 0, 1 or None)."""')
        out.append("    if n < 3:")
        out.append(
            "        raise DecodeError('MPTCP', 'length', o + 1, 'length %d leaves no room for the subtype' % n)"
        )
        out.append("    f = _BY_KEY.get(b[o + 2] >> 4)")
    else:
        out.append("def decode(b, o, n, version=None):")
        out.append('    """Decode the TCP option (not MPTCP) of ``n`` octets at ``o`` in ``b``."""')
        out.append("    f = _BY_KEY.get(b[o])")
    out.append("    if f is None:")
    out.append(f"        return decode_{fallback.fn}(b, o, n)")
    out.append("    return f(b, o, n, version)")
    out.append("")
    out.append("")
    out.append("ENCODERS = {")
    for o in opts + [fallback]:
        out.append(f"    {o.spec.cls}: encode_{o.fn},")
    out.append("}")
    out.append("")
    out.append(f"CLASSES = ({', '.join(o.spec.cls for o in opts + [fallback])},)")
    return out


def generate(module, source_name: str, source_text: str) -> str:
    """Python source of the codec module for one spec module (``OPTIONS``, ``FALLBACK``, ``ENUMS``)."""
    opts = [_analyse(s) for s in module.OPTIONS]
    fallback = _analyse(module.FALLBACK)
    mptcp = all(o.spec.subtype is not None for o in opts)
    enums: list = list(getattr(module, "ENUMS", ()))
    for o in opts + [fallback]:
        for e in o.spec.enums:
            if e not in enums:
                enums.append(e)
        for pf in o.pub:
            if pf.enum is not None and pf.enum not in enums:
                enums.append(pf.enum)
    digest = hashlib.sha256(source_text.encode()).hexdigest()[:16]
    mod = _Module()
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
        body += _gen_decoder(mod, o, fast=False) + ["", ""]
        body += _gen_decoder(mod, o, fast=True) + ["", ""]
        body += _gen_encoder(o) + ["", ""]
    body += _gen_dispatch(opts, fallback, mptcp)
    head = [
        f"# Generated by `mptcpspec regen` from spec/{source_name} (sha256 {digest}). Do not edit:",
        "# change the spec and run `mptcpspec regen`.",
        f'"""Codecs for {module.__doc__.strip().splitlines()[0].rstrip(".")}."""',
        "",
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "from enum import IntEnum, IntFlag",
        "from ipaddress import IPv4Address, IPv6Address",
        "from struct import Struct, pack, unpack_from",
        "from struct import error as StructError",
        "from typing import ClassVar",
        "",
        "from mptcpspec.codec.runtime import FlagTable, as_bytes, as_int, as_tuple, ip, packed, short, too_big",
        "from mptcpspec.errors import DecodeError, EncodeError",
        "",
        "_new = object.__new__",
    ]
    for sname, fmt in sorted(mod.structs.items()):
        head.append(f"{sname} = Struct({fmt!r}).unpack_from")
    for aname, code in sorted(mod.arrays.items()):
        head.append(f"{aname} = tuple(Struct('>%d{code}' % i).unpack_from for i in range(16))")
    text = "\n".join(head + ["", ""] + body) + "\n"
    return text
