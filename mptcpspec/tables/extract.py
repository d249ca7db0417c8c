"""The rows of the tables, from the frames of an archive read as one capture.

An archive is a list of capture files read in order as if they were one (:class:`Archive`): frame
numbers run on across files, and a connection whose handshake is in one file and its data in the
next is one connection, followed by the one analysis that reads them all.  :class:`Extractor`
turns each frame's :class:`~mptcpspec.analysis.model.PacketInfo` into rows of the per-frame tables
(packets, mappings, reinjections, checks, experts) and, at the end, the rows of the
per-connection ones (connections, subflows, events); each table's rows go to a sink in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from mptcpspec.analysis import Connection, PacketInfo
from mptcpspec.capture.pcap import CaptureError, CaptureReader, Frame
from mptcpspec.capture.stream import open_input
from mptcpspec.codec.options import Dss
from mptcpspec.dissect.fields import FIELDS, UnknownFieldError, compile_row
from mptcpspec.errors import MptcpspecError
from mptcpspec.records import dataclass

__all__ = ["Archive", "Extractor", "FileRead", "Sink", "TableError", "column_name"]

_SEP = "\x1f"  # between the cells of a compiled row: no field's value holds it
_BATCH = 8192  # rows handed to a sink at a time


class TableError(MptcpspecError):
    """An archive or a table request that cannot be used: ``what`` says which and why."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what

    def __str__(self) -> str:
        return self.what


def column_name(field: str) -> str:
    """A field's column: its name with dots as underscores (``tcp.options.mptcp.subtype`` ->
    ``tcp_options_mptcp_subtype``), a name SQL takes unquoted."""
    return field.replace(".", "_").replace("-", "_")


@dataclass(frozen=True, slots=True)
class FileRead:
    """How one file of the archive was read."""

    file: str
    frames: int
    whole: bool  #: read to its end without damage
    problem: str | None  #: what was wrong with it (damage that stopped it, a record cut short)


class Archive:
    """Capture files read in order as one capture: a frame source for the dissector.

    ``on_error``: ``skip`` goes on with the next file after a damaged one (its frames up to the
    damage are kept), ``stop`` ends the read there (raising :class:`TableError`).  A file that is
    no capture at all is damaged from its first octet."""

    def __init__(self, paths: Sequence[str], on_error: str = "skip") -> None:
        self.paths = list(paths)
        self.on_error = on_error
        self.problems: list[str] = []
        self.reads: list[FileRead] = []
        self.file = ""  #: the file of the frame last handed on
        self.starts: list[int] = []  #: archive frame number - 1 of each file's first frame
        self._frames = 0
        self._position = 0

    @property
    def position(self) -> int:
        return self._position

    def batches(self) -> Iterator[list[Frame]]:
        for path in self.paths:
            self.file = path
            self.starts.append(self._frames)
            count, problem = 0, None
            try:
                with open_input(path) as f:
                    reader = CaptureReader(f)
                    for batch in reader.batches():
                        count += len(batch)
                        self._frames += len(batch)
                        self._position = reader.position
                        yield batch
                    if reader.problems:
                        problem = "; ".join(reader.problems)
            except (CaptureError, OSError) as e:
                problem = str(e) if isinstance(e, CaptureError) else f"cannot be read: {e.strerror or e}"
            self.reads.append(FileRead(path, count, problem is None, problem))
            if problem is not None:
                self.problems.append(f"{path}: {problem}")
                if self.on_error == "stop":
                    raise TableError(f"{path}: {problem} (--on-error stop)")

    def where(self, frame: int) -> tuple[str, int]:
        """The file and the file's own frame number of archive frame ``frame``."""
        from bisect import bisect_right

        k = bisect_right(self.starts, frame - 1) - 1
        return self.paths[k], frame - self.starts[k]


#: A sink: the table's name and a batch of its rows, as columns (column name -> values).
Sink = Callable[[str, dict[str, list[object]]], None]


class _Batch:
    __slots__ = ("names", "cols", "n")

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.cols: list[list[object]] = [[] for _ in names]
        self.n = 0

    def add(self, *values: object) -> None:
        for col, v in zip(self.cols, values):
            col.append(v)
        self.n += 1

    def take(self) -> dict[str, list[object]]:
        out = dict(zip(self.names, self.cols))
        self.cols = [[] for _ in self.names]
        self.n = 0
        return out


