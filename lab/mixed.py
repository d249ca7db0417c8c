"""The mixed capture: many MPTCP connections at once, half of them with DSS checksums, two or three
subflows each, transfers of a few octets to a few megabytes, and some plain TCP beside them.

::

    from lab.mixed import Mix, make_mixed
    meta = make_mixed(Path("mixed.pcapng"), Mix(mptcp=150, plain=30, max_size=4_000_000, seed=1))

Namespaces: the lab's ``client`` and ``server`` (pairs 0 and 1, see :mod:`lab`) and a second
client, ``client2``, joined to the server by two more veth pairs (offloads off, as the others):

======  ==================  ================  ==============
pair    ``client2``         ``server``        network
======  ==================  ================  ==============
2       veth2 192.0.2.1     veth2 192.0.2.2   192.0.2.0/26
3       veth3 192.0.2.65    veth3 192.0.2.66  192.0.2.64/26
======  ==================  ================  ==============

``net.mptcp.checksum_enabled`` is 1 in ``client2`` only: the kernel uses DSS checksums when either
end asks (the client's MP_CAPABLE SYN carries the flag), so the connections of ``client2``
negotiate them and those of ``client`` do not.  As in the lab, traffic from a client's pair address
leaves by that pair.

Subflows: each client has ``subflow`` endpoints on both of its pair addresses, a subflow limit of 2,
and a third address on its first pair that is no endpoint (198.51.100.3, 192.0.2.3).  The kernel
does not join from the endpoint a connection already uses, so a connection made from a pair address
gets one join (two subflows) and one made from the third address two (three subflows).  Every veth
is shaped (tbf, ``Mix.rate``) so that the default scheduler spreads data over the subflows.

Traffic: ``python3 -m lab.mixed server|client`` in the namespaces (the plan is computed on both
sides from the :class:`Mix`).  Each client opens all of its connections at once; an MPTCP one
sends a 12-octet header (connection number, reply length, reply seed), which makes the connection
fully established, and waits until its subflows are up and answered.  When every connection of
both clients is up (each client says ``ready``; the lab tells both to ``go``), all send their
data (:func:`lab.peer.pattern`, seeded), shut down the write side, read the server's reply and
close.  So at least ``Mix.mptcp`` MPTCP connections are open at the same time.  The server checks
nothing itself: it reports the length and sha256 of what it received, and the lab compares.

Capture: tcpdump on ``-i any`` in the server namespace (Linux cooked v1 frames; it sees every
connection of both clients), filter ``tcp``, snapshot length ``Mix.snaplen`` (128), then converted
to pcapng with ``editcap -F pcapng``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lab import Capture, Lab, LabError, Peer, expected
from lab.host import run_command, wait_until
from lab.peer import IPPROTO_MPTCP, Deadline, emit, established_subflows, pattern, wait_subflows

ROOT = Path(__file__).resolve().parent.parent
CLIENT2 = "client2"
CLIENTS = ("client", CLIENT2)
PORT = 5301
HEADER = struct.Struct("!III")  # connection number, reply length, reply seed
CHUNK = 65536
#: (namespace, pair) -> address of the pairs of ``client2``; the prefix length is 26.
MIXED_ADDRS = {
    (CLIENT2, 2): "192.0.2.1",
    ("server", 2): "192.0.2.2",
    (CLIENT2, 3): "192.0.2.65",
    ("server", 3): "192.0.2.66",
}
MIXED_NETS = {2: "192.0.2.0/26", 3: "192.0.2.64/26"}
#: client -> (address of its first pair, of its second pair, its third address, the server's address it connects to)
CLIENT_ADDRS = {
    "client": ("198.51.100.1", "203.0.113.1", "198.51.100.3", "198.51.100.2"),
    CLIENT2: ("192.0.2.1", "192.0.2.65", "192.0.2.3", "192.0.2.2"),
}
#: the kernel tools the mixed capture needs beyond the lab's own
TOOLS = ("editcap",)


@dataclass(frozen=True, slots=True)
class Mix:
    """What the mixed capture holds; its :meth:`key` names the cached file."""

    mptcp: int = 150  #: MPTCP connections, half from each client (so half with checksums)
    plain: int = 30  #: plain TCP connections, half from each client
    max_size: int = 4_000_000  #: the largest transfer, each way, in octets
    seed: int = 1
    snaplen: int = 128
    rate: str = "200mbit"  #: the tbf rate of every veth

    def key(self) -> str:
        return f"mixed-{self.mptcp}mptcp-{self.plain}tcp-max{self.max_size}-seed{self.seed}-snap{self.snaplen}"


@dataclass(frozen=True, slots=True)
class Conn:
    """One connection of the plan."""

    index: int
    client: str  #: "client" or "client2"
    bind: str  #: the client's address
    mptcp: bool
    subflows: int  #: 2 or 3 for MPTCP (1 for plain TCP)
    up: int  #: octets after the header, client to server
    reply: int  #: octets server to client
    seed: int  #: of the upload; the reply's is seed + 1


def transfer_size(rng: random.Random, max_size: int) -> int:
    """Two in five short (1 to 1000 octets), two in five medium, one in five long (up to ``max_size``);
    medium and long drawn log-uniformly."""
    r = rng.random()
    low, high = (1, 1000) if r < 0.4 else (1000, 256_000) if r < 0.8 else (256_000, max_size)
    high = max(low, min(high, max_size))
    return min(high, int(low * (high / low) ** rng.random()))


def plan(mix: Mix) -> list[Conn]:
    """The connections of ``mix``, in the order they are started; the same on every run and side."""
    rng = random.Random(mix.seed)
    kinds = [(True, CLIENTS[i % 2], 3 if i // 2 % 2 else 2) for i in range(mix.mptcp)]
    kinds += [(False, CLIENTS[i % 2], 1) for i in range(mix.plain)]
    rng.shuffle(kinds)
    conns = []
    for i, (mptcp, client, subflows) in enumerate(kinds):
        first, _, third, _ = CLIENT_ADDRS[client]
        up, reply = transfer_size(rng, mix.max_size), transfer_size(rng, mix.max_size)
        bind = third if subflows == 3 else first
        conns.append(Conn(i, client, bind, mptcp, subflows, up, reply, mix.seed * 1_000_000 + 2 * i))
    return conns


# ---------------------------------------------------------------------------------------------
# The namespaces


class MixedLab(Lab):
    """The lab with a second client namespace (checksums on), set up for :func:`make_mixed`."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        base = self.ns_names["client"].removesuffix("-client")
        self.ns_names[CLIENT2] = f"{base}-{CLIENT2}"

    def _build(self) -> None:
        super()._build()
        # Every connection's SYN arrives at once: no SYN cookies, no overflowing accept queue.
        self.sysctl("server", {"net.ipv4.tcp_max_syn_backlog": 4096, "net.core.somaxconn": 4096})
        ns = self.ns(CLIENT2)
        run_command(["ip", "netns", "add", ns])
        self._created.append(ns)  # deleted with the others, whatever happens next
        self.sysctl(
            CLIENT2,
            {
                "net.ipv4.conf.all.rp_filter": 0,
                "net.ipv4.conf.default.rp_filter": 0,
                "net.mptcp.enabled": 1,
                "net.mptcp.checksum_enabled": 1,
            },
        )
        self.ip(CLIENT2, "link", "set", "lo", "up")
        for pair in (2, 3):
            dev = self.dev(pair)
            run_command(["ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", self.server])
            for role in (CLIENT2, "server"):
                self.offloads_off(role, dev)
                self.ip(role, "addr", "add", f"{MIXED_ADDRS[(role, pair)]}/26", "dev", dev)
                self.ip(role, "link", "set", dev, "up")
        # client2: from a pair's address, out by that pair (as the lab's client does).
        for pair, other in ((2, 3), (3, 2)):
            table = str(100 + pair)
            self.ip(CLIENT2, "-4", "rule", "add", "from", MIXED_ADDRS[(CLIENT2, pair)], "table", table)
            self.ip(CLIENT2, "-4", "route", "add", MIXED_NETS[pair], "dev", self.dev(pair), "table", table)
            via = MIXED_ADDRS[("server", pair)]
            self.ip(CLIENT2, "-4", "route", "add", MIXED_NETS[other], "via", via, "dev", self.dev(pair), "table", table)
        for pair in (2, 3):
            dev = self.dev(pair)
            wait_until(
                lambda dev=dev: all(
                    "LOWER_UP" in self.ip(r, "-o", "link", "show", dev).stdout for r in (CLIENT2, "server")
                ),
                f"{dev} to come up on both sides",
            )
        self._subflow_paths()

    def _subflow_paths(self) -> None:
        """Both clients: endpoints on both pair addresses, a third address on the first pair, 2 joins."""
        for client, (first, second, third, _) in CLIENT_ADDRS.items():
            dev0, dev1 = (self.dev(0), self.dev(1)) if client == "client" else (self.dev(2), self.dev(3))
            prefix = 24 if client == "client" else 26
            self.ip(client, "addr", "add", f"{third}/{prefix}", "dev", dev0)
            table = "100" if client == "client" else "102"
            self.ip(client, "-4", "rule", "add", "from", third, "table", table)
            self.endpoint_add(client, second, "subflow", dev=dev1)
            self.endpoint_add(client, first, "subflow", dev=dev0)
            self.set_limits(client, subflows=2, add_addr_accepted=0)

    def devices(self) -> list[tuple[str, str]]:
        """(namespace, veth) of every veth of the mixed lab."""
        return [("client", self.dev(p)) for p in (0, 1)] + [
            (role, self.dev(p)) for role, pairs in (("server", (0, 1, 2, 3)), (CLIENT2, (2, 3))) for p in pairs
        ]

    def mixed_peer(self, role: str, mix: Mix, timeout: float) -> Peer:
        """``python3 -m lab.mixed`` in a namespace: the server (returns once it listens) or a client."""
        argv = [sys.executable, "-m", "lab.mixed", "server" if role == "server" else "client"]
        argv += ["--mix", json.dumps(asdict(mix)), "--timeout", str(timeout)]
        if role != "server":
            argv += ["--client", role]
        p = self.popen(role, *argv, cwd=str(ROOT), stdin=subprocess.PIPE)
        peer = Peer(self, p, f"mixed {role}", timeout)
        if role == "server":
            peer.wait_event("listening", timeout=timeout)
        return peer


