"""The replay engine's raw-socket transport: send complete IP packets, receive the server's answers.

::

    with RawTransport(["198.51.100.1"], ["198.51.100.2"], rate=1000) as t:
        t.send(syn)                # an IPv4 or IPv6 packet, TCP checksum computed by the caller
        for pkt in t.recv(1.0):    # IP packets from a peer address to a local address
            ...

The kernel has no socket for the replayed flows, so it would answer the server's SYN/ACKs (and
anything else) with TCP RSTs.  While open, the transport keeps an nftables table
(``inet mptcpspec_replay_<pid>_<n>``) whose output chain drops TCP RSTs from the local addresses
unless they carry ``mark``: the transport's own send sockets set ``SO_MARK = mark``, so an RST the
replay sends itself still goes out.  (With ``net.ipv4.fwmark_reflect`` set, the kernel's RSTs copy
the incoming packet's mark; an incoming mark equal to ``mark`` would let them through.)

Sending: ``socket(AF_INET, SOCK_RAW, IPPROTO_RAW)`` and, when an address is IPv6, the same in
AF_INET6 with ``IPV6_HDRINCL``; the destination comes from the packet's header and must be one of
the peer addresses, the source one of the local addresses (anything else raises
:class:`TransportError` and sends nothing).  Each packet is routed from its source as well as to
its destination, as the kernel routes a socket bound to that address (an MPTCP subflow's): the
source goes with it as ``IP_PKTINFO`` (``IPV6_PKTINFO``), so rules such as ``ip rule add from
203.0.113.1 table 101`` pick its path.  A raw socket's route is otherwise looked up from its own
address, none, whatever the header says: every subflow went out of the default route's interface.

Receiving: a non-blocking ``AF_PACKET``/``SOCK_DGRAM`` socket (network-layer packets, no link
header) with a classic BPF filter that keeps incoming IPv4/IPv6 TCP packets (no IPv4 fragments; IPv6
only with TCP as the first next header); the address check is done again in Python, and packets are
cut to the IP length (Ethernet padding).

Cleanup, on every exit path but SIGKILL: :meth:`RawTransport.close` (idempotent) closes the
sockets and deletes the table; ``with`` calls it (exceptions and KeyboardInterrupt included), an
``atexit`` hook calls it for transports still open, and SIGINT/SIGTERM/SIGHUP are blocked while
it runs so that it finishes.  SIGTERM and SIGHUP kill a process without running ``atexit``: while
a transport is open, and only where such a signal has its default disposition (``SIG_DFL``) and
only from the main thread, a handler is installed that closes every open transport, restores
``SIG_DFL`` and re-sends the signal to the process (so it still dies of it).  A handler of the
caller's own, or ``SIG_IGN``, is left alone: that code owns its shutdown, and ``with``/``atexit``
still clean up when it exits.  The handler is removed when the last transport closes (unless
someone replaced it meanwhile).  After SIGKILL, :func:`cleanup_leftovers` deletes the tables of
processes that are gone.  A forked child never deletes its parent's table.

Not thread-safe: one transport per thread.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ipaddress
import itertools
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterable
from types import FrameType
from typing import TypedDict

from mptcpspec.errors import MptcpspecError
from mptcpspec.replay.gso import GsoSender, open_gso
from mptcpspec.replay.setup import Address
from mptcpspec.replay.wire import BURST_MAX, Burst, cut, on_wire

__all__ = [
    "TABLE_PREFIX",
    "RawTransport",
    "TransportError",
    "TransportStats",
    "check_privileges",
    "cleanup_leftovers",
    "nft_script",
]

TABLE_PREFIX = "mptcpspec_replay_"
ETH_P_ALL, ETH_P_IP, ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
PACKET_OUTGOING = 4
SOL_PACKET, PACKET_STATISTICS = 263, 6
IPV6_HDRINCL = 36
IP_PKTINFO = 8  # <linux/in.h> (the socket module has it from Python 3.12)
IPV6_FREEBIND = 78  # a source that is not a local address in IPV6_PKTINFO (a --unique-ip address)
SO_RCVBUFFORCE, SO_ATTACH_FILTER = 33, 26
RCVBUF = 8 << 20
MAX_BATCH = 1024
#: the end of a wait is spun (polling the socket), not slept: a sleep ends up to the timer slack
#: (50 us) late, poll(2)'s at whole milliseconds; paced data is due at exact times
SPIN = 0.0002
NFT_TIMEOUT = 10.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_FATAL = (signal.SIGTERM, signal.SIGHUP)
_PRIVILEGES = "the replay transport needs root or CAP_NET_RAW and CAP_NET_ADMIN (raw sockets, nftables)"

_counter = itertools.count()
_open: set[RawTransport] = set()
_installed: set[int] = set()  # signals whose handler is ours


class TransportError(MptcpspecError):
    """The transport cannot do what was asked; the message says what and why, on one line."""


class TransportStats(TypedDict):
    """What :class:`RawTransport` counted (see its ``stats``)."""

    sent: int
    received: int
    dropped_by_filter: int
    kernel_dropped: int
    rst_suppressed: int | None
    bursts: int
    bursts_cut: int


# ---------------------------------------------------------------------------------------------
# nftables


def _nft(*args: str, script: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``nft ARGS`` (``nft -f -`` with ``script`` on stdin); TransportError when it fails and ``check``."""
    argv = ["nft", "-f", "-"] if script is not None else ["nft", *args]
    try:
        r = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=NFT_TIMEOUT)
    except FileNotFoundError:
        raise TransportError("nft not found: the replay transport needs nftables (apt-get install nftables)") from None
    except subprocess.TimeoutExpired:
        raise TransportError(f"`{' '.join(argv)}` timed out after {NFT_TIMEOUT}s") from None
    if check and r.returncode != 0:
        msg = " ".join((r.stderr or r.stdout).split())
        if "Operation not permitted" in msg:
            raise TransportError(f"{_PRIVILEGES}: nft: {msg}")
        raise TransportError(f"`{' '.join(argv)}` exited {r.returncode}: {msg}")
    return r


