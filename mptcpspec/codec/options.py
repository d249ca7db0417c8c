"""Decode and encode MPTCP options and whole TCP option areas.

>>> from mptcpspec.codec.options import decode_option, encode_option
>>> opt = decode_option(bytes.fromhex("1e1401810102030405060708" "1112131415161718"))
>>> opt.version, hex(opt.sender_key), opt.checksum_required
(1, '0x102030405060708', True)
>>> encode_option(opt).hex()
'1e14018101020304050607081112131415161718'

Values are the frozen dataclasses generated from ``spec/`` (``MpCapable``,
``Dss``, ``AddAddr``...); every decoding failure raises
:class:`~mptcpspec.errors.DecodeError`, every encoding failure
:class:`~mptcpspec.errors.EncodeError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeAlias

from mptcpspec.codec.generated import options as mptcp_codecs
from mptcpspec.codec.generated import tcp_options as tcp_codecs
from mptcpspec.codec.generated.options import (
    AddAddr,
    AddAddrV0,
    Dss,
    DssFlags,
    MpCapable,
    MpCapableFlags,
    MpExperimental,
    MpFail,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MpTcpRst,
    MptcpUnknown,
    RemoveAddr,
    Subtype,
    TcpRstReason,
)
from mptcpspec.codec.generated.tcp_options import (
    Eol,
    FastOpen,
    Mss,
    Nop,
    Sack,
    SackPermitted,
    TcpUnknown,
    Timestamps,
    WindowScale,
)
from mptcpspec.errors import DecodeError, EncodeError
from mptcpspec.records import dataclass

__all__ = [
    "option_spans",
    "AddAddr",
    "AddAddrV0",
    "Dss",
    "DssFlags",
    "MpCapable",
    "MpCapableFlags",
    "MpExperimental",
    "MpFail",
    "MpFastclose",
    "MpJoinAck",
    "MpJoinSyn",
    "MpJoinSynAck",
    "MpPrio",
    "MptcpUnknown",
    "MpTcpRst",
    "RemoveAddr",
    "Subtype",
    "TcpRstReason",
    "Eol",
    "FastOpen",
    "Mss",
    "Nop",
    "Sack",
    "SackPermitted",
    "TcpUnknown",
    "Timestamps",
    "WindowScale",
    "MalformedOption",
    "CutOption",
    "TcpOptions",
    "MptcpOption",
    "MptcpItem",
    "TcpOption",
    "KIND_MPTCP",
    "OPTION_SPACE",
    "MPTCP_CLASSES",
    "TCP_CLASSES",
    "decode_option",
    "decode_mptcp_option",
    "encode_option",
    "decode_tcp_options",
    "decode_mptcp_options",
    "decode_cut_option",
    "captured_option",
    "encode_tcp_options",
]

KIND_MPTCP = 30
OPTION_SPACE = 40  # RFC 9293 §3.1; the budget of RFC 6824 Appendix A
MPTCP_CLASSES = mptcp_codecs.CLASSES
TCP_CLASSES = tcp_codecs.CLASSES

MptcpOption: TypeAlias = (
    MpCapable
    | MpJoinSyn
    | MpJoinSynAck
    | MpJoinAck
    | Dss
    | AddAddrV0
    | AddAddr
    | RemoveAddr
    | MpPrio
    | MpFail
    | MpFastclose
    | MpTcpRst
    | MpExperimental
    | MptcpUnknown
)


@dataclass(frozen=True, slots=True)
class MalformedOption:
    """An option that could not be decoded (lenient mode only): its octets and the error."""

    NAME = "malformed"
    kind: int
    offset: int
    data: bytes
    error: DecodeError


TcpOption: TypeAlias = (
    MptcpOption
    | Eol
    | Nop
    | Mss
    | WindowScale
    | SackPermitted
    | Sack
    | Timestamps
    | FastOpen
    | TcpUnknown
    | MalformedOption
)

_EOL = Eol()
_NOP = Nop()
_mp_decode = mptcp_codecs.decode
_tcp_decode = tcp_codecs.decode
#: class -> encoder; each encoder takes a value of its own class.
_ENCODERS: dict[type, Callable[[Any], bytes]] = {**mptcp_codecs.ENCODERS, **tcp_codecs.ENCODERS}


def _check_single(data: bytes, what: str) -> bytes:
    data = bytes(data)
    if not data:
        raise DecodeError(what, "kind", 0, "no octets")
    if data[0] in (0, 1):
        if len(data) != 1:
            raise DecodeError(what, None, 1, f"{len(data) - 1} octets after a one-octet option")
        return data
    if len(data) < 2:
        raise DecodeError(what, "length", 1, "no length octet")
    if data[1] != len(data):
        raise DecodeError(what, "length", 1, f"length field says {data[1]}, {len(data)} octets given")
    return data


def decode_mptcp_option(data: bytes, version: int | None = None) -> MptcpOption:
    """Decode one MPTCP option (kind 30) given as its exact octets.

    ``version`` (0 or 1) is the connection's MPTCP version where known: it
    tells ADD_ADDR v0 from v1.  ``None`` tries v0 first, then v1.
    """
    data = _check_single(data, "MPTCP")
    if data[0] != KIND_MPTCP:
        raise DecodeError("MPTCP", "kind", 0, f"kind {data[0]} is not 30")
    return _mp_decode(data, 0, len(data), version)


def decode_option(data: bytes, version: int | None = None) -> TcpOption:
    """Decode one TCP option (MPTCP or not) given as its exact octets."""
    data = _check_single(data, "TCP option")
    if data[0] == KIND_MPTCP:
        return _mp_decode(data, 0, len(data), version)
    return _tcp_decode(data, 0, len(data), version)


def encode_option(value: TcpOption) -> bytes:
    """The octets of one option (at most 40)."""
    enc = _ENCODERS.get(type(value))
    if enc is None:
        raise EncodeError(type(value).__name__, None, "not an option value")
    return enc(value)


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """A decoded TCP options area.

    ``options`` in wire order; ``padding`` the octets after an EOL (kept so
    the area re-encodes byte for byte); ``size`` the area's length.  RFC 6824
    Appendix A budgets MPTCP against the 40 octets a TCP header can carry.
    """

    options: tuple[TcpOption, ...]
    padding: bytes = b""
    size: int = 0

    @property
    def mptcp(self) -> tuple[MptcpOption, ...]:
        """The MPTCP options (kind 30), in order."""
        return tuple(o for o in self.options if isinstance(o, MPTCP_CLASSES))

    @property
    def space_left(self) -> int:
        """Octets still free of the 40-octet option space (negative when over budget)."""
        return OPTION_SPACE - self.size

    @property
    def over_budget(self) -> bool:
        return self.size > OPTION_SPACE


def decode_tcp_options(
    data: bytes | bytearray | memoryview, version: int | None = None, *, strict: bool = True
) -> TcpOptions:
    """Decode a whole TCP options area (the octets between the fixed header and the payload).

    With ``strict`` (the default) the first malformed option raises
    :class:`DecodeError`.  Without it, a malformed option whose length octet
    is usable becomes a :class:`MalformedOption` and decoding goes on after
    it; one whose length is not usable ends the area (the rest is kept as a
    ``MalformedOption``).
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    out: list[TcpOption] = []
    append = out.append
    i = 0
    padding = b""
    while i < n:
        k = data[i]
        if k == 1:
            append(_NOP)
            i += 1
            continue
        if k == 0:
            append(_EOL)
            padding = data[i + 1 :]
            break
        try:
            if i + 1 >= n:
                raise DecodeError("TCP options", "length", i + 1, f"option kind {k} has no length octet")
            ln = data[i + 1]
            if ln < 2:
                raise DecodeError("TCP options", "length", i + 1, f"option kind {k} has length {ln} (< 2)")
            if i + ln > n:
                raise DecodeError(
                    "TCP options",
                    "length",
                    i + 1,
                    f"option kind {k} of length {ln} runs past the end of the area ({n - i} octets left)",
                )
        except DecodeError as e:
            if strict:
                raise
            append(MalformedOption(k, i, data[i:], e))
            break
        try:
            append(_mp_decode(data, i, ln, version) if k == KIND_MPTCP else _tcp_decode(data, i, ln, version))
        except DecodeError as e:
            if strict:
                raise
            append(MalformedOption(k, i, data[i : i + ln], e))
        i += ln
    return TcpOptions(tuple(out), padding, n)


