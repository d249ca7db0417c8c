"""Pictures of a machine: Graphviz DOT text, SVG/PNG through Graphviz's ``dot``, Mermaid text.

Edges whose reference is the machine's own (the figure the machine transcribes) are drawn solid;
edges taken from elsewhere in the RFC text are dashed. A ``*`` line is drawn once, from a box
that stands for the states it covers.
"""

from __future__ import annotations

import shutil
import subprocess

from mptcpspec.errors import MptcpspecError
from mptcpspec.fsm.model import Machine, Transition

__all__ = ["FORMATS", "render", "to_dot", "to_mermaid", "to_image"]

FORMATS = ("dot", "svg", "png", "mermaid")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _trigger_line(t: Transition) -> str:
    out = t.trigger.text
    if t.guard:
        out += " [" + " and ".join(g.text for g in t.guard) + "]"
    return out


def _any_label(m: Machine, t: Transition) -> str:
    left_out = [*m.finals, *t.excepts]
    return "any state but " + ", ".join(left_out)


def _any_nodes(m: Machine) -> dict[tuple[str, ...], str]:
    nodes: dict[tuple[str, ...], str] = {}
    for t in m.transitions:
        if t.source is None and t.excepts not in nodes:
            nodes[t.excepts] = f"ANY_{len(nodes) + 1}"
    return nodes


def to_dot(m: Machine) -> str:
    """Graphviz DOT text of the machine."""
    title = f"{m.name}: {m.title}" if m.title else m.name
    if m.ref:
        title += f"\\n({m.ref})"
    kinds = {t.ref == m.ref for t in m.transitions}
    if m.ref and kinds == {True, False}:
        title += f"\\nsolid: drawn in {m.ref}; dashed: from the RFC text"
    lines = [
        f"digraph {m.name} {{",
        f'    graph [label="{title}", labelloc=t, fontname="Helvetica", fontsize=14, nodesep=0.5];',
        '    node [shape=box, style=rounded, fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=9];',
        '    __start [shape=point, width=0.12, label=""];',
    ]
    for s in m.states:
        attrs = ["peripheries=2"] if s.name in m.finals else []
        tip = f"tooltip={_q(s.doc)}" if s.doc else ""
        lines.append(f"    {s.name} [{', '.join(a for a in [*attrs, tip] if a)}];")
    anys = _any_nodes(m)
    for t in m.transitions:
        if t.source is None and anys[t.excepts]:
            node = anys.pop(t.excepts)
            lines.append(f'    {node} [label={_q(_any_label(m, t))}, shape=note, style="", fontsize=10];')
            anys[t.excepts] = ""
    any_name = _any_nodes(m)
    lines.append(f"    __start -> {m.initial};")
    # Parallel edges of one style become one edge with the labels stacked (self-loops stay legible).
    merged: dict[tuple[str, str, bool], list[str]] = {}
    for t in m.transitions:
        src = t.source if t.source is not None else any_name[t.excepts]
        label = "\n".join([_trigger_line(t)] + [("/ " if i == 0 else "") + a.text for i, a in enumerate(t.actions)])
        merged.setdefault((src, t.target, bool(m.ref) and t.ref != m.ref), []).append(label)
    for (src, target, dashed), labels in merged.items():
        text = "\n\n".join(labels)
        attrs = ["label=" + _q(text)]
        if dashed:
            attrs.append('style=dashed, color="#555555", fontcolor="#555555"')
        lines.append(f"    {src} -> {target} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Mermaid ends a transition label at '#' or ';'.
    return text.replace("#", "").replace(";", ",")


def to_mermaid(m: Machine) -> str:
    """Mermaid ``stateDiagram-v2`` text of the machine (for Markdown, e.g. the README)."""
    lines = ["stateDiagram-v2"]
    if m.title:
        title = f"{m.name}: {m.title}" + (f" ({m.ref})" if m.ref else "")
        lines.insert(0, "---\ntitle: " + _q(_mermaid_text(title)) + "\n---")
    anys = _any_nodes(m)
    for t in m.transitions:
        if t.source is None and t.excepts in anys and anys[t.excepts]:
            lines.append(f'    state "{_mermaid_text(_any_label(m, t))}" as {anys[t.excepts]}')
            anys[t.excepts] = ""
    any_name = _any_nodes(m)
    lines.append(f"    [*] --> {m.initial}")
    for t in m.transitions:
        src = t.source if t.source is not None else any_name[t.excepts]
        label = _trigger_line(t)
        if t.actions:
            label += " / " + ", ".join(a.text for a in t.actions)
        lines.append(f"    {src} --> {t.target} : {_mermaid_text(label)}")
    for f in m.finals:
        lines.append(f"    {f} --> [*]")
    return "\n".join(lines) + "\n"


def to_image(dot_text: str, fmt: str) -> bytes:
    """SVG or PNG bytes from DOT text, through Graphviz's ``dot`` program."""
    exe = shutil.which("dot")
    if exe is None:
        raise MptcpspecError(
            f"cannot make {fmt}: Graphviz's `dot` program is not installed "
            "(Debian: apt-get install graphviz); DOT and Mermaid text need nothing"
        )
    r = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=60)
    if r.returncode != 0:
        raise MptcpspecError(f"dot -T{fmt} failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def render(m: Machine, fmt: str) -> bytes:
    """The picture in ``fmt`` (one of :data:`FORMATS`) as bytes."""
    if fmt == "dot":
        return to_dot(m).encode()
    if fmt == "mermaid":
        return to_mermaid(m).encode()
    if fmt in ("svg", "png"):
        return to_image(to_dot(m), fmt)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
