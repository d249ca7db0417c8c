"""The route and neighbour tables, read over rtnetlink (``NETLINK_ROUTE``) in this process.

What ``ip route get`` and ``ip neigh show`` print, without starting ``ip``: forking a replay that
holds a large plan takes milliseconds, and a replay at the captured pace has none to spare.  One
request each (rtnetlink(7)): ``RTM_GETROUTE`` for a route as the kernel would pick it (source,
destination, mark), ``RTM_GETNEIGH`` (a dump, filtered here) for the neighbour entries of an
interface.  Errors (no route, no netlink) come back as None or an empty list.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from dataclasses import dataclass

__all__ = ["Neighbour", "Route", "neighbours", "pack_attr", "read_attrs", "route"]

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
RTA_DST, RTA_SRC, RTA_OIF, RTA_GATEWAY, RTA_MARK = 1, 2, 4, 5, 16
NDA_DST, NDA_LLADDR = 1, 2
NLMSG = struct.Struct("=IHHII")  # struct nlmsghdr
RTMSG = struct.Struct("=BBBBBBBBI")  # struct rtmsg
NDMSG = struct.Struct("=BBHiHBB")  # struct ndmsg
RTATTR = struct.Struct("=HH")  # struct rtattr (and struct nlattr)
#: neighbour states (NUD_*) whose link-layer address may be used: REACHABLE, STALE, DELAY, PROBE,
#: NOARP, PERMANENT (not INCOMPLETE, nor FAILED)
USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80


@dataclass(frozen=True, slots=True)
class Route:
    """The kernel's route from one address to another: its output interface and gateway."""

    ifindex: int
    gateway: bytes | None  #: packed, None on a directly connected network


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A neighbour entry: its IP address (packed), link-layer address and NUD_* state bits."""

    address: bytes
    lladdr: bytes
    state: int

    @property
    def usable(self) -> bool:
        return bool(self.state & USABLE) and bool(self.lladdr)


def read_attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    """The attributes (struct rtattr) in ``data[start:end]`` by type, the first of each; a
    malformed one ends the reading."""
    out: dict[int, bytes] = {}
    i = start
    while i + 4 <= end:
        length, kind = RTATTR.unpack_from(data, i)
        if length < 4 or i + length > end:
            break
        out.setdefault(kind & 0x3FFF, data[i + 4 : i + length])
        i += (length + 3) & ~3
    return out


def pack_attr(kind: int, value: bytes) -> bytes:
    """One attribute, padded to 4 octets."""
    raw = RTATTR.pack(4 + len(value), kind) + value
    return raw + bytes(-len(raw) % 4)


def _ask(msg_type: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
    """Send one request; the (type, payload) of each answer message, up to NLMSG_DONE (a request
    without NLM_F_DUMP: up to the first answer); [] on a netlink error."""
    out: list[tuple[int, bytes]] = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as s:
        s.settimeout(1.0)
        s.bind((0, 0))
        seq = 1
        s.send(NLMSG.pack(NLMSG.size + len(body), msg_type, NLM_F_REQUEST | flags, seq, 0) + body)
        while True:
            data = s.recv(1 << 16)
            i = 0
            while i + NLMSG.size <= len(data):
                length, kind, _, got_seq, _ = NLMSG.unpack_from(data, i)
                if length < NLMSG.size or i + length > len(data):
                    return out
                if got_seq == seq:
                    if kind == NLMSG_DONE:
                        return out
                    if kind == NLMSG_ERROR:
                        return out if flags & NLM_F_DUMP else []
                    out.append((kind, data[i + NLMSG.size : i + length]))
                    if not flags & NLM_F_DUMP:
                        return out
                i += (length + 3) & ~3
    return out


def route(src: bytes, dst: bytes, mark: int = 0) -> Route | None:
    """The route the kernel picks from ``src`` to ``dst`` (packed addresses of one family) with
    ``mark`` (``ip route get DST from SRC mark MARK``), or None."""
    family = socket.AF_INET if len(dst) == 4 else socket.AF_INET6
    bits = 8 * len(dst)
    body = RTMSG.pack(family, bits, bits, 0, 0, 0, 0, 0, 0)
    body += pack_attr(RTA_DST, dst) + pack_attr(RTA_SRC, src) + pack_attr(RTA_MARK, struct.pack("=I", mark))
    for kind, payload in _ask(RTM_GETROUTE, 0, body):
        if kind != RTM_NEWROUTE or len(payload) < RTMSG.size:
            continue
        a = read_attrs(payload, RTMSG.size, len(payload))
        oif = a.get(RTA_OIF)
        if oif is None or len(oif) != 4:
            return None
        gateway = a.get(RTA_GATEWAY)
        return Route(struct.unpack("=I", oif)[0], gateway if gateway and len(gateway) == len(dst) else None)
    return None


def neighbours(ifindex: int, family: int) -> list[Neighbour]:
    """The neighbour entries of interface ``ifindex`` for ``family`` (``ip neigh show dev``)."""
    out = []
    for kind, payload in _ask(RTM_GETNEIGH, NLM_F_DUMP, NDMSG.pack(family, 0, 0, ifindex, 0, 0, 0)):
        if kind != RTM_NEWNEIGH or len(payload) < NDMSG.size:
            continue
        fam, _, _, index, state, _, _ = NDMSG.unpack_from(payload)
        if fam != family or index != ifindex:
            continue
        a = read_attrs(payload, NDMSG.size, len(payload))
        dst = a.get(NDA_DST)
        if dst is not None:
            out.append(Neighbour(dst, a.get(NDA_LLADDR, b""), state))
    return out
