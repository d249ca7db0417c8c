"""From captured frames to TCP segments: link layer, IPv4/IPv6, TCP.

:func:`decode_packet` takes a :class:`~mptcpspec.capture.pcap.Record` (or :func:`decode_frame` a link
type and octets) and returns a :class:`Packet`, or ``None`` for a frame that carries no TCP
segment (ARP, UDP, a non-first IP fragment...).  Link types: Ethernet, Linux cooked v1 and v2,
raw IP, BSD null and loopback, PPP, PPP in HDLC framing, PPPoE; VLAN tags, MPLS, PPPoE and the
tunnels (GRE, IP in IP, VXLAN, Geneve, GTP-U) are followed to the innermost IP header by
:func:`~mptcpspec.capture.encap.walk`, and kept in ``Packet.tunnel``.  IPv6 extension headers are
skipped.  A payload cut by the snapshot length is returned as far as it goes: ``payload`` holds
the captured octets, ``payload_len`` the length the IP header announces.  A TCP header cut inside
its options is returned too, with the options captured (``options_cut``, ``hdr_len``).  A TCP
header that is malformed, or cut inside its fixed 20 octets, raises
:class:`~mptcpspec.errors.DecodeError`.
"""

from __future__ import annotations

import ipaddress
import struct
from enum import IntEnum, IntFlag
from typing import Literal

from mptcpspec.capture.encap import EtherType, IpProto, Layer, walk
from mptcpspec.capture.linktypes import LinkType
from mptcpspec.capture.pcap import Record
from mptcpspec.codec.runtime import FlagTable, fast_constructor
from mptcpspec.errors import DecodeError
from mptcpspec.records import dataclass

__all__ = [
    "AddressFamily",
    "EtherType",
    "IpProto",
    "LINKTYPES",
    "Layer",
    "Packet",
    "TcpFlags",
    "decode_frame",
    "decode_packet",
    "ip_addresses",
    "ip_payload_offset",
]


class TcpFlags(IntFlag):
    """TCP header flags (RFC 9293 §3.1; AE from RFC 3540's NS bit position)."""

    FIN = 0x001
    SYN = 0x002
    RST = 0x004
    PSH = 0x008
    ACK = 0x010
    URG = 0x020
    ECE = 0x040
    CWR = 0x080
    AE = 0x100


class AddressFamily(IntEnum):
    """The address family word of BSD null and loopback link headers: AF_INET6 differs by system."""

    INET = 2
    INET6_LINUX = 10
    INET6_BSD = 24  #: NetBSD, OpenBSD
    INET6_FREEBSD = 28
    INET6_DARWIN = 30


_FLAGS = FlagTable(TcpFlags)  # the 9 flag bits -> TcpFlags, made on first use
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Packet:
    """One TCP segment as captured."""

    version: int  #: IP version, 4 or 6
    src: _Address
    dst: _Address
    sport: int
    dport: int
    seq: int
    ack: int
    flags: TcpFlags
    window: int  #: the raw window field (unscaled)
    options: bytes  #: the TCP options area
    payload: bytes  #: the captured payload octets
    payload_len: int  #: payload octets on the wire, per the IP header (>= ``len(payload)``)
    checksum: int = 0  #: the TCP checksum field
    urgent: int = 0
    ttl: int = 0  #: IPv4 TTL or IPv6 hop limit
    timestamp_ns: int = 0  #: capture time, from the record
    #: the snapshot length cut the options area: ``options`` holds the captured part, ``payload`` is
    #: empty, and ``hdr_len`` says how long the header was
    options_cut: bool = False
    hdr_len: int = 0  #: the TCP header length of the data offset field (0: not from a capture)
    #: the encapsulation layers around the segment's IP header, outermost first: VLAN tags, MPLS
    #: labels, PPP, PPPoE, outer IP headers, GRE, UDP, VXLAN, Geneve, GTP-U
    #: (:mod:`~mptcpspec.capture.encap`); empty for a plain frame
    tunnel: tuple[Layer, ...] = ()
    ip_len: int = 0  #: IPv4 total length or IPv6 payload length, as sent
    ip_id: int = 0  #: IPv4 identification (0 for IPv6)

    @property
    def payload_cut(self) -> bool:
        """True when the snapshot length cut the payload."""
        return self.payload_len > len(self.payload)

    @property
    def seg_len(self) -> int:
        """Sequence space the segment occupies: payload, plus one for SYN and for FIN."""
        return self.payload_len + (1 if self.flags & _SYN else 0) + (1 if self.flags & _FIN else 0)


