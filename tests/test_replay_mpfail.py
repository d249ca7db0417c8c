"""MP_FAIL in the replay engine, without a network (RFC 8684 §3.7): a simulated server behind a
middlebox that changes one octet of one segment finds the DSS checksum wrong and sends MP_FAIL, as
Linux does; the replay echoes it, sends an infinite mapping, and goes on as plain TCP there."""

from __future__ import annotations

import ipaddress
import json
import random

from mptcpspec.capture.packets import decode_frame
from mptcpspec.cli.replay import _report_json, render_event
from mptcpspec.codec import crypto
from mptcpspec.codec.options import (
    Dss,
    DssFlags,
    MpCapable,
    MpCapableFlags,
    MpFail,
    MpJoinSyn,
    MpTcpRst,
    Mss,
    decode_mptcp_options,
)
from mptcpspec.replay import events as ev
from mptcpspec.replay.core import Replay
from mptcpspec.replay.plan import PlannedSegment, PlannedSubflow, ReplayPlan, SubflowKind, make_plan
from mptcpspec.replay.subflow import SubflowState
from mptcpspec.replay.wire import tcp_packet
from tests.conftest import DATA
from tests.test_replay_recovery import LossyServer, Sim

CLIENT = ipaddress.ip_address("198.51.100.1")
SERVER = ipaddress.ip_address("198.51.100.2")
KEY_S = 0x1122334455667788
M32, M64 = 2**32 - 1, 2**64 - 1


