"""Read a ``.fsm`` file: lark grammar (``fsm.lark``), a transformer to typed nodes, name checks.

:func:`parse` turns text into a :class:`~mptcpspec.fsm.model.Machine` or raises
:class:`~mptcpspec.fsm.errors.FsmSpecError` naming file, line, column and what is wrong (a syntax
error, an unknown or duplicate name, a misplaced statement). :func:`load` also runs the static
checks of :mod:`mptcpspec.fsm.static` whose failures make a machine unusable
(nondeterminism, unreachable states, states that cannot finish).
"""

from __future__ import annotations

import ast
import functools
import keyword
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.tree import Meta

from mptcpspec.fsm.errors import FsmSpecError, Problem
from mptcpspec.fsm.model import (
    Action,
    Check,
    Coupling,
    Edge,
    Effect,
    Guard,
    Literal,
    LocalEvent,
    LocalKind,
    Machine,
    Signal,
    State,
    Transition,
    Trigger,
)

__all__ = ["grammar_path", "load", "parse", "redundant_reason"]

_GRAMMAR = Path(__file__).with_name("fsm.lark")

#: How the parser names a terminal in "expected ..." messages.
_READABLE = {
    "NAME": "a name",
    "SIGNAL": "a signal name",
    "STRING": 'a "string"',
    "_NL": "end of line",
    "$END": "end of file",
}


def grammar_path() -> Path:
    return _GRAMMAR


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR.read_text(), parser="lalr", lexer="contextual", propagate_positions=True)


#: The children of a parse-tree node as the transformer hands them over: tokens and the nodes the
#: callbacks below made, in grammar order (lark's boundary: what each is depends on the rule).
Items: TypeAlias = list[Any]
_N = TypeVar("_N")


class _Decl:
    """A statement before name resolution: kind, payload, position.

    The payload depends on the kind: the node for a declaration, a tuple for ``machine``,
    ``transition`` and ``check`` (see the :class:`_ToNodes` callback that makes it).
    """

    __slots__ = ("kind", "value", "line", "column")

    def __init__(self, kind: str, value: Any, line: int, column: int) -> None:
        self.kind, self.value, self.line, self.column = kind, value, line, column


def _line(tok: Token) -> int:
    """A token's line (parsed tokens always have one)."""
    return tok.line or 0


def _col(tok: Token) -> int:
    return tok.column or 0


def _string(tok: Token) -> str:
    return str(ast.literal_eval(str(tok)))


def _opt(items: Items, cls: type[_N]) -> _N | None:
    for it in items:
        if isinstance(it, cls):
            return it
    return None


class _Ref(str):
    pass


class _Discard:
    pass


class _Role(str):
    pass


class _Truth:
    def __init__(self, value: bool | None) -> None:
        self.value = value


class _Negation:
    pass


