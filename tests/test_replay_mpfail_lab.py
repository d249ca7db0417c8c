"""MP_FAIL against the kernel (RFC 8684 §3.7), in the lab with a router between client and server.

The router is a middlebox that rewrites one payload octet of one client segment: an nftables rule
matches the segment by its first four payload octets and flips its first octet.  nftables 1.0.6
does not fix the TCP checksum after a raw payload write, so the rule makes up for the change in
the urgent pointer (the segment has no URG flag: the receiver ignores it): the TCP checksum stays
right, and only the DSS checksum, which covers the payload and not the TCP header, finds the
change.  The server requires DSS checksums (``net.mptcp.checksum_enabled=1``).

With one subflow (the server refuses joins) the kernel sends MP_FAIL; the replay echoes it, sends
an infinite mapping and goes on as plain TCP: the server reads the captured stream with that one
octet changed (what a fallback delivers).  With two, the kernel resets the subflow with MP_FAIL and
MP_TCPRST, and its data goes on the other: the server reads the stream exactly.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from lab import WHOLE_MTU, LabError, list_namespaces, need_lab
from lab.peer import pattern
from lab.router import RoutedLab
from mptcpspec.codec.options import Dss, MpFail
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.replay.plan import make_plan
from tests.test_replay_lab import replay
from tests.test_replay_peer_lab import UPLOAD, upload  # noqa: F401  (the 2 MB two-subflow capture)

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft", "tshark"))


def middlebox(prefix: bytes, source: str) -> str:
    """An nftables ruleset for the router: from ``source`` (one subflow), a segment to port 5201 whose
    payload starts with the four octets ``prefix`` gets its first octet flipped; the urgent
    pointer (zero, no URG flag) takes the difference, so the TCP checksum stays right."""
    a = int.from_bytes(prefix[:2], "big")
    b = a ^ 0xFF00
    urg = (a - b) % 0xFFFF  # one's complement: the sum of the segment's words is unchanged
    rules = [
        f"ip saddr {source} tcp dport 5201 tcp doff {d} @th,{32 * d},32 0x{prefix.hex()} "
        f"@th,{32 * d},16 set 0x{b:04x} @th,144,16 set 0x{urg:04x} counter"
        for d in range(5, 16)
    ]
    body = "\n        ".join(rules)
    chain = f"chain f {{\n        type filter hook forward priority 0;\n        {body}\n    }}"
    return f"table inet middlebox {{\n    {chain}\n}}\n"


def pick(capture: Path, subflow: int, after: int) -> tuple[int, bytes]:
    """The relative DSN and first four octets of a segment of ``subflow`` in the plan, the first
    past ``after`` whose four octets start no other segment."""
    plan = make_plan(capture)
    heads: dict[bytes, int] = {}
    for seg in plan.segments:
        heads[seg.data[:4]] = heads.get(seg.data[:4], 0) + 1
    seg = next(s for s in plan.segments if s.subflow == subflow and s.dsn > after and heads[s.data[:4]] == 1)
    return seg.dsn, seg.data[:4]


def mib(text: str) -> dict[str, int]:
    """The server's MPTCP counters that say what happened (``nstat -az``)."""
    names = ("DataCsumErr", "MPFailTx", "MPFailRx", "InfiniteMapTx", "InfiniteMapRx", "MPRstTx")
    return {n: int(v) for n, v in re.findall(r"MPTcpExt(\w+)\s+(\d+)", text) if n in names}


def rewritten(rules: str) -> int:
    """Segments the middlebox rewrote, from its counters (``nft list table``)."""
    return sum(int(n) for n in re.findall(r"counter packets (\d+)", rules))


