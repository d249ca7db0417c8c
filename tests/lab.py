"""The kernel test lab: two network namespaces joined by two veth pairs, MPTCP on both.

::

    with Lab(checksum=True) as lab:
        lab.rate_limit_all()  # so that the default scheduler spreads data over the subflows
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        with lab.capture(path):
            server, client = lab.transfer(size=40000, reply=30000, first=1000, wait_subflows=2)
        assert server["sha256"] == expected(40000)["sha256"]

Layout (documentation ranges only; nothing is routed outside the namespaces)::

    client  veth0  198.51.100.1/24  2001:db8:1::1/64  ----  veth0  198.51.100.2/24  2001:db8:1::2/64  server
            veth1  203.0.113.1/24   2001:db8:2::1/64  ----  veth1  203.0.113.2/24   2001:db8:2::2/64

In the client, traffic from a pair's address leaves by that pair (source routing), so a subflow
from 203.0.113.1 to 198.51.100.2 really crosses pair 1; the server answers by destination, so
both directions of a subflow use the same pair.  Segmentation offloads (TSO, GSO, GRO, LRO...)
and transmit checksum offload are off on every veth: captured segments are wire segments with
correct TCP checksums.  IPv6 DAD is off, so v6 addresses work at once.

Namespace names are ``PREFIX-<pid>-<counter>-client|server``: parallel labs never collide, and
:func:`cleanup_leftovers` removes those of a process that is gone.  Everything the lab creates
(namespaces, hence veths; processes started in them) is deleted on every exit path.

For tests: :func:`need_root` skips (or, with ``CI=true``, fails) when the lab cannot run.
``python3 -m tests.lab cleanup [--all]`` removes leftovers from the command line.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    from . import lab_peer
except ImportError:  # run from tests/ as a plain module
    import lab_peer  # type: ignore[no-redef]

PREFIX = "mptcpspec-lab"
PEER = Path(lab_peer.__file__).resolve()
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
TOOLS = ("ip", "tcpdump", "ethtool", "sysctl", "tc")
DEFAULT_PORT = 5201
SNAPLEN = 262144
CMD_TIMEOUT = 15.0

_counter = itertools.count()
_open_labs: set[Lab] = set()


class LabError(RuntimeError):
    """A lab command or peer failed; the message carries the command and its output."""


# ---------------------------------------------------------------------------------------------
# Can the lab run here?


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


_problem_cache: dict = {}


def lab_problem(tools=TOOLS) -> str | None:
    """Why the lab cannot run on this machine, or None if it can (checked once per process)."""
    key = tuple(tools)
    if key in _problem_cache:
        return _problem_cache[key]
    why = _find_problem(tools)
    _problem_cache[key] = why
    return why


def _find_problem(tools) -> str | None:
    if os.geteuid() != 0:
        return "the kernel lab needs root (network namespaces, veths, tcpdump)"
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return f"the kernel lab needs {', '.join(missing)} (Debian: apt-get install iproute2 tcpdump ethtool procps)"
    if not Path("/proc/sys/net/mptcp/enabled").exists():
        return "the kernel has no MPTCP (no /proc/sys/net/mptcp; CONFIG_MPTCP)"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    try:
        r = subprocess.run(
            ["ip", "-n", probe, "mptcp", "limits", "show"], capture_output=True, text=True, timeout=CMD_TIMEOUT
        )
        if r.returncode != 0:
            return f"`ip mptcp` does not work (iproute2 too old or no MPTCP netlink): {r.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=CMD_TIMEOUT)
    return None


def need_root(tools=TOOLS) -> None:
    """In a test: skip with the reason when the lab cannot run here; with CI=true, fail instead."""
    import pytest

    why = lab_problem(tools)
    if why is None:
        return
    if in_ci():
        pytest.fail(f"{why} (CI=true: the lab tests must run)")
    pytest.skip(why)


# ---------------------------------------------------------------------------------------------
# Leftovers


def _run(argv, *, check=True, timeout=CMD_TIMEOUT, input=None) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(map(str, argv))}") from e
    if check and r.returncode != 0:
        raise LabError(f"`{' '.join(map(str, argv))}` exited {r.returncode}: {(r.stderr or r.stdout).strip()}")
    return r


def list_namespaces(prefix: str = PREFIX) -> list[str]:
    """Names of the network namespaces whose name starts with ``prefix-``."""
    r = _run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(prefix + "-")]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace_processes(ns: str) -> None:
    r = _run(["ip", "netns", "pids", ns], check=False)
    for tok in r.stdout.split():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(tok), signal.SIGKILL)


def delete_namespace(ns: str) -> None:
    """Kill what runs in ``ns`` (processes the lab started there), then delete it."""
    _kill_namespace_processes(ns)
    _run(["ip", "netns", "del", ns], check=False)


def cleanup_leftovers(prefix: str = PREFIX, everything: bool = False) -> list[str]:
    """Delete namespaces ``prefix-<pid>-...`` whose process is gone (all of them with ``everything``).

    Returns the names deleted.  Namespaces of a live process (a lab running in parallel) stay.
    """
    gone = []
    for ns in list_namespaces(prefix):
        m = re.match(re.escape(prefix) + r"-(\d+)-", ns)
        if not everything and m and _pid_alive(int(m.group(1))):
            continue
        delete_namespace(ns)
        gone.append(ns)
    return gone


# ---------------------------------------------------------------------------------------------
# Peers: lab_peer.py processes in a namespace


class Peer:
    """A ``lab_peer.py`` process: its JSON events, a go-ahead after a pause, its results."""

    def __init__(self, lab: Lab, proc: subprocess.Popen, what: str, timeout: float):
        self.lab, self.proc, self.what, self.timeout = lab, proc, what, timeout
        self.events: list[dict] = []
        self._buf = b""

    def _read_line(self, deadline: float) -> dict | None:
        """The next JSON line on stdout, or None at EOF."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"{self.what}: no output within the timeout; events so far {self.events}")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        ev = json.loads(line)
        self.events.append(ev)
        if ev.get("event") == "error":
            raise LabError(f"{self.what}: {ev['error']}; stderr: {self._stderr()}")
        return ev

    def _stderr(self) -> str:
        with contextlib.suppress(Exception):
            if self.proc.poll() is not None:
                return self.proc.stderr.read().decode(errors="replace").strip()
        return ""

    def wait_event(self, name: str, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            ev = self._read_line(deadline)
            if ev is None:
                self.proc.wait(timeout=5)
                raise LabError(
                    f"{self.what} ended (exit {self.proc.returncode}) before {name!r}; "
                    f"events {self.events}; stderr: {self._stderr()}"
                )
            if ev.get("event") == name:
                return ev

    def go(self) -> None:
        """Let a client paused at ``pause_at`` go on."""
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def results(self, timeout: float | None = None) -> list[dict]:
        """Wait for the process to end; its ``result`` events."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout) + 5
        while self._read_line(deadline) is not None:
            pass
        try:
            rc = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as e:
            raise LabError(f"{self.what} did not exit") from e
        res = [e for e in self.events if e.get("event") == "result"]
        if rc != 0 or not res:
            raise LabError(f"{self.what} exited {rc}; events {self.events}; stderr: {self._stderr()}")
        return res

    def result(self, timeout: float | None = None) -> dict:
        return self.results(timeout)[-1]


@dataclass
class Capture:
    path: Path
    ns: str
    iface: str
    linktype: str | None = None
    stats: dict = field(default_factory=dict)  # tcpdump's closing counts: captured, received, dropped


# ---------------------------------------------------------------------------------------------
# The lab


class Lab:
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
    def __enter__(self) -> Lab:
        _open_labs.add(self)
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
            _run(["ip", "netns", "add", ns])
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
            _run(
                [
                    "ip",
                    "-n",
                    self.client,
                    "link",
                    "add",
                    self.dev(pair),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    self.dev(pair),
                    "netns",
                    self.server,
                ]
            )
        for role in ROLES:
            for pair in PAIRS:
                dev = self.dev(pair)
                self.offloads_off(role, dev)
                for fam in (4, 6):
                    extra = ["nodad"] if fam == 6 else []
                    self.ip(role, "addr", "add", f"{self.addr(role, pair, fam)}/{PREFIXLEN[fam]}", "dev", dev, *extra)
                self.ip(role, "link", "set", dev, "up")
            self.ip(
                role,
                "mptcp",
                "limits",
                "set",
                "subflows",
                str(self.limits[0]),
                "add_addr_accepted",
                str(self.limits[1]),
            )
        # Client: a packet from a pair's address leaves by that pair, whatever its destination.
        for pair in PAIRS:
            table = str(100 + pair)
            for fam in (4, 6):
                f = f"-{fam}"
                self.ip("client", f, "rule", "add", "from", self.addr("client", pair, fam), "table", table)
                for other in PAIRS:
                    if other == pair:
                        self.ip("client", f, "route", "add", NETS[(other, fam)], "dev", self.dev(pair), "table", table)
                    else:
                        self.ip(
                            "client",
                            f,
                            "route",
                            "add",
                            NETS[(other, fam)],
                            "via",
                            self.addr("server", pair, fam),
                            "dev",
                            self.dev(pair),
                            "table",
                            table,
                        )
        for dev in (self.dev(p) for p in PAIRS):
            self._wait_link_up(dev)

    def _wait_link_up(self, dev: str, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while True:
            states = [self.ip(role, "-o", "link", "show", dev).stdout for role in ROLES]
            if all("LOWER_UP" in s for s in states):
                return
            if time.monotonic() > end:
                raise LabError(f"{dev} did not come up: {states}")
            time.sleep(0.02)

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
                _stop(p, signal.SIGTERM, 2.0)
            for ns in reversed(self._created):
                with contextlib.suppress(Exception):
                    delete_namespace(ns)
            self._closed = True
            _open_labs.discard(self)
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)

    # -- commands in a namespace
    def run(
        self, role: str, *argv, check: bool = True, timeout: float = CMD_TIMEOUT, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` in a namespace (``ip netns exec NS ...``); text output captured."""
        return _run(["ip", "netns", "exec", self.ns(role), *map(str, argv)], check=check, timeout=timeout, input=input)

    def ip(self, role: str, *argv, check: bool = True) -> subprocess.CompletedProcess:
        """``ip -n NS ...``"""
        return _run(["ip", "-n", self.ns(role), *map(str, argv)], check=check)

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

    # -- the MPTCP path manager
    def endpoint_add(
        self,
        role: str,
        address: str,
        *flags: str,
        dev: str | None = None,
        id: int | None = None,
        port: int | None = None,
    ) -> None:
        """``ip mptcp endpoint add ADDRESS dev DEV [id N] [port P] FLAGS`` (signal, subflow, backup, fullmesh).

        ``dev`` defaults to the veth of the address's pair.
        """
        argv = ["mptcp", "endpoint", "add", address, "dev", dev or self.dev(self.pair_of(address))]
        if id is not None:
            argv += ["id", str(id)]
        if port is not None:
            argv += ["port", str(port)]
        self.ip(role, *argv, *flags)

    def endpoint_change(
        self, role: str, *, id: int | None = None, address: str | None = None, backup: bool = True
    ) -> None:
        """Set or clear an endpoint's backup flag; live subflows from it get MP_PRIO."""
        sel = (["id", str(id)] if id is not None else []) + ([address] if address else [])
        self.ip(role, "mptcp", "endpoint", "change", *sel, "backup" if backup else "nobackup")

    def endpoint_delete(self, role: str, id: int, address: str | None = None) -> None:
        """Delete an endpoint; for a signal endpoint the peer gets REMOVE_ADDR."""
        self.ip(role, "mptcp", "endpoint", "delete", "id", str(id), *([address] if address else []))

    def endpoints(self, role: str) -> str:
        return self.ip(role, "mptcp", "endpoint", "show").stdout

    def set_limits(self, role: str, subflows: int = 8, add_addr_accepted: int = 8) -> None:
        self.ip(role, "mptcp", "limits", "set", "subflows", str(subflows), "add_addr_accepted", str(add_addr_accepted))

    def qdisc_available(self, kind: str, *args: str) -> bool:
        """Whether this kernel has qdisc ``kind`` (tried on the client's lo, then removed)."""
        r = self.run("client", "tc", "qdisc", "add", "dev", "lo", "root", kind, *args, check=False)
        if r.returncode != 0:
            return False
        self.run("client", "tc", "qdisc", "del", "dev", "lo", "root", check=False)
        return True

    def rate_limit(self, role: str, dev: str, rate: str = "20mbit", burst: int = 3000, latency: str = "50ms") -> None:
        """``tc qdisc replace dev DEV root tbf rate R burst B latency L``.

        On an unshaped veth every send drains at once and the default scheduler keeps all data on
        the first subflow; with both pairs shaped (20 Mbit/s, sends of 4 KiB) it spreads the data
        over every subflow in both directions.
        """
        self.run(
            role,
            "tc",
            "qdisc",
            "replace",
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            str(burst),
            "latency",
            latency,
        )

    def rate_limit_all(self, rate: str = "20mbit") -> None:
        """:meth:`rate_limit` on every veth, both sides."""
        for role in ROLES:
            for pair in PAIRS:
                self.rate_limit(role, self.dev(pair), rate)

    def netem(
        self, role: str, dev: str, *, loss: str | None = "5%", delay: str | None = None, seed: int | None = None
    ) -> None:
        """``tc qdisc replace dev DEV root netem [loss L] [delay D] [seed S]``.

        Needs tc and a kernel with sch_netem (CONFIG_NET_SCH_NETEM); raises :class:`LabError`
        saying so when it is missing (see :meth:`qdisc_available`).
        """
        if not self.qdisc_available("netem"):
            raise LabError("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): cannot emulate loss or delay")
        argv = ["tc", "qdisc", "replace", "dev", dev, "root", "netem"]
        if loss:
            argv += ["loss", loss]
        if delay:
            argv += ["delay", delay]
        if seed is not None:
            argv += ["seed", str(seed)]
        self.run(role, *argv)

    def netem_clear(self, role: str, dev: str) -> None:
        self.run(role, "tc", "qdisc", "del", "dev", dev, "root", check=False)

    # -- capture
    @contextlib.contextmanager
    def capture(
        self,
        path,
        ns: str = "client",
        iface: str = "any",
        snaplen: int = SNAPLEN,
        bpf: str = "tcp",
        linktype: str | None = None,
        buffer_kib: int = 32768,
        settle: float = 0.3,
        timeout: float = 10.0,
        allow_drops: bool = False,
    ):
        """Capture with tcpdump in a namespace while the block runs; yields a :class:`Capture`.

        ``iface="any"`` writes Linux cooked frames: ``linktype`` LINUX_SLL (v1, 113; the default
        here, whatever tcpdump's own default) or LINUX_SLL2 (276); a veth name writes Ethernet.
        Returns once tcpdump is listening; on exit waits ``settle`` seconds, stops it with SIGINT so
        the file is complete, and records its packet counts in ``Capture.stats``: a capture from
        which the kernel dropped packets raises :class:`LabError` unless ``allow_drops``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if linktype is None and iface == "any":
            linktype = "LINUX_SLL"
        # --immediate-mode: hand each packet over at once (else a partly filled ring block is lost
        # at SIGINT); -Z root: write the file as root (tcpdump would otherwise drop to its own user).
        p = self.popen(
            ns,
            "tcpdump",
            "-i",
            iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-B",
            str(buffer_kib),
            "-s",
            str(snaplen),
            *(["-y", linktype] if linktype else []),
            "-w",
            str(path.resolve()),
            *([bpf] if bpf else []),
        )
        cap = Capture(path, self.ns(ns), iface, linktype)
        err = b""
        deadline = time.monotonic() + timeout
        while b"listening on" not in err:
            left = deadline - time.monotonic()
            if p.poll() is not None or left <= 0:
                _stop(p, signal.SIGKILL, 1.0)
                raise LabError(f"tcpdump did not start: {(err + p.stderr.read()).decode(errors='replace')}")
            r, _, _ = select.select([p.stderr], [], [], left)
            if r:
                chunk = os.read(p.stderr.fileno(), 4096)
                if not chunk:
                    continue
                err += chunk
        try:
            yield cap
        finally:
            time.sleep(settle)
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGINT)  # tcpdump itself: it flushes the file and prints its counts
            with contextlib.suppress(Exception):
                err += _read_until_exit(p, 5.0)
            _stop(p, signal.SIGKILL, 1.0)
            text = err.decode(errors="replace")
            for k, rx in (
                ("captured", r"(\d+) packets? captured"),
                ("received", r"(\d+) packets? received by filter"),
                ("dropped", r"(\d+) packets? dropped by kernel"),
            ):
                m = re.search(rx, text)
                if m:
                    cap.stats[k] = int(m.group(1))
        if cap.stats.get("dropped") and not allow_drops:
            raise LabError(f"tcpdump: {cap.stats['dropped']} packets dropped by the kernel; {path} is incomplete")

    # -- traffic
    def peer_argv(self, role: str, **opts) -> list[str]:
        argv = [sys.executable, str(PEER), role]
        for k, v in opts.items():
            if v is None or v is False:
                continue
            argv.append("--" + k.replace("_", "-"))
            if v is not True:
                argv.append(str(v))
        return argv

    def serve(
        self,
        *,
        family: int = 4,
        port: int = DEFAULT_PORT,
        reply: int = 0,
        reply_after: int | None = None,
        count: int = 1,
        tfo: bool = False,
        seed: int = 0,
        out=None,
        bind: str | None = None,
        chunk: int = 4096,
        gap_ms: float = 0.0,
        timeout: float = 10.0,
    ) -> Peer:
        """Start the MPTCP server in the server namespace; returns once it listens.

        Per connection it reads until EOF, sends ``reply`` octets (``lab_peer.pattern(reply,
        seed + 1 + i)``) at EOF or once ``reply_after`` octets arrived, closes; its results carry the
        length and sha256 of what it received.
        """
        argv = self.peer_argv(
            "server",
            family=family,
            port=port,
            reply=reply or None,
            reply_after=reply_after,
            count=count,
            tfo=tfo,
            seed=seed,
            out=out,
            bind=bind,
            chunk=chunk,
            gap_ms=gap_ms or None,
            timeout=timeout,
        )
        peer = Peer(self, self.popen("server", *argv), "lab server", timeout)
        peer.wait_event("listening", timeout=timeout)
        return peer

    def connect(
        self,
        *,
        family: int = 4,
        dst: str | None = None,
        port: int = DEFAULT_PORT,
        size: int = 40000,
        seed: int = 0,
        chunk: int = 4096,
        first: int | None = None,
        gap_ms: float = 0.0,
        wait_subflows: int = 0,
        pause_at: int | None = None,
        abort: bool = False,
        read_reply: int = 0,
        tfo: bool = False,
        bind: str | None = None,
        timeout: float = 10.0,
    ) -> Peer:
        """Start the MPTCP client in the client namespace (see ``lab_peer.py``); returns at once.

        ``dst`` defaults to the server's pair-0 address of ``family``.  With ``pause_at``, call
        ``peer.wait_event("paused")``, act, then ``peer.go()``.
        """
        argv = self.peer_argv(
            "client",
            family=family,
            connect=dst or self.addr("server", 0, family),
            port=port,
            size=size,
            seed=seed,
            chunk=chunk,
            first=first,
            gap_ms=gap_ms or None,
            wait_subflows=wait_subflows or None,
            pause_at=pause_at,
            abort=abort,
            read_reply=read_reply or None,
            tfo=tfo,
            bind=bind,
            timeout=timeout,
        )
        stdin = subprocess.PIPE if pause_at is not None else subprocess.DEVNULL
        return Peer(self, self.popen("client", *argv, stdin=stdin), "lab client", timeout)

    def transfer(
        self,
        *,
        family: int = 4,
        port: int = DEFAULT_PORT,
        reply: int = 0,
        reply_after: int | None = None,
        tfo: bool = False,
        seed: int = 0,
        timeout: float = 10.0,
        **client_opts,
    ) -> tuple[dict, dict]:
        """One connection, server and client: returns (server result, client result)."""
        server = self.serve(
            family=family,
            port=port,
            reply=reply,
            reply_after=reply_after,
            tfo=tfo,
            seed=seed,
            chunk=client_opts.get("chunk", 4096),
            gap_ms=client_opts.get("gap_ms", 0.0),
            timeout=timeout,
        )
        client = self.connect(family=family, port=port, tfo=tfo, seed=seed, timeout=timeout, **client_opts)
        c = client.result()
        s = server.result()
        return s, c


def _stop(p: subprocess.Popen, sig: int, wait: float) -> None:
    """Signal a process the lab started (its whole session), wait, then SIGKILL it."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, sig)
        try:
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=wait)
    for f in (p.stdin, p.stdout, p.stderr):
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()