@dataclass(frozen=True, slots=True)
class CutOption:
    """An MPTCP option that the snapshot length cut: the octets captured, and the fields captured whole.

    ``length`` is its length octet (None when the cut took it); ``option_class`` the class its
    subtype, length and flags select (None when the octets captured do not select one, or begin an
    option that is malformed); ``fields`` the fields of that class whose octets were all captured,
    as (name, value) in wire order, with the types the class gives them.  A REMOVE_ADDR's
    ``address_ids`` are the IDs captured.  Nothing is said of the other fields: their values are
    unknown, not absent.
    """

    NAME = "cut"
    kind: int
    offset: int
    length: int | None
    data: bytes  #: the octets captured, from the kind octet on (fewer than ``length``)
    option_class: type | None = None
    fields: tuple[tuple[str, object], ...] = ()
    #: the fields of ``option_class`` the option has past the cut (a REMOVE_ADDR's ``address_ids``
    #: when some were not captured)
    cut_fields: tuple[str, ...] = ()

    @property
    def subtype(self) -> int | None:
        """The subtype, when its octet was captured."""
        return self.data[2] >> 4 if len(self.data) >= 3 else None

    def get(self, name: str) -> object:
        """The value of field ``name`` when it was captured whole, else None."""
        for n, v in self.fields:
            if n == name:
                return v
        return None


