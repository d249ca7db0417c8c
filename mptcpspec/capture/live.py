"""Live capture through libpcap, the library tcpdump and dumpcap capture with, loaded with ctypes.

>>> from mptcpspec.capture.live import LiveCapture
>>> with LiveCapture(["veth0"], bpf="tcp", count=100) as cap:  # doctest: +SKIP
...     for batch in cap.batches():
...         ...

A :class:`LiveCapture` is a :class:`~mptcpspec.capture.source.FrameSource`: the dissector reads it
as it reads a file.  Each interface is one libpcap handle (``pcap_create``, snapshot length,
promiscuous mode, buffer size, nanosecond timestamps, ``pcap_activate``; the capture filter compiled
by libpcap, so in tcpdump's dialect); the handles are non-blocking and waited on with ``select``, so
that a stop request, a signal or a deadline is seen within :data:`TIMEOUT_MS`.

A stop (:meth:`LiveCapture.stop`, which a signal handler may call, ``duration``) drains what the
kernel already holds: libpcap's TPACKET_V3 ring hands a block over when it is full or when its
timeout expires, so the capture waits up to two timeouts for the last block.  ``count`` stops at
once after that many frames.  An interface that fails during the capture (deleted) ends the
capture without raising: :attr:`LiveCapture.failure` says why, and the frames read before it were
handed on.  :meth:`LiveCapture.close` reads the kernel's counts (``pcap_stats``) into
:attr:`LiveCapture.stats` before it closes the handles.

:meth:`LiveCapture.batches` hands on frames, one Python call from libpcap each; for a capture
that is only recorded, :meth:`LiveCapture.records` has libpcap's ``pcap_dump`` write the packets
into memory and turns what each dispatch gave into the blocks of the file, in one pass.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from mptcpspec.capture.pcap import Frame
from mptcpspec.capture.writer import DEFAULT_SNAPLEN, Interface
from mptcpspec.errors import MptcpspecError

__all__ = [
    "BATCH",
    "DEFAULT_SNAPLEN",
    "HOLD_MS",
    "TIMEOUT_MS",
    "CaptureFilterError",
    "CaptureStartError",
    "DeviceInfo",
    "InterfaceStats",
    "LibpcapMissingError",
    "LiveCapture",
    "LiveCaptureError",
    "libpcap_version",
    "list_interfaces",
    "pcap_records_to_epbs",
    "pcap_records_to_micro",
    "stop_on_signals",
]

#: Milliseconds libpcap holds a partly filled ring block before it hands it over; also the longest a
#: stop request waits to be seen.
TIMEOUT_MS = 100
#: Milliseconds a frame of one of several interfaces is held, so that those of the others, whose
#: blocks come on their own clocks, can be merged in before it.
HOLD_MS = 3 * TIMEOUT_MS
#: Frames taken from one interface's buffer at a time, and handed on before the next are taken.
BATCH = 256  # about 400 KB of full-size frames: the pieces stay in the caches
_ERRBUF = 256  # PCAP_ERRBUF_SIZE
_PRECISION_NANO = 1
_WARNING_PROMISC_NOTSUP = 2
_NO_SUCH_DEVICE, _PERM_DENIED, _PROMISC_PERM_DENIED, _IFACE_NOT_UP = -5, -8, -11, -9
_IF_LOOPBACK = 1
_HEADER = struct.Struct("qqII").unpack  # struct pcap_pkthdr on LP64: timeval (seconds, fraction), caplen, len
_HEADER_SIZE = 24
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_RECORD = struct.Struct(
    "<4I"
).unpack_from  # a pcap record's header as pcap_dump writes it (seconds, fraction, caplen, len)
_PCAP_HEAD = struct.Struct("<4I").pack
_EPB_HEAD = struct.Struct("<7I").pack  # block type 6, length, interface, ts high, ts low, caplen, orig_len
_TAIL = [struct.Struct(f"<{pad}xI").pack for pad in range(4)]  # padding, then the block's length again


def _timestamp(frame: Frame) -> int:
    return frame[0]


class LiveCaptureError(MptcpspecError):
    """A live capture that cannot start: ``interface`` (None: not one in particular) and ``reason``."""

    def __init__(self, interface: str | None, reason: str) -> None:
        self.interface = interface
        self.reason = reason
        super().__init__(f"{interface}: {reason}" if interface is not None else reason)


class LibpcapMissingError(LiveCaptureError):
    """libpcap cannot be loaded."""


class CaptureStartError(LiveCaptureError):
    """An interface that cannot be captured on: ``kind`` is ``no-device``, ``permission`` or ``other``."""

    def __init__(self, interface: str, reason: str, kind: str) -> None:
        super().__init__(interface, reason)
        self.kind = kind


class CaptureFilterError(LiveCaptureError):
    """A capture filter libpcap does not compile."""


class _PcapIf(ctypes.Structure):
    pass


_PcapIf._fields_ = [
    ("next", ctypes.POINTER(_PcapIf)),
    ("name", ctypes.c_char_p),
    ("description", ctypes.c_char_p),
    ("addresses", ctypes.c_void_p),
    ("flags", ctypes.c_uint32),
]


class _Stat(ctypes.Structure):
    _fields_ = [("ps_recv", ctypes.c_uint), ("ps_drop", ctypes.c_uint), ("ps_ifdrop", ctypes.c_uint)]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "pcap_create": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]),
    "pcap_set_snaplen": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_set_promisc": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_set_timeout": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_set_buffer_size": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_set_tstamp_precision": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "pcap_activate": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_geterr": (ctypes.c_char_p, [ctypes.c_void_p]),
    "pcap_statustostr": (ctypes.c_char_p, [ctypes.c_int]),
    "pcap_datalink": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_snapshot": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_compile": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32],
    ),
    "pcap_setfilter": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(_Program)]),
    "pcap_freecode": (None, [ctypes.POINTER(_Program)]),
    "pcap_setnonblock": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]),
    "pcap_get_selectable_fd": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_dispatch": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, _CALLBACK, ctypes.c_void_p]),
    "pcap_stats": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(_Stat)]),
    "pcap_close": (None, [ctypes.c_void_p]),
    "pcap_findalldevs": (ctypes.c_int, [ctypes.POINTER(ctypes.POINTER(_PcapIf)), ctypes.c_char_p]),
    "pcap_freealldevs": (None, [ctypes.POINTER(_PcapIf)]),
    "pcap_lib_version": (ctypes.c_char_p, []),
    "pcap_dump_fopen": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
    "pcap_dump_flush": (ctypes.c_int, [ctypes.c_void_p]),
    "pcap_dump_close": (None, [ctypes.c_void_p]),
}
_LIBRARY: list[ctypes.CDLL] = []


def _libpcap() -> ctypes.CDLL:
    """libpcap, loaded once, with the signatures of the functions used."""
    if _LIBRARY:
        return _LIBRARY[0]
    names = [n for n in (ctypes.util.find_library("pcap"), "libpcap.so.1", "libpcap.so.0.8", "libpcap.so") if n]
    lib = None
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        raise LibpcapMissingError(
            None, "live capture needs libpcap, which is not installed (Debian: apt-get install libpcap0.8)"
        )
    for fname, (restype, argtypes) in _SIGNATURES.items():
        func = getattr(lib, fname)
        func.restype = restype
        func.argtypes = argtypes
    _LIBRARY.append(lib)
    return lib


def libpcap_version() -> str:
    """libpcap's own version string, e.g. ``libpcap version 1.10.3 (with TPACKET_V3)``."""
    return bytes(_libpcap().pcap_lib_version()).decode(errors="replace")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """An interface libpcap can capture on."""

    name: str
    description: str | None
    loopback: bool


