"""Expert information: the anomalies the dissector reports, each with a severity.

Keys that Wireshark 4.0 also has keep its names (``mptcp.dss.missing_mapping``); the others are
this project's (``mptcp.*``, names Wireshark 4.0 does not use).  :data:`KINDS` lists every key with its
severity and meaning; the manual's table is made from it.
"""

from __future__ import annotations

from enum import IntEnum

from mptcpspec.records import dataclass

__all__ = ["Severity", "Expert", "KINDS", "expert"]


class Severity(IntEnum):
    """Wireshark's expert severities, in rising order."""

    CHAT = 1
    NOTE = 2
    WARN = 3
    ERROR = 4


@dataclass(frozen=True, slots=True)
class Expert:
    """One expert item on one packet."""

    key: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"[{self.severity.name.lower()}] {self.message} ({self.key})"


C, N, W, E = Severity.CHAT, Severity.NOTE, Severity.WARN, Severity.ERROR

#: key -> (severity, what it means).  Wireshark's own keys first.
KINDS: dict[str, tuple[Severity, str]] = {
    "mptcp.connection.echoed_key_mismatch": (W, "the key echoed on the third ACK is not the one the SYN/ACK carried"),
    "mptcp.connection.missing_algorithm": (W, "MP_CAPABLE names no HMAC algorithm (flag H)"),
    "mptcp.connection.unsupported_algorithm": (W, "MP_CAPABLE asks for an HMAC algorithm other than the version's"),
    "mptcp.connection.unsupported_version": (W, "MP_CAPABLE of a version other than 0 (RFC 6824) and 1 (RFC 8684)"),
    "mptcp.dss.infinite_mapping": (W, "a mapping of data-level length 0: fallback to an infinite mapping"),
    "mptcp.dss.missing_mapping": (W, "subflow data that no DSS mapping covers"),
    "mptcp.packet.malformed": (E, "an IP or TCP header that cannot be decoded"),
    "mptcp.packet.options_cut": (N, "the snapshot length cut the TCP options: those after the cut are not seen"),
    "mptcp.option.malformed": (E, "an MPTCP option with a length or layout the RFCs do not allow"),
    "mptcp.option.space": (
        E,
        "the TCP options area exceeds the 40-octet option space (a packet built through "
        "the API; a captured header cannot say so)",
    ),
    "mptcp.option.unexpected": (W, "an MPTCP option on a packet where the RFCs do not place it"),
    "mptcp.handshake.illegal": (W, "a handshake signal the MP_CAPABLE or MP_JOIN machine does not allow here"),
    "mptcp.handshake.out_of_order": (
        N,
        "a segment TCP drops during a handshake (it acknowledges nothing the receiver sent, or a RST "
        "outside the receiver's window): the handshake machines ignore it",
    ),
    "mptcp.fallback": (N, "the connection or subflow fell back to regular TCP"),
    "mptcp.join.unknown_token": (W, "MP_JOIN SYN with a token of no connection in the capture"),
    "mptcp.join.hmac_mismatch": (E, "an MP_JOIN HMAC is not the one the keys and nonces give"),
    "mptcp.add_addr.hmac_mismatch": (E, "an ADD_ADDR HMAC is not the one the keys give"),
    "mptcp.token.collision": (W, "two connections in the capture have the same token"),
    "mptcp.dss.first_dsn": (W, "the first data sequence number is not IDSN + 1"),
    "mptcp.dss.checksum_mismatch": (E, "a DSS checksum does not match the mapped data"),
    "mptcp.dss.checksum_missing": (E, "checksums were negotiated but this mapping has none (RFC 8684 3.3.1)"),
    "mptcp.dss.checksum_unexpected": (W, "a DSS checksum on a connection that did not negotiate checksums"),
    "mptcp.dss.mapping_conflict": (W, "a mapping disagrees with an earlier mapping of the same subflow data"),
    "mptcp.dss.reinjection": (N, "data already mapped on another subflow is mapped again here"),
    "mptcp.dss.retransmission": (N, "data already mapped on this subflow is mapped again at other subflow octets"),
    "mptcp.dss.gap": (W, "data acknowledged at the data level that no captured segment carried (or mapped)"),
    "mptcp.dss.out_of_order": (C, "a mapping that starts below the highest data sequence number seen"),
    "mptcp.fastclose.key_mismatch": (E, "MP_FASTCLOSE does not carry the receiver's key"),
    "mptcp.closure.illegal": (W, "a closure signal the connection-closure machine does not allow here"),
    "mptcp.tcprst": (N, "a subflow reset with MP_TCPRST"),
}


def expert(key: str, message: str | None = None) -> Expert:
    severity, meaning = KINDS[key]
    return Expert(key, severity, message or meaning)
