"""--mode raw without a network: the frames it makes, the batches sendmmsg(2) takes, the schedule,
and the batched and preloaded paths against one send(2) per frame (over a socket pair: every path
must send the same datagrams, in the same order)."""

from __future__ import annotations

import ipaddress
import random
import socket
import subprocess
import sys
import threading

import pytest

from mptcpspec.replay.raw import Batch, Schedule, capture_frames, raw_frames, send_frames, sendmmsg_available
from tests.conftest import DATA, ROOT

ip = ipaddress.ip_address
OWN = bytes.fromhex("020000000001")
MAPPING = {
    ip("198.51.100.1"): ip("198.51.100.11"),
    ip("198.51.100.2"): ip("198.51.100.12"),
    ip("2001:db8:1::1"): ip("2001:db8:9::1"),
    ip("2001:db8:1::2"): ip("2001:db8:9::2"),
}
ALLOWED = set(MAPPING.values())  # not 203.0.113.1 nor 2001:db8:2::1: their packets are skipped

needs_sendmmsg = pytest.mark.skipif(not sendmmsg_available(), reason="sendmmsg(2) only on 64-bit Linux")


def frames(name: str = "v4-two-subflows"):
    return list(capture_frames(DATA / f"{name}.pcap", MAPPING, ALLOWED, OWN, b"\xff" * 6))


