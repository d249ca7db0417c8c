"""Errors of the state-machine package. Importing this module does not import lark."""

from __future__ import annotations

from typing import NamedTuple

from mptcpspec.errors import MptcpspecError, SpecError

__all__ = ["FsmSpecError", "Problem", "ProtocolError"]


class Problem(NamedTuple):
    """One thing wrong (or suspicious) in a ``.fsm`` file, with where it is."""

    file: str
    line: int
    column: int
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.file}:{self.line}:{self.column}: {tag}{self.message}"


class FsmSpecError(SpecError):
    """A ``.fsm`` file that cannot be used: a syntax error or a semantic one.

    ``problems`` lists every error found (file, line, column, message); ``file``, ``line``,
    ``column`` and ``reason`` are those of the first one. The message has one line per problem.
    """

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:  # pragma: no cover - callers pass at least one
            raise ValueError("FsmSpecError needs at least one problem")
        self.problems = list(problems)
        first = self.problems[0]
        self.file, self.line, self.column, self.reason = first.file, first.line, first.column, first.message
        super().__init__("\n".join(str(p) for p in self.problems))


class ProtocolError(MptcpspecError):
    """An event that the state machine does not allow in its current state.

    The machine that raised it is left in the state it was in. ``machine`` names the machine,
    ``state`` and ``event`` are the current state and the refused event (enum members, or
    their names), ``reason`` says what is wrong and ``allowed`` lists the events the state
    does accept.
    """

    def __init__(
        self, machine: str, state: object, event: object, reason: str, allowed: tuple[object, ...] = ()
    ) -> None:
        self.machine = machine
        self.state = state
        self.event = event
        self.reason = reason
        self.allowed = tuple(allowed)
        st = getattr(state, "name", state)
        ev = getattr(event, "value", event)
        msg = f"{machine}: {ev!r} in state {st}: {reason}"
        if self.allowed:
            msg += " (allowed: " + ", ".join(repr(getattr(a, "value", a)) for a in self.allowed) + ")"
        super().__init__(msg)
