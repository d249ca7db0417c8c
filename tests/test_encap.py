"""Link types and encapsulations down to the inner TCP segment, against tshark 4.0 (capture.encap).

Every IP packet of the kernel's two-subflow captures is wrapped, in capture order, in one of many
variants of each encapsulation (the variant turning with the packet): PPP with and without the
HDLC address and control octets and with protocol-field compression, Cisco HDLC, PPPoE, VLAN
stacks, MPLS label stacks, GRE with every optional field and version 1, IP in IP both ways, VXLAN,
Geneve with options and each protocol type, GTP-U with extension headers.  Between them come
frames that must not reach the inner TCP the way tshark does not (outer fragments, an Ethernet
pseudowire, a GTP-U message that is no T-PDU) and frames without TCP (PPPoE discovery, LCP, DNS).
Every field of the differential set (``NAMES``: every Wireshark field we have, the encapsulations'
among them) must print what tshark prints, frame by frame, cell by cell, through the getters and
the compiled ``-T fields`` row alike.  Then: nothing but DecodeError from any cut or mutated frame;
a GRE loop ends; plain frames have no layers; display filters read the new fields; the replay plan
of a tunnelled capture is that of its inner packets.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.capture.encap import MAX_LAYERS, Gre, Ip, Udp, Vlan, Vxlan, frame_layers, walk
from mptcpspec.capture.linktypes import LinkType
from mptcpspec.capture.packets import LINKTYPES, Packet, decode_frame
from mptcpspec.capture.pcap import read_records
from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.filters import compile_filter
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.errors import DecodeError
from mptcpspec.replay.wire import ip_checksum
from tests.conftest import CAPTURES, DATA, need_tshark
from tests.test_tshark_dissect import NAMES, compare

SOURCES = ("v4-two-subflows.pcap", "v6-two-subflows.pcap")
ENCAP_FIELDS = [n for n in NAMES if n.split(".")[0] in {"vlan", "ieee8021ad", "mpls", "ppp", "pppoe", "gre", "udp"}]
ENCAP_FIELDS += [n for n in NAMES if n.split(".")[0] in {"vxlan", "geneve", "gtp"} or n == "ip.proto"]


def inner_packets() -> list[tuple[int, bytes]]:
    """(timestamp, IP packet) of the sources, IPv4 connection first (Linux cooked v1 frames)."""
    out = []
    for name in SOURCES:
        for rec in read_records(DATA / name):
            assert rec.linktype == LinkType.LINUX_SLL
            out.append((rec.timestamp_ns, rec.data[16:]))
    return out


# ------------------------------------------------------------------------------------ builders


def h16(v: int) -> bytes:
    return struct.pack("!H", v)


def h32(v: int) -> bytes:
    return struct.pack("!I", v)


def family(ip: bytes) -> int:
    return ip[0] >> 4


def ethertype(ip: bytes) -> int:
    return 0x0800 if family(ip) == 4 else 0x86DD


def eth(et: int, payload: bytes, mac: int = 1) -> bytes:
    return bytes((2, 0, 0, 0, mac, 2)) + bytes((2, 0, 0, 0, mac, 1)) + h16(et) + payload


def ip4(proto: int, payload: bytes, frag: int = 0x4000, src: int = 1, dst: int = 2) -> bytes:
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        7,
        frag,
        64,
        proto,
        0,
        b"\xc0\0\2" + bytes((src,)),
        b"\xc0\0\2" + bytes((dst,)),
    )
    return head[:10] + h16(ip_checksum(head)) + head[12:] + payload


def ip6(nh: int, payload: bytes, ext: bytes = b"") -> bytes:
    src = bytes.fromhex("20010db8ffff00000000000000000001")
    dst = bytes.fromhex("20010db8ffff00000000000000000002")
    return struct.pack("!IHBB16s16s", 0x60000000, len(ext) + len(payload), nh, 64, src, dst) + ext + payload


def in_ip(ip: bytes, outer: int = 4) -> bytes:
    proto = 4 if family(ip) == 4 else 41
    return eth(0x0800, ip4(proto, ip)) if outer == 4 else eth(0x86DD, ip6(proto, ip))


def udp4(sport: int, dport: int, payload: bytes) -> bytes:
    return ip4(17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def udp6(sport: int, dport: int, payload: bytes) -> bytes:
    src = bytes.fromhex("20010db8ffff00000000000000000001")
    dst = bytes.fromhex("20010db8ffff00000000000000000002")
    length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!IxxxB", length, 17)
    c = ip_checksum(pseudo + struct.pack("!HHHH", sport, dport, length, 0) + payload) or 0xFFFF
    return ip6(17, struct.pack("!HHHH", sport, dport, length, c) + payload)


def gre(flags: int, proto: int, payload: bytes, *extra: bytes) -> bytes:
    return h16(flags) + h16(proto) + b"".join(extra) + payload


def gtp(flags: int, mtype: int, teid: int, body: bytes) -> bytes:
    return struct.pack("!BBHI", flags, mtype, len(body), teid) + body


def geneve(vni: int, proto: int, options: bytes, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack("!BBHI", len(options) // 4, flags, proto, vni << 8) + options + payload


def mpls(labels: list[tuple[int, int]], payload: bytes) -> bytes:
    """Labels (label, traffic class), the last one bottom of stack, TTL 64 - k."""
    last = len(labels) - 1
    return (
        b"".join(h32(lb << 12 | tc << 9 | (k == last) << 8 | (64 - k)) for k, (lb, tc) in enumerate(labels)) + payload
    )


def ppp_proto(ip: bytes) -> int:
    return 0x21 if family(ip) == 4 else 0x57


def pppoe(session: int, body: bytes, code: int = 0) -> bytes:
    return struct.pack("!BBHH", 0x11, code, session, len(body)) + body


def inner_eth(ip: bytes) -> bytes:
    return eth(ethertype(ip), ip, mac=0x0A)


def vlan(tpid: int, tci: int, rest: bytes) -> bytes:
    """The TCI of the tag before and the next tag's TPID, then ``rest``."""
    return h16(tpid) + h16(tci) + rest


