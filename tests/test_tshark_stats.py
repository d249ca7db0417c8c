"""Differential test of ``mptcpspec dissect -q -z ...`` against ``tshark -q -z ...`` (Wireshark 4.0):
the same statistic on the same capture prints the same text, byte for byte, on every capture the
tests hold (tests/data, tests/data/encap, tcpdump's corpus).

Deliberate differences, each tested here for what it is:

* ``endpoints,mptcp``: tshark 4.0 aborts (an assertion in its address code), so there is nothing
  to compare; ours is compared with the totals of ``conv,mptcp``, which tshark does print.
* ``expert``: only the rows of items tshark has too are compared (see :data:`COMPARED`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from mptcpspec.cli import main
from tests.conftest import CAPTURES, DATA, corpus_params, need_tshark
from tests.tshark_fields import RECOMMENDED_PREFS

ENCAP = tuple(sorted((DATA / "encap").glob("*.pcap")))
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


@pytest.mark.parametrize("path", [*(pytest.param(p, id=p.stem) for p in CAPTURES), *corpus_params()])
@pytest.mark.parametrize("z", IOSTAT)
def test_same_io_stat(capsys, z, path):
    assert ours(capsys, path, z) == tshark_stat(path, z)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in ENCAP])
def test_same_io_stat_encapsulated(capsys, path):
    z = IOSTAT[6]
    assert ours(capsys, path, z) == tshark_stat(path, z)


def test_io_stat_counts_what_the_capture_has(capsys):
    """The io,stat comparison is not vacuous: the loss capture has retransmissions in tshark's count."""
    text = tshark_stat(DATA / "v4-loss.pcap", "io,stat,0,COUNT(tcp.analysis.retransmission)tcp.analysis.retransmission")
    row = [line for line in text.splitlines() if "<>" in line][0]
    assert int(row.split("|")[2]) > 0


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
