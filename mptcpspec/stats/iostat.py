"""``-z io,stat,INTERVAL[,COLUMN]...``: tshark 4.0's I/O statistics, per interval of INTERVAL
seconds (0: the whole capture).

A COLUMN is a display filter (frames and bytes of the packets it matches; empty: every packet), or
a calculation ``CALC(FIELD)FILTER`` over the occurrences of FIELD in the packets FILTER matches
(empty: every packet): ``COUNT`` (how many), ``SUM``, ``MIN``, ``MAX``, ``AVG`` (integer division
for integers), or ``FRAMES()``/``BYTES()`` of the packets alone.  As in tshark 4.0, columns are cut
at every comma (a filter cannot hold one), and a field has values only where some display filter of
the command names it (tshark builds only those fields): ``COUNT(tcp.len)tcp.len`` counts,
``COUNT(tcp.len)`` alone counts nothing, unless ``-Y`` or another filter names ``tcp.len``.
"""

from __future__ import annotations

import re

from mptcpspec.analysis import PacketInfo
from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.filters import Filter
from mptcpspec.stats.base import Statistic, StatsError
from mptcpspec.stats.fieldtypes import DOUBLED, field_type
from mptcpspec.stats.parse import display_filter

__all__ = ["IoStat", "Column"]

#: tshark's calculations, in the order it tries their names
CALCS = ("FRAMES", "BYTES", "FRAMES BYTES", "COUNT", "SUM", "MIN", "MAX", "AVG", "LOAD")
_FB = "FRAMES BYTES"
_U64 = (1 << 64) - 1
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.I)
_USAGE = 'invalid "-z io,stat,<interval>[,<filter>][,<filter>]..." argument'


def _magnitude(value: int, most: int) -> int:
    """Digits of ``value`` (at least 1, at most ``most``), as tshark's ``magnitude``."""
    n = 1
    while n < most and value >= 10:
        value //= 10
        n += 1
    return n


def _to_int(v: str) -> int | None:
    try:
        return int(v, 16) if v.startswith(("0x", "-0x")) else int(v)
    except ValueError:
        return None


def _to_ns(v: str) -> int | None:
    """A relative time as ``-T fields`` prints it (``0.000123000``), in nanoseconds."""
    neg = v.startswith("-")
    whole, _, frac = v.lstrip("-").partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    ns = int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    return -ns if neg else ns


class _Item:
    __slots__ = ("frames", "counter", "num")

    def __init__(self) -> None:
        self.frames = self.counter = self.num = 0


