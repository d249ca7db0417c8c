"""The analysis at the data level: bytes carried, reinjections, data ranges, gaps, and the DSS
shortcut, on the lab's captures as made and with segments left out or cut."""

from __future__ import annotations

import io

import pytest

from mptcpspec.dissect.pipeline import Dissection
from tests.conftest import CAPTURES, DATA, corpus_unset, tcpdump_captures
from tests.dissect_helpers import cli, dissect_bytes, experts, mutate, option_at, run


def test_data_level_bytes_equal_what_the_applications_sent():
    # (tests/data/README.md says what the lab's applications sent in each capture)
    sent = {
        "v4-two-subflows.pcap": [(32768, 32768)],
        "v4-fastclose.pcap": [(16384, 16384)],
        # the second connection's SYN carries 1000 of its 3000 octets (TCP Fast Open), and the server takes them
        "v4-tfo.pcap": [(3000, 4096), (3000, 4096)],
    }
    for name, want in sent.items():
        _, d = run(DATA / name)
        got = [(s.client_bytes, s.server_bytes) for s in (c.summary() for c in d.connections())]
        assert got == want, name


def test_reinjections_of_a_blackholed_subflow():
    """v4-reinjection.pcap: the joined subflow goes dark mid-transfer; the kernel sends its data again
    on the first subflow.  tshark 4.0 finds the same 7 reinjected segments (the differential test
    compares mptcp.reinjection_of on every packet)."""
    infos, d = run(DATA / "v4-reinjection.pcap")
    again = {i.number: i.reinjection_of for i in infos if i.reinjection_of}
    assert len(again) == 7 and experts(infos)["mptcp.dss.reinjection"] == 7
    s = d.connections()[0].summary()
    assert s.client_reinjected == sum(i.packet.payload_len for i in infos if i.reinjection_of)
    assert s.client_reinjected > 0 and s.server_reinjected == 0
    for n, earlier in again.items():  # the reinjection is on the other subflow, the data the same
        for e in earlier:
            a, b = infos[n - 1], infos[e - 1]
            assert a.subflow is not b.subflow and a.payload_dsn < b.payload_dsn + b.packet.payload_len
            assert b.payload_dsn < a.payload_dsn + a.packet.payload_len
    assert not any(i.reinjected_in for i in infos)  # known to a second pass only
    # Two passes: the links the other way, as Wireshark's mptcp.reinjected_in
    two = list(Dissection(DATA / "v4-reinjection.pcap", two_pass=True))
    back: dict[int, list[int]] = {}
    for n, earlier in again.items():
        for e in earlier:
            back.setdefault(e, []).append(n)
    assert {i.number: list(i.reinjected_in) for i in two if i.reinjected_in} == back
    assert [i.reinjection_of for i in two] == [i.reinjection_of for i in infos]
    with open(DATA / "v4-reinjection.pcap", "rb") as f:  # a file object is read twice too
        assert [i.reinjected_in for i in Dissection(f, two_pass=True)] == [i.reinjected_in for i in two]
    r = cli(
        "dissect",
        "-2",
        "-r",
        str(DATA / "v4-reinjection.pcap"),
        "-Y",
        "mptcp.reinjected_in",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "mptcp.reinjected_in",
    )
    assert r.returncode == 0 and r.stdout.splitlines() == [
        f"{e}\t{','.join(map(str, v))}" for e, v in sorted(back.items())
    ]


def test_a_closed_connection_lets_its_data_ranges_go():
    """Reinjection detection keeps up to 4096 data ranges a side; once every subflow has closed
    they go, so a long capture holds them for the live connections only."""
    _, d = run(DATA / "v4-two-subflows.pcap")
    (conn,) = d.connections()
    assert all(sf.closed for sf in conn.subflows)
    assert all(side.ranges == [] and side.starts == [] for side in conn.sides)
    _, d = run(DATA / "v4-reinjection.pcap")  # its joined subflow never closes
    (conn,) = d.connections()
    assert not all(sf.closed for sf in conn.subflows) and conn.sides[0].ranges


