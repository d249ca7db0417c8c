"""``-T fields`` rows against ``Field.get``, every field, every packet, without tshark.

The compiled row of :class:`~mptcpspec.dissect.writers.FieldsWriter` (one inlined cell per field,
the option fields per option class, a cache of the latest options' cells) and the fields' ``get``
come from one definition each; here they are held to each other on every packet of every capture in
tests/data (one and two passes), on the synthetic capture of rare option variants, and on packets
given generated MPTCP options of every kind, one or two at a time.  The ``-E`` settings that leave
the compiled row (occurrence, quotes) are checked against their meaning in tshark, applied to
``get``.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mptcpspec.analysis import PacketInfo
from mptcpspec.dissect.fields import FIELDS, UnknownFieldError, compile_row, option_fields
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.writers import FieldsWriter
from tests.conftest import CAPTURES, DATA
from tests.strategies import MPTCP

NAMES = list(FIELDS)
SEP, AGG = "\x1e", "\x1f"  # cannot occur in a value
ENCAPSULATED = tuple(sorted((DATA / "encap").glob("*.pcap")))  # the encapsulations' fields have values there


def rows_and_values(infos, names=NAMES, options=None) -> tuple[list[str], list[list[list[str]]]]:
    """Each packet's row through the writer's compiled row, and each field's ``get`` on it, taken
    together as each packet comes (the connection a PacketInfo points to changes with later packets)."""
    w = FieldsWriter(io.StringIO(), names, {"separator": SEP, "aggregator": AGG, **(options or {})})
    assert w.row is not None
    rows, values = [], []
    for info in infos:
        rows.append(w.row(info))
        values.append([FIELDS[n].get(info) for n in names])
    return rows, values


def assert_rows(path: str, infos, names=NAMES) -> int:
    rows, values = rows_and_values(infos, names)
    problems = []
    for info, row, vals in zip(infos, rows, values, strict=True):
        cells = row.split(SEP)
        assert len(cells) == len(names)
        for n, cell, v in zip(names, cells, vals, strict=True):
            assert all(isinstance(x, str) and SEP not in x and AGG not in x for x in v), (n, v)
            if cell != AGG.join(v):
                problems.append(f"{path} #{info.number} {n}: row {cell!r}, get {v!r}")
    assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems[:30])
    return len(rows)


def synthetic_capture(tmp_path: Path) -> Path:
    from tests.test_tshark_options import write_synthetic

    path = tmp_path / "synthetic.pcap"
    write_synthetic(path)
    return path


@pytest.mark.parametrize("two_pass", [False, True], ids=["one-pass", "two-pass"])
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_rows_are_the_getters_on_every_packet(path, two_pass):
    assert assert_rows(path.name, Dissection(path, two_pass=two_pass)) > 20


def test_rows_of_the_rare_option_variants(tmp_path):
    path = synthetic_capture(tmp_path)
    assert assert_rows(path.name, Dissection(path)) > 10


def test_every_field_has_values_somewhere(tmp_path):
    """The captures (and the synthetic one of rare option variants) give most fields a value, so
    the comparisons above compare something."""
    seen: set[str] = set()
    for path in (*CAPTURES, *ENCAPSULATED, synthetic_capture(tmp_path)):
        for info in Dissection(path, two_pass=True):
            seen.update(n for n in NAMES if FIELDS[n].get(info))
    missing = sorted(set(NAMES) - seen)
    assert len(missing) <= 20, missing


def test_each_field_alone_and_fields_named_twice():
    """A row of one field, and rows naming fields twice (the single-option path takes a field's
    values once per name, as the getters do)."""
    infos = list(Dissection(CAPTURES[0]))
    for n in NAMES:
        rows, values = rows_and_values(infos, [n])
        assert rows == [AGG.join(v[0]) for v in values], n
    names = ["tcp.options.mptcp.subtype", "mptcp.dsn", "tcp.options.mptcp.subtype", "frame.number", "mptcp.dsn"]
    for path in CAPTURES:
        assert_rows(path.name, Dissection(path), names)


# Generated options: every MPTCP option class, one or two on a packet.
_option = st.one_of(*MPTCP.values())


@pytest.fixture(scope="module")
def tcp_infos() -> list[PacketInfo]:
    infos = [i for p in CAPTURES[:3] for i in Dissection(p) if i.packet is not None]
    return infos[::7]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_option, min_size=1, max_size=2), st.integers(0, 10**6))
def test_rows_on_generated_options(tcp_infos, opts, k):
    info = dataclasses.replace(tcp_infos[k % len(tcp_infos)], mptcp=tuple(opts))
    names = [n for n, f in FIELDS.items() if f.option]
    rows, values = rows_and_values([info, info], names)  # twice: the second from the cache of cells
    for row in rows:
        assert row.split(SEP) == [AGG.join(v) for v in values[0]]
    if len(opts) == 1:  # option_fields: the same values, field by field
        by_name: dict[str, list[str]] = {}
        for n, v in option_fields(opts[0]):
            by_name.setdefault(n, []).append(v)
        assert {n: v for n, v in zip(names, values[0]) if v} == by_name


# -E settings outside the compiled row, against their meaning in tshark.


def _expected(values: list[str], occurrence: str, agg: str, quote: str) -> str:
    if values and occurrence == "f":
        values = values[:1]
    elif values and occurrence == "l":
        values = values[-1:]
    elif values and occurrence not in ("a", "0"):
        k = int(occurrence)
        values = [values[k - 1]] if 0 < k <= len(values) else [values[k]] if -len(values) <= k < 0 else []
    return f"{quote}{agg.join(values)}{quote}" if values else ""


@pytest.mark.parametrize(
    "options",
    [
        {"occurrence": "f"},
        {"occurrence": "l"},
        {"occurrence": "2"},
        {"occurrence": "-1"},
        {"quote": "d"},
        {"quote": "s", "aggregator": ";", "separator": "/s"},
        {"occurrence": "a", "aggregator": "/s", "separator": "|"},
    ],
)
def test_output_settings_on_every_packet(options):
    seps = {"/s": " ", "/t": "\t"}
    sep = seps.get(options.get("separator", "/t"), options.get("separator", "\t"))
    agg = seps.get(options.get("aggregator", ","), options.get("aggregator", ","))
    quote = {"d": '"', "s": "'", "n": ""}[options.get("quote", "n")]
    occurrence = options.get("occurrence", "a")
    for path in CAPTURES:
        out = io.StringIO()
        w = FieldsWriter(out, NAMES, options)
        expected = []
        for info in Dissection(path):
            w.write(info)
            expected.append(sep.join(_expected(FIELDS[n].get(info), occurrence, agg, quote) for n in NAMES))
        w.flush()
        assert out.getvalue().split("\n")[:-1] == expected, (path.name, options)


def test_unknown_field():
    with pytest.raises(UnknownFieldError) as ei:
        FieldsWriter(io.StringIO(), ["frame.number", "mptcp.nope"])
    assert ei.value.name == "mptcp.nope" and str(ei.value) == "unknown field 'mptcp.nope'"
    with pytest.raises(UnknownFieldError):
        compile_row(["tcp.nope"], ",", "\t", lambda i: "")
