"""Stateless replay (``mptcpspec replay --mode raw``): every packet of a capture, both directions,
sent onto an interface as it was, addresses rewritten and checksums made right again, like
tcpreplay with tcprewrite, for testing middleboxes.

Frames go out whole through a packet socket bound to the interface.  An Ethernet capture keeps its
MAC addresses; other link types (Linux cooked, raw IP...) get an Ethernet header with the
interface's own address as source and ``dst_mac`` (default broadcast) as destination.  Only IP
packets are sent; after rewriting, a packet must go to an address given on the command line (the
right-hand sides of ``--map``), or it is skipped and counted: the mode never sends elsewhere.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from mptcpspec.capture.packets import ip_payload_offset
from mptcpspec.capture.pcap import LinkType, read_records
from mptcpspec.replay.setup import Address, Timing
from mptcpspec.replay.wire import fold, ip_checksum, tcp_checksum

__all__ = ["RawReport", "raw_frames", "send_raw"]

_ETH_P_ALL = 0x0003
_ETHERNET = int(LinkType.ETHERNET)


@dataclass(frozen=True, slots=True)
class RawReport:
    sent: int  #: packets sent
    skipped: int  #: not IP, or to an address not allowed
    octets: int  #: IP octets sent
    elapsed: float  #: seconds


def rewrite(ip: bytes, mapping: Mapping[Address, Address]) -> bytes | None:
    """An IP packet with its addresses mapped and its IPv4 and TCP checksums computed again."""
    ver = ip[0] >> 4
    b = bytearray(ip)
    src: Address
    dst: Address
    if ver == 4 and len(b) >= 20:
        ihl = (b[0] & 15) * 4
        src = ipaddress.IPv4Address(bytes(b[12:16]))
        dst = ipaddress.IPv4Address(bytes(b[16:20]))
        src, dst = mapping.get(src, src), mapping.get(dst, dst)
        b[12:16], b[16:20] = src.packed, dst.packed
        b[10:12] = b"\0\0"
        b[10:12] = struct.pack("!H", ip_checksum(bytes(b[:ihl])))
        proto, payload_at = b[9], ihl
        frag = struct.unpack_from("!H", b, 6)[0] & 0x1FFF
        total = struct.unpack_from("!H", b, 2)[0] or len(b)
    elif ver == 6 and len(b) >= 40:
        src = ipaddress.IPv6Address(bytes(b[8:24]))
        dst = ipaddress.IPv6Address(bytes(b[24:40]))
        src, dst = mapping.get(src, src), mapping.get(dst, dst)
        b[8:24], b[24:40] = src.packed, dst.packed
        proto, payload_at, frag = b[6], 40, 0
        total = 40 + struct.unpack_from("!H", b, 4)[0]
    else:
        return None
    if proto == 6 and not frag and total <= len(b) and len(b) >= payload_at + 20:
        seg = bytearray(b[payload_at:total])
        seg[16:18] = b"\0\0"
        seg[16:18] = struct.pack("!H", tcp_checksum(src, dst, bytes(seg)))
        b[payload_at:total] = seg
    return bytes(b)


def _adjust(csum: int, old: bytes, new: bytes) -> int:
    """A checksum updated for ``old`` octets replaced by ``new`` (RFC 1624, eqn. 3): no full pass."""
    total = (~csum & 0xFFFF) + fold(sum(struct.unpack(f"!{len(old) // 2}H", bytes(x ^ 0xFF for x in old))))
    total += sum(struct.unpack(f"!{len(new) // 2}H", new))
    return ~fold(total) & 0xFFFF


def raw_frames(
    path: str | os.PathLike[str], mapping: Mapping[Address, Address], allowed: Collection[Address]
) -> Iterator[tuple[int, bytes | None, bytes]]:
    """(capture time ns, Ethernet header of the capture or None, rewritten IP packet) for every IP
    packet of the capture whose rewritten destination is in ``allowed``; others as (time, None, b"").

    Addresses are replaced as octets and the IPv4 header and TCP checksums updated incrementally
    (RFC 1624), so a packet keeps every other octet of the capture, a wrong checksum included."""
    packed = {a.packed: b.packed for a, b in mapping.items()}
    ok = {a.packed for a in allowed}
    for rec in read_records(path):
        data = rec.data
        at = ip_payload_offset(rec.linktype, data)
        if at is None or len(data) < at + 20:
            yield rec.timestamp_ns, None, b""
            continue
        ver = data[at] >> 4
        if ver == 4:
            s_at, d_at, alen = at + 12, at + 16, 4
        elif ver == 6 and len(data) >= at + 40:
            s_at, d_at, alen = at + 8, at + 24, 16
        else:
            yield rec.timestamp_ns, None, b""
            continue
        src, dst = data[s_at : s_at + alen], data[d_at : d_at + alen]
        nsrc, ndst = packed.get(src, src), packed.get(dst, dst)
        if ndst not in ok:
            yield rec.timestamp_ns, None, b""
            continue
        eth = data[:at] if rec.linktype == _ETHERNET else None
        if nsrc == src and ndst == dst:
            yield rec.timestamp_ns, eth, data[at:]
            continue
        b = bytearray(data[at:])
        old, new = src + dst, nsrc + ndst
        b[s_at - at : s_at - at + alen] = nsrc
        b[d_at - at : d_at - at + alen] = ndst
        if ver == 4:
            ihl = (b[0] & 15) * 4
            b[10:12] = struct.pack("!H", _adjust(struct.unpack_from("!H", b, 10)[0], old, new))
            proto, t = b[9], ihl
            frag = struct.unpack_from("!H", b, 6)[0] & 0x1FFF
        else:
            proto, t, frag = b[6], 40, 0
        if proto == 6 and not frag and len(b) >= t + 18:  # the pseudo-header holds the addresses
            b[t + 16 : t + 18] = struct.pack("!H", _adjust(struct.unpack_from("!H", b, t + 16)[0], old, new))
        yield rec.timestamp_ns, eth, bytes(b)


def send_raw(
    path: str | os.PathLike[str],
    iface: str,
    mapping: Mapping[Address, Address],
    allowed: Collection[Address],
    *,
    timing: Timing = "fast",
    rate: float | None = None,
    dst_mac: bytes = b"\xff" * 6,
) -> RawReport:
    """Send the capture's packets onto ``iface`` (needs CAP_NET_RAW)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    try:
        s.bind((iface, 0))
        own = s.getsockname()[4][:6]
        sent = skipped = octets = 0
        start = time.monotonic()
        first = None
        gap = 1.0 / rate if rate else 0.0
        nxt = start
        send = s.send
        for ts, eth, ip in raw_frames(path, mapping, allowed):
            if not ip:
                skipped += 1
                continue
            if timing != "fast":
                first = ts if first is None else first
                scale = 1.0 if timing == "as-captured" else 1.0 / float(timing)
                due = start + (ts - first) / 1e9 * scale
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if gap:
                delay = nxt - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                nxt = max(nxt, time.monotonic() - 0.002) + gap
            if eth is None or len(eth) < 14:
                eth = dst_mac + own + (b"\x08\x00" if ip[0] >> 4 == 4 else b"\x86\xdd")
            send(eth + ip)
            sent += 1
            octets += len(ip)
        return RawReport(sent, skipped, octets, time.monotonic() - start)
    finally:
        s.close()
