"""Multipath TCP options (TCP option kind 30): the single source of truth.

Every schema below covers one whole option, kind and length included, and
cites the section that defines it: RFC 8684 (MPTCP v1) and RFC 6824 (MPTCP
v0).  ``mptcpspec regen`` turns these schemas into the fast codecs in
``mptcpspec/codec/generated/``; construct's own parse of them is the reference
those codecs are tested against.  The vocabulary is in ``mptcpspec.codec.schema``.

Figures are drawn most significant bit first, as in the RFCs.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from construct import (
    Array,
    BitsInteger,
    BitStruct,
    Bytes,
    Const,
    Flag,
    GreedyBytes,
    If,
    IfThenElse,
    Int8ub,
    Int16ub,
    Int32ub,
    Int64ub,
    Nibble,
    Struct,
    Tell,
    Terminated,
    this,
)

from mptcpspec.codec.schema import Enum, Flags, IPAddress, OptionSpec, Require

KIND_MPTCP = 30  # RFC 8684 §3 / IANA "TCP Option Kind Numbers"


class Subtype(IntEnum):
    """MPTCP option subtypes (RFC 8684 §7.2, IANA "MPTCP Option Subtypes")."""

    MP_CAPABLE = 0x0
    MP_JOIN = 0x1
    DSS = 0x2
    ADD_ADDR = 0x3
    REMOVE_ADDR = 0x4
    MP_PRIO = 0x5
    MP_FAIL = 0x6
    MP_FASTCLOSE = 0x7
    MP_TCPRST = 0x8
    MP_EXPERIMENTAL = 0xF


class MpCapableFlags(IntFlag):
    """MP_CAPABLE flags octet ``A B C D E F G H`` (RFC 8684 §3.1 Figure 4; RFC 6824 §3.1)."""

    HMAC_SHA = 0x01
    """H: HMAC-SHA256 (v1) / HMAC-SHA1 (v0) is the crypto algorithm in use."""
    G = 0x02
    """G: crypto algorithm negotiation, unassigned."""
    F = 0x04
    """F: crypto algorithm negotiation, unassigned."""
    E = 0x08
    """E: crypto algorithm negotiation, unassigned."""
    D = 0x10
    """D: crypto algorithm negotiation, unassigned."""
    NO_SOURCE_ADDR = 0x20
    """C: the sender will not accept additional subflows to its source address (v1 only)."""
    EXTENSIBILITY = 0x40
    """B: extensibility; must be 0 in this version."""
    CHECKSUM_REQUIRED = 0x80
    """A: the sender requires DSS checksums (RFC 8684 §3.3.1)."""


class DssFlags(IntFlag):
    """Low octet of the DSS header ``(reserved) F m M a A`` (RFC 8684 §3.3 Figure 9)."""

    DATA_ACK_PRESENT = 0x01
    """A: a data ACK is present."""
    DATA_ACK_8 = 0x02
    """a: the data ACK is 8 octets (else 4)."""
    MAPPING_PRESENT = 0x04
    """M: DSN, subflow sequence number, data-level length (and checksum) are present."""
    DSN_8 = 0x08
    """m: the data sequence number is 8 octets (else 4)."""
    DATA_FIN = 0x10
    """F: DATA_FIN; the mapping's last data-level octet is the DATA_FIN."""
    RESERVED_5 = 0x20
    """Reserved, must be zero."""
    RESERVED_6 = 0x40
    """Reserved, must be zero."""
    RESERVED_7 = 0x80
    """Reserved, must be zero."""


class TcpRstReason(IntEnum):
    """MP_TCPRST reason codes (RFC 8684 §3.6, IANA "MPTCP MP_TCPRST Reason Codes")."""

    UNSPECIFIED = 0x00
    """Unspecified error."""
    MPTCP_SPECIFIC = 0x01
    """MPTCP-specific error."""
    LACK_OF_RESOURCES = 0x02
    """Lack of resources."""
    ADMINISTRATIVELY_PROHIBITED = 0x03
    """Administratively prohibited."""
    TOO_MUCH_OUTSTANDING_DATA = 0x04
    """Too much outstanding data."""
    UNACCEPTABLE_PERFORMANCE = 0x05
    """Unacceptable performance."""
    MIDDLEBOX_INTERFERENCE = 0x06
    """Middlebox interference."""


def _head(subtype: int, *rest):
    """Kind and length octets, then the subtype nibble and ``rest`` bit fields."""
    return (
        "kind" / Const(KIND_MPTCP, Int8ub) * "TCP option kind 30 (Multipath TCP)",
        "length" / Int8ub * "Length of the whole option in octets",
        "header" / BitStruct("subtype" / Const(subtype, Nibble) * "MPTCP option subtype", *rest),
    )


