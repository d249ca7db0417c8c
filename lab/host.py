"""Can the lab run here; commands, processes and namespaces of the host; waiting on a condition."""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

PREFIX = "mptcpspec-lab"
TOOLS = ("ip", "tcpdump", "ethtool", "sysctl", "tc", "ss")
CMD_TIMEOUT = 15.0
POLL = 0.02  # seconds between two looks at a condition

T = TypeVar("T")


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
        delete_namespace(probe)
    return None


def need_lab(tools=TOOLS) -> None:
    """In a test: skip with the reason when the lab cannot run here; with CI=true, fail instead."""
    import pytest

    why = lab_problem(tools)
    if why is None:
        return
    if in_ci():
        pytest.fail(f"{why} (CI=true: the lab tests must run)")
    pytest.skip(why)


# ---------------------------------------------------------------------------------------------
# Waiting


def wait_until(condition: Callable[[], T], what: str, timeout: float = 5.0, interval: float = POLL) -> T:
    """Poll ``condition()`` until it returns a true value, which is returned; after ``timeout``
    seconds raise :class:`LabError` saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"{what}: not so within {timeout:g} s")
        time.sleep(interval)  # the poll interval of a condition, not a wait for an event


# ---------------------------------------------------------------------------------------------
# Commands, processes, namespaces


def run_command(argv, *, check=True, timeout=CMD_TIMEOUT, input=None) -> subprocess.CompletedProcess:
    """Run ``argv``, text output captured; a failure (with ``check``) or a timeout raises LabError."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(map(str, argv))}") from e
    if check and r.returncode != 0:
        raise LabError(f"`{' '.join(map(str, argv))}` exited {r.returncode}: {(r.stderr or r.stdout).strip()}")
    return r


def _namespaces() -> list[str]:
    r = run_command(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def list_namespaces(prefix: str = PREFIX) -> list[str]:
    """Names of the network namespaces whose name starts with ``prefix-``."""
    return [n for n in _namespaces() if n.startswith(prefix + "-")]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (its state in /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X")


def _namespace_pids(ns: str) -> list[int]:
    r = run_command(["ip", "netns", "pids", ns], check=False)
    return [int(tok) for tok in r.stdout.split() if tok.isdigit()]


def delete_namespace(ns: str) -> None:
    """Kill what runs in ``ns`` (processes the lab started there) and wait until they are gone,
    then delete the namespace and wait until it is no longer listed."""
    pids = _namespace_pids(ns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(_running(p) for p in pids), f"the processes of {ns} to end", timeout=5.0)
    run_command(["ip", "netns", "del", ns], check=False)
    wait_until(lambda: ns not in _namespaces(), f"namespace {ns} to be gone", timeout=5.0)


def cleanup_leftovers(prefix: str = PREFIX, everything: bool = False) -> list[str]:
    """Delete namespaces ``prefix-<pid>-...`` whose process is gone (all of them with ``everything``).

    Returns the names deleted.  Namespaces of a live process (a lab running in parallel) stay.
    """
    gone = []
    for ns in list_namespaces(prefix):
        m = re.match(re.escape(prefix) + r"-(\d+)-", ns)
        if not everything and m and pid_alive(int(m.group(1))):
            continue
        delete_namespace(ns)
        gone.append(ns)
    return gone


def stop_process(p: subprocess.Popen, sig: int, wait: float) -> None:
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


def read_until_exit(p: subprocess.Popen, timeout: float) -> bytes:
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