# ---------------------------------------------------------------------------------------------
# Making the capture


def make_mixed(path: Path, mix: Mix, timeout: float | None = None) -> dict:
    """Make the mixed capture ``path`` (pcapng); check every transfer; returns its metadata
    (also written beside it as ``.json``).  Raises :class:`LabError` when something fails."""
    conns = plan(mix)
    total = sum(c.up + c.reply for c in conns)
    timeout = timeout or 60 + total / 2e6
    path = Path(path)
    raw = path.with_name(path.name + ".tmp.pcap")
    start = time.monotonic()
    try:
        cap = capture_mix(raw, mix, conns, timeout)
        editcap = subprocess.run(["editcap", "-F", "pcapng", str(raw), str(path)], capture_output=True, text=True)
        if editcap.returncode:
            raise LabError(f"editcap -F pcapng: {editcap.stderr.strip()}")
    finally:
        raw.unlink(missing_ok=True)
    meta = {
        "mix": asdict(mix),
        "packets": cap.stats.get("captured"),
        "connections": len(conns),
        "mptcp": mix.mptcp,
        "plain": mix.plain,
        "checksums": sum(1 for c in conns if c.mptcp and c.client == CLIENT2),
        "three_subflows": sum(1 for c in conns if c.subflows == 3),
        "octets": total,
        "seconds": round(time.monotonic() - start, 1),
        "tcpdump": cap.stats,
        "format": "pcapng (tcpdump -w, then editcap -F pcapng)",
    }
    path.with_suffix(".json").write_text(json.dumps(meta) + "\n")
    return meta


