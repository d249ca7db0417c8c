"""The lab's namespaces: two, ``client`` and ``server``, joined by two veth pairs; their addresses,
routes and life cycle, and commands run in them."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import subprocess
import threading
from dataclasses import dataclass

from lab.host import (
    CMD_TIMEOUT,
    PREFIX,
    LabError,
    cleanup_leftovers,
    delete_namespace,
    run_command,
    stop_process,
    wait_until,
)

ROLES = ("client", "server")
PAIRS = (0, 1)
# (role, pair, family) -> address; prefix lengths in PREFIXLEN.
ADDRS = {
    ("client", 0, 4): "198.51.100.1",
    ("server", 0, 4): "198.51.100.2",
    ("client", 1, 4): "203.0.113.1",
    ("server", 1, 4): "203.0.113.2",
    ("client", 0, 6): "2001:db8:1::1",
    ("server", 0, 6): "2001:db8:1::2",
    ("client", 1, 6): "2001:db8:2::1",
    ("server", 1, 6): "2001:db8:2::2",
}
PREFIXLEN = {4: 24, 6: 64}
NETS = {(0, 4): "198.51.100.0/24", (1, 4): "203.0.113.0/24", (0, 6): "2001:db8:1::/64", (1, 6): "2001:db8:2::/64"}
OFFLOADS = ("tso", "gso", "gro", "lro", "ufo", "tx", "tx-gso-list", "rx-gro-list", "rx-udp-gro-forwarding")
# TCP states in which a socket still has segments to send or to wait for (ss's names).
ACTIVE_STATES = frozenset(
    ("SYN-SENT", "SYN-RECV", "ESTAB", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "LAST-ACK", "CLOSING")
)

_counter = itertools.count()
_open: set[Namespaces] = set()


@dataclass(frozen=True, slots=True)
class Socket:
    """A TCP socket of a namespace as ``ss`` lists it; addresses without brackets."""

    state: str
    local: str
    local_port: int
    peer: str
    peer_port: int


def _split_endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]").split("%")[0]
    return host, int(port) if port.isdigit() else 0


class Namespaces:
    """Two namespaces, ``client`` and ``server``, joined by two veth pairs; use as a context manager.

    ``checksum``: net.mptcp.checksum_enabled=1 in both.  ``tfo``: net.ipv4.tcp_fastopen=3 in both.
    """

    def __init__(
        self,
        *,
        checksum: bool = False,
        tfo: bool = False,
        prefix: str = PREFIX,
        subflows: int = 8,
        add_addr_accepted: int = 8,
    ):
        self.checksum, self.tfo, self.prefix = checksum, tfo, prefix
        self.limits = (subflows, add_addr_accepted)
        base = f"{prefix}-{os.getpid()}-{next(_counter)}"
        self.ns_names = {role: f"{base}-{role}" for role in ROLES}
        self._created: list[str] = []
        self._procs: list[subprocess.Popen] = []
        self._closed = False

    # -- names and addresses
    @property
    def client(self) -> str:
        return self.ns_names["client"]

    @property
    def server(self) -> str:
        return self.ns_names["server"]

    def ns(self, role_or_name: str) -> str:
        """A namespace's name from ``"client"``/``"server"`` (or the name itself)."""
        return self.ns_names.get(role_or_name, role_or_name)

    @staticmethod
    def dev(pair: int) -> str:
        """The veth of pair ``pair`` (the same name on both sides)."""
        return f"veth{pair}"

    @staticmethod
    def addr(role: str, pair: int = 0, family: int = 4) -> str:
        return ADDRS[(role, pair, family)]

    @staticmethod
    def pair_of(address: str) -> int:
        for (_, pair, _), a in ADDRS.items():
            if a == address:
                return pair
        raise ValueError(f"{address} is not a lab address")

    # -- life cycle
    def __enter__(self):
        _open.add(self)
        try:
            cleanup_leftovers(self.prefix)
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _build(self) -> None:
        for role in ROLES:
            ns = self.ns(role)
            run_command(["ip", "netns", "add", ns])
            self._created.append(ns)
            # DAD off before the veths exist, so their addresses (link-local too) are usable at once.
            self.sysctl(
                role,
                {
                    "net.ipv6.conf.all.accept_dad": 0,
                    "net.ipv6.conf.default.accept_dad": 0,
                    "net.ipv4.conf.all.rp_filter": 0,
                    "net.ipv4.conf.default.rp_filter": 0,
                    "net.mptcp.enabled": 1,
                    "net.mptcp.checksum_enabled": int(self.checksum),
                },
            )
            if self.tfo:
                self.sysctl(role, {"net.ipv4.tcp_fastopen": 3})
            self.ip(role, "link", "set", "lo", "up")
        for pair in PAIRS:
            dev = self.dev(pair)
            run_command(
                ["ip", "-n", self.client, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", self.server]
            )
        for role in ROLES:
            for pair in PAIRS:
                dev = self.dev(pair)
                self.offloads_off(role, dev)
                for fam in (4, 6):
                    extra = ["nodad"] if fam == 6 else []
                    self.ip(role, "addr", "add", f"{self.addr(role, pair, fam)}/{PREFIXLEN[fam]}", "dev", dev, *extra)
                self.ip(role, "link", "set", dev, "up")
            subflows, accepted = self.limits
            self.ip(role, "mptcp", "limits", "set", "subflows", str(subflows), "add_addr_accepted", str(accepted))
        self._source_routes()
        for dev in (self.dev(p) for p in PAIRS):
            self._wait_link_up(dev)

    def _source_routes(self) -> None:
        """Client: a packet from a pair's address leaves by that pair, whatever its destination."""
        for pair in PAIRS:
            table = str(100 + pair)
            for fam in (4, 6):
                f = f"-{fam}"
                self.ip("client", f, "rule", "add", "from", self.addr("client", pair, fam), "table", table)
                for other in PAIRS:
                    via = [] if other == pair else ["via", self.addr("server", pair, fam)]
                    self.ip(
                        "client", f, "route", "add", NETS[(other, fam)], *via, "dev", self.dev(pair), "table", table
                    )

    def _wait_link_up(self, dev: str, timeout: float = 5.0) -> None:
        def up() -> bool:
            return all("LOWER_UP" in self.ip(role, "-o", "link", "show", dev).stdout for role in ROLES)

        wait_until(up, f"{dev} to come up (LOWER_UP) on both sides", timeout)

    def close(self) -> None:
        """Kill every process the lab started, delete its namespaces (and so its veths).  Idempotent."""
        if self._closed:
            return
        # Finish the cleanup even if Ctrl-C arrives in the middle of it.
        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for p in self._procs:
                stop_process(p, signal.SIGTERM, 2.0)
            for ns in reversed(self._created):
                with contextlib.suppress(Exception):
                    delete_namespace(ns)
            self._closed = True
            _open.discard(self)
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)

    # -- commands in a namespace
    def run(
        self, role: str, *argv, check: bool = True, timeout: float = CMD_TIMEOUT, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` in a namespace (``ip netns exec NS ...``); text output captured."""
        argv = ["ip", "netns", "exec", self.ns(role), *map(str, argv)]
        return run_command(argv, check=check, timeout=timeout, input=input)

    def ip(self, role: str, *argv, check: bool = True) -> subprocess.CompletedProcess:
        """``ip -n NS ...``"""
        return run_command(["ip", "-n", self.ns(role), *map(str, argv)], check=check)

    def popen(self, role: str, *argv, **kw) -> subprocess.Popen:
        """Start ``argv`` in a namespace in the background; it is killed when the lab closes."""
        if self._closed:
            raise LabError("the lab is closed")
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(role), *map(str, argv)], start_new_session=True, **kw)
        self._procs.append(p)
        return p

    def sysctl(self, role: str, settings: dict) -> None:
        args = [f"{k}={v}" for k, v in settings.items()]
        self.run(role, "sysctl", "-q", "-w", *args)

    def offloads_off(self, role: str, dev: str) -> dict:
        """Turn off segmentation/coalescing offloads and TX checksum offload; returns feature -> ok.

        Features the device cannot change (or does not have) are tolerated.
        """
        r = self.run(role, "ethtool", "-K", dev, *[x for f in OFFLOADS for x in (f, "off")], check=False)
        if r.returncode == 0:
            return {f: True for f in OFFLOADS}
        return {f: self.run(role, "ethtool", "-K", dev, f, "off", check=False).returncode == 0 for f in OFFLOADS}

    # -- sockets, for waiting on them
    def sockets(self, role: str) -> list[Socket]:
        """The TCP sockets of a namespace (``ss -Htan``), MPTCP subflows included."""
        out = self.run(role, "ss", "-Htan").stdout
        found = []
        for line in out.splitlines():
            cols = line.split()
            if len(cols) >= 5:
                (local, lport), (peer, pport) = _split_endpoint(cols[3]), _split_endpoint(cols[4])
                found.append(Socket(cols[0], local, lport, peer, pport))
        return found

    def active_sockets(self, role: str, address: str | None = None) -> list[Socket]:
        """The sockets of a namespace that still send or wait for segments (handshake, data, closing),
        those with ``address`` at either end only if given."""
        return [
            s
            for s in self.sockets(role)
            if s.state in ACTIVE_STATES and (address is None or address in (s.local, s.peer))
        ]

    def wait_closed(self, address: str, timeout: float = 5.0) -> None:
        """Wait until no socket of either namespace with ``address`` at one end is still active
        (TIME-WAIT, which sends nothing more, is closed here)."""
        wait_until(
            lambda: not any(self.active_sockets(role, address) for role in ROLES),
            f"the subflows of {address} to close",
            timeout,
        )


@atexit.register
def _close_open_labs() -> None:  # a lab used without ``with`` and never closed
    for lab in list(_open):
        with contextlib.suppress(Exception):
            lab.close()
