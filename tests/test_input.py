"""Captures as tshark takes them: standard input, pipes read as the records come, and gzip, zstd and
lz4 files told by content; every way such an input goes wrong said in one line.

The outputs compared are the dissector's own on the uncompressed file, and tshark's where tshark
has the behaviour (``-c`` counts frames read).
"""

from __future__ import annotations

import gzip
import io
import os
import select
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.capture.pcap import CaptureError, CaptureReader, read_records
from mptcpspec.capture.stream import COMPRESSIONS, open_input
from mptcpspec.cli.exitcode import ExitCode
from tests.conftest import CAPTURES, DATA, ROOT, need_tshark
from tests.dissect_helpers import cli

SMALL = DATA / "v4-two-subflows.pcap"
FIELDS = ["-T", "fields", "-e", "frame.number", "-e", "tcp.stream", "-e", "mptcp.dsn", "-e", "mptcp.analysis"]

COMPRESS = {
    "gzip": lambda b: gzip.compress(b, mtime=0),
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "lz4": lambda b: lz4.frame.compress(b),
}


def frames(source) -> list[tuple]:
    return [(r.timestamp_ns, r.linktype, r.data, r.orig_len) for r in read_records(source)]


def pcap_records(path: Path) -> tuple[bytes, list[bytes]]:
    """A pcap file's header and its records (header and octets), as written."""
    blob = path.read_bytes()
    out, p = [], 24
    while p < len(blob):
        (incl,) = struct.unpack_from("<I", blob, p + 8)
        out.append(blob[p : p + 16 + incl])
        p += 16 + incl
    return blob[:24], out


def pcapng_blocks(blob: bytes) -> list[bytes]:
    out, p = [], 0
    while p < len(blob):
        (n,) = struct.unpack_from("<I", blob, p + 4)
        out.append(blob[p : p + n])
        p += n
    return out


# ---------------------------------------------------------------------------- standard input