def capture_mix(raw: Path, mix: Mix, conns: list[Conn], timeout: float) -> Capture:
    """Run ``mix`` in a :class:`MixedLab` while tcpdump writes ``raw`` (pcap); check the transfers."""
    with MixedLab() as lab:
        for role, dev in lab.devices():
            lab.rate_limit(role, dev, mix.rate, burst=30000)
        with lab.capture(raw, ns="server", snaplen=mix.snaplen, bpf="tcp", timeout=timeout) as cap:
            server = lab.mixed_peer("server", mix, timeout)
            clients = [lab.mixed_peer(role, mix, timeout) for role in CLIENTS]
            for c in clients:
                c.wait_event("ready")
            for c in clients:
                c.go()
            # Every pipe read at once: a process whose pipe is full stops.
            got: dict[str, list[dict]] = {}
            errors: list[BaseException] = []

            def collect(name: str, peer: Peer) -> None:
                try:
                    got[name] = peer.results()
                except BaseException as e:  # re-raised below, in this thread
                    errors.append(e)

            readers = [
                threading.Thread(target=collect, args=(n, p)) for n, p in zip(("server", *CLIENTS), (server, *clients))
            ]
            for t in readers:
                t.start()
            for t in readers:
                t.join()
            if errors:
                raise errors[0]
    check_transfers(conns, got["server"], got["client"] + got[CLIENT2])
    return cap


def check_transfers(conns: list[Conn], served: list[dict], clients: list[dict]) -> None:
    """Each side received exactly what the other sent, and each MPTCP connection had its subflows."""
    by_index = {r["connection"]: r for r in served}
    replies = {r["connection"]: r for r in clients}
    wrong = []
    for c in conns:
        s, r = by_index.get(c.index), replies.get(c.index)
        if s is None or r is None:
            wrong.append(f"{c.index}: no result")
        elif s["received"] != expected(c.up, c.seed) or r["reply"] != expected(c.reply, c.seed + 1):
            wrong.append(f"{c.index}: contents differ")
        elif c.mptcp and r["subflows"] != c.subflows:
            wrong.append(f"{c.index}: {r['subflows']} subflows, {c.subflows} planned")
    if wrong:
        raise LabError(f"mixed capture: {len(wrong)} of {len(conns)} connections wrong: {'; '.join(wrong[:10])}")


