"""Follow both endpoints of one connection (or subflow) from the signals seen on the wire.

This is the interface the dissector feeds: for every packet of a connection, in capture order,
``observer.feed(("A", "B"), "DATA_FIN")`` for each signal the packet carries (a DSS with both a
DATA_ACK covering the peer's DATA_FIN and a DATA_FIN: first ``DATA_ACK[DFIN]``, then
``DATA_FIN``). The observer keeps one machine per endpoint and reports each endpoint's state and
the signals that are illegal where they appear. It does not import lark and works on a generated
machine class (``mptcpspec.codec.generated.closure.ClosureMachine``) or any :class:`Table`.

What a packet from X to Y means:

* for X, the sender (a ``discard`` signal is never flagged): either an output still owed by a
  transition X already took (the ``snd DATA_ACK[DFIN]`` of ``rcv DATA_FIN``), or the output of a
  transition X takes now on an event the wire does not show (a call such as ``M_CLOSE``, a
  timer, a condition), or a repeat of something X sent before (a retransmission). Anything else
  is flagged for X;
* for Y, the receiver: ``rcv signal``. A state without a transition for it flags it, unless the
  signal is ``discard``, Y already received the same signal (a duplicate) or Y is in a final state.

When several states are possible, a signal the endpoint then sends keeps only the states whose
transitions owe it (a SYN/ACK with MP_JOIN from B shows that B accepted the token).

Guards the observer cannot see make it follow every possible transition, so an endpoint's state
is a set (usually of one); pass the guards to :meth:`Observer.feed` when the dissector knows them
(``key_valid=True``). A flagged signal changes nothing. Losses between the capture point and the
receiver are not modelled: the observer assumes that what it sees arrives.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from mptcpspec.fsm.runtime import StateMachine, Table, Transition
from mptcpspec.records import dataclass

__all__ = ["Flag", "Observer"]


@dataclass(frozen=True)
class Flag:
    """One illegal signal: who refuses it and why."""

    index: int  # position of the signal in the fed sequence (0-based)
    endpoint: str  # the endpoint whose machine refuses it
    role: str  # "sender" or "receiver"
    signal: str
    states: tuple[str, ...]  # the endpoint's state(s) at that point
    reason: str

    def __str__(self) -> str:
        return f"#{self.index} {self.signal}: {self.role} {self.endpoint} in {'|'.join(self.states)}: {self.reason}"


#: What an :class:`Observer` follows: a machine's tables, its generated class, or its generated module.
MachineSource = Table | type[StateMachine] | ModuleType


def _table(machine: MachineSource) -> Table:
    if isinstance(machine, Table):
        return machine
    if isinstance(machine, type) and issubclass(machine, StateMachine):
        return _class_table(machine)
    for value in vars(machine).values():  # a generated module
        if isinstance(value, type) and issubclass(value, StateMachine) and value is not StateMachine:
            return _class_table(value)
    raise TypeError(f"not a machine class, module or Table: {machine!r}")


_TABLES: dict[type[StateMachine], Table] = {}


def _class_table(cls: type[StateMachine]) -> Table:
    """One Table per machine class, shared by its observers (it is only read)."""
    table = _TABLES.get(cls)
    if table is None:
        table = _TABLES[cls] = cls.table()
    return table


class Observer:
    """Two endpoints of one machine, tracked from the signals that pass between them.

    >>> from mptcpspec.codec.generated.closure import ClosureMachine
    >>> obs = Observer(ClosureMachine)
    >>> obs.feed("A->B", "DATA_FIN"), obs.state("A"), obs.state("B")
    ([], 'M_FIN_WAIT_1', 'M_CLOSE_WAIT')
    >>> [str(f) for f in obs.feed("A->B", "DATA_ACK[DFIN]")]
    ['#1 DATA_ACK[DFIN]: sender A in M_FIN_WAIT_1: A cannot send DATA_ACK[DFIN] here', \
'#1 DATA_ACK[DFIN]: receiver B in M_CLOSE_WAIT: no transition for rcv DATA_ACK[DFIN]']
    """

    def __init__(self, machine: MachineSource, endpoints: tuple[str, str] = ("A", "B")) -> None:
        self.table = _table(machine)
        self.endpoints = tuple(endpoints)
        t = self.table
        self._states = {e: frozenset({t.initial}) for e in self.endpoints}
        # Per endpoint, per possible state: the signals its transitions so far still owe the wire.
        self._owed: dict[str, dict[str, frozenset[str]]] = {e: {t.initial: frozenset()} for e in self.endpoints}
        self._sent: dict[str, set[str]] = {e: set() for e in self.endpoints}
        self._received: dict[str, set[str]] = {e: set() for e in self.endpoints}
        self._local = [ev for ev, kind in t.events.items() if kind != "rcv"]
        self.flags: list[Flag] = []
        self.count = 0

    # --- reading the state
    def states(self, endpoint: str) -> frozenset[str]:
        """Every state the endpoint may be in."""
        return self._states[endpoint]

    def state(self, endpoint: str) -> str:
        """The endpoint's state; ``"X|Y"`` when the observations leave more than one possible."""
        return "|".join(sorted(self._states[endpoint]))

    def is_final(self, endpoint: str) -> bool:
        return all(s in self.table.finals for s in self._states[endpoint])

    # --- feeding
    def _direction(self, direction: str | tuple[str, str]) -> tuple[str, str]:
        if isinstance(direction, str):
            src, _, dst = direction.partition("->")
            src, dst = src.strip(), dst.strip()
        else:
            src, dst = direction
        if src not in self._states or dst not in self._states or src == dst:
            raise ValueError(f"direction {direction!r}: expected two of {', '.join(self.endpoints)}")
        return src, dst

    def _take(self, endpoint: str, moves: list[tuple[str, Transition[str]]], sent: str | None = None) -> None:
        """Move ``endpoint`` along ``moves``, (source state, transition) pairs; ``sent`` is the
        signal just seen leaving it, which the move has thereby paid."""
        owed_before = self._owed[endpoint]
        owed: dict[str, frozenset[str]] = {}
        for src, tr in moves:
            out = owed_before.get(src, frozenset()) | {a.name for a in tr.actions if a.kind == "snd"}
            owed[tr.target] = owed.get(tr.target, frozenset()) | (out - {sent} if sent else out)
        self._owed[endpoint] = owed
        self._states[endpoint] = frozenset(owed)

    def _moves(
        self, endpoint: str, events: Iterable[str], guards: dict[str, bool], sends: str | None = None
    ) -> list[tuple[str, Transition[str]]]:
        t = self.table
        return [
            (s, tr)
            for s in self._states[endpoint]
            for ev in events
            for tr in t.options(s, ev)
            if all(guards.get(g, want) == want for g, want in tr.guard)
            and (sends is None or any(a.kind == "snd" and a.name == sends for a in tr.actions))
        ]

    def feed(self, direction: str | tuple[str, str], signal: str, **guards: bool) -> list[Flag]:
        """One signal seen going ``direction`` (``"A->B"`` or ``("A", "B")``); returns its flags."""
        src, dst = self._direction(direction)
        index, self.count = self.count, self.count + 1
        flags: list[Flag] = []
        t = self.table
        # The sender.
        owed = self._owed[src]
        paying = [st for st in self._states[src] if signal in owed.get(st, ())]
        if paying:
            self._owed[src] = {st: owed[st] - {signal} for st in paying}
            self._states[src] = frozenset(paying)
        else:
            moves = self._moves(src, self._local, {}, sends=signal)
            if moves:
                self._take(src, moves, sent=signal)
            elif signal not in self._sent[src] and f"rcv {signal}" not in t.discard:
                flags.append(
                    Flag(
                        index,
                        src,
                        "sender",
                        signal,
                        tuple(sorted(self._states[src])),
                        f"{src} cannot send {signal} here",
                    )
                )
        self._sent[src].add(signal)
        # The receiver.
        ev = f"rcv {signal}"
        moves = self._moves(dst, [ev], guards)
        if moves:
            self._take(dst, moves)
        elif not (ev in t.discard or signal in self._received[dst] or self.is_final(dst)):
            why = "guards do not hold" if any(t.options(s, ev) for s in self._states[dst]) else "no transition"
            flags.append(Flag(index, dst, "receiver", signal, tuple(sorted(self._states[dst])), f"{why} for {ev}"))
        self._received[dst].add(signal)
        self.flags.extend(flags)
        return flags

    def notify(self, endpoint: str, event: str, **guards: bool) -> bool:
        """A local event the dissector can infer (``ALL_SUBFLOWS_CLOSED`` once it has seen every
        subflow close); returns whether the endpoint's state allows it (if not, nothing changes)."""
        moves = self._moves(endpoint, [event], guards)
        if moves:
            self._take(endpoint, moves)
        return bool(moves)
