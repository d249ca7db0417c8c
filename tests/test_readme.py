"""The README is a landing page: short, a tour of every command on the committed captures, links
into the manual, and the two commands that install and test.

Its examples run and print what they show, and its links resolve: tests/test_docs.py checks that
for the README as for every page of the manual.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from tests.conftest import FENCE, PROMPT, ROOT, commands, links

README = (ROOT / "README.md").read_text()


def test_readme_is_short():
    assert len(README.encode()) <= 12 * 1024


def test_install_and_test_commands():
    sh = [body for kind, body in FENCE.findall(README) if kind == "sh"]
    lines = [ln.strip() for body in sh for ln in body.splitlines()]
    assert "python3 -m pip install -e '.[test]'" in lines
    assert "python3 -m pytest -q" in lines
    # What the tests need from outside the clone is said.
    for needed in ("MPTCPSPEC_CORPUS", "root", "tshark"):
        assert needed in README, needed


def test_extras_named_are_the_packages():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = set(re.findall(r"\.\[(\w+)\]", README))
    assert {"kaitai", "test", "docs"} <= named
    assert named <= set(extras), named - set(extras)


def test_the_tour_shows_every_command():
    shown = set()
    for kind, body in FENCE.findall(README):
        if kind != "console":
            continue
        for _, cmd, _ in commands(body):
            args = shlex.split(cmd)
            if args[0] == "mptcpspec":
                shown.add(args[1])
                if "--follow" in args:
                    shown.add("follow")
    assert {"dissect", "connections", "follow", "replay", "export", "decode"} <= shown
    # The tour runs on the committed captures.
    assert all(
        Path(ROOT, a).exists()
        for body in (b for k, b in FENCE.findall(README) if k == "console")
        for line in body.splitlines()
        if PROMPT.match(line)
        for a in shlex.split(PROMPT.match(line).group(2))
        if a.startswith("tests/data/")
    )


def test_links_into_every_page_of_the_manual():
    config = (ROOT / "mkdocs.yml").read_text()
    nav = re.findall(r"^\s+- [^\n]*?(\S+\.md)\s*$", config[config.index("\nnav:") :], re.M)
    linked = {t.partition("#")[0] for t in links(README)}
    assert {f"docs/{p}" for p in nav} - {"docs/index.md"} <= linked