@pytest.mark.parametrize(
    "name, after, server",
    [
        ("v4-fastclose.pcap", 12, False),
        ("v4-two-subflows.pcap", 30, False),
        ("v4-two-subflows.pcap", 40, True),
        ("v6-two-subflows.pcap", 9, True),
    ],
)
def test_data_acknowledged_but_never_captured_is_a_gap(name, after, server):
    """A data segment left out of the capture: the DATA_ACK that covers it raises mptcp.dss.gap,
    for exactly its octets, once; the capture as made raises none."""
    dropped = []

    def change(n, p, data):
        if not dropped and p.payload_len and (p.sport == 5201) == server and n > after:
            dropped.append((n, p.payload_len))
            return b""
        return data

    infos, _ = dissect_bytes(mutate(DATA / name, change))
    ((n, length),) = dropped
    gaps = [(i.number, e.message) for i in infos for e in i.experts if e.key == "mptcp.dss.gap"]
    assert len(gaps) == 1 and f", {length} octets of data sequence space" in gaps[0][1], gaps
    assert gaps[0][0] > n
    assert "mptcp.dss.gap" not in experts(run(DATA / name)[0])


@pytest.mark.parametrize("name", ["v4-two-subflows.pcap", "v4-reinjection.pcap"])
def test_no_gap_is_judged_from_what_a_cut_hides(name):
    """The options of one data segment cut inside its DSS (each in turn): its data is at DSNs the
    capture does not show, so no gap, missing mapping or fallback may be concluded from it."""
    judged = ("mptcp.dss.gap", "mptcp.dss.missing_mapping", "mptcp.fallback", "mptcp.handshake.illegal")
    tried = 0
    for info in run(DATA / name)[0]:
        p = info.packet
        if not (p.payload_len and p.options and info.dss):
            continue
        cut_at = info.number

        def change(n, q, data, cut_at=cut_at, opts=p.options):
            return data[: data.index(opts) + 14] if n == cut_at else data  # 14 option octets: inside the DSS

        infos, _ = dissect_bytes(mutate(DATA / name, change))
        assert infos[cut_at - 1].packet.options_cut
        assert not [e.key for i in infos for e in i.experts if e.key in judged], cut_at
        tried += 1
    assert tried > 40


@pytest.mark.parametrize("name, lost", [("v4-two-subflows.pcap", {6}), ("v4-add-addr.pcap", {8, 12})])
def test_data_of_a_join_whose_syn_was_lost_is_no_gap(name, lost):
    """Without its SYN the join is linked to no connection; its mappings (64-bit DSNs) still say the
    data was captured, so the first subflow's DATA_ACKs find no gap."""
    infos, _ = dissect_bytes(mutate(DATA / name, lambda n, p, data: b"" if n in lost else data))
    assert any(i.connection is not None and i.connection.unlinked for i in infos)
    assert "mptcp.dss.gap" not in experts(infos)


