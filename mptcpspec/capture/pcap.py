"""Read pcap and pcapng files as a stream of :class:`Record` values.

    for rec in read_records("capture.pcapng"):
        print(rec.timestamp_ns, rec.linktype, rec.caplen, rec.orig_len)

Both formats, either byte order; pcap with microsecond or nanosecond timestamps (and the
"modified" pcap of old Linux patches); pcapng with several sections and interfaces, each with its
own link type and timestamp resolution, and Enhanced, Simple and obsolete Packet blocks (other
block types are skipped).  The file is read in chunks, so memory does not grow with its size.  A
path names a file, or ``-`` standard input; a gzip, zstd or lz4 file is decompressed as it is read
(:mod:`mptcpspec.capture.stream`).

A file that ends inside a record yields the part that is there (``truncated=True``) and notes the
problem in :attr:`CaptureReader.problems`; a file that is not a capture, or whose framing is
corrupt, raises :class:`CaptureError` (a :class:`~mptcpspec.errors.DecodeError`) naming the file
offset, after the records before it have been yielded.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from enum import IntEnum
from typing import BinaryIO, TypeAlias

from mptcpspec.capture.linktypes import LinkType
from mptcpspec.capture.stream import Input, open_input
from mptcpspec.codec.runtime import fast_constructor
from mptcpspec.errors import DecodeError
from mptcpspec.records import dataclass

__all__ = [
    "pcapng_ns",
    "BlockType",
    "CaptureError",
    "NotACaptureError",
    "Readable",
    "CaptureReader",
    "Frame",
    "LinkType",
    "Record",
    "read_records",
]

_CHUNK = 1 << 20
_MAX_RECORD = 1 << 24  # a record longer than 16 MiB is corrupt framing, not a packet


@dataclass(frozen=True, slots=True)
class Record:
    """One captured frame."""

    timestamp_ns: int  #: capture time, nanoseconds since the epoch
    linktype: int  #: link-layer header type of the interface it was captured on
    data: bytes  #: the captured octets (``caplen`` of them)
    orig_len: int  #: the frame's length on the wire
    interface: int = 0  #: pcapng interface number (0 for pcap)
    truncated: bool = False  #: the file ended inside this record

    @property
    def caplen(self) -> int:
        return len(self.data)


_record = fast_constructor(Record)

#: A record as a plain tuple, in :class:`Record`'s field order: ``(timestamp_ns, linktype, data,
#: orig_len, interface, truncated)``.
Frame: TypeAlias = tuple[int, int, bytes, int, int, bool]

#: What a capture is read from: a path (``-``: standard input), a binary file object, or an
#: :class:`~mptcpspec.capture.stream.Input` (decompressing).
Readable: TypeAlias = str | os.PathLike[str] | BinaryIO | Input


class CaptureError(DecodeError):
    """A capture file that cannot be read (not a capture, or corrupt framing)."""

    def __init__(self, what: str, field: str | None, offset: int, reason: str) -> None:
        super().__init__(what, field, offset, reason)


class NotACaptureError(CaptureError):
    """A file that is no capture at all: its message is the reason alone, for a person
    (``not a capture file (pcap, pcapng, or gzip/zstd/lz4 of one); it starts with 23 20 6d 70``)."""

    def __str__(self) -> str:
        return self.reason


class CompressedDataError(CaptureError):
    """A compressed capture whose compressed stream is cut short or corrupt; the message is the
    reason, which says where."""

    def __str__(self) -> str:
        return self.reason


def _not_a_capture(head: bytes, compression: str | None) -> NotACaptureError:
    if not head:
        why = "an empty file, not a capture" if compression is None else f"{compression}-compressed, but empty inside"
    else:
        start = " ".join(f"{c:02x}" for c in head[:4])
        if compression is None:
            why = f"not a capture file (pcap, pcapng, or gzip/zstd/lz4 of one); it starts with {start}"
        else:
            why = f"{compression}-compressed, but not a capture file inside (pcap or pcapng); it starts with {start}"
        if len(head) < 4:
            inside = "" if compression is None else f"{compression}-compressed, but "
            why = f"{inside}too short to be a capture file: {len(head)} octet{'s' if len(head) > 1 else ''} ({start})"
    return NotACaptureError("capture file", "magic", 0, why)


_PCAP_MAGIC = {
    # magic as read little-endian -> (byte order, nanoseconds, record header size)
    0xA1B2C3D4: ("<", False, 16),
    0xD4C3B2A1: (">", False, 16),
    0xA1B23C4D: ("<", True, 16),
    0x4D3CB2A1: (">", True, 16),
    0xA1B2CD34: ("<", False, 24),  # "modified" pcap (Kuznetzov): 8 more octets per record
    0x34CDB2A1: (">", False, 24),
}


class BlockType(IntEnum):
    """The pcapng block types read (draft-ietf-opsawg-pcapng §4 and §11.1); others are skipped."""

    SECTION_HEADER = 0x0A0D0D0A
    INTERFACE_DESCRIPTION = 1
    PACKET = 2  #: obsolete Packet Block
    SIMPLE_PACKET = 3
    ENHANCED_PACKET = 6


_PCAPNG_SHB = int(BlockType.SECTION_HEADER)
_IDB = int(BlockType.INTERFACE_DESCRIPTION)
_EPB, _SPB, _PB = int(BlockType.ENHANCED_PACKET), int(BlockType.SIMPLE_PACKET), int(BlockType.PACKET)
_PACKET_BLOCKS = (_EPB, _SPB, _PB)
_BOM = 0x1A2B3C4D  # the byte-order magic as written
_BOM_SWAPPED = 0x4D3C2B1A  # ... as read in the other byte order
_OPT_END, _IF_TSRESOL, _IF_TSOFFSET = 0, 9, 14  # Interface Description Block option codes
# An Enhanced Packet Block's head (block type, total length, interface, timestamp high and low,
# captured and original length), and a 32-bit word, in each byte order.
_EPB_HEAD = {o: struct.Struct(o + "IIIIIII").unpack_from for o in "<>"}
_U32 = {o: struct.Struct(o + "I").unpack_from for o in "<>"}


class _Buffer:
    """A forward-only window on a binary stream; ``offset`` is the file offset of ``buf[pos]``."""

    __slots__ = ("f", "buf", "pos", "base", "eof")

    def __init__(self, f: BinaryIO | Input) -> None:
        self.f = f
        self.buf = b""
        self.pos = 0
        self.base = 0
        self.eof = False

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def ensure(self, n: int) -> bool:
        """Make ``n`` octets available at ``pos``; False when the stream ends first."""
        if len(self.buf) - self.pos >= n:
            return True
        rest = self.buf[self.pos :]
        self.base += self.pos
        self.pos = 0
        parts = [rest]
        have = len(rest)
        read = getattr(self.f, "read1", None) or self.f.read  # read1: what a pipe has now, not a whole chunk
        while have < n and not self.eof:
            chunk = read(max(_CHUNK, n - have))
            if not chunk:
                self.eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.buf = b"".join(parts)
        return have >= n

    def available(self) -> int:
        return len(self.buf) - self.pos


class CaptureReader:
    """Iterate the records of a pcap or pcapng file (a path or a binary file object).

    After iteration, :attr:`problems` lists what was wrong but recoverable (a truncated last
    record), :attr:`format` is ``"pcap"`` or ``"pcapng"``, :attr:`linktypes` the link types seen.
    """

    def __init__(self, source: Readable) -> None:
        self.name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")
        self._source = source
        self.format: str | None = None
        self.problems: list[str] = []
        self.linktypes: set[int] = set()
        self.records = 0
        self.skipped_blocks = 0
        self._buf: _Buffer | None = None

    @property
    def position(self) -> int:
        """File offset reached so far (for progress reports)."""
        return self._buf.offset if self._buf is not None else 0

    def __iter__(self) -> Iterator[Record]:
        for batch in self.batches():
            for frame in batch:
                yield _record(*frame)

    def frames(self) -> Iterator[Frame]:
        """The records as plain tuples ``(timestamp_ns, linktype, data, orig_len, interface,
        truncated)``, in :class:`Record`'s field order, without building a Record per frame."""
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Frame]]:
        """The records as :meth:`frames` gives them, in lists: a buffer's worth at a time (what the
        dissector's loop reads; in a pcapng file, its run of Enhanced Packet Blocks), a record that
        crosses the buffer's end, or a pcapng block of another type, on its own.  A damaged record is
        met, and noted in :attr:`problems` or raised, only after the records before it have been
        handed over."""
        if isinstance(self._source, (str, os.PathLike)):
            with open_input(os.fspath(self._source)) as f:
                yield from self._read(f)
        else:
            yield from self._read(self._source)

    # ------------------------------------------------------------------ dispatch

    def _read(self, f: BinaryIO | Input) -> Iterator[list[Frame]]:
        b = self._buf = _Buffer(f)
        compression = getattr(f, "compression", None)  # an Input of mptcpspec.capture.stream
        try:
            magic = struct.unpack_from("<I", b.buf, 0)[0] if b.ensure(4) else None
            if magic in _PCAP_MAGIC:
                self.format = "pcap"
                yield from self._pcap(b, *_PCAP_MAGIC[magic])
            elif magic == _PCAPNG_SHB:
                self.format = "pcapng"
                yield from self._pcapng(b)
            elif magic is not None or getattr(f, "damage", None) is None:
                raise _not_a_capture(bytes(b.buf[b.pos : b.pos + 4]), compression)
        except CaptureError:
            if getattr(f, "damage", None) is None:
                raise
            # framing cut by the end of a compressed stream that was cut: the cut is the reason
        damage = getattr(f, "damage", None)
        if damage is not None:  # the compressed stream ended early: the frames before it were read
            raise CompressedDataError(f"{compression} stream", None, b.offset, damage)

    def _truncated(self, what: str, offset: int, need: int, have: int) -> None:
        self.problems.append(f"the file ends inside {what} at offset {offset} ({have} of {need} octets present)")

    # ------------------------------------------------------------------ pcap

    def _pcap(self, b: _Buffer, order: str, nanos: bool, hdr_size: int) -> Iterator[list[Frame]]:
        if not b.ensure(24):
            raise CaptureError("pcap", "file header", 0, f"needs 24 octets, the file has {b.available()}")
        _, major, minor, _, _, snaplen, network = struct.unpack_from(order + "IHHiIII", b.buf, 0)
        if major != 2:
            raise CaptureError("pcap", "version", 4, f"version {major}.{minor} is not 2.x")
        linktype = network & 0xFFFF
        self.linktypes.add(linktype)
        b.pos = 24
        hdr = struct.Struct(order + "IIII").unpack_from
        scale = 1 if nanos else 1000
        while True:
            # Every whole record in the buffer, in one list, with the buffer and position in locals.
            buf, pos = b.buf, b.pos
            size = len(buf)
            out: list[Frame] = []
            append = out.append
            while size - pos >= hdr_size:
                sec, frac, incl, orig = hdr(buf, pos)
                p = pos + hdr_size
                if incl > _MAX_RECORD or size - p < incl:
                    break
                pos = p + incl
                append((sec * 1_000_000_000 + frac * scale, linktype, buf[p:pos], orig, 0, False))
            if out:
                b.pos = pos
                self.records += len(out)
                yield out
            # Then one record as it comes: read on into the next chunk, or the end of the file, or damage.
            if not b.ensure(hdr_size):
                if b.available():
                    self._truncated(f"the header of record {self.records + 1}", b.offset, hdr_size, b.available())
                return
            sec, frac, incl, orig = hdr(b.buf, b.pos)
            if incl > _MAX_RECORD:
                raise CaptureError(
                    "pcap",
                    "incl_len",
                    b.offset + 8,
                    f"record {self.records + 1} claims {incl} captured octets: corrupt file",
                )
            start = b.offset
            b.pos += hdr_size
            if not b.ensure(incl):
                data = bytes(b.buf[b.pos :])
                self._truncated(f"record {self.records + 1}", start, incl, len(data))
                b.pos = len(b.buf)
                self.records += 1
                yield [(sec * 1_000_000_000 + frac * scale, linktype, data, max(orig, len(data)), 0, True)]
                return
            p = b.pos
            b.pos = p + incl
            self.records += 1
            yield [(sec * 1_000_000_000 + frac * scale, linktype, b.buf[p : p + incl], orig, 0, False)]

    # ------------------------------------------------------------------ pcapng

    def _pcapng(self, b: _Buffer) -> Iterator[list[Frame]]:
        order = "<"
        ifaces: list[tuple[int, int, int, int]] = []  # (linktype, snaplen, tsresol divisor/multiplier, offset s)
        known: list[tuple[int, int, int]] = []  # per interface: (linktype, ns per unit or 0, offset ns)
        first = True
        while True:
            # Every whole Enhanced Packet Block in the buffer, in one list; anything else is read
            # block by block below.
            out, pos = _enhanced_run(b.buf, b.pos, order, known, ifaces)
            if out:
                b.pos = pos
                self.records += len(out)
                yield out
            # Then one block as it comes.
            if not b.ensure(12):
                if first:  # nothing can be read without the Section Header Block
                    raise CaptureError(
                        "pcapng", "Section Header Block", 0, f"the file ends inside it, after {b.available()} octets"
                    )
                if b.available():
                    self._truncated("a block header", b.offset, 12, b.available())
                return
            start = b.offset
            (btype,) = struct.unpack_from(order + "I", b.buf, b.pos)
            if btype == _PCAPNG_SHB:
                (bom,) = struct.unpack_from("<I", b.buf, b.pos + 8)
                if bom == _BOM:
                    order = "<"
                elif bom == _BOM_SWAPPED:
                    order = ">"
                else:
                    raise CaptureError(
                        "pcapng", "byte-order magic", start + 8, f"{bom:#010x} is neither 0x1a2b3c4d nor its swap"
                    )
                ifaces = []
                known = []
            elif first:
                raise CaptureError("pcapng", "block type", start, "the first block is not a Section Header Block")
            first = False
            (blen,) = struct.unpack_from(order + "I", b.buf, b.pos + 4)
            if blen < 12 or blen % 4 or blen > _MAX_RECORD:
                raise CaptureError(
                    "pcapng",
                    "block total length",
                    start + 4,
                    f"{blen} is not a valid block length (a multiple of 4, 12 or more)",
                )
            if not b.ensure(blen):
                have = b.available()
                if start == 0:
                    raise CaptureError(
                        "pcapng", "Section Header Block", 0, f"the file ends inside it: {have} of its {blen} octets"
                    )
                if btype in _PACKET_BLOCKS:
                    rec = self._packet_block(btype, b.buf[b.pos :], order, ifaces, start, partial=True)
                    if rec is not None:
                        self.records += 1
                        yield [rec]
                self._truncated(f"a block of type {btype:#x}", start, blen, have)
                return
            body = b.buf[b.pos + 8 : b.pos + blen - 4]
            (trailer,) = struct.unpack_from(order + "I", b.buf, b.pos + blen - 4)
            if trailer != blen:
                raise CaptureError(
                    "pcapng",
                    "block total length",
                    start + blen - 4,
                    f"trailing length {trailer} differs from the leading {blen}",
                )
            b.pos += blen
            if btype == _IDB:
                iface_info = self._idb(body, order, start)
                ifaces.append(iface_info)
                known.append(_fast_clock(iface_info))
            elif btype in _PACKET_BLOCKS:
                rec = self._packet_block(btype, b.buf[b.pos - blen : b.pos], order, ifaces, start)
                if rec is not None:
                    self.records += 1
                    yield [rec]
            elif btype != _PCAPNG_SHB:
                self.skipped_blocks += 1

    def _idb(self, body: bytes, order: str, start: int) -> tuple[int, int, int, int]:
        if len(body) < 8:
            raise CaptureError("pcapng", "Interface Description Block", start, "body shorter than 8 octets")
        linktype, _, snaplen = struct.unpack_from(order + "HHI", body, 0)
        self.linktypes.add(linktype)
        resol, tsoffset = 6, 0
        p = 8
        while p + 4 <= len(body):
            code, olen = struct.unpack_from(order + "HH", body, p)
            if code == _OPT_END:
                break
            val = body[p + 4 : p + 4 + olen]
            if (code == _IF_TSRESOL and olen >= 1 or code == _IF_TSOFFSET and olen >= 8) and len(val) < olen:
                raise CaptureError(
                    "pcapng",
                    "Interface Description Block",
                    start + 8 + p,
                    f"option {code} claims {olen} octets, the block holds {len(val)}",
                )
            if code == _IF_TSRESOL and olen >= 1:
                resol = val[0]
            elif code == _IF_TSOFFSET and olen >= 8:
                (tsoffset,) = struct.unpack_from(order + "q", val, 0)
            p += 4 + ((olen + 3) & ~3)
        return linktype, snaplen, resol, tsoffset

    def _packet_block(
        self,
        btype: int,
        block: bytes,
        order: str,
        ifaces: list[tuple[int, int, int, int]],
        start: int,
        partial: bool = False,
    ) -> Frame | None:
        end = len(block) - (0 if partial else 4)
        if btype == _EPB:
            if len(block) < 28:
                if partial:
                    return None
                raise CaptureError("pcapng", "Enhanced Packet Block", start, "shorter than 32 octets")
            iface, hi, lo, caplen, orig = struct.unpack_from(order + "IIIII", block, 8)
            p = 28
        elif btype == _PB:  # obsolete Packet Block
            if len(block) < 28:
                if partial:
                    return None
                raise CaptureError("pcapng", "Packet Block", start, "shorter than 32 octets")
            iface, _, hi, lo, caplen, orig = struct.unpack_from(order + "HHIIII", block, 8)
            p = 28
        else:  # Simple Packet Block: interface 0, no timestamp
            if len(block) < 12:
                return None
            (orig,) = struct.unpack_from(order + "I", block, 8)
            iface, hi, lo, p = 0, 0, 0, 12
            snap = ifaces[0][1] if ifaces else 0
            caplen = min(orig, snap or orig, max(end - p, 0))
        if iface >= len(ifaces):
            raise CaptureError(
                "pcapng", "interface id", start + 8, f"packet names interface {iface}, only {len(ifaces)} described"
            )
        linktype, _, resol, tsoffset = ifaces[iface]
        if caplen > end - p:
            if not partial:
                raise CaptureError(
                    "pcapng", "captured length", start + 20, f"{caplen} octets do not fit a block of {len(block)}"
                )
        data = bytes(block[p : min(p + caplen, end)])
        ns = pcapng_ns((hi << 32) | lo, resol, tsoffset)
        return ns, linktype, data, max(orig, len(data)), iface, partial and len(data) < caplen


