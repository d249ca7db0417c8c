"""Encapsulations: the headers between a frame's link layer and its innermost IP header.

:func:`walk` follows a frame of a decoded link type through VLAN tags (802.1Q, 802.1ad, stacked),
MPLS label stacks, PPP (link types PPP and PPP_HDLC, with or without the HDLC address and control
octets, with protocol-field compression), PPPoE, Cisco HDLC, GRE (versions 0 and 1, with
checksum, key, sequence and acknowledgment numbers, routing), IP in IP (IPv4 or IPv6 in either),
and UDP tunnels: VXLAN (4789), Geneve (6081) and GTP-U (2152).  It returns the layers met,
outermost first (outer IP headers included, as :class:`Ip`), and the offset of the innermost IP
header, the one that is no tunnel.  Each choice is the one tshark 4.0 makes: after the bottom MPLS
label, an IP header by its first nibble (4 or 6) and nothing else; a GTP-U T-PDU (message type
255, version 1) is IP by its first nibble or, when the EtherType at its octet 12 is IPv4 or IPv6,
Ethernet; a UDP tunnel is tried on the lower port first, then the higher; a fragment of an outer
IP header is not reassembled, so what it carries is not followed.

Every header is read from untrusted octets: one cut short, or of a kind not followed, ends the walk
there (the frame then carries no TCP segment); nothing here raises.  The walk stops once it has
:data:`MAX_LAYERS` layers (a GRE-in-GRE loop ends; one step adds at most three: IP, UDP, a tunnel).
"""

from __future__ import annotations

import ipaddress
import struct
from enum import IntEnum
from typing import TypeAlias

from mptcpspec.capture.linktypes import LinkType
from mptcpspec.records import dataclass

__all__ = [
    "MAX_LAYERS",
    "EtherType",
    "Geneve",
    "Gre",
    "Gtp",
    "Ip",
    "IpProto",
    "Layer",
    "Mpls",
    "Ppp",
    "PppProtocol",
    "Pppoe",
    "TunnelPort",
    "Udp",
    "Vlan",
    "Vxlan",
    "frame_layers",
    "ip_layers",
    "walk",
]

#: the most layers followed in one frame
MAX_LAYERS = 32


class EtherType(IntEnum):
    """The EtherTypes (and GRE protocol types) a frame is followed through (IEEE 802 numbers)."""

    IPV4 = 0x0800
    IPV6 = 0x86DD
    VLAN = 0x8100  #: IEEE 802.1Q tag
    QINQ = 0x88A8  #: IEEE 802.1ad service tag
    QINQ_OLD = 0x9100  #: the pre-standard 802.1ad tag
    MPLS = 0x8847
    MPLS_MULTICAST = 0x8848
    PPPOE_DISCOVERY = 0x8863
    PPPOE_SESSION = 0x8864
    PPP = 0x880B  #: PPP in GRE (PPTP)
    TEB = 0x6558  #: transparent Ethernet bridging: an Ethernet frame in GRE or Geneve


class IpProto(IntEnum):
    """IP protocol numbers (IANA "Assigned Internet Protocol Numbers"): TCP, the tunnels, the IPv6
    extension headers."""

    HOPOPTS = 0  #: IPv6 hop-by-hop options
    IPIP = 4  #: IPv4 in IP
    TCP = 6
    UDP = 17
    IPV6 = 41  #: IPv6 in IP
    ROUTING = 43  #: IPv6 routing header
    FRAGMENT = 44  #: IPv6 fragment header
    GRE = 47
    AH = 51  #: authentication header (its length counts 4-octet units)
    DSTOPTS = 60  #: IPv6 destination options
    MOBILITY = 135
    HIP = 139  #: Host Identity Protocol
    SHIM6 = 140


class PppProtocol(IntEnum):
    """PPP protocol numbers (RFC 1661) of the network layers followed."""

    IPV4 = 0x0021
    IPV6 = 0x0057


