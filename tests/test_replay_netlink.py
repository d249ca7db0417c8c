"""replay.netlink's attribute parsing, without a kernel: what it builds it reads back, and no
bytes make it raise.  Against the kernel, tests/test_replay_transport.py compares the links it
finds with what ``ip`` shows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mptcpspec.replay import netlink


@given(st.lists(st.tuples(st.integers(1, 0x3FFF), st.binary(max_size=40)), max_size=8, unique_by=lambda a: a[0]))
def test_attributes_read_back_as_built(attrs):
    raw = b"".join(netlink.pack_attr(kind, value) for kind, value in attrs)
    assert netlink.read_attrs(raw, 0, len(raw)) == dict(attrs)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_no_bytes_make_the_attribute_reader_raise(data):
    got = netlink.read_attrs(data, 0, len(data))
    assert all(len(v) <= len(data) for v in got.values())


def test_usable_neighbour_states():
    assert netlink.Neighbour(b"\x01" * 4, b"\x02" * 6, 0x02).usable  # REACHABLE
    assert netlink.Neighbour(b"\x01" * 4, b"\x02" * 6, 0x04).usable  # STALE
    assert not netlink.Neighbour(b"\x01" * 4, b"\x02" * 6, 0x01).usable  # INCOMPLETE
    assert not netlink.Neighbour(b"\x01" * 4, b"\x02" * 6, 0x20).usable  # FAILED
    assert not netlink.Neighbour(b"\x01" * 4, b"", 0x02).usable
