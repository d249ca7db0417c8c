"""Static checks of one machine: determinism, reachability, every state can finish, hygiene.

:func:`report` gives one :class:`StaticResult` per property (for ``mptcpspec fsm check``);
:func:`problems` gives the same findings as file/line/column problems (errors and warnings),
which :func:`mptcpspec.fsm.parser.load` raises on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import combinations

from mptcpspec.fsm.errors import Problem
from mptcpspec.fsm.model import Edge, Machine

__all__ = ["StaticResult", "can_finish", "problems", "reachable", "report"]


@dataclass
class StaticResult:
    name: str
    ok: bool
    summary: str
    problems: list[Problem] = field(default_factory=list)


def reachable(m: Machine) -> set[str]:
    """States reachable from the initial state by any sequence of events."""
    succ: dict[str, set[str]] = {}
    for e in m.edges:
        succ.setdefault(e.source, set()).add(e.target)
    seen, todo = {m.initial}, deque([m.initial])
    while todo:
        for n in succ.get(todo.popleft(), ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def can_finish(m: Machine) -> set[str]:
    """States from which some sequence of events leads to a final state."""
    pred: dict[str, set[str]] = {}
    for e in m.edges:
        pred.setdefault(e.target, set()).add(e.source)
    seen, todo = set(m.finals), deque(m.finals)
    while todo:
        for p in pred.get(todo.popleft(), ()):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen


def _exclusive(a: Edge, b: Edge) -> bool:
    """Whether the guards of two edges can never hold together (one says g, the other not g)."""
    pa = {lit.name: lit.positive for lit in a.guard}
    return any(lit.name in pa and pa[lit.name] != lit.positive for lit in b.guard)


def _determinism(m: Machine) -> list[Problem]:
    out = []
    groups: dict[tuple[str, str], list[Edge]] = {}
    for e in m.edges:
        groups.setdefault((e.source, e.trigger.text), []).append(e)
    for (state, event), edges in groups.items():
        for a, b in combinations(edges, 2):
            if not _exclusive(a, b):
                first, second = sorted((a, b), key=lambda e: (e.line, e.column))
                where = "" if first.line != second.line else " (one `*` line)"
                out.append(
                    Problem(
                        m.file,
                        second.line,
                        second.column,
                        f"nondeterministic: in state {state}, {event!r} has the transition of line "
                        f"{first.line} and this one{where}, and no guard tells them apart",
                    )
                )
    return out


def _reachability(m: Machine) -> list[Problem]:
    seen = reachable(m)
    return [
        Problem(m.file, s.line, s.column, f"state {s.name} is unreachable from the initial state {m.initial}")
        for s in m.states
        if s.name not in seen
    ]


def _finishing(m: Machine) -> list[Problem]:
    ok, seen = can_finish(m), reachable(m)
    return [
        Problem(m.file, s.line, s.column, f"state {s.name} cannot reach a final state ({', '.join(m.finals)})")
        for s in m.states
        if s.name not in ok and s.name in seen
    ]


def _hygiene(m: Machine) -> list[Problem]:
    out = []
    used_signals = {e.trigger.name for e in m.edges if e.trigger.kind == "rcv"}
    used_signals |= {a.name for e in m.edges for a in e.actions if a.kind == "snd"}
    used_signals |= {s for c in m.checks for pair in c.piggyback for s in pair}
    for s in m.signals:
        if s.name not in used_signals:
            out.append(Problem(m.file, s.line, s.column, f"signal {s.name} is declared but never used", "warning"))
    used_locals = {e.trigger.name for e in m.edges if e.trigger.kind != "rcv"}
    for loc in m.locals:
        if loc.name not in used_locals:
            out.append(
                Problem(m.file, loc.line, loc.column, f"{loc.kind} {loc.name} is declared but never used", "warning")
            )
    used_guards = {lit.name for e in m.edges for lit in e.guard}
    for g in m.guards:
        if g.name not in used_guards:
            out.append(Problem(m.file, g.line, g.column, f"guard {g.name} is declared but never used", "warning"))
    used_actions = {a.name for e in m.edges for a in e.actions if a.kind == "do"}
    for a in m.effects:
        if a.name not in used_actions:
            out.append(Problem(m.file, a.line, a.column, f"action {a.name} is declared but never used", "warning"))
    for t in m.transitions:
        if t.ref is None:
            out.append(
                Problem(m.file, t.line, t.column, 'transition without an RFC reference (add @ "RFC ...")', "warning")
            )
        if t.source is not None and t.source in m.finals:
            pass  # leaving a final state is allowed (a machine may be restarted)
    for t in m.transitions:
        if t.source is None and not any(e.transition is t for e in m.edges):
            out.append(Problem(m.file, t.line, t.column, "`*` line that applies to no state", "warning"))
    return out


def report(m: Machine) -> list[StaticResult]:
    """One result per static property, in the order ``mptcpspec fsm check`` prints them."""
    n = len(m.states)
    det = _determinism(m)
    rea = _reachability(m)
    fin = _finishing(m)
    hyg = _hygiene(m)
    groups = len({(e.source, e.trigger.text) for e in m.edges})
    return [
        StaticResult(
            "deterministic",
            not det,
            f"{groups} (state, event) pairs, {len(m.edges)} transitions, guards tell every pair apart"
            if not det
            else f"{len(det)} ambiguous (state, event) pair(s)",
            det,
        ),
        StaticResult(
            "reachable",
            not rea,
            f"all {n} states reachable from {m.initial}" if not rea else f"{len(rea)} unreachable state(s)",
            rea,
        ),
        StaticResult(
            "can finish",
            not fin,
            f"every state can reach {', '.join(m.finals)}" if not fin else f"{len(fin)} dead-end state(s)",
            fin,
        ),
        StaticResult("hygiene", True, "no warnings" if not hyg else f"{len(hyg)} warning(s)", hyg),
    ]


def problems(m: Machine) -> list[Problem]:
    """Every static finding as a problem; errors first, each group in file order."""
    found = [p for r in report(m) for p in r.problems]
    return sorted(found, key=lambda p: (p.severity != "error", p.line, p.column))