@v_args(meta=True)
class _ToNodes(Transformer[Token, list[_Decl]]):
    """Parse tree -> :class:`_Decl` statements carrying typed nodes."""

    # --- small pieces
    def ref(self, meta: Meta, items: Items) -> _Ref:
        return _Ref(_string(items[0]))

    def discard(self, meta: Meta, items: Items) -> _Discard:
        return _Discard()

    def negation(self, meta: Meta, items: Items) -> _Negation:
        return _Negation()

    def role_a(self, meta: Meta, items: Items) -> _Role:
        return _Role("A")

    def role_b(self, meta: Meta, items: Items) -> _Role:
        return _Role("B")

    def truth_true(self, meta: Meta, items: Items) -> _Truth:
        return _Truth(True)

    def truth_false(self, meta: Meta, items: Items) -> _Truth:
        return _Truth(False)

    def truth_any(self, meta: Meta, items: Items) -> _Truth:
        return _Truth(None)

    @staticmethod
    def _named(items: Items) -> tuple[Token, str, _Ref | None]:
        """(name token, doc, ref) of a declaration."""
        name = items[0]
        doc = next((_string(i) for i in items[1:] if isinstance(i, Token) and i.type == "STRING"), "")
        return name, doc, _opt(items, _Ref)

    # --- header
    def machine(self, meta: Meta, items: Items) -> _Decl:
        name, doc, ref = self._named(items)
        return _Decl("machine", (str(name), doc, ref), _line(name), _col(name))

    def doc(self, meta: Meta, items: Items) -> _Decl:
        return _Decl("doc", _string(items[0]), meta.line, meta.column)

    def initial(self, meta: Meta, items: Items) -> _Decl:
        return _Decl("initial", items[0], _line(items[0]), _col(items[0]))

    def final(self, meta: Meta, items: Items) -> _Decl:
        return _Decl("final", list(items), meta.line, meta.column)

    # --- declarations
    def state(self, meta: Meta, items: Items) -> _Decl:
        name, doc, ref = self._named(items)
        return _Decl(
            "state",
            State(name=str(name), doc=doc, ref=ref, line=_line(name), column=_col(name)),
            _line(name),
            _col(name),
        )

    def signal(self, meta: Meta, items: Items) -> _Decl:
        name, doc, ref = self._named(items)
        sig = Signal(
            name=str(name),
            doc=doc,
            discard=_opt(items, _Discard) is not None,
            ref=ref,
            line=_line(name),
            column=_col(name),
        )
        return _Decl("signal", sig, _line(name), _col(name))

    def _local(self, kind: LocalKind, items: Items) -> _Decl:
        name, doc, ref = self._named(items)
        return _Decl(
            "local",
            LocalEvent(name=str(name), kind=kind, doc=doc, ref=ref, line=_line(name), column=_col(name)),
            _line(name),
            _col(name),
        )

    def call_decl(self, meta: Meta, items: Items) -> _Decl:
        return self._local("call", items)

    def timer_decl(self, meta: Meta, items: Items) -> _Decl:
        return self._local("timer", items)

    def condition_decl(self, meta: Meta, items: Items) -> _Decl:
        return self._local("condition", items)

    def guard_decl(self, meta: Meta, items: Items) -> _Decl:
        name, doc, ref = self._named(items)
        return _Decl(
            "guard",
            Guard(name=str(name), doc=doc, ref=ref, line=_line(name), column=_col(name)),
            _line(name),
            _col(name),
        )

    def action_decl(self, meta: Meta, items: Items) -> _Decl:
        name, doc, ref = self._named(items)
        return _Decl(
            "action",
            Effect(name=str(name), doc=doc, ref=ref, line=_line(name), column=_col(name)),
            _line(name),
            _col(name),
        )

    # --- transitions
    def one_source(self, meta: Meta, items: Items) -> tuple[str, Token]:
        return ("one", items[0])

    def any_source(self, meta: Meta, items: Items) -> tuple[str, list[Token], int, int]:
        return ("any", list(items), meta.line, meta.column)

    def rcv_trigger(self, meta: Meta, items: Items) -> Trigger:
        return Trigger(kind="rcv", name=str(items[0]), line=meta.line, column=meta.column)

    def local_trigger(self, meta: Meta, items: Items) -> Trigger:
        # The kind (call, timer, condition) is settled when names are resolved.
        return Trigger(kind="call", name=str(items[0]), line=meta.line, column=meta.column)

    def literal(self, meta: Meta, items: Items) -> Literal:
        name = items[-1]
        return Literal(name=str(name), positive=not isinstance(items[0], _Negation), line=meta.line, column=meta.column)

    def guard(self, meta: Meta, items: Items) -> tuple[Literal, ...]:
        return tuple(items)

    def snd_action(self, meta: Meta, items: Items) -> Action:
        return Action(kind="snd", name=str(items[0]), line=meta.line, column=meta.column)

    def do_action(self, meta: Meta, items: Items) -> Action:
        return Action(kind="do", name=str(items[0]), line=meta.line, column=meta.column)

    def effect(self, meta: Meta, items: Items) -> list[Action]:
        return list(items)

    def transition(self, meta: Meta, items: Items) -> _Decl:
        source, target, trigger = items[0], items[1], items[2]
        guard, actions, ref = (), (), None
        for it in items[3:]:
            if isinstance(it, tuple):
                guard = it
            elif isinstance(it, list):
                actions = tuple(it)
            elif isinstance(it, _Ref):
                ref = str(it)
        return _Decl("transition", (source, target, trigger, guard, actions, ref), meta.line, meta.column)

    # --- checks
    def calls_clause(self, meta: Meta, items: Items) -> tuple[str, str, list[Token]]:
        return ("calls", str(items[0]), list(items[1:]))

    def piggyback_clause(self, meta: Meta, items: Items) -> tuple[str, Token, Token]:
        return ("piggyback", items[0], items[1])

    def assume_clause(self, meta: Meta, items: Items) -> tuple[str, Token, bool | None]:
        return ("assume", items[0], items[1].value)

    def coupling_clause(self, meta: Meta, items: Items) -> tuple[str, Token, list[Token]]:
        return ("coupling", items[0], list(items[1:]))

    def reliable_clause(self, meta: Meta, items: Items) -> tuple[str]:
        return ("reliable",)

    def strip_clause(self, meta: Meta, items: Items) -> tuple[str, Token, Token]:
        return ("strip", items[0], items[1])

    def end_pair(self, meta: Meta, items: Items) -> tuple[Token, Token]:
        return (items[0], items[1])

    def ends_clause(self, meta: Meta, items: Items) -> tuple[str, list[tuple[Token, Token]]]:
        return ("ends", list(items))

    def check(self, meta: Meta, items: Items) -> _Decl:
        name = items[0]
        doc = _string(items[1]) if len(items) > 1 and isinstance(items[1], Token) and items[1].type == "STRING" else ""
        clauses = [i for i in items[1:] if isinstance(i, tuple)]
        return _Decl("check", (name, doc, clauses), _line(name), _col(name))

    def start(self, meta: Meta, items: Items) -> list[_Decl]:
        return list(items)


