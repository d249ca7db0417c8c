"""Differential test of ``mptcpspec dissect`` against tshark 4.0 on captures of every encapsulation.

The captures are in tests/data/encap (tests/data/README.md, "Encapsulated captures"):
``tests/data/make_encap.py`` wraps the IP packets of the kernel's two-subflow captures in PPP,
PPP in HDLC framing, PPPoE, raw IP, QinQ, MPLS, GRE, IP in IP, VXLAN, Geneve and GTP-U, and the
kernel lab made two captures of MPTCP over VXLAN tunnels (``lab.tunnels``).  Each file is first
checked with tshark alone: tshark decodes the inner TCP and MPTCP of every frame as it does the
frame's source (the same ``tcp.stream``, ``mptcp.stream`` and option subtypes), and its
``-z conv,tcp`` lists the inner flows.  Then every field of the differential set
(:data:`tests.test_tshark_dissect.NAMES`, which holds every field of Wireshark's we have, the
encapsulations' own among them once they are in ``FIELDS``) must print what tshark prints, cell
for cell, with the same allowances as there.

tshark 4.0 keys ``tcp.stream`` (and so ``mptcp.stream``) by the innermost addresses and ports
only: the same inner flow in two tunnels is one stream.  A test holds it to that and us to tshark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from mptcpspec.dissect.fields import FIELDS
from tests.conftest import DATA, need_tshark
from tests.test_tshark_dissect import NAMES, compare
from tests.tshark_fields import tshark_mptcp_fields

sys.path.insert(0, str(DATA))
import make_encap  # noqa: E402

ENCAP = DATA / "encap"
#: The encapsulations' own fields, by tshark 4.0's names (``pppoe.session_id``: 4.0 has no
#: ``pppoes.session_id``); each is compared once ``FIELDS`` has it.
ENCAP_FIELDS = (
    "eth.type",
    "vlan.id",
    "vlan.etype",
    "ieee8021ad.id",
    "mpls.label",
    "mpls.bottom",
    "gre.proto",
    "gre.key",
    "gre.sequence_number",
    "ip.proto",
    "ipv6.nxt",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "vxlan.vni",
    "geneve.vni",
    "gtp.message",
    "gtp.teid",
    "pppoe.session_id",
    "ppp.protocol",
)
COMPARED = NAMES + [n for n in ENCAP_FIELDS if n in FIELDS and n not in NAMES]
#: The fields that tell one tunnel from another (the outer addresses among them).
TUNNEL_IDS = (
    "vlan.id",
    "ieee8021ad.id",
    "mpls.label",
    "gre.key",
    "vxlan.vni",
    "geneve.vni",
    "gtp.teid",
    "pppoe.session_id",
    "udp.srcport",
)
STREAMS = ("tcp.stream", "mptcp.stream", "tcp.options.mptcp.subtype")
ADDRESSES = ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport", "frame.protocols")


def built_files() -> list[str]:
    return [f"{e.name}.pcap" for e in make_encap.ENCAPS]


def lab_files() -> list[str]:
    return [f"{name}.pcap" for name in make_encap.LAB]


def all_files() -> list:
    return [pytest.param(ENCAP / n, id=n.removesuffix(".pcap")) for n in built_files() + lab_files()]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wireshark-config")


def tshark(path: Path, config_dir: Path, fields) -> dict[int, dict[str, list[str]]]:
    return tshark_mptcp_fields(path, list(fields), config_dir=config_dir)


def conversations(path: Path, config_dir: Path) -> Counter:
    """tshark's ``-z conv,tcp``: (endpoint A, endpoint B, frames A→B, frames B→A) of each conversation."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-q", "-z", "conv,tcp"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)},
    ).stdout
    rows = [line.split() for line in out.splitlines() if " <-> " in line]
    return Counter((c[0], c[2], int(c[3]), int(c[6])) for c in rows)


