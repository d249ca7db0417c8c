"""Error types. Every error the library raises derives from :class:`MptcpspecError`."""

from __future__ import annotations

__all__ = ["MptcpspecError", "DecodeError", "EncodeError", "SpecError"]


class MptcpspecError(Exception):
    """Root of every error raised by mptcpspec."""


class DecodeError(MptcpspecError, ValueError):
    """Bytes that cannot be decoded.

    ``what`` names the structure (``"DSS"``, ``"TCP options"``, ``"IPv4 header"``),
    ``field`` the field being read, ``offset`` the byte offset from the start of
    the input where the problem lies, and ``reason`` says what is wrong.
    """

    def __init__(self, what: str, field: str | None, offset: int, reason: str) -> None:
        self.what = what
        self.field = field
        self.offset = offset
        self.reason = reason
        where = f"{what}.{field}" if field else what
        super().__init__(f"{where} at offset {offset}: {reason}")


class EncodeError(MptcpspecError, ValueError):
    """Values that cannot be encoded (a value too large for its field, an option over 40 bytes...)."""

    def __init__(self, what: str, field: str | None, reason: str) -> None:
        self.what = what
        self.field = field
        self.reason = reason
        where = f"{what}.{field}" if field else what
        super().__init__(f"{where}: {reason}")


class SpecError(MptcpspecError):
    """A source file in spec/ that the generator cannot use."""
