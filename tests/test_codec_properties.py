"""Generated codecs against the construct reference, and round trips, over generated values and bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mptcpspec.codec.options import decode_option, encode_option
from mptcpspec.codec.reference import Reference
from mptcpspec.errors import DecodeError, EncodeError

from .strategies import ALL, any_option, mptcp_octets, mutated

REF = Reference()
_fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_slow = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _version(v):
    return getattr(v, "VERSION", None)


@pytest.mark.parametrize("name", sorted(ALL))
def test_roundtrip(name):
    @_fast
    @given(ALL[name])
    def run(value):
        data = encode_option(value)
        assert len(data) <= 40
        if value.KIND not in (0, 1):
            assert data[1] == len(data)
        assert decode_option(data, _version(value)) == value
        # Re-encoding the decoded value is byte-identical.
        assert encode_option(decode_option(data, _version(value))) == data

    run()


@pytest.mark.parametrize("name", sorted(ALL))
def test_reference_agrees_on_values(name):
    """construct's build of the same value gives the same octets, and its parse the same value."""

    @_slow
    @given(ALL[name])
    def run(value):
        data = encode_option(value)
        assert REF.decode(data, _version(value)) == value
        assert REF.encode(value) == data

    run()


def _both(data, version=None):
    try:
        ours = decode_option(data, version)
    except DecodeError as e:
        ours = e
    try:
        ref = REF.decode(data, version)
    except DecodeError as e:
        ref = e
    return ours, ref


def _agree(data, version=None):
    ours, ref = _both(data, version)
    if isinstance(ours, DecodeError) or isinstance(ref, DecodeError):
        assert isinstance(ours, DecodeError) and isinstance(ref, DecodeError), (data.hex(), ours, ref)
    else:
        assert ours == ref, data.hex()


@settings(max_examples=2000, deadline=None)
@given(mptcp_octets(), st.sampled_from([None, 0, 1]))
def test_reference_agrees_on_random_octets(data, version):
    _agree(data, version)


@settings(max_examples=1500, deadline=None)
@given(mutated())
def test_reference_agrees_on_mutated_octets(data):
    _agree(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=40))
def test_reference_agrees_on_any_octets(data):
    if data[0] not in (0, 1) and len(data) >= 2:
        data = data[:1] + bytes([len(data)]) + data[2:]
    elif data[0] in (0, 1):
        data = data[:1]
    _agree(data)


@settings(max_examples=200, deadline=None)
@given(any_option)
def test_encoding_rejected_values_is_refused_by_both(value):
    """Flip one presence-relevant attribute: both codecs refuse, or both accept the same octets."""
    import dataclasses

    fields = [f.name for f in dataclasses.fields(value)]
    for name in fields:
        cur = getattr(value, name)
        alt = None if cur is not None else 1
        try:
            bad = dataclasses.replace(value, **{name: alt})
        except (TypeError, ValueError):
            continue
        try:
            ours = encode_option(bad)
        except EncodeError:
            ours = None
        try:
            ref = REF.encode(bad)
        except EncodeError:
            ref = None
        assert ours == ref, (bad, ours, ref)