def received(**kw) -> tuple[list[bytes], object]:
    """The datagrams :func:`send_frames` sends over a socket pair with ``kw``, and its report."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    got: list[bytes] = []

    def drain() -> None:
        while (d := b.recv(70000)) != b"end":
            got.append(d)

    t = threading.Thread(target=drain)
    t.start()
    try:
        rep = send_frames(a, kw.pop("source"), **kw)
        a.send(b"end")
    finally:
        t.join(10)
        a.close()
        b.close()
    return got, rep


def test_capture_frames_headers_and_skips():
    """A cooked capture's packets get an Ethernet header from OWN to broadcast; the ones to an address
    not allowed are skipped (None), never sent."""
    fr = frames()
    sent = [f for _, f, _ in fr if f is not None]
    assert len(fr) == 119 and 60 < len(sent) < 119
    assert all(f[:12] == b"\xff" * 6 + OWN and f[12:14] == b"\x08\x00" for f in sent)
    assert all(ipaddress.IPv4Address(f[30:34]) in ALLOWED for f in sent)
    v6 = [f for _, f, _ in frames("v6-two-subflows") if f is not None]
    assert v6 and all(f[12:14] == b"\x86\xdd" and ipaddress.IPv6Address(f[38:54]) in ALLOWED for f in v6)
    assert all(n == len(f) - 14 for _, f, n in fr if f is not None)


@pytest.mark.parametrize("name", ["v4-two-subflows", "v6-two-subflows", "v4-fastclose", "v4-tfo"])
@pytest.mark.parametrize("identity", [False, True])
def test_capture_frames_are_raw_frames_with_their_header(name, identity):
    """The fused loop of capture_frames (an Ethernet record kept whole when its addresses stay) makes
    raw_frames' packets, each behind the capture's Ethernet header or the made one (cooked and
    Ethernet captures; addresses rewritten, and kept)."""
    mapping = {a: a for a in MAPPING} if identity else MAPPING
    allowed = set(mapping.values())
    path = DATA / f"{name}.pcap"
    made = {4: b"\xff" * 6 + OWN + b"\x08\x00", 6: b"\xff" * 6 + OWN + b"\x86\xdd"}
    want = [
        (ts, (eth if eth is not None and len(eth) >= 14 else made[ip[0] >> 4]) + ip, len(ip)) if ip else (ts, None, 0)
        for ts, eth, ip in raw_frames(path, mapping, allowed)
    ]
    got = list(capture_frames(path, mapping, allowed, OWN, b"\xff" * 6))
    assert got == want and sum(f is not None for _, f, _ in got) > 20


def test_batch_iovecs_point_at_each_frame():
    rng = random.Random(7)
    fr = [rng.randbytes(rng.randrange(0, 1600)) for _ in range(2500)]
    b = Batch(list(range(len(fr))), fr)
    assert b.count == 2500 and b.octets == sum(map(len, fr))
    assert [b.frame(i) for i in range(b.count)] == fr
    assert Batch([], []).count == 0
    with pytest.raises(IndexError):
        b.frame(2500)
    with pytest.raises(ValueError, match="times"):
        Batch([1], [])


@needs_sendmmsg
@pytest.mark.parametrize("name", ["v4-two-subflows", "v6-two-subflows"])
def test_batched_and_preloaded_paths_send_what_the_plain_path_sends(name):
    """Every fast path (batches of sendmmsg, chunked or preloaded) sends the datagrams one send(2) per
    frame sends, in order; the reports agree but for the system calls."""
    fr = frames(name)
    plain, rep = received(source=iter(fr), batch=1)
    assert plain == [f for _, f, _ in fr if f is not None] and rep.calls == rep.sent == len(plain)
    for kw in ({"batch": 16}, {"batch": 1024}, {"preload": True}, {"preload": True, "batch": 7}):
        got, r = received(source=iter(fr), **kw)
        assert got == plain, kw
        assert (r.sent, r.skipped, r.octets) == (rep.sent, rep.skipped, rep.octets), kw
        assert 0 < r.calls < r.sent, kw
    got, r = received(source=iter(fr), preload=True, batch=1)
    assert got == plain and r.calls == r.sent and r.preload > 0


@needs_sendmmsg
def test_preload_in_many_layouts_sends_the_same_frames(monkeypatch):
    """A preload laid out in several Batches (a chunk of 10 frames each) sends what one does."""
    import mptcpspec.replay.raw as raw

    fr = frames()
    plain, _ = received(source=iter(fr), batch=1)
    monkeypatch.setattr(raw, "_PRELOAD_CHUNK", 10)
    for kw in ({"preload": True}, {"preload": True, "batch": 3}, {"preload": True, "timing": 1000.0}):
        got, r = received(source=iter(fr), **kw)
        assert got == plain and r.calls >= len(plain) // 10, kw


@needs_sendmmsg
def test_timed_batches_send_the_same_frames():
    """At captured times (sped up) and at a rate, with preload: the same frames, in order."""
    fr = frames()
    plain, _ = received(source=iter(fr), batch=1)
    for kw in ({"timing": 1000.0}, {"timing": 1000.0, "batch": 4}, {"rate": 50_000.0}):
        got, r = received(source=iter(fr), preload=True, **kw)
        assert got == plain, kw
        got, r = received(source=iter(fr), **kw)  # read as sent: one send(2) each
        assert got == plain and r.calls == r.sent, kw


def test_schedule_fast_sends_a_whole_batch():
    s = Schedule("fast", None, 100.0)
    assert s.due([5, 6, 7], 0, 1024, 100.0) == 3
    assert s.due([5, 6, 7], 1, 1, 100.0) == 1
    assert s.wait([5, 6, 7], 2, 100.0) <= 0


def test_schedule_as_captured_batches_only_what_is_due():
    """Times from the first packet sent: a batch holds the packets due now, no more."""
    ms = 1_000_000
    times = [50 * ms, 50 * ms, 51 * ms, 53 * ms, 60 * ms]
    s = Schedule("as-captured", None, 10.0)
    assert s.due(times, 0, 1024, 10.0) == 2
    assert s.wait(times, 2, 10.0) == pytest.approx(0.001)
    assert s.due(times, 2, 1024, 10.0005) == 0
    assert s.due(times, 2, 1024, 10.0031) == 2
    assert s.due(times, 2, 1, 10.0031) == 1  # the batch limit
    assert s.due(times, 4, 1024, 10.0099) == 0
    x10 = Schedule(10.0, None, 10.0)
    assert x10.due(times, 0, 1024, 10.00031) == 4 and x10.wait(times, 4, 10.00031) == pytest.approx(0.00069)


def test_schedule_rate_spaces_packets_and_allows_2ms_after_a_stall():
    times = [0] * 10_000
    s = Schedule("fast", 1000.0, 0.0)
    assert s.due(times, 0, 1024, 0.0) == 1
    s.sent(1, 0.0)
    assert s.due(times, 1, 1024, 0.0005) == 0 and s.wait(times, 1, 0.0005) == pytest.approx(0.0005)
    assert s.due(times, 1, 1024, 0.0035) == 3  # due at 1, 2 and 3 ms
    s.sent(3, 0.0035)
    assert s.due(times, 4, 1024, 10.0) == 3  # after a stall: 2 ms worth at most, then the rate again
    s.sent(3, 10.0)
    assert s.due(times, 7, 1024, 10.0) == 0


def test_cli_batch_out_of_range_is_a_usage_error():
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "replay", "--mode", "raw", "-r", str(DATA / "v4-two-subflows.pcap")]
        + ["--iface", "lo", "--map", "198.51.100.2=198.51.100.2", "--batch", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "--batch 0" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("argv", "rate", "timing"),
    [
        ([], None, "fast"),
        (["--pps", "2500"], 2500.0, "fast"),
        (["-p", "100", "-x", "2"], 100.0, 2.0),
        (["--rate", "7", "--multiplier", "0.5"], 7.0, 0.5),
        (["--timing", "as-captured", "-x", "4"], None, 4.0),  # the last one given holds, as in argparse
    ],
)
def test_tcpreplay_spellings_of_the_rate_and_the_multiplier(argv, rate, timing):
    """tcpreplay's -p/--pps and -x/--multiplier are --rate and --timing xN."""
    from mptcpspec.cli import build_parser

    args = build_parser().parse_args(["replay", "-r", "x.pcap", *argv])
    assert (args.rate, args.timing) == (rate, timing)


@pytest.mark.parametrize("argv", [["--pps", "0"], ["-x", "-1"], ["--multiplier", "fast"], ["-p", "inf"]])
def test_bad_pps_or_multiplier_is_a_usage_error(argv):
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "replay", "-r", str(DATA / "v4-two-subflows.pcap"), *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "expected a positive number" in r.stderr and "Traceback" not in r.stderr
