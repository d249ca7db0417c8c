"""How the package installs without a C compiler (docs/install.md): pure Python, and it says so once in
the build's output; ``--version`` names the mode; ``dissect -T fields`` prints what the compiled package
prints.  The wheel is built from an sdist, as ``pip install mptcpspec-*.tar.gz`` builds it, so the sdist
is checked too: it carries what the compiled build needs.

The default (compiled) wheel is checked in tests/test_wheel.py.  A build whose compiler fails is still
tagged for its platform (setuptools settles the tag before it compiles); only a build that has nothing
to compile (``MPTCPSPEC_PURE=1`` or no Cython) makes a ``py3-none-any`` wheel.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT, unavailable
from tests.test_wheel import PURE_NOTE, build_env, mptcpspec, source_copy

#: The benchmark's 15 fields (bench/bench_dissect.py): those the compiled hot path writes itself.
FIELDS = (
    "frame.number tcp.stream tcp.srcport tcp.dstport tcp.len tcp.seq tcp.ack mptcp.stream "
    "tcp.options.mptcp.subtype tcp.options.mptcp.rawdataseqno tcp.options.mptcp.rawdataack "
    "tcp.options.mptcp.subflowseqno tcp.options.mptcp.datalvllen mptcp.dsn mptcp.ack"
).split()
CAPTURES = ("v4-two-subflows.pcap", "v4-checksum.pcap", "v4-reinjection.pcap")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    """The sdist of the repository as a clone has it, made by setuptools' build backend."""
    src = source_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("sdist")
    code = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src, capture_output=True, text=True, env=build_env())
    if r.returncode != 0:
        pytest.fail(f"the sdist was not built: {r.stderr[-3000:]}")
    (path,) = out.glob("mptcpspec-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def pure_wheel(sdist, tmp_path_factory):
    """The wheel pip builds from the sdist where the C compiler fails, unpacked: its folder, its file
    names, and pip's verbose output (where the build's own lines are)."""
    fails = shutil.which("false")
    if fails is None:
        unavailable("no `false` command to stand for a C compiler that fails")
    out = tmp_path_factory.mktemp("pure")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out), str(sdist)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=build_env(CC=fails, CXX=fails),
    )
    if r.returncode != 0:
        pytest.fail(f"pip wheel failed without a C compiler: {r.stdout[-3000:]}")
    (whl,) = out.glob("mptcpspec-*.whl")
    site = out / "site"
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        z.extractall(site)
    return site, names, r.stdout


def test_sdist_carries_the_sources_of_the_hot_path(sdist):
    with tarfile.open(sdist) as t:
        names = {n.partition("/")[2] for n in t.getnames()}
    for must in (
        "setup.py",
        "pyproject.toml",
        "mptcpspec/dissect/native.pyx",
        "mptcpspec/codec/generated/native_options.pxi",
        "mptcpspec/dissect/hotpath.py",
    ):
        assert must in names, must
    assert not [n for n in names if n.endswith((".so", ".pyd", ".o"))], "nothing compiled in the sdist"


def test_without_a_compiler_the_package_is_pure(pure_wheel):
    """No compiled module in the wheel, and the build says why once (the compiler failed)."""
    _, names, log = pure_wheel
    assert "mptcpspec/dissect/hotpath.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".dylib", ".dll"))]
    notes = [line.strip() for line in log.splitlines() if PURE_NOTE in line]
    assert len(notes) == 1, notes
    assert "CompileError" in notes[0] and "`mptcpspec --version` names the mode" in notes[0], notes[0]


def test_pure_package_names_its_mode(pure_wheel, tmp_path):
    site, _, _ = pure_wheel
    r = mptcpspec(site, ["--version"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("mptcpspec ") and r.stdout.endswith(
        " (pure Python: the compiled hot path was not built)\n"
    ), r.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import mptcpspec; print(mptcpspec.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**build_env(), "PYTHONPATH": str(site)},
    )
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr


@pytest.mark.parametrize("capture", CAPTURES)
def test_pure_package_prints_what_the_compiled_prints(pure_wheel, tmp_path, capture):
    """``dissect -T fields`` from the pure package and from the installed compiled one: the same."""
    site, _, _ = pure_wheel
    version = mptcpspec(None, ["--version"], tmp_path).stdout
    if not version.endswith(" (compiled hot path)\n"):
        unavailable(f"the installed package does not run the compiled hot path: {version.strip()}")
    args = ["dissect", "-r", str(DATA / capture), "-T", "fields", *(a for f in FIELDS for a in ("-e", f))]
    pure, compiled = mptcpspec(site, args, tmp_path), mptcpspec(None, args, tmp_path)
    assert pure.returncode == compiled.returncode == 0, pure.stderr + compiled.stderr
    assert pure.stdout.count("\n") > 50
    assert pure.stdout == compiled.stdout


def test_wheel_builds_configured():
    """pyproject.toml's [tool.cibuildwheel] builds what docs/install.md says, and its tests run: the
    compiled mode checked, tests/test_native.py but for tests that exist and need Wireshark's tools."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    assert config["build"] == ["cp311-*", "cp312-*", "cp313-*"] and "pp*" in config["skip"]
    archs = {platform: config[platform]["archs"] for platform in ("linux", "macos", "windows")}
    assert archs == {"linux": ["x86_64", "aarch64"], "macos": ["x86_64", "arm64"], "windows": ["AMD64"]}
    assert config["skip"] == ["pp*", "*-musllinux_aarch64"] and config["test-extras"] == ["test"]
    version, pytest_run = config["test-command"]
    assert "'(compiled hot path)' in v" in version and "'mptcpspec', '--version'" in version
    args = shlex.split(pytest_run)
    assert args[:3] == ["python", "-m", "pytest"] and "tests/test_native.py" in args
    left_out = re.findall(r"not (\w+)", args[args.index("-k") + 1])
    source = (ROOT / "tests" / "test_native.py").read_text()
    for name in left_out:
        assert re.search(rf"^def test_\w*{name}", source, re.M), f"-k leaves out {name}, which no test is"
    page = (ROOT / "docs" / "install.md").read_text()
    assert "`[tool.cibuildwheel]`" in page and "CPython 3.11, 3.12 and 3.13 (no PyPy)" in page
