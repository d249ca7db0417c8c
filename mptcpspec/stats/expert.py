"""``-z expert[,LEVEL][,FILTER]``: the expert items of every packet, counted by severity, protocol and
summary, as tshark 4.0's ``-z expert`` prints them.

The items are TCP's (the subflow analysis, :attr:`PacketInfo.tcp <mptcpspec.analysis.model.PacketInfo>`,
exactly tshark's) and the MPTCP analysis's (:data:`~mptcpspec.analysis.expert.KINDS`).  An MPTCP
item that tshark 4.0 raises too is counted under tshark's group, protocol and summary
(:data:`TSHARK`); the others under the group of :data:`GROUPS`, protocol ``MPTCP`` and the meaning
of their key.  ``mptcp.dss.missing_mapping`` is not tshark's "No mapping available", which tshark
raises on other packets (on every pure ACK after the handshake, among them): it keeps a summary of
its own.
"""

from __future__ import annotations

from mptcpspec.analysis import PacketInfo
from mptcpspec.analysis.expert import KINDS, Severity
from mptcpspec.dissect.filters import Filter
from mptcpspec.stats.base import Statistic, option_ends_early
from mptcpspec.stats.parse import display_filter

__all__ = ["ExpertStat", "GROUPS", "TSHARK"]

#: MPTCP keys that tshark 4.0 raises for the same reason -> (group, protocol, summary) as it prints them
TSHARK: dict[str, tuple[str, str, str]] = {
    "mptcp.connection.echoed_key_mismatch": (
        "Protocol",
        "TCP",
        "The echoed key in the ACK of the MPTCP handshake does not match the key of the SYN/ACK",
    ),
    "mptcp.connection.missing_algorithm": ("Protocol", "TCP", "No crypto algorithm specified"),
    "mptcp.connection.unsupported_algorithm": ("Protocol", "TCP", "Unsupported algorithm"),
    "mptcp.dss.infinite_mapping": ("Protocol", "TCP", "Fallback to infinite mapping"),
}
#: tshark's item for an MPTCP option that ends before a field it must hold (its dissector throws)
MALFORMED = ("Malformed", "MPTCP", "Malformed Packet (Exception occurred)")
#: TCP's item for 4 NOP options in a row (:func:`_four_nops`), which tshark raises only while it builds a protocol
#: tree: when a display filter is in use (``-Y``, a ``-z`` filter), for ``io,stat``, ``-T fields``
#: and ``-T json``
NOPS = ("Warning", "Protocol", "4 NOP in a row - a router may have removed some options")
#: TCP's items of the header (raised before the options are read)
_HEADER = (
    "Connection establish",
    "Connection finish (FIN)",
    "Connection reset (RST)",
    "This frame initiates the connection closing",
    "This frame undergoes the connection closing",
    "The acknowledgment number field is nonzero",
    "The urgent pointer field is nonzero",
    "TCP SYN-ACK",
)
#: TCP's items raised before its sequence analysis: the header's and the options' (a D-SACK, a TFO
#: cookie); tshark stops before the analysis in a packet whose options the snapshot length cut
_BEFORE_ANALYSIS = (*_HEADER, "D-SACK Sequence", "TCP SYN with TFO Cookie")

#: Wireshark's expert group of each of our keys (a key not here: "Protocol")
GROUPS: dict[str, str] = {
    "mptcp.connection.echoed_key_mismatch": "Protocol",
    "mptcp.connection.missing_algorithm": "Protocol",
    "mptcp.connection.unsupported_algorithm": "Protocol",
    "mptcp.connection.unsupported_version": "Protocol",
    "mptcp.dss.infinite_mapping": "Protocol",
    "mptcp.dss.missing_mapping": "Protocol",
    "mptcp.packet.malformed": "Malformed",
    "mptcp.packet.options_cut": "Undecoded",
    "mptcp.option.malformed": "Malformed",
    "mptcp.option.space": "Malformed",
    "mptcp.option.unexpected": "Protocol",
    "mptcp.handshake.illegal": "Protocol",
    "mptcp.handshake.out_of_order": "Sequence",
    "mptcp.fallback": "Protocol",
    "mptcp.join.unknown_token": "Protocol",
    "mptcp.join.hmac_mismatch": "Security",
    "mptcp.add_addr.hmac_mismatch": "Security",
    "mptcp.token.collision": "Protocol",
    "mptcp.dss.first_dsn": "Sequence",
    "mptcp.dss.checksum_mismatch": "Checksum",
    "mptcp.dss.checksum_missing": "Checksum",
    "mptcp.dss.checksum_unexpected": "Checksum",
    "mptcp.dss.mapping_conflict": "Sequence",
    "mptcp.dss.reinjection": "Sequence",
    "mptcp.dss.retransmission": "Sequence",
    "mptcp.dss.gap": "Sequence",
    "mptcp.dss.out_of_order": "Sequence",
    "mptcp.fastclose.key_mismatch": "Security",
    "mptcp.closure.illegal": "Protocol",
    "mptcp.tcprst": "Sequence",
}
#: tshark's sections, most severe first; the severity names TCP's items carry
_LEVELS = (("error", "Errors"), ("warn", "Warns"), ("note", "Notes"), ("chat", "Chats"))
_OF_NAME = {"error": 0, "warning": 1, "warn": 1, "note": 2, "chat": 3}
_OF_SEVERITY = {Severity.ERROR: 0, Severity.WARN: 1, Severity.NOTE: 2, Severity.CHAT: 3}


