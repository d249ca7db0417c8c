"""Named fields of a dissected packet, in Wireshark's names and display formats where it has them.

``FIELDS`` maps each field name to a :class:`Field`; ``Field.values(info)`` gives its values on one
:class:`~mptcpspec.analysis.PacketInfo` as the strings ``tshark -T fields`` prints (decimal
integers, hexadecimal where Wireshark displays hexadecimal, one value per occurrence).  Fields that
Wireshark 4.0 has keep its name (``source == "wireshark"``); the analysis Wireshark lacks is under
``mptcp.`` too, under names Wireshark 4.0 does not use (``source == "mptcpspec"``).

>>> from mptcpspec.fields import FIELDS
>>> FIELDS["tcp.options.mptcp.rawdataseqno"].description
'Data Sequence Number (as sent: 4 or 8 octets)'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mptcpspec.analysis import PacketInfo
from mptcpspec.options import (
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
    MptcpUnknown,
    MpTcpRst,
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

    def values(self, info: PacketInfo) -> list[str]:
        return self.get(info)


def _h2(v: int) -> str:
    return f"0x{v:02x}"


def _h4(v: int) -> str:
    return f"0x{v:04x}"


def _b(v) -> str:
    return "1" if v else "0"


def option_fields(opt) -> list[tuple[str, str]]:
    """The ``tcp.options.mptcp.*`` fields Wireshark 4.0 shows for one MPTCP option, with our values.

    Which fields appear for which option follows Wireshark's dissector; where Wireshark shows
    nothing (the DSS checksum, subtype 0xf's payload, reserved bits of some options), we add
    nothing here: those values are in fields of our own (``mptcp.dss.checksum``...).
    """
    out: list[tuple[str, str]] = []
    add = out.append
    if isinstance(opt, MalformedOption):
        if len(opt.data) >= 3:
            add((P + "subtype", str(opt.data[2] >> 4)))
        return out
    t = type(opt)
    add((P + "subtype", str(opt.subtype if t is MptcpUnknown else int(opt.SUBTYPE))))
    if t is Dss:
        f = int(opt.flags)
        add((P + "flags", _h2(f)))
        add((P + "datafin.flag", _b(f & 0x10)))
        add((P + "dseqn8.flag", _b(f & 0x08)))
        add((P + "dseqnpresent.flag", _b(f & 0x04)))
        add((P + "dataack8.flag", _b(f & 0x02)))
        add((P + "dataackpresent.flag", _b(f & 0x01)))
        if opt.data_ack is not None:
            add((P + "rawdataack", str(opt.data_ack)))
        if opt.dsn is not None:
            add((P + "rawdataseqno", str(opt.dsn)))
            add((P + "subflowseqno", str(opt.ssn)))
            add((P + "datalvllen", str(opt.data_level_length)))
    elif t is MpCapable:
        f = int(opt.flags)
        add((P + "version", str(opt.version)))
        add((P + "flags", _h2(f)))
        add((P + "checksumreq.flags", _b(f & 0x80)))
        add((P + "extensibility.flag", _b(f & 0x40)))
        if opt.version == 1:
            add((P + "nomoresubflows.flag", _b(f & 0x20)))
            add((P + "sha256.flag", _b(f & 0x01)))
            add((P + "reserved.flag", _h2((f & 0x1E) >> 1)))
        else:
            add((P + "sha1.flag", _b(f & 0x01)))
            add((P + "reserved.flag", _h2((f & 0x3E) >> 1)))
        if opt.sender_key is not None:
            add((P + "sendkey", str(opt.sender_key)))
        if opt.receiver_key is not None:
            add((P + "recvkey", str(opt.receiver_key)))
        if opt.data_level_length is not None:
            add((P + "datalvllen", str(opt.data_level_length)))
        if opt.checksum is not None:
            add((P + "checksum", _h4(opt.checksum)))
    elif t is MpJoinSyn or t is MpJoinSynAck:
        add((P + "flags", _h2(0x10 | opt.reserved << 1 | int(opt.backup))))
        add((P + "backup.flag", _b(opt.backup)))
        add((P + "addrid", str(opt.address_id)))
        if t is MpJoinSyn:
            add((P + "recvtok", str(opt.token)))
        else:
            add((P + "sendtrunchmac", str(opt.truncated_hmac)))
        add((P + "sendrand", str(opt.nonce)))
    elif t is MpJoinAck:
        add((P + "reserved", _h4(opt.reserved)))
        add((P + "sendhmac", opt.hmac.hex()))
    elif t is AddAddrV0:
        add((P + "ipver", str(opt.ip_version)))
        add((P + "addrid", str(opt.address_id)))
        add((P + ("ipv4" if opt.address.version == 4 else "ipv6"), str(opt.address)))
        if opt.port is not None:
            add((P + "port", str(opt.port)))
    elif t is AddAddr:
        add((P + "echo", _b(opt.echo)))
        add((P + "addrid", str(opt.address_id)))
        add((P + ("ipv4" if opt.address.version == 4 else "ipv6"), str(opt.address)))
        if opt.port is not None:
            add((P + "port", str(opt.port)))
        if opt.hmac is not None:
            add((P + "addaddrtrunchmac", str(opt.hmac)))
    elif t is RemoveAddr:
        add(("mptcp.rm_addr.count", str(len(opt.address_ids))))
        for i in opt.address_ids:
            add((P + "addrid", str(i)))
    elif t is MpPrio:
        add((P + "flags", _h2(0x50 | opt.reserved << 1 | int(opt.backup))))
        add((P + "backup.flag", _b(opt.backup)))
        if opt.address_id is not None:
            add((P + "addrid", str(opt.address_id)))
    elif t is MpFail:
        add((P + "reserved", _h4(opt.reserved)))
        add((P + "rawdataseqno", str(opt.dsn)))
    elif t is MpFastclose:
        add((P + "reserved", _h4(opt.reserved)))
        add((P + "recvkey", str(opt.receiver_key)))
    elif t is MpTcpRst:
        bits = opt.flag_u << 3 | opt.flag_v << 2 | opt.flag_w << 1 | int(opt.transient)
        add((P + "flags", _h2(0x80 | bits)))
        add((P + "flag_U.flag", _b(opt.flag_u)))
        add((P + "flag_V.flag", _b(opt.flag_v)))
        add((P + "flag_W.flag", _b(opt.flag_w)))
        add((P + "flag_T.flag", _b(opt.transient)))
        add((P + "rst_reason", _h2(int(opt.reason))))
    return out


def _mptcp_options(info: PacketInfo) -> tuple:
    return info.mptcp


def _opt_getter(name: str) -> Callable[[PacketInfo], list]:
    def get(info: PacketInfo) -> list:
        return [v for o in _mptcp_options(info) for n, v in option_fields(o) if n == name]
    return get


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
    ("tcp.hdr_len", "TCP header length", _pkt(lambda p: str(20 + len(p.options)))),
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
    ("subtype", "MPTCP option subtype"), ("version", "MP_CAPABLE version"),
    ("reserved", "reserved bits (MP_JOIN ACK, MP_FAIL, MP_FASTCLOSE)"),
    ("flags", "the flags octet (MP_CAPABLE, DSS, MP_JOIN, MP_PRIO, MP_TCPRST)"),
    ("backup.flag", "backup flag B"), ("checksumreq.flags", "MP_CAPABLE flag A: checksum required"),
    ("extensibility.flag", "MP_CAPABLE flag B: extensibility"),
    ("nomoresubflows.flag", "MP_CAPABLE flag C (v1): no more subflows to this address"),
    ("sha1.flag", "MP_CAPABLE flag H (v0): HMAC-SHA1"), ("sha256.flag", "MP_CAPABLE flag H (v1): HMAC-SHA256"),
    ("datafin.flag", "DSS flag F: DATA_FIN"), ("dseqn8.flag", "DSS flag m: 8-octet DSN"),
    ("dseqnpresent.flag", "DSS flag M: mapping present"), ("dataack8.flag", "DSS flag a: 8-octet DATA_ACK"),
    ("dataackpresent.flag", "DSS flag A: DATA_ACK present"),
    ("reserved.flag", "MP_CAPABLE flags D-G (v1) or C-G (v0)"),
    ("flag_U.flag", "MP_TCPRST flag U"), ("flag_V.flag", "MP_TCPRST flag V"), ("flag_W.flag", "MP_TCPRST flag W"),
    ("flag_T.flag", "MP_TCPRST flag T: transient"), ("rst_reason", "MP_TCPRST reason code"),
    ("addrid", "address ID"), ("sendkey", "sender's key"), ("recvkey", "receiver's key"),
    ("recvtok", "MP_JOIN SYN: receiver's token"), ("sendrand", "MP_JOIN: sender's random number"),
    ("sendtrunchmac", "MP_JOIN SYN/ACK: truncated HMAC"), ("sendhmac", "MP_JOIN ACK: HMAC (160 bits)"),
    ("addaddrtrunchmac", "ADD_ADDR v1: truncated HMAC"),
    ("rawdataack", "DATA_ACK as sent (4 or 8 octets)"),
    ("rawdataseqno", "Data Sequence Number (as sent: 4 or 8 octets)"),
    ("subflowseqno", "subflow sequence number, relative"), ("datalvllen", "data-level length"),
    ("checksum", "checksum (MP_CAPABLE with data; Wireshark 4.0 never shows the DSS one)"),
    ("ipver", "ADD_ADDR v0: IP version"), ("echo", "ADD_ADDR v1: echo flag E"),
    ("ipv4", "ADD_ADDR: IPv4 address"), ("ipv6", "ADD_ADDR: IPv6 address"), ("port", "ADD_ADDR: port"),
]

FIELDS: dict[str, Field] = {}


def _register(name: str, description: str, source: str, get: Callable[[PacketInfo], list],
              option: bool = False) -> None:
    FIELDS[name] = Field(name, description, source, get, option)


for _n, _d, _g in _BASE:
    _register(_n, _d, "wireshark", _g)
for _n, _d in _OPTION_FIELDS:
    _register(P + _n, _d, "wireshark", _opt_getter(P + _n), True)
_register("mptcp.rm_addr.count", "REMOVE_ADDR: number of address IDs", "wireshark", _opt_getter("mptcp.rm_addr.count"),
          True)


def packet_option_fields(info: PacketInfo) -> dict[str, list[str]]:
    """Every option field of a packet at once: name -> values in order (what -T fields prints)."""
    out: dict[str, list[str]] = {}
    for o in _mptcp_options(info):
        for n, v in option_fields(o):
            lst = out.get(n)
            if lst is None:
                out[n] = [v]
            else:
                lst.append(v)
    return out


# --------------------------------------------------------------------------- MPTCP analysis


def _shown(i: PacketInfo) -> bool:
    """Wireshark shows its MPTCP analysis on packets that carry an MPTCP option (none malformed) of
    a connection it has numbered; not on plain segments of the same subflows."""
    return bool(i.mptcp) and i.mptcp_stream is not None and not any(type(o) is MalformedOption for o in i.mptcp)


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
    from mptcpspec.crypto import key_idsn, key_token

    fn = key_token if what == "token" else key_idsn

    def get(i: PacketInfo) -> list:
        return [str(fn(o.sender_key, o.version)) for o in i.mptcp
                if type(o) is MpCapable and o.sender_key is not None and o.version in (0, 1)]
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


_register("mptcp.stream", "MPTCP connection index (on packets with an MPTCP option, as Wireshark)", "wireshark",
          _stream)
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
_register("mptcp.related_mapping", "frame of the DSS mapping that covers the payload", "wireshark",
          lambda i: [] if i.mapping_frame is None or not _shown(i) or not i.packet.payload_len
          else [str(i.mapping_frame)])
_register("mptcp.reinjection_of", "earlier frames that carried this data on another subflow", "wireshark",
          lambda i: [str(n) for n in i.reinjection_of])

_register("mptcp.version", "MPTCP version of the connection (0: RFC 6824, 1: RFC 8684)", "mptcpspec",
          _conn(lambda i, c: [] if c.version is None else [str(c.version)]))
_register("mptcp.from_client", "1 when the sender is the connection's client", "mptcpspec",
          lambda i: [] if i.from_client is None else [_b(i.from_client)])
_register("mptcp.checksums", "1 when the connection negotiated DSS checksums", "mptcpspec",
          _conn(lambda i, c: [_b(c.checksum)]))
_register("mptcp.dss.ack64", "DATA_ACK expanded to 64 bits", "mptcpspec", _dss_values("ack64"))
_register("mptcp.payload_dsn", "DSN of the first payload octet, relative to the sender's IDSN; the SYN data "
          "of TCP Fast Open lies before IDSN + 1 (zero or negative)", "mptcpspec", lambda i: _opt(i.payload_dsn))
_register("mptcp.dss.dsn64", "the DSS mapping's DSN, 64 bits", "mptcpspec", _dss_values("dsn64"))
_register("mptcp.dss.checksum", "DSS checksum as sent", "mptcpspec",
          lambda i: [_h4(o.checksum) for o in _mptcp_options(i) if type(o) is Dss and o.checksum is not None])
_register("mptcp.dss.checksum.status", "DSS checksum check: verified, mismatch, unverifiable", "mptcpspec",
          _checks("DSS checksum"))
_register("mptcp.join.hmac.status", "MP_JOIN HMAC check (SYN/ACK and ACK)", "mptcpspec", _checks("MP_JOIN"))
_register("mptcp.add_addr.hmac.status", "ADD_ADDR HMAC check", "mptcpspec", _checks("ADD_ADDR"))
_register("mptcp.fastclose.key.status", "MP_FASTCLOSE key check", "mptcpspec", _checks("MP_FASTCLOSE"))
_register("mptcp.echoed_key.status", "MP_CAPABLE echoed-key check", "mptcpspec", _checks("MP_CAPABLE echoed"))
_register("mptcp.check", "every check on the packet, as what=verdict", "mptcpspec",
          lambda i: [f"{c.what}={c.verdict.name.lower()}" for c in i.checks])
_register("mptcp.expert", "expert item keys", "mptcpspec", lambda i: [e.key for e in i.experts])
_register("mptcp.expert.severity", "highest expert severity: chat, note, warn, error", "mptcpspec",
          lambda i: [max(e.severity for e in i.experts).name.lower()] if i.experts else [])
_register("mptcp.expert.message", "expert item messages", "mptcpspec", lambda i: [e.message for e in i.experts])
_register("mptcp.subflow.kind", "MP_CAPABLE or MP_JOIN", "mptcpspec",
          lambda i: [] if i.subflow is None or i.subflow.kind is None else [i.subflow.kind])
_register("mptcp.subflow.state", "handshake machine states, initiator (A) and listener (B)", "mptcpspec",
          lambda i: [] if i.subflow is None or i.subflow.state is None else [i.subflow.state])
_register("mptcp.closure.client", "closure machine state of the client after this packet", "mptcpspec",
          _conn(lambda i, c: [c.closure_state(0)]))
_register("mptcp.closure.server", "closure machine state of the server after this packet", "mptcpspec",
          _conn(lambda i, c: [c.closure_state(1)]))
_register("mptcp.tcprst.reason", "MP_TCPRST reason, by name", "mptcpspec",
          lambda i: [getattr(o.reason, "name", str(o.reason)) for o in _mptcp_options(i) if type(o) is MpTcpRst])
_register("mptcp.experimental.payload", "MP_EXPERIMENTAL payload (hex)", "mptcpspec",
          lambda i: [o.payload.hex() for o in _mptcp_options(i) if type(o) is MpExperimental])

def field_names(source: str | None = None) -> list[str]:
    return [n for n, f in FIELDS.items() if source is None or f.source == source]
