"""Wireshark's TCP fields that come from its conversation analysis (``tcp.analysis.*``, the scaled
window, the next sequence number, the times within a TCP stream), as field definitions.

Their values come from :mod:`mptcpspec.analysis` (the subflow-level TCP analysis); the definitions
are compiled into :data:`mptcpspec.dissect.fields.FIELDS` with the other fields.
"""

from __future__ import annotations

from mptcpspec.dissect.fieldgen import FieldDef

__all__ = ["TCP_ENV", "TCP_FIELDS"]

#: The definitions, in the order of ``--list-fields`` (after the other TCP header fields).
TCP_FIELDS: list[FieldDef] = []

#: Names the definitions use besides ``i``, ``p``, ``x`` and builtins.
TCP_ENV: dict[str, object] = {}