_packet = fast_constructor(Packet)

# Addresses repeat on every packet of a flow: build each address object once.
_v4cache: dict[bytes, ipaddress.IPv4Address] = {}
_v6cache: dict[bytes, ipaddress.IPv6Address] = {}


def _v4(octets: bytes) -> ipaddress.IPv4Address:
    a = _v4cache.get(octets)
    if a is None:
        if len(_v4cache) > 65536:
            _v4cache.clear()
        a = _v4cache[octets] = ipaddress.IPv4Address(octets)
    return a


def _v6(octets: bytes) -> ipaddress.IPv6Address:
    a = _v6cache.get(octets)
    if a is None:
        if len(_v6cache) > 65536:
            _v6cache.clear()
        a = _v6cache[octets] = ipaddress.IPv6Address(octets)
    return a


# The numbers the decoders compare, as plain ints taken from the enums (an int compares faster
# than an enum member).
_FIN, _SYN = int(TcpFlags.FIN), int(TcpFlags.SYN)
_FLAG_BITS = int(~TcpFlags(0))  # the 9 flag bits of the TCP header's data offset word
_ETH_IPV4, _ETH_IPV6 = int(EtherType.IPV4), int(EtherType.IPV6)
_VLAN = frozenset(int(t) for t in (EtherType.VLAN, EtherType.QINQ, EtherType.QINQ_OLD))
_AF_INET = int(AddressFamily.INET)
_AF_INET6 = frozenset(int(f) for f in AddressFamily if f is not AddressFamily.INET)
_TCP = int(IpProto.TCP)
_AH, _FRAGMENT = int(IpProto.AH), int(IpProto.FRAGMENT)
_IPV6_EXT = frozenset(
    int(h) for h in (IpProto.HOPOPTS, IpProto.ROUTING, IpProto.DSTOPTS, IpProto.MOBILITY, IpProto.HIP, IpProto.SHIM6)
)
_IPV4_PLAIN = 0x45  # version 4, header length 5 words: IPv4 without options
_IPV4_FRAG_OFFSET = 0x1FFF  # the fragment offset bits of the IPv4 flags/offset word
_IPV6_FRAG_OFFSET = 0xFFF8  # the fragment offset bits of the IPv6 fragment header's offset word
_ETHERNET, _LINUX_SLL, _LINUX_SLL2 = int(LinkType.ETHERNET), int(LinkType.LINUX_SLL), int(LinkType.LINUX_SLL2)
_RAW_IP = frozenset(int(t) for t in (LinkType.RAW, LinkType.RAW_OLD, LinkType.RAW_OLD2, LinkType.IPV4, LinkType.IPV6))
_NULL, _LOOP = int(LinkType.NULL), int(LinkType.LOOP)
_u16 = struct.Struct("!H").unpack_from
_tcp = struct.Struct("!HHIIHHHH").unpack_from
_ip4 = struct.Struct("!BBHHHBB").unpack_from  # up to the protocol; the addresses are sliced as one key
_ip4tcp = struct.Struct("!BBHHHBBH8sHHIIHHHH").unpack_from  # a 20-octet IPv4 header and the TCP header
_ip6 = struct.Struct("!IHBB").unpack_from
_IP_ETHERTYPES = frozenset((_ETH_IPV4, _ETH_IPV6))
_TUNNELS = frozenset(int(t) for t in (IpProto.IPIP, IpProto.IPV6, IpProto.GRE, IpProto.UDP))
_NO_TUNNEL: tuple[Layer, ...] = ()


