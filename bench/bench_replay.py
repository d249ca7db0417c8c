"""`mptcpspec replay` against the kernel's MPTCP server, and against tcpreplay, side by side, in one run.

    sudo python3 bench/bench_replay.py [--packets 100000] [--runs 3] [--cache DIR] [--remake]
    sudo python3 bench/bench_replay.py --quick      # a 5 MB upload: a smoke run
    sudo python3 bench/bench_replay.py --loss [--percent 5] [--runs 10]   # loss recovery
    sudo python3 bench/bench_replay.py --fidelity [--runs 7] [--server-rmem captured] [--pin] [--shaped]
    sudo python3 bench/bench_replay.py --raw [--runs 5]   # raw mode: tcpreplay -K against --preload

Capture: the kernel lab (lab/) makes one MPTCP connection over two subflows (client
`subflow` endpoint on 203.0.113.1; every veth shaped to 200 Mbit/s so the scheduler uses both)
in which the kernel client uploads known octets (`lab.peer.pattern(n, 0)`) to a kernel server
that reads them all (no reply) and records their length and sha256.  tcpdump captures it on
`-i any` in the client namespace (Linux cooked v1, filter `tcp`) with the lab's full snapshot
length: no packet is truncated, so the replay sends the real data.  The upload grows until the
capture holds at least --packets packets (first guess ~900 octets per packet, data and ACKs).
The kernel-to-kernel time is the capture's, from the first SYN to the last packet.  The capture,
an Ethernet copy of it and its metadata are cached in --cache (default ~/.cache/mptcpspec-bench)
and reused; each is checked with `mptcpspec connections` (one connection, two subflows, both
carrying client data) before it is used.

Ethernet copy: tcpreplay sends each record as an Ethernet frame, so the cooked capture would go
out with its 16-octet SLL header read as Ethernet (and the full-size segments fail with EMSGSIZE);
`tcprewrite --dlt=enet` of tcpreplay 4.4.3 writes a broken header from SLL (appneta/tcpreplay
#790, #826), so this script writes the copy itself: each SLL header becomes an Ethernet header
with the captured sender's MAC as source, broadcast as destination and the SLL protocol as
EtherType (broadcast frames reach the server's IP layer but not its TCP, which drops frames not
addressed to the host: no resets come back).  The raw modes both send that same copy.

Measurement, in one fresh lab (no shaping; client `subflow` endpoint as in the capture), --runs
times each, medians:
  * kernel -> kernel: the same upload by the kernel client again, timed on a header-only capture
    (first SYN to last packet): the reference the shaped capture cannot give;
  * `mptcpspec replay` (stateful) from the client namespace against a fresh kernel server
    (`lab.serve(reply=0)`), which must read exactly the captured upload (length and sha256); the
    JSON report gives the elapsed time, packets sent and received per subflow, `data_delivered`;
  * raw: `tcpreplay --topspeed -i veth0` (its own summary) and `mptcpspec replay --mode raw
    --timing fast --iface veth0` (its own JSON; a row saying "not available" when this mptcpspec
    has no --mode raw), alternating, from the client namespace.
Raw (--raw): in one fresh lab, --runs times (default 5) each, alternating, on the capture above
and on the cached bench captures of RAW_CAPTURES found in --cache (a bulk upload and the mixed
load of many connections: Linux cooked, written as Ethernet copies like the one above):
`tcpreplay --topspeed -K`, `mptcpspec replay --mode raw --preload`, both without preloading, and
ours preloaded with `--batch 1` (one send(2) per frame); ours maps every destination of the copy to
itself (all in the documentation ranges, or the section refuses to run).  Medians per mode, and
ours preloaded over tcpreplay -K run by run (target: at least 1.0x).
Loss (--loss): a 2 MB two-subflow kernel upload captured as above (cached), then in one fresh lab
whose two paths both drop --percent % of the TCP packets each way, at random (nftables `numgen
random` in the server namespace, `lab.loss.lossy_paths`), --runs times each, alternating: the
kernel client's own upload of the same 2 MB (first SYN to last packet of a header-only capture) and
`mptcpspec replay` of the capture (its `elapsed`; the server must read exactly the captured upload
and the replay close cleanly, no subflow reset after the close); medians, and the replay's median
over the kernel's against the target (at most 3x).

Prints a Markdown table and the verdicts on the targets (stateful >= 50k packets/s; raw within 2x
of tcpreplay's packets/s) with the replay engine's version (commit and a digest of replay/*.py; a
change of replay/*.py during the run is flagged); exits 0 either way (2 when the lab cannot run).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import platform
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OURS = [sys.executable, "-m", "mptcpspec"]
SERVER = "198.51.100.2"
CLIENT_ADDRS = ("198.51.100.1", "203.0.113.1")
ALL_ADDRS = (*CLIENT_ADDRS, SERVER, "203.0.113.2")
SHAPING = "200mbit"  # on every veth while the capture is made (see Lab.rate_limit)
OCTETS_PER_PACKET = 900  # first guess at uploaded octets per captured packet (data + ACKs); corrected on a retry
QUICK_UPLOAD = 5_000_000
CAPTURE_BUFFER_KIB = 262144
TARGET_PPS, RAW_WITHIN = 50_000, 2.0
LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL = 1, 113


# ------------------------------------------------------------------------------------ pcap files


def read_pcap(path: Path):
    """(linktype, timestamp in s, captured length, original length, frame) of every record of a classic pcap."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            endian = ">"
        else:
            raise ValueError(f"{path}: not a classic pcap file")
        frac = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
        linktype = struct.unpack(endian + "I", head[20:24])[0] & 0x0FFFFFFF
        rec = struct.Struct(endian + "IIII")
        while len(h := f.read(16)) == 16:
            sec, sub, caplen, origlen = rec.unpack(h)
            yield linktype, sec + sub * frac, caplen, origlen, f.read(caplen)


def ip_offset(linktype: int, frame: bytes) -> int | None:
    """Where the IPv4 packet of a frame starts (None: not IPv4)."""
    if linktype == LINKTYPE_LINUX_SLL and len(frame) >= 16 and frame[14:16] == b"\x08\x00":
        return 16
    if linktype == LINKTYPE_ETHERNET and len(frame) >= 14 and frame[12:14] == b"\x08\x00":
        return 14
    return None


