"""Wireshark's TCP fields that come from its conversation analysis (``tcp.analysis.*``, the scaled
window, the next sequence number, the times within a TCP stream), as field definitions.

Their values come from :mod:`mptcpspec.analysis.tcpanalysis` (the subflow-level TCP analysis, on
:attr:`~mptcpspec.analysis.model.PacketInfo.tcp`); the definitions are compiled into
:data:`mptcpspec.dissect.fields.FIELDS` with the other fields.  Values are printed as ``tshark -T
fields`` prints them: times in seconds with nine decimals, present expert items as ``1``.
"""

from __future__ import annotations

from collections.abc import Iterable

from mptcpspec.analysis.tcpanalysis import TcpFlag
from mptcpspec.dissect.fieldgen import NONE, FieldDef, is_list
from mptcpspec.records import field_names

__all__ = ["TCP_ENV", "TCP_FIELDS", "needs_tcp_analysis", "seconds"]


def seconds(ns: int) -> str:
    """A time in nanoseconds as Wireshark prints a relative time: ``-0.000123000``."""
    a = -ns if ns < 0 else ns
    return f"{'-' if ns < 0 else ''}{a // 1_000_000_000}.{a % 1_000_000_000:09d}"


def _int(name: str, description: str, attr: str) -> FieldDef:
    return FieldDef(name, description, f"{NONE} if (v := i.tcp.{attr}) is None else str(v)")


def _time(name: str, description: str, attr: str) -> FieldDef:
    return FieldDef(name, description, f"{NONE} if (v := i.tcp.{attr}) is None else SECONDS(v)")


def _flag(name: str, description: str, bits: TcpFlag) -> FieldDef:
    return FieldDef(name, description, f"'1' if i.tcp.flags & {int(bits)} else {NONE}")


_F = TcpFlag

#: The definitions, in the order of ``--list-fields`` (after the other TCP header fields).
TCP_FIELDS: list[FieldDef] = [
    FieldDef("tcp.window_size", "window, scaled by the window scale of the handshake", "str(i.tcp.window_size)"),
    _int(
        "tcp.window_size_scalefactor", "window scale factor (-1: unknown, -2: no scaling; none on a SYN)", "scalefactor"
    ),
    FieldDef("tcp.nxtseq", "relative sequence number after this segment", "str(i.tcp.nxtseq)"),
    FieldDef("tcp.time_relative", "time since the TCP stream's first frame", "SECONDS(i.tcp.time_relative_ns)"),
    FieldDef("tcp.time_delta", "time since the TCP stream's previous frame", "SECONDS(i.tcp.time_delta_ns)"),
    _int("tcp.analysis.acks_frame", "frame of the segment this acknowledges", "acks_frame"),
    _time("tcp.analysis.ack_rtt", "time since the segment this acknowledges", "ack_rtt_ns"),
    _time("tcp.analysis.initial_rtt", "SYN to the first ACK of the handshake", "initial_rtt_ns"),
    _int("tcp.analysis.bytes_in_flight", "bytes sent and not yet acknowledged", "bytes_in_flight"),
    _int("tcp.analysis.push_bytes_sent", "bytes sent since the last PSH", "push_bytes_sent"),
    FieldDef("tcp.analysis.flags", "the analysis found something on this segment", f"'1' if i.tcp.flags else {NONE}"),
    _flag(
        "tcp.analysis.retransmission",
        "a (suspected) retransmission: plain, fast or spurious",
        _F.RETRANSMISSION | _F.FAST_RETRANSMISSION | _F.SPURIOUS_RETRANSMISSION,
    ),
    _flag("tcp.analysis.fast_retransmission", "a (suspected) fast retransmission", _F.FAST_RETRANSMISSION),
    _flag("tcp.analysis.spurious_retransmission", "a (suspected) spurious retransmission", _F.SPURIOUS_RETRANSMISSION),
    _flag("tcp.analysis.out_of_order", "a (suspected) out-of-order segment", _F.OUT_OF_ORDER),
    _flag("tcp.analysis.lost_segment", "previous segment(s) not captured", _F.LOST_PACKET),
    _flag("tcp.analysis.ack_lost_segment", "acknowledges a segment not captured", _F.ACK_LOST_PACKET),
    _flag("tcp.analysis.window_update", "a window update", _F.WINDOW_UPDATE),
    _flag("tcp.analysis.window_full", "fills the receiver's window", _F.WINDOW_FULL),
    _flag("tcp.analysis.keep_alive", "a keep-alive", _F.KEEP_ALIVE),
    _flag("tcp.analysis.keep_alive_ack", "acknowledges a keep-alive", _F.KEEP_ALIVE_ACK),
    _flag("tcp.analysis.zero_window", "advertises a zero window", _F.ZERO_WINDOW),
    _flag("tcp.analysis.zero_window_probe", "a zero window probe", _F.ZERO_WINDOW_PROBE),
    _flag("tcp.analysis.zero_window_probe_ack", "acknowledges a zero window probe", _F.ZERO_WINDOW_PROBE_ACK),
    _flag("tcp.analysis.reused_ports", "a new connection on the ports of an earlier one", _F.REUSED_PORTS),
    # two occurrences, as in Wireshark: the analysis item and the expert item
    FieldDef("tcp.analysis.duplicate_ack", "a duplicate ACK", "['1', '1']", when="i.tcp.dupack_num"),
    _int("tcp.analysis.duplicate_ack_num", "number of this duplicate ACK", "dupack_num"),
    _int("tcp.analysis.duplicate_ack_frame", "frame of the ACK this duplicates", "dupack_frame"),
    _time("tcp.analysis.rto", "a retransmission: time since the segment it retransmits", "rto_ns"),
    _int("tcp.analysis.rto_frame", "a retransmission: frame of the segment it retransmits", "rto_frame"),
]


def _not_on_cut(d: FieldDef) -> FieldDef:
    """``tcp.analysis.*`` is not shown on a packet Wireshark's dissection stopped at the snapshot
    length (its analysis state still follows the packet)."""
    if not d.name.startswith("tcp.analysis"):
        return d
    given = {n: getattr(d, n) for n in field_names(FieldDef)}  # dataclasses.replace, without importing it
    if is_list(d.value):
        return FieldDef(**given | {"when": f"not (p.options_cut and i.cut_short) and ({d.when or 'True'})"})
    return FieldDef(**given | {"value": f"{NONE} if p.options_cut and i.cut_short else ({d.value})"})


TCP_FIELDS = [_not_on_cut(d) for d in TCP_FIELDS]

#: Names the definitions use besides ``i``, ``p``, ``x`` and builtins.
TCP_ENV: dict[str, object] = {"SECONDS": seconds}


#: Names whose values come from the TCP analysis (a filter or field list that names none of them
#: can read a capture without it).
TCP_NAMES = frozenset(d.name for d in TCP_FIELDS)


def needs_tcp_analysis(fields: Iterable[str] = (), filter_text: str | None = None) -> bool:
    """Whether printing ``fields`` and applying the display filter ``filter_text`` need the TCP
    analysis (:attr:`~mptcpspec.analysis.model.PacketInfo.tcp`): one of them names one of its
    fields or ``tcp.analysis``.  Its outputs do not depend on it: a reader may skip it when this is
    False (``Dissection(..., tcp_analysis=False)``)."""
    if any(f in TCP_NAMES or f.startswith("tcp.analysis") for f in fields):
        return True
    if filter_text:
        return "tcp.analysis" in filter_text or any(n in filter_text for n in TCP_NAMES)
    return False
