"""Test settings, paths, helpers and fixtures shared by every file.

With CI=true, hypothesis runs derandomized: the same generated inputs on every run, so a landing
is not decided by the luck of a random draw; the long-running fuzzer (`python3 -m tests.fuzz`) and
local runs keep exploring new inputs.

What a test needs from outside the repository, and what happens without it:

- the external capture corpus (captures of other stacks, kept beside the project, not in it): found
  through the environment variable ``MPTCPSPEC_CORPUS``; unset, the tests that read it skip and say
  why, with CI=true too.  Set to a folder without the corpus's ``tcpdump/``, the run stops at once.
- tools (tshark, editcap, the Kaitai compiler, ...) and the kernel lab (root, network namespaces;
  the ``lab_host`` fixture, or ``lab.need_lab`` for other tools): missing, their tests skip with
  the reason; with CI=true they fail instead, since CI provides them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

#: The repository.
ROOT = Path(__file__).resolve().parent.parent
#: The committed test data.
DATA = ROOT / "tests" / "data"
#: The lab's committed captures (see tests/data/README.md).
CAPTURES = tuple(sorted(DATA.glob("*.pcap")))

CORPUS_VARIABLE = "MPTCPSPEC_CORPUS"
CORPUS_UNSET = f"{CORPUS_VARIABLE} is not set: the external capture corpus is not available"


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(why: str, *, allow_module_level: bool = False) -> NoReturn:
    """Skip the test for want of ``why``; with CI=true fail instead: CI provides what tests need.

    With ``allow_module_level``, at a module's import: the whole module skips (fails with CI=true).
    """
    if in_ci():
        pytest.fail(f"{why} (CI=true: it must be available)")
    pytest.skip(why, allow_module_level=allow_module_level)


# --------------------------------------------------------------------------- the external corpus


def corpus_root() -> Path | None:
    """The external capture corpus named by ``MPTCPSPEC_CORPUS``, or None when it is not set."""
    value = os.environ.get(CORPUS_VARIABLE, "").strip()
    return Path(value) if value else None


def tcpdump_captures() -> list[Path] | None:
    """tcpdump's MPTCP test captures of the corpus (``tcpdump/*.pcap``), or None when it is not set."""
    root = corpus_root()
    return None if root is None else sorted((root / "tcpdump").glob("*.pcap"))


def corpus_params(*lead: object, prefix: str = "corpus-") -> list:
    """Parameters ``(*lead, path)`` for each of tcpdump's captures, with ids ``prefix + stem``.

    Without the corpus, one parameter ``(*lead, None)`` marked to skip, saying why.
    """
    files = tcpdump_captures()
    if files is None:
        return [corpus_unset(*lead, None)]
    return [pytest.param(*lead, p, id=f"{prefix}{p.stem}") for p in files]


def corpus_unset(*values: object) -> object:
    """A parameter ``values`` that stands for the corpus's captures when it is not set: it skips, saying why."""
    return pytest.param(*values, id="corpus-unset", marks=pytest.mark.skip(reason=CORPUS_UNSET))


def need_corpus() -> Path:
    """In a test: the folder of tcpdump's captures in the corpus; skips when the corpus is not set."""
    root = corpus_root()
    if root is None:
        pytest.skip(CORPUS_UNSET)
    return root / "tcpdump"


#: What marks a test file as one of the lab's (it starts namespaces, nftables tables, captures).
LAB_FILE = re.compile(r"^(?:from|import) lab\b|\blab_host\b|\brouter_pairs\b|\bneed_lab\b", re.M)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The groups ``pytest -n`` (pytest-xdist, ``--dist loadgroup``) keeps on one worker: every file's
    tests together (its module fixtures made once), and every lab file in one group, run one after
    the other (a lab test times packets, counts nftables drops and checks that nothing is left
    behind: two at once would see each other)."""
    lab: dict[Path, bool] = {}
    for item in items:
        path = Path(item.path)
        if path not in lab:
            lab[path] = bool(LAB_FILE.search(path.read_text()))
        item.add_marker(pytest.mark.xdist_group("lab" if lab[path] else path.stem))


def pytest_configure(config: pytest.Config) -> None:
    root = corpus_root()
    if root is not None and not (root / "tcpdump").is_dir():
        raise pytest.UsageError(
            f"{CORPUS_VARIABLE}={root}: {root / 'tcpdump'} is not a directory, so this is not the external "
            "capture corpus (the folder that holds tcpdump/); unset the variable to run without it"
        )


# --------------------------------------------------------------------------- tools


def need_tool(name: str, install: str) -> str:
    """In a test: the path of the program ``name``; skips (fails with CI=true) when it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed ({install})")
    return path


