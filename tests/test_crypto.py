"""Tests of mptcpspec.codec.crypto against real data.

Ground truth comes from (1) tcpdump's MPTCP test captures in the external corpus
(its ``tcpdump/``, found through ``MPTCPSPEC_CORPUS``), read with a small
test-local pcap reader, and (2) the HMAC vectors of the Linux kernel's KUnit test
``net/mptcp/crypto_test.c``.  Property tests cover what no capture holds.

What the captures support (and so what is checked on them):

* mptcp-v0.pcap (v0, both MP_CAPABLE keys, one MP_JOIN with SYN, SYN/ACK and
  third ACK, DSS checksums with payload and two DATA_FINs): token of the
  listener's key = token of the MP_JOIN SYN; SYN/ACK truncated HMAC-B and
  third-ACK HMAC-A; the low 32 bits of both IDSNs (32-bit DSNs on the wire);
  every DSS checksum, with the 64-bit DSN rebuilt from the sender's IDSN.
* mptcp-fclose.pcap (v0, both keys, checksummed DSS): IDSNs and DSS checksums.
* mptcp-v1.pcap (v1, both keys, no MP_JOIN, no checksum): the full 64-bit IDSN
  of both keys against the 64-bit DSNs.  No v1 token or join HMAC is on the
  wire in any capture, so those rest on the kernel vectors.
* mptcp-aa-v1.pcap (v1, both keys, one ADD_ADDR with HMAC): key order and
  message of the ADD_ADDR HMAC.  This capture (February 2020) carries the
  *leftmost* 64 bits, as Linux did before commit 12555a2d97e5; current Linux
  and RFC 8684 §3.4.1 use the rightmost, so the capture verifies only with
  ``accept_leftmost``.
* mptcp-aa-echo.pcap (v1, ADD_ADDR with HMAC but no handshake): the keys are
  unknown, so the HMAC is UNVERIFIABLE.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.codec.crypto import (
    Check,
    Verdict,
    add_addr_hmac,
    dss_checksum,
    dss_checksum_ok,
    generate_key,
    join_ack_hmac,
    join_hmac,
    join_synack_hmac,
    key_idsn,
    key_token,
    keyed_hmac,
    verify_add_addr,
    verify_dss_checksum,
    verify_idsn,
    verify_join_ack,
    verify_join_synack,
    verify_token,
)
from mptcpspec.errors import EncodeError, MptcpspecError

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF


# --------------------------------------------------------------------------- pcap reader


@dataclass
class Packet:
    index: int  # 1-based, as tcpdump numbers packets in the .out files
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    flags: int
    options: list[tuple[int, bytes]]  # (kind, value after kind and length)
    payload: bytes
    payload_len: int  # octets of TCP payload the packet had on the wire

    @property
    def flow(self) -> tuple[str, int, str, int]:
        return (self.src, self.sport, self.dst, self.dport)

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def ack(self) -> bool:
        return bool(self.flags & 0x10)

    def mptcp(self) -> list[bytes]:
        return [value for kind, value in self.options if kind == 30]


def _tcp_options(raw: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        length = raw[i + 1]
        assert length >= 2 and i + length <= len(raw), "malformed TCP option in corpus"
        out.append((kind, raw[i + 2 : i + length]))
        i += length
    return out


def read_pcap(path: Path) -> list[Packet]:
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise AssertionError(f"{path.name}: not a pcap file")
    (linktype,) = struct.unpack(e + "I", data[20:24])
    packets, off, index = [], 24, 0
    while off + 16 <= len(data):
        _, _, incl, _orig = struct.unpack(e + "IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        index += 1
        if linktype == 1:  # Ethernet
            ethertype, l3 = struct.unpack("!H", frame[12:14])[0], 14
            while ethertype in (0x8100, 0x88A8):
                ethertype, l3 = struct.unpack("!H", frame[l3 + 2 : l3 + 4])[0], l3 + 4
        elif linktype == 113:  # Linux cooked v1
            ethertype, l3 = struct.unpack("!H", frame[14:16])[0], 16
        elif linktype == 276:  # Linux cooked v2
            ethertype, l3 = struct.unpack("!H", frame[0:2])[0], 20
        elif linktype in (101, 12, 14):  # raw IP
            ethertype, l3 = (0x0800 if frame[0] >> 4 == 4 else 0x86DD), 0
        else:
            raise AssertionError(f"{path.name}: link type {linktype} not handled")
        ip = frame[l3:]
        if ethertype == 0x0800 and len(ip) >= 20:
            ihl = (ip[0] & 0x0F) * 4
            if ip[9] != 6:
                continue
            total = struct.unpack("!H", ip[2:4])[0]
            src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
            tcp, tcp_wire_len = ip[ihl:total], total - ihl
        elif ethertype == 0x86DD and len(ip) >= 40:
            if ip[6] != 6:
                continue
            plen = struct.unpack("!H", ip[4:6])[0]
            src, dst = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40]))
            tcp, tcp_wire_len = ip[40 : 40 + plen], plen
        else:
            continue
        sport, dport, seq, _ack, off_flags = struct.unpack("!HHIIH", tcp[:14])
        doff = (off_flags >> 12) * 4
        packets.append(
            Packet(
                index=index,
                src=src,
                dst=dst,
                sport=sport,
                dport=dport,
                seq=seq,
                flags=off_flags & 0x1FF,
                options=_tcp_options(tcp[20:doff]),
                payload=tcp[doff:],
                payload_len=tcp_wire_len - doff,
            )
        )
    return packets


# --------------------------------------------------------------------------- MPTCP option reader (RFC 8684 §3)


@dataclass
class Dss:
    data_fin: bool
    dsn: int | None
    dsn64: bool
    ssn: int | None
    length: int | None
    checksum: int | None


def parse_dss(value: bytes) -> Dss:
    """DSS (RFC 8684 §3.3, Figure 8): flags F m M a A, then ack, then the mapping."""
    flags, i = value[1], 2
    if flags & 0x01:  # A: data ACK present, 'a' = 8 octets
        i += 8 if flags & 0x02 else 4
    if not flags & 0x04:  # M: no mapping
        return Dss(bool(flags & 0x10), None, False, None, None, None)
    width = 8 if flags & 0x08 else 4
    dsn = int.from_bytes(value[i : i + width], "big")
    i += width
    ssn, length = struct.unpack("!IH", value[i : i + 6])
    i += 6
    checksum = struct.unpack("!H", value[i : i + 2])[0] if len(value) >= i + 2 else None
    return Dss(bool(flags & 0x10), dsn, width == 8, ssn, length, checksum)


@dataclass
class Connection:
    """One MPTCP connection seen from its MP_CAPABLE handshake."""

    version: int
    client: tuple[str, int]
    server: tuple[str, int]
    key_client: int
    key_server: int
    # directional subflow 4-tuple -> key of the host sending on it
    sender_key: dict[tuple[str, int, str, int], int] = field(default_factory=dict)


def connections(packets: list[Packet]) -> list[Connection]:
    """Connections whose MP_CAPABLE third ACK (both keys) is in the capture, plus their joins."""
    conns: dict[tuple[str, int, str, int], Connection] = {}
    for p in packets:
        for value in p.mptcp():
            if value[0] >> 4 == 0 and not p.syn and len(value) >= 18:  # MP_CAPABLE ACK: sender, receiver keys
                if p.flow in conns:
                    continue
                version = value[0] & 0x0F
                ks, kr = struct.unpack("!QQ", value[2:18])
                conn = Connection(version, (p.src, p.sport), (p.dst, p.dport), ks, kr)
                conn.sender_key[p.flow] = ks
                conn.sender_key[(p.dst, p.dport, p.src, p.sport)] = kr
                conns[p.flow] = conn
    result = list(conns.values())
    for p in packets:  # MP_JOIN SYN: the token names the listener's key (RFC 8684 §3.2)
        for value in p.mptcp():
            if value[0] >> 4 == 1 and p.syn and not p.ack and len(value) == 10:
                token = struct.unpack("!I", value[2:6])[0]
                for conn in result:
                    for listener, initiator in ((conn.key_server, conn.key_client), (conn.key_client, conn.key_server)):
                        if key_token(listener, conn.version) == token:
                            conn.sender_key[p.flow] = initiator
                            conn.sender_key[(p.dst, p.dport, p.src, p.sport)] = listener
    return result


def dss_cases(packets: list[Packet], conns: list[Connection]):
    """(packet, dss, sender key, version) for every DSS mapping on a known subflow."""
    for p in packets:
        for value in p.mptcp():
            if value[0] >> 4 != 2:
                continue
            dss = parse_dss(value)
            if dss.dsn is None:
                continue
            for conn in conns:
                if p.flow in conn.sender_key:
                    yield p, dss, conn.sender_key[p.flow], conn.version


def dsn64(dss: Dss, idsn: int) -> int:
    """The 64-bit DSN of a mapping; a 32-bit one is expanded from the sender's IDSN
    (valid while the connection has sent under 4 GiB, as in these captures)."""
    return dss.dsn if dss.dsn64 else (idsn + ((dss.dsn - idsn) & U32)) & U64


# --------------------------------------------------------------------------- kernel KUnit vectors

# net/mptcp/crypto_test.c (Linux): each key string is two 8-octet keys and each
# msg string two 4-octet nonces, taken as the *ASCII octets* of the strings
# (``be64_to_cpu(*((__be64 *)&tests[i].key[0]))``), fed to
# mptcp_crypto_hmac_sha(key1, key2, be32(nonce1) || be32(nonce2)).
KERNEL_HMAC_VECTORS = [
    ("0b0b0b0b0b0b0b0b", "48692054", "8385e24fb4235ac37556b6b886db106284a1da671699f46db1f235ec622dcafa"),
    ("aaaaaaaaaaaaaaaa", "dddddddd", "2c5e219164ff1dca1c4a92318d847bb6b9d44492984e1eb71aff9022f71046e9"),
    ("0102030405060708", "cdcdcdcd", "e73b9ba9969969cefb04aa0d6df18ec2fcc075b6f23b4d8c4da736a5dbbc6e7d"),
]


@pytest.mark.parametrize(("key", "msg", "result"), KERNEL_HMAC_VECTORS)
def test_kernel_hmac_vectors(key: str, msg: str, result: str) -> None:
    k = key.encode("ascii")
    m = msg.encode("ascii")
    key1, key2 = int.from_bytes(k[:8], "big"), int.from_bytes(k[8:], "big")
    nonce1, nonce2 = int.from_bytes(m[:4], "big"), int.from_bytes(m[4:], "big")
    expected = bytes.fromhex(result)
    assert keyed_hmac(key1, key2, m, 1) == expected
    assert join_hmac(key1, key2, nonce1, nonce2, 1) == expected
    # Older kernels truncated mptcp_crypto_hmac_sha to 160 bits and tested the
    # first 40 hex digits of the same values: the third-ACK HMAC.
    assert join_ack_hmac(key1, key2, nonce1, nonce2, 1) == expected[:20]
    assert join_synack_hmac(key1, key2, nonce1, nonce2, 1) == int.from_bytes(expected[:8], "big")


# --------------------------------------------------------------------------- v0 capture


@pytest.fixture(scope="module")
def v0(tcpdump_corpus: Path):
    packets = read_pcap(tcpdump_corpus / "mptcp-v0.pcap")
    conns = connections(packets)
    assert len(conns) == 1 and conns[0].version == 0
    return packets, conns


def test_v0_keys_match_tcpdump_out(v0, tcpdump_corpus: Path) -> None:
    # The reader agrees with tcpdump's own decoding of the same packet.
    _, conns = v0
    conn = conns[0]
    out = (tcpdump_corpus / "mptcp-v0.out").read_text()
    assert f"capable v0 flags [AH] csum {{{conn.key_client:#x},{conn.key_server:#x}}}" in out


def test_v0_join_token_is_listener_token(v0) -> None:
    packets, (conn,) = v0
    syns = [(p, v) for p in packets for v in p.mptcp() if v[0] >> 4 == 1 and p.syn and not p.ack]
    assert len(syns) == 1
    p, v = syns[0]
    token = struct.unpack("!I", v[2:6])[0]
    assert token == 0xE47F0142  # as printed in mptcp-v0.out
    # The SYN goes from the MP_CAPABLE client (initiator A) to the listener B,
    # and carries B's token (RFC 6824 §3.2: SHA-1, most significant 32 bits).
    assert p.src == conn.client[0]
    assert verify_token(conn.key_server, token, 0).ok
    assert key_token(conn.key_server, 0) == token
    assert not verify_token(conn.key_client, token, 0).ok
    assert verify_token(conn.key_server, token, 1).verdict is Verdict.MISMATCH


def _v0_join(packets: list[Packet]):
    syn = next(p for p in packets if p.syn and not p.ack and any(v[0] >> 4 == 1 for v in p.mptcp()))
    synack = next(
        p for p in packets if p.syn and p.ack and p.flow == (syn.dst, syn.dport, syn.src, syn.sport) and p.mptcp()
    )
    third = next(
        p
        for p in packets
        if not p.syn and p.flow == syn.flow and any(v[0] >> 4 == 1 and len(v) == 22 for v in p.mptcp())
    )
    nonce_a = struct.unpack("!I", syn.mptcp()[0][6:10])[0]
    sa = synack.mptcp()[0]
    thmac, nonce_b = struct.unpack("!QI", sa[2:14])
    hmac_a = next(v for v in third.mptcp() if v[0] >> 4 == 1)[2:22]
    return nonce_a, nonce_b, thmac, hmac_a


def test_v0_join_hmacs(v0) -> None:
    packets, (conn,) = v0
    key_a, key_b = conn.key_client, conn.key_server
    nonce_a, nonce_b, thmac, hmac_a = _v0_join(packets)
    assert (nonce_a, nonce_b, thmac) == (0x1B665A18, 0x33ABE9D5, 0x5AB680C7884AF03D)
    assert hmac_a.hex() == "cb7b87f5e5f0502f43b535fb70ef6607df2e6c7a"

    # HMAC-B in the SYN/ACK: leftmost 64 bits of HMAC-SHA1(Key-B||Key-A, R-B||R-A).
    assert join_synack_hmac(key_b, key_a, nonce_b, nonce_a, 0) == thmac
    assert verify_join_synack(key_b, key_a, nonce_b, nonce_a, thmac, 0).ok
    # HMAC-A in the third ACK: HMAC-SHA1(Key-A||Key-B, R-A||R-B), all 160 bits.
    assert join_hmac(key_a, key_b, nonce_a, nonce_b, 0) == hmac_a
    assert join_ack_hmac(key_a, key_b, nonce_a, nonce_b, 0) == hmac_a
    assert verify_join_ack(key_a, key_b, nonce_a, nonce_b, hmac_a, 0).ok
    assert verify_join_ack(key_a, key_b, nonce_a, nonce_b, int.from_bytes(hmac_a, "big"), 0).ok

    # The other point of view, or the other hash, does not match.
    assert verify_join_synack(key_a, key_b, nonce_a, nonce_b, thmac, 0).verdict is Verdict.MISMATCH
    assert verify_join_ack(key_b, key_a, nonce_b, nonce_a, hmac_a, 0).verdict is Verdict.MISMATCH
    assert verify_join_ack(key_a, key_b, nonce_a, nonce_b, hmac_a, 1).verdict is Verdict.MISMATCH
    # An unknown key makes the check impossible, not failed.
    check = verify_join_ack(None, key_b, nonce_a, nonce_b, hmac_a, 0)
    assert check.verdict is Verdict.UNVERIFIABLE and "key_a" in check.why and not check.ok


def _first_mapping(cases, flow) -> Dss:
    return next(dss for p, dss, _, _ in cases if p.flow == flow and dss.ssn == 1)


@pytest.mark.parametrize("name", ["mptcp-v0.pcap", "mptcp-fclose.pcap"])
def test_v0_idsn_low_32_bits(tcpdump_corpus: Path, name: str) -> None:
    packets = read_pcap(tcpdump_corpus / name)
    (conn,) = connections(packets)
    cases = list(dss_cases(packets, conns=[conn]))
    c2s = (*conn.client, *conn.server)
    s2c = (*conn.server, *conn.client)
    # The first data octet on the initial subflow has DSN IDSN + 1 (RFC 6824 §3.1);
    # v0 sends 32-bit DSNs here, so only the low 32 bits can be compared.
    for flow, key in ((c2s, conn.key_client), (s2c, conn.key_server)):
        dss = _first_mapping(cases, flow)
        assert not dss.dsn64
        assert verify_idsn(key, (dss.dsn - 1) & U32, 0, bits=32).ok
        assert verify_idsn(key, (dss.dsn - 1) & U32, 0).verdict is Verdict.MISMATCH  # needs bits=32


@pytest.mark.parametrize("name", ["mptcp-v0.pcap", "mptcp-fclose.pcap"])
def test_v0_dss_checksums(tcpdump_corpus: Path, name: str) -> None:
    # Every DSS checksum tcpdump prints (153 in mptcp-v0, 2 in mptcp-fclose) verifies.
    count = (tcpdump_corpus / name.replace(".pcap", ".out")).read_text().count(" csum 0x")
    assert count > 0
    packets = read_pcap(tcpdump_corpus / name)
    conns = connections(packets)
    verdicts: dict[Verdict, int] = {v: 0 for v in Verdict}
    data_fins = 0
    for p, dss, key, version in dss_cases(packets, conns):
        if dss.checksum is None:
            continue
        dsn = dsn64(dss, key_idsn(key, version))
        payload_len = dss.length - 1 if dss.data_fin else dss.length
        payload = p.payload[:payload_len]
        check = verify_dss_checksum(dsn, dss.ssn, dss.length, payload, dss.checksum, payload_len=p.payload_len)
        verdicts[check.verdict] += 1
        assert check.verdict is not Verdict.MISMATCH, (p.index, str(check))
        if check.ok:
            assert dss_checksum(dsn, dss.ssn, dss.length, payload) == dss.checksum
            # The 32-bit DSN alone (upper bits zero) is not what the checksum covers.
            if not dss.dsn64 and dsn >> 32:
                assert not dss_checksum_ok(dss.dsn, dss.ssn, dss.length, payload, dss.checksum)
        if dss.data_fin and dss.length == 1:
            # DATA_FIN alone: one octet of data-level length, no payload, SSN 0.
            data_fins += 1
            assert payload == b"" and dss.ssn == 0 and check.ok
            assert not dss_checksum_ok(dsn, dss.ssn, 0, b"", dss.checksum)
    assert verdicts[Verdict.VERIFIED] == count
    if name == "mptcp-v0.pcap":
        assert data_fins == 2


def test_v0_dss_checksum_snaplen_cut(v0) -> None:
    packets, conns = v0
    p, dss, key, version = next(
        (p, d, k, v) for p, d, k, v in dss_cases(packets, conns) if d.checksum is not None and d.length > 100
    )
    dsn = dsn64(dss, key_idsn(key, version))
    cut = p.payload[:60]  # as if captured with a small snaplen
    check = verify_dss_checksum(dsn, dss.ssn, dss.length, cut, dss.checksum, payload_len=p.payload_len)
    assert check.verdict is Verdict.UNVERIFIABLE and "truncated" in check.why
    # Without payload_len, a payload shorter than the mapping is still not judged.
    check = verify_dss_checksum(dsn, dss.ssn, dss.length, cut, dss.checksum)
    assert check.verdict is Verdict.UNVERIFIABLE
    # One flipped octet is caught.
    bad = bytearray(p.payload[: dss.length])
    bad[7] ^= 0x20
    assert verify_dss_checksum(dsn, dss.ssn, dss.length, bytes(bad), dss.checksum).verdict is Verdict.MISMATCH


def test_v0_add_addr_has_no_hmac(v0) -> None:
    packets, (conn,) = v0
    value = next(v for p in packets for v in p.mptcp() if v[0] >> 4 == 3)
    assert len(value) == 6  # RFC 6824 §3.4.1: subtype/IPVer, ID, IPv4 address: no HMAC
    address = ipaddress.IPv4Address(value[2:6])
    check = verify_add_addr(conn.key_server, conn.key_client, value[1], address, None, None, 0)
    assert check.verdict is Verdict.UNVERIFIABLE and "v0" in check.why
    with pytest.raises(EncodeError):
        add_addr_hmac(conn.key_server, conn.key_client, value[1], address, None, 0)


# --------------------------------------------------------------------------- v1 captures


@pytest.mark.parametrize("name", ["mptcp-v1.pcap", "mptcp-aa-v1.pcap"])
def test_v1_idsn(tcpdump_corpus: Path, name: str) -> None:
    packets = read_pcap(tcpdump_corpus / name)
    (conn,) = connections(packets)
    assert conn.version == 1
    c2s = (*conn.client, *conn.server)
    s2c = (*conn.server, *conn.client)
    # The first data octet on the initial subflow (SSN 1) has DSN IDSN + 1
    # (RFC 8684 §3.1: IDSN = low 64 bits of SHA-256(key)); v1 sends 64-bit DSNs.
    checked = 0
    for p, dss, key, _ in dss_cases(packets, [conn]):
        assert dss.dsn64 and p.flow in (c2s, s2c)
        if dss.ssn == 1:
            assert verify_idsn(key, (dss.dsn - 1) & U64, 1).ok, p.index
            assert not verify_idsn(key, (dss.dsn - 1) & U64, 0).ok
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("name", ["mptcp-v1.pcap", "mptcp-aa-v1.pcap"])
def test_v1_mp_capable_data_dsn(tcpdump_corpus: Path, name: str) -> None:
    # The client's first data rides in the MP_CAPABLE ACK (RFC 8684 §3.1: DSN
    # implicit = IDSN + 1, SSN 1); its next DSS mapping on the subflow follows it.
    packets = read_pcap(tcpdump_corpus / name)
    (conn,) = connections(packets)
    mpc = next(v for p in packets for v in p.mptcp() if v[0] >> 4 == 0 and len(v) == 20)
    data_len = struct.unpack("!H", mpc[18:20])[0]
    c2s = (*conn.client, *conn.server)
    nxt = next(dss for p, dss, _, _ in dss_cases(packets, [conn]) if p.flow == c2s and dss.ssn)
    assert nxt.ssn == 1 + data_len
    assert nxt.dsn == key_idsn(conn.key_client, 1) + 1 + data_len


def test_v1_add_addr_hmac(tcpdump_corpus: Path) -> None:
    packets = read_pcap(tcpdump_corpus / "mptcp-aa-v1.pcap")
    (conn,) = connections(packets)
    p, value = next((p, v) for p in packets for v in p.mptcp() if v[0] >> 4 == 3)
    assert not value[0] & 0x01 and len(value) == 14  # not an echo; ID, IPv4, HMAC
    address_id = value[1]
    address = ipaddress.IPv4Address(value[2:6])
    carried = struct.unpack("!Q", value[6:14])[0]
    assert (address_id, str(address), carried) == (1, "192.168.136.225", 0x669928744366716C)  # mptcp-aa-v1.out
    sender = conn.sender_key[p.flow]
    receiver = conn.key_client if sender == conn.key_server else conn.key_server
    assert sender == conn.key_server  # the listener advertises its second address

    # Sender's key first, ID || address || zero port: matches, but on the
    # leftmost 64 bits, as Linux sent before May 2020.
    assert add_addr_hmac(sender, receiver, address_id, address, None, 1, leftmost=True) == carried
    assert add_addr_hmac(sender, receiver, address_id, address, 0, 1, leftmost=True) == carried
    full = keyed_hmac(sender, receiver, bytes([address_id]) + address.packed + b"\0\0", 1)
    assert int.from_bytes(full[:8], "big") == carried
    assert add_addr_hmac(sender, receiver, address_id, address, None, 1) == int.from_bytes(full[-8:], "big")

    strict = verify_add_addr(sender, receiver, address_id, address, None, carried, 1)
    assert strict.verdict is Verdict.MISMATCH and "leftmost" in strict.why
    lenient = verify_add_addr(sender, receiver, address_id, address, None, carried, 1, accept_leftmost=True)
    assert lenient.ok and "leftmost" in lenient.why
    # Keys in the other order, or a port in the message, match in neither half.
    assert not verify_add_addr(receiver, sender, address_id, address, None, carried, 1, accept_leftmost=True).ok
    assert not verify_add_addr(sender, receiver, address_id, address, 22, carried, 1, accept_leftmost=True).ok
    # A value built the current (rightmost) way verifies plainly.
    current = add_addr_hmac(sender, receiver, address_id, address, None)
    assert verify_add_addr(sender, receiver, address_id, address, None, current).ok


def test_v1_add_addr_echo_capture_is_unverifiable(tcpdump_corpus: Path) -> None:
    # mptcp-aa-echo.pcap starts mid-connection: no MP_CAPABLE, so no keys.
    packets = read_pcap(tcpdump_corpus / "mptcp-aa-echo.pcap")
    assert connections(packets) == []
    adds = [v for p in packets for v in p.mptcp() if v[0] >> 4 == 3]
    with_hmac = [v for v in adds if not v[0] & 0x01]
    echoes = [v for v in adds if v[0] & 0x01]
    assert len(with_hmac) == 1 and len(echoes) == 1 and len(echoes[0]) == 6  # the echo has no HMAC
    v = with_hmac[0]
    carried = struct.unpack("!Q", v[6:14])[0]
    assert carried == 0xF8295862F645DF19
    check = verify_add_addr(None, None, v[1], ipaddress.IPv4Address(v[2:6]), None, carried, 1)
    assert check.verdict is Verdict.UNVERIFIABLE
    assert "key_sender" in check.why and "key_receiver" in check.why


# --------------------------------------------------------------------------- properties


def _reference_checksum(dsn: int, ssn: int, length: int, payload: bytes) -> int:
    """RFC 1071 word by word: an independent slow implementation."""
    data = struct.pack("!QIHH", dsn, ssn, length, 0) + payload
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


dsns = st.integers(0, U64)
ssns = st.integers(0, U32)


@settings(max_examples=300)
@given(dsn=dsns, ssn=ssns, payload=st.binary(max_size=3000), data_fin=st.booleans())
def test_checksum_inserted_verifies(dsn: int, ssn: int, payload: bytes, data_fin: bool) -> None:
    length = len(payload) + data_fin
    if length == 0:
        length = 1  # a mapping always covers at least one octet
        data_fin = True
    csum = dss_checksum(dsn, ssn, length, payload)
    assert csum == _reference_checksum(dsn, ssn, length, payload)
    assert dss_checksum_ok(dsn, ssn, length, payload, csum)
    assert verify_dss_checksum(dsn, ssn, length, payload, csum, payload_len=len(payload)).ok
    assert not dss_checksum_ok(dsn, ssn, length, payload, csum ^ 0x0100)
    if payload:
        flipped = bytearray(payload)
        flipped[len(flipped) // 2] ^= 0x01
        assert not dss_checksum_ok(dsn, ssn, length, bytes(flipped), csum)


@given(dsn=dsns, ssn=ssns, payload=st.binary(min_size=1, max_size=301).filter(lambda b: len(b) % 2 == 1))
def test_odd_length_payload_is_zero_padded(dsn: int, ssn: int, payload: bytes) -> None:
    length = len(payload)
    csum = dss_checksum(dsn, ssn, length, payload)
    # RFC 8684 §3.3.1 uses the TCP checksum algorithm: an odd tail is padded
    # with a zero octet on the right, which is not sent.
    assert csum == dss_checksum(dsn, ssn, length, payload + b"\0")
    assert csum == _reference_checksum(dsn, ssn, length, payload)


def test_data_fin_alone() -> None:
    # A DATA_FIN with no data: data-level length 1, SSN 0, empty payload
    # (Linux mptcp_write_data_fin); the length is part of the pseudo-header.
    dsn = 0x0123456789ABCDEF
    csum = dss_checksum(dsn, 0, 1, b"")
    assert csum == _reference_checksum(dsn, 0, 1, b"")
    assert dss_checksum_ok(dsn, 0, 1, b"", csum)
    assert not dss_checksum_ok(dsn, 0, 0, b"", csum)
    assert verify_dss_checksum(dsn, 0, 1, b"", csum).ok
    # With data: the length counts the payload and the DATA_FIN octet.
    payload = b"last bytes"
    csum = dss_checksum(dsn, 5, len(payload) + 1, payload)
    assert verify_dss_checksum(dsn, 5, len(payload) + 1, payload, csum, payload_len=len(payload)).ok
    assert verify_dss_checksum(dsn, 5, len(payload), payload, csum).verdict is Verdict.MISMATCH


def test_checksum_both_zeros_accepted() -> None:
    # The receiver sums everything including the checksum and wants 0xFFFF
    # (Linux validate_data_csum), so 0xFFFF is accepted where 0 is computed.
    # Pseudo-header DSN 0, SSN 0, length 0xFFFF, no payload: the sum is 0xFFFF.
    assert dss_checksum(0, 0, 0xFFFF, b"") == 0
    assert dss_checksum_ok(0, 0, 0xFFFF, b"", 0)
    assert dss_checksum_ok(0, 0, 0xFFFF, b"", 0xFFFF)
    assert not dss_checksum_ok(0, 0, 0xFFFE, b"", 0xFFFF)


def test_large_payload_matches_reference() -> None:
    payload = bytes(range(256)) * 257 + b"\x7f"  # 65793 octets, odd
    assert dss_checksum(U64, U32, 0xFFFF, payload) == _reference_checksum(U64, U32, 0xFFFF, payload)
    assert dss_checksum(1, 1, 3, memoryview(payload)[:3]) == _reference_checksum(1, 1, 3, payload[:3])


def test_infinite_mapping_unverifiable() -> None:
    assert verify_dss_checksum(1, 1, 0, b"abc", 0).verdict is Verdict.UNVERIFIABLE


@pytest.mark.parametrize("version", [0, 1])
def test_generate_key(version: int) -> None:
    keys = {generate_key(version) for _ in range(200)}
    assert len(keys) == 200 and 0 not in keys and all(0 < k <= U64 for k in keys)
    in_use = {key_token(k, version) for k in keys}
    for _ in range(200):
        k = generate_key(version, in_use=in_use)
        assert key_token(k, version) not in in_use


def test_generate_key_skips_zero_and_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = 0x1122334455667788
    fresh = 0x8877665544332211
    draws = iter([0, taken, taken, fresh])
    monkeypatch.setattr(secrets, "randbits", lambda bits: next(draws))
    assert generate_key(1, in_use={key_token(taken, 1)}) == fresh


def test_generate_key_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "randbits", lambda bits: 42)
    with pytest.raises(MptcpspecError):
        generate_key(1, in_use={key_token(42, 1)})


@given(key=st.integers(0, U64))
def test_token_and_idsn_in_range_and_per_version(key: int) -> None:
    for version in (0, 1):
        token, idsn = key_token(key, version), key_idsn(key, version)
        assert 0 <= token <= U32 and 0 <= idsn <= U64
        assert verify_token(key, token, version).ok and verify_idsn(key, idsn, version).ok
        assert verify_idsn(key, idsn & U32, version, bits=32).ok
    # The digest cache must keep the versions apart.
    assert (key_token(key, 0), key_idsn(key, 0)) != (key_token(key, 1), key_idsn(key, 1))


def test_join_hmac_lengths_and_truncations() -> None:
    k1, k2, n1, n2 = 1, 2, 3, 4
    for version, size in ((0, 20), (1, 32)):
        full = join_hmac(k1, k2, n1, n2, version)
        assert len(full) == size
        assert join_synack_hmac(k1, k2, n1, n2, version) == int.from_bytes(full[:8], "big")
        assert join_ack_hmac(k1, k2, n1, n2, version) == full[:20]


def test_add_addr_ipv6_and_port() -> None:
    a6 = ipaddress.IPv6Address("2001:db8::1")
    full = keyed_hmac(7, 9, bytes([5]) + a6.packed + (8080).to_bytes(2, "big"), 1)
    assert add_addr_hmac(7, 9, 5, a6, 8080) == int.from_bytes(full[-8:], "big")
    assert add_addr_hmac(7, 9, 5, "2001:db8::1", 8080) == add_addr_hmac(7, 9, 5, a6, 8080)
    assert add_addr_hmac(7, 9, 5, a6, None) == add_addr_hmac(7, 9, 5, a6, 0)
    assert verify_add_addr(7, 9, 5, a6, 8080, add_addr_hmac(7, 9, 5, a6, 8080)).ok
    assert verify_add_addr(7, 9, 5, a6, 8080, 0).verdict is Verdict.MISMATCH


@pytest.mark.parametrize(
    "call",
    [
        lambda: key_token(1 << 64),
        lambda: key_token(-1),
        lambda: key_idsn(1, version=2),
        lambda: join_hmac(1, 2, 1 << 32, 0),
        lambda: add_addr_hmac(1, 2, 256, ipaddress.IPv4Address("10.0.0.1"), None),
        lambda: add_addr_hmac(1, 2, 1, ipaddress.IPv4Address("10.0.0.1"), 65536),
        lambda: add_addr_hmac(1, 2, 1, b"\n\0\0\1", None),
        lambda: dss_checksum(1 << 64, 0, 1, b""),
        lambda: dss_checksum(0, 1 << 32, 1, b""),
        lambda: dss_checksum(0, 0, 1 << 16, b""),
        lambda: generate_key(3),
    ],
)
def test_out_of_range_inputs_raise(call) -> None:
    with pytest.raises(EncodeError):
        call()


def test_unknown_inputs_are_unverifiable() -> None:
    assert verify_token(None, 1).verdict is Verdict.UNVERIFIABLE
    assert verify_token(1, None).verdict is Verdict.UNVERIFIABLE
    assert verify_idsn(None, 1).verdict is Verdict.UNVERIFIABLE
    assert verify_join_synack(1, 2, None, 4, 5).verdict is Verdict.UNVERIFIABLE
    check = verify_dss_checksum(1, 2, 3, None, 5)
    assert check.verdict is Verdict.UNVERIFIABLE and check.why == "unknown: payload"
    check = verify_add_addr(1, 2, 3, ipaddress.IPv4Address("10.0.0.1"), None, None)
    assert check.verdict is Verdict.UNVERIFIABLE and "hmac" in check.why


def test_check_type() -> None:
    check = verify_token(1, key_token(1))
    assert check == Check(Verdict.VERIFIED, "token (v1)", key_token(1), key_token(1))
    assert check.ok and "VERIFIED" in str(check)
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.why = "x"  # type: ignore[misc]
    assert not hasattr(check, "__dict__")
    bad = verify_token(1, 0)
    assert not bad.ok and bad.verdict == Verdict.MISMATCH and "expected" in str(bad)
    assert [v.name for v in Verdict] == ["VERIFIED", "MISMATCH", "UNVERIFIABLE"]


# --------------------------------------------------------------------------- NIST hash vectors

# NIST CAVP SHAVS short-message vectors of 64 bits (SHA1ShortMsg.rsp and SHA256ShortMsg.rsp, Len = 64):
# an 8-octet message is a key, so they give its token (first 4 octets of the digest) and its IDSN (last
# 8), for each version, without the corpus.
NIST_SHORT_MSG_64 = [
    (0, "7e3d7b3eada98866", "24a2c34b976305277ce58c2f42d5092031572520"),
    (1, "5738c929c4f4ccb6", "963bb88f27f512777aab6c8b1a02c70ec0ad651d428f870036e1917120fb48bf"),
]


@pytest.mark.parametrize(("version", "msg", "md"), NIST_SHORT_MSG_64, ids=["sha1", "sha256"])
def test_nist_key_hash_vectors(version: int, msg: str, md: str) -> None:
    key = int(msg, 16)
    assert key_token(key, version) == int(md[:8], 16)
    assert key_idsn(key, version) == int(md[-16:], 16)
    assert verify_token(key, int(md[:8], 16), version).ok
    assert not verify_token(key, int(md[:8], 16) ^ 1, version).ok