def tshark(cap: Path, shown: str, *fields: str) -> list[list[str]]:
    args = ["tshark", "-r", str(cap), "-Y", shown, "-T", "fields"] + [x for f in fields for x in ("-e", f)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def dissected(cap: Path):
    """Our dissector's view of the server-side capture: its one connection's summary, the frames
    carrying MP_FAIL and the infinite mappings."""
    d = Dissection(cap)
    fails, infinite = [], []
    for info in d:
        for o in info.mptcp:
            if type(o) is MpFail:
                fails.append((info.number, str(info.packet.src), o.dsn))
            elif type(o) is Dss and o.data_level_length == 0 and o.dsn is not None:
                infinite.append((info.number, str(info.packet.src)))
    (conn,) = [c for c in d.connections() if c.stream is not None]
    return conn.summary(), fails, infinite


def server_result(srv, code: int, report: dict) -> dict:
    """The lab server's result; if it has none, what the replay said (the likelier culprit)."""
    try:
        return srv.result(timeout=20)
    except LabError as e:
        raise AssertionError(f"{e}; the replay: exit {code}, {report.get('reason')}, {report.get('events')}") from None


def test_one_subflow_mp_fail_infinite_mapping_and_plain_tcp_to_the_end(upload, tmp_path):  # noqa: F811
    dsn, prefix = pick(upload, 0, 300_000)
    with RoutedLab() as lab:
        names = [lab.ns(r) for r in ("client", "server", "router")]
        lab.run("server", "sysctl", "-qw", "net.mptcp.checksum_enabled=1")
        lab.run("server", "ip", "mptcp", "limits", "set", "subflows", "0")  # joins refused
        lab.router_nft(middlebox(prefix, "198.51.100.1"))
        got = tmp_path / "read"
        srv = lab.serve(reply=32768, timeout=60, out=got)  # its reply comes after the fallback
        cap = tmp_path / "server-side.pcap"
        for role in ("client", "server"):
            for pair in (0, 1):  # paced, so that tcpdump keeps up with the 2 MB
                lab.rate_limit(role, lab.dev(pair), "200mbit", burst=30000)
        with lab.capture(cap, ns="server", buffer_kib=65536, snaplen=WHOLE_MTU):
            code, report = replay(lab, upload, "198.51.100.2", wait="10")
        server = server_result(srv, code, report)
        rules = lab.run("router", "nft", "list", "table", "inet", "middlebox").stdout
        counters = lab.run("server", "nstat", "-az").stdout
        assert "mptcpspec_replay" not in lab.run("client", "nft", "list", "tables").stdout
    print(report["fallback"], report["mp_fail"], sep="\n")
    print("\n".join(e for e in report["events"] if "MP_FAIL" in e or "infinite" in e))
    # the kernel found the checksum wrong, sent MP_FAIL, took our echo and our infinite mapping
    assert mib(counters) == dict(DataCsumErr=1, MPFailTx=1, MPFailRx=1, InfiniteMapTx=0, InfiniteMapRx=1, MPRstTx=0), (
        counters
    )
    assert rewritten(rules) >= 1, rules  # the middlebox changed the segment
    assert code == 0 and report["ok"], report["reason"]
    assert report["data_delivered"] == UPLOAD and not report["tcp"] and report["checksums"]
    assert report["server_data"] == 32768 and server["replied"] == 32768  # plain TCP data, taken in sequence
    want = bytearray(pattern(UPLOAD))
    want[dsn - 1] ^= 0xFF
    data = got.read_bytes()
    assert len(data) == UPLOAD and data == bytes(want), [i for i in range(len(data)) if data[i] != want[i]][:5]
    assert server["length"] == UPLOAD and server["sha256"] == hashlib.sha256(want).hexdigest() and not server["reset"]
    assert report["fallback"].startswith("MP_FAIL: a DSS checksum failed on the way; infinite mapping from DSN ")
    assert f"subflow 0 at DSN {dsn} (relative): echoed; infinite mapping sent" in report["mp_fail"]
    assert report["subflows"][0]["result"] == "closed"
    # tshark 4.0: the kernel's MP_FAIL, our echo, our infinite mapping; no TCP checksum error
    fails = tshark(cap, "tcp.options.mptcp.subtype == 6", "ip.src", "tcp.options.mptcp.rawdataseqno")
    assert [src for src, _ in fails] == ["198.51.100.2", "198.51.100.1"], fails
    assert fails[0][1] == fails[1][1]
    inf = tshark(cap, "mptcp.dss.infinite_mapping", "ip.src", "tcp.options.mptcp.datalvllen")
    assert [src for src, _ in inf] == ["198.51.100.1"], inf
    assert not tshark(cap, "tcp.checksum.status == 0", "frame.number")
    # our dissector: the one DSS checksum found wrong, the MP_FAIL and the infinite mapping
    summary, ours_fail, ours_inf = dissected(cap)
    print(summary.checks)
    assert ("DSS checksum", "MISMATCH", 1) in summary.checks, summary.checks
    assert [c for c in summary.checks if c[1] not in ("VERIFIED", "MISMATCH")] == [], summary.checks
    assert [src for _, src, _ in ours_fail] == ["198.51.100.2", "198.51.100.1"] and ours_fail[0][2] == ours_fail[1][2]
    assert [src for _, src in ours_inf] == ["198.51.100.1"]
    assert str(ours_fail[0][2]) == fails[0][1] or f"{ours_fail[0][2]}" in fails[0][1]
    assert not set(list_namespaces()) & set(names)


def test_two_subflows_the_kernel_resets_the_bad_one_and_the_other_carries_its_data(upload, tmp_path):  # noqa: F811
    dsn, prefix = pick(upload, 1, 300_000)
    with RoutedLab() as lab:
        names = [lab.ns(r) for r in ("client", "server", "router")]
        lab.run("server", "sysctl", "-qw", "net.mptcp.checksum_enabled=1")
        lab.router_nft(middlebox(prefix, "203.0.113.1"))
        got = tmp_path / "read"
        srv = lab.serve(reply=0, timeout=60, out=got)
        cap = tmp_path / "server-side.pcap"
        for role in ("client", "server"):
            for pair in (0, 1):  # paced, so that tcpdump keeps up with the 2 MB
                lab.rate_limit(role, lab.dev(pair), "200mbit", burst=30000)
        with lab.capture(cap, ns="server", buffer_kib=65536, snaplen=WHOLE_MTU):
            code, report = replay(lab, upload, "198.51.100.2", wait="10")
        server = server_result(srv, code, report)
        rules = lab.run("router", "nft", "list", "table", "inet", "middlebox").stdout
        counters = lab.run("server", "nstat", "-az").stdout
        assert "mptcpspec_replay" not in lab.run("client", "nft", "list", "tables").stdout
    # the kernel found the checksum wrong on a joined connection: MP_FAIL on its reset of the subflow
    print(mib(counters))
    assert mib(counters) == dict(DataCsumErr=1, MPFailTx=1, MPFailRx=0, InfiniteMapTx=0, InfiniteMapRx=0, MPRstTx=1), (
        counters
    )
    print(report["mp_fail"])
    print("\n".join(e for e in report["events"] if "MP_FAIL" in e or "reset" in e))
    assert rewritten(rules) >= 1, rules
    assert code == 0 and report["ok"], report["reason"]
    assert report["data_delivered"] == UPLOAD and report["fallback"] is None
    data = got.read_bytes()
    assert data == pattern(UPLOAD) and not server["reset"]
    assert f"subflow 1 at DSN {dsn} (relative): with the server's reset of the subflow" in report["mp_fail"]
    first, second = report["subflows"]
    assert first["result"] == "closed" and second["result"].startswith("reset"), report["subflows"]
    assert "MIDDLEBOX_INTERFERENCE" in second["result"]
    shown = "tcp.flags.reset == 1 && tcp.options.mptcp.subtype == 6"
    rst = tshark(cap, shown, "ip.src", "tcp.options.mptcp.rst_reason")
    assert rst and rst[0][0] == "198.51.100.2", rst
    assert not set(list_namespaces()) & set(names)
