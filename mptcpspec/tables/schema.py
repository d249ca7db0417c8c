"""The tables ``mptcpspec table`` writes: their kinds, columns and types, and the schema's version.

The columns are declared here as plain data (a name, a type name, what it holds), so the manual
and ``table --list`` show them without pyarrow; :func:`arrow_schema` makes each a
``pyarrow.Schema`` when the tables are written.  A change of a column's name, type or meaning
raises :data:`SCHEMA_VERSION`, which every dataset carries (``_mptcpspec.json`` and the Parquet
files' key-value metadata).
"""

from __future__ import annotations

from typing import Any

from mptcpspec.records import dataclass

__all__ = ["KINDS", "PACKET_FIELDS", "SCHEMA_VERSION", "Column", "TableKind", "arrow_schema", "arrow_type"]

#: The version of the tables' layout.
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  #: int64, uint64, float64, bool, string, or list<T> of one of them
    what: str


@dataclass(frozen=True, slots=True)
class TableKind:
    name: str
    what: str
    columns: tuple[Column, ...]


def _c(name: str, type_: str, what: str) -> Column:
    return Column(name, type_, what)


_WHERE = (
    _c("file", "string", "the capture file the frame was read from"),
    _c("file_frame", "int64", "its frame number in that file, from 1"),
    _c("frame", "int64", "its frame number in the archive read as one capture (frame.number)"),
)

