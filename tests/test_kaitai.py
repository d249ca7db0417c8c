"""The Kaitai Struct export: compiled by the real compiler, and decoding as our codecs do.

The .ksy files are generated from ``spec/`` (``mptcpspec regen``); the pinned compiler
(``kaitai-struct-compiler`` from npm, ``tools/ksc``) compiles them to Python and JavaScript.
Every MPTCP option of the project's kernel captures, tcpdump's test captures and the synthetic
options of the tshark test, and a large random corpus from the hypothesis strategies (valid
options, random octets, mutated options), must decode to the same format and field values
through the Kaitai parsers as through ``mptcpspec.codec.options``, and be refused by both when we
refuse it.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mptcpspec.codec.codegen import snake
from mptcpspec.codec.options import (
    KIND_MPTCP,
    decode_mptcp_option,
    decode_tcp_options,
    encode_option,
    encode_tcp_options,
)
from mptcpspec.errors import DecodeError
from mptcpspec.export.ksc import compile_ksy
from mptcpspec.export.ksy import KSC_VERSION
from mptcpspec.export.regen import EXPORT_GENERATED as GENERATED
from mptcpspec.export.regen import regen
from tests.conftest import CAPTURES, ROOT, need_corpus, need_ksc, tcpdump_captures, unavailable, walk_options
from tests.strategies import ALL, MPTCP, mptcp_octets, mutated
from tests.test_tshark_options import SYNTHETIC

KSY = {n: (GENERATED / n).read_text() for n in ("mptcp_options.ksy", "tcp_options.ksy")}

try:
    import kaitaistruct
except ImportError:
    unavailable(
        "kaitaistruct is not installed: pip install kaitaistruct==0.11 (the [test] extra)", allow_module_level=True
    )
from kaitaistruct import BytesIO, KaitaiStream  # noqa: E402

from mptcpspec.export.kaitai import load  # noqa: E402

K = load()
#: How a Kaitai parser refuses input: a failed `valid`, or reading past the end (not any crash).
REFUSED = (kaitaistruct.KaitaiStructError, EOFError)


# --------------------------------------------------------------------------- the two views


def ours(opt) -> tuple[str, dict]:
    """Format name and field values of our decode, in Kaitai's terms."""
    out = {}
    for f in dataclasses.fields(opt):
        v = getattr(opt, f.name)
        if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            v = v.packed
        elif isinstance(v, enum.Enum):
            v = int(v)
        out[f.name] = v
    return snake(type(opt).__name__), out


def theirs(body, names) -> dict:
    out = {}
    for n in names:
        v = getattr(body, n, None)
        if isinstance(v, enum.Enum):
            v = v.value
        elif isinstance(v, list):
            v = tuple(v)
        out[n] = v
    return out


def kaitai_mptcp(data: bytes):
    return K.MptcpOptions(KaitaiStream(BytesIO(data)))


def check_option(data: bytes) -> str:
    """Compare one MPTCP option; returns its format (or "refused")."""
    try:
        opt = decode_mptcp_option(data)
    except DecodeError as e:
        with pytest.raises(REFUSED):
            k = kaitai_mptcp(data)
            pytest.fail(f"Kaitai accepted {data.hex()} as {k.option.format}; we refuse it: {e}")
        return "refused"
    k = kaitai_mptcp(data)
    fmt, fields = ours(opt)
    assert k.option.format == fmt, data.hex()
    assert theirs(k.option.body, fields) == fields, data.hex()
    assert k.length == len(data) and int(k.option.subtype) == data[2] >> 4
    return fmt


# --------------------------------------------------------------------------- captured options


def _areas(path: Path):
    from mptcpspec.capture.packets import decode_packet
    from mptcpspec.capture.pcap import read_records

    for rec in read_records(path):
        try:
            pkt = decode_packet(rec)
        except DecodeError:
            continue
        if pkt is not None and pkt.options:
            yield pkt.options


def _spans(area: bytes):
    """The octets of each option (the unusable tail of a broken area included), NOP and EOL left out."""
    for off, ln, _ in walk_options(area):
        if area[off] > 1:
            yield area[off : off + ln]


def capture_files() -> list[Path]:
    return list(CAPTURES) + (tcpdump_captures() or [])


def captured_options() -> list[bytes]:
    seen = {}
    for path in capture_files():
        for area in _areas(path):
            for o in _spans(area):
                if o[0] == KIND_MPTCP:
                    seen.setdefault(o, None)
    for _flags, hexopts in SYNTHETIC:
        for o in _spans(bytes.fromhex(hexopts.replace(" ", ""))):
            if o[0] == KIND_MPTCP:
                seen.setdefault(o, None)
    return list(seen)


CAPTURED = captured_options()


def test_captures_give_a_real_corpus():
    need_corpus()  # the counts and formats below are those of the kernel's and tcpdump's captures together
    assert len(CAPTURED) > 500
    formats = {check_option(o) for o in CAPTURED}
    # The captures reach every format the kernel and tcpdump's captures carry.
    for must in (
        "mp_capable",
        "mp_join_syn",
        "mp_join_syn_ack",
        "mp_join_ack",
        "dss",
        "add_addr",
        "add_addr_v0",
        "remove_addr",
        "mp_prio",
        "mp_fail",
        "mp_fastclose",
        "mp_tcp_rst",
        "mp_experimental",
        "mptcp_unknown",
        "refused",
    ):
        assert must in formats, must