class TunnelPort(IntEnum):
    """The UDP ports of the tunnels followed (IANA)."""

    GTP_U = 2152
    VXLAN = 4789
    GENEVE = 6081


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Vlan:
    """A VLAN tag: 802.1Q (TPID 0x8100 or 0x9100) or 802.1ad (0x88a8).  Two 802.1ad tags in a row are
    one layer, the second one's TCI in ``inner_tci`` (Wireshark's S-VID and C-VID)."""

    tpid: int
    tci: int
    ethertype: int  #: the EtherType after the tag(s)
    inner_tci: int | None = None

    @property
    def id(self) -> int:
        return self.tci & 0xFFF

    @property
    def priority(self) -> int:
        return self.tci >> 13


@dataclass(frozen=True, slots=True)
class Mpls:
    """One MPLS label stack entry (RFC 3032)."""

    entry: int  #: the 32-bit entry as sent

    @property
    def label(self) -> int:
        return self.entry >> 12

    @property
    def exp(self) -> int:
        return (self.entry >> 9) & 7

    @property
    def bottom(self) -> int:
        return (self.entry >> 8) & 1

    @property
    def ttl(self) -> int:
        return self.entry & 0xFF


@dataclass(frozen=True, slots=True)
class Ppp:
    """A PPP header: the protocol (a compressed one-octet field read as its value), and the HDLC
    address and control octets when the frame has them."""

    protocol: int
    address: int | None = None
    control: int | None = None


@dataclass(frozen=True, slots=True)
class Pppoe:
    """A PPPoE header (RFC 2516): the session stage (EtherType 0x8864) or the discovery stage (0x8863)."""

    version_type: int
    code: int
    session_id: int
    length: int
    discovery: bool = False


@dataclass(frozen=True, slots=True)
class Ip:
    """An IP header that is not the innermost one of a TCP segment (or any of a frame without TCP)."""

    version: int
    src: _Address
    dst: _Address
    proto: int  #: IPv4 protocol field; for IPv6 the protocol after the extension headers
    ttl: int  #: TTL or hop limit
    fragment: bool = False  #: a fragment (not followed)
    length: int = 0  #: IPv4 total length or IPv6 payload length, as sent
    ident: int = 0  #: IPv4 identification (0 for IPv6)


@dataclass(frozen=True, slots=True)
class Gre:
    """A GRE header (RFC 2784, 2890; version 1: PPTP's enhanced GRE, RFC 2637)."""

    flags_and_version: int
    protocol: int
    key: int | None = None  #: the key field (for PPTP: payload length << 16 | call ID)
    sequence: int | None = None
    ack: int | None = None  #: PPTP's acknowledgment number

    @property
    def pptp(self) -> bool:
        """Wireshark's enhanced GRE: protocol PPP and a version other than 0."""
        return self.protocol == _ET_PPP and self.flags_and_version & 7 != 0


@dataclass(frozen=True, slots=True)
class Udp:
    """A UDP header."""

    sport: int
    dport: int
    length: int
    checksum: int


@dataclass(frozen=True, slots=True)
class Vxlan:
    """A VXLAN header (RFC 7348); the payload is an Ethernet frame."""

    flags: int
    vni: int


@dataclass(frozen=True, slots=True)
class Geneve:
    """A Geneve header (RFC 8926)."""

    version: int
    flags: int
    protocol: int
    vni: int
    options_length: int  #: octets of options


@dataclass(frozen=True, slots=True)
class Gtp:
    """A GTP-U version 1 header (3GPP TS 29.281)."""

    flags: int
    message_type: int
    length: int
    teid: int | None  #: None for GTP' (protocol type 0)


Layer: TypeAlias = Vlan | Mpls | Ppp | Pppoe | Ip | Gre | Udp | Vxlan | Geneve | Gtp