def _syntax_problem(file: str, text: str, exc: UnexpectedInput) -> Problem:
    line, column = getattr(exc, "line", 0) or 0, getattr(exc, "column", 0) or 0
    if isinstance(exc, UnexpectedCharacters):
        at: int | None = exc.pos_in_stream  # lark declares an int; it can be None
        ch = text[at] if at is not None and 0 <= at < len(text) else "?"
        return Problem(file, line, column, f"syntax error: unexpected character {ch!r}")
    if isinstance(exc, UnexpectedEOF):
        lines = text.splitlines() or [""]
        return Problem(file, len(lines), len(lines[-1]) + 1, "syntax error: unexpected end of file")
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    if tok.type == "$END":
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        got = "end of file"
    elif tok.type == "_NL":
        got = "end of line"
    else:
        got = repr(str(tok))
    expected = sorted({_readable_terminal(t) for t in exc.expected})
    return Problem(file, line, column, f"syntax error: unexpected {got}, expected " + " or ".join(expected))


def _readable_terminal(name: str) -> str:
    if name in _READABLE:
        return _READABLE[name]
    try:
        term = _parser().get_terminal(name)
    except KeyError:  # pragma: no cover - lark internals
        return name
    pat = term.pattern
    return repr(pat.value) if pat.type == "str" else name


_Named: TypeAlias = State | Signal | LocalEvent | Guard | Effect


class _Namespaces:
    """The names declared in one file, by kind (``local``: calls, timers and conditions)."""

    KINDS = ("state", "signal", "local", "guard", "action")

    def __init__(self) -> None:
        self.state: dict[str, State] = {}
        self.signal: dict[str, Signal] = {}
        self.local: dict[str, LocalEvent] = {}
        self.guard: dict[str, Guard] = {}
        self.action: dict[str, Effect] = {}

    def names(self, kind: str) -> Mapping[str, _Named]:
        tables: dict[str, Mapping[str, _Named]] = {
            "state": self.state,
            "signal": self.signal,
            "local": self.local,
            "guard": self.guard,
            "action": self.action,
        }
        return tables[kind]

    def any(self) -> bool:
        return any((self.state, self.signal, self.local, self.guard, self.action))

    def add(self, kind: str, node: _Named) -> _Named | None:
        """Declare ``node`` of ``kind``; if its name is taken, the earlier node (``node`` is not added)."""
        first = self.names(kind).get(node.name)
        if first is not None:
            return first
        if isinstance(node, State):
            self.state[node.name] = node
        elif isinstance(node, Signal):
            self.signal[node.name] = node
        elif isinstance(node, LocalEvent):
            self.local[node.name] = node
        elif isinstance(node, Guard):
            self.guard[node.name] = node
        else:
            self.action[node.name] = node
        return None