def ip_of(ip: bytes) -> bytes:
    """The EtherType of ``ip`` and ``ip``."""
    return h16(ethertype(ip)) + ip


Variant = Callable[[bytes], bytes]

# Ethernet variants (link type 1) carrying the IP packet to its TCP.
ETHERNET: list[tuple[str, Variant]] = [
    ("802.1Q", lambda ip: eth(0x8100, h16(0x2005) + h16(ethertype(ip)) + ip)),
    (
        "802.1Q in 0x9100 in 0x9100",
        lambda ip: eth(0x9100, h16(100) + vlan(0x9100, 200, vlan(0x8100, 0xE300, ip_of(ip)))),
    ),
    ("802.1ad over 802.1Q", lambda ip: eth(0x88A8, h16(0x3064) + h16(0x8100) + h16(0x00C8) + h16(ethertype(ip)) + ip)),
    ("802.1ad alone", lambda ip: eth(0x88A8, h16(0x0065) + h16(ethertype(ip)) + ip)),
    (
        "802.1ad S-VID and C-VID",
        lambda ip: eth(0x88A8, h16(0x0066) + h16(0x88A8) + h16(0x0067) + h16(ethertype(ip)) + ip),
    ),
    ("802.1Q over 802.1ad", lambda ip: eth(0x8100, h16(0x0068) + h16(0x88A8) + h16(0x0069) + h16(ethertype(ip)) + ip)),
    ("MPLS, two labels", lambda ip: eth(0x8847, mpls([(1000, 0), (2000, 5)], ip))),
    ("MPLS multicast, one label", lambda ip: eth(0x8848, mpls([(16, 7)], ip))),
    ("MPLS, explicit null of the other family", lambda ip: eth(0x8847, mpls([(2 if family(ip) == 4 else 0, 0)], ip))),
    ("MPLS, ten labels", lambda ip: eth(0x8847, mpls([(100 + k, k & 7) for k in range(10)], ip))),
    ("802.1Q and MPLS", lambda ip: eth(0x8100, h16(7) + h16(0x8847) + mpls([(77, 1)], ip))),
    ("PPPoE session", lambda ip: eth(0x8864, pppoe(0x1234, h16(ppp_proto(ip)) + ip))),
    ("PPPoE, compressed protocol", lambda ip: eth(0x8864, pppoe(0x0042, bytes((ppp_proto(ip),)) + ip))),
    ("802.1Q and PPPoE", lambda ip: eth(0x8100, h16(9) + h16(0x8864) + pppoe(0xBEEF, h16(ppp_proto(ip)) + ip))),
    ("GRE", lambda ip: eth(0x0800, ip4(47, gre(0x0000, ethertype(ip), ip)))),
    ("GRE key", lambda ip: eth(0x0800, ip4(47, gre(0x2000, ethertype(ip), ip, h32(0x10203))))),
    ("GRE sequence number", lambda ip: eth(0x0800, ip4(47, gre(0x1000, ethertype(ip), ip, h32(7))))),
    (
        "GRE checksum, key, sequence",
        lambda ip: eth(0x0800, ip4(47, gre(0xB000, ethertype(ip), ip, h16(0), h16(0), h32(42), h32(9)))),
    ),
    (
        "GRE routing, one SRE",
        lambda ip: eth(
            0x0800, ip4(47, gre(0x4000, ethertype(ip), ip, h16(0), h16(0), h16(2), b"\x00\x04", b"\x0a\0\0\1", h32(0)))
        ),
    ),
    ("GRE reserved flags, version 2", lambda ip: eth(0x0800, ip4(47, gre(0x007A, ethertype(ip), ip)))),
    ("GRE over IPv6, key", lambda ip: eth(0x86DD, ip6(47, gre(0x2000, ethertype(ip), ip, h32(0xFFFFFFFF))))),
    ("GRE, Ethernet (0x6558)", lambda ip: eth(0x0800, ip4(47, gre(0x2000, 0x6558, inner_eth(ip), h32(5))))),
    ("GRE, MPLS", lambda ip: eth(0x0800, ip4(47, gre(0x0000, 0x8847, mpls([(300, 0)], ip))))),
    (
        "GRE in GRE",
        lambda ip: eth(0x0800, ip4(47, gre(0x0000, 0x0800, ip4(47, gre(0x2000, ethertype(ip), ip, h32(2)))))),
    ),
    (
        "PPTP (GRE version 1), ack",
        lambda ip: eth(
            0x0800,
            ip4(
                47, gre(0x3081, 0x880B, b"\xff\x03" + h16(ppp_proto(ip)) + ip, h16(len(ip) + 4), h16(5), h32(3), h32(2))
            ),
        ),
    ),
    (
        "PPTP, no address and control",
        lambda ip: eth(0x0800, ip4(47, gre(0x2001, 0x880B, h16(ppp_proto(ip)) + ip, h16(len(ip) + 2), h16(6)))),
    ),
    (
        "PPP in GRE version 0",
        lambda ip: eth(0x0800, ip4(47, gre(0x2000, 0x880B, b"\xff\x03" + h16(ppp_proto(ip)) + ip, h32(0x880B)))),
    ),
    ("IP in IPv4", lambda ip: in_ip(ip, 4)),
    ("IP in IPv6", lambda ip: in_ip(ip, 6)),
    ("IP in IPv6 in IPv4", lambda ip: eth(0x0800, ip4(41, ip6(4 if family(ip) == 4 else 41, ip)))),
    (
        "IP in IPv6 with a destination options header",
        lambda ip: eth(0x86DD, ip6(60, ip, bytes((4 if family(ip) == 4 else 41, 0, 1, 4, 0, 0, 0, 0)))),
    ),
    ("VXLAN", lambda ip: eth(0x0800, udp4(49152, 4789, h32(0x08000000) + h32(42 << 8) + inner_eth(ip)))),
    (
        "VXLAN, source port 4789, flags 0",
        lambda ip: eth(0x0800, udp4(4789, 50000, h32(0) + h32(0xFFFFFF << 8) + inner_eth(ip))),
    ),
    ("VXLAN over IPv6", lambda ip: eth(0x86DD, udp6(40000, 4789, h32(0x08000000) + h32(7 << 8) + inner_eth(ip)))),
    (
        "VXLAN in 802.1Q",
        lambda ip: eth(
            0x8100,
            h16(3)
            + h16(0x0800)
            + udp4(49153, 4789, h32(0x08000000) + h32(43 << 8) + eth(0x8100, h16(4) + h16(ethertype(ip)) + ip)),
        ),
    ),
    ("Geneve, Ethernet", lambda ip: eth(0x0800, udp4(49152, 6081, geneve(0x1234, 0x6558, b"", inner_eth(ip))))),
    (
        "Geneve, IP, an option",
        lambda ip: eth(
            0x86DD,
            udp6(49152, 6081, geneve(0xABCDEF, ethertype(ip), h16(0xFFFF) + b"\x01\x01" + h32(9), ip, flags=0x80)),
        ),
    ),
    ("GTP-U", lambda ip: eth(0x0800, udp4(2152, 2152, gtp(0x30, 0xFF, 0x1234, ip)))),
    (
        "GTP-U, sequence number",
        lambda ip: eth(0x0800, udp4(40000, 2152, gtp(0x32, 0xFF, 0xDEADBEEF, h16(7) + b"\0\0" + ip))),
    ),
    (
        "GTP-U, two extension headers",
        lambda ip: eth(
            0x86DD,
            udp6(
                2152,
                2152,
                gtp(
                    0x34, 0xFF, 1, h16(0) + b"\0\x85" + bytes((2, 0x10, 9, 0, 0, 0, 0, 0xC0)) + bytes((1, 0, 0, 0)) + ip
                ),
            ),
        ),
    ),
    (
        "GTP-U, Ethernet",
        lambda ip: eth(
            0x0800,
            udp4(2152, 2152, gtp(0x30, 0xFF, 2, b"\xaa\xbb\xcc\0\0\2" + b"\2\0\0\0\0\1" + h16(ethertype(ip)) + ip)),
        ),
    ),
    ("GTP-U before VXLAN", lambda ip: eth(0x0800, udp4(2152, 4789, gtp(0x30, 0xFF, 3, ip)))),
    (
        "VXLAN after a GTP version 0 header",
        lambda ip: eth(0x0800, udp4(2152, 4789, h32(0x08000000) + h32(44 << 8) + inner_eth(ip))),
    ),
]

