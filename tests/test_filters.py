"""Display filters (-Y): errors that name their column in tshark's words, != against ~=, the types
of Wireshark's fields, and tshark's refusal of -c 0."""

from __future__ import annotations

import pytest

from tests.conftest import DATA
from tests.dissect_helpers import cli, run


def test_cli_filter_error_names_the_column():
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-Y", "tcp.len >> 3")
    assert r.returncode == 2
    assert "column" in r.stderr and "Traceback" not in r.stderr
    for bad, why in [
        ("ip.src == 1.2.3.300", 'column 11: "1.2.3.300" is not a valid hostname or IPv4 address.'),
        ("ipv6.src == a:", 'column 13: "a:" is not a valid hostname or IPv6 address.'),
        ("tcp.port in {80 443}", 'column 17: "443" was unexpected in this context.\n    tcp.port in {80 443}\n'),
    ]:
        r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-Y", bad)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_caret_marks_the_token():
    from mptcpspec.dissect.filters import FilterError, compile_filter

    with pytest.raises(FilterError) as e:
        compile_filter("tcp.srcport in {5200-5202}")
    assert str(e.value).splitlines()[-1] == "    " + " " * 16 + "^~~~~~~~~"
    assert e.value.reason == '"5200-5202" is not a valid number.'


def test_filter_ne_and_any_ne_agree_on_one_value():
    from mptcpspec.dissect.fields import FIELDS
    from mptcpspec.dissect.filters import compile_filter

    infos = run(DATA / "v4-two-subflows.pcap")[0]
    for text, lits in (
        ("mptcp.subflow.kind", ('"MP_JOIN"', "MP_CAPABLE")),
        ("tcp.len", ("1", "0")),
        ("mptcp.stream", ("0",)),
    ):
        for lit in lits:
            ne, any_ne = compile_filter(f"{text} != {lit}"), compile_filter(f"{text} ~= {lit}")
            single = [i for i in infos if len(FIELDS[text].get(i)) == 1]
            assert single
            assert [ne(i) for i in single] == [any_ne(i) for i in single], (text, lit)


def test_fields_of_our_own_compare_as_text_or_numbers():
    from mptcpspec.dissect.filters import compile_filter, field_type

    assert field_type("tcp.len") == "FT_UINT32" and field_type("mptcp.subflow.kind") is None
    assert field_type("mptcpspec.mp_prio.backup") == "FT_BOOLEAN"
    infos = run(DATA / "v4-two-subflows.pcap")[0]
    joins = [i.number for i in infos if compile_filter('mptcp.subflow.kind == "MP_JOIN"')(i)]
    assert joins and joins == [i.number for i in infos if compile_filter("mptcp.subflow.kind == MP_JOIN")(i)]
    assert [i.number for i in infos if compile_filter("mptcp.subflow.kind contains JOIN")(i)] == joins
    assert [i.number for i in infos if compile_filter('mptcp.subflow.kind matches "^mp_j"')(i)] == joins


@pytest.mark.parametrize(
    "count, message",
    [
        ("0", "The specified packet count is zero"),
        ("-1", 'The specified packet count "-1" is a negative number'),
        ("x", 'The specified packet count "x" isn\'t a decimal number'),
    ],
)
def test_count_zero_is_refused_as_tshark_does(count, message):
    # tshark 4.0 says the same and exits with 1; a wrong command line is our exit status 2 (USAGE)
    # (-c=-1: with the option -2, argparse takes a bare -1 for an option)
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), f"-c={count}")
    assert r.returncode == 2 and message in r.stderr and not r.stdout, (r.returncode, r.stderr)