def nft_script(table: str, local_addrs: Iterable[str | Address], mark: int, ports: Iterable[int] = ()) -> str:
    """The ``nft -f`` script that creates ``table`` (replacing one of that name) with the RST-dropping
    chain; with ``ports`` (the server side's listen ports), only RSTs from those ports are dropped."""
    addrs = [ipaddress.ip_address(a) for a in local_addrs]
    sport = ", ".join(str(p) for p in sorted(set(ports)))
    only = f"tcp sport {{ {sport} }} " if sport else ""
    rules = []
    for fam, ver in (("ip", 4), ("ip6", 6)):
        mine = sorted(str(a) for a in addrs if a.version == ver)
        if mine:
            rules.append(
                f"\t\t{fam} saddr {{ {', '.join(mine)} }} {only}tcp flags & rst == rst "
                f"meta mark != {mark:#010x} counter drop\n"
            )
    return (
        f"add table inet {table}\ndelete table inet {table}\n"
        f"table inet {table} {{\n\tchain output {{\n"
        f"\t\ttype filter hook output priority 0; policy accept;\n{''.join(rules)}\t}}\n}}\n"
    )


def delete_table(table: str) -> tuple[str | None, int | None]:
    """Delete nftables table inet ``table``: the error text (or None), and the RSTs its counters
    say it dropped (None when it could not be listed)."""
    count = None
    with contextlib.suppress(TransportError):
        r = _nft("list", "table", "inet", table, check=False)
        if r.returncode == 0:
            count = sum(int(n) for n in re.findall(r"counter packets (\d+)", r.stdout))
    try:
        r = _nft("delete", "table", "inet", table, check=False)
    except TransportError as e:
        return str(e), count
    if r.returncode != 0 and "No such file or directory" not in r.stderr:
        return " ".join(r.stderr.split()), count
    return None, count


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_leftovers() -> list[str]:
    """Delete the nftables tables ``mptcpspec_replay_<pid>_<n>`` whose process is gone; return their names.

    Works in the current network namespace; tables of live processes stay (also one whose pid a
    new process has taken meanwhile: it goes once that process is gone too).
    """
    out = _nft("list", "tables").stdout
    gone = []
    for fam, name, pid in re.findall(rf"^table (\S+) ({TABLE_PREFIX}(\d+)_\d+)$", out, re.M):
        if not _pid_alive(int(pid)):
            _nft("delete", "table", fam, name, check=False)
            gone.append(name)
    return gone


