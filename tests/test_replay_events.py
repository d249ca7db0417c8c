"""The replay core's events and subflow states, against a small simulated MPTCP server (no network)."""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mptcpspec.capture.packets import decode_frame
from mptcpspec.cli.replay import event_line, render_event
from mptcpspec.codec import crypto
from mptcpspec.codec.generated.closure import Event as ClosureEvent
from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.codec.options import (
    AddAddr,
    Dss,
    DssFlags,
    MpCapable,
    MpCapableFlags,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    Mss,
    decode_mptcp_options,
)
from mptcpspec.replay import events as ev
from mptcpspec.replay.core import Replay
from mptcpspec.replay.plan import SubflowKind, make_plan
from mptcpspec.replay.report import FastOpenOutcome
from mptcpspec.replay.setup import ReplayError, SetupProblem
from mptcpspec.replay.subflow import SubflowState
from mptcpspec.replay.wire import tcp_packet

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SERVER = ipaddress.ip_address("198.51.100.2")
KEY = 0x1122334455667788
M64 = 2**64 - 1
S = SubflowState


class Server:
    """Just enough of an MPTCP server: answers SYNs (MP_CAPABLE, MP_JOIN with the right HMAC),
    acknowledges every segment at subflow and data level, answers a DATA_FIN with its own and a FIN
    with its own.  ``add_addr``: announced on the first data acknowledgment."""

    def __init__(self, client_key: int, add_addr: AddAddr | None = None) -> None:
        self.client_key = client_key
        self.idsn_c = crypto.key_idsn(client_key, 1)
        self.idsn_s = crypto.key_idsn(KEY, 1)
        self.contig = (self.idsn_c + 1) & M64
        self.pending: dict[int, int] = {}
        self.flows: dict[tuple, list[int]] = {}  # (client address, port) -> [our next seq, their next seq]
        self.add_addr = add_addr
        self.echoes: list[AddAddr] = []

    def __call__(self, raw: bytes) -> list[bytes]:
        p = decode_frame(101, raw)
        key = (p.src, p.sport)
        opts = decode_mptcp_options(p.options) if p.options else ()
        flags = int(p.flags)

        def reply(fl, options=(), seq=None):
            st = self.flows[key]
            return tcp_packet(p.dst, p.src, p.dport, p.sport, st[0] if seq is None else seq, st[1], fl, 65535, options)

        if flags & 0x04:
            return []
        if flags & 0x02:
            self.flows[key] = [5001, (p.seq + 1) & 0xFFFFFFFF]
            for o in opts:
                if type(o) is MpCapable:
                    mpc = MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=KEY)
                    return [reply(0x12, [Mss(mss=1460), mpc], seq=5000)]
                if type(o) is MpJoinSyn:
                    hmac = crypto.join_synack_hmac(KEY, self.client_key, 77, o.nonce, 1)
                    return [
                        reply(0x12, [Mss(mss=1460), MpJoinSynAck(address_id=0, truncated_hmac=hmac, nonce=77)], 5000)
                    ]
            return []
        out = []
        st = self.flows[key]
        n = p.payload_len
        dfin = False
        for o in opts:
            if type(o) is MpJoinAck:
                out.append(reply(0x10))
            if type(o) is AddAddr and o.echo:
                self.echoes.append(o)
            dsn = None
            if type(o) is MpCapable and o.data_level_length:
                dsn = (self.idsn_c + 1) & M64
            elif type(o) is Dss and o.dsn is not None:
                dsn = o.dsn
                dfin = bool(o.flags & DssFlags.DATA_FIN)
            if dsn is not None and n:
                self.pending[dsn] = dsn + n
                while self.contig in self.pending:
                    self.contig = self.pending.pop(self.contig)
        if not (n or flags & 0x01 or dfin):
            return out
        st[1] = (p.seq + n + (flags & 0x01)) & 0xFFFFFFFF
        dss = Dss(flags=DssFlags(0x03), data_ack=self.contig)
        if dfin:
            self.contig = (self.contig + 1) & M64
            dss = Dss(
                flags=DssFlags(0x1F), data_ack=self.contig, dsn=(self.idsn_s + 1) & M64, ssn=0, data_level_length=1
            )
        options = [dss]
        if self.add_addr is not None and n:
            options, self.add_addr = [self.add_addr, Dss(flags=DssFlags(0x03), data_ack=self.contig)], None
        out.append(reply(0x10 | (flags & 0x01), options))
        st[0] += flags & 0x01
        return out


