"""Following an MPTCP stream: the data level in order, as the applications sent it, with its gaps."""

from __future__ import annotations

import hashlib
import io

import pytest

from lab.peer import pattern
from mptcpspec.analysis import Analyzer
from mptcpspec.capture.packets import decode_frame
from mptcpspec.capture.pcap import read_records
from mptcpspec.dissect.follow import Follower
from tests.conftest import DATA
from tests.dissect_helpers import cli, follow


@pytest.mark.parametrize(
    "name, server_seed",
    [
        ("v4-two-subflows.pcap", 1),
        ("v6-two-subflows.pcap", 1),
        ("v4-checksum.pcap", 1),
        ("v4-add-addr.pcap", 1),
        ("v4-fastclose.pcap", 1),
        ("v4-reinjection.pcap", 1),
    ],
)
def test_follow_gives_the_bytes_the_applications_sent(name, server_seed):
    up, down, (ru, rd) = follow(DATA / name)
    assert up == pattern(len(up), 0) and len(up) >= 16384
    assert down == pattern(len(down), server_seed) and len(down) >= 16384
    assert ru.gaps == [] and rd.gaps == []


def test_follow_tfo_puts_the_syn_data_first():
    up, down, (ru, _) = follow(DATA / "v4-tfo.pcap", stream=1)
    assert up == pattern(3000, 0), "SYN data (1000 octets) then 2000 mapped octets"
    assert ru.gaps == []


def test_follow_reports_a_gap_where_segments_are_missing(tmp_path):
    recs = list(read_records(DATA / "v4-fastclose.pcap"))
    an = Analyzer()
    a, b = io.BytesIO(), io.BytesIO()
    f = Follower(0, a, b)
    dropped = None
    for n, r in enumerate(recs, 1):
        p = decode_frame(r.linktype, r.data)
        if dropped is None and p is not None and p.payload_len and p.sport != 5201 and n > 12:
            dropped = p.payload_len
            continue
        f.feed(an.feed(n, r.timestamp_ns, len(r.data), r.orig_len, p))
    ru, _ = f.finish()
    assert len(ru.gaps) == 1 and ru.gaps[0][1] == dropped
    assert len(a.getvalue()) == 16384 - dropped


def test_follow_direction_orders_bounds_and_reports():
    import random

    from mptcpspec.dissect.follow import _Direction

    data = bytes(random.Random(1).randrange(256) for _ in range(200_000))
    segs = [(1 + k, data[k : k + 100]) for k in range(0, len(data), 100)]
    # every segment, in a shuffled order, some twice: the data in order, no gap
    shuffled = segs + segs[::7]
    random.Random(2).shuffle(shuffled)
    out = io.BytesIO()
    d = _Direction(out)
    for dsn, chunk in shuffled:
        d.add(dsn, chunk)
    d.finish()
    assert out.getvalue() == data and d.report.gaps == [] and d.report.duplicate == 100 * len(segs[::7])
    # the first segment comes last, past the hold: its gap is given up, the rest written, it is late
    out = io.BytesIO()
    d = _Direction(out, hold=10_000)
    for dsn, chunk in segs[1:] + segs[:1]:
        d.add(dsn, chunk)
    d.finish()
    r = d.report
    assert r.gaps == [(1, 100)] and r.late == 100 and r.duplicate == 0 and out.getvalue() == data[100:]


def test_cli_follow_of_a_stream_the_capture_lacks(tmp_path):
    r = cli("dissect", "-r", str(DATA / "v4-tfo.pcap"), "-q", "--follow", "7", "--follow-dir", str(tmp_path))
    assert r.returncode == 3 and "no MPTCP stream 7" in r.stderr and "(streams 0 to 1)" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_follow_writes_both_directions(tmp_path):
    r = cli("dissect", "-r", str(DATA / "v4-two-subflows.pcap"), "-q", "--follow", "0", "--follow-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    up = (tmp_path / "mptcp-stream-0-client.bin").read_bytes()
    down = (tmp_path / "mptcp-stream-0-server.bin").read_bytes()
    assert hashlib.sha256(up).digest() == hashlib.sha256(pattern(32768, 0)).digest()
    assert down == pattern(32768, 1)
    assert "gaps: none" in r.stderr
