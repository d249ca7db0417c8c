"""Display filters (``-Y``) against tshark 4.0: the same filters accepted and refused, the same
frames selected, on the committed captures.  Also checks that the table of Wireshark's field types
and value strings (``mptcpspec.dissect.wstypes``) is what tshark says; ``python -m
tests.test_tshark_filters --write`` rewrites it from the tshark installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, need_tshark
from tests.tshark_fields import RECOMMENDED_PREFS

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "mptcpspec" / "dissect" / "wstypes.py"


def tshark_lines(tshark: str, what: str) -> list[list[str]]:
    r = subprocess.run([tshark, "-G", what], capture_output=True, text=True, check=True)
    return [line.split("\t") for line in r.stdout.splitlines()]


def q(s: object) -> str:
    """A literal as ruff format writes it (double quotes)."""
    r = repr(s)
    if isinstance(s, str) and r[0] == "'" and '"' not in s:
        r = '"' + r[1:-1].replace("\\'", "'") + '"'
    if isinstance(s, tuple):
        r = "(" + ", ".join(q(x) for x in s) + ")"
    return r


def render_wstypes(tshark: str) -> str:
    """The text of ``wstypes.py`` for the Wireshark-named fields and the protocols we filter on."""
    from mptcpspec.dissect.fields import FIELDS
    from mptcpspec.dissect.filters import PROTOCOLS

    ours = [n for n, f in FIELDS.items() if f.source == "wireshark"]
    fields = {row[2]: row[3] for row in tshark_lines(tshark, "fields") if row[0] == "F"}
    protos = {row[2] for row in tshark_lines(tshark, "fields") if row[0] == "P"}
    missing = [n for n in ours if n not in fields]
    assert not missing, f"not fields of tshark: {missing}"
    types = {n: fields[n] for n in ours}
    types.update({p: "FT_PROTOCOL" for p in PROTOCOLS if p in protos})
    names = {row[0]: row[1] for row in tshark_lines(tshark, "ftypes")}
    values: list[str] = []
    truefalse: dict[str, tuple[str, str]] = {}
    for row in tshark_lines(tshark, "values"):
        if row[0] == "V" and row[1] in types:
            values.append(f"{row[1]}\x1f{row[2]}\x1f{row[3]}")
        elif row[0] == "T" and row[1] in types:
            truefalse[row[1]] = (row[2], row[3])
    blob = "\x1e".join(values)
    chunks = [""]
    for ch in blob:  # chunks whose literals fit a line
        if len(q(chunks[-1] + ch)) > 100:
            chunks.append("")
        chunks[-1] += ch
    out = [
        '"""Wireshark 4.0\'s types and value strings of the fields we share with it, as ``tshark -G fields``,',
        "``-G values`` and ``-G ftypes`` give them; written by ``python -m tests.test_tshark_filters --write``",
        'and checked against tshark by that test."""',
        "",
        "from __future__ import annotations",
        "",
        '__all__ = ["TRUE_FALSE", "TYPES", "TYPE_NAMES", "VALUES"]',
        "",
        "#: field or protocol -> its Wireshark type",
        "TYPES: dict[str, str] = {",
        *[f"    {q(n)}: {q(t)}," for n, t in types.items()],
        "}",
        "",
        "#: type -> the name tshark's messages give it",
        "TYPE_NAMES: dict[str, str] = {",
        *[f"    {q(t)}: {q(names[t])}," for t in sorted(set(types.values()))],
        "}",
        "",
        "#: boolean field -> its true and false strings",
        "TRUE_FALSE: dict[str, tuple[str, str]] = {",
        *[f"    {q(n)}: {q(v)}," for n, v in truefalse.items()],
        "}",
        "",
        "# field, value and name, separated by \\x1f; entries separated by \\x1e",
        "_VALUES = (",
        *[f"    {q(c)}" for c in chunks],
        ")",
        "",
        "",
        "def _values() -> dict[str, dict[str, int]]:",
        "    out: dict[str, dict[str, int]] = {}",
        '    for entry in "".join(_VALUES).split("\\x1e"):',
        '        field, value, name = entry.split("\\x1f")',
        "        out.setdefault(field, {}).setdefault(name.lower(), int(value, 0))",
        "    return out",
        "",
        "",
        "#: integer field -> {value string, lower case: its first value}",
        "VALUES: dict[str, dict[str, int]] = _values()",
        "",
    ]
    return "\n".join(out)


