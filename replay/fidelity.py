"""How faithful a replay was: what it sent against what the capture's client sent.

:func:`record` asks a :class:`~replay.core.Replay` (before it starts) to keep, for each data segment
it sends (first transmissions and data sent again on another subflow; not a subflow's own
retransmissions), one row: subflow, relative DSN, length, the engine's ``now``; the run loop
(:func:`~replay.run.run_replay`) adds when each data packet was handed to the transport, the sender
when the live connection kept due data back (:meth:`Recorder.hold`).  Nothing else changes: the
same packets go out.  :func:`fidelity` then compares with the plan:

- segment sizes: the captured client data segments against the live first transmissions (how
  many kept their size, were split or merged; percentiles of both);
- which subflow carried which data: octets per captured subflow and per live subflow, and the
  octets that went on another subflow than planned, with why when the engine says so (a refused
  join, a reset or failed subflow, MP_FAIL, a stall, a data-level retransmission...);
- with paced timing (``as-captured``, xN), the schedule error of each first transmission: the
  time it was handed to the transport minus its planned time (captured time, scaled), both from
  the connection's start; and how much of it the live connection imposed: the sender notes when a
  due segment waited for a window (the server's, at data level or on a subflow; a congestion
  window), for the server's first DSS or for its subflow's handshake (:class:`Held`), and until
  when.  A segment held back is due, for the sender's own error, from when the hold ended.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any

from mptcpspec.replay import events as ev
from mptcpspec.replay.plan import cover, uncovered
from mptcpspec.replay.subflow import JOIN_REFUSED

if TYPE_CHECKING:
    from mptcpspec.replay.core import Replay

__all__ = [
    "Fidelity",
    "Held",
    "Moved",
    "Recorder",
    "Schedule",
    "Sizes",
    "SubflowShare",
    "Why",
    "fidelity",
    "record",
]

LATE = 0.001  #: a first transmission later than this after its planned time is counted late


class Held(IntEnum):
    """What kept a due data segment back, the sender aside: the live connection's state."""

    CONNECTION_WINDOW = 1  #: the server's receive window at data level (RFC 8684 §3.3.5)
    RECEIVE_WINDOW = 2  #: the server's receive window on the subflow
    CONGESTION_WINDOW = 3  #: the subflow's congestion window (RFC 5681)
    FIRST_DSS = 4  #: the server had not shown it holds the connection yet (its first DSS, RFC 8684 §3.1)
    JOIN_OPENING = 5  #: the planned subflow was in its handshake


ANY = -1  #: a hold's subflow when it holds the whole connection's data


class Recorder:
    """What a replay sent, as flat rows: ``rows`` (subflow, relative DSN, length, ``now``) per data
    segment, appended by the sender; ``marks`` (rows so far, clock) after each data packet went out;
    ``holds`` (start, end, :class:`Held`, subflow or :data:`ANY`): when the sender stopped at a due
    segment the live connection kept back, and when it went on."""

    __slots__ = ("rows", "marks", "holds", "holding", "pending")

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, float]] = []
        self.marks: list[tuple[int, float]] = []
        self.pending: dict[int, int] = {}  #: a data packet built, not handed over yet (its id) -> rows up to it
        self.holds: list[tuple[float, float, Held, int]] = []
        self.holding: tuple[float, Held, int] | None = None  #: the hold going on: start, what, subflow

    def hold(self, now: float, what: Held, subflow: int) -> None:
        """At ``now`` the sender stopped at a due segment that ``what`` kept back (on ``subflow``, or
        :data:`ANY`); it goes on holding until :meth:`release` or another hold."""
        h = self.holding
        if h is not None:
            if h[1] is what and h[2] == subflow:
                return
            self.holds.append((h[0], now, h[1], h[2]))
        self.holding = (now, what, subflow)

    def release(self, now: float) -> None:
        """At ``now`` the sender stopped for no hold (all due data went, or the next waits for its time)."""
        h = self.holding
        if h is not None:
            self.holds.append((h[0], now, h[1], h[2]))
            self.holding = None

    def built(self, packet: bytes) -> None:
        """``packet`` (built by the sender) carries the latest rows."""
        self.pending[id(packet)] = len(self.rows)

    def handed(self, packet: bytes, now: float) -> None:
        """``packet`` was handed to the transport by ``now``: if it carries rows, they (and those
        before) went by then."""
        n = self.pending.pop(id(packet), 0)
        marks = self.marks
        if n and (not marks or marks[-1][0] < n):
            marks.append((n, now))

    def sent_times(self) -> list[float]:
        """Each row's time on the wire: the mark after it, else the engine's ``now``."""
        rows, marks = self.rows, self.marks
        out = []
        m = 0
        for i, row in enumerate(rows):
            while m < len(marks) and marks[m][0] <= i:
                m += 1
            out.append(marks[m][1] if m < len(marks) else row[3])
        return out