MP_CAPABLE = OptionSpec(
    cls="MpCapable",
    name="MP_CAPABLE",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_CAPABLE,
    rfc="RFC 8684 §3.1 (v1); RFC 6824 §3.1 (v0)",
    doc=(
        "Multipath Capable. v1 lengths: 4 (SYN, no key), 12 (SYN/ACK, the sender's key), "
        "20 (third ACK, both keys), 22 (first data: both keys and data-level length), "
        "24 (the same with DSS checksum). v0 lengths: 12 (SYN and SYN/ACK), 20 (third ACK)."
    ),
    enums=(MpCapableFlags,),
    schema=Struct(
        *_head(Subtype.MP_CAPABLE, "version" / Nibble * "MPTCP version: 0 (RFC 6824) or 1 (RFC 8684)"),
        "flags" / Flags(Int8ub, MpCapableFlags) * "Flags A-H",
        Require(
            (this.length == 12)
            | (this.length == 20)
            | ((this.header.version != 0) & ((this.length == 4) | (this.length == 22) | (this.length == 24))),
            "length must be 12 or 20 (v0), or 4, 12, 20, 22 or 24 (v1)",
        ),
        "sender_key" / If(this.length >= 12, Int64ub) * "Option sender's 64-bit key",
        "receiver_key" / If(this.length >= 20, Int64ub) * "Option receiver's 64-bit key (third ACK and first data)",
        "data_level_length" / If(this.length >= 22, Int16ub) * "Data-level length of the first data (v1)",
        "checksum" / If(this.length >= 24, Int16ub) * "DSS checksum of the first data, when negotiated (v1)",
        Terminated,
    ),
)

_JOIN_HEAD = _head(
    Subtype.MP_JOIN,
    "reserved" / BitsInteger(3) * "Reserved, zero",
    "backup" / Flag * "B: the sender wishes this subflow to be a backup path",
)

MP_JOIN_SYN = OptionSpec(
    cls="MpJoinSyn",
    name="MP_JOIN",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_JOIN,
    lengths=(12,),
    rfc="RFC 8684 §3.2 Figure 5; RFC 6824 §3.2 Figure 5",
    doc="Join Connection, initial SYN: the receiver's token and the sender's random nonce.",
    schema=Struct(
        *_JOIN_HEAD,
        Require(this.length == 12, "MP_JOIN SYN length must be 12"),
        "address_id" / Int8ub * "Sender's address ID",
        "token" / Int32ub * "Receiver's token (most significant 32 bits of the hash of its key)",
        "nonce" / Int32ub * "Sender's random number R",
        Terminated,
    ),
)

MP_JOIN_SYNACK = OptionSpec(
    cls="MpJoinSynAck",
    name="MP_JOIN",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_JOIN,
    lengths=(16,),
    rfc="RFC 8684 §3.2 Figure 6; RFC 6824 §3.2 Figure 6",
    doc="Join Connection, SYN/ACK: the leftmost 64 bits of HMAC-B and the responder's nonce.",
    schema=Struct(
        *_JOIN_HEAD,
        Require(this.length == 16, "MP_JOIN SYN/ACK length must be 16"),
        "address_id" / Int8ub * "Sender's address ID",
        "truncated_hmac" / Int64ub * "Leftmost 64 bits of HMAC(Key=KeyB||KeyA, Msg=R_B||R_A)",
        "nonce" / Int32ub * "Sender's random number R",
        Terminated,
    ),
)

MP_JOIN_ACK = OptionSpec(
    cls="MpJoinAck",
    name="MP_JOIN",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_JOIN,
    lengths=(24,),
    rfc="RFC 8684 §3.2 Figure 7; RFC 6824 §3.2 Figure 7",
    doc="Join Connection, third ACK: 160 bits of HMAC-A (all of HMAC-SHA1 in v0, the leftmost of HMAC-SHA256 in v1).",
    schema=Struct(
        *_head(Subtype.MP_JOIN, "reserved" / BitsInteger(12) * "Reserved, zero"),
        Require(this.length == 24, "MP_JOIN ACK length must be 24"),
        "hmac" / Bytes(20) * "HMAC(Key=KeyA||KeyB, Msg=R_A||R_B), leftmost 160 bits",
        Terminated,
    ),
)

