"""--mode raw in the lab: the frames that reach the far end of the veth are the same, octet for
octet and in order, whether sent one send(2) each, in sendmmsg(2) batches, or preloaded, and they
are the rewritten capture's frames."""

from __future__ import annotations

import json
import sys

import pytest

from lab import Lab, need_lab
from mptcpspec.capture.pcap import read_records
from mptcpspec.replay.raw import capture_frames
from tests.conftest import DATA
from tests.test_replay_raw import ALLOWED, MAPPING

pytestmark = pytest.mark.lab

MODES = (
    ("--batch", "1"),
    ("--batch", "16"),
    (),
    ("--preload",),
    ("--preload", "--batch", "5"),
    ("--preload", "--timing", "x50"),
)


@pytest.fixture(autouse=True)
def _root():
    need_lab(("ip", "tcpdump", "nft"))


@pytest.mark.parametrize("name", ["v4-two-subflows", "v6-two-subflows"])
def test_every_send_path_puts_the_same_frames_on_the_wire(tmp_path, name):
    capture = DATA / f"{name}.pcap"
    maps = [x for a, b in MAPPING.items() for x in ("--map", f"{a}={b}")]
    with Lab() as lab:
        own = bytes.fromhex(lab.run("client", "cat", "/sys/class/net/veth0/address").stdout.strip().replace(":", ""))
        want = [f for _, f, _ in capture_frames(capture, MAPPING, ALLOWED, own, b"\xff" * 6) if f is not None]
        assert len(want) > 60
        for i, mode in enumerate(MODES):
            cap = tmp_path / f"{i}.pcap"
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
                    str(capture),
                    "--iface",
                    "veth0",
                    *maps,
                    *mode,
                    check=False,
                )
            assert r.returncode == 0, (mode, r.stderr)
            rep = json.loads(r.stdout)
            assert rep["sent"] == len(want) and rep["skipped"] == 119 - len(want), mode
            got = [rec.data for rec in read_records(cap)]
            differ = sum(a != b for a, b in zip(got, want))
            assert got == want, f"{mode}: {len(got)} frames on the wire, {differ} of them differ"
            if mode == ("--batch", "1"):
                assert rep["calls"] == rep["sent"]
            elif "--timing" not in mode:  # timed: batches only as big as the schedule allows
                assert rep["calls"] < rep["sent"], mode
