"""The replay engine against the Linux kernel's MPTCP server, in the lab.

Each test replays the client side of a committed kernel capture (tests/data) from the lab's client
namespace against a fresh kernel server in the server namespace, whose application records what it
reads.  The server must read exactly the captured client byte stream; a capture made on the server
side during the replay, dissected by mptcpspec, shows the server's view: every subflow, every HMAC
verified, both ends closed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import Lab, expected, need_lab
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.replay.plan import make_plan
from tests.conftest import DATA, ROOT, need_tshark

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "ss", "nft"))


def replay(lab: Lab, capture: str | Path, target: str, *extra: str, wait: str = "5", timeout: float = 60):
    """``mptcpspec replay --json`` of ``capture`` (a file of tests/data, or a path) in the client
    namespace, ``wait`` its --timeout: (exit status, the report)."""
    r = lab.run(
        "client",
        sys.executable,
        "-m",
        "mptcpspec",
        "replay",
        "-r",
        str(DATA / capture),
        "--target",
        target,
        "--timeout",
        wait,
        "--json",
        *extra,
        check=False,
        timeout=timeout,
    )
    assert r.stdout.strip(), f"no report (exit {r.returncode}): {r.stderr[-2000:]}"
    return r.returncode, json.loads(r.stdout)


def server_view(path: Path):
    d = Dissection(path)
    for _ in d:
        pass
    (conn,) = [c for c in d.connections() if c.stream is not None]
    return conn.summary()


def check_clean(
    report: dict, server: dict, summary, subflows: int, length: int = 32768, app_subflows: tuple[int, ...] | None = None
) -> None:
    assert report["ok"], report["reason"]
    assert report["data_delivered"] == length
    assert server["length"] == length and server["sha256"] == expected(length, 0)["sha256"]
    # The server application's own socket had the subflows (MPTCP_TCPINFO) and read a clean EOF.
    # (Where the server closed a subflow early, the application may see one fewer: ``app_subflows``.)
    assert server["subflows"] in ((subflows,) if app_subflows is None else app_subflows), server
    assert not server["reset"], server
    assert len(summary.subflows) == subflows
    assert all(sf.state == "A=ESTABLISHED B=ESTABLISHED" for sf in summary.subflows), summary.subflows
    assert not [c for c in summary.checks if c[1] != "VERIFIED"], summary.checks
    assert (summary.client_state, summary.server_state) == ("M_CLOSED", "M_CLOSED")


def run_case(
    lab: Lab,
    tmp_path: Path,
    capture: str,
    target: str,
    subflows: int,
    *extra: str,
    family: int = 4,
    app_subflows: tuple[int, ...] | None = None,
):
    srv = lab.serve(family=family, reply=32768, timeout=30)
    cap = tmp_path / f"{capture}-server-side.pcap"
    with lab.capture(cap, ns="server"):
        code, report = replay(lab, capture, target, *extra)
    assert code == 0, report
    server = srv.result(timeout=10)
    summary = server_view(cap)
    check_clean(report, server, summary, subflows, app_subflows=app_subflows)
    return report, summary


def test_two_subflows_rekeyed_twice_in_a_row(tmp_path):
    with Lab() as lab:
        keys = set()
        for _ in range(2):
            report, summary = run_case(lab, tmp_path, "v4-two-subflows.pcap", "198.51.100.2", 2)
            assert report["client_key"] == summary.client_key  # the captured key, kept
            keys.add(summary.server_key)
        assert len(keys) == 2, "the live server picked a new key each time, and both replays worked"


@pytest.mark.parametrize("family", [4, 6])
def test_each_subflow_leaves_by_the_route_of_its_source(tmp_path, family):
    """The join goes from the client's second address to the server's first: the lab's rule
    ("from <second address> table 101") routes it over the second pair, as it routes the kernel's
    own subflow bound to that address.  A raw socket routes by its own address, none: every packet
    of the join went out of the first pair's veth, over the path the other subflow takes."""
    capture, target = {4: ("v4-two-subflows.pcap", "198.51.100.2"), 6: ("v6-two-subflows.pcap", "2001:db8:1::2")}[
        family
    ]
    second = Lab.addr("client", 1, family)
    with Lab() as lab:
        srv = lab.serve(family=family, reply=32768, timeout=30)
        paths = [tmp_path / f"pair{pair}.pcap" for pair in (0, 1)]
        with (
            lab.capture(paths[0], ns="client", iface=lab.dev(0), bpf=f"tcp and src host {second}") as first_pair,
            lab.capture(paths[1], ns="client", iface=lab.dev(1), bpf=f"tcp and src host {second}") as second_pair,
        ):
            code, report = replay(lab, capture, target)
            assert code == 0, json.dumps(report, indent=1)
            srv.result(timeout=10)
    join = next(s for s in report["subflows"] if s["local"].startswith(second) or s["local"].startswith(f"[{second}]"))
    assert join["sent"] > 10
    assert first_pair.stats["captured"] == 0, first_pair.stats
    assert second_pair.stats["captured"] == join["sent"], (second_pair.stats, join)


