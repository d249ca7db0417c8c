"""Bursts handed to the kernel to cut (GSO): one frame on a packet socket with a virtio_net_hdr.

A :class:`~replay.wire.Burst` is one TCP segment carrying many segments' worth of payload.  Sent
through an ``AF_PACKET`` socket with ``PACKET_VNET_HDR``, the header asks the kernel for what a
guest's virtio NIC asks of its host: cut the frame into segments of ``gso_size`` payload octets
(TCP GSO) and complete each one's checksum.  The kernel does this in one system call for up to
64 KiB, as it does for its own TCP (TSO); on veth the peer namespace takes the burst as one
packet, as after GRO.

The packet socket bypasses routing and the neighbour layer, so the frame needs its interface and
Ethernet header: :class:`Links` finds them once per pair of addresses (``ip route get``, the
neighbour table), after the subflow's handshake, which went through the kernel's IP stack, has
resolved the next hop.  Where that fails (no Ethernet, no neighbour entry, ``ip`` missing), the
caller cuts the burst itself (:func:`~replay.wire.cut`): the same segments on the wire.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import queue
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from mptcpspec.replay.wire import Burst, header_lengths, partial_checksum

__all__ = ["GsoSender", "Links", "Link", "VNET_HDR", "GSO_TCPV4", "GSO_TCPV6", "find_link", "open_gso"]

PACKET_VNET_HDR = 15
SOL_PACKET = 263
ARPHRD_ETHER = 1
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
GSO_TCPV4, GSO_TCPV6 = 1, 4
RETRY = 1.0  # seconds before a pair of addresses without a link is looked up again
TRIES, TRY_GAP = 5, 0.01  # lookups of a pair in a row, and the seconds between them, before RETRY
VNET_HDR = struct.Struct("=BBHHHH")  # struct virtio_net_hdr, host order (legacy virtio on a packet socket)
_USABLE = {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"}

#: (interface, Ethernet header) of the route from one address to another
Link = tuple[str, bytes]


def _ip_json(*args: str) -> list[dict[str, object]]:
    try:
        r = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if r.returncode != 0:
        return []
    try:
        got = json.loads(r.stdout or "[]")
    except ValueError:
        return []
    return [x for x in got if isinstance(x, dict)] if isinstance(got, list) else []


def find_link(src: bytes, dst: bytes, mark: int = 0) -> Link | None:
    """The interface and the Ethernet header of frames from ``src`` to ``dst`` (packed addresses),
    as the kernel would route them (with ``mark``); None when the route is not over Ethernet or the
    next hop's address is not known."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    route = _ip_json("route", "get", str(d), "from", str(s), "mark", str(mark))
    if not route:
        return None
    # The raw socket's packets (IP_HDRINCL) go with the kernel's FLOWI_FLAG_KNOWN_NH: out of the
    # route's device, to the neighbour entry of the destination itself even behind a gateway; the
    # gateway's entry only where the destination has none.
    dev, hops = route[0].get("dev"), [str(d), route[0].get("gateway")]
    if not isinstance(dev, str):
        return None
    sys_dev = Path("/sys/class/net") / dev
    try:
        if int((sys_dev / "type").read_text()) != ARPHRD_ETHER:
            return None
        ours = bytes.fromhex((sys_dev / "address").read_text().strip().replace(":", ""))
    except (OSError, ValueError):
        return None
    for hop in hops:
        if not isinstance(hop, str):
            continue
        for n in _ip_json("neigh", "show", "to", hop, "dev", dev):
            state = n.get("state")
            lladdr = n.get("lladdr")
            if isinstance(lladdr, str) and isinstance(state, list) and _USABLE.intersection(map(str, state)):
                theirs = bytes.fromhex(lladdr.replace(":", ""))
                if len(theirs) == 6 and len(ours) == 6:
                    return dev, theirs + ours + (b"\x08\x00" if s.version == 4 else b"\x86\xdd")
    return None


class Links:
    """:func:`find_link` for each pair of addresses, looked up by a worker thread (``ip`` takes
    milliseconds, which a replay at the captured pace has not: until the link is known, the caller
    cuts the bursts itself), and kept; a pair without a link is looked up again after
    :data:`RETRY` seconds, one whose sends failed never again."""

    def __init__(self, mark: int = 0) -> None:
        self.mark = mark
        self.known: dict[bytes, Link | None] = {}
        self.retry_at: dict[bytes, float] = {}
        self.pending: set[bytes] = set()
        self._todo: queue.SimpleQueue[tuple[bytes, bytes] | None] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._worker: threading.Thread | None = None

    def get(self, src: bytes, dst: bytes) -> Link | None:
        """The link from ``src`` to ``dst`` if known; else None, and a lookup is under way."""
        key = src + dst
        link = self.known.get(key)
        if link is not None:
            return link
        if key not in self.pending and (key not in self.known or time.monotonic() >= self.retry_at.get(key, 0.0)):
            self.look_up(src, dst)
        return None

    def look_up(self, src: bytes, dst: bytes) -> None:
        """Start looking up the link from ``src`` to ``dst`` (at once: e.g. when a subflow opens)."""
        key = src + dst
        if key in self.pending or self.known.get(key) is not None or self.retry_at.get(key) == float("inf"):
            return
        with self._idle:
            self.pending.add(key)
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="mptcpspec-links", daemon=True)
            self._worker.start()
        self._todo.put((src, dst))

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lookups under way; whether none is left."""
        with self._idle:
            return self._idle.wait_for(lambda: not self.pending, timeout)

    def close(self) -> None:
        """Stop the worker (it finishes the lookup it is in)."""
        if self._worker is not None:
            self._todo.put(None)
            self._worker = None

    def _work(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                return
            src, dst = item
            key = src + dst
            link = None
            for _ in range(TRIES):  # the next hop's address may still be resolving (ARP, ND)
                link = find_link(src, dst, self.mark)
                if link is not None:
                    break
                time.sleep(TRY_GAP)
            with self._idle:
                if self.retry_at.get(key) != float("inf"):
                    self.known[key] = link
                    if link is None:
                        self.retry_at[key] = time.monotonic() + RETRY
                self.pending.discard(key)
                self._idle.notify_all()

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
        self.links.close()
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
