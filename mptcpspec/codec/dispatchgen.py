"""Generate the dispatch of a codec module: which format decodes an option, which encodes a value.

An MPTCP option is picked by its subtype (a TCP option by its kind), then, where formats share a
subtype, by its length and the connection's MPTCP version.  The module also gets ``ENCODERS``
(class -> encoder) and ``CLASSES``.
"""

from __future__ import annotations

from mptcpspec.codec.layout import OptionLayout
from mptcpspec.errors import SpecError

__all__ = ["dispatch_source", "option_union"]


def option_union(opts: list[OptionLayout]) -> str:
    """``A | B | ...``: the type of any value the module decodes."""
    return " | ".join(o.spec.cls for o in opts)


def dispatch_source(opts: list[OptionLayout], fallback: OptionLayout, mptcp: bool) -> list[str]:
    """``Option``, ``decode`` (by subtype or kind, then length and version), ``ENCODERS`` and ``CLASSES``."""
    by_key: dict[int, list[OptionLayout]] = {}
    for o in opts:
        key = o.spec.kind
        if mptcp:
            if o.spec.subtype is None:
                raise SpecError(f"{o.spec.name} ({o.spec.cls}): an MPTCP option format needs a subtype")
            key = int(o.spec.subtype)
        by_key.setdefault(key, []).append(o)
    out: list[str] = [
        "#: Any value :func:`decode` returns.",
        f"Option: TypeAlias = {option_union(opts + [fallback])}",
        "",
        "",
    ]
    table: dict[int, str] = {}
    for key, group in sorted(by_key.items()):
        if len(group) == 1 and group[0].spec.lengths is None and group[0].spec.version is None:
            table[key] = f"decode_{group[0].fn}"
            continue
        fn = f"_decode_{'subtype' if mptcp else 'kind'}_{key}"
        table[key] = fn
        name = group[0].spec.name
        allowed = sorted({ln for g in group for ln in (g.spec.lengths or ())})
        out.append(f"def {fn}(b: bytes, o: int, n: int, version: int | None = None) -> Option:")
        out.append(
            f'    """{name}: pick the format by length{" and MPTCP version" if any(g.spec.version is not None for g in group) else ""}."""'  # noqa: E501
        )
        out.append("    err: DecodeError | None = None")
        for g in group:
            conds: list[str] = []
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
    out.append("_BY_KEY: dict[int, Callable[[bytes, int, int, int | None], Option]] = {")
    for key, fn in table.items():
        out.append(f"    {key:#x}: {fn},")
    out.append("}")
    out.append("")
    out.append("")
    if mptcp:
        out.append("def decode(b: bytes, o: int, n: int, version: int | None = None) -> Option:")
        out.append('    """Decode the MPTCP option of ``n`` octets at ``o`` in ``b`` (``version``: 0, 1 or None)."""')
        out.append("    if n < 3:")
        out.append(
            "        raise DecodeError('MPTCP', 'length', o + 1, 'length %d leaves no room for the subtype' % n)"
        )
        out.append("    f = _BY_KEY.get(b[o + 2] >> 4)")
    else:
        out.append("def decode(b: bytes, o: int, n: int, version: int | None = None) -> Option:")
        out.append('    """Decode the TCP option (not MPTCP) of ``n`` octets at ``o`` in ``b``."""')
        out.append("    f = _BY_KEY.get(b[o])")
    out.append("    if f is None:")
    out.append(f"        return decode_{fallback.fn}(b, o, n)")
    out.append("    return f(b, o, n, version)")
    out.append("")
    out.append("")
    out.append("#: class -> its encoder (each takes a value of its own class, hence ``Any``).")
    out.append("ENCODERS: dict[type[Option], Callable[[Any], bytes]] = {")
    for o in opts + [fallback]:
        out.append(f"    {o.spec.cls}: encode_{o.fn},")
    out.append("}")
    out.append("")
    out.append(f"CLASSES = ({', '.join(o.spec.cls for o in opts + [fallback])},)")
    return out
