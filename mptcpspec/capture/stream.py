"""Capture files as streams: a path, standard input, or a gzip, zstd or lz4 file of a capture.

:func:`open_input` opens a path (``-`` for standard input) and, when its first octets say it is
gzip, zstd or lz4, decompresses it as it is read: nothing is read ahead of what the reader asks
for, so a pipe's records are handed on as soon as they are complete.  Compression is told by
content, never by the file's name, as Wireshark does.

>>> import gzip, io
>>> from mptcpspec.capture.pcap import CaptureReader
>>> raw = open("tests/data/v4-two-subflows.pcap", "rb").read()
>>> f = open_input(io.BytesIO(gzip.compress(raw)))
>>> f.compression
'gzip'
>>> sum(1 for _ in CaptureReader(f)) == sum(1 for _ in CaptureReader(io.BytesIO(raw)))
True

A compressed stream that is cut short or corrupt reads as far as it can be decompressed, then as
the end of the file; :attr:`Input.damage` says what was wrong and where (the reader reports it
after the frames before it).
"""

from __future__ import annotations

import os
import stat
import sys
import zlib
from collections.abc import Callable
from typing import BinaryIO, Protocol

from mptcpspec.errors import MptcpspecError

__all__ = ["COMPRESSIONS", "Input", "MissingModuleError", "open_input"]


class MissingModuleError(MptcpspecError):
    """A compressed file whose decompressor is an optional module that is not installed."""


#: First octets -> compression (RFC 1952 gzip, RFC 8878 zstd frame, the lz4 frame format).
COMPRESSIONS = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"\x04\x22\x4d\x18": "lz4"}
_PEEK = 4
_CHUNK = 1 << 16
_MAX_OUT = 1 << 20  # decompressed octets made per read at most


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes | None: ...

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


def _gzip() -> Callable[[], _Decompressor]:
    return lambda: zlib.decompressobj(wbits=31)  # a gzip member, its CRC and length checked


def _zstd() -> Callable[[], _Decompressor]:
    try:
        import zstandard
    except ImportError:
        raise MissingModuleError(
            "zstd-compressed: reading it needs the zstandard module (pip install 'mptcpspec[compress]')"
        ) from None
    dctx = zstandard.ZstdDecompressor()
    return lambda: _ZstdFrame(dctx)


class _ZstdFrame:
    """One zstd frame through zstandard's decompressobj, with ``eof`` and ``unused_data``."""

    def __init__(self, dctx: object) -> None:
        self._obj = dctx.decompressobj()  # type: ignore[attr-defined]
        self.unused_data = b""

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out: bytes = self._obj.decompress(data)
        self.unused_data = self._obj.unused_data
        return out


def _lz4() -> Callable[[], _Decompressor]:
    try:
        import lz4.frame  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise MissingModuleError(
            "lz4-compressed: reading it needs the lz4 module (pip install 'mptcpspec[compress]')"
        ) from None
    return lambda: lz4.frame.LZ4FrameDecompressor()  # type: ignore[no-any-return,unused-ignore]


_FACTORIES = {"gzip": _gzip, "zstd": _zstd, "lz4": _lz4}