_u16 = struct.Struct("!H").unpack_from
_u32 = struct.Struct("!I").unpack_from
_ip4 = struct.Struct("!BBHHHBB").unpack_from
_udp = struct.Struct("!HHHH").unpack_from
_pppoe = struct.Struct("!BBHH").unpack_from
_gtp = struct.Struct("!BBHI").unpack_from

_ET_IPV4, _ET_IPV6, _ET_PPP, _ET_TEB = int(EtherType.IPV4), int(EtherType.IPV6), int(EtherType.PPP), int(EtherType.TEB)
_ET_8021Q = frozenset((int(EtherType.VLAN), int(EtherType.QINQ_OLD)))
_ET_8021AD = int(EtherType.QINQ)
_ET_MPLS = frozenset((int(EtherType.MPLS), int(EtherType.MPLS_MULTICAST)))
_ET_PPPOED, _ET_PPPOES = int(EtherType.PPPOE_DISCOVERY), int(EtherType.PPPOE_SESSION)
_PPP_IP = frozenset(int(p) for p in PppProtocol)
_TCP, _UDP, _GRE = int(IpProto.TCP), int(IpProto.UDP), int(IpProto.GRE)
_IN_IP = frozenset((int(IpProto.IPIP), int(IpProto.IPV6)))
_TUNNELS = frozenset((int(IpProto.IPIP), int(IpProto.IPV6), _GRE, _UDP))
_AH, _FRAGMENT = int(IpProto.AH), int(IpProto.FRAGMENT)
_IPV6_EXT = frozenset(
    int(h) for h in (IpProto.HOPOPTS, IpProto.ROUTING, IpProto.DSTOPTS, IpProto.MOBILITY, IpProto.HIP, IpProto.SHIM6)
)
_GTP_U, _VXLAN, _GENEVE = int(TunnelPort.GTP_U), int(TunnelPort.VXLAN), int(TunnelPort.GENEVE)
_GTP_TPDU = 255
_GRE_CSUM, _GRE_ROUTING, _GRE_KEY, _GRE_SEQ, _GRE_ACK = 0x8000, 0x4000, 0x2000, 0x1000, 0x0080
_CHDLC = frozenset((0x0F, 0x8F))  # Cisco HDLC address octets (unicast, multicast)

_ETHERNET, _SLL, _SLL2 = int(LinkType.ETHERNET), int(LinkType.LINUX_SLL), int(LinkType.LINUX_SLL2)
_RAW = frozenset(int(t) for t in (LinkType.RAW, LinkType.RAW_OLD, LinkType.RAW_OLD2, LinkType.IPV4, LinkType.IPV6))
_NULL, _LOOP = int(LinkType.NULL), int(LinkType.LOOP)
_PPP_LINK, _PPP_HDLC_LINK, _PPP_ETHER = int(LinkType.PPP), int(LinkType.PPP_HDLC), int(LinkType.PPP_ETHER)
_AF_IP = frozenset((2, 10, 24, 28, 30))  # AF_INET and the AF_INET6 values of BSD null/loopback headers

# What the walk reads next.
_ETH, _ETYPE, _IP, _MPLS, _PPPOE, _PPP, _PPP_HDLC, _GRE_HDR, _END = range(9)


def _address(octets: bytes) -> _Address:
    return ipaddress.IPv4Address(octets) if len(octets) == 4 else ipaddress.IPv6Address(octets)


def _ipv6_upper(data: bytes, p: int) -> tuple[int, int, bool] | None:
    """(protocol, its offset, fragment) after an IPv6 header's extension headers; None if cut."""
    n = len(data)
    nh, t = data[p + 6], p + 40
    while nh in _IPV6_EXT or nh == _AH or nh == _FRAGMENT:
        if nh == _FRAGMENT:
            if n < t + 8:
                return None
            if _u16(data, t + 2)[0] & 0xFFF9:  # an offset or more fragments: not followed
                return data[t], t + 8, True
            nh, t = data[t], t + 8
            continue
        if n < t + 2:
            return None
        ah = nh == _AH
        nh, hl = data[t], data[t + 1]
        t += (hl + 2) * 4 if ah else (hl + 1) * 8
    return nh, t, False