class _Builder:
    """Resolves names and assembles the :class:`Machine`; collects every problem found."""

    def __init__(self, file: str, lines: tuple[str, ...] = ()) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []

    def err(self, line: int, column: int, msg: str) -> None:
        self.problems.append(Problem(self.file, line, column, msg))

    def build(self, decls: list[_Decl]) -> Machine | None:
        header = None
        doc_lines: list[str] = []
        initial: Token | None = None
        finals: list[Token] = []
        namespaces = _Namespaces()
        raw_transitions: list[_Decl] = []
        raw_checks: list[_Decl] = []
        what = {"state": "state", "signal": "signal", "local": "event", "guard": "guard", "action": "action"}
        for d in decls:
            if d.kind == "machine":
                if header is not None:
                    self.err(d.line, d.column, f"second machine statement (the first is on line {header.line})")
                    continue
                if raw_transitions or namespaces.any() or initial is not None:
                    self.err(d.line, d.column, "the machine statement must come first")
                header = d
            elif header is None:
                self.err(d.line, d.column, "the file must start with a machine statement")
                header = _Decl("machine", ("unnamed", "", None), d.line, d.column)
                self._dispatch(d, doc_lines, namespaces, raw_transitions, raw_checks, what)
            else:
                if d.kind == "initial":
                    if initial is not None:
                        self.err(d.line, d.column, f"second initial statement (the first is on line {_line(initial)})")
                    else:
                        initial = d.value
                elif d.kind == "final":
                    finals.extend(d.value)
                else:
                    self._dispatch(d, doc_lines, namespaces, raw_transitions, raw_checks, what)
        if header is None:
            self.err(1, 1, "empty file: expected a machine statement")
            return None
        name, mdoc, mref = header.value
        if not name.isidentifier() or keyword.iskeyword(name):
            self.err(header.line, header.column, f"machine name {name!r} must be a Python identifier")
        states = namespaces.state
        if not states:
            self.err(header.line, header.column, "no states declared")
        if initial is None:
            self.err(header.line, header.column, "no initial state: add `initial STATE`")
        elif str(initial) not in states:
            self.err(_line(initial), _col(initial), f"initial state {initial} is not declared")
        if not finals:
            self.err(header.line, header.column, "no final state: add `final STATE`")
        seen_final: set[str] = set()
        for f in finals:
            if str(f) not in states:
                self.err(_line(f), _col(f), f"final state {f} is not declared")
            elif str(f) in seen_final:
                self.err(_line(f), _col(f), f"state {f} is listed as final twice")
            seen_final.add(str(f))
        final_names = tuple(dict.fromkeys(str(f) for f in finals if str(f) in states))
        transitions = [t for t in (self._transition(d, namespaces, final_names) for d in raw_transitions) if t]
        edges = self._expand(transitions, states, final_names)
        checks = [c for c in (self._check(d, namespaces) for d in raw_checks) if c]
        if self.problems:
            return None
        return Machine(
            name=name,
            title=mdoc,
            doc=" ".join(doc_lines).strip(),
            ref=mref,
            file=self.file,
            initial=str(initial),
            finals=final_names,
            states=tuple(states.values()),
            signals=tuple(namespaces.signal.values()),
            locals=tuple(namespaces.local.values()),
            guards=tuple(namespaces.guard.values()),
            effects=tuple(namespaces.action.values()),
            transitions=tuple(transitions),
            edges=edges,
            checks=tuple(checks),
            line=header.line,
            column=header.column,
        )

    def _dispatch(
        self,
        d: _Decl,
        doc_lines: list[str],
        namespaces: _Namespaces,
        raw_transitions: list[_Decl],
        raw_checks: list[_Decl],
        what: dict[str, str],
    ) -> None:
        if d.kind == "doc":
            doc_lines.append(d.value)
        elif d.kind in _Namespaces.KINDS:
            node = d.value
            first = namespaces.add(d.kind, node)
            if first is not None:
                self.err(
                    d.line, d.column, f"duplicate {what[d.kind]} {node.name} (first declared on line {first.line})"
                )
        elif d.kind == "transition":
            raw_transitions.append(d)
        elif d.kind == "check":
            raw_checks.append(d)
        else:  # initial/final before machine
            pass

    def _known(self, namespaces: _Namespaces, kind: str, tok: Token, what: str) -> bool:
        if str(tok) in namespaces.names(kind):
            return True
        self.err(_line(tok), _col(tok), f"unknown {what} {tok}")
        return False

    def _transition(self, d: _Decl, namespaces: _Namespaces, finals: tuple[str, ...]) -> Transition | None:
        source, target, trigger, guard, actions, ref = d.value
        before = len(self.problems)
        states = namespaces.state
        src_name: str | None
        excepts: tuple[str, ...] = ()
        if source[0] == "one":
            tok = source[1]
            self._known(namespaces, "state", tok, "state")
            src_name = str(tok)
        else:
            src_name = None
            for tok in source[1]:
                if self._known(namespaces, "state", tok, "state") and str(tok) in finals:
                    self.err(_line(tok), _col(tok), f"`except {tok}` is not needed: `*` never includes final states")
            excepts = tuple(str(t) for t in source[1])
        if str(target) not in states:
            self.err(_line(target), _col(target), f"unknown state {target}")
        if trigger.kind == "rcv":
            if trigger.name not in namespaces.signal:
                self.err(trigger.line, trigger.column, f"unknown signal {trigger.name} (declare it with `signal`)")
        else:
            loc = namespaces.local.get(trigger.name)
            if loc is None:
                hint = " (write `rcv NAME` for a received signal)" if trigger.name in namespaces.signal else ""
                self.err(
                    trigger.line,
                    trigger.column,
                    f"unknown event {trigger.name}: declare it with `call`, `timer` or `condition`{hint}",
                )
            else:
                trigger = Trigger(kind=loc.kind, name=trigger.name, line=trigger.line, column=trigger.column)
        seen_guard: dict[str, Literal] = {}
        for lit in guard:
            if lit.name not in namespaces.guard:
                self.err(lit.line, lit.column, f"unknown guard {lit.name} (declare it with `guard`)")
            if lit.name in seen_guard:
                self.err(lit.line, lit.column, f"guard {lit.name} appears twice in one condition")
            seen_guard[lit.name] = lit
        for act in actions:
            if act.kind == "snd" and act.name not in namespaces.signal:
                self.err(act.line, act.column, f"unknown signal {act.name} (declare it with `signal`)")
            elif act.kind == "do" and act.name not in namespaces.action:
                self.err(act.line, act.column, f"unknown action {act.name} (declare it with `action`)")
        if ref is not None and not ref.startswith("RFC "):
            self.err(d.line, d.column, f"reference {ref!r} should start with 'RFC ' (e.g. \"RFC 8684 Section 3.5\")")
        if len(self.problems) > before:
            return None
        return Transition(
            source=src_name,
            excepts=excepts,
            target=str(target),
            trigger=trigger,
            guard=tuple(guard),
            actions=tuple(actions),
            ref=ref,
            redundant=redundant_reason(self.lines[d.line - 1]) if d.line <= len(self.lines) else None,
            line=d.line,
            column=d.column,
        )

    def _expand(
        self, transitions: list[Transition], states: dict[str, State], finals: tuple[str, ...]
    ) -> tuple[Edge, ...]:
        edges: list[Edge] = []
        for t in transitions:
            if t.source is not None:
                edges.append(Edge(source=t.source, transition=t, line=t.line, column=t.column))
            else:
                for s in states:
                    if s not in finals and s not in t.excepts:
                        edges.append(Edge(source=s, transition=t, line=t.line, column=t.column))
        return tuple(edges)

    def _check(self, d: _Decl, namespaces: _Namespaces) -> Check | None:
        name, doc, clauses = d.value
        before = len(self.problems)
        calls: dict[str, list[str]] = {"A": [], "B": []}
        piggyback: list[tuple[str, str]] = []
        assume: list[tuple[str, bool | None]] = []
        couplings: list[Coupling] = []
        reliable = False
        strip: list[tuple[str, str]] = []
        ends: list[tuple[str, str]] = []
        for clause in clauses:
            kind = clause[0]
            if kind == "reliable":
                reliable = True
            elif kind == "strip":
                if all([self._known(namespaces, "signal", tok, "signal") for tok in clause[1:]]):
                    if clause[1] == clause[2]:
                        self.err(_line(clause[1]), _col(clause[1]), f"strip {clause[1]} to itself")
                    strip.append((str(clause[1]), str(clause[2])))
            elif kind == "ends":
                for pair in clause[1]:
                    if all([self._known(namespaces, "state", tok, "state") for tok in pair]):
                        ends.append((str(pair[0]), str(pair[1])))
            elif kind == "calls":
                for tok in clause[2]:
                    loc = namespaces.local.get(str(tok))
                    if loc is None or loc.kind != "call":
                        self.err(_line(tok), _col(tok), f"unknown call {tok} (declare it with `call`)")
                    else:
                        calls[clause[1]].append(str(tok))
            elif kind == "piggyback":
                for tok in clause[1:]:
                    self._known(namespaces, "signal", tok, "signal")
                piggyback.append((str(clause[1]), str(clause[2])))
            elif kind == "assume":
                if self._known(namespaces, "guard", clause[1], "guard"):
                    assume.append((str(clause[1]), clause[2]))
            else:
                cond, acts = clause[1], clause[2]
                loc = namespaces.local.get(str(cond))
                if loc is None or loc.kind != "condition":
                    self.err(_line(cond), _col(cond), f"unknown condition {cond} (declare it with `condition`)")
                for tok in acts:
                    self._known(namespaces, "action", tok, "action")
                couplings.append(
                    Coupling(
                        condition=str(cond), actions=tuple(str(a) for a in acts), line=_line(cond), column=_col(cond)
                    )
                )
        if len(self.problems) > before:
            return None
        return Check(
            name=str(name),
            doc=doc,
            calls_a=tuple(calls["A"]),
            calls_b=tuple(calls["B"]),
            piggyback=tuple(piggyback),
            assume=tuple(assume),
            couplings=tuple(couplings),
            reliable=reliable,
            strip=tuple(strip),
            ends=tuple(ends),
            line=d.line,
            column=d.column,
        )


