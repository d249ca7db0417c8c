"""One exit-status convention for every command (``mptcpspec.cli.exitcode.ExitCode``) and one message
for each way an input cannot be used: a missing file, a directory, a text file, an empty file, a
truncated capture, corrupt framing part way, and usage errors."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mptcpspec.cli import main
from mptcpspec.cli.common import CommandError, file_error, open_capture
from mptcpspec.cli.exitcode import ExitCode
from tests.conftest import DATA, ROOT

CAPTURE = DATA / "v4-two-subflows.pcap"

#: the commands that read a capture, each as a function of the capture's path
READERS = {
    "options": lambda p: ["options", "-r", p],
    "options --json": lambda p: ["options", "--json", "-r", p],
    "dissect": lambda p: ["dissect", "-r", p],
    "dissect -T fields": lambda p: ["dissect", "-r", p, "-T", "fields", "-e", "frame.number"],
    "dissect -2 -T json": lambda p: ["dissect", "-2", "-r", p, "-T", "json"],
    "dissect --follow": lambda p: ["dissect", "-r", p, "-q", "--follow", "0", "--follow-dir", str(Path(p).parent)],
    "connections": lambda p: ["connections", "-r", p],
    # the capture is read before anything is sent: these stop before any network action
    "replay": lambda p: ["replay", "-r", p, "--target", "198.51.100.2"],
    "replay --mode raw": lambda p: ["replay", "-r", p, "--mode", "raw", "--iface", "lo", "--target", "198.51.100.2"],
}
#: the commands that read a whole truncated capture without sending anything
NOT_REPLAYING = [c for c in READERS if not c.startswith("replay")]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    blob = CAPTURE.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(blob[: len(blob) // 2])  # ends inside a record
    # framing damaged at record 31: the 30 before it are read
    damaged = bytearray(blob)
    off = 24
    for _ in range(30):
        off += 16 + struct.unpack_from("<I", damaged, off + 8)[0]
    struct.pack_into("<I", damaged, off + 8, 0x7FFFFFFF)
    bad = tmp_path / "damaged.pcap"
    bad.write_bytes(bytes(damaged))
    folder = tmp_path / "folder"
    folder.mkdir()
    return {
        "missing": tmp_path / "missing.pcap",
        "text": text,
        "empty": empty,
        "cut": cut,
        "damaged": bad,
        "folder": folder,
    }


@pytest.mark.parametrize("command", READERS)
@pytest.mark.parametrize(
    "what, message",
    [
        ("missing", "{path}: no such file"),
        ("folder", "{path}: is a directory"),
        ("text", "{path}: not a capture file (pcap, pcapng, or gzip/zstd/lz4 of one); it starts with 6e 6f 74 20"),
        ("empty", "{path}: an empty file, not a capture"),
    ],
)
def test_an_unusable_capture_is_status_3_with_one_message(capsys, inputs, command, what, message):
    path = str(inputs[what])
    code, out, err = run(capsys, *READERS[command](path))
    assert code == ExitCode.UNUSABLE == 3
    assert out == "" and err == f"mptcpspec: error: {message.format(path=path)}\n"
    assert not list(inputs["missing"].parent.glob("mptcp-stream-*"))  # no --follow files for it


@pytest.mark.parametrize("command", NOT_REPLAYING)
def test_a_truncated_capture_is_read_up_to_the_cut_then_status_1(capsys, inputs, command):
    path = str(inputs["cut"])
    code, out, err = run(capsys, *READERS[command](path))
    assert code == ExitCode.DAMAGED == 1
    assert f"mptcpspec: {path}: the file ends inside record " in err and "Traceback" not in err
    assert "error:" not in err
    if command != "dissect --follow":
        assert out  # what was read is in the output


@pytest.mark.parametrize("command", READERS)
def test_corrupt_framing_part_way_is_status_1_after_the_frames_before_it(capsys, inputs, command):
    path = str(inputs["damaged"])
    code, out, err = run(capsys, *READERS[command](path))
    assert code == ExitCode.DAMAGED
    assert f"mptcpspec: {path}: pcap." in err
    assert "(after 30 frames; the output covers the frames before it)" in err
    if command == "dissect -T fields":
        assert out.split() == [str(n) for n in range(1, 31)]
    if command.startswith("replay"):  # the engine cannot read past the damage: not replayed
        assert out == "" and f"mptcpspec: {path}: not replayed: the capture is damaged part way\n" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="a packet socket needs root")
def test_a_truncated_capture_is_replayed_raw_up_to_the_cut_then_status_1(capsys, inputs):
    """As dissect: the frames read are sent (none here: no captured address is --target), then the
    cut is said and the status is 1."""
    path = str(inputs["cut"])
    code, out, err = run(capsys, "replay", "-r", path, "--mode", "raw", "--iface", "lo", "--target", "192.0.2.99")
    assert code == ExitCode.DAMAGED
    assert out.startswith("raw replay on lo: 0 packets") and "skipped" in out
    assert f"mptcpspec: {path}: the file ends inside record " in err and "error:" not in err


def test_raw_replay_blames_the_interface_for_its_errors(capsys):
    code, out, err = run(
        capsys, "replay", "-r", str(CAPTURE), "--mode", "raw", "--iface", "nosuch0", "--target", "192.0.2.99"
    )
    assert code == ExitCode.UNUSABLE and out == ""
    assert err.startswith("mptcpspec: error: nosuch0: ") or "CAP_NET_RAW" in err


def test_options_behaves_as_dissect(capsys, inputs):
    """The options list of a truncated file: the options read (the record cut short as a malformed
    packet), their count, then the damage."""
    code, out, err = run(capsys, "options", "-r", str(inputs["cut"]))
    lines = out.splitlines()
    assert code == 1 and lines[-1].endswith(" MPTCP option(s)") and int(lines[-1].split()[1]) > 10
    assert "malformed packet" in lines[-2]
    code, whole, _ = run(capsys, "options", "-r", str(CAPTURE))
    assert code == 0 and whole.splitlines()[: len(lines) - 2] == lines[:-2]


@pytest.mark.parametrize(
    "argv",
    [
        ["options"],
        ["options", "-r"],
        ["connections"],
        ["connections", "-r", str(CAPTURE), "--bogus"],
        ["dissect", "-r", str(CAPTURE), "-T", "xml"],
        ["decode"],
        ["fsm"],
        ["fsm", "dot", "spec/closure.fsm", "--format", "gif"],
        ["export", "ksy"],
        ["export", "pdf", "-o", "x"],
        ["regen", "--bogus"],
        ["replay", "-r", str(CAPTURE), "--target", "not an address"],
    ],
)
def test_argparse_usage_errors_are_status_2(capsys, argv):
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == ExitCode.USAGE == 2
    assert "usage: mptcpspec" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["dissect", "-T", "fields", "-e", "frame.number"],
            "-r FILE (or - for standard input) or -i IFACE is required",
        ),
        (["dissect", "-r", str(CAPTURE), "-T", "fields"], "-T fields needs at least one -e FIELD"),
        (["dissect", "-r", str(CAPTURE), "-T", "fields", "-e", "no.such"], "unknown field 'no.such'"),
        (["dissect", "-r", str(CAPTURE), "-Y", "tcp.len >"], "filter column 10"),
        (["dissect", "-r", str(CAPTURE), "-T", "fields", "-e", "frame.number", "-E", "bom=x"], "bom is y or n"),
        (["dissect", "-2", "-r", "/dev/null", "-T", "fields", "-e", "frame.number"], "is not a regular file"),
        (["decode", "xyz"], "not hexadecimal"),
        (["decode", ":"], "no octets given"),
    ],
)
def test_usage_errors_found_by_the_commands_are_status_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == ExitCode.USAGE and out == ""
    assert err.startswith("mptcpspec: error: ") and message in err and err.count("\n") <= 3


def test_fsm_inputs(capsys, inputs):
    for action in ("show", "dot", "check"):
        missing = str(inputs["missing"])
        assert run(capsys, "fsm", action, missing) == (3, "", f"mptcpspec: error: {missing}: no such file\n")
        binary = str(CAPTURE)
        assert run(capsys, "fsm", action, binary) == (3, "", f"mptcpspec: error: {binary}: not a text file\n")
        folder = str(inputs["folder"])
        assert run(capsys, "fsm", action, folder) == (3, "", f"mptcpspec: error: {folder}: is a directory\n")
        code, out, err = run(capsys, "fsm", action, str(inputs["text"]))  # a text file that is no machine
        assert code == ExitCode.DAMAGED and out == ""
        assert err.startswith(f"mptcpspec: error: {inputs['text']}:1:") and "syntax error" in err


@pytest.mark.parametrize("command", [["regen", "--check"], ["export", "ksy", "-o", "OUT"], ["export", "wireshark"]])
def test_spec_folder_inputs(capsys, inputs, tmp_path, command):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    if command[-1] == "wireshark":
        argv += ["-o", str(tmp_path / "out")]
    missing, text = str(inputs["missing"]), str(inputs["text"])
    assert run(capsys, *argv, "--spec", missing) == (3, "", f"mptcpspec: error: {missing}: no such folder\n")
    assert run(capsys, *argv, "--spec", text) == (3, "", f"mptcpspec: error: {text}: not a folder\n")
    # a folder without the spec's files: the spec has an error
    code, out, err = run(capsys, *argv, "--spec", str(inputs["folder"]))
    assert code == ExitCode.DAMAGED and out == "" and err.startswith("mptcpspec: error: ") and "is missing" in err


def test_export_to_a_folder_that_cannot_be_made(capsys, inputs):
    target = inputs["text"] / "out"  # below a file
    code, out, err = run(capsys, "export", "wireshark", "-o", str(target))
    assert code == ExitCode.UNUSABLE and out == ""
    assert err == f"mptcpspec: error: {target}: a part of the path is not a folder\n"


def test_decode_of_damaged_octets_is_status_1(capsys):
    code, out, err = run(capsys, "decode", "1e0c20")
    assert code == ExitCode.DAMAGED and out == "" and "runs past the end" in err


def test_permission_denied_is_status_3(capsys, monkeypatch):
    import mptcpspec.capture.stream as stream

    def refuse(path, mode="r"):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(stream, "open", refuse, raising=False)
    for command in ("options", "dissect", "connections"):
        assert run(capsys, command, "-r", str(CAPTURE)) == (3, "", f"mptcpspec: error: {CAPTURE}: permission denied\n")


def test_file_error_and_open_capture():
    assert file_error("f", FileNotFoundError(2, "x")) == "f: no such file"
    assert file_error(None, OSError(5, "Input/output error", "g")) == "g: Input/output error"
    with pytest.raises(CommandError) as ei:
        with open_capture(str(DATA / "README.md")) as f:
            from mptcpspec.capture.pcap import read_records

            list(read_records(f))
    assert ei.value.code == ExitCode.UNUSABLE and ei.value.message.startswith(
        f"{DATA / 'README.md'}: not a capture file"
    )


@pytest.mark.parametrize(
    "argv, code",
    [
        (["options", "-r", "missing.pcap"], 3),
        (["connections", "-r", "tests/data/README.md"], 3),
        (["replay", "-r", "tests/data/README.md", "--target", "198.51.100.2"], 3),
        (["replay", "-r", "tests", "--mode", "raw", "--iface", "lo", "--target", "198.51.100.2"], 3),
        (["options"], 2),
        (["fsm", "show", "spec/closure.fsm"], 0),
    ],
)
def test_the_process_exit_status(argv, code):
    r = subprocess.run([sys.executable, "-m", "mptcpspec", *argv], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == code and "Traceback" not in r.stderr
