"""The generated Wireshark Lua plugin, loaded by the real tshark, decodes as our codecs do.

``tshark -X lua_script:mptcpspec.lua -T pdml`` dissects the project's kernel captures,
tcpdump's MPTCP test captures (from the external corpus, when ``MPTCPSPEC_CORPUS`` is set) and
the synthetic capture of the tshark option test (MP_PRIO, MP_FAIL, IPv6 and port ADD_ADDR,
MP_TCPRST reasons, subtype 0xf, an unassigned subtype, malformed lengths).  Every MPTCP option
of every packet must appear, in order, as one ``mptcpspec`` item whose format and every field
equal ``decode_tcp_options(strict=False)``; an option we refuse must be marked malformed.
``-Y mptcpspec`` must select exactly the packets that carry an MPTCP option.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mptcpspec.codec.codegen import snake
from mptcpspec.codec.options import KIND_MPTCP, MalformedOption, decode_tcp_options
from mptcpspec.export.regen import EXPORT_GENERATED as GENERATED
from tests.conftest import CAPTURES, DATA, corpus_params, need_tshark
from tests.test_tshark_options import write_synthetic

PLUGIN = GENERATED / "mptcpspec.lua"


def tshark(*args: str, config: Path) -> str:
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(config), "XDG_CONFIG_HOME": str(config)}
    r = subprocess.run(
        [need_tshark(), "-n", "-X", f"lua_script:{PLUGIN}", *args], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    assert "Lua: Error" not in r.stderr and "lua_script" not in r.stderr, r.stderr
    return r.stdout


def plugin_view(path: Path, config: Path) -> dict[int, list[dict]]:
    """Frame number -> the plugin's options, each {field name: [(show, value), ...]}."""
    root = ET.fromstring(tshark("-r", str(path), "-T", "pdml", config=config))
    frames = {}
    for pkt in root.iter("packet"):
        num = int(next(f for f in pkt.iter("field") if f.get("name") == "num").get("show"))
        opts = []
        for proto in pkt.findall("proto"):
            if proto.get("name") != "mptcpspec":
                continue
            fields: dict[str, list] = {}
            for f in proto.iter("field"):
                fields.setdefault(f.get("name"), []).append((f.get("show"), f.get("value")))
            opts.append(fields)
        if opts:
            frames[num] = opts
    return frames


def our_view(path: Path) -> dict[int, list]:
    from mptcpspec.capture.packets import decode_packet
    from mptcpspec.capture.pcap import read_records

    frames = {}
    for num, rec in enumerate(read_records(path), 1):
        pkt = decode_packet(rec)
        if pkt is None or not pkt.options:
            continue
        mine = [
            o
            for o in decode_tcp_options(pkt.options, strict=False).options
            if (o.kind if isinstance(o, MalformedOption) else o.KIND) == KIND_MPTCP
        ]
        if mine:
            frames[num] = mine
    return frames


def expected(opt) -> tuple[str, dict[str, object]]:
    """Format and {plugin field name: expected shows} for one decoded option."""
    fmt = snake(type(opt).__name__)
    p = f"mptcpspec.{fmt}."
    out: dict[str, object] = {}
    for f in dataclasses.fields(opt):
        v = getattr(opt, f.name)
        if v is None:
            continue
        if isinstance(v, ipaddress.IPv4Address):
            out[p + f.name] = [str(v)]
        elif isinstance(v, ipaddress.IPv6Address):
            out[p + f.name + "6"] = [str(v)]
        elif isinstance(v, bool):
            out[p + f.name] = ["1" if v else "0"]
        elif isinstance(v, enum.Flag):
            out[p + f.name] = [int(v)]
            for m in type(v):
                out[f"{p}{f.name}.{m.name.lower()}"] = ["1" if m in v else "0"]
        elif isinstance(v, int):
            out[p + f.name] = [int(v)]
        elif isinstance(v, bytes):
            if v:
                out[p + f.name] = [("hex", v.hex())]
        elif isinstance(v, tuple):
            out[p + f.name] = [int(x) for x in v]
        else:  # pragma: no cover
            raise AssertionError(f"unexpected value {v!r}")
    return fmt, out


