"""Small helpers the generated codecs call on their cold (error) paths."""

from __future__ import annotations

import ipaddress

from mptcpspec.errors import DecodeError, EncodeError

_ADDR = (ipaddress.IPv4Address, ipaddress.IPv6Address)


def short(what: str, fields: tuple, p: int, end: int) -> DecodeError:
    """The error for a read of ``fields`` (``(name, size)`` pairs) at ``p`` that runs past ``end``."""
    for name, size in fields:
        if p + size > end:
            return DecodeError(what, name, p, f"needs {size} octets, {max(end - p, 0)} left in the option")
        p += size
    return DecodeError(what, None, p, "option ends early")  # pragma: no cover - callers check first


def too_big(what: str, name: str, value, size: int, why: str = "") -> EncodeError:
    if not isinstance(value, int):
        return EncodeError(what, name, f"expected an integer, got {type(value).__name__}")
    return EncodeError(what, name, f"{value:#x} does not fit {size} bits{why}")


def packed(what: str, name: str, value) -> bytes:
    """An address object (or text/int/bytes that ``ipaddress`` accepts) as octets."""
    if isinstance(value, _ADDR):
        return value.packed
    try:
        return ipaddress.ip_address(value).packed
    except ValueError as exc:
        raise EncodeError(what, name, str(exc)) from None


def as_bytes(what: str, name: str, value) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise EncodeError(what, name, f"expected bytes, got {type(value).__name__}")


def as_int(what: str, name: str, value, optional: bool):
    """An IntFlag/IntEnum/int field as a plain int (None stays None where the field is optional)."""
    if value is None and optional:
        return None
    if isinstance(value, int):
        return int(value)
    raise EncodeError(what, name, f"expected an integer, got {type(value).__name__}")


def as_tuple(what: str, name: str, value) -> tuple:
    if isinstance(value, (tuple, list)):
        return tuple(value)
    raise EncodeError(what, name, f"expected a sequence of integers, got {type(value).__name__}")


_IP_CACHE: dict = {}


def ip(octets: bytes):
    """Address object for 4 or 16 octets; captures repeat a few addresses, so they are cached."""
    a = _IP_CACHE.get(octets)
    if a is None:
        if len(octets) == 4:
            a = ipaddress.IPv4Address(octets)
        elif len(octets) == 16:
            a = ipaddress.IPv6Address(octets)
        else:
            return octets
        if len(_IP_CACHE) >= 4096:
            _IP_CACHE.clear()
        _IP_CACHE[bytes(octets)] = a
    return a


def fast_constructor(cls):
    """A positional constructor for a frozen, slotted dataclass that skips ``object.__setattr__``.

    Frozen dataclasses pay one ``object.__setattr__`` per field; on the dissector's hot path that is
    most of the cost of a packet.  This builds the instance as a writable twin with the same slots
    and then gives it its real class: same value, same immutability afterwards.  Every field must
    be passed (no defaults).
    """
    names = list(cls.__dataclass_fields__)
    twin = type(f"_W_{cls.__name__}", (), {"__slots__": cls.__slots__})
    args = ", ".join(f"a{i}" for i in range(len(names)))
    body = "".join(f"    r.{n} = a{i}\n" for i, n in enumerate(names))
    src = f"def make({args}):\n    r = _new(_twin)\n{body}    r.__class__ = _cls\n    return r\n"
    ns = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    exec(src, ns)  # noqa: S102 - generated from the dataclass's own field names
    make = ns["make"]
    make.__doc__ = f"{cls.__name__}({', '.join(names)}), built without per-field __setattr__."
    return make


class FlagTable(dict):
    """``table[i]`` is ``cls(i)``, made on first use and kept: as fast as indexing a tuple of every
    value, without building hundreds of flag values at import."""

    __slots__ = ("cls",)

    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def __missing__(self, i: int):
        v = self[i] = self.cls(i)
        return v
