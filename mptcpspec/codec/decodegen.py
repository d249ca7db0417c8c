"""Generate the decoder functions of one option format.

:func:`decoder_source` writes two functions per format: ``_checked_<name>``, which tests every
bound and constant where it is read and raises the precise :class:`~mptcpspec.errors.DecodeError`,
and ``decode_<name>``, the fast path, which reads without bounds checks inside one ``try`` and
hands any input that fails a test to the checked one.  Consecutive fixed-size reads under the
same condition are fused into one precompiled ``struct`` call, kept in :class:`Unpackers`.
"""

from __future__ import annotations

import re

from mptcpspec.codec.ir import Array, Bits, Check, Choice, End, Expr, Field, Item, Raw, Tell, uint_fmt
from mptcpspec.codec.layout import (
    LocalNames,
    OptionLayout,
    field_offset_hint,
    field_size,
    static_size,
    struct_code,
)
from mptcpspec.errors import SpecError

__all__ = ["Unpackers", "decoder_source", "emit_bits", "is_fusable", "cond_key"]


def is_fusable(it: Item) -> bool:
    """Whether ``it`` is a field of fixed size (or a choice of two), read with its neighbours."""
    return isinstance(it, Field) and (static_size(it) is not None or isinstance(it.value, Choice))


def cond_key(it: Item) -> str | None:
    """What fields must share to be read together: the same presence condition."""
    return None if not isinstance(it, Field) or it.cond is None else repr(it.cond)


class Unpackers:
    """The precompiled ``struct`` readers one generated module needs, by name."""

    def __init__(self) -> None:
        self.structs: dict[str, str] = {}
        self.arrays: dict[str, str] = {}

    def array_unpacker(self, item_size: int) -> str:
        """A table of unpackers for 0..15 items of one size."""
        name = f"_A_{uint_fmt(item_size)}"
        self.arrays[name] = uint_fmt(item_size)
        return name

    def unpacker(self, fmt: str) -> str:
        """The reader of one ``struct`` format."""
        name = "_U_" + fmt.lstrip(">").replace("s", "S")
        self.structs[name] = fmt
        return name


def emit_bits(
    bits: Bits, hv: str, ind: str, out: list[str], name: str, pos: str, must: list[str] | None = None
) -> None:
    """Split bit group ``hv`` into member variables, checking constants (or adding them to ``must``)."""
    for m in bits.members:
        mask = (1 << m.bits) - 1
        ex = f"{hv} >> {m.shift} & {mask}" if m.shift else f"{hv} & {mask}"
        if m.shift + m.bits == bits.size * 8:
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


def decoder_source(mod: Unpackers, opt: OptionLayout, fast: bool) -> list[str]:
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
    nm = LocalNames(opt)
    fn = f"decode_{opt.fn}" if fast else f"_checked_{opt.fn}"
    out = [f"def {fn}(b: bytes, o: int, n: int, version: int | None = None) -> {spec.cls}:"]
    if fast:
        out.append(f'    """Decode {spec.name} ({spec.cls}) from the ``n`` octets at ``o`` in ``b``."""')
    else:
        out.append(f'    """{spec.cls}: the checked decoder; raises the precise DecodeError."""')
    # Optional fields read one by one are None in their other branch: declared first (no code).
    for it in opt.items:
        if isinstance(it, Field) and it.cond is not None and not is_fusable(it):
            if isinstance(it.value, Raw):
                out.append(f"    f_{it.name}: bytes | None")
            elif isinstance(it.value, Array):
                out.append(f"    f_{it.name}: tuple[int, ...] | None")
    if fast:
        out.append("    try:")
        base = "        "
    else:
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

    def cond_src(expr: Expr) -> str:
        """Condition source; a lone flag test needs no normalisation to 0/1."""
        text = nm.src(expr)
        m = re.fullmatch(r"\(f_(\w+) >> (\d+) & 1\)", text)
        if m:
            return f"f_{m.group(1)} & {1 << int(m.group(2)):#x}"
        return text

    def read_group(group: list[Field], ind: str) -> None:
        """Fused read of fixed-size fields (Choices expanded into branches)."""
        nonlocal st
        choices = [it.value for it in group if isinstance(it.value, Choice)]

        def emit_combo(combo: tuple[bool, ...], ind2: str) -> int:
            pick = dict(zip((id(c) for c in choices), combo))
            fmt = ">" + "".join(struct_code(it, pick.get(id(it.value))) for it in group)
            size = sum(field_size(it, pick.get(id(it.value))) for it in group)
            sizes = tuple((it.name, field_size(it, pick.get(id(it.value)))) for it in group)
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
                    emit_bits(it.value, f"h_{it.name}", ind2, out, name, at, must if fast else None)
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
                k += field_size(it, pick.get(id(it.value)))
            if dynamic:
                out.append(f"{ind2}p += {size}")
            return size

        if not choices:
            size = emit_combo((), ind)
            if not dynamic:
                st += size
            return
        go_dynamic(ind)

        def nest(k: int, combo: tuple[bool, ...], ind2: str) -> None:
            if k == len(choices):
                emit_combo(combo, ind2)
                return
            out.append(f"{ind2}if {cond_src(choices[k].cond)}:")
            nest(k + 1, combo + (True,), ind2 + "    ")
            out.append(f"{ind2}else:")
            nest(k + 1, combo + (False,), ind2 + "    ")

        nest(0, (), ind)

    i = 0
    while i < len(items):
        it = items[i]
        if isinstance(it, Field) and is_fusable(it):
            key = cond_key(it)
            j = i + 1
            while j < len(items) and is_fusable(items[j]) and cond_key(items[j]) == key:
                j += 1
            group = [g for g in items[i:j] if isinstance(g, Field)]
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
            fld, off = field_offset_hint(opt, it.cond)
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
            val = f"_T_{pf.enum_class.__name__}[{fv}]"
        elif pf.kind == "enum":
            val = f"_E_{pf.enum_class.__name__}.get({fv}, {fv})"
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