def run(core: Replay, server: Server, limit: float = 30.0) -> None:
    """Packets back and forth, 1 ms a round, until the replay ends."""
    queue = core.start(0.0)
    now = 0.0
    while not core.done and now < limit:
        now += 0.001
        replies = [r for pkt in queue for r in server(pkt)]
        queue = [q for r in replies for q in core.receive(r, now)] + core.poll(now)
        if not queue and not replies:
            deadline = core.deadline()
            now = max(now, deadline if deadline is not None else limit)


def _core(name: str = "v4-two-subflows", **kw) -> Replay:
    return Replay(make_plan(DATA / f"{name}.pcap"), target=SERVER, rng=random.Random(7), **kw)


def test_clean_replay_event_sequence_and_subflow_states():
    core = _core()
    run(core, Server(core.keys.client))
    report = core.report(10.0)
    assert report.ok and report.reason == "closed cleanly" and report.abort is None
    assert report.closure_state is ClosureState.M_CLOSED and report.data_delivered == 32768
    kinds = [type(e) for e in report.events]
    assert not {ev.Retransmitted, ev.SubflowFailed, ev.ReplayAborted, ev.ClosureRefused} & set(kinds)
    # The opening, in this order, and nothing of the closing before the data is acknowledged.
    assert kinds[:6] == [
        ev.ConnectionOpening,
        ev.ConnectionEstablished,
        ev.SubflowEstablished,
        ev.JoinOpening,
        ev.JoinVerified,
        ev.SubflowEstablished,
    ]
    assert [(e.event, e.state) for e in report.events if isinstance(e, ev.ClosureStep)] == [
        (ClosureEvent.M_CLOSE, ClosureState.M_FIN_WAIT_1),
        (ClosureEvent.RCV_DATA_ACK_DFIN, ClosureState.M_FIN_WAIT_2),
        (ClosureEvent.RCV_DATA_FIN, ClosureState.M_TIME_WAIT),
        (ClosureEvent.ALL_SUBFLOWS_CLOSED, ClosureState.M_CLOSED),
    ]
    assert kinds.index(ev.DataFinSent) < kinds.index(ev.DataFinReceived) < kinds.index(ev.FinReceived)
    closed = [e for e in report.events if isinstance(e, ev.SubflowClosed)]
    assert sorted(e.subflow for e in closed) == [0, 1] and {e.how for e in closed} == {ev.CloseHow.FIN_EXCHANGE}
    assert type(report.events[-1]) is ev.ClosureStep and report.events[-1].state is ClosureState.M_CLOSED
    established = [e for e in report.events if isinstance(e, ev.SubflowEstablished)]
    assert [(e.subflow, e.kind) for e in established] == [(0, SubflowKind.MP_CAPABLE), (1, SubflowKind.MP_JOIN)]
    assert all(e.time >= 0 for e in report.events)
    assert [e.time for e in report.events] == sorted(e.time for e in report.events)
    # Each subflow's states, in order.
    first, join = report.subflows
    assert first.states == (S.NEW, S.SYN_SENT, S.ESTABLISHED, S.CLOSED) and first.state is S.CLOSED
    assert join.states == (S.NEW, S.SYN_SENT, S.PRE_ESTABLISHED, S.ESTABLISHED, S.CLOSED)
    assert first.result == join.result == "closed"


def test_events_are_frozen_values_and_say_no_command_line_flags():
    core = _core("v4-remove-addr")
    run(core, Server(core.keys.client))
    report = core.report(10.0)
    assert report.ok
    (removed,) = [e for e in report.events if isinstance(e, ev.RemoveAddrSent)]
    assert removed.address_ids == (3,) and "REMOVE_ADDR as in the capture: address id(s) 3" in event_line(removed)
    for e in report.events:
        assert not hasattr(e, "__dict__")  # slotted
        with pytest.raises(dataclasses.FrozenInstanceError):
            e.time = 1.0  # type: ignore[misc]
        assert "--" not in event_line(e), e  # the advice is render_event's only
        assert render_event(e).startswith(event_line(e))
    assert removed == ev.RemoveAddrSent(removed.time, removed.subflow, (3,))  # compared by value


def test_add_addr_is_echoed_and_said():
    core = _core()
    server = Server(core.keys.client, add_addr=AddAddr(address_id=5, address=ipaddress.ip_address("203.0.113.2")))
    run(core, server)
    (echoed,) = [e for e in core.events if isinstance(e, ev.AddAddrEchoed)]
    assert (echoed.address_id, echoed.address, echoed.port) == (5, "203.0.113.2", None)
    assert [(o.echo, o.address_id) for o in server.echoes] == [(True, 5)]
    assert core.report(10.0).ok