class Input:
    """A binary stream read forward only (``read1``, ``read``), decompressed when it is compressed.

    ``name`` is the path it was opened from (``-`` for standard input); ``compression`` is
    ``None``, ``"gzip"``, ``"zstd"`` or ``"lz4"``; ``damage`` says why the compressed stream ended
    early, or is None."""

    def __init__(self, raw: BinaryIO, name: str, *, close: bool) -> None:
        self.name = name
        self.raw = raw
        self._close = close
        self._pending = bytearray()  # octets read but not yet handed on (decompressed, when compressed)
        self._eof = False
        self.compression: str | None = None
        self.damage: str | None = None
        self.compressed_offset = 0  #: compressed octets consumed so far
        head = self._read_raw_exactly(_PEEK)
        for magic, kind in COMPRESSIONS.items():
            if head.startswith(magic):
                self.compression = kind
                break
        self._new: Callable[[], _Decompressor] | None = None
        self._dec: _Decompressor | None = None
        self._carry = b""
        if self.compression is None:
            self._pending += head
        else:
            self._new = _FACTORIES[self.compression]()
            self._dec = self._new()
            self._carry = head

    def _read_raw(self, n: int) -> bytes:
        read1 = getattr(self.raw, "read1", None)
        data: bytes = read1(n) if read1 is not None else self.raw.read(n)
        return data

    def _read_raw_exactly(self, n: int) -> bytes:
        parts, have = [], 0
        while have < n:
            chunk = self._read_raw(n - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    # ------------------------------------------------------------------ reading

    def read1(self, n: int = -1) -> bytes:
        """Up to ``n`` octets, after at most one read of the underlying stream; b"" at the end."""
        if n < 0:
            n = _MAX_OUT
        if self._dec is None and not self._pending:  # plain: straight from the file, no copy
            return self._read_raw(n)
        if not self._pending and not self._eof:
            self._fill(n)
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out

    def read(self, n: int = -1) -> bytes:
        """``n`` octets (all of them when ``n`` < 0), fewer only at the end."""
        parts, have = [], 0
        while n < 0 or have < n:
            chunk = self.read1(_MAX_OUT if n < 0 else n - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def _fill(self, n: int) -> None:
        if self._dec is None:
            chunk = self._read_raw(max(n, _CHUNK))
            if chunk:
                self._pending += chunk
            else:
                self._eof = True
            return
        # Decompress until some output comes, or the stream ends.
        while not self._pending and not self._eof:
            data = self._carry or self._read_raw(_CHUNK)
            self._carry = b""
            if not data:
                self._eof = True
                if not self._dec.eof:
                    self.damage = (
                        f"the {self.compression} stream is cut short: it ends at compressed offset "
                        f"{self.compressed_offset}, inside a compressed block"
                    )
                return
            self._decompress(data)

    def _decompress(self, data: bytes) -> None:
        assert self._dec is not None and self._new is not None
        while data:
            if self._dec.eof:  # a new member (gzip) or frame (zstd, lz4) follows the last one
                if self.compression == "gzip" and not data.strip(b"\0"):
                    self.compressed_offset += len(data)  # zero padding after a member, as gzip tolerates
                    return
                self._dec = self._new()
            try:
                out = self._dec.decompress(data)
            except Exception as e:  # zlib.error, zstd.ZstdError, RuntimeError (lz4): corrupt data
                self.damage = (
                    f"the {self.compression} data is corrupt near compressed offset {self.compressed_offset}: {e}"
                )
                self._eof = True
                return
            self._pending += out
            if self._dec.eof:
                rest = self._dec.unused_data or b""
                self.compressed_offset += len(data) - len(rest)
                data = rest
            else:
                self.compressed_offset += len(data)
                data = b""

    # ------------------------------------------------------------------ file object

    @property
    def size(self) -> int:
        """The size of the file read (compressed octets), or 0 for a pipe or a stream."""
        try:
            st = os.fstat(self.raw.fileno())
        except (OSError, ValueError, AttributeError):
            return 0
        return st.st_size if stat.S_ISREG(st.st_mode) else 0

    def reopen(self) -> Input:
        """The same file again, from its start: for a second pass.  ``OSError`` for standard input
        or a stream that is not a named file."""
        if self.name == "-" or self.size == 0 and not os.path.isfile(self.name):
            raise OSError(f"{self.name}: cannot be read twice")
        return open_input(self.name)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._close:
            self.raw.close()

    def __enter__(self) -> Input:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_input(source: str | BinaryIO) -> Input:
    """Open a capture to read: a path, ``-`` for standard input, or a binary file object; see the
    module's docstring.  ``OSError`` for a path that cannot be opened;
    :class:`MissingModuleError` for zstd or lz4 without its module."""
    if isinstance(source, str):
        if source == "-":
            return Input(sys.stdin.buffer, "-", close=False)
        f = open(source, "rb")  # noqa: SIM115 - closed with the Input
        try:
            return Input(f, source, close=True)
        except BaseException:
            f.close()
            raise
    return Input(source, getattr(source, "name", "<stream>"), close=False)
