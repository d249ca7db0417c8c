"""An installed wheel works on its own: it carries spec/ and every package, decodes, checks its
generated code, and runs the compiled hot path where a C compiler built it (docs/install.md).

The wheel is built, as pip builds one, from a copy of the repository as a clone has it: a build
folder or compiled module left in the work tree by an earlier build cannot slip into it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, unavailable

#: The line setup.py prints when it installs without the compiled hot path.
PURE_NOTE = "mptcpspec: installing the pure-Python package"
#: The compiled hot path's module, as a wheel names it (a .so on Linux and macOS, a .pyd on Windows).
#: the compiled modules a wheel carries: the hot path of -T fields and connections, dissect -j's first pass
NATIVE = (("mptcpspec/dissect/native.", "mptcpspec/dissect/firstpass."), (".so", ".pyd"))
#: The packages of the source tree, and where the wheel puts them.
PACKAGE_ROOTS = {"mptcpspec": "mptcpspec", "replay": "mptcpspec/replay", "spec": "mptcpspec/spec"}


def source_copy(dest: Path) -> Path:
    """The repository as a fresh clone has it, changes not yet committed included: the files git
    tracks and the new ones it does not ignore (no build/, no compiled module, no generated C)."""
    try:
        r = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        unavailable(f"git cannot list the repository's files ({e})")
    for name in r.stdout.decode().split("\0"):
        src = ROOT / name
        if name and src.is_file():  # a tracked file deleted in the work tree is left out
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def build_env(**extra: str) -> dict[str, str]:
    """The environment of a build: MPTCPSPEC_PURE unset (a default build), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "MPTCPSPEC_PURE"}
    return {**env, **extra}


def mptcpspec(site: Path | None, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m mptcpspec ARGS`` from the unpacked wheel at ``site`` (None: the installed package)."""
    env = build_env()
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "mptcpspec", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def have_c_compiler() -> bool:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return os.name == "nt" or shutil.which(cc.split()[0]) is not None


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory):
    """The default wheel, unpacked: its folder, its file names, and pip's verbose build output."""
    src = source_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out), str(src)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=build_env(),
    )
    if r.returncode != 0:
        pytest.fail(f"pip wheel failed: {r.stdout[-3000:]}")
    (whl,) = out.glob("mptcpspec-*.whl")
    site = out / "site"
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        z.extractall(site)
    return site, names, r.stdout


def test_wheel_contents(unpacked_wheel):
    _, names, _ = unpacked_wheel
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
    site, _, _ = unpacked_wheel
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
    site, names, _ = unpacked_wheel
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


def missing_modules(names: set[str]) -> list[str]:
    """The modules of the source tree's packages (its folders with an ``__init__.py``) not in ``names``."""
    missing = []
    for src, dest in PACKAGE_ROOTS.items():
        for init in sorted((ROOT / src).rglob("__init__.py")):
            for module in sorted(init.parent.glob("*.py")):
                name = f"{dest}/{module.relative_to(ROOT / src).as_posix()}"
                if name not in names:
                    missing.append(name)
    return missing


def test_wheel_has_every_package(unpacked_wheel):
    """pyproject.toml names the packages one by one, and one left out (mptcpspec.stats once) installs
    a package that breaks at its first import: every folder of mptcpspec/ with an ``__init__.py``, and
    replay/ and spec/ as mptcpspec.replay and mptcpspec.spec, is in the wheel with all its modules."""
    _, names, _ = unpacked_wheel
    assert missing_modules(names) == []
    assert "mptcpspec/stats/__init__.py" in missing_modules({n for n in names if not n.startswith("mptcpspec/stats/")})


def native_modules(names: set[str]) -> list[str]:
    """The wheel's compiled modules, which must be the hot path's and the first pass's alone; none: a
    compiler must be missing."""
    found = sorted(n for n in names if n.endswith((".so", ".pyd", ".dylib", ".dll")))
    assert all(n.startswith(NATIVE[0]) and n.endswith(NATIVE[1]) for n in found), found
    if not found and not have_c_compiler():
        unavailable("no C compiler: the wheel is pure Python (Debian: apt-get install gcc)")
    return found


def test_wheel_is_compiled(unpacked_wheel):
    """Where a C compiler exists, the default wheel carries the compiled modules (the hot path and
    dissect -j's first pass), is tagged for this interpreter and platform, and its build says
    nothing of a pure-Python install."""
    site, names, log = unpacked_wheel
    found = native_modules(names)
    assert [n.split(".")[0] for n in found] == ["mptcpspec/dissect/firstpass", "mptcpspec/dissect/native"], found
    (wheel_file,) = site.glob("mptcpspec-*.dist-info/WHEEL")
    meta = wheel_file.read_text()
    assert "Root-Is-Purelib: false" in meta and "Tag: py3-none-any" not in meta, meta
    assert PURE_NOTE not in log


def test_compiled_wheel_runs_without_its_sources(unpacked_wheel, tmp_path):
    """The compiled hot path needs none of its sources (.pyx, .pxi, the generated C) at run time:
    without them the wheel names the compiled mode and dissects as the installed package does."""
    site, names, _ = unpacked_wheel
    assert native_modules(names), "the compiled hot path is not in the wheel"
    alone = tmp_path / "site"
    shutil.copytree(site, alone, ignore=shutil.ignore_patterns("*.pyx", "*.pxi", "*.pxd", "*.c"))
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mptcpspec.dissect import hotpath, native; "
            "assert native.__file__.startswith(sys.argv[1]), native.__file__; print(hotpath.MODE)",
            str(alone),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**build_env(), "PYTHONPATH": str(alone)},
    )
    assert r.returncode == 0 and r.stdout == "compiled\n", r.stderr
    r = mptcpspec(alone, ["--version"], tmp_path)
    assert r.returncode == 0 and r.stdout.endswith(" (compiled hot path)\n"), r.stdout + r.stderr
    args = ["dissect", "-r", str(ROOT / "tests/data/v4-checksum.pcap"), "-T", "fields"]
    for field in ("frame.number", "tcp.stream", "mptcp.dsn", "mptcp.ack", "mptcp.dss.checksum"):
        args += ["-e", field]
    ours, installed = mptcpspec(alone, args, tmp_path), mptcpspec(None, args, tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == installed.stdout and ours.stdout.count("\n") > 100
