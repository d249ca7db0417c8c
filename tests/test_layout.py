"""The package keeps its architecture: wings import only downward, modules and classes stay small,
and no module reaches into another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: wing -> rank; a module may import its own wing and wings of a lower rank (replay, stats and plot,
#: export and capture share a rank and do not import each other).
RANKS = {
    "cli": 8,
    "replay": 7,
    "stats": 7,
    "plot": 7,
    "pair": 6,
    "tables": 6,
    "dissect": 5,
    "analysis": 4,
    "export": 3,
    "capture": 3,
    "codec": 2,
    "fsm": 1,
    "errors": 0,
    "records": 0,
    "spec": 0,
}
MAX_MODULE_LINES = 800
MAX_CLASS_LINES = 300


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every hand-written module of the installed package layout."""
    out = {}
    for base, prefix in ((ROOT / "mptcpspec", "mptcpspec"), (ROOT / "replay", "mptcpspec.replay")):
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            if "generated" in rel.parts:
                continue
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([prefix, *parts])] = path
    return out


MODULES = _modules()


def _wing(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mptcpspec" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in RANKS else None


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in a file, at any depth (lazy imports count)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
    return out


def test_every_wing_is_a_package():
    wings = ("cli", "replay", "stats", "plot", "pair", "tables", "dissect", "analysis", "export", "capture", "codec")
    for wing in (*wings, "fsm"):
        assert f"mptcpspec.{wing}" in MODULES, wing


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module):
    here = _wing(module)
    if here is None:
        return
    wrong = []
    for line, target, _ in _imports(MODULES[module]):
        there = _wing(target)
        if there is None or there == here:
            continue
        if RANKS[there] >= RANKS[here]:
            wrong.append(f"line {line}: {target}")
    assert not wrong, f"{module} ({here}) imports at its level or above: {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_across_modules(module):
    wrong = []
    for line, target, names in _imports(MODULES[module]):
        if not target.startswith("mptcpspec") or target == module:
            continue
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private or any(p.startswith("_") for p in target.split(".")):
            wrong.append(f"line {line}: from {target} import {', '.join(private) or '...'}")
    assert not wrong, f"{module} imports private names: {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_sizes(module):
    path = MODULES[module]
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{module}: {text.count(chr(10))} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            n = node.end_lineno - node.lineno + 1
            assert n <= MAX_CLASS_LINES, f"{module}.{node.name}: {n} lines"


def test_no_top_level_replay_import():
    """replay/ is installed as mptcpspec.replay: nothing imports a top-level ``replay``."""
    for tree in ("mptcpspec", "replay", "tests", "bench", "lab"):
        for path in (ROOT / tree).rglob("*.py"):
            for line, target, _ in _imports(path):
                assert target.split(".")[0] != "replay", f"{path.relative_to(ROOT)}:{line} imports {target}"


def test_the_dissector_does_not_import_construct():
    """construct is the reference and the generators' tool: dissecting a capture never loads it."""
    import subprocess
    import sys

    code = "import sys, mptcpspec.dissect.fields, mptcpspec.cli.dissect; print('construct' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
