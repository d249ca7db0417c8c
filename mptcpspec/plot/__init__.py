"""The plot wing: graphs of an MPTCP connection (``mptcpspec plot``), above the dissector.

A plot is data first (:mod:`~mptcpspec.plot.model`: series of points, each from a frame), made by
one reading of a capture (:mod:`~mptcpspec.plot.dsn`...); it is then drawn as an image with
matplotlib (:mod:`~mptcpspec.plot.image`, the ``plot`` extra), written as a self-contained
interactive page (:mod:`~mptcpspec.plot.page`) or as CSV (:mod:`~mptcpspec.plot.table`).
"""

from __future__ import annotations

__all__: list[str] = []
