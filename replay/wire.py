"""Building the IPv4/IPv6 + TCP packets the replay sends, checksums included."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

from mptcpspec.codec.options import TcpOption, encode_tcp_options

__all__ = [
    "tcp_packet",
    "tcp_checksum",
    "ip_checksum",
    "fold",
    "Flow",
    "dss_data_option",
    "payload_sum",
    "Burst",
    "BURST_MAX",
    "cut",
    "header_lengths",
    "on_wire",
    "partial_checksum",
]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def fold(total: int) -> int:
    """A one's complement sum folded to 16 bits (RFC 1071)."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes | bytearray) -> int:
    """The one's complement sum of the 16-bit big-endian words of ``data`` (padded), folded.

    2**16 is 1 modulo 0xFFFF, so the folded sum of the words is the whole octet string, read as one
    big number, modulo 0xFFFF (RFC 1071's end-around carry), with 0xFFFF for a non-zero multiple."""
    n = int.from_bytes(data, "big") << (8 * (len(data) & 1))  # an odd length padded with a zero octet
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


def tcp_packet(
    src: _Address,
    dst: _Address,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: Iterable[TcpOption] = (),
    payload: bytes = b"",
    ttl: int = 64,
    ip_id: int = 0,
) -> bytes:
    """One IP packet carrying one TCP segment; ``options`` are option values (padded to 4 octets)."""
    opts = encode_tcp_options(list(options)) if options else b""
    head = struct.pack(
        "!HHIIHHHH",
        sport,
        dport,
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF,
        ((20 + len(opts)) // 4) << 12 | flags,
        window,
        0,
        0,
    )
    seg = head + opts + payload
    csum = tcp_checksum(src, dst, seg)
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    if src.version == 4:
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), ip_id & 0xFFFF, 0x4000, ttl, 6, 0, src.packed, dst.packed
        )
        ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
        return ip + seg
    return struct.pack("!IHBB16s16s", 6 << 28, len(seg), 6, ttl, src.packed, dst.packed) + seg


# -- the data path, specialised: one subflow's constant parts computed once ------------------------

_DSS_MAP = struct.Struct("!BBBBQQIH")  # DSS with 8-octet DATA_ACK and DSN, SSN, data-level length
_DSS_MAP_CSUM = struct.Struct("!BBBBQQIHH")


def dss_data_option(data_ack: int, dsn: int, ssn: int, length: int, checksum: int | None) -> bytes:
    """The octets ``encode_tcp_options([Dss(flags=A|a|M|m, ...)])`` gives (RFC 8684 §3.3 Figure 9),
    without the generic encoder: the replay's data segments all carry this one option."""
    if checksum is None:
        return _DSS_MAP.pack(30, 26, 0x20, 0x0F, data_ack, dsn, ssn, length) + b"\0\0"  # EOL padding
    return _DSS_MAP_CSUM.pack(30, 28, 0x20, 0x0F, data_ack, dsn, ssn, length, checksum)


class Flow:
    """One direction of one TCP connection: ``packet()`` builds what :func:`tcp_packet` builds,
    with the constant parts of both checksums (addresses, ports, protocol, TTL) summed once and
    both headers packed by one struct."""

    __slots__ = ("v4", "base", "ip_base", "ports", "src", "dst", "sport", "dport", "ip_head", "ttl")

    def __init__(self, src: _Address, dst: _Address, sport: int, dport: int, ttl: int = 64) -> None:
        self.v4 = src.version == 4
        self.ttl = ttl
        self.src, self.dst, self.sport, self.dport = src.packed, dst.packed, sport, dport
        # the pseudo-header's addresses and protocol, and the ports of the TCP header
        self.base = _sum16(src.packed + dst.packed) + 6 + sport + dport
        # the IPv4 header but its total length: version/IHL, DF, TTL/protocol, addresses
        self.ip_base = _sum16(src.packed + dst.packed) + 0x4500 + 0x4000 + (ttl << 8 | 6)
        self.ports = struct.pack("!HH", sport, dport)
        self.ip_head = src.packed + dst.packed

    def packet(
        self, seq: int, ack: int, flags: int, window: int, opts: bytes, payload: bytes, psum: int | None = None
    ) -> bytes:
        """``opts``: encoded options, already a multiple of 4 octets; ``psum``: ``payload``'s
        one's complement sum (:func:`payload_sum`) when known."""
        seq &= 0xFFFFFFFF
        ack &= 0xFFFFFFFF
        tcp_len = 20 + len(opts) + len(payload)
        off = (20 + len(opts)) << 10 | flags  # the data offset in words, in the top 4 bits
        if psum is None:
            psum = _sum16(payload)
        # The options' octets read as one number are their words' sum modulo 0xFFFF (2**16 is 1
        # there); the sum is not zero (the addresses and protocol are in it), so the one value in
        # 1..0xFFFF of its class modulo 0xFFFF is what folding the whole segment's words gives.
        total = (self.base + tcp_len + seq + ack + off + window + psum + int.from_bytes(opts, "big")) % 0xFFFF
        csum = ~(total or 0xFFFF) & 0xFFFF
        if self.v4:
            ip = (self.ip_base + 20 + tcp_len) % 0xFFFF or 0xFFFF
            head = _V4_TCP.pack(
                0x45,
                0,
                20 + tcp_len,
                0,
                0x4000,
                self.ttl,
                6,
                ~ip & 0xFFFF,
                self.src,
                self.dst,
                self.sport,
                self.dport,
                seq,
                ack,
                off,
                window,
                csum,
                0,
            )
        else:
            v6 = 6 << 28, tcp_len, 6, self.ttl, self.src, self.dst
            head = _V6_TCP.pack(*v6, self.sport, self.dport, seq, ack, off, window, csum, 0)
        return b"".join((head, opts, payload))


