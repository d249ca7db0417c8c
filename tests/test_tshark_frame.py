"""The frame and IP fields a tshark user filters on first, against tshark 4.0.

Every Wireshark-named field is compared on every packet of every capture by
``tests/test_tshark_dissect.py``; this file adds what that comparison cannot see: the fields that
depend on which frames a display filter keeps (``frame.time_delta_displayed``), the time fields
under ``-c`` and ``-Y``, filters on the new fields, and the formats of values no committed capture
holds (a negative time difference, a day of the month under 10).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mptcpspec.capture.writer import open_writer
from mptcpspec.dissect.fields import local_time
from mptcpspec.dissect.tcpfields import seconds
from tests.conftest import DATA, ROOT, need_tshark
from tests.tshark_fields import RECOMMENDED_PREFS

TIME_FIELDS = [
    "frame.number",
    "frame.time",
    "frame.time_epoch",
    "frame.time_relative",
    "frame.time_delta",
    "frame.time_delta_displayed",
]
IP_FIELDS = ["ip.addr", "ipv6.addr", "ip.len", "ip.ttl", "ip.id", "tcp.port", "tcp.flags", "frame.len"]


def _prefs() -> list[str]:
    return [x for n, v in RECOMMENDED_PREFS.items() for x in ("-o", f"{n}:{v}")]


def _both(path, args: list[str], config_dir) -> tuple[str, str]:
    """tshark's and our ``-T fields`` output for the same arguments."""
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)}
    theirs = subprocess.run(
        ["tshark", "-n", "-r", str(path), *_prefs(), *args], capture_output=True, text=True, env=env, check=True
    )
    ours = subprocess.run(
        [sys.executable, "-m", "mptcpspec", "dissect", "-r", str(path), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return ours.stdout, theirs.stdout


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("wireshark-config")


COMMON = [
    None,
    "frame.number > 3",
    "tcp.len > 0",
    "tcp.flags.syn == 1",
    "tcp.port in {5201, 34148}",
    "frame.time_delta > 0.0001",
    "frame.time_delta_displayed >= 0",
    "frame.time_relative >= 0.01",
]
V4 = ["ip.addr == 198.51.100.2 && tcp.port == 5201", "ip.ttl == 64 and ip.len > 100", "ip.id > 0x1000"]
V6 = ["ipv6.addr == 2001:db8:1::1 and tcp.port == 5201"]


@pytest.mark.parametrize(
    ("name", "flt"),
    [(n, f) for n in ("v4-two-subflows.pcap", "v4-reinjection.pcap") for f in COMMON + V4]
    + [("v6-two-subflows.pcap", f) for f in COMMON + V6],
)
def test_time_and_address_fields_under_a_display_filter(name, flt, config_dir):
    """frame.time_delta_displayed counts from the last frame the filter kept, in one pass, as tshark."""
    need_tshark()
    args = ["-T", "fields", *[x for f in TIME_FIELDS + IP_FIELDS for x in ("-e", f)]]
    if flt is not None:
        args += ["-Y", flt]
    ours, theirs = _both(DATA / name, args, config_dir)
    assert theirs.strip(), f"tshark kept no frame for {flt!r}: the comparison would be empty"
    assert ours == theirs


def test_count_and_filter_together(config_dir):
    """-c counts frames read; the displayed deltas are those of the frames shown among them."""
    need_tshark()
    args = ["-c", "40", "-Y", "tcp.len > 0", "-T", "fields", "-e", "frame.number", "-e", "frame.time_delta_displayed"]
    ours, theirs = _both(DATA / "v4-two-subflows.pcap", args, config_dir)
    assert len(theirs.splitlines()) > 3
    assert ours == theirs


def test_frames_out_of_time_order(tmp_path, config_dir):
    """A frame captured before the one before it: negative deltas and relative times, as tshark prints them."""
    need_tshark()
    from mptcpspec.capture.pcap import CaptureReader

    frames = list(CaptureReader(DATA / "v4-two-subflows.pcap").frames())[:6]
    path = tmp_path / "backwards.pcap"
    # frame 3 and 5 moved back in time: before frame 1, and between 3 and 4
    stamps = [f[0] for f in frames]
    stamps[2] = stamps[0] - 1_500_000_123
    stamps[4] = stamps[2] + 7
    with open_writer(path, "pcap") as w:
        for f, ts in zip(frames, stamps, strict=True):
            w.write((ts, *f[1:]))
    args = ["-T", "fields", *[x for f in TIME_FIELDS for x in ("-e", f)]]
    ours, theirs = _both(path, args, config_dir)
    assert "\t-1." in theirs
    assert ours == theirs


def test_value_formats():
    assert seconds(0) == "0.000000000"
    assert seconds(1_000_000_001) == "1.000000001"
    assert seconds(-1_500_000_123) == "-1.500000123"
    # tshark's frame.time pads the day of the month to two places with a space
    os.environ["TZ"] = "UTC"
    try:
        import time

        time.tzset()
        assert local_time(1_796_449_200_000_000_123) == "Dec  5, 2026 05:40:00.000000123 UTC"
    finally:
        del os.environ["TZ"]
        time.tzset()
