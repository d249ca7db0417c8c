"""Every MPTCP option of tcpdump's own MPTCP test captures, checked against what tcpdump printed.

The captures and their expected output come from the tcpdump project's test suite (see the
README of the external corpus, found through ``MPTCPSPEC_CORPUS``): each ``.out`` line is what
``tcpdump -n -r FILE`` prints for one packet.  For every TCP packet we decode the options area
with ``decode_tcp_options(..., strict=False)``, render each decoded option the way tcpdump's
``print-tcp.c`` / ``print-mptcp.c`` (tcpdump commit 39b50f76672b, the one the corpus was taken
from) print it, and require the rendering to equal tcpdump's text, option by option.  The
renderer only formats our values: every number, key, address and flag in the comparison comes
from our decoder, every expected string from tcpdump's file.  Each well-formed option must also
re-encode to its original octets.

``mptcp-dss-oobr`` carries a DSS option of length 3 (out-of-bounds reads in old decoders): it must
come back as a ``MalformedOption`` (``DecodeError`` in strict mode), never as a crash.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mptcpspec.codec.options import (
    KIND_MPTCP,
    AddAddr,
    AddAddrV0,
    Dss,
    DssFlags,
    Eol,
    MalformedOption,
    MpCapable,
    MpExperimental,
    MpFail,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MpTcpRst,
    MptcpUnknown,
    Mss,
    Nop,
    RemoveAddr,
    SackPermitted,
    Timestamps,
    WindowScale,
    decode_option,
    decode_tcp_options,
    encode_option,
    encode_tcp_options,
)
from mptcpspec.errors import DecodeError
from tests.conftest import corpus_params, walk_options

# The captures the corpus README lists; each must be there when the corpus is.
EXPECTED = ("mptcp-aa-echo", "mptcp-aa-v1", "mptcp-dss-oobr", "mptcp-fclose", "mptcp-tcprst", "mptcp-v0", "mptcp-v1")
MALFORMED = {"mptcp-dss-oobr"}  # captures whose MPTCP option must be refused


# --------------------------------------------------------------------------- tcpdump's expected text

_PACKET_LINE = re.compile(r"^\s*(\d+)\s+\d{4}-\d\d-\d\d \d")


def _out_lines(path: Path) -> dict[int, str]:
    """Packet number -> tcpdump's whole text for it (``-v`` continuation lines joined)."""
    lines: dict[int, str] = {}
    last = None
    for raw in path.read_text().splitlines():
        m = _PACKET_LINE.match(raw)
        if m:
            last = int(m.group(1))
            lines[last] = raw.strip()
        elif raw.strip():
            assert last is not None, f"{path.name}: continuation line before any packet: {raw!r}"
            lines[last] += " " + raw.strip()
    return lines


def _split_options(text: str) -> list[str] | None:
    """The items of tcpdump's ``options [...]`` list, split at top-level commas; None if there is none."""
    start = text.find("options [")
    if start < 0:
        return None
    i = start + len("options [")
    depth = 0
    items, cur = [], []
    while i < len(text):
        c = text[i]
        if c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0:
                items.append("".join(cur))
                return items
            depth -= 1
        elif c == "," and depth == 0:
            items.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    raise AssertionError(f"unterminated options list in {text!r}")


# --------------------------------------------------------------------------- our values, tcpdump's way
# Tables and formats as in tcpdump's print-mptcp.c and print-tcp.c.