def record(core: Replay) -> Recorder:
    """Make ``core`` (not started yet) keep what :func:`fidelity` needs; the recorder."""
    if core.conn.started:
        raise ValueError("fidelity: the recorder must be set before the replay starts")
    rec = Recorder()
    core.conn.record = rec
    return rec


class Why(Enum):
    """Why data went on another subflow than the capture's."""

    REFUSED_JOIN = "the planned subflow's join was refused"
    NOT_ESTABLISHED = "the planned subflow was not established yet"
    RESET = "the planned subflow was reset by the server"
    FAILED = "the planned subflow was given up"
    MP_FAIL = "MP_FAIL on the planned subflow"
    CONGESTION = "the planned subflow had lost segments and no room"
    STALL = "reinjected: its subflow's retransmission timer expired"
    DATA_LEVEL = "data-level retransmission: acknowledged on the subflow, not at data level"
    OTHER = "sent again on another subflow"


@dataclass(frozen=True, slots=True)
class Sizes:
    """Data segment sizes (payload octets): how many, how many octets, percentiles (nearest rank)."""

    count: int
    octets: int
    min: int
    p50: int
    p90: int
    p99: int
    max: int

    @classmethod
    def of(cls, sizes: list[int]) -> Sizes:
        s = sorted(sizes)
        if not s:
            return cls(0, 0, 0, 0, 0, 0, 0)
        return cls(len(s), sum(s), s[0], _rank(s, 0.5), _rank(s, 0.9), _rank(s, 0.99), s[-1])

    def describe(self) -> str:
        return (
            f"{self.count} segments, {self.octets} octets; sizes min {self.min}, median {self.p50}, "
            f"p90 {self.p90}, p99 {self.p99}, max {self.max}"
        )


@dataclass(frozen=True, slots=True)
class SubflowShare:
    """Octets of one subflow: the capture's client data on it, the live first transmissions on it,
    and data sent on it again that had gone on another first (reinjections)."""

    subflow: int
    planned: int
    sent: int
    again: int


@dataclass(frozen=True, slots=True)
class Moved:
    """Data that went on subflow ``live`` where the capture had it on ``planned``: ``again`` when it
    was sent there in addition (a reinjection), else instead."""

    planned: int
    live: int
    why: Why
    again: bool
    segments: int
    octets: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """The schedule error of the first transmissions (seconds: time handed to the transport minus
    the planned time, both from the connection's start; the planned times moved ``shift`` later
    when the live server's first SYN/ACK came that much later than the captured one).  ``held``:
    how many the live connection kept back past their time, by what (:class:`Held`); ``own_*``:
    the sender's own error, each held segment counted from when its hold ended."""

    packets: int
    median: float
    p99: float
    max: float
    min: float
    late: int  #: more than :data:`LATE` late
    shift: float = 0.0
    held: tuple[tuple[Held, int], ...] = ()
    own_median: float = 0.0
    own_p99: float = 0.0
    own_max: float = 0.0
    own_late: int = 0  #: more than :data:`LATE` late by the sender's own error

    @classmethod
    def of(
        cls,
        errors: list[float],
        shift: float = 0.0,
        own: list[float] | None = None,
        held: dict[Held, int] | None = None,
    ) -> Schedule | None:
        s = sorted(errors)
        if not s:
            return None
        o = s if own is None else sorted(own)
        return cls(
            len(s),
            _rank(s, 0.5),
            _rank(s, 0.99),
            s[-1],
            s[0],
            sum(e > LATE for e in s),
            shift,
            tuple(sorted((held or {}).items())),
            _rank(o, 0.5),
            _rank(o, 0.99),
            o[-1],
            sum(e > LATE for e in o),
        )

    @property
    def held_total(self) -> int:
        """First transmissions the live connection kept back past their time."""
        return sum(n for _, n in self.held)