DSS = OptionSpec(
    cls="Dss",
    name="DSS",
    kind=KIND_MPTCP,
    subtype=Subtype.DSS,
    rfc="RFC 8684 §3.3 Figure 9; RFC 6824 §3.3",
    doc=(
        "Data Sequence Signal: data ACK and/or data sequence mapping. "
        "The checksum is present when the option is 2 octets longer than the fields the flags announce."
    ),
    enums=(DssFlags,),
    schema=Struct(
        *_head(Subtype.DSS, "reserved" / BitsInteger(4) * "Reserved, zero"),
        "flags" / Flags(Int8ub, DssFlags) * "Reserved bits and F m M a A",
        "data_ack"
        / If(this.flags.DATA_ACK_PRESENT, IfThenElse(this.flags.DATA_ACK_8, Int64ub, Int32ub))
        * "Data ACK: 4 or 8 octets, when A is set",
        "dsn"
        / If(this.flags.MAPPING_PRESENT, IfThenElse(this.flags.DSN_8, Int64ub, Int32ub))
        * "Data sequence number: 4 or 8 octets, when M is set",
        "ssn" / If(this.flags.MAPPING_PRESENT, Int32ub) * "Subflow sequence number, relative to the subflow ISN",
        "data_level_length"
        / If(this.flags.MAPPING_PRESENT, Int16ub)
        * "Data-level length of the mapping (0: infinite)",
        "_here" / Tell,
        "checksum"
        / If(this.flags.MAPPING_PRESENT & (this.length == this._here + 2), Int16ub)
        * "DSS checksum (RFC 8684 §3.3.1), present when checksums were negotiated",
        Terminated,
    ),
)

ADD_ADDR_V0 = OptionSpec(
    cls="AddAddrV0",
    name="ADD_ADDR",
    kind=KIND_MPTCP,
    subtype=Subtype.ADD_ADDR,
    lengths=(8, 10, 20, 22),
    version=0,
    rfc="RFC 6824 §3.4.1 Figure 12",
    doc="Add Address (v0): IP version nibble, address ID, address, optional port; no HMAC.",
    schema=Struct(
        *_head(Subtype.ADD_ADDR, "ip_version" / Nibble * "IPVer: 4 or 6"),
        Require((this.header.ip_version == 4) | (this.header.ip_version == 6), "IPVer must be 4 or 6"),
        Require(
            this.length == 8 + 12 * (this.header.ip_version == 6) + 2 * (this.length % 4 == 2),
            "length must be 8 or 10 (IPv4), 20 or 22 (IPv6)",
        ),
        "address_id" / Int8ub * "Address ID",
        "address" / IPAddress(Bytes(4 + 12 * (this.header.ip_version == 6))) * "Advertised address",
        "port" / If(this.length % 4 == 2, Int16ub) * "Port, when present",
        Terminated,
    ),
)

ADD_ADDR = OptionSpec(
    cls="AddAddr",
    name="ADD_ADDR",
    kind=KIND_MPTCP,
    subtype=Subtype.ADD_ADDR,
    lengths=(8, 10, 16, 18, 20, 22, 28, 30),
    version=1,
    rfc="RFC 8684 §3.4.1 Figure 12",
    doc=(
        "Add Address (v1): echo flag, address ID, address (IPv4 for lengths 8-18, IPv6 for 20-30), "
        "optional port, and a 64-bit truncated HMAC unless this is an echo."
    ),
    schema=Struct(
        *_head(
            Subtype.ADD_ADDR,
            "reserved" / BitsInteger(3) * "Reserved, zero",
            "echo" / Flag * "E: this option echoes a received ADD_ADDR",
        ),
        "address_id" / Int8ub * "Address ID",
        "address" / IPAddress(Bytes(4 + 12 * (this.length >= 20))) * "Advertised address",
        "port" / If(this.length % 4 == 2, Int16ub) * "Port, when present",
        "_here" / Tell,
        "hmac"
        / If(this.length >= this._here + 8, Int64ub)
        * "Truncated HMAC over address ID, address and port (RFC 8684 §3.4.1)",
        Terminated,
    ),
)

REMOVE_ADDR = OptionSpec(
    cls="RemoveAddr",
    name="REMOVE_ADDR",
    kind=KIND_MPTCP,
    subtype=Subtype.REMOVE_ADDR,
    rfc="RFC 8684 §3.4.2 Figure 13; RFC 6824 §3.4.2",
    doc="Remove Address: one or more address IDs.",
    schema=Struct(
        *_head(Subtype.REMOVE_ADDR, "reserved" / Nibble * "Reserved, zero"),
        Require(this.length >= 4, "at least one address ID"),
        "address_ids" / Array(this.length - 3, Int8ub) * "Address IDs to remove",
        Terminated,
    ),
)