#: the link types decoded: Ethernet, Linux cooked v1 and v2, raw IP, BSD null, loopback, PPP, PPP in
#: HDLC framing, PPPoE (every LinkType)
LINKTYPES = frozenset(int(t) for t in LinkType)


def ip_payload_offset(linktype: int, data: bytes) -> int | None:
    """Offset of the IP header in a frame of ``linktype``, or None if it carries no IP packet."""
    if linktype == _ETHERNET:
        p = 12
        if len(data) < 14:
            return None
        et = _u16(data, p)[0]
        while et in _VLAN:
            p += 4
            if len(data) < p + 2:
                return None
            et = _u16(data, p)[0]
        return p + 2 if et in (_ETH_IPV4, _ETH_IPV6) else None
    if linktype == _LINUX_SLL:  # Linux cooked v1
        if len(data) < 16:
            return None
        return 16 if _u16(data, 14)[0] in (_ETH_IPV4, _ETH_IPV6) else None
    if linktype == _LINUX_SLL2:  # Linux cooked v2
        if len(data) < 20:
            return None
        return 20 if _u16(data, 0)[0] in (_ETH_IPV4, _ETH_IPV6) else None
    if linktype in _RAW_IP:
        return 0
    if linktype == _NULL or linktype == _LOOP:  # BSD null (host order) / loopback (network order)
        if len(data) < 4:
            return None
        fam = struct.unpack_from("!I" if linktype == _LOOP or data[0] == 0 else "<I", data, 0)[0]
        return 4 if fam == _AF_INET or fam in _AF_INET6 else None
    return None


def ip_addresses(linktype: int, data: bytes) -> tuple[int, _Address, _Address] | None:
    """(IP version, source, destination) of a frame's IP header, or None: for frames without TCP."""
    p = ip_payload_offset(linktype, data)
    if p is None or len(data) <= p:
        return None
    ver = data[p] >> 4
    if ver == 4 and len(data) >= p + 20:
        return 4, _v4(data[p + 12 : p + 16]), _v4(data[p + 16 : p + 20])
    if ver == 6 and len(data) >= p + 40:
        return 6, _v6(data[p + 8 : p + 24]), _v6(data[p + 24 : p + 40])
    return None


def decode_packet(rec: Record) -> Packet | None:
    """The TCP segment in a :class:`~mptcpspec.capture.pcap.Record`, or None when there is none."""
    return decode_frame(rec.linktype, rec.data, rec.timestamp_ns)


def _v4_pair(octets: bytes) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """(source, destination) for the 8 address octets of an IPv4 header; cached, as the addresses."""
    pair = _v4pairs[octets] = (_v4(octets[:4]), _v4(octets[4:]))
    if len(_v4pairs) > 65536:
        _v4pairs.clear()
        _v4pairs[octets] = pair
    return pair


def _v6_pair(octets: bytes) -> tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]:
    pair = _v6pairs[octets] = (_v6(octets[:16]), _v6(octets[16:]))
    if len(_v6pairs) > 65536:
        _v6pairs.clear()
        _v6pairs[octets] = pair
    return pair


_v4pairs: dict[bytes, tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]] = {}
_v6pairs: dict[bytes, tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]] = {}


def _tcp_header_error(doff: int, p: int, t: int, end: int) -> DecodeError:
    """Why a TCP header of ``doff`` octets at ``t`` (IP header at ``p``, packet end ``end``) cannot
    be decoded."""
    if doff < 20:
        return DecodeError("TCP header", "data offset", t - p + 12, f"header length {doff} is under 20")
    return DecodeError(
        "TCP header", "data offset", t - p + 12, f"header length {doff} runs past the IP packet ({end - t} octets)"
    )


