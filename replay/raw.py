"""Stateless replay (``mptcpspec replay --mode raw``): every packet of a capture, both directions,
sent onto an interface as it was, addresses rewritten and checksums made right again, like
tcpreplay with tcprewrite, for testing middleboxes.

Frames go out whole through a packet socket bound to the interface.  An Ethernet capture keeps its
MAC addresses; other link types (Linux cooked, raw IP...) get an Ethernet header with the
interface's own address as source and ``dst_mac`` (default broadcast) as destination.  Only IP
packets are sent; after rewriting, a packet must go to an address given on the command line (the
right-hand sides of ``--map``), or it is skipped and counted: the mode never sends elsewhere.

Many frames go out per system call (sendmmsg(2), up to :data:`BATCH`): with ``preload`` (``-K``,
as tcpreplay's) every frame is read, rewritten and laid out in one buffer before the clock starts;
without it, at ``timing="fast"`` and no rate, the capture is read and sent a batch at a time, and
otherwise one frame per send(2), each read just before it is due.  The :class:`Schedule`
(``timing``, ``rate``) makes a batch only as big as the packets already due.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import struct
import sys
import time
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice

from mptcpspec.capture.packets import ip_payload_offset
from mptcpspec.capture.pcap import LinkType, read_records
from mptcpspec.replay.setup import Address, Timing
from mptcpspec.replay.wire import fold, ip_checksum, tcp_checksum

__all__ = [
    "BATCH",
    "Batch",
    "RawReport",
    "Schedule",
    "capture_frames",
    "raw_frames",
    "send_frames",
    "send_raw",
    "sendmmsg_available",
]

_ETHERNET = int(LinkType.ETHERNET)


@dataclass(frozen=True, slots=True)
class RawReport:
    sent: int  #: packets sent
    skipped: int  #: not IP, or to an address not allowed
    octets: int  #: IP octets sent
    elapsed: float  #: seconds, from the clock's start (after the preload) to the last send
    calls: int = 0  #: system calls that sent them (send(2) or sendmmsg(2))
    preload: float = 0.0  #: seconds spent preloading, before the clock started (0: no preload)


def rewrite(ip: bytes, mapping: Mapping[Address, Address]) -> bytes | None:
    """An IP packet with its addresses mapped and its IPv4 and TCP checksums computed again."""
    ver = ip[0] >> 4
    b = bytearray(ip)
    src: Address
    dst: Address
    if ver == 4 and len(b) >= 20:
        ihl = (b[0] & 15) * 4
        src = ipaddress.IPv4Address(bytes(b[12:16]))
        dst = ipaddress.IPv4Address(bytes(b[16:20]))
        src, dst = mapping.get(src, src), mapping.get(dst, dst)
        b[12:16], b[16:20] = src.packed, dst.packed
        b[10:12] = b"\0\0"
        b[10:12] = struct.pack("!H", ip_checksum(bytes(b[:ihl])))
        proto, payload_at = b[9], ihl
        frag = struct.unpack_from("!H", b, 6)[0] & 0x1FFF
        total = struct.unpack_from("!H", b, 2)[0] or len(b)
    elif ver == 6 and len(b) >= 40:
        src = ipaddress.IPv6Address(bytes(b[8:24]))
        dst = ipaddress.IPv6Address(bytes(b[24:40]))
        src, dst = mapping.get(src, src), mapping.get(dst, dst)
        b[8:24], b[24:40] = src.packed, dst.packed
        proto, payload_at, frag = b[6], 40, 0
        total = 40 + struct.unpack_from("!H", b, 4)[0]
    else:
        return None
    if proto == 6 and not frag and total <= len(b) and len(b) >= payload_at + 20:
        seg = bytearray(b[payload_at:total])
        seg[16:18] = b"\0\0"
        seg[16:18] = struct.pack("!H", tcp_checksum(src, dst, bytes(seg)))
        b[payload_at:total] = seg
    return bytes(b)


def _adjust(csum: int, old: bytes, new: bytes) -> int:
    """A checksum updated for ``old`` octets replaced by ``new`` (RFC 1624, eqn. 3): no full pass."""
    total = (~csum & 0xFFFF) + fold(sum(struct.unpack(f"!{len(old) // 2}H", bytes(x ^ 0xFF for x in old))))
    total += sum(struct.unpack(f"!{len(new) // 2}H", new))
    return ~fold(total) & 0xFFFF


def raw_frames(
    path: str | os.PathLike[str], mapping: Mapping[Address, Address], allowed: Collection[Address]
) -> Iterator[tuple[int, bytes | None, bytes]]:
    """(capture time ns, Ethernet header of the capture or None, rewritten IP packet) for every IP
    packet of the capture whose rewritten destination is in ``allowed``; others as (time, None, b"").

    Addresses are replaced as octets and the IPv4 header and TCP checksums updated incrementally
    (RFC 1624), so a packet keeps every other octet of the capture, a wrong checksum included."""
    packed = {a.packed: b.packed for a, b in mapping.items()}
    ok = {a.packed for a in allowed}
    for rec in read_records(path):
        data = rec.data
        at = ip_payload_offset(rec.linktype, data)
        if at is None or len(data) < at + 20:
            yield rec.timestamp_ns, None, b""
            continue
        ver = data[at] >> 4
        if ver == 4:
            s_at, d_at, alen = at + 12, at + 16, 4
        elif ver == 6 and len(data) >= at + 40:
            s_at, d_at, alen = at + 8, at + 24, 16
        else:
            yield rec.timestamp_ns, None, b""
            continue
        src, dst = data[s_at : s_at + alen], data[d_at : d_at + alen]
        nsrc, ndst = packed.get(src, src), packed.get(dst, dst)
        if ndst not in ok:
            yield rec.timestamp_ns, None, b""
            continue
        eth = data[:at] if rec.linktype == _ETHERNET else None
        if nsrc == src and ndst == dst:
            yield rec.timestamp_ns, eth, data[at:]
            continue
        yield rec.timestamp_ns, eth, _rewritten(data, at, src + dst, nsrc + ndst)


def _rewritten(data: bytes, at: int, old: bytes, new: bytes) -> bytes:
    """The IP packet at ``data[at:]`` with its source and destination ``old`` (both, packed) made
    ``new``, the IPv4 header and TCP checksums updated incrementally (RFC 1624)."""
    b = bytearray(data[at:])
    if b[0] >> 4 == 4:
        b[12:20] = new
        ihl = (b[0] & 15) * 4
        b[10:12] = struct.pack("!H", _adjust(struct.unpack_from("!H", b, 10)[0], old, new))
        proto, t = b[9], ihl
        frag = struct.unpack_from("!H", b, 6)[0] & 0x1FFF
    else:
        b[8:40] = new
        proto, t, frag = b[6], 40, 0
    if proto == 6 and not frag and len(b) >= t + 18:  # the pseudo-header holds the addresses
        b[t + 16 : t + 18] = struct.pack("!H", _adjust(struct.unpack_from("!H", b, t + 16)[0], old, new))
    return bytes(b)


BATCH = 1024  #: frames per sendmmsg(2) at most: the kernel's UIO_MAXIOV caps it there
_MMSG = 64  # sizeof(struct mmsghdr) on 64-bit Linux: msghdr (56) + msg_len, padded
_IOV = 16  # sizeof(struct iovec)
_PRELOAD_CHUNK = 65536  # frames laid out in one Batch when preloading


def _libc_sendmmsg() -> Callable[[int, int, int, int], int] | None:
    if sys.platform != "linux" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        f = ctypes.CDLL(None, use_errno=True).sendmmsg
    except (OSError, AttributeError):
        return None
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    f.restype = ctypes.c_int
    return f


_sendmmsg = _libc_sendmmsg()


def sendmmsg_available() -> bool:
    """Whether batches go out by sendmmsg(2) here (64-bit Linux); else one send(2) per frame."""
    return _sendmmsg is not None


class Batch:
    """Frames laid end to end in one buffer, with the ``struct mmsghdr`` array (one ``struct
    iovec`` each, no address: the socket is bound) that sendmmsg(2) takes, built once so that any
    run of them goes out in one call without a copy."""

    __slots__ = ("_buf", "_iov", "_msgs", "_msgs_at", "count", "octets", "times")

    def __init__(self, times: Sequence[int], frames: Sequence[bytes]) -> None:
        if len(times) != len(frames):
            raise ValueError(f"Batch: {len(times)} times for {len(frames)} frames")
        n = len(frames)
        self.times = times  #: capture time (ns) of each frame
        self.count = n
        joined = bytearray().join(frames)
        joined.append(0)  # never empty: from_buffer needs an octet
        self.octets = len(joined) - 1  #: frame octets
        self._buf = (ctypes.c_char * len(joined)).from_buffer(joined)
        base = ctypes.addressof(self._buf)
        lengths = array("Q", map(len, frames))
        iov = array("Q", bytes(_IOV * n))
        iov[0::2] = array("Q", (base + end - size for end, size in zip(accumulate(lengths), lengths)))
        iov[1::2] = lengths
        msgs = array("Q", bytes(_MMSG * n))
        iov_at = iov.buffer_info()[0]
        msgs[2 :: _MMSG // 8] = array("Q", range(iov_at, iov_at + _IOV * n, _IOV))  # msg_iov
        msgs[3 :: _MMSG // 8] = array("Q", [1]) * n  # msg_iovlen
        self._iov, self._msgs = iov, msgs
        self._msgs_at = msgs.buffer_info()[0]

    def frame(self, i: int) -> bytes:
        """Frame ``i`` as sendmmsg(2) reads it: through its iovec."""
        if not 0 <= i < self.count:
            raise IndexError(f"Batch.frame: {i} not in 0..{self.count - 1}")
        return ctypes.string_at(self._iov[2 * i], self._iov[2 * i + 1])

    def send(self, fd: int, i: int, n: int) -> int:
        """Send frames ``i`` to ``i + n`` on the bound socket ``fd``, in calls of at most :data:`BATCH`;
        returns the calls made.  Raises OSError as send(2) would."""
        if _sendmmsg is None:
            raise OSError(f"sendmmsg(2) is not available on {sys.platform}")
        calls = 0
        end = i + n
        while i < end:
            done = _sendmmsg(fd, self._msgs_at + _MMSG * i, min(end - i, BATCH), 0)
            calls += 1
            if done < 0:
                err = ctypes.get_errno()
                if err == errno.EINTR:  # a signal: its Python handler runs now, then this goes on
                    continue
                raise OSError(err, f"sendmmsg: {os.strerror(err)}")
            i += done
        return calls


class Schedule:
    """When packets are due, sans-IO (the caller gives the time): at their captured offset from the
    first one sent, scaled by ``timing``, from the clock's ``start``; and no faster than ``rate``
    packets per second (at most 2 ms of sends ahead of it after a stall)."""

    __slots__ = ("_first", "_gap", "_next", "_scale", "start")

    def __init__(self, timing: Timing, rate: float | None, start: float) -> None:
        self.start = start
        self._scale = None if timing == "fast" else 1.0 if timing == "as-captured" else 1.0 / float(timing)
        self._gap = 1.0 / rate if rate else 0.0
        self._next = start
        self._first: int | None = None

    def due(self, times: Sequence[int], i: int, limit: int, now: float) -> int:
        """How many of the packets ``times[i:i + limit]`` are due at ``now`` (0: none yet)."""
        n = min(limit, len(times) - i)
        if self._gap:
            at = max(self._next, now - 0.002)
            if at > now:
                return 0
            n = min(n, int((now - at) / self._gap) + 1)
        if self._scale is not None and n > 0:
            if self._first is None:
                self._first = times[i]
            horizon = self._first + (now - self.start) / self._scale * 1e9
            k = 0
            while k < n and times[i + k] <= horizon:
                k += 1
            n = k
        return n

    def wait(self, times: Sequence[int], i: int, now: float) -> float:
        """Seconds from ``now`` until packet ``i`` is due (0 or less: due)."""
        at = self._next if self._gap else now
        if self._scale is not None:
            first = times[i] if self._first is None else self._first
            at = max(at, self.start + (times[i] - first) / 1e9 * self._scale)
        return at - now

    def sent(self, n: int, now: float) -> None:
        """``n`` packets went out at ``now``."""
        if self._gap:
            self._next = max(self._next, now - 0.002) + n * self._gap


def capture_frames(
    path: str | os.PathLike[str],
    mapping: Mapping[Address, Address],
    allowed: Collection[Address],
    own: bytes,
    dst_mac: bytes,
) -> Iterator[tuple[int, bytes | None, int]]:
    """(capture time ns, the whole frame to send or None: skipped, its IP octets) for every record
    of the capture: :func:`raw_frames`' packets, each with its Ethernet header (an Ethernet capture's
    own, else one from ``own`` to ``dst_mac``).  The same loop, fused: an Ethernet record whose
    addresses stay is sent as it was read, with no copy."""
    packed = {a.packed: b.packed for a, b in mapping.items()}
    ok = {a.packed for a in allowed}
    v4, v6 = dst_mac + own + b"\x08\x00", dst_mac + own + b"\x86\xdd"
    for rec in read_records(path):
        data = rec.data
        at = ip_payload_offset(rec.linktype, data)
        if at is None or len(data) < at + 20:
            yield rec.timestamp_ns, None, 0
            continue
        ver = data[at] >> 4
        if ver == 4:
            s_at, d_at, alen = at + 12, at + 16, 4
        elif ver == 6 and len(data) >= at + 40:
            s_at, d_at, alen = at + 8, at + 24, 16
        else:
            yield rec.timestamp_ns, None, 0
            continue
        src, dst = data[s_at : s_at + alen], data[d_at : d_at + alen]
        nsrc, ndst = packed.get(src, src), packed.get(dst, dst)
        if ndst not in ok:
            yield rec.timestamp_ns, None, 0
            continue
        ethernet = rec.linktype == _ETHERNET and at >= 14
        if nsrc == src and ndst == dst:
            if ethernet:
                yield rec.timestamp_ns, data, len(data) - at
            else:
                yield rec.timestamp_ns, (v4 if ver == 4 else v6) + data[at:], len(data) - at
            continue
        ip = _rewritten(data, at, src + dst, nsrc + ndst)
        yield rec.timestamp_ns, (data[:at] if ethernet else v4 if ver == 4 else v6) + ip, len(ip)


Chunk = tuple[list[int], list[bytes], int]  #: capture times (ns), frames, their IP octets


def _chunks(frames: Iterable[tuple[int, bytes | None, int]], size: int, skipped: list[int]) -> Iterator[Chunk]:
    """The frames to send, from ``size`` records at a time (0: all in one), skipped ones counted in
    ``skipped[0]``."""
    it = iter(frames)
    while True:
        times: list[int] = []
        out: list[bytes] = []
        octets = read = 0
        for ts, frame, n in islice(it, size) if size else it:
            read += 1
            if frame is None:
                skipped[0] += 1
            else:
                times.append(ts)
                out.append(frame)
                octets += n
        if out:
            yield times, out, octets
        if not size or read < size:
            return


def send_raw(
    path: str | os.PathLike[str],
    iface: str,
    mapping: Mapping[Address, Address],
    allowed: Collection[Address],
    *,
    timing: Timing = "fast",
    rate: float | None = None,
    dst_mac: bytes = b"\xff" * 6,
    preload: bool = False,
    batch: int = BATCH,
) -> RawReport:
    """Send the capture's packets onto ``iface`` (needs CAP_NET_RAW); see :func:`send_frames`."""
    if not 1 <= batch <= BATCH:
        raise ValueError(f"send_raw: batch {batch} not in 1..{BATCH}")
    # protocol 0: a socket that only sends (it receives nothing, and is no tap the kernel copies
    # each frame sent on the interface to); the kernel reads each frame's EtherType
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        s.bind((iface, 0))
        frames = capture_frames(path, mapping, allowed, s.getsockname()[4][:6], dst_mac)
        return send_frames(s, frames, timing=timing, rate=rate, preload=preload, batch=batch)
    finally:
        s.close()


