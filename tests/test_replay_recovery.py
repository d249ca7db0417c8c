"""Loss recovery in the replay engine, without a network: the retransmission timer (RFC 6298),
fast retransmit and recovery (RFC 5681, RFC 6582, and RFC 6675 with SACK, RFC 2018), the
congestion window, and a whole replay against a simulated MPTCP server behind a lossy path.

The expected values are worked out from the RFCs' text, step by step, in the tests."""

from __future__ import annotations

import dataclasses
import heapq
import ipaddress
import random

import pytest

from mptcpspec.capture.packets import decode_frame
from mptcpspec.codec import crypto
from mptcpspec.codec.options import (
    Dss,
    DssFlags,
    MpCapable,
    MpCapableFlags,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    Mss,
    Sack,
    SackPermitted,
    decode_mptcp_options,
    decode_tcp_options,
)
from mptcpspec.replay import events as ev
from mptcpspec.replay.core import Replay
from mptcpspec.replay.plan import PlannedSegment, PlannedSubflow, ReplayPlan, SubflowKind, make_plan
from mptcpspec.replay.recovery import Congestion, RtoEstimator, sack_blocks
from mptcpspec.replay.subflow import FAST, NONE, TIMEOUT, SubflowState
from mptcpspec.replay.wire import tcp_packet
from tests.conftest import DATA

CLIENT = ipaddress.ip_address("198.51.100.1")
SERVER = ipaddress.ip_address("198.51.100.2")
KEY_C, KEY_S = 0x0102030405060708, 0x1122334455667788
M32, M64 = 2**32 - 1, 2**64 - 1
SMSS = 1460  # the server's MSS in these tests: the congestion window counts in it


# ------------------------------------------------------------------------------------------------
# RFC 6298: the retransmission timer


def test_rto_from_samples_as_rfc_6298_computes_it():
    est = RtoEstimator(1.0, min_rto=0.0, granularity=0.001)
    assert est.rto == 1.0  # (2.1) the initial RTO, until a sample
    est.sample(0.1)
    # (2.2) SRTT <- R = 0.1, RTTVAR <- R/2 = 0.05, RTO <- SRTT + max(G, K*RTTVAR) = 0.1 + 0.2
    assert (est.srtt, est.rttvar, est.rto) == pytest.approx((0.1, 0.05, 0.3))
    est.sample(0.2)
    # (2.3) RTTVAR <- 3/4 * 0.05 + 1/4 * |0.1 - 0.2| = 0.0625 (with the old SRTT),
    #       SRTT <- 7/8 * 0.1 + 1/8 * 0.2 = 0.1125; RTO = 0.1125 + 4 * 0.0625 = 0.3625
    assert (est.srtt, est.rttvar, est.rto) == pytest.approx((0.1125, 0.0625, 0.3625))
    est.sample(0.1125)
    # RTTVAR <- 3/4 * 0.0625 + 0 = 0.046875; SRTT unchanged; RTO = 0.1125 + 0.1875 = 0.3
    assert (est.srtt, est.rttvar, est.rto) == pytest.approx((0.1125, 0.046875, 0.3))
    est.back_off()  # (5.5) RTO <- RTO * 2
    est.back_off()
    assert est.rto == pytest.approx(1.2) and est.measured() == pytest.approx(0.3)
    for _ in range(20):
        est.back_off()
    assert est.rto == 60.0  # (2.5) a maximum of at least 60 s


def test_rto_floor_and_granularity():
    est = RtoEstimator(0.2, min_rto=0.02, granularity=0.001)
    est.sample(0.0001)  # SRTT 0.0001, RTTVAR 0.00005: SRTT + max(G, 4 * RTTVAR) = 0.0011, below the floor
    assert est.rto == 0.02
    est = RtoEstimator(0.2, min_rto=0.0, granularity=0.001)
    est.sample(0.0001)
    assert est.rto == pytest.approx(0.0001 + 0.001)  # G, not 4 * RTTVAR = 0.0002


def test_congestion_window_per_rfc_5681():
    cc = Congestion(1000)
    assert (cc.cwnd, cc.ssthresh) == (10_000, 1 << 30)  # RFC 6928: ten segments
    cc.acked(3000)  # slow start: cwnd += min(N, L), L = 2 SMSS (RFC 3465)
    assert cc.cwnd == 12_000
    cc.acked(500)
    assert cc.cwnd == 12_500
    cc.halve(12_000)  # a loss: ssthresh = cwnd = max(FlightSize / 2, 2 SMSS)
    assert (cc.cwnd, cc.ssthresh) == (6000, 6000)
    cc.acked(1000)  # congestion avoidance: cwnd += SMSS * SMSS / cwnd = 1000 * 1000 // 6000
    assert cc.cwnd == 6166
    cc.halve(3000)
    assert (cc.cwnd, cc.ssthresh) == (2000, 2000)  # 2 SMSS at least
    cc.timeout(9000, again=False)  # RTO: ssthresh = max(FlightSize / 2, 2 SMSS), cwnd = LW = 1 SMSS
    assert (cc.cwnd, cc.ssthresh) == (1000, 4500)
    cc.timeout(1000, again=True)  # the segment sent on the timeout lost too: ssthresh kept
    assert (cc.cwnd, cc.ssthresh) == (1000, 4500)


def test_sack_blocks_read_from_the_options():
    from mptcpspec.codec.options import encode_tcp_options

    opts = encode_tcp_options([Dss(flags=DssFlags(3), data_ack=9), Sack(edges=(10, 20, 30, 40, 50, 60))])
    assert sack_blocks(opts) == [(10, 20), (30, 40), (50, 60)]
    assert sack_blocks(encode_tcp_options([Dss(flags=DssFlags(3), data_ack=9)])) == []
    assert sack_blocks(b"\x01\x01\x05\x0b" + bytes(9)) == []  # a length that is not 2 + 8n
    assert sack_blocks(b"\x05\x0a\x00") == []  # longer than the options area


# ------------------------------------------------------------------------------------------------
# A replay driven by hand: one subflow, twenty 1000-octet segments