class Column:
    """One column: what it calculates, over which field, for the packets of which filter."""

    def __init__(self, text: str | None, calc: str, field: str | None, keep: Filter | None) -> None:
        self.text = text  #: as given (None: an empty column, "Frames and bytes")
        self.calc = calc
        self.field = field
        self.ftype = field_type(field) if field is not None else "u"
        self.get = FIELDS[field].get if field is not None else None
        self.keep = keep
        self.items: list[_Item] = []
        self.max_frame = 0
        self.max_val = 0

    @classmethod
    def parse(cls, text: str | None) -> Column:
        """A column as tshark's ``register_io_tap`` reads it (errors worded as its)."""
        if text is None:
            return cls(None, _FB, None, None)
        calc, field, flt = _FB, None, text
        for name in CALCS:
            if text.startswith(name):
                calc = name
                if text[len(name) : len(name) + 1] == "(":
                    start = len(name) + 1
                    end = text.find(")", start)
                    if end < 0:
                        raise StatsError("Closing parenthesis missing from calculated expression.")
                    if calc in ("FRAMES", "BYTES"):
                        if end != start:
                            raise StatsError(f"{name} does not require or allow a field name within the parens.")
                    elif end == start:
                        raise StatsError(f"You didn't specify a field name for {name}(*).")
                    flt = text[end + 1 :]
                    if calc in ("FRAMES", "BYTES"):
                        break
                    field = text[start:end]
                    if field not in FIELDS:
                        raise StatsError(f"There is no field named '{field}'.")
                    break
            elif calc in ("FRAMES", "BYTES"):
                flt = ""
        if field is not None:
            if calc == "LOAD":  # tshark's load of a relative-time field (smb.time) over the intervals
                raise StatsError(f"LOAD(*) calculations are not supported here ({field}).")
            if field_type(field) == "o" and calc != "COUNT":
                raise StatsError(
                    f"{field} doesn't have integral values, so {calc}(*) calculations are not supported on it."
                )
        return cls(text, calc, field, display_filter(flt, "Couldn't register io,stat tap: {}"))

    def values(self, info: PacketInfo) -> list[int]:
        """The field's values on a packet, as integers (nanoseconds for a time)."""
        assert self.get is not None
        conv = _to_ns if self.ftype == "t" else _to_int
        out = []
        got = self.get(info)
        for v in got[: len(got) // 2] if self.field in DOUBLED else got:
            n = conv(v)
            if n is not None:
                out.append(n)
        return out

    def feed(self, info: PacketInfo, rel_us: int, interval: int | None, primed: frozenset[str]) -> None:
        """tshark's ``iostat_packet`` for one packet that the column's filter matched."""
        items = self.items
        index = 0 if interval is None else rel_us // interval
        while len(items) <= index:
            items.append(_Item())
        it = items[-1]  # a frame from before the last interval counts in it, as in tshark
        it.frames += 1
        calc = self.calc
        if calc in (_FB, "FRAMES", "BYTES"):
            it.counter += info.orig_len
            if calc != "BYTES":
                self.max_frame = max(self.max_frame, it.frames)
            if calc != "FRAMES":
                self.max_val = max(self.max_val, it.counter)
            return
        vals = self.values(info) if self.field in primed else []
        if calc == "COUNT":
            it.counter += len(vals)
        elif calc == "SUM":
            it.counter = (it.counter + sum(vals)) & _U64  # tshark's counter is 64 bits
        elif calc == "MIN":
            for i, v in enumerate(vals):
                if (it.frames == 1 and i == 0) or v < it.counter:
                    it.counter = v
        elif calc == "MAX":
            for v in vals:
                if v > it.counter:
                    it.counter = v
        else:  # AVG
            it.num += len(vals)
            it.counter = (it.counter + sum(vals)) & _U64
        if calc == "AVG":
            if it.num:
                avg = it.counter // it.num
                self.max_val = max(self.max_val, (avg + 500_000_000) // 1_000_000_000 if self.ftype == "t" else avg)
        else:
            self.max_val = max(self.max_val, it.counter)

    def widths(self) -> tuple[int, int, str]:
        """(frames width, value width, the format of a cell) as tshark's
        ``iostat_calc_cols_width_and_fmt``."""
        fr = max(6, _magnitude(self.max_frame, 15))
        if self.calc == "FRAMES":
            return fr, 0, "f"
        if self.calc == _FB:
            return fr, max(5, _magnitude(self.max_val, 15)), "fb"
        if self.calc in ("BYTES", "COUNT"):
            return 0, max(5, _magnitude(self.max_val, 15)), "v"
        if self.ftype == "t":
            top = self.max_val if self.calc == "AVG" else (self.max_val + 500_000_000) // 1_000_000_000
            return 0, _magnitude(top, 15) + 7, "t"
        return 0, max(len(self.calc), _magnitude(self.max_val, 15)), "v"

    def cell(self, item: _Item | None, fr: int, val: int, form: str) -> str:
        frames, counter = (0, 0) if item is None else (item.frames, item.counter)
        if form == "f":
            return f" {frames:{fr}d} |"
        if form == "fb":
            return f" {frames:{fr}d} | {counter:{val}d} |"
        if item is not None and self.calc == "AVG":
            counter //= item.num or 1
        if form == "t":
            us = (counter + 500) // 1000 if item is not None else 0
            return f" {us // 1_000_000:{val - 7}d}.{us % 1_000_000:06d} |"
        return f" {counter:{val}d} |"


class IoStat(Statistic):
    """``-z io,stat``: the columns, fed every packet; drawn as tshark 4.0 draws its table."""

    def __init__(self, interval: int | None, precision: int, columns: list[Column]) -> None:
        self.interval = interval  #: microseconds; None: the whole capture
        self.precision = precision  #: decimals of the interval as given
        self.columns = columns
        self.primed = self.filter_fields()
        self.last_us = 0

    def prime(self, fields: frozenset[str]) -> None:
        """Fields that a display filter elsewhere in the command names: tshark builds them."""
        self.primed = self.primed | fields

    def filter_fields(self) -> frozenset[str]:
        return frozenset(f for c in self.columns if c.keep is not None for f in c.keep.fields)

    def needs_tree(self) -> bool:
        return True  # tshark's io,stat asks for the protocol tree (its calculations read fields)

    @classmethod
    def parse(cls, arg: str) -> IoStat:
        m = _NUMBER.match(arg, 8) if arg.startswith("io,stat,") else None
        if arg.endswith(",") or m is None:
            raise StatsError(_USAGE)
        rest = arg[m.end() :]
        if rest and not rest.startswith(","):
            raise StatsError(_USAGE)
        seconds = float(m.group())
        interval: int | None = None
        precision = 0
        if seconds > 0:
            interval = int(seconds * 1_000_000 + 0.5)
            if interval < 1:
                raise StatsError('"-z" interval must be >=0.000001 seconds or "0" for the entire capture duration.')
            precision = 6
            for i in (10, 100, 1000, 10_000, 100_000, 1_000_000):
                if interval % i:
                    break
                precision -= 1
            if precision == 0:
                _, dot, decimals = m.group().partition(".")
                if dot and decimals:
                    precision = min(len(decimals), 6)
        pieces = rest[1:].split(",") if rest else [""]
        return cls(interval, precision, [Column.parse(p.strip() or None) for p in pieces])

    def feed(self, info: PacketInfo, rel_ns: int) -> None:
        if rel_ns >= 0:
            secs = rel_ns // 1_000_000_000
            rel_us = secs * 1_000_000 + (rel_ns - secs * 1_000_000_000 + 500) // 1000
            self.last_us = rel_us
        else:
            rel_us = self.last_us
        for col in self.columns:
            if col.keep is None or col.keep(info):
                col.feed(info, rel_us, self.interval, self.primed)

    def render(self, elapsed_ns: int) -> str:
        from mptcpspec.stats.iodraw import draw

        return draw(self, elapsed_ns)