def _udp_tunnel(data: bytes, q: int) -> int | None:
    """The tunnel port a UDP header at ``q`` leads to, the lower port tried first (as Wireshark),
    or None."""
    if len(data) < q + 16:  # UDP and a tunnel header's 8 octets
        return None
    sport: int = _u16(data, q)[0]
    dport: int = _u16(data, q + 2)[0]
    for port in (min(sport, dport), max(sport, dport)):
        if port == _GTP_U:
            if data[q + 8] >> 5 == 1:  # GTP version 1 (protocol type GTP or GTP')
                return port
        elif port == _VXLAN or port == _GENEVE:
            return port
    return None


def walk(linktype: int, data: bytes) -> tuple[list[Layer], int | None]:
    """(layers outermost first, offset of the innermost IP header or None) of a frame."""
    layers: list[Layer] = []
    n = len(data)
    p = 0
    et = 0
    if linktype == _ETHERNET:
        kind = _ETH
    elif linktype == _SLL:
        if n < 16:
            return layers, None
        kind, p, et = _ETYPE, 16, _u16(data, 14)[0]
    elif linktype == _SLL2:
        if n < 20:
            return layers, None
        kind, p, et = _ETYPE, 20, _u16(data, 0)[0]
    elif linktype in _RAW:
        kind = _IP
    elif linktype == _NULL or linktype == _LOOP:
        if n < 4:
            return layers, None
        fam = struct.unpack_from("!I" if linktype == _LOOP or data[0] == 0 else "<I", data, 0)[0]
        if fam not in _AF_IP:
            return layers, None
        kind, p = _IP, 4
    elif linktype == _PPP_LINK:
        kind = _PPP_HDLC
    elif linktype == _PPP_HDLC_LINK:
        if n >= 4 and data[0] in _CHDLC:  # Cisco HDLC: address, control, an EtherType
            kind, p, et = _ETYPE, 4, _u16(data, 2)[0]
        else:
            kind = _PPP_HDLC
    elif linktype == _PPP_ETHER:
        kind = _PPPOE
    else:
        return layers, None
    for _ in range(4 * MAX_LAYERS):  # a layer takes at most 4 steps (Ethernet, EtherType, IP, GRE)
        if len(layers) >= MAX_LAYERS:
            return layers, None
        if kind == _ETH:
            if n < p + 14:
                return layers, None
            kind, et, p = _ETYPE, _u16(data, p + 12)[0], p + 14
        elif kind == _ETYPE:
            if et == _ET_IPV4 or et == _ET_IPV6:
                kind = _IP
            elif et in _ET_8021Q or et == _ET_8021AD:
                if n < p + 4:
                    return layers, None
                tci, nxt = _u16(data, p)[0], _u16(data, p + 2)[0]
                if et == _ET_8021AD and nxt == _ET_8021AD:  # S-tag and C-tag, one 802.1ad layer
                    if n < p + 8:
                        return layers, None
                    inner, nxt = _u16(data, p + 4)[0], _u16(data, p + 6)[0]
                    layers.append(Vlan(et, tci, nxt, inner))
                    p += 8
                else:
                    layers.append(Vlan(et, tci, nxt))
                    p += 4
                et = nxt
            elif et in _ET_MPLS:
                kind = _MPLS
            elif et == _ET_PPPOES or et == _ET_PPPOED:
                if et == _ET_PPPOED:
                    if n >= p + 6:
                        vt, code, session, length = _pppoe(data, p)
                        layers.append(Pppoe(vt, code, session, length, True))
                    return layers, None
                kind = _PPPOE
            elif et == _ET_TEB:
                kind = _ETH
            elif et == _ET_PPP:
                kind = _PPP_HDLC
            else:
                return layers, None
        elif kind == _IP:
            if n <= p:
                return layers, None
            q = _tunnel(data, p, layers)
            if q is None:
                return layers, p
            kind, p, et = q
            if kind == _END:  # a tunnel that carries no IP here
                return layers, None
        elif kind == _MPLS:
            while True:
                if n < p + 4 or len(layers) >= MAX_LAYERS:
                    return layers, None
                entry = _u32(data, p)[0]
                layers.append(Mpls(entry))
                p += 4
                if entry & 0x100:
                    break
            if n <= p or data[p] >> 4 not in (4, 6):
                return layers, None  # not IP: a pseudowire, which tshark guesses at by vendor codes
            kind = _IP
        elif kind == _PPPOE:
            if n < p + 6:
                return layers, None
            layers.append(Pppoe(*_pppoe(data, p)))
            kind, p = _PPP, p + 6
        elif kind == _PPP or kind == _PPP_HDLC:
            addr = ctrl = None
            if kind == _PPP_HDLC and n >= p + 2 and data[p] == 0xFF:
                addr, ctrl = data[p], data[p + 1]
                p += 2
            if n <= p:
                return layers, None
            if data[p] & 1:  # protocol-field compression: one octet
                proto, p = data[p], p + 1
            elif n < p + 2:
                return layers, None
            else:
                proto, p = _u16(data, p)[0], p + 2
            layers.append(Ppp(proto, addr, ctrl))
            if proto not in _PPP_IP:
                return layers, None
            kind = _IP
        elif kind == _GRE_HDR:
            g = _gre(data, p, layers)
            if g is None:
                return layers, None
            kind, p, et = _ETYPE, g[0], g[1]
        else:
            return layers, None
    return layers, None