def send_frames(
    sock: socket.socket,
    frames: Iterable[tuple[int, bytes | None, int]],
    *,
    timing: Timing = "fast",
    rate: float | None = None,
    preload: bool = False,
    batch: int = BATCH,
) -> RawReport:
    """Send ``frames`` (as :func:`capture_frames` gives them) on the connected or bound datagram
    socket ``sock`` at ``timing`` and ``rate``, one frame per datagram.

    ``preload``: take every frame (and lay them out for sendmmsg) before the clock starts.
    ``batch``: frames per sendmmsg(2) at most (1: one send(2) each).  Without ``preload``, frames
    are batched only at ``timing="fast"`` and no ``rate`` (read ``batch`` at a time); otherwise
    each is read just before it is sent, so that no packet waits for the reading of later ones."""
    if not 1 <= batch <= BATCH:
        raise ValueError(f"send_frames: batch {batch} not in 1..{BATCH}")
    skipped = [0]
    batched = batch > 1 and _sendmmsg is not None
    loaded = 0.0
    chunks: Iterable[Chunk]
    prepared: list[tuple[Batch, int]] | None
    if preload:
        t0 = time.monotonic()
        if batched:  # laid out a chunk at a time: memory for the frames once, and one chunk's list
            chunks, prepared = (), [(Batch(t, f), n) for t, f, n in _chunks(frames, _PRELOAD_CHUNK, skipped)]
        else:
            chunks, prepared = list(_chunks(frames, 0, skipped)), None
        loaded = time.monotonic() - t0
    elif batched and timing == "fast" and not rate:
        chunks, prepared = _chunks(frames, batch, skipped), None
    else:
        chunks, prepared, batched = _chunks(frames, 1, skipped), None, False
    start = time.monotonic()
    sched = Schedule(timing, rate, start)
    sent = octets = calls = 0
    if batched:
        fd = sock.fileno()
        for b, ip_octets in prepared if prepared is not None else ((Batch(t, f), n) for t, f, n in chunks):
            i = 0
            while i < b.count:
                now = time.monotonic()
                n = sched.due(b.times, i, batch, now)
                if not n:
                    time.sleep(max(0.0, sched.wait(b.times, i, now)))
                    continue
                calls += b.send(fd, i, n)
                sched.sent(n, now)
                i += n
            sent += b.count
            octets += ip_octets
    else:
        send = sock.send
        for times, out, ip_octets in chunks:
            for i, frame in enumerate(out):
                now = time.monotonic()
                while not sched.due(times, i, 1, now):
                    time.sleep(max(0.0, sched.wait(times, i, now)))
                    now = time.monotonic()
                send(frame)
                sched.sent(1, now)
                sent += 1
                calls += 1
            octets += ip_octets
    return RawReport(sent, skipped[0], octets, time.monotonic() - start, calls, loaded)
