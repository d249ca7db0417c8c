"""Dynamic checks: two endpoints of one machine joined by channels, every interleaving explored.

Endpoint ``A`` and endpoint ``B`` each run the machine. Every ``snd X`` action puts a message on
the channel towards the other endpoint, which later takes it as ``rcv X``; channels are FIFO.
A scenario (a ``check`` line of the spec) says which calls each endpoint may make. From the initial
global state the explorer follows every possible move, breadth first, until no new global state
appears:

* an endpoint makes one of its calls, when its state has a transition for it (each call at most
  once per endpoint);
* a condition becomes true (any time, unless the scenario couples it, see below);
* a timer expires -- only when both channels are empty (a "perfect" timer: it never fires while
  the signal it guards or its acknowledgement is still in flight);
* an endpoint takes the message at the head of its incoming channel;
* in lossy mode, the channel loses any one of the messages in it.

Guards take the value the scenario assumes (true unless ``assume g false`` or ``assume g any``;
``any`` explores both). ``piggyback X on Y`` makes every ``Y`` an endpoint sends, once it has sent
``X`` before, carry ``X`` too (the receiver takes ``X`` first). ``COND when both did ACT...`` makes
the condition hold only once each endpoint has performed one of the actions. A ``reliable`` check
runs on the in-order channel only.

A received signal that the state has no transition for is:

* dropped when the signal is ``discard``, when the endpoint is in a final state (nothing left to
  process it) or when the endpoint has received the same signal before (a retransmission or a
  repeated cumulative acknowledgement);
* otherwise an *unspecified reception*: a violation.

Reported violations: unspecified receptions, deadlocks (no move possible and not finished),
states from which finishing is impossible (livelocks included), and channel overflow. Finished
means both endpoints in a final state with both channels empty. Each violation comes with the
shortest sequence of moves that leads to it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from mptcpspec.fsm.runtime import Table, Transition

if TYPE_CHECKING:
    from mptcpspec.fsm.model import Check, Machine

__all__ = ["Outcome", "Scenario", "Violation", "explore", "run_checks"]

_NAMES = ("A", "B")


@dataclass(frozen=True)
class Scenario:
    """One ``check`` line in one channel mode."""

    name: str
    calls: tuple[frozenset[str], frozenset[str]]
    doc: str = ""
    piggyback: tuple[tuple[str, str], ...] = ()
    assume: tuple[tuple[str, bool | None], ...] = ()
    couplings: tuple[tuple[str, frozenset[str]], ...] = ()
    lossy: bool = False
    channel_bound: int = 8

    @property
    def mode(self) -> str:
        return "lossy" if self.lossy else "in-order"

    @classmethod
    def from_check(cls, check: Check, lossy: bool, *, channel_bound: int = 8) -> Scenario:
        return cls(
            name=check.name,
            doc=check.doc,
            calls=(frozenset(check.calls_a), frozenset(check.calls_b)),
            piggyback=tuple(check.piggyback),
            assume=tuple(check.assume),
            couplings=tuple((c.condition, frozenset(c.actions)) for c in check.couplings),
            lossy=lossy,
            channel_bound=channel_bound,
        )


@dataclass(frozen=True)
class Violation:
    kind: str  # "unspecified reception" | "deadlock" | "cannot finish" | "channel overflow"
    message: str
    trace: tuple[str, ...]
    count: int = 1  # how many global states show the same kind of violation

    def format(self) -> str:
        head = f"{self.kind}: {self.message}"
        if self.count > 1:
            head += f" ({self.count} states like this)"
        steps = "\n".join(f"    {i + 1:2}. {step}" for i, step in enumerate(self.trace))
        return head + ("\n  shortest run to it:\n" + steps if self.trace else "")


@dataclass
class Outcome:
    machine: str
    scenario: str
    mode: str
    states: int
    moves: int
    finished: int  # global states where both endpoints are done
    end_states: frozenset[tuple[str, str]]
    violations: list[Violation] = field(default_factory=list)
    pairs: frozenset[tuple[str, str]] = frozenset()  # every (state of A, state of B) reached

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        ends = ", ".join(f"A={a} B={b}" for a, b in sorted(self.end_states)) or "none"
        verdict = "ok" if self.ok else f"{len(self.violations)} violation kind(s)"
        return (
            f"{self.scenario} [{self.mode}]: {verdict}; {self.states} states explored, {self.moves} moves; ends: {ends}"
        )


# A global state: (state A, state B, channel A->B, channel B->A, received A, received B, facts A, facts B).
# A channel is a tuple of messages, a message a tuple of signals; a fact is ("snd" | "do" | "call", name).
Message: TypeAlias = tuple[str, ...]
Channel: TypeAlias = tuple[Message, ...]
Fact: TypeAlias = tuple[str, str]
GState: TypeAlias = tuple[str, str, Channel, Channel, frozenset[str], frozenset[str], frozenset[Fact], frozenset[Fact]]
#: A move: its label, and the global state it leads to or the violation it is.
Move: TypeAlias = tuple[str, "GState | Violation"]


def _state(gs: GState, i: int) -> str:
    return gs[0] if i == 0 else gs[1]


def _inbox(gs: GState, i: int) -> Channel:
    """The channel endpoint ``i`` reads: A reads B->A, B reads A->B."""
    return gs[3] if i == 0 else gs[2]


def _seen(gs: GState, i: int) -> frozenset[str]:
    return gs[4] if i == 0 else gs[5]


def _facts(gs: GState, i: int) -> frozenset[Fact]:
    return gs[6] if i == 0 else gs[7]


class _Explorer:
    def __init__(self, table: Table, sc: Scenario) -> None:
        self.t = table
        self.sc = sc
        self.assume = dict(sc.assume)
        self.carried = {on: carried for carried, on in sc.piggyback}
        self.track_sent = {carried for carried, _ in sc.piggyback}
        self.couplings = dict(sc.couplings)
        self.track_done: set[str] = set().union(*self.couplings.values()) if self.couplings else set()
        self.conditions = [e for e, k in table.events.items() if k == "condition"]
        self.timers = [e for e, k in table.events.items() if k == "timer"]

    def enabled(self, state: str, event: str) -> list[Transition[str]]:
        out = []
        for tr in self.t.options(state, event):
            if all(self.assume.get(g, True) in (None, want) for g, want in tr.guard):
                out.append(tr)
        return out

    def fire(self, gs: GState, i: int, tr: Transition[str]) -> GState | None:
        """Global state after endpoint ``i`` takes ``tr``; ``None`` if a channel would overflow."""
        st, ch, facts = [gs[0], gs[1]], [gs[2], gs[3]], [gs[6], gs[7]]
        st[i] = tr.target
        out = list(ch[i])
        f = set(facts[i])
        for act in tr.actions:
            if act.kind == "snd":
                msg: Message = (act.name,)
                extra = self.carried.get(act.name)
                if extra is not None and ("snd", extra) in f:
                    msg = (extra, act.name)
                out.append(msg)
                if act.name in self.track_sent:
                    f.add(("snd", act.name))
            elif act.name in self.track_done:
                f.add(("do", act.name))
        if len(out) > self.sc.channel_bound:
            return None
        ch[i] = tuple(out)
        facts[i] = frozenset(f)
        return (st[0], st[1], ch[0], ch[1], gs[4], gs[5], facts[0], facts[1])

    def coupled_ok(self, gs: GState, event: str) -> bool:
        acts = self.couplings.get(event)
        if acts is None:
            return True
        return all(any(("do", a) in _facts(gs, k) for a in acts) for k in (0, 1))

    @staticmethod
    def _label(i: int, event: str, tr: Transition[str]) -> str:
        acts = ", ".join(str(a) for a in tr.actions)
        return f"{_NAMES[i]}: {event} -> {tr.target}" + (f" / {acts}" if acts else "")

    def moves(self, gs: GState) -> list[Move]:
        """(label, next global state or a Violation) for every move from ``gs``."""
        out: list[Move] = []
        chans_empty = not gs[2] and not gs[3]
        for i in (0, 1):
            s = _state(gs, i)
            local = [(c, "call") for c in sorted(self.sc.calls[i]) if ("call", c) not in _facts(gs, i)]
            local += [(c, "condition") for c in self.conditions if self.coupled_ok(gs, c)]
            if chans_empty:
                local += [(c, "timer") for c in self.timers]
            for ev, kind in local:
                for tr in self.enabled(s, ev):
                    nxt = self.fire(gs, i, tr)
                    if nxt is not None and kind == "call":
                        nxt = self._fact(nxt, i, ("call", ev))
                    label = self._label(i, ev, tr)
                    out.append(
                        (
                            label,
                            nxt
                            if nxt is not None
                            else Violation("channel overflow", f"more than {self.sc.channel_bound} messages", ()),
                        )
                    )
            if _inbox(gs, i):
                out.extend(self.receive(gs, i))
        if self.sc.lossy:
            for k, msg in enumerate(gs[2]):
                out.append((f"lose A->B {' with '.join(msg)}", (*gs[:2], gs[2][:k] + gs[2][k + 1 :], *gs[3:])))
            for k, msg in enumerate(gs[3]):
                out.append((f"lose B->A {' with '.join(msg)}", (*gs[:3], gs[3][:k] + gs[3][k + 1 :], *gs[4:])))
        return out

    def receive(self, gs: GState, i: int) -> list[Move]:
        msg = _inbox(gs, i)[0]
        popped: GState = (*gs[:2], gs[2], gs[3][1:], *gs[4:]) if i == 0 else (*gs[:2], gs[2][1:], *gs[3:])
        branches: list[tuple[GState, list[str]]] = [(popped, [])]
        for sig in msg:
            ev = f"rcv {sig}"
            nxt_branches: list[tuple[GState, list[str]]] = []
            for cur, labels in branches:
                s = _state(cur, i)
                enabled = self.enabled(s, ev)
                seen = _seen(cur, i)
                if enabled:
                    for tr in enabled:
                        nxt = self.fire(cur, i, tr)
                        if nxt is None:
                            return [
                                (
                                    " ; ".join(labels + [self._label(i, ev, tr)]),
                                    Violation("channel overflow", f"more than {self.sc.channel_bound} messages", ()),
                                )
                            ]
                        nxt = self._saw(nxt, i, sig)
                        nxt_branches.append((nxt, labels + [self._label(i, ev, tr)]))
                    continue
                why = None
                if self.t.options(s, ev):
                    why = "guard false"
                elif ev in self.t.discard:
                    why = "discarded"
                elif sig in seen:
                    why = "duplicate"
                elif s in self.t.finals:
                    why = "closed"
                if why is None:
                    label = " ; ".join(labels + [f"{_NAMES[i]}: {ev} in {s}"])
                    return [
                        (
                            label,
                            Violation(
                                "unspecified reception",
                                f"{_NAMES[i]} in {s} receives {sig}, which no transition handles",
                                (),
                            ),
                        )
                    ]
                nxt_branches.append((self._saw(cur, i, sig), labels + [f"{_NAMES[i]}: {ev} in {s} ignored ({why})"]))
            branches = nxt_branches
        return [(" ; ".join(labels), g) for g, labels in branches]

    @staticmethod
    def _fact(gs: GState, i: int, fact: Fact) -> GState:
        if i == 0:
            return (*gs[:6], gs[6] | {fact}, gs[7])
        return (*gs[:7], gs[7] | {fact})

    @staticmethod
    def _saw(gs: GState, i: int, sig: str) -> GState:
        if sig in _seen(gs, i):
            return gs
        if i == 0:
            return (*gs[:4], gs[4] | {sig}, *gs[5:])
        return (*gs[:5], gs[5] | {sig}, *gs[6:])

    def finished(self, gs: GState) -> bool:
        return gs[0] in self.t.finals and gs[1] in self.t.finals and not gs[2] and not gs[3]

    def run(self) -> Outcome:
        t = self.t
        start: GState = (t.initial, t.initial, (), (), frozenset(), frozenset(), frozenset(), frozenset())
        parent: dict[GState, tuple[GState, str] | None] = {start: None}
        order = [start]
        succ: dict[GState, list[GState]] = {}
        errors: dict[str, list[tuple[GState, str, Violation]]] = {}
        todo = deque([start])
        moves = 0
        while todo:
            gs = todo.popleft()
            nexts = []
            for label, nxt in self.moves(gs):
                moves += 1
                if isinstance(nxt, Violation):
                    errors.setdefault(nxt.kind, []).append((gs, label, nxt))
                    continue
                nexts.append(nxt)
                if nxt not in parent:
                    parent[nxt] = (gs, label)
                    order.append(nxt)
                    todo.append(nxt)
            succ[gs] = nexts
        violations = []
        for kind, found in errors.items():
            gs, label, v = found[0]
            violations.append(Violation(kind, v.message, self._trace(parent, gs) + (label,), len(found)))
        finished = [g for g in order if self.finished(g)]
        error_states = {e[0] for errs in errors.values() for e in errs}
        stuck_terminal = [g for g in order if not succ[g] and not self.finished(g) and g not in error_states]
        if stuck_terminal:
            g = stuck_terminal[0]
            violations.append(
                Violation(
                    "deadlock", f"no move possible: {self._describe(g)}", self._trace(parent, g), len(stuck_terminal)
                )
            )
        # Finishing must stay possible from every reachable state (AG EF finished).
        pred: dict[GState, list[GState]] = {}
        for g, ns in succ.items():
            for n in ns:
                pred.setdefault(n, []).append(g)
        good = set(finished)
        todo = deque(finished)
        while todo:
            for p in pred.get(todo.popleft(), ()):
                if p not in good:
                    good.add(p)
                    todo.append(p)
        hopeless = [g for g in order if g not in good and succ[g] and g not in error_states]
        if hopeless:
            g = hopeless[0]
            violations.append(
                Violation(
                    "cannot finish",
                    f"from here no run ends with both endpoints done: {self._describe(g)}",
                    self._trace(parent, g),
                    len(hopeless),
                )
            )
        return Outcome(
            machine=t.name,
            scenario=self.sc.name,
            mode=self.sc.mode,
            states=len(order),
            moves=moves,
            finished=len(finished),
            end_states=frozenset((g[0], g[1]) for g in finished),
            violations=violations,
            pairs=frozenset((g[0], g[1]) for g in order),
        )

    @staticmethod
    def _describe(gs: GState) -> str:
        def ch(c: Channel) -> str:
            return "[" + ", ".join(" with ".join(m) for m in c) + "]"

        return f"A in {gs[0]}, B in {gs[1]}, A->B {ch(gs[2])}, B->A {ch(gs[3])}"

    @staticmethod
    def _trace(parent: dict[GState, tuple[GState, str] | None], gs: GState) -> tuple[str, ...]:
        steps = []
        step = parent[gs]
        while step is not None:
            gs, label = step
            steps.append(label)
            step = parent[gs]
        return tuple(reversed(steps))


def explore(table: Table, scenario: Scenario) -> Outcome:
    """Explore every interleaving of ``scenario`` on ``table`` (see the module docstring)."""
    return _Explorer(table, scenario).run()


def run_checks(machine: Machine, modes: tuple[bool, ...] = (False, True), *, channel_bound: int = 8) -> list[Outcome]:
    """Every ``check`` of a parsed machine, in-order then lossy (in-order only for a ``reliable`` check)."""
    table = Table.from_machine(machine)
    return [
        explore(table, Scenario.from_check(c, lossy, channel_bound=channel_bound))
        for c in machine.checks
        for lossy in modes
        if not (lossy and c.reliable)
    ]
