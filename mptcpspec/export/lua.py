"""A Wireshark Lua plugin generated from the schemas in ``spec/``.

``mptcpspec regen`` writes ``mptcpspec.lua``: a post-dissector that registers the
protocol ``mptcpspec`` and decodes every MPTCP option (TCP option kind 30) of
every TCP header in a packet, with fields ``mptcpspec.*`` that do not clash with
Wireshark's own ``tcp.options.mptcp.*``::

    tshark -X lua_script:mptcpspec.lua -r capture.pcap -Y mptcpspec -V

It reads the options area Wireshark's TCP dissector found (``tcp.options``),
walks it by kind and length, and decodes each MPTCP option as the Python codec
does with no MPTCP version given: formats of one subtype are tried in spec
order, the first that decodes wins; a subtype the spec does not define is
shown as the catch-all; an option no format accepts is marked malformed
(expert info ``mptcpspec.malformed``) with the reason.  Subtypes Wireshark
does not know (0xf, and any added to ``spec/`` later) decode like the others.

Field names: ``mptcpspec.length``, ``mptcpspec.subtype``, ``mptcpspec.format``
(the format's name, e.g. ``mp_join_syn``), then ``mptcpspec.<format>.<field>``
for every field of the schema; flags get ``mptcpspec.<format>.<field>.<flag>``;
an IP address is ``<field>`` (IPv4) or ``<field>6`` (IPv6).  Tested with
tshark 4.0 (Lua 5.2).
"""

from __future__ import annotations

import enum
import re
from types import ModuleType

from mptcpspec.codec.ir import (
    Array,
    BitMember,
    Bits,
    Check,
    Choice,
    End,
    Expr,
    Field,
    IntEnumClass,
    Raw,
    Tell,
    Uint,
    lower,
    member_docs,
)
from mptcpspec.codec.layout import snake
from mptcpspec.codec.schema import OptionSpec
from mptcpspec.errors import SpecError
from mptcpspec.export.exprs import LUA, render
from mptcpspec.export.ksy import BANNER

__all__ = ["render_lua"]


