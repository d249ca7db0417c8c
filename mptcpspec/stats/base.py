"""What every statistic shares: the interface the dissect loop feeds, the clock of relative times,
and the error of a ``-z`` argument that cannot be used."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mptcpspec.analysis import PacketInfo
from mptcpspec.codec.options import MalformedOption
from mptcpspec.dissect.filters import Filter
from mptcpspec.errors import MptcpspecError

__all__ = ["Statistic", "StatsError", "Statistics", "dissection_stops", "option_ends_early"]


def option_ends_early(info: PacketInfo) -> bool:
    """An MPTCP option of the packet ends before a field it must hold: tshark's dissector throws
    there ("Malformed Packet (Exception occurred)")."""
    return any(isinstance(o, MalformedOption) and o.error.reason.endswith("left in the option") for o in info.mptcp)


def dissection_stops(info: PacketInfo) -> bool:
    """tshark's dissection of the packet stops before its TCP and MPTCP taps, which never see it:
    an MPTCP option that ends early, or an options area cut by the snapshot length where tshark
    stops (:attr:`PacketInfo.cut_short <mptcpspec.analysis.model.PacketInfo.cut_short>`)."""
    return info.cut_short or (bool(info.mptcp) and option_ends_early(info))


class StatsError(MptcpspecError, ValueError):
    """A ``-z`` argument that cannot be used; the message is worded as tshark 4.0 words it."""


class Statistic:
    """One ``-z`` statistic: fed every packet read, then drawn once.  ``keep``: its display filter
    (only the packets it matches count), None for every packet."""

    keep: Filter | None = None

    def feed(self, info: PacketInfo, rel_ns: int) -> None:
        """One packet; ``rel_ns``: its time since the first frame of the capture (tshark's
        ``frame.time_relative``), in nanoseconds."""
        raise NotImplementedError

    def render(self, elapsed_ns: int) -> str:
        """The table, as tshark prints it; ``elapsed_ns``: the capture's duration so far."""
        raise NotImplementedError

    def filter_fields(self) -> frozenset[str]:
        """The fields its filters name (tshark builds them for every statistic of the run)."""
        return self.keep.fields if self.keep is not None else frozenset()

    def needs_tree(self) -> bool:
        """tshark builds a protocol tree for it: a tap with a filter does."""
        return self.keep is not None

    def prime(self, fields: frozenset[str]) -> None:
        """Fields that some display filter of the command names: only they have values."""

    def build_tree(self) -> None:
        """tshark builds a protocol tree in this run (some items exist only then)."""


class Statistics:
    """The statistics of one read: each fed every packet, drawn in tshark's order (the last
    ``-z`` first, as tshark's tap list runs)."""

    __slots__ = ("stats", "first_ns", "elapsed_ns")

    def __init__(self, stats: Sequence[Statistic], *, tree: bool = False) -> None:
        """``tree``: tshark would build a protocol tree for another reason (``-T fields``,
        ``-T json``): some items exist only then (:data:`mptcpspec.stats.expert.NOPS`)."""
        self.stats = tuple(stats)
        self.first_ns: int | None = None
        self.elapsed_ns = 0
        self.prime(frozenset().union(*(s.filter_fields() for s in self.stats)))
        if tree or any(s.needs_tree() for s in self.stats):
            self.build_tree()

    def build_tree(self) -> None:
        for s in self.stats:
            s.build_tree()

    def feed(self, info: PacketInfo) -> None:
        ts = info.timestamp_ns
        if self.first_ns is None:
            self.first_ns = ts
        rel = ts - self.first_ns
        if rel > self.elapsed_ns:
            self.elapsed_ns = rel
        for s in self.stats:
            s.feed(info, rel)

    def render(self) -> str:
        return "".join(s.render(self.elapsed_ns) for s in reversed(self.stats))

    def prime(self, fields: frozenset[str]) -> None:
        """Fields that display filters of the command name: tshark builds those, and only those,
        so only they have values in ``io,stat``'s calculations."""
        for s in self.stats:
            s.prime(fields)

    def tap(self, keep: Filter | None) -> Callable[[PacketInfo], bool]:
        """A packet predicate for the dissect loop: feeds every packet to the statistics, then
        answers as ``keep`` (``-Y``) does (statistics count every packet read, as tshark's taps:
        ``-Y`` selects only what is printed, and makes tshark build the fields it names)."""
        feed = self.feed
        if keep is not None:
            self.prime(keep.fields)
            self.build_tree()
        if keep is None:

            def every(info: PacketInfo) -> bool:
                feed(info)
                return True

            return every

        def kept(info: PacketInfo) -> bool:
            feed(info)
            return keep(info)

        return kept
