"""The ``-z`` arguments, read as tshark 4.0 reads them.

>>> from mptcpspec.stats.parse import parse_stat
>>> parse_stat("conv,tcp,tcp.port==5201").filter_text
'tcp.port==5201'
>>> parse_stat("conv,udp")
Traceback (most recent call last):
mptcpspec.stats.base.StatsError: invalid -z argument "conv,udp"; it must be one of: conv,mptcp, conv,tcp, \
endpoints,mptcp, endpoints,tcp, expert, io,stat

Each statistic takes a display filter after its name (``conv,tcp,FILTER``; ``expert[,LEVEL][,FILTER]``
with LEVEL ``error``, ``warn``, ``note`` or ``chat``; ``io,stat,INTERVAL[,FILTER]...``, see
:mod:`~mptcpspec.stats.iostat`): only the packets it matches are counted.  As in tshark, the name is
matched as a prefix (``conv,tcpx`` is ``conv,tcp``), and an empty filter is no filter.
"""

from __future__ import annotations

from mptcpspec.dissect.filters import Filter, FilterError, compile_filter
from mptcpspec.stats.base import Statistic, StatsError
from mptcpspec.stats.conv import Conversations, Endpoints

__all__ = ["STATS", "parse_stat", "display_filter"]

#: The ``-z`` statistics there are, as tshark names them.
STATS = ("conv,mptcp", "conv,tcp", "endpoints,mptcp", "endpoints,tcp", "expert", "io,stat")


def display_filter(text: str, wording: str) -> Filter | None:
    """A statistic's filter, compiled (None for an empty one); the error is ``wording`` with
    ``{}`` replaced by tshark's ``Filter "..." is invalid - ...``."""
    if not text.strip():
        return None
    try:
        return compile_filter(text)
    except FilterError as e:
        raise StatsError(wording.format(f'Filter "{text}" is invalid - {e.reason} (column {e.column})')) from None


def parse_stat(arg: str) -> Statistic:
    """The statistic of one ``-z`` argument; a :class:`StatsError` says what is wrong with it."""
    for name in STATS:
        if arg.startswith(name):
            break
    else:
        raise StatsError(f'invalid -z argument "{arg}"; it must be one of: {", ".join(STATS)}')
    rest = arg[len(name) :]
    if name == "io,stat":
        from mptcpspec.stats.iostat import IoStat  # imports this module

        return IoStat.parse(arg)
    if name == "expert":
        from mptcpspec.stats.expert import ExpertStat  # imports this module

        return ExpertStat.parse(rest)
    text = rest[1:] if rest.startswith(",") else None
    kind = name.split(",")[1]
    if name.startswith("conv"):
        keep = None if text is None else display_filter(text, "Couldn't register conversations tap: {}")
        return Conversations(kind, keep, text)
    keep = None if text is None else display_filter(text, "Couldn't register endpoint tap: {}")
    return Endpoints(kind, keep, text)