# ---------------------------------------------------------------------------------------------
# Privileges, the receive filter


def _privilege_error(detail: object) -> TransportError:
    return TransportError(f"{_PRIVILEGES}: {detail}")


def check_privileges(nft: bool = True) -> None:
    """Raise :class:`TransportError` unless raw sockets, ``SO_MARK``, packet sockets (and ``nft``) work here."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 1)
        socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0).close()
    except PermissionError as e:
        raise _privilege_error(e) from None
    if nft:
        if shutil.which("nft") is None:
            raise TransportError("nft not found: the replay transport needs nftables (apt-get install nftables)")
        r = _nft("list", "tables", check=False)
        if r.returncode != 0:
            raise _privilege_error("nft list tables: " + " ".join((r.stderr or r.stdout).split()))


def _bpf_tcp() -> bytes:
    """Classic BPF: incoming (not PACKET_OUTGOING) IPv4 TCP (unfragmented) or IPv6 TCP packets.

    The packet socket is SOCK_DGRAM, so offset 0 is the IP header; ``skb->protocol`` and
    ``pkttype`` come from the ancillary loads.
    """
    ld_w, ld_h, ld_b, jeq, jset, ret = 0x20, 0x28, 0x30, 0x15, 0x45, 0x06
    ad = 0xFFFFF000  # SKF_AD_OFF
    prog = [  # (label, code, k, jump-if-true, jump-if-false)
        (None, ld_w, ad + 4, None, None),  # pkttype
        (None, jeq, PACKET_OUTGOING, "no", None),
        (None, ld_w, ad + 0, None, None),  # protocol (host order)
        (None, jeq, ETH_P_IP, None, "v6"),
        (None, ld_b, 9, None, None),  # IPv4 protocol
        (None, jeq, 6, None, "no"),
        (None, ld_h, 6, None, None),  # flags + fragment offset
        (None, jset, 0x3FFF, "no", "yes"),  # MF or an offset: a fragment
        ("v6", jeq, ETH_P_IPV6, None, "no"),
        (None, ld_b, 6, None, None),  # IPv6 next header
        (None, jeq, 6, "yes", "no"),
        ("yes", ret, 0x40000, None, None),
        ("no", ret, 0, None, None),
    ]
    where = {label: i for i, (label, *_) in enumerate(prog) if label}

    def rel(i: int, target: str | None) -> int:
        return 0 if target is None else where[target] - i - 1

    return b"".join(struct.pack("HBBI", code, rel(i, jt), rel(i, jf), k) for i, (_, code, k, jt, jf) in enumerate(prog))


def _attach_filter(sock: socket.socket, prog: bytes) -> None:
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HP", len(prog) // 8, ctypes.addressof(buf))  # struct sock_fprog, native alignment
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


# ---------------------------------------------------------------------------------------------
# The transport


class RawTransport:
    """Send complete IP packets to the peers; receive their TCP packets to the local addresses.

    ``local_addrs``: the source addresses the replay uses; ``peer_addrs``: the only destinations
    :meth:`send` accepts; ``mark``: the ``SO_MARK`` of the send sockets (non-zero; the RST filter
    lets it through); ``rate``: at most that many packets per second (None: no limit); ``nft``:
    install the RST filter (False: the kernel's RSTs go out).  ``stats``: ``sent``, ``received``
    (packets returned by :meth:`recv`), ``dropped_by_filter`` (packets read from the packet socket
    and discarded by the address check), ``kernel_dropped`` (dropped by the kernel, receive buffer
    full), ``bursts`` (:class:`~replay.wire.Burst` packets the kernel cut), ``bursts_cut`` (those
    cut here, :func:`~replay.wire.cut`: no Ethernet link found, or ``kernel_gso`` False) and, after
    :meth:`close`, ``rst_suppressed`` (RSTs the nftables chain dropped, or None).

    ``gso``: :meth:`send` takes bursts, and ``burst`` says how long (0 without ``gso`` or with
    ``rate``: each packet is one segment); ``kernel_gso``: the kernel cuts them (see
    :mod:`replay.gso`), else this transport does.

    ``listen_ports`` (the server side of a replay): packets from any address to a local address and
    one of these ports are received, and their sources become peer addresses (``peer_addrs`` may then
    be empty); only RSTs from these ports are dropped.
    """

    def __init__(
        self,
        local_addrs: Iterable[str | Address],
        peer_addrs: Iterable[str | Address],
        *,
        mark: int = 0x4D50,
        rate: float | None = None,
        nft: bool = True,
        listen_ports: Iterable[int] | None = None,
        gso: bool = False,
        kernel_gso: bool = True,
    ) -> None:
        self.local_addrs = [ipaddress.ip_address(a) for a in local_addrs]
        self.peer_addrs = [ipaddress.ip_address(a) for a in peer_addrs]
        self.listen_ports = frozenset(listen_ports or ())
        self._ports = frozenset(p.to_bytes(2, "big") for p in self.listen_ports)
        if not self.local_addrs or not (self.peer_addrs or self.listen_ports):
            raise TransportError("RawTransport needs at least one local and one peer address (or listen ports)")
        if not 0 < mark < 1 << 32:
            raise TransportError(f"mark {mark:#x} must be a non-zero 32-bit value (the kernel's own RSTs carry 0)")
        if rate is not None and not rate > 0:
            raise TransportError(f"rate {rate} must be positive (or None for no limit)")
        self.mark, self.rate, self.nft = mark, rate, nft
        self.burst = BURST_MAX if gso and rate is None else 0
        self._use_gso = kernel_gso
        self._gso: GsoSender | None = None
        self._locals = {a.packed for a in self.local_addrs}
        #: per source address: the ancillary data that routes a packet from it (see the module)
        self._from: dict[bytes, list[tuple[int, int, bytes]]] = {}
        self._peers = {a.packed: str(a) for a in self.peer_addrs}
        self._interval = 1.0 / rate if rate else 0.0
        self._slack = 0.002  # a send may be up to 2 ms early to make up for sleep overshoot
        self._next = 0.0
        self.table = f"{TABLE_PREFIX}{os.getpid()}_{next(_counter)}"
        self._table_made = False
        self._s4: socket.socket | None = None
        self._s6: socket.socket | None = None
        self._rx: socket.socket | None = None
        self._poll: select.poll | None = None
        self._batches = 0
        self._owner = 0
        self._opened = False
        self.stats: TransportStats = {
            "sent": 0,
            "received": 0,
            "dropped_by_filter": 0,
            "kernel_dropped": 0,
            "rst_suppressed": None,
            "bursts": 0,
            "bursts_cut": 0,
        }

    def __repr__(self) -> str:
        state = "open" if self._opened else "closed"
        return f"<RawTransport {state} {[str(a) for a in self.local_addrs]} -> {list(self._peers.values())}>"

    # -- life cycle
    def __enter__(self) -> RawTransport:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open the sockets and install the RST filter; on any failure, undo what was done and raise."""
        if self._opened:
            raise TransportError("the transport is already open")
        self._opened, self._owner = True, os.getpid()
        _open.add(self)
        try:
            self._open_sockets()
            if self.nft:
                self._table_made = True  # from here on close() deletes it (the nft run may be interrupted)
                _nft(script=nft_script(self.table, self.local_addrs, self.mark, self.listen_ports))
            _install_handlers()
        except BaseException:
            with contextlib.suppress(TransportError):  # the original error matters more
                self.close()
            raise

    def _open_sockets(self) -> None:
        try:
            self._s4 = s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            s4.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.mark)
            if any(a.version == 6 for a in self.local_addrs + self.peer_addrs):
                self._s6 = s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
                s6.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
                with contextlib.suppress(OSError):  # kernels before 4.15: local sources only
                    s6.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
                s6.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.mark)
            self._rx = rx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
            self._gso = open_gso(self.mark) if self.burst and self._use_gso else None
        except PermissionError as e:
            raise _privilege_error(e) from None
        except OSError as e:
            raise TransportError(f"cannot open the raw sockets: {e}") from None
        try:
            rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        _attach_filter(rx, _bpf_tcp())
        rx.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # queued before the filter was attached
            for _ in range(100000):
                rx.recv(1)
        self._stats_read()
        self._batches = 0
        self._poll = poll = select.poll()
        poll.register(rx, select.POLLIN)

    def close(self) -> None:
        """Close the sockets and delete the nftables table.  Idempotent; SIGINT/TERM/HUP wait until it is done.

        Raises :class:`TransportError` (after doing the rest) if the table could not be deleted.
        """
        if not self._opened:
            return
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            self._opened = False
            if self._rx is not None:
                self._stats_read()  # the drops since the last read
            for s in (self._s4, self._s6, self._rx, self._gso):
                if s is not None:
                    s.close()
            self._s4 = self._s6 = self._rx = self._poll = self._gso = None
            failed = None
            if self._table_made and os.getpid() == self._owner:  # never a parent's table from a forked child
                failed, self.stats["rst_suppressed"] = delete_table(self.table)
            self._table_made = False
            _open.discard(self)
            if not _open:
                _remove_handlers()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if failed:
            raise TransportError(f"could not delete nftables table inet {self.table}: {failed}")

    # -- sending
    def send(self, packet: bytes) -> None:
        """Send one IPv4 or IPv6 packet (headers and checksums complete) to the destination in its header."""
        v, src, dst = _ends(packet)
        to = self._peers.get(dst)
        if to is None:
            raise TransportError(
                f"send: refusing to send to {ipaddress.ip_address(dst)}: not a peer address "
                f"({', '.join(self._peers.values())})"
            )
        if src not in self._locals:
            raise TransportError(
                f"send: refusing to send from {ipaddress.ip_address(src)}: not a local address "
                f"({', '.join(map(str, self.local_addrs))})"
            )
        sock = self._s4 if v == 4 else self._s6
        if not self._opened or sock is None:
            raise TransportError("send: the transport is not open")
        if self._interval:
            self._pace()
        route = self._from.get(src) or self._from.setdefault(src, _pktinfo(src))
        try:
            if type(packet) is Burst:
                self._burst(packet, sock, to, src, dst, route)
                return
            sock.sendmsg((packet,), route, 0, (to, 0))
        except OSError as e:
            raise TransportError(f"send to {to}: {e.strerror or e}") from None
        self.stats["sent"] += 1

    def _burst(
        self, packet: Burst, sock: socket.socket, to: str, src: bytes, dst: bytes, route: list[tuple[int, int, bytes]]
    ) -> None:
        """A burst to the kernel to cut (GSO), else cut here into the same segments."""
        st = self.stats
        if self._gso is not None and self._gso.send(packet, src, dst):
            st["bursts"] += 1
            st["sent"] += on_wire(packet)[0]
            return
        st["bursts_cut"] += 1
        for p in cut(packet, packet.mss):
            sock.sendmsg((p,), route, 0, (to, 0))
            st["sent"] += 1

    def _pace(self) -> None:
        """Sleep so that sends are at least 1/rate apart on average (no catch-up burst after idling)."""
        now = time.monotonic()
        if self._next < now - self._slack:
            self._next = now
        elif self._next > now:
            time.sleep(self._next - now)
        self._next += self._interval

    # -- receiving
    def filter_incoming(self, packet: bytes) -> bytes | None:
        """``packet`` cut to its IP length if it is a TCP packet from a peer to a local address, else None.

        IPv4 fragments, IPv6 packets whose first next header is not TCP, and packets shorter than
        their headers say are refused.
        """
        n = len(packet)
        if n < 40:
            return None
        v = packet[0] >> 4
        if v == 4:
            ihl = (packet[0] & 15) * 4
            end = int.from_bytes(packet[2:4], "big")
            if packet[9] != 6 or ihl < 20 or packet[6] & 0x3F or packet[7] or not ihl + 20 <= end <= n:
                return None
            src, dst = packet[12:16], packet[16:20]
            tcp = ihl
        elif v == 6:
            end = 40 + int.from_bytes(packet[4:6], "big")
            if packet[6] != 6 or not 60 <= end <= n:
                return None
            src, dst = packet[8:24], packet[24:40]
            tcp = 40
        else:
            return None
        if dst not in self._locals:
            return None
        if self._ports:
            if packet[tcp + 2 : tcp + 4] not in self._ports:
                return None
            if src not in self._peers:
                self._peers[src] = str(ipaddress.ip_address(src))  # a client of the server side
        elif src not in self._peers:
            return None
        return packet if end == n else packet[:end]

    def recv(self, timeout: float) -> list[bytes]:
        """Wait up to ``timeout`` seconds for the peers' packets; return those queued (at most 1024), maybe none."""
        poll, rx = self._poll, self._rx
        if not self._opened or poll is None or rx is None:
            raise TransportError("recv: the transport is not open")
        deadline = time.monotonic() + max(timeout, 0.0)
        out: list[bytes] = []
        while True:
            self._drain(out)
            left = deadline - time.monotonic()
            if out or left <= 0:
                break
            if left >= 0.002:
                poll.poll(int(left * 1000) - 1)  # whole milliseconds, ending before the deadline
            elif left > SPIN:
                select.select((rx,), (), (), left - SPIN)  # microseconds
            # else: the last SPIN seconds, drained again at once
        self._batches += 1
        if not self._batches & 0xFF:  # the kernel's drop count: a syscall, so every 256 batches and at close
            self._stats_read()
        self.stats["received"] += len(out)
        return out

    def _drain(self, out: list[bytes]) -> None:
        rx, keep, st = self._rx, self.filter_incoming, self.stats
        if rx is None:
            return
        while len(out) < MAX_BATCH:
            try:
                data, addr = rx.recvfrom(65536)
            except BlockingIOError:
                return
            pkt = keep(data) if addr[2] != PACKET_OUTGOING else None
            if pkt is None:
                st["dropped_by_filter"] += 1
            else:
                out.append(pkt)

    def _stats_read(self) -> None:
        """Add the kernel's drop count (struct tpacket_stats; reading it resets it)."""
        if self._rx is None:
            return
        with contextlib.suppress(OSError):
            _, drops = struct.unpack("II", self._rx.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.stats["kernel_dropped"] += drops


# ---------------------------------------------------------------------------------------------
# Sending


def _ends(packet: bytes) -> tuple[int, bytes, bytes]:
    """An IP packet's version, source and destination (packed); :class:`TransportError` if not IPv4/IPv6."""
    n = len(packet)
    v = packet[0] >> 4 if n else 0
    if v == 4 and n >= 20:
        return v, packet[12:16], packet[16:20]
    if v == 6 and n >= 40:
        return v, packet[8:24], packet[24:40]
    raise TransportError(f"send: not an IPv4 or IPv6 packet ({n} octets, version {v})")


def _pktinfo(src: bytes) -> list[tuple[int, int, bytes]]:
    """The ancillary data of a packet from ``src`` (packed): its source for the route lookup
    (``struct in_pktinfo``'s ``ipi_spec_dst``, ``struct in6_pktinfo``'s ``ipi6_addr``; no interface)."""
    if len(src) == 4:
        return [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=i4s4s", 0, src, bytes(4)))]
    return [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, struct.pack("=16si", src, 0))]


# ---------------------------------------------------------------------------------------------
# Exit paths


def _close_all() -> None:
    for t in list(_open):
        with contextlib.suppress(Exception):
            t.close()


atexit.register(_close_all)


def _on_fatal_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP with no handler of the caller's: close every transport, then die of the signal."""
    _close_all()
    signal.signal(signum, signal.SIG_DFL)
    _installed.discard(signum)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _FATAL:
        if sig not in _installed and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_fatal_signal)
            _installed.add(sig)


def _remove_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in list(_installed):
        if signal.getsignal(sig) is _on_fatal_signal:
            signal.signal(sig, signal.SIG_DFL)
        _installed.discard(sig)
