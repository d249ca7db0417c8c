"""TCP options other than MPTCP's: what shares the 40-octet option space with it.

RFC 6824 Appendix A (and RFC 8684 Appendix A) budgets MPTCP options against
these.  Kind 30 is described in ``options.py``; any other kind decodes to
``TcpUnknown`` and re-encodes byte for byte.
"""

from __future__ import annotations

from construct import Array, Const, GreedyBytes, Int8ub, Int16ub, Int32ub, Struct, Terminated, this

from mptcpspec.codec.schema import OptionSpec, Require


def _kind(kind: int, name: str):
    return "kind" / Const(kind, Int8ub) * f"TCP option kind {kind} ({name})"


_LENGTH = "length" / Int8ub * "Length of the whole option in octets"

EOL = OptionSpec(
    cls="Eol",
    name="EOL",
    kind=0,
    rfc="RFC 9293 §3.2",
    doc="End of option list: a single octet; what follows it in the options area is padding.",
    schema=Struct(_kind(0, "End of Option List"), Terminated),
)

NOP = OptionSpec(
    cls="Nop",
    name="NOP",
    kind=1,
    rfc="RFC 9293 §3.2",
    doc="No-operation: a single octet, used to align options.",
    schema=Struct(_kind(1, "No-Operation"), Terminated),
)

MSS = OptionSpec(
    cls="Mss",
    name="MSS",
    kind=2,
    rfc="RFC 9293 §3.2",
    doc="Maximum segment size (SYN only).",
    schema=Struct(
        _kind(2, "Maximum Segment Size"),
        _LENGTH,
        Require(this.length == 4, "length must be 4"),
        "mss" / Int16ub * "Maximum segment size in octets",
        Terminated,
    ),
)

WINDOW_SCALE = OptionSpec(
    cls="WindowScale",
    name="WS",
    kind=3,
    rfc="RFC 7323 §2.2",
    doc="Window scale (SYN only).",
    schema=Struct(
        _kind(3, "Window Scale"),
        _LENGTH,
        Require(this.length == 3, "length must be 3"),
        "shift" / Int8ub * "Shift count",
        Terminated,
    ),
)

SACK_PERMITTED = OptionSpec(
    cls="SackPermitted",
    name="SACK_PERM",
    kind=4,
    rfc="RFC 2018 §2",
    doc="SACK permitted (SYN only).",
    schema=Struct(
        _kind(4, "SACK Permitted"),
        _LENGTH,
        Require(this.length == 2, "length must be 2"),
        Terminated,
    ),
)

SACK = OptionSpec(
    cls="Sack",
    name="SACK",
    kind=5,
    rfc="RFC 2018 §3",
    doc="Selective acknowledgement: 1 to 4 blocks, each a left and a right edge.",
    schema=Struct(
        _kind(5, "SACK"),
        _LENGTH,
        Require((this.length >= 10) & ((this.length - 2) % 8 == 0), "length must be 2 + 8*n, n >= 1"),
        "edges" / Array((this.length - 2) // 4, Int32ub) * "Left and right edges, alternating",
        Terminated,
    ),
)

TIMESTAMPS = OptionSpec(
    cls="Timestamps",
    name="TS",
    kind=8,
    rfc="RFC 7323 §3.2",
    doc="Timestamps.",
    schema=Struct(
        _kind(8, "Timestamps"),
        _LENGTH,
        Require(this.length == 10, "length must be 10"),
        "tsval" / Int32ub * "Timestamp value",
        "tsecr" / Int32ub * "Timestamp echo reply",
        Terminated,
    ),
)

TFO = OptionSpec(
    cls="FastOpen",
    name="TFO",
    kind=34,
    rfc="RFC 7413 §4.1.1",
    doc="TCP Fast Open cookie: empty (a cookie request) or 4 to 16 octets.",
    schema=Struct(
        _kind(34, "TCP Fast Open Cookie"),
        _LENGTH,
        Require((this.length == 2) | ((this.length >= 6) & (this.length <= 18)), "length must be 2 or 6..18"),
        "cookie" / GreedyBytes * "Cookie (empty: cookie request)",
    ),
)

UNKNOWN = OptionSpec(
    cls="TcpUnknown",
    name="TCP option",
    kind=-1,
    rfc="RFC 9293 §3.2",
    doc="Any other option: kind, length and data are kept as they are.",
    schema=Struct(
        "kind" / Int8ub * "TCP option kind",
        _LENGTH,
        "data" / GreedyBytes * "Option data",
    ),
)

OPTIONS = (EOL, NOP, MSS, WINDOW_SCALE, SACK_PERMITTED, SACK, TIMESTAMPS, TFO)
FALLBACK = UNKNOWN
ENUMS = ()
