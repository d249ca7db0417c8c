"""Malformed octets raise DecodeError naming what, where and why; impossible values raise EncodeError."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.codec.options import (
    AddAddr,
    Dss,
    DssFlags,
    MalformedOption,
    MpCapable,
    MpJoinAck,
    RemoveAddr,
    Timestamps,
    decode_option,
    decode_tcp_options,
    encode_option,
    encode_tcp_options,
)
from mptcpspec.errors import DecodeError, EncodeError, MptcpspecError

from .strategies import mptcp_octets, mutated


@pytest.mark.parametrize(
    "hexdata, what, field, offset, reason",
    [
        # DSS announcing an 8-octet DSN, SSN and length (A, M, m) with only 20 octets.
        ("1e14200d" + "00" * 16, "DSS", "data_level_length", 20, "needs 2 octets"),
        # MP_CAPABLE v0 cannot be 4 octets long.
        ("1e040081", "MP_CAPABLE", "length", 1, "length must be 12 or 20"),
        # MP_JOIN of length 13 is none of its three forms.
        ("1e0d1001" + "00" * 9, "MP_JOIN", "length", 1, "none of 12, 16, 24"),
        # ADD_ADDR v1 of 12 octets: an IPv4 address leaves 4 octets that are no HMAC.
        ("1e0c3001c0000201" + "00" * 4, "ADD_ADDR", None, None, None),
        # REMOVE_ADDR with no address ID.
        ("1e0340", "REMOVE_ADDR", "length", 1, "at least one address ID"),
        # The length octet disagrees with the octets given.
        ("1e0c2001", "TCP option", "length", 1, "length field says 12"),
        # An MPTCP option too short to hold a subtype.
        ("1e02", "MPTCP", "length", 1, "no room for the subtype"),
    ],
)
def test_decode_errors_name_what_where_why(hexdata, what, field, offset, reason):
    with pytest.raises(DecodeError) as ei:
        decode_option(bytes.fromhex(hexdata))
    e = ei.value
    assert isinstance(e, MptcpspecError) and isinstance(e, ValueError)
    assert e.what == what
    if field is not None:
        assert e.field == field
    if offset is not None:
        assert e.offset == offset
    if reason is not None:
        assert reason in e.reason
    assert e.what in str(e) and str(e.offset) in str(e)


def test_options_area_errors_and_lenient_mode():
    area = bytes.fromhex("0101080a00000001000000021e0c2001")  # last option runs past the end
    with pytest.raises(DecodeError) as ei:
        decode_tcp_options(area)
    assert ei.value.offset == 13 and "runs past the end" in ei.value.reason
    lenient = decode_tcp_options(area, strict=False)
    assert isinstance(lenient.options[-1], MalformedOption)
    assert lenient.options[2] == Timestamps(tsval=1, tsecr=2)
    assert encode_tcp_options(lenient) == area


def test_area_budget():
    ts = Timestamps(tsval=1, tsecr=2)
    big = MpCapable(version=1, sender_key=1, receiver_key=2, data_level_length=3, checksum=4)  # 24 octets
    assert len(encode_tcp_options([ts, big])) == 36
    with pytest.raises(EncodeError, match="40-octet TCP option space"):
        encode_tcp_options([ts, ts, big])
    over = decode_tcp_options(bytes.fromhex("0101" + "080a" + "00" * 8) * 4)
    assert over.size == 48 and over.over_budget and over.space_left == -8


@pytest.mark.parametrize(
    "value, field, text",
    [
        (
            Dss(flags=DssFlags.MAPPING_PRESENT, dsn=2**32, ssn=1, data_level_length=1),
            "dsn",
            "does not fit 32 bits (the field is 4 octets when flags.DSN_8 is false)",
        ),
        (Dss(flags=DssFlags.DATA_ACK_PRESENT), "data_ack", "missing when flags.DATA_ACK_PRESENT is True"),
        (Dss(flags=DssFlags(0), data_ack=5), "data_ack", "not allowed"),
        (Dss(flags=DssFlags(0), checksum=5), "checksum", "not allowed"),
        (MpCapable(version=0, sender_key=None, receiver_key=1), "sender_key", "missing"),
        (MpCapable(version=0), "length", "length must be 12 or 20"),
        (RemoveAddr(address_ids=tuple(range(38))), "length", "the TCP option space is 40"),
        (RemoveAddr(address_ids=(256,)), "address_ids", "does not fit 8 bits"),
        (MpJoinAck(hmac=b"short"), "hmac", "needs 20 octets"),
        (AddAddr(address_id=1, address="not an address"), "address", "does not appear to be"),
        (AddAddr(address_id=1, address=ipaddress.ip_address("192.0.2.1"), hmac=2**64), "hmac", "64 bits"),
    ],
)
def test_encode_refuses_impossible_values(value, field, text):
    with pytest.raises(EncodeError) as ei:
        encode_option(value)
    assert ei.value.field == field
    assert text in str(ei.value)


def test_encode_rejects_non_options():
    with pytest.raises(EncodeError):
        encode_option("1e0c")


def _only_decode_errors(data, **kw):
    try:
        decode_tcp_options(data, **kw)
    except DecodeError:
        pass


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=60), st.sampled_from([None, 0, 1]))
def test_fuzz_area_raises_only_decode_error(data, version):
    _only_decode_errors(data, version=version)
    # Lenient mode never raises at all, and keeps every octet.
    area = decode_tcp_options(data, version, strict=False)
    if len(data) <= 40:
        assert encode_tcp_options(area) == data
    else:
        assert area.over_budget
        with pytest.raises(EncodeError):
            encode_tcp_options(area)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(mptcp_octets(), mutated()))
def test_fuzz_single_options(data):
    try:
        v = decode_option(data)
    except DecodeError:
        return
    # Whatever decodes re-encodes to the same octets.
    assert encode_option(v) == data