@dataclass
class CaptureStats:
    packets: int = 0
    client_packets: int = 0  #: sent by a client address: what a stateful replay sends
    truncated: int = 0  #: records cut by the snapshot length
    first_syn: float | None = None
    last: float | None = None
    linktype: int | None = None

    @property
    def seconds(self) -> float:
        return (self.last - self.first_syn) if self.first_syn is not None and self.last is not None else 0.0


def capture_stats(path: Path) -> CaptureStats:
    st = CaptureStats()
    clients = {ipaddress.IPv4Address(a).packed for a in CLIENT_ADDRS}
    for linktype, ts, caplen, origlen, frame in read_pcap(path):
        st.linktype = linktype
        st.packets += 1
        st.truncated += caplen < origlen
        st.last = ts
        at = ip_offset(linktype, frame)
        if at is None or len(frame) < at + 20 or frame[at + 9] != 6:
            continue
        ihl = (frame[at] & 15) * 4
        tcp = at + ihl
        if len(frame) < tcp + 14:
            continue
        if st.first_syn is None and frame[tcp + 13] & 0x02:
            st.first_syn = ts
        if frame[at + 12 : at + 16] in clients:
            st.client_packets += 1
    return st


def sll_to_ethernet(src: Path, dst: Path) -> int:
    """Write ``src`` (Linux cooked v1, pcap or pcapng) as an Ethernet pcap; returns the records written."""
    from mptcpspec.capture.pcap import read_records

    n = 0
    tmp = dst.with_name(dst.name + ".part")
    with open(tmp, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        for rec in read_records(src):
            linktype, ts, origlen, frame = rec.linktype, rec.timestamp_ns / 1e9, rec.orig_len, rec.data
            if linktype != LINKTYPE_LINUX_SLL:
                raise ValueError(f"{src}: link type {linktype}, expected Linux cooked v1 ({LINKTYPE_LINUX_SLL})")
            halen = struct.unpack_from("!H", frame, 4)[0]
            source = frame[6:12] if halen == 6 else b"\x02\x00\x00\x00\x00\x01"
            eth = b"\xff" * 6 + source + frame[14:16] + frame[16:]
            sec = int(ts)
            usec = min(999_999, round((ts - sec) * 1e6))
            out.write(struct.pack("<IIII", sec, usec, len(eth), origlen - 2) + eth)
            n += 1
    tmp.replace(dst)
    return n


# ------------------------------------------------------------------------------------ the capture


def check_connections(path: Path) -> str:
    """'' if ``mptcpspec connections`` sees one connection whose two subflows both carry client data, else why not."""
    r = subprocess.run([*OURS, "connections", "--json", "-r", str(path)], capture_output=True, text=True, cwd=ROOT)
    conns = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    subs = [s for c in conns for s in c["subflows"]]
    if r.returncode or len(conns) != 1 or len(subs) != 2 or not all(s["bytes"][0] for s in subs):
        return (
            f"exit {r.returncode}, {len(conns)} connection(s), subflow octets {[s['bytes'] for s in subs]}"
            f"{'; ' + r.stderr.strip()[-500:] if r.stderr.strip() else ''}"
        )
    return ""


def make_capture(path: Path, packets: int, upload: int | None = None, tries: int = 3) -> dict:
    """A two-subflow kernel upload of at least ``packets`` packets (or of ``upload`` octets); its metadata."""
    from lab import SNAPLEN, Lab, LabError, expected

    octets = upload or packets * OCTETS_PER_PACKET
    for attempt in range(1, tries + 1):
        timeout = 60 + octets / 2e6
        started = time.monotonic()
        try:
            with Lab() as lab:
                for role in ("client", "server"):
                    for pair in (0, 1):  # shaped so the scheduler spreads the data over both subflows
                        lab.rate_limit(role, lab.dev(pair), SHAPING, burst=30000)
                lab.endpoint_add("client", lab.addr("client", 1), "subflow")
                # full payloads at 2 x 200 Mbit/s: a kernel buffer that holds the whole capture, so tcpdump
                # (writing packet by packet) drops nothing
                with lab.capture(path, snaplen=SNAPLEN, bpf="tcp", buffer_kib=CAPTURE_BUFFER_KIB) as cap:
                    server = lab.serve(reply=0, timeout=timeout)
                    t0 = time.monotonic()
                    client = lab.connect(size=octets, first=1000, wait_subflows=2, chunk=65536, timeout=timeout)
                    client.result(timeout=timeout)
                    client_seconds = time.monotonic() - t0
                    got = server.result(timeout=timeout)
        except LabError as e:
            print(f"  {path.name}: try {attempt}: {e}", file=sys.stderr)
            continue
        want = expected(octets)
        if (got["length"], got["sha256"]) != (want["length"], want["sha256"]):
            print(
                f"  {path.name}: try {attempt}: the server read {got['length']} octets, not the upload", file=sys.stderr
            )
            continue
        st = capture_stats(path)
        print(
            f"  {path.name}: {st.packets} packets ({st.client_packets} from the client) from a "
            f"{octets / 1e6:.1f} MB upload in {st.seconds:.2f} s (tcpdump {cap.stats})",
            file=sys.stderr,
        )
        why = check_connections(path)
        if st.truncated or why:
            print(
                f"  {path.name}: try {attempt}: {st.truncated} truncated records; {why or 'connections ok'}",
                file=sys.stderr,
            )
            continue
        if upload or st.packets >= packets:
            meta = {
                "packets": st.packets,
                "client_packets": st.client_packets,
                "upload": octets,
                "sha256": want["sha256"],
                "linktype": st.linktype,
                "k2k_seconds": round(st.seconds, 6),
                "client_seconds": round(client_seconds, 3),
                "shaping": f"{SHAPING} on every veth",
                "tcpdump": cap.stats,
                "made_in": round(time.monotonic() - started, 1),
            }
            path.with_suffix(".json").write_text(json.dumps(meta) + "\n")
            return meta
        octets = int(octets * packets / st.packets * 1.03)
    raise SystemExit(f"bench_replay: could not make {path} in {tries} tries")


# ------------------------------------------------------------------------------------ measuring


def run_in(lab, role: str, argv: list[str], timeout: float) -> tuple[int, str, str, float]:
    """Run ``argv`` in a lab namespace from the project root: (exit status, stdout, stderr, wall seconds)."""
    start = time.perf_counter()
    p = lab.popen(role, *argv, cwd=ROOT, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        err += f"\n(killed after {timeout:.0f} s)"
    return p.returncode, out, err, time.perf_counter() - start


PIN_REPLAY = ["taskset", "-c", "0"]


def pin_process(pid: int, cpu: int) -> None:
    """Process ``pid`` and all its threads on CPU ``cpu`` (``taskset -a -p``)."""
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True, capture_output=True)


def pin_server_path(lab) -> None:
    """The server's receive path on CPU 1 (RPS on its veths): in a one-machine lab the kernel
    otherwise runs the server's TCP and MPTCP receive processing on the CPU that sent the packet,
    the replay's, inside its send(2)."""
    for pair in (0, 1):
        lab.run("server", "sh", "-c", f"echo 2 > /sys/class/net/{lab.dev(pair)}/queues/rx-0/rps_cpus")


def kernel_run(lab, upload: int, work: Path, pin: bool = False) -> dict:
    """The kernel client uploads the same octets again; timed on a header-only capture.  ``pin``:
    the client on CPU 0, the server on CPU 1, as :func:`stateful_run` pins the replay."""
    from lab import expected

    timeout = 60 + upload / 2e6
    path = work / "kernel.pcap"
    with lab.capture(path, snaplen=128, bpf="tcp", allow_drops=True) as cap:
        server = lab.serve(reply=0, timeout=timeout)
        client = lab.connect(size=upload, first=1000, chunk=65536, timeout=timeout)
        if pin:
            pin_process(server.proc.pid, 1)
            pin_process(client.proc.pid, 0)
        client.result(timeout=timeout)
        got = server.result(timeout=timeout)
    st = capture_stats(path)
    path.unlink()
    want = expected(upload)
    ok = (got["length"], got["sha256"]) == (want["length"], want["sha256"])
    return {
        "ok": ok,
        "reason": "" if ok else f"the server read {got['length']} octets",
        "seconds": st.seconds,
        "packets": st.packets,
        "octets": upload,
        "dropped": cap.stats.get("dropped", 0),
    }


def stateful_run(lab, path: Path, meta: dict, timeout: float, *extra: str, pin: bool = False) -> dict:
    """One `mptcpspec replay` (``extra``: more options) against a fresh kernel server that reads
    everything; ``pin``: the replay on CPU 0, the server on CPU 1 (see :func:`pin_server_path`)."""
    from lab import LabError

    server = lab.serve(reply=0, timeout=timeout + 30)
    if pin:
        pin_process(server.proc.pid, 1)
    rc, out, err, wall = run_in(
        lab,
        "client",
        [*(PIN_REPLAY if pin else []), *OURS, "replay", "-r", str(path), "--target", SERVER, "--json", "-q"]
        + ["--timeout", "10", *extra],
        timeout,
    )
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    rep = reports[-1] if reports else {}
    res = {
        "ok": bool(rep.get("ok")),
        "reason": rep.get("reason") or f"no report (exit {rc}): {err.strip()[-300:]}",
        "wall": wall,
        "seconds": rep.get("elapsed", 0.0),
        "octets": rep.get("data_delivered", 0),
        "planned": rep.get("data_planned", 0),
        "sent": sum(s["sent"] for s in rep.get("subflows", [])),
        "received": sum(s["received"] for s in rep.get("subflows", [])),
        "retransmitted": sum(s["retransmitted"] for s in rep.get("subflows", [])),
        "fidelity": rep.get("fidelity"),  # with --report-fidelity
    }
    res["packets"] = res["sent"] + res["received"]
    lingered = [e for e in rep.get("events", []) if "FIN exchange unfinished" in e]
    if lingered and res["ok"]:
        res["ok"], res["reason"] = False, "closed, but with a reset after the close: " + lingered[0].strip()
    try:
        got = server.result(timeout=30 if res["ok"] else 5)
    except LabError as e:
        got = None
        res["server"] = f"no result ({str(e).split(';')[0]})"
        if server.proc.poll() is None:  # still waiting for data that will not come
            server.proc.kill()
            server.proc.wait()
    if got is not None:
        same = (got["length"], got["sha256"]) == (meta["upload"], meta["sha256"])
        res["server"] = (
            "read exactly the captured upload"
            if same
            else (
                f"read {got['length']} octets (sha256 {got['sha256'][:16]}...), not the captured "
                f"{meta['upload']} ({meta['sha256'][:16]}...)"
            )
        )
        if not same and res["ok"]:
            res["ok"], res["reason"] = False, "clean close, but " + res["server"]
    elif res["ok"]:
        res["ok"], res["reason"] = False, "clean close, but the server gave " + res["server"]
    return res


def tcpreplay_run(lab, eth: Path, *extra: str) -> dict:
    rc, out, err, wall = run_in(lab, "client", ["tcpreplay", "--topspeed", *extra, "-i", "veth0", str(eth)], 600)
    m = re.search(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds", out)
    failed = re.search(r"Failed packets:\s+(\d+)", out)
    if rc or not m:
        return {"ok": False, "reason": f"exit {rc}: {(err or out).strip()[-300:]}", "wall": wall}
    return {
        "ok": True,
        "packets": int(m.group(1)),
        "octets": int(m.group(2)),
        "seconds": float(m.group(3)),
        "failed": int(failed.group(1)) if failed else 0,
        "wall": wall,
        "warnings": len(re.findall(r"^Warning", err, re.M)),
    }


def raw_available() -> bool:
    """Whether this mptcpspec has `replay --mode raw` (being written while this benchmark was)."""
    r = subprocess.run([*OURS, "replay", "--help"], capture_output=True, text=True, cwd=ROOT)
    return re.search(r"--mode \{[^}]*\braw\b", r.stdout) is not None


def raw_run(lab, eth: Path, *extra: str, addrs=ALL_ADDRS) -> dict:
    maps = [x for a in addrs for x in ("--map", f"{a}={a}")]
    rc, out, err, wall = run_in(
        lab,
        "client",
        [
            *OURS,
            "replay",
            "--mode",
            "raw",
            "-r",
            str(eth),
            "--iface",
            "veth0",
            "--timing",
            "fast",
            *maps,
            *extra,
            "--json",
        ],
        600,
    )
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if rc or not reports:
        return {"ok": False, "reason": f"exit {rc}: {(err or out).strip()[-300:]}", "wall": wall}
    rep = reports[-1]
    # its octets are IP octets; + 14 per frame, like tcpreplay's count of the Ethernet frames
    return {
        "ok": True,
        "packets": rep["sent"],
        "octets": rep["octets"] + 14 * rep["sent"],
        "seconds": rep["elapsed"],
        "skipped": rep.get("skipped", 0),
        "wall": wall,
    }


RAW_CAPTURES = ("bulk-250k-snap200.pcap", "mixed-150mptcp-30tcp-max4000000-seed1-snap128.pcapng")
RAW_TARGET = 1.0  # ours with --preload against tcpreplay --topspeed -K, packets/s


def capture_destinations(eth: Path) -> list[str]:
    """The IPv4 destinations of an Ethernet capture, all in the documentation ranges (else SystemExit)."""
    docs = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
    seen = set()
    for _linktype, _ts, _caplen, _origlen, frame in read_pcap(eth):
        if frame[12:14] == b"\x08\x00" and len(frame) >= 34:
            seen.add(frame[30:34])
    addrs = sorted(ipaddress.IPv4Address(a) for a in seen)
    if not all(any(a in n for n in docs) for a in addrs):
        raise SystemExit(f"bench_replay: {eth.name} sends to addresses outside the documentation ranges: {addrs}")
    return [str(a) for a in addrs]


def raw_bench(a, cache: Path, upload: Path) -> int:
    """The raw section: tcpreplay --topspeed -K and ours with --preload (and each without), alternating."""
    from lab import Lab

    captures = [upload] + [cache / n for n in RAW_CAPTURES if (cache / n).exists()]
    engine, digest = engine_version(), engine_digest()
    modes = (
        ("`tcpreplay --topspeed -K`", "tcpreplay", ("-K",)),
        ("`mptcpspec replay --mode raw --preload`", "ours", ("--preload",)),
        ("`tcpreplay --topspeed`", "tcpreplay", ()),
        ("`mptcpspec replay --mode raw`", "ours", ()),
        ("`mptcpspec replay --mode raw --preload --batch 1`", "ours", ("--preload", "--batch", "1")),
    )
    table = []
    with Lab() as lab:
        for cap in captures:
            eth = cap.with_name(cap.stem + "-eth.pcap")
            if not eth.exists() or eth.stat().st_mtime < cap.stat().st_mtime:
                print(f"writing {eth.name} ...", file=sys.stderr)
                sll_to_ethernet(cap, eth)
            addrs = capture_destinations(eth)
            res: dict[str, list[dict]] = {m[0]: [] for m in modes}
            for i in range(a.runs):
                for name, tool, extra in modes:
                    if tool == "tcpreplay":
                        r = tcpreplay_run(lab, eth, *extra)
                    else:
                        r = raw_run(lab, eth, *extra, addrs=addrs)
                    res[name].append(r)
                print(
                    f"  {eth.name} run {i + 1}/{a.runs}: "
                    + "; ".join(
                        f"{n} {r['packets'] / r['seconds']:,.0f}/s" if r["ok"] else f"{n} FAILED {r['reason']}"
                        for n, rs in res.items()
                        for r in rs[-1:]
                    ),
                    file=sys.stderr,
                )
            table.append((cap, eth, res))
    if engine_digest() != digest:
        engine += f", then {engine_version()}: replay/ CHANGED DURING THE RUN, the runs mix versions"
    tcpreplay = subprocess.run(["tcpreplay", "--version"], capture_output=True, text=True)
    version = (tcpreplay.stdout or tcpreplay.stderr).splitlines()[0].replace("tcpreplay version: ", "")
    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, tcpreplay {version}, {os.cpu_count()} CPUs; {a.runs} runs of each mode, "
        f"alternating, in one lab (veth0 of the client namespace); replay engine {engine}.\n"
    )
    print("| capture | mode | packets | median s | packets/s (min–max) | × tcpreplay -K |")
    print("|---|---|---:|---:|---:|---:|")
    verdicts = []
    for cap, _eth, res in table:
        ref = None
        for name, _tool, _extra in modes:
            good = [r for r in res[name] if r["ok"]]
            if not good:
                print(f"| {cap.name} | {name} | FAILED: {res[name][0]['reason'] if res[name] else 'not run'} | | | |")
                continue
            pps = [r["packets"] / r["seconds"] for r in good]
            med = statistics.median(pps)
            ref = med if ref is None else ref
            print(
                f"| {cap.name} | {name} | {median_of(good, 'packets'):,.0f} | {median_of(good, 'seconds'):.3f} | "
                f"{med:,.0f} ({min(pps):,.0f}–{max(pps):,.0f}) | {med / ref:.2f}× |"
            )
            if "--preload`" in name:
                pairs = [
                    (o["packets"] / o["seconds"]) / (t["packets"] / t["seconds"])
                    for o, t in zip(res[name], res[modes[0][0]])
                    if o["ok"] and t["ok"]
                ]
                paired = f", run by run {statistics.median(pairs):.2f}× (median)" if pairs else ""
                met = "met" if med >= RAW_TARGET * ref else "MISSED"
                verdicts.append(f"{cap.name} {med / ref:.2f}×{paired} ({met})")
    print(
        "\npackets/s: each run's packets over its own summary's seconds (tcpreplay's `Actual`, ours `elapsed`: "
        "from the first send to the last, after any preload); the medians of those. × tcpreplay -K: median "
        "packets/s over tcpreplay -K's median on the same capture."
    )
    print(f"\nTarget: --mode raw --preload ≥ {RAW_TARGET:g}× tcpreplay --topspeed -K packets/s: " + "; ".join(verdicts))
    return 0


LOSS_UPLOAD, LOSS_TARGET = 2_000_000, 3.0


def loss_bench(a, cache: Path) -> int:
    """The loss section: the kernel client and the replay, alternating, on two lossy paths."""
    from lab import Lab
    from lab.loss import lossy_paths

    path = (cache / "replay-upload-2mb.pcap").resolve()
    if a.remake or not path.exists() or not path.with_suffix(".json").exists():
        print(f"making {path} ...", file=sys.stderr)
        make_capture(path, 0, upload=LOSS_UPLOAD)
    meta = json.loads(path.with_suffix(".json").read_text())
    engine, digest = engine_version(), engine_digest()
    kernel: list[dict] = []
    ours: list[dict] = []
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        lossy_paths(lab, a.percent)
        for i in range(a.runs):
            k = kernel_run(lab, meta["upload"], Path(tmp))
            r = stateful_run(lab, path, meta, 120)
            kernel.append(k)
            ours.append(r)
            print(
                f"  run {i + 1}/{a.runs}: kernel {'ok' if k['ok'] else 'FAILED'} {k['seconds']:.3f} s; replay "
                f"{'ok' if r['ok'] else 'FAILED'} {r['seconds']:.3f} s (process {r['wall']:.2f} s), sent {r['sent']} "
                f"received {r['received']} retransmitted {r['retransmitted']}; server {r.get('server')}"
                f"{'' if r['ok'] else '; ' + r['reason']}",
                file=sys.stderr,
            )
    if engine_digest() != digest:
        engine += f", then {engine_version()}: replay/ CHANGED DURING THE RUN, the runs mix versions"
    good_k = [x["seconds"] for x in kernel if x["ok"]]
    good_r = [x["seconds"] for x in ours if x["ok"]]
    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, {os.cpu_count()} CPUs; replay engine {engine}.\n"
    )
    print(
        f"Loss: {a.percent} % of the TCP packets dropped each way on both paths (nftables, at random); "
        f"a {meta['upload']:,}-octet two-subflow upload (`{path.name}`, {meta['packets']:,} packets); "
        f"{a.runs} runs of each, alternating, in one lab.\n"
    )
    print("| upload | runs ok | median s | min s | max s |")
    print("|---|---:|---:|---:|---:|")
    for name, res, good in (("kernel client", kernel, good_k), ("`mptcpspec replay`", ours, good_r)):
        if good:
            print(
                f"| {name} | {len(good)} of {len(res)} | {statistics.median(good):.3f} | {min(good):.3f} | "
                f"{max(good):.3f} |"
            )
        else:
            print(f"| {name} | 0 of {len(res)} | | | |")
    bad = [f"run {i + 1}: {r['reason']}" for i, r in enumerate(ours) if not r["ok"]]
    if bad:
        print("\nReplay failures: " + "; ".join(bad))
    if good_k and good_r:
        ratio = statistics.median(good_r) / statistics.median(good_k)
        verdict = "met" if ratio <= LOSS_TARGET and not bad else "MISSED"
        print(f"\nTarget: the replay's median at most {LOSS_TARGET:g}x the kernel client's: {ratio:.2f}x ({verdict}).")
    return 0


