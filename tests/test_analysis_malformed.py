"""Malformed and cut input: options cut or too long, captures cut at any offset or with random
octets overwritten; the dissector names what is wrong and never raises but CaptureError."""

from __future__ import annotations

import io
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mptcpspec.analysis import Analyzer
from mptcpspec.capture.packets import decode_frame
from mptcpspec.codec.options import CutOption
from mptcpspec.dissect.pipeline import Dissection
from tests.conftest import DATA, need_wireshark
from tests.dissect_helpers import cli, dissect_bytes, experts, mutate, option_at, run


def test_truncated_option_is_malformed():
    done = []

    def change(n, p, data):
        if done or n < 20 or p.payload_len:  # a DATA_ACK on a pure ACK, after the handshake
            return data
        at = option_at(data, p, 2)
        if at < 0 or data[at + 1] < 8:
            return data
        done.append(n)
        b = bytearray(data)
        b[at + 1] = 3  # a DSS of three octets
        return bytes(b)

    infos, _ = dissect_bytes(mutate(DATA / "v4-two-subflows.pcap", change))
    assert done
    e = experts(infos)
    assert e["mptcp.option.malformed"] == 1
    bad = next(i for i in infos if i.number == done[0])
    assert [x.key for x in bad.experts] == ["mptcp.option.malformed"]
    assert "DSS" in bad.experts[0].message


def test_option_space_over_40():
    from tests.test_pcap import ip4_tcp

    opts = b"\x1e\x0c\x20\x03" + b"\0" * 8 + b"\x01" * 32  # 44 octets: the data offset field cannot say so
    frame = bytearray(ip4_tcp(b"", options=opts[:40], flags=0x10))
    infos = [Analyzer().feed(1, 0, len(frame), len(frame), decode_frame(101, bytes(frame)))]
    assert "mptcp.option.space" not in experts(infos)  # 40 octets: at the limit, fine


def test_options_cut_by_the_snapshot_length(tmp_path):
    """editcap -s 90: the options of most segments end inside the capture.  The headers are still
    decoded, the options captured whole are analysed, and what the cut hides raises no warning."""
    editcap = need_wireshark("editcap")
    cut = tmp_path / "cut.pcap"
    subprocess.run([editcap, "-s", "90", str(DATA / "v4-two-subflows.pcap"), str(cut)], check=True)
    infos, d = run(cut)
    whole, _ = run(DATA / "v4-two-subflows.pcap")
    assert all(i.packet is not None for i in infos) and len(infos) == len(whole) == 119
    assert [i.tcp_stream for i in infos] == [i.tcp_stream for i in whole]
    cut_frames = [i for i in infos if i.packet.options_cut]
    assert len(cut_frames) > 40
    for i in cut_frames:
        assert "mptcp.packet.options_cut" in [e.key for e in i.experts]
        ours, full = i.mptcp, whole[i.number - 1].mptcp
        if ours and type(ours[-1]) is CutOption:  # what was captured of it is the whole option's
            part, w = ours[-1], full[len(ours) - 1]
            assert ours[:-1] == full[: len(ours) - 1] and part.option_class in (type(w), None)
            assert all(getattr(w, n) == v for n, v in part.fields if n != "address_ids")
        else:
            assert ours == full[: len(ours)]
    assert set(experts(infos)) <= {"mptcp.packet.options_cut", "mptcp.dss.out_of_order"}
    conns = d.connections()
    assert len(conns) == 1 and len(conns[0].subflows) == 2
    r = cli("dissect", "-r", str(cut), "-c", "5", "--no-tree")
    assert r.returncode == 0 and "[Packet size limited during capture]" in r.stdout


def test_truncated_capture_at_every_offset_never_raises():
    blob = (DATA / "v4-tfo.pcap").read_bytes()
    from mptcpspec.capture.pcap import CaptureError

    for cut in range(0, len(blob), 97):
        d = Dissection(io.BytesIO(blob[:cut]))
        try:
            for _ in d:
                pass
        except CaptureError:
            assert cut < 24


_FUZZ_BASE = [(DATA / n).read_bytes() for n in ("v4-add-addr.pcap", "v4-checksum.pcap", "v4-tfo.pcap")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2),
    st.lists(st.tuples(st.integers(24, 10**6), st.integers(0, 255)), min_size=1, max_size=40),
    st.integers(0, 10**6),
)
def test_mutated_captures_never_crash_the_dissector(which, flips, cut):
    """Octets of real captures overwritten at random (headers, options, payloads), and the file cut:
    dissection, fields, JSON and text all go through without any exception but CaptureError."""
    from mptcpspec.capture.pcap import CaptureError
    from mptcpspec.dissect.fields import FIELDS
    from mptcpspec.dissect.writers import JsonWriter, TextWriter, packet_dict

    blob = bytearray(_FUZZ_BASE[which])
    for at, value in flips:
        blob[at % len(blob)] = value if at % len(blob) >= 24 else blob[at % len(blob)]
    blob = bytes(blob[: max(24, cut % (len(blob) + 1))])
    text, js = TextWriter(io.StringIO()), JsonWriter(io.StringIO())
    d = Dissection(io.BytesIO(blob))
    try:
        for info in d:
            for f in FIELDS.values():
                f.get(info)
            text.write(info)
            js.write(info)
            packet_dict(info)
    except CaptureError:
        pass
    for c in d.connections():
        c.summary()