def test_checksums(tmp_path):
    with Lab(checksum=True) as lab:
        report, summary = run_case(lab, tmp_path, "v4-checksum.pcap", "198.51.100.2", 2)
        assert summary.checksum
        assert any(what == "DSS checksum" and n > 10 for what, _, n in summary.checks)


def test_ipv6(tmp_path):
    with Lab() as lab:
        run_case(lab, tmp_path, "v6-two-subflows.pcap", "2001:db8:1::2", 2, family=6)


def test_add_addr_driven_join(tmp_path):
    with Lab() as lab:
        lab.endpoint_add("server", "203.0.113.2", "signal", id=5)
        report, summary = run_case(
            lab, tmp_path, "v4-add-addr.pcap", "198.51.100.2", 3, "--map", "203.0.113.2=203.0.113.2"
        )
        assert any("ADD_ADDR" in e for _, e in summary.history)
        # The capture's client switched a subflow to backup halfway: the replay does it at the same point.
        assert any(e == "client MP_PRIO backup=1" for _, e in summary.history), summary.history
        assert any(s["remote"] == "203.0.113.2:5201" and s["result"] == "closed" for s in report["subflows"])


def test_loss_on_one_path(tmp_path):
    """10% of the TCP packets on pair 1 dropped both ways at random (nftables; this kernel has no
    netem), and every third data segment the client sends on pair 1 on top of that: the join on pair 1
    carries only about six of them, which random loss alone missed in three runs one time in ten."""
    with Lab() as lab:
        lab.run(
            "server",
            "nft",
            "-f",
            "-",
            input="""table inet lossy {
  chain i {
    type filter hook input priority 0;
    iifname "veth1" meta l4proto tcp numgen random mod 100 < 10 drop;
    iifname "veth1" tcp flags & (syn | fin | rst) == 0 meta length > 300 numgen inc mod 3 == 2 counter drop;
  }
  chain o { type filter hook output priority 0; oifname "veth1" meta l4proto tcp numgen random mod 100 < 10 drop; }
}""",
        )
        for _ in range(3):
            srv = lab.serve(reply=32768, timeout=30)
            code, report = replay(lab, "v4-add-addr.pcap", "198.51.100.2", "--map", "203.0.113.2=203.0.113.2")
            assert code == 0, json.dumps(report, indent=1)
            server = srv.result(timeout=15)
            assert server["sha256"] == expected(32768, 0)["sha256"]
            pair1 = [s for s in report["subflows"] if s["remote"].startswith("203.0.113.2:")]
            assert pair1 and sum(s["retransmitted"] for s in pair1) > 0, report["subflows"]
        counted = lab.run("server", "nft", "list", "chain", "inet", "lossy", "i").stdout
        assert int(re.search(r"counter packets (\d+)", counted)[1]) >= 3, counted