def _four_nops(options: bytes) -> bool:
    """tshark 4.0's test for "4 NOP in a row": NOPs counted in option order, the count kept across
    other options and started again at a NOP on a 4-octet boundary (offsets from the TCP header's
    start, the options at 20) after an earlier NOP."""
    count = 0
    i, end = 0, len(options)
    while i < end:
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            if count == 0 or (20 + i) % 4:
                count += 1
                if count == 4:
                    return True
            else:
                count = 0
            i += 1
        elif i + 1 < end and options[i + 1] >= 2:
            i += options[i + 1]
        else:
            break
    return False


class ExpertStat(Statistic):
    """``-z expert``: the items counted by section, protocol and summary."""

    def __init__(self, lowest: int = 3, keep: Filter | None = None) -> None:
        self.lowest = lowest  #: the least severe section kept (0: errors only ... 3: chats too)
        self.keep = keep
        #: per section (errors first): (protocol, summary) -> frequency, in the order first met
        self.counts: tuple[dict[tuple[str, str], int], ...] = ({}, {}, {}, {})
        self.groups: dict[tuple[str, str], str] = {}  #: (protocol, summary) -> group, as first met
        self.tree = keep is not None  #: tshark builds a protocol tree (see :data:`NOPS`)

    @classmethod
    def parse(cls, rest: str) -> ExpertStat:
        """``rest``: what follows ``expert`` in the argument (``,warn,tcp.port==5201``)."""
        lowest = 3
        for i, (name, _) in enumerate(_LEVELS):
            if rest[: len(name) + 1].lower() == "," + name:
                lowest = i
                rest = rest[len(name) + 1 :]
                break
        keep = display_filter(rest[1:], "Expert tap error ({})!") if rest.startswith(",") else None
        return cls(lowest, keep)

    def add(self, level: int, group: str, protocol: str, summary: str) -> None:
        if level > self.lowest:
            return
        counts = self.counts[level]
        key = (protocol, summary)
        counts[key] = counts.get(key, 0) + 1
        self.groups.setdefault(key, group)

    def build_tree(self) -> None:
        self.tree = True

    def feed(self, info: PacketInfo, rel_ns: int) -> None:
        tcp = info.tcp
        tcp_items = tcp.experts if tcp is not None else ()
        if tcp_items and info.cut_short:  # tshark stops in the options: no item of the analysis after them
            tcp_items = tuple(t for t in tcp_items if t[2].startswith(_BEFORE_ANALYSIS))
        if self.tree and info.packet is not None and _four_nops(info.packet.options):
            n = 0
            while n < len(tcp_items) and tcp_items[n][2].startswith(_HEADER):
                n += 1
            tcp_items = (*tcp_items[:n], NOPS, *tcp_items[n:])
        if not tcp_items and not info.experts:
            return
        if self.keep is not None and not self.keep(info):
            return
        for severity, group, summary in tcp_items:
            self.add(_OF_NAME[severity.lower()], group, "TCP", summary)
        for e in info.experts:
            if e.key == "mptcp.option.malformed" and option_ends_early(info):
                group, protocol, summary = MALFORMED
            else:
                group, protocol, summary = TSHARK.get(e.key) or (
                    GROUPS.get(e.key, "Protocol"),
                    "MPTCP",
                    KINDS[e.key][1],
                )
            self.add(_OF_SEVERITY[e.severity], group, protocol, summary)

    def render(self, elapsed_ns: int) -> str:
        out = []
        for (_, label), counts in zip(_LEVELS, self.counts):
            if not counts:
                continue
            out.append(f"\n{label} ({sum(counts.values())})\n=============\n")
            out.append("   Frequency      Group           Protocol  Summary\n")
            for (protocol, summary), n in counts.items():
                out.append(f"{n:12d} {self.groups[protocol, summary]:>10} {protocol:>18}  {summary}\n")
        return "".join(out)
