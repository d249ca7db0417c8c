"""Traffic in the lab: the peers (``lab/peer.py`` processes) and transfers between them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from lab import peer as lab_peer
from lab.host import LabError
from lab.topology import Namespaces

PEER = Path(lab_peer.__file__).resolve()
DEFAULT_PORT = 5201


def expected(n: int, seed: int = 0) -> dict:
    """Length and sha256 of the ``n`` octets ``lab.peer.pattern(n, seed)`` a peer sends."""
    return {"length": n, "sha256": hashlib.sha256(lab_peer.pattern(n, seed)).hexdigest()}


class Peer:
    """A ``lab/peer.py`` process: its JSON events, a go-ahead after a pause, its results."""

    def __init__(self, lab: Namespaces, proc: subprocess.Popen, what: str, timeout: float):
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


class Traffic(Namespaces):
    """MPTCP servers and clients in the lab's namespaces."""

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

        Per connection it reads until EOF, sends ``reply`` octets (``lab.peer.pattern(reply,
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
        repeat: int = 1,
        plain_every: int = 0,
        timeout: float = 10.0,
    ) -> Peer:
        """Start the MPTCP client in the client namespace (see ``lab/peer.py``); returns at once.

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
            repeat=repeat if repeat > 1 else None,
            plain_every=plain_every or None,
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
