"""Differential test of ``mptcpspec dissect -q -z ...`` against ``tshark -q -z ...`` (Wireshark 4.0):
the same statistic on the same capture prints the same text, byte for byte, on every capture the
tests hold (tests/data, tests/data/encap, tcpdump's corpus).

Deliberate differences, each tested here for what it is:

* ``endpoints,mptcp``: tshark 4.0 aborts (an assertion in its address code), so there is nothing
  to compare; ours is compared with the totals of ``conv,mptcp``, which tshark does print.
* ``expert``: the items tshark has are compared (each row, in order); the MPTCP analysis's own
  items are ours alone, and tshark's "No mapping available" is left out (:data:`TSHARK_ONLY`).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from mptcpspec.cli import main
from tests.conftest import CAPTURES, DATA, corpus_params, need_tshark, need_wireshark
from tests.tshark_fields import RECOMMENDED_PREFS

ENCAP = tuple(sorted((DATA / "encap").glob("*.pcap")))
STRAYS = tuple(sorted((DATA / "strays").glob("*.pcap")))
#: (capture, -z) where the MPTCP analysis and tshark number a packet differently: frame 4 of
#: v4-add-addr-no-keys, the v1 SYN of a second connection while the first one's keys are unknown,
#: has tshark's mptcp.stream 1 and none of ours (tests/test_tshark_dissect does not read strays/)
STREAM_DIFFERS = {("v4-add-addr-no-keys", "conv,mptcp")}


def _params(files, z: str) -> list:
    """Parameters (z, path) for each capture, the known differences marked."""
    differs = pytest.mark.xfail(strict=True, reason="mptcp.stream differs")
    return [
        pytest.param(z, p, id=f"{z}-{p.stem}", marks=[differs] if (p.stem, z) in STREAM_DIFFERS else []) for p in files
    ]


FILES = [pytest.param(p, id=p.stem) for p in (*CAPTURES, *ENCAP)]
#: the statistics compared on every capture
WHOLE = ("conv,tcp", "conv,mptcp", "endpoints,tcp")
#: with a filter, on the kernel's captures
FILTERED = (
    "conv,tcp,tcp.len>0",
    "conv,mptcp,tcp.len > 0 and ip.src == 198.51.100.1",
    "endpoints,tcp,tcp.port==5201",
)


def tshark_stat(path: Path, *z: str) -> str:
    cmd = [need_tshark(), "-n", "-r", str(path), "-q"]
    for name, value in RECOMMENDED_PREFS.items():
        cmd += ["-o", f"{name}:{value}"]
    for s in z:
        cmd += ["-z", s]
    with tempfile.TemporaryDirectory(prefix="tshark-cfg-") as config:  # no personal preferences
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=config, LC_ALL="C")
        r = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return r.stdout


def ours(capsys, path: Path, *z: str) -> str:
    argv = ["dissect", "-r", str(path), "-q"]
    for s in z:
        argv += ["-z", s]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    return out


@pytest.mark.parametrize("path", FILES)
@pytest.mark.parametrize("z", WHOLE)
def test_same_table(capsys, z, path):
    assert ours(capsys, path, z) == tshark_stat(path, z)


@pytest.mark.parametrize(("z", "path"), [param for z in WHOLE for param in _params(STRAYS, z)])
def test_same_table_strays(capsys, z, path):
    assert ours(capsys, path, z) == tshark_stat(path, z)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
@pytest.mark.parametrize("z", FILTERED)
def test_same_table_filtered(capsys, z, path):
    assert ours(capsys, path, z) == tshark_stat(path, z)


@pytest.mark.parametrize("path", corpus_params())
@pytest.mark.parametrize("z", WHOLE)
def test_same_table_corpus(capsys, z, path):
    assert ours(capsys, path, z) == tshark_stat(path, z)


#: io,stat: intervals of every precision, the whole capture, every calculation, columns with and
#: without filters, fields of Wireshark's TCP and MPTCP analysis, relative times, 64-bit sums
IOSTAT = (
    "io,stat,0",
    "io,stat,0.01",
    "io,stat,1",
    "io,stat,2.5,tcp.srcport==22,AVG(tcp.len)tcp.len",
    "io,stat,0.001,tcp.len>0",
    "io,stat,0.000250,FRAMES,BYTES()",
    "io,stat,0.02,tcp.len>0,SUM(frame.len)frame.len,MIN(tcp.len)tcp.len,MAX(tcp.len)tcp.len,AVG(tcp.len)tcp.len,"
    "COUNT(tcp.analysis.retransmission)tcp.analysis.retransmission",
    "io,stat,0.1,COUNT(tcp.analysis.duplicate_ack)tcp.analysis.duplicate_ack,AVG(tcp.analysis.ack_rtt)tcp.analysis.ack_rtt,"
    "MAX(tcp.analysis.bytes_in_flight)tcp.analysis.bytes_in_flight,MIN(tcp.len),COUNT(tcp.len)",
    "io,stat,0.03,SUM(frame.time_delta)frame.time_delta,MIN(frame.time_relative)frame,"
    "MAX(frame.time_relative)frame.time_relative",
    "io,stat,0.05,,mptcp.stream==0,SUM(tcp.options.mptcp.rawdataseqno)tcp.options.mptcp.rawdataseqno,"
    "MAX(mptcp.dsn)mptcp.dsn,COUNT(mptcp.reinjection_of)mptcp.reinjection_of",
    "io,stat,1.00,tcp.len > 0 and ip.src == 198.51.100.1 and tcp.srcport == 34148 and tcp.dstport == 5201 "
    "and ip.dst == 198.51.100.2 and frame.len > 100",
)


#: captures where the MPTCP analysis's mptcp.dsn and tshark's differ: without the keys (the capture
#: starts after the handshake), tshark shows a DSN the analysis does not
DSN_DIFFERS = {"v4-add-addr-no-keys", "v4-stray-ack"}


def _io_params() -> list:
    out = []
    for z in IOSTAT:
        for p in (*CAPTURES, *STRAYS):
            marks = []
            if "mptcp.dsn" in z and p.stem in DSN_DIFFERS:
                marks = [pytest.mark.xfail(strict=True, reason="mptcp.dsn differs without the keys")]
            out.append(pytest.param(z, p, id=f"{z}-{p.stem}", marks=marks))
        out += [pytest.param(z, *c.values, id=f"{z}-{c.id}", marks=c.marks) for c in corpus_params()]
    return out


def io_blocks(text: str) -> dict[str, str]:
    """The tables of IOSTAT, from the output of all of them at once (the last -z drawn first)."""
    blocks = re.split(r"\n(?==+\n\| IO Statistics)", text)
    assert blocks[0] == "" and len(blocks) == len(IOSTAT) + 1
    return {z: "\n" + b for z, b in zip(IOSTAT, blocks[1:])}


@functools.cache
def tshark_io_stats(path: Path) -> dict[str, str]:
    return io_blocks(tshark_stat(path, *reversed(IOSTAT)))


@pytest.mark.parametrize(("z", "path"), _io_params())
def test_same_io_stat(capsys, z, path):
    """All of IOSTAT in one run, each table compared (one run: a field that one column's filter
    names has values in every column, as in tshark)."""
    assert io_blocks(ours(capsys, path, *reversed(IOSTAT)))[z] == tshark_io_stats(path)[z]


@pytest.mark.parametrize("z", ["io,stat,0.01,COUNT(tcp.len),MIN(tcp.len),SUM(frame.len)", "io,stat,0,COUNT(tcp.len)"])
def test_same_io_stat_alone(capsys, z):
    """Without a filter that names them, the fields have no values (in tshark's count too)."""
    path = DATA / "v4-two-subflows.pcap"
    assert ours(capsys, path, z) == tshark_stat(path, z)


def test_io_stat_counts_what_the_capture_has(capsys):
    """The io,stat comparison is not vacuous: the loss capture has retransmissions in tshark's count."""
    text = tshark_stat(DATA / "v4-loss.pcap", "io,stat,0,COUNT(tcp.analysis.retransmission)tcp.analysis.retransmission")
    row = [line for line in text.splitlines() if "<>" in line][0]
    assert int(row.split("|")[2]) > 0


@pytest.mark.parametrize("snaplen", [60, 80, 120])
@pytest.mark.parametrize("z", WHOLE)
def test_same_table_cut_by_snaplen(capsys, tmp_path, z, snaplen):
    """A packet whose options the snapshot length cut where tshark's dissection stops is in no TCP
    or MPTCP table of tshark's (its taps never see it), nor of ours."""
    for name in ("v4-two-subflows", "v4-reinjection"):
        cut = tmp_path / f"{name}-{snaplen}.pcap"
        subprocess.run([need_wireshark("editcap"), "-s", str(snaplen), DATA / f"{name}.pcap", cut], check=True)
        assert ours(capsys, cut, z) == tshark_stat(cut, z), name


# --------------------------------------------------------------------------- expert

#: the one row tshark 4.0 has that ours leaves out: its "No mapping available" is not our
#: mptcp.dss.missing_mapping (tshark raises it on every pure ACK after the handshake, among others)
TSHARK_ONLY = ("Warns", "Protocol", "TCP", "No mapping available")


def expert_rows(text: str) -> dict[str, list[tuple[str, str, str, int]]]:
    """Section -> its rows (group, protocol, summary, frequency) in order; checks each section's
    total and layout on the way."""
    sections: dict[str, list[tuple[str, str, str, int]]] = {}
    lines = text.split("\n")
    assert lines[-1] == ""
    i = 0
    while i < len(lines) - 1:
        assert lines[i] == "", lines[i]
        label, total = lines[i + 1].split(" ")
        assert lines[i + 2] == "=" * 13 and lines[i + 3] == "   Frequency      Group           Protocol  Summary"
        rows = []
        i += 4
        while i < len(lines) - 1 and lines[i]:
            line = lines[i]
            assert line[12] == " " and line[23] == " " and line[42:44] == "  ", line
            rows.append((line[13:23].strip(), line[24:42].strip(), line[44:], int(line[:12])))
            i += 1
        assert int(total.strip("()")) == sum(r[3] for r in rows)
        sections[label] = rows
    return sections


def _without(sections, drop) -> dict[str, list[tuple[str, str, str, int]]]:
    kept = {label: [r for r in rows if not drop(label, r)] for label, rows in sections.items()}
    return {label: rows for label, rows in kept.items() if rows}


def _expert_params() -> list:
    out = []
    for z in ("expert", "expert,note,tcp.len>0"):
        for p in (*CAPTURES, *STRAYS, *ENCAP):
            out.append(pytest.param(z, p, id=f"{z}-{p.stem}"))
        out += [pytest.param(z, *c.values, id=f"{z}-{c.id}", marks=c.marks) for c in corpus_params()]
    return out


def assert_same_expert_items(mine: str, theirs: str) -> None:
    """Every item tshark has, we have, as often and in the same order; ours besides are MPTCP's own."""
    from mptcpspec.analysis.expert import KINDS

    ours_ = expert_rows(mine)
    own = {meaning for _, meaning in KINDS.values()}
    assert _without(ours_, lambda _, r: r[1] == "MPTCP" and r[2] in own) == _without(
        expert_rows(theirs), lambda label, r: (label, *r[:3]) == TSHARK_ONLY
    )
    assert all(r[1] == "MPTCP" for rows in ours_.values() for r in rows if r[2] in own)


@pytest.mark.parametrize(("z", "path"), _expert_params())
def test_same_expert_items(capsys, z, path):
    assert_same_expert_items(ours(capsys, path, z), tshark_stat(path, z))


@pytest.mark.parametrize("snaplen", [60, 80, 120])
@pytest.mark.parametrize("z", ["expert", "expert,note,tcp"])
def test_same_expert_items_cut_by_snaplen(capsys, tmp_path, z, snaplen):
    """Where tshark stops in a packet's options, only the items of its TCP header were raised."""
    for name in ("v4-two-subflows", "v4-reinjection"):
        cut = tmp_path / f"{name}-{snaplen}.pcap"
        subprocess.run([need_wireshark("editcap"), "-s", str(snaplen), DATA / f"{name}.pcap", cut], check=True)
        assert_same_expert_items(ours(capsys, cut, z), tshark_stat(cut, z))


def test_expert_compares_something(capsys):
    """TCP's items, tshark's malformed MPTCP option, and items of ours are all in the captures compared."""
    text = ours(capsys, DATA / "v4-loss.pcap", "expert")
    assert "TCP  This frame is a (suspected) retransmission" in text
    assert "MPTCP  a mapping that starts below the highest data sequence number seen" in text


def test_several_in_tsharks_order(capsys):
    """Several ``-z``: tshark draws them last first; so do we."""
    path = DATA / "v4-two-subflows.pcap"
    z = ("conv,tcp", "endpoints,tcp", "conv,mptcp")
    got = ours(capsys, path, *z)
    assert got == tshark_stat(path, *z)
    assert got.index("\nMPTCP Conversations") < got.index("\nTCP Endpoints") < got.index("\nTCP Conversations")


def _conv_rows(text: str) -> dict[str, int]:
    """Address -> frames it sent, from conv,mptcp's rows (each row is one side of a connection)."""
    sent: dict[str, int] = {}
    for line in text.splitlines():
        if line[21:24] == "<->":  # "%-20s <-> %-20s  %6d %-9s  %6d": the "->" frames at 65
            sent[line[:20].strip()] = sent.get(line[:20].strip(), 0) + int(line[65:71])
    return sent


@pytest.mark.parametrize("path", FILES)
def test_mptcp_endpoints_against_tsharks_conversations(capsys, path):
    """endpoints,mptcp: Tx per address is what tshark's conv,mptcp counts for that side's rows."""
    sent = _conv_rows(tshark_stat(path, "conv,mptcp"))
    got = {}
    for line in ours(capsys, path, "endpoints,mptcp").splitlines()[4:-1]:
        parts = line.split()
        if int(parts[3]):
            got[parts[0]] = int(parts[3])
    assert got == sent
    if path.name == "v4-two-subflows.pcap":
        assert sent  # the test compares something