def _plan(n: int = 20, sack: bool = True, size: int = 1000) -> ReplayPlan:
    ps = PlannedSubflow(0, SubflowKind.MP_CAPABLE, (CLIENT, 40000), (SERVER, 5201), None, False, 0, sack)
    segs = tuple(PlannedSegment(0, 1 + k * size, bytes([k]) * size, 0, 0) for k in range(n))
    return ReplayPlan(0, 1, False, KEY_C, (ps,), segs, n * size, 0, True, False, 0)


class Hand:
    """A replay whose server is written by the test: ``ack`` sends one ACK with SACK blocks and
    returns what the replay sent in answer; ``data`` lists the (relative sequence, length) of the
    data segments it sent so far."""

    def __init__(self, sack: bool = True, n: int = 20) -> None:
        self.core = Replay(_plan(n, sack), target=SERVER, rng=random.Random(3), min_rto=0.02)
        (syn,) = self.core.start(0.0)
        self.syn = decode_frame(101, syn)
        self.isn = self.syn.seq
        opts = [Mss(mss=SMSS), MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=KEY_S)]
        if sack:
            opts.append(SackPermitted())
        self.sent: list = []
        self._take(self.core.receive(self._packet(self.isn + 1, opts, flags=0x12, seq=5000), 0.001))
        self.sf = self.core.subflows[0]
        # The server's first DSS (acknowledging nothing yet): it holds the connection, the rest may go.
        idsn = crypto.key_idsn(KEY_C, 1)
        self._take(self.core.receive(self._packet(self.isn + 1, [Dss(flags=DssFlags(3), data_ack=idsn + 1)]), 0.001))

    def _packet(self, ack: int, options, flags: int = 0x10, seq: int = 5001) -> bytes:
        return tcp_packet(SERVER, CLIENT, 5201, 40000, seq, ack & M32, flags, 65535, options)

    def _take(self, out: list[bytes]) -> list:
        frames = [decode_frame(101, p) for p in out]
        self.sent += frames
        return frames

    def rel(self, octet: int) -> int:
        """The absolute sequence number of data octet ``octet`` (0 is the first)."""
        return (self.isn + 1 + octet) & M32

    def ack(self, upto: int, sacks: tuple[tuple[int, int], ...] = (), now: float = 0.01, dss=None, flags=0x10) -> list:
        """Acknowledge data octets below ``upto``, SACK the [a, b) octet ranges; ``dss``: the DSS
        (default: a DATA_ACK of nothing)."""
        edges = tuple(self.rel(x) for a, b in sacks for x in (a, b))
        idsn = crypto.key_idsn(KEY_C, 1)
        dss = Dss(flags=DssFlags(3), data_ack=(idsn + 1) & M64) if dss is None else dss
        opts = ([Sack(edges=edges)] if edges else []) + [dss]
        return self._take(self.core.receive(self._packet(self.rel(upto), opts, flags=flags), now))

    def poll(self, now: float) -> list:
        return self._take(self.core.poll(now))

    def data(self, frames=None) -> list[tuple[int, int]]:
        frames = self.sent if frames is None else frames
        return [((f.seq - self.isn - 1) & M32, f.payload_len) for f in frames if f.payload_len]


@pytest.mark.parametrize("left", [1, 2])
def test_a_lone_segment_waits_for_a_delayed_ack_before_it_is_probed(left):
    """RFC 8985 §7.2 (Linux's tcp_schedule_loss_probe): the probe's timeout is 2 SRTT plus 2 ms,
    or plus the least RTO when one segment is in flight, which the server may be acknowledging
    late on purpose (a delayed ACK): then the RTO comes first, and no probe goes before it."""
    h = Hand(n=left + 1)
    assert h.data() == [(k * 1000, 1000) for k in range(left + 1)]
    h.ack(1000, now=0.011)
    sf = h.sf
    srtt = sf.rtt.srtt
    assert srtt is not None and (sf.snd_nxt - sf.snd_una) & M32 == left * 1000
    if left == 1:
        assert not sf.probing and sf.rto_at == pytest.approx(0.011 + sf.rtt.rto)
        assert 2 * srtt + 0.002 < sf.rtt.rto < 2 * srtt + sf.rtt.min_rto  # the probe it used to be
    else:
        assert sf.probing and sf.rto_at == pytest.approx(0.011 + 2 * srtt + 0.002)


def test_initial_window_is_ten_segments():
    h = Hand()
    # RFC 6928: IW = min(10 * MSS, max(2 * MSS, 14600)) = 14600 octets: fourteen 1000-octet segments.
    assert h.data() == [(k * 1000, 1000) for k in range(14)]
    assert h.sf.cc.cwnd == 10 * SMSS


def test_third_duplicate_ack_triggers_fast_retransmit_without_sack():
    h = Hand(sack=False)
    assert not h.sf.sack_ok
    h.sent.clear()
    h.ack(1000)  # segment 0 acknowledged; slow start: cwnd = 14600 + min(1000, 2 SMSS) = 15600
    assert h.sf.cc.cwnd == 15600
    # 13000 in flight: room for two more segments (15000 <= 15600 < 16000)
    assert h.data() == [(14000, 1000), (15000, 1000)] and h.sf.flight() == 15000
    # Segment 1 lost: each later segment arriving makes a duplicate ACK of 1000 (RFC 5681 §2).
    assert h.data(h.ack(1000)) == []
    assert h.data(h.ack(1000)) == []
    assert h.sf.recovery == NONE and h.sf.dupacks == 2
    out = h.ack(1000)
    # The third: segment 1 sent again at once (RFC 5681 §3.2 step 2), ssthresh = max(FlightSize / 2,
    # 2 SMSS) = 7500, cwnd = ssthresh + 3 SMSS = 7500 + 4380 = 11880 (step 3)
    assert h.data(out)[0] == (1000, 1000)
    assert (h.sf.cc.ssthresh, h.sf.cc.cwnd) == (7500, 11880) and h.sf.recovery == FAST
    fast = [e for e in h.core.events if isinstance(e, ev.FastRetransmit)]
    assert [(e.sequence, e.cwnd, e.ssthresh, e.sack) for e in fast] == [(1001, 11880, 7500, False)]
    # A fourth duplicate inflates cwnd by SMSS (step 4); the retransmission is not sent twice.
    out = h.ack(1000)
    assert h.sf.cc.cwnd == 11880 + SMSS and (1000, 1000) not in h.data(out)
    # A partial ACK (RFC 6582 §3.2 step 5): segment 3 lost too, sent at once.
    out = h.ack(3000)
    assert (3000, 1000) in h.data(out)
    # The full ACK of RecoveryPoint ends recovery with cwnd = ssthresh (step 3 of §3.2).
    h.ack(16000)
    assert h.sf.recovery == NONE and h.sf.cc.cwnd == 7500


