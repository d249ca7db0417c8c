"""Display filters (-Y): errors that name their column, and != against ~=."""

from __future__ import annotations

from tests.conftest import DATA
from tests.dissect_helpers import cli, run


def test_cli_filter_error_names_the_column():
    r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-Y", "tcp.len >> 3")
    assert r.returncode == 2
    assert "column" in r.stderr and "Traceback" not in r.stderr
    for bad, why in [
        ("ip.src == 1.2.3.300", "column 11: '1.2.3.300' is not a valid IPv4 address"),
        ("ipv6.src == a:", "column 13: 'a:' is not a valid IPv6 address"),
    ]:
        r = cli("dissect", "-r", str(DATA / "v4-add-addr.pcap"), "-Y", bad)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr


def test_filter_ne_and_any_ne_agree_on_one_value():
    from mptcpspec.dissect.fields import FIELDS
    from mptcpspec.dissect.filters import compile_filter

    infos = run(DATA / "v4-two-subflows.pcap")[0]
    for text in ("mptcp.subflow.kind", "tcp.len", "mptcp.stream"):
        for lit in ("1", '"MP_JOIN"', "0"):
            ne, any_ne = compile_filter(f"{text} != {lit}"), compile_filter(f"{text} ~= {lit}")
            single = [i for i in infos if len(FIELDS[text].get(i)) == 1]
            assert [ne(i) for i in single] == [any_ne(i) for i in single], (text, lit)
