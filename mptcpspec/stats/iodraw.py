"""The table of ``-z io,stat``, laid out as tshark 4.0's ``iostat_draw`` lays it out: the border as
wide as the widest of the title lines, the rows and the filters (wrapped at 102 columns), each
column as wide as its largest value, the interval's decimals as given (or 3 for the whole capture
when it lasts under 10 s), and a last interval that ends at the capture's end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mptcpspec.stats.iostat import IoStat

__all__ = ["draw"]

_MAX_WIDTH = 102


def _magnitude(value: int, most: int) -> int:
    n = 1
    while n < most and value >= 10:
        value //= 10
        n += 1
    return n


def _center(label: str, width: int) -> str:
    """tshark's ``printcenter(label, width, 1)`` (nothing at all when the column is 10 wider)."""
    n = 6 - ((width - len(label)) // 2 + 1) if width >= len(label) else 6 - (-((len(label) - width) // 2) + 1)
    if 0 < n < 6:
        pad = " " * (6 - n)
        return (pad if (width - len(label)) % 2 == 0 else pad + " ") + label + pad + "|"
    if 0 < n <= 15:
        return label + "|"
    return ""


def _filter_lines(text: str | None, first: bool, number: int, border: int) -> list[str]:
    head = f"| Col{number:2d}: " if first else f"|    {number:2d}: "
    if text is None:
        return [head + "Frames and bytes" + " " * (border - 26) + "|"]
    if len(text) + 11 <= border:
        return [head + text + " " * (border - len(text) - 10) + "|"]
    lines = []
    widest = border - 11
    while True:
        if len(text) > widest:
            space = text.rfind(" ", 0, widest)
            cut, nxt = (space, space + 1) if space >= 0 else (widest, widest)
            lines.append(head + text[:cut] + " " * (border - cut - 10) + "|")
            head = "|        "
            text = text[nxt:]
        else:
            lines.append(head + text + " " * (border - len(text) - 10) + "|")
            return lines


def draw(io: IoStat, elapsed_ns: int) -> str:
    secs = elapsed_ns // 1_000_000_000
    duration = secs * 1_000_000 + (elapsed_ns - secs * 1_000_000_000 + 500) // 1000
    whole = io.interval is None or io.interval > duration
    interval = duration if whole or io.interval is None else io.interval
    dur_mag = _magnitude(duration // 1_000_000, 5)
    invl_mag = _magnitude(interval // 1_000_000, 5)
    if interval == duration:
        prec = 1 if dur_mag >= 2 else 3 if dur_mag == 1 else 6
        border = 30 + dur_mag + prec + 1
    else:
        prec = io.precision
        border = 25 + max(invl_mag, dur_mag) + (prec + 1 if prec else 0)
    dv = 10 ** (6 - prec)
    head_mag = dur_mag  # the title lines are as wide as the duration before rounding
    if duration % dv > 5 * (dv // 10):
        duration = (duration + 5 * (dv // 10)) // dv * dv
        dur_mag = _magnitude(duration // 1_000_000, 5)
    if whole:
        interval = duration
    invl_w = max(2 * dur_mag + 8 if prec == 0 else 2 * dur_mag + 2 * prec + 10, 12)

    cols = [(c, *c.widths()) for c in io.columns]
    tabrow = invl_w
    for _c, fr, val, form in cols:
        tabrow += fr + 3 if form == "f" else fr + val + 6 if form == "fb" else val + 3
    border = max(border, tabrow)
    widest_filter = max(len(c.text) + 11 if c.text is not None else 26 for c in io.columns)
    if widest_filter > border and border < _MAX_WIDTH:
        border = min(widest_filter, _MAX_WIDTH)
    if border - tabrow == 1:
        border += 1
    filler = " " * (border - tabrow - 1) + "|" if tabrow < border else ""

    def line(text: str) -> str:
        return text + " " * max(border - len(text) - 1, 0) + "|"

    def number(us: int) -> str:
        if prec == 0:
            return f"{us // 1_000_000:{dur_mag}d}"
        return f"{us // 1_000_000:{dur_mag}d}.{us % 1_000_000 // dv:0{prec}d}"

    head_w = head_mag + (prec + 1 if prec else 0)
    if prec == 0:
        el_us = secs * 1_000_000 + (elapsed_ns - secs * 1_000_000_000 + 500) // 1000
        dur_text = f"{el_us // 1_000_000}.{el_us % 1_000_000:6d}"  # tshark 4.0: no zeros before the microseconds
        invl_text = f"{interval // 1_000_000}"
    else:
        dur_text = f"{duration // 1_000_000}.{duration % 1_000_000 // dv:0{prec}d}"
        invl_text = f"{interval // 1_000_000}.{interval % 1_000_000 // dv:0{prec}d}"
    out = [
        "",
        "=" * border,
        line("| IO Statistics"),
        line("|"),
        line(f"| Duration: {dur_text:>{head_w}} secs"),
        line(f"| Interval: {invl_text:>{head_w}} secs"),
        line("|"),
    ]
    for j, c in enumerate(io.columns):
        out += _filter_lines(c.text, j == 0, j + 1, border)
    out.append("|-" + "-" * (border - 3) + "|")

    row = "|" + " " * (invl_w - 2) + "|"
    labels = "| Interval" + " " * (invl_w - 11) + "|"
    for j, (c, fr, val, form) in enumerate(cols):
        pad = fr + val + 3 if form == "fb" else fr if form == "f" else val
        row += f"{j + 1:<2d}" + " " * pad + "|"
        if form == "fb":
            labels += _center("Frames", fr) + _center("Bytes", val)
        else:
            labels += _center("FRAMES" if form == "f" else c.calc, fr if form == "f" else val)
    out += [row + filler, labels + filler, "|-" + "-" * (tabrow - 3) + "|" + filler]

    t = 0
    while t < duration:
        end = t + interval
        last = end >= duration
        if last:
            end = duration
        if prec == 0 and last:
            text = f"| {' ' if dur_mag == 1 else ''}{number(t)} <> {'Dur':<{dur_mag + 1 if dur_mag >= 3 else 3}}|"
        elif prec == 0 and dur_mag == 1:
            text = f"|  {number(t)} <> {number(end)}  |"
        else:
            text = f"| {number(t)} <> {number(end)} |"
        index = t // interval if interval else 0
        for c, fr, val, form in cols:
            text += c.cell(c.items[index] if index < len(c.items) else None, fr, val, form)
        out.append(text + filler)
        t += interval
    out.append("=" * border)
    return "\n".join(out) + "\n"
