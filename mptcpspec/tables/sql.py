"""SQL on the tables ``mptcpspec table`` wrote, with DuckDB embedded (no server): each table of
the folder is a view of the same name over its Parquet files.

>>> run_sql("tables", "SELECT stream, client_reinjected FROM connections")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from typing import Any, TextIO

from mptcpspec.tables.extract import TableError
from mptcpspec.tables.schema import KINDS, SCHEMA_VERSION
from mptcpspec.tables.write import DESCRIPTION

__all__ = ["MissingDuckdb", "Result", "connect", "run_sql", "write_result"]


class MissingDuckdb(TableError):
    """SQL was asked for, and DuckDB (the ``tables`` extra) is not installed."""

    def __init__(self) -> None:
        super().__init__("SQL on the tables needs DuckDB: pip install 'mptcpspec[tables]'")


class Result:
    """A query's columns and rows."""

    def __init__(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.rows = rows


def connect(folder: str) -> Any:
    """A DuckDB connection with a view per table of ``folder``."""
    try:
        import duckdb
    except ImportError:
        raise MissingDuckdb() from None
    described = os.path.join(folder, DESCRIPTION)
    if not os.path.exists(described):
        raise TableError(f"{folder}: no tables here (no {DESCRIPTION}: make them with mptcpspec table)")
    with open(described, encoding="utf-8") as f:
        version = json.load(f).get("schema_version")
    if version != SCHEMA_VERSION:
        raise TableError(
            f"{folder}: tables of schema version {version}; this mptcpspec reads version {SCHEMA_VERSION}: "
            "make them again"
        )
    db = duckdb.connect()
    for kind in KINDS:
        parts = os.path.join(folder, kind)
        if os.path.isdir(parts):
            pattern = os.path.join(parts, "*.parquet").replace("'", "''")
            db.execute(f"CREATE VIEW {kind} AS SELECT * FROM read_parquet('{pattern}')")
    return db


def run_sql(folder: str, query: str) -> Result:
    """Run ``query`` on the tables of ``folder``."""
    import duckdb

    db = connect(folder)
    try:
        cur = db.execute(query)
    except duckdb.Error as e:
        raise TableError(f"SQL: {e}") from None
    columns = [d[0] for d in cur.description] if cur.description else []
    return Result(columns, cur.fetchall())


def _text(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"  # as SQL writes them
    return "" if v is None else str(v)


def _table(r: Result) -> Iterator[str]:
    cells = [[_text(v) for v in row] for row in r.rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(r.columns)]
    yield "  ".join(c.ljust(w) for c, w in zip(r.columns, widths)).rstrip()
    yield "  ".join("-" * w for w in widths)
    for row in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()


def write_result(r: Result, out: TextIO, form: str = "table") -> None:
    """``table``: aligned columns; ``csv``: a header row then the rows; ``json``: an object per row
    per line."""
    if form == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(r.columns)
        w.writerows([[_text(v) for v in row] for row in r.rows])
    elif form == "json":
        for row in r.rows:
            out.write(json.dumps(dict(zip(r.columns, row)), default=str) + "\n")
    else:
        for line in _table(r):
            out.write(line + "\n")
