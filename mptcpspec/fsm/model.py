"""The typed model of a ``.fsm`` file: frozen dataclasses, each with its source line and column.

:func:`mptcpspec.fsm.parser.parse` builds a :class:`Machine`; everything else (checks, code
generation, pictures) reads it. Names are checked when the model is built, so a
:class:`Machine` only refers to states, signals and events that it declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as _Lit

__all__ = [
    "Action",
    "Check",
    "Coupling",
    "Edge",
    "Effect",
    "Guard",
    "Literal",
    "LocalEvent",
    "Machine",
    "Signal",
    "State",
    "Transition",
    "Trigger",
]

LocalKind = _Lit["call", "timer", "condition"]


@dataclass(frozen=True, kw_only=True)
class State:
    """``state NAME "doc" @ "ref"``."""

    name: str
    doc: str = ""
    ref: str | None = None
    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class Signal:
    """``signal NAME "doc" [discard] @ "ref"``: something carried by a packet.

    A ``discard`` signal received in a state without a transition for it is dropped silently
    instead of being a protocol error (a TCP RST on one subflow, for the connection machine).
    """

    name: str
    doc: str = ""
    discard: bool = False
    ref: str | None = None
    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class LocalEvent:
    """``call`` (the application), ``timer`` (a timeout) or ``condition`` (a fact becoming true)."""

    name: str
    kind: LocalKind
    doc: str = ""
    ref: str | None = None
    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class Guard:
    """``guard name "doc"``: a yes/no fact the caller supplies when it hands an event to the machine."""

    name: str
    doc: str = ""
    ref: str | None = None
    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class Effect:
    """``action NAME "doc"``: a named action other than sending a signal."""

    name: str
    doc: str = ""
    ref: str | None = None
    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class Trigger:
    """What fires a transition: ``rcv SIGNAL`` or a call, timer or condition."""

    kind: _Lit["rcv", "call", "timer", "condition"]
    name: str
    line: int
    column: int

    @property
    def text(self) -> str:
        """The event as written: ``"rcv DATA_FIN"`` or ``"M_CLOSE"``."""
        return f"rcv {self.name}" if self.kind == "rcv" else self.name


@dataclass(frozen=True, kw_only=True)
class Literal:
    """One term of a guard: ``key_valid`` or ``not key_valid``."""

    name: str
    positive: bool = True
    line: int
    column: int

    @property
    def text(self) -> str:
        return self.name if self.positive else f"not {self.name}"


@dataclass(frozen=True, kw_only=True)
class Action:
    """``snd SIGNAL`` or a declared action name."""

    kind: _Lit["snd", "do"]
    name: str
    line: int
    column: int

    @property
    def text(self) -> str:
        return f"snd {self.name}" if self.kind == "snd" else self.name


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One transition line as written. ``source`` is ``None`` for ``*`` (every non-final state but ``excepts``).

    ``redundant`` is the reason given by a ``# redundant: why`` comment on the line, if any: the
    spec's own statement that the checks cannot show the line is needed (see
    :mod:`mptcpspec.fsm.mutation`).
    """

    source: str | None
    excepts: tuple[str, ...] = ()
    target: str
    trigger: Trigger
    guard: tuple[Literal, ...] = ()
    actions: tuple[Action, ...] = ()
    ref: str | None = None
    redundant: str | None = None
    line: int
    column: int

    @property
    def label(self) -> str:
        """``trigger [if guard] [/ actions]``, as on a figure's edge."""
        out = self.trigger.text
        if self.guard:
            out += " if " + " and ".join(g.text for g in self.guard)
        if self.actions:
            out += " / " + ", ".join(a.text for a in self.actions)
        return out


@dataclass(frozen=True, kw_only=True)
class Edge:
    """A transition from one concrete state: ``*`` lines expand to one edge per state."""

    source: str
    transition: Transition
    line: int
    column: int

    @property
    def target(self) -> str:
        return self.transition.target

    @property
    def trigger(self) -> Trigger:
        return self.transition.trigger

    @property
    def guard(self) -> tuple[Literal, ...]:
        return self.transition.guard

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.transition.actions


@dataclass(frozen=True, kw_only=True)
class Coupling:
    """Check clause ``COND when both did ACT1 or ACT2``: the condition holds for an endpoint only
    once each of the two endpoints has performed one of the actions."""

    condition: str
    actions: tuple[str, ...]
    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class Check:
    """``check name "doc" : A calls ..., B calls ..., piggyback X on Y, assume g any, C when both did ...,
    strip X to Y, ends A=S B=T or ..., reliable``.

    A scenario for the dynamic checks: two endpoints ``A`` and ``B`` of the machine, joined by
    one channel each way, each allowed to make the listed calls.
    """

    name: str
    doc: str = ""
    calls_a: tuple[str, ...] = ()
    calls_b: tuple[str, ...] = ()
    piggyback: tuple[tuple[str, str], ...] = ()  # (carried signal, signal it rides on)
    assume: tuple[tuple[str, bool | None], ...] = ()  # guard -> True / False / None (either)
    couplings: tuple[Coupling, ...] = ()
    reliable: bool = False  # only the in-order, lossless channel
    strip: tuple[tuple[str, str], ...] = ()  # (signal, what a middlebox may deliver instead)
    ends: tuple[tuple[str, str], ...] = ()  # (state of A, state of B) a run may end in; () = both final
    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class Machine:
    """A whole ``.fsm`` file. ``title`` is the string on the machine line, ``doc`` the doc lines."""

    name: str
    title: str = ""
    doc: str = ""
    ref: str | None = None
    file: str
    initial: str
    finals: tuple[str, ...]
    states: tuple[State, ...]
    signals: tuple[Signal, ...] = ()
    locals: tuple[LocalEvent, ...] = ()
    guards: tuple[Guard, ...] = ()
    effects: tuple[Effect, ...] = ()
    transitions: tuple[Transition, ...] = ()
    edges: tuple[Edge, ...] = ()
    checks: tuple[Check, ...] = ()
    line: int
    column: int

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    def events(self) -> dict[str, str]:
        """Event text -> kind (``rcv``, ``call``, ``timer``, ``condition``), in order of first use,
        then the declared events no transition uses."""
        out: dict[str, str] = {}
        for t in self.transitions:
            out.setdefault(t.trigger.text, t.trigger.kind)
        for loc in self.locals:
            out.setdefault(loc.name, loc.kind)
        for sig in self.signals:
            out.setdefault(f"rcv {sig.name}", "rcv")
        return out

    def edges_from(self, state: str) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.source == state)
