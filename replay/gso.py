"""Bursts handed to the kernel to cut (GSO): one frame on a packet socket with a virtio_net_hdr.

A :class:`~replay.wire.Burst` is one TCP segment carrying many segments' worth of payload.  Sent
through an ``AF_PACKET`` socket with ``PACKET_VNET_HDR``, the header asks the kernel for what a
guest's virtio NIC asks of its host: cut the frame into segments of ``gso_size`` payload octets
(TCP GSO) and complete each one's checksum.  The kernel does this in one system call for up to
64 KiB, as it does for its own TCP (TSO); on veth the peer namespace takes the burst as one
packet, as after GRO.

The packet socket bypasses routing and the neighbour layer, so the frame needs its interface and
Ethernet header: :class:`Links` finds them once per pair of addresses (the route and the
neighbour table, read over rtnetlink: :mod:`replay.netlink`), after the subflow's handshake, which
went through the kernel's IP stack, has resolved the next hop.  Where that fails (no Ethernet, no
neighbour entry), the caller cuts the burst itself (:func:`~replay.wire.cut`): the same segments
on the wire.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from pathlib import Path

from mptcpspec.replay import netlink
from mptcpspec.replay.wire import Burst, header_lengths, partial_checksum

__all__ = ["GsoSender", "Links", "Link", "VNET_HDR", "GSO_TCPV4", "GSO_TCPV6", "find_link", "open_gso"]

PACKET_VNET_HDR = 15
SOL_PACKET = 263
ARPHRD_ETHER = 1
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
GSO_TCPV4, GSO_TCPV6 = 1, 4
RETRY = 0.2  # seconds before a pair of addresses without a link is looked up again
VNET_HDR = struct.Struct("=BBHHHH")  # struct virtio_net_hdr, host order (legacy virtio on a packet socket)

#: (interface, Ethernet header) of the route from one address to another
Link = tuple[str, bytes]


def find_link(src: bytes, dst: bytes, mark: int = 0) -> Link | None:
    """The interface and the Ethernet header of frames from ``src`` to ``dst`` (packed addresses),
    as the kernel would route them (with ``mark``); None when the route is not over Ethernet or the
    next hop's address is not known."""
    r = netlink.route(src, dst, mark)
    if r is None:
        return None
    try:
        dev = socket.if_indextoname(r.ifindex)
    except OSError:
        return None
    sys_dev = Path("/sys/class/net") / dev
    try:
        if int((sys_dev / "type").read_text()) != ARPHRD_ETHER:
            return None
        ours = bytes.fromhex((sys_dev / "address").read_text().strip().replace(":", ""))
    except (OSError, ValueError):
        return None
    if len(ours) != 6:
        return None
    # The raw socket's packets (IP_HDRINCL) go with the kernel's FLOWI_FLAG_KNOWN_NH: out of the
    # route's device, to the neighbour entry of the destination itself even behind a gateway; the
    # gateway's entry only where the destination has none.
    v4 = len(dst) == 4
    family = socket.AF_INET if v4 else socket.AF_INET6
    known = {n.address: n.lladdr for n in netlink.neighbours(r.ifindex, family) if n.usable}
    for hop in (dst, r.gateway):
        theirs = known.get(hop) if hop is not None else None
        if theirs is not None and len(theirs) == 6:
            return dev, theirs + ours + (b"\x08\x00" if v4 else b"\x86\xdd")
    return None


class Links:
    """:func:`find_link` for each pair of addresses, kept (a lookup is two netlink requests, a
    fraction of a millisecond); a pair without a link is looked up again after :data:`RETRY`
    seconds, one whose sends failed never again."""

    def __init__(self, mark: int = 0) -> None:
        self.mark = mark
        self.known: dict[bytes, Link | None] = {}
        self.retry_at: dict[bytes, float] = {}

    def get(self, src: bytes, dst: bytes) -> Link | None:
        key = src + dst
        if key in self.known:
            link = self.known[key]
            if link is not None or time.monotonic() < self.retry_at.get(key, 0.0):
                return link
        link = find_link(src, dst, self.mark)
        self.known[key] = link
        if link is None:
            self.retry_at[key] = time.monotonic() + RETRY
        return link

    def failed(self, src: bytes, dst: bytes) -> None:
        self.known[src + dst] = None
        self.retry_at[src + dst] = float("inf")


class GsoSender:
    """Sends a :class:`~replay.wire.Burst` as one frame the kernel cuts (see the module).
    ``OSError`` when the packet socket cannot be opened."""

    def __init__(self, mark: int = 0) -> None:
        self.links = Links(mark)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        except OSError:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def send(self, burst: Burst, src: bytes, dst: bytes) -> bool:
        """``burst`` (an IP packet from ``src`` to ``dst``) to the kernel to cut; False when it
        could not go so (no link, or the send failed): the caller cuts it."""
        link = self.links.get(src, dst)
        if link is None:
            return False
        dev, eth = link
        ip, th = header_lengths(burst)
        head = 14 + ip
        vnet = VNET_HDR.pack(
            VIRTIO_NET_HDR_F_NEEDS_CSUM,
            GSO_TCPV4 if burst[0] >> 4 == 4 else GSO_TCPV6,
            head + th,
            burst.mss - (th - 20),
            head,
            16,
        )
        try:
            self.sock.sendto(b"".join((vnet, eth, partial_checksum(burst))), (dev, 0))
        except OSError as e:
            if e.errno not in (errno.ENOBUFS, errno.EAGAIN):  # not a full queue: this link cannot
                self.links.failed(src, dst)
            return False
        return True


def open_gso(mark: int = 0) -> GsoSender | None:
    """A :class:`GsoSender`, or None when this host cannot give one (no packet sockets, no
    ``PACKET_VNET_HDR``)."""
    with contextlib.suppress(OSError):
        return GsoSender(mark)
    return None