def _flag_size(bit: int, wide: int) -> Callable[[Any], int]:
    return lambda v: 8 if int(v.flags) & wide else 4 if int(v.flags) & bit else 0


def _addr_size(v: Any) -> int:
    return 4 if v.address.version == 4 else 16


def _payload_size(v: Any) -> int:
    return len(v.payload)


# Per option class, its fields in wire order from the subtype octet (octet 2) on, each with the
# octets it adds (fields sharing an octet: the first adds it, the others 0).  A field that is None in
# a decoded value is absent from the option and adds nothing.
_WIRE: dict[type, tuple[tuple[str, int | Callable[[Any], int]], ...]] = {
    MpCapable: (
        ("version", 1),
        ("flags", 1),
        ("sender_key", 8),
        ("receiver_key", 8),
        ("data_level_length", 2),
        ("checksum", 2),
    ),
    MpJoinSyn: (("reserved", 1), ("backup", 0), ("address_id", 1), ("token", 4), ("nonce", 4)),
    MpJoinSynAck: (("reserved", 1), ("backup", 0), ("address_id", 1), ("truncated_hmac", 8), ("nonce", 4)),
    MpJoinAck: (("reserved", 2), ("hmac", 20)),
    Dss: (
        ("reserved", 1),
        ("flags", 1),
        ("data_ack", _flag_size(int(DssFlags.DATA_ACK_PRESENT), int(DssFlags.DATA_ACK_8))),
        ("dsn", _flag_size(int(DssFlags.MAPPING_PRESENT), int(DssFlags.DSN_8))),
        ("ssn", 4),
        ("data_level_length", 2),
        ("checksum", 2),
    ),
    AddAddrV0: (("ip_version", 1), ("address_id", 1), ("address", _addr_size), ("port", 2)),
    AddAddr: (("reserved", 1), ("echo", 0), ("address_id", 1), ("address", _addr_size), ("port", 2), ("hmac", 8)),
    RemoveAddr: (("reserved", 1),),  # then one octet per address ID
    MpPrio: (("reserved", 1), ("backup", 0), ("address_id", 1)),
    MpFail: (("reserved", 2), ("dsn", 8)),
    MpFastclose: (("reserved", 2), ("receiver_key", 8)),
    MpTcpRst: (("flag_u", 1), ("flag_v", 0), ("flag_w", 0), ("transient", 0), ("reason", 1)),
    MpExperimental: (("bits", 1), ("payload", _payload_size)),
    MptcpUnknown: (("subtype", 1), ("bits", 0), ("payload", _payload_size)),
}


