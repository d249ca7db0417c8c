"""Small helpers the generated codecs call on their cold (error) paths."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Literal, TypeVar, cast, overload

from mptcpspec.errors import DecodeError, EncodeError
from mptcpspec.records import field_names

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["FlagTable", "as_bytes", "as_int", "as_uints", "fast_constructor", "ip", "packed", "short", "too_big"]

_ADDR = (ipaddress.IPv4Address, ipaddress.IPv6Address)
_D = TypeVar("_D", bound="DataclassInstance")
_F = TypeVar("_F")


def short(what: str, fields: tuple[tuple[str, int], ...], p: int, end: int) -> DecodeError:
    """The error for a read of ``fields`` (``(name, size)`` pairs) at ``p`` that runs past ``end``."""
    for name, size in fields:
        if p + size > end:
            return DecodeError(what, name, p, f"needs {size} octets, {max(end - p, 0)} left in the option")
        p += size
    return DecodeError(what, None, p, "option ends early")  # pragma: no cover - callers check first


def too_big(what: str, name: str, value: object, size: int | None, why: str = "") -> EncodeError:
    """The error for ``value`` (of the field ``name``), which is no integer of ``size`` bits."""
    if not isinstance(value, int):
        return EncodeError(what, name, f"expected an integer, got {type(value).__name__}")
    return EncodeError(what, name, f"{value:#x} does not fit {size} bits{why}")


def packed(what: str, name: str, value: object) -> bytes:
    """An address object (or text/int/bytes that ``ipaddress`` accepts) as octets."""
    if isinstance(value, _ADDR):
        return value.packed
    if not isinstance(value, (str, int, bytes)):  # the words of ipaddress.ip_address for these
        raise EncodeError(what, name, f"{value!r} does not appear to be an IPv4 or IPv6 address")
    try:
        return ipaddress.ip_address(value).packed
    except ValueError as exc:
        raise EncodeError(what, name, str(exc)) from None


def as_bytes(what: str, name: str, value: object) -> bytes:
    """``value`` as bytes, if it is octets."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise EncodeError(what, name, f"expected bytes, got {type(value).__name__}")


@overload
def as_int(what: str, name: str, value: object, optional: Literal[False]) -> int: ...
@overload
def as_int(what: str, name: str, value: object, optional: bool) -> int | None: ...
def as_int(what: str, name: str, value: object, optional: bool) -> int | None:
    """An IntFlag/IntEnum/int field as a plain int (None stays None where the field is optional)."""
    if value is None and optional:
        return None
    if isinstance(value, int):
        return int(value)
    raise EncodeError(what, name, f"expected an integer, got {type(value).__name__}")


def as_uints(what: str, name: str, value: object, bits: int) -> tuple[int, ...]:
    """A sequence field as a tuple of integers of ``bits`` bits each."""
    if not isinstance(value, (tuple, list)):
        raise EncodeError(what, name, f"expected a sequence of integers, got {type(value).__name__}")
    items = tuple(value)
    limit = (1 << bits) - 1
    for x in items:
        if not (isinstance(x, int) and 0 <= x <= limit):
            raise too_big(what, name, x, bits)
    return items


_IP_CACHE: dict[bytes, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}


def ip(octets: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Address object for 4 or 16 octets; captures repeat a few addresses, so they are cached."""
    a = _IP_CACHE.get(octets)
    if a is None:
        if len(octets) == 4:
            a = ipaddress.IPv4Address(octets)
        elif len(octets) == 16:
            a = ipaddress.IPv6Address(octets)
        else:  # pragma: no cover - every schema reads an address as 4 or 16 octets
            raise DecodeError("address", None, 0, f"{len(octets)} octets are neither an IPv4 nor an IPv6 address")
        if len(_IP_CACHE) >= 4096:
            _IP_CACHE.clear()
        _IP_CACHE[bytes(octets)] = a
    return a


def fast_constructor(cls: type[_D]) -> Callable[..., _D]:
    """A positional constructor for a frozen, slotted dataclass that skips ``object.__setattr__``.

    Frozen dataclasses pay one ``object.__setattr__`` per field; on the dissector's hot path that is
    most of the cost of a packet.  This builds the instance as a writable twin with the same slots
    and then gives it its real class: same value, same immutability afterwards.  Every field must
    be passed (no defaults).
    """
    names = field_names(cls)
    twin = type(f"_W_{cls.__name__}", (), {"__slots__": cls.__dict__["__slots__"]})
    args = ", ".join(f"a{i}" for i in range(len(names)))
    body = "".join(f"    r.{n} = a{i}\n" for i, n in enumerate(names))
    src = f"def make({args}):\n    r = _new(_twin)\n{body}    r.__class__ = _cls\n    return r\n"
    ns: dict[str, object] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    exec(src, ns)  # noqa: S102 - generated from the dataclass's own field names
    make = cast("Callable[..., _D]", ns["make"])  # the function just defined, which returns a cls
    make.__doc__ = f"{cls.__name__}({', '.join(names)}), built without per-field __setattr__."
    return make


class FlagTable(dict[int, _F], Generic[_F]):
    """``table[i]`` is ``cls(i)``, made on first use and kept: as fast as indexing a tuple of every
    value, without building hundreds of flag values at import."""

    __slots__ = ("cls",)

    def __init__(self, cls: Callable[[int], _F]) -> None:
        super().__init__()
        self.cls = cls

    def __missing__(self, i: int) -> _F:
        v = self[i] = self.cls(i)
        return v
