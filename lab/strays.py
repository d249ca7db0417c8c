"""Handshakes out of the common order, made by the kernel in the lab: a stray ACK, resets in a join.

Each scenario makes one capture of a real MPTCP connection (``python3 -m lab.strays --out DIR``)
whose second subflow joins from the client's pair-1 address (a ``subflow`` endpoint, 203.0.113.1):

* ``stray-ack``: the server's SYN/ACK of the join is held back (nftables drops it, the server sends
  it again), and as soon as the join's SYN leaves the client a bare ACK for that subflow is sent
  from the client namespace (a packet socket, the SYN's own Ethernet header): it acknowledges
  nothing the server sent.  The server answers it with a RST without ACK (RFC 9293 Section 3.10.7.3:
  an unacceptable ACK in SYN-RECEIVED), which the client, in SYN-SENT, drops.  The SYN/ACK then
  arrives, the join completes and data flows.
* ``stray-ack-capable``: the same on the first subflow: the stray ACK follows the MP_CAPABLE SYN.
* ``reset-client`` / ``reset-server``: the server's pure ACKs to 203.0.113.1 are dropped (nftables,
  so the capture never shows the ACK of the client's HMAC and the client stays PRE_ESTABLISHED);
  once the third ACK is on the wire, ``ss -K`` kills the joined subflow on the client (a RST from
  the initiator in PRE_ESTABLISHED) or on the server (a RST from a listener that is ESTABLISHED).
* ``reset-established``: the join completes, data flows on both subflows, then ``ss -K`` kills
  the joined subflow on the server: a RST on an established join.  The connection finishes on the
  first subflow.

Every connection carries ``lab.peer.pattern`` data both ways and each side checks what it received.
The packet-socket helper that sends the stray ACK runs in the client namespace: ``python3 -m
lab.strays stray-ack-helper --iface veth1 --src 203.0.113.1``.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

from lab import Lab, LabError, expected
from lab.capture import KIND_MPTCP, Capture
from mptcpspec.replay.wire import ip_checksum  # the Internet checksum (RFC 1071), over any octets

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "mptcpspec-strays"  #: namespace names of these labs (apart from the other labs')
SIZE = 16384  #: octets each way
SCENARIOS = ("stray-ack", "stray-ack-capable", "reset-client", "reset-server", "reset-established")
ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
TCP_SYN, TCP_RST, TCP_ACK = 0x02, 0x04, 0x10
SUBTYPE_MP_CAPABLE, SUBTYPE_MP_JOIN = 0, 1


def _same(got: dict, want: dict, what: str) -> None:
    if got["length"] != want["length"] or got["sha256"] != want["sha256"]:
        raise LabError(f"{what}: {got['length']} octets {got['sha256'][:16]}..., want {want['length']}")


def _join_third_acks(cap: Capture, src: str) -> int:
    """ACKs with MP_JOIN (the third ACK) from ``src`` in the capture so far."""
    from mptcpspec.capture.packets import decode_frame

    n = 0
    for linktype, frame in cap.frames():
        p = decode_frame(linktype, frame)
        if p is None or str(p.src) != src or int(p.flags) & (TCP_SYN | TCP_RST) or not int(p.flags) & TCP_ACK:
            continue
        if _has_subtype(p.options, SUBTYPE_MP_JOIN):
            n += 1
    return n


def _has_subtype(opts: bytes, subtype: int) -> bool:
    i = 0
    while i < len(opts):
        if opts[i] in (0, 1):
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            return False
        if opts[i] == KIND_MPTCP and i + 2 < len(opts) and opts[i + 2] >> 4 == subtype:
            return True
        i += opts[i + 1]
    return False


def _nft(lab: Lab, rule: str) -> None:
    """One rule in the output chain of the server's table ``inet strays``."""
    lab.run(
        "server",
        "nft",
        "-f",
        "-",
        input=f"table inet strays {{\n chain output {{\n  type filter hook output priority 0;\n  {rule}\n }}\n}}\n",
    )