_V4_TCP = struct.Struct("!BBHHHBBH4s4sHHIIHHHH")  # IPv4 header, TCP header to the urgent pointer
_V6_TCP = struct.Struct("!IHBB16s16sHHIIHHHH")


def payload_sum(payload: bytes) -> int:
    """The one's complement sum of ``payload`` that :meth:`Flow.packet` takes as ``psum``."""
    return _sum16(payload)


# -- bursts: one TCP segment longer than the path takes, cut by the kernel (GSO) or by cut() -------


#: octets of payload at most in one burst: with the headers, within an IP packet and GSO's 64 KiB
BURST_MAX = 64000


class Burst(bytes):
    """An IP packet whose TCP segment carries more than one segment's worth: the transport cuts it
    into segments of at most ``mss`` octets of options and payload each (the subflow's MSS), as the
    kernel cuts a TSO/GSO packet: the same headers and options on each, the sequence number and the
    lengths advanced, PSH and FIN on the last one only.  One DSS mapping covers the whole payload
    (RFC 8684 §3.3.1: a mapping may span several segments; each then carries it)."""

    mss: int

    @classmethod
    def of(cls, packet: bytes, mss: int) -> Burst:
        b = cls(packet)
        b.mss = mss
        return b


def header_lengths(packet: bytes) -> tuple[int, int]:
    """The IP header's length and the TCP header's (options included) of ``packet``."""
    ip = (packet[0] & 15) * 4 if packet[0] >> 4 == 4 else 40
    return ip, (packet[ip + 12] >> 4) * 4


def cut(packet: bytes, mss: int) -> list[bytes]:
    """``packet`` cut into segments of at most ``mss`` octets of TCP options and payload, with
    their checksums (what the kernel's GSO makes of it, IPv4 identification aside: here each keeps
    the packet's); the packet itself when it fits."""
    ip, th = header_lengths(packet)
    head = ip + th
    size = mss - (th - 20)
    if size <= 0:
        raise ValueError(f"cut: an MSS of {mss} leaves no room for payload after {th - 20} octets of options")
    payload = packet[head:]
    if len(payload) <= size:
        return [bytes(packet)]
    v4 = packet[0] >> 4 == 4
    addresses = (packet[12:16], packet[16:20]) if v4 else (packet[8:24], packet[24:40])
    src, dst = (ipaddress.ip_address(a) for a in addresses)
    seq0 = int.from_bytes(packet[ip + 4 : ip + 8], "big")
    flags = int.from_bytes(packet[ip + 12 : ip + 14], "big")
    options = packet[ip + 20 : head]
    pieces = []
    for off in range(0, len(payload), size):
        piece = payload[off : off + size]
        last = off + size >= len(payload)
        f = flags if last else flags & ~0x09  # FIN and PSH on the last segment only
        tcp = bytearray(packet[ip : ip + 20])
        tcp[4:8] = ((seq0 + off) & 0xFFFFFFFF).to_bytes(4, "big")
        tcp[12:14] = f.to_bytes(2, "big")
        tcp[16:18] = b"\0\0"
        seg = bytes(tcp) + options + piece
        tcp[16:18] = tcp_checksum(src, dst, seg).to_bytes(2, "big")
        seg = bytes(tcp) + options + piece
        if v4:
            h = bytearray(packet[:ip])
            h[2:4] = (ip + len(seg)).to_bytes(2, "big")
            h[10:12] = b"\0\0"
            h[10:12] = ip_checksum(bytes(h)).to_bytes(2, "big")
        else:
            h = bytearray(packet[:40])
            h[4:6] = len(seg).to_bytes(2, "big")
        pieces.append(bytes(h) + seg)
    return pieces


def on_wire(burst: Burst) -> tuple[int, int]:
    """The packets and IP octets ``burst`` becomes once cut (:func:`cut`, or the kernel's GSO):
    each segment with its headers."""
    ip, th = header_lengths(burst)
    size = burst.mss - (th - 20)
    n = max(1, -(-(len(burst) - ip - th) // size)) if size > 0 else 1
    return n, len(burst) + (n - 1) * (ip + th)


def partial_checksum(packet: bytes) -> bytes:
    """``packet`` with its TCP checksum field holding only the pseudo-header's sum, folded and not
    complemented: what a packet handed to the kernel with its checksum left to do (CHECKSUM_PARTIAL,
    a virtio_net_hdr asking for it) carries there."""
    ip, _ = header_lengths(packet)
    tcp_len = len(packet) - ip
    if packet[0] >> 4 == 4:
        pseudo = _sum16(packet[12:20]) + 6 + tcp_len
    else:
        pseudo = _sum16(packet[8:40]) + 6 + tcp_len
    return b"".join((packet[: ip + 16], fold(pseudo).to_bytes(2, "big"), packet[ip + 18 :]))
