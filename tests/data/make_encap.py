"""Make the encapsulated captures of tests/data/encap/ from the IP packets of the kernel's captures.

    python3 tests/data/make_encap.py            # all of them
    python3 tests/data/make_encap.py gre vxlan  # some, by name
    python3 tests/data/make_encap.py --check    # compare the committed files with what it makes now
    python3 tests/data/make_encap.py --lab      # (root) the VXLAN captures of the kernel lab instead

Every IP packet of ``v4-two-subflows.pcap`` and ``v6-two-subflows.pcap`` (the MPTCP connection of
each, two subflows) is wrapped, whole and unchanged, in each encapsulation that can carry its
family, with its timestamp; the IPv4 connection comes first, then the IPv6 one.  Each inner flow
(the subflows of both connections, in the order they appear) has its own tunnel: VLAN ids, MPLS
labels, GRE key, PPPoE session, VNI, TEID, tunnel addresses.  Outer lengths and IPv4 header
checksums are exact; UDP over IPv4 has checksum 0 (allowed for VXLAN, Geneve and GTP-U), UDP over
IPv6 a computed one.  Outer addresses are in 192.0.2.0/24 and 2001:db8:ffff::/48; MAC addresses
are locally administered.  The output is the same octets on every run (pcap, microseconds, as the
sources).  tests/data/README.md describes each file.

``--lab`` makes the captures that come from the kernel instead (``LAB``; each remake differs in the
kernel's keys, ports and timings): an MPTCP transfer over two VXLAN tunnels between the lab's
namespaces (``lab.tunnels``), captured on the underlay.
"""

from __future__ import annotations

import argparse
import ipaddress
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from mptcpspec.capture.pcap import read_records  # noqa: E402
from mptcpspec.replay.wire import ip_checksum  # noqa: E402 - the Internet checksum (RFC 1071), over any octets

OUT = HERE / "encap"
SOURCES = ("v4-two-subflows.pcap", "v6-two-subflows.pcap")

# Link types of the output files.
ETHERNET, PPP, PPP_HDLC, IPV4, IPV6 = 1, 9, 50, 228, 229
LINUX_SLL = 113
# EtherTypes, PPP protocols, IP protocol numbers.
ET_IPV4, ET_IPV6, ET_8021Q, ET_8021AD, ET_MPLS, ET_PPPOE, ET_TEB = (
    0x0800,
    0x86DD,
    0x8100,
    0x88A8,
    0x8847,
    0x8864,
    0x6558,
)
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
P_IPIP, P_IPV6, P_GRE, P_UDP = 4, 41, 47, 17
VXLAN_PORT, GENEVE_PORT, GTPU_PORT = 4789, 6081, 2152


@dataclass(frozen=True)
class Inner:
    """One IP packet of a source capture: its time, octets, family, inner flow number and direction."""

    timestamp_ns: int
    ip: bytes
    family: int  # 4 or 6
    flow: int  # 0, 1: the IPv4 connection's subflows; 2, 3: the IPv6 one's (order of first appearance)
    from_client: bool  # sent by the side that sent the flow's first packet (the SYN)
    index: int  # position in the output file, from 0


def inner_packets() -> list[Inner]:
    """The IP packets of both sources, in order, with their flow numbers."""
    out: list[Inner] = []
    flows: dict[tuple, tuple[int, tuple]] = {}
    for name in SOURCES:
        for rec in read_records(HERE / name):
            if rec.linktype != LINUX_SLL or rec.truncated or rec.orig_len != len(rec.data):
                raise SystemExit(f"{name}: expected whole Linux cooked (v1) frames")
            ethertype = struct.unpack_from("!H", rec.data, 14)[0]
            ip = rec.data[16:]
            family = {ET_IPV4: 4, ET_IPV6: 6}[ethertype]
            if family == 4:
                src, dst, proto, ihl = ip[12:16], ip[16:20], ip[9], (ip[0] & 15) * 4
            else:
                src, dst, proto, ihl = ip[8:24], ip[24:40], ip[6], 40
            if proto != 6:
                raise SystemExit(f"{name}: a packet that is not TCP")
            sport, dport = struct.unpack_from("!HH", ip, ihl)
            a, b = (src, sport), (dst, dport)
            key = (min(a, b), max(a, b))
            if key not in flows:
                flows[key] = (len(flows), a)
            flow, first = flows[key]
            out.append(Inner(rec.timestamp_ns, ip, family, flow, a == first, len(out)))
    if len(flows) != 4:
        raise SystemExit(f"expected four inner flows (two subflows per capture), found {len(flows)}")
    return out


