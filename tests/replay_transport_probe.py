"""Drives :class:`replay.transport.RawTransport` inside the lab's client namespace; prints one JSON line.

Run by ``tests/test_replay_transport.py`` as ``ip netns exec CLIENT python3 replay_transport_probe.py CMD``::

    syn --family 4|6 --sport N [--no-nft]   a SYN to the server's port 5201; its SYN/ACK; then our own RST
    refuse                                  send() to a non-peer and from a non-local address
    raise --exc RuntimeError|KeyboardInterrupt   raise inside ``with``; the tables afterwards
    rate --count N --rate R                 N SYNs at R packets/s; the time it took
    bench --count N                         N SYNs in a tight loop; packets/s
    hold                                    open, say so, sleep (for SIGTERM)
    leak                                    open, never close: the atexit hook must
    cleanup                                 cleanup_leftovers() with a dead and a live process's table
    burst --family 4|6 [--no-gso]           a Burst (PSH, no ACK) to a closed port: the RSTs' ACKs
    links                                   each pair of lab addresses: find_link's answer and ip's

The packets are built here, independently of the replay's own packet builder.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mptcpspec.replay.transport import RawTransport, TransportError, cleanup_leftovers  # noqa: E402
from mptcpspec.replay.wire import Burst  # noqa: E402

CLIENT = {4: "198.51.100.1", 6: "2001:db8:1::1"}
SERVER = {4: "198.51.100.2", 6: "2001:db8:1::2"}
PORT = 5201
CLOSED_PORT = 9  # nothing listens there: the server answers RST
SYN, RST, ACK = 0x02, 0x04, 0x10
OUR_WINDOW = 1234  # marks the RST the probe sends itself


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_ip(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int = 64240,
    options: bytes = b"",
    payload: bytes = b"",
) -> bytes:
    """An IPv4 or IPv6 packet with one TCP segment, checksums computed."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    hlen = 20 + len(options)
    seg = struct.pack("!HHIIHHHH", sport, dport, seq, ack, (hlen // 4) << 12 | flags, window, 0, 0) + options + payload
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 6, len(seg))
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", len(seg), 6)
    seg = seg[:16] + struct.pack("!H", _csum(pseudo + seg)) + seg[18:]
    if s.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0x4000, 64, 6, 0, s.packed, d.packed)
        return ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:] + seg
    return struct.pack("!IHBB16s16s", 6 << 28, len(seg), 6, 64, s.packed, d.packed) + seg


def syn(family: int, sport: int, dport: int = PORT, seq: int = 1000) -> bytes:
    """A SYN with an MSS option (1460) from the client's pair-0 address to the server's."""
    return tcp_ip(CLIENT[family], SERVER[family], sport, dport, seq, 0, SYN, options=struct.pack("!BBH", 2, 4, 1460))


def tcp_fields(packet: bytes) -> dict:
    """Addresses, ports, seq, ack, flags, window of an IP packet (no extension headers)."""
    if packet[0] >> 4 == 4:
        t = (packet[0] & 15) * 4
        src, dst = ipaddress.ip_address(packet[12:16]), ipaddress.ip_address(packet[16:20])
    else:
        t, src, dst = 40, ipaddress.ip_address(packet[8:24]), ipaddress.ip_address(packet[24:40])
    sport, dport, seq, ack, off_flags, window = struct.unpack("!HHIIHH", packet[t : t + 16])
    return {
        "src": str(src),
        "dst": str(dst),
        "sport": sport,
        "dport": dport,
        "seq": seq,
        "ack": ack,
        "flags": off_flags & 0x1FF,
        "window": window,
    }


def nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


