"""The state-machine DSL: grammar, typed model, and errors that name file, line, column and what is wrong."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from mptcpspec.errors import MptcpspecError, SpecError
from mptcpspec.fsm import FsmSpecError, load, parse
from mptcpspec.fsm.parser import grammar_path
from tests.conftest import ROOT

SMALL = """\
# A comment before everything.
machine tiny "a small machine" @ "RFC 8684 Section 3.3.3"
doc "Two states and a guard."

initial OPEN
final SHUT

state OPEN "open"                  # trailing comment
state SHUT "shut"     @ "RFC 8684 Section 3.3.3"
signal FIN "a FIN"
signal ACK[FIN] "the ACK of a FIN"
signal RST "a reset" discard
call CLOSE "the application closes"
guard ok "all is well"
action FREE "free the state"

OPEN -> SHUT : CLOSE if ok / snd FIN, FREE          @ "RFC 8684 Section 3.3.3"
OPEN -> OPEN : CLOSE if not ok                       @ "RFC 8684 Section 3.3.3"
*    -> SHUT : rcv FIN / snd ACK[FIN]                @ "RFC 8684 Section 3.3.3"
check both "both close" : A calls CLOSE,
    B calls CLOSE, assume ok true
"""


def errors_of(text: str, check: bool = True, tmp_path: Path | None = None) -> FsmSpecError:
    with pytest.raises(FsmSpecError) as info:
        if check:
            path = (tmp_path or Path("/nonexistent")) / "bad.fsm"
            path.write_text(text)
            load(path)
        else:
            parse(text, "bad.fsm")
    return info.value


def test_small_machine_model():
    m = parse(SMALL, "tiny.fsm")
    assert (m.name, m.title, m.doc, m.ref, m.file) == (
        "tiny",
        "a small machine",
        "Two states and a guard.",
        "RFC 8684 Section 3.3.3",
        "tiny.fsm",
    )
    assert (m.initial, m.finals, m.state_names) == ("OPEN", ("SHUT",), ("OPEN", "SHUT"))
    assert [s.name for s in m.signals] == ["FIN", "ACK[FIN]", "RST"] and m.signals[2].discard
    t = m.transitions[0]
    assert (t.source, t.target, t.trigger.kind, t.trigger.text) == ("OPEN", "SHUT", "call", "CLOSE")
    assert [g.text for g in t.guard] == ["ok"] and [a.text for a in t.actions] == ["snd FIN", "FREE"]
    assert t.label == "CLOSE if ok / snd FIN, FREE"
    assert (t.line, t.column) == (17, 1)
    assert (t.trigger.line, t.trigger.column) == (17, 16)
    assert (m.transitions[1].guard[0].positive, m.transitions[1].guard[0].text) == (False, "not ok")
    # `*` covers every state that is not final.
    wild = m.transitions[2]
    assert wild.source is None and [e.source for e in m.edges if e.transition is wild] == ["OPEN"]
    assert m.events() == {"CLOSE": "call", "rcv FIN": "rcv", "rcv ACK[FIN]": "rcv", "rcv RST": "rcv"}
    (c,) = m.checks
    assert (c.name, c.calls_a, c.calls_b, c.assume) == ("both", ("CLOSE",), ("CLOSE",), (("ok", True),))
    # Every node carries its position and is frozen.
    for node in (
        m,
        *m.states,
        *m.signals,
        *m.locals,
        *m.guards,
        *m.effects,
        *m.transitions,
        *m.checks,
        t.trigger,
        t.guard[0],
        t.actions[0],
    ):
        assert node.line >= 1 and node.column >= 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.states[0].name = "X"  # type: ignore[misc]


def test_grammar_ships_in_the_package():
    assert grammar_path().parent == ROOT / "mptcpspec" / "fsm" and grammar_path().suffix == ".lark"


@pytest.mark.parametrize(
    "change, line, column, message",
    [
        # syntax
        (
            ("OPEN -> SHUT : CLOSE if ok", "OPEN -> SHUT   CLOSE if ok"),
            17,
            16,
            "syntax error: unexpected 'CLOSE', expected ':'",
        ),
        (('state OPEN "open"', "state OPEN $"), 8, 12, "syntax error: unexpected character '$'"),
        (('signal FIN "a FIN"', "signal fin"), 10, 8, "syntax error: unexpected 'fin', expected a signal name"),
        # names
        (("OPEN -> OPEN : CLOSE if not ok", "OPEN -> OPNE : CLOSE if not ok"), 18, 9, "unknown state OPNE"),
        (("*    -> SHUT : rcv FIN", "*    -> SHUT : rcv FIM"), 19, 16, "unknown signal FIM (declare it with `signal`)"),
        (
            ("*    -> SHUT : rcv FIN", "*    -> SHUT : FIN"),
            19,
            16,
            "unknown event FIN: declare it with `call`, `timer` or "
            "`condition` (write `rcv NAME` for a received signal)",
        ),
        (("if not ok", "if not okay"), 18, 25, "unknown guard okay (declare it with `guard`)"),
        (("snd FIN, FREE", "snd FIN, FRE"), 17, 39, "unknown action FRE (declare it with `action`)"),
        (('signal RST "a reset"', 'signal FIN "again"'), 12, 8, "duplicate signal FIN (first declared on line 10)"),
        (("initial OPEN", "initial OPN"), 5, 9, "initial state OPN is not declared"),
        (
            ("*    -> SHUT", "* except SHUT -> SHUT"),
            19,
            10,
            "`except SHUT` is not needed: `*` never includes final states",
        ),
        (
            ('if not ok                       @ "RFC 8684 Section 3.3.3"', 'if not ok @ "RFC8684"'),
            18,
            1,
            "reference 'RFC8684' should start with 'RFC '",
        ),
        (("B calls CLOSE", "B calls SHUT"), 21, 13, "unknown call SHUT (declare it with `call`)"),
        (("assume ok true", "strip FIN to FIM"), 21, 33, "unknown signal FIM"),
        (("assume ok true", "strip FIN to FIN"), 21, 26, "strip FIN to itself"),
        (("assume ok true", "ends A=SHUT B=SHOT"), 21, 34, "unknown state SHOT"),
    ],
)
def test_errors_name_file_line_column_and_what(change, line, column, message):
    old, new = change
    assert old in SMALL
    err = errors_of(SMALL.replace(old, new, 1), check=False)
    assert isinstance(err, SpecError) and isinstance(err, MptcpspecError)
    assert (err.file, err.line, err.column) == ("bad.fsm", line, column), str(err)
    assert err.reason.startswith(message), err.reason
    assert str(err).startswith(f"bad.fsm:{line}:{column}: ")


def test_missing_machine_and_initial_and_final():
    err = errors_of("state A\n", check=False)
    assert "the file must start with a machine statement" in str(err)
    err = errors_of("machine m\nstate A\n", check=False)
    assert "no initial state" in str(err) and "no final state" in str(err)
    assert len(err.problems) == 2
    err = errors_of("", check=False)
    assert err.line == 1 and "empty file" in err.reason
    err = errors_of("machine m\ninitial A\nfinal A\nstate A\nstate A\n", check=False)
    assert str(err) == "bad.fsm:5:7: duplicate state A (first declared on line 4)"


def test_all_name_errors_are_reported_at_once():
    text = SMALL.replace("rcv FIN", "rcv FIM").replace("snd FIN,", "snd FIX,")
    err = errors_of(text, check=False)
    assert [p.line for p in err.problems] == [17, 19]
    assert len(str(err).splitlines()) == 2


def test_nondeterminism_is_an_error(tmp_path):
    text = SMALL.replace("OPEN -> OPEN : CLOSE if not ok", "OPEN -> OPEN : CLOSE")
    err = errors_of(text, tmp_path=tmp_path)
    assert err.line == 18 and err.column == 1
    assert (
        "nondeterministic: in state OPEN, 'CLOSE' has the transition of line 17 and this one, and no guard "
        "tells them apart"
    ) in err.reason
    # Exclusive guards are fine; so are guards on different names when one says `not`.
    parse(SMALL)


def test_a_star_line_conflicting_with_a_state_line_is_nondeterministic(tmp_path):
    text = SMALL.replace("state SHUT", 'state MID "mid"\nMID -> SHUT : rcv FIN\nstate SHUT')
    text = text.replace("OPEN -> OPEN : CLOSE if not ok", "OPEN -> OPEN : CLOSE if not ok\nOPEN -> MID : rcv RST")
    err = errors_of(text, tmp_path=tmp_path)
    assert "in state MID, 'rcv FIN'" in err.reason


def test_unreachable_and_dead_end_states_are_errors(tmp_path):
    text = SMALL.replace("state SHUT", 'state LOST "never entered"\nstate SHUT')
    err = errors_of(text, tmp_path=tmp_path)
    assert (err.line, err.column) == (9, 7) and err.reason == "state LOST is unreachable from the initial state OPEN"
    text = SMALL.replace("state SHUT", 'state STUCK "no way out"\nstate SHUT').replace(
        "OPEN -> OPEN : CLOSE if not ok", "OPEN -> STUCK : CLOSE if not ok"
    )
    text = text.replace("*    -> SHUT : rcv FIN", "OPEN -> SHUT : rcv FIN")
    err = errors_of(text, tmp_path=tmp_path)
    assert err.reason == "state STUCK cannot reach a final state (SHUT)"
    # parse() alone does not run the static checks; load(check=False) neither.
    parse(text)
    (tmp_path / "ok.fsm").write_text(text)
    load(tmp_path / "ok.fsm", check=False)


def test_lark_stays_out_of_the_codecs_and_the_generated_machines():
    code = (
        "import sys, mptcpspec.codec.options, mptcpspec.codec.generated.closure, mptcpspec.codec.generated.join, "
        "mptcpspec.codec.generated.establishment, mptcpspec.fsm, mptcpspec.fsm.observer; "
        "assert 'lark' not in sys.modules, 'lark imported'"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_the_middlebox_and_end_clauses():
    m = parse(SMALL.replace("assume ok true", "strip ACK[FIN] to FIN, ends A=SHUT B=SHUT or A=OPEN B=SHUT"), "t.fsm")
    (c,) = m.checks
    assert c.strip == (("ACK[FIN]", "FIN"),)
    assert c.ends == (("SHUT", "SHUT"), ("OPEN", "SHUT"))


def test_shipped_specs_parse_without_warnings():
    from mptcpspec.fsm.static import problems

    for name in ("closure", "establishment", "join"):
        m = load(ROOT / "spec" / f"{name}.fsm")
        assert m.name == name
        assert problems(m) == []
        # MPTCP's RFC, or TCP's for what a TCP host does anyway (retransmission, a closed host's RST)
        assert all(t.ref and t.ref.startswith(("RFC 8684 ", "RFC 9293 ")) for t in m.transitions)
