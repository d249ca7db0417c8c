"""Differential test of the subflow-level TCP analysis against tshark 4.0, every field, every packet.

The fields of :mod:`mptcpspec.dissect.tcpfields` (``tcp.analysis.*``, ``tcp.window_size``,
``tcp.nxtseq``, ``tcp.time_relative``...) must print exactly what tshark prints, frame by frame, on
every capture the tests hold: the kernel's (tests/data, the loss capture ``v4-loss.pcap`` among
them), the encapsulated ones (tests/data/encap), tcpdump's corpus of other stacks, a copy of the loss
capture with frames deleted (a capture that missed packets: segments not captured, ACKs of them) and,
in the lab (``-m lab``), a fresh capture with loss.  The TCP expert items
(:attr:`~mptcpspec.analysis.tcpanalysis.TcpAnalysis.experts`) must be those tshark shows on each
packet, and their totals those of ``tshark -z expert``.

tshark's TCP preferences are pinned (``PREFS``, their 4.0 defaults; docs/tcp-analysis.md).  The loss
captures must hold what makes the analysis interesting (retransmissions of every kind, duplicate
ACKs, out-of-order and missing segments), counted on tshark's side, so no test passes vacuously.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from mptcpspec.capture.pcap import CaptureReader
from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.tcpfields import TCP_FIELDS
from mptcpspec.dissect.writers import connection_rows, summary_dict
from tests.conftest import CAPTURES, DATA, corpus_params, need_tshark
from tests.tshark_fields import tshark_command, tshark_mptcp_fields

NAMES = [d.name for d in TCP_FIELDS]
#: tshark 4.0's TCP preferences the analysis follows (each its default)
PREFS = {
    "tcp.analyze_sequence_numbers": "TRUE",
    "tcp.relative_sequence_numbers": "TRUE",
    "tcp.calculate_timestamps": "TRUE",
    "tcp.track_bytes_in_flight": "TRUE",
    "tcp.bif_seq_based": "FALSE",
    "tcp.fastrt_supersedes_ooo": "TRUE",
}
LOSS = DATA / "v4-loss.pcap"
SEVERITY = {2097152: "Chat", 4194304: "Note", 6291456: "Warning", 8388608: "Error"}
GROUP = {33554432: "Sequence", 150994944: "Protocol", 117440512: "Malformed", 16777216: "Checksum"}
#: what the loss captures must show (tshark's counts of frames with the field)
INTERESTING = (
    "tcp.analysis.retransmission",
    "tcp.analysis.fast_retransmission",
    "tcp.analysis.spurious_retransmission",
    "tcp.analysis.out_of_order",
    "tcp.analysis.duplicate_ack",
    "tcp.analysis.lost_segment",
    "tcp.analysis.ack_rtt",
    "tcp.analysis.bytes_in_flight",
    "tcp.analysis.window_update",
)


def without_frames(src: Path, dst: Path, every: int) -> int:
    """Copy the classic pcap ``src`` to ``dst`` without every ``every``-th frame (a capture that
    missed packets); the number of frames kept."""
    data = src.read_bytes()
    out, pos, n, kept = [data[:24]], 24, 0, 0
    order = "little" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else "big"
    while pos + 16 <= len(data):
        incl = int.from_bytes(data[pos + 8 : pos + 12], order)
        n += 1
        if n % every:
            out.append(data[pos : pos + 16 + incl])
            kept += 1
        pos += 16 + incl
    dst.write_bytes(b"".join(out))
    return kept


def _captures() -> list:
    encap = sorted((DATA / "encap").glob("*.pcap"))
    return (
        [pytest.param(p, id=f"data-{p.stem}") for p in CAPTURES]
        + [pytest.param(p, id=f"encap-{p.stem}") for p in encap]
        + corpus_params()
    )


def compare(path: Path) -> Counter:
    """Every field on every frame, ours against tshark's; tshark's count of frames with each field."""
    theirs = tshark_mptcp_fields(path, NAMES, PREFS)
    present: Counter = Counter()
    problems = []
    frames = 0
    for info in Dissection(path):
        frames += 1
        t = theirs[info.number]
        for n in NAMES:
            ours = FIELDS[n].get(info)
            if t[n]:
                present[n] += 1
            if ours != t[n] and len(problems) < 20:
                problems.append(f"frame {info.number} {n}: ours {ours}, tshark {t[n]}")
    assert frames == len(theirs), "tshark and we see different frames"
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
    return present


def tshark_experts(path: Path) -> tuple[dict[int, Counter], Counter]:
    """(frame -> its TCP expert items, the totals of ``tshark -z expert``'s TCP rows), as
    (severity, group, summary)."""
    totals: Counter = Counter()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cfg:
        env["WIRESHARK_CONFIG_DIR"] = cfg
        cmd = [shutil.which("tshark") or "tshark", "-n", "-q", "-r", str(path), "-z", "expert"]
        for k, v in PREFS.items():
            cmd += ["-o", f"{k}:{v}"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    severity = None
    for line in out.splitlines():
        head = re.match(r"^(Errors|Warns|Notes|Chats|Comments) \(\d+\)", line)
        if head:
            severity = {"Errors": "Error", "Warns": "Warning", "Notes": "Note", "Chats": "Chat"}.get(head.group(1))
            continue
        row = re.match(r"^\s+(\d+)\s+(\S.*?)\s+(\S+)  (.*)$", line)
        if row and severity and row.group(3) == "TCP":
            totals[(severity, row.group(2), row.group(4))] += int(row.group(1))
    summaries = {s for _, _, s in totals}
    fields = ["_ws.expert.severity", "_ws.expert.group", "_ws.expert.message"]
    table = tshark_mptcp_fields(path, fields, PREFS)
    per_frame = {}
    for number, row in table.items():
        sev, grp, msg = (row[f] for f in fields)
        per_frame[number] = Counter(
            (SEVERITY.get(int(s), s), GROUP.get(int(g), g), m) for s, g, m in zip(sev, grp, msg) if m in summaries
        )
    return per_frame, totals


def compare_experts(path: Path) -> Counter:
    per_frame, totals = tshark_experts(path)
    ours_total: Counter = Counter()
    problems = []
    for info in Dissection(path):
        ours = Counter(info.tcp.experts if info.tcp is not None else ())
        ours_total.update(ours)
        if ours != per_frame.get(info.number, Counter()) and len(problems) < 20:
            problems.append(f"frame {info.number}: ours {sorted(ours)}, tshark {sorted(per_frame[info.number])}")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
    assert ours_total == totals, f"{path.name}: -z expert totals differ"
    return totals


@pytest.mark.parametrize("path", _captures())
def test_tcp_fields_are_tsharks(path, tmp_path):
    need_tshark()
    compare(path)


@pytest.mark.parametrize("path", _captures())
def test_tcp_experts_are_tsharks(path):
    need_tshark()
    compare_experts(path)


def test_loss_capture_holds_the_interesting_cases():
    need_tshark()
    present = compare(LOSS)
    missing = [n for n in INTERESTING if not present[n]]
    assert not missing, f"{LOSS.name} has none of {missing}"
    totals = compare_experts(LOSS)
    assert any("fast retransmission" in s for _, _, s in totals)


def test_capture_missing_frames(tmp_path):
    """Frames deleted from the loss capture: segments not captured, and ACKs of them."""
    need_tshark()
    gaps = tmp_path / "gaps.pcap"
    kept = without_frames(LOSS, gaps, 9)
    assert kept == sum(len(b) for b in CaptureReader(gaps).batches())
    present = compare(gaps)
    for n in ("tcp.analysis.lost_segment", "tcp.analysis.ack_lost_segment", "tcp.analysis.retransmission"):
        assert present[n], f"no {n} in the capture with missing frames"
    compare_experts(gaps)


@pytest.mark.lab
def test_fresh_lab_capture_with_loss(tmp_path, lab_host):
    """A new capture from the lab (nftables loss and reordering, lab/loss.py), compared whole."""
    need_tshark()
    from lab.loss import loss

    path = tmp_path / "loss.pcap"
    loss(path)
    present = compare(path)
    for n in ("tcp.analysis.retransmission", "tcp.analysis.duplicate_ack", "tcp.analysis.ack_rtt"):
        assert present[n], f"the fresh loss capture has no {n}"
    compare_experts(path)


def test_tshark_command_takes_the_prefs():
    """The pinned preferences reach tshark's command line (a misspelt one would make tshark fail)."""
    cmd = tshark_command("x.pcap", NAMES, PREFS)
    for k, v in PREFS.items():
        assert f"{k}:{v}" in cmd


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in CAPTURES] + corpus_params())
def test_connection_summary_counts_subflow_retransmissions(path):
    """``connections`` (and its JSON) gives each subflow's retransmissions per direction: tshark's
    count of ``tcp.analysis.retransmission`` on that TCP stream from that side."""
    need_tshark()
    theirs = tshark_mptcp_fields(path, ["tcp.stream", "tcp.srcport", "tcp.analysis.retransmission"], PREFS)
    counts: Counter = Counter()
    for row in theirs.values():
        if row["tcp.analysis.retransmission"]:
            counts[(int(row["tcp.stream"][0]), int(row["tcp.srcport"][0]))] += 1
    d = Dissection(path)
    for _ in d:
        pass
    seen = 0
    for conn in d.connections():
        as_json = summary_dict(conn.summary())
        for sf in conn.summary().subflows:
            port = int(sf.initiator.rsplit(":", 1)[1])
            lport = int(sf.listener.rsplit(":", 1)[1])
            assert sf.retransmissions == (counts[(sf.tcp_stream, port)], counts[(sf.tcp_stream, lport)]), sf
            seen += sum(sf.retransmissions)
        assert [tuple(s["retransmissions"]) for s in as_json["subflows"]] == [
            s.retransmissions for s in conn.summary().subflows
        ]
    if path == LOSS:
        assert seen > 0


def test_reinjections_are_not_subflow_retransmissions():
    """In the reinjection capture the connection reinjects on its first subflow the data stuck on the
    second: the connection's reinjections, not retransmissions of the first subflow (new data for
    it).  The second subflow's own late copy of that data is both (a TCP retransmission there)."""
    path = DATA / "v4-reinjection.pcap"
    infos = list(Dissection(path))
    on_first = [i for i in infos if i.reinjection_of and i.tcp_stream == 0]
    assert len(on_first) >= 6
    assert not any(i.tcp.retransmission for i in on_first)
    assert all(i.tcp.retransmission for i in infos if i.reinjection_of and i.tcp_stream == 1)
    (conn,) = {id(i.connection): i.connection for i in infos if i.connection is not None}.values()
    s = conn.summary()
    assert s.client_reinjected > 0
    first = s.subflows[0]
    assert first.retransmissions == (0, 0)
    rows = connection_rows([s])
    assert any("reinjected" in r for r in rows) and any("retransmitted" in r for r in rows)
