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


# --------------------------------------------------------------------------- io,stat


@pytest.mark.parametrize(
    ("arg", "interval", "precision", "columns"),
    [
        ("io,stat,0", None, 0, [(None, "FRAMES BYTES", None)]),
        ("io,stat,1", 1_000_000, 0, [(None, "FRAMES BYTES", None)]),
        ("io,stat,0.01", 10_000, 2, [(None, "FRAMES BYTES", None)]),
        ("io,stat, 1e-2", 10_000, 2, [(None, "FRAMES BYTES", None)]),  # as C's sscanf reads it
        ("io,stat,1.00,tcp", 1_000_000, 2, [("tcp", "FRAMES BYTES", None)]),  # the zeros given are shown
        ("io,stat,0.5,,tcp.len>0", 500_000, 1, [(None, "FRAMES BYTES", None), ("tcp.len>0", "FRAMES BYTES", None)]),
        ("io,stat,2,SUM(frame.len)frame.len", 2_000_000, 0, [("SUM(frame.len)frame.len", "SUM", "frame.len")]),
        (
            "io,stat,2,COUNT(tcp.analysis.retransmission)",
            2_000_000,
            0,
            [("COUNT(tcp.analysis.retransmission)", "COUNT", "tcp.analysis.retransmission")],
        ),
        ("io,stat,2,FRAMES,BYTES()", 2_000_000, 0, [("FRAMES", "FRAMES", None), ("BYTES()", "BYTES", None)]),
        ("io,stat,2,AVG(frame.time_delta)tcp", 2_000_000, 0, [("AVG(frame.time_delta)tcp", "AVG", "frame.time_delta")]),
    ],
)
def test_io_stat_parsed(arg, interval, precision, columns):
    s = parse_stat(arg)
    assert (s.interval, s.precision) == (interval, precision)
    assert [(c.text, c.calc, c.field) for c in s.columns] == columns


@pytest.mark.parametrize(
    ("arg", "message"),
    [  # tshark 4.0's words, each seen from `tshark -z ARG`
        ("io,stat", 'invalid "-z io,stat,<interval>[,<filter>][,<filter>]..." argument'),
        ("io,stat,1,", 'invalid "-z io,stat,<interval>[,<filter>][,<filter>]..." argument'),
        ("io,stat,abc", 'invalid "-z io,stat,<interval>[,<filter>][,<filter>]..." argument'),
        ("io,stat,0.0000001", '"-z" interval must be >=0.000001 seconds or "0" for the entire capture duration.'),
        (
            "io,stat,1,SUM(tcp.flags.syn)tcp.flags.syn",
            "tcp.flags.syn doesn't have integral values, so SUM(*) calculations are not supported on it.",
        ),
        (
            "io,stat,1,MAX(ip.src)",
            "ip.src doesn't have integral values, so MAX(*) calculations are not supported on it.",
        ),
        ("io,stat,1,SUM(nosuch)", "There is no field named 'nosuch'."),
        ("io,stat,1,SUM(tcp.len", "Closing parenthesis missing from calculated expression."),
        ("io,stat,1,SUM()", "You didn't specify a field name for SUM(*)."),
        ("io,stat,1,FRAMES(tcp.len)", "FRAMES does not require or allow a field name within the parens."),
        ("io,stat,1,tcp.len>", 'Couldn\'t register io,stat tap: Filter "tcp.len>" is invalid - '),
        # columns are cut at every comma, as tshark 4.0 cuts them
        ("io,stat,0.5,tcp.port in {80,5201}", 'Couldn\'t register io,stat tap: Filter "tcp.port in {80" is invalid - '),
        ("io,stat,1,LOAD(frame.time_delta)frame.time_delta", "LOAD(*) calculations are not supported here"),
    ],
)
def test_io_stat_errors(arg, message):
    with pytest.raises(StatsError) as e:
        parse_stat(arg)
    assert str(e.value).startswith(message)