def test_fastclose_as_captured(tmp_path):
    with Lab() as lab:
        srv = lab.serve(reply=0, timeout=30)
        code, report = replay(lab, "v4-fastclose.pcap", "198.51.100.2")
        server = srv.result(timeout=10)
        assert code == 0 and report["closure_state"] == "M_CLOSED"
        assert report["subflows"][0]["result"].startswith("reset (MP_FASTCLOSE sent)")
        assert server["length"] == 16384 and server["reset"]  # the application saw the abortive close


def test_target_that_does_not_answer(tmp_path):
    with Lab() as lab:
        t = time.monotonic()
        code, report = replay(lab, "v4-two-subflows.pcap", "198.51.100.2", "--map", "198.51.100.2=198.51.100.77")
        took = time.monotonic() - t
        assert code == 1 and not report["ok"]
        assert "sent nothing" in report["reason"] or "could not be opened" in report["reason"]
        assert took < 15
        tables = lab.run("client", "nft", "list", "tables").stdout
        assert "mptcpspec_replay" not in tables, tables


def test_raw_mode_rewrites_addresses_and_checksums(tmp_path):
    """--mode raw: every packet of both directions onto the interface, addresses rewritten, checksums right."""
    import subprocess

    with Lab() as lab:
        cap = tmp_path / "raw.pcap"
        with lab.capture(cap, ns="server", iface="veth0"):
            r = lab.run(
                "client",
                sys.executable,
                "-m",
                "mptcpspec",
                "replay",
                "--mode",
                "raw",
                "--json",
                "-r",
                str(DATA / "v4-two-subflows.pcap"),
                "--iface",
                "veth0",
                "--map",
                "198.51.100.1=198.51.100.11",
                "--map",
                "198.51.100.2=198.51.100.12",
                check=False,
            )
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        # 203.0.113.1 was not given: the packets to it are skipped, never sent.
        assert rep["sent"] > 60 and rep["skipped"] > 0
        d = Dissection(cap)
        infos = list(d)
        addrs = {str(i.packet.src) for i in infos if i.packet} | {str(i.packet.dst) for i in infos if i.packet}
        assert addrs <= {"198.51.100.11", "198.51.100.12", "203.0.113.1"}, addrs
        assert "198.51.100.12" in addrs
        s = d.connections()[0].summary()
        assert s.client_key == 0x828250EF85950F7C and not [c for c in s.checks if c[1] == "MISMATCH"]
        assert ("MP_CAPABLE echoed key", "VERIFIED", 2) in s.checks
        assert not [i for i in infos if i.packet and str(i.packet.dst) == "203.0.113.1"]
        tshark = need_tshark()  # skips with the reason (fails with CI=true) once the rest has passed
        out = subprocess.run(
            [
                tshark,
                "-r",
                str(cap),
                "-o",
                "tcp.check_checksum:TRUE",
                "-T",
                "fields",
                "-e",
                "tcp.checksum.status",
                "-Y",
                "tcp",
            ],
            capture_output=True,
            text=True,
        ).stdout
        assert set(out.split()) == {"1"}, "every TCP checksum must be good after the rewrite"


@pytest.mark.parametrize("timing", ["as-captured", "x4"])
def test_captured_timing(tmp_path, timing):
    """Paced as in the capture (or 4x faster): same data, clean close, and not faster than asked."""
    plan_span = max(s.time_ns for s in make_plan(DATA / "v4-two-subflows.pcap").segments) / 1e9
    assert plan_span > 0.005
    with Lab() as lab:
        srv = lab.serve(reply=32768, timeout=30)
        code, report = replay(lab, "v4-two-subflows.pcap", "198.51.100.2", "--timing", timing)
        server = srv.result(timeout=10)
        assert code == 0, report
        assert server["sha256"] == expected(32768, 0)["sha256"]
        factor = 1.0 if timing == "as-captured" else 4.0
        assert report["elapsed"] >= plan_span / factor * 0.9, (report["elapsed"], plan_span)