TH_SYN, TH_ACK = 0x02, 0x10
_MPTCP_NAMES = ("capable", "join", "dss", "add-addr", "rem-addr", "prio", "fail", "fast-close", "tcprst", "unknown")
_CAPABLE_FLAGS = (
    (0x80, "A"),
    (0x40, "B"),
    (0x20, "C"),
    (0x10, "D"),
    (0x08, "E"),
    (0x04, "F"),
    (0x02, "G"),
    (0x01, "H"),
)
_TCPRST_FLAGS = ((0x08, "U"), (0x04, "V"), (0x02, "W"), (0x01, "T"))
_TCPRST_REASONS = {
    0x06: "Middlebox interference",
    0x05: "Unacceptable performance",
    0x04: "Too much outstanding data",
    0x03: "Administratively prohibited",
    0x02: "Lack of resources",
    0x01: "MPTCP-specific error",
    0x00: "Unspecified error",
}
_ADD_ADDR_SUBECHO = {0x6: "v0-ip6", 0x4: "v0-ip4", 0x1: "v1-echo", 0x0: "v1"}


def _bittok(table, value: int) -> str:
    """tcpdump's ``bittok2str_nosep``: the names of the set bits, in table order, or "none"."""
    return "".join(name for bit, name in table if value & bit == bit) or "none"


def _mptcp_body(opt, length: int, tcp_flags: int) -> str | None:
    """What tcpdump prints after the option's name; None where its printer returns 0 ("[bad opt]")."""
    if isinstance(opt, MpCapable):
        if not (
            (length in (12, 4) and tcp_flags & TH_SYN)
            or (length in (20, 22, 24) and tcp_flags & (TH_SYN | TH_ACK) == TH_ACK)
        ):
            return None
        if opt.version not in (0, 1):
            return f" Unknown Version ({opt.version})"
        flags = int(opt.flags)
        csum = flags & 0x80
        s = f" v{opt.version} flags [{_bittok(_CAPABLE_FLAGS, flags)}]"
        if csum:
            s += " csum"
        if opt.sender_key is not None:
            s += f" {{{opt.sender_key:#x}"
            if opt.receiver_key is not None:
                s += f",{opt.receiver_key:#x}"
            if opt.data_level_length is not None and (opt.checksum is not None or not csum):
                s += f",data_len={opt.data_level_length}"
            s += "}"
        return s
    if isinstance(opt, (MpJoinSyn, MpJoinSynAck, MpJoinAck)):
        if not (
            (length == 12 and tcp_flags & TH_SYN)
            or (length == 16 and tcp_flags & (TH_SYN | TH_ACK) == (TH_SYN | TH_ACK))
            or (length == 24 and tcp_flags & TH_ACK)
        ):
            return None
        if isinstance(opt, MpJoinAck):
            return " hmac 0x" + opt.hmac.hex()
        s = (" backup" if opt.backup else "") + f" id {opt.address_id}"
        if isinstance(opt, MpJoinSyn):
            return s + f" token {opt.token:#x} nonce {opt.nonce:#x}"
        return s + f" hmac {opt.truncated_hmac:#x} nonce {opt.nonce:#x}"
    if isinstance(opt, Dss):
        if length < 4 or tcp_flags & TH_SYN:
            return None
        s = " fin" if opt.flags & DssFlags.DATA_FIN else ""
        if opt.data_ack is not None:
            s += f" ack {opt.data_ack}"
        if opt.dsn is not None:
            s += f" seq {opt.dsn} subseq {opt.ssn} len {opt.data_level_length}"
            if opt.checksum is not None:
                s += f" csum {opt.checksum:#x}"
        return s
    if isinstance(opt, (AddAddrV0, AddAddr)):
        if length not in (8, 10, 16, 18, 20, 22, 28, 30):
            return None
        nibble = opt.ip_version if isinstance(opt, AddAddrV0) else (opt.reserved << 1) | int(opt.echo)
        s = f" {_ADD_ADDR_SUBECHO.get(nibble, '[bad version/echo]')} id {opt.address_id} {opt.address}"
        if opt.port is not None:
            s += f":{opt.port}"
        if isinstance(opt, AddAddr) and opt.hmac is not None:
            s += f" hmac {opt.hmac:#x}"
        return s
    if isinstance(opt, RemoveAddr):
        if length < 4:
            return None
        return " id" + "".join(f" {i}" for i in opt.address_ids)
    if isinstance(opt, MpPrio):
        if length not in (3, 4):
            return None
        s = " backup" if opt.backup else " non-backup"
        if opt.address_id is not None:
            s += f" id {opt.address_id}"
        return s
    if isinstance(opt, MpFail):
        return None if length != 12 else f" seq {opt.dsn}"
    if isinstance(opt, MpFastclose):
        return None if length != 12 else f" key {opt.receiver_key:#x}"
    if isinstance(opt, MpTcpRst):
        if length != 4:
            return None
        bits = opt.flag_u << 3 | opt.flag_v << 2 | opt.flag_w << 1 | int(opt.transient)
        reason = int(opt.reason)
        text = _TCPRST_REASONS.get(reason, f"unknown (0x{reason:02x})")
        return f" flags [{_bittok(_TCPRST_FLAGS, bits)}] reason {text}"
    if isinstance(opt, (MpExperimental, MptcpUnknown)):
        return ""  # tcpdump's dummy_print for every subtype above MP_TCPRST
    if isinstance(opt, MalformedOption):
        return None  # we refused it: tcpdump must have refused it too
    raise AssertionError(f"no tcpdump rendering for {opt!r}")