def inner_endpoints(row: dict[str, list[str]]) -> tuple[str, str]:
    """The innermost (source, destination) ``address:port`` of a frame, from tshark's fields."""
    stack = row["frame.protocols"][0].split(":")
    inner = stack[stack.index("tcp") - 1]
    src, dst = (row["ip.src"], row["ip.dst"]) if inner == "ip" else (row["ipv6.src"], row["ipv6.dst"])
    return f"{src[-1]}:{row['tcp.srcport'][0]}", f"{dst[-1]}:{row['tcp.dstport'][0]}"


# ---------------------------------------------------------------------------------- the files


def test_the_files_are_the_documented_ones():
    assert sorted(p.name for p in ENCAP.iterdir()) == sorted(built_files() + lab_files())
    sizes = {p.name: p.stat().st_size for p in ENCAP.iterdir()}
    assert all(s < 200_000 for s in sizes.values()), sizes
    readme = (DATA / "README.md").read_text()
    section = readme[readme.index("## Encapsulated captures") :]
    missing = [n for n in sizes if f"`{n}`" not in section]
    assert not missing, f"tests/data/README.md does not describe {missing}"


def test_the_committed_captures_are_what_make_encap_makes():
    packets = make_encap.inner_packets()
    differ = [n for n in built_files() if (ENCAP / n).read_bytes() != make_encap.build(n[:-5], packets)]
    assert not differ, f"run python3 tests/data/make_encap.py: {differ} differ"