def _kill(lab: Lab, role: str, address: str) -> None:
    """``ss -K`` the joined subflow (the TCP sockets with ``address`` at one end) in ``role``."""
    side = "src" if role == "client" else "dst"
    lab.run(role, "ss", "-K", "-tn", side, address)
    if any(s.state == "ESTAB" for s in lab.active_sockets(role, address)):
        raise LabError(f"ss -K left the subflow of {address} open in the {role} namespace (CONFIG_INET_DIAG_DESTROY?)")


def stray_ack(path: Path, subtype: int = SUBTYPE_MP_JOIN) -> dict:
    """A bare ACK from the initiator of a join (``subtype`` 1), or of the connection (``subtype`` 0:
    MP_CAPABLE), before the SYN/ACK; the handshake then completes."""
    with Lab(prefix=PREFIX) as lab:
        join = lab.addr("client", 1)
        lab.endpoint_add("client", join, "subflow", id=3)
        lab.rate_limit_all()  # so that the default scheduler uses both subflows (see Lab.rate_limit)
        src = join if subtype == SUBTYPE_MP_JOIN else lab.addr("client", 0)
        # Hold the SYN/ACK back until the stray ACK is out (the server sends it again).
        _nft(lab, f"ip daddr {src} tcp flags & (syn | ack) == syn | ack drop")
        with lab.capture(path) as cap:
            helper = lab.popen(
                "client",
                sys.executable,
                "-m",
                "lab.strays",
                "stray-ack-helper",
                "--iface",
                lab.dev(lab.pair_of(src)),
                "--src",
                src,
                "--subtype",
                subtype,
                cwd=str(ROOT),
            )
            if helper.stdout is None or b"armed" not in helper.stdout.readline():
                raise LabError("the stray-ACK helper did not start")
            server = lab.serve(reply=SIZE, timeout=20.0)
            client = lab.connect(size=SIZE, first=1000, wait_subflows=2, timeout=20.0)
            line = helper.stdout.readline()
            if b"sent" not in line:
                raise LabError(f"the stray-ACK helper sent nothing: {line!r}")
            lab.run("server", "nft", "delete", "table", "inet", "strays")
            c = client.result()
            s = server.result()
        _same(s, expected(SIZE), "server received")
        _same(c["reply"], expected(SIZE, 1), "client received")
        return dict(cap.stats, stray=json.loads(line.split(b" ", 1)[1]))


