"""The compiled hot path changes no output: rows, connections, expert counts and frame counts equal
the pure-Python path's (the reference) on every capture, for the fields it writes itself and for
option fields, and on damaged and fuzzed captures; ``MPTCPSPEC_PURE=1`` switches it off."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mptcpspec.analysis.tcpanalysis import Flow, Stream, TcpAnalyzer
from mptcpspec.capture.packets import TcpFlags, decode_frame
from mptcpspec.capture.pcap import CaptureError, CaptureReader
from mptcpspec.capture.writer import CaptureWriter
from mptcpspec.dissect import hotpath
from mptcpspec.dissect.optionfields import OPTION_FIELDS
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.writers import FieldsWriter
from tests.conftest import ROOT, corpus_params, walk_options

if hotpath.MODE != "compiled":
    if os.environ.get("CI"):
        pytest.fail(f"the compiled hot path is not built in CI ({hotpath.describe()})", pytrace=False)
    pytest.skip(f"the compiled hot path is not built ({hotpath.describe()})", allow_module_level=True)

DATA = ROOT / "tests" / "data"
CAPTURES = (
    sorted(DATA.glob("*.pcap")) + sorted((DATA / "encap").glob("*.pcap")) + sorted((DATA / "strays").glob("*.pcap"))
)

BENCH = (
    "frame.number tcp.stream tcp.srcport tcp.dstport tcp.len tcp.seq tcp.ack mptcp.stream "
    "tcp.options.mptcp.subtype tcp.options.mptcp.rawdataseqno tcp.options.mptcp.rawdataack "
    "tcp.options.mptcp.subflowseqno tcp.options.mptcp.datalvllen mptcp.dsn mptcp.ack"
).split()
OPTIONS = sorted(name for name, _ in OPTION_FIELDS)
FIELD_SETS = {
    "bench": BENCH,
    "dss": ["mptcp.dss.dsn", "mptcp.ack", "mptcp.dsn", "tcp.seq", "tcp.ack", "tcp.len", "tcp.stream"],
    "options": ["frame.number", *OPTIONS],
    "repeated": ["mptcp.dsn", "tcp.stream", "mptcp.dsn", "tcp.options.mptcp.subtype", "tcp.options.mptcp.subtype"],
}


def both(source, names: list[str], options: dict[str, str] | None = None):
    """The rows and the analyzer's findings, compiled and pure; and the compiled engine."""
    out = []
    engine = None
    for compiled in (True, False):
        d = Dissection(io.BytesIO(source) if isinstance(source, bytes) else source, tcp_analysis=False)
        buf = io.StringIO()
        w = FieldsWriter(buf, names, options)
        damage = None
        try:
            if compiled:
                engine = hotpath.fields_engine(d, w)
                assert engine is not None, "the compiled path declined fields it writes"
                engine.run()
            else:
                w.write_all(d)
                w.flush()
        except CaptureError as e:
            damage = str(e)
            w.flush()
        an = d.analyzer
        conns = [c.summary() for c in d.connections()]
        subflows = [(sf.index, sf.closed, sf.reset, sf.dirs[0].data, sf.dirs[1].data) for sf in an.subflows()]
        out.append(
            (buf.getvalue(), damage, list(d.problems), d.frames, dict(an.counts), dict(an.experts), conns, subflows)
        )
    return out[0], out[1], engine


@pytest.mark.parametrize("fields", sorted(FIELD_SETS))
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_same_as_pure(path: Path, fields: str) -> None:
    compiled, pure, _ = both(path, FIELD_SETS[fields])
    assert compiled[0] == pure[0]  # the rows first: the clearest difference
    assert compiled == pure


@pytest.mark.parametrize("path", corpus_params())
def test_same_as_pure_corpus(path: Path) -> None:
    compiled, pure, _ = both(path, BENCH)
    assert compiled == pure


def test_separator_and_header() -> None:
    opts = {"separator": ",", "header": "y", "aggregator": ";"}
    compiled, pure, _ = both(DATA / "v4-two-subflows.pcap", BENCH, opts)
    assert compiled == pure


@pytest.mark.parametrize("name", ["v4-two-subflows", "v4-checksum", "v4-reinjection", "v4-loss"])
def test_takes_the_common_segments(name: str) -> None:
    """A test that fails when the compiled path stops taking segments (its output would still be
    right, from the Python path): it takes most frames of a kernel capture."""
    _, _, engine = both(DATA / f"{name}.pcap", BENCH)
    d = Dissection(DATA / f"{name}.pcap", tcp_analysis=False)
    frames = sum(1 for _ in d)
    assert engine is not None
    assert engine.taken > frames // 2, (engine.taken, frames)