# ------------------------------------------------------------------------------------ headers


def mac(side: int, flow: int) -> bytes:
    """A locally administered unicast MAC: ``side`` 1 the client's end, 2 the server's."""
    return bytes((0x02, 0, 0, 0, flow, side))


def ethernet(p: Inner, ethertype: int, payload: bytes) -> bytes:
    a, b = mac(1, p.flow), mac(2, p.flow)
    src, dst = (a, b) if p.from_client else (b, a)
    return dst + src + struct.pack("!H", ethertype) + payload


def outer_v4(p: Inner) -> tuple[bytes, bytes]:
    """(source, destination) tunnel addresses of the packet's flow: 192.0.2.(10+flow) ↔ 192.0.2.(100+flow)."""
    a, b = bytes((192, 0, 2, 10 + p.flow)), bytes((192, 0, 2, 100 + p.flow))
    return (a, b) if p.from_client else (b, a)


def outer_v6(p: Inner) -> tuple[bytes, bytes]:
    """(source, destination) tunnel addresses: 2001:db8:ffff:FLOW::1 ↔ 2001:db8:ffff:FLOW::2."""
    a = ipaddress.IPv6Address(f"2001:db8:ffff:{p.flow}::1").packed
    b = ipaddress.IPv6Address(f"2001:db8:ffff:{p.flow}::2").packed
    return (a, b) if p.from_client else (b, a)


def ipv4(p: Inner, proto: int, payload: bytes) -> bytes:
    """An outer IPv4 header (DF, TTL 64, identification = the frame's index) and ``payload``."""
    src, dst = outer_v4(p)
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), p.index & 0xFFFF, 0x4000, 64, proto, 0, src, dst)
    return head[:10] + struct.pack("!H", ip_checksum(head)) + head[12:] + payload


def ipv6(p: Inner, next_header: int, payload: bytes) -> bytes:
    """An outer IPv6 header (hop limit 64, flow label = the flow number + 1) and ``payload``."""
    src, dst = outer_v6(p)
    return struct.pack("!IHBB16s16s", 0x60000000 | (p.flow + 1), len(payload), next_header, 64, src, dst) + payload


def udp(p: Inner, family: int, sport: int, dport: int, payload: bytes) -> bytes:
    """UDP in outer IPv4 (checksum 0) or IPv6 (checksum computed), wrapped in that IP header."""
    length = 8 + len(payload)
    if family == 4:
        return ipv4(p, P_UDP, struct.pack("!HHHH", sport, dport, length, 0) + payload)
    src, dst = outer_v6(p)
    pseudo = src + dst + struct.pack("!IxxxB", length, P_UDP)
    csum = ip_checksum(pseudo + struct.pack("!HHHH", sport, dport, length, 0) + payload) or 0xFFFF
    return ipv6(p, P_UDP, struct.pack("!HHHH", sport, dport, length, csum) + payload)


def ethertype_of(p: Inner) -> int:
    return ET_IPV4 if p.family == 4 else ET_IPV6


def ports(p: Inner, port: int) -> tuple[int, int]:
    """(source, destination) UDP ports of VXLAN and Geneve: a source port taken from the inner flow
    (49152 + flow) both ways, to the tunnel's port."""
    return (49152 + p.flow, port)


# ------------------------------------------------------------------------------------ encapsulations


def ppp(p: Inner) -> bytes:
    """Link type PPP (9): the PPP protocol field, no address and control octets."""
    return struct.pack("!H", PPP_IPV4 if p.family == 4 else PPP_IPV6) + p.ip


def ppp_hdlc(p: Inner) -> bytes:
    """Link type PPP_HDLC (50): address 0xff, control 0x03, protocol; unstuffed, no FCS."""
    return b"\xff\x03" + ppp(p)


def pppoe(p: Inner) -> bytes:
    """PPPoE session stage: version 1, type 1, code 0, session 0x1001 + flow, its length, PPP."""
    body = ppp(p)
    return ethernet(p, ET_PPPOE, struct.pack("!BBHH", 0x11, 0x00, 0x1001 + p.flow, len(body)) + body)


def raw(p: Inner) -> bytes:
    return p.ip


def qinq(p: Inner) -> bytes:
    """802.1ad service tag (VLAN 100 + flow, PCP 0) over 802.1Q customer tag (VLAN 200 + flow, PCP 0)."""
    tags = struct.pack("!HH", 100 + p.flow, ET_8021Q) + struct.pack("!HH", 200 + p.flow, ethertype_of(p))
    return ethernet(p, ET_8021AD, tags + p.ip)


