"""``dissect -j N``: a capture of many connections dissected by N worker processes, its output
octet for octet what one process writes.

A first pass (:func:`~mptcpspec.dissect.planner.plan_shares`) reads the capture once and cuts its
frames into shares that share no state of the analysis (a connection's subflows, all in one),
balanced by their frames, and numbers the TCP streams and MPTCP connections as the analysis will
(:class:`~mptcpspec.dissect.planner.Plan`); where it was built, that pass is compiled.

Each worker (:class:`ShareDissection`) reads the file itself and runs the one-process path on its
share: the :class:`~mptcpspec.dissect.pipeline.Dissection` and ``dissect_capture`` with the
:class:`~mptcpspec.dissect.writers.FieldsWriter`, or the compiled hot path's engine, told to analyse
the share's frames only.  A frame of another share is counted and timed only (``frame.number`` and
``frame.time_delta`` stay the capture's), and where the first pass numbered a stream of another
share the worker's numbering moves on by one, so its own streams take the capture's numbers.  The
worker checks that each stream of its share is numbered in the frame and with the number the first
pass said; where one is not, or anything else goes wrong in a worker, the parallel run is dropped
and one process reads the capture: the output is the same either way.  The rows come back in
files, one per worker, and are merged in frame order.

Cases the shares cannot give the same output for (a display filter that needs the last frame shown
of the whole capture, rows that hold newlines, a subflow met without its handshake, whose data the
analysis looks for in every connection, MPTCP options the snapshot length cut before their
connection was numbered) are left to one process; so are captures of one connection (nothing to
share), and, unless told otherwise, small files and captures whose largest share would hold most
frames, which one process reads faster.
"""

from __future__ import annotations

import gc
import mmap
import os
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

from mptcpspec.analysis import PacketInfo
from mptcpspec.analysis.model import Subflow
from mptcpspec.capture.pcap import CaptureError, Frame
from mptcpspec.capture.stream import open_input
from mptcpspec.dissect.hotpath import fields_engine
from mptcpspec.dissect.outcome import ReadOutcome, outcome
from mptcpspec.dissect.pipeline import Dissection, Source
from mptcpspec.dissect.planner import Plan, firstpass_module, plan_shares
from mptcpspec.dissect.reading import dissect_capture
from mptcpspec.dissect.writers import FieldsWriter, PacketWriter
from mptcpspec.errors import MptcpspecError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = [
    "MIN_SIZE",
    "MIN_SIZE_COMPILED",
    "MOST",
    "Plan",
    "ShareDissection",
    "ShareMismatch",
    "cpu_count",
    "dissect_parallel",
    "plan_shares",
]

#: files smaller than this (octets, as stored) are read by one process: starting workers costs more
MIN_SIZE = 1 << 20
#: the same for a run the compiled hot path takes, whose frames cost a fifth as much: below this,
#: the first pass and the workers' reading of the other shares' frames cost what they save
MIN_SIZE_COMPILED = 8 << 20
#: a capture whose largest share would hold more than this part of the frames is read by one
#: process: the first pass and that share would take longer than one process
MOST = 0.7
_CHUNK = 1 << 16  # frames merged at a time
_NOWHERE = 255  # a frame no worker wrote a row for (the display filter dropped it)
_ZERO = (IPv4Address(0), 0)


