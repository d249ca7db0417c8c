"""Promela export of a ``check`` scenario, verified with spin: a second, independent checker.

:func:`to_promela` writes the same two-endpoint system as :mod:`mptcpspec.fsm.explore` (same
channels, perfect timers, piggybacking, couplings, assumptions, calls at most once) as a Promela
model; :func:`verify` runs ``spin -a``, compiles the verifier with the C compiler and runs it.
Spin then checks, by its own state-space search:

* an ``assert`` on every unspecified reception and before every send (channel overflow);
* a watchdog that, when nothing else can move (Promela's ``timeout``), asserts that both
  endpoints are in a final state with both channels empty: no deadlock.

Liveness ("finishing stays possible from every state") and unspecified events (a call or timer
whose guards leave a value unhandled) are checked by the Python explorer only.
The lossy channel here loses the message at the head of a channel, which reaches the same
orders of delivery as losing any message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mptcpspec.fsm.explore import guard_split
from mptcpspec.fsm.model import Check, Machine
from mptcpspec.fsm.runtime import Table, Transition

__all__ = ["SpinResult", "spin_available", "to_promela", "verify"]


def _id(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def spin_available() -> bool:
    return shutil.which("spin") is not None and (shutil.which("cc") or shutil.which("gcc")) is not None


def to_promela(m: Machine, check: Check, lossy: bool, bound: int = 8) -> str:
    """The Promela model of ``check`` on machine ``m`` (lossy or in-order channels)."""
    t = Table.from_machine(m)
    sigs = [s.name for s in m.signals]
    sig = {s: _id("S_", s) for s in sigs}
    st = {s: _id("ST_", s) for s in t.states}
    assume = dict(check.assume)
    carried = {on: c for c, on in check.piggyback}
    track_sent = {c for c, _ in check.piggyback}
    couplings = {c.condition: c.actions for c in check.couplings}
    track_did = {a for acts in couplings.values() for a in acts}
    calls = (set(check.calls_a), set(check.calls_b))
    out = [
        f"/* {m.name}: check {check.name} ({'lossy' if lossy else 'in-order'} channels), from {m.file}. */",
        "mtype = { NONE, " + ", ".join(sig[s] for s in sigs) + " };",
    ]
    out += [f"#define {st[s]} {i}" for i, s in enumerate(t.states)]
    final = " || ".join(f"st[E] == {st[f]}" for f in t.finals)
    done = (
        " || ".join(f"(st[0] == {st[a]} && st[1] == {st[b]})" for a, b in check.ends)
        if check.ends
        else "FINAL(0) && FINAL(1)"
    )
    out += [
        f"#define FINAL(E) ({final})",
        f"#define FINISHED (({done}) && empty(ch[0]) && empty(ch[1]))",
        f"byte st[2] = {st[t.initial]};",
        f"chan ch[2] = [{bound}] of {{ mtype, mtype }};",
    ]
    out += [f"bit sent_{sig[s]}[2];" for s in sorted(track_sent)]
    out += [f"bit did_{_id('', a)}[2];" for a in sorted(track_did)]
    out += [f"bit called_{_id('', c)}[2];" for c in sorted(calls[0] | calls[1])]

    def enabled(opts: tuple[Transition[str], ...]) -> list[Transition[str]]:
        return [tr for tr in opts if all(assume.get(g, True) in (None, want) for g, want in tr.guard)]

    def apply(tr: Transition[str], me: int, ind: str) -> list[str]:
        body = [f"{ind}st[{me}] = {st[tr.target]};"]
        for a in tr.actions:
            if a.kind == "snd":
                body.append(f"{ind}assert(nfull(ch[{me}]));")
                extra = carried.get(a.name)
                if extra is not None:
                    body.append(
                        f"{ind}if :: sent_{sig[extra]}[{me}] -> ch[{me}]!{sig[extra]},{sig[a.name]} "
                        f":: else -> ch[{me}]!{sig[a.name]},NONE fi;"
                    )
                else:
                    body.append(f"{ind}ch[{me}]!{sig[a.name]},NONE;")
                if a.name in track_sent:
                    body.append(f"{ind}sent_{sig[a.name]}[{me}] = 1;")
            elif a.name in track_did:
                body.append(f"{ind}did_{_id('', a.name)}[{me}] = 1;")
        return body

    def strip(var: str) -> list[str]:
        """A middlebox may deliver a stripped signal instead (``strip X to Y``), repeatedly."""
        return [f"if :: {var} == {sig[a]} -> {var} = {sig[b]} :: true fi;" for _ in check.strip for a, b in check.strip]

    for me in (0, 1):
        out.append(f"inline handle_{me}(s) {{")
        out.append("  if")
        for name in sigs:
            ev = f"rcv {name}"
            out.append(f"  :: s == {sig[name]} ->")
            out.append("     if")
            for state in t.states:
                en, gap = guard_split(t, assume, state, ev)
                for tr in en:
                    out.append(f"     :: st[{me}] == {st[state]} ->")
                    out += apply(tr, me, "          ")
                if gap is not None:
                    out.append(f"     :: st[{me}] == {st[state]} -> assert(false) /* {name} with {gap}: unspecified */")
            drop = ["true"] if ev in t.discard else [f"FINAL({me})"]
            out.append(f"     :: else -> assert({' || '.join(drop)}) /* unspecified reception of {name} */")
            out.append("     fi")
        out.append("  :: else -> skip")
        out.append("  fi")
        out.append("}")
    for me in (0, 1):
        other = 1 - me
        out.append(f"active proctype endpoint_{'AB'[me]}() {{")
        out.append("  mtype m1, m2;")
        out.append("end:")
        out.append("  do")
        for ev, kind in t.events.items():
            if kind == "rcv":
                continue
            if kind == "call" and ev not in calls[me]:
                continue
            for state in t.states:
                for tr in enabled(t.options(state, ev)):
                    cond = [f"st[{me}] == {st[state]}"]
                    pre = []
                    if kind == "call":
                        cond.append(f"!called_{_id('', ev)}[{me}]")
                        pre.append(f"called_{_id('', ev)}[{me}] = 1;")
                    elif kind == "timer":
                        cond.append("empty(ch[0]) && empty(ch[1])")
                    elif ev in couplings:
                        cond.append(
                            " && ".join(
                                "(" + " || ".join(f"did_{_id('', a)}[{k}]" for a in couplings[ev]) + ")" for k in (0, 1)
                            )
                        )
                    out.append(f"  :: atomic {{ {' && '.join(cond)} -> /* {'AB'[me]}: {ev} */")
                    out += ["       " + line for line in pre]
                    out += apply(tr, me, "       ")
                    out.append("     }")
        out.append(f"  :: atomic {{ nempty(ch[{other}]) -> ch[{other}]?m1,m2;")
        out += ["       " + line for line in strip("m1") + strip("m2")]
        out.append(f"       handle_{me}(m1);")
        out.append(f"       if :: m2 != NONE -> handle_{me}(m2) :: else -> skip fi }}")
        out.append("  od")
        out.append("}")
    if lossy:
        out += [
            "active proctype loss() {",
            "  mtype a, b;",
            "end:",
            "  do",
            "  :: atomic { nempty(ch[0]) -> ch[0]?a,b }",
            "  :: atomic { nempty(ch[1]) -> ch[1]?a,b }",
            "  od",
            "}",
        ]
    out += ["active proctype watchdog() {", "  timeout -> assert(FINISHED)", "}"]
    return "\n".join(out) + "\n"


@dataclass
class SpinResult:
    scenario: str
    mode: str
    ok: bool
    states: int | None
    errors: int | None
    detail: str

    def summary(self) -> str:
        n = f"{self.states} states stored" if self.states is not None else "no state count"
        return f"{self.scenario} [{self.mode}]: {'ok' if self.ok else 'errors'}; spin: {n}, errors: {self.errors}"


def run_spin(model: str, workdir: Path, timeout: int = 120) -> tuple[bool, int | None, int | None, str]:
    """Verify a Promela model text; returns (ok, states stored, errors, spin's output)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return False, None, None, "no C compiler (cc or gcc) to build spin's verifier"
    (workdir / "model.pml").write_text(model)
    steps = [
        ["spin", "-a", "model.pml"],
        [cc, "-O0", "-w", "-DSAFETY", "-DVECTORSZ=4096", "-o", "pan", "pan.c"],
        ["./pan", "-m100000", "-w20", "-n"],
    ]
    log = []
    for cmd in steps:
        r = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env={**os.environ, "LC_ALL": "C"}
        )
        log.append(r.stdout + r.stderr)
        if r.returncode != 0 and cmd[0] != "./pan":
            return False, None, None, "\n".join(log)
    text = log[-1]
    errors = re.search(r"errors:\s*(\d+)", text)
    states = re.search(r"(\d+)\s+states, stored", text)
    nerr = int(errors.group(1)) if errors else None
    return nerr == 0, int(states.group(1)) if states else None, nerr, "\n".join(log)


def verify(m: Machine, modes: tuple[bool, ...] = (False, True)) -> list[SpinResult]:
    """Every ``check`` of ``m`` through spin, in-order then lossy (in-order only when ``reliable``)."""
    results = []
    for check in m.checks:
        for lossy in modes:
            if lossy and check.reliable:
                continue
            with tempfile.TemporaryDirectory(prefix="mptcpspec-spin-") as tmp:
                ok, states, errors, detail = run_spin(to_promela(m, check, lossy), Path(tmp))
            results.append(SpinResult(check.name, "lossy" if lossy else "in-order", ok, states, errors, detail))
    return results
