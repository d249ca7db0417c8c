"""Write frames to a pcapng, pcap or nanosecond pcap file, as ``tshark -w`` and ``-F`` do.

>>> import io
>>> from mptcpspec.capture.pcap import CaptureReader
>>> frames = list(CaptureReader("tests/data/v4-two-subflows.pcap").frames())
>>> out = io.BytesIO()
>>> with CaptureWriter(out, "pcapng") as w:
...     w.write_many(frames)
>>> again = list(CaptureReader(io.BytesIO(out.getvalue())).frames())
>>> again == frames
True

A frame is the tuple :data:`~mptcpspec.capture.pcap.Frame` as the reader yields it:
``(timestamp_ns, linktype, data, orig_len, interface, truncated)``.

* **pcapng**: a Section Header Block (``shb_userappl`` mptcpspec), then one Interface Description
  Block for each (interface, link type) pair of the frames, written where the pair is first met,
  with ``if_tsresol`` 9 so that timestamps keep their nanoseconds; each frame an Enhanced Packet
  Block with its captured octets and its length on the wire.  A live capture describes its
  interfaces up front instead (:class:`Interface`): their blocks carry ``if_name``, frames name
  them by their index, and :meth:`CaptureWriter.statistics` adds an Interface Statistics Block.
* **pcap** (microseconds, magic a1b2c3d4) and **nsecpcap** (nanoseconds, a1b23c4d): one link type
  per file, that of the first frame (or of the interfaces described); a frame of another raises
  :class:`LinkTypeError` and the file keeps the frames before it.  An empty pcap file says
  Ethernet.

Writes are gathered in memory and written in large pieces; :meth:`CaptureWriter.flush` pushes
them to the file, :meth:`CaptureWriter.close` (which may be called again) leaves the file complete.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from mptcpspec.capture.linktypes import LinkType, linktype_name
from mptcpspec.capture.pcap import Frame
from mptcpspec.errors import MptcpspecError
from mptcpspec.records import dataclass

__all__ = [
    "DEFAULT_SNAPLEN",
    "FORMATS",
    "CaptureWriter",
    "Interface",
    "LinkTypeError",
    "WriteError",
    "open_writer",
]

#: The file formats written, by their ``-F`` names.
FORMATS = ("pcapng", "pcap", "nsecpcap")
#: Snapshot length of a pcap header, or of an interface that does not say its own (tcpdump's default).
DEFAULT_SNAPLEN = 262144
_FLUSH = 1 << 20  # octets gathered before they are written
_USERAPPL = "mptcpspec"

_EPB_HEAD = struct.Struct("<7I").pack  # block type 6, length, interface, ts high, ts low, caplen, orig_len
_PCAP_HEAD = struct.Struct("<4I").pack  # seconds, fraction, caplen, orig_len
_TAIL = [struct.Struct(f"<{pad}xI").pack for pad in range(4)]  # padding, then the block's length again
_MASK32 = 0xFFFFFFFF


class WriteError(MptcpspecError):
    """Frames or interfaces that the file being written cannot hold."""


class LinkTypeError(WriteError):
    """A frame of a link type that a pcap file of another link type cannot hold.

    ``frame`` counts the frames offered to the writer (1 is the first), ``linktype`` is the frame's,
    ``file_linktype`` the file's, ``file_format`` ``"pcap"`` or ``"nsecpcap"``; the message is
    ``frame N`` and :attr:`reason`."""

    def __init__(self, frame: int, linktype: int, file_linktype: int, file_format: str) -> None:
        self.frame = frame
        self.linktype = linktype
        self.file_linktype = file_linktype
        self.file_format = file_format
        #: the message without the frame's number, for a caller that names the frame its own way
        self.reason = (
            f"has link type {linktype} ({linktype_name(linktype)}), which a {file_format} file "
            f"of link type {file_linktype} ({linktype_name(file_linktype)}) cannot hold: write pcapng (-F pcapng)"
        )
        super().__init__(f"frame {frame} {self.reason}")


@dataclass(frozen=True, slots=True)
class Interface:
    """An interface a live capture describes before its first frame."""

    name: str | None  #: its name (``if_name``), e.g. ``eth0``
    linktype: int  #: link-layer header type of its frames
    snaplen: int = DEFAULT_SNAPLEN  #: octets kept of each frame at most (0: no limit)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) & 3)


def _block(btype: int, body: bytes) -> bytes:
    blen = 12 + len(body)
    return struct.pack("<II", btype, blen) + body + struct.pack("<I", blen)


class CaptureWriter:
    """Frames into a pcapng, pcap or nsecpcap file (:data:`FORMATS`) on a binary stream.

    ``interfaces``: those a live capture describes up front (the frames name them by index); without
    them, each (interface, link type) pair of the frames is described where it is first met.
    ``close_stream``: close ``stream`` on :meth:`close` (else it is only flushed)."""

    def __init__(
        self,
        stream: BinaryIO,
        file_format: str = "pcapng",
        interfaces: Sequence[Interface] | None = None,
        *,
        close_stream: bool = False,
    ) -> None:
        if file_format not in FORMATS:
            raise WriteError(f"{file_format}: not a format written ({', '.join(FORMATS)})")
        self.stream = stream
        self.file_format = file_format
        self.frames = 0  #: frames written
        self.closed = False
        self._close_stream = close_stream
        self._parts: list[bytes] = []
        self._size = 0
        self._described = interfaces is not None
        self._ids: dict[tuple[int, int], int] = {}  # (interface, link type) of the frames -> interface written
        self._interfaces: list[Interface] = []
        self._linktype: int | None = None  # pcap: the file's link type, once its header is written
        self._scale = 1000 if file_format == "pcap" else 1  # pcap: ns -> us
        self._per_second = 1_000_000_000 // self._scale
        self._snaplen = DEFAULT_SNAPLEN
        if file_format == "pcapng":
            self._put(self._shb())
            for i, itf in enumerate(interfaces or ()):
                self._ids[(i, itf.linktype)] = i
                self._put(self._idb(itf))
        elif interfaces:
            types = {itf.linktype for itf in interfaces}
            if len(types) > 1:
                names = ", ".join(f"{t} ({linktype_name(t)})" for t in sorted(types))
                raise WriteError(f"a {file_format} file holds one link type, the interfaces have {names}")
            self._snaplen = max(itf.snaplen for itf in interfaces) or DEFAULT_SNAPLEN
            self._pcap_header(interfaces[0].linktype)
        if interfaces is not None:
            self._interfaces = list(interfaces)

    # ------------------------------------------------------------------ blocks

    @staticmethod
    def _shb() -> bytes:
        from mptcpspec import __version__

        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        body += _option(4, f"{_USERAPPL} {__version__}".encode()) + _option(0, b"")
        return _block(0x0A0D0D0A, body)

    @staticmethod
    def _idb(itf: Interface) -> bytes:
        body = struct.pack("<HHI", itf.linktype, 0, itf.snaplen)
        if itf.name is not None:
            body += _option(2, itf.name.encode())
        body += _option(9, b"\x09") + _option(0, b"")
        return _block(1, body)

    def _pcap_header(self, linktype: int) -> None:
        self._linktype = linktype
        magic = 0xA1B2C3D4 if self.file_format == "pcap" else 0xA1B23C4D
        self._put(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, self._snaplen, linktype))

    def _put(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)

    def _new_interface(self, interface: int, linktype: int) -> int:
        """The interface written for frames of ``interface`` and ``linktype``, described now if new."""
        if self._described:
            have = self._interfaces[interface].linktype if 0 <= interface < len(self._interfaces) else None
            if have is None:
                raise WriteError(f"frame {self.frames + 1} names interface {interface}, not described")
            raise WriteError(
                f"frame {self.frames + 1} has link type {linktype} ({linktype_name(linktype)}), "
                f"interface {interface} was described with {have} ({linktype_name(have)})"
            )
        number = len(self._ids)
        self._ids[(interface, linktype)] = number
        self._interfaces.append(Interface(None, linktype, 0))
        self._put(self._idb(self._interfaces[-1]))
        return number

    # ------------------------------------------------------------------ frames

    def write(self, frame: Frame) -> None:
        """Write one frame."""
        if self.closed:
            raise WriteError("write to a closed capture writer")
        ts, linktype, data, orig_len, interface, _ = frame
        n = len(data)
        parts = self._parts
        if self.file_format == "pcapng":
            number = self._ids.get((interface, linktype))
            if number is None:
                number = self._new_interface(interface, linktype)
            pad = -n & 3
            blen = 32 + n + pad
            # one extend: an interrupt (Ctrl-C) comes before or after the whole block, never inside it
            parts += (
                _EPB_HEAD(6, blen, number, (ts >> 32) & _MASK32, ts & _MASK32, n, orig_len),
                data,
                _TAIL[pad](blen),
            )
            self._size += blen
        else:
            if linktype != self._linktype:
                if self._linktype is not None:
                    raise LinkTypeError(self.frames + 1, linktype, self._linktype, self.file_format)
                self._pcap_header(linktype)
            sec, frac = divmod(ts // self._scale, self._per_second)
            parts += (_PCAP_HEAD(sec & _MASK32, frac, n, orig_len), data)
            self._size += 16 + n
        self.frames += 1
        if self._size >= _FLUSH:
            self._drain()

    def write_many(self, frames: Iterable[Frame]) -> None:
        """Write frames in order (what :meth:`write` does for each)."""
        write = self.write
        for frame in frames:
            write(frame)

    def statistics(
        self, interface: int, received: int | None, dropped: int | None, timestamp_ns: int | None = None
    ) -> bool:
        """Add an Interface Statistics Block (``isb_ifrecv``, ``isb_ifdrop``) for ``interface`` as the
        frames name it; False for a pcap file, which has no place for them."""
        if self.file_format != "pcapng":
            return False
        numbers = [n for (i, _), n in self._ids.items() if i == interface]
        if not numbers:
            raise WriteError(f"statistics for interface {interface}, which is not described")
        ts = 0 if timestamp_ns is None else timestamp_ns
        opts = b""
        if received is not None:
            opts += _option(4, struct.pack("<Q", received))
        if dropped is not None:
            opts += _option(5, struct.pack("<Q", dropped))
        body = struct.pack("<III", numbers[0], (ts >> 32) & _MASK32, ts & _MASK32) + opts
        self._put(_block(5, body + (_option(0, b"") if opts else b"")))
        return True

    def _drain(self) -> None:
        if self._parts:
            parts, self._parts, self._size = self._parts, [], 0  # taken first: never written twice
            self.stream.write(b"".join(parts))

    def flush(self) -> None:
        """Write what is gathered, and flush the stream."""
        if self.closed:
            return
        self._drain()
        self.stream.flush()

    def close(self) -> None:
        """Write the rest and close (a second call does nothing).  A pcap file with no frame and no
        interface described gets its header here, with link type Ethernet."""
        if self.closed:
            return
        try:
            if self.file_format != "pcapng" and self._linktype is None:
                self._pcap_header(int(LinkType.ETHERNET))
            self._drain()
            self.stream.flush()
        finally:
            self.closed = True
            if self._close_stream:
                self.stream.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_writer(
    path: str | os.PathLike[str], file_format: str, interfaces: Sequence[Interface] | None = None
) -> CaptureWriter:
    """A :class:`CaptureWriter` on the file ``path`` (``-``: standard output), made or emptied now,
    so that a path that cannot be written fails before anything is read (:class:`OSError`)."""
    if file_format not in FORMATS:
        raise WriteError(f"{file_format}: not a format written ({', '.join(FORMATS)})")
    if os.fspath(path) == "-":
        return CaptureWriter(sys.stdout.buffer, file_format, interfaces)
    stream = open(path, "wb")  # noqa: SIM115 - closed by the writer
    try:
        return CaptureWriter(stream, file_format, interfaces, close_stream=True)
    except BaseException:
        stream.close()
        raise
