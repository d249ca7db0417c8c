"""The reference codec: construct's interpreted parse and build of the ``spec/`` schemas.

Slow and obviously right: it is what the generated codecs are tested
against.  It returns the same dataclasses as the generated codecs, converted
field by field through the IR (:mod:`mptcpspec.codec.ir`), and raises the same
error types.  Encoding has no length rule of its own: it tries every option
length and keeps the one whose octets parse back to the value, so any value
the schema cannot represent is refused.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import construct as c

from mptcpspec.codec.ir import Bits, Field, lower, public_fields
from mptcpspec.codec.regen import default_spec_dir, load_module
from mptcpspec.codec.schema import OptionSpec
from mptcpspec.errors import DecodeError, EncodeError

__all__ = ["Reference", "ReferenceFormat", "enum_members"]

_MAX_LENGTH = 40


class ReferenceFormat:
    """One option format: construct's parse and build of its schema, as the generated dataclass."""

    def __init__(self, spec: OptionSpec, cls: type) -> None:
        self.spec = spec
        self.cls = cls
        self.items = lower(spec)
        self.pub = public_fields(self.items)

    def to_value(self, con: Any) -> object:
        """The dataclass value of a construct ``Container`` (untyped: construct's)."""
        kw: dict[str, object] = {}
        for pf in self.pub:
            if pf.member is not None and pf.source is not None:
                x = con[pf.source.name][pf.name]
                kw[pf.name] = bool(x) if pf.kind == "bool" else int(x)
                continue
            x = con.get(pf.name)
            if x is None:
                kw[pf.name] = None
            elif pf.kind == "flags":
                flags = pf.enum_class
                kw[pf.name] = flags(sum(int(m) for m in flags if m.name is not None and x[m.name]))
            elif pf.kind == "enum":
                raw = int(getattr(x, "int", x))
                known = {int(m) for m in pf.enum_class}
                kw[pf.name] = pf.enum_class(raw) if raw in known else raw
            elif pf.kind == "bytes":
                kw[pf.name] = bytes(x)
            elif pf.kind == "array":
                kw[pf.name] = tuple(int(i) for i in x)
            else:
                kw[pf.name] = x
        return self.cls(**kw)

    def to_dict(self, value: object, length: int) -> dict[str, object]:
        """The construct build input for ``value`` as an option of ``length`` octets."""
        d: dict[str, object] = {"length": length}
        for it in self.items:
            if isinstance(it, Field) and isinstance(it.value, Bits):
                d[it.name] = {m.name: getattr(value, m.name) for m in it.value.members if m.const is None}
        for pf in self.pub:
            if pf.member is not None:
                continue
            x = getattr(value, pf.name)
            if x is not None and pf.kind == "flags":
                x = {m.name: bool(int(x) & int(m)) for m in pf.enum_class}
            elif x is not None and pf.kind == "enum":
                x = int(x)
            d[pf.name] = x
        return d

    def decode(self, data: bytes) -> object:
        try:
            con = self.spec.schema.parse(data)
        except (c.ConstructError, ValueError) as e:
            raise DecodeError(self.spec.name, None, 0, f"construct: {e}") from None
        return self.to_value(con)

    def encode(self, value: object) -> bytes:
        for length in range(1, _MAX_LENGTH + 1):
            try:
                out: bytes = self.spec.schema.build(self.to_dict(value, length))
            except (c.ConstructError, ValueError, TypeError, OverflowError, AttributeError):
                continue
            if len(out) != length and "length" in {i.name for i in self.items if isinstance(i, Field)}:
                continue
            try:
                if self.decode(out) == value:
                    return out
            except DecodeError:
                continue
        raise EncodeError(self.spec.name, None, "no option length represents this value")


class Reference:
    """Construct-based decoder/encoder for the options of a spec folder."""

    def __init__(self, spec_dir: Path | None = None, classes: dict[str, type] | None = None) -> None:
        spec_dir = Path(spec_dir) if spec_dir else default_spec_dir()
        if classes is None:
            from mptcpspec.codec.generated import options as gm
            from mptcpspec.codec.generated import tcp_options as gt

            classes = {cls.__name__: cls for cls in gm.CLASSES + gt.CLASSES}
        self.mptcp = load_module(spec_dir / "options.py")
        self.tcp = load_module(spec_dir / "tcp_options.py")
        self._mp = [ReferenceFormat(s, classes[s.cls]) for s in self.mptcp.OPTIONS]
        self._mp_fallback = ReferenceFormat(self.mptcp.FALLBACK, classes[self.mptcp.FALLBACK.cls])
        self._tcp = [ReferenceFormat(s, classes[s.cls]) for s in self.tcp.OPTIONS]
        self._tcp_fallback = ReferenceFormat(self.tcp.FALLBACK, classes[self.tcp.FALLBACK.cls])
        self._by_cls = {f.cls: f for f in self._mp + self._tcp + [self._mp_fallback, self._tcp_fallback]}

    def decode(self, data: bytes, version: int | None = None) -> object:
        """Decode one option given as its exact octets."""
        data = bytes(data)
        if not data:
            raise DecodeError("TCP option", "kind", 0, "no octets")
        kind = data[0]
        if kind not in (0, 1) and (len(data) < 2 or data[1] != len(data)):
            raise DecodeError("TCP option", "length", 1, "length does not match the octets given")
        if kind != 30:
            fmts = [f for f in self._tcp if f.spec.kind == kind]
            return (fmts[0] if fmts else self._tcp_fallback).decode(data)
        if len(data) < 3:
            raise DecodeError("MPTCP", "length", 1, "no subtype")
        subtype = data[2] >> 4
        same = [f for f in self._mp if f.spec.subtype == subtype]
        if not same:
            return self._mp_fallback.decode(data)
        fits = [
            f
            for f in same
            if (f.spec.lengths is None or len(data) in f.spec.lengths)
            and (version is None or f.spec.version is None or f.spec.version == version)
        ]
        err = DecodeError(same[0].spec.name, "length", 1, f"no format of length {len(data)}")
        for f in fits:
            try:
                return f.decode(data)
            except DecodeError as e:
                err = e
        raise err

    def encode(self, value: object) -> bytes:
        """The octets of one option value, found by construct's build."""
        fmt = self._by_cls.get(type(value))
        if fmt is None:
            raise EncodeError(type(value).__name__, None, "not an option value")
        return fmt.encode(value)

    def formats(self) -> list[ReferenceFormat]:
        return self._mp + [self._mp_fallback] + self._tcp + [self._tcp_fallback]


def enum_members(e: type[enum.Enum]) -> list[str]:
    return [m.name for m in e]