def test_fast_open(tmp_path):
    """The capture's second connection carried 1000 octets on its SYN (TCP Fast Open with MP_CAPABLE)."""
    with Lab(tfo=True) as lab:
        # The captured cookie is another server's: this one refuses the SYN data and gives its own cookie.
        srv = lab.serve(reply=4096, tfo=True, timeout=30)
        code, report = replay(lab, "v4-tfo.pcap", "198.51.100.2", "--stream", "1")
        server = srv.result(timeout=10)
        assert code == 0, report
        assert report["tfo"] == "SYN data not taken: sent after the handshake" and len(report["tfo_cookie"]) == 16
        assert server["length"] == 3000 and server["sha256"] == expected(3000, 0)["sha256"]
        # With the live server's cookie it takes the SYN data, mapped below the IDSN as in the capture.
        srv = lab.serve(reply=4096, tfo=True, timeout=30)
        cap = tmp_path / "tfo-server-side.pcap"
        with lab.capture(cap, ns="server"):
            code, again = replay(
                lab, "v4-tfo.pcap", "198.51.100.2", "--stream", "1", "--tfo-cookie", report["tfo_cookie"]
            )
        server = srv.result(timeout=10)
        assert code == 0, again
        assert again["tfo"] == "SYN data taken (1000 octets)" and again["data_delivered"] == 3000
        assert server["length"] == 3000 and server["sha256"] == expected(3000, 0)["sha256"]
        summary = server_view(cap)
        assert not [c for c in summary.checks if c[1] != "VERIFIED"], summary.checks
        assert (summary.client_state, summary.server_state) == ("M_CLOSED", "M_CLOSED")
        syn = next(i for i in Dissection(cap) if i.packet is not None and int(i.packet.flags) & 0x12 == 0x02)
        assert syn.packet.payload_len == 1000


def test_remove_addr_as_captured(tmp_path):
    """Halfway through, the capture's client removed its address id 3 (REMOVE_ADDR): the replay sends it
    at the same data point, the live server closes that subflow, and the rest goes on subflow 0."""
    with Lab() as lab:
        report, summary = run_case(lab, tmp_path, "v4-remove-addr.pcap", "198.51.100.2", 2, app_subflows=(1, 2))
        assert [e for _, e in summary.history] == ["client REMOVE_ADDR id(s) 3"]
        assert any("REMOVE_ADDR as in the capture: address id(s) 3" in e for e in report["events"])
        assert any(e.endswith("subflow 1: FIN from the server") for e in report["events"])
        joined = report["subflows"][1]
        assert joined["result"] == "closed" and 0 < joined["data_sent"] < 32768 // 2 + 1


def _shape(line: str) -> str:
    """A replay output line less what differs from run to run: times, the live server's key and
    token, how many packets went each way (ACKs), and how the server spread its reply over the
    subflows (the client's octets per subflow are the capture's, and stay)."""
    line = re.sub(r"\b\d+\.\d{3} s\b", "T s", line)
    line = re.sub(r"(server key|server|token) 0x[0-9a-f]+", r"\1 0xH", line)
    line = re.sub(r"sent \d+ \(retransmitted \d+\), received \d+", "sent N (retransmitted N), received N", line)
    return re.sub(r"out, \d+ in$", "out, N in", line)


def _run_manual_example(start: str) -> tuple[str, list[str], subprocess.CompletedProcess]:
    """The console block of docs/replay.md that begins with ``start``: its command, the lines it
    shows, and what the command did, run here against the kernel server (it must succeed)."""
    text = (ROOT / "docs" / "replay.md").read_text()
    block = text[text.index(start) :].split("```")[0]
    command, *shown = block.strip("\n").splitlines()
    with Lab() as lab:
        srv = lab.serve(reply=32768, timeout=30)
        argv = [str(ROOT / a) if a.startswith("tests/data/") else a for a in command[2:].split()]
        r = lab.run("client", sys.executable, "-m", *argv, check=False, timeout=60)
        srv.result(timeout=10)
    assert r.returncode == 0, r.stderr
    return command, shown, r


