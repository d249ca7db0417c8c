"""`mptcpspec dissect` against tshark on lab captures, side by side, in one run.

    sudo python3 bench/bench_dissect.py [--packets N] [--mptcp N] [--plain N] [--max-size N] [--runs 5] [--cache DIR]
                                        [--remake] [--text]
    sudo python3 bench/bench_dissect.py --quick    # small lab captures, well under a minute
    python3 bench/bench_dissect.py --quick         # without root: the small committed captures in tests/data

Captures, made by the kernel lab (lab/), cached in --cache (default ~/.cache/mptcpspec-bench) and
reused, each keyed by what it was made with:

* bulk: one MPTCP transfer over two subflows (client `subflow` endpoint on 203.0.113.1, both veth
  pairs shaped so the scheduler uses both), tcpdump on `-i any` (Linux cooked v1), snaplen 200,
  filter `tcp`, pcap: one of at least --packets packets and one of at least twice that, to show
  whether memory stays flat as the capture grows;
* mixed (lab/mixed.py): --mptcp MPTCP connections (v1) open at the same time, half of them from a
  client namespace with net.mptcp.checksum_enabled=1 (DSS checksums), half of each client's with
  two subflows and half with three, and --plain plain TCP connections; each way a few octets to
  --max-size octets (drawn from --seed); tcpdump on `-i any` in the server namespace, snaplen 128,
  converted to pcapng with `editcap -F pcapng`.

Before anything is timed, each capture is checked with `mptcpspec connections` (bulk: one MPTCP
connection with two subflows carrying data; mixed: the number of MPTCP connections, all v1, all open
at once, checksums on exactly those of the checksum client, two or three subflows each as planned,
the plain TCP connections), and the outputs that must be byte-identical are compared: ours, ours
with MPTCPSPEC_PURE=1 (the pure-Python mode), and `-j 1`, `-j 2` (also with MPTCPSPEC_PURE=1) where
`dissect` has `-j`; also `connections` with and without MPTCPSPEC_PURE=1.  A difference, a failed
check or a failing command stops the run with exit status 1.

Bytecode: mptcpspec is byte-compiled first (`compileall`), as `pip install` does.

Measurement: each command runs as a subprocess, stdout to /dev/null, the modes alternating,
--runs times; wall time and peak RSS (wait4's ru_maxrss: the largest of the process and its
children, started from a small launcher so that the benchmark's own memory does not count) per
run, medians shown.  tshark runs with `-n` and an empty WIRESHARK_CONFIG_DIR, once
with its default preferences (the baseline of the targets) and once with the MPTCP analysis
preferences of the differential tests.  `-j 1` and `-j 2` are timed on the mixed capture only, as
built and with MPTCPSPEC_PURE=1.
Prints a Markdown table and the verdicts on the targets (-T fields, single process: >= 10x tshark
on bulk, >= 5x on mixed; memory flat; `connections` at least as fast as -T fields).  Exits 0
whatever the speed.

--quick: as root, a bulk capture of about 20,000 packets and a mixed one of 50 MPTCP connections
with small transfers, made by the lab in a temporary folder, each mode run twice (--runs); without
root (or with --committed), the small committed captures in tests/data.  The same checks; exit 1
only when a mode fails, a check fails or outputs differ.
"""

from __future__ import annotations

import argparse
import hashlib
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.mixed import Mix  # noqa: E402 - after the path is set

FIELDS = (
    "frame.number tcp.stream tcp.srcport tcp.dstport tcp.len tcp.seq tcp.ack mptcp.stream "
    "tcp.options.mptcp.subtype tcp.options.mptcp.rawdataseqno tcp.options.mptcp.rawdataack "
    "tcp.options.mptcp.subflowseqno tcp.options.mptcp.datalvllen mptcp.dsn mptcp.ack"
).split()
QUICK = ("v4-two-subflows.pcap", "v6-two-subflows.pcap")
SNAPLEN = 200  # of the bulk captures
OCTETS_PER_PACKET = 1000  # a first guess at transfer octets per captured packet (data + ACKs); corrected on a retry
TARGET_BULK, TARGET_MIXED, FLAT_RATIO = 10.0, 5.0, 1.25
QUICK_BULK = 20_000
FULL_MIX = Mix()  # the defaults of the mixed capture
QUICK_MIX = Mix(mptcp=50, plain=10, max_size=65536)
OURS = [sys.executable, "-m", "mptcpspec"]
PURE = {"MPTCPSPEC_PURE": "1"}

