"""Differential test of ``mptcpspec dissect -T fields`` against tshark 4.0, every field, every packet.

For every field that Wireshark 4.0 also has (``FIELDS[n].source == "wireshark"``: frame, IP, TCP,
the ``tcp.options.mptcp.*`` option fields and the ``mptcp.*`` analysis fields), the values we print
must be exactly the ones tshark prints, frame by frame, on the kernel's captures (tests/data), on
tcpdump's captures from other stacks (the external corpus, ``MPTCPSPEC_CORPUS``) and on the
synthetic capture of rare option variants.  tshark runs with every MPTCP analysis preference on
(``tests.tshark_fields``; ``docs/tshark-mptcp.md`` explains each).

Two differences are allowed, because tshark is wrong there.  An MPTCP option of a length the RFCs
do not allow is refused by us (``MalformedOption``: expert info, subtype only) while tshark shows
whatever fields fit in it and raises nothing.  And (docs/tshark-mptcp.md, quirk Q17, listed in the
README): Linux repeats the v1 MP_CAPABLE that carries the first data on every segment of that
first mapping, and tshark records each repetition as a new mapping starting at that segment, so the
DSNs it gives the following segments of that direction (``mptcp.rawdsn64``, ``mptcp.dsn``,
``mptcp.related_mapping``) are wrong.  Those frames are identified independently (the direction saw
the MP_CAPABLE-with-data option on two or more segments) and our values there are the ones the
reassembly test shows right (the reassembled stream is the application's data).  A field named
twice on the command line is a difference of the output writer, tested on its own.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

import pytest

from mptcpspec.codec.options import MalformedOption, MpCapable
from mptcpspec.dissect.fields import FIELDS
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.writers import FieldsWriter
from tests.conftest import CAPTURES, DATA, ROOT, corpus_params, need_tshark
from tests.tshark_fields import tshark_mptcp_fields

NAMES = [n for n, f in FIELDS.items() if f.source == "wireshark" and n != "frame.number"]
Q17_FIELDS = {"mptcp.rawdsn64", "mptcp.dsn", "mptcp.related_mapping"}


def _captures() -> list:
    return [pytest.param(p, id=f"data-{p.stem}") for p in CAPTURES] + corpus_params()


def _q17_frames(infos) -> set[int]:
    """Frames after the second segment of a direction that repeated the MP_CAPABLE carrying data."""
    repeats: Counter = Counter()
    out = set()
    for i in infos:
        if i.packet is None:
            continue
        key = (i.tcp_stream, i.from_client)
        if any(type(o) is MpCapable and o.data_level_length for o in i.mptcp) and i.packet.payload_len:
            repeats[key] += 1
        if repeats[key] >= 2:
            out.add(i.number)
    return out


def compare(path: Path, config_dir: Path, names: list[str] = NAMES) -> tuple[int, Counter, int]:
    theirs = tshark_mptcp_fields(path, names, config_dir=config_dir)
    # Values are taken as each packet is dissected, as `-T fields` prints them: the connection
    # a PacketInfo points to lives on and changes with later packets.
    # Also through the compiled row of `-T fields` (what users get), with separators that cannot
    # occur in values.
    writer = FieldsWriter(io.StringIO(), names, {"separator": "\x1e", "aggregator": "\x1f"})
    infos, ours, rows = [], {}, {}
    for info in Dissection(path):
        infos.append(info)
        ours[info.number] = {n: FIELDS[n].get(info) for n in names}
        rows[info.number] = writer.row(info).split("\x1e")
    assert set(theirs) == set(ours), "tshark and we see different frames"
    q17 = _q17_frames(infos)
    equal: Counter = Counter()
    allowed = 0
    problems = []
    for info in infos:
        t = theirs[info.number]
        for k, n in enumerate(names):
            mine = ours[info.number][n]
            th = t.get(n, [])
            assert rows[info.number][k] == "\x1f".join(mine), (path.name, info.number, n, rows[info.number][k])
            if mine == th:
                if th:
                    equal[n] += 1
            elif n in Q17_FIELDS and info.number in q17:
                allowed += 1
            elif (
                n.startswith("tcp.options.mptcp.")
                and n != "tcp.options.mptcp.subtype"
                and any(type(o) is MalformedOption for o in info.mptcp)
            ):
                allowed += 1  # tshark shows what fits of an option of a bad length; we refuse it
            else:
                problems.append(f"{path.name} #{info.number} {n}: ours {mine}, tshark {th}")
    assert not problems, f"{len(problems)} difference(s) from tshark:\n" + "\n".join(problems[:30])
    return len(infos), equal, allowed


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wireshark-config")


@pytest.mark.parametrize("path", _captures())
def test_every_shared_field_on_every_packet(path, config_dir):
    need_tshark()
    frames, equal, allowed = compare(path, config_dir)
    print(
        f"\n{path.name}: {frames} frames, {sum(equal.values())} non-empty values equal to tshark's "
        f"in {len(equal)} fields; {allowed} value(s) differ where tshark 4.0 is wrong (Q17)"
    )
    assert sum(equal.values()) > 0


def test_synthetic_capture(tmp_path, config_dir):
    """The rare option variants (MP_PRIO, MP_FAIL, IPv6 and port ADD_ADDR, MP_TCPRST reasons...)."""
    need_tshark()
    from tests.test_tshark_options import write_synthetic

    path = tmp_path / "synthetic.pcap"
    write_synthetic(path)
    # Its packets are option samples on one made-up flow: the connection analysis of them means
    # nothing, so only what is read from the headers and options is compared.
    names = [n for n in NAMES if not n.startswith("mptcp.") or n == "mptcp.rm_addr.count"]
    frames, equal, allowed = compare(path, config_dir, names)
    option_fields = {n for n in equal if n.startswith("tcp.options.mptcp.")}
    assert len(option_fields) >= 30, sorted(option_fields)


def test_the_kernel_captures_cover_the_analysis_fields(config_dir):
    """Across the kernel captures, every mptcp.* analysis field we share is compared non-empty."""
    need_tshark()
    seen: Counter = Counter()
    for p in sorted(DATA.glob("*.pcap")):
        seen.update(compare(p, config_dir)[1])
    # mptcp.reinjected_in names later frames: tshark 4.0 never prints it in one pass (nor we, without -2)
    analysis = {n for n in NAMES if n.startswith("mptcp.") and n not in ("mptcp.rm_addr.count", "mptcp.reinjected_in")}
    assert analysis <= set(seen), sorted(analysis - set(seen))


# Every Wireshark field the dissector issue names, and the analysis Wireshark lacks.
REQUIRED = (
    "frame.number ip.src ip.dst ipv6.src ipv6.dst tcp.srcport tcp.dstport tcp.stream tcp.flags tcp.len tcp.seq "
    "tcp.ack mptcp.stream mptcp.dsn mptcp.ack mptcp.expected_token mptcp.expected_idsn mptcp.rawdsn64 "
    "mptcp.dss.dsn mptcp.master mptcp.analysis.subflows mptcp.related_mapping mptcp.reinjection_of "
    "mptcp.rm_addr.count"
).split() + [
    "tcp.options.mptcp." + n
    for n in (
        "subtype version flags sendkey recvkey recvtok sendrand sendtrunchmac sendhmac addrid rawdataseqno "
        "rawdataack subflowseqno datalvllen checksum ipv4 ipv6 port echo addaddrtrunchmac rst_reason "
        "backup.flag checksumreq.flags extensibility.flag nomoresubflows.flag sha1.flag sha256.flag datafin.flag "
        "dseqn8.flag dseqnpresent.flag dataack8.flag dataackpresent.flag reserved.flag flag_U.flag flag_V.flag "
        "flag_W.flag flag_T.flag ipver reserved"
    ).split()
]


def test_every_named_field_exists_with_wiresharks_name():
    need_tshark()
    import subprocess

    listing = subprocess.run(["tshark", "-G", "fields"], capture_output=True, text=True, check=True).stdout
    known = {cols[2] for cols in (line.split("\t") for line in listing.splitlines()) if len(cols) > 2}
    missing = [n for n in REQUIRED if n not in FIELDS]
    assert not missing, missing
    assert all(FIELDS[n].source == "wireshark" for n in REQUIRED)
    not_wireshark = [n for n, f in FIELDS.items() if f.source == "wireshark" and n not in known]
    assert not not_wireshark, f"claimed as Wireshark's but tshark 4.0 has no such field: {not_wireshark}"
    ours = [n for n, f in FIELDS.items() if f.source != "wireshark"]
    clash = [n for n in ours if n in known]
    assert not clash, f"our own fields must not reuse Wireshark names: {clash}"
    assert len(ours) >= 20


def test_a_field_named_twice(config_dir):
    """tshark 4.0 prints a field named twice in its last column only (README, "Where we differ");
    we print it in each.  The last column is the same in both."""
    import subprocess
    import sys

    need_tshark()
    path = DATA / "v4-two-subflows.pcap"
    args = ["-T", "fields", "-e", "frame.number", "-e", "tcp.srcport", "-e", "frame.number"]
    theirs = subprocess.run(
        ["tshark", "-n", "-r", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)},
    ).stdout.splitlines()
    ours = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "dissect", "-r", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.splitlines()
    assert len(ours) == len(theirs) == 119
    for k, (a, b) in enumerate(zip(ours, theirs), 1):
        assert b.split("\t") == ["", a.split("\t")[1], str(k)]
        assert a.split("\t") == [str(k), b.split("\t")[1], str(k)]


FILTERS = [
    "mptcp.stream == 0",
    "mptcp.stream != 0",
    "mptcp.stream ~= 0",
    "mptcp.ack != 1",
    "mptcp.ack ~= 1",
    "tcp.options.mptcp.subtype in {0, 1}",
    "tcp.options.mptcp.subtype == 2 and tcp.len > 0",
    "not tcp.options.mptcp.subtype",
    "!(tcp.options.mptcp.subtype == 2) && tcp.options.mptcp.subtype",
    "ip.src == 198.51.100.1 or ipv6.src == 2001:db8:2::1",
    "ip.dst != 198.51.100.2",
    "tcp.flags & 0x02",
    "tcp.flags & 0x12 and tcp.options.mptcp.subtype == 1",
    "tcp.options.mptcp.rawdataack >= 0x10000000",
    "tcp.options.mptcp.backup.flag == 0",
    "(tcp.srcport == 5201 || tcp.dstport == 5201) && !tcp.options.mptcp.datafin.flag",
    "tcp.options.mptcp.addrid",
    "mptcp.dsn > 1000 and mptcp.dsn <= 50000",
    "mptcp.dsn < 1",
    "tcp.options.mptcp.sendkey",
    "tcp.options.mptcp.datalvllen ge 1000",
    "tcp.seq eq 1 and tcp.ack ne 1",
    "tcp.len lt 100 or tcp.len gt 1000",
    "mptcp.expected_token",
    "tcp.options.mptcp.subtype in {2,3}",
]


@pytest.mark.parametrize("name", ["v6-two-subflows.pcap", "v4-add-addr.pcap"])
def test_display_filters_select_the_frames_tshark_selects(name, config_dir):
    """-Y: the same frames as tshark 4.0 (with the differential tests' preferences) for each filter."""
    import subprocess

    from mptcpspec.dissect.filters import compile_filter
    from tests.tshark_fields import RECOMMENDED_PREFS

    need_tshark()
    path = DATA / name
    infos = list(Dissection(path))
    prefs = [x for n, v in RECOMMENDED_PREFS.items() for x in ("-o", f"{n}:{v}")]
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)}
    for flt in FILTERS:
        theirs = subprocess.run(
            ["tshark", "-n", "-r", str(path), *prefs, "-Y", flt, "-T", "fields", "-e", "frame.number"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert theirs.returncode == 0, (flt, theirs.stderr)
        keep = compile_filter(flt)
        assert [i.number for i in infos if keep(i)] == [int(n) for n in theirs.stdout.split()], flt
