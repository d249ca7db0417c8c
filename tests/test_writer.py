"""Writing captures (:mod:`mptcpspec.capture.writer`, ``dissect -w FILE -F FORMAT``): round trips
through our reader, tshark reading what we write, and ``mptcpspec dissect -Y F -w`` against
``tshark -Y F -w``: the same frames, octet for octet."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mptcpspec.capture.pcap import CaptureReader
from mptcpspec.capture.writer import CaptureWriter, Interface, LinkTypeError, WriteError, open_writer
from mptcpspec.cli import main
from tests.conftest import DATA, need_tshark, need_wireshark

SLL = DATA / "v4-two-subflows.pcap"  # Linux cooked v1
ETHERNET = DATA / "v4-fastclose.pcap"  # Ethernet
ADD_ADDR = DATA / "v4-add-addr.pcap"  # a subflow ACK without an MPTCP option
TFO = DATA / "v4-tfo.pcap"  # two MPTCP connections


def frames(path: Path | io.BytesIO) -> list[tuple]:
    return list(CaptureReader(path).frames())


def written(file_format: str, frames_in: list[tuple], interfaces=None) -> bytes:
    out = io.BytesIO()
    with CaptureWriter(out, file_format, interfaces) as w:
        w.write_many(frames_in)
    return out.getvalue()


def blocks(octets: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of each pcapng block, little-endian."""
    out, p = [], 0
    while p < len(octets):
        btype, blen = struct.unpack_from("<II", octets, p)
        assert struct.unpack_from("<I", octets, p + blen - 4)[0] == blen
        out.append((btype, octets[p + 8 : p + blen - 4]))
        p += blen
    assert p == len(octets)
    return out


def mixed() -> list[tuple]:
    """Frames of three (interface, link type) pairs, the third met part way, with nanoseconds."""
    sll, eth = frames(SLL), frames(ETHERNET)
    out = []
    for i, f in enumerate(sll[:60]):
        out.append((f[0] + i * 7 + 1, f[1], f[2], f[3], 0, False))
    for f in eth[:30]:
        out.append((f[0] + 999, f[1], f[2], f[3], 1, False))
    for f in sll[60:]:
        out.append((f[0] + 5, f[1], f[2][:40], f[3], 1, False))  # cut to 40 octets: caplen < orig_len
    return out


# --------------------------------------------------------------------------- round trips


def test_pcapng_round_trip_several_interfaces_and_link_types():
    given = mixed()
    back = frames(io.BytesIO(written("pcapng", given)))
    numbers: dict[tuple[int, int], int] = {}  # interfaces written as first met
    for f in given:
        numbers.setdefault((f[4], f[1]), len(numbers))
    assert len(numbers) == 3
    assert back == [(ts, lt, data, orig, numbers[(itf, lt)], False) for ts, lt, data, orig, itf, _ in given]
    assert any(orig > len(data) for _, _, data, orig, _, _ in back)
    assert any(ts % 1000 for ts, *_ in back)


def test_pcapng_blocks_and_idb_where_first_met():
    given = mixed()
    kinds = [t for t, _ in blocks(written("pcapng", given))]
    # SHB, IDB 0, 60 EPBs, IDB 1, 30 EPBs, IDB 2, the rest
    assert kinds == [0x0A0D0D0A, 1, *[6] * 60, 1, *[6] * 30, 1, *[6] * (len(given) - 90)]


