"""``-z conv,tcp``, ``-z conv,mptcp``, ``-z endpoints,tcp`` and ``-z endpoints,mptcp``: tshark 4.0's
conversation and endpoint tables.

A TCP conversation is a TCP stream (``tcp.stream``): its row names the sender of its first packet
on the left, and counts what that side sent under ``->``, what the other sent under ``<-``.

An MPTCP conversation follows tshark 4.0 exactly: each side of a connection has its own row (its
``<-`` columns stay empty). tshark keys a packet by the addresses and ports its side took from the
connection's first MPTCP packet (the other side takes them swapped, without ports), so the two
directions of a connection never meet in one row; every subflow's packets count in their side's
row, under the addresses of the first subflow.  A packet counts once the connection is numbered
(``mptcp.stream``): a v1 SYN, which carries no key, does not.

tshark 4.0 aborts on ``endpoints,mptcp``; ours counts, per address of the connections' first
subflows, the packets its side sent (Tx) and received (Rx) on every subflow.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from mptcpspec.analysis import PacketInfo
from mptcpspec.dissect.filters import Filter
from mptcpspec.stats.base import Statistic, dissection_stops

__all__ = ["Conversations", "Endpoints", "format_size", "seconds"]

RULE = "=" * 80
_Addr = IPv4Address | IPv6Address
_Key = tuple[_Addr, _Addr, int, int, int]


def format_size(size: int) -> str:
    """Wireshark's ``format_size(size, FORMAT_SIZE_UNIT_BYTES, 0)``: SI prefixes, whole units only
    from 10 of them (``9999 bytes``, ``10 kB``)."""
    for power, prefix in ((1000**4, "T"), (1000**3, "G"), (1000**2, "M"), (1000, "k")):
        if size // power >= 10:
            return f"{size // power} {prefix}B"
    return f"{size} bytes"


def seconds(ns: int) -> float:
    """Wireshark's ``nstime_to_sec``: whole seconds plus nanoseconds / 1e9, as a double (the
    nanoseconds take the sign of the seconds)."""
    secs = abs(ns) // 1_000_000_000 * (1 if ns >= 0 else -1)
    return secs + (ns - secs * 1_000_000_000) / 1e9


class _Row:
    __slots__ = ("src", "dst", "sport", "dport", "rx_frames", "rx_bytes", "tx_frames", "tx_bytes", "start", "stop")

    def __init__(self, src: _Addr, dst: _Addr, sport: int, dport: int, rel_ns: int) -> None:
        self.src, self.dst, self.sport, self.dport = src, dst, sport, dport
        self.rx_frames = self.rx_bytes = self.tx_frames = self.tx_bytes = 0
        self.start = self.stop = rel_ns


class _Host:
    __slots__ = ("address", "port", "rx_frames", "rx_bytes", "tx_frames", "tx_bytes")

    def __init__(self, address: _Addr, port: int) -> None:
        self.address, self.port = address, port
        self.rx_frames = self.rx_bytes = self.tx_frames = self.tx_bytes = 0


class _Metas:
    """tshark 4.0's addresses of the two sides of each MPTCP connection (its ``meta`` flows)."""

    __slots__ = ("by_stream",)

    def __init__(self) -> None:
        #: MPTCP stream -> (client side's, server side's) (source, destination, sport, dport)
        self.by_stream: dict[int, list[tuple[_Addr, _Addr, int, int] | None]] = {}

    def of(self, info: PacketInfo, stream: int, ports_of_peer: bool) -> tuple[_Addr, _Addr, int, int] | None:
        """The sender's meta for a packet of MPTCP stream ``stream`` (None: not an IP packet).  The
        connection's first packet (its first MPTCP packet, which numbers it) sets both sides: its
        sender's with ports, the peer's swapped, with ports 0 as in tshark 4.0 (``ports_of_peer``:
        with the ports swapped too)."""
        p = info.packet
        if p is None:
            return None
        side = 0 if info.from_client else 1
        metas = self.by_stream.get(stream)
        if metas is None:
            metas = self.by_stream[stream] = [None, None]
        meta = metas[side]
        if meta is None:  # the connection's first packet counted: both sides are set at once
            meta = metas[side] = (p.src, p.dst, p.sport, p.dport)
            metas[1 - side] = (p.dst, p.src, p.dport, p.sport) if ports_of_peer else (p.dst, p.src, 0, 0)
        return meta

    def ends(self, info: PacketInfo, kind: str, ports_of_peer: bool) -> tuple[int, _Addr, _Addr, int, int] | None:
        """(stream, source, destination, source port, destination port) of a packet in a ``kind``
        table ("tcp": its TCP stream and header; "mptcp": its connection's meta, :meth:`of`), or
        None when it counts in no such table."""
        p = info.packet
        if p is None or dissection_stops(info):
            return None
        if kind == "tcp":
            stream = info.tcp_stream
            return None if stream is None else (stream, p.src, p.dst, p.sport, p.dport)
        stream = info.mptcp_stream
        if stream is None:
            return None
        meta = self.of(info, stream, ports_of_peer)
        return None if meta is None else (stream, *meta)


