"""Live capture (``mptcpspec dissect -i``) in the kernel lab, against tcpdump capturing the same run.

Lab tests (``-m lab``) need root and the lab (they skip without, fail with ``CI=true``).  The
command runs inside a lab namespace (``ip netns exec``), as a user would, while the kernel
transfers over two subflows; tcpdump captures the same interface at the same time, and its file,
dissected by ``-r``, is what the live output must equal.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import pytest

from lab import Lab, need_lab
from mptcpspec.capture.pcap import CaptureReader
from mptcpspec.cli.common import CommandError
from mptcpspec.cli.live import capturing_on, parse_autostop
from tests.conftest import ROOT

OURS = [sys.executable, "-m", "mptcpspec", "dissect"]
FIELDS = (
    "frame.number frame.len frame.cap_len tcp.stream tcp.srcport tcp.dstport tcp.seq tcp.ack tcp.len tcp.flags "
    "mptcp.stream tcp.options.mptcp.subtype mptcp.dsn mptcp.ack mptcp.dss.dsn64 mptcp.join.hmac.status "
    "mptcp.echoed_key.status mptcp.subflow.kind mptcp.closure.client mptcp.closure.server mptcp.expert"
).split()
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def field_args() -> list[str]:
    return ["-T", "fields", *(x for f in FIELDS for x in ("-e", f))]


def start(lab: Lab, *args: str, role: str = "client") -> subprocess.Popen:
    """``mptcpspec dissect ARGS`` in a lab namespace; returns once it says it is capturing."""
    p = lab.popen(role, *OURS, *args, cwd=ROOT, env=ENV)
    err = b""
    deadline = time.monotonic() + 20
    while b"Capturing on" not in err:
        assert p.poll() is None and time.monotonic() < deadline, (err + p.stderr.read()).decode()
        if select.select([p.stderr], [], [], 0.5)[0]:
            err += os.read(p.stderr.fileno(), 4096)
    p.early_stderr = err  # type: ignore[attr-defined]
    return p


def finish(p: subprocess.Popen, sig: int | None = signal.SIGTERM, timeout: float = 20) -> tuple[int, str, str]:
    """Stop (with ``sig``) and wait: (status, stdout, stderr)."""
    if sig is not None:
        p.send_signal(sig)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode(), (p.early_stderr + err).decode()  # type: ignore[attr-defined]


def dissect_fields(path) -> str:
    r = subprocess.run([*OURS, "-r", str(path), *field_args()], capture_output=True, text=True, cwd=ROOT, check=True)
    return r.stdout


def frames(path) -> list[tuple[int, bytes, int]]:
    return [(f[1], f[2], f[3]) for f in CaptureReader(str(path)).frames()]


def two_subflows(lab: Lab, **kw) -> None:
    s, c = lab.transfer(size=30000, reply=20000, first=1000, wait_subflows=2, **kw)
    assert c["subflows"] == 2 and not s["reset"] and not c["reset"]


@pytest.fixture
def lab(lab_host):
    with Lab() as lab:
        lab.rate_limit_all()
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        yield lab


# ------------------------------------------------------------------------------------- no lab


def test_autostop_conditions():
    assert parse_autostop(["duration:1.5", "packets:10", "packets:3"]) == (3, 1.5)
    assert parse_autostop(None) == (None, None)
    for bad in ("filesize:10", "packets:0", "duration:x", "packets"):
        with pytest.raises(CommandError, match="expected duration:SECONDS or packets:N"):
            parse_autostop([bad])


def test_capturing_on_names_the_interfaces_as_tshark():
    assert capturing_on(["veth0"]) == "Capturing on 'veth0'"
    assert capturing_on(["veth0", "veth1"]) == "Capturing on 'veth0' and 'veth1'"
    assert capturing_on(["a", "b", "c"]) == "Capturing on 'a', 'b', and 'c'"


def test_usage_errors_of_a_live_capture():
    for argv, msg in (
        (["-i", "lo", "-r", "x.pcap"], "-r and -i cannot go together: read a file or capture live"),
        (["-i", "lo", "-2"], "-2 cannot go with -i: a live capture is read once"),
        (["-i", "lo", "-a", "size:3"], "-a size:3: expected duration:SECONDS or packets:N, more than 0"),
        (["-f", "tcp", "-r", "x.pcap"], "-f set(s) a live capture: give -i IFACE"),
    ):
        r = subprocess.run([*OURS, *argv], capture_output=True, text=True, cwd=ROOT)
        assert (r.returncode, r.stderr.splitlines()) == (2, [f"mptcpspec: error: {msg}"])
    # -c 0 is refused in tshark's words, as for a file
    r = subprocess.run([*OURS, "-i", "lo", "-c", "0"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    why = "argument -c/--count: The specified packet count is zero"
    assert r.stderr.splitlines()[-1] == f"mptcpspec dissect: error: {why}"


def test_libpcap_missing_is_one_line(monkeypatch):
    from mptcpspec.capture import live

    def no_library(name, *a, **kw):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(live, "_LIBRARY", [])
    monkeypatch.setattr(live.ctypes, "CDLL", no_library)
    with pytest.raises(live.LibpcapMissingError, match=r"live capture needs libpcap, which is not installed"):
        live.LiveCapture(["lo"])


def test_records_of_pcap_dump_become_the_writers_blocks():
    """-w alone converts libpcap's nanosecond pcap records: the file reads back as the frames."""
    import io
    import struct

    from mptcpspec.capture.live import pcap_records_to_epbs, pcap_records_to_micro
    from mptcpspec.capture.writer import CaptureWriter, Interface
    from tests.conftest import DATA

    got = list(CaptureReader(str(DATA / "v4-two-subflows.pcap")).frames())
    got[3] = (got[3][0] + 123, got[3][1], got[3][2][:40], len(got[3][2]), 0, False)  # nanoseconds, cut short
    records = b"".join(
        struct.pack("=4I", ts // 10**9, ts % 10**9, len(data), orig) + data for ts, _, data, orig, _, _ in got
    )
    for fmt, convert, scale in (
        ("pcapng", lambda r: pcap_records_to_epbs(r, 0), 1),
        ("pcap", pcap_records_to_micro, 1000),
        ("nsecpcap", lambda r: r, 1),
    ):
        out = io.BytesIO()
        w = CaptureWriter(out, fmt, [Interface("veth0", got[0][1], 262144)])
        w.flush()
        out.write(convert(records))
        w.close()
        back = list(CaptureReader(io.BytesIO(out.getvalue())).frames())
        assert [f[:4] for f in back] == [(ts // scale * scale, lt, d, o) for ts, lt, d, o, _, _ in got]


# ------------------------------------------------------------------------------------- in the lab


@pytest.mark.lab
def test_live_output_equals_the_dissection_of_tcpdumps_capture(lab, tmp_path):
    """Two subflows on ``any``: the live fields, frame for frame, are those of tcpdump's file read
    with -r; the -w file holds tcpdump's very packets; the kernel dropped none."""
    printing = start(lab, "-i", "any", "-f", "tcp", "-l", *field_args())
    recording = start(lab, "-i", "any", "-f", "tcp", "-w", str(tmp_path / "live.pcapng"))
    with lab.capture(tmp_path / "tcpdump.pcap", iface="any", bpf="tcp") as cap:
        two_subflows(lab)
    status, out, err = finish(printing)
    wstatus, wout, werr = finish(recording, signal.SIGINT)
    assert cap.stats["dropped"] == 0
    expected = dissect_fields(tmp_path / "tcpdump.pcap")
    assert len(expected.splitlines()) == cap.stats["captured"] > 40
    assert (status, out) == (0, expected), err
    n = cap.stats["captured"]
    assert err.splitlines()[-2:] == [f"{n} packets captured", "0 packets dropped from any"]
    assert (wstatus, wout) == (0, "")
    assert werr.splitlines() == ["Capturing on 'any'", f"{n} packets captured", "0 packets dropped from any"]
    assert frames(tmp_path / "live.pcapng") == frames(tmp_path / "tcpdump.pcap")
    assert dissect_fields(tmp_path / "live.pcapng") == expected
    assert "Traceback" not in err + werr


@pytest.mark.lab
def test_text_output_ends_with_the_expert_summary_on_sigint(lab, tmp_path):
    p = start(lab, "-i", "veth0", "-i", "veth1", "-f", "tcp")
    with lab.capture(tmp_path / "t.pcap", iface="any", bpf="tcp"):
        two_subflows(lab)
    status, out, err = finish(p, signal.SIGINT)
    assert status == 0, err
    assert " MP_CAPABLE" in out and " MP_JOIN" in out and "[Check: MP_JOIN ACK HMAC (v1): VERIFIED]" in out
    assert "Expert info:" in out
    assert err.splitlines()[0] == "Capturing on 'veth0' and 'veth1'"
    assert err.splitlines()[-2:] == ["0 packets dropped from veth0", "0 packets dropped from veth1"]


@pytest.mark.lab
def test_count_autostop_and_capture_filter(lab, tmp_path):
    by_count = start(lab, "-i", "veth0", "-c", "5", "-f", "tcp port 5201", *field_args())
    by_packets = start(
        lab, "-i", "veth0", "-a", "packets:3", "-f", "tcp dst port 5201", "-w", str(tmp_path / "a.pcapng")
    )
    by_time = start(lab, "-i", "veth0", "-a", "duration:1", "-f", "tcp port 9", *field_args())
    two_subflows(lab)
    status, out, err = finish(by_count, None)
    rows = [line.split("\t") for line in out.splitlines()]
    assert status == 0 and len(rows) == 5, err
    assert all("5201" in (r[FIELDS.index("tcp.srcport")], r[FIELDS.index("tcp.dstport")]) for r in rows)
    assert "5 packets captured" in err
    status, _, err = finish(by_packets, None)
    assert status == 0 and "3 packets captured" in err
    assert len(frames(tmp_path / "a.pcapng")) == 3
    status, out, err = finish(by_time, None)
    assert (status, out) == (0, "") and "0 packets captured" in err


@pytest.mark.lab
def test_sigterm_mid_connection_leaves_a_complete_file_with_every_packet(lab, tmp_path):
    rec = start(lab, "-i", "veth0", "-f", "tcp", "-w", str(tmp_path / "mid.pcapng"))
    with lab.capture(tmp_path / "ref.pcap", iface="veth0", bpf="tcp") as cap:
        server = lab.serve(reply=1000)
        client = lab.connect(size=20000, pause_at=10000)
        client.wait_event("paused")
        state = {"n": -1}

        def still(c) -> bool:  # the same count at two looks in a row: nothing more is on its way
            n, last = c.packets(), state["n"]
            state["n"] = n
            return n == last > 0

        cap.wait(still, "quiet")
        status, _, err = finish(rec)
        at_stop = cap.packets()
        client.go()
        client.result()
        server.result()
    assert status == 0, err
    got = frames(tmp_path / "mid.pcapng")
    assert len(got) == at_stop > 5
    assert got == [(1, f, len(f)) for _, f in list(cap.frames())[:at_stop]]
    assert err.splitlines()[-2:] == [f"{at_stop} packets captured", "0 packets dropped from veth0"]


@pytest.mark.lab
def test_no_such_interface_is_one_line_status_3(lab_host):
    r = subprocess.run([*OURS, "-i", "mptcpspec-nosuch0"], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert (r.returncode, r.stdout) == (3, "")
    assert r.stderr.splitlines() == ["mptcpspec: error: mptcpspec-nosuch0: no such interface"]


@pytest.mark.lab
def test_no_permission_is_one_line_status_3(lab_host, tmp_path):
    need_lab(("setpriv",))
    r = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *OURS, "-i", "lo", "-w", "-", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=ENV,
    )
    assert (r.returncode, r.stdout) == (3, "")
    why = "no permission to capture: root or CAP_NET_RAW is needed (socket: Operation not permitted)"
    assert r.stderr.splitlines() == [f"mptcpspec: error: lo: {why}"]


@pytest.mark.lab
def test_interface_deleted_during_capture(lab, tmp_path):
    """veth1 deleted under the capture: the packets so far are printed and written, one clear line
    says why it stopped, status 1, no traceback."""
    p = start(lab, "-i", "veth1", "-f", "udp", "-P", "-l", "-w", str(tmp_path / "gone.pcapng"), *field_args())
    send = "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((%r, 0))\n"
    send += "for i in range(3): s.sendto(b'x' * 100, (%r, 9))"
    lab.run("client", sys.executable, "-c", send % (lab.addr("client", 1), lab.addr("server", 1)))
    deadline = time.monotonic() + 10
    lines = b""
    while lines.count(b"\n") < 3 and time.monotonic() < deadline:
        if select.select([p.stdout], [], [], 0.5)[0]:
            lines += os.read(p.stdout.fileno(), 4096)
    lab.ip("client", "link", "del", "veth1")
    status, out, err = finish(p, None)
    out = lines.decode() + out
    assert status == 1, err
    assert len(out.splitlines()) == 3
    assert err.splitlines()[-1] == (
        "mptcpspec: veth1: the interface disappeared; the capture has stopped (everything read before it was kept)"
    )
    assert "3 packets captured" in err and "Traceback" not in err
    assert len(frames(tmp_path / "gone.pcapng")) == 3


@pytest.mark.lab
def test_list_interfaces_as_dumpcap(lab):
    need_lab(("dumpcap",))
    ours = lab.run("client", *OURS, "-D")
    theirs = lab.run("client", "dumpcap", "-D")
    assert ours.stdout == theirs.stdout
    assert "1. veth0\n2. veth1\n" in ours.stdout
