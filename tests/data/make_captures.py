#!/usr/bin/env python3
"""(Re)make the kernel MPTCP captures committed in tests/data/ (see README.md there).

Run as root on a Linux machine with MPTCP, iproute2, tcpdump, ethtool, tc and tshark::

    python3 tests/data/make_captures.py              # all of them
    python3 tests/data/make_captures.py v4-tfo ...   # some of them
    python3 tests/data/make_captures.py --out DIR    # somewhere else

Each capture is made in a fresh :class:`lab.Lab`, then checked independently of this
project's decoders: tshark counts the MPTCP subtypes and the features each file promises (MP_JOIN,
ADD_ADDR with HMAC and its echo, REMOVE_ADDR, MP_PRIO, MP_FASTCLOSE, MP_TCPRST, a SYN carrying data
and MP_CAPABLE), tcpdump counts the DSS checksums; a capture that misses one is made again (up to
three tries), then the script exits 1.  The transfers' contents are checked too: each side received
exactly the deterministic octets the other sent.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from lab import Lab, LabError, expected, lab_problem  # noqa: E402

SUBTYPES = {
    0: "MP_CAPABLE",
    1: "MP_JOIN",
    2: "DSS",
    3: "ADD_ADDR",
    4: "REMOVE_ADDR",
    5: "MP_PRIO",
    6: "MP_FAIL",
    7: "MP_FASTCLOSE",
    8: "MP_TCPRST",
    15: "MP_EXPERIMENTAL",
}
SIZE = 32768  # octets each way
REPLY = 32768


# ------------------------------------------------------------------------------------- checks


def tshark_fields(path: Path, *fields: str, filter: str | None = None) -> list[list[str]]:
    argv = [
        "tshark",
        "-n",
        "-r",
        str(path),
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    if filter:
        argv += ["-Y", filter]
    for f in fields:
        argv += ["-e", f]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in r.stdout.splitlines()]


def _true(v: str) -> bool:  # tshark 4.0 prints booleans as 1/0, later versions as True/False
    return v in ("1", "True")


def feature_counts(path: Path) -> Counter:
    """What the capture holds, counted by tshark (MPTCP subtypes, flags) and tcpdump (DSS checksums)."""
    c: Counter = Counter()
    rows = tshark_fields(
        path,
        "tcp.stream",
        "tcp.srcport",
        "tcp.flags.syn",
        "tcp.flags.ack",
        "tcp.flags.reset",
        "tcp.len",
        "tcp.options.mptcp.subtype",
        "tcp.options.mptcp.addaddrtrunchmac",
        "tcp.options.mptcp.echo",
        "tcp.options.mptcp.datafin.flag",
    )
    payload: Counter = Counter()  # (stream, source port) -> octets
    for stream, sport, syn, ack, rst, length, subtypes, hmacs, echo, datafin in ((r + [""] * 10)[:10] for r in rows):
        syn, ack, rst = (_true(x) for x in (syn, ack, rst))
        c["packets"] += 1
        subs = [int(s, 0) for s in subtypes.split(",") if s]
        for s in subs:
            c[SUBTYPES.get(s, f"subtype {s}")] += 1
        if hmacs:
            c["ADD_ADDR with HMAC"] += len(hmacs.split(","))
        if 3 in subs and any(_true(e) for e in echo.split(",")):
            c["ADD_ADDR echo"] += 1
        if any(_true(f) for f in datafin.split(",")):
            c["DATA_FIN"] += 1
        if syn and not ack and int(length or 0) > 0 and 0 in subs:
            c["SYN with data and MP_CAPABLE"] += 1
        if rst and 7 in subs:
            c["RST with MP_FASTCLOSE"] += 1
        if 4 in subs and sport != "5201":
            c["REMOVE_ADDR from the client"] += 1
        if 5 in subs and sport == "5201":
            c["MP_PRIO from the server"] += 1
        if int(length or 0):
            payload[(stream, sport)] += int(length)
    streams = {s for s, _ in payload}
    c["subflows with data"] = len(streams)
    c["subflow directions with data"] = len(payload)
    # Reinjections as tshark 4.0 finds them (its preferences for the inter-subflow analysis on)
    r = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(path),
            "-o",
            "mptcp.analyze_mappings:TRUE",
            "-o",
            "mptcp.intersubflows_retransmission:TRUE",
            "-Y",
            "mptcp.reinjection_of",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    c["reinjected segments"] = len(r.stdout.split())
    r = subprocess.run(["tcpdump", "-nr", str(path)], capture_output=True, text=True, timeout=60, check=True)
    c["DSS checksum"] = sum(1 for line in r.stdout.splitlines() if " dss " in line and " csum 0x" in line)
    return c


def verify(name: str, path: Path, need: dict) -> tuple[bool, Counter]:
    c = feature_counts(path)
    ok = True
    for what, least in need.items():
        if c[what] < least:
            print(f"  {name}: {what}: {c[what]} (need at least {least})")
            ok = False
    return ok, c


def same(got: dict, want: dict, what: str) -> None:
    if (got["length"], got["sha256"]) != (want["length"], want["sha256"]):
        raise LabError(
            f"{what}: got {got['length']} octets {got['sha256'][:16]}..., "
            f"want {want['length']} {want['sha256'][:16]}..."
        )


# ------------------------------------------------------------------------------------- scenarios


def two_subflows(path: Path, family: int = 4, checksum: bool = False) -> dict:
    """Client endpoint `subflow` on its pair-1 address: a second subflow MP_JOINs; data both ways."""
    with Lab(checksum=checksum) as lab:
        lab.rate_limit_all()  # so the default scheduler uses both subflows (see Lab.rate_limit)
        lab.endpoint_add("client", lab.addr("client", 1, family), "subflow")
        with lab.capture(path) as cap:
            s, c = lab.transfer(family=family, size=SIZE, reply=REPLY, first=1000, wait_subflows=2)
        same(s, expected(SIZE), "server received")
        same(c["reply"], expected(REPLY, 1), "client received")
        return cap.stats


def add_addr(path: Path) -> dict:
    """Server `signal` endpoint 203.0.113.2 (ADD_ADDR + echo, the client joins it); mid-connection the
    client's endpoint becomes backup (MP_PRIO) and the server deletes the signal endpoint (REMOVE_ADDR)."""
    with Lab() as lab:
        lab.rate_limit_all()
        lab.endpoint_add("server", lab.addr("server", 1), "signal", id=5)
        lab.endpoint_add("client", lab.addr("client", 1), "subflow", id=3)
        with lab.capture(path) as cap:
            server = lab.serve(reply=REPLY)
            client = lab.connect(size=SIZE, first=1000, wait_subflows=3, pause_at=SIZE // 2)
            client.wait_event("subflows")
            client.wait_event("paused")
            lab.endpoint_change("client", id=3, backup=True)  # -> MP_PRIO on the subflows from 203.0.113.1
            cap.wait(lambda c: c.mptcp_subtypes()[5], "an MP_PRIO on the wire")
            lab.endpoint_delete("server", id=5)  # -> REMOVE_ADDR id 5; the server closes the subflows to it
            cap.wait(lambda c: c.mptcp_subtypes()[4], "a REMOVE_ADDR on the wire")
            lab.wait_closed(lab.addr("server", 1))
            client.go()
            c = client.result()
            s = server.result()
        same(s, expected(SIZE), "server received")
        same(c["reply"], expected(REPLY, 1), "client received")
        return cap.stats


def server_signals(path: Path) -> dict:
    """Server `signal` endpoint 203.0.113.2 (id 5): ADD_ADDR and its echo, the client joins it; the
    server replies in pieces 100 ms apart, and halfway through its reply its endpoint id 5 becomes
    backup: MP_PRIO from the server on the subflow to 203.0.113.2; a normal close."""
    pieces = 8
    with Lab() as lab:
        lab.rate_limit_all()
        lab.endpoint_add("server", lab.addr("server", 1), "signal", id=5)
        with lab.capture(path) as cap:
            server = lab.serve(reply=REPLY, chunk=REPLY // pieces, gap_ms=100, timeout=20)
            client = lab.connect(size=SIZE, first=1000, wait_subflows=2, timeout=20)
            client.wait_event("subflows")
            cap.wait(lambda c: server_octets(c) >= REPLY // 2, "half of the server's reply on the wire")
            lab.endpoint_change("server", id=5, backup=True)  # -> MP_PRIO on the subflow to 203.0.113.2
            cap.wait(lambda c: c.mptcp_subtypes()[5], "an MP_PRIO on the wire")
            c = client.result()
            s = server.result()
        before = server_octets(cap, until_mp_prio=True)
        if not 0 < before < REPLY:
            raise LabError(f"the server's MP_PRIO came after {before} of its {REPLY} octets, not during its reply")
        same(s, expected(SIZE), "server received")
        same(c["reply"], expected(REPLY, 1), "client received")
        return cap.stats


def server_octets(cap, until_mp_prio: bool = False) -> int:
    """TCP payload octets from port 5201 in the capture so far (retransmissions counted too); with
    ``until_mp_prio``, those before the server's first MP_PRIO."""
    from mptcpspec.capture.packets import decode_frame
    from mptcpspec.codec.options import MpPrio, decode_mptcp_options

    n = 0
    for linktype, frame in cap.frames():
        p = decode_frame(linktype, frame)
        if p is None or p.sport != 5201:
            continue
        if until_mp_prio and any(type(o) is MpPrio for o in decode_mptcp_options(p.options, 1)):
            break
        n += p.payload_len
    return n


def _joined_then(path: Path, act, timeout: float = 10.0) -> dict:
    """Client `subflow` endpoint 203.0.113.1 (id 3): a second subflow joins; halfway through the
    client's data ``act(lab)`` runs, then the transfer finishes."""
    with Lab() as lab:
        lab.rate_limit_all()
        lab.endpoint_add("client", lab.addr("client", 1), "subflow", id=3)
        with lab.capture(path) as cap:
            server = lab.serve(reply=REPLY, timeout=timeout)
            client = lab.connect(size=SIZE, first=1000, wait_subflows=2, pause_at=SIZE // 2, timeout=timeout)
            client.wait_event("subflows")
            client.wait_event("paused")
            act(lab)
            client.go()
            c = client.result()
            s = server.result()
        same(s, expected(SIZE), "server received")
        same(c["reply"], expected(REPLY, 1), "client received")
        return cap.stats


def remove_addr(path: Path) -> dict:
    """Halfway through the client's data the client deletes its endpoint id 3 (REMOVE_ADDR id 3
    from the client; the joined subflow closes)."""

    def act(lab):
        lab.endpoint_delete("client", id=3)  # -> REMOVE_ADDR id 3, from the client
        lab.wait_closed(lab.addr("client", 1))  # and the client closes the subflow from 203.0.113.1

    return _joined_then(path, act)


def reinjection(path: Path) -> dict:
    """Halfway through the client's data the server's firewall starts to drop everything from
    203.0.113.1 (the joined subflow): the client's data stuck on that subflow is sent again on the
    first one (reinjection), and the transfer finishes there."""

    def act(lab):
        lab.run(
            "server",
            "nft",
            "-f",
            "-",
            input=f"""table inet lab_drop {{
            chain input {{ type filter hook input priority 0; ip saddr {lab.addr("client", 1)} drop; }}
        }}""",
        )

    return _joined_then(path, act, timeout=30.0)


def fastclose(path: Path) -> dict:
    """Data both ways, then the client closes with SO_LINGER {1, 0}: MP_FASTCLOSE with MP_TCPRST."""
    n = 16384
    with Lab() as lab:
        with lab.capture(path, iface=lab.dev(0)) as cap:
            s, c = lab.transfer(size=n, reply=n, reply_after=n, abort=True, read_reply=n)
        same(s, expected(n), "server received")
        same(c["reply"], expected(n, 1), "client received")
        if not s["reset"]:
            raise LabError(f"the server saw no reset: {s}")
        return cap.stats


def tfo(path: Path) -> dict:
    """TCP Fast Open: the first connection gets a cookie; the second carries data in its SYN with MP_CAPABLE."""
    n, first = 3000, 1000
    with Lab(tfo=True) as lab:
        with lab.capture(path, iface=lab.dev(0)) as cap:
            server = lab.serve(count=2, reply=4096, tfo=True)
            c1 = lab.connect(size=n, first=first, tfo=True).result()
            c2 = lab.connect(size=n, first=first, tfo=True).result()
            results = server.results()
        for s in results:
            same(s, expected(n), "server received")
        for i, c in enumerate((c1, c2)):
            same(c["reply"], expected(4096, 1 + i), "client received")
        return cap.stats


JOINED = {"MP_CAPABLE": 3, "MP_JOIN": 3, "DATA_FIN": 2, "subflows with data": 2}
CAPTURES = {
    "v4-two-subflows.pcap": (lambda p: two_subflows(p, 4), "LINUX_SLL", JOINED),
    "v6-two-subflows.pcap": (lambda p: two_subflows(p, 6), "LINUX_SLL", JOINED),
    "v4-checksum.pcap": (lambda p: two_subflows(p, 4, checksum=True), "LINUX_SLL", {**JOINED, "DSS checksum": 20}),
    "v4-add-addr.pcap": (
        add_addr,
        "LINUX_SLL",
        {**JOINED, "MP_JOIN": 6, "ADD_ADDR with HMAC": 1, "ADD_ADDR echo": 1, "REMOVE_ADDR": 1, "MP_PRIO": 1},
    ),
    "v4-server-signals.pcap": (
        server_signals,
        "LINUX_SLL",
        {**JOINED, "ADD_ADDR with HMAC": 1, "ADD_ADDR echo": 1, "MP_PRIO from the server": 1},
    ),
    "v4-remove-addr.pcap": (remove_addr, "LINUX_SLL", {**JOINED, "REMOVE_ADDR from the client": 1}),
    "v4-reinjection.pcap": (
        reinjection,
        "LINUX_SLL",
        {"MP_CAPABLE": 3, "MP_JOIN": 3, "DATA_FIN": 2, "reinjected segments": 1},
    ),
    "v4-fastclose.pcap": (
        fastclose,
        "EN10MB",
        {"MP_CAPABLE": 3, "MP_FASTCLOSE": 1, "MP_TCPRST": 1, "RST with MP_FASTCLOSE": 1},
    ),
    "v4-tfo.pcap": (tfo, "EN10MB", {"MP_CAPABLE": 6, "SYN with data and MP_CAPABLE": 1, "DATA_FIN": 4}),
}
SHOWN = (
    "packets",
    "MP_CAPABLE",
    "MP_JOIN",
    "DSS",
    "DSS checksum",
    "DATA_FIN",
    "ADD_ADDR",
    "ADD_ADDR with HMAC",
    "ADD_ADDR echo",
    "REMOVE_ADDR",
    "REMOVE_ADDR from the client",
    "MP_PRIO",
    "MP_PRIO from the server",
    "MP_FAIL",
    "MP_FASTCLOSE",
    "MP_TCPRST",
    "SYN with data and MP_CAPABLE",
    "subflows with data",
    "subflow directions with data",
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME", help=f"captures to make (default all: {', '.join(CAPTURES)})")
    p.add_argument("--out", type=Path, default=HERE, help="directory (default: this one)")
    p.add_argument("--tries", type=int, default=3)
    a = p.parse_args(argv)
    why = lab_problem(("ip", "tcpdump", "ethtool", "sysctl", "tc", "ss", "tshark"))
    if why:
        print(f"make_captures: {why}", file=sys.stderr)
        return 2
    names = [n if n.endswith(".pcap") else n + ".pcap" for n in a.names] or list(CAPTURES)
    unknown = [n for n in names if n not in CAPTURES]
    if unknown:
        p.error(f"unknown capture(s) {unknown}; known: {list(CAPTURES)}")
    bad = 0
    rows = []
    for name in names:
        make, link, need = CAPTURES[name]
        path = a.out / name
        for attempt in range(1, a.tries + 1):
            try:
                stats = make(path)
            except LabError as e:
                print(f"  {name}: try {attempt}: {e}")
                continue
            ok, counts = verify(name, path, need)
            if ok:
                shown = ", ".join(f"{k} {counts[k]}" for k in SHOWN if counts[k])
                print(f"{name}: {link}, {path.stat().st_size} octets, tcpdump {stats}; {shown}")
                rows.append(table_row(name, path, counts))
                break
            print(f"  {name}: try {attempt} lacks something; again")
        else:
            print(f"{name}: FAILED after {a.tries} tries")
            bad += 1
    if rows:
        print("\nFor README.md:\n")
        print("\n".join(rows))
    return 1 if bad else 0


def table_row(name: str, path: Path, c: Counter) -> str:
    """A row of README.md's table of contents."""
    add = f"{c['ADD_ADDR']} ({c['ADD_ADDR with HMAC']} / {c['ADD_ADDR echo']})" if c["ADD_ADDR"] else "0"
    cells = [
        f"`{name}`",
        path.stat().st_size,
        c["packets"],
        c["MP_CAPABLE"],
        c["MP_JOIN"],
        c["DSS"],
        c["DSS checksum"],
        c["DATA_FIN"],
        add,
        c["REMOVE_ADDR"],
        c["MP_PRIO"],
        c["MP_FASTCLOSE"],
        c["MP_TCPRST"],
        c["SYN with data and MP_CAPABLE"],
    ]
    return "| " + " | ".join(map(str, cells)) + " |"


if __name__ == "__main__":
    sys.exit(main())
