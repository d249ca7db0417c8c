"""Paired captures: one MPTCP connection captured at both ends at once, with a router between
them that loses, translates, rewrites or blackholes segments, and what it did as ground truth.

Run as root::

    python3 -m lab.pairs loss OUTDIR          # OUTDIR/client.pcap, OUTDIR/server.pcap, OUTDIR/facts.json
    python3 -m lab.pairs all OUTDIR           # OUTDIR/SCENARIO/... for each scenario

or ``facts = run("loss", outdir)`` (or ``loss(outdir, every=10)``...), which returns the facts.

Every scenario runs in a fresh :class:`lab.router.RoutedLab`: one MPTCP connection (version 1, as
the kernel speaks it) from the client's path-0 address to the server's (port 5201); the client's
``subflow`` endpoint 203.0.113.1 (id 3) joins a second subflow on path 1; every client and server
veth is shaped (tbf, :meth:`~lab.network.Network.rate_limit`) so that data crosses both subflows;
the client sends ``size`` octets (``lab.peer.pattern(size, 0)``), the server replies ``reply``
octets (``pattern(reply, 1)``) at EOF, and each side checks it received exactly those.  tcpdump
captures in the client namespace (:data:`CLIENT_PCAP`) and in the server namespace
(:data:`SERVER_PCAP`) at the same time, ``-i any`` (Linux cooked v1 frames), filter ``tcp``, whole
packets; both use the host's wall clock, the one of ``time.time()`` in the facts.  The client
capture sees a packet before the client's qdisc (``facts["qdisc_drops"]`` says none was dropped
there), the server capture as it arrives: the router is between them.

Scenarios (:data:`SCENARIOS`), each a function ``NAME(outdir, **options) -> facts``:

``loss``
    The router drops every ``every``-th client->server TCP segment with payload on path 1
    (nftables ``numgen inc mod N``; retransmissions count too): counter ``lost``; the ones it lets
    through: counter ``kept``.
``nat``
    The router source-NATs path 1 client->server (``snat to 203.0.113.100:10000-10999``, outside
    the client's ephemeral ports, so the port always changes): the join arrives from another
    address and port.
``clamp``
    The router sets the MSS option of every SYN on path 0 (both directions) to ``mss`` and removes
    SACK-permitted (kind 4, made NOPs) from the client's SYN on path 0.
``strip``
    The router removes the MPTCP option (kind 30, made NOPs) from the client's SYN on path 0: the
    server answers plain TCP and the connection falls back to TCP (no join).
``blackhole``
    Once a quarter of the client's data has crossed the router, it drops everything on path 1,
    both directions, for ``seconds`` (1.0) and then forwards again: the data stuck on path 1 is
    reinjected on path 0, and path 1 recovers (retransmissions) after the blackhole ends.

The facts (:data:`FACTS`, JSON; every scenario has the common keys, and one key of its own,
its name)::

    scenario, family, port               str, 4 or 6, 5201
    files                                {"client": "client.pcap", "server": "server.pcap"}
    paths                                {"0": {"client": addr, "server": addr, "router": ["cli0", "srv0"]}, "1": ...}
    endpoint                             {"address": client's path-1 address, "id": 3, "flags": "subflow"}
    size, reply                          octets client->server, server->client
    results                              {"client": client peer result, "server": server peer result}
    time                                 {"start": t, "end": t}: time.time() around the transfer
    counters                             router counters, name -> [packets, bytes]: those of
                                         lab.router.accounting_ruleset (path{p}_c2s, path{p}_s2c,
                                         path{p}_c2s_data, path{p}_s2c_data) and the scenario's
    qdisc_drops                          {"client": {"veth0": n, "veth1": n}, "server": {...}}
    captures                             {"client": tcpdump counts, "server": tcpdump counts}
    ttl_decrement                        1: the router decrements the IP TTL (hop limit)
    subflows                             [{"path": p, "client": FLOW, "server": FLOW}]: each subflow's
                                         client->server FLOW as each capture names it (they differ
                                         where the router translates), in the order of their SYNs
    rules                                the scenario's nftables ruleset, as loaded
    seen                                 {"client": SEEN, "server": SEEN}: read back from each capture
                                         by this module's own reader (not mptcpspec's decoders):
                                         SEEN = {"handshakes": [HS...], "data": {FLOW: [segments, octets]}}
                                         HS = {"time", "src", "sport", "dst", "dport", "flags": "S"|"SA",
                                               "ttl", "mss", "options": [kinds in order, NOPs included],
                                               "mptcp": MPTCP subtype or None}
                                         FLOW = "SRC:SPORT>DST:DPORT" (v6 addresses in brackets);
                                         data counts TCP segments with payload, retransmissions included

    loss       {"every", "path": 1, "direction": "client->server", "lost": [p, b], "kept": [p, b]}
    nat        {"path": 1, "direction": "client->server", "to": {"address", "ports": [lo, hi]},
                "original": {"address", "port"}, "translated": {"address", "port"},
                "server": {"address", "port"}}   (the join's SYN as each capture saw it)
    clamp      {"path": 0, "mss": N, "mss_directions": ["client->server", "server->client"],
                "mss_seen": {"client": [client SYN's, SYN/ACK's], "server": [...]},
                "removed_option": "sack-perm", "removed_kind": 4, "removed_direction": "client->server"}
    strip      {"path": 0, "direction": "client->server", "packets": "SYN", "supported": bool,
                "error": nft's message or None, "stripped": "mptcp" or None, "kind": 30,
                "fallback": bool (neither the server's SYN nor its SYN/ACK carries MPTCP)}
    blackhole  {"path": 1, "directions": [both], "seconds": D, "start_issued", "start", "end", "end_done",
                "dropped": {"client->server": [p, b], "server->client": [p, b]}}
               the blackhole is on from ``start`` to ``end`` for sure (time.time() after the rule is in,
               before it is removed), and not before ``start_issued`` nor after ``end_done``

Every scenario checks what it claims before it returns (else :class:`lab.LabError`): both paths
carried the client's data (but ``strip``), the counters of what it dropped are not zero, the NAT
changed address and port, the MSS differs between the captures, the fallback happened.  IPv4 by
default; ``family=6`` runs the same over IPv6 (``nat`` to [2001:db8:2::100]).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lab.host import LabError, wait_until
from lab.router import DIRECTIONS, RoutedLab, payload_rules
from lab.traffic import DEFAULT_PORT, Peer, expected

__all__ = [
    "CLIENT_PCAP",
    "FACTS",
    "SCENARIOS",
    "SERVER_PCAP",
    "blackhole",
    "clamp",
    "loss",
    "nat",
    "read_pcap",
    "run",
    "seen",
    "strip",
]

CLIENT_PCAP = "client.pcap"
SERVER_PCAP = "server.pcap"
FACTS = "facts.json"
SIZE = 1_500_000
REPLY = 20_000
ENDPOINT_ID = 3
NAT_TO = {4: "203.0.113.100", 6: "2001:db8:2::100"}
NAT_PORTS = (10000, 10999)  # below the client's ephemeral ports (32768-60999): the port always changes
KIND_MPTCP, KIND_SACK_PERM, KIND_MSS = 30, 4, 2
# TCP small queues (what a subflow may have in its qdisc) and tbf's queue (``latency`` at the rate,
# 500 kB at 20 Mbit/s) are set so that no qdisc drops a segment the capture (before it) has seen:
# with the lab's 50 ms (128 kB) a megabyte transfer loses some there
TSQ_BYTES = 32768
LINKTYPES = {1: 14, 113: 16, 276: 20}  # link type -> link header length (Ethernet, Linux SLL, SLL2)


# ------------------------------------------------------------------------------------- reading back


def read_pcap(path) -> Iterator[tuple[float, bytes]]:
    """(time, IP packet) of each record of a pcap file (Ethernet, Linux cooked v1 or v2)."""
    blob = Path(path).read_bytes()
    magics = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6)}
    magics |= {b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
    if blob[:4] not in magics:
        raise LabError(f"{path}: not a pcap file")
    e, unit = magics[blob[:4]]
    (linktype,) = struct.unpack_from(e + "I", blob, 20)
    if linktype not in LINKTYPES:
        raise LabError(f"{path}: link type {linktype}, not Ethernet or Linux cooked")
    off = 24
    while off + 16 <= len(blob):
        sec, frac, incl, _ = struct.unpack_from(e + "IIII", blob, off)
        frame = blob[off + 16 : off + 16 + incl]
        off += 16 + incl
        yield sec + frac * unit, frame[LINKTYPES[linktype] :]


def _tcp(packet: bytes) -> tuple[str, str, int, bytes, int] | None:
    """(source, destination, TTL or hop limit, TCP segment, payload length) of an IPv4 or IPv6 TCP packet."""
    if packet and packet[0] >> 4 == 4 and len(packet) >= 20 and packet[9] == 6:
        ihl = (packet[0] & 15) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        src, dst = str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20]))
        seg, ttl, length = packet[ihl:total], packet[8], total - ihl
    elif packet and packet[0] >> 4 == 6 and len(packet) >= 40 and packet[6] == 6:
        length = struct.unpack_from("!H", packet, 4)[0]
        src, dst = str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40]))
        seg, ttl = packet[40 : 40 + length], packet[7]
    else:
        return None
    if len(seg) < 20:
        return None
    return src, dst, ttl, seg, length - (seg[12] >> 4) * 4


def _options(seg: bytes) -> list[tuple[int, bytes]]:
    """(kind, value) of each TCP option of a segment, NOPs included, up to End of Option List."""
    area, out, i = seg[20 : (seg[12] >> 4) * 4], [], 0
    while i < len(area):
        kind = area[i]
        if kind == 0:
            break
        if kind == 1:
            out.append((1, b""))
            i += 1
            continue
        if i + 1 >= len(area) or area[i + 1] < 2:
            break
        out.append((kind, area[i + 2 : i + area[i + 1]]))
        i += area[i + 1]
    return out


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def seen(path) -> dict:
    """What a capture holds, read independently of mptcpspec: its SYNs and SYN/ACKs, and the TCP
    segments with payload of each direction of each subflow (see the module's ``seen``)."""
    handshakes, data = [], {}
    for ts, packet in read_pcap(path):
        tcp = _tcp(packet)
        if tcp is None:
            continue
        src, dst, ttl, seg, payload = tcp
        sport, dport, flags = *struct.unpack_from("!HH", seg, 0), seg[13]
        if flags & 0x02:
            opts = _options(seg)
            mss = next((struct.unpack("!H", v)[0] for k, v in opts if k == KIND_MSS and len(v) == 2), None)
            mptcp = next((v[0] >> 4 for k, v in opts if k == KIND_MPTCP and v), None)
            handshakes.append(
                {
                    "time": ts,
                    "src": src,
                    "sport": sport,
                    "dst": dst,
                    "dport": dport,
                    "flags": "SA" if flags & 0x10 else "S",
                    "ttl": ttl,
                    "mss": mss,
                    "options": [k for k, _ in opts],
                    "mptcp": mptcp,
                }
            )
        if payload > 0:
            key = f"{_endpoint(src, sport)}>{_endpoint(dst, dport)}"
            n, octets = data.get(key, (0, 0))
            data[key] = (n + 1, octets + payload)
    return {"handshakes": handshakes, "data": {k: list(v) for k, v in data.items()}}


def _syn(view: dict, flags: str, *, join: bool | None = None) -> dict:
    """The first handshake segment with ``flags`` (MP_JOIN or not, if ``join`` is given)."""
    for hs in view["handshakes"]:
        if hs["flags"] == flags and (join is None or (hs["mptcp"] == 1) == join):
            return hs
    raise LabError(f"no {'MP_JOIN ' if join else ''}{flags} segment in the capture: {view['handshakes']}")


def _subflows(views: dict) -> list[dict]:
    """Each subflow as each capture names it (its client->server FLOW), in the order of the SYNs;
    ``path``: the path of the client's source address."""
    flows: dict[str, dict[str, str]] = {}  # role -> FLOW -> source address
    for role, view in views.items():
        flows[role] = {}
        for hs in view["handshakes"]:
            if hs["flags"] == "S":  # a SYN sent again is the same subflow
                flows[role].setdefault(
                    f"{_endpoint(hs['src'], hs['sport'])}>{_endpoint(hs['dst'], hs['dport'])}", hs["src"]
                )
    if len(flows["client"]) != len(flows["server"]):
        raise LabError(
            f"the captures hold different subflows: client {list(flows['client'])}, server {list(flows['server'])}"
        )
    return [
        {"path": RoutedLab.pair_of(src), "client": c, "server": s}
        for (c, src), s in zip(flows["client"].items(), flows["server"])
    ]


# ------------------------------------------------------------------------------------- the scenarios


def _scenario(
    name: str,
    outdir,
    *,
    family: int,
    size: int,
    reply: int,
    rules: Callable[[RoutedLab], str] | None = None,
    rate: str = "20mbit",
    latency: str = "200ms",
    wait_subflows: int = 2,
    during: Callable[[RoutedLab, Peer, dict], None] | None = None,
    timeout: float = 20.0,
) -> dict:
    """One paired capture in a fresh :class:`RoutedLab`; the common facts (and ``facts[name]`` from
    ``during``).  ``rules(lab)``: the scenario's ruleset, loaded in the router before the connection;
    ``during(lab, client, facts)``: runs once the client has started."""
    if family not in (4, 6):
        raise ValueError(f"family {family}: 4 or 6")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    facts: dict = {"scenario": name, "family": family, "port": DEFAULT_PORT}
    facts["files"] = {"client": CLIENT_PCAP, "server": SERVER_PCAP}
    facts["size"], facts["reply"] = size, reply
    facts["ttl_decrement"] = 1
    facts[name] = {}
    with RoutedLab() as lab:
        facts["paths"] = {
            str(p): {
                "client": lab.addr("client", p, family),
                "server": lab.addr("server", p, family),
                "router": [lab.router_dev("client", p), lab.router_dev("server", p)],
            }
            for p in (0, 1)
        }
        lab.router_accounting()
        facts["rules"] = rules(lab) if rules else ""
        if facts["rules"]:
            lab.router_nft(facts["rules"])
        for role in ("client", "server"):
            lab.sysctl(role, {"net.ipv4.tcp_limit_output_bytes": TSQ_BYTES})
        for role in ("client", "server"):
            for p in (0, 1):
                lab.rate_limit(role, lab.dev(p), rate, latency=latency)
        endpoint = lab.addr("client", 1, family)
        lab.endpoint_add("client", endpoint, "subflow", id=ENDPOINT_ID)
        facts["endpoint"] = {"address": endpoint, "id": ENDPOINT_ID, "flags": "subflow"}
        with (
            lab.capture(out / CLIENT_PCAP, ns="client", timeout=timeout) as ccap,
            lab.capture(out / SERVER_PCAP, ns="server", timeout=timeout) as scap,
        ):
            start = time.time()
            server = lab.serve(family=family, reply=reply, timeout=timeout)
            client = lab.connect(family=family, size=size, first=1000, wait_subflows=wait_subflows, timeout=timeout)
            if during:
                during(lab, client, facts)
            c = client.result()
            s = server.result()
            facts["time"] = {"start": start, "end": time.time()}
        facts["counters"] = {k: list(v) for k, v in lab.router_counters().items()}
        facts["qdisc_drops"] = lab.qdisc_drops()
    facts["captures"] = {"client": ccap.stats, "server": scap.stats}
    facts["results"] = {"client": c, "server": s}
    if {k: s[k] for k in ("length", "sha256")} != expected(size):
        raise LabError(f"{name}: the server received {s['length']} octets, not the {size} the client sent")
    if c["reply"] != expected(reply, 1):
        raise LabError(f"{name}: the client received {c['reply']['length']} octets, not the {reply} of the reply")
    if any(n for role in facts["qdisc_drops"].values() for n in role.values()):
        raise LabError(f"{name}: a qdisc dropped packets {facts['qdisc_drops']}: the client capture holds them")
    facts["seen"] = {"client": seen(out / CLIENT_PCAP), "server": seen(out / SERVER_PCAP)}
    facts["subflows"] = _subflows(facts["seen"])
    if wait_subflows >= 2:
        idle = [p for p in (0, 1) if not facts["counters"][f"path{p}_c2s_data"][0]]
        if idle:
            raise LabError(f"{name}: no client data crossed path {idle[0]}: {facts['counters']}")
    return facts


def _save(outdir, facts: dict) -> dict:
    (Path(outdir) / FACTS).write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    return facts


def _table(name: str, body: str) -> str:
    return f"table inet {name} {{\n{body}\n}}\n"


def loss(outdir, *, every: int = 10, family: int = 4, size: int = SIZE, reply: int = REPLY) -> dict:
    """The router drops every ``every``-th client->server segment with payload on path 1."""
    if every < 2:
        raise ValueError(f"every={every}: at least 2 (every segment lost would stall the subflow)")

    def rules(lab: RoutedLab) -> str:
        payload = "\n        ".join(payload_rules("goto data").splitlines())
        return _table(
            "lab_loss",
            f"""    counter lost {{ }}
    counter kept {{ }}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        iifname "{lab.router_dev("client", 1)}" tcp dport {DEFAULT_PORT} jump payload
    }}
    chain payload {{
        {payload}
    }}
    chain data {{
        numgen inc mod {every} == 0 counter name lost drop
        counter name kept
    }}""",
        )

    facts = _scenario("loss", outdir, family=family, size=size, reply=reply, rules=rules)
    lost, kept = facts["counters"]["lost"], facts["counters"]["kept"]
    facts["loss"] = {"every": every, "path": 1, "direction": DIRECTIONS["c2s"], "lost": lost, "kept": kept}
    if not lost[0]:
        raise LabError(f"loss: the router dropped nothing: {facts['counters']}")
    return _save(outdir, facts)


def nat(outdir, *, family: int = 4, size: int = SIZE, reply: int = REPLY) -> dict:
    """The router source-NATs path 1 client->server, port included."""
    to = NAT_TO[family]
    lo, hi = NAT_PORTS
    target = f"[{to}]" if family == 6 else to

    def rules(lab: RoutedLab) -> str:
        lab.via_router("server", to, 1)  # the server's answers to the NAT address go to the router
        fam = "ip" if family == 4 else "ip6"
        return f"""table {fam} lab_nat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{lab.router_dev("server", 1)}" {fam} saddr {lab.addr("client", 1, family)} meta l4proto tcp \
snat to {target}:{lo}-{hi}
    }}
}}
"""

    facts = _scenario("nat", outdir, family=family, size=size, reply=reply, rules=rules)
    before = _syn(facts["seen"]["client"], "S", join=True)
    after = _syn(facts["seen"]["server"], "S", join=True)
    facts["nat"] = {
        "path": 1,
        "direction": DIRECTIONS["c2s"],
        "to": {"address": to, "ports": [lo, hi]},
        "original": {"address": before["src"], "port": before["sport"]},
        "translated": {"address": after["src"], "port": after["sport"]},
        "server": {"address": after["dst"], "port": after["dport"]},
    }
    if after["src"] != to or not lo <= after["sport"] <= hi or after["sport"] == before["sport"]:
        raise LabError(f"nat: the join reached the server from {after['src']} port {after['sport']}: {facts['nat']}")
    return _save(outdir, facts)


def clamp(outdir, *, mss: int = 1200, family: int = 4, size: int = SIZE, reply: int = REPLY) -> dict:
    """The router clamps the MSS of the SYNs on path 0 and removes SACK-permitted from the client's."""

    def rules(lab: RoutedLab) -> str:
        cli, srv = lab.router_dev("client", 0), lab.router_dev("server", 0)
        return _table(
            "lab_clamp",
            f"""    chain forward {{
        type filter hook forward priority mangle; policy accept;
        iifname {{ "{cli}", "{srv}" }} tcp flags & syn == syn tcp option maxseg size set {mss}
        iifname "{cli}" tcp flags & (syn | ack) == syn reset tcp option sack-perm
    }}""",
        )

    facts = _scenario("clamp", outdir, family=family, size=size, reply=reply, rules=rules)
    ends = {
        role: [_syn(facts["seen"][role], "S", join=False), _syn(facts["seen"][role], "SA", join=False)]
        for role in ("client", "server")
    }
    facts["clamp"] = {
        "path": 0,
        "mss": mss,
        "mss_directions": [DIRECTIONS["c2s"], DIRECTIONS["s2c"]],
        "mss_seen": {role: [hs["mss"] for hs in pair] for role, pair in ends.items()},
        "removed_option": "sack-perm",
        "removed_kind": KIND_SACK_PERM,
        "removed_direction": DIRECTIONS["c2s"],
    }
    syn_c, syn_s = ends["client"][0], ends["server"][0]
    synack_s, synack_c = ends["server"][1], ends["client"][1]
    if syn_s["mss"] != mss or synack_c["mss"] != mss or syn_c["mss"] == mss or synack_s["mss"] == mss:
        raise LabError(f"clamp: the MSS seen is not the one the router set: {facts['clamp']['mss_seen']}")
    if KIND_SACK_PERM not in syn_c["options"] or KIND_SACK_PERM in syn_s["options"]:
        raise LabError(f"clamp: SACK-permitted not removed: client {syn_c['options']}, server {syn_s['options']}")
    return _save(outdir, facts)


def strip(outdir, *, family: int = 4, size: int = SIZE, reply: int = REPLY) -> dict:
    """The router removes the MPTCP option from the client's SYN on path 0: fallback to TCP."""
    state: dict = {}

    def rules(lab: RoutedLab) -> str:
        text = _table(
            "lab_strip",
            f"""    counter stripped {{ }}
    chain forward {{
        type filter hook forward priority mangle; policy accept;
        iifname "{lab.router_dev("client", 0)}" tcp flags & (syn | ack) == syn tcp option mptcp exists \
counter name stripped reset tcp option mptcp
    }}""",
        )
        state["error"] = lab.router_nft_check(text)
        return "" if state["error"] else text

    facts = _scenario("strip", outdir, family=family, size=size, reply=reply, rules=rules, wait_subflows=0)
    server_syn, server_synack = _syn(facts["seen"]["server"], "S"), _syn(facts["seen"]["server"], "SA")
    fallback = server_syn["mptcp"] is None and server_synack["mptcp"] is None
    supported = state["error"] is None
    facts["strip"] = {
        "path": 0,
        "direction": DIRECTIONS["c2s"],
        "packets": "SYN",
        "supported": supported,
        "error": state["error"],
        "stripped": "mptcp" if supported else None,
        "kind": KIND_MPTCP,
        "fallback": fallback,
    }
    if supported and not (fallback and _syn(facts["seen"]["client"], "S")["mptcp"] == 0):
        client_syn = facts["seen"]["client"]["handshakes"][0]
        raise LabError(f"strip: no fallback: client SYN {client_syn}, server SYN {server_syn}")
    return _save(outdir, facts)


def blackhole(
    outdir,
    *,
    seconds: float = 1.0,
    family: int = 4,
    size: int = SIZE,
    reply: int = REPLY,
    rate: str = "4mbit",
    latency: str = "400ms",
) -> dict:
    """The router drops everything on path 1 for ``seconds`` once a quarter of the data has crossed."""
    table = "lab_blackhole"
    cli, srv = RoutedLab.router_dev("client", 1), RoutedLab.router_dev("server", 1)

    def rules(lab: RoutedLab) -> str:
        return _table(
            table,
            """    counter blackhole_c2s { }
    counter blackhole_s2c { }
    chain forward {
        type filter hook forward priority 0; policy accept;
        jump hole
    }
    chain hole {
    }""",
        )

    def during(lab: RoutedLab, client: Peer, facts: dict) -> None:
        client.wait_event("subflows")

        def crossed() -> bool:
            counters = lab.router_counters()
            return counters["path0_c2s_data"][1] + counters["path1_c2s_data"][1] >= size // 4

        wait_until(crossed, "a quarter of the client's data to cross the router", timeout=10.0)
        hole = f"""add rule inet {table} hole iifname "{cli}" counter name blackhole_c2s drop
add rule inet {table} hole iifname "{srv}" counter name blackhole_s2c drop
"""
        f = facts["blackhole"]
        f["start_issued"] = time.time()
        lab.router_nft(hole)
        f["start"] = time.time()
        time.sleep(seconds)  # the blackhole's length is the behaviour asked for
        f["end"] = time.time()
        lab.router_nft(f"flush chain inet {table} hole\n")
        f["end_done"] = time.time()

    facts = _scenario(
        "blackhole",
        outdir,
        family=family,
        size=size,
        reply=reply,
        rules=rules,
        rate=rate,
        latency=latency,
        during=during,
    )
    f = facts["blackhole"]
    f |= {"path": 1, "directions": [DIRECTIONS["c2s"], DIRECTIONS["s2c"]], "seconds": seconds}
    f["dropped"] = {DIRECTIONS[d]: facts["counters"][f"blackhole_{d}"] for d in ("c2s", "s2c")}
    if not f["dropped"][DIRECTIONS["c2s"]][0]:
        raise LabError(f"blackhole: nothing from the client was dropped on path 1: {facts['counters']}")
    if f["end_done"] > facts["time"]["end"]:
        raise LabError(f"blackhole: the transfer ended at {facts['time']['end']:.3f}, before the blackhole did")
    return _save(outdir, facts)


SCENARIOS: dict[str, Callable[..., dict]] = {
    "loss": loss,
    "nat": nat,
    "clamp": clamp,
    "strip": strip,
    "blackhole": blackhole,
}


def run(scenario: str, outdir, **options) -> dict:
    """Run scenario ``scenario`` (a name of :data:`SCENARIOS`) into ``outdir``; its facts."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
    return SCENARIOS[scenario](outdir, **options)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m lab.pairs", description=__doc__.split("\n")[0])
    p.add_argument("scenario", choices=[*SCENARIOS, "all"])
    p.add_argument("outdir", type=Path)
    p.add_argument("--family", type=int, choices=(4, 6), default=4)
    a = p.parse_args(argv)
    names = list(SCENARIOS) if a.scenario == "all" else [a.scenario]
    for name in names:
        out = a.outdir / name if a.scenario == "all" else a.outdir
        facts = run(name, out, family=a.family)
        print(f"{name}: {out}: {json.dumps(facts[name], sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