def test_sacked_data_is_never_sent_again():
    h = Hand(sack=True)
    assert h.sf.sack_ok
    h.sent.clear()
    # Segment 0 lost; 1, 2, 3 arrive: three SACKed segments above it (RFC 6675 IsLost, DupThresh 3).
    h.ack(0, ((1000, 2000),))
    h.ack(0, ((1000, 3000),))
    # Not lost yet, but SACKed segments left the network: pipe = 14000 - 2000 = 12000 octets, and
    # cwnd 14600 lets two new segments go (RFC 6675 §5 step 3, as Limited Transmit, RFC 3042).
    assert h.sf.recovery == NONE and h.data() == [(14000, 1000), (15000, 1000)]
    out = h.ack(0, ((1000, 4000),))
    # FlightSize = 16000: ssthresh = cwnd = 8000 (RFC 6675 §5 step 4.2); segment 0 sent again (4.3)
    assert h.data(out) == [(0, 1000)]
    assert (h.sf.cc.ssthresh, h.sf.cc.cwnd) == (8000, 8000) and h.sf.recovery == FAST
    # pipe (SetPipe): segments 4..15 (12000, not SACKed, not lost) + segment 0 sent again (1000)
    assert h.sf.pipe() == 13000
    # More SACKs: 4..15 arrive; each frees room; never is a SACKed segment sent again.
    for k in range(5, 17):
        h.ack(0, ((1000, k * 1000),))
    sacked = set(range(1000, 16000, 1000))
    assert not [s for s, _ in h.data()[2:] if s in sacked]  # after the first sending of 14000 and 15000
    # A timeout on top: every segment not SACKed is taken for lost (RFC 6675 §5.1), still none of those.
    for _ in range(3):  # a tail loss probe may go first
        h.poll(h.sf.rto_at)
        if h.sf.recovery == TIMEOUT:
            break
    assert h.sf.recovery == TIMEOUT and h.sf.cc.cwnd == SMSS
    assert not [s for s, _ in h.data()[2:] if s in sacked]
    assert h.data()[-1] == (0, 1000)


def test_cwnd_halves_on_loss_after_slow_start():
    h = Hand(sack=True, n=60)
    # Slow start: every segment acknowledged in order, one ACK each (cwnd += SMSS per ACK of 1000).
    acked = 0
    for _ in range(20):
        acked += 1000
        h.ack(acked)
    # cwnd = 14600 + 20 * 1000; as many 1000-octet segments in flight as it holds
    assert h.sf.cc.cwnd == 34600 and h.sf.flight() == 34000
    # The next segment lost, three above it SACKed: ssthresh = cwnd = max(FlightSize / 2, 2 SMSS)
    # = 17000 (RFC 5681 §3.1 (4), RFC 6675 §5 step 4.2): the full window halved.
    h.ack(acked, ((acked + 1000, acked + 4000),))
    assert (h.sf.cc.cwnd, h.sf.cc.ssthresh) == (17000, 17000) and h.sf.recovery == FAST


def test_rtt_samples_follow_karns_rule():
    h = Hand(sack=False)
    sf = h.sf
    assert sf.rtt.srtt == pytest.approx(0.001)  # the SYN's round trip (SYN at 0, SYN/ACK at 0.001)
    sf.rtt = RtoEstimator(1.0, min_rto=0.02)  # from here on, the data's samples alone
    # Segments 0..13 sent at 0.001; the ACK of the first two at 0.101: R = 0.1, RTO = 0.1 + 4 * 0.05.
    # Slow start: cwnd 14600 + 2000 = 16600 over 12000 in flight lets segments 14 to 17 go at 0.101.
    h.ack(2000, now=0.101)
    assert sf.rtt.srtt == pytest.approx(0.1) and sf.rto == pytest.approx(0.3)
    # The timer expires at 0.401 (restarted by that ACK, RFC 6298 §5.3): segment 2 sent again, RTO
    # doubled (§5.5); a timeout: cwnd = 1 SMSS.
    at = sf.rto_at
    assert at == pytest.approx(0.401)
    out = h.poll(at)
    assert h.data(out) == [(2000, 1000)] and sf.rto == pytest.approx(0.6) and sf.cc.cwnd == SMSS
    # The ACK of the segment sent twice gives no sample (Karn's algorithm, RFC 6298 §3): the RTO
    # stays backed off.  (After a timeout what is outstanding goes again as the window opens.)
    h.ack(3000, now=at + 0.05)
    h.ack(18000, now=at + 0.06)
    assert sf.rtt.srtt == pytest.approx(0.1) and sf.rto == pytest.approx(0.6)
    assert sf.recovery == NONE  # RecoveryPoint (18000) acknowledged
    # New data, sent once at at + 0.06, acknowledged 0.1 s later: a sample again, and the RTO from
    # it: RTTVAR = 3/4 * 0.05 + 1/4 * |0.1 - 0.1| = 0.0375, SRTT = 0.1, RTO = 0.1 + 4 * 0.0375.
    h.ack(19000, now=at + 0.16)
    assert sf.rtt.srtt == pytest.approx(0.1) and sf.rtt.rttvar == pytest.approx(0.0375)
    assert sf.rto == pytest.approx(0.25)


