"""The two ends of a lab transfer: an MPTCP server and an MPTCP client.

Run inside a lab namespace by :class:`lab.Lab` (``ip netns exec NS python3 lab/peer.py ...``),
stdlib only.  Each prints one JSON object per line on stdout: events (``listening``, ``paused``,
``subflows``) while it runs, then ``{"event": "result", ...}`` (one per connection for the
server) and exits 0; on failure ``{"event": "error", ...}`` and exit 1.  Every blocking step is
bounded by ``--timeout``.

The data are deterministic: :func:`pattern` (``random.Random(seed).randbytes``), so the other side
and the tests know exactly what was sent.

Server (one connection per ``--count``): read until EOF (or reset), optionally reply, close::

    python3 lab/peer.py server --family 4 --port 5201 [--reply N] [--reply-after N] [--tfo]

With ``--reset-after N`` the server reads N octets and closes with SO_LINGER {1, 0}: the
application resets the connection mid-transfer (MP_FASTCLOSE; for ``--plain``, a RST).

Either side with ``--plain`` uses a plain TCP socket (a client of a plain server falls back).

Client: connect (or, with ``--tfo``, ``sendto(MSG_FASTOPEN)``), send ``--size`` octets in
``--chunk`` pieces ``--gap-ms`` apart, optionally wait until ``--wait-subflows`` subflows are
established (and answered: the fourth ACK of each join) and pause at ``--pause-at`` octets, once
they are all acknowledged, until a line arrives on stdin, then either shut down the write side
and read the reply until EOF (a normal close: DATA_FIN both ways), or with ``--abort`` read
``--read-reply`` octets and close with SO_LINGER {1, 0} (MP_FASTCLOSE)::

    python3 lab/peer.py client --connect 198.51.100.2 --port 5201 --size 40000 [--wait-subflows 2]

With ``--repeat N`` the client makes N connections one after another (a result each), of sizes
drawn from ``--seed``, every ``--plain-every``-th one plain TCP: the many-connection captures.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import random
import select
import socket
import struct
import sys
import termios
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1
MPTCP_TCPINFO = 2
TCP_FASTOPEN = 23
MSG_FASTOPEN = 0x20000000
TCP_ESTABLISHED = 1
TCPI_SEGS_IN = 140  # offset of tcpi_segs_in in struct tcp_info

DEFAULT_TIMEOUT = 10.0


#: the most octets one ``randbytes`` call makes (it draws n * 8 bits, a C int)
PATTERN_PIECE = (2**31 - 1) // 8


def pattern(n: int, seed: int = 0) -> bytes:
    """``n`` deterministic octets for ``seed`` (the same in every run and on both sides).

    Past :data:`PATTERN_PIECE` octets they are drawn piece by piece from the same generator.
    """
    rng = random.Random(seed)
    if n <= PATTERN_PIECE:
        return rng.randbytes(n)
    return b"".join(rng.randbytes(min(PATTERN_PIECE, n - i)) for i in range(0, n, PATTERN_PIECE))


def emit(event: str, **kw) -> None:
    print(json.dumps({"event": event, **kw}), flush=True)


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("lab peer timed out")
        return left


def family_of(n: int) -> int:
    return socket.AF_INET if n == 4 else socket.AF_INET6


# MPTCP_TCPINFO (Linux >= 5.16) fills struct mptcp_subflow_data, then one struct tcp_info per
# subflow, from a header the caller supplies; Python's getsockopt cannot pass input, so libc's.
_libc = None


def _subflow_infos(sock: socket.socket, size_user: int, room: int = 16) -> tuple[int, list[bytes]] | None:
    """(number of subflows, the first ``size_user`` octets of each one's struct tcp_info), or None
    if MPTCP_TCPINFO is not supported."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    buf = ctypes.create_string_buffer(16 + size_user * room)
    struct.pack_into("=IIII", buf, 0, 16, 0, 0, size_user)
    optlen = ctypes.c_uint32(len(buf))
    if _libc.getsockopt(sock.fileno(), SOL_MPTCP, MPTCP_TCPINFO, buf, ctypes.byref(optlen)) != 0:
        return None
    _, num, _, got_size = struct.unpack_from("=IIII", buf, 0)
    stride = got_size or size_user
    return num, [buf.raw[16 + i * stride : 16 + (i + 1) * stride] for i in range(min(num, room))]


def established_subflows(sock: socket.socket, any_state: bool = False, answered: bool = False) -> int | None:
    """How many subflows of this MPTCP socket are in TCP ESTABLISHED (with ``any_state``: it has
    at all, closing ones included), or None if unknown.

    With ``answered``, only those that have received a segment after their SYN/ACK
    (``tcpi_segs_in`` >= 2): for a join, the fourth ACK, which makes it fully established.
    """
    got = _subflow_infos(sock, TCPI_SEGS_IN + 4 if answered else 8)  # tcpi_state is the first octet
    if got is None:
        return None
    num, infos = got
    if any_state:
        return num
    if answered and infos and len(infos[0]) < TCPI_SEGS_IN + 4:
        raise OSError("this kernel's struct tcp_info has no tcpi_segs_in; cannot tell a join is answered")
    return sum(
        1
        for info in infos
        if info[0] == TCP_ESTABLISHED and (not answered or struct.unpack_from("=I", info, TCPI_SEGS_IN)[0] >= 2)
    )


def wait_subflows(sock: socket.socket, want: int, deadline: Deadline) -> int:
    """Wait until ``want`` subflows are established and answered (see :func:`established_subflows`)."""
    while True:
        n = established_subflows(sock, answered=True)
        if n is None:
            raise OSError("MPTCP_TCPINFO is not supported; cannot count subflows")
        if n >= want:
            return n
        deadline.left()
        time.sleep(0.005)  # the poll interval of the condition above


def recv_all(
    sock: socket.socket, deadline: Deadline, limit: int | None = None, seen: list | None = None
) -> tuple[bytes, bool]:
    """Read until EOF (or ``limit`` octets); returns (data, reset) where reset means the peer reset.

    With ``seen`` (a one-item list), keep there the most subflows the socket had (MPTCP_TCPINFO)
    after the first read, every 256th, and at EOF.
    """
    buf = bytearray()
    reads = 0
    while limit is None or len(buf) < limit:
        sock.settimeout(deadline.left())
        try:
            chunk = sock.recv(262144 if limit is None else min(262144, limit - len(buf)))
        except ConnectionResetError:
            return bytes(buf), True
        except OSError as e:  # an MPTCP socket reset (MP_FASTCLOSE) before the first read
            if e.errno == errno.ENOTCONN:
                return bytes(buf), True
            raise
        if not chunk:
            break
        buf += chunk
        if seen is not None and not reads & 0xFF:  # the first read, then every 256th: it is a syscall
            seen[0] = max(seen[0], established_subflows(sock, any_state=True) or 0)
        reads += 1
    if seen is not None:  # and at EOF: a subflow that opened after the last sample is counted
        seen[0] = max(seen[0], established_subflows(sock, any_state=True) or 0)
    return bytes(buf), False


def summary(data: bytes) -> dict:
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def send_chunks(sock: socket.socket, data: bytes, chunk: int, gap_ms: float, deadline: Deadline) -> int:
    """Send ``data`` in ``chunk``-octet pieces ``gap_ms`` apart; each send lets the scheduler choose."""
    sent = 0
    while sent < len(data):
        sock.settimeout(deadline.left())
        piece = data[sent : sent + chunk]
        sock.sendall(piece)
        sent += len(piece)
        if gap_ms and sent < len(data):
            time.sleep(gap_ms / 1000)  # pacing: the gap between sends is the behaviour asked for
    return sent


def send_reply(conn: socket.socket, a, i: int, deadline: Deadline) -> int:
    return send_chunks(conn, pattern(a.reply, a.seed + 1 + i), a.chunk, a.gap_ms, deadline)


def run_server(a) -> None:
    deadline = Deadline(a.timeout)
    fam = family_of(a.family)
    ls = socket.socket(fam, socket.SOCK_STREAM, socket.IPPROTO_TCP if a.plain else IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if a.tfo:
        ls.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN, 16)
    bind = a.bind or ("0.0.0.0" if fam == socket.AF_INET else "::")
    ls.bind((bind, a.port))
    ls.listen(8)
    emit("listening", address=bind, port=a.port)
    for i in range(a.count):
        ls.settimeout(deadline.left())
        conn, peer = ls.accept()
        with conn:
            got = bytearray()
            replied = 0
            reset = False
            seen = [0]
            if a.reset_after is not None:
                # The application resets the connection mid-transfer: SO_LINGER {1, 0}, then close
                # (below): for an MPTCP socket, MP_FASTCLOSE; for a plain one, a RST.
                first, reset = recv_all(conn, deadline, a.reset_after, seen)
                got += first
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                reset = True
            if a.reply and a.reply_after is not None:
                first, reset = recv_all(conn, deadline, a.reply_after, seen)
                got += first
                if not reset:
                    replied = send_reply(conn, a, i, deadline)
            if not reset:
                rest, reset = recv_all(conn, deadline, seen=seen)
                got += rest
            if a.reply and a.reply_after is None and not reset:
                replied = send_reply(conn, a, i, deadline)
        # Closed first, then the bookkeeping: the peer's close does not wait for the hashing.
        if a.out:
            with open(a.out if a.count == 1 else f"{a.out}.{i}", "wb") as f:
                f.write(got)
        emit(
            "result",
            connection=i,
            peer=list(peer[:2]),
            reset=reset,
            replied=replied,
            subflows=seen[0],
            reset_sent=a.reset_after is not None,
            **summary(bytes(got)),
        )
    ls.close()


def wait_drained(sock: socket.socket, deadline: Deadline) -> None:
    """Wait until everything sent on the socket is acknowledged (SIOCOUTQ is 0; for an MPTCP socket,
    at the data level), so that a pause starts with no data in flight."""
    while True:
        try:
            unacked = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        except OSError:
            return  # the kernel cannot tell (MPTCP sockets answer SIOCOUTQ since Linux 6.2)
        if unacked == 0:
            return
        deadline.left()
        time.sleep(0.005)  # the poll interval of the condition above


def wait_for_go(deadline: Deadline) -> None:
    r, _, _ = select.select([sys.stdin], [], [], deadline.left())
    if not r or not sys.stdin.readline():
        raise TimeoutError("no go-ahead on stdin after the pause")


def run_client(a) -> None:
    deadline = Deadline(a.timeout)
    if a.repeat <= 1:
        one_connection(a, deadline, a.size, a.seed, socket.IPPROTO_TCP if a.plain else IPPROTO_MPTCP)
        return
    # Many connections one after another, sizes drawn from the seed, every --plain-every-th plain TCP.
    sizes = random.Random(a.seed)
    for i in range(a.repeat):
        plain = a.plain_every and (i + 1) % a.plain_every == 0
        size = sizes.randint(1, a.size)
        one_connection(a, deadline, size, a.seed + i, socket.IPPROTO_TCP if plain else IPPROTO_MPTCP)


def one_connection(a, deadline: Deadline, size: int, seed: int, proto: int) -> None:
    fam = family_of(a.family)
    data = pattern(size, seed)
    s = socket.socket(fam, socket.SOCK_STREAM, proto)
    if a.bind:
        s.bind((a.bind, 0))
    addr = (a.connect, a.port)
    s.settimeout(deadline.left())
    sent = 0
    if a.tfo:
        # The first piece goes in the SYN when the kernel holds a cookie for the server.
        # Blocking (Python's timeout mode is non-blocking underneath, where a SYN without a cookie
        # gives EINPROGRESS and sends nothing), bounded by SO_SNDTIMEO.
        first = data[: min(a.first or a.chunk, len(data))]
        s.setblocking(True)
        left = deadline.left()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(left), int(left % 1 * 1e6)))
        sent = s.sendto(first, MSG_FASTOPEN, addr)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 0))
    else:
        s.connect(addr)
    subflows_seen = None
    first_piece = a.first or a.chunk
    paused = False
    while sent < len(data):
        if a.pause_at is not None and not paused and sent >= a.pause_at:
            paused = True
            wait_drained(s, deadline)
            emit("paused", sent=sent, subflows=established_subflows(s))
            wait_for_go(deadline)
        step = first_piece if sent == 0 else a.chunk
        if a.pause_at is not None and not paused:
            step = min(step, a.pause_at - sent) or step
        s.settimeout(deadline.left())
        s.sendall(data[sent : sent + step])
        sent += len(data[sent : sent + step])
        if a.wait_subflows and subflows_seen is None:
            subflows_seen = wait_subflows(s, a.wait_subflows, deadline)
            emit("subflows", established=subflows_seen)
        if a.gap_ms and sent < len(data):
            time.sleep(a.gap_ms / 1000)  # pacing: the gap between sends is the behaviour asked for
    if a.pause_at is not None and not paused:
        wait_drained(s, deadline)
        emit("paused", sent=sent, subflows=established_subflows(s))
        wait_for_go(deadline)
    if a.abort:
        reply, reset = recv_all(s, deadline, a.read_reply) if a.read_reply else (b"", False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        result = dict(
            sent=summary(data), reply=summary(reply), reset=reset, aborted=True, subflows=established_subflows(s)
        )
        s.close()
    else:
        subflows = established_subflows(s)
        s.shutdown(socket.SHUT_WR)
        reply, reset = recv_all(s, deadline)
        result = dict(sent=summary(data), reply=summary(reply), reset=reset, aborted=False, subflows=subflows)
        s.close()
    emit("result", **result)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="role", required=True)
    for name in ("server", "client"):
        q = sub.add_parser(name)
        q.add_argument("--family", type=int, choices=(4, 6), default=4)
        q.add_argument("--port", type=int, default=5201)
        q.add_argument("--bind", help="local address (server default: the wildcard)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--tfo", action="store_true", help="TCP Fast Open")
        q.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
        q.add_argument("--plain", action="store_true", help="a plain TCP socket, not MPTCP")
    srv = sub.choices["server"]
    srv.add_argument("--count", type=int, default=1, help="connections to accept, one after another")
    srv.add_argument("--reply", type=int, default=0, help="octets to send back (pattern(seed + 1 + i))")
    srv.add_argument("--reply-after", type=int, help="reply once this many octets arrived, not at EOF")
    srv.add_argument("--out", help="write what was received to this file")
    srv.add_argument("--chunk", type=int, default=4096, help="send the reply in pieces of this size")
    srv.add_argument("--gap-ms", type=float, default=0.0, help="pause between reply pieces")
    srv.add_argument(
        "--reset-after", type=int, help="read this many octets, then close with SO_LINGER {1, 0}: a reset mid-transfer"
    )
    cli = sub.choices["client"]
    cli.add_argument("--connect", required=True)
    cli.add_argument("--size", type=int, default=40000)
    cli.add_argument("--chunk", type=int, default=4096)
    cli.add_argument("--first", type=int, help="size of the first piece (default --chunk)")
    cli.add_argument("--gap-ms", type=float, default=0.0)
    cli.add_argument(
        "--wait-subflows",
        type=int,
        default=0,
        help="after the first piece, wait until this many subflows (the first included) are up",
    )
    cli.add_argument("--pause-at", type=int, help="after this many octets, print 'paused' and wait for a stdin line")
    cli.add_argument("--abort", action="store_true", help="close with SO_LINGER {1, 0} (MP_FASTCLOSE)")
    cli.add_argument("--read-reply", type=int, default=0, help="with --abort: octets to read before closing")
    cli.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="connections one after another, each of 1..--size octets (drawn from --seed) with seed --seed + i",
    )
    cli.add_argument("--plain-every", type=int, default=0, help="with --repeat: every Nth connection is plain TCP")
    a = p.parse_args(argv)
    try:
        (run_server if a.role == "server" else run_client)(a)
    except Exception as e:  # reported to the lab, which raises it there
        emit("error", error=f"{type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