def test_silent_target_retransmits_the_syn_then_aborts():
    core = _core(timeout=10.0, rto=0.2, max_tries=3)  # the SYN is given up at 3.0 s, before the timeout
    core.start(0.0)
    while not core.done:
        core.poll(core.deadline())
    retrans = [e for e in core.events if isinstance(e, ev.Retransmitted)]
    assert [(e.segment, e.sequence, e.attempt) for e in retrans] == [(ev.SegmentKind.SYN, 0, k) for k in (1, 2, 3)]
    (failed,) = [e for e in core.events if isinstance(e, ev.SubflowFailed)]
    assert failed.cause is ev.FailCause.NO_ANSWER and failed.subflow == 0
    aborted = core.events[-1]
    assert isinstance(aborted, ev.ReplayAborted) and aborted.cause is ev.AbortCause.FIRST_SUBFLOW_FAILED
    assert aborted.time == pytest.approx(3.0)
    report = core.report(5.0)
    assert report.elapsed == pytest.approx(3.0) and report.abort is ev.AbortCause.FIRST_SUBFLOW_FAILED and not report.ok
    assert report.subflows[0].states == (S.NEW, S.SYN_SENT, S.FAILED)
    assert report.subflows[1].states == (S.NEW,) and report.subflows[1].result == "not opened"


def test_wrong_join_hmac_fails_the_subflow_with_its_cause():
    core = _core()
    server = Server(core.keys.client)
    server.client_key ^= 1  # the server's HMAC is then wrong for our key
    run(core, server)
    (failed,) = [e for e in core.events if isinstance(e, ev.SubflowFailed)]
    assert failed.subflow == 1 and failed.cause is ev.FailCause.HMAC_MISMATCH and "HMAC" in failed.detail
    report = core.report(10.0)
    assert report.subflows[1].states == (S.NEW, S.SYN_SENT, S.FAILED)
    assert report.ok and report.data_delivered == 32768  # the rest went over the first subflow


def test_fast_open_off_is_said_without_flags():
    core = Replay(make_plan(DATA / "v4-tfo.pcap", 1), target=SERVER, rng=random.Random(7), tfo=False)
    fo = core.report(0.0).fast_open
    assert fo is not None and fo.outcome is FastOpenOutcome.OFF and fo.offered == 1000
    assert "--" not in fo.describe()


def test_setup_problems_are_typed_and_the_cli_gives_the_advice():
    plan = make_plan(DATA / "v4-two-subflows.pcap")
    with pytest.raises(ReplayError) as e:
        Replay(plan, target=ipaddress.ip_address("2001:db8::2"))
    assert e.value.problem is SetupProblem.IP_VERSION and "--" not in str(e.value)
    with pytest.raises(ReplayError) as e:
        Replay(make_plan(DATA / "v4-add-addr.pcap"), target=SERVER)
    assert e.value.problem is SetupProblem.NO_LIVE_ADDRESS and "203.0.113.2" in str(e.value)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mptcpspec",
            "replay",
            "-r",
            str(DATA / "v4-two-subflows.pcap"),
            "--target",
            "2001:db8::2",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 3 and "not the same IP version: give --map" in r.stderr, r.stderr


def test_the_cli_names_the_option_that_uses_a_cookie():
    line = render_event(ev.FastOpenCookie(0.5, 0, bytes(range(8))))
    assert line == (
        "    0.500 s  subflow 0: TCP Fast Open cookie from the server: 0001020304050607 "
        "(--tfo-cookie 0001020304050607 sends it next time)"
    )
    assert render_event(ev.FinReceived(1.0, 1)) == event_line(ev.FinReceived(1.0, 1))


def _event_classes() -> list[type[ev.ReplayEvent]]:
    """The event classes of ``events.__all__``; every subclass of ReplayEvent is one of them."""
    named = [getattr(ev, n) for n in ev.__all__]
    classes = [c for c in named if isinstance(c, type) and issubclass(c, ev.ReplayEvent) and c is not ev.ReplayEvent]
    assert {c.__name__ for c in ev.ReplayEvent.__subclasses__()} == {c.__name__ for c in classes}
    return classes