def test_gap_bookkeeping_matches_a_set_of_octets():
    """The data-level holes (SequenceSpace.segment with its shortcuts, seqspace.carried,
    SequenceSpace.acked) against the plainest model: the octets seen, and a DATA_ACK reports each
    octet below it from IDSN + 1 on that was neither seen nor reported before."""
    import random

    from mptcpspec.analysis.model import Side
    from mptcpspec.analysis.seqspace import SequenceSpace

    class Ctx:  # what the two methods read of their PacketContext
        def __init__(self):
            self.reinjection_of: list[int] = []
            self.reported: list[str] = []

        def expert(self, key, message):
            if key == "mptcp.dss.gap":
                self.reported.append(message)

    conn = type("Conn", (), {"fallback": None, "unlinked": False})()
    for seed in range(300):
        rnd = random.Random(seed)
        side, ctx = Side(), Ctx()
        space = SequenceSpace(ctx, [])
        side.idsn = 999
        side.seg_low = side.seg_high = base = 1000  # as when the key is learnt: data starts at IDSN + 1
        seen: set[int] = set()
        reported: set[int] = set()
        for k in range(rnd.randrange(1, 40)):
            if rnd.random() < 0.7:
                start, n = rnd.randrange(base, base + 400), rnd.randrange(1, 30)
                seen.update(range(start, start + n))
                space.segment(side, start, n, 0, k + 1)
            else:
                ack = rnd.randrange(base, base + 450)
                before = len(ctx.reported)
                if ack > side.hole_lo or (side.seg_high is not None and ack > side.seg_high):  # as dss() asks
                    space.acked(side, ack, conn)
                got = sum(int(m.split(", ")[1].split()[0]) for m in ctx.reported[before:])
                want = {o for o in range(base, ack) if o not in seen and o not in reported}
                reported |= want
                assert got == len(want), (seed, k, ack, sorted(want)[:5], ctx.reported[before:])


def _projection(infos) -> list:
    """Every field of every PacketInfo, the subflow and connection by number."""
    out = []
    for i in infos:
        row = {f: getattr(i, f) for f in i.__dataclass_fields__ if f not in ("subflow", "connection")}
        row["subflow"] = None if i.subflow is None else i.subflow.index
        row["connection"] = None if i.connection is None else (i.connection.stream, i.connection.first_frame)
        row["mptcp"] = repr(i.mptcp)  # a MalformedOption holds its DecodeError, equal only to itself
        row["error"] = repr(i.error)
        out.append(row)
    return out


def _scrambled(path, seed: int) -> bytes:
    """The capture with one octet of a DSS option changed in about one segment of five."""
    import random

    rnd = random.Random(seed)

    def change(n, p, data):
        at = option_at(data, p, 2)
        if at < 0 or rnd.random() > 0.2:
            return data
        b = bytearray(data)
        b[at + rnd.randrange(2, data[at + 1])] ^= 1 << rnd.randrange(8)
        return bytes(b)

    return mutate(path, change)


def _dss_sources():
    for p in CAPTURES:  # kernel captures: segments repeat their DSS, not under checksums
        yield pytest.param(lambda p=p: p.read_bytes(), "checksum" not in p.name, id=p.stem)
    corpus = tcpdump_captures()
    for p in corpus or ():
        yield pytest.param(lambda p=p: p.read_bytes(), False, id=p.stem)
    if corpus is None:
        yield corpus_unset(None, False)
    for p in CAPTURES:
        for seed in range(3):
            yield pytest.param(lambda p=p, seed=seed: _scrambled(p, seed), False, id=f"{p.stem}-scrambled{seed}")


@pytest.mark.parametrize("blob, repeats", list(_dss_sources()))
def test_dss_shortcut_changes_nothing(blob, repeats, monkeypatch):
    """A segment that repeats its direction's latest DSS object takes a shortcut in the analysis
    (DssReader.dss); with the shortcut never taken, every packet and connection comes out the same."""
    from mptcpspec.analysis.datalevel import DssReader

    data = blob()
    full = []
    full_dss = DssReader._dss
    monkeypatch.setattr(DssReader, "_dss", lambda self, *args: full.append(1) or full_dss(self, *args))

    def everything():
        full.clear()
        d = Dissection(io.BytesIO(data))
        return _projection(d), [c.summary() for c in d.connections()], dict(d.analyzer.experts), len(full)

    *fast, fast_full = everything()
    monkeypatch.setattr(DssReader, "_remember", lambda self, *args: None)
    *slow, slow_full = everything()
    assert slow == fast
    assert slow_full == sum(len(i["dss"]) for i in fast[0])
    if repeats:
        assert fast_full < slow_full  # the shortcut is taken