@dataclass(frozen=True, slots=True)
class Fidelity:
    """What a replay sent against the capture (:func:`fidelity`)."""

    planned: Sizes  #: the capture's client data segments
    live: Sizes  #: the live first transmissions
    kept: int  #: planned segments sent as one segment of the same DSN and size
    split: int  #: planned segments sent as several
    merged: int  #: planned segments sent within a larger one
    unsent: int  #: planned segments with octets never sent
    subflows: tuple[SubflowShare, ...]
    moved: tuple[Moved, ...]
    schedule: Schedule | None  #: None with fast timing
    timing: str

    @property
    def moved_octets(self) -> int:
        """Octets first sent on another subflow than planned."""
        return sum(m.octets for m in self.moved if not m.again)

    def lines(self) -> list[str]:
        """The report in words, one line each."""
        out = [
            f"  sizes     captured {self.planned.describe()}",
            f"            live     {self.live.describe()}",
            f"            {self.kept} of {self.planned.count} kept their size; {self.split} split, "
            f"{self.merged} merged, {self.unsent} not (all) sent",
        ]
        for x in self.subflows:
            again = f" (+{x.again} sent again here)" if x.again else ""
            out.append(f"  subflow   {x.subflow}: captured {x.planned} octets, live {x.sent}{again}")
        out.append(f"  moved     {self.moved_octets} octets first sent on another subflow than captured")
        for m in self.moved:
            how = "also" if m.again else "instead"
            out.append(
                f"            {m.octets} octets ({m.segments} segments) of subflow {m.planned} {how} on "
                f"subflow {m.live}: {m.why.value}"
            )
        s = self.schedule
        if s is None:
            out.append(f"  schedule  not measured: timing {self.timing} (use --timing as-captured or xN)")
        else:
            out.append(
                f"  schedule  error over {s.packets} data packets: median {s.median * 1e3:.3f} ms, "
                f"p99 {s.p99 * 1e3:.3f} ms, max {s.max * 1e3:.3f} ms (min {s.min * 1e3:.3f} ms); "
                f"{s.late} later than {LATE * 1e3:g} ms (timing {self.timing})"
            )
            if s.held_total:
                what = ", ".join(f"{n} {HELD_WORDS[h]}" for h, n in s.held)
                out.append(f"            {s.held_total} held back past their time by the live connection: {what}")
                out.append(
                    f"            the sender's own error (from when each hold ended): median "
                    f"{s.own_median * 1e3:.3f} ms, p99 {s.own_p99 * 1e3:.3f} ms, max {s.own_max * 1e3:.3f} ms; "
                    f"{s.own_late} later than {LATE * 1e3:g} ms"
                )
            if s.shift > 0:
                out.append(
                    f"            the live SYN/ACK came {s.shift * 1e3:.3f} ms later than the captured one: "
                    "the captured times count from that much later"
                )
        return out

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON values (seconds for the schedule)."""

        def sizes(z: Sizes) -> dict[str, int]:
            return {k: getattr(z, k) for k in ("count", "octets", "min", "p50", "p90", "p99", "max")}

        s = self.schedule
        return {
            "timing": self.timing,
            "sizes": {
                "captured": sizes(self.planned),
                "live": sizes(self.live),
                "kept": self.kept,
                "split": self.split,
                "merged": self.merged,
                "unsent": self.unsent,
            },
            "subflows": [
                {"index": x.subflow, "captured": x.planned, "live": x.sent, "again": x.again} for x in self.subflows
            ],
            "moved_octets": self.moved_octets,
            "moved": [
                {
                    "planned": m.planned,
                    "live": m.live,
                    "why": m.why.name.lower(),
                    "again": m.again,
                    "segments": m.segments,
                    "octets": m.octets,
                }
                for m in self.moved
            ],
            "schedule": None
            if s is None
            else {
                "packets": s.packets,
                "median": s.median,
                "p99": s.p99,
                "max": s.max,
                "min": s.min,
                "late": s.late,
                "late_threshold": LATE,
                "start_shift": s.shift,
                "held": {h.name.lower(): n for h, n in s.held},
                "own": {"median": s.own_median, "p99": s.own_p99, "max": s.own_max, "late": s.own_late},
            },
        }


HELD_WORDS = {
    Held.CONNECTION_WINDOW: "by the server's window at data level",
    Held.RECEIVE_WINDOW: "by the server's window on their subflow",
    Held.CONGESTION_WINDOW: "by their subflow's congestion window",
    Held.FIRST_DSS: "waiting for the server's first DSS",
    Held.JOIN_OPENING: "waiting for their subflow's handshake",
}


def _rank(s: list[Any], q: float) -> Any:
    """The nearest-rank ``q`` percentile of sorted ``s``."""
    return s[max(0, math.ceil(q * len(s)) - 1)]


def fidelity(core: Replay, rec: Recorder) -> Fidelity:
    """What ``core`` sent (recorded by ``rec``, from :func:`record`) against its plan."""
    conn = core.conn
    plan = conn.plan
    lead = conn.out.length - plan.data_len  # Fast Open SYN data the server did not take, at DSN 1
    planned = [(1, lead, 0, 0)] if lead > 0 else []
    planned += [(p.dsn + lead, len(p.data) + p.cut, p.subflow, p.time_ns) for p in plan.segments]
    planned.sort()
    starts = [p[0] for p in planned]
    t0, sched0 = conn.t0, conn.sched0
    at = conn.options.at
    times = rec.sent_times()
    history = _History(core)
    covered: list[list[int]] = []
    first: dict[int, list[tuple[int, int]]] = {}  # planned index -> (dsn, length) of live first transmissions
    live_sizes = []
    shares: dict[int, list[int]] = {}
    moved: dict[tuple[int, int, Why, bool], list[int]] = {}
    errors = []
    own: list[float] = []
    held: dict[Held, int] = {}
    holds = _Holds(rec)
    first_sf: dict[int, int] = {}  # the subflow each DSN first went on
    for (sf, dsn, n, now), wire in zip(rec.rows, times):
        k = bisect.bisect_right(starts, dsn) - 1
        if k < 0 or n <= 0:
            continue
        p_dsn, _, p_sf, p_time = planned[k]
        new = uncovered(covered, dsn, dsn + n)
        again = sum(e - s for s, e in new) != n
        shares.setdefault(sf, [0, 0, 0])[2 if again else 1] += n
        if not again:
            cover(covered, dsn, dsn + n)
            live_sizes.append(n)
            first_sf[dsn] = sf
            # every planned segment the row reaches into
            j = k
            while j < len(planned) and planned[j][0] < dsn + n:
                first.setdefault(j, []).append((dsn, n))
                j += 1
            due = at(sched0, p_time)
            if due is not None:
                errors.append(wire - due)
                hold = holds.last(due, now, (p_sf, sf)) if wire > due else None
                if hold is None:
                    own.append(wire - due)
                else:
                    held[hold[2]] = held.get(hold[2], 0) + 1
                    own.append(wire - max(due, min(hold[1], now)))
            if sf != p_sf:
                why = history.moved(p_sf, now - t0)
                m = moved.setdefault((p_sf, sf, why, False), [0, 0])
                m[0] += 1
                m[1] += n
        else:
            origin = first_sf.get(dsn, p_sf)
            if sf != origin:
                why = history.again(sf, origin, now - t0)
                m = moved.setdefault((origin, sf, why, True), [0, 0])
                m[0] += 1
                m[1] += n
    kept = split = merged = unsent = 0
    for j, (p_dsn, p_len, _, _) in enumerate(planned):
        got = first.get(j, [])
        octets = sum(min(d + n, p_dsn + p_len) - max(d, p_dsn) for d, n in got)
        if octets < p_len:
            unsent += 1
        elif len(got) == 1 and got[0] == (p_dsn, p_len):
            kept += 1
        elif any(d < p_dsn or d + n > p_dsn + p_len for d, n in got):
            merged += 1
        else:
            split += 1
    for _, p_len, p_sf, _ in planned:
        shares.setdefault(p_sf, [0, 0, 0])[0] += p_len
    timing = conn.options.timing
    return Fidelity(
        Sizes.of([p[1] for p in planned]),
        Sizes.of(live_sizes),
        kept,
        split,
        merged,
        unsent,
        tuple(SubflowShare(i, *v) for i, v in sorted(shares.items())),
        tuple(
            Moved(a, b, why, g, *v) for (a, b, why, g), v in sorted(moved.items(), key=lambda x: (x[0][:2], x[0][3]))
        ),
        Schedule.of(errors, sched0 - t0, own, held) if timing != "fast" else None,
        timing if isinstance(timing, str) else f"x{timing:g}",
    )


class _Holds:
    """The recorder's holds, for each late segment the last one that kept it back."""

    def __init__(self, rec: Recorder) -> None:
        self.holds = list(rec.holds)
        if rec.holding is not None:  # still holding at the end: it held nothing that went
            h = rec.holding
            self.holds.append((h[0], math.inf, h[1], h[2]))
        self.starts = [h[0] for h in self.holds]

    def last(self, due: float, built: float, subflows: tuple[int, int]) -> tuple[float, float, Held, int] | None:
        """The latest hold that began before the segment was built (``built``: the engine's time)
        and ended after it was due (``due``), of the whole connection or of one of ``subflows``
        (planned, live)."""
        holds = self.holds
        i = bisect.bisect_left(self.starts, built) - 1
        while i >= 0:
            h = holds[i]
            if h[1] <= due:
                return None  # holds do not overlap: the earlier ones ended earlier still
            if h[3] == ANY or h[3] in subflows:
                return h
            i -= 1
        return None


