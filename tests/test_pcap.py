"""Capture reading and packet decoding: every format and link type, truncation, bad files.

The independent checks: Wireshark's ``editcap`` rewrites each capture in the other formats (pcapng,
nanosecond pcap, modified pcap) and ``mergecap`` merges two link types into one pcapng, and every
record must read back identical; tshark's own decode of the IP/TCP headers of every packet must
equal ours.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.capture.packets import TcpFlags, decode_frame, decode_packet
from mptcpspec.capture.pcap import CaptureError, CaptureReader, read_records
from mptcpspec.errors import DecodeError
from tests.conftest import CAPTURES, DATA, need_wireshark, tcpdump_captures, unavailable


def _captures() -> list[Path]:
    return list(CAPTURES) + (tcpdump_captures() or [])


# --------------------------------------------------------------------------- a small writer


def ip4_tcp(
    payload: bytes = b"hello",
    options: bytes = b"\x01\x01\x01\x01",
    flags: int = 0x18,
    src: bytes = bytes([198, 51, 100, 1]),
    dst: bytes = bytes([198, 51, 100, 2]),
) -> bytes:
    doff = 20 + len(options)
    tcp = struct.pack("!HHIIHHHH", 40000, 5201, 1000, 2000, (doff // 4) << 12 | flags, 512, 0, 0) + options
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0, src, dst)
    return ip + tcp + payload


def ip6_tcp(payload: bytes = b"hello", ext: bytes = b"", first: int = 0) -> bytes:
    """An IPv6 TCP segment; ``ext``: extension headers, the first of type ``first``."""
    tcp = struct.pack("!HHIIHHHH", 40000, 5201, 1000, 2000, 5 << 12 | 0x18, 512, 0, 0)
    nh = first if ext else 6
    src = bytes.fromhex("20010db8000100000000000000000001")
    dst = bytes.fromhex("20010db8000100000000000000000002")
    return (
        struct.pack("!IHBB16s16s", 6 << 28, len(ext) + len(tcp) + len(payload), nh, 64, src, dst) + ext + tcp + payload
    )


def pcap_bytes(
    frames: list[tuple[int, bytes]], linktype: int = 101, order: str = "<", nanos: bool = False, orig_extra: int = 0
) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for ts, data in frames:
        frac = ts % 10**9 if nanos else (ts % 10**9) // 1000
        out.append(struct.pack(order + "IIII", ts // 10**9, frac, len(data), len(data) + orig_extra) + data)
    return b"".join(out)


def _block(btype: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def pcapng_bytes(
    ifaces: list[tuple[int, int | None]],
    packets: list[tuple[int, int, bytes]],
    order: str = "<",
    extra_blocks: bool = True,
) -> bytes:
    """``ifaces``: (linktype, tsresol octet or None); ``packets``: (iface, ts in that unit, data)."""
    out = [_block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)]
    for lt, resol in ifaces:
        opts = b""
        if resol is not None:
            opts = struct.pack(order + "HH", 9, 1) + bytes([resol, 0, 0, 0]) + struct.pack(order + "HH", 0, 0)
        out.append(_block(1, struct.pack(order + "HHI", lt, 0, 0) + opts, order))
    if extra_blocks:
        out.append(_block(0x0BAD, b"unknown block type", order))  # skipped
        out.append(_block(5, struct.pack(order + "I", 0) + b"\0" * 12, order))  # Interface Statistics
    for iface, ts, data in packets:
        out.append(
            _block(
                6, struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data, order
            )
        )
    return b"".join(out)


# --------------------------------------------------------------------------- formats


def test_pcap_micro_nano_and_both_byte_orders_read_alike():
    frames = [(1_700_000_000_123_456_000, ip4_tcp(b"a")), (1_700_000_001_000_001_000, ip4_tcp(b"bb"))]
    for order in "<>":
        for nanos in (False, True):
            recs = list(read_records(io.BytesIO(pcap_bytes(frames, order=order, nanos=nanos))))
            assert [(r.timestamp_ns, r.data, r.linktype) for r in recs] == [(ts, d, 101) for ts, d in frames]


def test_pcapng_interfaces_resolutions_and_unknown_blocks():
    v4, v6 = ip4_tcp(b"x"), ip6_tcp(b"y")
    eth = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + v4
    for order in "<>":
        data = pcapng_bytes(
            [(1, None), (101, 9), (229, 0x80 | 20)],
            [(0, 1_700_000_000_000_001, eth), (1, 1_700_000_000_000_000_007, v4), (2, 3 << 20, v6)],
            order=order,
        )
        reader = CaptureReader(io.BytesIO(data))
        recs = list(reader)
        assert reader.format == "pcapng" and reader.skipped_blocks == 2 and reader.problems == []
        assert [r.interface for r in recs] == [0, 1, 2]
        assert [r.linktype for r in recs] == [1, 101, 229]
        assert [r.timestamp_ns for r in recs] == [1_700_000_000_000_001_000, 1_700_000_000_000_000_007, 3_000_000_000]
        pkts = [decode_packet(r) for r in recs]
        assert [p.version for p in pkts] == [4, 4, 6]
        assert [p.payload for p in pkts] == [b"x", b"x", b"y"]


def test_pcapng_second_section_resets_interfaces():
    one = pcapng_bytes([(101, None)], [(0, 5, ip4_tcp(b"1"))], extra_blocks=False)
    two = pcapng_bytes([(228, None)], [(0, 6, ip4_tcp(b"2"))], order=">", extra_blocks=False)
    recs = list(read_records(io.BytesIO(one + two)))
    assert [(r.linktype, decode_packet(r).payload) for r in recs] == [(101, b"1"), (228, b"2")]


@pytest.mark.parametrize("fmt", ["pcapng", "nsecpcap", "modpcap"])
def test_editcap_conversions_read_back_identical(tmp_path, fmt):
    editcap = need_wireshark("editcap")
    caps = _captures()
    if not caps:
        unavailable("no captures in tests/data or the corpus")
    for src in caps:
        dst = tmp_path / f"{src.stem}.{fmt}"
        subprocess.run([editcap, "-F", fmt, str(src), str(dst)], check=True, capture_output=True)
        a = [(r.timestamp_ns // 1000, r.linktype, r.data, r.orig_len) for r in read_records(src)]
        b = [(r.timestamp_ns // 1000, r.linktype, r.data, r.orig_len) for r in read_records(dst)]
        assert a == b, src.name


def test_mergecap_of_two_link_types(tmp_path, tcpdump_corpus):
    mergecap = need_wireshark("mergecap")
    a, b = tcpdump_corpus / "mptcp-v0.pcap", tcpdump_corpus / "mptcp-v1.pcap"  # Ethernet and Linux cooked
    out = tmp_path / "merged.pcapng"
    subprocess.run([mergecap, "-a", "-w", str(out), str(a), str(b)], check=True, capture_output=True)
    merged = list(read_records(out))
    assert {r.linktype for r in merged} == {1, 113}
    assert [r.data for r in merged] == [r.data for r in read_records(a)] + [r.data for r in read_records(b)]


# --------------------------------------------------------------------------- link types

_SEG = ip4_tcp(b"payload", flags=0x12)


@pytest.mark.parametrize(
    "linktype, frame",
    [
        (1, b"\x02" * 12 + b"\x08\x00" + _SEG + b"\0" * 6),  # Ethernet with padding
        (1, b"\x02" * 12 + b"\x81\x00\x00\x05\x88\xa8\x00\x06\x08\x00" + _SEG),  # two VLAN tags
        (113, b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 8 + b"\x08\x00" + _SEG),  # Linux cooked v1
        (276, b"\x08\x00\x00\x00\x00\x00\x00\x02\x00\x01\x00\x06" + b"\x02" * 8 + _SEG),  # Linux cooked v2
        (101, _SEG),
        (12, _SEG),
        (228, _SEG),
        (0, struct.pack("<I", 2) + _SEG),
        (0, struct.pack(">I", 2) + _SEG),
        (108, struct.pack(">I", 2) + _SEG),
    ],
)
def test_link_types(linktype, frame):
    p = decode_frame(linktype, frame)
    assert (str(p.src), str(p.dst), p.sport, p.dport, p.seq, p.ack) == (
        "198.51.100.1",
        "198.51.100.2",
        40000,
        5201,
        1000,
        2000,
    )
    assert p.flags == TcpFlags.SYN | TcpFlags.ACK and p.options == b"\x01" * 4 and p.payload == b"payload"


def test_ipv6_extension_headers_are_skipped():
    hop = bytes([60, 0]) + b"\x01\x04\0\0\0\0"  # hop-by-hop, next: destination options
    dst = bytes([6, 0]) + b"\x01\x04\0\0\0\0"
    frame = ip6_tcp(b"v6", ext=hop + dst)
    p = decode_frame(229, frame)
    assert p.version == 6 and str(p.src) == "2001:db8:1::1" and p.payload == b"v6"
    # AH (RFC 4302) counts its length in 4-octet units less 2: 24 octets here, then destination options
    ah = bytes([60, 4, 0, 0]) + b"\0" * 20
    p = decode_frame(229, ip6_tcp(b"ah", ext=ah + dst, first=51))
    assert (p.sport, p.dport, p.payload) == (40000, 5201, b"ah")


def test_not_tcp_is_none():
    udp = bytearray(_SEG)
    udp[9] = 17
    assert decode_frame(101, bytes(udp)) is None
    frag = bytearray(_SEG)
    frag[6:8] = b"\x00\x10"  # fragment offset 16
    assert decode_frame(101, bytes(frag)) is None
    assert decode_frame(1, b"\x02" * 12 + b"\x08\x06" + b"\0" * 28) is None  # ARP
    assert decode_frame(147, _SEG) is None  # a link type we do not decode


def test_payload_cut_by_snaplen_is_kept_and_marked():
    full = ip4_tcp(b"0123456789")
    p = decode_frame(101, full[:-4])
    assert p.payload == b"012345" and p.payload_len == 10 and p.payload_cut


@pytest.mark.parametrize(
    "bad, where",
    [
        (b"\x45" + b"\0" * 10, "IPv4 header"),
        (b"\x44" + _SEG[1:], "IPv4 header.IHL"),
        (_SEG[:30], "TCP header"),
        (_SEG[:32] + b"\x40" + _SEG[33:], "TCP header.data offset"),  # data offset 4 words
        (_SEG[:22], "TCP header"),
    ],
)
def test_malformed_headers_name_what_and_where(bad, where):
    with pytest.raises(DecodeError) as e:
        decode_frame(101, bad)
    assert str(e.value).startswith(where)


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.binary(max_size=120))
def test_random_frames_raise_only_decode_error(linktype, data):
    try:
        decode_frame(linktype, data)
    except DecodeError:
        pass


# --------------------------------------------------------------------------- bad files


def test_truncated_at_every_offset_never_crashes():
    caps = [c for c in _captures() if c.stat().st_size < 40_000][:3]
    blobs = [c.read_bytes() for c in caps]
    blobs.append(pcapng_bytes([(101, None)], [(0, 1, ip4_tcp(b"abc")), (0, 2, ip4_tcp(b"defg"))]))
    for blob in blobs:
        whole = list(read_records(io.BytesIO(blob)))
        # Only a cut file header is fatal: 24 octets for pcap, the Section Header Block for pcapng.
        ng = blob[:4] == b"\x0a\x0d\x0d\x0a"
        header = struct.unpack_from("<I", blob, 4)[0] if ng else 24
        for cut in range(len(blob)):
            reader = CaptureReader(io.BytesIO(blob[:cut]))
            try:
                recs = list(reader)
            except CaptureError:
                assert cut < header, cut
                continue
            assert cut >= header, cut
            assert len(recs) <= len(whole)
            assert recs[:-1] == whole[: len(recs) - 1] if recs else True
            if recs and recs[-1].truncated:
                assert reader.problems, cut
                assert whole[len(recs) - 1].data.startswith(recs[-1].data)
            elif recs:
                assert recs[-1] == whole[len(recs) - 1]
            if cut < len(blob) and len(recs) == len(whole) and not recs[-1].truncated:
                assert reader.problems or cut >= len(blob) - 4, cut  # a cut trailer is noticed


@pytest.mark.parametrize(
    "blob, reason",
    [
        (b"", "empty file"),
        (b"\xa1\xb2", "too short"),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            "not a capture file (pcap, pcapng, or gzip/zstd/lz4 of one); it starts with 47 45 54 20",
        ),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 1, 0, 0, 0, 65535, 1), "version 1.0"),
        (pcap_bytes([]) + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30), "corrupt file"),
        (_block(0x0A0D0D0A, struct.pack("<IHHq", 0x11223344, 1, 0, -1)), "byte-order magic"),
        (_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))[:-4] + b"\0\0\0\0", "trailing length"),
        (pcapng_bytes([], [(0, 1, b"x")], extra_blocks=False), "only 0 described"),
        (  # an interface's if_tsresol, then if_tsoffset, whose value runs past the block
            pcapng_bytes([], [], extra_blocks=False) + _block(1, struct.pack("<HHIHH", 1, 0, 0, 9, 1)),
            "Interface Description Block at offset 44: option 9 claims 1 octets, the block holds 0",
        ),
        (
            pcapng_bytes([], [], extra_blocks=False) + _block(1, struct.pack("<HHIHHI", 1, 0, 0, 14, 8, 0)),
            "option 14 claims 8 octets, the block holds 4",
        ),
    ],
)
def test_unusable_files_raise_capture_error(blob, reason):
    with pytest.raises(CaptureError) as e:
        list(read_records(io.BytesIO(blob)))
    assert reason in str(e.value)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a", b"\x4d\x3c\xb2\xa1"]))
def test_garbage_after_a_magic_raises_only_capture_error(body, magic):
    try:
        for rec in read_records(io.BytesIO(magic + body)):
            try:
                decode_packet(rec)
            except DecodeError:
                pass
    except CaptureError:
        pass


# --------------------------------------------------------------------------- against tshark

_FIELDS = [
    "frame.number",
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.flags",
    "tcp.window_size_value",
    "tcp.len",
    "tcp.hdr_len",
    "tcp.checksum",
]


def test_headers_equal_tsharks_on_every_packet(tmp_path):
    """Also on copies of the kernel captures cut to snapshot lengths that end inside the TCP
    options (made with editcap): the headers are still decoded, as tshark decodes them."""
    tshark = need_wireshark("tshark")
    editcap = need_wireshark("editcap")
    caps = _captures()
    if not caps:
        unavailable("no captures in tests/data or the corpus")
    cut = 0
    for cap in sorted(DATA.glob("*.pcap")):
        for snaplen in (70, 80, 90):
            out = tmp_path / f"{cap.stem}-snap{snaplen}.pcap"
            subprocess.run([editcap, "-s", str(snaplen), str(cap), str(out)], check=True, capture_output=True)
            caps.append(out)
    compared = 0
    for cap in caps:
        cmd = [
            tshark,
            "-n",
            "-r",
            str(cap),
            "-Y",
            "tcp",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=f",
            "-o",
            "tcp.analyze_sequence_numbers:FALSE",
        ]
        for f in _FIELDS:
            cmd += ["-e", f]
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=True, env={**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path)}
        ).stdout
        theirs, partial = {}, set()
        for line in out.splitlines():
            c = line.split("\t")
            if not all(c[5:14]):  # the snapshot length cut the fixed TCP header itself: not decoded here
                partial.add(int(c[0]))
                continue
            theirs[int(c[0])] = (
                c[1] or c[2],
                c[3] or c[4],
                int(c[5]),
                int(c[6]),
                int(c[7]),
                int(c[8]),
                int(c[9], 16),
                int(c[10]),
                int(c[11]),
                int(c[12]),
                int(c[13], 16),
            )
        ours = {}
        for n, rec in enumerate(read_records(cap), 1):
            try:
                p = decode_packet(rec)
            except DecodeError:
                assert n in partial or cap.parent == DATA or cap in (tcpdump_captures() or ()), (cap.name, n)
                continue
            if p is None:
                continue
            ours[n] = (
                str(p.src),
                str(p.dst),
                p.sport,
                p.dport,
                p.seq,
                p.ack,
                int(p.flags),
                p.window,
                p.payload_len,
                p.hdr_len,
                p.checksum,
            )
            assert p.options_cut == (p.hdr_len > 20 + len(p.options))
            cut += p.options_cut
        assert ours == theirs, cap.name
        compared += len(ours)
    assert compared > 0 and cut > 500
