"""What a command imports as it starts: only what its work needs.

Structural, not timed (the timings are in docs/performance.md): ``python -X importtime -m mptcpspec``
lists every module a run imports, and each case names modules that must not be among them.  The
capture is a committed one cut to its first frames: ten (the MP_CAPABLE handshake, data, an MP_JOIN
SYN and SYN/ACK, so keys are hashed and an HMAC checked), or one (a v1 MP_CAPABLE SYN, which carries
no key: nothing to hash).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import mptcpspec

DATA = Path(__file__).parent / "data"

#: The fields of the benchmark's -T fields run (bench/bench_dissect.py).
FIELDS = (
    "frame.number tcp.stream tcp.srcport tcp.dstport tcp.len tcp.seq tcp.ack mptcp.stream tcp.options.mptcp.subtype "
    "tcp.options.mptcp.rawdataseqno tcp.options.mptcp.rawdataack tcp.options.mptcp.subflowseqno "
    "tcp.options.mptcp.datalvllen mptcp.dsn mptcp.ack"
).split()

#: Never imported by a command that reads a capture without a filter, statistics, -j or a live capture:
#: the other commands, the filter grammar, the statistics, the replay, the generators, the workers.
NOT_FOR_READING = (
    "lark",
    "construct",
    "multiprocessing",
    "mptcpspec.cli.export",
    "mptcpspec.cli.fsm",
    "mptcpspec.cli.live",
    "mptcpspec.cli.replay",
    "mptcpspec.capture.live",
    "mptcpspec.codec.codegen",
    "mptcpspec.codec.reference",
    "mptcpspec.dissect.filters",
    "mptcpspec.dissect.optlist",
    "mptcpspec.dissect.parallel",
    "mptcpspec.export",
    "mptcpspec.fsm.parser",
    "mptcpspec.replay",
    "mptcpspec.stats",
)


def _cut(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` records of a classic pcap file, its header kept."""
    data = src.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "a little-endian microsecond pcap, as the committed captures are"
    p = 24
    for _ in range(frames):
        (size,) = struct.unpack_from("<I", data, p + 8)
        p += 16 + size
    assert p <= len(data)
    dst.write_bytes(data[:p])
    return dst


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("startup")
    src = DATA / "v4-two-subflows.pcap"
    return {"ten": _cut(src, folder / "ten.pcap", 10), "one": _cut(src, folder / "one.pcap", 1)}


def imported(*args: str, clean: bool = False) -> set[str]:
    """The modules ``python -m mptcpspec ARGS`` imports (the command must succeed).

    ``clean``: without the site start-up (``-S``), the folder that holds the package on the path:
    what an environment's ``.pth`` files import (an editable install's finder imports ``pathlib``)
    is not counted as the command's."""
    cmd = [sys.executable, "-X", "importtime", "-m", "mptcpspec", *args]
    env = dict(os.environ)
    if clean:
        cmd.insert(1, "-S")
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(mptcpspec.__file__).resolve().parent.parent), *filter(None, [env.get("PYTHONPATH")])]
        )
    r = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent,  # not the checkout's root, which -m would put first on the path
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first line is the header
    assert "mptcpspec" in names, "no module list: -X importtime printed nothing"
    return names


def test_the_list_is_read(captures: dict[str, Path]) -> None:
    """The check can fail: what the ten frames need is in the list (the analysis; hashlib and hmac for
    their keys and the MP_JOIN HMAC)."""
    names = imported("dissect", "-r", str(captures["ten"]))
    assert {"mptcpspec.analysis", "mptcpspec.dissect.writers", "hashlib", "hmac"} <= names


#: Not imported by reading a short capture as text, JSON or the connection table: the standard
#: library's slower modules that its work does not need (``dataclasses`` with ``inspect``: the
#: package's classes make their ``__init__`` themselves; ``pathlib``: no path is made) and
#: ``cryptography``, which the package does not use.
NOT_AT_START = ("dataclasses", "inspect", "ast", "pathlib", "cryptography")


@pytest.mark.parametrize("args", [("dissect",), ("dissect", "-T", "json"), ("connections",)], ids=" ".join)
def test_short_capture_start(captures: dict[str, Path], args: tuple[str, ...]) -> None:
    names = imported(*args[:1], "-r", str(captures["ten"]), *args[1:], clean=True)
    assert "hashlib" in names, "the keys are hashed: the list is the whole run's"
    assert not names & set(NOT_AT_START), sorted(names & set(NOT_AT_START))


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("dissect",), id="dissect"),
        pytest.param(("dissect", "-T", "fields", *(a for f in FIELDS for a in ("-e", f))), id="dissect-fields"),
        pytest.param(("dissect", "-T", "json"), id="dissect-json"),
        pytest.param(("connections",), id="connections"),
    ],
)
def test_reading_imports_no_other_command(captures: dict[str, Path], args: tuple[str, ...]) -> None:
    names = imported(*args[:1], "-r", str(captures["ten"]), *args[1:])
    assert not names & set(NOT_FOR_READING), sorted(names & set(NOT_FOR_READING))
    assert not {n for n in names if n.startswith(("mptcpspec.stats.", "mptcpspec.export.", "mptcpspec.replay."))}


@pytest.mark.parametrize("command", ["dissect", "connections"])
def test_nothing_to_hash_no_hashlib(captures: dict[str, Path], command: str) -> None:
    """A capture that gives no key to hash and no HMAC to check loads neither ``hashlib`` nor ``hmac``
    (nor OpenSSL's library, which ``hashlib`` loads)."""
    assert not imported(command, "-r", str(captures["one"])) & {"hashlib", "hmac", "_hashlib", "cryptography"}


def test_version_builds_no_command() -> None:
    """``--version`` is done before any command is looked at: no command's module is imported."""
    names = imported("--version")
    assert not {
        n
        for n in names
        if n.startswith("mptcpspec.cli.") and n not in ("mptcpspec.cli.common", "mptcpspec.cli.exitcode")
    }


def test_decode_reads_no_capture() -> None:
    """``decode`` takes octets: no capture module, no analysis, no hash, no other command."""
    names = imported("decode", "1e0c0081aabbccddeeff0011")
    unexpected = {
        n
        for n in names
        if n.startswith(("mptcpspec.capture", "mptcpspec.analysis", "mptcpspec.cli.dissect", "hashlib", "hmac"))
    }
    assert not unexpected, sorted(unexpected)


@pytest.mark.parametrize("args", [("dissect",), ("dissect", "-T", "json"), ("connections",)], ids=" ".join)
def test_no_field_table_without_fields(captures: dict[str, Path], args: tuple[str, ...]) -> None:
    """Text, JSON and the connection table use neither the field table nor --follow."""
    names = imported(*args[:1], "-r", str(captures["ten"]), *args[1:])
    assert not names & {"mptcpspec.dissect.fields", "mptcpspec.dissect.follow"}
