"""The exact speed-ups of the Python path change no output: each against the code it replaced.

* pcapng read in runs of Enhanced Packet Blocks (:mod:`mptcpspec.capture.pcap`) against the reader
  of before, block by block (``tests/pcap_reference.py``): the same frames (timestamps, link types,
  octets, lengths, interfaces, truncation), problems, counts and errors, on every capture of
  ``tests/data`` and of the corpus converted to pcapng by editcap (with nanosecond timestamps, a
  snapshot length, comments and secrets, another link type, in big-endian order, two sections one
  after the other), merged by mergecap from several link types, compressed (gzip, zstd, lz4), read
  from a stream that hands over a few octets at a time, cut at every offset, and fuzzed.
* Linux cooked v2 decoded inline (:func:`mptcpspec.capture.packets.decode_frame`) against the
  general path it took before (decode_frame without the branch): the same Packet, every field, or
  the same error, on every frame of every capture, of every capture turned into Linux cooked v2
  (checked with tshark), and on random frames.
* A handshake machine not fed again a signal that changed nothing
  (:meth:`mptcpspec.analysis.handshake.Handshakes.handshake`) against every signal fed
  (``SKIP_QUIET_SIGNALS`` False): every PacketInfo field, the machines' states, connection
  summaries, counts and experts, on every capture; and the observer's property the skip rests on,
  on random signals.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import inspect
import io
import ipaddress
import re
import struct
import subprocess
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path

import lz4.frame
import pytest
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mptcpspec.analysis import Analyzer, PacketInfo, handshake
from mptcpspec.capture import packets
from mptcpspec.capture.packets import Packet, TcpFlags
from mptcpspec.capture.pcap import CaptureReader
from mptcpspec.codec.crypto import join_ack_hmac, join_synack_hmac, key_token
from mptcpspec.codec.generated.establishment import EstablishmentMachine
from mptcpspec.codec.generated.join import JoinMachine
from mptcpspec.codec.options import (
    Dss,
    DssFlags,
    MpCapable,
    MpCapableFlags,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    encode_option,
)
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.errors import DecodeError
from mptcpspec.fsm.observer import Observer
from tests.conftest import DATA, corpus_params, need_wireshark
from tests.pcap_reference import BlockByBlockReader
from tests.test_pcap import ip4_tcp, ip6_tcp

KERNEL = sorted(DATA.rglob("*.pcap")) + sorted(DATA.rglob("*.pcapng"))
CAPTURES = [pytest.param(p, id=str(p.relative_to(DATA))) for p in KERNEL] + corpus_params()

# --------------------------------------------------------------------------- pcapng: the outcome of a read


class Trickle:
    """A binary stream that hands over at most ``step`` octets per read: records and blocks then
    cross the reader's buffer at every place."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0
        self.name = f"<trickle {step}>"

    def read1(self, n: int = -1) -> bytes:
        k = self.step if n < 0 else min(n, self.step)
        out = self.data[self.at : self.at + k]
        self.at += len(out)
        return out

    read = read1


Source = Callable[[], object]


def outcome(cls: type[CaptureReader], source: Source) -> tuple:
    """Everything a reader tells of a file: its frames, then the error that stopped it (type and
    message), its problems, counts, link types, format, and the offset it reached."""
    reader = cls(source())  # type: ignore[arg-type]
    frames: list = []
    error = None
    try:
        for batch in reader.batches():
            assert batch, "an empty batch"
            frames.extend(batch)
    except Exception as e:  # noqa: BLE001 - any error, a crash too, must be the same
        error = (type(e).__name__, str(e))
    return (
        frames,
        error,
        reader.problems,
        reader.records,
        reader.skipped_blocks,
        reader.linktypes,
        reader.format,
        reader.position,
    )


def same_as_before(source: Source) -> tuple:
    """The outcome of the batched reader, which must be the block-by-block reader's."""
    new = outcome(CaptureReader, source)
    old = outcome(BlockByBlockReader, source)
    assert new[1:] == old[1:]
    assert new[0] == old[0]  # the frames last: a long list's difference is slow to print
    return new


class Greedy(Trickle):
    """A binary stream that hands over all it has at the first read, whatever is asked."""

    def read1(self, n: int = -1) -> bytes:
        out, self.at = self.data[self.at :], len(self.data)
        return out

    read = read1


def blob_source(blob: bytes, step: int | None = None) -> Source:
    return (lambda: io.BytesIO(blob)) if step is None else (lambda: Trickle(blob, step))


# --------------------------------------------------------------------------- pcapng: files of another shape