def compare(path: Path, config: Path) -> int:
    theirs = plugin_view(path, config)
    mine = our_view(path)
    assert sorted(theirs) == sorted(mine), path.name
    n = 0
    for num, opts in mine.items():
        got = theirs[num]
        assert len(got) == len(opts), (path.name, num)
        for opt, g in zip(opts, got):
            n += 1
            if isinstance(opt, MalformedOption):
                assert "mptcpspec.format" not in g, (path.name, num, g)
                ((msg, _),) = g["mptcpspec.malformed"]
                err = opt.error
                if err.what != "TCP options":  # the length octet itself is unusable: the plugin's own words
                    assert msg.startswith(err.what) and msg.endswith(err.reason), (path.name, num, msg, str(err))
                continue
            fmt, want = expected(opt)
            assert g.get("mptcpspec.format") == [(fmt, g["mptcpspec.format"][0][1])], (path.name, num)
            have = {k: v for k, v in g.items() if k.startswith(f"mptcpspec.{fmt}.")}
            assert set(have) == set(want), (path.name, num, fmt, set(have) ^ set(want))
            for name, values in want.items():
                shows = have[name]
                assert len(shows) == len(values), (path.name, num, name, shows, values)
                conv = []
                for (show, value), w in zip(shows, values):
                    if isinstance(w, tuple):
                        conv.append(("hex", value))
                    elif isinstance(w, int):
                        conv.append(int(show, 0))
                    else:
                        conv.append(show)
                assert conv == values, (path.name, num, name, shows, values)
    return n


def captures() -> list:
    return [pytest.param(p, id=p.stem) for p in CAPTURES] + corpus_params(prefix="")


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wireshark-config")


@pytest.mark.parametrize("path", captures())
def test_plugin_equals_our_decode(path, config):
    assert compare(path, config) > 0


def test_plugin_on_synthetic_options(tmp_path, config):
    path = tmp_path / "synthetic.pcap"
    write_synthetic(path)
    n = compare(path, config)
    assert n >= 20
    # Subtypes tshark 4.0 does not know are decoded; malformed options carry the reason.
    text = tshark(
        "-r",
        str(path),
        "-Y",
        'mptcpspec.format == "mp_experimental"',
        "-T",
        "fields",
        "-e",
        "mptcpspec.mp_experimental.payload",
        config=config,
    )
    assert text.split() == ["0102030405"]
    text = tshark(
        "-r", str(path), "-Y", "mptcpspec.malformed", "-T", "fields", "-e", "mptcpspec.malformed", config=config
    )
    assert text.splitlines() == [
        "DSS.flags at offset 3: needs 1 octets, 0 left in the option",
        "MP_CAPABLE: length must be 12 or 20 (v0), or 4, 12, 20, 22 or 24 (v1)",
    ]
    # ... and raise Wireshark's expert info.
    text = tshark(
        "-r",
        str(path),
        "-Y",
        '_ws.expert.message contains "Malformed MPTCP option"',
        "-T",
        "fields",
        "-e",
        "frame.number",
        config=config,
    )
    assert len(text.split()) == 2


def test_filter_selects_exactly_packets_with_mptcp_options(config):
    path = DATA / "v4-two-subflows.pcap"
    got = tshark("-r", str(path), "-Y", "mptcpspec", "-T", "fields", "-e", "frame.number", config=config)
    assert [int(x) for x in got.split()] == sorted(our_view(path))


def test_export_cli_writes_the_plugin(tmp_path, config):
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "export", "wireshark", "-o", str(tmp_path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "mptcpspec.lua").read_text() == PLUGIN.read_text()
    assert f"tshark -X lua_script:{tmp_path / 'mptcpspec.lua'}" in r.stderr