def cmd_syn(a) -> dict:
    fam = a.family
    with RawTransport([CLIENT[fam]], [SERVER[fam]], nft=not a.no_nft) as t:
        tables_open = nft_tables()
        t.send(syn(fam, a.sport))
        synack, others = None, []
        deadline = time.monotonic() + 3.0
        while synack is None and time.monotonic() < deadline:
            for p in t.recv(deadline - time.monotonic()):
                f = tcp_fields(p)
                if f["sport"] == PORT and f["dport"] == a.sport and f["flags"] & (SYN | ACK) == SYN | ACK:
                    synack = f
                else:
                    others.append(f)
        if synack:
            # The sleep is the behaviour under test: an RST the kernel would send answers the SYN/ACK at
            # once, and no condition can show an RST that must not come; 0.2 s is the window it has.
            time.sleep(0.2)
            t.send(
                tcp_ip(
                    CLIENT[fam],
                    SERVER[fam],
                    a.sport,
                    PORT,
                    synack["ack"],
                    (synack["seq"] + 1) & 0xFFFFFFFF,
                    RST | ACK,
                    window=OUR_WINDOW,
                )
            )
    return {
        "synack": synack,
        "others": others,
        "stats": t.stats,
        "table": t.table,
        "tables_open": tables_open,
        "tables_after": nft_tables(),
    }


def cmd_refuse(a) -> dict:
    errors = []
    with RawTransport([CLIENT[4]], [SERVER[4]]) as t:
        for pkt in (
            tcp_ip(CLIENT[4], "198.51.100.3", 40001, PORT, 1, 0, SYN),
            tcp_ip("198.51.100.9", SERVER[4], 40001, PORT, 1, 0, SYN),
            tcp_ip(CLIENT[6], SERVER[6], 40001, PORT, 1, 0, SYN),
            b"\x00" * 40,
        ):
            try:
                t.send(pkt)
            except TransportError as e:
                errors.append(str(e))
    return {"errors": errors, "sent": t.stats["sent"]}


def cmd_raise(a) -> dict:
    exc = {"RuntimeError": RuntimeError, "KeyboardInterrupt": KeyboardInterrupt}[a.exc]
    t = RawTransport([CLIENT[4], CLIENT[6]], [SERVER[4], SERVER[6]])
    raised = False
    try:
        with t:
            tables_open = nft_tables()
            raise exc("inside the transport")
    except exc:
        raised = True
    return {"raised": raised, "table": t.table, "tables_open": tables_open, "tables_after": nft_tables()}


def _syns(t: RawTransport, count: int) -> float:
    pkts = [syn(4, 20000 + i % 40000, CLOSED_PORT) for i in range(count)]
    start = time.perf_counter()
    for p in pkts:
        t.send(p)
    return time.perf_counter() - start


def cmd_rate(a) -> dict:
    with RawTransport([CLIENT[4]], [SERVER[4]], rate=a.rate) as t:
        elapsed = _syns(t, a.count)
    return {"elapsed": elapsed, "sent": t.stats["sent"]}


def cmd_bench(a) -> dict:
    with RawTransport([CLIENT[4]], [SERVER[4]]) as t:
        elapsed = _syns(t, a.count)
        got, deadline = 0, time.monotonic() + 1.0
        while got < a.count and time.monotonic() < deadline:
            got += len(t.recv(0.2))
    return {"elapsed": elapsed, "pps": a.count / elapsed, "sent": t.stats["sent"], "answers": got, "stats": t.stats}


def cmd_hold(a) -> dict:
    t = RawTransport([CLIENT[4]], [SERVER[4]])
    t.open()
    print(json.dumps({"ready": True, "table": t.table}), flush=True)
    time.sleep(30)  # the behaviour under test: hold the transport open until the test's signal ends it
    return {"ready": False}


def cmd_leak(a) -> dict:
    t = RawTransport([CLIENT[4]], [SERVER[4]])
    t.open()
    return {"table": t.table, "tables_open": nft_tables()}


def cmd_cleanup(a) -> dict:
    dead = subprocess.Popen(["true"])
    dead.wait()
    names = [f"mptcpspec_replay_{dead.pid}_0", f"mptcpspec_replay_{os.getpid()}_0"]
    for n in names:
        subprocess.run(["nft", "add", "table", "inet", n], check=True)
    gone = cleanup_leftovers()
    left = nft_tables()
    subprocess.run(["nft", "delete", "table", "inet", names[1]], check=True)
    return {"names": names, "gone": gone, "left": left, "after": nft_tables()}


