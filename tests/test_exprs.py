"""Conditions and sizes rendered for Kaitai Struct and Lua (mptcpspec.export.exprs), and what the exporters refuse."""

from __future__ import annotations

import pytest
from construct import Const, If, Int8ub, Int64ub, Struct, this

from mptcpspec.codec.schema import OptionSpec
from mptcpspec.errors import SpecError
from mptcpspec.export.exprs import KSY, LUA, render
from mptcpspec.export.lua import render_lua


def name(f, m):
    return {"length": "n"}.get(f, m or f)


@pytest.mark.parametrize(
    "expr, ksy, lua",
    [
        (
            this.length == 8 + 12 * (this.header.ip_version == 6),
            "n == 8 + 12 * (ip_version == 6 ? 1 : 0)",
            "n == 8 + 12 * (ip_version == 6 and 1 or 0)",
        ),
        # Lua's `not` binds tighter than `==`: it is always bracketed.
        (~(this.length == 12), "not (n == 12)", "not (n == 12)"),
        (
            (this.length == 3) | (this.length == 4) & (this.x != 0),
            "n == 3 or n == 4 and x != 0",
            "n == 3 or n == 4 and x ~= 0",
        ),
        ((this.length - 2) // 4, "(n - 2) / 4", "math.floor((n - 2) / 4)"),
        (this.length % 4 == 2, "n % 4 == 2", "n % 4 == 2"),
    ],
)
def test_render(expr, ksy, lua):
    assert render(expr, KSY, name) == ksy
    assert render(expr, LUA, name) == lua


def test_bool_and_int_wanted():
    assert render(this.x, LUA, name, want="bool") == "x ~= 0"
    assert render(this.length >= 20, KSY, name, want="int") == "(n >= 20 ? 1 : 0)"


def _module(schema):
    class M:
        KIND_MPTCP = 30
        OPTIONS = (OptionSpec(cls="MpDemo", name="MP_DEMO", kind=30, subtype=9, rfc="-", doc="-", schema=schema),)
        FALLBACK = OptionSpec(
            cls="MptcpUnknown",
            name="MPTCP",
            kind=30,
            rfc="-",
            doc="-",
            schema=Struct("kind" / Const(30, Int8ub), "length" / Int8ub),
        )
        ENUMS = ()

    return M


def test_lua_refuses_a_condition_on_a_64_bit_field():
    schema = Struct("kind" / Const(30, Int8ub), "length" / Int8ub, "key" / Int64ub, "extra" / If(this.key != 0, Int8ub))
    with pytest.raises(SpecError, match="64-bit field 'key'"):
        render_lua(_module(schema))
