"""Checks over every run of every scenario together: what the spec declares but no run uses.

The dynamic checks of :mod:`mptcpspec.fsm.explore` look at one scenario at a time for a run that
goes wrong. These look at all the runs of all the ``check`` lines of a machine (in-order and
lossy) at once, for parts of the spec that no run needs:

* ``calls enabled``: a call a check lets an endpoint make, or any declared call, that no
  reachable state of that endpoint has a transition for;
* ``signals consumed``: a signal some run sends but no transition of any run takes (wherever it
  arrives it is dropped: ``discard``, or the receiver has finished);
* ``unspecified receptions``: a state that a run reaches with a signal at the head of its
  incoming channel, or with a call, timer or condition due, and that has no transition for it
  (for one of the values the scenario gives the guards). The scenario that found it reports it too,
  with its shortest run; here it is said once, at the state's line;
* ``transitions taken``: a transition line no run takes. A line whose comment says
  ``# redundant: why`` is exempt: the spec says why it is there although no check needs it.

Each finding names the file and line of what it is about and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mptcpspec.fsm.errors import Problem
from mptcpspec.fsm.explore import Outcome
from mptcpspec.fsm.model import Machine, Transition

__all__ = ["CoverageResult", "report", "taken_lines"]


@dataclass(frozen=True, slots=True)
class CoverageResult:
    """One check over all runs: its name, whether it passed, a one-line summary, the findings."""

    name: str
    ok: bool
    summary: str
    problems: tuple[Problem, ...] = ()


def _result(name: str, found: list[Problem], fine: str, bad: str) -> CoverageResult:
    return CoverageResult(name, not found, fine if not found else f"{len(found)} {bad}", tuple(found))


def taken_lines(m: Machine, outcomes: Sequence[Outcome]) -> set[int]:
    """The lines of the transitions that some run takes from some state."""
    taken = set().union(*(o.taken for o in outcomes)) if outcomes else set()
    index: dict[tuple[str, str], int] = {}
    lines = set()
    for e in m.edges:
        key = (e.source, e.trigger.text)
        k = index.get(key, 0)
        index[key] = k + 1
        if (e.source, e.trigger.text, k) in taken:
            lines.add(e.line)
    return lines


def _calls(m: Machine, outcomes: Sequence[Outcome]) -> list[Problem]:
    out = []
    declared = {loc.name: loc for loc in m.locals if loc.kind == "call"}
    granted: set[str] = set()
    for c in m.checks:
        runs = [o for o in outcomes if o.scenario == c.name]
        enabled = set().union(*(o.calls for o in runs)) if runs else set()
        for role, calls in (("A", c.calls_a), ("B", c.calls_b)):
            for call in calls:
                granted.add(call)
                if (role, call) in enabled:
                    continue
                loc = declared[call]
                handling = sorted({e.source for e in m.edges if e.trigger.text == call})
                where = f"only {', '.join(handling)} handle(s) it" if handling else "no state handles it"
                out.append(
                    Problem(
                        m.file,
                        loc.line,
                        loc.column,
                        f"call {call} is never enabled: check {c.name} lets {role} make it, but {role} reaches no "
                        f"state with a transition for it ({where})",
                    )
                )
    for name, loc in declared.items():
        if name not in granted:
            out.append(
                Problem(
                    m.file,
                    loc.line,
                    loc.column,
                    f"call {name} is never enabled: no check lets an endpoint make it (add it to a `calls` clause)",
                )
            )
    return out


def _signals(m: Machine, outcomes: Sequence[Outcome], taken: set[int]) -> list[Problem]:
    sent = set().union(*(o.sent for o in outcomes)) if outcomes else set()
    consumed = set().union(*(o.consumed for o in outcomes)) if outcomes else set()
    out = []
    for s in m.signals:
        if s.name not in sent or s.name in consumed:
            continue
        senders = sorted(
            {t.line for t in m.transitions if t.line in taken and any(a.text == f"snd {s.name}" for a in t.actions)}
        )
        receivers = sorted({e.source for e in m.edges if e.trigger.text == f"rcv {s.name}"})
        takers = (
            f"the transitions for it (in {', '.join(receivers)}) never see it"
            if receivers
            else "no transition takes it"
        )
        out.append(
            Problem(
                m.file,
                s.line,
                s.column,
                f"signal {s.name} is sent (line {', '.join(map(str, senders))}) but only ever dropped: {takers}; "
                "wherever it arrives it is "
                + ("discarded (`discard`)" if s.discard else "lost or arrives after the receiver finished"),
            )
        )
    return out


def _receptions(m: Machine, outcomes: Sequence[Outcome]) -> list[Problem]:
    first: dict[tuple[str, str, str], str] = {}
    for o in outcomes:
        for key in sorted(o.unspecified):
            first.setdefault(key, f"{o.scenario} [{o.mode}]")
    out = []
    for (state, event, values), where in sorted(first.items(), key=lambda kv: (m.state(kv[0][0]).line, kv[0][1:])):
        st = m.state(state)
        cond = f" with {values}" if values else ""
        happens = f"{event[4:]} arrives" if event.startswith("rcv ") else f"{event} is due"
        out.append(
            Problem(
                m.file,
                st.line,
                st.column,
                f"state {state} does not specify {event}{cond}: in check {where}, {happens} in {state} and no "
                "transition takes it (add one, a self-loop without actions to ignore it, or `discard` on the signal)",
            )
        )
    return out


def _dead_reason(m: Machine, t: Transition, outcomes: Sequence[Outcome]) -> str:
    reached = {s for o in outcomes for pair in o.pairs for s in pair}
    sources = [t.source] if t.source is not None else sorted({e.source for e in m.edges if e.transition is t})
    live = [s for s in sources if s in reached]
    if not live:
        return f"no run reaches {', '.join(sources) or 'its source state'}"
    sent = set().union(*(o.sent for o in outcomes)) if outcomes else set()
    trig = t.trigger
    if trig.kind == "rcv" and trig.name not in sent:
        return f"no run sends {trig.name}"
    if trig.kind == "call" and not any(trig.name in c.calls_a + c.calls_b for c in m.checks):
        return f"no check lets an endpoint call {trig.name}"
    why = f"while {' and '.join(g.text for g in t.guard)}" if t.guard else "there"
    return f"runs reach {', '.join(live)}, but none has {trig.text} {why}"


def _dead(m: Machine, outcomes: Sequence[Outcome], taken: set[int]) -> list[Problem]:
    return [
        Problem(
            m.file,
            t.line,
            t.column,
            f"no run takes this transition ({t.source or '*'} -> {t.target} : {t.label}): "
            f"{_dead_reason(m, t, outcomes)}; if it is needed anyway, say why with `# redundant: why` on its line",
        )
        for t in m.transitions
        if t.line not in taken and t.redundant is None
    ]


def report(m: Machine, outcomes: Sequence[Outcome]) -> list[CoverageResult]:
    """The four checks over ``outcomes``, every run of every ``check`` line of ``m``."""
    taken = taken_lines(m, outcomes)
    ncalls = sum(1 for loc in m.locals if loc.kind == "call")
    marked = sum(1 for t in m.transitions if t.redundant is not None)
    return [
        _result(
            "calls enabled",
            _calls(m, outcomes),
            f"all {ncalls} calls enabled in a reachable state",
            "call(s) never enabled",
        ),
        _result(
            "signals consumed",
            _signals(m, outcomes, taken),
            "every signal sent is taken by a transition somewhere",
            "signal(s) sent but only ever dropped",
        ),
        _result(
            "unspecified receptions",
            _receptions(m, outcomes),
            "every reachable state specifies what arrives and what is due",
            "unspecified (state, event) pair(s)",
        ),
        _result(
            "transitions taken",
            _dead(m, outcomes, taken),
            f"{sum(1 for t in m.transitions if t.line in taken)} of {len(m.transitions)} lines taken by some run"
            + (f", {marked} marked redundant" if marked else ""),
            "line(s) no run takes",
        ),
    ]