def list_interfaces() -> list[DeviceInfo]:
    """The interfaces libpcap can capture on, in its order (``pcap_findalldevs``)."""
    lib = _libpcap()
    head = ctypes.POINTER(_PcapIf)()
    err = ctypes.create_string_buffer(_ERRBUF)
    if lib.pcap_findalldevs(ctypes.byref(head), err) != 0:
        raise LiveCaptureError(None, f"cannot list the interfaces: {err.value.decode(errors='replace')}")
    out = []
    node = head
    try:
        while node:
            d = node.contents
            name = (d.name or b"").decode(errors="replace")
            desc = d.description.decode(errors="replace") if d.description else None
            out.append(DeviceInfo(name, desc, bool(d.flags & _IF_LOOPBACK)))
            node = d.next
    finally:
        if head:
            lib.pcap_freealldevs(head)
    return out


@dataclass(frozen=True, slots=True)
class InterfaceStats:
    """The kernel's counts for one interface at the end of a capture (``pcap_stats``); None: not known."""

    name: str
    received: int | None  #: packets the capture filter accepted, dropped ones included (``ps_recv``)
    dropped: int | None  #: dropped for want of room in the capture buffer (``ps_drop``)
    interface_dropped: int | None  #: dropped by the interface or its driver (``ps_ifdrop``)