_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_REDUNDANT = re.compile(r"#\s*redundant:\s*(.*?)\s*$")


def redundant_reason(line: str) -> str | None:
    """The reason of a ``# redundant: why`` comment on a source line (outside strings), else ``None``."""
    m = _REDUNDANT.search(_STRING.sub(lambda s: " " * len(s.group()), line))
    return m.group(1) if m and m.group(1) else None


def parse(text: str, file: str = "<string>") -> Machine:
    """The machine described by ``text``; raises :class:`FsmSpecError` on a syntax or name error."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise FsmSpecError([_syntax_problem(file, text, exc)]) from None
    try:
        decls = _ToNodes().transform(tree)
    except VisitError as exc:  # pragma: no cover - a bug in the transformer
        raise exc.orig_exc from None
    builder = _Builder(file, tuple(text.splitlines()))
    machine = builder.build(decls)
    if builder.problems:
        raise FsmSpecError(sorted(builder.problems, key=lambda p: (p.line, p.column)))
    assert machine is not None
    return machine


def load(path: str | Path, *, check: bool = True) -> Machine:
    """Parse the file at ``path``; with ``check`` (the default) also raise on the static errors
    of :func:`mptcpspec.fsm.static.problems` (nondeterminism, unreachable or dead-end states)."""
    path = Path(path)
    machine = parse(path.read_text(encoding="utf-8"), str(path))
    if check:
        from mptcpspec.fsm.static import problems

        errors = [p for p in problems(machine) if p.severity == "error"]
        if errors:
            raise FsmSpecError(errors)
    return machine