class Conversations(Statistic):
    """``-z conv,tcp[,FILTER]`` and ``-z conv,mptcp[,FILTER]``."""

    def __init__(self, kind: str, keep: Filter | None = None, filter_text: str | None = None) -> None:
        self.kind = kind  #: "tcp" or "mptcp"
        self.keep = keep
        self.filter_text = filter_text
        self.rows: list[_Row] = []
        self.index: dict[_Key, _Row] = {}
        self.metas = _Metas()

    def feed(self, info: PacketInfo, rel_ns: int) -> None:
        ends = self.metas.ends(info, self.kind, ports_of_peer=False)
        if ends is None or self.keep is not None and not self.keep(info):
            return
        stream, src, dst, sport, dport = ends
        self.add(src, dst, sport, dport, stream, info.orig_len, rel_ns)

    def add(self, src: _Addr, dst: _Addr, sport: int, dport: int, conv: int, size: int, rel_ns: int) -> None:
        """tshark's ``add_conversation_table_data_with_conv_id``: the row of (src, dst, ports,
        conversation) or of the reverse; a new row takes the packet's direction as ``->``."""
        index = self.index
        row = index.get((src, dst, sport, dport, conv))
        if row is not None:
            row.tx_frames += 1
            row.tx_bytes += size
        else:
            row = index.get((dst, src, dport, sport, conv))
            if row is not None:
                row.rx_frames += 1
                row.rx_bytes += size
            else:
                row = _Row(src, dst, sport, dport, rel_ns)
                self.rows.append(row)
                index[(src, dst, sport, dport, conv)] = row
                row.tx_frames = 1
                row.tx_bytes = size
        if rel_ns > row.stop:
            row.stop = rel_ns
        elif rel_ns < row.start:
            row.start = rel_ns

    def render(self, elapsed_ns: int) -> str:
        ports = self.kind == "tcp"
        pad = " " * 12 if ports else ""
        out = [
            RULE,
            f"{self.kind.upper()} Conversations",
            f"Filter:{'<No Filter>' if self.filter_text is None else self.filter_text}",
            f"{pad}                                               |       <-      | |       ->      | "
            "|     Total     |    Relative    |   Duration   |",
            f"{pad}                                               | Frames  Bytes | | Frames  Bytes | "
            "| Frames  Bytes |      Start     |              |",
        ]
        for r in by_frames(self.rows):
            if ports:
                names = f"{f'{r.src}:{r.sport}':<26} <-> {f'{r.dst}:{r.dport}':<26}"
            else:
                names = f"{str(r.src):<20} <-> {str(r.dst):<20}"
            out.append(
                f"{names}  {r.rx_frames:6d} {format_size(r.rx_bytes):<9}  {r.tx_frames:6d} "
                f"{format_size(r.tx_bytes):<9}  {r.rx_frames + r.tx_frames:6d} "
                f"{format_size(r.rx_bytes + r.tx_bytes):<9}  {seconds(r.start):14.9f}   "
                f"{seconds(r.stop) - seconds(r.start):12.4f}"
            )
        out.append(RULE)
        return "\n".join(out) + "\n"


def by_frames(rows: list[_Row]) -> list[_Row]:
    """tshark's order: most frames first; rows of as many frames in the order they were made."""
    return sorted(rows, key=lambda r: -(r.rx_frames + r.tx_frames))


class Endpoints(Statistic):
    """``-z endpoints,tcp[,FILTER]`` and ``-z endpoints,mptcp[,FILTER]``."""

    def __init__(self, kind: str, keep: Filter | None = None, filter_text: str | None = None) -> None:
        self.kind = kind
        self.keep = keep
        self.filter_text = filter_text
        self.hosts: dict[tuple[_Addr, int], _Host] = {}
        self.metas = _Metas()

    def feed(self, info: PacketInfo, rel_ns: int) -> None:
        ends = self.metas.ends(info, self.kind, ports_of_peer=True)
        if ends is None or self.keep is not None and not self.keep(info):
            return
        _, src, dst, sport, dport = ends
        if self.kind != "tcp":
            sport = dport = 0  # one row per address: no port column, as tshark's MPTCP tables
        size = info.orig_len
        h = self.host(src, sport)
        h.tx_frames += 1
        h.tx_bytes += size
        h = self.host(dst, dport)
        h.rx_frames += 1
        h.rx_bytes += size

    def host(self, address: _Addr, port: int) -> _Host:
        h = self.hosts.get((address, port))
        if h is None:
            h = self.hosts[(address, port)] = _Host(address, port)
        return h

    def render(self, elapsed_ns: int) -> str:
        ports = self.kind == "tcp"
        out = [
            RULE,
            f"{self.kind.upper()} Endpoints",
            f"Filter:{'<No Filter>' if self.filter_text is None else self.filter_text}",
            f"                       |  {'Port  ||  ' if ports else ''}Packets  | |  Bytes  | | Tx Packets | "
            "| Tx Bytes | | Rx Packets | | Rx Bytes |",
        ]
        for h in sorted(self.hosts.values(), key=lambda h: -(h.rx_frames + h.tx_frames)):
            port = f"{h.port:5d}     " if ports else ""
            out.append(
                f"{str(h.address):<20}      {port}{h.tx_frames + h.rx_frames:6d}     {h.tx_bytes + h.rx_bytes:9d}"
                f"     {h.tx_frames:6d}       {h.tx_bytes:9d}      {h.rx_frames:6d}       {h.rx_bytes:9d}   "
            )
        out.append(RULE)
        return "\n".join(out) + "\n"