def _subtype(opt, octets: bytes) -> int:
    if isinstance(opt, MalformedOption):
        return octets[2] >> 4
    if isinstance(opt, MptcpUnknown):
        return opt.subtype
    return int(opt.SUBTYPE)


def render_mptcp(opt, octets: bytes, tcp_flags: int) -> str:
    """One MPTCP option as tcpdump's ``mptcp_print`` prints it (without the separating comma)."""
    length = len(octets)
    head = f"mptcp {length}"
    if length < 3:
        return head + "[bad opt]"
    name = _MPTCP_NAMES[min(_subtype(opt, octets), len(_MPTCP_NAMES) - 1)]
    body = _mptcp_body(opt, length, tcp_flags)
    return f"{head} {name}" + ("[bad opt]" if body is None else body)


def render_tcp(opt) -> str:
    if isinstance(opt, Nop):
        return "nop"
    if isinstance(opt, Eol):
        return "eol"
    if isinstance(opt, Mss):
        return f"mss {opt.mss}"
    if isinstance(opt, WindowScale):
        return f"wscale {opt.shift}"
    if isinstance(opt, SackPermitted):
        return "sackOK"
    if isinstance(opt, Timestamps):
        return f"TS val {opt.tsval} ecr {opt.tsecr}"
    raise AssertionError(f"no tcpdump rendering for {opt!r} (not in the corpus so far)")


def render_area(area: bytes, decoded, tcp_flags: int) -> list[str]:
    """Our decoded options area as tcpdump's ``options [...]`` items, stopping where tcpdump stops."""
    spans = list(walk_options(area))
    assert len(spans) == len(decoded.options), (area.hex(), decoded)
    items = []
    for opt, (off, ln, usable) in zip(decoded.options, spans):
        octets = area[off : off + ln]
        if not usable:
            items.append("[bad opt]")  # print-tcp.c: length < 2 or past the header
            break
        kind = opt.kind if isinstance(opt, MalformedOption) else opt.KIND
        item = render_mptcp(opt, octets, tcp_flags) if kind == KIND_MPTCP else render_tcp(opt)
        items.append(item)
        if item.endswith("[bad opt]") or isinstance(opt, Eol):
            break
    return items


# --------------------------------------------------------------------------- the test


def _packets(path: Path):
    from mptcpspec.capture.packets import decode_packet
    from mptcpspec.capture.pcap import read_records

    for number, rec in enumerate(read_records(path), 1):
        yield number, decode_packet(rec)


