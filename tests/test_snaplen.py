"""Captures cut by a snapshot length inside the TCP options, against tshark 4.0.

Each capture (the kernel's, tests/data, and tcpdump's from the corpus) is cut with ``editcap -s N``
at every length N that ends inside the options area of one of its MPTCP packets, or right at its end.
tshark shows the fields of a cut option whose octets were all captured; so must we:

* every ``tcp.options.mptcp.*`` field (and ``mptcp.rm_addr.count``) on every frame of every cut;
* every ``mptcp.*`` field of ours that Wireshark has, on every frame, for the cuts that leave the
  keys of the handshake whole (where the keys are cut, tshark's relative numbers are absolute ones,
  quirks Q3 and Q8 of docs/tshark-mptcp.md: ours stay unknown);
* tshark's mark of a dissection that ran into the cut (``_ws.short``) is on exactly the MPTCP
  packets whose MPTCP analysis neither shows.

And what the cut hides concludes nothing: at no cut does the analysis raise an expert item or find
a mismatch that the whole capture lacks; a cut checksum has no verdict, a cut mapping is none.  A
cut option keeps exactly the fields captured whole (a property over every option and cut point),
and ``-T text`` and ``mptcpspec options`` show it as cut.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mptcpspec.capture.packets import decode_frame
from mptcpspec.capture.pcap import read_records
from mptcpspec.codec.crypto import Verdict
from mptcpspec.codec.options import (
    CutOption,
    Dss,
    MalformedOption,
    decode_cut_option,
    decode_mptcp_option,
    decode_mptcp_options,
    encode_option,
)
from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.optionfields import OPTION_FIELDS
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.writers import FieldsWriter
from mptcpspec.errors import DecodeError
from tests.conftest import CAPTURES, DATA, corpus_params, need_tshark, need_wireshark
from tests.dissect_helpers import cli, experts, run
from tests.strategies import MPTCP
from tests.test_tshark_dissect import Q17_FIELDS, _q17_frames
from tests.tshark_fields import tshark_mptcp_fields

OPTION_NAMES = [n for n, _ in OPTION_FIELDS]
SUBTYPE = "tcp.options.mptcp.subtype"
MPTCP_NAMES = [
    n for n, f in FIELDS.items() if f.source == "wireshark" and n.startswith(("mptcp.", "tcp.options.mptcp."))
]
#: octets of an options area that hold every key of a handshake: the third ACK's two keys end at 32
KEYS_END = 32


def _captures() -> list:
    return [pytest.param(p, id=f"data-{p.stem}") for p in CAPTURES] + corpus_params()


def option_areas(path: Path) -> list[tuple[int, int]]:
    """(start, end) in the frame of the options area of each packet with an MPTCP option."""
    out = []
    for rec in read_records(path):
        p = decode_frame(rec.linktype, rec.data)
        if p is None or not decode_mptcp_options(p.options):
            continue
        start = rec.data.rfind(p.options + p.payload)
        assert start > 0
        out.append((start, start + len(p.options)))
    return out


def cuts(path: Path) -> list[int]:
    """Every snapshot length that ends inside the options area of an MPTCP packet, or at its end."""
    return sorted({n for start, end in option_areas(path) for n in range(start + 1, end + 1)})


def editcap(src: Path, n: int, out: Path) -> Path:
    subprocess.run([need_wireshark("editcap"), "-s", str(n), str(src), str(out)], check=True, capture_output=True)
    return out


def stopped_at_cut(short: list[str]) -> bool:
    """tshark's ``_ws.short`` says its dissection of the TCP header stopped (not a payload's)."""
    return any(v.endswith((": TCP truncated]", ": MPTCP truncated]")) for v in short)


def differences(
    path: Path, names: list[str], config_dir: Path, marks: dict | None = None, refused: Callable = lambda n: False
) -> tuple:
    """Our values against tshark's: the differences, the non-empty equal values per field, the
    number of frames with an option that the snapshot length cut, and the number of frames left
    out because tshark failed an assertion of its own on them (a "Dissector bug").  ``marks``:
    filled with frame number -> (our PacketInfo, tshark's ``_ws.short``, its ``_ws.malformed``).
    ``refused(frame)``: the frame's option is malformed uncut (test_tshark_dissect's allowance: we
    refuse it, tshark shows what fits; only its subtype is compared)."""
    theirs = tshark_mptcp_fields(path, [*names, "_ws.malformed", "_ws.short"], config_dir=config_dir)
    infos, ours = [], {}
    writer = FieldsWriter(io.StringIO(), names, {"separator": "\x1e", "aggregator": "\x1f"})
    for info in Dissection(path):  # values as each packet is dissected, as test_tshark_dissect
        infos.append(info)
        ours[info.number] = {n: FIELDS[n].get(info) for n in names}
        # and the compiled row of -T fields prints the same
        assert writer.row(info).split("\x1e") == ["\x1f".join(v) for v in ours[info.number].values()]
    q17 = _q17_frames(infos)  # where tshark's DSNs are wrong (as test_tshark_dissect allows)
    if marks is not None:
        marks.update((i.number, (i, theirs[i.number]["_ws.short"], theirs[i.number]["_ws.malformed"])) for i in infos)
    problems, equal, cut, bugs = [], Counter(), 0, 0
    for info in infos:
        if any(v.startswith("[Dissector bug") for v in theirs[info.number]["_ws.malformed"]):
            bugs += 1
            continue
        cut += any(type(o) is CutOption for o in info.mptcp)
        for n in names:
            mine, th = ours[info.number][n], theirs[info.number][n]
            if (
                mine != th
                and not (n in Q17_FIELDS and info.number in q17)
                and not (n != SUBTYPE and refused(info.number))
            ):
                problems.append(f"{path.name} #{info.number} {n}: ours {mine}, tshark {th}")
            elif th:
                equal[n] += 1
    return problems, equal, cut, bugs


@given(st.one_of(*MPTCP.values()), st.data())
def test_a_cut_option_keeps_exactly_the_fields_captured_whole(opt, data):
    """Cut at any octet after its subtype, an option keeps the fields whose octets were all captured,
    with the values of the whole option; whatever the octets after the cut, those values are the same."""
    octets = encode_option(opt)
    if len(octets) < 4:
        return
    k = data.draw(st.integers(3, len(octets) - 1))
    cut = decode_cut_option(octets[:k], 5)
    whole = decode_mptcp_option(octets)
    assert (cut.kind, cut.offset, cut.length, cut.data, cut.subtype) == (30, 5, len(octets), octets[:k], octets[2] >> 4)
    if cut.option_class is None:  # its flags not captured, and zeros after the cut are no option of its length
        assert not cut.fields and k == 3
        return
    assert cut.option_class is type(whole)
    present = [f.name for f in dataclasses.fields(whole) if getattr(whole, f.name) is not None]
    assert [n for n, _ in cut.fields if n != "address_ids"] + [n for n in cut.cut_fields if n != "address_ids"] == [
        f for f in present if f != "address_ids"
    ]
    for n, v in cut.fields:
        assert v == (whole.address_ids[: k - 3] if n == "address_ids" else getattr(whole, n))
    for fill in (b"\xff", b"\x5a"):
        try:
            other = decode_mptcp_option(octets[:k] + fill * (len(octets) - k))
        except DecodeError:
            continue
        if type(other) is type(whole):
            assert all(getattr(other, n) == v for n, v in cut.fields if n != "address_ids")


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wireshark-config")


@pytest.mark.parametrize("path", _captures())
def test_option_fields_at_every_cut(path, tmp_path, config_dir):
    """Every cut of the capture, appended into one file (tshark runs once): the option fields of
    every frame equal tshark's.  Where the file repeats a connection, tshark's MPTCP analysis
    sometimes fails an assertion of its own and stops dissecting the option: those few frames are
    left out (each cut alone dissects them whole)."""
    every_cut(path, tmp_path, config_dir)


def every_cut(path: Path, tmp_path: Path, config_dir: Path) -> None:
    need_tshark()
    lengths = cuts(path)
    assert lengths, f"{path.name} has no MPTCP option"
    parts = [str(editcap(path, n, tmp_path / f"cut-{n}.pcap")) for n in lengths]
    merged = tmp_path / "cuts.pcap"
    subprocess.run([need_wireshark("mergecap"), "-a", "-w", str(merged), *parts], check=True, capture_output=True)
    # each cut keeps every frame: frame m of the merged file is frame (m - 1) % len(whole) + 1 uncut
    whole = list(Dissection(path))
    bad = {i.number for i in whole if any(type(o) is MalformedOption for o in i.mptcp)}
    marks: dict = {}
    problems, equal, cut, bugs = differences(
        merged, OPTION_NAMES, config_dir, marks, refused=lambda m: (m - 1) % len(whole) + 1 in bad
    )
    # where tshark's dissection of the options stops, as PacketInfo.cut_short says
    wrong = [
        m for m, (i, short, malformed) in marks.items() if not malformed and i.cut_short is not stopped_at_cut(short)
    ]
    assert not wrong, wrong[:20]
    assert not problems, f"{len(problems)} difference(s) from tshark:\n" + "\n".join(problems[:30])
    print(
        f"\n{path.name}: {len(lengths)} cuts, {cut} cut options, {sum(equal.values())} values equal to tshark's; "
        f"{bugs} frames left out (tshark's own assertion failed: the connection repeats)"
    )
    assert cut > 0 and sum(equal.values()) > 0
    assert bugs * 20 < len(lengths) * len(option_areas(path))  # under 5% of the MPTCP frames


def test_option_fields_at_every_cut_of_the_rare_options(tmp_path, config_dir):
    """The synthetic capture of test_tshark_options (MP_PRIO, MP_FAIL, IPv6 and port ADD_ADDR,
    MP_TCPRST, subtype 0xf, unknown subtypes...), at every cut: every option as tshark shows it."""
    from tests.test_tshark_options import write_synthetic

    path = tmp_path / "synthetic.pcap"
    write_synthetic(path)
    every_cut(path, tmp_path, config_dir)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
def test_mptcp_fields_when_the_keys_were_captured(path, tmp_path, config_dir):
    """Cuts past the keys of the handshake (those inside the DSS options: the DATA_ACK, the
    mapping, the checksum): every mptcp.* field of every frame equals tshark's, its analysis
    included; and tshark marks a dissection cut short exactly where neither shows the analysis."""
    need_tshark()
    starts = {start for start, _ in option_areas(path)}
    lengths = [n for n in cuts(path) if all(n >= s + KEYS_END for s in starts if s < n)]
    assert len(lengths) >= 6, lengths
    cut_shown = Counter()
    for n in lengths:
        cut = editcap(path, n, tmp_path / f"cut-{n}.pcap")
        marks: dict = {}
        problems, equal, _, bugs = differences(cut, MPTCP_NAMES, config_dir, marks)
        assert not bugs
        assert not problems, f"-s {n}: {len(problems)} difference(s) from tshark:\n" + "\n".join(problems[:30])
        for info, short, _ in marks.values():
            stopped = stopped_at_cut(short)
            assert info.cut_short is stopped, (n, info.number, short)  # every packet, MPTCP or not
            p = info.packet
            if p is None or not p.options_cut or not info.mptcp or info.mptcp_stream is None:
                continue
            cut_shown[info.mptcp_shown] += 1
            assert stopped is not info.mptcp_shown, (n, info.number)
    assert cut_shown[False] > 0, cut_shown
    if path.name == "v4-checksum.pcap":  # cut in the DSS checksum alone, which tshark never reads
        assert cut_shown[True] > 0, cut_shown


@pytest.mark.parametrize("path", _captures())
def test_no_item_the_whole_capture_lacks(path, tmp_path):
    """At every cut, the analysis raises no expert item and finds no mismatch that the whole capture
    does not have: what the cut hides (a key, a mapping, a checksum, a first DSN) is judged nowhere."""
    need_wireshark("editcap")
    whole, _ = run(path)
    allowed = set(experts(whole)) | {"mptcp.packet.options_cut"}
    mismatches = {c.what for i in whole for c in i.checks if c.verdict is Verdict.MISMATCH}
    for n in cuts(path):
        infos, _ = run(editcap(path, n, tmp_path / f"cut-{n}.pcap"))
        assert set(experts(infos)) <= allowed, (n, set(experts(infos)) - allowed)
        found = {c.what for i in infos for c in i.checks if c.verdict is Verdict.MISMATCH}
        assert found <= mismatches, (n, found - mismatches)


def cut_dss_infos(path: Path, n: int, tmp_path: Path) -> list:
    infos, _ = run(editcap(path, n, tmp_path / f"cut-{n}.pcap"))
    return infos


def test_a_cut_checksum_is_no_verdict(tmp_path):
    """v4-checksum's DSS options carry checksums; cut in the checksum (-s 90: 22 of a 24-octet DSS),
    the DSS keeps its mapping, but no checksum is verified nor said missing or wrong."""
    need_wireshark("editcap")
    infos = cut_dss_infos(DATA / "v4-checksum.pcap", 90, tmp_path)
    cut = [i for i in infos if any(type(o) is CutOption and o.option_class is Dss for o in i.mptcp)]
    assert all("checksum" in i.mptcp[-1].cut_fields for i in cut)
    assert len([i for i in cut if i.mptcp[-1].cut_fields == ("checksum",)]) > 20  # the mapping captured whole
    assert not [c for i in cut for c in i.checks if "checksum" in c.what]
    keys = set(experts(infos))
    assert not keys & {"mptcp.dss.checksum_missing", "mptcp.dss.checksum_mismatch", "mptcp.dss.missing_mapping"}
    # the mappings captured whole place the data: the same DSNs as the whole capture's
    whole, _ = run(DATA / "v4-checksum.pcap")
    mapped = [i for i in cut if i.payload_dsn is not None]
    assert mapped and all(i.payload_dsn == whole[i.number - 1].payload_dsn for i in mapped)


def test_a_cut_mapping_is_no_mapping(tmp_path):
    """Cut inside the mapping (-s 80 on Ethernet: the DSN whole, the subflow sequence number not),
    a DSS gives its DATA_ACK and no mapping: no gap, reinjection or missing-mapping item follows."""
    need_wireshark("editcap")
    path = DATA / "v4-tfo.pcap"
    infos = cut_dss_infos(path, 14 + 20 + 20 + 12 + 4 + 8 + 8 + 2, tmp_path)
    cut = [i for i in infos if any(type(o) is CutOption and o.option_class is Dss for o in i.mptcp)]
    assert cut
    for i in cut:
        part = i.mptcp[-1]
        assert part.get("ssn") is None and i.payload_dsn is None and not i.reinjection_of
    whole, _ = run(path)
    acked = [i for i in cut if i.dss and i.dss[0].ack64 is not None]
    assert acked and all(i.dss[0].ack64 == whole[i.number - 1].dss[0].ack64 for i in acked)
    # no item the whole capture does not have: no gap, no missing mapping, no reinjection
    assert set(experts(infos)) <= set(experts(whole)) | {"mptcp.packet.options_cut"}


def test_the_text_tree_shows_a_cut_option(tmp_path):
    need_wireshark("editcap")
    cut = editcap(DATA / "v4-checksum.pcap", 84, tmp_path / "cut.pcap")
    r = cli("dissect", "-r", str(cut), "-c", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("MP_CAPABLE[cut]" in x and "[Packet size limited during capture]" in x for x in lines)
    head = next(k for k, x in enumerate(lines) if "MP_CAPABLE [cut by the snapshot length: 16 of 20 octets" in x)
    assert "version: 1" in lines[head + 1] and "sender_key: 0x" in lines[head + 3]
    assert "[the rest of the option was not captured]" in lines[head + 4]


def test_the_options_list_shows_a_cut_option(tmp_path):
    """mptcpspec options: a cut option is no malformed one; its fields captured whole are listed."""
    need_wireshark("editcap")
    cut = editcap(DATA / "v4-checksum.pcap", 84, tmp_path / "cut.pcap")
    r = cli("options", "-r", str(cut))
    assert r.returncode == 0, r.stderr
    assert "malformed" not in r.stdout
    line = r.stdout.splitlines()[2]
    assert "MP_CAPABLE [cut by the snapshot length: 16 of 20 octets captured]" in line
    assert "sender_key=0x9d3fe435a30377c0" in line  # tshark -V: Sender's Key 11331026106506770368