def _gre(data: bytes, p: int, layers: list[Layer]) -> tuple[int, int] | None:
    """Append the GRE header at ``p`` to ``layers``: (offset of its payload, its protocol type), or
    None if cut."""
    n = len(data)
    if n < p + 4:
        return None
    fv, proto = _u16(data, p)[0], _u16(data, p + 2)[0]
    pptp = proto == _ET_PPP and fv & 7 != 0
    q = p + 4
    key = seq = ack = None
    if fv & (_GRE_CSUM | _GRE_ROUTING):
        q += 4
    if fv & _GRE_KEY:
        if n < q + 4:
            return None
        key = _u32(data, q)[0]
        q += 4
    if fv & _GRE_SEQ:
        if n < q + 4:
            return None
        seq = _u32(data, q)[0]
        q += 4
    if pptp and fv & _GRE_ACK:
        if n < q + 4:
            return None
        ack = _u32(data, q)[0]
        q += 4
    if fv & _GRE_ROUTING:
        while True:
            if n < q + 4:
                return None
            af, length = _u16(data, q)[0], data[q + 3]
            q += 4
            if af == 0 and length == 0:
                break
            q += length
    if n < q:
        return None
    layers.append(Gre(fv, proto, key, seq, ack))
    return q, proto


def _tunnel(data: bytes, p: int, layers: list[Layer]) -> tuple[int, int, int] | None:
    """For an IP header at ``p`` that carries a tunnel followed here: append it (and the tunnel's
    headers) to ``layers`` and return (what to read next, where, EtherType); else None."""
    n = len(data)
    ver = data[p] >> 4
    if ver == 4:
        if n < p + 20:
            return None
        vihl, _, length, ident, frag, ttl, proto = _ip4(data, p)
        ihl = (vihl & 15) * 4
        if ihl < 20 or proto not in _TUNNELS or frag & 0x3FFF:
            return None
        q = p + ihl
        src, dst = data[p + 12 : p + 16], data[p + 16 : p + 20]
    elif ver == 6:
        if n < p + 40:
            return None
        up = _ipv6_upper(data, p)
        if up is None or up[0] not in _TUNNELS or up[2]:
            return None
        proto, q, _ = up
        ttl, length, ident = data[p + 7], _u16(data, p + 4)[0], 0
        src, dst = data[p + 8 : p + 24], data[p + 24 : p + 40]
    else:
        return None
    if n < q:
        return None
    if proto == _UDP:
        if n < q + 8:
            return None
        port = _udp_tunnel(data, q)
        if port is None:
            return None
        layers.append(Ip(ver, _address(src), _address(dst), proto, ttl, False, length, ident))
        layers.append(Udp(*_udp(data, q)))
        return _udp_payload(data, q + 8, port, layers) or (_END, 0, 0)
    layers.append(Ip(ver, _address(src), _address(dst), proto, ttl, False, length, ident))
    if proto == _GRE:
        return _GRE_HDR, q, 0
    return _IP, q, 0  # IPv4 or IPv6 in IP