class Extractor:
    """Rows of the tables ``kinds`` from the frames of an archive, handed to ``sink`` in batches."""

    def __init__(self, archive: Archive, kinds: Sequence[str], sink: Sink, fields: Sequence[str]) -> None:
        from mptcpspec.tables.schema import KINDS

        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise TableError(str(UnknownFieldError(unknown[0])))
        self.archive = archive
        self.kinds = [k for k in KINDS if k in kinds]
        self.sink = sink
        self.fields = list(fields)
        self.row = compile_row(self.fields, ",", _SEP, self._slow)
        self.getters = [FIELDS[n].get for n in self.fields]
        self.batches = {k: _Batch([c.name for c in KINDS[k].columns]) for k in self.kinds}
        if "packets" in self.batches:
            self.batches["packets"].names += [column_name(f) for f in self.fields]
            self.batches["packets"].cols += [[] for _ in self.fields]

    def _slow(self, info: PacketInfo) -> str:
        return _SEP.join(",".join(g(info)) for g in self.getters)

    def _emit(self, kind: str, final: bool = False) -> None:
        b = self.batches[kind]
        if b.n and (final or b.n >= _BATCH):
            self.sink(kind, b.take())

    def feed(self, info: PacketInfo) -> None:
        """The rows of one frame."""
        file, file_frame = self.archive.file, info.number - self.archive.starts[-1]
        n = info.number
        b = self.batches.get("packets")
        if b is not None:
            b.add(file, file_frame, n, info.timestamp_ns, *[c or None for c in self.row(info).split(_SEP)])
            self._emit("packets")
        stream = info.mptcp_stream
        p = info.packet
        b = self.batches.get("mappings")
        if b is not None and p is not None:
            for o, x in zip((o for o in info.mptcp if type(o) is Dss), info.dss):
                if o.dsn is None:
                    continue  # a DATA_ACK alone
                b.add(
                    file, file_frame, n, stream, info.tcp_stream, info.from_client, x.dsn64, x.dsn,
                    o.ssn, o.data_level_length, o.checksum,
                )  # fmt: skip
            self._emit("mappings")
        b = self.batches.get("reinjections")
        if b is not None and info.reinjection_of and p is not None:
            for first in info.reinjection_of:
                b.add(
                    file, file_frame, n, stream, info.tcp_stream, info.from_client, info.payload_dsn,
                    p.payload_len, first,
                )  # fmt: skip
            self._emit("reinjections")
        b = self.batches.get("checks")
        if b is not None and info.checks:
            for c in info.checks:
                b.add(file, file_frame, n, stream, c.what, c.verdict.name.lower(), c.why)
            self._emit("checks")
        b = self.batches.get("experts")
        if b is not None and info.experts:
            for e in info.experts:
                b.add(file, file_frame, n, stream, e.key, e.severity.name.lower(), e.message)
            self._emit("experts")

    def finish(self, connections: list[Connection]) -> None:
        """The per-connection rows, then every batch left."""
        for c in connections:
            if c.stream is None:
                continue
            s = c.summary()
            b = self.batches.get("connections")
            if b is not None:
                b.add(
                    s.stream, s.version, s.client, s.server, s.client_key, s.server_key, s.client_token,
                    s.server_token, s.checksum, s.fallback, len(s.subflows), s.client_bytes, s.server_bytes,
                    s.client_reinjected, s.server_reinjected, s.client_state, s.server_state, s.unlinked,
                    s.first_frame, sum(n for _, n in s.experts),
                )  # fmt: skip
            b = self.batches.get("subflows")
            if b is not None:
                for sf in s.subflows:
                    b.add(
                        s.stream, sf.tcp_stream, sf.kind, sf.initiator, sf.listener, sf.address_ids[0],
                        sf.address_ids[1], sf.backup[0], sf.backup[1], sf.state, sf.closed, sf.reset,
                        sf.tcprst_reason, sf.bytes[0], sf.bytes[1], sf.retransmissions[0], sf.retransmissions[1],
                    )  # fmt: skip
            b = self.batches.get("events")
            if b is not None:
                for frame, event in s.history:
                    b.add(s.stream, frame, event)
                if s.fallback:
                    b.add(s.stream, None, f"fallback: {s.fallback}")
        for kind in self.kinds:
            self._emit(kind, final=True)