#: Every kind of table, in the order ``table --tables`` takes them.
KINDS: dict[str, TableKind] = {
    k.name: k
    for k in (
        TableKind(
            "packets",
            "one row per frame: the fields of --fields (Wireshark's names, dots as underscores)",
            (*_WHERE, _c("time_ns", "int64", "capture time, nanoseconds since the epoch")),
        ),
        TableKind(
            "connections",
            "one row per MPTCP connection: what connections --json has, flattened",
            (
                _c("stream", "int64", "mptcp.stream"),
                _c("version", "int64", "MPTCP version"),
                _c("client", "string", "the first subflow's initiator, address:port"),
                _c("server", "string", "its listener"),
                _c("client_key", "uint64", "the client's key"),
                _c("server_key", "uint64", "the server's key"),
                _c("client_token", "uint64", "token of the client's key"),
                _c("server_token", "uint64", "token of the server's key"),
                _c("checksum", "bool", "DSS checksums negotiated"),
                _c("fallback", "string", "why the connection fell back to TCP, if it did"),
                _c("subflows", "int64", "subflows seen"),
                _c("client_bytes", "int64", "data-level octets the client sent"),
                _c("server_bytes", "int64", "data-level octets the server sent"),
                _c("client_reinjected", "int64", "octets the client sent again on another subflow"),
                _c("server_reinjected", "int64", "octets the server sent again on another subflow"),
                _c("client_state", "string", "the client's closure state at the end"),
                _c("server_state", "string", "the server's closure state at the end"),
                _c("unlinked", "bool", "made from a subflow whose handshake the capture missed"),
                _c("first_frame", "int64", "the connection's first frame"),
                _c("experts", "int64", "expert items raised on it"),
            ),
        ),
        TableKind(
            "subflows",
            "one row per subflow of an MPTCP connection",
            (
                _c("stream", "int64", "mptcp.stream"),
                _c("tcp_stream", "int64", "tcp.stream"),
                _c("kind", "string", "MP_CAPABLE or MP_JOIN"),
                _c("initiator", "string", "address:port that sent the SYN"),
                _c("listener", "string", "address:port that answered it"),
                _c("initiator_id", "int64", "the initiator's address ID"),
                _c("listener_id", "int64", "the listener's address ID"),
                _c("initiator_backup", "bool", "the initiator asked for backup"),
                _c("listener_backup", "bool", "the listener asked for backup"),
                _c("state", "string", "the handshake machine's states"),
                _c("closed", "bool", "closed (FIN both ways or RST)"),
                _c("reset", "bool", "ended by a RST"),
                _c("tcprst_reason", "string", "MP_TCPRST reason"),
                _c("initiator_bytes", "int64", "payload octets from the initiator"),
                _c("listener_bytes", "int64", "payload octets from the listener"),
                _c("initiator_retransmissions", "int64", "segments retransmitted by the initiator"),
                _c("listener_retransmissions", "int64", "segments retransmitted by the listener"),
            ),
        ),
        TableKind(
            "mappings",
            "one row per DSS mapping as sent (a DSS option with a mapping)",
            (
                *_WHERE,
                _c("stream", "int64", "mptcp.stream"),
                _c("tcp_stream", "int64", "tcp.stream"),
                _c("from_client", "bool", "sent by the connection's client"),
                _c("dsn64", "uint64", "the mapping's data sequence number, 64 bits"),
                _c("dsn", "int64", "relative to the sender's IDSN, where known"),
                _c("ssn", "int64", "its subflow sequence number as sent (relative to the ISN in v1, RFC 8684 §3.3.1)"),
                _c("length", "int64", "its data-level length"),
                _c("checksum", "int64", "its DSS checksum, where present"),
            ),
        ),
        TableKind(
            "reinjections",
            "one row per frame that carried data again on another subflow, and per earlier frame",
            (
                *_WHERE,
                _c("stream", "int64", "mptcp.stream"),
                _c("tcp_stream", "int64", "tcp.stream"),
                _c("from_client", "bool", "sent by the connection's client"),
                _c("dsn", "int64", "DSN of its first payload octet, relative"),
                _c("length", "int64", "payload octets"),
                _c("of_frame", "int64", "a frame that carried the data first (mptcp.reinjection_of)"),
            ),
        ),
        TableKind(
            "checks",
            "one row per check made on a frame (HMACs, DSS checksums, keys)",
            (
                *_WHERE,
                _c("stream", "int64", "mptcp.stream"),
                _c("what", "string", "what was checked"),
                _c("verdict", "string", "verified, mismatch or unverifiable"),
                _c("why", "string", "why, when not verified"),
            ),
        ),
        TableKind(
            "experts",
            "one row per expert item raised on a frame",
            (
                *_WHERE,
                _c("stream", "int64", "mptcp.stream"),
                _c("key", "string", "the item's key (docs: Expert items)"),
                _c("severity", "string", "chat, note, warn or error"),
                _c("message", "string", "what it says"),
            ),
        ),
        TableKind(
            "events",
            "one row per address-management or closing event: ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FAIL, "
            "MP_FASTCLOSE, fallback",
            (
                _c("stream", "int64", "mptcp.stream"),
                _c("frame", "int64", "the frame of the event (in the archive)"),
                _c("event", "string", "what happened, as connections prints it"),
            ),
        ),
    )
}

#: The packet columns without --fields.
PACKET_FIELDS = (
    "tcp.stream",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "tcp.dstport",
    "tcp.flags",
    "tcp.seq",
    "tcp.ack",
    "tcp.len",
    "mptcp.stream",
    "tcp.options.mptcp.subtype",
    "mptcp.dsn",
    "mptcp.ack",
    "mptcp.reinjection_of",
    "tcp.analysis.retransmission",
    "tcp.analysis.ack_rtt",
)


def arrow_type(name: str) -> Any:
    """The pyarrow type of a type name of this module."""
    import pyarrow as pa

    if name.startswith("list<"):
        return pa.list_(arrow_type(name[5:-1]))
    return {
        "int64": pa.int64(),
        "uint64": pa.uint64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
    }[name]


def arrow_schema(columns: tuple[Column, ...]) -> Any:
    """A ``pyarrow.Schema`` of ``columns``, with the version in its metadata."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(c.name, arrow_type(c.type)) for c in columns],
        metadata={b"mptcpspec.schema_version": str(SCHEMA_VERSION).encode()},
    )
