"""The type of each field, as ``-z io,stat`` needs it: which calculations a field takes and how its
values add up and print.

Wireshark's fields have the types of Wireshark 4.0 (``tshark -G fields``; the tests compare); ours
are integers unless listed.  ``"u"``: an unsigned integer, ``"i"``: a signed one (both take every
calculation); ``"t"``: a relative time (SUM, COUNT, MIN, MAX, AVG; values in seconds, 9 decimals);
``"o"``: anything else (an address, a flag, a string, a frame number, a field without value): COUNT
only.
"""

from __future__ import annotations

__all__ = ["field_type", "DOUBLED"]

#: Fields that Wireshark registers twice under one name, as a flag and as the expert item of that
#: flag: ``tshark -T fields`` prints both occurrences, and ``-z io,stat`` counts the flag's only.
DOUBLED = frozenset({"tcp.analysis.duplicate_ack"})

_SIGNED = frozenset({"tcp.window_size_scalefactor"})
_TIMES = frozenset(
    {
        "frame.time_epoch",
        "frame.time_relative",
        "frame.time_delta",
        "frame.time_delta_displayed",
        "tcp.time_relative",
        "tcp.time_delta",
        "tcp.analysis.ack_rtt",
        "tcp.analysis.initial_rtt",
        "tcp.analysis.rto",
    }
)
#: fields without integral values: COUNT only
_OTHER = frozenset(
    {
        # Wireshark's: absolute time, addresses, booleans, frame numbers, bytes, strings
        "frame.time",
        "ip.src",
        "ip.dst",
        "ip.addr",
        "ipv6.src",
        "ipv6.dst",
        "ipv6.addr",
        "tcp.options.mptcp.ipv4",
        "tcp.options.mptcp.ipv6",
        "tcp.flags.fin",
        "tcp.flags.syn",
        "tcp.flags.reset",
        "tcp.flags.push",
        "tcp.flags.ack",
        "tcp.flags.urg",
        "tcp.analysis.acks_frame",
        "tcp.analysis.flags",
        "tcp.analysis.retransmission",
        "tcp.analysis.fast_retransmission",
        "tcp.analysis.spurious_retransmission",
        "tcp.analysis.out_of_order",
        "tcp.analysis.lost_segment",
        "tcp.analysis.ack_lost_segment",
        "tcp.analysis.window_update",
        "tcp.analysis.window_full",
        "tcp.analysis.keep_alive",
        "tcp.analysis.keep_alive_ack",
        "tcp.analysis.zero_window",
        "tcp.analysis.zero_window_probe",
        "tcp.analysis.zero_window_probe_ack",
        "tcp.analysis.reused_ports",
        "tcp.analysis.duplicate_ack",
        "tcp.analysis.duplicate_ack_frame",
        "tcp.analysis.rto_frame",
        "tcp.options.mptcp.flag_U.flag",
        "tcp.options.mptcp.flag_V.flag",
        "tcp.options.mptcp.flag_W.flag",
        "tcp.options.mptcp.flag_T.flag",
        "mptcp.master",
        "mptcp.related_mapping",
        "mptcp.reinjection_of",
        "mptcp.reinjected_in",
        "mptcp.analysis",
        "mptcp.analysis.subflows",
        "tcp.options.mptcp.sendhmac",
        # ours: words, addresses, octet strings
        "mptcp.dss.checksum.status",
        "mptcp.join.hmac.status",
        "mptcp.add_addr.hmac.status",
        "mptcp.fastclose.key.status",
        "mptcp.echoed_key.status",
        "mptcp.check",
        "mptcp.expert",
        "mptcp.expert.severity",
        "mptcp.expert.message",
        "mptcp.subflow.kind",
        "mptcp.subflow.state",
        "mptcp.closure.client",
        "mptcp.closure.server",
        "mptcp.tcprst.reason",
        "mptcp.experimental.payload",
        "mptcpspec.format",
        "mptcpspec.mp_join_ack.hmac",
        "mptcpspec.add_addr_v0.address",
        "mptcpspec.add_addr_v0.address6",
        "mptcpspec.add_addr.address",
        "mptcpspec.add_addr.address6",
        "mptcpspec.mp_experimental.payload",
        "mptcpspec.mptcp_unknown.payload",
    }
)


def field_type(name: str) -> str:
    """``"u"``, ``"i"``, ``"t"`` or ``"o"`` (see the module's docstring) for a field of
    :data:`~mptcpspec.dissect.fields.FIELDS`."""
    if name in _TIMES:
        return "t"
    if name in _SIGNED:
        return "i"
    if name in _OTHER:
        return "o"
    return "u"
