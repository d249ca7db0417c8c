"""``table --workers N`` and ``table --scheduler tcp://HOST:PORT``: the tables of an archive made
by Dask workers, identical to one process's.

The stitching is decided before any worker starts.  A first pass (``dissect -j``'s planner, the
compiled one file after file where it was built) reads the archive once, in order, as one capture:
it follows every TCP stream across files (a stream on
the same addresses and ports goes on in the next file), links the subflows of each MPTCP
connection by their keys and tokens wherever their frames are, and cuts the connections into
shares: all the frames of a connection, in whatever files they are, fall in one share, and the
streams are numbered as one reading of the archive numbers them.  Each task
(:func:`table_share`) reads the archive and analyses its share's frames only (the others are
counted and timed, no more), so a connection whose handshake is in one file and its data in the
next is analysed whole by one worker: its keys known, its HMACs verified, its data counted once.
Each task writes its rows to its own Parquet part (``DIR/<kind>/part-<share>.parquet``); the
tables are the union of the parts.  Nothing is merged after the tasks but their counts.

Limits: every task reads every file (reading is cheap beside the analysis, but the archive must be
where each worker can read it, and the folder where each can write; a task that reads all of it
spends a tenth or less of its time on the frames of others); the first pass is one process;
a share holds whole connections, so one connection's frames are analysed by one worker, and an
archive of one connection gets no speed-up.  Where the first pass cannot cut the archive (a subflow
met without its handshake, one connection) or a worker finds a stream numbered otherwise than the
plan, one process makes the tables (the same tables).
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator, Sequence
from typing import Any

from mptcpspec.dissect.parallel import ShareDissection, ShareMismatch
from mptcpspec.dissect.planner import Plan, plan_shares
from mptcpspec.records import dataclass
from mptcpspec.tables.extract import Archive, Extractor, FileRead, TableError
from mptcpspec.tables.schema import KINDS, PACKET_FIELDS
from mptcpspec.tables.write import TableRun, Writers, describe, table_columns, write_tables

__all__ = ["MissingDask", "ShareRows", "table_archive", "table_share"]


class MissingDask(TableError):
    """Workers were asked for, and Dask (the ``dask`` extra) is not installed."""

    def __init__(self) -> None:
        super().__init__("--workers and --scheduler need Dask: pip install 'mptcpspec[dask]'")


@dataclass(frozen=True, slots=True)
class ShareRows:
    """What one task wrote."""

    share: int
    rows: dict[str, int]
    frames: int
    reads: tuple[FileRead, ...]  #: how each file was read (the same in every task)


def table_share(
    paths: Sequence[str],
    plan: Plan,
    share: int,
    folder: str,
    kinds: Sequence[str],
    fields: Sequence[str],
    on_error: str,
) -> ShareRows:
    """One task: the rows of share ``share`` of ``plan``, written to the parts numbered ``share``.
    Raises :class:`~mptcpspec.dissect.parallel.ShareMismatch` where the plan does not hold."""
    columns = table_columns(kinds, fields)
    archive = Archive(paths, on_error)
    writers = Writers(folder, columns, part=share)
    extract = Extractor(archive, list(columns), writers, fields)
    d = ShareDissection(archive, plan, share, verify=True)
    try:
        for info in d:
            extract.feed(info)
        d.finish()
        extract.finish(d.connections())
    finally:
        writers.close()
    return ShareRows(share, writers.rows, d.frames, tuple(archive.reads))


@contextlib.contextmanager
def _client(workers: int, scheduler: str | None, say: Any) -> Iterator[Any]:
    import importlib

    try:
        dist: Any = importlib.import_module("distributed")  # typed loosely: its calls are untyped
    except ImportError:
        raise MissingDask() from None
    Client, LocalCluster = dist.Client, dist.LocalCluster
    if scheduler is not None:
        with Client(scheduler) as client:
            say(f"Dask scheduler {scheduler}; dashboard: {client.dashboard_link}")
            yield client
        return
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        say(f"local Dask cluster of {workers} workers; dashboard: {client.dashboard_link}")
        yield client


def _clear(folder: str) -> None:
    """The parts of an earlier run in ``folder``, removed (a run of fewer shares would leave some)."""
    for kind in KINDS:
        for part in glob.glob(os.path.join(folder, kind, "part-*.parquet")):
            os.remove(part)


def table_archive(
    paths: Sequence[str],
    folder: str,
    *,
    kinds: Sequence[str] = tuple(KINDS),
    fields: Sequence[str] | None = None,
    on_error: str = "skip",
    workers: int = 1,
    scheduler: str | None = None,
    say: Any = print,
    progress: Any = None,
) -> TableRun:
    """The tables of ``paths`` in ``folder``: by one process (``workers`` 1, no ``scheduler``), or
    by Dask workers, a local cluster of ``workers`` or the cluster of ``scheduler``."""
    fields = list(PACKET_FIELDS if fields is None else fields)
    columns = table_columns(kinds, fields)
    if not paths:
        raise TableError("no capture file to read")
    _clear(folder)
    if workers <= 1 and scheduler is None:
        return write_tables(paths, folder, kinds=kinds, fields=fields, on_error=on_error, progress=progress)
    jobs = max(workers, 2) if scheduler is None else 255
    if len(paths) == 1:  # one file: the first pass is the compiled one where it was built
        plan = plan_shares(paths[0], jobs)
    else:
        plan = plan_shares(Archive(paths, on_error), jobs, files=paths)
    if plan.shares < 2:
        say(f"one process makes the tables: {plan.why or 'nothing to share'}")
        return write_tables(paths, folder, kinds=kinds, fields=fields, on_error=on_error)
    with _client(workers, scheduler, say) as client:
        futures = client.map(
            table_share,
            [list(paths)] * plan.shares,
            [plan] * plan.shares,
            range(plan.shares),
            [folder] * plan.shares,
            [list(columns)] * plan.shares,
            [fields] * plan.shares,
            [on_error] * plan.shares,
            pure=False,
        )
        try:
            done: list[ShareRows] = client.gather(futures)
        except ShareMismatch as e:
            say(f"one process makes the tables: {e}")
            _clear(folder)
            return write_tables(paths, folder, kinds=kinds, fields=fields, on_error=on_error)
    rows = {k: sum(r.rows.get(k, 0) for r in done) for k in columns}
    reads = list(done[0].reads)
    describe(folder, columns, fields, plan.frames, rows, reads)
    return TableRun(reads, rows, plan.frames)