# ---------------------------------------------------------------------------------------------
# The peers, run in the namespaces: python3 -m lab.mixed server|client --mix JSON


_print = threading.Lock()


def say(event: str, **kw) -> None:
    with _print:
        emit(event, **kw)


def read_exactly(sock: socket.socket, n: int, deadline: Deadline) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        sock.settimeout(deadline.left())
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)} of {n} header octets")
        buf += chunk
    return bytes(buf)


def drain(sock: socket.socket, deadline: Deadline) -> dict:
    """Read until EOF: the length and sha256 of what came."""
    h, n = hashlib.sha256(), 0
    while True:
        sock.settimeout(deadline.left())
        chunk = sock.recv(262144)
        if not chunk:
            return {"length": n, "sha256": h.hexdigest()}
        h.update(chunk)
        n += len(chunk)


def guarded(fn, *args) -> None:
    """Run ``fn`` in a thread; an exception becomes an ``error`` event (the lab raises it)."""
    try:
        fn(*args)
    except Exception as e:
        say("error", error=f"{type(e).__name__}: {e}")


def serve_one(conn: socket.socket, deadline: Deadline) -> None:
    with conn:
        index, reply, seed = HEADER.unpack(read_exactly(conn, HEADER.size, deadline))
        received = drain(conn, deadline)
        data = pattern(reply, seed)
        for i in range(0, len(data), CHUNK):
            conn.settimeout(deadline.left())
            conn.sendall(data[i : i + CHUNK])
    say("result", connection=index, received=received)


def run_server(mix: Mix, deadline: Deadline) -> None:
    count = mix.mptcp + mix.plain
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", PORT))
    ls.listen(count)
    say("listening", port=PORT)
    threads = []
    for _ in range(count):
        ls.settimeout(deadline.left())
        conn, _ = ls.accept()
        t = threading.Thread(target=guarded, args=(serve_one, conn, deadline))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(deadline.left())
    ls.close()


def client_one(c: Conn, dst: str, ready: threading.Barrier, go: threading.Event, deadline: Deadline) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP if c.mptcp else socket.IPPROTO_TCP)
    with s:
        s.bind((c.bind, 0))
        s.settimeout(deadline.left())
        s.connect((dst, PORT))
        s.sendall(HEADER.pack(c.index, c.reply, c.seed + 1))
        subflows = wait_subflows(s, c.subflows, deadline) if c.mptcp else 1
        ready.wait(deadline.left())
        if not go.wait(deadline.left()):
            raise TimeoutError("no go")
        data = pattern(c.up, c.seed)
        for i in range(0, len(data), CHUNK):
            s.settimeout(deadline.left())
            s.sendall(data[i : i + CHUNK])
        if c.mptcp:
            subflows = max(subflows, established_subflows(s) or 0)
        s.shutdown(socket.SHUT_WR)
        reply = drain(s, deadline)
    say("result", connection=c.index, reply=reply, subflows=subflows)


def run_client(mix: Mix, client: str, deadline: Deadline) -> None:
    mine = [c for c in plan(mix) if c.client == client]
    dst = CLIENT_ADDRS[client][3]
    go = threading.Event()
    ready = threading.Barrier(len(mine) + 1)
    threads = [threading.Thread(target=guarded, args=(client_one, c, dst, ready, go, deadline)) for c in mine]
    for t in threads:
        t.start()
    ready.wait(deadline.left())  # every connection up, its subflows too
    say("ready", connections=len(mine))
    r, _, _ = select.select([sys.stdin], [], [], deadline.left())
    if not r or not sys.stdin.readline():
        raise TimeoutError("no go-ahead on stdin")
    go.set()
    for t in threads:
        t.join(deadline.left())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m lab.mixed", description="the peers of the mixed capture")
    p.add_argument("role", choices=("server", "client"))
    p.add_argument("--mix", required=True, help="the Mix, as JSON")
    p.add_argument("--client", choices=CLIENTS, default="client")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args(argv)
    mix = Mix(**json.loads(a.mix))
    deadline = Deadline(a.timeout)
    try:
        if a.role == "server":
            run_server(mix, deadline)
        else:
            run_client(mix, a.client, deadline)
    except Exception as e:
        say("error", error=f"{type(e).__name__}: {e}")
        return 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