def test_make_encap_check_mode_agrees():
    r = subprocess.run([sys.executable, str(DATA / "make_encap.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------------- tshark alone


def _source_rows(config_dir: Path, encap: make_encap.Encap) -> list[dict[str, list[str]]]:
    """tshark's STREAMS of the source frames, in the order make_encap writes them, with the stream
    numbers an IPv6 connection after an IPv4 one gets (those of the IPv4 capture added)."""
    rows: list[dict[str, list[str]]] = []
    offset = {"tcp.stream": 0, "mptcp.stream": 0}
    for name, family in zip(make_encap.SOURCES, (4, 6)):
        if family not in encap.families:
            continue
        table = tshark(DATA / name, config_dir, STREAMS)
        for n in sorted(table):
            row = dict(table[n])
            for f, k in offset.items():
                row[f] = [str(int(v) + k) for v in row[f]]
            rows.append(row)
        for f in offset:
            offset[f] += len({v for r in table.values() for v in r[f]})
    return rows


@pytest.mark.parametrize("encap", make_encap.ENCAPS, ids=lambda e: e.name)
def test_tshark_decodes_the_inner_mptcp_as_in_the_source(encap, config_dir):
    need_tshark()
    path = ENCAP / f"{encap.name}.pcap"
    expected = _source_rows(config_dir, encap)
    got = tshark(path, config_dir, STREAMS)
    assert len(got) == len(expected)
    bad = [n for n, want in enumerate(expected, 1) if {f: got[n][f] for f in STREAMS} != want]
    assert not bad, f"{path.name}: tshark decodes frames {bad[:10]} otherwise than their sources"
    assert all(r["tcp.options.mptcp.subtype"] for r in got.values())
    assert any(r["mptcp.stream"] for r in got.values())
    assert_checksums_good(path)

    want: Counter = Counter()
    for name, family in zip(make_encap.SOURCES, (4, 6)):
        if family in encap.families:
            want += conversations(DATA / name, config_dir)
    assert conversations(path, config_dir) == want
    assert len(want) == 2 * len(encap.families)


def assert_checksums_good(path: Path) -> None:
    """tshark, validating them, finds no bad IPv4 header or UDP checksum (0: bad, 1: good)."""
    prefs = {"ip.check_checksum": True, "udp.check_checksum": True}
    fields = ["ip.checksum.status", "udp.checksum.status", "frame.protocols"]
    rows = tshark_mptcp_fields(path, fields, prefs).values()
    assert not [r for r in rows if "0" in r["ip.checksum.status"] + r["udp.checksum.status"]]
    over_v6 = [r["udp.checksum.status"] for r in rows if "ipv6:udp" in r["frame.protocols"][0]]
    assert all(status == ["1"] for status in over_v6)


def check_lab_capture(path: Path, config_dir: Path, client_endpoint: str) -> None:
    """tshark decodes a VXLAN capture of the lab as one MPTCP connection of two subflows, the first
    from ``client_endpoint`` (the server's view of it), one tunnel (VNI) per subflow."""
    rows = tshark(path, config_dir, STREAMS + ADDRESSES + ("vxlan.vni",))
    assert all(r["tcp.stream"] and r["tcp.options.mptcp.subtype"] and r["vxlan.vni"] for r in rows.values())
    assert {v for r in rows.values() for v in r["mptcp.stream"]} == {"0"}
    vni: dict[str, set] = defaultdict(set)
    flows: dict[str, set] = defaultdict(set)
    for r in rows.values():
        (stream,) = r["tcp.stream"]
        vni[stream].update(r["vxlan.vni"])
        flows[stream].add(frozenset(inner_endpoints(r)))
    assert sorted(vni) == ["0", "1"]
    assert all(len(v) == 1 for v in vni.values()) and vni["0"] != vni["1"]
    assert all(len(f) == 1 for f in flows.values())
    (first,) = flows["0"]
    assert client_endpoint in first
    conv = conversations(path, config_dir)
    assert {frozenset(c[:2]) for c in conv} == {f for fs in flows.values() for f in fs}
    assert sum(c[2] + c[3] for c in conv) == len(rows)
    assert_checksums_good(path)


@pytest.mark.parametrize("name", sorted(make_encap.LAB))
def test_tshark_decodes_the_lab_captures(name, config_dir):
    need_tshark()
    family = make_encap.LAB[name][0]
    from lab.tunnels import OVERLAY

    client = OVERLAY[("client", 0, family)]
    rows = tshark(ENCAP / f"{name}.pcap", config_dir, ("tcp.srcport", "tcp.flags.syn", "tcp.flags.ack"))
    port = next(r["tcp.srcport"][0] for r in rows.values() if r["tcp.flags.syn"] == ["1"])
    check_lab_capture(ENCAP / f"{name}.pcap", config_dir, f"{client}:{port}")


@pytest.mark.parametrize("path", all_files())
def test_streams_are_per_inner_flow(path, config_dir):
    """In tshark's output each tcp.stream is one inner flow, in one tunnel per direction, and the
    subflows of a connection share its mptcp.stream."""
    need_tshark()
    rows = tshark(path, config_dir, STREAMS + ADDRESSES + TUNNEL_IDS)
    flow_of: dict[str, set] = defaultdict(set)
    tunnel_of: dict[tuple, set] = defaultdict(set)
    mptcp_of: dict[str, set] = defaultdict(set)
    for r in rows.values():
        (stream,) = r["tcp.stream"]
        src, dst = inner_endpoints(r)
        flow_of[stream].add(frozenset((src, dst)))
        tunnel_of[(stream, src)].add(tuple(tuple(r[f]) for f in TUNNEL_IDS))
        mptcp_of[stream].update(r["mptcp.stream"])
    assert all(len(f) == 1 for f in flow_of.values())
    assert len({next(iter(f)) for f in flow_of.values()}) == len(flow_of)
    assert all(len(t) == 1 for t in tunnel_of.values()), "a tunnel id changes within a direction of a flow"
    ids: dict[str, set] = defaultdict(set)
    for (stream, _), t in tunnel_of.items():
        ids[stream].update(t)
    if any(any(i) for t in ids.values() for i in t):
        shared = [(a, b) for a in ids for b in ids if a < b and ids[a] & ids[b]]
        assert not shared, f"tcp.streams in one tunnel: {shared}"
    assert all(len(m) == 1 for m in mptcp_of.values())
    per_connection = Counter(next(iter(m)) for m in mptcp_of.values())
    assert set(per_connection.values()) == {2}, per_connection


KEYING = ("vxlan", "qinq", "mpls", "gre-key-seq", "pppoe", "gtpu-ext", "6in4")


def write_two_tunnels(path: Path, name: str) -> None:
    """The first subflow of ``name``'s first connection, each packet twice: in its own tunnel and
    in that of flow 3 (other tunnel ids and outer addresses), 10 ns later."""
    encap = make_encap.BY_NAME[name]
    wrap = encap.make()
    packets = [p for p in make_encap.inner_packets() if p.family in encap.families]
    first = [p for p in packets if p.flow == packets[0].flow]
    records = []
    for p in first:
        for flow, dt in ((p.flow, 0), (3, 10)):
            q = make_encap.Inner(p.timestamp_ns + dt, p.ip, p.family, flow, p.from_client, len(records))
            records.append((q.timestamp_ns, wrap(q)))
    path.write_bytes(make_encap.pcap_bytes(encap.linktype, iter(records)))


@pytest.mark.parametrize("name", KEYING)
def test_one_inner_flow_in_two_tunnels_is_one_stream(name, tmp_path, config_dir):
    """tshark keys tcp.stream and mptcp.stream by the inner addresses and ports only; so do we."""
    need_tshark()
    path = tmp_path / f"{name}-two-tunnels.pcap"
    write_two_tunnels(path, name)
    key = (*TUNNEL_IDS, "ip.src", "ipv6.src")
    rows = tshark(path, config_dir, ("tcp.stream", "mptcp.stream", *key))
    assert {v for r in rows.values() for v in r["tcp.stream"]} == {"0"}
    assert {v for r in rows.values() for v in r["mptcp.stream"]} == {"0"}
    tunnels = {tuple(tuple(r[f]) for f in key) for r in rows.values()}
    assert len(tunnels) == 4  # two tunnels, two directions
    names = [
        n for n in COMPARED if n.startswith(("frame.", "ip.", "ipv6.", "tcp.")) or n in ("mptcp.stream", *ENCAP_FIELDS)
    ]
    compare(path, config_dir, names)


# ---------------------------------------------------------------------------------- against tshark


@pytest.mark.parametrize("path", all_files())
def test_every_field_equal_to_tsharks(path, config_dir):
    need_tshark()
    frames, equal, allowed = compare(path, config_dir, COMPARED)
    encap = sorted(n for n in equal if n in ENCAP_FIELDS)
    print(
        f"\n{path.name}: {frames} frames, {sum(equal.values())} non-empty values equal to tshark's in "
        f"{len(equal)} fields (encapsulation: {', '.join(encap) or 'none'}); {allowed} allowed difference(s)"
    )
    assert sum(equal.values()) > 0


# ---------------------------------------------------------------------------------- in the lab


@pytest.mark.lab
@pytest.mark.parametrize(("family", "underlay"), [(4, 4), (6, 6)], ids=["v4-over-v4", "v6-over-v6"])
def test_fresh_vxlan_capture_against_tshark(family, underlay, tmp_path, config_dir, lab_host):
    from lab.tunnels import need_vxlan, vxlan_capture

    need_vxlan()
    need_tshark()
    path = tmp_path / "vxlan.pcap"
    server, client, cap = vxlan_capture(path, family=family, underlay=underlay)
    assert client["subflows"] == 2 and cap.stats.get("dropped") == 0
    host, port = server["peer"]
    check_lab_capture(path, config_dir, f"{host}:{port}")
    frames, equal, _ = compare(path, config_dir, COMPARED)
    assert frames == cap.stats["captured"]


@pytest.mark.lab
def test_the_vxlan_lab_removes_everything_when_the_block_raises(lab_host):
    from lab import list_namespaces
    from lab.tunnels import VxlanLab, need_vxlan

    need_vxlan()
    with pytest.raises(RuntimeError, match="inside the lab"):
        with VxlanLab() as lab:
            names = set(lab.ns_names.values())
            assert "vx1" in lab.ip("client", "-o", "link", "show", "vx1").stdout
            raise RuntimeError("inside the lab")
    assert not names & set(list_namespaces())
