"""The subflow TCP analysis is skipped when nothing asked needs it, and skipping it changes no output.

``mptcpspec dissect -T fields`` runs the analysis only when a field or the display filter names one
of its fields (:func:`~mptcpspec.dissect.tcpfields.needs_tcp_analysis`); text, JSON, statistics
and ``connections`` always run it.  Every other field must print the same either way, on every
capture.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.tcpfields import TCP_NAMES, needs_tcp_analysis
from tests.conftest import CAPTURES, DATA, ROOT, corpus_params

ENCAPSULATED = tuple(sorted((DATA / "encap").glob("*.pcap")))
OTHERS = [n for n in FIELDS if not needs_tcp_analysis([n])]


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=p.name) for p in CAPTURES + ENCAPSULATED] + corpus_params(prefix="corpus-")
)
def test_skipping_the_analysis_changes_no_other_field(path):
    on = [{n: FIELDS[n].get(i) for n in OTHERS} for i in Dissection(path)]
    off = [{n: FIELDS[n].get(i) for n in OTHERS} for i in Dissection(path, tcp_analysis=False)]
    assert on == off
    assert any(i.tcp is not None for i in Dissection(path)), "the analysis ran on no frame: nothing compared"


def test_which_requests_need_it():
    assert TCP_NAMES and all(needs_tcp_analysis([n]) for n in TCP_NAMES)
    assert needs_tcp_analysis([], "tcp.analysis.retransmission")
    assert needs_tcp_analysis([], "tcp.window_size > 1000 and ip.addr == 198.51.100.1")
    assert not needs_tcp_analysis(["frame.number", "mptcp.dsn", "tcp.seq"], "tcp.port == 5201")


@pytest.mark.parametrize(
    ("args", "analysed"),
    [
        (["-T", "fields", "-e", "frame.number", "-e", "tcp.analysis.retransmission"], True),
        (["-T", "fields", "-e", "frame.number", "-Y", "tcp.analysis.retransmission"], True),
        (["-T", "fields", "-e", "frame.number", "-e", "mptcp.dsn"], False),
    ],
)
def test_the_command_asks_for_it_when_needed(args, analysed):
    """On the loss capture, retransmissions are found when the output names them."""
    out = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "dissect", "-r", str(DATA / "v4-loss.pcap"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    if analysed:
        assert "\t1" in out or "-Y" in args and out.strip()
    else:
        assert out.strip()