# Ethernet frames in which tshark does not reach the inner TCP (nor must we), and frames without TCP.
STOPS: list[tuple[str, Variant]] = [
    ("outer IPv4 first fragment", lambda ip: eth(0x0800, ip4(4 if family(ip) == 4 else 41, ip, frag=0x2000))),
    ("outer IPv4 later fragment", lambda ip: eth(0x0800, ip4(47, gre(0, ethertype(ip), ip), frag=0x0010))),
    (
        "outer IPv6 fragment header",
        lambda ip: eth(0x86DD, ip6(44, ip, bytes((4 if family(ip) == 4 else 41, 0, 0, 1, 0, 0, 0, 1)))),
    ),
    ("MPLS pseudowire", lambda ip: eth(0x8847, mpls([(16, 0)], b"\x12" + inner_eth(ip)[1:]))),
    ("GTP-U echo request", lambda ip: eth(0x0800, udp4(2152, 2152, gtp(0x30, 0x01, 0x1234, ip)))),
    ("GTP-U, PPP", lambda ip: eth(0x0800, udp4(2152, 2152, gtp(0x30, 0xFF, 1, b"\xff\x03" + h16(ppp_proto(ip)) + ip)))),
    ("GTP' on 2152", lambda ip: eth(0x0800, udp4(49152, 2152, gtp(0x20, 0xFF, 1, ip)))),
    ("PPPoE, LCP", lambda ip: eth(0x8864, pppoe(0x0042, b"\xc0\x21\x01\x01\x00\x04"))),
    ("PPPoE discovery", lambda ip: eth(0x8863, pppoe(0, b"\x01\x01\x00\x00", code=0x09))),
    ("PPPoE with HDLC octets", lambda ip: eth(0x8864, pppoe(0x0042, b"\xff\x03" + h16(ppp_proto(ip)) + ip))),
    ("DNS", lambda ip: eth(0x0800, udp4(53, 33000, b"\0" * 20))),
    ("UDP", lambda ip: eth(0x86DD, udp6(1000, 2000, b"x" * 9))),
    ("GRE, unknown protocol", lambda ip: eth(0x0800, ip4(47, gre(0x2000, 0x1234, ip, h32(1))))),
]

