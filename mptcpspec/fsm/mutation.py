"""Mutation report: remove each transition line in turn and see which check catches it.

A spec whose checks pass but would pass just as well without one of its lines does not show that
the line is needed. :func:`mutants` removes each transition line of a machine in turn (in
memory), reruns every check -- static (:mod:`~mptcpspec.fsm.static`), dynamic
(:mod:`~mptcpspec.fsm.explore`) and over all runs (:mod:`~mptcpspec.fsm.coverage`) -- and
records which ones fail. A line that no check misses has to say why it is in the spec anyway,
with a comment on the line itself::

    IDLE -> FAILED : rcv SYN_ACK / snd RST  @ "RFC 8684 Section 3.2"  # redundant: a middlebox strips MP_JOIN

``mptcpspec fsm check --mutations FILE`` prints the table of :func:`markdown`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mptcpspec.fsm.coverage import report as coverage_report
from mptcpspec.fsm.explore import run_checks
from mptcpspec.fsm.model import Machine, Transition
from mptcpspec.fsm.static import report as static_report

__all__ = ["Mutant", "failing", "findings", "markdown", "mutants", "transition_text", "without"]

#: The checks a removal can fail, in the order the report lists them. The dynamic "unspecified
#: reception" and "unspecified event" violations are the coverage check "unspecified receptions".
ORDER = (
    "deterministic",
    "reachable",
    "can finish",
    "deadlock",
    "cannot finish",
    "channel overflow",
    "calls enabled",
    "signals consumed",
    "unspecified receptions",
    "transitions taken",
)


@dataclass(frozen=True, slots=True)
class Mutant:
    """The machine without the transition of ``line``: the checks that fail, and the line's
    ``# redundant:`` reason if it has one."""

    line: int
    text: str
    caught_by: tuple[str, ...]
    redundant: str | None = None

    @property
    def verdict(self) -> str:
        """``caught``, ``redundant`` (not caught, and the line says why) or ``NOT CAUGHT``."""
        if self.caught_by:
            return "caught"
        return "redundant" if self.redundant is not None else "NOT CAUGHT"


def transition_text(t: Transition) -> str:
    """A transition line without its reference: ``M_ESTAB -> M_FIN_WAIT_1 : M_CLOSE / snd DATA_FIN``."""
    src = t.source or ("* except " + ", ".join(t.excepts) if t.excepts else "*")
    return f"{src} -> {t.target} : {t.label}"


def without(m: Machine, t: Transition) -> Machine:
    """``m`` with the transition line ``t`` (all the edges it expands to) removed."""
    return dataclasses.replace(
        m,
        transitions=tuple(x for x in m.transitions if x is not t),
        edges=tuple(e for e in m.edges if e.transition is not t),
    )


def findings(m: Machine) -> set[tuple[str, str]]:
    """Every finding of every check on ``m``, as (check name in :data:`ORDER`, what it says)."""
    found = {(r.name, p.message) for r in static_report(m) if not r.ok for p in r.problems}
    if m.checks:
        outcomes = run_checks(m)
        found |= {
            (v.kind, f"{o.scenario} [{o.mode}] {v.message}") for o in outcomes for v in o.violations if v.kind in ORDER
        }
        found |= {(r.name, p.message) for r in coverage_report(m, outcomes) if not r.ok for p in r.problems}
    return found


def _names(found: set[tuple[str, str]]) -> tuple[str, ...]:
    names = {name for name, _ in found}
    return tuple(n for n in ORDER if n in names)


def failing(m: Machine) -> tuple[str, ...]:
    """The names of the checks ``m`` fails, in :data:`ORDER`; empty when every check passes."""
    return _names(findings(m))


def mutants(m: Machine) -> list[Mutant]:
    """One :class:`Mutant` per transition line of ``m``, in file order. A removal is caught by the
    checks that find something in the mutant they do not find in ``m`` itself."""
    base = findings(m)
    return [
        Mutant(t.line, transition_text(t), _names(findings(without(m, t)) - base), t.redundant) for t in m.transitions
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(rows: list[Mutant]) -> list[str]:
    """The report as the lines of a Markdown table: line, transition, what catches its removal."""
    out = ["| line | transition removed | caught by |", "| ---: | --- | --- |"]
    for r in rows:
        if r.caught_by:
            verdict = ", ".join(r.caught_by)
        elif r.redundant is not None:
            verdict = "redundant: " + r.redundant
        else:
            verdict = "**NOT CAUGHT**"
        out.append(f"| {r.line} | `{_cell(r.text)}` | {_cell(verdict)} |")
    return out
