"""The pcapng reader as it was before it read Enhanced Packet Blocks in runs: block by block, one
record per batch.  The reference that tests/test_fast_exact.py holds the batched reader of
:mod:`mptcpspec.capture.pcap` to (the same frames, problems, counts and errors, on every file).
The Interface Description Blocks are read by the reader's own code, which the runs did not change."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from mptcpspec.capture.pcap import (
    _BOM,
    _BOM_SWAPPED,
    _EPB,
    _IDB,
    _MAX_RECORD,
    _PACKET_BLOCKS,
    _PB,
    _PCAPNG_SHB,
    CaptureError,
    CaptureReader,
    Frame,
    _Buffer,
)


class BlockByBlockReader(CaptureReader):
    """:class:`~mptcpspec.capture.pcap.CaptureReader` with the pcapng reading of before: each block
    read on its own, each record handed over in a list of its own."""

    def _pcapng(self, b: _Buffer) -> Iterator[list[Frame]]:  # type: ignore[override]
        for rec in self._blocks(b):
            yield [rec]

    def _blocks(self, b: _Buffer) -> Iterator[Frame]:
        order = "<"
        ifaces: list[tuple[int, int, int, int]] = []  # (linktype, snaplen, tsresol divisor/multiplier, offset s)
        first = True
        while True:
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
                        yield rec
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
                ifaces.append(self._idb(body, order, start))
            elif btype in _PACKET_BLOCKS:
                rec = self._packet_block(btype, b.buf[b.pos - blen : b.pos], order, ifaces, start)
                if rec is not None:
                    self.records += 1
                    yield rec
            elif btype != _PCAPNG_SHB:
                self.skipped_blocks += 1

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
        ts = (hi << 32) | lo
        if resol & 0x80:
            ns = (ts * 1_000_000_000) >> (resol & 0x7F)
        elif resol <= 9:
            ns = ts * 10 ** (9 - resol)
        else:
            ns = ts // 10 ** (resol - 9)
        ns += tsoffset * 1_000_000_000
        return ns, linktype, data, max(orig, len(data)), iface, partial and len(data) < caplen