def test_a_data_fin_sent_again_is_acknowledged_again_and_the_subflow_closes():
    """The cause of the 2 s resets once seen under loss (lab capture): our DATA_ACK of the server's
    DATA_FIN was lost; the server sent its DATA_FIN again and again, keeping its subflows open
    until it is acknowledged (Linux closes them only then), and the replay never answered a
    DATA_FIN it had already taken.  It answers each one now (RFC 8684 §3.3.3)."""
    h = Hand(sack=True, n=2)
    idsn_c, idsn_s = crypto.key_idsn(KEY_C, 1), crypto.key_idsn(KEY_S, 1)
    # All data acknowledged at both levels: our DATA_FIN goes (DSN 2001, relative).
    out = h.ack(2000, dss=Dss(flags=DssFlags(3), data_ack=(idsn_c + 2001) & M64))
    (dfin,) = [
        d for f in out for d in decode_mptcp_options(f.options) if type(d) is Dss and d.flags & DssFlags.DATA_FIN
    ]
    assert dfin.dsn == (idsn_c + 2001) & M64
    # The server acknowledges it and sends its own DATA_FIN (no data of its own: DSN IDSN + 1).
    server_dfin = Dss(
        flags=DssFlags(0x1F), data_ack=(idsn_c + 2002) & M64, dsn=(idsn_s + 1) & M64, ssn=0, data_level_length=1
    )
    out = h.ack(2000, dss=server_dfin, now=0.02)
    acks = [d.data_ack for f in out for d in decode_mptcp_options(f.options) if type(d) is Dss]
    assert (idsn_s + 2) & M64 in acks  # DATA_ACK[DFIN] ... lost on the way
    assert h.core.closure_state.name == "M_TIME_WAIT"
    # ... so the server sends its DATA_FIN again: it is acknowledged again.
    out = h.ack(2001, dss=server_dfin, now=0.25)
    acks = [d.data_ack for f in out for d in decode_mptcp_options(f.options) if type(d) is Dss]
    assert acks == [(idsn_s + 2) & M64]
    # The server, its DATA_FIN acknowledged, closes the subflow: FIN; the FIN exchange ends it.
    fin = tcp_packet(
        SERVER,
        CLIENT,
        5201,
        40000,
        5001,
        h.rel(2001),
        0x11,
        65535,
        [Dss(flags=DssFlags(3), data_ack=(idsn_c + 2002) & M64)],
    )
    h.core.receive(fin, 0.26)
    assert h.core.closure_state.name == "M_CLOSED" and h.sf.state is SubflowState.CLOSED
    closed = [e for e in h.core.events if isinstance(e, ev.SubflowClosed)]
    assert [e.how for e in closed] == [ev.CloseHow.FIN_EXCHANGE]
    # TIME-WAIT: the server's FIN again (our ACK lost) is acknowledged again, then the replay is over.
    assert not h.core.done and h.core.deadline() == pytest.approx(0.26 + 0.5)
    (again,) = h.core.receive(fin, 0.46)
    a = decode_frame(101, again)
    assert int(a.flags) == 0x10 and a.ack == (5001 + 1) % 2**32
    h.core.poll(0.76)
    assert h.core.done and h.core.report(1.0).elapsed == pytest.approx(0.26)


def test_a_fin_again_on_a_closed_subflow_is_acknowledged_while_the_connection_is_open():
    """A subflow closed by its FIN exchange while another still runs: the server's FIN sent again
    (our last ACK lost) is acknowledged again, else its subflow stays in LAST-ACK (seen in the lab,
    the server's FIN sent again for 3 s)."""
    core = Replay(make_plan(DATA / "v4-two-subflows.pcap"), target=SERVER, rng=random.Random(7))
    server = LossyServer(core.keys.client, loss=0.0, seed=1)
    Sim(core, server).run(until_events=lambda: len(core.subflows[1].history) > 3, limit=1.0)
    sf, other = core.subflows
    sf.enter(SubflowState.CLOSED)  # as after its FIN exchange
    sf.peer_fin, sf.rcv_nxt = True, (sf.rcv_nxt or 0) + 1
    assert other.state is SubflowState.ESTABLISHED and not core.done
    (lo, lp), (ro, rp) = sf.local, sf.remote
    fin = tcp_packet(ro, lo, rp, lp, (sf.rcv_nxt - 1) & M32, sf.snd_nxt, 0x11, 65535)
    (ack,) = core.receive(fin, 0.5)
    a = decode_frame(101, ack)
    assert int(a.flags) == 0x10 and a.ack == sf.rcv_nxt and a.dport == rp
    assert core.receive(tcp_packet(ro, lo, rp, lp, sf.rcv_nxt, sf.snd_nxt, 0x10, 65535), 0.5) == []


def test_stalled_subflow_data_is_reinjected_on_another():
    """RFC 8684 §3.3.6: on a retransmission timeout, the subflow's data the connection has not
    acknowledged goes on the other subflow too."""
    core = Replay(make_plan(DATA / "v4-two-subflows.pcap"), target=SERVER, rng=random.Random(7))
    server = LossyServer(core.keys.client, loss=0.0, seed=1)
    # Everything from the first subflow is dropped once both subflows are up: its timer expires.
    server.blackhole = {core.subflows[0].local}
    sim = Sim(core, server)
    sim.run(until_events=lambda: any(isinstance(e, ev.Reinjected) for e in core.events), limit=5.0)
    (r, *_) = [e for e in core.events if isinstance(e, ev.Reinjected)]
    assert (r.subflow, r.stalled) == (1, 0) and r.segments > 0