def decode_frame(linktype: int, data: bytes, timestamp_ns: int = 0) -> Packet | None:
    """The TCP segment in a frame of ``linktype``, or None when there is none."""
    n = len(data)
    # The link layers of most captures inline (Linux cooked v1 is what ``tcpdump -i any`` writes,
    # v2 what it writes with ``-y LINUX_SLL2`` and what newer libpcaps choose); the rest, and VLAN
    # tags, through ip_payload_offset.
    if linktype == _LINUX_SLL and n > 16 and ((data[14] << 8) | data[15]) in _IP_ETHERTYPES:
        p = 16
    elif linktype == _ETHERNET and n > 14 and ((data[12] << 8) | data[13]) in _IP_ETHERTYPES:
        p = 14
    elif linktype == _LINUX_SLL2 and n > 20 and ((data[0] << 8) | data[1]) in _IP_ETHERTYPES:
        p = 20
    else:
        at = _plain_ip_offset(linktype, data)
        if at is None:
            return _decode_walk(linktype, data, timestamp_ns)
        if n <= at:
            return None
        p = at
    ver = data[p] >> 4
    if data[p] == _IPV4_PLAIN and n >= p + 40:  # IPv4 without options and a whole TCP header: one unpack for both
        _, _, total, ident, frag, ttl, proto, _, a, sport, dport, seq, ack, offflags, win, csum, urg = _ip4tcp(data, p)
        raw_len = total
        if proto != _TCP or frag & _IPV4_FRAG_OFFSET:
            # a tunnel, or not TCP, or a fragment without the TCP header
            return _decode_walk(linktype, data, timestamp_ns) if proto in _TUNNELS else None
        if total == 0:  # segmentation offload captures leave it zero
            total = n - p
        elif total < 20:
            raise DecodeError("IPv4 header", "total length", p + 2, f"{total} is shorter than the header (20)")
        t = p + 20
        end = p + total
        pair = _v4pairs.get(a)
        if pair is None:
            pair = _v4_pair(a)
        src, dst = pair
    else:
        r = _decode_other(data, p, ver, n, timestamp_ns, None)
        return _decode_walk(linktype, data, timestamp_ns) if r is False else r
    doff = (offflags >> 12) * 4
    o = t + doff
    if doff < 20 or o > end or n < o:
        return _cut_or_error(
            ver,
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            offflags,
            win,
            csum,
            urg,
            ttl,
            timestamp_ns,
            data,
            doff,
            p,
            t,
            end,
            n,
            _NO_TUNNEL,
            raw_len,
            ident,
        )
    return _packet(
        ver,
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        _FLAGS[offflags & _FLAG_BITS],
        win,
        data[t + 20 : o],
        data[o:end] if end <= n else data[o:n],
        end - o,
        csum,
        urg,
        ttl,
        timestamp_ns,
        False,
        doff,
        _NO_TUNNEL,
        raw_len,
        ident,
    )


def _cut_or_error(
    ver: int,
    src: _Address,
    dst: _Address,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    offflags: int,
    win: int,
    csum: int,
    urg: int,
    ttl: int,
    timestamp_ns: int,
    data: bytes,
    doff: int,
    p: int,
    t: int,
    end: int,
    n: int,
    tunnel: tuple[Layer, ...],
    raw_len: int,
    ident: int,
) -> Packet:
    """A TCP header whose options the snapshot length cut (the captured part kept, marked), or
    the DecodeError of a header that cannot be."""
    if doff < 20 or t + doff > end:
        raise _tcp_header_error(doff, p, t, end)
    return _packet(
        ver,
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        _FLAGS[offflags & _FLAG_BITS],
        win,
        data[t + 20 : n],
        b"",
        end - t - doff,
        csum,
        urg,
        ttl,
        timestamp_ns,
        True,
        doff,
        tunnel,
        raw_len,
        ident,
    )