FIDELITY_P99 = 0.001  # the target: p99 schedule error at most 1 ms with --timing as-captured


FIDELITY_VARIANTS = (("segment by segment", ()), ("--gso", ("--gso",)))


def fidelity_bench(a, path: Path, meta: dict) -> int:
    """The scheduler's precision (--fidelity): `mptcpspec replay --timing as-captured
    --report-fidelity` of the capture, segment by segment and with --gso (the segments due together
    in one burst the kernel cuts at the captured boundaries), alternating, --runs rounds in one
    fresh lab (unshaped, as the stateful row), each run against a fresh kernel server that must read
    exactly the captured upload; the fidelity report's schedule error (time each first
    transmission was handed to the kernel minus its captured time, both from the connection's
    start): median, p99, max, late > 1 ms, per run, and per variant the median of the runs' p99
    against the target; and, from the same report, how many segments the live connection held back
    past their time (the server's window, mostly) and the sender's own error (each held segment
    counted from when its hold ended), with the same verdict on it."""
    from lab import Lab

    engine, digest = engine_version(), engine_digest()
    res: dict[str, list[dict]] = {name: [] for name, _ in FIDELITY_VARIANTS}
    timeout = 120 + meta["upload"] / 1e6
    rmem, server_buffer = None, "the kernel's default receive buffer"
    if a.server_rmem == "captured":
        window = captured_server_window(path)
        rmem = 2 * window
        server_buffer = (
            f"a receive buffer of {rmem:,} octets (tcp_rmem's default: twice the {window:,}-octet window the "
            "captured server reached at most)"
        )
    elif a.server_rmem != "default":
        rmem = int(a.server_rmem)
        server_buffer = f"a receive buffer of {rmem:,} octets (tcp_rmem's default)"
    with Lab() as lab:
        if a.shaped:
            for role in ("client", "server"):
                for pair in (0, 1):
                    lab.rate_limit(role, lab.dev(pair), SHAPING, burst=30000)
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        if rmem is not None:
            lab.sysctl("server", {"net.ipv4.tcp_rmem": f"4096 {rmem} {max(rmem, 6 << 20)}"})
        if a.pin:
            pin_server_path(lab)
        for i in range(a.runs):
            for name, extra in FIDELITY_VARIANTS:
                r = stateful_run(
                    lab, path, meta, timeout, "--timing", "as-captured", "--report-fidelity", *extra, pin=a.pin
                )
                res[name].append(r)
                sched = (r["fidelity"] or {}).get("schedule") or {}
                print(
                    f"  round {i + 1}/{a.runs}, {name}: replay {'ok' if r['ok'] else 'FAILED'} {r['seconds']:.3f} s; "
                    + (
                        f"schedule error median {sched['median'] * 1e3:.3f} ms, p99 {sched['p99'] * 1e3:.3f} ms, "
                        f"max {sched['max'] * 1e3:.3f} ms, {sched['late']} of {sched['packets']} late > 1 ms; "
                        f"held back {held_of(sched)}; own p99 {sched['own']['p99'] * 1e3:.3f} ms"
                        if sched
                        else "no schedule reported"
                    )
                    + ("" if r["ok"] else "; " + r["reason"]),
                    file=sys.stderr,
                )
    if engine_digest() != digest:
        engine += f", then {engine_version()}: replay/ CHANGED DURING THE RUN, the runs mix versions"
    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, {os.cpu_count()} CPUs; replay engine {engine}.\n"
    )
    lab_kind = f"lab shaped as the capture's ({SHAPING} on every veth)" if a.shaped else "unshaped lab"
    if a.pin:
        lab_kind += " (the replay on CPU 0; the server, its process and its receive path, on CPU 1)"
    print(
        f"Schedule error with `--timing as-captured` on `{path.name}` ({meta['packets']:,} packets, "
        f"{meta['upload']:,} octets uploaded in {meta['k2k_seconds']:.3f} s as captured), {a.runs} rounds in one "
        f"{lab_kind}, "
        f"the variants alternating, the live server with {server_buffer}; per run: time handed to "
        "the kernel minus captured time, over the first transmissions.\n"
    )
    print(
        "| variant | round | ok | replay s | data packets | median ms | p99 ms | max ms | min ms | late > 1 ms "
        "| held back | own p99 ms | own max ms | own late > 1 ms |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for name, runs in res.items():
        for i, r in enumerate(runs):
            sched = (r["fidelity"] or {}).get("schedule") or {}
            ok = "ok" if r["ok"] else "FAILED: " + r["reason"]
            if not sched:
                print(f"| {name} | {i + 1} | {ok} | {r['seconds']:.3f} | | | | | | | | | | |")
                continue
            own = sched["own"]
            print(
                f"| {name} | {i + 1} | {ok} | {r['seconds']:.3f} | {sched['packets']:,} | "
                f"{sched['median'] * 1e3:.3f} | {sched['p99'] * 1e3:.3f} | {sched['max'] * 1e3:.3f} | "
                f"{sched['min'] * 1e3:.3f} | {sched['late']:,} | {held_of(sched)} | {own['p99'] * 1e3:.3f} | "
                f"{own['max'] * 1e3:.3f} | {own['late']:,} |"
            )
    print(
        f"\nTarget: p99 schedule error at most {FIDELITY_P99 * 1e3:g} ms. Every first transmission counts; "
        "the second table counts the sender's own error alone (a segment the live connection held back "
        "past its time, by the server's window or a congestion window, from when that hold ended).\n"
    )
    for title, pick in (("every segment", lambda g: g), ("the sender's own error", lambda g: g["own"])):
        print(f"{title}:\n")
        print(
            "| variant | runs ok | median of the runs' medians | median p99 | best p99 | runs with p99 ≤ 1 ms "
            "| late > 1 ms (median) | verdict |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for name, runs in res.items():
            good = [r["fidelity"]["schedule"] for r in runs if r["ok"] and (r["fidelity"] or {}).get("schedule")]
            if not good:
                print(f"| {name} | 0 of {len(runs)} | | | | | | not measured |")
                continue
            p99s = [pick(g)["p99"] for g in good]
            p99 = statistics.median(p99s)
            print(
                f"| {name} | {len(good)} of {len(runs)} | "
                f"{statistics.median(pick(g)['median'] for g in good) * 1e3:.3f} ms | "
                f"{p99 * 1e3:.3f} ms | {min(p99s) * 1e3:.3f} ms | {sum(x <= FIDELITY_P99 for x in p99s)} of "
                f"{len(p99s)} | {statistics.median(pick(g)['late'] for g in good):,.0f} of {good[0]['packets']:,} | "
                f"{'met' if p99 <= FIDELITY_P99 else 'MISSED'} |"
            )
        print()
    return 0


def captured_server_window(path: Path) -> int:
    """The largest window (octets, scaled) the server advertised in the capture, read by our dissector."""
    r = subprocess.run(
        [*OURS, "dissect", "-r", str(path), "-T", "fields", "-e", "tcp.window_size", "-Y", f"ip.src == {SERVER}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return max(int(w) for w in r.stdout.split())


def held_of(sched: dict) -> str:
    """A fidelity schedule's segments held back past their time, by what ("none" when none were)."""
    held = sched.get("held") or {}
    if not held:
        return "none"
    return f"{sum(held.values()):,} (" + ", ".join(f"{k.replace('_', ' ')} {n:,}" for k, n in held.items()) + ")"


def engine_digest() -> str:
    """sha256 (12 hex digits) of replay/*.py: the replay engine measured."""
    return hashlib.sha256(b"".join(f.read_bytes() for f in sorted((ROOT / "replay").glob("*.py")))).hexdigest()[:12]


def engine_version() -> str:
    """The replay engine measured: its commit (with "+ local changes" when replay/ differs from it) and digest."""
    digest = f"replay/*.py sha256 {engine_digest()}"
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "replay"], capture_output=True, text=True, cwd=ROOT
        )
    except OSError:
        return digest
    if head.returncode:
        return digest
    return f"commit {head.stdout.strip()}{' + local changes' if dirty.stdout.strip() else ''} ({digest})"


def median_of(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


# ------------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=100_000, help="least packets in the capture (default 100000)")
    ap.add_argument("--runs", type=int, default=None, help="runs of each mode (default 3; 10 with --loss)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench",
        help="where the capture is kept (default ~/.cache/mptcpspec-bench)",
    )
    ap.add_argument("--remake", action="store_true", help="make the capture again even if cached")
    ap.add_argument("--quick", action="store_true", help=f"a {QUICK_UPLOAD // 1_000_000} MB upload: a smoke run")
    ap.add_argument("--loss", action="store_true", help="the loss section: kernel and replay on two lossy paths")
    ap.add_argument(
        "--raw",
        action="store_true",
        help="the raw section only: tcpreplay -K against --preload on the upload, cached bulk and mixed captures",
    )
    ap.add_argument("--percent", type=int, default=5, help="with --loss: packets dropped each way, in %% (default 5)")
    ap.add_argument(
        "--fidelity",
        action="store_true",
        help="the schedule error of --timing as-captured (--report-fidelity) on the capture, against the 1 ms target",
    )
    ap.add_argument(
        "--server-rmem",
        default="default",
        metavar="OCTETS|captured|default",
        help="with --fidelity: the live server's receive buffer (tcp_rmem's default in its namespace): "
        "'captured', twice the largest window the captured server advertised (Linux advertises about half "
        "its buffer); default: the kernel's",
    )
    ap.add_argument(
        "--shaped",
        action="store_true",
        help=f"with --fidelity: replay into a lab shaped as the capture's ({SHAPING} on every veth), not unshaped",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="the replay (and the kernel client) on CPU 0, the server (its process, and its receive path by RPS) "
        "on CPU 1, as if it were another host (not the raw modes)",
    )
    a = ap.parse_args(argv)
    if a.pin and (os.cpu_count() or 1) < 2:
        ap.error("--pin needs two CPUs")
    if a.server_rmem not in ("default", "captured") and not a.server_rmem.isdigit():
        ap.error(f"--server-rmem: {a.server_rmem!r} is not a number of octets, 'captured' or 'default'")

    from lab import Lab, lab_problem

    tools = ("ip", "tcpdump", "ethtool", "sysctl", "tc", "ss", "nft") + (() if a.loss or a.fidelity else ("tcpreplay",))
    tools += ("taskset",) if a.pin else ()
    if why := lab_problem(tools):
        print(f"bench_replay: {why}", file=sys.stderr)
        return 2
    a.runs = a.runs or (10 if a.loss else 5 if a.raw else 3)
    a.cache.mkdir(parents=True, exist_ok=True)
    if a.loss:
        return loss_bench(a, a.cache)
    path = (a.cache / ("replay-upload-quick.pcap" if a.quick else f"replay-upload-{a.packets // 1000}k.pcap")).resolve()
    eth = path.with_name(path.stem + "-eth.pcap")
    if a.remake or not path.exists() or not path.with_suffix(".json").exists():
        print(f"making {path} ...", file=sys.stderr)
        make_capture(path, a.packets, upload=QUICK_UPLOAD if a.quick else None)
    if a.raw:
        return raw_bench(a, a.cache, path)
    meta = json.loads(path.with_suffix(".json").read_text())
    if a.fidelity:
        return fidelity_bench(a, path, meta)
    if why := check_connections(path):
        print(f"WARNING: {path.name}: not one MPTCP connection with two subflows carrying data: {why}", file=sys.stderr)
    if not eth.exists() or eth.stat().st_mtime < path.stat().st_mtime:
        sll_to_ethernet(path, eth)
    print(
        f"{path}: {meta['packets']:,} packets ({meta['client_packets']:,} from the client), "
        f"{path.stat().st_size / 1e6:.1f} MB, link type {meta['linktype']}, upload {meta['upload'] / 1e6:.1f} MB, "
        f"kernel-to-kernel {meta['k2k_seconds']:.3f} s as captured ({meta['shaping']}); tcpdump {meta['tcpdump']}; "
        f"Ethernet copy {eth.name}",
        file=sys.stderr,
    )

    results: dict[str, list[dict]] = {"kernel": [], "stateful": [], "gso": [], "tcpreplay": [], "raw": []}
    gso = "--gso" in subprocess.run([*OURS, "replay", "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    engine, digest = engine_version(), engine_digest()
    raw_ok = raw_available()
    replay_timeout = 120 + meta["upload"] / 1e6
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        if a.pin:
            pin_server_path(lab)
        for i in range(a.runs):
            k = kernel_run(lab, meta["upload"], Path(tmp), pin=a.pin)
            s = stateful_run(lab, path, meta, replay_timeout, pin=a.pin)
            results["kernel"].append(k)
            results["stateful"].append(s)
            drops = f" ({k['dropped']} packets dropped by tcpdump)" if k["dropped"] else ""
            runs = [("replay", s)]
            if gso:
                g = stateful_run(lab, path, meta, replay_timeout, "--gso", pin=a.pin)
                results["gso"].append(g)
                runs.append(("replay --gso", g))
            print(
                f"  run {i + 1}/{a.runs}: kernel {k['seconds']:.3f} s{drops}; "
                + "; ".join(
                    f"{name} {'ok' if r['ok'] else 'FAILED'} {r['seconds']:.3f} s (process {r['wall']:.2f} s), "
                    f"sent {r['sent']} received {r['received']} retransmitted {r['retransmitted']}, "
                    f"{r['octets']} octets delivered; server {r.get('server')}"
                    f"{'' if r['ok'] else '; ' + r['reason']}"
                    for name, r in runs
                ),
                file=sys.stderr,
            )
        raw_ok = raw_ok or raw_available()  # it may have appeared meanwhile
        for i in range(a.runs):
            t = tcpreplay_run(lab, eth)
            results["tcpreplay"].append(t)
            line = f"  run {i + 1}/{a.runs}: tcpreplay " + (
                f"{t['packets']} packets in {t['seconds']:.3f} s, {t['failed']} failed, {t['warnings']} warnings"
                if t["ok"]
                else "FAILED " + t["reason"]
            )
            if raw_ok:
                r = raw_run(lab, eth)
                results["raw"].append(r)
                line += "; mptcpspec raw " + (
                    f"{r['packets']} packets in {r['seconds']:.3f} s, {r['skipped']} skipped"
                    if r["ok"]
                    else "FAILED " + r["reason"]
                )
            print(line, file=sys.stderr)
    if engine_digest() != digest:
        engine += f", then {engine_version()}: replay/ CHANGED DURING THE RUN, the runs mix versions"
    if a.pin:
        engine += "; the kernel client and the replay on CPU 0, the server (process, receive path) on CPU 1"
    report(path, eth, meta, results, a.runs, raw_ok, engine)
    return 0


def report(path: Path, eth: Path, meta: dict, results: dict, runs: int, raw_ok: bool, engine: str) -> None:
    def row(mode: str, res: list[dict], ratio, octets_note: str = "", packets_key: str = "packets") -> float | None:
        """One table line, medians of the runs that worked; returns the packets/s (None: no run worked)."""
        good = [r for r in res if r["ok"]]
        bad = [r for r in res if not r["ok"]]
        if not good:
            reasons = "; ".join(sorted({r["reason"] for r in bad})) or "not run"
            print(f"| {mode} | FAILED in {len(bad)} of {len(res)} runs: {reasons} | | | | |")
            return None
        sec, packets, octets = (median_of(good, k) for k in ("seconds", packets_key, "octets"))
        failed = f" ({len(bad)} of {len(res)} runs failed: {bad[0]['reason']})" if bad else ""
        print(
            f"| {mode}{failed} | {packets:,.0f} | {sec:.3f} | {packets / sec:,.0f} | "
            f"{octets / sec / 1e6:,.1f}{octets_note} | {ratio(sec, packets / sec)} |"
        )
        return packets / sec

    tcpreplay = subprocess.run(["tcpreplay", "--version"], capture_output=True, text=True)
    version = (tcpreplay.stdout or tcpreplay.stderr).splitlines()[0].replace("tcpreplay version: ", "")
    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, tcpreplay {version}, {os.cpu_count()} CPUs; medians of {runs} runs; "
        f"replay engine {engine}.\n"
    )
    print(
        f"Capture `{path.name}`: {meta['packets']:,} packets ({meta['client_packets']:,} sent by the client), "
        f"{path.stat().st_size / 1e6:.1f} MB, Linux cooked v1 (link type {meta['linktype']}) from tcpdump "
        f"`-i any` in the client namespace, full snapshot length (no record truncated); a kernel MPTCP upload of "
        f"{meta['upload']:,} octets over two subflows, {meta['shaping']}. The raw modes send its Ethernet copy "
        f"`{eth.name}`.\n"
    )
    print("| mode | packets | median s | packets/s | data MB/s | × reference |")
    print("|---|---:|---:|---:|---:|---|")
    k2k = meta["k2k_seconds"]
    print(
        f"| kernel → kernel, as captured ({meta['shaping']}) | {meta['packets']:,} | {k2k:.3f} | "
        f"{meta['packets'] / k2k:,.0f} | {meta['upload'] / k2k / 1e6:,.1f} | reference (stateful) |"
    )
    kernel = [r for r in results["kernel"] if r["ok"]]
    unshaped = median_of(kernel, "seconds") if kernel else None
    row("kernel → kernel, unshaped, this lab", results["kernel"], lambda sec, pps: "—")

    def vs_kernel(sec: float, pps: float) -> str:
        return f"{k2k / sec:.2f}× as captured" + (f", {unshaped / sec:.2f}× unshaped" if unshaped else "")

    stateful_pps = row("`mptcpspec replay` (stateful), sent + received", results["stateful"], vs_kernel)
    sent_pps = row("`mptcpspec replay` (stateful), sent only", results["stateful"], vs_kernel, packets_key="sent")
    if results["gso"]:
        row("`mptcpspec replay --gso` (stateful), sent + received", results["gso"], vs_kernel)
    tr_pps = row("`tcpreplay --topspeed` (raw)", results["tcpreplay"], lambda sec, pps: "reference (raw)", " ‡")
    raw_pps = None
    if raw_ok:
        raw_pps = row(
            "`mptcpspec replay --mode raw --timing fast`",
            results["raw"],
            lambda sec, pps: f"{pps / tr_pps:.2f}× tcpreplay" if tr_pps else "—",
            " ‡",
        )
    else:
        print("| mptcpspec raw mode: not available | | | | | |")
    print(
        "\nStateful: seconds are the replay's own `elapsed` (its whole process, reading the capture included, is "
        "in the notes on stderr); packets are what it sent and received on all subflows; MB/s is `data_delivered` "
        "(client octets the server acknowledged at data level). Kernel rows: first SYN to last packet of a "
        "capture; MB/s is the upload. × reference: reference seconds / seconds, or packets/s / packets/s for the "
        "raw row (above 1: faster). ‡ raw rows: Ethernet frame octets sent per second (both directions of the "
        "capture, all onto veth0); seconds from each tool's own summary."
    )
    tr = [r for r in results["tcpreplay"] if r["ok"]]
    if any(r["failed"] for r in tr):
        print(f"\ntcpreplay reported failed packets: {[r['failed'] for r in tr]} per run.")
    if any(r.get("skipped") for r in results["raw"] if r["ok"]):
        print(f"\nmptcpspec raw skipped packets: {[r.get('skipped') for r in results['raw']]} per run.")
    if any(not r["ok"] for r in results["stateful"]):
        print(
            "\nStateful replay failures: "
            + "; ".join(
                f"run {i + 1}: {r['reason']} after {r['seconds']:.1f} s, {r['octets']:,} of {r.get('planned', 0):,} "
                f"octets delivered, sent {r['sent']} / received {r['received']} packets (server: {r.get('server')})"
                for i, r in enumerate(results["stateful"])
                if not r["ok"]
            )
        )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    stateful = (
        "no successful run (MISSED)"
        if stateful_pps is None
        else f"{stateful_pps:,.0f} packets/s sent + received ({verdict(stateful_pps >= TARGET_PPS)}), "
        f"{sent_pps:,.0f} sent only ({verdict(sent_pps >= TARGET_PPS)})"
    )
    if not raw_ok:
        raw = "mptcpspec raw mode not available"
    elif raw_pps is None or tr_pps is None:
        raw = "no successful run of " + ("mptcpspec raw" if raw_pps is None else "tcpreplay") + " (MISSED)"
    else:
        raw = (
            f"{raw_pps:,.0f} vs tcpreplay's {tr_pps:,.0f} packets/s, {tr_pps / raw_pps:.2f}× slower "
            f"({verdict(raw_pps * RAW_WITHIN >= tr_pps)})"
        )
    print(
        f"\nTargets: stateful replay ≥ {TARGET_PPS:,} packets/s: {stateful}. Raw mode within "
        f"{RAW_WITHIN:g}× of tcpreplay's packets/s: {raw}."
    )

    def within(key: str) -> str:
        good = [r for r in results[key] if r["ok"]]
        if not good or not unshaped:
            return "no successful run (MISSED)"
        x = unshaped / median_of(good, "seconds")
        return f"{x:.2f}× the unshaped kernel ({verdict(x >= 0.5)})"

    print(
        f"Stateful, one connection, in at most twice the unshaped kernel-to-kernel time (≥ 0.5×): "
        f"as captured (segments and mappings) {within('stateful')}"
        + (f"; --gso {within('gso')}" if results["gso"] else "")
        + "."
    )


if __name__ == "__main__":
    sys.exit(main())