def test_declines_what_it_does_not_write() -> None:
    d = Dissection(DATA / "v4-two-subflows.pcap", tcp_analysis=False)
    assert hotpath.fields_engine(d, FieldsWriter(io.StringIO(), ["frame.time_relative"])) is None
    d = Dissection(DATA / "v4-two-subflows.pcap")  # the TCP analysis on
    assert hotpath.fields_engine(d, FieldsWriter(io.StringIO(), BENCH)) is None
    d = Dissection(DATA / "v4-two-subflows.pcap", tcp_analysis=False, two_pass=True)
    assert hotpath.fields_engine(d, FieldsWriter(io.StringIO(), BENCH)) is None
    d = Dissection(DATA / "v4-two-subflows.pcap", tcp_analysis=False)
    assert hotpath.fields_engine(d, FieldsWriter(io.StringIO(), BENCH, {"occurrence": "f"})) is None


def _records(path: Path) -> tuple[bytes, list[bytes]]:
    raw = path.read_bytes()
    head, at, recs = raw[:24], 24, []
    while at + 16 <= len(raw):
        n = struct.unpack_from("<I", raw, at + 8)[0]
        recs.append(raw[at : at + 16 + n])
        at += 16 + n
    return head, recs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["v4-two-subflows", "v4-checksum", "v4-reinjection", "v4-add-addr", "v4-loss"]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 200), st.integers(0, 255)), max_size=12),
    drop=st.lists(st.integers(0, 10**6), max_size=4),
)
def test_fuzzed_captures(tmp_path_factory, name: str, flips, drop) -> None:
    """Octets changed in the frames, frames dropped: still the same output as the pure path."""
    head, recs = _records(DATA / f"{name}.pcap")
    recs = [bytearray(r) for r in recs]
    for i in drop:
        if recs:
            del recs[i % len(recs)]
    for i, at, value in flips:
        r = recs[i % len(recs)]
        at = 16 + at % max(1, len(r) - 16)
        if at < len(r):
            r[at] = value
    blob = head + b"".join(bytes(r) for r in recs)
    compiled, pure, _ = both(blob, BENCH)
    assert compiled == pure


def test_damaged_capture(tmp_path) -> None:
    raw = (DATA / "v4-two-subflows.pcap").read_bytes()
    bad = tmp_path / "cut.pcap"
    bad.write_bytes(raw[: len(raw) * 2 // 3] + b"\xff" * 40)
    compiled, pure, _ = both(bad, BENCH)
    assert compiled == pure
    assert compiled[1] or compiled[2]  # the damage was met, and reported the same way


def test_pure_switch() -> None:
    """MPTCPSPEC_PURE=1: the same output from the Python path; --version names each mode."""
    args = [sys.executable, "-m", "mptcpspec", "dissect", "-r", str(DATA / "v4-reinjection.pcap"), "-T", "fields"]
    for f in BENCH:
        args += ["-e", f]
    env = dict(os.environ)
    env.pop("MPTCPSPEC_PURE", None)
    compiled = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    version = subprocess.run([sys.executable, "-m", "mptcpspec", "--version"], capture_output=True, text=True, env=env)
    assert "(compiled hot path)" in version.stdout
    env["MPTCPSPEC_PURE"] = "1"
    pure = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    version = subprocess.run([sys.executable, "-m", "mptcpspec", "--version"], capture_output=True, text=True, env=env)
    assert "(pure Python: MPTCPSPEC_PURE is set)" in version.stdout
    assert compiled.stdout == pure.stdout and compiled.stderr == pure.stderr


@settings(max_examples=2000, deadline=None)
@given(
    flags=st.integers(0, 255),
    body=st.binary(min_size=0, max_size=30),
    reserved=st.integers(0, 15),
    extra=st.integers(-2, 2),
)
def test_dss_decoded_as_the_generated_decoder(flags: int, body: bytes, reserved: int, extra: int) -> None:
    """The compiled path's DSS decoding, where it takes an option, equals the generated codec's."""
    from mptcpspec.codec.generated.options import decode_dss
    from mptcpspec.dissect import native  # type: ignore[attr-defined]

    want = 4 + (8 if flags & 3 == 3 else 4 if flags & 1 else 0) + (14 if flags & 12 == 12 else 10 if flags & 4 else 0)
    n = max(4, min(40, want + extra))
    option = (bytes((30, n, 0x20 | reserved, flags)) + body + bytes(40))[:n]
    mine = native.decode_dss_option(option)
    if mine is not None:
        assert mine == decode_dss(option, 0, n)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.pcap")), ids=lambda p: p.stem)
def test_same_as_tshark(path: Path, tmp_path: Path) -> None:
    """The compiled path against the oracle itself: the benchmark's fields, tshark 4.0 with the MPTCP
    analysis on, cell for cell, but for mptcp.dsn where tshark 4.0 takes each repeated v1
    MP_CAPABLE with data for a new mapping (docs/tshark-mptcp.md, Q17; test_tshark_dissect checks
    that column frame by frame, those frames told apart)."""
    from tests.conftest import need_tshark
    from tests.tshark_fields import RECOMMENDED_PREFS

    fields = [a for f in BENCH for a in ("-e", f)]
    prefs = [a for k, v in RECOMMENDED_PREFS.items() for a in ("-o", f"{k}:{v}")]
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path)}
    env.pop("MPTCPSPEC_PURE", None)
    run = [need_tshark(), "-n", "-r", str(path), *prefs, "-T", "fields", *fields]
    theirs = subprocess.run(run, capture_output=True, text=True, env=env, check=True).stdout.splitlines()
    run = [sys.executable, "-m", "mptcpspec", "dissect", "-r", str(path), "-T", "fields", *fields]
    ours = subprocess.run(run, capture_output=True, text=True, env=env, check=True).stdout.splitlines()
    dsn = BENCH.index("mptcp.dsn")
    assert len(ours) == len(theirs)
    for mine, their in zip(ours, theirs):
        a, b = mine.split("\t"), their.split("\t")
        del a[dsn], b[dsn]
        assert a == b, (mine, their)