def test_standard_input_gives_what_the_file_gives():
    want = cli("dissect", "-r", str(SMALL), *FIELDS)
    with open(SMALL, "rb") as f:
        got = subprocess.run(
            [sys.executable, "-m", "mptcpspec", "dissect", "-r", "-", *FIELDS],
            stdin=f,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    assert got.returncode == want.returncode == 0, got.stderr
    assert got.stdout == want.stdout and got.stdout.count("\n") == 119


def _run_bytes(*args: str, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mptcpspec", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=120
    )


def test_connections_and_options_read_standard_input():
    for command in (["connections"], ["options"]):
        want = _run_bytes(*command, "-r", str(SMALL), stdin=b"")
        got = _run_bytes(*command, "-r", "-", stdin=SMALL.read_bytes())
        assert got.returncode == 0 and got.stdout == want.stdout and want.stdout, got.stderr


def test_what_cannot_read_standard_input_says_so():
    r = _run_bytes("dissect", "-r", "-", "-2", stdin=SMALL.read_bytes())
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.decode() == "mptcpspec: error: -2 reads the file twice: standard input is not a regular file\n"
    r = _run_bytes("replay", "-r", "-", "--target", "192.0.2.1", stdin=SMALL.read_bytes())
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.decode() == (
        "mptcpspec: error: -r -: replay reads the capture more than once; save standard input to a file\n"
    )
    r = _run_bytes("dissect", "-r", "-", stdin=b"")
    assert (r.returncode, r.stdout, r.stderr.decode()) == (
        3,
        b"",
        "mptcpspec: error: -: an empty file, not a capture\n",
    )


# ---------------------------------------------------------------------------- pipes, record by record


def _records_appear_one_by_one(chunks: list[bytes], first_frame_chunk: int, extra: list[str]) -> list[float]:
    """Write ``chunks`` to the dissector's standard input one at a time; from chunk
    ``first_frame_chunk`` on each completes one frame, whose line must come out before the next
    chunk is written.  The delays, in seconds, between a frame's last octet and its line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mptcpspec", "dissect", "-r", "-", "-l", *extra, "-T", "fields", "-e", "frame.number"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    delays = []
    try:
        for k, chunk in enumerate(chunks):
            # A record in two writes with a pause between: a frame is not printed before it is whole.
            half = len(chunk) // 2
            proc.stdin.write(chunk[:half])
            proc.stdin.flush()
            if k >= first_frame_chunk:
                ready, _, _ = select.select([proc.stdout], [], [], 0.05)
                assert not ready, f"output before frame {k - first_frame_chunk + 1} was whole"
            proc.stdin.write(chunk[half:])
            proc.stdin.flush()
            if k < first_frame_chunk:
                continue
            sent = time.monotonic()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, f"frame {k - first_frame_chunk + 1} was not printed while the pipe stayed open"
            line = proc.stdout.readline().decode().strip()
            delays.append(time.monotonic() - sent)
            assert line == str(k - first_frame_chunk + 1)
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return delays


def test_a_pcap_pipe_is_printed_record_by_record():
    header, records = pcap_records(SMALL)
    delays = _records_appear_one_by_one([header, *records[:12]], 1, [])
    assert len(delays) == 12


def test_a_pcapng_pipe_is_printed_block_by_block(tmp_path):
    need_tshark()
    ng = tmp_path / "small.pcapng"
    subprocess.run(["tshark", "-r", str(SMALL), "-c", "12", "-w", str(ng)], check=True, capture_output=True)
    blocks = pcapng_blocks(ng.read_bytes())
    head = [b for b in blocks if struct.unpack_from("<I", b)[0] != 6]  # section header, interfaces...
    packets = [b for b in blocks if struct.unpack_from("<I", b)[0] == 6]
    assert blocks[: len(head)] == head and len(packets) == 12  # the non-packet blocks come first
    delays = _records_appear_one_by_one([b"".join(head), *packets], 1, [])
    assert len(delays) == 12


def test_a_gzip_pipe_is_printed_as_each_record_is_flushed():
    header, records = pcap_records(SMALL)
    z = zlib.compressobj(wbits=31)
    chunks = [z.compress(header) + z.flush(zlib.Z_SYNC_FLUSH)]
    chunks += [z.compress(r) + z.flush(zlib.Z_SYNC_FLUSH) for r in records[:8]]
    chunks[-1] += z.flush()  # the end of the member, with the last record
    delays = _records_appear_one_by_one(chunks, 1, [])
    assert len(delays) == 8


# ---------------------------------------------------------------------------- compressed files


@pytest.mark.parametrize("kind", COMPRESS)
@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
def test_a_compressed_capture_reads_as_the_capture(tmp_path, kind, path):
    blob = path.read_bytes()
    packed = COMPRESS[kind](blob)
    assert packed[:4].startswith(next(m for m, k in COMPRESSIONS.items() if k == kind))
    f = open_input(io.BytesIO(packed))
    assert f.compression == kind
    assert frames(f) == frames(io.BytesIO(blob))


@pytest.mark.parametrize("kind", COMPRESS)
def test_the_command_line_output_of_a_compressed_file_is_the_files(tmp_path, kind):
    z = tmp_path / f"capture.{kind}"  # named for the test only: compression is told by content
    z.write_bytes(COMPRESS[kind](SMALL.read_bytes()))
    for args in (FIELDS, ["-2", "-T", "fields", "-e", "frame.number", "-e", "mptcp.reinjected_in"], []):
        want, got = cli("dissect", "-r", str(SMALL), *args), cli("dissect", "-r", str(z), *args)
        assert got.returncode == 0 and got.stdout == want.stdout, got.stderr


@pytest.mark.parametrize("kind", COMPRESS)
def test_members_and_frames_one_after_another_read_as_one_file(kind):
    blob = SMALL.read_bytes()
    cut = 24 + 16 + 5000  # anywhere: the decompressed stream is one
    packed = COMPRESS[kind](blob[:cut]) + COMPRESS[kind](blob[cut:])
    assert frames(open_input(io.BytesIO(packed))) == frames(io.BytesIO(blob))


class _Trickle(io.BytesIO):
    """A stream that gives at most 70000 octets a read, as a pipe may."""

    def read1(self, n: int = -1) -> bytes:
        return super().read1(70000 if n < 0 else min(n, 70000))


def test_gzip_padding_after_the_last_member_is_ignored():
    blob = SMALL.read_bytes()
    assert frames(open_input(io.BytesIO(gzip.compress(blob) + b"\0" * 512))) == frames(io.BytesIO(blob))
    # padding that comes over several reads
    assert frames(open_input(_Trickle(gzip.compress(blob) + b"\0" * 200_000))) == frames(io.BytesIO(blob))


@pytest.mark.parametrize("kind", COMPRESS)
def test_a_compressed_file_cut_anywhere_reads_up_to_the_cut(kind):
    """Cut at every offset: the frames before the cut, whole, then CaptureError saying the stream
    is cut (or, before the first frame, the file is no capture yet); never another exception."""
    header, records = pcap_records(SMALL)
    blob = header + b"".join(records[:10])
    want = frames(io.BytesIO(blob))
    packed = COMPRESS[kind](blob)
    for n in range(len(packed)):
        reader = CaptureReader(open_input(io.BytesIO(packed[:n])))
        got = []
        with pytest.raises(CaptureError) as e:
            for r in reader:
                got.append((r.timestamp_ns, r.linktype, r.data, r.orig_len))
        whole = [g for g, w in zip(got, want) if g == w]
        assert len(whole) >= len(got) - 1, n  # at most the last one cut by the cut
        if got and got[-1] != want[len(got) - 1]:
            assert reader.problems, n
        msg = str(e.value)
        magic = [m for m, k in COMPRESSIONS.items() if k == kind][0]
        if n < len(magic):
            assert msg in (
                "an empty file, not a capture",
                f"too short to be a capture file: {n} octet{'s' if n > 1 else ''} ({packed[:n].hex(' ')})",
            )
        else:
            assert msg.startswith(f"the {kind} stream is cut short: it ends at compressed offset "), (n, msg)


@pytest.mark.parametrize("kind", COMPRESS)
def test_the_command_line_on_a_cut_compressed_file(tmp_path, kind):
    header, records = pcap_records(SMALL)
    # Members (gzip) or frames (zstd, lz4) of 8 records: one block of zstd or lz4 would hold the
    # whole capture, and nothing of a block comes out before all of it.
    blocks = [header] + [b"".join(records[k : k + 8]) for k in range(0, len(records), 8)]
    packed = b"".join(COMPRESS[kind](b) for b in blocks)
    f = tmp_path / "cut"
    f.write_bytes(packed[: len(packed) * 2 // 3])
    r = cli("dissect", "-r", str(f), "-T", "fields", "-e", "frame.number")
    assert r.returncode == ExitCode.DAMAGED and "Traceback" not in r.stderr
    printed = r.stdout.split()
    assert printed == [str(k) for k in range(1, len(printed) + 1)] and len(printed) > 20
    assert f"mptcpspec: {f}: the {kind} stream is cut short: it ends at compressed offset" in r.stderr
    assert f"(after {len(printed)} frames; the output covers the frames before it)" in r.stderr


def test_corrupt_gzip_data_reads_up_to_the_damage(tmp_path):
    header, records = pcap_records(SMALL)
    packed = bytearray(gzip.compress(header + b"".join(records), mtime=0))
    packed[len(packed) // 2] ^= 0xFF
    f = tmp_path / "corrupt.gz"
    f.write_bytes(bytes(packed))
    r = cli("dissect", "-r", str(f), "-T", "fields", "-e", "frame.number")
    assert r.returncode == ExitCode.DAMAGED and "Traceback" not in r.stderr
    assert f"mptcpspec: {f}: the gzip data is corrupt near compressed offset" in r.stderr


def test_a_gzip_crc_that_does_not_match_is_damage(tmp_path):
    packed = bytearray(gzip.compress(SMALL.read_bytes(), mtime=0))
    packed[-8] ^= 0x01  # the CRC-32 of the trailer
    with pytest.raises(CaptureError, match="the gzip data is corrupt"):
        frames(open_input(io.BytesIO(bytes(packed))))


@pytest.mark.parametrize("kind", COMPRESS)
def test_a_compressed_file_that_holds_no_capture(tmp_path, kind):
    f = tmp_path / "notes"
    f.write_bytes(COMPRESS[kind](b"# mptcpspec notes\n"))
    r = cli("dissect", "-r", str(f))
    assert (r.returncode, r.stdout) == (ExitCode.UNUSABLE, "")
    assert r.stderr == (
        f"mptcpspec: error: {f}: {kind}-compressed, but not a capture file inside (pcap or pcapng); "
        "it starts with 23 20 6d 70\n"
    )


def test_a_text_file_is_named_for_what_it_is(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("# mptcp notes\n")
    r = cli("dissect", "-r", str(f))
    assert (r.returncode, r.stdout) == (ExitCode.UNUSABLE, "")
    assert r.stderr == (
        f"mptcpspec: error: {f}: not a capture file (pcap, pcapng, or gzip/zstd/lz4 of one); "
        "it starts with 23 20 6d 70\n"
    )


@pytest.mark.parametrize("kind, module", [("zstd", "zstandard"), ("lz4", "lz4")])
def test_without_the_optional_module_the_message_says_what_to_install(tmp_path, kind, module):
    f = tmp_path / "capture"
    f.write_bytes(COMPRESS[kind](SMALL.read_bytes()))
    code = (
        f"import sys; sys.modules[{module!r}] = None; sys.modules['{module}.frame'] = None\n"
        "from mptcpspec.cli import main; sys.exit(main())"
    )
    r = subprocess.run([sys.executable, "-c", code, "dissect", "-r", str(f)], capture_output=True, text=True, cwd=ROOT)
    assert (r.returncode, r.stdout) == (ExitCode.UNUSABLE, "")
    assert r.stderr == (
        f"mptcpspec: error: {f}: {kind}-compressed: reading it needs the {module} module "
        "(pip install 'mptcpspec[compress]')\n"
    )


@settings(max_examples=300, deadline=None)
@given(magic=st.sampled_from(sorted(COMPRESSIONS)), rest=st.binary(max_size=400))
def test_any_octets_after_a_compression_magic_are_read_or_refused_cleanly(magic, rest):
    try:
        frames(open_input(io.BytesIO(magic + rest)))
    except CaptureError:
        pass


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(sorted(COMPRESS)), flips=st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_compressed_captures_with_flipped_octets_are_read_or_refused_cleanly(kind, flips):
    header, records = pcap_records(SMALL)
    packed = bytearray(COMPRESS[kind](header + b"".join(records[:6])))
    for at in flips:
        packed[at % len(packed)] ^= 0x5A
    try:
        frames(open_input(io.BytesIO(bytes(packed))))
    except CaptureError:
        pass


# ---------------------------------------------------------------------------- -c as tshark's


@pytest.mark.parametrize(
    "args",
    [
        ["-c", "25", "-Y", "tcp.len > 0"],
        ["-c", "3", "-Y", "tcp.len > 0"],
        ["-c", "40", "-Y", "mptcp.stream == 0 and tcp.stream == 1"],
        ["-c", "7"],
    ],
)
def test_count_is_frames_read_as_tsharks(args):
    tshark = need_tshark()
    theirs = subprocess.run(
        [tshark, "-r", str(SMALL), *args, "-T", "fields", "-e", "frame.number"], capture_output=True, text=True
    )
    ours = cli("dissect", "-r", str(SMALL), *args, "-T", "fields", "-e", "frame.number")
    assert ours.returncode == 0 and ours.stdout == theirs.stdout


def test_live_options_without_an_interface_are_a_usage_error():
    r = cli("dissect", "-r", str(SMALL), "-f", "tcp")
    assert (r.returncode, r.stderr) == (ExitCode.USAGE, "mptcpspec: error: -f set(s) a live capture: give -i IFACE\n")
    r = cli("dissect", "-r", str(SMALL), "-i", "lo")
    assert r.returncode == ExitCode.USAGE
    assert r.stderr == "mptcpspec: error: -r and -i cannot go together: read a file or capture live\n"


def test_standard_input_that_is_a_terminal_or_closed_is_not_a_traceback():
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "dissect", "-r", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ},
    )
    assert (r.returncode, r.stderr) == (ExitCode.UNUSABLE, "mptcpspec: error: -: an empty file, not a capture\n")