_SHB, _IDB, _EPB, _SPB, _ISB = 0x0A0D0D0A, 1, 6, 3, 5
#: option code -> struct format of its value, per block type, for the options whose value is a number
_NUMERIC_OPTIONS = {_IDB: {14: "q", 8: "Q"}, _EPB: {2: "I", 4: "Q"}, _ISB: {2: "Q", 3: "Q", 4: "Q", 5: "Q", 6: "Q"}}


def _swap_options(opts: bytes, numeric: dict[int, str]) -> bytes:
    out, p = [], 0
    while p + 4 <= len(opts):
        code, n = struct.unpack_from("<HH", opts, p)
        value = opts[p + 4 : p + 4 + n]
        if code in numeric and n == struct.calcsize(numeric[code]):
            value = struct.pack(">" + numeric[code], *struct.unpack("<" + numeric[code], value))
        out.append(struct.pack(">HH", code, n) + value + opts[p + 4 + n : p + 4 + ((n + 3) & ~3)])
        p += 4 + ((n + 3) & ~3)
        if code == 0:
            break
    return b"".join(out) + opts[p:]


def _swap_fields(fmt: str, body: bytes) -> bytes:
    return struct.pack(">" + fmt, *struct.unpack_from("<" + fmt, body))


def big_endian(blob: bytes) -> bytes:
    """A little-endian pcapng file (as editcap writes them) in big-endian byte order."""
    out, pos = [], 0
    while pos < len(blob):
        btype, blen = struct.unpack_from("<II", blob, pos)
        body = blob[pos + 8 : pos + blen - 4]
        if btype == _SHB:
            body = _swap_fields("IHHq", body) + _swap_options(body[16:], {})
        elif btype == _IDB:
            body = struct.pack(">HHI", *struct.unpack_from("<HHI", body)) + _swap_options(
                body[8:], _NUMERIC_OPTIONS[_IDB]
            )
        elif btype == _EPB:
            head = struct.unpack_from("<5I", body)
            data_end = 20 + ((head[3] + 3) & ~3)
            body = (
                struct.pack(">5I", *head) + body[20:data_end] + _swap_options(body[data_end:], _NUMERIC_OPTIONS[_EPB])
            )
        elif btype == _SPB:
            body = struct.pack(">I", *struct.unpack_from("<I", body)) + body[4:]
        elif btype == _ISB:
            body = struct.pack(">3I", *struct.unpack_from("<3I", body)) + _swap_options(
                body[12:], _NUMERIC_OPTIONS[_ISB]
            )
        out.append(struct.pack(">II", btype, blen) + body + struct.pack(">I", blen))
        pos += blen
    return b"".join(out)


def editcap(tmp: Path, src: Path, name: str, *args: str) -> Path:
    out = tmp / name
    subprocess.run([need_wireshark("editcap"), *args, str(src), str(out)], check=True, capture_output=True)
    return out


