"""The README's examples run and print what it says."""

from __future__ import annotations

import doctest
import re
import shlex
import subprocess
import sys

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_python_examples():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for i, block in enumerate(blocks):
        test = parser.get_doctest(block, {}, f"README python block {i}", "README.md", 0)
        runner.run(test)
    assert runner.failures == 0


def test_console_examples():
    blocks = re.findall(r"```console\n(.*?)```", README, re.S)
    assert blocks
    n = 0
    for block in blocks:
        for cmd, expected in re.findall(r"^\$ (.*)\n((?:(?!\$ ).*\n)*)", block, re.M):
            args = shlex.split(cmd)
            assert args[0] == "mptcpspec"
            r = subprocess.run([sys.executable, "-m", "mptcpspec", *args[1:]], capture_output=True, text=True, cwd=ROOT)
            assert (r.stdout + r.stderr) == expected, cmd
            n += 1
    assert n >= 2


def test_field_and_expert_tables_match_the_code():
    from mptcpspec.analysis.expert import KINDS
    from mptcpspec.dissect.fields import FIELDS

    for n, f in FIELDS.items():
        if f.source != "wireshark":
            assert f"| `{n}` | {f.description} |" in README, n
    for k, (sev, meaning) in KINDS.items():
        assert f"| `{k}` | {sev.name.lower()} | {meaning} |" in README, k


def test_mermaid_picture_is_the_spec():
    block = re.search(r"```mermaid\n(.*?)```", README, re.S).group(1)
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "fsm", "dot", "spec/closure.fsm", "--format", "mermaid"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert block.strip() == r.stdout.strip()