def _converted(tmp_path: Path) -> list[Path]:
    """The kernel captures as pcapng (one with nanosecond timestamps), merged into a file of two
    interfaces and link types, and compressed."""
    import gzip

    import lz4.frame
    import zstandard

    from tests.conftest import need_wireshark

    editcap, mergecap = need_wireshark("editcap"), need_wireshark("mergecap")
    out = []
    for src in ("v4-two-subflows", "v4-checksum", "v4-reinjection"):
        ng = tmp_path / f"{src}.pcapng"
        subprocess.run([editcap, "-F", "pcapng", str(DATA / f"{src}.pcap"), str(ng)], check=True)
        out.append(ng)
    nano = tmp_path / "nano.pcapng"  # the project's writer: if_tsresol 9
    with CaptureWriter(nano.open("wb"), "pcapng") as w:
        w.write_many(list(CaptureReader(DATA / "v4-loss.pcap").frames()))
    merged = tmp_path / "merged.pcapng"
    subprocess.run(
        [
            mergecap,
            "-F",
            "pcapng",
            "-w",
            str(merged),
            str(DATA / "v4-two-subflows.pcap"),
            str(DATA / "encap" / "raw-ipv4.pcap"),
        ],
        check=True,
    )
    out += [nano, merged]
    raw = (DATA / "v4-reinjection.pcap").read_bytes()
    for name, pack in (
        ("gz", gzip.compress),
        ("zst", zstandard.ZstdCompressor().compress),
        ("lz4", lz4.frame.compress),
    ):
        p = tmp_path / f"v4-reinjection.pcap.{name}"
        p.write_bytes(pack(raw))
        out.append(p)
    return out


def test_formats_read_here(tmp_path: Path) -> None:
    """pcapng (microseconds, nanoseconds, two interfaces) and the compressed forms: the compiled
    path reads them itself, with the same frames as the capture's reader."""
    for path in _converted(tmp_path):
        compiled, pure, engine = both(path, BENCH)
        assert compiled == pure, path.name
        assert engine is not None and engine.records == compiled[3], (path.name, engine.records)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(0, 10**6), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))
@example(cut=2820, flips=[(3004, 0)])  # a DSN below the IDSN: the relative DSN taken modulo 2**64
def test_damaged_pcapng(tmp_path: Path, cut: int, flips) -> None:
    """A pcapng file cut anywhere or with octets changed (block lengths, interfaces, options): the
    compiled path hands over to the capture's reader and the outcome is the pure path's."""
    ng = tmp_path / "x.pcapng"
    if not ng.exists():
        from tests.conftest import need_wireshark

        subprocess.run([need_wireshark("editcap"), "-F", "pcapng", str(DATA / "v4-add-addr.pcap"), str(ng)], check=True)
    blob = bytearray(ng.read_bytes())
    blob = blob[: 200 + cut % len(blob)]
    for at, value in flips:
        blob[at % len(blob)] = value
    compiled, pure, _ = both(bytes(blob), BENCH)
    assert compiled == pure
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(blob))
    compiled, pure, _ = both(bad, BENCH)
    assert compiled == pure