# The PPP link types: (link type, variants).
PPP_LINKS: list[tuple[int, list[tuple[str, Variant]]]] = [
    (
        9,
        [
            ("protocol", lambda ip: h16(ppp_proto(ip)) + ip),
            ("address and control", lambda ip: b"\xff\x03" + h16(ppp_proto(ip)) + ip),
            ("compressed protocol", lambda ip: bytes((ppp_proto(ip),)) + ip),
            ("address, control, compressed protocol", lambda ip: b"\xff\x03" + bytes((ppp_proto(ip),)) + ip),
        ],
    ),
    (
        50,
        [
            ("address and control", lambda ip: b"\xff\x03" + h16(ppp_proto(ip)) + ip),
            ("protocol", lambda ip: h16(ppp_proto(ip)) + ip),
            ("compressed protocol", lambda ip: bytes((ppp_proto(ip),)) + ip),
            ("Cisco HDLC", lambda ip: b"\x0f\x00" + h16(ethertype(ip)) + ip),
        ],
    ),
    (
        51,
        [
            ("PPPoE", lambda ip: pppoe(0x1001, h16(ppp_proto(ip)) + ip)),
            ("PPPoE, compressed protocol", lambda ip: pppoe(0x1002, bytes((ppp_proto(ip),)) + ip)),
        ],
    ),
]
PPP_STOPS: list[Variant] = [lambda ip: b"\xc0\x21\x01\x01\x00\x04"]  # LCP


