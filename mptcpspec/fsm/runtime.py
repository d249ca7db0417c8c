"""What the generated state-machine modules run on. Does not import lark.

A generated module (``mptcpspec/codec/generated/closure.py`` ...) holds its tables as data, in the style
of h11's ``_state.py``: enums ``State`` and ``Event`` and a dict
``TRANSITIONS[(state, event)] -> ((guard, actions, target), ...)``; its machine class subclasses
:class:`StateMachine`, whose :meth:`~StateMachine.handle` looks the event up and either moves to
the target and returns the actions, or raises :class:`ProtocolError` and leaves the state as it
was.

:class:`Table` is the same data with plain strings, built from a generated class or from a parsed
spec; the dynamic checker and the observer work on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, ClassVar, Generic, NamedTuple, TypeVar

from mptcpspec.fsm.errors import ProtocolError
from mptcpspec.records import dataclass

if TYPE_CHECKING:
    from mptcpspec.fsm.model import Machine

#: A transition's target: a ``State`` member in a generated module, a state's name in a :class:`Table`.
T_co = TypeVar("T_co", covariant=True)

__all__ = ["Action", "ProtocolError", "StateMachine", "Table", "Transition"]


class Action(NamedTuple):
    """``("snd", "DATA_FIN")`` sends a signal; ``("do", "DELETE_PCB")`` is any other action."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"snd {self.name}" if self.kind == "snd" else self.name


class Transition(NamedTuple, Generic[T_co]):
    """``guard`` is a tuple of ``(guard name, required value)``; empty means always."""

    guard: tuple[tuple[str, bool], ...]
    actions: tuple[Action, ...]
    target: T_co


def _holds(guard: tuple[tuple[str, bool], ...], values: dict[str, bool]) -> bool:
    return all(bool(values[name]) == want for name, want in guard)


