"""Differential test of the MPTCP option decoder against tshark (Wireshark 4.0's TCP dissector).

tshark dissects every capture (``-T pdml``, which keeps each option's position and every field's
displayed value); we decode the same packets with ``mptcpspec.capture.packets`` and
``decode_tcp_options(strict=False)``.  Each MPTCP option tshark shows is matched to ours by its
offset in the options area, then every ``tcp.options.mptcp.*`` field tshark displays for it
(names from ``tshark -G fields``) is compared with the value of our decode, and every field our
decode has that tshark 4.0 is able to display must be displayed with that value.

Captures: tcpdump's MPTCP test captures in the external corpus (``MPTCPSPEC_CORPUS``, when set),
the project's kernel captures ``tests/data/*.pcap``, and a capture written here whose options reach the
variants kernel traffic rarely carries (MP_PRIO, MP_FAIL, IPv6 and port ADD_ADDR, MP_TCPRST reasons,
subtype 0xf...).  Its option octets are inputs only: every expected value still comes from tshark.

Known tshark 4.0 gaps, each skipped where it applies and counted (see ``GAPS``):

* it does not display the DSS checksum: its DSS dissector adds the checksum field only when 4 or
  more octets follow the data-level length, so a 2-octet checksum is never shown;
* it has no field for the reserved bits of DSS (the low nibble of the subtype octet),
  REMOVE_ADDR (the same nibble) and ADD_ADDR v1 (the 3 bits beside E);
* it does not know subtype 0xf (MP_EXPERIMENTAL) nor unassigned subtypes: it shows the subtype
  and nothing else (no low nibble, no payload);
* it raises nothing on bad lengths: an MPTCP option we refuse (``MalformedOption``) is shown with
  whatever fields fit, so only kind, length and subtype are compared for it.

tshark's generated analysis fields (``mptcp.ack``, ``mptcp.dss.dsn``, ``mptcp.expected_token``...)
are not option fields and are not compared; the raw DSN and data ACK fields are
(``tcp.options.mptcp.rawdataseqno``, ``rawdataack``), so the relative-sequence preference plays no part.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from mptcpspec.codec.options import (
    KIND_MPTCP,
    AddAddr,
    AddAddrV0,
    Dss,
    DssFlags,
    MalformedOption,
    MpCapable,
    MpCapableFlags,
    MpExperimental,
    MpFail,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MpTcpRst,
    MptcpUnknown,
    RemoveAddr,
    decode_tcp_options,
)
from tests.conftest import CAPTURES, corpus_params, need_tshark, unavailable, walk_options

P = "tcp.options.mptcp."

GAPS = {
    "dss-checksum": "tshark 4.0 does not display the DSS checksum",
    "dss-reserved": "tshark 4.0 has no field for the DSS reserved nibble",
    "remove-addr-reserved": "tshark 4.0 has no field for the REMOVE_ADDR reserved nibble",
    "add-addr-reserved": "tshark 4.0 has no field for the ADD_ADDR v1 reserved bits",
    "subtype-0xf": "tshark 4.0 does not know subtype 0xf: low nibble and payload not shown",
    "unknown-subtype": "tshark 4.0 shows only the subtype of an unassigned subtype",
    "bad-length": "tshark 4.0 raises nothing on a malformed MPTCP option: only kind, length, subtype compared",
}

# Fields tshark shows for some options but that are analysis or counts rather than option octets:
# mptcp.rm_addr.count is kept (it is the number of address IDs, checked against ours).
_COMPARED_PREFIXES = ("tcp.option_kind", "tcp.option_len", P, "mptcp.rm_addr.count")


# --------------------------------------------------------------------------- our decode, in tshark's terms


def _flag(value: int, bit: int) -> int:
    return 1 if value & bit else 0


def tshark_view(opt, octets: bytes) -> tuple[dict[str, list], list[str]]:
    """The fields tshark 4.0 displays for this option, valued from our decode; and the gaps that apply.

    Which fields appear for which option layout follows tshark 4.0's dissector; every value is ours.
    """
    e: dict[str, list] = defaultdict(list)
    gaps: list[str] = []
    e["tcp.option_kind"].append(KIND_MPTCP)
    e["tcp.option_len"].append(len(octets))
    if isinstance(opt, MalformedOption):
        if len(octets) >= 3:
            e[P + "subtype"].append(octets[2] >> 4)
        gaps.append("bad-length")
        return e, gaps

    def add(name, value):
        e[P + name].append(value)

    add("subtype", opt.subtype if isinstance(opt, MptcpUnknown) else int(opt.SUBTYPE))
    if isinstance(opt, MpCapable):
        f = int(opt.flags)
        add("version", opt.version)
        add("flags", f)
        add("checksumreq.flags", _flag(f, MpCapableFlags.CHECKSUM_REQUIRED))
        add("extensibility.flag", _flag(f, MpCapableFlags.EXTENSIBILITY))
        if opt.version == 1:  # tshark 4.0: the v1 flag layout for version 1, the v0 one otherwise
            add("nomoresubflows.flag", _flag(f, MpCapableFlags.NO_SOURCE_ADDR))
            add("sha256.flag", _flag(f, MpCapableFlags.HMAC_SHA))
            add("reserved.flag", (f & 0x1E) >> 1)  # D E F G
        else:
            add("sha1.flag", _flag(f, MpCapableFlags.HMAC_SHA))
            add("reserved.flag", (f & 0x3E) >> 1)  # C D E F G
        for name, value in (
            ("sendkey", opt.sender_key),
            ("recvkey", opt.receiver_key),
            ("datalvllen", opt.data_level_length),
            ("checksum", opt.checksum),
        ):
            if value is not None:
                add(name, value)
    elif isinstance(opt, (MpJoinSyn, MpJoinSynAck)):
        add("flags", 0x10 | opt.reserved << 1 | int(opt.backup))  # the whole subtype octet
        add("backup.flag", int(opt.backup))
        add("addrid", opt.address_id)
        if isinstance(opt, MpJoinSyn):
            add("recvtok", opt.token)
        else:
            add("sendtrunchmac", opt.truncated_hmac)
        add("sendrand", opt.nonce)
    elif isinstance(opt, MpJoinAck):
        add("reserved", opt.reserved)
        add("sendhmac", opt.hmac)
    elif isinstance(opt, Dss):
        f = int(opt.flags)  # the whole flags octet, reserved bits included
        add("flags", f)
        add("datafin.flag", _flag(f, DssFlags.DATA_FIN))
        add("dseqn8.flag", _flag(f, DssFlags.DSN_8))
        add("dseqnpresent.flag", _flag(f, DssFlags.MAPPING_PRESENT))
        add("dataack8.flag", _flag(f, DssFlags.DATA_ACK_8))
        add("dataackpresent.flag", _flag(f, DssFlags.DATA_ACK_PRESENT))
        if opt.data_ack is not None:
            add("rawdataack", opt.data_ack)
        if opt.dsn is not None:
            add("rawdataseqno", opt.dsn)
            add("subflowseqno", opt.ssn)
            add("datalvllen", opt.data_level_length)
        if opt.checksum is not None:
            add("checksum", opt.checksum)  # dropped as gap "dss-checksum" when tshark does not show it
        gaps.append("dss-reserved")
    elif isinstance(opt, AddAddrV0):
        add("ipver", opt.ip_version)
        add("addrid", opt.address_id)
        add("ipv4" if opt.address.version == 4 else "ipv6", opt.address)
        if opt.port is not None:
            add("port", opt.port)
    elif isinstance(opt, AddAddr):
        add("echo", int(opt.echo))
        add("addrid", opt.address_id)
        add("ipv4" if opt.address.version == 4 else "ipv6", opt.address)
        if opt.port is not None:
            add("port", opt.port)
        if opt.hmac is not None:
            add("addaddrtrunchmac", opt.hmac)
        gaps.append("add-addr-reserved")
    elif isinstance(opt, RemoveAddr):
        e["mptcp.rm_addr.count"].append(len(opt.address_ids))
        for i in opt.address_ids:
            add("addrid", i)
        gaps.append("remove-addr-reserved")
    elif isinstance(opt, MpPrio):
        add("flags", 0x50 | opt.reserved << 1 | int(opt.backup))  # the whole subtype octet
        add("backup.flag", int(opt.backup))
        if opt.address_id is not None:
            add("addrid", opt.address_id)
    elif isinstance(opt, MpFail):
        add("reserved", opt.reserved)
        add("rawdataseqno", opt.dsn)
    elif isinstance(opt, MpFastclose):
        add("reserved", opt.reserved)
        add("recvkey", opt.receiver_key)
    elif isinstance(opt, MpTcpRst):
        bits = opt.flag_u << 3 | opt.flag_v << 2 | opt.flag_w << 1 | int(opt.transient)
        add("flags", 0x80 | bits)  # the whole subtype octet
        add("flag_U.flag", int(opt.flag_u))
        add("flag_V.flag", int(opt.flag_v))
        add("flag_W.flag", int(opt.flag_w))
        add("flag_T.flag", int(opt.transient))
        add("rst_reason", int(opt.reason))
    elif isinstance(opt, MpExperimental):
        gaps.append("subtype-0xf")
    elif isinstance(opt, MptcpUnknown):
        gaps.append("unknown-subtype")
    else:
        raise AssertionError(f"no tshark view for {opt!r}")
    return e, gaps


def _tshark_value(name: str, show: str):
    """A displayed tshark value as a Python value of the kind our decode uses."""
    if name in (P + "ipv4", P + "ipv6"):
        return ipaddress.ip_address(show)
    if name == P + "sendhmac":
        return bytes.fromhex(show.replace(":", ""))
    return int(show, 0)


# --------------------------------------------------------------------------- tshark's dissection


def _run_tshark(path: Path, config_dir: Path) -> dict[int, list[dict]]:
    """Frame number -> the MPTCP options tshark shows, each {offset, size, fields: [(name, show)]}."""
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)}  # no personal preferences
    proc = subprocess.run(
        [need_tshark(), "-n", "-r", str(path), "-T", "pdml"], capture_output=True, env=env, check=False
    )
    assert proc.returncode == 0, f"tshark failed on {path.name}: {proc.stderr.decode(errors='replace')}"
    frames: dict[int, list[dict]] = {}
    root = ET.fromstring(proc.stdout)
    for number, packet in enumerate(root.iter("packet"), 1):
        tcp = next((p for p in packet.findall("proto") if p.get("name") == "tcp"), None)
        if tcp is None:
            continue
        area = next((f for f in tcp.iter("field") if f.get("name") == "tcp.options"), None)
        opts = []
        for proto in tcp.iter("proto"):
            if proto.get("name") != "mptcp":
                continue
            assert area is not None, f"{path.name} #{number}: an MPTCP option outside tcp.options"
            fields = [
                (f.get("name"), f.get("show"))
                for f in proto.iter("field")
                if f.get("name", "").startswith(_COMPARED_PREFIXES)
            ]
            opts.append(
                {
                    "offset": int(proto.get("pos")) - int(area.get("pos")),
                    "size": int(proto.get("size")),
                    "fields": fields,
                }
            )
        if opts:
            frames[number] = opts
    return frames


# --------------------------------------------------------------------------- our dissection


def _our_mptcp(path: Path) -> dict[int, list[tuple[int, bytes, object]]]:
    """Frame number -> our MPTCP options, each (offset in the options area, octets, decoded value)."""
    from mptcpspec.capture.packets import decode_packet
    from mptcpspec.capture.pcap import read_records

    frames = {}
    for number, rec in enumerate(read_records(path), 1):
        pkt = decode_packet(rec)
        if pkt is None or not pkt.options:
            continue
        decoded = decode_tcp_options(pkt.options, strict=False)
        spans = list(walk_options(pkt.options))
        assert len(spans) == len(decoded.options), (path.name, number, pkt.options.hex())
        mine = []
        for opt, (off, ln, _) in zip(decoded.options, spans):
            kind = opt.kind if isinstance(opt, MalformedOption) else opt.KIND
            if kind == KIND_MPTCP:
                mine.append((off, pkt.options[off : off + ln], opt))
        if mine:
            frames[number] = mine
    return frames


# --------------------------------------------------------------------------- the synthetic capture

# One packet per line: TCP flags, then the options area (EOL-padded to a multiple of 4 on writing).
# Inputs only; nothing here is an expected value.
SYNTHETIC = (
    (0x02, "1e0c0081 9c9eabd1e46a33b2"),  # MP_CAPABLE v0 SYN, A H
    (0x10, "1e1400ff 9c9eabd1e46a33b2 967d2770b6960552"),  # v0 third ACK, every flag
    (0x02, "1e040101"),  # v1 SYN
    (0x12, "1e0c0121 29a6c86981ad933c"),  # v1 SYN/ACK, C H
    (0x10, "1e14015f 1fdb5df328bc3def 29a6c86981ad933c"),  # v1 ACK, B and D-G set
    (0x18, "1e160101 1fdb5df328bc3def 29a6c86981ad933c 2000 0101"),  # v1 first data
    (0x18, "1e180181 1fdb5df328bc3def 29a6c86981ad933c 0010 beef"),  # v1 first data, checksum
    (0x02, "1e0c1103 e47f0142 1b665a18"),  # MP_JOIN SYN, backup
    (0x12, "1e10100a 5ab680c7884af03d 33abe9d5"),  # MP_JOIN SYN/ACK
    (0x10, "1e181000 cb7b87f5e5f0502f43b535fb70ef6607df2e6c7a"),  # MP_JOIN ACK
    (0x10, "1e082001 d52abeca"),  # DSS 4-octet ack
    (0x10, "1e0c2003 c7e0f4fc1b9f4a4e"),  # DSS 8-octet ack
    (0x18, "1e142005 d52abeca d1b97490 00000001 0029 082f"),  # DSS 4-octet, checksum
    (0x18, "1e1a200f c7e0f4fc1b9f4a4e a2e62b7ca4b56c2e 00000011 0010 0101"),  # DSS 8-octet, no checksum
    (0x11, "1e1c201f c7e0f4fc1b9f4a4e a2e62b7ca4b56c2e 00000000 0001 abcd"),  # DATA_FIN, checksum
    (0x10, "1e042010"),  # DATA_FIN alone
    (0x10, "1e0420e0"),  # reserved flag bits
    (0x10, "1e083405 0a010202 1e082001 d52abeca"),  # ADD_ADDR v0 IPv4, then DSS
    (0x10, "1e0a3405 0a010202 1f90"),  # ADD_ADDR v0 IPv4 port
    (0x10, "1e143606 20010db8000000000000000000000002"),  # ADD_ADDR v0 IPv6
    (0x10, "1e163606 20010db8000000000000000000000002 01bb"),  # ADD_ADDR v0 IPv6 port
    (0x10, "1e103001 c0a888e1 669928744366716c"),  # ADD_ADDR v1 IPv4 HMAC
    (0x10, "1e123001 c0a888e1 2710 669928744366716c"),  # ADD_ADDR v1 IPv4 port HMAC
    (0x10, "1e083101 0a000201"),  # ADD_ADDR v1 echo
    (0x10, "1e0a3101 0a000201 2710"),  # ADD_ADDR v1 echo port
    (0x10, "1e1c3009 fe800000000000000000000000000009 f8295862f645df19"),  # v1 IPv6 HMAC
    (0x10, "1e1e3009 fe800000000000000000000000000009 c350 f8295862f645df19"),  # v1 IPv6 port HMAC
    (0x10, "1e143109 fe800000000000000000000000000009"),  # v1 IPv6 echo
    (0x10, "1e044002"),  # REMOVE_ADDR one ID
    (0x10, "1e0740010203ff"),  # REMOVE_ADDR four IDs
    (0x10, "1e035001"),  # MP_PRIO v1, backup
    (0x10, "1e035000"),  # MP_PRIO v1, not backup
    (0x10, "1e045103"),  # MP_PRIO v0 with an address ID
    (0x10, "1e0c6000 d1b9749000000001"),  # MP_FAIL
    (0x10, "1e0c7000 d005b1ab34bad344"),  # MP_FASTCLOSE
    (0x14, "1e048000 1e048101"),  # MP_TCPRST, two in a row
    (0x14, "1e048e06"),  # MP_TCPRST U V W
    (0x14, "1e04850a"),  # MP_TCPRST V T, unassigned reason
    (0x10, "1e08f3 0102030405"),  # subtype 0xf
    (0x10, "1e04a5ff"),  # unassigned subtype 0xa
    (0x10, "1e0320"),  # DSS of length 3 (malformed)
    (0x10, "1e0d0081 0102030405060708 00"),  # MP_CAPABLE of length 13
)


def _ipv4_checksum(header: bytes) -> int:
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def write_synthetic(path: Path, lines=SYNTHETIC) -> None:
    """A little-endian libpcap file, Ethernet, one IPv4/TCP packet per line (TCP flags, options in hex)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n, (flags, hexopts) in enumerate(lines):
        opts = bytes.fromhex(hexopts.replace(" ", ""))
        opts += bytes(-len(opts) % 4)
        assert len(opts) <= 40
        tcp = (
            struct.pack("!HHIIBBHHH", 40000 + n, 5201, 1000 + n, 2000, (5 + len(opts) // 4) << 4, flags, 1000, 0, 0)
            + opts
        )
        ip = bytearray(
            struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(tcp),
                n,
                0,
                64,
                6,
                0,
                bytes([198, 51, 100, 1]),
                bytes([198, 51, 100, 2]),
            )
        )
        ip[10:12] = struct.pack("!H", _ipv4_checksum(bytes(ip)))
        frame = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00" + bytes(ip) + tcp
        out.append(struct.pack("<IIII", 1700000000 + n, 0, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


# --------------------------------------------------------------------------- parametrisation


def _data_params() -> list:
    files = list(CAPTURES)
    if not files:
        return [pytest.param("data", None, id="data-absent")]
    return [pytest.param("data", p, id=f"data-{p.stem}") for p in files]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wireshark-config")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.pcap"
    write_synthetic(path)
    return path


def compare_capture(path: Path, config_dir: Path) -> tuple[int, Counter, Counter]:
    """Compare every MPTCP option of a capture; return (options compared, fields compared, gaps)."""
    theirs = _run_tshark(path, config_dir)
    ours = _our_mptcp(path)
    assert set(ours) == set(theirs), (
        f"{path.name}: frames with MPTCP options differ: only ours {sorted(set(ours) - set(theirs))}, "
        f"only tshark's {sorted(set(theirs) - set(ours))}"
    )
    options = 0
    fields: Counter = Counter()
    gaps: Counter = Counter()
    problems = []
    for number in sorted(ours):
        t_opts = {o["offset"]: o for o in theirs[number]}
        assert len(t_opts) == len(ours[number]), (path.name, number, sorted(t_opts))
        for off, octets, opt in ours[number]:
            where = f"{path.name} #{number} offset {off} [{octets.hex()}] {type(opt).__name__}"
            t = t_opts.get(off)
            assert t is not None, f"{where}: tshark shows no MPTCP option there (it has {sorted(t_opts)})"
            assert t["size"] == len(octets), f"{where}: tshark's option is {t['size']} octets"
            actual: dict[str, list] = defaultdict(list)
            for name, show in t["fields"]:
                actual[name].append(_tshark_value(name, show))
            expected, opt_gaps = tshark_view(opt, octets)
            if isinstance(opt, MalformedOption):
                # Gap: tshark raises nothing on a bad length; compare what identifies the option only.
                actual = {k: v for k, v in actual.items() if k in expected}
            if isinstance(opt, Dss) and P + "checksum" in expected and P + "checksum" not in actual:
                del expected[P + "checksum"]
                opt_gaps.append("dss-checksum")
            for gap in opt_gaps:
                gaps[gap] += 1
            for name in sorted(set(expected) | set(actual)):
                if expected.get(name) != actual.get(name):
                    problems.append(f"{where}: {name}: ours {expected.get(name)}, tshark {actual.get(name)}")
                else:
                    fields[name] += len(actual[name])
            options += 1
    assert not problems, f"{len(problems)} disagreement(s) with tshark:\n" + "\n".join(problems[:40])
    return options, fields, gaps


def _report(label: str, options: int, fields: Counter, gaps: Counter) -> None:
    print(
        f"\n{label}: {options} MPTCP option(s), {sum(fields.values())} field value(s) equal to tshark's; "
        f"fields: {dict(sorted(fields.items()))}; gaps skipped: {dict(sorted(gaps.items()))}"
    )


@pytest.mark.parametrize("source, pcap", corpus_params("corpus") + _data_params())
def test_capture_against_tshark(source: str, pcap: Path | None, config_dir: Path) -> None:
    need_tshark()
    if pcap is None:
        unavailable("there is no kernel capture in tests/data/*.pcap")
    options, fields, gaps = compare_capture(pcap, config_dir)
    _report(f"{source}/{pcap.name}", options, fields, gaps)
    assert options > 0, f"{pcap.name}: no MPTCP option compared"


def test_synthetic_capture_against_tshark(synthetic: Path, config_dir: Path) -> None:
    """Every MPTCP option field tshark 4.0 has is compared at least once on the synthetic capture."""
    tshark = need_tshark()
    options, fields, gaps = compare_capture(synthetic, config_dir)
    _report("synthetic", options, fields, gaps)
    assert options == sum(len(_walk_mptcp(h)) for _, h in SYNTHETIC)

    listing = subprocess.run(
        [tshark, "-G", "fields"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)},
    ).stdout
    known = {
        cols[2]
        for cols in (line.split("\t") for line in listing.splitlines())
        if len(cols) > 2 and cols[0] == "F" and cols[2].startswith(P)
    }
    assert known, "tshark -G fields lists no tcp.options.mptcp.* field"
    never = sorted(known - set(fields))
    assert not never, f"tshark fields never compared: {never}"
    print(f"all {len(known)} tcp.options.mptcp.* fields of tshark compared at least once")


def _walk_mptcp(hexopts: str) -> list:
    area = bytes.fromhex(hexopts.replace(" ", ""))
    return [off for off, _, _ in walk_options(area) if area[off] == KIND_MPTCP]