def reset_in_join(path: Path, who: str) -> dict:
    """The ACK of the client's HMAC never shows; ``who`` ("client" or "server") resets the join."""
    with Lab(prefix=PREFIX) as lab:
        join = lab.addr("client", 1)
        lab.endpoint_add("client", join, "subflow", id=3)
        _nft(lab, f"ip daddr {join} tcp flags == ack drop")
        with lab.capture(path) as cap:
            server = lab.serve(reply=SIZE, timeout=20.0)
            client = lab.connect(size=SIZE, first=1000, pause_at=SIZE // 2, timeout=20.0)
            client.wait_event("paused")
            cap.wait(lambda c: _join_third_acks(c, join), "the third ACK of the join")
            _kill(lab, who, join)
            lab.run("server", "nft", "delete", "table", "inet", "strays")
            client.go()
            c = client.result()
            s = server.result()
        _same(s, expected(SIZE), "server received")
        _same(c["reply"], expected(SIZE, 1), "client received")
        return cap.stats


def reset_established(path: Path, tries: int = 3) -> dict:
    """Data on both subflows, then the server resets the joined subflow; the rest goes on the first.
    Made again (up to ``tries`` times) when the kernel's scheduler sent nothing on the join before
    the reset (a busy machine: the first half of the data all went on the first subflow)."""
    for attempt in range(tries):
        stats = _reset_established(path)
        if _payload_on(path, Lab.addr("client", 1)) or attempt == tries - 1:
            return stats
    raise AssertionError("unreachable")


def _payload_on(path: Path, address: str) -> int:
    """Payload octets of the segments from or to ``address`` in the capture at ``path``."""
    from mptcpspec.capture.packets import decode_packet
    from mptcpspec.capture.pcap import read_records

    n = 0
    for rec in read_records(path):
        p = decode_packet(rec)
        if p is not None and address in (str(p.src), str(p.dst)):
            n += p.payload_len
    return n


def _reset_established(path: Path) -> dict:
    with Lab(prefix=PREFIX) as lab:
        join = lab.addr("client", 1)
        lab.rate_limit_all()  # so that the default scheduler uses both subflows (see Lab.rate_limit)
        lab.endpoint_add("client", join, "subflow", id=3)
        with lab.capture(path) as cap:
            server = lab.serve(reply=SIZE, timeout=20.0)
            client = lab.connect(size=SIZE, first=1000, wait_subflows=2, pause_at=SIZE // 2, timeout=20.0)
            client.wait_event("subflows")
            client.wait_event("paused")
            _kill(lab, "server", join)
            client.go()
            c = client.result()
            s = server.result()
        _same(s, expected(SIZE), "server received")
        _same(c["reply"], expected(SIZE, 1), "client received")
        return cap.stats


def make(name: str, path: Path) -> dict:
    """Make the capture of scenario ``name`` (one of :data:`SCENARIOS`) at ``path``; tcpdump's counts."""
    if name == "stray-ack":
        return stray_ack(path)
    if name == "stray-ack-capable":
        return stray_ack(path, SUBTYPE_MP_CAPABLE)
    if name in ("reset-client", "reset-server"):
        return reset_in_join(path, name.removeprefix("reset-"))
    if name == "reset-established":
        return reset_established(path)
    raise ValueError(f"no scenario {name!r}; scenarios: {', '.join(SCENARIOS)}")


# ----------------------------------------------------------------------- the helper, in a namespace


def stray_ack_frame(frame: bytes, subtype: int = SUBTYPE_MP_JOIN) -> bytes | None:
    """For an Ethernet frame carrying a TCP SYN with an MPTCP option of ``subtype`` over IPv4: the same Ethernet and IP
    header around a bare ACK of that flow (sequence number after the SYN, an ACK number that
    acknowledges nothing the peer sent); None for any other frame."""
    if len(frame) < 54 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] != 6:
        return None
    tcp = frame[14 + ihl :]
    if len(tcp) < 20 or tcp[13] != TCP_SYN or not _has_subtype(tcp[20 : (tcp[12] >> 4) * 4], subtype):
        return None
    src, dst = frame[26:30], frame[30:34]
    sport, dport, seq = struct.unpack_from("!HHI", tcp)
    ack = seq ^ 0x5A5A5A5A  # no relation to the peer's ISN, which is not known yet
    head = struct.pack("!HHIIHHHH", sport, dport, (seq + 1) & 0xFFFFFFFF, ack, 5 << 12 | TCP_ACK, 502, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(head))
    head = head[:16] + struct.pack("!H", ip_checksum(pseudo + head)) + head[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(head), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    return frame[:14] + ip + head


def stray_ack_helper(iface: str, src: str, subtype: int, timeout: float) -> int:
    """Wait for a SYN with MPTCP option ``subtype`` from ``src`` leaving ``iface``; send the stray
    ACK; print JSON."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(timeout)
    want = IPv4Address(src).packed
    print("armed", flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = s.recv(65535)
        if frame[26:30] != want:
            continue
        stray = stray_ack_frame(frame, subtype)
        if stray is not None:
            s.send(stray)
            seq, ack = struct.unpack_from("!II", stray, 38)
            print("sent", json.dumps({"seq": seq, "ack": ack}), flush=True)
            return 0
    print("timeout", flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("stray-ack-helper", help="in a namespace: send a bare ACK after the first SYN with MPTCP")
    h.add_argument("--iface", required=True)
    h.add_argument("--src", required=True)
    h.add_argument("--subtype", type=int, default=SUBTYPE_MP_JOIN, help="0: MP_CAPABLE, 1: MP_JOIN (default)")
    h.add_argument("--timeout", type=float, default=20.0)
    m = sub.add_parser("make", help="make captures (root)")
    m.add_argument("names", nargs="*", default=list(SCENARIOS))
    m.add_argument("--out", type=Path, default=Path("."))
    a = p.parse_args(argv)
    if a.command == "stray-ack-helper":
        return stray_ack_helper(a.iface, a.src, a.subtype, a.timeout)
    for name in a.names:
        path = a.out / f"v4-{name}.pcap"
        print(name, make(name, path), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