BURST_SEQ, BURST_LEN = 7000, 10000
BURST_MSS = {4: 1460, 6: 1440}  # an MTU of 1500
PSH = 0x08


def cmd_burst(a) -> dict:
    """A SYN to the closed port first (its RST shows the next hop answered), then one Burst of
    BURST_LEN octets, PSH without ACK, there: the server answers each segment it gets with a RST
    whose ACK is the end of that segment, so the ACKs tell how the burst was cut."""
    fam = a.family
    payload = bytes(range(256)) * (BURST_LEN // 256 + 1)
    pkt = tcp_ip(CLIENT[fam], SERVER[fam], 40100, CLOSED_PORT, BURST_SEQ, 0, PSH, payload=payload[:BURST_LEN])
    acks = []
    with RawTransport([CLIENT[fam]], [SERVER[fam]], gso=True, kernel_gso=not a.no_gso) as t:
        t.send(syn(fam, 40100, CLOSED_PORT))
        first = t.recv(2.0)
        t.send(Burst.of(pkt, BURST_MSS[fam]))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            for p in t.recv(deadline - time.monotonic()):
                f = tcp_fields(p)
                if f["sport"] == CLOSED_PORT and f["dport"] == 40100 and f["flags"] & RST:
                    acks.append(f["ack"])
    return {"first": len(first), "acks": acks, "stats": t.stats}


LINK_PAIRS = [
    ("198.51.100.1", "198.51.100.2"),
    ("203.0.113.1", "203.0.113.2"),
    ("203.0.113.1", "198.51.100.2"),  # a gateway on the way: the lab routes by source
    ("2001:db8:1::1", "2001:db8:1::2"),
    ("2001:db8:2::1", "2001:db8:2::2"),
]


def _ip_json(*args: str) -> list:
    r = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(r.stdout or "[]")


def cmd_links(a) -> dict:
    """Connect to a closed port of each server address first (the neighbours get resolved), then
    for each pair: find_link's device and Ethernet header, and what `ip route get` and `ip neigh`
    say they should be (the destination's neighbour entry, else the gateway's)."""
    from mptcpspec.replay.gso import find_link

    for _, dst in LINK_PAIRS:
        with socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET) as s:
            s.settimeout(1.0)
            try:
                s.connect((dst, CLOSED_PORT))
            except OSError:
                pass
    out = {}
    for src, dst in LINK_PAIRS:
        got = find_link(ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed, 0x4D50)
        route = _ip_json("route", "get", dst, "from", src, "mark", str(0x4D50))[0]
        dev = route["dev"]
        ours = Path(f"/sys/class/net/{dev}/address").read_text().strip().replace(":", "")
        want = None
        for hop in (dst, route.get("gateway")):
            entries = [
                n
                for n in (_ip_json("neigh", "show", "to", hop, "dev", dev) if hop else [])
                if n.get("lladdr") and set(n.get("state", [])) & {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"}
            ]
            if entries:
                want = [dev, entries[0]["lladdr"].replace(":", "") + ours + ("86dd" if ":" in dst else "0800")]
                break
        out[f"{src} {dst}"] = {"got": None if got is None else [got[0], got[1].hex()], "want": want}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("syn")
    q.add_argument("--family", type=int, choices=(4, 6), default=4)
    q.add_argument("--sport", type=int, required=True)
    q.add_argument("--no-nft", action="store_true")
    sub.add_parser("refuse")
    q = sub.add_parser("raise")
    q.add_argument("--exc", choices=("RuntimeError", "KeyboardInterrupt"), default="RuntimeError")
    q = sub.add_parser("rate")
    q.add_argument("--count", type=int, default=200)
    q.add_argument("--rate", type=float, default=1000)
    q = sub.add_parser("bench")
    q.add_argument("--count", type=int, default=20000)
    sub.add_parser("hold")
    sub.add_parser("leak")
    sub.add_parser("cleanup")
    q = sub.add_parser("burst")
    q.add_argument("--family", type=int, choices=(4, 6), default=4)
    q.add_argument("--no-gso", action="store_true")
    sub.add_parser("links")
    a = p.parse_args(argv)
    print(json.dumps(globals()["cmd_" + a.cmd](a)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
