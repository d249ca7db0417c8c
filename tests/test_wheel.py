"""An installed wheel works on its own: it carries spec/, decodes, and checks its generated code."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.fail(f"pip wheel failed: {r.stderr[-2000:]}")
    (whl,) = out.glob("mptcpspec-*.whl")
    site = out / "site"
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        z.extractall(site)
    return site, names


def test_wheel_contents(unpacked_wheel):
    _, names = unpacked_wheel
    for must in (
        "mptcpspec/spec/options.py",
        "mptcpspec/spec/tcp_options.py",
        "mptcpspec/codec/generated/options.py",
        "mptcpspec/codec/generated/tcp_options.py",
        "mptcpspec/codec/options.py",
        "mptcpspec/codec/crypto.py",
        "mptcpspec/replay/core.py",
        "mptcpspec/export/generated/mptcpspec.lua",
        "mptcpspec/export/generated/kaitai/mptcp_options.py",
    ):
        assert must in names
    assert not any(n.startswith("replay/") for n in names), "no top-level replay package in the wheel"
    assert not any(n.startswith(("lab/", "tests/")) for n in names), "the test lab and the tests stay out of the wheel"


def test_wheel_runs_alone(unpacked_wheel, tmp_path):
    site, _ = unpacked_wheel
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        "import mptcpspec, mptcpspec.codec.regen as r, mptcpspec.export.regen as x, sys; "
        "assert mptcpspec.__file__.startswith(sys.argv[1]), mptcpspec.__file__; "
        "assert str(r.default_spec_dir()).startswith(sys.argv[1]); "
        "assert x.regen(check=True) == []"
    )
    r = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "decode", "1e0c1001e47f01421b665a18"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0 and "token: 0xe47f0142" in r.stdout, r.stderr


def test_wheel_dissects_alone(unpacked_wheel, tmp_path):
    """The dissector, its display-filter grammar and the generated machines come with the wheel."""
    site, names = unpacked_wheel
    assert "mptcpspec/dissect/filter.lark" in names and "mptcpspec/codec/generated/closure.py" in names
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mptcpspec",
            "dissect",
            "-r",
            str(ROOT / "tests/data/v4-two-subflows.pcap"),
            "-Y",
            "mptcp.join.hmac.status == verified",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["7", "8"]
