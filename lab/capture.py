"""Captures in the lab: tcpdump in a namespace while a block runs, and what the file holds so far."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lab.host import POLL, LabError, read_until_exit, stop_process, wait_until
from lab.topology import ROLES, Namespaces

SNAPLEN = 262144
#: a snapshot length that holds every whole packet of the lab's veths (MTU 1500, offloads off, a
#: cooked header, a tunnel's headers): with it, tcpdump's ring (``--immediate-mode``: fixed slots
#: of the snapshot length) holds 16,384 packets in 64 MiB, not 255, and a busy machine drops none
WHOLE_MTU = 4096
KIND_MPTCP = 30


@dataclass
class Capture:
    """A capture being written (or written): its file, where it was taken, and tcpdump's closing counts."""

    path: Path
    ns: str
    iface: str
    linktype: str | None = None
    stats: dict = field(default_factory=dict)  # tcpdump's closing counts: captured, received, dropped

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(link type, frame) of each record written so far; a record still being written is left out."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return
        if len(blob) < 24:
            return
        order = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
        e = order.get(blob[:4])
        if e is None:
            raise LabError(f"{self.path} is not a pcap file (tcpdump writes pcap)")
        (linktype,) = struct.unpack_from(e + "I", blob, 20)
        off = 24
        while off + 16 <= len(blob):
            incl = struct.unpack_from(e + "I", blob, off + 8)[0]
            if off + 16 + incl > len(blob):
                return
            yield linktype, blob[off + 16 : off + 16 + incl]
            off += 16 + incl

    def packets(self) -> int:
        """How many packets the file holds so far."""
        return sum(1 for _ in self.frames())

    def mptcp_subtypes(self) -> Counter:
        """How many MPTCP options of each subtype the file holds so far (MP_PRIO is 5, REMOVE_ADDR 4...)."""
        from mptcpspec.capture.packets import decode_frame

        seen: Counter = Counter()
        for linktype, frame in self.frames():
            p = decode_frame(linktype, frame)
            opts = b"" if p is None else p.options
            i = 0
            while i < len(opts):
                if opts[i] in (0, 1):
                    i += 1
                    continue
                if i + 1 >= len(opts) or opts[i + 1] < 2:
                    break
                if opts[i] == KIND_MPTCP and i + 2 < len(opts):
                    seen[opts[i + 2] >> 4] += 1
                i += opts[i + 1]
        return seen

    def wait(self, condition: Callable[[Capture], object], what: str, timeout: float = 5.0) -> None:
        """Wait until ``condition(capture)`` holds on what the file holds so far."""
        wait_until(lambda: condition(self), f"{self.path.name}: {what}", timeout)


class Capturing(Namespaces):
    """tcpdump in a namespace of the lab."""

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
        Returns once tcpdump is listening.  On exit, waits until the capture holds everything the
        connections sent (see :meth:`_settle`; ``settle`` seconds of quiet at most when a connection
        stays open), stops tcpdump with SIGINT so the file is complete, and records its packet counts
        in ``Capture.stats``: a capture from which the kernel dropped packets raises
        :class:`LabError` unless ``allow_drops``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if linktype is None and iface == "any":
            linktype = "LINUX_SLL"
        # --immediate-mode: hand each packet over at once (else a partly filled ring block is lost
        # at SIGINT); -U: write each packet to the file as it comes; -Z root: write the file as root
        # (tcpdump would otherwise drop to its own user).
        p = self.popen(
            ns,
            "tcpdump",
            *("-i", iface, "-n", "-U", "--immediate-mode", "-Z", "root", "-B", str(buffer_kib), "-s", str(snaplen)),
            *(["-y", linktype] if linktype else []),
            *("-w", str(path.resolve())),
            *([bpf] if bpf else []),
        )
        cap = Capture(path, self.ns(ns), iface, linktype)
        err = b""
        deadline = time.monotonic() + timeout
        while b"listening on" not in err:
            left = deadline - time.monotonic()
            if p.poll() is not None or left <= 0:
                stop_process(p, signal.SIGKILL, 1.0)
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
            with contextlib.suppress(LabError):
                self._settle(cap, settle, timeout)
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGINT)  # tcpdump itself: it flushes the file and prints its counts
            with contextlib.suppress(Exception):
                err += read_until_exit(p, 5.0)
            stop_process(p, signal.SIGKILL, 1.0)
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

    def _settle(self, cap: Capture, quiet: float, timeout: float) -> None:
        """Wait until the capture holds what the lab's connections sent: no TCP socket of either
        namespace still sends or waits for segments (handshake, data, closing; TIME-WAIT sends no
        more) and the file is the same size at two looks in a row (with -U tcpdump writes each
        packet whole as it comes, so the size counts the packets).  A connection left
        open on purpose (a subflow into a black hole) keeps its socket active: then ``quiet``
        seconds without a new packet in the file are enough.  Raises LabError after ``timeout``."""
        state = {"size": -1, "since": time.monotonic()}

        def settled() -> bool:
            now = time.monotonic()
            try:
                size = cap.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size != state["size"]:
                state["size"], state["since"] = size, now
                return False
            if now - state["since"] >= quiet:
                return True
            return now - state["since"] >= POLL and not any(self.active_sockets(role) for role in ROLES)

        wait_until(settled, "the capture to settle", timeout)
