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
``any`` explores both values, each as its own branch). ``piggyback X on Y`` makes every ``Y`` an
endpoint sends, once it has sent ``X`` before, carry ``X`` too (the receiver takes ``X`` first).
``COND when both did ACT...`` makes the condition hold only once each endpoint has performed one
of the actions. ``strip X to Y`` puts a middlebox on both channels that may remove an option
(RFC 8684 Section 3.7): a message ``X`` may arrive as ``Y``, in either channel mode (each ``X`` is
a branch: as sent, or stripped). ``ends A=S B=T or ...`` says which pairs of states a run may end
in (finished: the endpoints in one of the pairs, both channels empty); without it, a run ends when
both endpoints are in a final state. A ``reliable`` check runs on the in-order channel only.

A received signal that the state has no transition for is dropped when the signal is
``discard`` or when the endpoint is in a final state (nothing left to process it); otherwise it
is an *unspecified reception*, a violation. So is a signal the state has transitions for, but
none whose guard holds for one of the values the scenario lets the guards take (``rcv X if g``
without ``rcv X if not g``, under ``assume g any``). A retransmission or a repeated
acknowledgement is no exception: the state that can receive it says what it does with it (a
self-loop without actions ignores it). A call, timer or condition that the state handles for
some values of the guards but not for others is an *unspecified event*, for the same reason.

Reported violations: unspecified receptions and events, deadlocks (no move possible and not
finished), states from which finishing is impossible (livelocks included), and channel overflow.
Finished means both endpoints in a final state (or in a pair of ``ends``) with both channels
empty. Each violation comes
with the shortest sequence of moves that leads to it.

Each :class:`Outcome` also records what the runs used -- the transitions taken, the calls each
endpoint could make, the signals sent and those a transition consumed -- for the checks of
:mod:`mptcpspec.fsm.coverage`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import product
from typing import TYPE_CHECKING, TypeAlias

from mptcpspec.fsm.runtime import Table, Transition

if TYPE_CHECKING:
    from mptcpspec.fsm.model import Check, Machine

__all__ = ["Outcome", "Scenario", "Violation", "explore", "guard_split", "run_checks"]

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
    strip: tuple[tuple[str, str], ...] = ()
    ends: tuple[tuple[str, str], ...] = ()

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
            strip=tuple(check.strip),
            ends=tuple(check.ends),
        )


@dataclass(frozen=True)
class Violation:
    kind: str  # "unspecified reception" | "unspecified event" | "deadlock" | "cannot finish" | "channel overflow"
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
    #: every transition some run takes: (state, event, index among the state's options for the event)
    taken: frozenset[tuple[str, str, int]] = frozenset()
    #: every (endpoint, call) where the endpoint may make the call and a reachable state of it has a transition for it
    calls: frozenset[tuple[str, str]] = frozenset()
    sent: frozenset[str] = frozenset()  # signals some run puts on a channel
    consumed: frozenset[str] = frozenset()  # signals some transition takes (not dropped)
    #: (state, event, values of the guards) that some reachable state offers and no transition handles
    unspecified: frozenset[tuple[str, str, str]] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        ends = ", ".join(f"A={a} B={b}" for a, b in sorted(self.end_states)) or "none"
        verdict = "ok" if self.ok else f"{len(self.violations)} violation kind(s)"
        return (
            f"{self.scenario} [{self.mode}]: {verdict}; {self.states} states explored, {self.moves} moves; ends: {ends}"
        )


# A global state: (state A, state B, channel A->B, channel B->A, facts A, facts B).
# A channel is a tuple of messages, a message a tuple of signals; a fact is ("snd" | "do" | "call", name).
Message: TypeAlias = tuple[str, ...]
Channel: TypeAlias = tuple[Message, ...]
Fact: TypeAlias = tuple[str, str]
GState: TypeAlias = tuple[str, str, Channel, Channel, frozenset[Fact], frozenset[Fact]]
#: The transitions of a state for an event that some value of the guards allows, and the values
#: of the guards (as text, ``"not g"``) for which none is allowed, or ``None``.
Split: TypeAlias = tuple[tuple["Transition[str]", ...], "str | None"]
#: A move: its label, and the global state it leads to or the violation it is.
Move: TypeAlias = tuple[str, "GState | Violation"]


def _state(gs: GState, i: int) -> str:
    return gs[0] if i == 0 else gs[1]


def _inbox(gs: GState, i: int) -> Channel:
    """The channel endpoint ``i`` reads: A reads B->A, B reads A->B."""
    return gs[3] if i == 0 else gs[2]


def _facts(gs: GState, i: int) -> frozenset[Fact]:
    return gs[4] if i == 0 else gs[5]


