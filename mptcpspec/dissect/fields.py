"""Named fields of a dissected packet, in Wireshark's names and display formats where it has them.

``FIELDS`` maps each field name to a :class:`Field`; ``Field.values(info)`` gives its values on one
:class:`~mptcpspec.analysis.model.PacketInfo` as the strings ``tshark -T fields`` prints (decimal
integers, hexadecimal where Wireshark displays hexadecimal, one value per occurrence).  Fields that
Wireshark 4.0 has keep its name (``source == "wireshark"``); the analysis Wireshark lacks is under
``mptcp.`` too, under names Wireshark 4.0 does not use (``source == "mptcpspec"``).

>>> from mptcpspec.dissect.fields import FIELDS
>>> FIELDS["tcp.options.mptcp.rawdataseqno"].description
'Data Sequence Number (as sent: 4 or 8 octets)'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from mptcpspec.analysis import PacketInfo
from mptcpspec.codec.options import (
    AddAddr,
    AddAddrV0,
    Dss,
    MalformedOption,
    MpCapable,
    MpExperimental,
    MpFail,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MpTcpRst,
    MptcpUnknown,
    RemoveAddr,
)

__all__ = ["Field", "FIELDS", "option_fields", "field_names"]

P = "tcp.options.mptcp."


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    description: str
    source: str  #: "wireshark" (same name and meaning as Wireshark 4.0) or "mptcpspec"
    get: Callable[[PacketInfo], list]
    option: bool = False  #: one of the option fields that :func:`option_fields` yields
    #: A Python expression giving the printed cell from ``i`` (the PacketInfo) and ``p`` (its Packet,
    #: not None) in the default output mode (every occurrence, no quotes): the values joined with
    #: ``AGG``, '' when there is none; ``GET(i)`` in it is the field's own ``get``.  The fields writer
    #: compiles these into one function per field list.
    fast: str | None = None

    def values(self, info: PacketInfo) -> list[str]:
        return self.get(info)


def _h2(v: int) -> str:
    return f"0x{v:02x}"


def _h4(v: int) -> str:
    return f"0x{v:04x}"


def _b(v) -> str:
    return "1" if v else "0"


def _if(attr: str, fmt=str) -> Callable:
    def get(o) -> list:
        v = getattr(o, attr)
        return [] if v is None else [fmt(v)]

    return get


def _flag(bit: int) -> Callable:
    return lambda o: [_b(int(o.flags) & bit)]


def _v(version: int, fn: Callable) -> Callable:
    return lambda o: fn(o) if o.version == version else []


# Per option class, the tcp.options.mptcp.* fields Wireshark 4.0 shows, in its tree order: each a
# function from the option to the displayed values (none when Wireshark shows nothing).
_EXTRACT: dict[type, list[tuple[str, Callable]]] = {
    Dss: [
        ("flags", lambda o: [_h2(int(o.flags))]),
        ("datafin.flag", _flag(0x10)),
        ("dseqn8.flag", _flag(0x08)),
        ("dseqnpresent.flag", _flag(0x04)),
        ("dataack8.flag", _flag(0x02)),
        ("dataackpresent.flag", _flag(0x01)),
        ("rawdataack", _if("data_ack")),
        ("rawdataseqno", _if("dsn")),
        ("subflowseqno", lambda o: [] if o.dsn is None else [str(o.ssn)]),
        ("datalvllen", lambda o: [] if o.dsn is None else [str(o.data_level_length)]),
    ],
    MpCapable: [
        ("version", lambda o: [str(o.version)]),
        ("flags", lambda o: [_h2(int(o.flags))]),
        ("checksumreq.flags", _flag(0x80)),
        ("extensibility.flag", _flag(0x40)),
        ("nomoresubflows.flag", _v(1, _flag(0x20))),
        ("sha256.flag", _v(1, _flag(0x01))),
        ("sha1.flag", lambda o: [] if o.version == 1 else [_b(int(o.flags) & 0x01)]),
        ("reserved.flag", lambda o: [_h2((int(o.flags) & (0x1E if o.version == 1 else 0x3E)) >> 1)]),
        ("sendkey", _if("sender_key")),
        ("recvkey", _if("receiver_key")),
        ("datalvllen", _if("data_level_length")),
        ("checksum", _if("checksum", _h4)),
    ],
    MpJoinSyn: [
        ("flags", lambda o: [_h2(0x10 | o.reserved << 1 | int(o.backup))]),
        ("backup.flag", lambda o: [_b(o.backup)]),
        ("addrid", _if("address_id")),
        ("recvtok", _if("token")),
        ("sendrand", _if("nonce")),
    ],
    MpJoinSynAck: [
        ("flags", lambda o: [_h2(0x10 | o.reserved << 1 | int(o.backup))]),
        ("backup.flag", lambda o: [_b(o.backup)]),
        ("addrid", _if("address_id")),
        ("sendtrunchmac", _if("truncated_hmac")),
        ("sendrand", _if("nonce")),
    ],
    MpJoinAck: [("reserved", _if("reserved", _h4)), ("sendhmac", lambda o: [o.hmac.hex()])],
    AddAddrV0: [
        ("ipver", _if("ip_version")),
        ("addrid", _if("address_id")),
        ("ipv4", lambda o: [str(o.address)] if o.address.version == 4 else []),
        ("ipv6", lambda o: [str(o.address)] if o.address.version == 6 else []),
        ("port", _if("port")),
    ],
    AddAddr: [
        ("echo", lambda o: [_b(o.echo)]),
        ("addrid", _if("address_id")),
        ("ipv4", lambda o: [str(o.address)] if o.address.version == 4 else []),
        ("ipv6", lambda o: [str(o.address)] if o.address.version == 6 else []),
        ("port", _if("port")),
        ("addaddrtrunchmac", _if("hmac")),
    ],
    RemoveAddr: [("addrid", lambda o: [str(i) for i in o.address_ids])],
    MpPrio: [
        ("flags", lambda o: [_h2(0x50 | o.reserved << 1 | int(o.backup))]),
        ("backup.flag", lambda o: [_b(o.backup)]),
        ("addrid", _if("address_id")),
    ],
    MpFail: [("reserved", _if("reserved", _h4)), ("rawdataseqno", _if("dsn"))],
    MpFastclose: [("reserved", _if("reserved", _h4)), ("recvkey", _if("receiver_key"))],
    MpTcpRst: [
        ("flags", lambda o: [_h2(0x80 | o.flag_u << 3 | o.flag_v << 2 | o.flag_w << 1 | int(o.transient))]),
        ("flag_U.flag", lambda o: [_b(o.flag_u)]),
        ("flag_V.flag", lambda o: [_b(o.flag_v)]),
        ("flag_W.flag", lambda o: [_b(o.flag_w)]),
        ("flag_T.flag", lambda o: [_b(o.transient)]),
        ("rst_reason", lambda o: [_h2(int(o.reason))]),
    ],
}
_EXTRACT = {t: [(P + n, fn) for n, fn in rows] for t, rows in _EXTRACT.items()}
_EXTRACT[RemoveAddr].insert(0, ("mptcp.rm_addr.count", lambda o: [str(len(o.address_ids))]))
_BY_NAME: dict[type, dict[str, Callable]] = {t: dict(rows) for t, rows in _EXTRACT.items()}


def _subtype(o) -> list:
    if type(o) is MalformedOption:
        return [str(o.data[2] >> 4)] if len(o.data) >= 3 else []
    return [str(o.subtype if type(o) is MptcpUnknown else int(o.SUBTYPE))]


def option_fields(opt) -> list[tuple[str, str]]:
    """The ``tcp.options.mptcp.*`` fields Wireshark 4.0 shows for one MPTCP option, with our values.

    Which fields appear for which option follows Wireshark's dissector; where Wireshark shows
    nothing (the DSS checksum, subtype 0xf's payload, reserved bits of some options), we add
    nothing here: those values are in fields of our own (``mptcp.dss.checksum``...).
    """
    out = [(P + "subtype", v) for v in _subtype(opt)]
    for name, fn in _EXTRACT.get(type(opt), ()):
        for v in fn(opt):
            out.append((name, v))
    return out


def _opt_getter(name: str) -> Callable[[PacketInfo], list]:
    if name == P + "subtype":
        return lambda info: [v for o in info.mptcp for v in _subtype(o)]
    by_name = _BY_NAME

    def get(info: PacketInfo) -> list:
        m = info.mptcp
        if not m:
            return []
        if len(m) == 1:
            fn = by_name.get(type(m[0]), _EMPTY_MAP).get(name)
            return [] if fn is None else fn(m[0])
        out = []
        for o in m:
            fn = by_name.get(type(o), _EMPTY_MAP).get(name)
            if fn is not None:
                out += fn(o)
        return out

    return get


_EMPTY_MAP: dict = {}


# --------------------------------------------------------------------------- frame, IP, TCP


def _pkt(f: Callable) -> Callable[[PacketInfo], list]:
    def get(info: PacketInfo) -> list:
        p = info.packet
        return [] if p is None else [f(p)]

    return get


def _epoch(info: PacketInfo) -> list:
    ns = info.timestamp_ns
    return [f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"]


def _ip(version: int, which: int) -> Callable[[PacketInfo], list]:
    def get(i: PacketInfo) -> list:
        p = i.packet
        if p is not None:
            return [str(p.src if which == 1 else p.dst)] if p.version == version else []
        ip = i.ip
        return [str(ip[which])] if ip is not None and ip[0] == version else []

    return get


def _opt(v) -> list:
    return [] if v is None else [str(v)]


_BASE: list[tuple[str, str, Callable[[PacketInfo], list]]] = [
    ("frame.number", "frame number, from 1", lambda i: [str(i.number)]),
    ("frame.time_epoch", "capture time, seconds since the epoch", _epoch),
    ("frame.len", "frame length on the wire", lambda i: [str(i.orig_len)]),
    ("frame.cap_len", "octets captured", lambda i: [str(i.caplen)]),
    ("ip.src", "IPv4 source", _ip(4, 1)),
    ("ip.dst", "IPv4 destination", _ip(4, 2)),
    ("ipv6.src", "IPv6 source", _ip(6, 1)),
    ("ipv6.dst", "IPv6 destination", _ip(6, 2)),
    ("tcp.srcport", "TCP source port", _pkt(lambda p: str(p.sport))),
    ("tcp.dstport", "TCP destination port", _pkt(lambda p: str(p.dport))),
    ("tcp.stream", "TCP stream index", lambda i: _opt(i.tcp_stream)),
    ("tcp.seq", "sequence number, relative to the ISN", lambda i: _opt(i.tcp_seq)),
    ("tcp.seq_raw", "sequence number as sent", _pkt(lambda p: str(p.seq))),
    ("tcp.ack", "acknowledgment number, relative to the peer's ISN", lambda i: _opt(i.tcp_ack)),
    ("tcp.ack_raw", "acknowledgment number as sent", _pkt(lambda p: str(p.ack))),
    ("tcp.len", "TCP payload length", _pkt(lambda p: str(p.payload_len))),
    ("tcp.hdr_len", "TCP header length", _pkt(lambda p: str(p.hdr_len or 20 + len(p.options)))),
    ("tcp.flags", "TCP flags", _pkt(lambda p: f"0x{int(p.flags):04x}")),
    ("tcp.flags.fin", "FIN", _pkt(lambda p: _b(int(p.flags) & 0x01))),
    ("tcp.flags.syn", "SYN", _pkt(lambda p: _b(int(p.flags) & 0x02))),
    ("tcp.flags.reset", "RST", _pkt(lambda p: _b(int(p.flags) & 0x04))),
    ("tcp.flags.push", "PSH", _pkt(lambda p: _b(int(p.flags) & 0x08))),
    ("tcp.flags.ack", "ACK", _pkt(lambda p: _b(int(p.flags) & 0x10))),
    ("tcp.flags.urg", "URG", _pkt(lambda p: _b(int(p.flags) & 0x20))),
    ("tcp.window_size_value", "window field as sent", _pkt(lambda p: str(p.window))),
    ("tcp.checksum", "TCP checksum field", _pkt(lambda p: _h4(p.checksum))),
]

_OPTION_FIELDS: list[tuple[str, str]] = [
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
]

FIELDS: dict[str, Field] = {}


def _register(
    name: str, description: str, source: str, get: Callable[[PacketInfo], list], option: bool = False
) -> None:
    FIELDS[name] = Field(name, description, source, get, option)


for _n, _d, _g in _BASE:
    _register(_n, _d, "wireshark", _g)

_FAST = {
    "frame.number": "str(i.number)",
    "frame.len": "str(i.orig_len)",
    "frame.cap_len": "str(i.caplen)",
    "ip.src": "(str(p.src) if p.version == 4 else '')",
    "ip.dst": "(str(p.dst) if p.version == 4 else '')",
    "ipv6.src": "(str(p.src) if p.version == 6 else '')",
    "ipv6.dst": "(str(p.dst) if p.version == 6 else '')",
    "tcp.srcport": "str(p.sport)",
    "tcp.dstport": "str(p.dport)",
    "tcp.stream": "str(i.tcp_stream)",
    "tcp.seq": "str(i.tcp_seq)",
    "tcp.seq_raw": "str(p.seq)",
    "tcp.ack": "str(i.tcp_ack)",
    "tcp.ack_raw": "str(p.ack)",
    "tcp.len": "str(p.payload_len)",
    "tcp.hdr_len": "str(p.hdr_len or 20 + len(p.options))",
    "tcp.flags": "format(int(p.flags), '#06x')",
    "tcp.window_size_value": "str(p.window)",
    "tcp.checksum": "format(p.checksum, '#06x')",
}
for _n, _e in _FAST.items():
    FIELDS[_n] = dataclasses.replace(FIELDS[_n], fast=_e)


# Python expressions equal to ``AGG.join(fn(o))`` for some extractors of _EXTRACT (``o`` the option):
# the option cells of the commonest option, compiled by option_cells instead of called.
_OPT_FAST: dict[tuple[type, str], str] = {
    (Dss, P + "flags"): 'f"0x{int(o.flags):02x}"',
    (Dss, P + "datafin.flag"): "('1' if int(o.flags) & 0x10 else '0')",
    (Dss, P + "dseqn8.flag"): "('1' if int(o.flags) & 0x08 else '0')",
    (Dss, P + "dseqnpresent.flag"): "('1' if int(o.flags) & 0x04 else '0')",
    (Dss, P + "dataack8.flag"): "('1' if int(o.flags) & 0x02 else '0')",
    (Dss, P + "dataackpresent.flag"): "('1' if int(o.flags) & 0x01 else '0')",
    (Dss, P + "rawdataack"): "('' if (v := o.data_ack) is None else str(v))",
    (Dss, P + "rawdataseqno"): "('' if (v := o.dsn) is None else str(v))",
    (Dss, P + "subflowseqno"): "('' if o.dsn is None else str(o.ssn))",
    (Dss, P + "datalvllen"): "('' if o.dsn is None else str(o.data_level_length))",
}


def option_cells(names: list[str], agg: str) -> tuple[list[str], Callable[[tuple], tuple], dict]:
    """The option fields among ``names`` (each once, in order), and a function giving, for a
    packet's MPTCP options (``PacketInfo.mptcp``, not empty), the printed cell of each of them
    ('' for an absent one), as a tuple in that order.

    For a packet with one MPTCP option (nearly all of them), the cells come from a function compiled
    for the option's class on first use; for several, one pass over the options.  The third value
    is the table of those compiled functions (option class -> function of the option), for callers
    that look one up themselves before calling the second."""
    listed = [n for n in names if n in FIELDS and FIELDS[n].option]
    wanted = list(dict.fromkeys(listed))
    # Over several options, a field named twice in ``names`` has its values taken twice, as this
    # writer always did (the single-option path and the getters do not).
    tables = {t: [(n, fn) for n in listed if (fn := by.get(n)) is not None] for t, by in _BY_NAME.items()}
    subtype = P + "subtype" in wanted
    compiled: dict[type, Callable] = {}

    def compile_for(t: type) -> Callable:
        env: dict = {"AGG": agg, "SUBTYPE": _subtype}
        by = _BY_NAME.get(t, _EMPTY_MAP)
        parts = []
        for k, n in enumerate(wanted):
            if n == P + "subtype":
                if t is not MalformedOption and t is not MptcpUnknown and getattr(t, "SUBTYPE", None) is not None:
                    parts.append(repr(str(int(t.SUBTYPE))))  # _subtype's value, the same for every option of t
                else:
                    parts.append("AGG.join(SUBTYPE(o))")
            elif (fn := by.get(n)) is None:
                parts.append("''")
            elif (t, n) in _OPT_FAST:
                parts.append(_OPT_FAST[t, n])
            else:
                env[f"f{k}"] = fn
                parts.append(f"AGG.join(f{k}(o))")
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
        )  # noqa: S102
        return env["cells"]

    def cells(m: tuple) -> tuple:
        if len(m) == 1:
            o = m[0]
            f = compiled.get(type(o))
            if f is None:
                f = compiled[type(o)] = compile_for(type(o))
            return f(o)
        acc: dict[str, list] = {}
        for o in m:
            if subtype:
                acc.setdefault(P + "subtype", []).extend(_subtype(o))
            for n, fn in tables.get(type(o), ()):
                v = fn(o)
                if v:
                    acc.setdefault(n, []).extend(v)
        return tuple(agg.join(acc[n]) if n in acc else "" for n in wanted)

    return wanted, cells, compiled


for _n, _d in _OPTION_FIELDS:
    _register(P + _n, _d, "wireshark", _opt_getter(P + _n), True)
_register(
    "mptcp.rm_addr.count", "REMOVE_ADDR: number of address IDs", "wireshark", _opt_getter("mptcp.rm_addr.count"), True
)


# --------------------------------------------------------------------------- MPTCP analysis


def _shown(i: PacketInfo) -> bool:
    """Wireshark shows its MPTCP analysis on packets that carry an MPTCP option (none malformed) of
    a connection it has numbered; not on plain segments of the same subflows."""
    return i.mptcp_shown


def _stream(i: PacketInfo) -> list:
    return [str(i.mptcp_stream)] if _shown(i) else []


def _master(i: PacketInfo) -> list:
    return [_b(i.master)] if _shown(i) else []


def _subflows(i: PacketInfo) -> list:
    if not _shown(i):
        return []
    c = i.connection
    if c.unlinked:
        return [""]
    return ["".join(f"{s.index} " for s in reversed(c.subflows))]  # newest first, as Wireshark


def _expected(what: str) -> Callable[[PacketInfo], list]:
    from mptcpspec.codec.crypto import key_idsn, key_token

    fn = key_token if what == "token" else key_idsn

    def get(i: PacketInfo) -> list:
        return [
            str(fn(o.sender_key, o.version))
            for o in i.mptcp
            if type(o) is MpCapable and o.sender_key is not None and o.version in (0, 1)
        ]

    return get


def _dss_values(attr: str) -> Callable[[PacketInfo], list]:
    def get(i: PacketInfo) -> list:
        return [str(v) for d in i.dss if (v := getattr(d, attr)) is not None]

    return get


def _checks(prefix: str) -> Callable[[PacketInfo], list]:
    def get(i: PacketInfo) -> list:
        return [c.verdict.name.lower() for c in i.checks if c.what.startswith(prefix)]

    return get


def _conn(f: Callable) -> Callable[[PacketInfo], list]:
    def get(i: PacketInfo) -> list:
        c = i.connection
        return [] if c is None else f(i, c)

    return get


_register(
    "mptcp.stream", "MPTCP connection index (on packets with an MPTCP option, as Wireshark)", "wireshark", _stream
)
_register(
    "mptcp.analysis",
    "the MPTCP analysis is shown (Wireshark's analysis tree: 1)",
    "wireshark",
    lambda i: ["1"] if i.mptcp_shown else [],
)
_register("mptcp.master", "on the subflow of the connection's latest MP_CAPABLE with a key", "wireshark", _master)
_register("mptcp.analysis.subflows", "TCP streams of this MPTCP connection, newest first", "wireshark", _subflows)
_register("mptcp.expected_token", "token of the MP_CAPABLE sender's key", "wireshark", _expected("token"))
_register("mptcp.expected_idsn", "IDSN of the MP_CAPABLE sender's key", "wireshark", _expected("idsn"))
_register("mptcp.dss.dsn", "the DSS mapping's DSN, relative to the sender's IDSN", "wireshark", _dss_values("dsn"))
_register("mptcp.ack", "DATA_ACK relative to the IDSN of the data it acknowledges", "wireshark", _dss_values("ack"))


def _segment_dsn(i: PacketInfo) -> tuple[int, int] | None:
    """(64-bit, relative) DSN of this segment, as Wireshark's mapping analysis gives it: a payload's
    first octet through its mapping; a SYN's sequence number stands for the IDSN and the next octet,
    relative sequence number 1, for IDSN + 1 (a pure ACK there, such as the third ACK)."""
    if not _shown(i):
        return None
    p = i.packet
    side = i.connection.sides[0 if i.from_client else 1]
    if i.payload_dsn64 is not None and not int(p.flags) & 0x02:
        return i.payload_dsn64, i.payload_dsn
    if side.idsn is None or p.payload_len:
        return None
    if int(p.flags) & 0x02:
        return side.idsn, 0
    if i.tcp_seq == 1:
        return (side.idsn + 1) & 0xFFFFFFFFFFFFFFFF, 1
    return None


def _rawdsn64(i: PacketInfo) -> list:
    v = _segment_dsn(i)
    return [] if v is None else [str(v[0])]


def _dsn(i: PacketInfo) -> list:
    v = _segment_dsn(i)
    return [] if v is None or v[1] is None else [str(v[1])]


_register("mptcp.rawdsn64", "DSN of this segment (its first payload octet), 64 bits", "wireshark", _rawdsn64)
_register("mptcp.dsn", "DSN of this segment, relative to the sender's IDSN", "wireshark", _dsn)
_register(
    "mptcp.related_mapping",
    "frame of the DSS mapping that covers the payload",
    "wireshark",
    lambda i: [] if i.mapping_frame is None or not _shown(i) or not i.packet.payload_len else [str(i.mapping_frame)],
)
_register(
    "mptcp.reinjection_of",
    "earlier frames that carried this data on another subflow",
    "wireshark",
    lambda i: [str(n) for n in i.reinjection_of],
)
_register(
    "mptcp.reinjected_in",
    "later frames that carried this data again on another subflow (with -2)",
    "wireshark",
    lambda i: [str(n) for n in i.reinjected_in],
)

_register(
    "mptcp.version",
    "MPTCP version of the connection (0: RFC 6824, 1: RFC 8684)",
    "mptcpspec",
    _conn(lambda i, c: [] if c.version is None else [str(c.version)]),
)
_register(
    "mptcp.from_client",
    "1 when the sender is the connection's client",
    "mptcpspec",
    lambda i: [] if i.from_client is None else [_b(i.from_client)],
)
_register(
    "mptcp.checksums",
    "1 when the connection negotiated DSS checksums",
    "mptcpspec",
    _conn(lambda i, c: [_b(c.checksum)]),
)
_register("mptcp.dss.ack64", "DATA_ACK expanded to 64 bits", "mptcpspec", _dss_values("ack64"))
_register(
    "mptcp.payload_dsn",
    "DSN of the first payload octet, relative to the sender's IDSN; the SYN data "
    "of TCP Fast Open lies before IDSN + 1 (zero or negative)",
    "mptcpspec",
    lambda i: _opt(i.payload_dsn),
)
_register("mptcp.dss.dsn64", "the DSS mapping's DSN, 64 bits", "mptcpspec", _dss_values("dsn64"))
_register(
    "mptcp.dss.checksum",
    "DSS checksum as sent",
    "mptcpspec",
    lambda i: [_h4(o.checksum) for o in i.mptcp if type(o) is Dss and o.checksum is not None],
)
_register(
    "mptcp.dss.checksum.status",
    "DSS checksum check: verified, mismatch, unverifiable",
    "mptcpspec",
    _checks("DSS checksum"),
)
_register("mptcp.join.hmac.status", "MP_JOIN HMAC check (SYN/ACK and ACK)", "mptcpspec", _checks("MP_JOIN"))
_register("mptcp.add_addr.hmac.status", "ADD_ADDR HMAC check", "mptcpspec", _checks("ADD_ADDR"))
_register("mptcp.fastclose.key.status", "MP_FASTCLOSE key check", "mptcpspec", _checks("MP_FASTCLOSE"))
_register("mptcp.echoed_key.status", "MP_CAPABLE echoed-key check", "mptcpspec", _checks("MP_CAPABLE echoed"))
_register(
    "mptcp.check",
    "every check on the packet, as what=verdict",
    "mptcpspec",
    lambda i: [f"{c.what}={c.verdict.name.lower()}" for c in i.checks],
)
_register("mptcp.expert", "expert item keys", "mptcpspec", lambda i: [e.key for e in i.experts])
_register(
    "mptcp.expert.severity",
    "highest expert severity: chat, note, warn, error",
    "mptcpspec",
    lambda i: [max(e.severity for e in i.experts).name.lower()] if i.experts else [],
)
_register("mptcp.expert.message", "expert item messages", "mptcpspec", lambda i: [e.message for e in i.experts])
_register(
    "mptcp.subflow.kind",
    "MP_CAPABLE or MP_JOIN",
    "mptcpspec",
    lambda i: [] if i.subflow is None or i.subflow.kind is None else [i.subflow.kind],
)
_register(
    "mptcp.subflow.state",
    "handshake machine states, initiator (A) and listener (B)",
    "mptcpspec",
    lambda i: [] if i.subflow is None or i.subflow.state is None else [i.subflow.state],
)
_register(
    "mptcp.closure.client",
    "closure machine state of the client after this packet",
    "mptcpspec",
    _conn(lambda i, c: [c.closure_state(0)]),
)
_register(
    "mptcp.closure.server",
    "closure machine state of the server after this packet",
    "mptcpspec",
    _conn(lambda i, c: [c.closure_state(1)]),
)
_register(
    "mptcp.tcprst.reason",
    "MP_TCPRST reason, by name",
    "mptcpspec",
    lambda i: [getattr(o.reason, "name", str(o.reason)) for o in i.mptcp if type(o) is MpTcpRst],
)
_register(
    "mptcp.experimental.payload",
    "MP_EXPERIMENTAL payload (hex)",
    "mptcpspec",
    lambda i: [o.payload.hex() for o in i.mptcp if type(o) is MpExperimental],
)


def _dss_cell(attr: str) -> str:
    """The fast expression of a _dss_values field: one DssInfo (the common case) inline."""
    return (
        f"('' if not (d := i.dss) else ('' if (v := d[0].{attr}) is None else str(v)) if len(d) == 1 "
        f"else AGG.join(GET(i)))"
    )


# Fast expressions (see Field.fast) of fields that may have no value, for the common cases; the rest
# call the getter.
_FAST_MORE = {
    "frame.time_epoch": 'f"{i.timestamp_ns // 1_000_000_000}.{i.timestamp_ns % 1_000_000_000:09d}"',
    "tcp.flags.fin": "('1' if int(p.flags) & 0x01 else '0')",
    "tcp.flags.syn": "('1' if int(p.flags) & 0x02 else '0')",
    "tcp.flags.reset": "('1' if int(p.flags) & 0x04 else '0')",
    "tcp.flags.push": "('1' if int(p.flags) & 0x08 else '0')",
    "tcp.flags.ack": "('1' if int(p.flags) & 0x10 else '0')",
    "tcp.flags.urg": "('1' if int(p.flags) & 0x20 else '0')",
    "mptcp.stream": "(str(i.mptcp_stream) if i.mptcp_shown else '')",
    "mptcp.analysis": "('1' if i.mptcp_shown else '')",
    "mptcp.master": "(('1' if i.master else '0') if i.mptcp_shown else '')",
    "mptcp.dss.dsn": _dss_cell("dsn"),
    "mptcp.ack": _dss_cell("ack"),
    "mptcp.dss.ack64": _dss_cell("ack64"),
    "mptcp.dss.dsn64": _dss_cell("dsn64"),
    # _segment_dsn: a payload's DSN through its mapping inline, and the cases without a value; a SYN
    # and the segment at relative sequence number 1 through the getter
    "mptcp.dsn": (
        "(('' if (v := i.payload_dsn) is None else str(v)) if i.payload_dsn64 is not None "
        "and i.mptcp_shown and not int(p.flags) & 0x02 else '' if not i.mptcp_shown or p.payload_len "
        "else AGG.join(GET(i)) if int(p.flags) & 0x02 else '' if i.tcp_seq != 1 "
        "else '' if i.connection.sides[0 if i.from_client else 1].idsn is None else '1')"
    ),
    "mptcp.rawdsn64": (
        "(str(i.payload_dsn64) if i.payload_dsn64 is not None and i.mptcp_shown "
        "and not int(p.flags) & 0x02 else '' if not i.mptcp_shown or p.payload_len "
        "or (i.tcp_seq != 1 and not int(p.flags) & 0x02) else AGG.join(GET(i)))"
    ),
    "mptcp.payload_dsn": "('' if (v := i.payload_dsn) is None else str(v))",
    "mptcp.from_client": "('' if (v := i.from_client) is None else '1' if v else '0')",
    "mptcp.reinjection_of": "(AGG.join(GET(i)) if i.reinjection_of else '')",
    "mptcp.reinjected_in": "(AGG.join(GET(i)) if i.reinjected_in else '')",
    "mptcp.expert": "(AGG.join(GET(i)) if i.experts else '')",
    "mptcp.check": "(AGG.join(GET(i)) if i.checks else '')",
    "mptcp.expert.severity": "(AGG.join(GET(i)) if i.experts else '')",
    "mptcp.expert.message": "(AGG.join(GET(i)) if i.experts else '')",
    "mptcp.dss.checksum.status": "(AGG.join(GET(i)) if i.checks else '')",
    "mptcp.join.hmac.status": "(AGG.join(GET(i)) if i.checks else '')",
    "mptcp.add_addr.hmac.status": "(AGG.join(GET(i)) if i.checks else '')",
    "mptcp.fastclose.key.status": "(AGG.join(GET(i)) if i.checks else '')",
    "mptcp.echoed_key.status": "(AGG.join(GET(i)) if i.checks else '')",
}
for _n, _e in _FAST_MORE.items():
    FIELDS[_n] = dataclasses.replace(FIELDS[_n], fast=_e)


def field_names(source: str | None = None) -> list[str]:
    return [n for n, f in FIELDS.items() if source is None or f.source == source]