def _stream(plan: ReplayPlan) -> bytearray:
    stream = bytearray(plan.data_len)
    for seg in plan.segments:
        stream[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    return stream


class FailingServer:
    """A Linux-like MPTCP server with DSS checksums, one subflow (joins refused with MP_TCPRST),
    behind a middlebox that flips the first octet of the segment mapped at relative DSN ``bad``.

    On that segment's wrong checksum it takes the data anyway and sends MP_FAIL on its ACK (Linux:
    ``mptcp_subflow_fail``); on an infinite mapping it falls back: from there the subflow is one
    byte stream at the data level, its ACKs carry no DSS, a FIN ends the stream and is answered
    with its own FIN."""

    def __init__(self, client_key: int, bad: int) -> None:
        self.idsn_c = crypto.key_idsn(client_key, 1)
        self.idsn_s = crypto.key_idsn(KEY_S, 1)
        self.bad = bad
        self.contig = (self.idsn_c + 1) & M64
        self.chunks: dict[int, bytes] = {}  #: data beyond the DATA_ACK, by DSN
        self.stream = bytearray()
        self.key = None
        self.snd = 7000
        self.rcv = 0
        self.checked = 0  #: DSS checksums verified
        self.fail_sent = False
        self.echo = False  #: our MP_FAIL echoed
        self.fell_back = False
        self.base = (0, 0)  #: (subflow sequence, DSN) of the infinite mapping
        self.fin_at: int | None = None
        self.fin_acked = False
        self.after_fallback: list = []  #: the client's packets after its infinite mapping
        self.got: list = []  #: every client packet that arrived

    def _reply(self, flags: int, options=(), seq: int | None = None) -> bytes:
        (src, sport), (dst, dport) = self.key
        return tcp_packet(dst, src, dport, sport, self.snd if seq is None else seq, self.rcv, flags, 65535, options)

    def _ack_opts(self, extra=()) -> list:
        return [] if self.fell_back else [*extra, Dss(flags=DssFlags(3), data_ack=self.contig)]

    def __call__(self, raw: bytes, now: float) -> list[bytes]:
        p = decode_frame(101, raw)
        self.got.append(p)
        opts = decode_mptcp_options(p.options) if p.options else ()
        flags = int(p.flags)
        if flags & 0x04:
            return []
        if flags & 0x02:
            key = ((p.src, p.sport), (p.dst, p.dport))
            if any(type(o) is MpJoinSyn for o in opts):  # joins refused (path manager limit 0)
                (src, sport), (dst, dport) = key
                return [tcp_packet(dst, src, dport, sport, 0, p.seq + 1, 0x14, 0, [MpTcpRst(reason=3)])]
            self.key = key
            self.rcv = (p.seq + 1) & M32
            flags_s = MpCapableFlags.HMAC_SHA | MpCapableFlags.CHECKSUM_REQUIRED
            mpc = MpCapable(version=1, flags=flags_s, sender_key=KEY_S)
            return [self._reply(0x12, [Mss(mss=1460), mpc], seq=self.snd - 1)]
        if self.key is None or ((p.src, p.sport), (p.dst, p.dport)) != self.key:
            return []
        if self.fell_back:
            self.after_fallback.append(p)
        if any(type(o) is MpFail for o in opts):
            self.echo = True
        if flags & 0x10 and self.fin_at is not None and p.ack == (self.fin_at + 1) & M32:
            self.fin_acked = True
        n = p.payload_len
        if not n and not flags & 0x01:
            return []
        if p.seq != self.rcv:  # no loss here: a duplicate
            return [self._reply(0x10, self._ack_opts())]
        payload = bytearray(p.payload)
        fail = []
        if n and not self.fell_back:
            dss = next((o for o in opts if type(o) is Dss and o.dsn is not None), None)
            mpc = next((o for o in opts if type(o) is MpCapable and o.data_level_length), None)
            if dss is not None and dss.data_level_length == 0:
                self.fell_back = True  # RFC 8684 §3.7: the infinite mapping
                self.base = (p.seq, self.contig)
                self.after_fallback.append(p)
            else:
                dsn, ssn, csum = ((self.idsn_c + 1) & M64, 1, mpc.checksum) if mpc else (dss.dsn, dss.ssn, dss.checksum)
                if ((dsn - self.idsn_c) & M64) == self.bad and not self.fail_sent:
                    payload[0] ^= 0xFF  # the middlebox
                if crypto.dss_checksum(dsn, ssn, n, bytes(payload)) == csum:
                    self.checked += 1
                else:
                    self.fail_sent = True
                    fail = [MpFail(dsn=dsn)]
                self.chunks.setdefault(dsn, bytes(payload))
                self._reassemble()
                payload = bytearray()
        if payload:  # one byte stream: where the data level stands
            assert not self.chunks, "an infinite mapping with data missing below it"
            self.stream += payload
            self.contig = (self.contig + n) & M64
        self.rcv = (self.rcv + n) & M32
        if flags & 0x01:
            assert self.fell_back, "a FIN before the DATA_FIN"
            self.rcv = (self.rcv + 1) & M32
            self.fin_at = self.snd
            self.snd = (self.snd + 1) & M32
            return [self._reply(0x11, seq=self.fin_at)]
        return [self._reply(0x10, self._ack_opts(fail))]

    def _reassemble(self) -> None:
        while self.contig in self.chunks:
            data = self.chunks.pop(self.contig)
            self.stream += data
            self.contig = (self.contig + len(data)) & M64

    def tick(self) -> list[bytes]:
        if self.fin_at is not None and not self.fin_acked:
            return [self._reply(0x11, seq=self.fin_at)]
        return []

    def lose(self, way: int) -> bool:
        return False


def _one_subflow_plan(n: int = 30, size: int = 1000) -> ReplayPlan:
    ps = PlannedSubflow(0, SubflowKind.MP_CAPABLE, (CLIENT, 40000), (SERVER, 5201), None, False, 0, True)
    rng = random.Random(9)
    segs = tuple(PlannedSegment(0, 1 + k * size, rng.randbytes(size), 0, 0) for k in range(n))
    return ReplayPlan(0, 1, True, 0x0102030405060708, (ps,), segs, n * size, 0, True, False, 0)


def _run(plan: ReplayPlan, bad: int, seed: int = 1, timing="fast", server=None):
    core = Replay(plan, target=SERVER, rng=random.Random(seed), timeout=5.0, timing=timing)
    server = (server or FailingServer)(core.keys.client, bad)
    sim = Sim(core, server)
    sent: list = []
    receive = core.receive

    def spy(raw: bytes, now: float) -> list[bytes]:
        out = receive(raw, now)
        sent.extend(decode_frame(101, p) for p in out)
        return out

    core.receive = spy  # what the replay answers, in order
    sim.run()
    return core, server, sent


def test_mp_fail_is_echoed_then_an_infinite_mapping_and_plain_tcp_to_the_end():
    plan = _one_subflow_plan(n=300)  # more than is in flight when MP_FAIL comes back
    bad = 10_001
    core, server, sent = _run(plan, bad)
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    want = _stream(plan)
    want[bad - 1] ^= 0xFF  # what a fallback delivers: the middlebox's change stays
    assert bytes(server.stream) == bytes(want)
    assert server.fail_sent and server.echo and server.fell_back and server.checked > 5
    # the echo: MP_FAIL with the DSN the server named, on the answer to its MP_FAIL
    echoes = [f for f in sent if any(type(o) is MpFail for o in decode_mptcp_options(f.options))]
    assert len(echoes) == 1
    (echo,) = [o for o in decode_mptcp_options(echoes[0].options) if type(o) is MpFail]
    assert echo.dsn == (core.keys.idsn_client + bad) & M64
    # the infinite mapping: data-level length 0, checksum 0, on new data from where the data sent ends
    (inf,) = [e for e in core.events if isinstance(e, ev.InfiniteMapping)]
    (first,) = [p for p in server.after_fallback if p.payload_len][:1]
    (dss,) = decode_mptcp_options(first.options)
    assert type(dss) is Dss and dss.data_level_length == 0 and dss.checksum == 0
    assert dss.dsn == (core.keys.idsn_client + inf.dsn) & M64 and inf.dsn > bad
    assert dss.ssn == inf.sequence == (first.seq - core.subflows[0].isn) & M32
    # no MPTCP option afterwards: no DSS, no DATA_ACK, the FINs plain
    later = server.after_fallback[server.after_fallback.index(first) + 1 :]
    assert later and all(not decode_mptcp_options(p.options) for p in later if p.options)
    assert any(int(p.flags) & 0x01 for p in later)
    (fail,) = [e for e in core.events if isinstance(e, ev.MpFailReceived)]
    assert (fail.dsn, fail.answer) == (bad, ev.MpFailAnswer.INFINITE_MAPPING)
    assert report.fallback.startswith(f"MP_FAIL: a DSS checksum failed on the way; infinite mapping from DSN {inf.dsn}")
    assert "echoed; infinite mapping sent" in report.mp_fail
    assert not report.tcp and report.checksums and report.data_delivered == plan.data_len
    assert core.subflows[0].state is SubflowState.CLOSED
    shown = json.loads(_report_json(report))
    assert (shown["fallback"], shown["mp_fail"], shown["tcp"]) == (report.fallback, report.mp_fail, False)
    lines = [render_event(e) for e in core.events if isinstance(e, ev.MpFailReceived | ev.InfiniteMapping)]
    assert "MP_FAIL from the server: a DSS checksum failed at DSN 10001 (relative): echoed" in lines[0]
    assert f"infinite mapping from DSN {inf.dsn} (relative) at sequence {inf.sequence}" in lines[1]


def test_infinite_mapping_waits_until_the_data_sent_is_contiguous():
    """A two-subflow capture whose join the server refuses: its data goes on the first subflow in
    capture order, not in DSN order; after MP_FAIL the holes are filled first (with their own
    mappings), then the infinite mapping goes where the data sent is contiguous."""
    plan = make_plan(DATA / "v4-checksum.pcap")
    bad = 13289  # a segment sent after later DSNs (capture order)
    core, server, _ = _run(plan, bad, seed=3, timing="as-captured")
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    want = _stream(plan)
    want[bad - 1] ^= 0xFF
    assert bytes(server.stream) == bytes(want)
    assert server.fell_back and server.echo
    assert core.subflows[1].state is SubflowState.FAILED
    assert report.refused_joins and report.data_delivered == plan.data_len


def test_mp_fail_after_the_last_data_keeps_mptcp():
    """MP_FAIL on the last segment: no new data can carry an infinite mapping (Linux puts it on
    new data); the echo goes, and the connection closes as MPTCP, with DATA_FIN."""
    plan = _one_subflow_plan(n=5)
    core = Replay(plan, target=SERVER, rng=random.Random(2), timeout=5.0)
    server = FailingServer(core.keys.client, 4001)
    sim = Sim(core, server)
    sim.run(limit=2.0)
    assert server.fail_sent and server.echo and not server.fell_back
    (fail,) = [e for e in core.events if isinstance(e, ev.MpFailReceived)]
    assert fail.answer is ev.MpFailAnswer.INFINITE_MAPPING
    assert not [e for e in core.events if isinstance(e, ev.InfiniteMapping)]
    assert any(isinstance(e, ev.DataFinSent) for e in core.events)
    assert "infinite mapping not sent" in core.report(sim.now).mp_fail


def test_mp_fail_on_a_reset_subflow_is_reported_and_its_data_goes_on_the_other():
    """Linux with more than one subflow: the bad subflow's reset carries MP_FAIL and MP_TCPRST."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(5), timeout=5.0)
    server = LossyServer(core.keys.client, loss=0.0, seed=1)
    sim = Sim(core, server)
    second = core.subflows[1]
    sim.run(until_events=lambda: sum(u.payload is not None for u in second.unacked) >= 3, limit=5.0)
    dsn = min(u.dsn for u in second.unacked if u.payload is not None)
    server.blackhole = {second.local}
    (src, sport), (dst, dport) = second.remote, second.local
    opts = [MpFail(dsn=(core.keys.idsn_client + dsn) & M64), MpTcpRst(reason=6)]
    rst = tcp_packet(src, dst, sport, dport, second.rcv_nxt or 0, second.snd_nxt, 0x14, 0, opts)
    sim._send(core.receive(rst, sim.now), True)
    sim.run(start=False)
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert bytes(server.stream) == bytes(_stream(plan))
    (fail,) = [e for e in core.events if isinstance(e, ev.MpFailReceived)]
    assert (fail.subflow, fail.dsn, fail.answer) == (1, dsn, ev.MpFailAnswer.SUBFLOW_RESET)
    assert report.fallback is None and "with the server's reset of the subflow" in report.mp_fail


def test_mp_fail_without_reset_while_another_subflow_is_open_resets_that_subflow():
    """RFC 8684 §3.7: with other subflows in use the failing one is closed with a RST (MP_TCPRST
    middlebox interference); its data goes on the others."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(5), timeout=5.0)
    server = LossyServer(core.keys.client, loss=0.0, seed=1)
    sim = Sim(core, server)
    second = core.subflows[1]
    sim.run(until_events=lambda: sum(u.payload is not None for u in second.unacked) >= 3, limit=5.0)
    server.blackhole = {second.local}
    (src, sport), (dst, dport) = second.remote, second.local
    dss = Dss(flags=DssFlags(3), data_ack=server.contig)
    fail = MpFail(dsn=(core.keys.idsn_client + 5000) & M64)
    pkt = tcp_packet(src, dst, sport, dport, second.rcv_nxt or 0, second.snd_una, 0x10, 65535, [fail, dss])
    out = core.receive(pkt, sim.now)
    rsts = [f for f in map(lambda p: decode_frame(101, p), out) if int(f.flags) & 0x04]
    assert len(rsts) == 1 and rsts[0].sport == second.local[1]
    assert decode_mptcp_options(rsts[0].options) == (MpTcpRst(reason=6),)
    sim._send(out, True)
    sim.run(start=False)
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert bytes(server.stream) == bytes(_stream(plan))
    assert second.state is SubflowState.FAILED
    (e,) = [e for e in core.events if isinstance(e, ev.MpFailReceived)]
    assert e.answer is ev.MpFailAnswer.SUBFLOW_CLOSED


class DroppingServer(FailingServer):
    """:class:`FailingServer` that loses the first transmission of two segments: the first data
    segment after its MP_FAIL (a mapping sent before the replay heard of it, sent again after the
    fallback), and our infinite mapping."""

    def __init__(self, client_key: int, bad: int) -> None:
        super().__init__(client_key, bad)
        self.lost: dict[str, int] = {}  #: what was lost: its sequence number

    def __call__(self, raw: bytes, now: float) -> list[bytes]:
        p = decode_frame(101, raw)
        if p.payload_len and self.fail_sent and not self.fell_back:
            dss = [o for o in decode_mptcp_options(p.options) if type(o) is Dss] if p.options else []
            what = "plain" if not dss else "infinite" if dss[0].data_level_length == 0 else "mapping"
            if what != "plain" and what not in self.lost and p.seq not in self.lost.values():
                self.lost[what] = p.seq
                return []
        return super().__call__(raw, now)


def test_lost_segments_around_the_fallback_are_sent_again_as_they_were():
    plan = _one_subflow_plan(n=300)
    core, server, _ = _run(plan, 10_001, seed=4, server=DroppingServer)
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    want = _stream(plan)
    want[10_000] ^= 0xFF
    assert bytes(server.stream) == bytes(want)
    assert set(server.lost) == {"mapping", "infinite"} and server.fell_back
    (inf,) = [e for e in core.events if isinstance(e, ev.InfiniteMapping)]
    isn = core.subflows[0].isn
    assert (server.lost["infinite"] - isn) & M32 == inf.sequence
    # sent again after the fallback: the earlier mapping with its own DSS, the infinite mapping with its
    again = {f.seq: f for f in server.got if f.payload_len and f.seq in server.lost.values()}
    (m,) = decode_mptcp_options(again[server.lost["mapping"]].options)
    assert m.data_level_length == 1000 and m.checksum is not None
    (i,) = decode_mptcp_options(again[server.lost["infinite"]].options)
    assert i.data_level_length == 0 and i.ssn == inf.sequence
    # the earlier mapping was lost before the fallback and went again after it
    assert (server.lost["mapping"] - isn) & M32 < inf.sequence
    first_again = min(
        e.time
        for e in core.events
        if isinstance(e, ev.FastRetransmit | ev.Retransmitted) and e.sequence == (server.lost["mapping"] - isn) & M32
    )
    assert first_again >= inf.time