def _text(value: bytes | None) -> str:
    return (value or b"").decode(errors="replace").strip()


class _Dump:
    """libpcap's ``pcap_dump`` writing a handle's packets as pcap records into memory (a C stdio
    stream of ``open_memstream``): the packets of a dispatch cost no Python call each."""

    def __init__(self, lib: ctypes.CDLL, p: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.open_memstream, self.fseek, self.free = libc.open_memstream, libc.fseek, libc.free
        self.open_memstream.restype = ctypes.c_void_p
        self.open_memstream.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.fseek.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
        self.free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.buf = ctypes.c_void_p()
        self.size = ctypes.c_size_t()
        self.fp = self.open_memstream(ctypes.byref(self.buf), ctypes.byref(self.size))
        if not self.fp:
            raise OSError(ctypes.get_errno(), "open_memstream failed")
        self.dumper = lib.pcap_dump_fopen(p, self.fp)  # writes a file header, skipped below
        if not self.dumper:
            raise OSError(0, _text(lib.pcap_geterr(p)))
        self.callback = _CALLBACK(("pcap_dump", lib))
        self.take().release()

    def take(self) -> memoryview:
        """The records written since the last call, in place: valid until the next dispatch."""
        self.lib.pcap_dump_flush(self.dumper)
        n = self.size.value
        view = memoryview((ctypes.c_ubyte * n).from_address(self.buf.value or 0)).cast("B") if n else memoryview(b"")
        self.fseek(self.fp, 0, 0)
        return view

    def close(self) -> None:
        if self.dumper:
            self.lib.pcap_dump_close(self.dumper)  # closes the stream
            self.free(self.buf)
            self.dumper = None


def pcap_records_to_epbs(records: bytes | memoryview, interface: int) -> bytes:
    """pcap records with nanosecond timestamps -> pcapng Enhanced Packet Blocks of ``interface``."""
    parts: list[bytes | memoryview] = []
    view = memoryview(records)
    off, n, head, tail = 0, len(records), _EPB_HEAD, _TAIL
    while off < n:
        sec, nsec, caplen, length = _RECORD(records, off)
        ts = sec * 1_000_000_000 + nsec
        pad = -caplen & 3
        blen = 32 + caplen + pad
        parts.append(head(6, blen, interface, ts >> 32, ts & 0xFFFFFFFF, caplen, length))
        parts.append(view[off + 16 : off + 16 + caplen])
        parts.append(tail[pad](blen))
        off += 16 + caplen
    return b"".join(parts)


def pcap_records_to_micro(records: bytes | memoryview) -> bytes:
    """pcap records with nanosecond timestamps -> the same with microseconds."""
    parts: list[bytes | memoryview] = []
    view = memoryview(records)
    off, n, pack = 0, len(records), _PCAP_HEAD
    while off < n:
        sec, nsec, caplen, length = _RECORD(records, off)
        parts.append(pack(sec, nsec // 1000, caplen, length))
        parts.append(view[off + 16 : off + 16 + caplen])
        off += 16 + caplen
    return b"".join(parts)


class _Handle:
    """One interface's libpcap handle, active, non-blocking."""

    def __init__(self, lib: ctypes.CDLL, name: str, index: int) -> None:
        self.lib = lib
        self.name = name
        self.index = index
        self.linktype = 0
        self.snaplen = 0
        self.fd = -1
        self.failed: str | None = None
        self.netdev = False
        self.callback: Any = None
        self.dump: _Dump | None = None
        err = ctypes.create_string_buffer(_ERRBUF)
        self.p = lib.pcap_create(name.encode(), err)
        if not self.p:
            raise CaptureStartError(name, _text(err.value) or "cannot be opened", "other")

    def _frame_callback(self, sink: list[Frame]) -> Any:
        append, string_at, header, index = sink.append, ctypes.string_at, _HEADER, self.index
        linktype = self.linktype

        def on_frame(user: int | None, hdr: int, data: int) -> None:
            sec, nsec, caplen, length = header(string_at(hdr, _HEADER_SIZE))
            append((sec * 1_000_000_000 + nsec, linktype, string_at(data, caplen), length, index, caplen < length))

        return on_frame

    def activate(
        self, sink: list[Frame], snaplen: int, promisc: bool, buffer_bytes: int | None, bpf: str | None
    ) -> None:
        lib, p, name = self.lib, self.p, self.name
        lib.pcap_set_snaplen(p, snaplen)
        lib.pcap_set_promisc(p, int(promisc))
        lib.pcap_set_timeout(p, TIMEOUT_MS)
        if buffer_bytes is not None:
            lib.pcap_set_buffer_size(p, buffer_bytes)
        lib.pcap_set_tstamp_precision(p, _PRECISION_NANO)
        status = lib.pcap_activate(p)
        if status < 0:
            detail = _text(lib.pcap_geterr(p))
            general = _text(lib.pcap_statustostr(status))
            if status == _NO_SUCH_DEVICE:
                raise CaptureStartError(name, "no such interface", "no-device")
            if status in (_PERM_DENIED, _PROMISC_PERM_DENIED):
                why = f" ({detail})" if detail and detail != general else ""
                raise CaptureStartError(
                    name, f"no permission to capture: root or CAP_NET_RAW is needed{why}", "permission"
                )
            if status == _IFACE_NOT_UP:
                raise CaptureStartError(name, "the interface is not up", "other")
            raise CaptureStartError(name, detail or general, "other")
        self.linktype = lib.pcap_datalink(p)
        self.snaplen = lib.pcap_snapshot(p)
        try:
            self.netdev = name != "any" and socket.if_nametoindex(name) > 0  # not nflog, dbus-system...
        except OSError:
            self.netdev = False
        self.callback = _CALLBACK(self._frame_callback(sink))
        if bpf is not None:
            prog = _Program()
            if lib.pcap_compile(p, ctypes.byref(prog), bpf.encode(), 1, 0xFFFFFFFF) != 0:  # PCAP_NETMASK_UNKNOWN
                raise CaptureFilterError(name, f"capture filter {bpf!r}: {_text(lib.pcap_geterr(p))}")
            try:
                if lib.pcap_setfilter(p, ctypes.byref(prog)) != 0:
                    raise CaptureFilterError(name, f"capture filter {bpf!r}: {_text(lib.pcap_geterr(p))}")
            finally:
                lib.pcap_freecode(ctypes.byref(prog))
        err = ctypes.create_string_buffer(_ERRBUF)
        if lib.pcap_setnonblock(p, 1, err) != 0:
            raise CaptureStartError(name, _text(err.value), "other")
        self.fd = lib.pcap_get_selectable_fd(p)
        if self.fd < 0:
            raise CaptureStartError(name, "libpcap gives no descriptor to wait on", "other")

    def record(self) -> None:
        """From now on, :meth:`dispatch` writes pcap records (:meth:`records`) instead of frames."""
        self.dump = _Dump(self.lib, self.p)

    def records(self) -> memoryview:
        """The records of the dispatches since the last call, valid until the next dispatch."""
        return memoryview(b"") if self.dump is None else self.dump.take()

    def dispatch(self, limit: int = -1) -> int:
        """Hand at most ``limit`` (-1: all) of the frames the kernel holds to the sink, or to the
        records; their number, or -1 (and :attr:`failed` set) on an error."""
        if self.dump is not None:
            n = int(self.lib.pcap_dispatch(self.p, limit, self.dump.callback, self.dump.dumper))
        else:
            n = int(self.lib.pcap_dispatch(self.p, limit, self.callback, None))
        if n == -1:
            why = _text(self.lib.pcap_geterr(self.p)) or "the capture failed"
            self.failed = why[:1].lower() + why[1:] if why[1:2].islower() else why  # "The interface disappeared"
        return n

    def stats(self) -> InterfaceStats:
        st = _Stat()
        if self.lib.pcap_stats(self.p, ctypes.byref(st)) != 0:
            return InterfaceStats(self.name, None, None, None)
        return InterfaceStats(self.name, st.ps_recv, st.ps_drop, st.ps_ifdrop)

    def close(self) -> None:
        if self.dump is not None:
            self.dump.close()
        if self.p:
            self.lib.pcap_close(self.p)
            self.p = None


class LiveCapture:
    """Frames captured live on ``interfaces`` (``any``: all of them), as a
    :class:`~mptcpspec.capture.source.FrameSource`; a frame's interface is its index in ``interfaces``.

    ``snaplen``: octets kept of each frame; ``promisc``: promiscuous mode; ``buffer_mib``: the kernel
    buffer (None: libpcap's 2 MiB); ``bpf``: capture filter; ``count``: stop after so many frames;
    ``duration``: stop after so many seconds.  Opening raises :class:`LiveCaptureError` (no libpcap,
    no such interface, no permission, a filter that does not compile) before any frame is read."""

    def __init__(
        self,
        interfaces: Sequence[str],
        *,
        snaplen: int = DEFAULT_SNAPLEN,
        promisc: bool = True,
        buffer_mib: int | None = None,
        bpf: str | None = None,
        count: int | None = None,
        duration: float | None = None,
    ) -> None:
        lib = _libpcap()
        self.problems: list[str] = []
        self.frames = 0  #: frames handed on
        self.captured = 0  #: frames libpcap gave, some perhaps held to be merged
        self.count = count or None
        self.duration = duration
        self.failure: str | None = None  #: why the capture ended early: an interface that failed
        self.stopped_by: str | None = None  #: ``count``, ``duration``, ``signal``, ``failure``, or None
        self.stats: list[InterfaceStats] = []  #: the kernel's counts, set by :meth:`close`
        self._sink: list[Frame] = []
        self._pending: list[Frame] = []  # frames of several interfaces, held to be merged in time order
        self._consume: Callable[[_Handle], None] | None = None  # record only: takes a handle's records
        self._stop = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._handles: list[_Handle] = []
        try:
            for i, name in enumerate(interfaces):
                h = _Handle(lib, name, i)
                self._handles.append(h)
                h.activate(self._sink, snaplen, promisc, None if buffer_mib is None else buffer_mib << 20, bpf)
        except BaseException:
            self.close()
            raise
        self.started = time.monotonic()

    @property
    def names(self) -> list[str]:
        return [h.name for h in self._handles]

    @property
    def interfaces(self) -> list[Interface]:
        """The interfaces, as a capture file describes them (name, link type, snapshot length)."""
        return [Interface(h.name, h.linktype, h.snaplen) for h in self._handles]

    @property
    def position(self) -> int:
        return 0

    def stop(self, reason: str = "signal") -> None:
        """Ask the capture to stop, draining what the kernel holds; safe in a signal handler."""
        if not self._stop:
            self.stopped_by = reason
        self._stop = True
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def _take(self, everything: bool = False) -> list[Frame]:
        """The frames to hand on now.  From several interfaces, frames are merged in time order:
        each interface's ring hands its blocks over on its own clock, so a frame is held until
        :data:`HOLD_MS` have passed since it was captured, when no other ring can hold an older
        one (``everything``: at the end, all of them)."""
        if len(self._handles) > 1:
            pending = self._pending
            pending.extend(self._sink)
            self._sink.clear()
            pending.sort(key=_timestamp)
            cut = len(pending)
            if not everything:
                limit = time.time_ns() - HOLD_MS * 1_000_000
                cut = bisect.bisect_right(pending, limit, key=_timestamp)
            batch = pending[:cut]
            del pending[:cut]
        else:
            batch = self._sink[:]
            self._sink.clear()
        self.frames += len(batch)
        return batch

    def _poll(self, wait: float) -> None:
        """Wait up to ``wait`` seconds for frames, and dispatch those the kernel hands over."""
        live = [h for h in self._handles if h.failed is None]
        try:
            ready, _, _ = select.select([*(h.fd for h in live), self._wake_r], [], [], max(wait, 0.0))
        except InterruptedError:  # pragma: no cover - select is retried by Python itself (PEP 475)
            return
        if self._wake_r in ready:
            os.read(self._wake_r, 64)
        for h in live:
            if h.fd in ready:
                while True:  # in pieces of BATCH frames, each handed on before the next is taken
                    left = BATCH if self.count is None else min(BATCH, self.count - self.captured)
                    if left <= 0:
                        break
                    n = h.dispatch(left)
                    if n > 0:
                        self.captured += n
                        if self._consume is not None:
                            self._consume(h)
                    if n < left:
                        break
            elif not ready and h.netdev:  # idle: is the interface still there (libpcap may not say)
                try:
                    socket.if_nametoindex(h.name)
                except OSError:
                    h.failed = "the interface disappeared"
            if h.failed is not None and self.failure is None:
                self.failure = f"{h.name}: {h.failed}"
                self.stopped_by = "failure"
                self._stop = True
        if self.count is not None and self.captured >= self.count and not self._stop:
            self._stop = True
            self.stopped_by = "count"

    def _run(self) -> Iterator[bool]:
        """Look at the kernel's buffers until a stop, then drain them; yields after each look,
        True for the last."""
        while not self._stop:
            wait = TIMEOUT_MS / 1000
            if self.duration is not None:
                left = self.started + self.duration - time.monotonic()
                if left <= 0:
                    self.stop("duration")
                    break
                wait = min(wait, left)
            self._poll(wait)
            yield False
        if self.stopped_by != "count":  # what the kernel holds, the last partly filled block included
            deadline = time.monotonic() + 2 * TIMEOUT_MS / 1000
            while any(h.failed is None for h in self._handles) and (self.count is None or self.captured < self.count):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._poll(min(left, TIMEOUT_MS / 1000))
        yield True

    def batches(self) -> Iterator[list[Frame]]:
        """The frames, one list per look at the kernel's buffers, until a stop (see the module)."""
        for last in self._run():
            if self._sink or self._pending:
                batch = self._take(everything=last)
                if batch:
                    yield batch

    def records(self, file_format: str) -> Iterator[bytes]:
        """Record only: the frames as they go into a file of ``file_format`` (pcapng: Enhanced
        Packet Blocks naming the interfaces by index; pcap, nsecpcap: records), written by libpcap's
        ``pcap_dump``, not one Python call each.  Not merged in time order across interfaces, as
        dumpcap's.  Call instead of :meth:`batches`."""
        out: list[bytes] = []

        def consume(h: _Handle) -> None:
            records = h.records()
            if file_format == "pcapng":
                out.append(pcap_records_to_epbs(records, h.index))
            elif file_format == "pcap":
                out.append(pcap_records_to_micro(records))
            else:
                out.append(bytes(records))
            records.release()

        for h in self._handles:
            h.record()
        self._consume = consume
        for _ in self._run():
            yield from out
            out.clear()
        self.frames = self.captured

    def close(self) -> None:
        """Read the kernel's counts into :attr:`stats` and close the handles (a second call does nothing)."""
        if self._handles:
            self.stats = [h.stats() for h in self._handles]
        for h in self._handles:
            h.close()
        self._handles = []
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def stop_on_signals(capture: LiveCapture) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM stop ``capture`` cleanly (a second SIGINT interrupts)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        capture.stop("signal")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