def test_io_stat_counts_only_fields_a_filter_names(capsys):
    """tshark builds only the fields that a display filter names: COUNT(tcp.len) alone counts nothing,
    and counts every segment once -Y or another column names tcp.len."""

    def count(*extra: str) -> int:
        _, out, _ = run(capsys, "dissect", "-r", str(CAPTURE), "-q", *extra)
        row = [line for line in out.splitlines() if "<>" in line][0]
        return int(row.split("|")[2])

    assert count("-z", "io,stat,0,COUNT(tcp.len)") == 0
    assert count("-z", "io,stat,0,COUNT(tcp.len),tcp.len>0") == 119
    assert count("-Y", "tcp.len > 0", "-z", "io,stat,0,COUNT(tcp.len)") == 119
    assert count("-z", "io,stat,0,COUNT(tcp.len)", "-z", "conv,tcp,tcp.len>0") == 119
    assert count("-z", "io,stat,0,tcp.len>0", "-z", "io,stat,0,COUNT(tcp.len)") == 119  # drawn first


# --------------------------------------------------------------------------- expert


@pytest.mark.parametrize(
    ("arg", "lowest", "text"),
    [
        ("expert", 3, None),
        ("expert,error", 0, None),
        ("expert,Warn", 1, None),  # tshark compares the level's name without case
        ("expert,note,tcp.port==5201", 2, "tcp.port==5201"),
        ("expert,chat,", 3, None),
        ("expert,tcp.len>0", 3, "tcp.len>0"),
    ],
)
def test_expert_parsed(arg, lowest, text):
    s = parse_stat(arg)
    assert s.lowest == lowest
    assert (s.keep.text if s.keep is not None else None) == text


def test_expert_filter_error_worded_as_tshark():
    with pytest.raises(StatsError) as e:
        parse_stat("expert,warn,tcp.len>")
    assert str(e.value).startswith('Expert tap error (Filter "tcp.len>" is invalid - ') and str(e.value).endswith(")!")


def test_every_expert_key_has_a_group():
    from mptcpspec.analysis.expert import KINDS
    from mptcpspec.stats.expert import GROUPS, TSHARK

    assert set(GROUPS) == set(KINDS)
    assert set(GROUPS.values()) <= {"Checksum", "Sequence", "Malformed", "Protocol", "Security", "Undecoded"}
    assert set(TSHARK) <= set(KINDS)


def test_expert_level_keeps_the_more_severe(capsys):
    _, everything, _ = run(capsys, "dissect", "-r", str(DATA / "v4-fastclose.pcap"), "-q", "-z", "expert")
    _, warns, _ = run(capsys, "dissect", "-r", str(DATA / "v4-fastclose.pcap"), "-q", "-z", "expert,warn")
    assert "\nChats (" in everything and "\nNotes (" in everything
    assert warns.startswith("\nWarns (") and "\nChats (" not in warns and "\nNotes (" not in warns
    assert warns in everything


def test_option_cut_short_is_tsharks_malformed_packet():
    """An MPTCP option that ends before a field (tcpdump's mptcp-dss-oobr.pcap: a DSS of 3 octets)
    is tshark's "Malformed Packet (Exception occurred)", group Malformed, protocol MPTCP, as tshark
    4.0 counts it on that capture; another malformation keeps our summary."""
    from mptcpspec.analysis import PacketInfo
    from mptcpspec.analysis.expert import KINDS, expert
    from mptcpspec.codec.options import MalformedOption
    from mptcpspec.errors import DecodeError
    from mptcpspec.stats.expert import ExpertStat

    short = DecodeError("DSS", "flags", 19, "needs 1 octets, 0 left in the option")
    other = DecodeError("DSS", None, 16, "a length the RFCs do not allow")
    stat = ExpertStat()
    for n, error in enumerate((short, other), 1):
        bad = MalformedOption(kind=30, offset=16, data=b"\x1e\x03 ", error=error)
        info = PacketInfo(n, 0, 60, 60, mptcp=(bad,), experts=(expert("mptcp.option.malformed", str(error)),))
        stat.feed(info, 0)
    assert stat.render(0) == (
        "\nErrors (2)\n=============\n   Frequency      Group           Protocol  Summary\n"
        "           1  Malformed              MPTCP  Malformed Packet (Exception occurred)\n"
        f"           1  Malformed              MPTCP  {KINDS['mptcp.option.malformed'][1]}\n"
    )