def guard_split(table: Table, assume: dict[str, bool | None], state: str, event: str) -> Split:
    """The transitions of ``state`` on ``event`` that some value of the guards allows, and a value
    of the guards (``"g and not h"``) that allows none, or ``None`` if every value does allow one.

    ``assume`` gives a guard's value (``None``: either); a guard it does not name is true.
    """
    opts = table.options(state, event)
    names = sorted({g for tr in opts for g, _ in tr.guard})
    free = [g for g in names if assume.get(g, True) is None]
    allowed: set[Transition[str]] = set()
    gap = None
    for values in product((True, False), repeat=len(free)):
        env = {g: assume.get(g, True) for g in names} | dict(zip(free, values))
        hold = [tr for tr in opts if all(env[g] == want for g, want in tr.guard)]
        allowed.update(hold)
        if not hold and gap is None and opts:
            gap = " and ".join(g if env[g] else f"not {g}" for g in names)
    return tuple(tr for tr in opts if tr in allowed), gap


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
        self.strip: dict[str, list[str]] = {}
        for sig, stripped in sc.strip:
            self.strip.setdefault(sig, []).append(stripped)
        self.ends = frozenset(sc.ends)
        self.splits: dict[tuple[str, str], Split] = {}
        self.taken: set[tuple[str, str, Transition[str]]] = set()
        self.calls: set[tuple[str, str]] = set()
        self.sent: set[str] = set()
        self.consumed: set[str] = set()
        self.unspecified: set[tuple[str, str, str]] = set()

    def split(self, state: str, event: str) -> Split:
        """The transitions of ``state`` on ``event`` some value of the guards allows, and a value of
        the guards that allows none (``None`` if every value the scenario gives them allows one)."""
        key = (state, event)
        found = self.splits.get(key)
        if found is not None:
            return found
        found = guard_split(self.t, self.assume, state, event)
        self.splits[key] = found
        return found

    def fire(self, gs: GState, i: int, tr: Transition[str]) -> GState | None:
        """Global state after endpoint ``i`` takes ``tr``; ``None`` if a channel would overflow."""
        st, ch, facts = [gs[0], gs[1]], [gs[2], gs[3]], [gs[4], gs[5]]
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
                self.sent.add(act.name)
                if act.name in self.track_sent:
                    f.add(("snd", act.name))
            elif act.name in self.track_done:
                f.add(("do", act.name))
        if len(out) > self.sc.channel_bound:
            return None
        ch[i] = tuple(out)
        facts[i] = frozenset(f)
        return (st[0], st[1], ch[0], ch[1], facts[0], facts[1])

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
                enabled, gap = self.split(s, ev)
                if gap is not None:
                    self.unspecified.add((s, ev, gap))
                    out.append(
                        (
                            f"{_NAMES[i]}: {ev} with {gap} in {s}",
                            Violation(
                                "unspecified event",
                                f"{_NAMES[i]} in {s}: {ev} with {gap}, which no transition handles",
                                (),
                            ),
                        )
                    )
                if kind == "call" and enabled:
                    self.calls.add((_NAMES[i], ev))
                for tr in enabled:
                    self.taken.add((s, ev, tr))
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
        out: list[Move] = []
        for sent in msg:
            nxt_branches: list[tuple[GState, list[str]]] = []
            for sig, cur, labels in (
                (sig, cur, labels + ([f"middlebox: {sent} arrives as {sig}"] if sig != sent else []))
                for sig in self.variants(sent)
                for cur, labels in branches
            ):
                ev = f"rcv {sig}"
                s = _state(cur, i)
                enabled, gap = self.split(s, ev)
                if not enabled and gap is None and (ev in self.t.discard or s in self.t.finals):
                    why = "discarded" if ev in self.t.discard else "closed"
                    nxt_branches.append((cur, labels + [f"{_NAMES[i]}: {ev} in {s} ignored ({why})"]))
                    continue
                if not enabled or gap is not None:
                    gap = gap or ""
                    self.unspecified.add((s, ev, gap))
                    values = f" with {gap}" if gap else ""
                    message = f"{_NAMES[i]} in {s} receives {sig}{values}, which no transition handles"
                    label = " ; ".join(labels + [f"{_NAMES[i]}: {ev}{values} in {s}"])
                    out.append((label, Violation("unspecified reception", message, ())))
                for tr in enabled:
                    self.taken.add((s, ev, tr))
                    self.consumed.add(sig)
                    nxt = self.fire(cur, i, tr)
                    if nxt is None:
                        overflow = Violation("channel overflow", f"more than {self.sc.channel_bound} messages", ())
                        return [(" ; ".join(labels + [self._label(i, ev, tr)]), overflow)]
                    nxt_branches.append((nxt, labels + [self._label(i, ev, tr)]))
            branches = nxt_branches
        return out + [(" ; ".join(labels), g) for g, labels in branches]

    def variants(self, sig: str) -> list[str]:
        """``sig`` and what the middlebox of ``strip`` clauses may turn it into (repeatedly)."""
        out = [sig]
        for s in out:
            out += [x for x in self.strip.get(s, ()) if x not in out]
        return out

    @staticmethod
    def _fact(gs: GState, i: int, fact: Fact) -> GState:
        if i == 0:
            return (*gs[:4], gs[4] | {fact}, gs[5])
        return (*gs[:5], gs[5] | {fact})

    def finished(self, gs: GState) -> bool:
        if gs[2] or gs[3]:
            return False
        if self.ends:
            return (gs[0], gs[1]) in self.ends
        return gs[0] in self.t.finals and gs[1] in self.t.finals

    def run(self) -> Outcome:
        t = self.t
        start: GState = (t.initial, t.initial, (), (), frozenset(), frozenset())
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
            taken=frozenset((s, ev, t.options(s, ev).index(tr)) for s, ev, tr in self.taken),
            calls=frozenset(self.calls),
            sent=frozenset(self.sent),
            consumed=frozenset(self.consumed),
            unspecified=frozenset(self.unspecified),
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
