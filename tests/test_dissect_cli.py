"""`mptcpspec dissect` and `mptcpspec connections` as commands: output formats, exit codes, bad
options and unusable files."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from mptcpspec.cli.exitcode import ExitCode
from tests.conftest import DATA, ROOT
from tests.dissect_helpers import cli


def test_cli_fields_header_and_separator():
    r = cli(
        "dissect",
        "-r",
        str(DATA / "v4-two-subflows.pcap"),
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "mptcp.stream",
        "-e",
        "tcp.options.mptcp.subtype",
        "-E",
        "header=y",
        "-E",
        "separator=,",
        "-c",
        "3",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["frame.number,mptcp.stream,tcp.options.mptcp.subtype", "1,,0", "2,0,0", "3,0,0"]


def test_cli_fields_bom_as_tshark():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mptcpspec",
            "dissect",
            "-r",
            str(DATA / "v4-two-subflows.pcap"),
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-E",
            "bom=y",
            "-c",
            "2",
        ],
        capture_output=True,
        cwd=ROOT,
    )
    assert r.returncode == 0 and r.stdout == b"\xef\xbb\xbf1\n2\n"  # what tshark -E bom=y prints


def test_cli_json_one_object_per_packet():
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-T", "json", "-Y", "tcp.options.mptcp.subtype == 3")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(objs) == 2  # the ADD_ADDR and its echo
    assert objs[0]["mptcp"]["checks"][0]["verdict"] == "verified"


@pytest.mark.parametrize(
    "args, why",
    [
        (["-T", "fields", "-e", "frame.number", "-E", "quote=x"], "quote is d, s or n"),
        (["-T", "fields", "-e", "frame.number", "-E", "occurrence=x"], "occurrence is f, l, a or an occurrence number"),
        (["-T", "fields", "-e", "frame.number", "-E", "header=x"], "header is y or n"),
        (["-e", "frame.number"], "-T fields was not"),
    ],
)
def test_cli_bad_output_options_are_usage_errors(args, why):
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), *args)
    assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr and not r.stdout


def test_cli_unknown_field_and_missing_file():
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-T", "fields", "-e", "mptcp.nope")
    assert r.returncode == 2 and "unknown field" in r.stderr and "(see --list-fields)" in r.stderr
    r = cli("dissect", "-r", str(DATA / "nope.pcap"))
    assert r.returncode == 3 and "no such file" in r.stderr


@pytest.mark.parametrize("blob, code", [(b"", 3), (b"garbage that is no capture", 3)])
def test_cli_unusable_files(tmp_path, blob, code):
    f = tmp_path / "bad.pcap"
    f.write_bytes(blob)
    r = cli("dissect", "-r", str(f))
    assert r.returncode == code and "Traceback" not in r.stderr and r.stderr.startswith("mptcpspec: error:")


def test_cli_truncated_file_gives_partial_output_and_status_1(tmp_path):
    blob = (DATA / "v4-fastclose.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(blob[: len(blob) // 2])
    r = cli("dissect", "-r", str(cut), "-T", "fields", "-e", "frame.number")
    assert r.returncode == 1 and "ends inside" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stdout.splitlines()) >= 20


def test_cli_connections_json():
    r = cli("connections", "-r", str(DATA / "v4-two-subflows.pcap"), "--json")
    assert r.returncode == 0, r.stderr
    (c,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert c["version"] == 1 and len(c["subflows"]) == 2 and c["client_bytes"] == 32768
    assert {x["what"] for x in c["checks"]} >= {"MP_JOIN ACK HMAC (v1)"}


def test_cli_text_has_tree_and_expert_summary():
    r = cli("dissect", "-r", str(DATA / "v4-fastclose.pcap"))
    assert r.returncode == 0, r.stderr
    assert "Multipath TCP MP_FASTCLOSE (subtype 0x7)" in r.stdout
    assert "[Check: MP_FASTCLOSE key: VERIFIED]" in r.stdout
    assert "note           1  mptcp.tcprst" in r.stdout


def test_frames_of_a_link_type_not_supported_are_named(tmp_path):
    blob = bytearray((DATA / "v4-two-subflows.pcap").read_bytes())
    struct.pack_into("<I", blob, 20, 147)  # LINKTYPE_USER0
    f = tmp_path / "user0.pcap"
    f.write_bytes(bytes(blob))
    for args in (["dissect", "-r", str(f), "-c", "3"], ["connections", "-r", str(f)]):
        r = cli(*args)
        assert r.returncode == ExitCode.UNDECODED == 4 and "Traceback" not in r.stderr
        n = "3 frames" if "-c" in args else "119 frames"
        assert f"{f}: {n} of link type 147 (USER0), which is not decoded: counted, not dissected" in r.stderr


def test_cli_two_passes_over_a_damaged_file_and_bad_inputs(tmp_path):
    # framing damaged at record 31: both passes stop there, the output before it is printed, status 1
    blob = bytearray((DATA / "v4-two-subflows.pcap").read_bytes())
    off = 24
    for _ in range(30):
        off += 16 + struct.unpack_from("<I", blob, off + 8)[0]
    struct.pack_into("<I", blob, off + 8, 0x7FFFFFFF)
    bad = tmp_path / "damaged.pcap"
    bad.write_bytes(bytes(blob))
    for extra in ([], ["-2"]):
        r = cli("dissect", *extra, "-r", str(bad), "-T", "fields", "-e", "frame.number")
        assert r.returncode == 1 and r.stdout.split() == [str(n) for n in range(1, 31)], (extra, r.stderr)
    # a file that cannot be read: no --follow files left behind
    r = cli("dissect", "-r", str(tmp_path / "missing.pcap"), "-q", "--follow", "0", "--follow-dir", str(tmp_path / "f"))
    assert r.returncode == 3 and list((tmp_path / "f").iterdir()) == []
    r = cli("dissect", "-r", str(DATA / "v4-tfo.pcap"), "-T", "fields", "-e", "frame.number", "-E", "occurrence=--1")
    assert r.returncode == 2 and "occurrence is" in r.stderr and "Traceback" not in r.stderr
