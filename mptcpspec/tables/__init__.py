"""MPTCP tables: a capture archive (many files, read in order as one capture) written as Parquet
datasets, one per kind (``mptcpspec table``), and SQL on them with DuckDB (``mptcpspec sql``).

>>> from mptcpspec.tables.schema import KINDS
>>> list(KINDS)
['packets', 'connections', 'subflows', 'mappings', 'reinjections', 'checks', 'experts', 'events']

Needs the ``tables`` extra (pyarrow, DuckDB): ``pip install 'mptcpspec[tables]'``.
"""

from __future__ import annotations

from mptcpspec.tables.extract import Archive, FileRead, TableError
from mptcpspec.tables.schema import KINDS, SCHEMA_VERSION
from mptcpspec.tables.write import MissingPyarrow, TableRun, write_tables

__all__ = ["KINDS", "SCHEMA_VERSION", "Archive", "FileRead", "MissingPyarrow", "TableError", "TableRun", "write_tables"]
