"""The ``tcp.options.mptcp.*`` fields: per MPTCP option class, what Wireshark 4.0 shows, defined once.

Each entry of the table is an expression of ``o``, one decoded option, in the forms of
:mod:`~mptcpspec.dissect.fieldgen` (one value or ``NONE``; a list in brackets).  From it come the
option's values (:func:`option_fields`, the fields' ``get`` over a packet's options) and the cells
that ``-T fields`` compiles per option class (:func:`option_cells`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from types import SimpleNamespace

from mptcpspec.analysis import PacketInfo
from mptcpspec.codec.options import (
    AddAddr,
    AddAddrV0,
    CutOption,
    Dss,
    DssFlags,
    MalformedOption,
    MpCapable,
    MpCapableFlags,
    MpFail,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MpTcpRst,
    MptcpUnknown,
    RemoveAddr,
    Subtype,
)
from mptcpspec.dissect.fieldgen import cell, compile_getters, values_expr

__all__ = ["OPTION_FIELDS", "P", "OptionCells", "option_cells", "option_fields", "option_getter", "option_subtypes"]

P = "tcp.options.mptcp."

#: A packet's MPTCP options -> the cell of each option field asked for.
OptionCells = Callable[[Sequence[object]], tuple[str, ...]]


_DATA_ACK_PRESENT, _DATA_ACK_8 = int(DssFlags.DATA_ACK_PRESENT), int(DssFlags.DATA_ACK_8)
_MAPPING_PRESENT, _DSN_8, _DATA_FIN = int(DssFlags.MAPPING_PRESENT), int(DssFlags.DSN_8), int(DssFlags.DATA_FIN)
_CHECKSUM_REQUIRED = int(MpCapableFlags.CHECKSUM_REQUIRED)
_EXTENSIBILITY = int(MpCapableFlags.EXTENSIBILITY)
_NO_SOURCE_ADDR = int(MpCapableFlags.NO_SOURCE_ADDR)
_HMAC_SHA = int(MpCapableFlags.HMAC_SHA)


def _flag(bit: int) -> str:
    return f"'1' if int(o.flags) & {bit:#04x} else '0'"


def _opt(attr: str, fmt: str = "") -> str:
    """An attribute that may be absent, printed in decimal or in the format spec ``fmt``."""
    return f"NONE if (v := o.{attr}) is None else " + (f'f"0x{{v:{fmt}}}"' if fmt else "str(v)")


# The flags octet as Wireshark shows it: the subtype in the high nibble, the flags in the low one.
_JOIN_NIBBLE = int(Subtype.MP_JOIN) << 4
_PRIO_NIBBLE = int(Subtype.MP_PRIO) << 4
_TCPRST_NIBBLE = int(Subtype.MP_TCPRST) << 4
_JOIN_FLAGS = f'f"0x{{{_JOIN_NIBBLE:#04x} | o.reserved << 1 | int(o.backup):02x}}"'
_TCPRST_FLAGS = f'f"0x{{{_TCPRST_NIBBLE:#04x} | o.flag_u << 3 | o.flag_v << 2 | o.flag_w << 1 | int(o.transient):02x}}"'
_BACKUP = "'1' if o.backup else '0'"
_IPV4 = "str(o.address) if o.address.version == 4 else NONE"
_IPV6 = "str(o.address) if o.address.version == 6 else NONE"

# Per option class, the fields Wireshark 4.0 shows, in its tree order ("tcp.options.mptcp." left off;
# a name starting with "mptcp." is whole).  Where Wireshark shows nothing (the DSS checksum, subtype
# 0xf's payload, reserved bits of some options), nothing is here: those are in fields of our own.
_TABLE: dict[type, dict[str, str]] = {
    Dss: {
        "flags": 'f"0x{int(o.flags):02x}"',
        "datafin.flag": _flag(_DATA_FIN),
        "dseqn8.flag": _flag(_DSN_8),
        "dseqnpresent.flag": _flag(_MAPPING_PRESENT),
        "dataack8.flag": _flag(_DATA_ACK_8),
        "dataackpresent.flag": _flag(_DATA_ACK_PRESENT),
        "rawdataack": _opt("data_ack"),
        "rawdataseqno": _opt("dsn"),
        "subflowseqno": "NONE if o.dsn is None else str(o.ssn)",
        "datalvllen": "NONE if o.dsn is None else str(o.data_level_length)",
    },
    MpCapable: {
        "version": "str(o.version)",
        "flags": 'f"0x{int(o.flags):02x}"',
        "checksumreq.flags": _flag(_CHECKSUM_REQUIRED),
        "extensibility.flag": _flag(_EXTENSIBILITY),
        "nomoresubflows.flag": f"({_flag(_NO_SOURCE_ADDR)}) if o.version == 1 else NONE",
        "sha256.flag": f"({_flag(_HMAC_SHA)}) if o.version == 1 else NONE",
        "sha1.flag": f"NONE if o.version == 1 else {_flag(_HMAC_SHA)}",
        "reserved.flag": 'f"0x{(int(o.flags) & (0x1E if o.version == 1 else 0x3E)) >> 1:02x}"',
        "sendkey": _opt("sender_key"),
        "recvkey": _opt("receiver_key"),
        "datalvllen": _opt("data_level_length"),
        "checksum": _opt("checksum", "04x"),
    },
    MpJoinSyn: {
        "flags": _JOIN_FLAGS,
        "backup.flag": _BACKUP,
        "addrid": _opt("address_id"),
        "recvtok": _opt("token"),
        "sendrand": _opt("nonce"),
    },
    MpJoinSynAck: {
        "flags": _JOIN_FLAGS,
        "backup.flag": _BACKUP,
        "addrid": _opt("address_id"),
        "sendtrunchmac": _opt("truncated_hmac"),
        "sendrand": _opt("nonce"),
    },
    MpJoinAck: {"reserved": _opt("reserved", "04x"), "sendhmac": "o.hmac.hex()"},
    AddAddrV0: {
        "ipver": _opt("ip_version"),
        "addrid": _opt("address_id"),
        "ipv4": _IPV4,
        "ipv6": _IPV6,
        "port": _opt("port"),
    },
    AddAddr: {
        "echo": "'1' if o.echo else '0'",
        "addrid": _opt("address_id"),
        "ipv4": _IPV4,
        "ipv6": _IPV6,
        "port": _opt("port"),
        "addaddrtrunchmac": _opt("hmac"),
    },
    RemoveAddr: {"mptcp.rm_addr.count": "str(len(o.address_ids))", "addrid": "[str(a) for a in o.address_ids]"},
    MpPrio: {
        "flags": f'f"0x{{{_PRIO_NIBBLE:#04x} | o.reserved << 1 | int(o.backup):02x}}"',
        "backup.flag": _BACKUP,
        "addrid": _opt("address_id"),
    },
    MpFail: {"reserved": _opt("reserved", "04x"), "rawdataseqno": _opt("dsn")},
    MpFastclose: {"reserved": _opt("reserved", "04x"), "recvkey": _opt("receiver_key")},
    MpTcpRst: {
        "flags": _TCPRST_FLAGS,
        "flag_U.flag": "'1' if o.flag_u else '0'",
        "flag_V.flag": "'1' if o.flag_v else '0'",
        "flag_W.flag": "'1' if o.flag_w else '0'",
        "flag_T.flag": "'1' if o.transient else '0'",
        "rst_reason": 'f"0x{int(o.reason):02x}"',
    },
}

#: The option fields, with their descriptions, in the order of the field list.
OPTION_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (P + n if not n.startswith("mptcp.") else n, d)
    for n, d in (
        ("subtype", "MPTCP option subtype"),
        ("version", "MP_CAPABLE version"),
        ("reserved", "reserved bits (MP_JOIN ACK, MP_FAIL, MP_FASTCLOSE)"),
        ("flags", "the flags octet (MP_CAPABLE, DSS, MP_JOIN, MP_PRIO, MP_TCPRST)"),
        ("backup.flag", "backup flag B"),
        ("checksumreq.flags", "MP_CAPABLE flag A: checksum required"),
        ("extensibility.flag", "MP_CAPABLE flag B: extensibility"),
        ("nomoresubflows.flag", "MP_CAPABLE flag C (v1): no more subflows to this address"),
        ("sha1.flag", "MP_CAPABLE flag H (v0): HMAC-SHA1"),
        ("sha256.flag", "MP_CAPABLE flag H (v1): HMAC-SHA256"),
        ("datafin.flag", "DSS flag F: DATA_FIN"),
        ("dseqn8.flag", "DSS flag m: 8-octet DSN"),
        ("dseqnpresent.flag", "DSS flag M: mapping present"),
        ("dataack8.flag", "DSS flag a: 8-octet DATA_ACK"),
        ("dataackpresent.flag", "DSS flag A: DATA_ACK present"),
        ("reserved.flag", "MP_CAPABLE flags D-G (v1) or C-G (v0)"),
        ("flag_U.flag", "MP_TCPRST flag U"),
        ("flag_V.flag", "MP_TCPRST flag V"),
        ("flag_W.flag", "MP_TCPRST flag W"),
        ("flag_T.flag", "MP_TCPRST flag T: transient"),
        ("rst_reason", "MP_TCPRST reason code"),
        ("addrid", "address ID"),
        ("sendkey", "sender's key"),
        ("recvkey", "receiver's key"),
        ("recvtok", "MP_JOIN SYN: receiver's token"),
        ("sendrand", "MP_JOIN: sender's random number"),
        ("sendtrunchmac", "MP_JOIN SYN/ACK: truncated HMAC"),
        ("sendhmac", "MP_JOIN ACK: HMAC (160 bits)"),
        ("addaddrtrunchmac", "ADD_ADDR v1: truncated HMAC"),
        ("rawdataack", "DATA_ACK as sent (4 or 8 octets)"),
        ("rawdataseqno", "Data Sequence Number (as sent: 4 or 8 octets)"),
        ("subflowseqno", "subflow sequence number, relative"),
        ("datalvllen", "data-level length"),
        ("checksum", "checksum (MP_CAPABLE with data; Wireshark 4.0 never shows the DSS one)"),
        ("ipver", "ADD_ADDR v0: IP version"),
        ("echo", "ADD_ADDR v1: echo flag E"),
        ("ipv4", "ADD_ADDR: IPv4 address"),
        ("ipv6", "ADD_ADDR: IPv6 address"),
        ("port", "ADD_ADDR: port"),
        ("mptcp.rm_addr.count", "REMOVE_ADDR: number of address IDs"),
    )
)

_SUBTYPE = P + "subtype"
_OPTION_NAMES = frozenset(n for n, _ in OPTION_FIELDS)


def _full(name: str) -> str:
    return name if name.startswith("mptcp.") else P + name


# (class, field) -> the expression, its cell, and its compiled values function
_EXPR: dict[type, dict[str, str]] = {t: {_full(n): e for n, e in rows.items()} for t, rows in _TABLE.items()}
_CELL: dict[tuple[type, str], str] = {(t, n): cell(e) for t, by in _EXPR.items() for n, e in by.items()}
_SOURCES = {
    f"{t.__name__}_{k}": f"def {t.__name__}_{k}(o):\n    return {values_expr(e)}\n"
    for t, by in _EXPR.items()
    for k, e in enumerate(by.values())
}
_FUNCS = compile_getters(_SOURCES, {})
#: option class -> field -> the field's values on one option of that class
_BY_NAME: dict[type, dict[str, Callable[[object], list[str]]]] = {
    t: {n: _FUNCS[f"{t.__name__}_{k}"] for k, n in enumerate(by)} for t, by in _EXPR.items()
}
_EMPTY: dict[str, Callable[[object], list[str]]] = {}
#: (class, field) -> the option attributes its expression reads
_READS: dict[tuple[type, str], frozenset[str]] = {
    (t, n): frozenset(re.findall(r"\bo\.(\w+)", e)) for t, by in _EXPR.items() for n, e in by.items()
}


def _cut_values(o: CutOption, name: str) -> list[str]:
    """A field of an option that the snapshot length cut: as Wireshark 4.0, shown when every
    octet it is read from was captured (its expression reads only fields captured whole)."""
    t = o.option_class
    if t is RemoveAddr and name == "mptcp.rm_addr.count" and o.length is not None:
        return [str(o.length - 3)]  # Wireshark's count comes from the length octet
    fn = _BY_NAME.get(t, _EMPTY).get(name) if t is not None else None
    if fn is None or not _READS[t, name] <= {n for n, _ in o.fields}:  # type: ignore[index]
        return []
    return fn(SimpleNamespace(**dict(o.fields)))


# A cut option's fields: each asks which of them were captured.
_BY_NAME[CutOption] = {n: (lambda o, n=n: _cut_values(o, n)) for n, _ in OPTION_FIELDS if n != _SUBTYPE}  # type: ignore[misc]


def option_subtypes(o: object) -> list[str]:
    """``tcp.options.mptcp.subtype`` of one option: none for a malformed option too short to hold it."""
    if type(o) is MalformedOption:
        return [str(o.data[2] >> 4)] if len(o.data) >= 3 else []
    if type(o) is CutOption:
        return [] if o.subtype is None else [str(o.subtype)]
    if type(o) is MptcpUnknown:
        return [str(o.subtype)]
    subtype = getattr(o, "SUBTYPE", None)
    return [] if subtype is None else [str(int(subtype))]


def option_fields(opt: object) -> list[tuple[str, str]]:
    """The ``tcp.options.mptcp.*`` fields Wireshark 4.0 shows for one MPTCP option, with our values.

    Which fields appear for which option follows Wireshark's dissector; where Wireshark shows
    nothing (the DSS checksum, subtype 0xf's payload, reserved bits of some options), we add
    nothing here: those values are in fields of our own (``mptcp.dss.checksum``...).
    """
    out = [(_SUBTYPE, v) for v in option_subtypes(opt)]
    for name, fn in _BY_NAME.get(type(opt), _EMPTY).items():
        for v in fn(opt):
            out.append((name, v))
    return out


def option_getter(name: str) -> Callable[[PacketInfo], list[str]]:
    """The ``get`` of an option field: its values over a packet's MPTCP options, in wire order."""
    if name == _SUBTYPE:
        return lambda info: [v for o in info.mptcp for v in option_subtypes(o)]
    by_name = _BY_NAME
    empty = _EMPTY

    def get(info: PacketInfo) -> list[str]:
        m = info.mptcp
        if not m:
            return []
        if len(m) == 1:
            fn = by_name.get(type(m[0]), empty).get(name)
            return [] if fn is None else fn(m[0])
        out: list[str] = []
        for o in m:
            fn = by_name.get(type(o), empty).get(name)
            if fn is not None:
                out += fn(o)
        return out

    return get


def option_cells(
    names: Sequence[str], agg: str
) -> tuple[list[str], OptionCells, dict[type, Callable[[object], tuple[str, ...]]]]:
    """The option fields among ``names`` (each once, in order), and a function
    giving, for a packet's MPTCP options (``PacketInfo.mptcp``, not empty), the printed cell of each
    of them ('' for an absent one), as a tuple in that order.

    For a packet with one MPTCP option (nearly all of them), the cells come from a function compiled
    for the option's class on first use, from the table's cells; for several, one pass over the
    options with the table's values functions.  The third value is the table of those compiled
    functions (option class -> function of the option), for callers that look one up themselves
    before calling the second."""
    listed = [n for n in names if n in _OPTION_NAMES]
    wanted = list(dict.fromkeys(listed))
    # Over several options, a field named twice in ``names`` has its values taken twice, as this
    # writer always did (the single-option path and the getters do not).
    tables = {t: [(n, fn) for n in listed if (fn := by.get(n)) is not None] for t, by in _BY_NAME.items()}
    subtype = _SUBTYPE in wanted
    compiled: dict[type, Callable[[object], tuple[str, ...]]] = {}

    def compile_for(t: type) -> Callable[[object], tuple[str, ...]]:
        if t is CutOption:  # its fields depend on where the cut fell: read each time
            fns = [option_subtypes if n == _SUBTYPE else _BY_NAME[t].get(n, lambda o: []) for n in wanted]
            return lambda o: tuple(agg.join(fn(o)) for fn in fns)
        env: dict[str, object] = {"AGG": agg, "SUBTYPE": option_subtypes}
        by = _EXPR.get(t, {})
        parts = []
        for n in wanted:
            if n == _SUBTYPE:
                if t is not MalformedOption and t is not MptcpUnknown and getattr(t, "SUBTYPE", None) is not None:
                    parts.append(repr(option_subtypes(t)[0]))  # the same for every option of t
                else:
                    parts.append("AGG.join(SUBTYPE(o))")
            elif n in by:
                parts.append(_CELL[t, n])
            else:
                parts.append("''")
        # Options are immutable and the analyzer hands the same DSS object to the segments that
        # repeat it: the cells of the latest options are kept by identity (each held, so its id
        # stays its own while kept).
        env["KEPT"] = {}
        exec(
            "def cells(o):\n"
            "    k = KEPT.get(id(o))\n"
            "    if k is not None and k[0] is o:\n"
            "        return k[1]\n"
            f"    c = ({''.join(x + ', ' for x in parts)})\n"
            "    if len(KEPT) >= 64:\n"
            "        KEPT.clear()\n"
            "    KEPT[id(o)] = (o, c)\n"
            "    return c\n",
            env,
        )  # noqa: S102 - built from the option table's own cells
        fn = env["cells"]
        assert callable(fn)
        return fn

    def cells(m: Sequence[object]) -> tuple[str, ...]:
        if len(m) == 1:
            o = m[0]
            f = compiled.get(type(o))
            if f is None:
                f = compiled[type(o)] = compile_for(type(o))
            return f(o)
        acc: dict[str, list[str]] = {}
        for o in m:
            if subtype:
                acc.setdefault(_SUBTYPE, []).extend(option_subtypes(o))
            for n, fn in tables.get(type(o), ()):
                v = fn(o)
                if v:
                    acc.setdefault(n, []).extend(v)
        return tuple(agg.join(acc[n]) if n in acc else "" for n in wanted)

    return wanted, cells, compiled