def _example(cls: type[ev.ReplayEvent]) -> ev.ReplayEvent:
    """An instance of ``cls`` with a plain value for each field."""
    values = {
        int: 1,
        float: 0.5,
        bool: True,
        str: "x",
        bytes: b"\x01\x02",
        "int | None": 1,
        "TcpRstReason | int | None": None,
        "tuple[int, ...]": (1, 2),
    }
    enums = {
        "SubflowKind": SubflowKind.MP_JOIN,
        "SegmentKind": ev.SegmentKind.DATA,
        "CloseHow": ev.CloseHow.FIN_EXCHANGE,
        "FailCause": ev.FailCause.RESET,
        "MpFailAnswer": ev.MpFailAnswer.INFINITE_MAPPING,
        "AbortCause": ev.AbortCause.REFUSED,
        "ClosureEvent": ClosureEvent.M_CLOSE,
        "ClosureState": ClosureState.M_CLOSED,
    }
    kw = {}
    for f in dataclasses.fields(cls):
        t = f.type if isinstance(f.type, str) else f.type.__name__
        kw[f.name] = enums.get(
            t,
            values.get(t, values.get({"int": int, "float": float, "bool": bool, "str": str, "bytes": bytes}.get(t, t))),
        )
    return cls(**kw)


def test_every_event_class_is_plain_data_the_cli_renders():
    classes = _event_classes()
    assert len(classes) == 32
    for cls in classes:
        assert "describe" not in vars(cls) and cls.__str__ is object.__str__, cls  # no text in the events
        e = _example(cls)
        where = "connection" if e.subflow is None else f"subflow {e.subflow}"
        line = render_event(e)
        assert line.startswith(f"    0.500 s  {where}: ") and len(line) > len(f"    0.500 s  {where}: "), cls


def test_the_rendered_text_is_the_documented_one():
    lines = [
        (
            ev.ConnectionOpening(0.0, 0, "10.0.0.1:1000", "198.51.100.2:80", 0x1122, True),
            "    0.000 s  subflow 0: SYN with MP_CAPABLE from 10.0.0.1:1000 to 198.51.100.2:80 "
            "(client key 0x0000000000001122, captured)",
        ),
        (
            ev.JoinOpening(1.25, 1, "a", "b", 2, True),
            "    1.250 s  subflow 1: MP_JOIN SYN from a to b, address id 2, backup",
        ),
        (
            ev.ConnectionEstablished(0.0, 0, 1, 2, True),
            "    0.000 s  subflow 0: MP_CAPABLE established: server key 0x0000000000000001, token 0x00000002, "
            "DSS checksums",
        ),
        (
            ev.SubflowEstablished(0.0, 1, SubflowKind.MP_JOIN),
            "    0.000 s  subflow 1: MP_JOIN established (the server acknowledged our ACK)",
        ),
        (ev.SubflowEstablished(0.0, 0, SubflowKind.MP_CAPABLE), "    0.000 s  subflow 0: established"),
        (
            ev.FastOpenSettled(0.0, 0, 1000, 0),
            "    0.000 s  subflow 0: TCP Fast Open: the server did not take the 1000 octets of SYN data "
            "(cookie refused or Fast Open off): they go after the handshake",
        ),
        (
            ev.AddAddrEchoed(0.0, None, 5, "203.0.113.2", 80),
            "    0.000 s  connection: ADD_ADDR id 5 203.0.113.2 port 80: echoed",
        ),
        (
            ev.Retransmitted(0.0, 0, ev.SegmentKind.DATA, 1460, 2),
            "    0.000 s  subflow 0: data at 1460 sent again (retransmission 2)",
        ),
        (
            ev.Retransmitted(0.0, 0, ev.SegmentKind.SYN, 0, 1),
            "    0.000 s  subflow 0: SYN sent again (retransmission 1)",
        ),
        (
            ev.ClosureStep(0.0, None, ClosureEvent.M_CLOSE, ClosureState.M_FIN_WAIT_1),
            f"    0.000 s  connection: closure: {ClosureEvent.M_CLOSE.value} -> M_FIN_WAIT_1",
        ),
        (
            ev.SubflowClosed(0.0, 1, ev.CloseHow.RESET_AFTER_CLOSE, 2.0),
            "    0.000 s  subflow 1: FIN exchange unfinished 2 s after both DATA_FINs were acknowledged: reset",
        ),
        (ev.SubflowReset(0.0, 1, 3), "    0.000 s  subflow 1: reset by the server (MP_TCPRST reason 3)"),
        (
            ev.ReplayAborted(10.0, None, ev.AbortCause.TARGET_SILENT, "the target sent nothing for 10 s"),
            "   10.000 s  connection: replay failed: the target sent nothing for 10 s",
        ),
    ]
    for e, text in lines:
        assert render_event(e) == text