def pcapng_ns(ts: int, resol: int, tsoffset: int) -> int:
    """Nanoseconds since the epoch of a pcapng timestamp ``ts`` in units of ``if_tsresol`` ``resol``
    (a power of 10, or of 2 with the high bit set) on an interface with ``if_tsoffset`` ``tsoffset``."""
    if resol & 0x80:
        ns = (ts * 1_000_000_000) >> (resol & 0x7F)
    elif resol <= 9:
        ns = ts * 10 ** (9 - resol)
    else:
        ns = ts // 10 ** (resol - 9)
    return ns + tsoffset * 1_000_000_000


def _fast_clock(iface: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """(link type, nanoseconds per timestamp unit, offset in nanoseconds) of an interface, for the
    Enhanced Packet Blocks read in a run: the unit 0 where it is no whole number of nanoseconds (then
    :func:`pcapng_ns`)."""
    linktype, _, resol, tsoffset = iface
    unit = 10 ** (9 - resol) if not resol & 0x80 and resol <= 9 else 0
    return linktype, unit, tsoffset * 1_000_000_000


def _enhanced_run(
    buf: bytes, pos: int, order: str, known: list[tuple[int, int, int]], ifaces: list[tuple[int, int, int, int]]
) -> tuple[list[Frame], int]:
    """The frames of every whole Enhanced Packet Block in ``buf`` from ``pos`` on, up to a block of
    another type, one cut by the buffer's end or one that is not right (left to the block-by-block
    reading, which says what is wrong), and the offset after them.  ``known``: per interface, its
    :func:`_fast_clock`."""
    size = len(buf)
    epb = _EPB_HEAD[order]
    u32 = _U32[order]
    nif = len(known)
    out: list[Frame] = []
    append = out.append
    while size - pos >= 28:
        btype, blen, iface, hi, lo, caplen, orig = epb(buf, pos)
        if (  # caplen > blen - 32 also stands for blen < 32
            btype != _EPB
            or blen & 3
            or blen > _MAX_RECORD
            or size - pos < blen
            or iface >= nif
            or caplen > blen - 32
            or u32(buf, pos + blen - 4)[0] != blen
        ):
            break
        linktype, unit, offset = known[iface]
        ts = (hi << 32) | lo
        p = pos + 28
        pos += blen
        append(
            (
                ts * unit + offset if unit else pcapng_ns(ts, ifaces[iface][2], ifaces[iface][3]),
                linktype,
                buf[p : p + caplen],
                orig if orig > caplen else caplen,
                iface,
                False,
            )
        )
    return out, pos


def read_records(source: Readable) -> Iterator[Record]:
    """The records of a pcap or pcapng file, in file order (see :class:`CaptureReader`)."""
    return iter(CaptureReader(source))