def test_join_refused_before_the_connection_is_held_is_opened_again_once_it_is():
    """Our MP_CAPABLE third ACK lost, the MP_JOIN SYN overtakes the data that repeats it: the server
    has no connection for the token yet and resets the join.  It is opened again once the server's
    DSS shows it holds the connection (the kernel's client opens joins only then)."""
    core = Replay(make_plan(DATA / "v4-two-subflows.pcap"), target=SERVER, rng=random.Random(7))
    (syn,) = core.start(0.0)
    p = decode_frame(101, syn)
    mpc = MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=KEY_S)
    out = core.receive(tcp_packet(p.dst, p.src, p.dport, p.sport, 6999, p.seq + 1, 0x12, 65535, [mpc]), 0.001)
    join = next(f for f in map(lambda b: decode_frame(101, b), out) if int(f.flags) == 0x02)
    rst = tcp_packet(join.dst, join.src, join.dport, join.sport, 0, join.seq + 1, 0x14, 0)
    assert core.receive(rst, 0.002) == []
    sf = core.subflows[1]
    assert sf.state is SubflowState.NEW and not core.done
    assert [type(o).__name__ for o in decode_mptcp_options(join.options)] == ["MpJoinSyn"]
    assert not [f for f in map(lambda b: decode_frame(101, b), core.poll(0.003)) if int(f.flags) == 0x02]
    # The server's first DSS on the first subflow: the connection is held; the join goes again.
    idsn = crypto.key_idsn(core.keys.client, 1)
    ack = tcp_packet(
        p.dst, p.src, p.dport, p.sport, 7000, p.seq + 1001, 0x10, 65535, [Dss(flags=DssFlags(3), data_ack=idsn + 1001)]
    )
    again = [f for f in map(lambda b: decode_frame(101, b), core.receive(ack, 0.004)) if int(f.flags) == 0x02]
    assert len(again) == 1 and again[0].sport == join.sport and sf.state is SubflowState.SYN_SENT
    resets = [e for e in core.events if isinstance(e, ev.SubflowReset)]
    assert [e.subflow for e in resets] == [1] and sf.history == [
        SubflowState.NEW,
        SubflowState.SYN_SENT,
        SubflowState.NEW,
        SubflowState.SYN_SENT,
    ]


# ------------------------------------------------------------------------------------------------
# A simulated MPTCP server behind a lossy path


class Flow:
    __slots__ = ("snd", "rcv", "ooo", "fin_at", "fin_acked", "last_sack", "isn_c", "join")

    def __init__(self, snd: int, rcv: int, isn_c: int, join: bool) -> None:
        self.snd, self.rcv, self.isn_c, self.join = snd, rcv, isn_c, join
        self.ooo: dict[int, tuple[int, bytes, int | None, bool]] = {}  # seq -> (len, payload, dsn, fin)
        self.fin_at: int | None = None  # our FIN's sequence number, once sent
        self.fin_acked = False
        self.last_sack: list[int] = []  # the latest out-of-order segments, newest first (RFC 2018 §4)


class LossyServer:
    """A strict MPTCP server: in-order delivery per subflow (out-of-order segments kept and SACKed
    when SACK was offered, RFC 2018), data level reassembled by DSN, one ACK per segment, DATA_FIN
    and FIN answered, its own FINs and DATA_FIN sent again until acknowledged.  ``loss``: the
    chance of dropping each packet, each way."""

    def __init__(self, client_key: int, loss: float, seed: int) -> None:
        self.client_key = client_key
        self.idsn_c = crypto.key_idsn(client_key, 1)
        self.idsn_s = crypto.key_idsn(KEY_S, 1)
        self.contig = (self.idsn_c + 1) & M64
        self.chunks: dict[int, bytes] = {}
        self.stream = bytearray()
        self.flows: dict[tuple, Flow] = {}
        self.rng = random.Random(seed)
        self.loss = loss
        self.dfin_sent = False
        self.dfin_acked = False
        self.blackhole: set = set()
        self.dropped = [0, 0]
        self.sack = False

    def lose(self, way: int) -> bool:
        if self.loss and self.rng.random() < self.loss:
            self.dropped[way] += 1
            return True
        return False

    def _reply(self, f: Flow, key, flags: int, options=(), seq: int | None = None) -> bytes:
        (src, sport), (dst, dport) = key
        return tcp_packet(dst, src, dport, sport, f.snd if seq is None else seq, f.rcv, flags, 65535, options)

    def _dss(self) -> Dss:
        if self.dfin_sent:
            return Dss(
                flags=DssFlags(0x1F), data_ack=self.contig, dsn=(self.idsn_s + 1) & M64, ssn=0, data_level_length=1
            )
        return Dss(flags=DssFlags(0x03), data_ack=self.contig)

    def _sack(self, f: Flow) -> list:
        if f.rcv is None or not f.ooo or not self.sack:
            return []
        ranges: list[list[int]] = []
        for seq in sorted(f.ooo, key=lambda s: (s - f.rcv) & M32):
            n = f.ooo[seq][0] + f.ooo[seq][3]
            if ranges and ranges[-1][1] == seq:
                ranges[-1][1] = (seq + n) & M32
            else:
                ranges.append([seq, (seq + n) & M32])
        # the block of the newest segment first, then the others (RFC 2018 §4), at most three
        newest = f.last_sack[0] if f.last_sack else None
        ranges.sort(key=lambda r: 0 if newest is not None and ((newest - r[0]) & M32) < ((r[1] - r[0]) & M32) else 1)
        return [Sack(edges=tuple(x for r in ranges[:3] for x in r))]

    def _deliver(self, dsn: int, payload: bytes) -> None:
        """Data at ``dsn`` in order on its subflow: the stream grows over what is now contiguous."""
        if payload:
            self.chunks.setdefault(dsn, payload)
        progress = True
        while progress:
            progress = False
            for start in list(self.chunks):
                data = self.chunks[start]
                skip = (self.contig - start) & M64
                if skip >= 1 << 63:
                    continue  # beyond the DATA_ACK: later
                del self.chunks[start]
                if skip < len(data):
                    self.stream += data[skip:]
                    self.contig = (self.contig + len(data) - skip) & M64
                    progress = True

    def __call__(self, raw: bytes, now: float) -> list[bytes]:
        p = decode_frame(101, raw)
        key = ((p.src, p.sport), (p.dst, p.dport))
        if (p.src, p.sport) in self.blackhole and key in self.flows and self.flows[key].rcv is not None:
            if len(self.flows) > 1:
                return []
        opts = decode_mptcp_options(p.options) if p.options else ()
        flags = int(p.flags)
        if flags & 0x04:
            return []
        if flags & 0x02:
            self.sack = any(type(o) is SackPermitted for o in decode_tcp_options(p.options, strict=False).options)
            f = self.flows.get(key)
            if f is None:
                f = self.flows[key] = Flow(7000, (p.seq + 1) & M32, p.seq, any(type(o) is MpJoinSyn for o in opts))
            tcp = [Mss(mss=SMSS)] + ([SackPermitted()] if self.sack else [])
            for o in opts:
                if type(o) is MpCapable:
                    mpc = MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=KEY_S)
                    return [self._reply(f, key, 0x12, tcp + [mpc], seq=6999)]
                if type(o) is MpJoinSyn:
                    hmac = crypto.join_synack_hmac(KEY_S, self.client_key, 77, o.nonce, 1)
                    join = MpJoinSynAck(address_id=0, truncated_hmac=hmac, nonce=77)
                    return [self._reply(f, key, 0x12, tcp + [join], 6999)]
            return []
        f = self.flows.get(key)
        if f is None:
            return []
        out = []
        if flags & 0x10 and f.fin_at is not None and p.ack == (f.fin_at + 1) & M32:
            f.fin_acked = True
        dsn = None
        dfin = False
        for o in opts:
            if type(o) is MpJoinAck:
                out.append(self._reply(f, key, 0x10, [self._dss()]))
            if type(o) is MpCapable and o.data_level_length:
                dsn = (self.idsn_c + 1) & M64
            elif type(o) is Dss:
                if o.data_ack is not None and self.dfin_sent and not self.dfin_acked:
                    if ((o.data_ack - self.idsn_s - 2) & M64) < 1 << 63:
                        # Our DATA_FIN acknowledged: the connection is closed; its subflows close
                        # (Linux closes them then, not before).
                        self.dfin_acked = True
                        out += self._close_subflows()
                if o.dsn is not None:
                    # a mapping may span segments (a burst cut by GSO): this one's place in it
                    inside = (p.seq - f.isn_c - (o.ssn or 0)) & M32
                    dsn = (o.dsn + inside) & M64 if inside < (o.data_level_length or 0) else o.dsn
                    dfin = bool(o.flags & DssFlags.DATA_FIN)
        n = p.payload_len
        fin = bool(flags & 0x01)
        if dfin and not n:
            end = (dsn or 0) & M64
            if end == self.contig:
                self.contig = (self.contig + 1) & M64
                self.dfin_sent = True
            if self.dfin_sent:
                out.append(self._reply(f, key, 0x10, [self._dss()]))
            return out
        if not n and not fin:
            return out
        off = (p.seq - f.rcv) & M32
        if off == 0 or off < 1 << 31:
            if off:
                f.ooo[p.seq] = (n, p.payload, dsn, fin)
                f.last_sack = [p.seq]
            else:
                f.ooo[p.seq] = (n, p.payload, dsn, fin)
                while f.rcv in f.ooo:
                    n2, pay, d, fn = f.ooo.pop(f.rcv)
                    if d is not None:
                        self._deliver(d, pay)
                    f.rcv = (f.rcv + n2 + fn) & M32
        options = self._sack(f) + [self._dss()]
        if f.fin_at is not None and not f.fin_acked:
            out.append(self._reply(f, key, 0x11, options, seq=f.fin_at))
        else:
            out.append(self._reply(f, key, 0x10, options))
        return out

    def _close_subflows(self) -> list[bytes]:
        """Our FIN on every subflow that has not sent one."""
        out = []
        for key, f in self.flows.items():
            if f.fin_at is None and f.rcv is not None:
                f.fin_at = f.snd
                f.snd = (f.snd + 1) & M32
                out.append(self._reply(f, key, 0x11, [self._dss()], seq=f.fin_at))
        return out

    def tick(self) -> list[bytes]:
        """Its own timers: FINs and the DATA_FIN not yet acknowledged, again (the DATA_FIN on every
        subflow, as Linux does)."""
        out = []
        for key, f in self.flows.items():
            if f.fin_at is not None and not f.fin_acked:
                out.append(self._reply(f, key, 0x11, [self._dss()], seq=f.fin_at))
            elif self.dfin_sent and not self.dfin_acked:
                out.append(self._reply(f, key, 0x10, [self._dss()]))
        return out


