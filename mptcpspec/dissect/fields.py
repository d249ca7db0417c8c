"""Named fields of a dissected packet, in Wireshark's names and display formats where it has them.

``FIELDS`` maps each field name to a :class:`Field`; ``Field.values(info)`` gives its values on one
:class:`~mptcpspec.analysis.model.PacketInfo` as the strings ``tshark -T fields`` prints (decimal
integers, hexadecimal where Wireshark displays hexadecimal, one value per occurrence).  Fields that
Wireshark 4.0 has keep its name (``source == "wireshark"``); the analysis Wireshark lacks is under
``mptcp.`` too, under names Wireshark 4.0 does not use (``source == "mptcpspec"``).

Each field is defined once, as an expression (:mod:`~mptcpspec.dissect.fieldgen`; the option fields
in :mod:`~mptcpspec.dissect.optionfields`): its ``get`` and the cell that :func:`compile_row`
inlines for ``-T fields`` are both compiled from it.

>>> from mptcpspec.dissect.fields import FIELDS
>>> FIELDS["tcp.options.mptcp.rawdataseqno"].description
'Data Sequence Number (as sent: 4 or 8 octets)'
>>> FIELDS["tcp.srcport"].fast
'(str(p.sport))'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mptcpspec.analysis import PacketInfo
from mptcpspec.capture.encap import Geneve, Gre, Gtp, Ip, Mpls, Ppp, Pppoe, Udp, Vlan, Vxlan
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec.crypto import key_idsn, key_token
from mptcpspec.codec.options import CutOption, Dss, MpCapable, MpExperimental, MpTcpRst, captured_option
from mptcpspec.dissect.fieldgen import FieldDef, cell, compile_getters, getter_source
from mptcpspec.dissect.optionfields import OPTION_FIELDS, option_cells, option_fields, option_getter
from mptcpspec.dissect.pairfields import PAIR_FIELDS
from mptcpspec.dissect.specfields import SPEC_ENV, SPEC_FIELDS
from mptcpspec.dissect.tcpfields import TCP_ENV, TCP_FIELDS, seconds
from mptcpspec.errors import MptcpspecError
from mptcpspec.records import dataclass

__all__ = ["Field", "FIELDS", "UnknownFieldError", "compile_row", "field_names", "option_fields"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    description: str
    source: str  #: "wireshark" (same name and meaning as Wireshark 4.0), "mptcpspec", or "spec" (the Lua plugin's)
    get: Callable[[PacketInfo], list[str]]
    option: bool = False  #: one of the option fields, whose cells come from the option table
    #: The printed cell in the default output mode (every occurrence, no quotes) as a Python
    #: expression of ``i`` (the PacketInfo) and ``p`` (its Packet, not None), ``AGG`` the
    #: aggregator: compiled from the same definition as ``get`` (None for the option fields).
    fast: str | None = None

    def values(self, info: PacketInfo) -> list[str]:
        return self.get(info)


class UnknownFieldError(MptcpspecError, KeyError):
    """A field name that is not in :data:`FIELDS` (``name``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown field {self.name!r}"


# --------------------------------------------------------------------------- the definitions

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local_time(ns: int) -> str:
    """A capture time as Wireshark prints frame.time: local time, nanoseconds, the zone's name."""
    s, frac = divmod(ns, 1_000_000_000)
    t = time.localtime(s)
    return (
        f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d}, {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{frac:09d} {t.tm_zone}"
    )


_SIDE = "i.connection.sides[0 if i.from_client else 1]"
_FIN, _SYN_BIT, _RST, _PSH, _ACK, _URG = (
    int(TcpFlags.FIN),
    int(TcpFlags.SYN),
    int(TcpFlags.RST),
    int(TcpFlags.PSH),
    int(TcpFlags.ACK),
    int(TcpFlags.URG),
)
_SYN = f"int(p.flags) & {_SYN_BIT:#04x}"


def _tcpflag(bit: int) -> str:
    return f"'1' if int(p.flags) & {bit:#04x} else '0'"


def _outer(layers: str, cls: str, expr: str, cond: str | None) -> str:
    """The list of ``expr`` for each layer ``y`` of class ``cls`` in ``layers`` (and ``cond``)."""
    return f"[{expr} for y in {layers} if type(y) is {cls}{'' if cond is None else ' and ' + cond}]"


def _ip(version: int, which: str) -> FieldDef:
    """ip.src and the like: every IP header's, outermost first (the tunnels' and the segment's)."""
    name = f"{'ip' if version == 4 else 'ipv6'}.{which}"
    outer = _outer("p.tunnel", "Ip", f"str(y.{which})", f"y.version == {version}")
    return FieldDef(
        name,
        f"IPv{version} {'source' if which == 'src' else 'destination'}",
        f"str(p.{which}) if p.version == {version} else NONE",
        other=_outer("i.layers", "Ip", f"str(y.{which})", f"y.version == {version}"),
        tunnel=f"{outer} + ([str(p.{which})] if p.version == {version} else [])",
    )


def _addr(version: int) -> FieldDef:
    """ip.addr, ipv6.addr: each IP header's source and destination, outermost first."""
    name = f"{'ip' if version == 4 else 'ipv6'}.addr"
    pair = "for y in {} if type(y) is Ip and y.version == " + str(version) + " for a in (y.src, y.dst)"
    own = f"[str(p.src), str(p.dst)] if p.version == {version} else []"
    return FieldDef(
        name,
        f"IPv{version} source and destination",
        own,
        other="[str(a) " + pair.format("i.layers") + "]",
        tunnel="[str(a) " + pair.format("p.tunnel") + "] + (" + own + ")",
    )


def _ip4(which: str, description: str, form: str, own: str, layer: str) -> FieldDef:
    """A field of every IPv4 header, outermost first: ``form`` formats ``{object}.{attribute}``."""
    mine = form.format("p", own)
    return FieldDef(
        f"ip.{which}",
        description,
        f"{mine} if p.version == 4 else NONE",
        other=_outer("i.layers", "Ip", form.format("y", layer), "y.version == 4"),
        tunnel=_outer("p.tunnel", "Ip", form.format("y", layer), "y.version == 4")
        + f" + ([{mine}] if p.version == 4 else [])",
    )


def _layer(name: str, description: str, cls: str, expr: str, cond: str | None = None) -> FieldDef:
    """A field of an encapsulation layer: one value per layer of class ``cls``, outermost first."""
    return FieldDef(
        name,
        description,
        _outer("p.tunnel", cls, expr, cond),
        when="p.tunnel",
        other=_outer("i.layers", cls, expr, cond),
    )


def _checks(name: str, description: str, prefix: str) -> FieldDef:
    return FieldDef(
        name,
        description,
        f"[c.verdict.name.lower() for c in i.checks if c.what.startswith({prefix!r})]",
        "mptcpspec",
        when="i.checks",
    )


def _dss(name: str, description: str, attr: str, source: str = "wireshark") -> FieldDef:
    return FieldDef(name, description, f"NONE if (v := x.{attr}) is None else str(v)", source, each="i.dss")


_EXPECTED = (
    "[str({fn}(o.sender_key, o.version)) for o in CAPTURED(i.mptcp) "
    "if type(o) is MpCapable and o.sender_key is not None and o.version in (0, 1)]"
)


def _captured(m: Sequence[object]) -> Sequence[object]:
    """A packet's MPTCP options, an option the snapshot length cut as what it says for certain."""
    last = m[-1] if m else None
    return (*m[:-1], captured_option(last)) if isinstance(last, CutOption) else m


_FRAME_IP_TCP = [
    FieldDef("frame.number", "frame number, from 1", "str(i.number)", every=True),
    FieldDef(
        "frame.time_epoch",
        "capture time, seconds since the epoch",
        'f"{i.timestamp_ns // 1_000_000_000}.{i.timestamp_ns % 1_000_000_000:09d}"',
        every=True,
    ),
    FieldDef("frame.time", "capture time, local time zone", "FTIME(i.timestamp_ns)", every=True),
    FieldDef(
        "frame.time_relative",
        "seconds since the first frame",
        "SECS(i.timestamp_ns - i.first_ns)",
        every=True,
    ),
    FieldDef(
        "frame.time_delta",
        "seconds since the frame before",
        "SECS(i.timestamp_ns - i.prev_ns)",
        every=True,
    ),
    FieldDef(
        "frame.time_delta_displayed",
        "seconds since the frame displayed before (the display filter's last match)",
        "SECS(i.timestamp_ns - i.prev_shown_ns)",
        every=True,
    ),
    FieldDef("frame.len", "frame length on the wire", "str(i.orig_len)", every=True),
    FieldDef("frame.cap_len", "octets captured", "str(i.caplen)", every=True),
    _ip(4, "src"),
    _ip(4, "dst"),
    _ip(6, "src"),
    _ip(6, "dst"),
    _addr(4),
    _addr(6),
    _ip4("len", "IPv4 total length", "str({}.{})", "ip_len", "length"),
    _ip4("ttl", "IPv4 time to live", "str({}.{})", "ttl", "ttl"),
    _ip4("id", "IPv4 identification", "f'0x{{{}.{}:04x}}'", "ip_id", "ident"),
    FieldDef("tcp.srcport", "TCP source port", "str(p.sport)"),
    FieldDef("tcp.dstport", "TCP destination port", "str(p.dport)"),
    FieldDef("tcp.port", "TCP source and destination ports", "[str(p.sport), str(p.dport)]"),
    # a TCP packet always has its stream and relative numbers; a frame without TCP has none
    FieldDef("tcp.stream", "TCP stream index", "str(i.tcp_stream)"),
    FieldDef("tcp.seq", "sequence number, relative to the ISN", "str(i.tcp_seq)"),
    FieldDef("tcp.seq_raw", "sequence number as sent", "str(p.seq)"),
    FieldDef("tcp.ack", "acknowledgment number, relative to the peer's ISN", "str(i.tcp_ack)"),
    FieldDef("tcp.ack_raw", "acknowledgment number as sent", "str(p.ack)"),
    FieldDef("tcp.len", "TCP payload length", "str(p.payload_len)"),
    FieldDef("tcp.hdr_len", "TCP header length", "str(p.hdr_len or 20 + len(p.options))"),
    FieldDef("tcp.flags", "TCP flags", 'f"0x{int(p.flags):04x}"'),
    FieldDef("tcp.flags.fin", "FIN", _tcpflag(_FIN)),
    FieldDef("tcp.flags.syn", "SYN", _tcpflag(_SYN_BIT)),
    FieldDef("tcp.flags.reset", "RST", _tcpflag(_RST)),
    FieldDef("tcp.flags.push", "PSH", _tcpflag(_PSH)),
    FieldDef("tcp.flags.ack", "ACK", _tcpflag(_ACK)),
    FieldDef("tcp.flags.urg", "URG", _tcpflag(_URG)),
    FieldDef("tcp.window_size_value", "window field as sent", "str(p.window)"),
    FieldDef("tcp.checksum", "TCP checksum field", 'f"0x{p.checksum:04x}"'),
]

# The encapsulations (mptcpspec.capture.encap), each as tshark 4.0 prints it.
_AD = "y.tpid == 0x88A8"
_ENCAP = [
    FieldDef(
        "ip.proto",
        "IPv4 protocol, every IPv4 header",
        "'6' if p.version == 4 else NONE",
        other=_outer("i.layers", "Ip", "str(y.proto)", "y.version == 4"),
        tunnel=_outer("p.tunnel", "Ip", "str(y.proto)", "y.version == 4") + " + (['6'] if p.version == 4 else [])",
    ),
    _layer("vlan.id", "802.1Q VLAN ID", "Vlan", "str(y.tci & 0xFFF)", f"not {_AD}"),
    _layer("vlan.priority", "802.1Q priority", "Vlan", "str(y.tci >> 13)", f"not {_AD}"),
    _layer("vlan.etype", "EtherType after an 802.1Q tag", "Vlan", "f'0x{y.ethertype:04x}'", f"not {_AD}"),
    _layer(
        "ieee8021ad.id", "802.1ad VLAN ID (one tag)", "Vlan", "str(y.tci & 0xFFF)", f"{_AD} and y.inner_tci is None"
    ),
    _layer(
        "ieee8021ad.svid",
        "802.1ad S-VID (two tags)",
        "Vlan",
        "str(y.tci & 0xFFF)",
        f"{_AD} and y.inner_tci is not None",
    ),
    _layer(
        "ieee8021ad.cvid",
        "802.1ad C-VID (two tags)",
        "Vlan",
        "str(y.inner_tci & 0xFFF)",
        f"{_AD} and y.inner_tci is not None",
    ),
    _layer("mpls.label", "MPLS label", "Mpls", "str(y.entry >> 12)"),
    _layer("mpls.exp", "MPLS experimental bits (traffic class)", "Mpls", "str((y.entry >> 9) & 7)"),
    _layer("mpls.bottom", "MPLS bottom of stack", "Mpls", "str((y.entry >> 8) & 1)"),
    _layer("mpls.ttl", "MPLS TTL", "Mpls", "str(y.entry & 0xFF)"),
    _layer("ppp.address", "PPP HDLC address", "Ppp", "f'0x{y.address:02x}'", "y.address is not None"),
    _layer("ppp.control", "PPP HDLC control", "Ppp", "f'0x{y.control:02x}'", "y.control is not None"),
    _layer("ppp.protocol", "PPP protocol", "Ppp", "f'0x{y.protocol:04x}'"),
    _layer("pppoe.code", "PPPoE code", "Pppoe", "f'0x{y.code:02x}'"),
    _layer("pppoe.session_id", "PPPoE session ID", "Pppoe", "f'0x{y.session_id:04x}'"),
    _layer("gre.flags_and_version", "GRE flags and version", "Gre", "f'0x{y.flags_and_version:04x}'"),
    _layer("gre.proto", "GRE protocol type", "Gre", "f'0x{y.protocol:04x}'"),
    _layer("gre.key", "GRE key", "Gre", "f'0x{y.key:08x}'", "y.key is not None and not y.pptp"),
    _layer(
        "gre.key.payload_length",
        "enhanced GRE (PPTP) payload length",
        "Gre",
        "str(y.key >> 16)",
        "y.key is not None and y.pptp",
    ),
    _layer(
        "gre.key.call_id", "enhanced GRE (PPTP) call ID", "Gre", "str(y.key & 0xFFFF)", "y.key is not None and y.pptp"
    ),
    _layer("gre.sequence_number", "GRE sequence number", "Gre", "str(y.sequence)", "y.sequence is not None"),
    _layer("gre.ack_number", "enhanced GRE (PPTP) acknowledgment number", "Gre", "str(y.ack)", "y.ack is not None"),
    _layer("udp.srcport", "UDP source port", "Udp", "str(y.sport)"),
    _layer("udp.dstport", "UDP destination port", "Udp", "str(y.dport)"),
    _layer("udp.length", "UDP length", "Udp", "str(y.length)"),
    _layer("vxlan.flags", "VXLAN flags", "Vxlan", "f'0x{y.flags:04x}'"),
    _layer("vxlan.vni", "VXLAN network identifier", "Vxlan", "str(y.vni)"),
    _layer("geneve.proto_type", "Geneve protocol type", "Geneve", "f'0x{y.protocol:04x}'"),
    _layer("geneve.vni", "Geneve virtual network identifier", "Geneve", "f'0x{y.vni:06x}'"),
    _layer("gtp.flags", "GTP-U flags", "Gtp", "f'0x{y.flags:02x}'"),
    _layer("gtp.message", "GTP-U message type", "Gtp", "f'0x{y.message_type:02x}'"),
    _layer("gtp.teid", "GTP-U tunnel endpoint identifier", "Gtp", "f'0x{y.teid:08x}'", "y.teid is not None"),
]

# Wireshark shows its MPTCP analysis (``i.mptcp_shown``) on packets that carry an MPTCP option (none
# malformed) of a connection it has numbered; not on plain segments of the same subflows.
_MPTCP = [
    FieldDef(
        "mptcp.stream",
        "MPTCP connection index (on packets with an MPTCP option, as Wireshark)",
        "str(i.mptcp_stream) if i.mptcp_shown else NONE",
    ),
    FieldDef(
        "mptcp.analysis",
        "the MPTCP analysis is shown (Wireshark's analysis tree: 1)",
        "'1' if i.mptcp_shown else NONE",
    ),
    FieldDef(
        "mptcp.master",
        "on the subflow of the connection's latest MP_CAPABLE with a key",
        "('1' if i.master else '0') if i.mptcp_shown else NONE",
    ),
    FieldDef(
        "mptcp.analysis.subflows",
        "TCP streams of this MPTCP connection, newest first",  # as Wireshark: '' before the handshake is seen
        "NONE if not i.mptcp_shown else '' if (c := i.connection).unlinked "
        "else ''.join(f'{sf.index} ' for sf in reversed(c.subflows))",
    ),
    FieldDef(
        "mptcp.expected_token",
        "token of the MP_CAPABLE sender's key",
        _EXPECTED.format(fn="TOKEN"),
        when="i.mptcp",
    ),
    FieldDef("mptcp.expected_idsn", "IDSN of the MP_CAPABLE sender's key", _EXPECTED.format(fn="IDSN"), when="i.mptcp"),
    _dss("mptcp.dss.dsn", "the DSS mapping's DSN, relative to the sender's IDSN", "dsn"),
    _dss("mptcp.ack", "DATA_ACK relative to the IDSN of the data it acknowledges", "ack"),
    # The DSN of a segment, as Wireshark's mapping analysis gives it: a payload's first octet through
    # its mapping; a SYN's sequence number stands for the IDSN and the next octet, relative sequence
    # number 1, for IDSN + 1 (a pure ACK there, such as the third ACK).
    FieldDef(
        "mptcp.rawdsn64",
        "DSN of this segment (its first payload octet), 64 bits",
        f"str(i.payload_dsn64) if i.payload_dsn64 is not None and i.mptcp_shown and not {_SYN} "
        "else NONE if not i.mptcp_shown or p.payload_len "
        f"else (NONE if (v := {_SIDE}.idsn) is None else str(v)) if {_SYN} "
        f"else NONE if i.tcp_seq != 1 or (v := {_SIDE}.idsn) is None "
        "else str((v + 1) & 0xFFFFFFFFFFFFFFFF)",
    ),
    FieldDef(
        "mptcp.dsn",
        "DSN of this segment, relative to the sender's IDSN",
        "(NONE if (v := i.payload_dsn) is None else str(v)) "
        f"if i.payload_dsn64 is not None and i.mptcp_shown and not {_SYN} "
        "else NONE if not i.mptcp_shown or p.payload_len "
        f"else (NONE if {_SIDE}.idsn is None else '0') if {_SYN} "
        f"else NONE if i.tcp_seq != 1 or {_SIDE}.idsn is None else '1'",
    ),
    FieldDef(
        "mptcp.related_mapping",
        "frame of the DSS mapping that covers the payload",
        "NONE if (v := i.mapping_frame) is None or not i.mptcp_shown or not p.payload_len else str(v)",
    ),
    FieldDef(
        "mptcp.reinjection_of",
        "earlier frames that carried this data on another subflow",
        "str(x)",
        each="(i.reinjection_of if i.mptcp_shown else ())",
    ),
    FieldDef(
        "mptcp.reinjected_in",
        "later frames that carried this data again on another subflow (with -2)",
        "str(x)",
        each="i.reinjected_in",
    ),
    FieldDef(
        "mptcp.version",
        "MPTCP version of the connection (0: RFC 6824, 1: RFC 8684)",
        "NONE if (c := i.connection) is None or c.version is None else str(c.version)",
        "mptcpspec",
    ),
    FieldDef(
        "mptcp.from_client",
        "1 when the sender is the connection's client",
        "NONE if (v := i.from_client) is None else '1' if v else '0'",
        "mptcpspec",
    ),
    FieldDef(
        "mptcp.checksums",
        "1 when the connection negotiated DSS checksums",
        "NONE if (c := i.connection) is None else '1' if c.checksum else '0'",
        "mptcpspec",
    ),
    _dss("mptcp.dss.ack64", "DATA_ACK expanded to 64 bits", "ack64", "mptcpspec"),
    FieldDef(
        "mptcp.payload_dsn",
        "DSN of the first payload octet, relative to the sender's IDSN; the SYN data "
        "of TCP Fast Open lies before IDSN + 1 (zero or negative)",
        "NONE if (v := i.payload_dsn) is None else str(v)",
        "mptcpspec",
    ),
    _dss("mptcp.dss.dsn64", "the DSS mapping's DSN, 64 bits", "dsn64", "mptcpspec"),
    FieldDef(
        "mptcp.dss.checksum",
        "DSS checksum as sent",
        "[f'0x{o.checksum:04x}' for o in i.mptcp if type(o) is Dss and o.checksum is not None]",
        "mptcpspec",
        when="i.mptcp",
    ),
    _checks("mptcp.dss.checksum.status", "DSS checksum check: verified, mismatch, unverifiable", "DSS checksum"),
    _checks("mptcp.join.hmac.status", "MP_JOIN HMAC check (SYN/ACK and ACK)", "MP_JOIN"),
    _checks("mptcp.add_addr.hmac.status", "ADD_ADDR HMAC check", "ADD_ADDR"),
    _checks("mptcp.fastclose.key.status", "MP_FASTCLOSE key check", "MP_FASTCLOSE"),
    _checks("mptcp.echoed_key.status", "MP_CAPABLE echoed-key check", "MP_CAPABLE echoed"),
    FieldDef(
        "mptcp.check",
        "every check on the packet, as what=verdict",
        "f'{x.what}={x.verdict.name.lower()}'",
        "mptcpspec",
        each="i.checks",
    ),
    # expert items are on frames without TCP too (a malformed packet)
    FieldDef("mptcp.expert", "expert item keys", "x.key", "mptcpspec", each="i.experts", every=True),
    FieldDef(
        "mptcp.expert.severity",
        "highest expert severity: chat, note, warn, error",
        "max(e.severity for e in i.experts).name.lower() if i.experts else NONE",
        "mptcpspec",
        every=True,
    ),
    FieldDef("mptcp.expert.message", "expert item messages", "x.message", "mptcpspec", each="i.experts", every=True),
    FieldDef(
        "mptcp.subflow.kind",
        "MP_CAPABLE or MP_JOIN",
        "NONE if (sf := i.subflow) is None or (v := sf.kind) is None else v",
        "mptcpspec",
    ),
    FieldDef(
        "mptcp.subflow.state",
        "handshake machine states, initiator (A) and listener (B)",
        "NONE if (sf := i.subflow) is None or (v := sf.state) is None else v",
        "mptcpspec",
    ),
    FieldDef(
        "mptcp.connection",
        "the MPTCP stream this frame's TCP stream is a subflow of, on every frame of it: its first SYN "
        "(with -2) and segments without an MPTCP option included; selects a whole connection",
        "NONE if (s := i.mptcp_stream) is None else str(s)",
        "mptcpspec",
    ),
    FieldDef(
        "mptcp.closure.client",
        "closure machine state of the client after this packet",
        "NONE if (c := i.connection) is None or (v := c.closure_state(0)) is None else v",
        "mptcpspec",
    ),
    FieldDef(
        "mptcp.closure.server",
        "closure machine state of the server after this packet",
        "NONE if (c := i.connection) is None or (v := c.closure_state(1)) is None else v",
        "mptcpspec",
    ),
    FieldDef(
        "mptcp.tcprst.reason",
        "MP_TCPRST reason, by name",
        "[getattr(o.reason, 'name', str(o.reason)) for o in i.mptcp if type(o) is MpTcpRst]",
        "mptcpspec",
        when="i.mptcp",
    ),
    FieldDef(
        "mptcp.experimental.payload",
        "MP_EXPERIMENTAL payload (hex)",
        "[o.payload.hex() for o in i.mptcp if type(o) is MpExperimental]",
        "mptcpspec",
        when="i.mptcp",
    ),
]

#: The names the definitions use besides ``i``, ``p``, ``x``, ``AGG`` and builtins.
_ENV: dict[str, object] = {
    "Geneve": Geneve,
    "Gre": Gre,
    "Gtp": Gtp,
    "Ip": Ip,
    "Mpls": Mpls,
    "Ppp": Ppp,
    "Pppoe": Pppoe,
    "Udp": Udp,
    "Vlan": Vlan,
    "Vxlan": Vxlan,
    "Dss": Dss,
    "MpCapable": MpCapable,
    "CAPTURED": _captured,
    "MpExperimental": MpExperimental,
    "MpTcpRst": MpTcpRst,
    "TOKEN": key_token,
    "IDSN": key_idsn,
    "SECS": seconds,
    "FTIME": local_time,
    **TCP_ENV,
    **SPEC_ENV,
}


def _build() -> dict[str, Field]:
    """Every field, in the order of ``--list-fields``: frame, IP and TCP; the encapsulations; the
    options; the analysis; the two ends' (``mptcp.pair.*``); the fields of spec/ (the Lua plugin's)."""
    defs = _FRAME_IP_TCP + TCP_FIELDS + _ENCAP + _MPTCP + PAIR_FIELDS + SPEC_FIELDS
    sources = {f"get_{k}": getter_source(f"get_{k}", d) for k, d in enumerate(defs)}
    gets = compile_getters(sources, _ENV)
    fields = [
        Field(d.name, d.description, d.source, gets[f"get_{k}"], False, cell(d.value, d.when, d.each, d.tunnel))
        for k, d in enumerate(defs)
    ]
    options = [Field(n, text, "wireshark", option_getter(n), True) for n, text in OPTION_FIELDS]
    head = len(_FRAME_IP_TCP) + len(TCP_FIELDS) + len(_ENCAP)
    ordered = fields[:head] + options + fields[head:]
    return {f.name: f for f in ordered}


FIELDS: dict[str, Field] = _build()


def field_names(source: str | None = None) -> list[str]:
    return [n for n, f in FIELDS.items() if source is None or f.source == source]


# --------------------------------------------------------------------------- -T fields rows


def compile_row(
    names: Sequence[str], agg: str, sep: str, slow: Callable[[PacketInfo], str]
) -> Callable[[PacketInfo], str]:
    """One function giving the whole ``-T fields`` row of a packet in the default output mode: each
    field's cell inlined, the option fields from one call of
    :func:`~mptcpspec.dissect.optionfields.option_cells`; ``slow(info)`` for a frame without TCP."""
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise UnknownFieldError(unknown[0])
    opt_names, opt_cells, one = option_cells(names, agg)
    env: dict[str, object] = {
        **_ENV,
        "SLOW": slow,
        "AGG": agg,
        "SEP": sep,
        "OPTS": opt_cells,
        "ONE": one,
        "EMPTY": ("",) * len(opt_names),
    }
    parts = []
    for n in names:
        f = FIELDS[n]
        parts.append(f"c{opt_names.index(n)}" if f.fast is None else f.fast)
    cells = "".join(f"c{k}, " for k in range(len(opt_names)))
    src = (
        "def row(i):\n    p = i.packet\n    if p is None:\n        return SLOW(i)\n"
        + (
            "    m = i.mptcp\n    if not m:\n        cells = EMPTY\n"
            "    elif len(m) == 1 and (f := ONE.get(type(m[0]))) is not None:\n        cells = f(m[0])\n"
            f"    else:\n        cells = OPTS(m)\n    {cells}= cells\n"
            if opt_names
            else ""
        )
        + f"    return SEP.join(({''.join(x + ', ' for x in parts)}))\n"
    )
    exec(src, env)  # noqa: S102 - built from the field table's own cells
    row = env["row"]
    assert callable(row)
    return row