def pcapng_variants(src: Path, tmp: Path) -> dict[str, bytes]:
    """``src`` converted to pcapng in every shape the reader must read as before."""
    plain = editcap(tmp, src, "plain.pcapng", "-F", "pcapng").read_bytes()
    nsec = editcap(tmp, editcap(tmp, src, "nsec.pcap", "-F", "nsecpcap"), "nsec.pcapng", "-F", "pcapng")
    keys = tmp / "keys.txt"
    keys.write_text(f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n")
    odd = editcap(
        tmp,
        src,
        "odd.pcapng",
        *("-F", "pcapng", "-s", "60", "-a", "1:the first frame", "-a", "3:x", "--capture-comment", "a capture"),
        *("--inject-secrets", f"tls,{keys}", "-T", "user0"),
    )
    swapped = big_endian(plain)
    return {
        "pcapng": plain,
        "nanoseconds": nsec.read_bytes(),
        "snaplen-comments-secrets-user0": odd.read_bytes(),
        "big-endian": swapped,
        "two-sections": plain + swapped,
    }


# --------------------------------------------------------------------------- pcapng: the tests


@pytest.mark.parametrize("cap", CAPTURES)
def test_pcapng_runs_read_as_block_by_block(cap: Path, tmp_path: Path) -> None:
    variants = pcapng_variants(cap, tmp_path)
    if cap.suffix == ".pcapng":
        variants["as committed"] = cap.read_bytes()
    for name, blob in variants.items():
        frames = same_as_before(blob_source(blob))[0]
        assert frames, name
        for step in (1, 7, 1500) if len(blob) < 40_000 else (4093,):
            assert same_as_before(blob_source(blob, step))[0] == frames, (name, step)
    # the byte-order swap itself is right: the same frames either way
    assert same_as_before(blob_source(variants["big-endian"]))[0] == same_as_before(blob_source(variants["pcapng"]))[0]
    # compressed, from a path
    for suffix, pack in (("gz", gzip.compress), ("zst", zstandard.compress), ("lz4", lz4.frame.compress)):
        packed = pack(variants["two-sections"])
        for name, data in (("whole", packed), ("cut", packed[: len(packed) * 2 // 3])):
            path = tmp_path / f"{name}.pcapng.{suffix}"
            path.write_bytes(data)
            same_as_before(lambda path=path: path)


def test_mergecap_of_several_link_types(tmp_path: Path) -> None:
    """One file, one interface per link type (Linux cooked, Ethernet, raw IPv4, PPP), their
    packets interleaved by time (mergecap's default) and one after the other (-a)."""
    mergecap = need_wireshark("mergecap")
    parts = [
        DATA / "v4-two-subflows.pcap",
        DATA / "v4-stall.pcap",
        DATA / "encap/raw-ipv4.pcap",
        DATA / "encap/ppp.pcap",
    ]
    for how in ([], ["-a"]):
        out = tmp_path / f"merged{len(how)}.pcapng"
        subprocess.run([mergecap, *how, "-F", "pcapng", "-w", str(out), *map(str, parts)], check=True)
        frames = same_as_before(lambda out=out: out)[0]
        assert {f[1] for f in frames} == {113, 1, 228, 9} and {f[4] for f in frames} == {0, 1, 2, 3}
        same_as_before(blob_source(out.read_bytes(), 999))


def test_pcapng_cut_at_every_offset(tmp_path: Path) -> None:
    """A file with two sections (the second big-endian), several interfaces and each block type,
    cut at every octet: the same frames, problems and errors."""
    blob = synthetic(
        [
            ("<", [("idb", 1, 6, 0), ("idb", 113, 9, 3), ("epb", 0, b"a" * 30), ("isb",), ("epb", 1, b"b" * 21)]),
            (">", [("idb", 101, 0x80 | 20, 0), ("spb", b"c" * 17), ("pb", 0, b"d" * 9), ("epb", 0, b"e" * 40)]),
        ]
    )
    for cut in range(len(blob) + 1):
        same_as_before(blob_source(blob[:cut]))
        same_as_before(blob_source(blob[:cut], 5))


def _changed(blob: bytes, order: str, pos: int, at: int, value: int, also: int | None = None) -> bytes:
    """``blob`` with the 32-bit word of the block at ``pos`` at ``at`` (and at ``also``) set to ``value``."""
    out = bytearray(blob)
    struct.pack_into(order + "I", out, pos + at, value % (1 << 32))
    if also is not None:
        struct.pack_into(order + "I", out, pos + also, value % (1 << 32))
    return bytes(out)


def test_pcapng_damaged_at_every_octet_and_field() -> None:
    """The same file with each octet changed in turn, and each block's framing fields (lengths,
    interface, captured length) set around the values where they stop being right."""
    blob = synthetic(
        [
            ("<", [("idb", 1, 6, 0), ("idb", 113, 9, 3), ("epb", 0, b"a" * 30), ("epb", 1, b"b" * 21, -2, b"note")]),
            (">", [("idb", 101, 0x80 | 20, 0), ("epb", 0, b"e" * 40), ("isb",), ("epb", 0, b"f" * 3)]),
        ]
    )
    for at in range(len(blob)):
        for value in (blob[at] ^ 0xFF, blob[at] ^ 0x01):
            same_as_before(blob_source(blob[:at] + bytes([value]) + blob[at + 1 :]))
    pos, order = 0, "<"
    while pos < len(blob):
        if blob[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if blob[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(order + "II", blob, pos)
        changed = functools.partial(_changed, blob, order, pos)
        for delta in range(-9, 10):
            same_as_before(blob_source(changed(4, blen + delta)))  # the leading length
            same_as_before(blob_source(changed(blen - 4, blen + delta)))  # the trailing length
            both = blen + delta - 4 if 4 <= blen + delta and pos + blen + delta <= len(blob) else None
            same_as_before(blob_source(changed(4, blen + delta, both)))  # both, as if the block were that long
        if btype == _EPB:
            iface, caplen = struct.unpack_from(order + "I", blob, pos + 8)[0], blen - 32
            for value in range(iface - 2, iface + 4):
                same_as_before(blob_source(changed(8, value)))  # the interface
            for value in range(caplen - 8, caplen + 9):
                same_as_before(blob_source(changed(20, value)))  # the captured length
        pos += blen
    # a block longer than any record may be, whole in the reader's buffer
    huge = synthetic([("<", [("idb", 1, 6, 0), ("epb", 0, b"a" * 40), ("epb", 0, b"h" * (1 << 24)), ("epb", 0, b"b")])])
    assert same_as_before(lambda: Greedy(huge, 0))[1][0] == "CaptureError"


# --------------------------------------------------------------------------- pcapng: fuzzed


def _block(btype: int, body: bytes, order: str) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def synthetic(sections: list[tuple[str, list[tuple]]]) -> bytes:
    """A pcapng file: per section its byte order and blocks, ``("idb", linktype, tsresol,
    tsoffset)``, ``("epb", interface, data[, original length less captured, options])``,
    ``("spb", data)``, ``("pb", interface, data)``, ``("isb",)``, ``("unknown", type, body)``."""
    out = []
    ts = 1_700_000_000_123_456
    for order, blocks in sections:
        out.append(_block(_SHB, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order))
        for b in blocks:
            ts += 1_000_003
            if b[0] == "idb":
                opts = struct.pack(order + "HH", 9, 1) + bytes([b[2], 0, 0, 0])
                opts += struct.pack(order + "HHq", 14, 8, b[3]) + struct.pack(order + "HH", 0, 0)
                out.append(_block(_IDB, struct.pack(order + "HHI", b[1], 0, 64) + opts, order))
            elif b[0] == "epb":
                more, opts = b[3:] if len(b) > 3 else (3, b"")
                head = struct.pack(order + "5I", b[1], ts >> 32, ts & 0xFFFFFFFF, len(b[2]), max(len(b[2]) + more, 0))
                data = b[2] + b"\0" * (-len(b[2]) % 4)
                if opts:
                    opts = struct.pack(order + "HH", 1, len(opts)) + opts + b"\0" * (-len(opts) % 4) + b"\0" * 4
                out.append(_block(_EPB, head + data + opts, order))
            elif b[0] == "spb":
                out.append(_block(_SPB, struct.pack(order + "I", len(b[1]) + 5) + b[1], order))
            elif b[0] == "pb":
                head = struct.pack(order + "HHIIII", b[1], 0, ts >> 32, ts & 0xFFFFFFFF, len(b[2]), len(b[2]))
                out.append(_block(2, head + b[2], order))
            elif b[0] == "isb":
                out.append(_block(_ISB, struct.pack(order + "III", 0, ts >> 32, ts & 0xFFFFFFFF), order))
            else:
                out.append(_block(b[1], b[2], order))
    return b"".join(out)


_data = st.binary(min_size=0, max_size=70)
_idb = st.tuples(
    st.just("idb"),
    st.sampled_from([1, 113, 276, 101]),
    st.sampled_from([6, 9, 0, 3, 12, 0x80 | 10, 0x80 | 30]),
    st.integers(-5, 5),
)


@st.composite
def _section(draw: st.DrawFn) -> tuple[str, list[tuple]]:
    """A section as files have them: its interfaces first, then mostly Enhanced Packet Blocks on
    them; now and then a block of another type, an interface described later, or a packet on an
    interface not described."""
    idbs = draw(st.lists(_idb, min_size=0, max_size=3))
    n = max(len(idbs), 1)
    epb = st.tuples(
        st.just("epb"), st.integers(0, n - 1), _data, st.integers(-3, 5), st.sampled_from([b"", b"a comment"])
    )
    others = st.one_of(
        _idb,
        st.tuples(st.just("epb"), st.integers(0, n + 1), _data),
        st.tuples(st.just("spb"), _data),
        st.tuples(st.just("pb"), st.integers(0, n), _data),
        st.tuples(st.just("isb")),
        st.tuples(st.just("unknown"), st.sampled_from([4, 0xA, 0xBAD, 0x40000BAD, 0x80000001]), _data),
    )
    blocks = draw(st.lists(st.one_of(epb, epb, epb, others), max_size=12))
    return draw(st.sampled_from("<>")), idbs + blocks


_sections = st.lists(_section(), min_size=1, max_size=3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _sections,
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=3),
    st.one_of(st.none(), st.integers(0, 1 << 20)),
    st.sampled_from([None, 1, 3, 64]),
)
def test_fuzzed_pcapng_read_as_block_by_block(sections, damage, cut, step) -> None:
    """Random files, their octets changed here and there and cut: the same outcome."""
    blob = bytearray(synthetic(sections))
    for at, value in damage:
        if blob:
            blob[at % len(blob)] = value
    if cut is not None:
        del blob[cut % (len(blob) + 1) :]
    same_as_before(blob_source(bytes(blob), step))


# --------------------------------------------------------------------------- Linux cooked v2 inline


def _general_path() -> Callable[..., object]:
    """decode_frame with its inline Linux-cooked-v2 branch taken out: such a frame then takes the
    general path (``_plain_ip_offset``), as before the branch was written."""
    source = textwrap.dedent(inspect.getsource(packets.decode_frame))
    branch = re.search(r"\n    elif linktype == _LINUX_SLL2 and [^\n]*\n        p = 20\n", source)
    assert branch, "decode_frame has no inline branch for Linux cooked v2"
    source = source[: branch.start()] + "\n" + source[branch.end() :]
    scope = dict(vars(packets))
    exec(compile(source, "<decode_frame, general path>", "exec", flags=annotations.compiler_flag), scope)
    return scope["decode_frame"]


GENERAL = _general_path()


def decoded(decode: Callable[..., object], linktype: int, data: bytes) -> object:
    """What decoding a frame gives: its Packet (every field), None, or the error (type and message)."""
    try:
        return decode(linktype, data, 1_700_000_000_000_000_123)
    except DecodeError as e:
        return type(e).__name__, str(e)


def sll2(linktype: int, data: bytes) -> bytes | None:
    """The frame ``data`` of ``linktype`` (Ethernet, Linux cooked v1, raw IP) as Linux cooked v2
    writes it (protocol, reserved, interface index, ARPHRD type, packet type, address length,
    address), or None for the other link types."""
    if linktype == 1 and len(data) >= 14:
        proto, hatype, pkttype, addr, payload = data[12:14], 1, 0, data[6:12], data[14:]
    elif linktype == 113 and len(data) >= 16:
        pkttype, hatype, halen = struct.unpack_from("!HHH", data)
        proto, addr, payload = data[14:16], data[6 : 6 + min(halen, 8)], data[16:]
    elif linktype in (101, 228, 229) and data:
        proto = b"\x08\x00" if data[0] >> 4 == 4 else b"\x86\xdd"
        hatype, pkttype, addr, payload = 0xFFFE, 0, b"", data  # ARPHRD_NONE
    else:
        return None
    return proto + b"\0\0" + struct.pack("!IHBB", 7, hatype, pkttype, len(addr)) + addr.ljust(8, b"\0") + payload


def write_pcap(path: Path, linktype: int, frames: list[tuple[int, bytes, int]]) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype)]
    for ts, data, orig in frames:
        out.append(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), orig) + data)
    path.write_bytes(b"".join(out))


@pytest.mark.parametrize("cap", CAPTURES)
def test_linux_cooked_v2_inline_decodes_as_the_general_path(cap: Path, tmp_path: Path) -> None:
    """Every frame of every capture, and of the capture turned into Linux cooked v2 (tshark reads
    the copy's IP and TCP headers as the original's): the inline branch's Packet (every field) or
    error is the general path's."""
    frames = [(f[0], f[1], f[2], f[3]) for f in CaptureReader(cap).frames()]
    converted = []
    for ts, linktype, data, orig in frames:
        assert decoded(packets.decode_frame, linktype, data) == decoded(GENERAL, linktype, data)
        frame = sll2(linktype, data)
        if frame is not None:
            converted.append((ts, frame, orig + len(frame) - len(data)))
            assert decoded(packets.decode_frame, 276, frame) == decoded(GENERAL, 276, frame)
    if not converted:
        return
    assert any(packets.decode_frame(276, f[1]) is not None for f in converted)
    copy = tmp_path / "sll2.pcap"
    write_pcap(copy, 276, converted)
    tshark = need_wireshark("tshark")
    headers = ("ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "tcp.srcport", "tcp.seq_raw", "tcp.ack_raw", "tcp.len")
    fields = [x for h in headers for x in ("-e", h)]

    def read(path: Path) -> list[str]:
        run = [tshark, "-n", "-r", str(path), "-T", "fields", "-o", "tcp.analyze_sequence_numbers:FALSE", *fields]
        return subprocess.run(run, check=True, capture_output=True, text=True).stdout.splitlines()

    if len(converted) == len(frames):
        assert read(copy) == read(cap)
    assert (
        "sll"
        in subprocess.run(
            [tshark, "-r", str(copy), "-c", "1", "-T", "fields", "-e", "frame.protocols"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )


_ETHERTYPES = st.sampled_from([0x0800, 0x86DD, 0x8100, 0x88A8, 0x8847, 0x8864, 0x0806, 0x1234])


@settings(max_examples=3000, deadline=None)
@given(_ETHERTYPES, st.binary(min_size=18, max_size=18), st.binary(max_size=80), st.integers(0, 160))
def test_random_linux_cooked_v2_frames_decode_as_the_general_path(ethertype: int, rest: bytes, body: bytes, cut: int):
    """Frames of every protocol, IP packets whole, cut and random, cut anywhere (in the link header too)."""
    head = struct.pack("!H", ethertype) + rest
    for ip in (body, ip4_tcp(body[:20]), ip6_tcp(body[:20]), ip4_tcp(options=body[:8] * 2)):
        for frame in (head + ip, (head + ip)[:cut]):
            assert decoded(packets.decode_frame, 276, frame) == decoded(GENERAL, 276, frame)


# --------------------------------------------------------------------------- quiet handshake signals


def told(infos: Iterable[PacketInfo], analyzer: Analyzer, problems: list[str]) -> tuple:
    """Everything the analysis tells: each frame's PacketInfo (every field; its subflow's index,
    machine state and all its machine holds, its connection's summary, as they are after the frame),
    then every connection's summary, the counts, the experts, the problems, and each machine left
    unfinished with its signals and flags."""
    frames = []
    for info in infos:
        fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
        sf, conn = fields.pop("subflow"), fields.pop("connection")
        observer = sf.observer if sf is not None else None
        frames.append(
            (
                repr(fields),
                None if sf is None else (sf.index, sf.state, _inside(observer) if type(observer) is Observer else None),
                None if conn is None else conn.summary(),
            )
        )
    machines = [
        (sf.index, sf.observer.count, [str(f) for f in sf.observer.flags])
        for sf in analyzer.subflows()
        if isinstance(sf.observer, Observer)
    ]
    summaries = [c.summary() for c in analyzer.connections()]
    return frames, summaries, analyzer.counts, analyzer.experts, problems, machines


def analysis(cap: Path, skip: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """What the analysis tells of a capture (:func:`told`), with or without the skip of quiet signals."""
    monkeypatch.setattr(handshake, "SKIP_QUIET_SIGNALS", skip)
    d = Dissection(cap)
    return told(d, d.analyzer, d.problems)


@pytest.mark.parametrize("cap", CAPTURES)
def test_quiet_handshake_signals_skipped_change_nothing(cap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fed = {True: 0, False: 0}
    feed = Observer.feed

    def counted(self: Observer, *args: object, **guards: bool) -> list:
        fed[handshake.SKIP_QUIET_SIGNALS] += 1
        return feed(self, *args, **guards)  # type: ignore[arg-type]

    monkeypatch.setattr(Observer, "feed", counted)
    with_skip = analysis(cap, True, monkeypatch)
    without = analysis(cap, False, monkeypatch)
    assert with_skip[1:] == without[1:]
    assert with_skip[0] == without[0]
    if cap.name == "v4-stall.pcap":  # its first connection's handshake stays in MPC_ACK_SENT
        assert fed[True] < fed[False] - 40, fed


_SIGNALS = {
    EstablishmentMachine: [
        "SYN+MP_CAPABLE",
        "SYN",
        "SYN_ACK+MP_CAPABLE",
        "SYN_ACK",
        "ACK+MP_CAPABLE",
        "DATA+MP_CAPABLE",
        "ACK",
        "DATA+DSS",
        "ACK+DSS",
        "DSS[INFINITE_MAPPING]",
    ],
    JoinMachine: ["SYN+MP_JOIN", "SYN_ACK+MP_JOIN", "SYN_ACK", "ACK+MP_JOIN", "ACK", "RST"],
}


def _inside(obs: Observer) -> tuple:
    """All an observer holds (its private state included), as plain values."""
    return (
        {e: obs.states(e) for e in ("A", "B")},
        repr(vars(obs)["_owed"]),
        repr({e: sorted(s) for e, s in vars(obs)["_sent"].items()}),
        repr({e: sorted(s) for e, s in vars(obs)["_received"].items()}),
        obs.count,
        [str(f) for f in obs.flags],
    )


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from([EstablishmentMachine, JoinMachine]),
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 9), st.sampled_from([{}, {"hmac_ok": True}, {"hmac_ok": False}])),
        max_size=40,
    ),
)
def test_what_the_skip_rests_on(machine: type, signals: list) -> None:
    """The observer's side of the skip: a signal that flagged nothing and left both endpoints'
    state sets the same objects changes nothing but the count when fed again, while they stay
    the same objects; checked by feeding two observers the same random signals, one of them
    skipping as Handshakes.handshake does."""
    every, skipping = Observer(machine, ("A", "B")), Observer(machine, ("A", "B"))
    quiet: tuple | None = None
    names = _SIGNALS[machine]
    for d, i, guards in signals:
        direction, sig = (("A", "B"), ("B", "A"))[d], names[i % len(names)]
        every.feed(direction, sig, **guards)
        fed = (d, sig, *guards.items())
        held = skipping.states("A"), skipping.states("B")
        if quiet is not None and quiet[0] is held[0] and quiet[1] is held[1] and fed in quiet[2]:
            skipping.count += 1
        else:
            flags = skipping.feed(direction, sig, **guards)
            if not flags and skipping.states("A") is held[0] and skipping.states("B") is held[1]:
                if quiet is None or quiet[0] is not held[0] or quiet[1] is not held[1]:
                    quiet = (held[0], held[1], set())
                quiet[2].add(fed)
        assert _inside(skipping) == _inside(every)


# Handshakes in any order: one MP_CAPABLE subflow and one MP_JOIN subflow, their segments drawn.
_KA, _KB, _NA, _NB = 0x1111222233334444, 0x5555666677778888, 0xA1A2A3A4, 0xB1B2B3B4
_A, _B = ipaddress.IPv4Address("198.51.100.1"), ipaddress.IPv4Address("198.51.100.2")
_SYN, _ACK, _RST, _FIN, _PSH = 0x02, 0x10, 0x04, 0x01, 0x08
_MAPPED = DssFlags.MAPPING_PRESENT | DssFlags.DATA_ACK_PRESENT
_CAPABLE = {  # kind -> TCP flags, MPTCP options (for a payload of n octets)
    "syn": (_SYN, lambda n: [MpCapable(version=1, flags=MpCapableFlags(0x81))]),
    "syn-plain": (_SYN, lambda n: []),
    "synack": (_SYN | _ACK, lambda n: [MpCapable(version=1, flags=MpCapableFlags(0x81), sender_key=_KB)]),
    "synack-plain": (_SYN | _ACK, lambda n: []),
    "ack-mpc": (_ACK, lambda n: [MpCapable(version=1, flags=MpCapableFlags(0x81), sender_key=_KA, receiver_key=_KB)]),
    "data-mpc": (
        _ACK | _PSH,
        lambda n: [
            MpCapable(version=1, flags=MpCapableFlags(0x81), sender_key=_KA, receiver_key=_KB, data_level_length=n)
        ],
    ),
    "ack": (_ACK, lambda n: []),
    "ack-dss": (_ACK, lambda n: [Dss(flags=DssFlags.DATA_ACK_PRESENT, data_ack=1)]),
    "data-dss": (_ACK | _PSH, lambda n: [Dss(flags=_MAPPED, data_ack=1, dsn=1, ssn=1, data_level_length=n)]),
    "infinite": (_ACK, lambda n: [Dss(flags=_MAPPED, data_ack=1, dsn=1, ssn=1, data_level_length=0)]),
    "rst": (_RST | _ACK, lambda n: []),
    "fin": (_FIN | _ACK, lambda n: [Dss(flags=DssFlags.DATA_ACK_PRESENT, data_ack=1)]),
}
_JOIN = {
    "jsyn": (_SYN, lambda ok: [MpJoinSyn(token=key_token(_KB), nonce=_NA, address_id=1)]),
    "jsynack": (
        _SYN | _ACK,
        lambda ok: [MpJoinSynAck(truncated_hmac=join_synack_hmac(_KB, _KA, _NB, _NA) ^ (not ok), nonce=_NB)],
    ),
    "jack": (_ACK, lambda ok: [MpJoinAck(hmac=join_ack_hmac(_KA, _KB, _NA, _NB)[:-1] + bytes([ok]))]),
}


def segments(steps: list[tuple[int, int, str, int, int]]) -> list[Packet]:
    """Segments of the two subflows: per step its subflow (0: MP_CAPABLE, 1: MP_JOIN), direction
    (0: from A), kind, payload length and the ACK number's offset from what the peer sent."""
    sent = {(sf, d): 1000 * (1 + sf + 2 * d) for sf in (0, 1) for d in (0, 1)}
    out = []
    for sf, d, kind, n, off in steps:
        if kind in _JOIN:
            flags, make = _JOIN[kind]
            opts = make(n % 2 == 0)
            n = 0
        else:
            flags, make = _CAPABLE[kind]
            n = n if kind.startswith("data") else 0
            opts = make(n)
        seq = sent[(sf, d)]
        sent[(sf, d)] = (seq + n + bool(flags & (_SYN | _FIN))) & 0xFFFFFFFF
        ends = (_A, 40000 + sf), (_B, 5201)
        (src, sport), (dst, dport) = ends if d == 0 else ends[::-1]
        raw = b"".join(encode_option(o) for o in opts)
        out.append(
            Packet(
                4,
                src,
                dst,
                sport,
                dport,
                seq,
                (sent[(sf, 1 - d)] + off) & 0xFFFFFFFF,
                TcpFlags(flags),
                512,
                raw,
                b"x" * n,
                n,
                hdr_len=20 + len(raw),
            )  # fmt: skip
        )
    return out


_offsets = st.integers(-3, 3)  # an ACK number off what the peer sent: out of the handshake's order
_steps = st.lists(
    st.one_of(
        st.tuples(st.just(0), st.integers(0, 1), st.sampled_from(sorted(_CAPABLE)), st.integers(1, 9), st.just(0)),
        st.tuples(
            st.just(1),
            st.integers(0, 1),
            st.sampled_from([*_JOIN, "ack", "ack-dss", "data-dss", "rst"]),
            st.integers(1, 9),
            st.just(0),
        ),
        st.tuples(
            st.integers(0, 1), st.integers(0, 1), st.sampled_from(["ack", "rst"]), st.just(1), st.integers(-3, 3)
        ),
    ),
    max_size=30,
)
_OPENING = [(0, 0, "syn", 1, 0), (0, 1, "synack", 1, 0), (0, 0, "ack-mpc", 1, 0), (1, 0, "jsyn", 1, 0)]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opening=st.booleans(), steps=_steps, repeat=st.integers(1, 6))
@example(  # A's machine moves, B's not (B's SYN/ACK again): a signal quiet before is not after
    opening=True,
    steps=[(0, 0, "ack-mpc", 1, 0)] * 2 + [(0, 1, "synack", 1, 0), (0, 0, "ack-mpc", 1, 0)] * 2,
    repeat=1,
)
@example(  # B's machine moves, A's not
    opening=False,
    steps=[(0, 0, "ack-mpc", 1, 0), (1, 0, "jsyn", 1, 0), (1, 1, "ack-dss", 2, 0), (1, 1, "ack-dss", 2, 0)]
    + [(1, 0, "jack", 2, 0), (1, 1, "ack-dss", 4, 0)],
    repeat=1,
)
def test_quiet_signals_skipped_on_drawn_handshakes(
    opening: bool, steps: list, repeat: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handshakes of any order, often a handshake begun as a kernel's is, their segments repeated:
    the same with the skip as without."""
    pkts = segments((_OPENING if opening else []) + [s for s in steps for _ in range(repeat)])
    results = []
    for skip in (True, False):
        monkeypatch.setattr(handshake, "SKIP_QUIET_SIGNALS", skip)
        an = Analyzer()
        results.append(told((an.feed(i, 1_000_000 * i, 60, 60, p) for i, p in enumerate(pkts, 1)), an, []))
    assert results[0] == results[1]


def test_quiet_signals_skipped_where_the_handshake_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the skip pays: the machine of a handshake that stays in MPC_ACK_SENT is fed a quiet
    signal once after each of its moves, then not; and forgotten once the handshake ends."""
    fed: list[int] = []
    feed = Observer.feed

    def counted(self: Observer, *args: object, **guards: bool) -> list:
        fed[-1] += 1
        return feed(self, *args, **guards)  # type: ignore[arg-type]

    monkeypatch.setattr(Observer, "feed", counted)
    quiet = [(0, 1, "ack-dss", 1, 0)] * 6  # B's DATA_ACKs, which A's machine has no step for
    steps = [*_OPENING[:3], *quiet, (0, 1, "synack", 1, 0), *quiet, (0, 1, "data-dss", 5, 0), *quiet]
    an = Analyzer()
    for i, pkt in enumerate(segments(steps), 1):
        fed.append(0)
        an.feed(i, 1_000_000 * i, 60, 60, pkt)
        if i in (5, 14):
            assert an._handshakes.quiet  # what the skip keeps, while it may skip
    assert fed == [1, 1, 1] + [1, 1, 0, 0, 0, 0] + [1] + [1, 0, 0, 0, 0, 0] + [1] + [0] * 6, fed
    assert an.subflows()[0].state == "A=ESTABLISHED B=ESTABLISHED"
    assert an._handshakes.quiet == {}  # forgotten with the machine