def decode_cut_option(data: bytes, offset: int = 0, version: int | None = None) -> CutOption:
    """An MPTCP option that the snapshot length cut, from the octets captured of it (``data``, from
    its kind octet to the end of the capture, fewer than its length octet says).

    The option class is the one its length and the octets captured select (its octets after the
    cut are unknown: the class is the one the captured beginning decodes as, with any ending); the
    fields kept are those whose octets all lie in ``data``.  ``offset``: where it starts in its
    options area.
    """
    data = bytes(data)
    n = len(data)
    if n < 2:
        return CutOption(data[0] if data else KIND_MPTCP, offset, None, data)
    ln = data[1]
    if n < 3 or n >= ln:
        return CutOption(data[0], offset, ln, data)
    try:
        # The fields read from the octets captured are the same whatever follows: the class comes
        # from the length and the captured octets, and zeros in the rest only stand in for them.
        whole = decode_mptcp_option(data + bytes(ln - n), version)
    except DecodeError:
        return CutOption(data[0], offset, ln, data)
    cls = type(whole)
    fields: list[tuple[str, object]] = []
    cut: list[str] = []
    end = 2
    for name, size in _WIRE.get(cls, ()):
        v = getattr(whole, name)
        if v is None:
            continue
        end += size if isinstance(size, int) else size(whole)
        if end > n:
            cut.append(name)
        else:
            fields.append((name, v))
    if cls is RemoveAddr:
        if n > 3:
            fields.append(("address_ids", tuple(data[3:n])))
        cut.append("address_ids")
    return CutOption(data[0], offset, ln, data, cls, tuple(fields), tuple(cut))


def captured_option(o: CutOption) -> MpCapable | Dss | None:
    """What a cut option says for certain, as an option value with the fields not captured whole
    left out (None), or None when that would mislead.

    An MP_CAPABLE: its version and flags, and the keys and data-level length captured whole (never
    its checksum).  A DSS: its flags, its DATA_ACK when captured whole, its mapping (DSN, subflow
    sequence number, data-level length) when all three were (never its checksum).  Other options,
    and these two cut before their flags octet: None (their absent fields would read as absent
    from the option, not as unknown)."""
    cls = o.option_class
    f = dict(o.fields)
    flags = f.get("flags")
    if cls is MpCapable and isinstance(flags, MpCapableFlags):
        return MpCapable(
            version=f["version"],  # type: ignore[arg-type]
            flags=flags,
            sender_key=f.get("sender_key"),  # type: ignore[arg-type]
            receiver_key=f.get("receiver_key"),  # type: ignore[arg-type]
            data_level_length=f.get("data_level_length"),  # type: ignore[arg-type]
        )
    if cls is Dss and isinstance(flags, DssFlags):
        mapped = "data_level_length" in f
        return Dss(
            flags=flags,
            data_ack=f.get("data_ack"),  # type: ignore[arg-type]
            dsn=f["dsn"] if mapped else None,  # type: ignore[arg-type]
            ssn=f["ssn"] if mapped else None,  # type: ignore[arg-type]
            data_level_length=f["data_level_length"] if mapped else None,  # type: ignore[arg-type]
        )
    return None