def mpls(p: Inner) -> bytes:
    """An MPLS label stack over Ethernet: two labels (1000 + flow, then 2000 + flow) for IPv4, three
    (1000 + flow, 2000 + flow, 3000 + flow) for IPv6; TC 0, TTL 64, S set on the last."""
    labels = [1000 + p.flow, 2000 + p.flow] + ([3000 + p.flow] if p.family == 6 else [])
    stack = b"".join(struct.pack("!I", lbl << 12 | (k == len(labels) - 1) << 8 | 64) for k, lbl in enumerate(labels))
    return ethernet(p, ET_MPLS, stack + p.ip)


class Gre:
    """GRE (RFC 2784/2890) in outer IPv4 over Ethernet; with ``keyed``, key (0x10000 + flow) and a
    sequence number counted from 0 per flow and direction."""

    def __init__(self, keyed: bool, outer: int):
        self.keyed, self.outer = keyed, outer
        self.seq: dict[tuple[int, bool], int] = {}

    def __call__(self, p: Inner) -> bytes:
        proto = ethertype_of(p)
        if self.keyed:
            n = self.seq.get((p.flow, p.from_client), 0)
            self.seq[(p.flow, p.from_client)] = n + 1
            head = struct.pack("!HHII", 0x3000, proto, 0x10000 + p.flow, n)
        else:
            head = struct.pack("!HH", 0, proto)
        if self.outer == 4:
            return ethernet(p, ET_IPV4, ipv4(p, P_GRE, head + p.ip))
        return ethernet(p, ET_IPV6, ipv6(p, P_GRE, head + p.ip))


def ip_in_ip(outer: int) -> Callable[[Inner], bytes]:
    """The inner packet straight in an outer IP header (protocol 4 or 41), over Ethernet."""

    def wrap(p: Inner) -> bytes:
        proto = P_IPIP if p.family == 4 else P_IPV6
        if outer == 4:
            return ethernet(p, ET_IPV4, ipv4(p, proto, p.ip))
        return ethernet(p, ET_IPV6, ipv6(p, proto, p.ip))

    return wrap


def inner_ethernet(p: Inner) -> bytes:
    """The inner Ethernet frame of VXLAN and Geneve: MACs 02:00:00:00:FLOW:0a / :0b."""
    a, b = bytes((0x02, 0, 0, 0, p.flow, 0x0A)), bytes((0x02, 0, 0, 0, p.flow, 0x0B))
    src, dst = (a, b) if p.from_client else (b, a)
    return dst + src + struct.pack("!H", ethertype_of(p)) + p.ip


def vxlan(p: Inner) -> bytes:
    """VXLAN (RFC 7348) in UDP 4789 in outer IPv4: flags I, VNI 5000 + flow, inner Ethernet."""
    head = struct.pack("!II", 0x08000000, (5000 + p.flow) << 8)
    sport, dport = ports(p, VXLAN_PORT)
    return ethernet(p, ET_IPV4, udp(p, 4, sport, dport, head + inner_ethernet(p)))


