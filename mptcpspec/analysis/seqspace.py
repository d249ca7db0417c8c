"""Sequence spaces: 32-bit numbers expanded to 64 bits, data ranges and data-level holes."""

from __future__ import annotations

__all__ = ["expand"]

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def expand(value: int, reference: int) -> int:
    """A 32-bit sequence number expanded to the 64-bit number closest to ``reference``."""
    v = (reference & ~M32) | value
    if v - reference > 0x80000000:
        v -= 1 << 32
    elif reference - v > 0x80000000:
        v += 1 << 32
    return v & M64
