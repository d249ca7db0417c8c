"""The statistics wing: tshark's ``-z`` statistics over the packets of a dissection.

:func:`~mptcpspec.stats.parse.parse_stat` makes a :class:`~mptcpspec.stats.base.Statistic` of one
``-z`` argument (``conv,tcp``, ``conv,mptcp``, ``endpoints,tcp``, ``endpoints,mptcp``, ``expert``,
``io,stat``); :class:`~mptcpspec.stats.base.Statistics` feeds them every packet of a read and draws
them as tshark 4.0 does.  Imports the dissect wing (fields and display filters) and below.
"""

from mptcpspec.stats.base import Statistic, Statistics, StatsError
from mptcpspec.stats.parse import STATS, parse_stat

__all__ = ["STATS", "Statistic", "Statistics", "StatsError", "parse_stat"]