def cpu_count() -> int:
    """The processors this process may run on (``-j 0``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ShareMismatch(MptcpspecError):
    """A worker's analysis did not number a stream where the first pass said (or its rows could not
    be told apart): the parallel run is dropped."""


# --------------------------------------------------------------------------- the workers


def _mask(owner: bytes, share: int) -> bytes:
    """1 for each frame of ``share``, 0 for the others."""
    table = bytearray(256)
    table[share] = 1
    return owner.translate(table)


class ShareDissection(Dissection):
    """The :class:`~mptcpspec.dissect.pipeline.Dissection` of one share of a :class:`Plan`: the
    frames of the share are dissected as one process dissects them; the others are counted and timed
    only, and where the plan numbered a stream of theirs, the numbering moves on by one.  Raises
    :class:`ShareMismatch` where a stream of the share is numbered elsewhere or otherwise than the
    plan says."""

    def __init__(self, source: Source, plan: Plan, share: int, **kw: bool) -> None:
        super().__init__(source, **kw)
        owner = plan.owner
        self.plan = plan
        self.mine = _mask(owner, share)
        self.starts = {f: s for f, s in plan.tcp_starts.items() if owner[f - 1] == share}
        self.numbers = {f: s for f, s in plan.numbered.items() if owner[f - 1] == share}
        #: frame of another share -> 1: a TCP stream starts there, 2: a connection is numbered, 3: both
        self.elsewhere: dict[int, int] = {}
        for f in plan.tcp_starts:
            if owner[f - 1] != share:
                self.elsewhere[f] = 1
        for f in plan.numbered:
            if owner[f - 1] != share:
                self.elsewhere[f] = self.elsewhere.get(f, 0) | 2
        self.table = self.analyzer.hot_parts().table
        self.tcp_hi = self.mptcp_hi = -1  # the highest numbers this share's frames showed
        self.tcp_seen = self.mptcp_seen = 0

    def __iter__(self) -> Iterator[PacketInfo]:
        """The share's frames, each with its number in the capture (as Dissection's own loop)."""
        mine, last, feed, skip, tick = self.mine, self.plan.frames, self.feed_frame, self.skip, self.analyzer.clock.tick
        n = self.frames
        for batch in self.reader.batches():
            for frame in batch:
                n += 1
                self.frames = n
                if n <= last and mine[n - 1]:
                    self.frame = frame
                    yield feed(n, frame)
                else:
                    skip(n)
                    tick(frame[0])

    def feed_frame(self, number: int, frame: Frame) -> PacketInfo:
        """As Dissection's, for a frame of the share (the others go to :meth:`skip`; a run that feeds
        one here, as an engine not told which are its own would, raises :class:`ShareMismatch`)."""
        if number > self.plan.frames or not self.mine[number - 1]:
            raise ShareMismatch(f"frame {number} is not of this share: it is to be skipped")
        info = super().feed_frame(number, frame)
        t = info.tcp_stream
        if t is not None and t > self.tcp_hi:
            if self.starts.get(number) != t:
                raise ShareMismatch(f"frame {number} starts TCP stream {t}, not as the first pass found")
            self.tcp_hi = t
            self.tcp_seen += 1
        m = info.mptcp_stream
        if m is not None and m > self.mptcp_hi:
            if self.numbers.get(number) != m:
                raise ShareMismatch(f"frame {number} numbers MPTCP stream {m}, not as the first pass found")
            self.mptcp_hi = m
            self.mptcp_seen += 1
        return info

    def skip(self, number: int) -> None:
        """Frame ``number`` is another share's: the numbers it gives streams are taken."""
        what = self.elsewhere.get(number)
        if what is None:
            if number > self.plan.frames:
                raise ShareMismatch(f"frame {number}: beyond the {self.plan.frames} frames of the first pass")
        else:
            if what & 1:
                subflows = self.table.subflows
                subflows.append(Subflow(len(subflows), _ZERO, _ZERO, number))
            if what & 2:
                self.analyzer.skip_stream()

    def finish(self) -> None:
        """After the read: every stream of the share was numbered (raises :class:`ShareMismatch`)."""
        if self.frames != self.plan.frames:
            raise ShareMismatch(f"{self.frames} frames read, the first pass read {self.plan.frames}")
        if self.tcp_seen != len(self.starts) or self.mptcp_seen != len(self.numbers):
            raise ShareMismatch("a stream the first pass found was not numbered")


class _Rows:
    """The text stream a worker's writer writes to: its rows, encoded, to the share's file."""

    def __init__(self, raw: IO[bytes], encoding: str, errors: str) -> None:
        self.raw = raw
        self.encoding, self.errors = encoding, errors
        self.lines = 0  # rows that came
        self.ends_row = True  # what came ends with a newline

    def write(self, text: str) -> int:
        if text:
            self.lines += text.count("\n")
            self.ends_row = text[-1] == "\n"
            self.raw.write(text.encode(self.encoding, self.errors))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()


@dataclass(frozen=True, slots=True)
class _Job:
    path: str
    plan: Plan
    writer: FieldsWriter
    keep: Callable[[PacketInfo], bool] | None
    verify: bool
    tcp_analysis: bool
    encoding: str
    errors: str


@dataclass(frozen=True, slots=True)
class _Done:
    """What came of a worker's share: its ReadOutcome's parts, and the frames the filter kept."""

    frames: int
    written: int
    damage: str | None
    problems: tuple[str, ...]
    unsupported: tuple[tuple[int, int], ...]
    kept: bytes  #: array("I") of the frames kept, with a display filter


