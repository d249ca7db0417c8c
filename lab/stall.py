"""A lab scenario for the rarer items of the subflow-level TCP analysis: keep-alives, a receiver
that stops reading (a full window, a zero window, probes into it, the window opening again), a
new connection on the ports of a finished one, and an ACK of a segment the capture missed.

One capture, taken on the client's ``veth0`` (Ethernet), of two MPTCP connections from
198.51.100.1, port :data:`CLIENT_PORT` (bound with SO_REUSEADDR), to 198.51.100.2:5201:

1. The client sets SO_KEEPALIVE, TCP_KEEPIDLE 1 s and TCP_KEEPINTVL 1 s on its MPTCP socket (the
   kernel passes them on to its subflows) and stays idle until the capture holds
   :data:`KEEPALIVES` keep-alives (a segment one below the next sequence number) and their ACKs.
2. It sends :data:`SIZE_A` octets; the server, whose listener has SO_RCVBUF :data:`RCVBUF` (set
   before listen), reads nothing: the client fills the window, the server announces a zero
   window, and Linux probes it with segments one below the next sequence number (keep-alives, to
   Wireshark).  Once the capture holds :data:`PROBES` of them, a packet socket in the client sends
   the probe other stacks send, one octet of new data at the next sequence number (Linux never
   sends it into a zero window: MPTCP's own one-octet probe waits for the subflow's window), and
   the server answers it with a zero window.  Then the server reads everything (a window update)
   and closes first.
3. Once the first connection is closed on both sides (the server's end in TIME-WAIT), the client
   connects again from the same port: a SYN on the 4-tuple of a finished connection.  It sends
   :data:`SIZE_B` octets, and an nftables rule in the client sends every :data:`DETOUR`-th data
   segment of this connection by pair 1 (``meta mark`` in a ``route`` chain, and an ``ip rule`` on
   the mark): the server receives and acknowledges it, the capture on ``veth0`` never sees it (a
   capture point on one path of an asymmetric route).

The server checks that it received exactly what the client sent (``lab.peer.pattern``).

Run as root::

    python3 -m lab.stall OUT.pcap
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from lab.host import LabError
from mptcpspec.replay.wire import ip_checksum  # the Internet checksum (RFC 1071), over any octets

__all__ = ["CLIENT_PORT", "DETOUR", "KEEPALIVES", "PROBES", "RCVBUF", "SIZE_A", "SIZE_B", "stall"]

IPPROTO_MPTCP = 262
CLIENT_PORT = 40404
RCVBUF = 4096
SIZE_A = 16000
SIZE_B = 16000
KEEPALIVES = 2
PROBES = 2
DETOUR = 5
DETOUR_MARK = 0x5A
DETOUR_TABLE = 200
ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- in the namespaces


def _emit(event: str, **kw) -> None:
    print(json.dumps({"event": event, **kw}), flush=True)


def _wait_go(deadline: float) -> None:
    r, _, _ = select.select([sys.stdin], [], [], max(0.0, deadline - time.monotonic()))
    if not r or not sys.stdin.readline():
        raise TimeoutError("no go-ahead")


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(65536, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _summary(data: bytes) -> dict:
    import hashlib

    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def run_server(port: int, rcvbuf: int, size_a: int, timeout: float) -> None:
    """Two connections: the first read only after a go-ahead, exactly ``size_a`` octets, then
    closed by the server first; the second read until EOF."""
    deadline = time.monotonic() + timeout
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ls.bind(("0.0.0.0", port))
    ls.listen(4)
    ls.settimeout(timeout)
    _emit("listening")
    results = []
    conn, _ = ls.accept()
    conn.settimeout(timeout)
    _emit("accepted", rcvbuf=conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    _wait_go(deadline)
    results.append(_summary(_recv_exact(conn, size_a)))
    conn.close()
    _emit("closed")
    conn, _ = ls.accept()
    conn.settimeout(timeout)
    results.append(_summary(_recv_exact(conn, 1 << 30)))
    conn.close()
    _emit("result", received=results)


def run_client(dst: str, port: int, cport: int, size_a: int, size_b: int, timeout: float) -> None:
    """The first connection (keep-alives, then ``size_a`` octets, then EOF from the server), a
    go-ahead, the second one from the same port (``size_b`` octets, then a normal close)."""
    from lab.peer import pattern

    deadline = time.monotonic() + timeout
    for i, size in enumerate((size_a, size_b)):
        if i:
            _wait_go(deadline)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(timeout)
        s.bind(("198.51.100.1", cport))
        if not i:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        s.connect((dst, port))
        _emit("connected", connection=i, port=s.getsockname()[1])
        if not i:
            _wait_go(deadline)
        s.sendall(pattern(size, i))
        if i:
            s.shutdown(socket.SHUT_WR)
        rest = _recv_exact(s, 1 << 20)
        s.close()
        _emit("closed", connection=i, rest=len(rest))
    _emit("result")


def _peer_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python3 -m lab.stall peer")
    p.add_argument("role", choices=("server", "client"))
    p.add_argument("--dst", default="198.51.100.2")
    p.add_argument("--port", type=int, default=5201)
    p.add_argument("--client-port", type=int, default=CLIENT_PORT)
    p.add_argument("--rcvbuf", type=int, default=RCVBUF)
    p.add_argument("--size-a", type=int, default=SIZE_A)
    p.add_argument("--size-b", type=int, default=SIZE_B)
    p.add_argument("--timeout", type=float, default=30.0)
    a = p.parse_args(argv)
    try:
        if a.role == "server":
            run_server(a.port, a.rcvbuf, a.size_a, a.timeout)
        else:
            run_client(a.dst, a.port, a.client_port, a.size_a, a.size_b, a.timeout)
    except (OSError, TimeoutError) as e:
        _emit("error", error=f"{a.role}: {e!r}")
        return 1
    return 0


# ----------------------------------------------------------------------------- the capture, watched


def _decode(linktype: int, frame: bytes):
    from mptcpspec.capture.packets import decode_frame

    return decode_frame(linktype, frame)


def _segments(cap) -> list:
    return [p for p in (_decode(lt, f) for lt, f in cap.frames()) if p is not None]


def _later(a: int, b: int) -> int:
    """The later of two sequence numbers (serial arithmetic)."""
    return b if (b - a) & 0xFFFFFFFF < 0x80000000 else a


def keepalives(cap, src: str) -> int:
    """Segments from ``src`` of at most one octet, one below the highest sequence number it sent
    (raw numbers; no SYN, FIN or RST)."""
    from mptcpspec.capture.packets import TcpFlags

    nxt: dict = {}
    n = 0
    for p in _segments(cap):
        key = (str(p.src), p.sport, str(p.dst), p.dport)
        if p.flags & (TcpFlags.SYN | TcpFlags.FIN | TcpFlags.RST):
            nxt[key] = (p.seq + p.seg_len) & 0xFFFFFFFF
            continue
        if str(p.src) != src:
            nxt[key] = _later(nxt.get(key, p.seq), (p.seq + p.seg_len) & 0xFFFFFFFF)
            continue
        if p.payload_len <= 1 and key in nxt and p.seq == (nxt[key] - 1) & 0xFFFFFFFF:
            n += 1
        nxt[key] = _later(nxt.get(key, p.seq), (p.seq + p.seg_len) & 0xFFFFFFFF)
    return n


def probes_into_zero_window(cap, receiver: str) -> int:
    """Segments sent to ``receiver`` after it announced a zero window (and before it opened it)."""
    from mptcpspec.capture.packets import TcpFlags

    closed, n = False, 0
    for p in _segments(cap):
        if p.flags & TcpFlags.SYN:
            continue
        if str(p.src) == receiver:
            if p.window == 0:
                closed = True
            elif closed:
                return n
        elif closed:
            n += 1
    return n


# ----------------------------------------------------------------------------- a probe of one octet


def _option(options: bytes, kind: int, subtype: int | None = None) -> bytes | None:
    """The first option ``kind`` (an MPTCP option of ``subtype``) of an options area, whole."""
    i = 0
    while i < len(options):
        if options[i] in (0, 1):
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            return None
        opt = options[i : i + options[i + 1]]
        if opt[0] == kind and (subtype is None or len(opt) > 2 and opt[2] >> 4 == subtype):
            return opt
        i += options[i + 1]
    return None


def _data_ack(options: bytes) -> tuple[int, int] | None:
    """(DATA_ACK, its length in octets) of a DSS option in an options area."""
    dss = _option(options, 30, 2)
    if dss is None or len(dss) < 4 or not dss[3] & 0x01:
        return None
    size = 8 if dss[3] & 0x02 else 4
    return int.from_bytes(dss[4 : 4 + size], "big"), size


def zero_window_probe(cap, src: str) -> bytes:
    """An Ethernet frame: the probe of one octet of new data into a zero window that other stacks
    send, as MPTCP would send it next from ``src`` on its subflow in ``cap`` (an Ethernet capture):
    the Ethernet and IPv4 header, ACK number, window and timestamps of the last segment ``src``
    sent, the sequence number after the highest one it sent, and a DSS as MPTCP's own probe has:
    its DATA_ACK, a mapping of the octet before the peer's DATA_ACK (one octet already received,
    sent again) to that sequence number.  Linux probes the subflow with a segment one below it (a
    keep-alive, to Wireshark); MPTCP's own probe of one octet waits for the subflow's window."""
    segs = [(f, _decode(lt, f)) for lt, f in cap.frames()]
    mine = [(f, p) for f, p in segs if p is not None and str(p.src) == src]
    theirs = [p for _, p in segs if p is not None and str(p.dst) == src]
    if not mine or not theirs:
        raise LabError(f"{cap.path.name}: no segments of {src} to take a probe from")
    frame, last = mine[-1]
    isn, nxt = last.seq, last.seq
    for _, p in mine:
        if p.sport == last.sport:
            nxt = _later(nxt, (p.seq + p.seg_len) & 0xFFFFFFFF)
            if p.flags & 0x02:
                isn = p.seq
    ts, ours, peers = _option(last.options, 8), _data_ack(last.options), _data_ack(theirs[-1].options)
    if ts is None or ours is None or peers is None or peers[1] != 8:
        raise LabError(f"{cap.path.name}: no timestamps, DATA_ACK or 64-bit peer DATA_ACK to copy into a probe")
    ack, size = ours
    flags = 0x01 | 0x04 | 0x08 | (0x02 if size == 8 else 0)  # A, M, m (, a)
    dss = struct.pack("!BBBB", 30, 4 + size + 8 + 4 + 2, 2 << 4, flags) + ack.to_bytes(size, "big")
    dss += struct.pack("!QIH", (peers[0] - 1) & (2**64 - 1), (nxt - isn) & 0xFFFFFFFF, 1)
    options = b"\x01\x01" + ts + dss
    options += b"\x01" * (-len(options) % 4)
    head = struct.pack(
        "!HHIIHHHH", last.sport, last.dport, nxt, last.ack, (5 + len(options) // 4) << 12 | 0x18, last.window, 0, 0
    )
    ihl = (frame[14] & 0x0F) * 4
    tcp = head + options + b"\x00"
    pseudo = frame[26:30] + frame[30:34] + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", ip_checksum(pseudo + tcp)) + tcp[18:]
    ip = bytearray(frame[14 : 14 + ihl])
    ip[2:4] = struct.pack("!H", ihl + len(tcp))
    ip[4:6] = struct.pack("!H", (struct.unpack_from("!H", ip, 4)[0] + 1) & 0xFFFF)
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", ip_checksum(bytes(ip)))
    return frame[:14] + bytes(ip) + tcp


#: ``python3 -c SEND_FRAME IFACE HEX``: send one Ethernet frame from a packet socket
SEND_FRAME = (
    "import socket, sys; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
    "s.bind((sys.argv[1], 0)); s.send(bytes.fromhex(sys.argv[2]))"
)


def zero_window_acks(cap, receiver: str) -> int:
    """Segments from ``receiver`` with a zero window after the last segment of one octet sent to it."""
    segs = _segments(cap)
    last = max((i for i, p in enumerate(segs) if str(p.dst) == receiver and p.payload_len == 1), default=None)
    if last is None:
        return 0
    return sum(1 for p in segs[last + 1 :] if str(p.src) == receiver and p.window == 0)


# ----------------------------------------------------------------------------- the scenario


def _peer(lab, role: str, timeout: float, **opts):
    from lab.traffic import Peer

    argv = [sys.executable, "-m", "lab.stall", "peer", role, "--timeout", str(timeout)]
    for k, v in opts.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    proc = lab.popen(role, *argv, stdin=subprocess.PIPE, cwd=ROOT)
    return Peer(lab, proc, f"stall {role}", timeout)


def detour_table(every: int = DETOUR, port: int = 5201) -> str:
    """nftables: every ``every``-th data segment to ``port`` gets the detour mark (rerouted)."""
    return f"""table inet lab_detour {{
    chain output {{
        type route hook output priority 0;
        tcp dport {port} meta length > 120 numgen inc mod {every} == {every // 2} meta mark set {DETOUR_MARK}
    }}
}}"""


def stall(
    path: Path,
    *,
    rcvbuf: int = RCVBUF,
    size_a: int = SIZE_A,
    size_b: int = SIZE_B,
    detour: int = DETOUR,
    timeout: float = 30.0,
) -> dict:
    """Make the capture the module describes at ``path``; returns tcpdump's counts."""
    from lab import Lab, expected

    with Lab() as lab:
        # the detour: marked packets from the client leave by pair 1, to the server's pair-0 address
        lab.ip("client", "rule", "add", "fwmark", str(DETOUR_MARK), "table", str(DETOUR_TABLE), "priority", "10")
        lab.ip(
            "client",
            *("route", "add", "198.51.100.0/24", "via", lab.addr("server", 1)),
            *("dev", lab.dev(1), "table", str(DETOUR_TABLE)),
        )
        client_addr, server_addr = lab.addr("client", 0), lab.addr("server", 0)
        with lab.capture(path, iface=lab.dev(0), timeout=timeout) as cap:
            server = _peer(lab, "server", timeout, rcvbuf=rcvbuf, size_a=size_a)
            server.wait_event("listening")
            client = _peer(lab, "client", timeout, size_a=size_a, size_b=size_b, dst=server_addr)
            client.wait_event("connected")
            server.wait_event("accepted")
            cap.wait(lambda c: keepalives(c, client_addr) >= KEEPALIVES, "keep-alives", timeout)
            client.go()
            cap.wait(lambda c: probes_into_zero_window(c, server_addr) >= PROBES, "zero-window probes", timeout)
            probe = zero_window_probe(cap, client_addr)
            lab.run("client", sys.executable, "-c", SEND_FRAME, lab.dev(0), probe.hex())
            cap.wait(lambda c: zero_window_acks(c, server_addr) >= 1, "the zero-window probe's ACK", timeout)
            server.go()
            server.wait_event("closed")
            client.wait_event("closed")
            lab.wait_closed(client_addr, timeout)
            lab.run("client", "nft", "-f", "-", input=detour_table(detour))
            client.go()
            client.result()
            got = server.result()["received"]
        rest = [e["rest"] for e in client.events if e.get("event") == "closed"]
        if rest != [0, 0]:
            raise LabError(f"the server sent the client {rest} octets on its connections, not nothing")
        want = [expected(size_a, 0), expected(size_b, 1)]
        if got != want:
            raise LabError(f"the server received {got}, not {want}")
        return cap.stats


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["peer"]:
        return _peer_main(argv[1:])
    p = argparse.ArgumentParser(prog="python3 -m lab.stall", description=__doc__.split("\n")[0])
    p.add_argument("path", type=Path)
    p.add_argument("--rcvbuf", type=int, default=RCVBUF, help="SO_RCVBUF of the server's listener")
    p.add_argument("--size-a", type=int, default=SIZE_A, help="octets sent into the stalled receiver")
    p.add_argument("--size-b", type=int, default=SIZE_B, help="octets sent on the reused ports")
    p.add_argument("--detour", type=int, default=DETOUR, help="send every Nth data segment by pair 1")
    a = p.parse_args(argv)
    stats = stall(a.path, rcvbuf=a.rcvbuf, size_a=a.size_a, size_b=a.size_b, detour=a.detour)
    print(f"{a.path}: {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