MP_PRIO = OptionSpec(
    cls="MpPrio",
    name="MP_PRIO",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_PRIO,
    rfc="RFC 8684 §3.3.8 Figure 11 (v1: length 3); RFC 6824 §3.3.8 (v0: optional address ID, length 4)",
    doc="Change Subflow Priority: the backup flag, and in v0 optionally the address ID it applies to.",
    schema=Struct(
        *_head(
            Subtype.MP_PRIO,
            "reserved" / BitsInteger(3) * "Reserved, zero",
            "backup" / Flag * "B: the subflow is a backup path",
        ),
        Require((this.length == 3) | (this.length == 4), "length must be 3, or 4 with an address ID (v0)"),
        "address_id" / If(this.length == 4, Int8ub) * "Address ID (v0 only)",
        Terminated,
    ),
)

MP_FAIL = OptionSpec(
    cls="MpFail",
    name="MP_FAIL",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_FAIL,
    rfc="RFC 8684 §3.7 Figure 16; RFC 6824 §3.6",
    doc="Fallback: the data sequence number where a checksum failed.",
    schema=Struct(
        *_head(Subtype.MP_FAIL, "reserved" / BitsInteger(12) * "Reserved, zero"),
        Require(this.length == 12, "length must be 12"),
        "dsn" / Int64ub * "Data sequence number (64 bits)",
        Terminated,
    ),
)

MP_FASTCLOSE = OptionSpec(
    cls="MpFastclose",
    name="MP_FASTCLOSE",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_FASTCLOSE,
    rfc="RFC 8684 §3.5 Figure 14; RFC 6824 §3.5",
    doc="Fast Close: abrupt close of the whole connection, carrying the receiver's key.",
    schema=Struct(
        *_head(Subtype.MP_FASTCLOSE, "reserved" / BitsInteger(12) * "Reserved, zero"),
        Require(this.length == 12, "length must be 12"),
        "receiver_key" / Int64ub * "Option receiver's 64-bit key",
        Terminated,
    ),
)

MP_TCPRST = OptionSpec(
    cls="MpTcpRst",
    name="MP_TCPRST",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_TCPRST,
    rfc="RFC 8684 §3.6 Figure 15",
    doc="Subflow Reset: why a subflow was reset, and whether the error is transient.",
    enums=(TcpRstReason,),
    schema=Struct(
        *_head(
            Subtype.MP_TCPRST,
            "flag_u" / Flag * "U: unassigned flag",
            "flag_v" / Flag * "V: unassigned flag",
            "flag_w" / Flag * "W: unassigned flag",
            "transient" / Flag * "T: the error is transient; the subflow may be re-established",
        ),
        Require(this.length == 4, "length must be 4"),
        "reason" / Enum(Int8ub, TcpRstReason) * "Reason code",
        Terminated,
    ),
)

MP_EXPERIMENTAL = OptionSpec(
    cls="MpExperimental",
    name="MP_EXPERIMENTAL",
    kind=KIND_MPTCP,
    subtype=Subtype.MP_EXPERIMENTAL,
    rfc="RFC 8684 §7.2 (subtype 0xf, private use)",
    doc="Reserved for private use: the low nibble and payload are kept as they are.",
    schema=Struct(
        *_head(Subtype.MP_EXPERIMENTAL, "bits" / Nibble * "Low nibble of the subtype octet"),
        "payload" / GreedyBytes * "Opaque payload",
    ),
)

UNKNOWN = OptionSpec(
    cls="MptcpUnknown",
    name="MPTCP",
    kind=KIND_MPTCP,
    rfc="RFC 8684 §7.2 (subtypes not yet assigned)",
    doc="An MPTCP option of a subtype this spec does not define; re-encodes byte for byte.",
    schema=Struct(
        "kind" / Const(KIND_MPTCP, Int8ub) * "TCP option kind 30 (Multipath TCP)",
        "length" / Int8ub * "Length of the whole option in octets",
        "header" / BitStruct("subtype" / Nibble * "MPTCP option subtype", "bits" / Nibble * "Low nibble"),
        "payload" / GreedyBytes * "Rest of the option",
    ),
)

# Decoding order matters only where two formats share a subtype and a length:
# ADD_ADDR v0 (IPVer 4 or 6 in the low nibble) is tried before v1 when the
# connection's version is not known.
OPTIONS = (
    MP_CAPABLE,
    MP_JOIN_SYN,
    MP_JOIN_SYNACK,
    MP_JOIN_ACK,
    DSS,
    ADD_ADDR_V0,
    ADD_ADDR,
    REMOVE_ADDR,
    MP_PRIO,
    MP_FAIL,
    MP_FASTCLOSE,
    MP_TCPRST,
    MP_EXPERIMENTAL,
)
FALLBACK = UNKNOWN
ENUMS = (Subtype,)