def _compiled(d: ShareDissection, writer: FieldsWriter) -> ReadOutcome | None:
    """The share read as ``dissect_capture`` reads a run the compiled hot path takes, its engine
    told to analyse the share's frames only (the others go to :meth:`ShareDissection.skip`, with no
    row); None where the engine does not take the run."""
    engine = fields_engine(d, writer)
    if engine is None:
        return None
    cast(Any, engine).only(d.mine, d.skip)
    gc.freeze()  # as dissect_capture: what the imports made need not be looked at again
    gc.set_threshold(20000, 20, 20)
    writer.flush()
    damage = None
    try:
        engine.run()
    except CaptureError as e:
        damage = e
    writer.flush()
    return outcome(d.frames, 0, damage, d.problems, d.unsupported)


def _work(job: _Job, share: int, fd: int, result: Connection) -> None:
    """A worker: share ``share`` of the capture dissected, its rows to the file ``fd``; what came of
    it sent on ``result``: a _Done, or why the parallel run must be dropped (a str)."""
    try:
        with open(fd, "wb", buffering=1 << 20, closefd=False) as raw, open_input(job.path) as f:
            d = ShareDissection(f, job.plan, share, verify=job.verify, tcp_analysis=job.tcp_analysis)
            writer = job.writer
            rows = _Rows(raw, job.encoding, job.errors)
            writer.out = cast(TextIO, rows)
            keep = job.keep
            kept = array("I")
            if keep is not None:
                test, add = keep, kept.append

                def keep(info: PacketInfo) -> bool:
                    if test(info):
                        add(info.number)
                        return True
                    return False

            done = _compiled(d, writer) if keep is None else None
            if done is None:
                done = dissect_capture(d, writer=writer, keep=keep)
            d.finish()
            rows.flush()
            want = len(kept) if keep is not None else d.mine.count(1)
            if rows.lines != want or not rows.ends_row:
                raise ShareMismatch(f"{rows.lines} rows for {want} frames: a row holds a newline")
        result.send(_Done(done.frames, done.written, done.damage, done.problems, done.unsupported, kept.tobytes()))
    except ShareMismatch as e:
        result.send(str(e))
    except KeyboardInterrupt:
        pass
    except BaseException:  # noqa: B036 -- one process then reads the capture, and says what went wrong
        import traceback

        result.send(traceback.format_exc())
    finally:
        result.close()


def _collect(pipes: list[Connection]) -> list[_Done] | None:
    """What each worker sent, or None as soon as one dropped the run (or ended without a word)."""
    from multiprocessing.connection import wait

    got: dict[int, _Done] = {}
    waiting = dict(enumerate(pipes))
    while waiting:
        for ready in wait(list(waiting.values())):
            w = next(w for w, p in waiting.items() if p is ready)
            del waiting[w]
            try:
                msg = pipes[w].recv()
            except EOFError:
                return None
            if not isinstance(msg, _Done):
                return None
            got[w] = msg
    return [got[w] for w in range(len(pipes))]


def _merge(out: TextIO, files: Sequence[IO[bytes]], tag: bytes, encoding: str, errors: str) -> None:
    """The workers' rows, in the order of the frames they are of (``tag[n - 1]``: frame ``n``'s
    worker, or _NOWHERE)."""
    binary = getattr(out, "buffer", None)
    out.flush()
    fast = firstpass_module()
    if fast is not None:  # in C, from the files mapped
        write = binary.write if binary is not None else lambda b: out.write(b.decode(encoding, errors))
        with ExitStack() as maps:
            rows = [_mapped(f, maps) for f in files]
            fast.merge(tag, rows, write)
        if binary is not None:
            binary.flush()
        return
    for f in files:
        f.seek(0)
    nexts = [f.readline for f in files]
    for at in range(0, len(tag), _CHUNK):
        part = tag[at : at + _CHUNK]
        block = b"".join([nexts[w]() for w in part if w != _NOWHERE])
        if binary is not None:
            binary.write(block)
        else:
            out.write(block.decode(encoding, errors))
    if binary is not None:
        binary.flush()