class StateMachine:
    """Base of the generated machine classes: one instance tracks one endpoint.

    >>> from mptcpspec.codec.generated.closure import ClosureMachine
    >>> m = ClosureMachine()
    >>> [str(a) for a in m.handle("M_CLOSE")]
    ['snd DATA_FIN']
    >>> m.state.name
    'M_FIN_WAIT_1'
    """

    NAME: ClassVar[str] = ""
    State: ClassVar[type[Enum]]
    Event: ClassVar[type[Enum]]
    INITIAL: ClassVar[Enum]
    FINAL: ClassVar[frozenset[Enum]]
    TRANSITIONS: ClassVar[Mapping[tuple[Enum, Enum], tuple[Transition[Enum], ...]]]
    EVENT_KIND: ClassVar[Mapping[Enum, str]]
    DISCARD: ClassVar[frozenset[Enum]] = frozenset()
    GUARDS: ClassVar[tuple[str, ...]] = ()

    __slots__ = ("state",)

    state: Enum  #: the current ``State`` member (each generated class narrows it to its own enum)

    def __init__(self, state: Enum | str | None = None) -> None:
        self.state = self.INITIAL if state is None else self.as_state(state)

    @classmethod
    def as_state(cls, value: Enum | str) -> Enum:
        """A ``State`` member from a member or its name."""
        if isinstance(value, cls.State):
            return value
        try:
            return cls.State[str(value)]
        except KeyError:
            raise ValueError(f"{cls.NAME}: no state {value!r}") from None

    @classmethod
    def as_event(cls, value: Enum | str) -> Enum | None:
        """An ``Event`` member from a member, its value (``"rcv DATA_FIN"``) or its name (``"RCV_DATA_FIN"``)."""
        if isinstance(value, cls.Event):
            return value
        try:
            return cls.Event(value)
        except ValueError:
            pass
        if not isinstance(value, str):
            return None
        try:
            return cls.Event[value]
        except (KeyError, TypeError):
            return None

    def allowed(self) -> tuple[Enum, ...]:
        """The events the current state accepts (for some value of the guards)."""
        return tuple(ev for ev in self.Event if (self.state, ev) in self.TRANSITIONS)

    def can_handle(self, event: Enum | str, **guards: bool) -> bool:
        """Whether ``event`` has a transition in the current state (whose guard holds, given ``guards``)."""
        ev = self.as_event(event)
        if ev is None:
            return False
        options = self.TRANSITIONS.get((self.state, ev), ())
        if not guards:
            return bool(options)
        return any(all(name in guards for name, _ in t.guard) and _holds(t.guard, guards) for t in options)

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL

    def handle(self, event: Enum | str, **guards: bool) -> tuple[Action, ...]:
        """Take the transition for ``event`` and return its actions.

        ``guards`` gives the value of each guard the candidate transitions test. An event the
        current state has no transition for raises :class:`ProtocolError` and changes nothing,
        except a ``discard`` signal, which is dropped (empty result, same state).
        """
        ev = self.as_event(event)
        if ev is None:
            raise ProtocolError(self.NAME, self.state, event, "not an event of this machine")
        unknown = set(guards) - set(self.GUARDS)
        if unknown:
            raise TypeError(
                f"{self.NAME}: unknown guard(s) {', '.join(sorted(unknown))}; "
                f"guards: {', '.join(self.GUARDS) or 'none'}"
            )
        options = self.TRANSITIONS.get((self.state, ev))
        if not options:
            if ev in self.DISCARD:
                return ()
            raise ProtocolError(self.NAME, self.state, ev, "no transition for this event in this state", self.allowed())
        needed = sorted({name for t in options for name, _ in t.guard} - set(guards))
        if needed:
            raise TypeError(f"{self.NAME}: {ev.value!r} in state {self.state.name} needs guard(s) {', '.join(needed)}")
        for t in options:
            if _holds(t.guard, guards):
                self.state = t.target
                return t.actions
        given = ", ".join(f"{k}={bool(v)}" for k, v in sorted(guards.items()))
        raise ProtocolError(self.NAME, self.state, ev, f"no transition whose guard holds ({given})", self.allowed())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} state={self.state.name}>"

    @classmethod
    def table(cls) -> Table:
        """The tables of this class as a :class:`Table` of plain strings."""
        trans = {
            (s.name, e.value): tuple(Transition(t.guard, t.actions, t.target.name) for t in opts)
            for (s, e), opts in cls.TRANSITIONS.items()
        }
        return Table(
            name=cls.NAME,
            states=tuple(s.name for s in cls.State),
            initial=cls.INITIAL.name,
            finals=frozenset(s.name for s in cls.FINAL),
            events={e.value: cls.EVENT_KIND[e] for e in cls.Event},
            discard=frozenset(e.value for e in cls.DISCARD),
            transitions=trans,
            guards=tuple(cls.GUARDS),
        )


@dataclass(frozen=True)
class Table:
    """A machine's tables with plain strings: states by name, events by text (``"rcv DATA_FIN"``)."""

    name: str
    states: tuple[str, ...]
    initial: str
    finals: frozenset[str]
    events: dict[str, str]  # event text -> "rcv" | "call" | "timer" | "condition"
    discard: frozenset[str]
    transitions: dict[tuple[str, str], tuple[Transition[str], ...]]
    guards: tuple[str, ...] = ()

    def options(self, state: str, event: str) -> tuple[Transition[str], ...]:
        """The transitions of ``state`` on ``event`` (none: the event is refused there)."""
        return self.transitions.get((state, event), ())

    @classmethod
    def from_machine(cls, m: Machine) -> Table:
        """From a parsed :class:`mptcpspec.fsm.model.Machine`."""
        trans: dict[tuple[str, str], list[Transition[str]]] = {}
        for e in m.edges:
            trans.setdefault((e.source, e.trigger.text), []).append(
                Transition(
                    tuple((g.name, g.positive) for g in e.guard),
                    tuple(Action(a.kind, a.name) for a in e.actions),
                    e.target,
                )
            )
        return cls(
            name=m.name,
            states=m.state_names,
            initial=m.initial,
            finals=frozenset(m.finals),
            events=m.events(),
            discard=frozenset(f"rcv {s.name}" for s in m.signals if s.discard),
            transitions={k: tuple(v) for k, v in trans.items()},
            guards=tuple(g.name for g in m.guards),
        )