def test_every_captured_tcp_options_area():
    """Whole options areas (kind 30 dispatched to mptcp_options) agree option by option."""
    need_corpus()  # the count below is that of the kernel's and tcpdump's captures together
    n = refused = 0
    for path in capture_files():
        for area in _areas(path):
            try:
                mine = decode_tcp_options(area)
            except DecodeError:
                with pytest.raises(REFUSED):
                    K.TcpOptions(KaitaiStream(BytesIO(area)))
                    pytest.fail(f"Kaitai accepted the options area {area.hex()} that we refuse")
                refused += 1
                continue
            k = K.TcpOptions(KaitaiStream(BytesIO(area)))
            assert [o.kind for o in k.options] == [o.KIND if o.KIND >= 0 else o.kind for o in mine.options]
            for ko, mo in zip(k.options, mine.options):
                if ko.kind in (0, 1):
                    continue
                body = ko.body.body if ko.kind == KIND_MPTCP else ko.body
                _fmt, fields = ours(mo)
                assert theirs(body, fields) == fields, (path.name, area.hex())
            n += 1
    assert n > 800 and refused > 0


# --------------------------------------------------------------------------- random options

_OPTION = st.one_of(*MPTCP.values())


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(_OPTION.map(encode_option) | mptcp_octets() | mutated(_OPTION))
def test_random_options(data):
    check_option(data)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(*ALL.values()), min_size=1, max_size=6))
def test_random_areas(opts):
    try:
        area = encode_tcp_options(opts)
    except Exception:
        return  # more than 40 octets
    mine = decode_tcp_options(area)
    k = K.TcpOptions(KaitaiStream(BytesIO(area)))
    kinds = [o for o in k.options if o.kind != 1]
    assert len(kinds) >= len(opts)
    for ko, mo in zip(kinds, [o for o in mine.options if getattr(o, "KIND", None) != 1]):
        if ko.kind == 0:
            break
        body = ko.body.body if ko.kind == KIND_MPTCP else ko.body
        _fmt, fields = ours(mo)
        assert theirs(body, fields) == fields, area.hex()


# --------------------------------------------------------------------------- the real compiler


def test_compiler_is_the_pinned_version():
    ksc = need_ksc()
    r = subprocess.run([*ksc, "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == KSC_VERSION
    lock = json.loads((ROOT / "tools" / "ksc" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/kaitai-struct-compiler"]["version"] == KSC_VERSION


def test_committed_python_parsers_are_what_the_compiler_makes():
    need_ksc()
    assert regen(check=True, compiled=True) == []


@pytest.mark.parametrize("target", ["python", "javascript", "java", "cpp_stl", "go", "rust"])
def test_ksy_compiles(target):
    need_ksc()
    out = compile_ksy(KSY, target)
    assert out, target


def test_javascript_parser_decodes_as_we_do(tmp_path):
    """The JavaScript parser, run by node with the kaitai-struct runtime, on the captured options
    and a random corpus.  JavaScript reads u8 as a double: 64-bit values compare as doubles."""
    ksc = need_ksc()
    for name, text in compile_ksy(KSY, "javascript", ksc).items():
        (tmp_path / name).write_text(text)
    inputs = list(CAPTURED)

    @settings(max_examples=1500, database=None)
    @given(_OPTION.map(encode_option) | mutated(_OPTION))
    def collect(data):
        inputs.append(data)

    collect()
    r = subprocess.run(
        [ksc[0], str(ROOT / "tools" / "ksc" / "decode.js"), str(tmp_path)],
        input=json.dumps([d.hex() for d in inputs]),
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(r.stdout)
    assert len(results) == len(inputs)
    compared = 0
    for data, res in zip(inputs, results):
        try:
            opt = decode_mptcp_option(data)
        except DecodeError:
            assert "error" in res, (data.hex(), res)
            continue
        assert "error" not in res, (data.hex(), res)
        fmt, fields = ours(opt)
        assert res["format"] == fmt, data.hex()
        for name, v in fields.items():
            camel = name.split("_")[0] + "".join(p.title() for p in name.split("_")[1:])
            got = res["fields"].get(camel)
            if isinstance(v, bytes):
                v = {"hex": v.hex()}
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, int) and not isinstance(v, bool) and v >= 2**53:
                v, got = float(v), float(got)
            assert got == v, (data.hex(), name, got, v)
        compared += 1
    assert compared > 1000


def test_export_cli_gives_a_user_working_parsers(tmp_path):
    """``mptcpspec export ksy -o DIR``: the .ksy and Python parsers a user imports from DIR."""
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "export", "ksy", "-o", str(tmp_path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mptcp_options.ksy",
        "mptcp_options.py",
        "tcp_options.ksy",
        "tcp_options.py",
    ]
    assert (tmp_path / "mptcp_options.ksy").read_text() == KSY["mptcp_options.ksy"]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from tcp_options import TcpOptions; "
        "t = TcpOptions.from_bytes(bytes.fromhex(sys.argv[2])); o = t.options[1].body; "
        "print(o.format, o.body.token, o.body.nonce)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), "01" + "1e0c1001e47f01421b665a18"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["mp_join_syn", str(0xE47F0142), str(0x1B665A18)]


def test_export_cli_compiles_for_other_languages(tmp_path):
    import sys

    need_ksc()
    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "export", "ksy", "-o", str(tmp_path), "-t", "java", "-t", "go"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "java" / "MptcpOptions.java").is_file() and (tmp_path / "go" / "tcp_options.go").is_file()
