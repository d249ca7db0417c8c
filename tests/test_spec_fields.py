"""The fields of spec/ (``mptcpspec.<format>.<field>``) are the generated Lua plugin's, name for name
and value for value: tshark 4.0 runs the plugin over the committed captures and the synthetic one of
the option test, and ``mptcpspec dissect -T fields`` prints the same cells, frame by frame."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from mptcpspec.dissect.fields import FIELDS
from mptcpspec.export.regen import EXPORT_GENERATED
from tests.conftest import CAPTURES, need_tshark
from tests.dissect_helpers import cli
from tests.test_tshark_options import write_synthetic

PLUGIN = EXPORT_GENERATED / "mptcpspec.lua"
SPEC = [n for n, f in FIELDS.items() if f.source == "spec"]


def plugin_names() -> list[str]:
    return re.findall(r'ProtoField\.\w+\("(mptcpspec\.[^"]+)"', PLUGIN.read_text())


def test_every_plugin_field_is_a_dissector_field():
    # mptcpspec.malformed, the plugin's message for an option no format accepts, is the one left out
    assert SPEC == [n for n in plugin_names() if n != "mptcpspec.malformed"]
    assert len(SPEC) > 70
    assert "mptcpspec.mp_prio.backup" in SPEC and "mptcpspec.add_addr.address6" in SPEC
    listed = cli("dissect", "--list-fields").stdout.splitlines()
    assert (
        "mptcpspec.dss.flags.data_fin\tspec\tF: DATA_FIN; the mapping's last data-level octet is the DATA_FIN."
        in listed
    )


def cells(cmd: list[str], env: dict[str, str] | None = None) -> list[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "Lua: Error" not in r.stderr, r.stderr
    return r.stdout.splitlines()


def both(path, tmp_path, fields: list[str], *extra: str) -> tuple[list[str], list[str]]:
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    args = ["-T", "fields", "-E", "occurrence=a", *extra]
    for f in ["frame.number", *fields]:
        args += ["-e", f]
    theirs = cells([need_tshark(), "-n", "-X", f"lua_script:{PLUGIN}", "-r", str(path), *args], env)
    ours = cli("dissect", "-r", str(path), *args)
    assert ours.returncode == 0, ours.stderr
    return theirs, ours.stdout.splitlines()


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in CAPTURES] + ["synthetic"])
def test_values_equal_the_plugins(path, tmp_path):
    if path == "synthetic":
        path = tmp_path / "synthetic.pcap"
        write_synthetic(path)
    theirs, ours = both(path, tmp_path, SPEC)
    assert len(theirs) == len(ours)
    shown = 0
    for t, o in zip(theirs, ours):
        assert t == o, [(n, a, b) for n, a, b in zip(["frame.number", *SPEC], t.split("\t"), o.split("\t")) if a != b]
        shown += sum(1 for x in t.split("\t")[1:] if x)
    assert shown > 20


def test_filters_select_what_the_plugins_select(tmp_path):
    path = tmp_path / "synthetic.pcap"
    write_synthetic(path)
    for expr in (
        "mptcpspec",
        'mptcpspec.format == "mp_prio"',
        "mptcpspec.mp_prio.backup == 1",
        "mptcpspec.subtype == 0x5",
        "mptcpspec.dss.flags.data_fin",
        "mptcpspec.add_addr.port > 0",
        "mptcpspec.mp_tcp_rst.reason >= 1",
        'mptcpspec.length == 12 && mptcpspec.format == "mp_fail"',
    ):
        theirs, ours = both(path, tmp_path, [], "-Y", expr)
        assert theirs and theirs == ours, expr