def _read_until_exit(p: subprocess.Popen, timeout: float) -> bytes:
    """The rest of a process's stderr, read until it exits (or ``timeout``)."""
    out = b""
    deadline = time.monotonic() + timeout
    fd = p.stderr.fileno()
    while (left := deadline - time.monotonic()) > 0:
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        out += chunk
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(timeout=max(0.1, deadline - time.monotonic()))
    return out


def expected(n: int, seed: int = 0) -> dict:
    """Length and sha256 of the ``n`` octets ``lab_peer.pattern(n, seed)`` a peer sends."""
    return {"length": n, "sha256": hashlib.sha256(lab_peer.pattern(n, seed)).hexdigest()}


@atexit.register
def _close_open_labs() -> None:  # a Lab used without ``with`` and never closed
    for lab in list(_open_labs):
        with contextlib.suppress(Exception):
            lab.close()


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python3 -m tests.lab", description="the kernel test lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cleanup", help="delete namespaces left by labs whose process is gone")
    c.add_argument("--all", action="store_true", help=f"delete every {PREFIX}-* namespace")
    sub.add_parser("check", help="say whether the lab can run here")
    a = p.parse_args(argv)
    if a.cmd == "cleanup":
        for ns in cleanup_leftovers(everything=a.all):
            print("deleted", ns)
        return 0
    why = lab_problem()
    print(why or "the lab can run here")
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main())