class Sim:
    """The replay and the server, with a one-way delay and the server's loss, in simulated time."""

    def __init__(self, core: Replay, server: LossyServer, delay: float = 0.0005) -> None:
        self.core, self.server, self.delay = core, server, delay
        self.queue: list = []
        self.seq = 0
        self.now = 0.0
        self.tick_at = 0.05

    def _send(self, packets: list[bytes], to_server: bool) -> None:
        for pkt in packets:
            if self.server.lose(0 if to_server else 1):
                continue
            self.seq += 1
            heapq.heappush(self.queue, (self.now + self.delay, self.seq, to_server, pkt))

    def run(self, limit: float = 30.0, until_events=None, start: bool = True) -> None:
        core = self.core
        if start:
            self._send(core.start(0.0), True)
        while not core.done and self.now < limit:
            if until_events is not None and until_events():
                return
            deadline = core.deadline()
            times = [t for t in (deadline, self.queue[0][0] if self.queue else None, self.tick_at) if t is not None]
            self.now = max(self.now, min(times))
            while self.queue and self.queue[0][0] <= self.now:
                _, _, to_server, pkt = heapq.heappop(self.queue)
                if to_server:
                    self._send(self.server(pkt, self.now), False)
                else:
                    self._send(core.receive(pkt, self.now), True)
            if self.now >= self.tick_at:
                self._send(self.server.tick(), False)
                self.tick_at = self.now + 0.05
            self._send(core.poll(self.now), True)