def test_checksums_verified_and_mismatched() -> None:
    """DSS checksums verified in C: the same checks as the Python path's, a corrupted payload a
    mismatch in both (each data segment of the checksum capture with its last octet changed)."""
    head, recs = _records(DATA / "v4-checksum.pcap")
    bad = []
    for r in recs:
        r = bytearray(r)
        if len(r) > 16 + 16 + 20 + 32 + 1 and r[-1] != 0:  # a segment with payload, Linux cooked v1
            r[-1] ^= 0xFF
        bad.append(bytes(r))
    for blob in (head + b"".join(recs), head + b"".join(bad)):
        compiled, pure, engine = both(blob, BENCH)
        assert compiled == pure
        assert engine is not None and engine.taken > len(recs) // 2
    assert compiled[5].get("mptcp.dss.checksum_mismatch", 0) > 0  # the corrupted capture's experts


def _summaries(source, compiled: bool):
    d = Dissection(io.BytesIO(source) if isinstance(source, bytes) else source)  # the TCP analysis on
    damage = None
    try:
        if compiled:
            engine = hotpath.summary_engine(d)
            assert engine is not None
            engine.run()
        else:
            for _ in d:
                pass
    except CaptureError as e:
        damage = str(e)
    an = d.analyzer
    retrans = [(sf.index, tuple(sf.retransmissions)) for sf in an.subflows()]
    return (
        damage,
        list(d.problems),
        d.frames,
        dict(an.counts),
        dict(an.experts),
        [c.summary() for c in d.connections()],
        retrans,
        _tcp_state(an.tcp),
    )


def _tcp_state(tcp: TcpAnalyzer) -> list[object]:
    """Everything the subflow TCP analysis keeps, stream by stream, flow by flow (what a later
    segment's analysis reads, whichever path analyses it)."""
    state: list[object] = [sorted(tcp.mp_ops.values())]
    for index, stream in sorted(tcp.streams.items()):
        flows = [[repr(getattr(f, name)) for name in Flow.__slots__] for f in stream.flows]
        state.append((index, [getattr(stream, name) for name in Stream.__slots__ if name != "flows"], flows))
    return state


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_connections_same_as_pure(path: Path) -> None:
    """connections by the compiled path (its subflow TCP analysis in C where it can be): the same
    summaries, retransmissions, counts, expert items, and the same state of the TCP analysis."""
    assert _summaries(path, True) == _summaries(path, False)


@pytest.mark.parametrize("name", ["v4-loss", "v4-two-subflows", "v4-checksum", "v6-two-subflows"])
def test_connections_tcp_analysis_taken_in_c(name: str) -> None:
    """Every segment the compiled path takes has its TCP analysis made there too (SACK blocks, FINs,
    retransmissions and duplicate ACKs included), and none of IPv6, which it leaves to Python."""
    d = Dissection(DATA / f"{name}.pcap")
    engine = hotpath.summary_engine(d)
    assert engine is not None
    engine.run()
    if name.startswith("v6"):
        assert engine.taken == engine.tcp_taken == 0
    else:
        assert engine.taken > d.frames * 0.9
        assert engine.tcp_taken == engine.taken
    if name == "v4-loss":  # what the capture holds (tshark 4.0 agrees: tests/test_tshark_tcp.py)
        assert sum(sum(sf.retransmissions) for sf in d.analyzer.subflows()) > 0
        sacks = fins = 0
        for r in CaptureReader(io.BytesIO((DATA / f"{name}.pcap").read_bytes())):
            pkt = decode_frame(r.linktype, r.data, 0)
            if pkt is not None and pkt.flags & TcpFlags.ACK and not pkt.flags & (TcpFlags.SYN | TcpFlags.RST):
                fins += bool(pkt.flags & TcpFlags.FIN)
                sacks += any(pkt.options[i] == 5 for i, _, ok in walk_options(pkt.options) if ok)
        assert sacks > 5 and fins > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["v4-loss", "v4-stall", "v4-reinjection", "v4-checksum"]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 200), st.integers(0, 255)), max_size=8),
)
def test_connections_fuzzed(name: str, flips) -> None:
    head, recs = _records(DATA / f"{name}.pcap")
    recs = [bytearray(r) for r in recs]
    for i, at, value in flips:
        r = recs[i % len(recs)]
        at = 16 + at % max(1, len(r) - 16)
        if at < len(r):
            r[at] = value
    blob = head + b"".join(bytes(r) for r in recs)
    assert _summaries(blob, True) == _summaries(blob, False)