class _History:
    """When each subflow was established, reset, given up or sent MP_FAIL (event times), and
    which reinjections happened when: the reasons for data on another subflow."""

    def __init__(self, core: Replay) -> None:
        self.established: dict[int, float] = {}
        self.ended: dict[int, tuple[float, Why]] = {}
        self.stalls: set[tuple[float, int | None]] = set()
        self.data_level: set[tuple[float, int | None]] = set()
        self.reset_of: dict[int, Why] = {}
        refused = {s.index for s in core.report(core.clock.now).subflows if s.result.startswith(JOIN_REFUSED)}
        self.refused = refused
        for e in core.events:
            sf = e.subflow
            if type(e) is ev.SubflowEstablished and sf is not None:
                self.established.setdefault(sf, e.time)
            elif type(e) is ev.MpFailReceived and sf is not None:
                self.ended.setdefault(sf, (e.time, Why.MP_FAIL))
            elif type(e) is ev.SubflowReset and sf is not None:
                self.ended.setdefault(sf, (e.time, Why.RESET))
            elif type(e) is ev.SubflowFailed and sf is not None:
                self.ended.setdefault(sf, (e.time, Why.FAILED))
            elif type(e) is ev.Reinjected and not e.reset:
                self.stalls.add((e.time, e.subflow))
            elif type(e) is ev.DataRetransmitted:
                self.data_level.add((e.time, e.subflow))

    def moved(self, planned: int, t: float) -> Why:
        """Why data planned for ``planned`` was first sent on another subflow at ``t``."""
        if planned in self.refused:
            return Why.REFUSED_JOIN
        end = self.ended.get(planned)
        if end is not None and end[0] <= t:
            return end[1]
        est = self.established.get(planned)
        if est is None or est > t:
            return Why.NOT_ESTABLISHED
        return Why.CONGESTION

    def again(self, sf: int, origin: int, t: float) -> Why:
        """Why data first sent on ``origin`` went again on ``sf`` at ``t``."""
        if (t, sf) in self.stalls:
            return Why.STALL
        if (t, sf) in self.data_level:
            return Why.DATA_LEVEL
        end = self.ended.get(origin)
        if end is not None and end[0] <= t:
            return end[1]
        return Why.OTHER