def _udp_payload(data: bytes, q: int, port: int, layers: list[Layer]) -> tuple[int, int, int] | None:
    """The tunnel header at ``q`` (after UDP), appended: (what to read next, where, EtherType)."""
    n = len(data)
    if port == _VXLAN:
        layers.append(Vxlan(_u16(data, q)[0], _u32(data, q + 4)[0] >> 8))
        return _ETH, q + 8, 0
    if port == _GENEVE:
        vo, flags, proto, vni = _gtp(data, q)
        olen = (vo & 0x3F) * 4
        layers.append(Geneve(vo >> 6, flags, proto, vni >> 8, olen))
        return _ETYPE, q + 8 + olen, proto
    flags, mtype, length, teid = _gtp(data, q)
    if not flags & 0x10:  # GTP': shown as GTP without a TEID, not followed
        layers.append(Gtp(flags, mtype, length, None))
        return None
    layers.append(Gtp(flags, mtype, length, teid))
    t = q + 8
    if flags & 0x07:  # sequence number, N-PDU number, next extension header type
        if n < t + 4:
            return None
        nxt = data[t + 3]
        t += 4
        while nxt:  # extension headers: a length in 4-octet units, the last octet the next type
            if n <= t or data[t] == 0 or n < t + data[t] * 4:
                return None
            t += data[t] * 4
            nxt = data[t - 1]
    if mtype != _GTP_TPDU or n <= t:
        return None
    if data[t] >> 4 in (4, 6):
        return _IP, t, 0
    if n >= t + 14 and _u16(data, t + 12)[0] in (_ET_IPV4, _ET_IPV6):
        return _ETH, t, 0
    return None


def ip_layers(data: bytes, p: int) -> list[Layer]:
    """The innermost IP header at ``p`` of a frame without TCP, and its UDP header if it has one."""
    n = len(data)
    if n <= p:
        return []
    ver = data[p] >> 4
    if ver == 4:
        if n < p + 20:
            return []
        vihl, _, length, ident, frag, ttl, proto = _ip4(data, p)
        q = p + (vihl & 15) * 4
        fragment = bool(frag & 0x3FFF)
        out: list[Layer] = [
            Ip(4, _address(data[p + 12 : p + 16]), _address(data[p + 16 : p + 20]), proto, ttl, fragment, length, ident)
        ]
    elif ver == 6:
        if n < p + 40:
            return []
        up = _ipv6_upper(data, p)
        proto, q, fragment = up if up is not None else (data[p + 6], p + 40, False)
        src6, dst6 = _address(data[p + 8 : p + 24]), _address(data[p + 24 : p + 40])
        out = [Ip(6, src6, dst6, proto, data[p + 7], fragment, _u16(data, p + 4)[0])]
        if up is None:
            return out
    else:
        return []
    if proto == _UDP and not fragment and q >= p + 20 and n >= q + 8:
        out.append(Udp(*_udp(data, q)))
    return out


def frame_layers(linktype: int, data: bytes) -> tuple[Layer, ...]:
    """Every layer of a frame, outermost first, down to its innermost IP header and UDP header: for
    frames without a TCP segment."""
    layers, at = walk(linktype, data)
    if at is not None:
        layers += ip_layers(data, at)
    return tuple(layers)