@pytest.mark.parametrize("pcap", corpus_params(prefix=""))
def test_every_mptcp_option_as_tcpdump_prints_it(pcap: Path | None) -> None:
    name = pcap.stem
    out = pcap.with_suffix(".out")
    assert out.is_file(), f"{out.name} missing beside {pcap.name}"
    expected = _out_lines(out)

    mptcp_compared = 0
    malformed = 0
    with_options = set()
    for number, pkt in _packets(pcap):
        assert number in expected, f"{name}: packet {number} has no line in {out.name}"
        if pkt is None or not pkt.options:
            continue
        with_options.add(number)
        theirs = _split_options(expected[number])
        assert theirs is not None, f"{name} #{number}: tcpdump printed no options: {expected[number]}"
        area = decode_tcp_options(pkt.options, strict=False)
        ours = render_area(pkt.options, area, int(pkt.flags))
        ctx = f"{name} #{number} options {pkt.options.hex()}"
        assert len(ours) == len(theirs), f"{ctx}:\n ours   {ours}\n tcpdump {theirs}"
        for mine, their in zip(ours, theirs):
            assert mine == their, f"{ctx}:\n ours    {mine!r}\n tcpdump {their!r}"
            if their.startswith("mptcp"):
                mptcp_compared += 1

        # Byte-for-byte round trip of every well-formed option, and of the whole area.
        for opt, (off, ln, _) in zip(area.options, walk_options(pkt.options)):
            if isinstance(opt, MalformedOption):
                malformed += 1
                assert opt.kind == KIND_MPTCP and isinstance(opt.error, DecodeError), (ctx, opt)
                continue
            assert encode_option(opt) == pkt.options[off : off + ln], f"{ctx}: {opt!r} re-encodes differently"
        assert encode_tcp_options(area) == pkt.options, ctx

    lines_with_options = {n for n, text in expected.items() if "options [" in text}
    assert with_options == lines_with_options, (
        f"{name}: packets with TCP options differ: only ours {sorted(with_options - lines_with_options)}, "
        f"only tcpdump's {sorted(lines_with_options - with_options)}"
    )
    assert mptcp_compared > 0, f"{name}: no MPTCP option compared"
    if name in MALFORMED:
        assert malformed > 0, f"{name}: the malformed option was accepted"
    else:
        assert malformed == 0, f"{name}: {malformed} option(s) refused"
    print(f"{name}: {mptcp_compared} MPTCP option(s) equal to tcpdump's, {len(with_options)} packet(s) with options")


def test_corpus_holds_the_listed_captures(tcpdump_corpus: Path) -> None:
    corpus = tcpdump_corpus
    missing = [n for n in EXPECTED if not (corpus / f"{n}.pcap").is_file() or not (corpus / f"{n}.out").is_file()]
    assert not missing, f"captures missing from the corpus: {missing}"


def test_dss_oobr_refused_cleanly(tcpdump_corpus: Path) -> None:
    """The length-3 DSS is refused with a DecodeError naming it, in both modes, and nothing after it is lost."""
    corpus = tcpdump_corpus
    pkts = [p for _, p in _packets(corpus / "mptcp-dss-oobr.pcap") if p is not None and p.options]
    assert len(pkts) == 1
    area_octets = pkts[0].options
    spans = list(walk_options(area_octets))
    off, ln, usable = next(s for s in spans if area_octets[s[0]] == KIND_MPTCP)
    assert usable and ln == 3, "the capture's DSS option is no longer the length-3 one"

    lenient = decode_tcp_options(area_octets, strict=False)
    bad = [o for o in lenient.options if isinstance(o, MalformedOption)]
    assert len(bad) == 1
    assert bad[0].kind == KIND_MPTCP and bad[0].offset == off and bad[0].data == area_octets[off : off + ln]
    assert isinstance(bad[0].error, DecodeError)
    # Decoding goes on after it (the length octet is usable), and the area re-encodes unchanged.
    assert len(lenient.options) == len(spans)
    assert encode_tcp_options(lenient) == area_octets

    with pytest.raises(DecodeError) as strict:
        decode_tcp_options(area_octets)
    assert strict.value.offset >= off
    with pytest.raises(DecodeError):
        decode_option(area_octets[off : off + ln])
