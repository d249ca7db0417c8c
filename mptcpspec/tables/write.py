"""Writing the tables: Parquet (pyarrow), one dataset per kind, in row groups as rows come, and the
dataset's description beside them.

``DIR/<kind>/part-00000.parquet`` for each kind asked, and ``DIR/_mptcpspec.json``: the schema's
version, the tables, the packet fields, and each file of the archive with its frames and whether
it was read whole.  Memory stays bounded whatever the archive's size: each batch of rows becomes a
row group at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.tables.extract import Archive, Extractor, FileRead, TableError, column_name
from mptcpspec.tables.schema import KINDS, SCHEMA_VERSION, Column, arrow_schema

__all__ = ["DESCRIPTION", "MissingPyarrow", "TableRun", "Writers", "describe", "table_columns", "write_tables"]

DESCRIPTION = "_mptcpspec.json"


class MissingPyarrow(TableError):
    """Tables were asked for, and pyarrow (the ``tables`` extra) is not installed."""

    def __init__(self) -> None:
        super().__init__("writing tables needs pyarrow: pip install 'mptcpspec[tables]'")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingPyarrow() from None
    return pyarrow


class Writers:
    """One Parquet writer per table, opened at its first rows: ``DIR/<kind>/part-<part>.parquet``."""

    def __init__(self, folder: str, columns: dict[str, tuple[Column, ...]], part: int = 0) -> None:
        self.pa = _pyarrow()
        self.folder = folder
        self.part = part
        self.schemas = {k: arrow_schema(c) for k, c in columns.items()}
        self.open: dict[str, Any] = {}
        self.rows = dict.fromkeys(columns, 0)

    def __call__(self, kind: str, cols: dict[str, list[object]]) -> None:
        pq = self.pa.parquet
        w = self.open.get(kind)
        if w is None:
            os.makedirs(os.path.join(self.folder, kind), exist_ok=True)
            w = self.open[kind] = pq.ParquetWriter(
                os.path.join(self.folder, kind, f"part-{self.part:05d}.parquet"), self.schemas[kind], compression="zstd"
            )
        table = self.pa.Table.from_pydict(cols, schema=self.schemas[kind])
        w.write_table(table)
        self.rows[kind] += table.num_rows

    def close(self) -> None:
        for kind, schema in self.schemas.items():
            if kind not in self.open:  # a table without rows is still a table
                self(kind, {f.name: [] for f in schema})
        for w in self.open.values():
            w.close()


class TableRun:
    """What a run of ``table`` did."""

    def __init__(self, reads: list[FileRead], rows: dict[str, int], frames: int) -> None:
        self.reads = reads
        self.rows = rows
        self.frames = frames


def table_columns(kinds: Sequence[str], fields: Sequence[str]) -> dict[str, tuple[Column, ...]]:
    """The columns of each table of ``kinds`` (in the order of :data:`KINDS`), the packets' with
    ``fields``; raises :class:`TableError` for a kind that does not exist."""
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise TableError(f"no table {bad[0]!r}: the tables are {', '.join(KINDS)}")
    columns = {k: KINDS[k].columns for k in KINDS if k in kinds}
    if "packets" in columns:
        columns["packets"] = (
            *columns["packets"],
            *(Column(column_name(f), "string", f"{f} as dissect -T fields prints it (NULL: none)") for f in fields),
        )
    return columns


def describe(
    folder: str,
    columns: dict[str, tuple[Column, ...]],
    fields: Sequence[str],
    frames: int,
    rows: dict[str, int],
    reads: Sequence[FileRead],
) -> None:
    """Write ``DIR/_mptcpspec.json``."""
    description = {
        "schema_version": SCHEMA_VERSION,
        "tables": {k: [{"name": c.name, "type": c.type, "what": c.what} for c in cols] for k, cols in columns.items()},
        "fields": list(fields),
        "frames": frames,
        "rows": rows,
        "files": [{"file": r.file, "frames": r.frames, "whole": r.whole, "problem": r.problem} for r in reads],
    }
    with open(os.path.join(folder, DESCRIPTION), "w", encoding="utf-8") as f:
        json.dump(description, f, indent=1)
        f.write("\n")


def write_tables(
    paths: Sequence[str],
    folder: str,
    *,
    kinds: Sequence[str] = tuple(KINDS),
    fields: Sequence[str] | None = None,
    on_error: str = "skip",
    progress: Any = None,
) -> TableRun:
    """Read the capture files ``paths`` in order as one capture, in this process, and write the
    tables ``kinds`` to ``folder`` (see the module's docstring)."""
    from mptcpspec.tables.schema import PACKET_FIELDS

    if not paths:
        raise TableError("no capture file to read")
    fields = list(PACKET_FIELDS if fields is None else fields)
    columns = table_columns(kinds, fields)
    archive = Archive(paths, on_error)
    writers = Writers(folder, columns)
    extract = Extractor(archive, list(columns), writers, fields)
    d = Dissection(archive, verify=True)
    try:
        for info in d:
            extract.feed(info)
            if progress is not None:
                progress(archive, info.number)
        extract.finish(d.connections())
    finally:
        writers.close()
    describe(folder, columns, fields, d.frames, writers.rows, archive.reads)
    return TableRun(archive.reads, writers.rows, d.frames)
