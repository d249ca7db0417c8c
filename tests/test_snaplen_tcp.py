"""The subflow TCP analysis fields on captures cut by the snapshot length, against tshark 4.0.

tshark shows no ``tcp.analysis.*`` on a packet whose dissection stopped at the cut (its analysis
state still follows the packet), and a SYN whose options were cut leaves the window scale unknown
(``tcp.window_size_scalefactor`` -1).  Each committed capture is cut at lengths inside the options
area and every TCP analysis field compared, frame by frame.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.tcpfields import TCP_NAMES
from tests.conftest import CAPTURES, need_tshark
from tests.tshark_fields import tshark_mptcp_fields

NAMES = sorted(TCP_NAMES)
LENGTHS = (60, 66, 80, 100, 120)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in CAPTURES])
def test_tcp_analysis_fields_on_cut_captures(path, tmp_path):
    need_tshark()
    editcap = shutil.which("editcap") or pytest.fail("editcap (tshark's package) is needed")
    cut_frames = 0
    for n in LENGTHS:
        cut = tmp_path / f"cut{n}.pcap"
        subprocess.run([editcap, "-s", str(n), str(path), str(cut)], check=True)
        theirs = tshark_mptcp_fields(cut, NAMES, config_dir=tmp_path)
        for info in Dissection(cut):
            cut_frames += info.cut_short
            for name in NAMES:
                assert FIELDS[name].get(info) == theirs[info.number].get(name, []), (n, info.number, name)
    assert cut_frames > 0, "no packet was cut where tshark stops: nothing compared"
