"""The ``-z`` statistics (mptcpspec.stats): reading the arguments as tshark 4.0 reads them, its error
messages, and the command line around them (``-q``, several ``-z``, ``-Y``, ``-c``)."""

from __future__ import annotations

import pytest

from mptcpspec.cli import main
from mptcpspec.stats import StatsError, parse_stat
from mptcpspec.stats.conv import Conversations, Endpoints, format_size, seconds
from tests.conftest import DATA

CAPTURE = DATA / "v4-two-subflows.pcap"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("arg", "kind", "cls", "text"),
    [
        ("conv,tcp", "tcp", Conversations, None),
        ("conv,mptcp", "mptcp", Conversations, None),
        ("endpoints,tcp", "tcp", Endpoints, None),
        ("endpoints,mptcp", "mptcp", Endpoints, None),
        ("conv,tcp,tcp.port==5201", "tcp", Conversations, "tcp.port==5201"),
        ("conv,tcp,", "tcp", Conversations, ""),  # tshark prints "Filter:" and filters nothing
        ("conv,tcpx", "tcp", Conversations, None),  # tshark matches the name as a prefix
        ("endpoints,mptcp,mptcp.stream == 0", "mptcp", Endpoints, "mptcp.stream == 0"),
    ],
)
def test_tables_parsed(arg, kind, cls, text):
    s = parse_stat(arg)
    assert isinstance(s, cls)
    assert (s.kind, s.filter_text) == (kind, text)
    assert (s.keep is None) == (not text)


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("conv,udp", 'invalid -z argument "conv,udp"; it must be one of: conv,mptcp, conv,tcp'),
        ("hosts", 'invalid -z argument "hosts"'),
        ("conv,tcp,tcp.len>", 'Couldn\'t register conversations tap: Filter "tcp.len>" is invalid - '),
        ("endpoints,tcp,nosuch==1", 'Couldn\'t register endpoint tap: Filter "nosuch==1" is invalid - '),
    ],
)
def test_errors_worded_as_tshark(arg, message):
    with pytest.raises(StatsError) as e:
        parse_stat(arg)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 bytes"), (3782, "3782 bytes"), (19164, "19 kB"), (37844, "37 kB")],  # as tshark printed them
)
def test_format_size(size, text):
    assert format_size(size) == text


def test_seconds_as_nstime_to_sec():
    assert f"{seconds(572_000):14.9f}" == "   0.000572000"
    assert seconds(-1_500_000_000) == -1.5


def test_quiet_prints_the_statistics_only(capsys):
    code, out, _ = run(capsys, "dissect", "-r", str(CAPTURE), "-q", "-z", "conv,tcp")
    assert code == 0
    assert out.startswith("=" * 80 + "\nTCP Conversations\n")
    code, loud, _ = run(capsys, "dissect", "-r", str(CAPTURE), "-z", "conv,tcp")
    assert loud.endswith(out) and len(loud) > len(out)  # packets and summary first, the table last


def test_display_filter_does_not_thin_the_statistics(capsys):
    """-Y selects the packets printed; the statistics count every packet read, as tshark's."""
    _, whole, _ = run(capsys, "dissect", "-r", str(CAPTURE), "-q", "-z", "endpoints,tcp")
    _, filtered, _ = run(capsys, "dissect", "-r", str(CAPTURE), "-q", "-Y", "tcp.len > 0", "-z", "endpoints,tcp")
    assert whole == filtered


def test_count_limits_the_statistics(capsys):
    _, out, _ = run(capsys, "dissect", "-r", str(CAPTURE), "-q", "-c", "10", "-z", "endpoints,tcp")
    totals = [int(line.split()[2]) for line in out.splitlines()[4:-1]]
    assert sum(totals) == 2 * 10  # each packet counts at both of its endpoints


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-z", "conv,udp"], 'invalid -z argument "conv,udp"'),
        (["-z", "conv,tcp", "-w", "-"], "-z prints to standard output"),
    ],
)
def test_usage_errors(capsys, argv, message):
    code, _, err = run(capsys, "dissect", "-r", str(CAPTURE), *argv)
    assert code == 2
    assert message in err
