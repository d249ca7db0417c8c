"""Building the IPv4/IPv6 + TCP packets the replay sends, checksums included."""

from __future__ import annotations

import ipaddress
import struct

from mptcpspec.options import encode_tcp_options

__all__ = ["tcp_packet", "tcp_checksum", "ip_checksum", "fold"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def fold(total: int) -> int:
    """A one's complement sum folded to 16 bits (RFC 1071)."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    """The one's complement sum of the 16-bit big-endian words of ``data`` (padded), folded.

    2**16 is 1 modulo 0xFFFF, so the folded sum of the words is the whole octet string, read as one
    big number, modulo 0xFFFF (RFC 1071's end-around carry), with 0xFFFF for a non-zero multiple."""
    if len(data) % 2:
        data += b"\0"
    n = int.from_bytes(data, "big")
    r = n % 0xFFFF
    return 0xFFFF if r == 0 and n else r


def tcp_checksum(src: _Address, dst: _Address, segment: bytes) -> int:
    """The TCP checksum of ``segment`` (checksum field zero) over the IPv4 or IPv6 pseudo-header."""
    if src.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 6, len(segment))
    else:
        pseudo = src.packed + dst.packed + struct.pack("!IxxxB", len(segment), 6)
    return ~fold(_sum16(pseudo) + _sum16(segment)) & 0xFFFF


def ip_checksum(header: bytes) -> int:
    """The IPv4 header checksum of ``header`` (checksum field zero)."""
    return ~fold(_sum16(header)) & 0xFFFF


def tcp_packet(src: _Address, dst: _Address, sport: int, dport: int, seq: int, ack: int, flags: int,
               window: int, options=(), payload: bytes = b"", ttl: int = 64, ip_id: int = 0) -> bytes:
    """One IP packet carrying one TCP segment; ``options`` are option values (padded to 4 octets)."""
    opts = encode_tcp_options(list(options)) if options else b""
    head = struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                       ((20 + len(opts)) // 4) << 12 | flags, window, 0, 0)
    seg = head + opts + payload
    csum = tcp_checksum(src, dst, seg)
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    if src.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), ip_id & 0xFFFF, 0x4000, ttl, 6, 0,
                         src.packed, dst.packed)
        ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
        return ip + seg
    return struct.pack("!IHBB16s16s", 6 << 28, len(seg), 6, ttl, src.packed, dst.packed) + seg