def _decode_other(
    data: bytes, p: int, ver: int, n: int, timestamp_ns: int, tunnel: tuple[Layer, ...] | None
) -> Packet | Literal[False] | None:
    """decode_frame from the IP header at ``p`` on, for what its fast path leaves: IPv4 with options
    or cut short, IPv6, other versions, and the innermost IP header of a tunnel (``tunnel``: its
    layers).  False (for ``tunnel`` None) when the header carries a tunnel protocol, for
    :func:`_decode_walk` to follow."""
    src: _Address
    dst: _Address
    if ver == 4:
        if n < p + 20:
            raise DecodeError("IPv4 header", None, p, f"needs 20 octets, {n - p} captured")
        vihl, _, total, ident, frag, ttl, proto = _ip4(data, p)
        raw_len = total
        ihl = (vihl & 15) * 4
        if ihl < 20:
            raise DecodeError("IPv4 header", "IHL", p, f"header length {ihl} is under 20")
        if proto != _TCP or frag & _IPV4_FRAG_OFFSET:
            # not TCP (a tunnel protocol: told), or a fragment without the TCP header
            return False if tunnel is None and proto in _TUNNELS else None
        if total == 0:  # segmentation offload captures leave it zero
            total = n - p
        elif total < ihl:
            raise DecodeError("IPv4 header", "total length", p + 2, f"{total} is shorter than the header ({ihl})")
        t = p + ihl
        end = p + total  # the IP packet's end (Ethernet padding beyond it is not payload)
        a = data[p + 12 : p + 20]
        pair = _v4pairs.get(a)
        if pair is None:
            pair = _v4_pair(a)
        src, dst = pair
    elif ver == 6:
        if n < p + 40:
            raise DecodeError("IPv6 header", None, p, f"needs 40 octets, {n - p} captured")
        _, plen, nh, ttl = _ip6(data, p)
        raw_len, ident = plen, 0
        t = p + 40
        end = t + plen if plen else n
        while nh != _TCP:
            if nh in _IPV6_EXT or nh == _AH:
                if n < t + 2:
                    return None
                ah = nh == _AH  # AH counts its length in 4-octet units less 2, the others in 8-octet units less 1
                nh, hl = data[t], data[t + 1]
                t += (hl + 2) * 4 if ah else (hl + 1) * 8
            elif nh == _FRAGMENT:
                if n < t + 8:
                    return None
                if _u16(data, t + 2)[0] & _IPV6_FRAG_OFFSET:
                    return None  # not the first fragment
                nh = data[t]
                t += 8
            else:
                return False if tunnel is None and nh in _TUNNELS else None
        a = data[p + 8 : p + 40]
        pair6 = _v6pairs.get(a)
        if pair6 is None:
            pair6 = _v6_pair(a)
        src, dst = pair6
    else:
        return None
    if n < t + 20:
        raise DecodeError("TCP header", None, t - p, f"needs 20 octets, {max(n - t, 0)} captured")
    sport, dport, seq, ack, offflags, win, csum, urg = _tcp(data, t)
    doff = (offflags >> 12) * 4
    o = t + doff
    if doff < 20 or o > end or n < o:
        return _cut_or_error(
            ver,
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            offflags,
            win,
            csum,
            urg,
            ttl,
            timestamp_ns,
            data,
            doff,
            p,
            t,
            end,
            n,
            tunnel or _NO_TUNNEL,
            raw_len,
            ident,
        )
    return _packet(
        ver,
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        _FLAGS[offflags & _FLAG_BITS],
        win,
        data[t + 20 : o],
        data[o:end] if end <= n else data[o:n],
        end - o,
        csum,
        urg,
        ttl,
        timestamp_ns,
        False,
        doff,
        tunnel or _NO_TUNNEL,
        raw_len,
        ident,
    )


def _plain_ip_offset(linktype: int, data: bytes) -> int | None:
    """Offset of the IP header of a frame with nothing between its link header and IP (Linux cooked
    v2, raw IP, BSD null and loopback), or None: the frame is walked (:func:`_decode_walk`)."""
    if linktype == _LINUX_SLL2:
        if len(data) < 20 or _u16(data, 0)[0] not in _IP_ETHERTYPES:
            return None
        return 20
    if linktype in _RAW_IP:
        return 0
    if linktype == _NULL or linktype == _LOOP:
        return ip_payload_offset(linktype, data)
    return None


def _decode_walk(linktype: int, data: bytes, timestamp_ns: int) -> Packet | None:
    """The TCP segment of a frame with VLAN tags, MPLS, PPP, PPPoE or tunnels, its layers kept."""
    layers, at = walk(linktype, data)
    if at is None:
        return None
    r = _decode_other(data, at, data[at] >> 4, len(data), timestamp_ns, tuple(layers))
    return r if isinstance(r, Packet) else None