@pytest.mark.parametrize("seed", range(6))
def test_whole_replay_over_a_lossy_path_delivers_quickly_and_closes_cleanly(seed):
    """5 % of the packets lost each way: the server reads the whole stream, the close is a FIN
    exchange on every subflow, and the replay takes tens of round trips, not seconds of timeouts."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(seed), timeout=5.0)
    server = LossyServer(core.keys.client, loss=0.05, seed=100 + seed)
    Sim(core, server).run()
    report = core.report(sim_end := core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    stream = bytearray(plan.data_len)
    for seg in plan.segments:
        stream[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    assert bytes(server.stream) == bytes(stream)
    closed = [e for e in core.events if isinstance(e, ev.SubflowClosed)]
    assert {e.how for e in closed} == {ev.CloseHow.FIN_EXCHANGE}, closed
    assert all(s.state is SubflowState.CLOSED for s in core.subflows)
    assert sim_end < 1.0, (sim_end, server.dropped)


class WithholdingServer(LossyServer):
    """Acknowledges every segment on its subflow, but the first time the stream's last octets come
    keeps them from the data level (no DATA_ACK covers them), as Linux can until more data comes;
    never answers the SYNs from ``silent`` (a join its firewall drops)."""

    def __init__(self, client_key: int, end: int, silent: tuple) -> None:
        super().__init__(client_key, loss=0.0, seed=0)
        self.end, self.silent, self.withheld = end, silent, 0

    def _deliver(self, dsn: int, payload: bytes) -> None:
        if payload and not self.withheld and ((dsn + len(payload) - self.idsn_c - 1) & M64) == self.end:
            self.withheld += 1
            return
        super()._deliver(dsn, payload)

    def __call__(self, pkt: bytes, now: float) -> list[bytes]:
        src = (ipaddress.ip_address(pkt[12:16]), int.from_bytes(pkt[20:22], "big"))
        return [] if src == self.silent else super().__call__(pkt, now)


def test_data_acknowledged_by_the_subflow_only_goes_again_while_a_join_is_unanswered():
    """RFC 8684 §3.3.6: the server's subflow acknowledged the last data but its DATA_ACK never
    covered it; a join whose SYN goes unanswered holds no data, so it must not keep the
    connection-level retransmission back: the data goes again on the first subflow, and the
    replay ends cleanly instead of waiting for a server that has nothing more to say."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(0), timeout=5.0)
    join = core.subflows[1]
    server = WithholdingServer(core.keys.client, plan.data_len, join.local)
    Sim(core, server).run()
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert server.withheld == 1 and bytes(server.stream) == _stream(plan)
    again = [e for e in core.events if isinstance(e, ev.DataRetransmitted)]
    assert again and again[0].subflow == 0, core.events
    assert join.state is SubflowState.FAILED and "never opened" in (join.result or "")
    assert (core.conn.ended_at or 99) < 2.0


class SlowJoinServer(LossyServer):
    """Leaves the SYNs from ``join`` unanswered for ``hold`` seconds after the first (Linux answers
    no MP_JOIN for a connection its application has not accepted yet)."""

    def __init__(self, client_key: int, join: tuple, hold: float) -> None:
        super().__init__(client_key, loss=0.0, seed=0)
        self.join, self.hold, self.first = join, hold, None

    def __call__(self, pkt: bytes, now: float) -> list[bytes]:
        src = (ipaddress.ip_address(pkt[12:16]), int.from_bytes(pkt[20:22], "big"))
        if src == self.join:
            self.first = now if self.first is None else self.first
            if now < self.first + self.hold:
                return []
        return super().__call__(pkt, now)


def test_the_close_waits_for_a_join_in_its_handshake():
    """All the data on the first subflow, a join the server answers only after 0.3 s: the close
    waits for it (up to a second, as data planned on it would), so the connection ends with both
    subflows, each closed by a FIN exchange, as in the capture."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    segments = tuple(dataclasses.replace(seg, subflow=0) for seg in plan.segments)
    plan = dataclasses.replace(plan, segments=segments)
    core = Replay(plan, target=SERVER, rng=random.Random(0), timeout=5.0)
    join = core.subflows[1]
    server = SlowJoinServer(core.keys.client, join.local, 0.3)
    Sim(core, server).run()
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert bytes(server.stream) == _stream(plan)
    assert [s.state for s in core.subflows] == [SubflowState.CLOSED, SubflowState.CLOSED], core.events
    closed = [e for e in core.events if isinstance(e, ev.SubflowClosed)]
    assert {e.how for e in closed} == {ev.CloseHow.FIN_EXCHANGE} and len(closed) == 2
    assert 0.3 < (core.conn.ended_at or 99) < 1.5


def _stream(plan: ReplayPlan) -> bytes:
    out = bytearray(plan.data_len)
    for seg in plan.segments:
        out[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    return bytes(out)


def test_a_subflow_reset_by_the_server_leaves_its_data_to_the_other():
    """RFC 8684 §3.3.6: the server resets the second subflow with data in flight; that data (not
    acknowledged at data level) goes on the first at once, and the stream arrives whole."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(5), timeout=5.0)
    server = LossyServer(core.keys.client, loss=0.0, seed=1)
    sim = Sim(core, server)
    second = core.subflows[1]
    sim.run(until_events=lambda: sum(u.payload is not None for u in second.unacked) >= 3, limit=5.0)
    in_flight = [u.dsn for u in second.unacked if u.payload is not None]
    assert len(in_flight) >= 3
    server.blackhole = {second.local}  # what was in flight on it never arrives
    (src, sport), (dst, dport) = second.remote, second.local
    rst = tcp_packet(src, dst, sport, dport, second.rcv_nxt or 0, second.snd_nxt, 0x14, 0)
    out = core.receive(rst, sim.now)
    moved = [e for e in core.events if isinstance(e, ev.Reinjected)]
    assert len(moved) == 1 and (moved[0].subflow, moved[0].stalled, moved[0].reset) == (None, 1, True)
    assert moved[0].segments == len(in_flight) and moved[0].dsn == min(in_flight)
    # at once on the first subflow, lowest DSN first, as far as its windows allow
    again = [decode_frame(101, p) for p in out]
    assert again and all(f.sport == core.subflows[0].local[1] for f in again)
    sim._send(out, True)
    assert core.receive(rst, sim.now) == []  # a second reset of the same subflow: nothing more
    sim.run(start=False)
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    stream = bytearray(plan.data_len)
    for seg in plan.segments:
        stream[seg.dsn - 1 : seg.dsn - 1 + len(seg.data)] = seg.data
    assert bytes(server.stream) == bytes(stream)
    assert second.state is SubflowState.FAILED and second.result.startswith("reset")
    assert [e.subflow for e in core.events if isinstance(e, ev.SubflowReset)] == [1]