def geneve(p: Inner) -> bytes:
    """Geneve (RFC 8926) in UDP 6081 in outer IPv6: VNI 6000 + flow, protocol 0x6558 (inner Ethernet),
    one option of the experimental class 0xffff, type 0x01, 4 octets holding the flow number."""
    option = struct.pack("!HBBI", 0xFFFF, 0x01, 1, p.flow)
    head = struct.pack("!BBHI", len(option) // 4, 0, ET_TEB, (6000 + p.flow) << 8) + option
    sport, dport = ports(p, GENEVE_PORT)
    return ethernet(p, ET_IPV6, udp(p, 6, sport, dport, head + inner_ethernet(p)))


def gtpu(extension: bool) -> Callable[[Inner], bytes]:
    """GTP-U (3GPP TS 29.281) T-PDU in UDP 2152 both ways; TEID 0x7000 + flow (client to server) or
    0x8000 + flow (back).  Without an extension header in outer IPv4; with one, in outer IPv6: E set,
    sequence number and N-PDU number 0, a PDU Session Container (type 0x85: UL PDU session
    information client to server, DL back; QFI 9)."""

    def wrap(p: Inner) -> bytes:
        teid = (0x7000 if p.from_client else 0x8000) + p.flow
        if extension:
            container = struct.pack("!BBBB", 1, 0x10 if p.from_client else 0x00, 9, 0)
            body = struct.pack("!HBB", 0, 0, 0x85) + container + p.ip
            head = struct.pack("!BBHI", 0x34, 0xFF, len(body), teid)
            return ethernet(p, ET_IPV6, udp(p, 6, GTPU_PORT, GTPU_PORT, head + body))
        head = struct.pack("!BBHI", 0x30, 0xFF, len(p.ip), teid)
        return ethernet(p, ET_IPV4, udp(p, 4, GTPU_PORT, GTPU_PORT, head + p.ip))

    return wrap


@dataclass(frozen=True)
class Encap:
    name: str
    linktype: int
    families: tuple[int, ...]
    make: Callable[[], Callable[[Inner], bytes]]  # a fresh wrapper per file (GRE counts sequence numbers)


ENCAPS = (
    Encap("ppp", PPP, (4, 6), lambda: ppp),
    Encap("ppp-hdlc", PPP_HDLC, (4, 6), lambda: ppp_hdlc),
    Encap("pppoe", ETHERNET, (4, 6), lambda: pppoe),
    Encap("raw-ipv4", IPV4, (4,), lambda: raw),
    Encap("raw-ipv6", IPV6, (6,), lambda: raw),
    Encap("qinq", ETHERNET, (4, 6), lambda: qinq),
    Encap("mpls", ETHERNET, (4, 6), lambda: mpls),
    Encap("gre-key-seq", ETHERNET, (4, 6), lambda: Gre(True, 4)),
    Encap("gre", ETHERNET, (4, 6), lambda: Gre(False, 6)),
    Encap("ipip", ETHERNET, (4,), lambda: ip_in_ip(4)),
    Encap("6in4", ETHERNET, (6,), lambda: ip_in_ip(4)),
    Encap("4in6", ETHERNET, (4,), lambda: ip_in_ip(6)),
    Encap("6in6", ETHERNET, (6,), lambda: ip_in_ip(6)),
    Encap("vxlan", ETHERNET, (4, 6), lambda: vxlan),
    Encap("geneve", ETHERNET, (4, 6), lambda: geneve),
    Encap("gtpu", ETHERNET, (4, 6), lambda: gtpu(False)),
    Encap("gtpu-ext", ETHERNET, (4, 6), lambda: gtpu(True)),
)
BY_NAME = {e.name: e for e in ENCAPS}
#: The kernel's VXLAN captures: name -> (inner family, underlay family).
LAB = {"vxlan-lab-v4": (4, 4), "vxlan-lab-v6": (6, 6)}


def frames(encap: Encap, packets: list[Inner]) -> Iterator[tuple[int, bytes]]:
    """(timestamp, frame) of each packet of the families ``encap`` carries; indexes renumbered."""
    wrap = encap.make()
    kept = [p for p in packets if p.family in encap.families]
    for k, p in enumerate(kept):
        q = Inner(p.timestamp_ns, p.ip, p.family, p.flow, p.from_client, k)
        yield p.timestamp_ns, wrap(q)


def pcap_bytes(linktype: int, records: Iterator[tuple[int, bytes]]) -> bytes:
    """A little-endian microsecond pcap file, snapshot length 262144."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for ts_ns, data in records:
        sec, usec = divmod(ts_ns // 1000, 1_000_000)
        out.append(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    return b"".join(out)


def build(name: str, packets: list[Inner] | None = None) -> bytes:
    """The octets of ``encap/NAME.pcap`` as this script makes them."""
    encap = BY_NAME[name]
    return pcap_bytes(encap.linktype, frames(encap, packets if packets is not None else inner_packets()))


def make_lab() -> int:
    """Make the ``LAB`` captures in the kernel lab."""
    from lab.tunnels import vxlan_capture

    OUT.mkdir(exist_ok=True)
    for name, (family, underlay) in LAB.items():
        path = OUT / f"{name}.pcap"
        _, _, cap = vxlan_capture(path, family=family, underlay=underlay)
        print(f"{path.name}: {cap.stats.get('captured')} packets, {path.stat().st_size} octets")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="some of: " + " ".join(BY_NAME))
    parser.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    parser.add_argument("--lab", action="store_true", help="make the kernel's VXLAN captures (root)")
    args = parser.parse_args(argv)
    if args.lab:
        return make_lab()
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        parser.error(f"no such capture: {' '.join(unknown)} (known: {' '.join(BY_NAME)})")
    packets = inner_packets()
    differ = []
    for name in args.names or list(BY_NAME):
        blob = build(name, packets)
        path = OUT / f"{name}.pcap"
        if args.check:
            if not path.exists() or path.read_bytes() != blob:
                differ.append(path.name)
            continue
        OUT.mkdir(exist_ok=True)
        path.write_bytes(blob)
        print(f"{path.name}: {len(blob)} octets")
    if differ:
        print("not what make_encap.py makes: " + ", ".join(differ), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
