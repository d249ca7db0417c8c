"""When the draft changes: edit a copy of spec/, regenerate, and every output decodes the change.

The copy gains a hypothetical subtype 9 (MP_DEMO: a flags octet and a 32-bit value, length 8) and
MP_FASTCLOSE grows from 12 to 16 octets (a 32-bit field after the key).  ``mptcpspec regen --spec
--out`` then writes the Python codec, the .ksy files (compiled by the pinned Kaitai compiler) and
the Wireshark Lua plugin, and each one decodes a packet carrying both options, with the values
written into it.  The committed generated files no longer match the edited spec, so
``regen --check`` fails on it, as CI would.
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