class ClosedWindowServer(LossyServer):
    """Closes its window (0) once it holds ``limit`` octets of the stream, its application reading
    nothing until ``opens_at``; it then sends no window update of its own (as if it were lost): it
    only answers what comes, a window probe included, with its ACK and window."""

    def __init__(self, client_key: int, limit: int, opens_at: float) -> None:
        super().__init__(client_key, loss=0.0, seed=0)
        self.limit, self.opens_at = limit, opens_at
        self.now = 0.0
        self.probes = 0

    def _reply(self, f: Flow, key, flags: int, options=(), seq: int | None = None) -> bytes:
        (src, sport), (dst, dport) = key
        closed = len(self.stream) >= self.limit and self.now < self.opens_at
        window = 0 if closed else 65535
        return tcp_packet(dst, src, dport, sport, f.snd if seq is None else seq, f.rcv, flags, window, options)

    def __call__(self, raw: bytes, now: float) -> list[bytes]:
        self.now = now
        p = decode_frame(101, raw)
        f = self.flows.get(((p.src, p.sport), (p.dst, p.dport)))
        if f is not None and f.rcv is not None and not p.payload_len and int(p.flags) == 0x10 and p.seq != f.rcv:
            self.probes += 1  # below the window: answered with an ACK (RFC 9293 §3.10.7.4)
            return [self._reply(f, ((p.src, p.sport), (p.dst, p.dport)), 0x10, [self._dss()])]
        return super().__call__(raw, now)


def test_a_closed_window_is_probed_until_it_opens():
    """RFC 9293 §3.8.6.1: the server's window closes with everything acknowledged, and its update
    never comes; the replay probes (persist timer, backing off) and goes on once the window is
    open, instead of waiting for its silence timeout."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(1), timeout=5.0)
    server = ClosedWindowServer(core.keys.client, limit=1000, opens_at=1.0)  # after the first data
    Sim(core, server).run()
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert len(server.stream) == plan.data_len
    assert server.probes >= 2  # at least one while closed, one that found it open
    assert 1.0 <= (core.conn.ended_at or 0) - core.conn.t0 < 2.5, core.conn.ended_at


class HoleServer(LossyServer):
    """Silently drops every data segment from ``hole`` that would be in order on its subflow, so
    the hole at that subflow's first data never fills; the segments above it are kept out of
    order and SACKed (a path that loses one segment's every copy, as nftables did in the lab)."""

    def __init__(self, client_key: int, hole: tuple) -> None:
        super().__init__(client_key, loss=0.0, seed=0)
        self.hole, self.dropped_in_order = hole, 0

    def __call__(self, raw: bytes, now: float) -> list[bytes]:
        p = decode_frame(101, raw)
        f = self.flows.get(((p.src, p.sport), (p.dst, p.dport)))
        if (p.src, p.sport) == self.hole and f is not None and p.payload_len and p.seq == f.rcv:
            self.dropped_in_order += 1
            return []
        return super().__call__(raw, now)


def test_a_stalled_subflows_sacked_data_goes_on_another_too():
    """RFC 8684 §3.3.6: data SACKed on a subflow is not delivered to the connection while the hole
    below it stays open.  From the subflow's second retransmission timeout in a row it goes on the
    other subflow with the rest, so the stream is whole within a second; seen in the lab as a replay that waited for
    the hole until its silence timeout, the server's DATA_ACK stuck at the first SACKed DSN."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(3), timeout=5.0)
    second = core.subflows[1]
    server = HoleServer(core.keys.client, second.local)
    sim = Sim(core, server)
    sim.run(until_events=lambda: len(server.stream) == plan.data_len, limit=5.0)
    assert bytes(server.stream) == _stream(plan) and sim.now < 1.0, (sim.now, len(server.stream))
    assert server.flows and any(f.ooo for f in server.flows.values())  # SACKed, never delivered there
    moved = [e for e in core.events if isinstance(e, ev.Reinjected) and e.stalled == 1]
    # The first timeout moves the hole's segment alone; the second, the hole lost again, the SACKed rest.
    assert [e.segments for e in moved] == [1, 11] and moved[1].dsn > moved[0].dsn, moved
    # The hole never fills, so the subflow's FIN exchange cannot finish: reset once the target is
    # silent after the close, and the replay ends well (the connection closed at data level).
    sim.run(start=False)
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok, report.reason
    assert second.state is SubflowState.CLOSED and (second.result or "").startswith("reset: its FIN exchange")


class SilentAfterCloseServer(LossyServer):
    """Once its DATA_FIN is acknowledged, closes only the first subflow and says nothing more on
    the others (their FINs and everything else from the client dropped)."""

    def _close_subflows(self) -> list[bytes]:
        first = next(iter(self.flows))
        self.blackhole = {src for src, _ in self.flows if (src, _) != first}
        f = self.flows[first]
        f.fin_at, f.snd = f.snd, (f.snd + 1) & M32
        return [self._reply(f, first, 0x11, [self._dss()], seq=f.fin_at)]


def test_an_unfinished_fin_exchange_is_reset_when_the_target_falls_silent_after_the_close():
    """Both DATA_FINs acknowledged (M_TIME_WAIT), one subflow's FIN unanswered: when the target has
    been silent for the replay's timeout, that subflow is reset and the replay ends well; before,
    it failed as "target silent" although the connection had closed (a lab failure: our FIN lost,
    its retransmission backed off beyond the timeout)."""
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    core = Replay(plan, target=SERVER, rng=random.Random(2), timeout=5.0)
    server = SilentAfterCloseServer(core.keys.client, loss=0.0, seed=0)
    sim = Sim(core, server)
    sim.run(until_events=lambda: core.closure_state.name == "M_TIME_WAIT", limit=5.0)
    closed_at = sim.now
    sim.run(start=False)
    report = core.report(core.conn.ended_at or 30.0)
    assert report.ok and core.closure_state.name == "M_CLOSED", report.reason
    assert bytes(server.stream) == _stream(plan)
    first, second = core.subflows
    assert first.state is SubflowState.CLOSED and second.state is SubflowState.CLOSED
    how = {e.subflow: (e.how, e.linger) for e in core.events if isinstance(e, ev.SubflowClosed)}
    assert how[0] == (ev.CloseHow.FIN_EXCHANGE, 0.0)
    assert how[1][0] is ev.CloseHow.RESET_AFTER_CLOSE and 5.0 <= how[1][1] < 6.0, how
    assert 5.0 <= (core.conn.ended_at or 0) - closed_at < 6.0
