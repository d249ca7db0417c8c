"""Generate the encoder function of one option format.

``encode_<name>(value) -> bytes`` computes the length, checks every field against its size and
presence condition, and refuses any value the decoder could not have produced, naming the field
and the reason in an :class:`~mptcpspec.errors.EncodeError`.
"""

from __future__ import annotations

from mptcpspec.codec.ir import Array, Bits, Check, Choice, End, Raw, Tell, Uint, uint_fmt
from mptcpspec.codec.layout import OPTION_SPACE, LocalNames, OptionLayout, field_offset_hint, needs_length
from mptcpspec.errors import SpecError

__all__ = ["encoder_source"]


def encoder_source(opt: OptionLayout) -> list[str]:
    """``encode_<name>`` of one option format, as lines of source."""
    spec = opt.spec
    name = spec.name
    nm = LocalNames(opt)
    out = [
        f"def encode_{opt.fn}(v: {spec.cls}) -> bytes:",
        f'    """Encode a {spec.cls} as the octets of one {spec.name} option."""',
    ]
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
        elif pf.kind == "array":
            if pf.optional:
                raise SpecError(f"{name}.{pf.name}: an array field cannot be optional")
            src = f"as_uints({name!r}, {pf.name!r}, v.{pf.name}, {8 * pf.item_octets})"
        out.append(f"    {fv} = {src}")
        if pf.kind in ("uint", "bool", "flags", "enum"):
            limit = (1 << pf.bits) - 1
            guard = f"{fv} is not None and " if pf.optional else ""
            out.append(f"    if {guard}not (isinstance({fv}, int) and 0 <= {fv} <= {limit:#x}):")
            out.append(f"        raise too_big({name!r}, {pf.name!r}, {fv}, {pf.size})")
    out.append("    fmt = '>'")
    out.append("    vals: list[int | bytes] = []")
    out.append("    pos = 0")
    deferred: list[str] = []
    has_length = "length" in opt.fields
    for it in opt.items:
        if isinstance(it, Tell):
            out.append(f"    t_{it.name} = pos")
            continue
        if isinstance(it, Check):
            fld, _ = field_offset_hint(opt, it.cond)
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
            if needs_length(it.cond):
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
            if not isinstance(v, Uint):
                raise SpecError(f"{name}.{it.name}: a constant field is an unsigned integer")
            out.append(f"{ind}fmt += {uint_fmt(v.size)!r}")
            out.append(f"{ind}vals.append({it.const})")
            out.append(f"{ind}pos += {v.size}")
        elif isinstance(v, Bits):
            parts: list[str] = []
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
            if needs_length(v.cond):
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