@pytest.mark.parametrize("file_format", ["pcap", "nsecpcap"])
def test_pcap_round_trip(file_format):
    given = [f[:4] + (0, False) for f in mixed() if f[4] == 0]
    octets = written(file_format, given)
    magic = struct.unpack_from("<I", octets)[0]
    assert magic == {"pcap": 0xA1B2C3D4, "nsecpcap": 0xA1B23C4D}[file_format]
    back = frames(io.BytesIO(octets))
    if file_format == "pcap":  # microseconds
        given = [(ts // 1000 * 1000, *rest) for ts, *rest in given]
    assert back == given


def test_pcap_second_link_type_is_an_error_and_the_file_keeps_the_frames_before():
    given = [f for f in mixed() if f[4] != 1 or f[1] != 113]  # 60 SLL frames, then Ethernet ones
    out = io.BytesIO()
    w = CaptureWriter(out, "pcap")
    with pytest.raises(LinkTypeError) as e:
        w.write_many(given)
    w.close()
    assert (e.value.frame, e.value.linktype, e.value.file_linktype) == (61, 1, 113)
    assert str(e.value) == (
        "frame 61 has link type 1 (ETHERNET), which a pcap file of link type 113 (LINUX_SLL) cannot hold: "
        "write pcapng (-F pcapng)"
    )
    assert frames(io.BytesIO(out.getvalue())) == [(ts // 1000 * 1000, *rest) for ts, *rest in given[:60]]


def test_described_interfaces_names_and_statistics():
    given = [f[:4] + (i % 2, False) for i, f in enumerate(frames(SLL))]
    out = io.BytesIO()
    with CaptureWriter(out, "pcapng", [Interface("eth0", 113, 65535), Interface("lo", 113, 0)]) as w:
        assert [t for t, _ in blocks(out.getvalue())] == []  # gathered, not yet written
        w.flush()
        assert [t for t, _ in blocks(out.getvalue())] == [0x0A0D0D0A, 1, 1]
        w.write_many(given)
        assert w.statistics(1, 50, 3, given[-1][0]) is True
    assert frames(io.BytesIO(out.getvalue())) == given
    bl = blocks(out.getvalue())
    idbs = [body for t, body in bl if t == 1]
    assert [struct.unpack_from("<HHI", b) for b in idbs] == [(113, 0, 65535), (113, 0, 0)]
    assert b"\x02\x00\x04\x00eth0" in idbs[0] and b"\x02\x00\x02\x00lo" in idbs[1]
    (isb,) = [body for t, body in bl if t == 5]
    iface, hi, lo = struct.unpack_from("<III", isb)
    assert (iface, (hi << 32) | lo) == (1, given[-1][0])
    assert isb[12:] == struct.pack("<HHQHHQHH", 4, 8, 50, 5, 8, 3, 0, 0)
    with pytest.raises(WriteError):
        CaptureWriter(io.BytesIO(), "pcapng", [Interface("eth0", 1)]).write(given[0])  # link type 113 != 1
    with pytest.raises(WriteError):
        CaptureWriter(io.BytesIO(), "pcap", [Interface("a", 1), Interface("b", 113)])


def test_close_is_idempotent_and_leaves_a_complete_file(tmp_path):
    path = tmp_path / "x.pcapng"
    w = open_writer(path, "pcapng")
    w.write_many(frames(SLL))
    w.close()
    w.close()
    assert frames(path) == [f[:4] + (0, False) for f in frames(SLL)]
    with pytest.raises(WriteError):
        w.write(frames(SLL)[0])
    empty = tmp_path / "empty.pcap"
    open_writer(empty, "pcap").close()
    assert frames(empty) == [] and len(empty.read_bytes()) == 24


# --------------------------------------------------------------------------- tshark reads what we write


def tshark_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / ".wireshark").mkdir(exist_ok=True)
    return {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path / ".wireshark")}


def tshark_rows(path: Path | str, env: dict[str, str], *more: str, stdin: bytes | None = None) -> list[str]:
    r = subprocess.run(
        [need_tshark(), "-r", str(path), *more, "-T", "fields"]
        + [a for f in ("frame.time_epoch", "frame.len", "frame.cap_len", "frame.protocols") for a in ("-e", f)],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().splitlines()


def our_rows(given: list[tuple]) -> list[tuple[str, str, str]]:
    """frame.time_epoch, frame.len, frame.cap_len as tshark prints them, from frames."""
    return [(f"{ts // 10**9}.{ts % 10**9:09d}", str(orig), str(len(data))) for ts, _, data, orig, _, _ in given]


@pytest.mark.parametrize("file_format", ["pcapng", "pcap", "nsecpcap"])
def test_tshark_reads_what_we_write(tmp_path, file_format):
    given = mixed() if file_format == "pcapng" else [f for f in mixed() if f[1] == 113]
    path = tmp_path / f"x.{file_format}"
    path.write_bytes(written(file_format, given))
    if file_format == "pcap":
        given = [(ts // 1000 * 1000, *rest) for ts, *rest in given]
    env = tshark_env(tmp_path)
    assert [tuple(r.split("\t")[:3]) for r in tshark_rows(path, env)] == our_rows(given)
    info = subprocess.run(
        [need_wireshark("capinfos"), "-t", "-c", "-i", str(path)], capture_output=True, text=True, env=env
    )
    assert info.returncode == 0, info.stderr
    assert f"Number of packets:   {len(given)}\n" in info.stdout


# --------------------------------------------------------------------------- dissect -w against tshark -w

CASES = [
    *[(p.name, "mptcp.stream == 0", None) for p in sorted(DATA.glob("*.pcap"))],
    ("v4-tfo.pcap", "mptcp.stream == 1", None),
    ("v4-add-addr.pcap", "tcp.stream == 1", None),
    ("v4-two-subflows.pcap", "tcp.stream == 1", None),
    ("v4-reinjection.pcap", "tcp.len > 0", None),
    ("v4-two-subflows.pcap", "tcp.len > 0", 40),  # -c counts frames read, -Y or not
    ("v6-two-subflows.pcap", None, 25),
]


def run_ours(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["dissect", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def both(tmp_path, capsys, name: str, flt: str | None, count: int | None, file_format: str) -> tuple[Path, Path]:
    src = DATA / name
    extra = [*(["-Y", flt] if flt else []), *(["-c", str(count)] if count else []), "-F", file_format]
    ours, theirs = tmp_path / f"ours.{file_format}", tmp_path / f"theirs.{file_format}"
    code, out, err = run_ours(capsys, "-r", str(src), "-q", *extra, "-w", str(ours))
    assert code == 0, err
    r = subprocess.run(
        [need_tshark(), "-r", str(src), *extra, "-w", str(theirs)], capture_output=True, env=tshark_env(tmp_path)
    )
    assert r.returncode == 0, r.stderr
    return ours, theirs


@pytest.mark.parametrize(("name", "flt", "count"), CASES)
def test_dissect_write_as_tshark(tmp_path, capsys, name, flt, count):
    ours, theirs = both(tmp_path, capsys, name, flt, count, "pcapng")
    env = tshark_env(tmp_path)
    rows = tshark_rows(ours, env)
    assert rows and rows == tshark_rows(theirs, env)
    assert [f[:4] for f in frames(ours)] == [f[:4] for f in frames(theirs)]


@pytest.mark.parametrize(
    ("name", "flt", "count", "file_format"),
    [
        ("v4-two-subflows.pcap", "mptcp.stream == 0", None, "pcap"),
        ("v4-add-addr.pcap", "tcp.stream == 1", None, "pcap"),
        ("v4-checksum.pcap", "tcp.len > 0", 60, "pcap"),
        ("v4-tfo.pcap", "mptcp.stream == 1", None, "nsecpcap"),
    ],
)
def test_dissect_write_pcap_as_tshark(tmp_path, capsys, name, flt, count, file_format):
    ours, theirs = both(tmp_path, capsys, name, flt, count, file_format)
    env = tshark_env(tmp_path)
    rows = tshark_rows(ours, env)
    assert rows and rows == tshark_rows(theirs, env)
    assert frames(ours) == frames(theirs)
    assert ours.read_bytes()[:4] == theirs.read_bytes()[:4]  # the same magic


def test_mptcp_stream_leaves_out_what_tshark_leaves_out(tmp_path, capsys):
    """``mptcp.stream == N`` keeps a connection's frames that tshark gives an MPTCP stream: not the
    first SYN, nor a subflow's ACK without an MPTCP option; ours are the same frames."""
    code, out, _ = run_ours(capsys, "-r", str(ADD_ADDR), "-T", "fields", "-e", "frame.number", "-e", "mptcp.stream")
    assert code == 0
    r = subprocess.run(
        [need_tshark(), "-r", str(ADD_ADDR), "-T", "fields", "-e", "frame.number", "-e", "mptcp.stream"],
        capture_output=True,
        text=True,
        env=tshark_env(tmp_path),
    )
    assert out.splitlines() == r.stdout.splitlines()
    without = [line.split("\t")[0] for line in r.stdout.splitlines() if not line.split("\t")[1]]
    assert without == ["1", "46"]


def test_second_link_type_in_pcap_as_tshark(tmp_path, capsys):
    """A pcapng file whose second link type appears part way: both stop at its first frame, status 2,
    and keep the frames before it."""
    src = tmp_path / "mixed.pcapng"
    src.write_bytes(written("pcapng", [f for f in mixed() if f[4] != 1 or f[1] != 113]))
    ours, theirs = tmp_path / "ours.pcap", tmp_path / "theirs.pcap"
    code, out, err = run_ours(capsys, "-r", str(src), "-q", "-F", "pcap", "-w", str(ours))
    r = subprocess.run(
        [need_tshark(), "-r", str(src), "-F", "pcap", "-w", str(theirs)],
        capture_output=True,
        text=True,
        env=tshark_env(tmp_path),
    )
    assert (code, r.returncode) == (2, 2)
    assert 'Frame 61 of file "' in r.stderr
    assert err == (
        f"mptcpspec: error: {ours}: frame 61 of {src} has link type 1 (ETHERNET), which a pcap file of link type "
        "113 (LINUX_SLL) cannot hold: write pcapng (-F pcapng)\n"
    )
    assert out == ""
    assert len(frames(ours)) == 60 and frames(ours) == frames(theirs)


def test_write_to_standard_output_into_tshark(tmp_path):
    env = tshark_env(tmp_path)
    ours = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "dissect", "-r", str(TFO), "-q", "-Y", "mptcp.stream == 1", "-w", "-"],
        capture_output=True,
        timeout=120,
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout[:4] == b"\x0a\x0d\x0d\x0a"
    got = tshark_rows("-", env, stdin=ours.stdout)
    assert got and got == tshark_rows(TFO, env, "-Y", "mptcp.stream == 1")


def test_write_into_a_missing_folder(tmp_path, capsys):
    path = tmp_path / "no" / "x.pcapng"
    code, out, err = run_ours(capsys, "-r", str(SLL), "-w", str(path))
    assert (code, out) == (3, "")
    assert err == f"mptcpspec: error: {path}: no such file\n"
    assert not path.parent.exists()


def test_write_standard_output_needs_quiet(capsys):
    code, out, err = run_ours(capsys, "-r", str(SLL), "-w", "-")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "-q" in err


def test_interrupted_write_leaves_a_complete_file(tmp_path, capsys, monkeypatch):
    """Ctrl-C part way: status 130, and the file holds every frame written before it, readable."""
    write = CaptureWriter.write
    calls = []

    def interrupted(self, frame):
        calls.append(frame)
        if len(calls) == 50:
            raise KeyboardInterrupt
        write(self, frame)

    monkeypatch.setattr(CaptureWriter, "write", interrupted)
    path = tmp_path / "x.pcapng"
    code, _, _ = run_ours(capsys, "-r", str(SLL), "-q", "-w", str(path))
    assert code == 130
    assert frames(path) == [f[:4] + (0, False) for f in frames(SLL)[:49]]


# --------------------------------------------------------------------------- one connection, whole


def _tshark_subflows(src: Path, env: dict[str, str]) -> dict[int, set[int]]:
    """MPTCP stream -> the TCP streams tshark gives it on any frame (with -2, as it knows them all)."""
    r = subprocess.run(
        [need_tshark(), "-2", "-r", str(src), "-Y", "mptcp.stream", "-T", "fields", "-e", "mptcp.stream"]
        + ["-e", "tcp.stream"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    out: dict[int, set[int]] = {}
    for line in r.stdout.splitlines():
        m, t = line.split("\t")
        out.setdefault(int(m), set()).add(int(t))
    return out


@pytest.mark.parametrize("src", [*sorted(DATA.glob("*.pcap")), *sorted((DATA / "encap").glob("*.pcap"))[:4]], ids=str)
def test_mptcp_connection_with_two_passes_writes_every_frame_of_every_subflow(tmp_path, capsys, src):
    """``-2 -Y 'mptcp.connection == N' -w`` writes exactly what tshark writes for the TCP streams
    that tshark itself puts in MPTCP stream N: the connection whole, first SYN and ACKs without an
    MPTCP option included."""
    env = tshark_env(tmp_path)
    subflows = _tshark_subflows(src, env)
    assert subflows
    for stream, tcp_streams in subflows.items():
        ours, theirs = tmp_path / f"ours-{stream}.pcapng", tmp_path / f"theirs-{stream}.pcapng"
        code, _, err = run_ours(
            capsys, "-r", str(src), "-2", "-q", "-Y", f"mptcp.connection == {stream}", "-w", str(ours)
        )
        assert code == 0, err
        flt = " or ".join(f"tcp.stream == {t}" for t in sorted(tcp_streams))
        r = subprocess.run([need_tshark(), "-r", str(src), "-Y", flt, "-w", str(theirs)], capture_output=True, env=env)
        assert r.returncode == 0, r.stderr
        assert [f[:4] for f in frames(ours)] == [f[:4] for f in frames(theirs)] != []


def test_mptcp_connection_in_one_pass_misses_only_the_first_syn(capsys):
    code, out, _ = run_ours(
        capsys, "-r", str(ADD_ADDR), "-T", "fields", "-e", "frame.number", "-e", "mptcp.connection", "-e", "tcp.stream"
    )
    assert code == 0
    rows = [line.split("\t") for line in out.splitlines()]
    assert [r[0] for r in rows if not r[1]] == ["1"]  # the first SYN: its connection is not known yet
    code, out, _ = run_ours(capsys, "-r", str(ADD_ADDR), "-2", "-T", "fields", "-e", "mptcp.connection")
    assert code == 0 and "" not in out.splitlines()