def frames(variants: list[tuple[str, Variant]], stops: list[Variant] = ()) -> Iterator[tuple[int, bytes]]:
    """Each inner packet in the next variant, in turn; a stop frame after every seventh."""
    for k, (ts, ip) in enumerate(inner_packets()):
        yield ts, variants[k % len(variants)][1](ip)
        if stops and k % 7 == 3:
            yield ts + 1, stops[(k // 7) % len(stops)](ip)


def write_pcap(path: Path, linktype: int, records) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for ts, data in records:
        sec, usec = divmod(ts // 1000, 1_000_000)
        out.append(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    path.write_bytes(b"".join(out))
    return path


def all_frames() -> Iterator[tuple[int, bytes]]:
    """(link type, frame) of every variant and stop, around a few inner packets."""
    ips = [ip for _, ip in inner_packets()[:3]] + [ip for _, ip in inner_packets()[-119:-116]]
    for ip in ips:
        for _, v in ETHERNET + STOPS:
            yield 1, v(ip)
        for lt, variants in PPP_LINKS:
            for _, v in variants:
                yield lt, v(ip)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wireshark-config")


# ------------------------------------------------------------------------------------ against tshark


def test_the_fields_exist_in_tshark():
    """The encapsulations' fields are Wireshark 4.0's (the differential test compares them)."""
    assert {
        "vlan.id",
        "mpls.label",
        "gre.key",
        "gre.sequence_number",
        "udp.srcport",
        "udp.dstport",
        "vxlan.vni",
    } <= set(ENCAP_FIELDS)
    assert {"geneve.vni", "gtp.teid", "pppoe.session_id", "ppp.protocol", "ip.proto"} <= set(ENCAP_FIELDS)
    assert all(FIELDS[n].source == "wireshark" for n in ENCAP_FIELDS)


def test_ethernet_variants_against_tshark(tmp_path, config_dir):
    need_tshark()
    path = write_pcap(tmp_path / "ethernet.pcap", 1, frames(ETHERNET, [v for _, v in STOPS]))
    n, equal, _ = compare(path, config_dir, NAMES)
    # every encapsulation field was compared where it has values
    assert {f for f in ENCAP_FIELDS if equal[f]} == set(ENCAP_FIELDS), sorted(set(ENCAP_FIELDS) - set(equal))
    infos = list(Dissection(path))
    assert sum(1 for i in infos if i.packet is not None) == len(inner_packets())
    assert any(i.mptcp_stream is not None for i in infos)


@pytest.mark.parametrize(("linktype", "variants"), PPP_LINKS, ids=["ppp", "ppp-hdlc", "ppp-ether"])
def test_ppp_link_types_against_tshark(linktype, variants, tmp_path, config_dir):
    need_tshark()
    stops = PPP_STOPS if linktype != 51 else []
    path = write_pcap(tmp_path / f"link{linktype}.pcap", linktype, frames(variants, stops))
    _, equal, _ = compare(path, config_dir, NAMES)
    assert equal["ppp.protocol"] and equal["tcp.options.mptcp.subtype"] and equal["mptcp.stream"]
    d = Dissection(path)
    assert sum(1 for i in d if i.packet is not None) == len(inner_packets())
    assert not d.unsupported


def test_raw_ip_link_types_against_tshark(tmp_path, config_dir):
    """Link types IPV4 (228) and IPV6 (229)."""
    need_tshark()
    for lt, fam in ((228, 4), (229, 6)):
        recs = [(ts, ip) for ts, ip in inner_packets() if family(ip) == fam]
        path = write_pcap(tmp_path / f"raw{lt}.pcap", lt, iter(recs))
        frames_, equal, _ = compare(path, config_dir, NAMES)
        assert frames_ == len(recs) and equal["tcp.stream"] == len(recs)


# ------------------------------------------------------------------------------------ robustness


def _decode_all(linktype: int, data: bytes) -> None:
    try:
        p = decode_frame(linktype, data)
    except DecodeError:
        p = None
    assert p is None or isinstance(p, Packet)
    layers = frame_layers(linktype, data)
    assert len(layers) <= MAX_LAYERS + 2


def test_every_cut_of_every_variant():
    """A frame cut anywhere decodes, or gives None, or raises DecodeError: nothing else."""
    for lt, data in all_frames():
        for k in range(len(data)):
            _decode_all(lt, data[:k])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_frames(draw):
    frames_ = list(all_frames())
    lt, data = frames_[draw.draw(st.integers(0, len(frames_) - 1))]
    b = bytearray(data[:120])
    for _ in range(draw.draw(st.integers(1, 6))):
        i = draw.draw(st.integers(0, len(b) - 1))
        b[i] = draw.draw(st.integers(0, 255))
    _decode_all(lt, bytes(b))
    _decode_all(draw.draw(st.sampled_from(sorted(LINKTYPES))), bytes(b))


def test_a_gre_loop_ends():
    """GRE in IP in GRE ... thousands deep: at most MAX_LAYERS layers, no recursion."""
    inner = inner_packets()[0][1]
    for _ in range(2000):
        inner = ip4(47, gre(0, 0x0800, inner))
    layers, at = walk(1, eth(0x0800, inner))
    assert at is None and len(layers) == MAX_LAYERS
    vxlan = dict(ETHERNET)["VXLAN"]
    inner = inner_packets()[0][1]
    for _ in range(100):
        inner = vxlan(inner)[14:]
    layers, at = walk(1, eth(0x0800, inner))
    assert at is None and MAX_LAYERS <= len(layers) <= MAX_LAYERS + 2
    assert decode_frame(1, eth(0x0800, inner)) is None
    mpls_loop = eth(0x8847, b"\0\0\0\0" * 5000)
    assert len(walk(1, mpls_loop)[0]) == MAX_LAYERS


def test_plain_frames_have_no_layers():
    for path in CAPTURES:
        for rec in read_records(path):
            p = decode_frame(rec.linktype, rec.data)
            assert p is None or p.tunnel == ()


def test_a_tunnelled_segment_equals_its_plain_self():
    """The inner segment decodes as the unwrapped packet does, only its layers added."""
    for ts, ip in inner_packets()[:40]:
        plain = decode_frame(101, ip, ts)
        for name, v in ETHERNET:
            p = decode_frame(1, v(ip), ts)
            assert p is not None, name
            assert p.tunnel and p == dataclasses.replace(plain, tunnel=p.tunnel), name


def test_layers_of_a_vxlan_frame():
    ip = inner_packets()[0][1]
    p = decode_frame(1, dict(ETHERNET)["VXLAN in 802.1Q"](ip))
    assert [type(x) for x in p.tunnel] == [Vlan, Ip, Udp, Vxlan, Vlan]
    assert p.tunnel[3].vni == 43 and p.tunnel[0].id == 3 and p.tunnel[4].id == 4
    g = decode_frame(1, dict(ETHERNET)["GRE checksum, key, sequence"](ip))
    assert isinstance(g.tunnel[1], Gre) and (g.tunnel[1].key, g.tunnel[1].sequence) == (42, 9)


# ------------------------------------------------------------------------------------ filters, replay


def test_filters_on_the_encapsulations(tmp_path):
    path = write_pcap(tmp_path / "ethernet.pcap", 1, frames(ETHERNET, [v for _, v in STOPS]))
    infos = list(Dissection(path))

    def matching(text: str) -> list[int]:
        f = compile_filter(text)
        return [i.number for i in infos if f(i)]

    for text, field, value in (
        ("vxlan.vni == 42", "vxlan.vni", "42"),
        ("gre.key == 0x00010203", "gre.key", "0x00010203"),
        ("vlan.id == 200", "vlan.id", "200"),
        ("mpls.label == 2000", "mpls.label", "2000"),
        ("gtp.teid == 0xdeadbeef", "gtp.teid", "0xdeadbeef"),
        ("pppoe.session_id == 0xbeef", "pppoe.session_id", "0xbeef"),
        ("udp.dstport == 6081", "udp.dstport", "6081"),
        ("ip.proto == 41", "ip.proto", "41"),
        ("geneve.vni == 0xabcdef", "geneve.vni", "0xabcdef"),
        ("ppp.protocol == 0x0021", "ppp.protocol", "0x0021"),
    ):
        want = [i.number for i in infos if value in FIELDS[field].get(i)]
        assert want and matching(text) == want, text
    assert matching("vxlan") == [i.number for i in infos if FIELDS["vxlan.vni"].get(i)]


def test_replay_plan_of_a_tunnelled_capture(tmp_path):
    """The replay plays the inner TCP: the plan of a VXLAN capture is the plan of its inner packets."""
    from mptcpspec.replay.plan import make_plan

    recs = [(ts, ip) for ts, ip in inner_packets() if family(ip) == 4]
    vxlan = dict(ETHERNET)["VXLAN"]
    tunnelled = write_pcap(tmp_path / "vxlan.pcap", 1, ((ts, vxlan(ip)) for ts, ip in recs))
    assert make_plan(tunnelled) == make_plan(DATA / SOURCES[0])


FILTERS = (
    "vxlan.vni == 42",
    "gre.key == 0x00010203",
    "vlan.id == 200",
    "mpls.label == 2000",
    "gtp.teid == 0xdeadbeef",
    "udp.dstport == 6081",
    "ip.proto == 41",
    "vlan",
    "ieee8021ad",
    "mpls",
    "ppp",
    "pppoes",
    "pppoed",
    "gre",
    "udp",
    "vxlan",
    "geneve",
    "gtp",
    "ip",
    "ipv6",
    "ip && ipv6",
)


def test_filters_select_what_tshark_selects(tmp_path, config_dir):
    import os
    import subprocess

    need_tshark()
    path = write_pcap(tmp_path / "ethernet.pcap", 1, frames(ETHERNET, [v for _, v in STOPS]))
    infos = list(Dissection(path))
    for text in FILTERS:
        out = subprocess.run(
            ["tshark", "-n", "-r", str(path), "-Y", text, "-T", "fields", "-e", "frame.number"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)},
        ).stdout.split()
        f = compile_filter(text)
        ours = [str(i.number) for i in infos if f(i)]
        assert out and ours == out, text