def _mapped(f: IO[bytes], maps: ExitStack) -> mmap.mmap | bytes:
    """The file ``f`` mapped (closed by ``maps``), or b"" where it is empty."""
    if not os.fstat(f.fileno()).st_size:
        return b""
    return maps.enter_context(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


def _tags(plan: Plan, results: list[_Done], filtered: bool) -> bytes:
    """Frame -> the worker that wrote its row."""
    if not filtered:
        return plan.owner
    tag = bytearray([_NOWHERE]) * plan.frames
    for w, msg in enumerate(results):
        kept = array("I")
        kept.frombytes(msg.kept)
        for n in kept:
            tag[n - 1] = w
    return bytes(tag)


def _shareable(writer: PacketWriter, keep: object, filter_text: str | None) -> bool:
    """Whether rows written by shares can be the rows of one process."""
    if not isinstance(writer, FieldsWriter) or "\n" in writer.sep + writer.agg + writer.quote:
        return False
    if keep is not None and (
        "frame.time_delta_displayed" in writer.names or "time_delta_displayed" in (filter_text or "")
    ):
        return False  # the last frame shown of the whole capture
    return True


def dissect_parallel(
    path: str,
    writer: PacketWriter,
    jobs: int,
    *,
    keep: Callable[[PacketInfo], bool] | None = None,
    filter_text: str | None = None,
    verify: bool = True,
    tcp_analysis: bool = True,
    progress: Callable[[int, int], None] | None = None,
    sparing: bool = True,
) -> ReadOutcome | None:
    """``dissect_capture`` of the capture file ``path`` with the ``-T fields`` ``writer`` (its
    header already written) and the display filter ``keep`` (of text ``filter_text``), by ``jobs``
    worker processes; None, with nothing written, where one process must read it (see the module).
    ``progress`` follows the first pass.  ``sparing``: also leave to one process what it reads
    faster: a file smaller than :data:`MIN_SIZE` (:data:`MIN_SIZE_COMPILED` where the compiled hot
    path takes the run: each worker's engine analyses its share only, and the first pass and the
    merge are compiled, but every worker reads the whole file), a capture whose largest share would
    hold more than :data:`MOST` of the frames."""
    if jobs < 2 or path == "-" or not _shareable(writer, keep, filter_text):
        return None
    try:
        if not os.path.isfile(path) or (sparing and os.path.getsize(path) < MIN_SIZE):
            return None
    except OSError:
        return None
    assert isinstance(writer, FieldsWriter)  # _shareable
    if sparing and keep is None and os.path.getsize(path) < MIN_SIZE_COMPILED:
        probe = Dissection(path, verify=verify, tcp_analysis=tcp_analysis)
        if fields_engine(probe, writer) is not None:
            return None
    with open_input(path) as f:
        plan = plan_shares(f, jobs, progress)
    if plan.shares < 2 or (sparing and max(plan.loads) > MOST * plan.frames):
        return None
    out = writer.out
    binary = getattr(out, "buffer", None) is not None
    encoding = (getattr(out, "encoding", None) or "utf-8") if binary else "utf-8"
    errors = (getattr(out, "errors", None) or "strict") if binary else "surrogatepass"
    job = _Job(path, plan, writer, keep, verify, tcp_analysis, encoding, errors)
    out.flush()  # the header: a worker must not write it again
    sys.stdout.flush()
    sys.stderr.flush()
    import multiprocessing  # here: a run left to one process does not load it
    import tempfile

    context = multiprocessing.get_context("fork")
    files = [tempfile.TemporaryFile() for _ in range(plan.shares)]
    procs, pipes = [], []
    try:
        for w in range(plan.shares):
            recv, send = context.Pipe(duplex=False)
            proc = context.Process(target=_work, args=(job, w, files[w].fileno(), send), daemon=True)
            proc.start()
            send.close()
            procs.append(proc)
            pipes.append(recv)
        results = _collect(pipes)
        if results is None:
            return None
        for proc in procs:
            proc.join()
        _merge(out, files, _tags(plan, results, keep is not None), encoding, errors)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for pipe in pipes:
            pipe.close()
        for spool in files:
            spool.close()
    first = results[0]
    unsupported: dict[int, int] = {}
    for done in results:
        for linktype, n in done.unsupported:
            unsupported[linktype] = unsupported.get(linktype, 0) + n
    written = sum(done.written for done in results)
    return ReadOutcome(first.frames, written, first.damage, first.problems, tuple(sorted(unsupported.items())))
