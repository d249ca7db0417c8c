"""When the draft changes: edit a copy of spec/, regenerate, and every output decodes the change.

The copy gains a hypothetical subtype 9 (MP_DEMO: a flags octet and a 32-bit value, length 8) and
MP_FASTCLOSE grows from 12 to 16 octets (a 32-bit field after the key).  ``mptcpspec regen --spec
--out`` then writes the Python codec, the .ksy files (compiled by the pinned Kaitai compiler) and
the Wireshark Lua plugin, and each one decodes a packet carrying both options, with the values
written into it.  The committed generated files no longer match the edited spec, so
``regen --check`` fails on it, as CI would.

A copy of the package with MP_PRIO's reserved bits split into a 2-bit ``level`` and one reserved
bit, regenerated in place, dissects the new field: ``mptcpspec dissect -e mptcpspec.mp_prio.level``
and ``-Y 'mptcpspec.mp_prio.level == 2'`` give what tshark gives with the copy's Lua plugin.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mptcpspec.codec.regen import default_spec_dir
from tests.conftest import need_ksc, need_tshark
from tests.test_tshark_options import write_synthetic

DEMO = """

MP_DEMO = OptionSpec(
    cls="MpDemo",
    name="MP_DEMO",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_DEMO,
    rfc="draft-example-mptcp-demo §2 (hypothetical)",
    doc="A hypothetical option: a flags octet and a 32-bit value.",
    schema=Struct(
        *_head(Subtype.MP_DEMO, "reserved" / Nibble * "Reserved, zero"),
        Require(this.length == 8, "length must be 8"),
        "flags" / Int8ub * "Demo flags",
        "value" / Int32ub * "Demo value",
        Terminated,
    ),
)
OPTIONS = OPTIONS + (MP_DEMO,)
"""

MP_DEMO = bytes.fromhex("1e08 90 a5 12345678".replace(" ", ""))
FASTCLOSE16 = bytes.fromhex("1e10 7000 0102030405060708 cafef00d".replace(" ", ""))
FASTCLOSE12 = bytes.fromhex("1e0c 7000 0102030405060708".replace(" ", ""))


LEVEL = (
    '"reserved" / BitsInteger(3) * "Reserved, zero",\n            "backup" / Flag * "B: the subflow is a backup path",',
    '"level" / BitsInteger(2) * "Priority level",\n            "reserved" / BitsInteger(1) * "Reserved, zero",\n'
    '            "backup" / Flag * "B: the subflow is a backup path",',
)
# MP_PRIO with level 2 and B (0x5 << 4 | 2 << 2 | 1), level 1 and address ID 7 (v0 form), level 0
PRIOS = [(0x10, "1e0359"), (0x10, "1e045407"), (0x10, "1e0350"), (0x10, "0101")]


def edit_spec(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    p = dst / "options.py"
    text = p.read_text()
    for old, new in [
        ("    MP_TCPRST = 0x8\n", "    MP_TCPRST = 0x8\n    MP_DEMO = 0x9\n"),
        (
            'Require(this.length == 12, "length must be 12"),\n        "receiver_key" / Int64ub * "Option receiver\'s 64-bit key",\n',  # noqa: E501
            'Require(this.length == 16, "length must be 16"),\n        "receiver_key" / Int64ub * "Option receiver\'s 64-bit key",\n'  # noqa: E501
            '        "detail" / Int32ub * "A new 32-bit field",\n',
        ),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    p.write_text(text + DEMO)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    need_ksc()
    root = tmp_path_factory.mktemp("draft")
    edit_spec(default_spec_dir(), root / "spec")
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "regen", "--spec", str(root / "spec"), "--out", str(root / "generated")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    for name in (
        "options.py",
        "mptcp_options.ksy",
        "tcp_options.ksy",
        "mptcpspec.lua",
        "kaitai/mptcp_options.py",
        "kaitai/tcp_options.py",
    ):
        assert (root / "generated" / name).is_file(), name
    return root


def test_committed_code_is_stale_for_the_edited_spec(regenerated):
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "regen", "--check", "--spec", str(regenerated / "spec")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert "generated code is stale" in r.stderr and "options.py" in r.stderr and "mptcpspec.lua" in r.stderr
    assert "specfields.py" in r.stderr  # the dissector's fields of spec/ follow the draft too


def test_python_codec(regenerated):
    spec = importlib.util.spec_from_file_location("draft_options", regenerated / "generated" / "options.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["draft_options"] = mod  # dataclasses look their module up while the module runs
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules["draft_options"]
    demo = mod.decode(MP_DEMO, 0, len(MP_DEMO))
    assert type(demo).__name__ == "MpDemo" and demo.SUBTYPE == mod.Subtype.MP_DEMO == 9
    assert (demo.reserved, demo.flags, demo.value) == (0, 0xA5, 0x12345678)
    assert mod.ENCODERS[type(demo)](demo) == MP_DEMO
    fc = mod.decode(FASTCLOSE16, 0, len(FASTCLOSE16))
    assert (fc.receiver_key, fc.detail) == (0x0102030405060708, 0xCAFEF00D)
    with pytest.raises(mod.DecodeError, match="length must be 16"):
        mod.decode(FASTCLOSE12, 0, len(FASTCLOSE12))


def test_kaitai_parser(regenerated):
    import kaitaistruct
    from kaitaistruct import BytesIO, KaitaiStream

    from mptcpspec.export.kaitai import load

    k = load(regenerated / "generated" / "kaitai")
    demo = k.MptcpOptions(KaitaiStream(BytesIO(MP_DEMO)))
    assert demo.option.format == "mp_demo"
    assert (demo.option.body.flags, demo.option.body.value) == (0xA5, 0x12345678)
    fc = k.MptcpOptions(KaitaiStream(BytesIO(FASTCLOSE16)))
    assert (fc.option.body.receiver_key, fc.option.body.detail) == (0x0102030405060708, 0xCAFEF00D)
    with pytest.raises(kaitaistruct.ValidationExprError, match="mp_fastclose"):
        k.MptcpOptions(KaitaiStream(BytesIO(FASTCLOSE12)))
    # The whole options area, as a TCP header carries it.
    area = k.TcpOptions(KaitaiStream(BytesIO(bytes([1, 1]) + MP_DEMO + FASTCLOSE16)))
    assert [o.body.format for o in area.options if o.kind == 30] == ["mp_demo", "mp_fastclose"]


def test_wireshark_plugin(regenerated, tmp_path):
    tshark = need_tshark()
    pcap = tmp_path / "draft.pcap"
    write_synthetic(pcap, [(0x10, (bytes([1, 1]) + MP_DEMO + FASTCLOSE16).hex())])
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    r = subprocess.run(
        [
            tshark,
            "-n",
            "-X",
            f"lua_script:{regenerated / 'generated' / 'mptcpspec.lua'}",
            "-r",
            str(pcap),
            "-Y",
            "mptcpspec",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-e",
            "mptcpspec.format",
            "-e",
            "mptcpspec.subtype",
            "-e",
            "mptcpspec.mp_demo.flags",
            "-e",
            "mptcpspec.mp_demo.value",
            "-e",
            "mptcpspec.mp_fastclose.receiver_key",
            "-e",
            "mptcpspec.mp_fastclose.detail",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0 and "Lua: Error" not in r.stderr, r.stderr
    fmt, sub, flags, value, key, detail = r.stdout.rstrip("\n").split("\t")
    assert fmt == "mp_demo,mp_fastclose" and sub == "0x09,0x07"
    assert tuple(int(x, 0) for x in (flags, value, key, detail)) == (0xA5, 0x12345678, 0x0102030405060708, 0xCAFEF00D)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    """The package and spec/ copied, MP_PRIO given a level, regenerated in place."""
    root = tmp_path_factory.mktemp("draft-package")
    package = Path(__file__).resolve().parents[1] / "mptcpspec"
    shutil.copytree(package, root / "mptcpspec", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(default_spec_dir(), root / "spec", ignore=shutil.ignore_patterns("__pycache__"))
    p = root / "spec" / "options.py"
    text = p.read_text()
    assert text.count(LEVEL[0]) == 1
    p.write_text(text.replace(LEVEL[0], LEVEL[1]))
    r = run_copy(root, "regen")
    assert r.returncode == 0, r.stderr
    assert "regenerated" in r.stdout + r.stderr
    return root


def run_copy(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "mptcpspec", *args], capture_output=True, text=True, env=env, cwd=root)


def test_dissector_fields_follow_the_draft(package_copy, tmp_path):
    pcap = tmp_path / "prio.pcap"
    write_synthetic(pcap, PRIOS)
    r = run_copy(package_copy, "dissect", "--list-fields")
    assert r.returncode == 0, r.stderr
    assert "mptcpspec.mp_prio.level\tspec\tPriority level" in r.stdout.splitlines()
    fields = ["frame.number", "mptcpspec.mp_prio.level", "mptcpspec.mp_prio.reserved", "mptcpspec.mp_prio.backup"]
    args = ["-r", str(pcap), "-T", "fields", *[a for f in fields for a in ("-e", f)]]
    r = run_copy(package_copy, "dissect", *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1\t2\t0\t1", "2\t1\t0\t0", "3\t0\t0\t0", "4\t\t\t"]
    r = run_copy(
        package_copy,
        "dissect",
        "-r",
        str(pcap),
        "-Y",
        "mptcpspec.mp_prio.level == 1",
        "-T",
        "fields",
        "-e",
        "frame.number",
    )
    assert r.returncode == 0 and r.stdout.split() == ["2"], r.stderr
    # the same as tshark with the copy's plugin
    tshark = need_tshark()
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    plugin = package_copy / "mptcpspec" / "export" / "generated" / "mptcpspec.lua"
    for extra in ([], ["-Y", "mptcpspec.mp_prio.level == 1"], ["-Y", "mptcpspec.mp_prio.level >= 1"]):
        theirs = subprocess.run(
            [tshark, "-n", "-X", f"lua_script:{plugin}", *args, *extra], capture_output=True, text=True, env=env
        )
        assert theirs.returncode == 0 and "Lua: Error" not in theirs.stderr, theirs.stderr
        ours = run_copy(package_copy, "dissect", *args, *extra)
        assert ours.stdout == theirs.stdout, extra
    # the package as committed has no such field
    r = subprocess.run([sys.executable, "-m", "mptcpspec", "dissect", *args], capture_output=True, text=True)
    assert r.returncode == 2 and "mptcpspec.mp_prio.level" in r.stderr