#: What :func:`decode_mptcp_options` gives for one option.
MptcpItem: TypeAlias = MptcpOption | MalformedOption | CutOption


def decode_mptcp_options(
    data: bytes, version: int | None = None, *, cut: bool = False, size: int | None = None
) -> tuple[MptcpItem, ...]:
    """Only the MPTCP options (kind 30) of a TCP options area, decoded; the others are skipped.

    As :func:`decode_tcp_options` with ``strict=False`` then ``.mptcp``, but without building the
    other options: a malformed MPTCP option is a :class:`MalformedOption`, and an area whose
    option lengths cannot be followed ends where they fail.  ``cut``: ``data`` is what the
    snapshot length left of an area of ``size`` octets (when known), so an MPTCP option that runs
    past the end of ``data`` but not past ``size`` was not captured whole rather than malformed: it
    is a :class:`CutOption`, the last item.  This is the dissector's hot path.
    """
    n = len(data)
    out: list[MptcpItem] = []
    i = 0
    while i < n:
        k = data[i]
        if k == 1:
            i += 1
            continue
        if k == 0:
            break
        if i + 1 >= n:
            if cut and k == KIND_MPTCP:
                out.append(CutOption(k, i, None, data[i:]))
            break
        ln = data[i + 1]
        if ln < 2 or i + ln > n:
            if k == KIND_MPTCP:
                if ln >= 2 and cut and (size is None or i + ln <= size):
                    out.append(decode_cut_option(data[i:], i, version))
                else:
                    out.append(
                        MalformedOption(
                            k,
                            i,
                            data[i:],
                            DecodeError(
                                "TCP options",
                                "length",
                                i + 1,
                                f"option kind {k} has length {ln} (< 2)"
                                if ln < 2
                                else f"option kind {k} of length {ln} runs past the end of the area "
                                f"({(n if size is None else size) - i} octets left)",
                            ),
                        )
                    )
            break
        if k == KIND_MPTCP:
            try:
                out.append(_mp_decode(data, i, ln, version))
            except DecodeError as e:
                out.append(MalformedOption(k, i, data[i : i + ln], e))
        i += ln
    return tuple(out)


def encode_tcp_options(
    options: TcpOptions | Iterable[TcpOption], *, align: bool | None = None, padding: bytes | None = None
) -> bytes:
    """The octets of an options area.

    ``options`` is a :class:`TcpOptions` (re-encoded exactly as decoded,
    padding included) or a sequence of option values.  With ``align`` (the
    default for sequences) the area is padded with zeros (EOL) to a multiple of
    4 octets, as the TCP data offset requires; an explicit ``padding`` is used
    as it is.  More than 40 octets raise :class:`EncodeError`.
    """
    if isinstance(options, TcpOptions):
        if padding is None:
            padding = options.padding
        if align is None:
            align = False
        values: Iterable[TcpOption] = options.options
    else:
        values = options
        if align is None:
            align = True
    parts: list[bytes] = []
    for o in values:
        if isinstance(o, MalformedOption):
            parts.append(o.data)
        else:
            parts.append(encode_option(o))
    out = b"".join(parts)
    if padding:
        out += bytes(padding)
    elif align and len(out) % 4:
        out += bytes(4 - len(out) % 4)
    if len(out) > OPTION_SPACE:
        raise EncodeError(
            "TCP options", None, f"{len(out)} octets do not fit the {OPTION_SPACE}-octet TCP option space"
        )
    return out


def option_spans(options: bytes) -> Iterator[tuple[int, int, int]]:
    """(kind, start, length) of each option of a TCP options area other than NOP, up to the end of
    the option list (EOL) or a length that does not fit (RFC 9293 §3.1)."""
    i, n = 0, len(options)
    while i < n:
        kind = options[i]
        if kind == 0:
            return
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n or options[i + 1] < 2 or i + options[i + 1] > n:
            return
        yield kind, i, options[i + 1]
        i += options[i + 1]