def need_wireshark(name: str = "tshark") -> str:
    """tshark, editcap, mergecap: the command-line tools of Wireshark."""
    return need_tool(name, "Debian: apt-get install tshark")


def need_tshark() -> str:
    return need_wireshark("tshark")


def need_ksc() -> list[str]:
    """The command that runs the pinned Kaitai Struct compiler (tools/ksc)."""
    from mptcpspec.export.ksc import find_ksc

    ksc = find_ksc()
    if ksc is None:
        unavailable("the Kaitai Struct compiler is not installed: npm ci --prefix tools/ksc")
    return ksc


# --------------------------------------------------------------------------- option areas


def walk_options(area: bytes) -> Iterator[tuple[int, int, bool]]:
    """(offset, length, usable) of each option of a TCP options area, by kind and length octets alone.

    The unusable tail of a broken area (a length that runs past the end, or below 2) comes last, whole.
    """
    i, n = 0, len(area)
    while i < n:
        k = area[i]
        if k in (0, 1):
            yield i, 1, True
            if k == 0:
                return
            i += 1
            continue
        if i + 1 >= n or area[i + 1] < 2 or i + area[i + 1] > n:
            yield i, n - i, False
            return
        yield i, area[i + 1], True
        i += area[i + 1]


# --------------------------------------------------------------------------- markdown pages (the README and docs/)

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
#: A command: ``$ ...``, or ``# mptcpspec ...`` as root (other lines that start with ``#`` are output).
PROMPT = re.compile(r"^(\$|#(?= mptcpspec )) (.*)$")


def commands(block: str) -> list[tuple[str, str, list[str]]]:
    """(prompt, command, expected output lines) for each prompt line of a console block."""
    out: list[tuple[str, str, list[str]]] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        m = PROMPT.match(lines[i])
        assert m, f"console block: output before any command: {lines[i]!r}"
        prompt, cmd = m.groups()
        while cmd.endswith("\\"):
            i += 1
            cmd = cmd[:-1] + lines[i].strip()
        i += 1
        expected = []
        while i < len(lines) and not PROMPT.match(lines[i]):
            expected.append(lines[i])
            i += 1
        out.append((prompt, cmd, expected))
    return out


def links(md: str) -> list[str]:
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", md))
    inline = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
    return inline + re.findall(r"^\[[^\]]+\]:\s*(\S+)", prose, re.M)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tcpdump_corpus() -> Path:
    """tcpdump's MPTCP test captures, each with the ``.out`` tcpdump's suite expects, in the corpus."""
    return need_corpus()


@pytest.fixture(scope="session")
def lab_host() -> None:
    """The kernel lab can run here (root, network namespaces, MPTCP, its tools); the test skips
    otherwise, and fails with CI=true."""
    from lab import need_lab

    need_lab()


# --------------------------------------------------------------------------- the lab's paired captures


@pytest.fixture(scope="session")
def router_pairs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Every scenario of ``lab.pairs`` (one connection captured at both ends through the lab's
    router), made once for the tests that read them: name -> (folder, facts)."""
    from lab import need_lab
    from lab.pairs import SCENARIOS, run

    need_lab()
    out = {}
    for name in SCENARIOS:
        folder = tmp_path_factory.mktemp(f"pair-{name}")
        out[name] = (folder, run(name, folder))
    return out
