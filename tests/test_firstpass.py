"""The compiled first pass of ``dissect -j`` (``mptcpspec/dissect/firstpass.pyx``) makes the plan the
Python pass makes, the reference: on every committed capture alone and merged with others, cut by
snapshot lengths, in the formats it reads itself and those it leaves to the capture's reader, on
damaged and fuzzed captures, and on a mixed capture the kernel lab makes."""

from __future__ import annotations

import gzip
import os
import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mptcpspec.capture.pcap import CaptureError, CaptureReader
from mptcpspec.capture.stream import open_input
from mptcpspec.capture.writer import CaptureWriter
from mptcpspec.dissect import planner
from mptcpspec.dissect.planner import Plan, firstpass_module, plan_shares
from tests.conftest import CAPTURES, DATA
from tests.test_parallel import EVERY, merge, name

if firstpass_module() is None:
    if os.environ.get("CI"):
        pytest.fail("the compiled first pass is not built in CI", pytrace=False)
    pytest.skip("the compiled first pass is not built (or MPTCPSPEC_PURE is set)", allow_module_level=True)


def plans(source: Path | bytes, jobs: int) -> tuple[Plan | str, Plan | str]:
    """The compiled pass's plan and the Python pass's (or the error each raised, as text).  Bytes are
    written to a file and given opened, as ``dissect -j`` gives it; a path, by its name."""
    if isinstance(source, bytes):
        _SPOOL[0].write_bytes(source)
    out: list[Plan | str] = []
    for compiled in (True, False):
        try:
            if isinstance(source, bytes):
                with open_input(str(_SPOOL[0])) as f:
                    out.append(plan_shares(f, jobs, compiled=compiled))
            else:
                out.append(plan_shares(str(source), jobs, compiled=compiled))
        except CaptureError as e:
            out.append(f"{type(e).__name__}: {e}")
    return out[0], out[1]


_SPOOL: list[Path] = []