def test_wstypes_is_what_tshark_says():
    if MODULE.read_text() != render_wstypes(need_tshark()):  # not assert ==: pytest's diff of it takes minutes
        pytest.fail("mptcpspec/dissect/wstypes.py is not what tshark says: python -m tests.test_tshark_filters --write")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        MODULE.write_text(render_wstypes("tshark"))


# --------------------------------------------------------------------------- the differential table

CAPTURES = ("v4-two-subflows.pcap", "v4-add-addr.pcap", "v6-two-subflows.pcap")

#: Filters tshark 4.0 accepts: each must select the same frames here and there, on every capture.
ACCEPTED = [
    "tcp && ip",  # two protocols: && is one token, not two &
    "ip&&tcp",
    "tcp.flags & 0x02 && tcp",
    "tcp",
    "mptcp",
    "ip",
    "ipv6",
    "frame.number == 1 or frame.number == 3",
    "frame.number == 1 || frame.number == 2 && frame.number == 3",
    "frame.number == 3 && frame.number == 2 || frame.number == 1",
    "!frame.number == 1 && frame.number < 3",
    "not (frame.number > 2) and frame.number != 1",
    "tcp.port in {80, 443}",
    "tcp.srcport in {5201, 0x1451}",
    "tcp.srcport in {5200..5202}",
    "tcp.srcport in {5201 .. 5202}",
    "tcp.len in {0, 1..2000}",
    "tcp.len in {1..100}",
    "tcp.len not in {0}",
    "frame.number in {1,2}",
    'tcp.options.mptcp.subtype == "Data Sequence Signal"',
    'tcp.options.mptcp.subtype == "data sequence signal"',
    "tcp.options.mptcp.subtype == 2",
    'tcp.options.mptcp.subtype in {"Add Address", "Remove Address", 0}',
    "tcp.options.mptcp.subtype != 2",
    "tcp.options.mptcp.subtype === 2",
    "tcp.options.mptcp.subtype !== 2",
    "tcp.options.mptcp.subtype ~= 2",
    "tcp.options.mptcp.subtype any_eq 1",
    "tcp.options.mptcp.subtype all_ne 2",
    "tcp.options.mptcp.subtype all_eq 2",
    "tcp.flags.syn == True",
    "tcp.flags.syn == False",
    "tcp.flags.syn == Set",
    'tcp.flags.syn == "not set"',
    "tcp.flags.syn == 2",
    "tcp.flags.syn > 0",
    "tcp.flags.syn == 1 && !tcp.flags.ack",
    "tcp.flags & 0x02",
    "tcp.flags bitwise_and 0x12",
    "tcp.flags & 2 == 2",
    "tcp.flags == 0x012",
    "tcp.len == 01750",
    "tcp.len == 0x0",
    "tcp.len == -1",
    "tcp.len ge 1000 and tcp.len le 1448",
    "tcp.len & 0x1 == 0",
    "ip.src == 198.51.100.1",
    "ip.src === 198.51.100.1",
    "ip.src != 198.51.100.1",
    "ip.src == 198.51.100.0/24",
    "ip.dst == 198.51.100.0/31",
    "ip.src > 198.51.100.1",
    "ip.src in {198.51.100.1, 203.0.113.1}",
    "ipv6.src == 2001:db8:1::1",
    "ipv6.dst == 2001:db8::/32",
    "ip.proto == TCP",
    "tcp.srcport == tcp.dstport",
    "tcp.srcport < tcp.dstport",
    "count(tcp.options.mptcp.subtype) == 1 && frame.number < 10",
    "count(tcp.options.mptcp.addrid) == 1",
    "tcp.stream eq 1",
    "tcp.seq > 1 and tcp.seq <= 1001",
    "mptcp.stream == 0 and tcp.options.mptcp.subtype in {1, 2}",
    "tcp.options.mptcp.rawdataseqno",
    "tcp.options.mptcp.sendkey",
    "tcp.options.mptcp.ipv4 == 203.0.113.2",
    "tcp.options.mptcp.addrid == 5",
    "tcp.len == 'a'",
]