def lstr(s: str) -> str:
    """A Lua string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


#: Fields shown in hexadecimal, as Wireshark shows keys, tokens, nonces, HMACs and checksums.
_HEX = re.compile(r"key|token|nonce|hmac|checksum")


def _label(doc: str, name: str) -> str:
    doc = (doc or "").strip().split("\n")[0]
    return doc if doc and len(doc) <= 80 else name


class _Format:
    """Fields and decoder of one option format."""

    def __init__(self, opt: OptionSpec, fields: list[str], vstrings: dict[IntEnumClass, str]) -> None:
        self.opt = opt
        self.fmt = snake(opt.cls)
        self.prefix = f"mptcpspec.{self.fmt}"
        self.fields = fields  # shared list of ProtoField declarations
        self.vstrings = vstrings  # enum class -> Lua table name
        self.items = lower(opt)
        self.known: dict[str, Field] = {}
        self.members: dict[str, BitMember] = {}
        self.tells: set[str] = set()

    def fail(self, why: str) -> SpecError:
        return SpecError(f"Lua export of {self.opt.name} ({self.opt.cls}): {why}")

    def var(self, *parts: str) -> str:
        return "f_" + "_".join([self.fmt, *parts])

    def declare(self, var: str, ctor: str, name: str, label: str, *rest: str) -> None:
        args = ", ".join([lstr(f"{self.prefix}.{name}"), lstr(label), *rest])
        self.fields.append(f"local {var} = ProtoField.{ctor}({args})")
        self.fields.append(f"fields[#fields + 1] = {var}")

    def ref(self, f: str, m: str | None) -> str | tuple[str, str]:
        """A field reference in Lua (with ``"bool"`` for a boolean)."""
        if f == "length":
            return "n"
        if f in self.tells:
            return f"v[{lstr(f)}]"
        if m is None and f in self.members:
            mem = self.members[f]
            return (f"(v.{f} ~= 0)", "bool") if mem.flag else f"v.{f}"
        fld = self.known.get(f)
        if fld is not None:
            if m is None:
                v = fld.value
                if (isinstance(v, Uint) and v.size == 8) or (
                    isinstance(v, Choice) and 8 in (v.then.size, v.other.size)
                ):
                    raise self.fail(f"a condition uses the 64-bit field {f!r}: Lua 5.2 numbers cannot hold it")
                return f"v.{f}"
            if isinstance(fld.wrap, type) and issubclass(fld.wrap, enum.Flag) and m in fld.wrap.__members__:
                return (f"(bit32.band(v.{f}, {int(fld.wrap[m]):#x}) ~= 0)", "bool")
            if isinstance(fld.value, Bits):
                bit = {mm.name: mm for mm in fld.value.members}.get(m)
                if bit is not None:
                    return (f"(v.{m} ~= 0)", "bool") if bit.flag else f"v.{m}"
        raise self.fail(f"unknown reference {f}{'.' + m if m else ''}")

    def cond(self, expr: Expr) -> str:
        return render(expr, LUA, self.ref, want="bool")

    def size(self, expr: int | Expr) -> str:
        return str(expr) if isinstance(expr, int) else render(expr, LUA, self.ref, want="int")

    def decoder(self) -> list[str]:
        """``local function d_<fmt>(r, n)``: items to show, or nil, offset, field, reason."""
        name = self.opt.name
        out = [
            f"-- {name} ({self.opt.cls}): {self.opt.rfc}",
            f"local function d_{self.fmt}(r, n)",
            "    local v, it, p = {}, {}, 0",
        ]
        ind = "    "
        items = self.items
        for it in items:
            if isinstance(it, Tell):
                self.tells.add(it.name)
                out.append(f"{ind}v[{lstr(it.name)}] = p")
                continue
            if isinstance(it, Check):
                out.append(f"{ind}if not ({self.cond(it.cond)}) then return nil, p, nil, {lstr(it.reason)} end")
                continue
            if isinstance(it, End):
                out.append(
                    f'{ind}if p ~= n then return nil, p, nil, (n - p) .. " octets after the end of the option" end'
                )
                continue
            out += [ind + ln for ln in self.field(it)]
        out.append("    return it")
        out.append("end")
        return out

    def need(self, nbytes: str, fname: str) -> str:
        return (
            f"if p + {nbytes} > n then return nil, p, {lstr(fname)}, "
            f'"needs " .. ({nbytes}) .. " octets, " .. (n - p) .. " left in the option" end'
        )

    def field(self, it: Field) -> list[str]:
        v = it.value
        out: list[str] = []
        body: list[str] = []
        name = it.name
        if isinstance(v, Bits):
            size = v.size
            out.append(self.need(str(size), name))
            total = size * 8
            for m in v.members:
                mask = ((1 << m.bits) - 1) << m.shift
                ctor = "uint8" if size == 1 else "uint16" if size == 2 else "uint32"
                body.append(f"v.{m.name} = r(p, {size}):bitfield({total - m.shift - m.bits}, {m.bits})")
                if m.const is not None:
                    body.append(
                        f'if v.{m.name} ~= {m.const} then return nil, p, {lstr(m.name)}, "must be {m.const}" end'
                    )
                    self.members[m.name] = m
                    continue
                var = self.var(m.name)
                if m.flag:
                    self.declare(var, "bool", m.name, _label(m.doc, m.name), str(total), "nil", f"{mask:#x}")
                else:
                    self.declare(var, ctor, m.name, _label(m.doc, m.name), "base.DEC", "nil", f"{mask:#x}")
                body.append(f"it[#it + 1] = {{{var}, p, {size}}}")
                self.members[m.name] = m
            body.append(f"p = p + {size}")
            self.known[name] = it
            return out + body
        label = _label(it.doc, name)
        var = self.var(name)
        if name in ("kind", "length") and isinstance(v, Uint) and v.size == 1:
            # Kind and length are shown once per option (mptcpspec.length); the kind of the
            # catch-all is 30 by construction.
            out.append(self.need("1", name))
            out.append(f"v.{name} = r(p, 1):uint()")
            if it.const is not None:
                out.append(f'if v.{name} ~= {it.const} then return nil, p, {lstr(name)}, "must be {it.const}" end')
            out.append("p = p + 1")
            self.known[name] = it
            return out
        if isinstance(v, (Uint, Choice)):
            if isinstance(v, Uint):
                sz = str(v.size)
                big = v.size == 8
                width = v.size * 8
            else:
                sz = f"(({self.cond(v.cond)}) and {v.then.size} or {v.other.size})"
                big = max(v.then.size, v.other.size) == 8
                width = max(v.then.size, v.other.size) * 8
            read = f"r(p, {sz}):uint64()" if big else f"r(p, {sz}):uint()"
            wrap = it.wrap
            if it.const is None:
                if isinstance(wrap, type) and issubclass(wrap, enum.Flag):
                    self.declare(var, f"uint{width}", name, label, "base.HEX")
                elif isinstance(wrap, type) and issubclass(wrap, enum.Enum):
                    self.declare(var, f"uint{width}", name, label, "base.DEC", self.vstrings[wrap])
                else:
                    self.declare(var, f"uint{width}", name, label, "base.HEX" if _HEX.search(name) else "base.DEC")
            body.append(self.need(sz, name))
            body.append(f"v.{name} = {read}")
            if it.const is not None:
                body.append(f'if v.{name} ~= {it.const} then return nil, p, {lstr(name)}, "must be {it.const}" end')
            else:
                kids = []
                if isinstance(wrap, type) and issubclass(wrap, enum.Flag):
                    for flag in wrap:
                        fname = flag.name or f"bit_{int(flag):#x}"
                        kvar = self.var(name, fname.lower())
                        mdoc = member_docs(wrap).get(fname, "")
                        self.declare(
                            kvar,
                            "bool",
                            f"{name}.{fname.lower()}",
                            _label(mdoc or "", fname),
                            str(width),
                            "nil",
                            f"{int(flag):#x}",
                        )
                        kids.append(kvar)
                value = f", {read}" if big else ""
                body.append(f"it[#it + 1] = {{{var}, p, {sz}{value}, kids = {{{', '.join(kids)}}}}}")
            body.append(f"p = p + {sz}")
        elif isinstance(v, Raw):
            sz = "(n - p)" if v.size is None else f"({self.size(v.size)})"
            body.append(self.need(sz, name))
            if it.wrap == "address":
                self.declare(var, "ipv4", name, label)
                self.declare(var + "6", "ipv6", name + "6", label)
                body.append(
                    f"if {sz} == 4 then it[#it + 1] = {{{var}, p, 4}} "
                    f"elseif {sz} == 16 then it[#it + 1] = {{{var}6, p, 16}} "
                    f'else return nil, p, {lstr(name)}, "an address is 4 or 16 octets" end'
                )
            else:
                self.declare(var, "bytes", name, label)
                body.append(f"if {sz} > 0 then it[#it + 1] = {{{var}, p, {sz}}} end")
            body.append(f"p = p + {sz}")
        elif isinstance(v, Array):
            cnt = self.size(v.count)
            self.declare(var, f"uint{v.item_size * 8}", name, label, "base.DEC")
            body.append(f"local count = {cnt}")
            body.append(self.need(f"count * {v.item_size}", name))
            body.append(f"for i = 0, count - 1 do it[#it + 1] = {{{var}, p + i * {v.item_size}, {v.item_size}}} end")
            body.append(f"p = p + count * {v.item_size}")
        else:  # pragma: no cover
            raise self.fail(f"field {name}: unsupported value {v!r}")
        self.known[name] = it
        if it.cond is not None:
            out.append(f"if {self.cond(it.cond)} then")
            out += ["    " + b for b in body]
            out.append("end")
        else:
            out += body
        return out


def render_lua(mptcp_module: ModuleType) -> dict[str, str]:
    """``{"mptcpspec.lua": text}`` from the MPTCP spec module."""
    opts: list[OptionSpec] = list(mptcp_module.OPTIONS)
    fb: OptionSpec = mptcp_module.FALLBACK
    src = getattr(mptcp_module, "__spec_file__", "options.py")
    fields: list[str] = []
    vstrings: dict[IntEnumClass, str] = {}
    vs_lines: list[str] = []
    enums: list[IntEnumClass] = list(getattr(mptcp_module, "ENUMS", ())) + [e for o in opts + [fb] for e in o.enums]
    for e in enums:
        if issubclass(e, enum.Flag) or e in vstrings:
            continue
        tbl = f"vs_{snake(e.__name__)}"
        vstrings[e] = tbl
        docs = member_docs(e)
        names = ", ".join(
            f"[{int(m)}] = {lstr(_label(docs.get(m.name, '').rstrip('.'), m.name))}" for m in e if m.name is not None
        )
        vs_lines.append(f"local {tbl} = {{{names}}}")
    subtype_vs = next((t for e, t in vstrings.items() if e.__name__ == "Subtype"), "nil")
    formats = [_Format(o, fields, vstrings) for o in opts + [fb]]
    decoders: list[str] = []
    for f in formats:
        decoders += f.decoder() + [""]
    # Dispatch: subtype -> formats in spec order, with the lengths each accepts.
    by_sub: dict[int, list[_Format]] = {}
    for f in formats[:-1]:
        if f.opt.subtype is None:
            raise f.fail("an MPTCP option format needs a subtype")
        by_sub.setdefault(int(f.opt.subtype), []).append(f)
    table: list[str] = []
    for sub, group in sorted(by_sub.items()):
        entries: list[str] = []
        for f in group:
            lens = "nil" if f.opt.lengths is None else "{" + ", ".join(f"[{n}] = true" for n in f.opt.lengths) + "}"
            entries.append(f"{{{lstr(f.fmt)}, d_{f.fmt}, {lens}, {lstr(f.opt.name)}}}")
        allowed = sorted({n for f in group for n in (f.opt.lengths or ())})
        table.append(f"    [{sub}] = {{{', '.join(entries)}, allowed = {lstr(', '.join(map(str, allowed)))}}},")
    fbf = formats[-1]
    lua = [
        f"-- {BANNER.format(src=src)}",
        "--",
        "-- mptcpspec: Multipath TCP options (RFC 8684, RFC 6824) for Wireshark and tshark, decoded",
        "-- as mptcpspec decodes them.  Load it with",
        "--     tshark -X lua_script:mptcpspec.lua -r FILE -Y mptcpspec -V",
        "-- or copy it to Wireshark's personal Lua plugins folder.",
        "",
        'local proto = Proto("mptcpspec", "Multipath TCP options (mptcpspec)")',
        "local fields = {}",
        *vs_lines,
        'local f_length = ProtoField.uint8("mptcpspec.length", "Length", base.DEC)',
        f'local f_subtype = ProtoField.uint8("mptcpspec.subtype", "Subtype", base.HEX, {subtype_vs}, 0xf0)',
        'local f_format = ProtoField.string("mptcpspec.format", "Format")',
        'local f_reason = ProtoField.string("mptcpspec.malformed", "Malformed")',
        "fields[#fields + 1] = f_length",
        "fields[#fields + 1] = f_subtype",
        "fields[#fields + 1] = f_format",
        "fields[#fields + 1] = f_reason",
        *fields,
        "proto.fields = fields",
        'local ef_malformed = ProtoExpert.new("mptcpspec.malformed.expert", "Malformed MPTCP option",',
        "                                     expert.group.MALFORMED, expert.severity.ERROR)",
        "proto.experts = {ef_malformed}",
        "",
        *decoders,
        "local by_subtype = {",
        *table,
        "}",
        "",
        "-- Decode one option (the TvbRange r of n octets): format name, items, or nil and why.",
        "local function decode(r, n)",
        '    if n < 3 then return nil, nil, 1, "length", "length " .. n .. " leaves no room for the subtype" end',
        "    local group = by_subtype[r(2, 1):bitfield(0, 4)]",
        "    if group == nil then",
        f"        local items, at, fld, why = d_{fbf.fmt}(r, n)",
        f"        return {lstr(fbf.fmt)}, items, at, fld, why, {lstr(fbf.opt.name)}",
        "    end",
        "    local at, fld, why, pname",
        "    for _, f in ipairs(group) do",
        "        if f[3] == nil or f[3][n] then",
        "            local items, a, fl, w = f[2](r, n)",
        "            if items then return f[1], items, nil, nil, nil, f[4] end",
        "            at, fld, why, pname = a, fl, w, f[4]  -- the last format's error, as the Python codec raises",
        "        end",
        "    end",
        "    if at == nil then",
        '        return nil, nil, 1, "length", "length " .. n .. " is none of " .. group.allowed, group[1][4]',
        "    end",
        "    return nil, nil, at, fld, why, pname",
        "end",
        "",
        'local tcp_options = Field.new("tcp.options")',
        "",
        "local function show(tree, r, n)",
        "    local fmt, items, at, fld, why, pname = decode(r, n)",
        '    local label = fmt and (pname .. " (" .. fmt .. ")") or "malformed"',
        '    local t = tree:add(proto, r, "mptcpspec: " .. label .. ", " .. n .. " octets")',
        "    t:add(f_length, r(1, 1))",
        "    if n >= 3 then t:add(f_subtype, r(2, 1)) end",
        "    if not fmt then",
        '        local msg = (pname or "MPTCP") .. (fld and ("." .. fld .. " at offset " .. at) or "") .. ": " .. why',
        "        t:add(f_reason, r, msg)",
        '        t:add_proto_expert_info(ef_malformed, "Malformed MPTCP option: " .. msg)',
        "        return",
        "    end",
        "    t:add(f_format, r, fmt)",
        "    for _, item in ipairs(items) do",
        "        local sub",
        "        if item[4] ~= nil then",
        "            sub = t:add(item[1], r(item[2], item[3]), item[4])",
        "        else",
        "            sub = t:add(item[1], r(item[2], item[3]))",
        "        end",
        "        if item.kids then",
        "            for _, kid in ipairs(item.kids) do sub:add(kid, r(item[2], item[3])) end",
        "        end",
        "    end",
        "end",
        "",
        "function proto.dissector(tvb, pinfo, tree)",
        "    for _, fi in ipairs({tcp_options()}) do",
        "        local area = fi.range",
        "        local len = fi.len",
        "        local i = 0",
        "        while area and i < len do",
        "            local kind = area(i, 1):uint()",
        "            if kind == 0 then break end",
        "            if kind == 1 then",
        "                i = i + 1",
        "            else",
        "                if i + 1 >= len then break end",
        "                local n = area(i + 1, 1):uint()",
        "                if n < 2 or i + n > len then",
        f"                    if kind == {mptcp_module.KIND_MPTCP} then",
        '                        local t = tree:add(proto, area(i, len - i), "mptcpspec: malformed")',
        '                        t:add(f_reason, area(i, len - i), "option length " .. n .. " does not fit the options area")',  # noqa: E501
        "                        t:add_proto_expert_info(ef_malformed)",
        "                    end",
        "                    break",
        "                end",
        f"                if kind == {mptcp_module.KIND_MPTCP} then show(tree, area(i, n), n) end",
        "                i = i + n",
        "            end",
        "        end",
        "    end",
        "end",
        "",
        "register_postdissector(proto, true)",
    ]
    return {"mptcpspec.lua": "\n".join(lua) + "\n"}