@pytest.fixture(autouse=True)
def spool(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not _SPOOL:
        _SPOOL.append(tmp_path_factory.mktemp("spool") / "capture.bin")


def same(source: Path | bytes, *jobs: int) -> Plan | str:
    for n in jobs or (2,):
        compiled, python = plans(source, n)
        assert compiled == python
    return compiled


def read_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, the capture's reader must not be used by the first pass: the compiled one reads
    the whole file."""

    def refuse(*args, **kw):
        raise AssertionError("the compiled first pass left the file to the capture's reader")

    monkeypatch.setattr(planner, "CaptureReader", refuse)


# --------------------------------------------------------------------------- the committed captures


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_every_capture(path: Path) -> None:
    same(path, 2, 3)


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_every_capture_merged(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    others = [p for p in (DATA / "v4-tfo.pcap", DATA / "v4-checksum.pcap", DATA / "v4-fastclose.pcap") if p != path]
    merged = merge([path, *others[:2]], tmp_path / "m.pcapng")
    python = plan_shares(str(merged), 3, compiled=False)
    read_alone(monkeypatch)
    assert plan_shares(str(merged), 3) == python


def test_many_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    merged = merge([*CAPTURES, *(DATA / "strays").glob("*.pcap")], tmp_path / "many.pcapng", step_ns=250_000)
    python = [plan_shares(str(merged), n, compiled=False) for n in (2, 3, 5)]
    assert python[1].shares == 3 and len(python[1].numbered) >= 10
    read_alone(monkeypatch)
    assert [plan_shares(str(merged), n) for n in (2, 3, 5)] == python


@pytest.mark.parametrize("snap", [40, 54, 60, 68, 80, 96, 120])
def test_cut_by_the_snapshot_length(snap: int, tmp_path: Path) -> None:
    merged = merge([*CAPTURES], tmp_path / "cut.pcapng", step_ns=250_000, snap=snap)
    same(merged, 2, 3)


def _shifted(frames, delta: int):
    """``frames`` of one connection (IPv4 after Ethernet or Linux cooked v1) with the client's
    sequence numbers moved by ``delta``: a new stream on the same addresses and ports."""
    client = None
    for ts, linktype, data, *rest in frames:
        ip = {1: 14, 113: 16}[linktype]
        tcp = ip + (data[ip] & 15) * 4
        body = bytearray(data)
        sport, _, seq, ack, flags = struct.unpack_from("!HHIIH", body, tcp)
        if client is None and flags & 0x12 == 0x02:
            client = sport
        if sport == client:
            struct.pack_into("!I", body, tcp + 4, (seq + delta) & 0xFFFFFFFF)
        elif flags & 0x10:
            struct.pack_into("!I", body, tcp + 8, (ack + delta) & 0xFFFFFFFF)
        yield (ts, linktype, bytes(body), *rest)


def test_ports_used_again(tmp_path: Path) -> None:
    """A connection made again and again on the same addresses and ports, between others: new
    streams on addresses and ports the C hash already holds."""
    base = [f for f in CaptureReader(str(DATA / "v4-tfo.pcap")).frames()]
    span = base[-1][0] - base[0][0] + 10**9
    frames = []
    for k in range(5):
        frames += [(ts + k * span, *rest) for ts, *rest in _shifted(base, k * 7919)]
    other = list(CaptureReader(str(DATA / "v4-checksum.pcap")).frames())
    frames += [(frames[0][0] + 3 * span // 2 + ts - other[0][0], *rest) for ts, *rest in other]
    frames.sort(key=lambda f: f[0])
    path = tmp_path / "again.pcapng"
    with open(path, "wb") as f, CaptureWriter(f, "pcapng") as w:
        w.write_many(frames)
    plan = same(path, 2, 3)
    assert isinstance(plan, Plan) and len(plan.tcp_starts) >= 6, plan.tcp_starts


# --------------------------------------------------------------------------- formats


def _pcap(frames, *, swapped: bool = False, nanos: bool = False, linktype: int = 113) -> bytes:
    e = ">" if swapped else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for ts, _, data, orig, *_ in frames:
        sec, ns = divmod(ts, 10**9)
        out.append(struct.pack(e + "IIII", sec, ns if nanos else ns // 1000, len(data), orig) + data)
    return b"".join(out)


def test_formats(tmp_path: Path) -> None:
    """pcap both ways round, in micro- and nanoseconds; pcapng; compressed: read here; a second
    pcapng section, left to the capture's reader from that record on."""
    merged = merge([*CAPTURES[:6]], tmp_path / "m.pcapng")
    frames = [f for f in CaptureReader(str(merged)).frames() if f[1] == 113]  # a pcap has one link type
    assert len(frames) > 500
    for swapped in (False, True):
        for nanos in (False, True):
            p = tmp_path / f"s{swapped:d}n{nanos:d}.pcap"
            p.write_bytes(_pcap(frames, swapped=swapped, nanos=nanos))
            same(p, 2)
    gz = tmp_path / "m.pcapng.gz"
    gz.write_bytes(gzip.compress(merged.read_bytes()))
    assert same(gz, 2) == same(merged, 2)
    two = tmp_path / "two-sections.pcapng"  # the second section: the reader's
    half = len(frames) // 2
    with open(two, "wb") as f:
        for part in (frames[:half], frames[half:]):
            with CaptureWriter(f, "pcapng") as w:
                w.write_many(part)
    plan = same(two, 2)
    assert isinstance(plan, Plan) and plan.frames == len(frames)


def test_other_link_types(tmp_path: Path) -> None:
    """The encapsulations the pass leaves to the planner's decoding, mixed with Ethernet frames."""
    merged = merge([*(DATA / "encap").glob("*.pcap"), DATA / "v4-two-subflows.pcap"], tmp_path / "e.pcapng")
    same(merged, 2, 3)


# --------------------------------------------------------------------------- damage


def test_damaged(tmp_path: Path) -> None:
    merged = merge([*CAPTURES[:6]], tmp_path / "m.pcapng")
    whole = merged.read_bytes()
    for cut in (0, 3, 30, 100, len(whole) // 3, len(whole) // 2 + 7, len(whole) - 5):
        same(whole[:cut], 2)
    broken = bytearray(whole)
    at = whole.index(b"\x06\x00\x00\x00", len(whole) // 2)  # an Enhanced Packet Block
    broken[at + 4 : at + 8] = b"\xff\xff\xff\x7f"
    same(bytes(broken), 2)
    raw = (DATA / "v4-two-subflows.pcap").read_bytes()
    same(raw[: len(raw) * 2 // 3] + b"\xff" * 40, 2)
    same(b"not a capture at all" * 100, 2)


_MANY: list[tuple[bytes, list[bytes]]] = []


def _many() -> tuple[bytes, list[bytes]]:
    """The committed kernel captures of Linux cooked v1 interleaved in one pcap (made once)."""
    if not _MANY:
        frames = []
        for i, path in enumerate(CAPTURES):
            got = list(CaptureReader(str(path)).frames())
            frames += [
                (1_700_000_000_000_000_000 + i * 1_000_003 + f[0] - got[0][0], *f[1:]) for f in got if f[1] == 113
            ]
        frames.sort(key=lambda f: f[0])
        blob = _pcap(frames)
        head = blob[:24]
        recs, at = [], 24
        while at < len(blob):
            n = struct.unpack_from("<I", blob, at + 8)[0]
            recs.append(blob[at : at + 16 + n])
            at += 16 + n
        _MANY.append((head, recs))
    return _MANY[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 120), st.integers(0, 255)), max_size=20),
    drop=st.lists(st.integers(0, 10**7), max_size=6),
    jobs=st.integers(2, 4),
)
def test_fuzzed(flips, drop, jobs: int) -> None:
    """Octets of the frames changed (headers, flags, options, keys, tokens), frames dropped: the same
    plan, whatever it is."""
    head, recs = _many()
    recs = [bytearray(r) for r in recs]
    for i in drop:
        del recs[i % len(recs)]
    for i, at, value in flips:
        r = recs[i % len(recs)]
        r[16 + at % (len(r) - 16)] = value
    same(head + b"".join(map(bytes, recs)), jobs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 10**7), flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=6))