#: Those of them that select no frame of these captures.
NOTHING = {
    "tcp.port in {80, 443}",
    "tcp.len in {1..100}",
    "tcp.len == -1",
    "tcp.len == 'a'",
    "tcp.srcport == tcp.dstport",
    "tcp.flags.syn == 1 && !tcp.flags.ack",
}

#: Filters tshark 4.0 refuses, with its message (the first line, after "tshark: ").
REFUSED = [
    "tcp.port in {80 443}",
    "ip.src in {198.51.100.1 198.51.100.2}",
    "tcp.port in {}",
    "tcp.foo == 1",
    "tcp.foo",
    "tcp.len == foo",
    'tcp.len == "foo"',
    "tcp.len == 1.5",
    "tcp.len == 1e3",
    "tcp.srcport in {5200-5202}",
    "tcp.len >",
    "tcp.len > 3 and",
    "(tcp.len > 3",
    "tcp.srcport in {5201, 5202",
    "tcp.len contains 3",
    'ip.src matches "198"',
    "ip.src == 1.2.3.300",
    "ip.src == foo",
    "ip.src == 5",
    "ipv6.src == 1.2.3.4",
    "tcp.flags.syn == true",
    'tcp.options.mptcp.subtype == "DSS"',
    "tcp.options.mptcp.subtype == foo",
    "tcp.len >> 3",
    "tcp.len < 1 xor tcp.len > 0",
    "tcp.len == tcp.foo",
]


def tshark_filter(tshark: str, path: Path, expr: str) -> tuple[int, list[int] | str]:
    cmd = [tshark, "-n", "-r", str(path), "-Y", expr, "-T", "fields", "-e", "frame.number"]
    for name, value in RECOMMENDED_PREFS.items():
        cmd += ["-o", f"{name}:{value}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        first = next(x for x in r.stderr.splitlines() if x.startswith("tshark: "))
        return r.returncode, first.removeprefix("tshark: ")
    return 0, [int(x) for x in r.stdout.split()]


def our_filter(infos: list, expr: str) -> tuple[int, list[int] | str]:
    from mptcpspec.dissect.filters import FilterError, compile_filter

    try:
        f = compile_filter(expr)
    except FilterError as e:
        return 2, e.reason
    return 0, [i.number for i in infos if f(i)]


@pytest.fixture(scope="module")
def dissected() -> dict[str, list]:
    from tests.dissect_helpers import run

    return {name: run(DATA / name)[0] for name in CAPTURES}


@pytest.mark.parametrize("expr", ACCEPTED)
def test_accepted_filters_select_what_tshark_selects(expr, dissected):
    tshark = need_tshark()
    selected = 0
    for name in CAPTURES:
        theirs = tshark_filter(tshark, DATA / name, expr)
        assert theirs[0] == 0, (name, theirs)
        assert our_filter(dissected[name], expr) == theirs, name
        selected += len(theirs[1])
    # each selects something somewhere, but for those meant to select nothing
    assert bool(selected) != (expr in NOTHING), selected


@pytest.mark.parametrize("expr", REFUSED)
def test_refused_filters_are_refused_with_tsharks_words(expr, dissected):
    name = CAPTURES[0]
    theirs = tshark_filter(need_tshark(), DATA / name, expr)
    assert theirs[0] == 2 and isinstance(theirs[1], str)
    assert our_filter(dissected[name], expr) == theirs


def test_table_size():
    assert len(ACCEPTED) + len(REFUSED) >= 40
