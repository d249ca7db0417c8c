"""Many MPTCP connections at once, with the kernel's sockets: the server of bench_fleet.py, and
its kernel-client load generator.

    python3 bench/fleet_peers.py server --port 5201 --count 1000 --size 10000 [--timeout 120]
    python3 bench/fleet_peers.py client --connect 198.51.100.2 --port 5201 --count 1000 \\
        --concurrency 1000 --size 10000 [--timeout 120]

server: accepts at once (backlog 4096, one selector loop), reads each connection to its end,
hashes what came, closes; after ``--count`` connections (or the timeout) prints one JSON line:
``connections``, ``verified`` (exactly ``lab.peer.pattern(size, 0)``), ``peers`` (distinct client
endpoints), ``subflows`` (how many connections had how many subflows at their end, from
MPTCP_TCPINFO) and the first few ``bad`` ones.  client: ``--count`` connections (IPPROTO_MPTCP), at most
``--concurrency`` open at once; each sends ``pattern(size, 0)``, shuts its side, reads to the end
and closes; prints ``connections``, ``ok``, ``elapsed`` (first connect to last close) and the
handshake times (connect to writable) p50/p99/max.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import selectors
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.peer import established_subflows, pattern  # noqa: E402

IPPROTO_MPTCP = 262


def serve(a: argparse.Namespace) -> None:
    want = hashlib.sha256(pattern(a.size, 0)).hexdigest()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", a.port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    print(json.dumps({"event": "listening"}), flush=True)
    done = verified = 0
    peers: set = set()
    bad: list = []
    subflows: dict = {}  # subflows the connection had at its end -> connections
    end = time.monotonic() + a.timeout
    while done < a.count and time.monotonic() < end:
        for key, _ in sel.select(0.5):
            if key.data is None:
                while True:
                    try:
                        conn, peer = ls.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, [hashlib.sha256(), 0, peer])
                continue
            conn, st = key.fileobj, key.data
            try:
                chunk = conn.recv(65536)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            except OSError as e:
                chunk, st[1] = b"", -abs(e.errno or 1)
            if chunk:
                st[0].update(chunk)
                st[1] += len(chunk)
                continue
            sel.unregister(conn)
            n = established_subflows(conn, any_state=True)  # type: ignore[arg-type]
            subflows[n] = subflows.get(n, 0) + 1
            conn.close()  # type: ignore[union-attr]
            done += 1
            peers.add(tuple(st[2]))
            if st[1] == a.size and st[0].hexdigest() == want:
                verified += 1
            elif len(bad) < 5:
                bad.append({"peer": list(st[2]), "length": st[1]})
    result = {"connections": done, "verified": verified, "peers": len(peers), "subflows": subflows, "bad": bad}
    print(json.dumps(result), flush=True)


def client(a: argparse.Namespace) -> None:
    data = pattern(a.size, 0)
    sel = selectors.DefaultSelector()
    started = finished = ok = 0
    handshakes: list[float] = []
    t0 = time.monotonic()
    end = t0 + a.timeout

    def open_one() -> None:
        nonlocal started
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
        s.setblocking(False)
        err = s.connect_ex((a.connect, a.port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, f"connect: {errno.errorcode.get(err, err)}")
        sel.register(s, selectors.EVENT_WRITE, {"at": time.monotonic(), "sent": 0, "open": False})
        started += 1

    while started < min(a.concurrency, a.count):
        open_one()
    while finished < a.count and time.monotonic() < end:
        for key, _ in sel.select(0.5):
            s, st = key.fileobj, key.data
            assert isinstance(s, socket.socket)
            if not st["open"]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    sel.unregister(s)
                    s.close()
                    finished += 1
                    continue
                st["open"] = True
                handshakes.append(time.monotonic() - st["at"])
            if st["sent"] < len(data):
                try:
                    st["sent"] += s.send(data[st["sent"] :])
                except BlockingIOError:
                    continue
                if st["sent"] == len(data):
                    s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ, st)
                continue
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = None
            if chunk:
                continue
            sel.unregister(s)
            s.close()
            finished += 1
            ok += chunk == b""
            if started < a.count:
                open_one()
    elapsed = time.monotonic() - t0
    hs = sorted(handshakes)

    def pct(q: float) -> float | None:
        return hs[max(0, int(q * len(hs) + 0.999999) - 1)] if hs else None

    print(
        json.dumps(
            {
                "connections": finished,
                "ok": ok,
                "elapsed": elapsed,
                "handshake": {"p50": pct(0.5), "p99": pct(0.99), "max": hs[-1] if hs else None},
            }
        ),
        flush=True,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="role", required=True)
    for name in ("server", "client"):
        q = sub.add_parser(name)
        q.add_argument("--port", type=int, default=5201)
        q.add_argument("--count", type=int, default=1000)
        q.add_argument("--size", type=int, default=10000)
        q.add_argument("--timeout", type=float, default=120.0)
        if name == "client":
            q.add_argument("--connect", required=True)
            q.add_argument("--concurrency", type=int, default=1000)
    a = p.parse_args()
    serve(a) if a.role == "server" else client(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