def test_damaged_framing(cut: int, flips) -> None:
    """The file itself damaged (record lengths, headers, the end): the same plan or the same error."""
    head, recs = _many()
    blob = bytearray(head + b"".join(recs))
    blob = blob[: 24 + cut % len(blob)]
    for at, value in flips:
        blob[at % len(blob)] = value
    same(bytes(blob), 2)


def test_random_frames_among_real_ones() -> None:
    """Frames of random octets after each link header, and real frames with random options areas."""
    rng = random.Random(15)
    head, recs = _many()
    out = []
    for r in recs:
        out.append(r)
        if rng.random() < 0.05:
            body = bytearray(r[16:])
            for _ in range(rng.randrange(1, 8)):
                body[rng.randrange(14, len(body))] = rng.randrange(256)
            out.append(r[:8] + struct.pack("<II", len(body), len(body)) + bytes(body))
    same(head + b"".join(out), 2, 3)


# --------------------------------------------------------------------------- the kernel lab


@pytest.mark.lab
def test_a_mixed_lab_capture(tmp_path: Path) -> None:
    """The lab's mixed capture (lab/mixed.py, smaller): many MPTCP connections at once, half with
    DSS checksums, two or three subflows each, plain TCP beside them, snaplen 128, pcapng."""
    from lab import TOOLS, need_lab
    from lab.mixed import TOOLS as MIXED_TOOLS
    from lab.mixed import Mix, make_mixed

    need_lab((*TOOLS, *MIXED_TOOLS))
    path = tmp_path / "mixed.pcapng"
    make_mixed(path, Mix(mptcp=24, plain=6, max_size=300_000, seed=15))
    plan = same(path, 2, 3, 4)
    assert isinstance(plan, Plan) and plan.why is None and len(plan.numbered) >= 24
