"""The README and the manual (docs/, a MkDocs site) show what the code does.

On every page:

* each ```console block runs, in order, in a scratch folder that sees the repository's ``tests/``
  and ``spec/``: a ``$ mptcpspec ...`` command (and ``$ tshark ...`` where tshark is installed) must
  print exactly the lines under it, stdout and stderr as a terminal shows them; a line ``...``
  stands for any lines.  A command under the root prompt (``# mptcpspec ...``) needs root and the
  kernel lab (the replay): its output is a recorded run, not checked here, but the command must be one the command
  line accepts.  ```sh blocks are commands without output and do not run;
* each ```python block is a doctest;
* every relative link resolves (inside docs/ for a page of the manual, as MkDocs needs).

And: the field table is :data:`mptcpspec.dissect.fields.FIELDS`, the expert table
:data:`mptcpspec.analysis.expert.KINDS`, the Mermaid picture the closure machine of ``spec/``;
every page under docs/ is in the nav of mkdocs.yml; ``mkdocs build --strict`` passes.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import FENCE, ROOT, commands, links, unavailable

DOCS = ROOT / "docs"
PAGES = {
    p.relative_to(ROOT).as_posix(): p
    for p in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.rglob("*.md"))]
}


def text(page: str) -> str:
    return PAGES[page].read_text()


def blocks(page: str, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(text(page)) if kind == lang]


def pages_with(lang: str) -> list[str]:
    return [page for page in PAGES if blocks(page, lang)]


# --------------------------------------------------------------------------- console blocks


def matches(expected: list[str], got: str) -> bool:
    """The output is the expected lines, where a line ``...`` stands for any number of lines."""
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected)
    return re.fullmatch(pattern, got) is not None


def check_accepted(args: list[str]) -> None:
    """A command shown but not run: the command line must accept it as written."""
    from mptcpspec.cli import build_parser

    assert args[0] == "mptcpspec", f"only mptcpspec commands under the root prompt: {shlex.join(args)}"
    try:
        build_parser().parse_args(args[1:])
    except SystemExit as e:
        pytest.fail(f"the command line refuses {shlex.join(args)} (exit {e.code})")


def run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WIRESHARK_CONFIG_DIR": str(cwd / ".wireshark")}
    if args[0] == "mptcpspec":
        argv = [sys.executable, "-m", "mptcpspec", *args[1:]]
    else:
        argv = args
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env, timeout=120)
    # tshark's warning when it runs as root is not part of what it prints for anyone else.
    return re.sub(r'^Running as user "root" and group "root"\. This could be dangerous\.\n', "", r.stdout, flags=re.M)


@pytest.mark.parametrize("page", pages_with("console"))
def test_console_examples(page, tmp_path):
    for name in ("tests", "spec"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".wireshark").mkdir()
    not_run = []
    for block in blocks(page, "console"):
        for prompt, cmd, expected in commands(block):
            args = shlex.split(cmd)
            if prompt == "#":
                check_accepted(args)
                continue
            assert args[0] in ("mptcpspec", "tshark"), f"{page}: console blocks run mptcpspec and tshark: {cmd}"
            if args[0] == "tshark" and shutil.which("tshark") is None:
                not_run.append(cmd)
                continue
            got = run(args, tmp_path)
            assert matches(expected, got), f"{page}: $ {cmd}\n--- shown:\n" + "\n".join(expected) + "\n--- got:\n" + got
    if not_run:
        unavailable(f"tshark is not installed (Debian: apt-get install tshark); not run: {'; '.join(not_run)}")


def test_console_blocks_parse():
    """Every console block starts with a prompt, and every runnable mptcpspec example is in one."""
    n = 0
    for page in PAGES:
        for block in blocks(page, "console"):
            n += len(commands(block))
        for kind, body in FENCE.findall(text(page)):
            if kind != "console":
                assert not re.search(r"^\$ mptcpspec ", body, re.M), f"{page}: a `$ mptcpspec` example outside console"
    assert n >= 10


def test_ellipsis():
    assert matches(["a", "...", "d"], "a\nb\nc\nd\n")
    assert matches(["a", "...", "d"], "a\nd\n")
    assert not matches(["a", "...", "d"], "a\nb\n")
    assert not matches(["a", "b"], "a\nb\nc\n")


# --------------------------------------------------------------------------- python blocks


@pytest.mark.parametrize("page", pages_with("python"))
def test_python_examples(page, monkeypatch):
    monkeypatch.chdir(ROOT)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for i, block in enumerate(blocks(page, "python")):
        test = parser.get_doctest(block, {}, f"{page} python block {i}", page, 0)
        examples += len(test.examples)
        runner.run(test)
    assert runner.failures == 0
    assert examples, f"{page}: python blocks without a single `>>>` example"


# --------------------------------------------------------------------------- tables and pictures


def table(header: str) -> dict[str, list[str]]:
    """The rows of the one table of the manual under ``header``: first cell (unquoted) -> the rest."""
    found = [(page, t) for page in PAGES if header in (t := text(page))]
    assert len(found) == 1, f"the table {header!r} is on {len(found)} pages"
    page, t = found[0]
    rows = {}
    for line in t[t.index(header) :].splitlines()[2:]:
        if not line.startswith("|"):
            break
        first, *rest = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert first.startswith("`") and first.endswith("`"), f"{page}: {line}"
        assert first[1:-1] not in rows, f"{page}: twice: {line}"
        rows[first[1:-1]] = rest
    return rows


def test_field_table_is_the_code():
    from mptcpspec.dissect.fields import FIELDS

    ours = {n: [f.description] for n, f in FIELDS.items() if f.source not in ("wireshark", "spec")}
    assert table("| field | what |") == ours
    # the fields of spec/ are a family, documented by their pattern
    assert {f.source for f in FIELDS.values()} == {"wireshark", "mptcpspec", "spec"}
    page = text("docs/dissect.md")
    assert "### The fields of spec/" in page and "`mptcpspec.<format>.<field>`" in page
    assert all(n.startswith("mptcpspec.") for n, f in FIELDS.items() if f.source == "spec")


def test_expert_table_is_the_code():
    from mptcpspec.analysis.expert import KINDS

    kinds = {k: [sev.name.lower(), meaning] for k, (sev, meaning) in KINDS.items()}
    assert table("| key | severity | meaning |") == kinds


def test_mermaid_picture_is_the_spec():
    found = [b for page in PAGES for b in blocks(page, "mermaid")]
    assert len(found) == 1
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "fsm", "dot", "spec/closure.fsm", "--format", "mermaid"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert found[0].strip() == r.stdout.strip()


# --------------------------------------------------------------------------- links and the site


def slugs(md: str) -> set[str]:
    """The anchors of a page's headings, as GitHub and as MkDocs (Python-Markdown's toc) make them."""
    out = set()
    for title in re.findall(r"^#+ (.*)$", FENCE.sub("", md), re.M):
        title = re.sub(r"[`*]", "", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)).strip().lower()
        out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
        ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
        out.add(re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", ascii_title).strip()))
    return out


@pytest.mark.parametrize("page", list(PAGES))
def test_relative_links_resolve(page):
    src = PAGES[page]
    for target in links(src.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (src.parent / path).resolve() if path else src
        assert dest.exists(), f"{page}: broken link {target}"
        if src.is_relative_to(DOCS):
            assert dest.is_relative_to(DOCS), f"{page}: {target} is outside docs/ (MkDocs cannot follow it)"
        if anchor:
            assert dest.suffix == ".md" and anchor in slugs(dest.read_text()), f"{page}: no heading for {target}"


def test_every_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    nav = config[config.index("\nnav:") :]
    listed = re.findall(r"^\s+- (?:[^\n]*?: )?(\S+\.md)\s*$", nav, re.M)
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(listed) == pages


def test_site_builds_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        unavailable("mkdocs is not installed (python3 -m pip install '.[docs]')")
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "site" / "index.html").exists()
