"""The fields of a capture read with the capture taken at the other end of its connections
(``mptcpspec pair``, ``dissect --pair-with``): ``mptcp.pair.*``, from
:attr:`~mptcpspec.analysis.model.PacketInfo.pair` (:class:`~mptcpspec.analysis.model.PairFrame`).
Without a second capture they have no value.  Times in seconds with nine decimals, as Wireshark
prints a time offset; a flag is ``1`` where it holds, absent elsewhere."""

from __future__ import annotations

from mptcpspec.dissect.fieldgen import NONE, FieldDef

__all__ = ["PAIR_FIELDS", "PAIR_NAMES"]


def _int(name: str, description: str, attr: str) -> FieldDef:
    return FieldDef(
        name, description, f"{NONE} if (v := i.pair) is None or v.{attr} is None else str(v.{attr})", "mptcpspec"
    )


def _time(name: str, description: str, attr: str) -> FieldDef:
    return FieldDef(
        name, description, f"{NONE} if (v := i.pair) is None or v.{attr} is None else SECONDS(v.{attr})", "mptcpspec"
    )


def _flag(name: str, description: str, attr: str) -> FieldDef:
    return FieldDef(name, description, f"'1' if (v := i.pair) is not None and v.{attr} else {NONE}", "mptcpspec")


#: The definitions, in the order of ``--list-fields``.
PAIR_FIELDS: list[FieldDef] = [
    _int("mptcp.pair.peer_frame", "the same segment's frame in the capture at the other end", "peer_frame"),
    _time("mptcp.pair.owd", "one-way delay between the two captures, the clocks' offset taken out", "owd_ns"),
    _flag("mptcp.pair.lost", "sent here, never received at the other end", "lost"),
    _flag("mptcp.pair.injected", "received here, never sent by the other end: made on the way", "injected"),
    FieldDef(
        "mptcp.pair.reinjection_useful",
        "a reinjection: its data arrived first by it (1) or after the original (0)",
        f"{NONE} if (v := i.pair) is None or v.reinjection_useful is None else ('1' if v.reinjection_useful else '0')",
        "mptcpspec",
    ),
    _time(
        "mptcp.pair.ooo_delay",
        "received here: time its data waited out of order at the data level (0: in order at once)",
        "ooo_delay_ns",
    ),
    FieldDef(
        "mptcp.pair.changes",
        "what was changed on the way (saddr, sport, seq, mss, checksum, option KIND removed...)",
        "[*i.pair.changes]",
        "mptcpspec",
        when="i.pair is not None and i.pair.changes",
    ),
]

PAIR_NAMES = frozenset(d.name for d in PAIR_FIELDS)