TSHARK = "tshark -T fields"
ANALYSING = "tshark -T fields, MPTCP analysis on"  # the preferences the differential tests set
FIELDS_MODE = "mptcpspec dissect -T fields"
PURE_MODE = "mptcpspec dissect -T fields, MPTCPSPEC_PURE=1"
CONNECTIONS = "mptcpspec connections"
J1, J2 = "mptcpspec dissect -T fields -j 1", "mptcpspec dissect -T fields -j 2"
J1_PURE, J2_PURE = f"{J1}, MPTCPSPEC_PURE=1", f"{J2}, MPTCPSPEC_PURE=1"


class BenchFailure(Exception):
    """A command failed, a capture is not what it should be, or outputs differ: exit 1."""


def count_packets(path: Path) -> int:
    """Records in a pcap file, or packet blocks in a pcapng file."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            endian = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
            f.seek(0)
            n = 0
            while len(block := f.read(8)) == 8:
                kind, length = struct.unpack(endian + "II", block)
                n += kind in (2, 3, 6)  # packet, simple packet, enhanced packet blocks
                f.seek(length - 8, 1)
            return n
        endian = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        f.seek(24)
        n = 0
        while len(rec := f.read(16)) == 16:
            f.seek(struct.unpack(endian + "IIII", rec)[2], 1)
            n += 1
    return n


# ------------------------------------------------------------------------------------ captures


@dataclass
class Capture:
    """A capture of the table: its file, its kind (bulk, mixed or committed) and how it was made."""

    path: Path
    kind: str
    meta: dict = field(default_factory=dict)


def make_capture(path: Path, packets: int, tries: int = 3) -> dict:
    """A bulk transfer over two subflows with at least ``packets`` packets; returns its metadata."""
    from lab import Lab, LabError, expected

    octets = packets * OCTETS_PER_PACKET
    for attempt in range(1, tries + 1):
        half = octets // 2  # half each way: the peers hold what they send and receive in memory
        start = time.monotonic()
        try:
            with Lab() as lab:
                for role in ("client", "server"):
                    for pair in (0, 1):  # shaped so the scheduler spreads data over both subflows
                        lab.rate_limit(role, lab.dev(pair), "200mbit", burst=30000)
                lab.endpoint_add("client", lab.addr("client", 1), "subflow")
                with lab.capture(path, snaplen=SNAPLEN, bpf="tcp") as cap:
                    s, c = lab.transfer(
                        size=half, reply=half, first=1000, wait_subflows=2, chunk=65536, timeout=60 + octets / 2e6
                    )
        except LabError as e:
            print(f"  {path.name}: try {attempt}: {e}", file=sys.stderr)
            continue
        took = time.monotonic() - start
        if (s["sha256"], c["reply"]["sha256"]) != (expected(half)["sha256"], expected(half, 1)["sha256"]):
            print(f"  {path.name}: try {attempt}: the transfer's contents differ", file=sys.stderr)
            continue
        got = count_packets(path)
        print(
            f"  {path.name}: {got} packets from {octets / 1e6:.0f} MB transferred in {took:.1f} s "
            f"(tcpdump {cap.stats})",
            file=sys.stderr,
        )
        if got >= packets:
            meta = {"packets": got, "octets": octets, "seconds": round(took, 1), "tcpdump": cap.stats}
            path.with_suffix(".json").write_text(json.dumps(meta) + "\n")
            return meta
        octets = int(octets * packets / got * 1.03)
    raise BenchFailure(f"could not make {path} in {tries} tries")


def make_mixed_capture(
    path: Path, mptcp: int = FULL_MIX.mptcp, plain: int | None = None, tries: int = 3, **mix: object
) -> dict:
    """The mixed capture of lab/mixed.py (pcapng) with ``mptcp`` MPTCP connections at once and
    ``plain`` plain TCP ones (default one for five MPTCP); returns its metadata."""
    from lab import LabError
    from lab.mixed import make_mixed

    m = Mix(mptcp=mptcp, plain=mptcp // 5 if plain is None else plain, **mix)
    for attempt in range(1, tries + 1):
        try:
            return make_mixed(path, m)
        except LabError as e:
            print(f"  {path.name}: try {attempt}: {e}", file=sys.stderr)
    raise BenchFailure(f"could not make {path} in {tries} tries")


def bulk_capture(cache: Path, packets: int, remake: bool) -> Capture:
    path = cache / f"bulk-{packets // 1000}k-snap{SNAPLEN}.pcap"
    if remake or not path.exists() or not path.with_suffix(".json").exists():
        print(f"making {path} ...", file=sys.stderr)
        make_capture(path, packets)
    meta = json.loads(path.with_suffix(".json").read_text())
    print(
        f"{path}: {meta['packets']} packets, {path.stat().st_size / 1e6:.1f} MB, made in "
        f"{meta['seconds']} s from {meta['octets'] / 1e6:.0f} MB transferred; tcpdump {meta['tcpdump']}",
        file=sys.stderr,
    )
    return Capture(path, "bulk", meta)


def mixed_capture(cache: Path, mix: Mix, remake: bool) -> Capture:
    path = cache / f"{mix.key()}.pcapng"
    if remake or not path.exists() or not path.with_suffix(".json").exists():
        print(f"making {path} ...", file=sys.stderr)
        make_mixed_capture(path, mix.mptcp, mix.plain, max_size=mix.max_size, seed=mix.seed, snaplen=mix.snaplen)
    meta = json.loads(path.with_suffix(".json").read_text())
    print(
        f"{path}: {meta['packets']} packets, {meta['mptcp']} MPTCP connections at once ({meta['checksums']} with "
        f"checksums, {meta['three_subflows']} with three subflows), {meta['plain']} plain TCP, "
        f"{meta['octets'] / 1e6:.0f} MB transferred, {path.stat().st_size / 1e6:.1f} MB, made in {meta['seconds']} s; "
        f"tcpdump {meta['tcpdump']}",
        file=sys.stderr,
    )
    return Capture(path, "mixed", meta)


def connections_json(path: Path, env: dict) -> list[dict]:
    r = subprocess.run(
        [*OURS, "connections", "--json", "-r", str(path)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    if r.returncode:
        raise BenchFailure(f"{path.name}: mptcpspec connections --json exited {r.returncode}: {r.stderr[-2000:]}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def check_capture(cap: Capture, fields_out: bytes, env: dict) -> str:
    """Raise BenchFailure unless ``mptcpspec connections`` sees what the capture was made with;
    returns a one-line summary.  ``fields_out``: our -T fields output (tcp.stream is its 2nd column)."""
    if cap.kind == "committed":
        return "committed capture"
    conns = connections_json(cap.path, env)
    subs = [s for c in conns for s in c["subflows"]]
    if cap.kind == "bulk":
        if len(conns) != 1 or len(subs) != 2 or not all(sum(s["bytes"]) for s in subs):
            raise BenchFailure(
                f"{cap.path.name}: not one MPTCP connection with 2 subflows carrying data: {len(conns)} "
                f"connection(s), subflow octets {[s['bytes'] for s in subs]} (--remake makes it again)"
            )
        return "one MPTCP connection, two subflows carrying data"
    meta = cap.meta
    streams = {line.split(b"\t")[1] for line in fields_out.splitlines() if line.count(b"\t") >= 1}
    plain = len(streams - {b""}) - len(subs)
    events = sorted([(c["first_frame"], 1) for c in conns] + [(c["last_frame"], -1) for c in conns])
    open_now = at_once = 0
    for _, step in events:
        open_now += step
        at_once = max(at_once, open_now)
    sizes = [len(c["subflows"]) for c in conns]
    got = {
        "MPTCP connections": len(conns),
        "v1": sum(c["version"] == 1 for c in conns),
        "open at once": at_once,
        "with checksums": sum(bool(c["checksum"]) for c in conns),
        "with two subflows": sizes.count(2),
        "with three subflows": sizes.count(3),
        "plain TCP": plain,
    }
    want = {
        "MPTCP connections": meta["mptcp"],
        "v1": meta["mptcp"],
        "open at once": meta["mptcp"],
        "with checksums": meta["checksums"],
        "with two subflows": meta["mptcp"] - meta["three_subflows"],
        "with three subflows": meta["three_subflows"],
        "plain TCP": meta["plain"],
    }
    if got != want:
        wrong = ", ".join(f"{k} {got[k]} (made with {want[k]})" for k in want if got[k] != want[k])
        raise BenchFailure(f"{cap.path.name}: {wrong} (--remake makes it again)")
    return ", ".join(f"{v} {k}" for k, v in got.items() if k != "v1") + ", all v1"


# ------------------------------------------------------------------------------------ commands


@dataclass(frozen=True)
class Mode:
    argv: list[str]
    env: dict = field(default_factory=dict)  # set for this command only


# Peak RSS: a child's ru_maxrss starts from the memory of the process that forked it (with vfork, as
# subprocess uses, from that process's own peak), so the benchmark's own memory would show in every
# row.  Each command is therefore started by this small launcher (python3 -S, about 8 MB), which
# forks it, times it and reports its wall time, ru_maxrss (KiB) and exit status in a file.
LAUNCHER = """import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as e:
        sys.stderr.write(f"{sys.argv[2]}: {e}\\n")
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as f:
    f.write(f"{wall} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run(argv: list[str], env: dict) -> tuple[float, int]:
    """Run ``argv`` with stdout to /dev/null: (wall seconds, peak RSS in KiB)."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as said:
        subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, said.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=ROOT,
            check=False,
        )
        report = said.read().split()
        err.seek(0)
        if len(report) != 3 or int(report[2]) != 0:
            code = report[2] if len(report) == 3 else "without a word from its launcher"
            raise BenchFailure(f"{' '.join(argv)} exited {code}: {err.read().decode()[-2000:]}")
        wall, rss, _ = report
    return float(wall), int(rss)


def usable_fields() -> list[str]:
    """FIELDS less any that this mptcpspec does not know (left out of both tools, with a warning)."""
    r = subprocess.run([*OURS, "dissect", "--list-fields"], capture_output=True, text=True, cwd=ROOT, check=True)
    known = {line.split("\t")[0] for line in r.stdout.splitlines()}
    missing = [f for f in FIELDS if f not in known]
    if missing:
        print(f"WARNING: mptcpspec does not know {', '.join(missing)}: left out of both commands", file=sys.stderr)
    return [f for f in FIELDS if f in known]


def lists_jobs(help_text: str) -> bool:
    """Whether an argparse help text lists the option -j."""
    return re.search(r"(^|[\s\[,])-j(\s|,|\]|$)", help_text, re.M) is not None


def has_jobs() -> bool:
    """Whether `mptcpspec dissect --help` lists -j."""
    r = subprocess.run([*OURS, "dissect", "--help"], capture_output=True, text=True, cwd=ROOT)
    return lists_jobs(r.stdout)


def modes(cap: Capture, fields: list[str], text: bool, jobs: bool) -> dict[str, Mode | None]:
    """The timed commands on ``cap``; None: a row shown as n/a."""
    from tests.tshark_fields import RECOMMENDED_PREFS

    path = str(cap.path)
    e = [x for f in fields for x in ("-e", f)]
    o = [x for name, value in RECOMMENDED_PREFS.items() for x in ("-o", f"{name}:{value}")]
    ours = [*OURS, "dissect", "-r", path, "-T", "fields", *e]
    m: dict[str, Mode | None] = {
        TSHARK: Mode(["tshark", "-n", "-r", path, "-T", "fields", *e]),
        ANALYSING: Mode(["tshark", "-n", "-r", path, "-T", "fields", *e, *o]),
        FIELDS_MODE: Mode(ours),
        PURE_MODE: Mode(ours, PURE),
        CONNECTIONS: Mode([*OURS, "connections", "-r", path]),
    }
    if cap.kind == "mixed":
        m[J1] = Mode([*ours, "-j", "1"]) if jobs else None
        m[J2] = Mode([*ours, "-j", "2"]) if jobs else None
        m[J1_PURE] = Mode([*ours, "-j", "1"], PURE) if jobs else None
        m[J2_PURE] = Mode([*ours, "-j", "2"], PURE) if jobs else None
    if text:
        m["tshark -V"] = Mode(["tshark", "-n", "-r", path, "-V"])
        m["mptcpspec dissect -T text"] = Mode([*OURS, "dissect", "-r", path, "-T", "text"])
    return m


def output(mode: Mode, env: dict) -> tuple[bytes, bytes]:
    r = subprocess.run(mode.argv, capture_output=True, env={**env, **mode.env}, cwd=ROOT)
    if r.returncode:
        raise BenchFailure(f"{' '.join(mode.argv)} exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    return r.stdout, r.stderr


def identical(cap: Capture, fields: list[str], jobs: bool, env: dict) -> tuple[bytes, str]:
    """Our outputs that must be the same, compared octet for octet (stdout and stderr); raises
    BenchFailure on a difference.  Returns our -T fields output and a line saying what was compared."""
    m = modes(cap, fields, False, jobs)
    ours, conns = m[FIELDS_MODE], m[CONNECTIONS]
    assert ours is not None and conns is not None
    groups = {
        FIELDS_MODE: {"MPTCPSPEC_PURE=1": Mode(ours.argv, PURE)},
        CONNECTIONS: {"MPTCPSPEC_PURE=1": Mode(conns.argv, PURE)},
    }
    if jobs:
        groups[FIELDS_MODE].update(
            {
                "-j 1": Mode([*ours.argv, "-j", "1"]),
                "-j 2": Mode([*ours.argv, "-j", "2"]),
                "-j 2 and MPTCPSPEC_PURE=1": Mode([*ours.argv, "-j", "2"], PURE),
            }
        )
    said = []
    fields_out = b""
    for name, variants in groups.items():
        first = output(ours if name == FIELDS_MODE else conns, env)
        for label, variant in variants.items():
            out = output(variant, env)
            if out != first:
                what = "stdout" if out[0] != first[0] else "stderr"
                raise BenchFailure(f"{cap.path.name}: `{name}` with {label} prints another {what} than without")
        if name == FIELDS_MODE:
            fields_out = first[0]
        digest = hashlib.sha256(first[0]).hexdigest()[:12]
        said.append(f"`{name}` alone = with {' = with '.join(variants)} ({len(first[0]):,} octets, sha256 {digest}…)")
    return fields_out, "; ".join(said)


def measure(cap: Capture, cmds: dict[str, Mode | None], runs: int, env: dict) -> dict[str, tuple[float, float] | None]:
    """mode -> (median seconds, median peak RSS in MB), the modes alternating run by run; None: n/a."""
    times: dict[str, list] = {m: [] for m, c in cmds.items() if c is not None}
    for i in range(runs):
        for name in times:
            mode = cmds[name]
            assert mode is not None
            wall, rss = run(mode.argv, {**env, **mode.env})
            times[name].append((wall, rss * 1024 / 1e6))
        print(
            f"  {cap.path.name}: run {i + 1}/{runs}: " + ", ".join(f"{m} {t[-1][0]:.2f} s" for m, t in times.items()),
            file=sys.stderr,
        )
    return {
        m: (statistics.median(w for w, _ in times[m]), statistics.median(r for _, r in times[m]))
        if m in times
        else None
        for m in cmds
    }


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=250_000, help="packets in the smaller bulk capture (default 250000)")
    ap.add_argument(
        "--mptcp",
        type=int,
        default=FULL_MIX.mptcp,
        help=f"MPTCP connections of the mixed capture (default {FULL_MIX.mptcp}; 0: none)",
    )
    ap.add_argument(
        "--plain",
        type=int,
        default=FULL_MIX.plain,
        help=f"plain TCP connections of the mixed capture (default {FULL_MIX.plain})",
    )
    ap.add_argument(
        "--max-size",
        type=int,
        default=FULL_MIX.max_size,
        help=f"the largest transfer of the mixed capture, each way (default {FULL_MIX.max_size})",
    )
    ap.add_argument(
        "--seed", type=int, default=FULL_MIX.seed, help=f"of the mixed capture's sizes (default {FULL_MIX.seed})"
    )
    ap.add_argument("--runs", type=int, help="runs of each command (default 5; 2 with --quick)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mptcpspec-bench",
        help="where the captures are kept (default ~/.cache/mptcpspec-bench)",
    )
    ap.add_argument("--remake", action="store_true", help="make the captures again even if cached")
    ap.add_argument("--text", action="store_true", help="also tshark -V against mptcpspec dissect -T text (slow)")
    ap.add_argument(
        "--quick", action="store_true", help="small captures: made by the lab as root, else the committed ones"
    )
    ap.add_argument("--committed", action="store_true", help="with --quick: the committed captures even as root")
    a = ap.parse_args(argv)
    runs = a.runs or (2 if a.quick else 5)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-dissect-") as tmp:
            caps = captures(a, Path(tmp))
            return bench(caps, runs, a.text, a.quick)
    except BenchFailure as e:
        print(f"bench_dissect: FAILED: {e}", file=sys.stderr)
        return 1


def captures(a: argparse.Namespace, tmp: Path) -> list[Capture]:
    from lab import lab_problem
    from lab.mixed import TOOLS

    why = lab_problem() or lab_problem(TOOLS)
    if a.quick and (a.committed or why):
        print(f"bench_dissect: --quick on the committed captures{f' ({why})' if why else ''}", file=sys.stderr)
        return [Capture(ROOT / "tests" / "data" / n, "committed") for n in QUICK]
    if why:
        raise BenchFailure(f"{why} (or use --quick)")
    if a.quick:  # made afresh each time: this is the form CI runs
        return [bulk_capture(tmp, QUICK_BULK, True), mixed_capture(tmp, QUICK_MIX, True)]
    a.cache.mkdir(parents=True, exist_ok=True)
    caps = [bulk_capture(a.cache, n, a.remake) for n in (a.packets, 2 * a.packets)]
    if a.mptcp:
        caps.append(
            mixed_capture(a.cache, Mix(mptcp=a.mptcp, plain=a.plain, max_size=a.max_size, seed=a.seed), a.remake)
        )
    return caps


def bench(caps: list[Capture], runs: int, text: bool, quick: bool) -> int:
    # As an installed package has it: every module byte-compiled (it is still read from this checkout).
    import compileall

    compileall.compile_dir(ROOT / "mptcpspec", quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-wireshark-") as prefs:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=prefs)  # no personal preferences
        env.pop("MPTCPSPEC_PURE", None)
        tshark = subprocess.run(["tshark", "--version"], capture_output=True, text=True, env=env).stdout
        version = subprocess.run([*OURS, "--version"], capture_output=True, text=True, env=env, cwd=ROOT).stdout
        fields = usable_fields()
        jobs = has_jobs()
        if not jobs:
            print("bench_dissect: `mptcpspec dissect --help` lists no -j: its rows are n/a", file=sys.stderr)
        results = []
        for cap in caps:
            fields_out, same = identical(cap, fields, jobs, env)  # also brings the file into the page cache
            checked = check_capture(cap, fields_out, env)
            print(f"identical: {cap.path.name}: {same}", file=sys.stderr)
            print(f"checked: {cap.path.name}: {checked}", file=sys.stderr)
            results.append(
                (cap, count_packets(cap.path), measure(cap, modes(cap, fields, text, jobs), runs, env), same, checked)
            )
    report(tshark.split("\n")[0].rstrip("."), version.strip(), fields, runs, results, quick)
    return 0


def report(tshark: str, version: str, fields: list[str], runs: int, results: list, quick: bool) -> None:
    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {version}, byte-compiled; {tshark}, "
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs; medians of {runs} runs; "
        f"`-T fields` with the {len(fields)} fields {', '.join(fields)}.\n"
    )
    print("| capture | tool / mode | median s | packets/s | × tshark | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|")
    for cap, packets, res, _, _ in results:
        name = f"{cap.path.name} ({packets:,} packets, {cap.path.stat().st_size / 1e6:.1f} MB)"
        base = {"fields": res[TSHARK][0], "text": (res.get("tshark -V") or (0.0,))[0]}
        for mode, got in res.items():
            if got is None:
                print(f"| {name} | `{mode}` | n/a | n/a | n/a | n/a |")
                continue
            sec, rss = got
            ref = base["text" if "-V" in mode or "-T text" in mode else "fields"]
            print(f"| {name} | `{mode}` | {sec:.2f} | {packets / sec:,.0f} | {ref / sec:.2f}× | {rss:.0f} |")
    print()
    for cap, _, _, same, checked in results:
        print(f"- {cap.path.name}: checked: {checked}; identical: {same}.")
    print(
        f"\n`{CONNECTIONS}`: the whole analysis (HMACs, checksums, mappings, closure, the subflows' TCP analysis) "
        "with one summary and no per-packet output. × tshark is against tshark with its default preferences, under "
        "which (mptcp.analyze_mappings off) it leaves mptcp.dsn empty, which ours fills: a conservative baseline. "
        f"`{ANALYSING}`: with the MPTCP analysis preferences of the differential tests (tests/tshark_fields.py). "
        "`MPTCPSPEC_PURE=1`: the pure-Python mode (no compiled hot path). Peak RSS of `-j 2`: its largest process."
    )
    verdicts(results, quick)


def verdicts(results: list, quick: bool) -> None:
    def ratio(res: dict, mode: str) -> float | None:
        got = res.get(mode)
        return None if got is None else res[TSHARK][0] / got[0]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = []
    for kind, target in (("bulk", TARGET_BULK), ("mixed", TARGET_MIXED)):
        mine = [(c, r) for c, _, r, _, _ in results if c.kind == kind]
        if mine:
            speeds = [ratio(r, FIELDS_MODE) or 0.0 for _, r in mine]
            pure = " / ".join(f"{ratio(r, PURE_MODE) or 0.0:.2f}×" for _, r in mine)
            lines.append(
                f"≥ {target:g}× tshark with -T fields on the {kind} capture{'s' if len(mine) > 1 else ''}, single "
                f"process: {' / '.join(f'{s:.2f}×' for s in speeds)} ({verdict(min(speeds) >= target)}); "
                f"pure Python {pure}"
            )
    bulk = [(p, r) for c, p, r, _, _ in results if c.kind == "bulk"]
    if len(bulk) == 2:
        (p0, r0), (p1, r1) = bulk
        growth = r1[FIELDS_MODE][1] / r0[FIELDS_MODE][1]
        lines.append(
            f"flat memory (-T fields): {r1[FIELDS_MODE][1]:.0f} MB on {p1:,} packets vs {r0[FIELDS_MODE][1]:.0f} MB "
            f"on {p0:,} (×{growth:.2f}; {verdict(growth <= FLAT_RATIO)}, flat meaning ≤ ×{FLAT_RATIO:g})"
        )
    conns = []
    for c, _, r, _, _ in results:
        if c.kind != "committed":
            f, k = r[FIELDS_MODE][0], r[CONNECTIONS][0]
            conns.append(f"{c.path.name} {k:.2f} s vs {f:.2f} s ({verdict(k <= f)})")
    if conns:
        lines.append("`connections` at least as fast as -T fields: " + "; ".join(conns))
    for c, _, r, _, _ in results:
        if c.kind == "mixed":
            for one_mode, two_mode, how in ((J1, J2, ""), (J1_PURE, J2_PURE, ", MPTCPSPEC_PURE=1")):
                if r.get(one_mode) and r.get(two_mode):
                    one, two = r[one_mode][0], r[two_mode][0]
                    said = f"×{one / two:.2f} ({one:.2f} s → {two:.2f} s)"
                else:
                    said = "n/a (`dissect` has no -j)"
                lines.append(f"-j 2 against -j 1 on {c.path.name}{how}: {said}")
    if lines:
        print(
            "\nTargets"
            + (" (--quick: small captures; the targets are judged on the full-size ones)" if quick else "")
            + ":\n"
        )
        print("\n".join(f"- {line}." for line in lines))


if __name__ == "__main__":
    sys.exit(main())
