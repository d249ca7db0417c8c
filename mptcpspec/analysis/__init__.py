"""The analysis wing: from TCP segments to MPTCP connections, with the checks made on them.

:class:`Analyzer` takes decoded packets in capture order and returns a :class:`PacketInfo` for each:
the TCP and MPTCP stream it belongs to, relative sequence numbers, data sequence numbers relative to
the IDSNs, the checks made on it (HMACs, checksums, keys: each a
:class:`~mptcpspec.codec.crypto.Check`) and expert information (:mod:`~mptcpspec.analysis.expert`).
:meth:`Analyzer.connections` gives the :class:`Connection` objects, and
:meth:`Connection.summary` a frozen :class:`ConnectionSummary`.

What it follows (RFC 8684; RFC 6824 for v0):

* subflows are linked into connections by token: the keys of MP_CAPABLE (v0: SYN and SYN/ACK;
  v1: SYN/ACK, then the third ACK with both) give each side's token and IDSN; an MP_JOIN SYN names
  the token of the side it joins;
* each DSS mapping is checked against the subflow data it covers; data no mapping covers, mappings
  that disagree, reinjections (a data range mapped on a second subflow), mappings below the highest
  data sequence number already seen, and data acknowledged that no captured segment carried are
  reported;
* MP_JOIN HMACs, ADD_ADDR HMACs, DSS checksums (when negotiated; their absence too), the key of
  MP_FASTCLOSE, echoed keys and token collisions are verified;
* the MP_CAPABLE and MP_JOIN handshakes and the connection's closure are followed with the state
  machines generated from ``spec/`` (:mod:`mptcpspec.fsm.observer`).

Memory is bounded by the live state of each connection, not by the number of packets.

Modules, each importing only those before it:

* :mod:`~mptcpspec.analysis.expert`: expert items and their severities;
* :mod:`~mptcpspec.analysis.tcpanalysis`: the subflow-level TCP analysis (Wireshark's ``tcp.analysis``);
* :mod:`~mptcpspec.analysis.model`: packets, subflows, connections, mappings (data only);
* :mod:`~mptcpspec.analysis.context`: the packet under analysis and what was found on it;
* :mod:`~mptcpspec.analysis.seqspace`: 32/64-bit expansion, data ranges, reinjections, gaps;
* :mod:`~mptcpspec.analysis.datalevel`: DSS options, mappings, payload, checksums;
* :mod:`~mptcpspec.analysis.handshake`: MP_CAPABLE, MP_JOIN, keys, tokens, MP_FASTCLOSE;
* :mod:`~mptcpspec.analysis.addresses`: ADD_ADDR, REMOVE_ADDR, MP_PRIO;
* :mod:`~mptcpspec.analysis.connections`: the :class:`Analyzer`, subflows, the options to the parts.
"""

from __future__ import annotations

from mptcpspec.analysis.connections import Analyzer
from mptcpspec.analysis.expert import KINDS, Expert, Severity
from mptcpspec.analysis.model import (
    CLIENT,
    SERVER,
    Connection,
    ConnectionSummary,
    DssInfo,
    PacketInfo,
    PairFrame,
    Subflow,
    SubflowSummary,
)
from mptcpspec.analysis.seqspace import expand

__all__ = [
    "Analyzer",
    "PacketInfo",
    "PairFrame",
    "DssInfo",
    "Connection",
    "Subflow",
    "ConnectionSummary",
    "SubflowSummary",
    "CLIENT",
    "SERVER",
    "Expert",
    "Severity",
    "KINDS",
    "expand",
]
