"""What every statistic shares: the interface the dissect loop feeds, the clock of relative times,
and the error of a ``-z`` argument that cannot be used."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from mptcpspec.analysis import PacketInfo
from mptcpspec.codec.options import MalformedOption
from mptcpspec.errors import MptcpspecError

__all__ = ["Statistic", "StatsError", "Statistics", "Keep", "cut_short"]

#: A compiled display filter (:func:`mptcpspec.dissect.filters.compile_filter`), or None for every packet.
Keep = Callable[[PacketInfo], bool] | None


def cut_short(info: PacketInfo) -> bool:
    """An MPTCP option of the packet ends before a field it must hold: tshark's dissector throws
    there ("Malformed Packet"), and the TCP and MPTCP taps never see the packet."""
    return any(isinstance(o, MalformedOption) and o.error.reason.endswith("left in the option") for o in info.mptcp)


class StatsError(MptcpspecError, ValueError):
    """A ``-z`` argument that cannot be used; the message is worded as tshark 4.0 words it."""


class Statistic(Protocol):
    """One ``-z`` statistic: fed every packet read, then drawn once."""

    def feed(self, info: PacketInfo, rel_ns: int) -> None:
        """One packet; ``rel_ns``: its time since the first frame of the capture (tshark's
        ``frame.time_relative``), in nanoseconds."""

    def render(self, elapsed_ns: int) -> str:
        """The table, as tshark prints it; ``elapsed_ns``: the capture's duration so far."""


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
        # the fields any filter of the statistics names (a tap's, an io,stat column's)
        keeps = [getattr(s, "keep", None) for s in self.stats]
        keeps += [c.keep for s in self.stats for c in getattr(s, "columns", ())]
        self.prime(f for k in keeps for f in getattr(k, "fields", ()))
        # tshark builds a tree for a tap with a filter and for io,stat (which needs the fields)
        if tree or any(getattr(s, "keep", None) is not None or hasattr(s, "columns") for s in self.stats):
            self.build_tree()

    def build_tree(self) -> None:
        for s in self.stats:
            if hasattr(s, "tree"):
                s.tree = True

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

    def prime(self, fields: Iterable[str]) -> None:
        """Fields that display filters of the command name (``-Y``): tshark builds those, and only
        those, so only they have values in ``io,stat``'s calculations."""
        fields = tuple(fields)
        for s in self.stats:
            prime = getattr(s, "prime", None)
            if prime is not None:
                prime(fields)

    def tap(self, keep: Keep) -> Callable[[PacketInfo], bool]:
        """A packet predicate for the dissect loop: feeds every packet to the statistics, then
        answers as ``keep`` does (statistics count every packet read, as tshark's taps: ``-Y``
        selects only what is printed)."""
        feed = self.feed
        self.prime(getattr(keep, "fields", ()))
        if keep is not None:
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