def test_the_manuals_replay_example_is_what_it_prints():
    """docs/replay.md shows a replay of v4-two-subflows.pcap (the README a shortened copy): run here
    against the kernel, it prints those lines, up to times, the server's key and packet counts."""
    command, shown, r = _run_manual_example("# mptcpspec replay -r tests/data/v4-two-subflows.pcap")
    readme = (ROOT / "README.md").read_text()
    assert command in readme
    events = [_shape(x) for x in r.stderr.splitlines() if x.strip()]
    report = [_shape(x) for x in r.stdout.splitlines() if x.strip()]
    want_events = [_shape(x) for x in shown if x.startswith("    ")]
    want_report = [_shape(x) for x in shown if not x.startswith("    ")]
    # Two things the live kernel does at its own pace, which the manual's run did not show:
    # - it sends its DATA_FIN on each subflow, and one that comes after we acknowledged the first
    #   is a repeat, acknowledged again (the closure machine's self-transition in M_TIME_WAIT);
    # - it may hold back the DATA_ACK of the last segment (its data still in the subflow's queue
    #   while its application holds the socket), and after two retransmission timeouts the replay
    #   sends that segment again at data level, on subflow 0, which then carries more octets.
    again = "    T s  connection: closure: rcv DATA_FIN -> M_TIME_WAIT"
    while events.count(again) > want_events.count(again):
        events.remove(again)
    resent = [e for e in events if "subflow 0: data-level retransmission" in e]
    if resent:
        events = [e for e in events if e not in resent]
        octets = [int(x) for x in re.findall(r"data (\d+) out", "\n".join(report))]
        want = [int(x) for x in re.findall(r"data (\d+) out", "\n".join(want_report))]
        assert sum(octets) > sum(want) and octets[1:] == want[1:], (report, want_report)
        report = [re.sub(r"data \d+ out", "data _ out", x) for x in report]
        want_report = [re.sub(r"data \d+ out", "data _ out", x) for x in want_report]
    assert report == want_report
    assert sorted(events) == sorted(want_events)
    # The README's copy: its lines are the manual's, less the ones it leaves out ("...").
    short = readme[readme.index(command) :].split("```")[0].strip("\n").splitlines()[1:]
    assert [x for x in short if x.strip() != "..."] == [x for x in shown if x in short]


def _numbers(line: str) -> str:
    """A fidelity line less its measured times and counts of late segments."""
    line = re.sub(r"\b\d+\.\d{3} ms\b", "T ms", line)
    return re.sub(r"\b\d+ later than\b", "N later than", line)


def test_the_manuals_fidelity_example_is_what_it_prints():
    """docs/replay.md's replay at the captured pace with --report-fidelity: run here against the
    kernel, it prints those lines, up to times, the server's key, packet counts and how late the
    data went (the lines of what was held back, and of a late SYN/ACK, come when they happen)."""
    start = "# mptcpspec replay -r tests/data/v4-two-subflows.pcap --target 198.51.100.2 --timing as-captured"
    command, shown, r = _run_manual_example(start)
    assert "--report-fidelity" in command
    optional = ("the live SYN/ACK came", "held back past their time", "the sender's own error")
    report = [_numbers(_shape(x)) for x in r.stdout.splitlines() if x.strip() and not any(o in x for o in optional)]
    want = [_numbers(_shape(x)) for x in shown if not any(o in x for o in optional)]
    if any("data-level retransmission" in e for e in r.stderr.splitlines()):  # see the test above
        report = [re.sub(r"data \d+ out", "data _ out", x) for x in report]
        want = [re.sub(r"data \d+ out", "data _ out", x) for x in want]
    assert report == want
