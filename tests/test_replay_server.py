"""The server side of the replay engine (sans-IO) against a simulated MPTCP client.

The client here is a few lines of TCP: it opens the MP_CAPABLE subflow, sends the captured client's
stream with DSS mappings, echoes ADD_ADDR, joins (once with a wrong HMAC), acknowledges everything
at both levels, and closes.  The replayed server must answer with the captured key, compute and
check the HMACs for the live keys, hold its data back until the client's data reached the captured
point, and close as the captured server did.
"""

from __future__ import annotations

import ipaddress
import random

import pytest

from mptcpspec.capture.packets import decode_frame
from mptcpspec.codec import crypto
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
    RemoveAddr,
    decode_mptcp_options,
)
from mptcpspec.replay.events import AbortCause, AddAddrEchoReceived, ClientKey, SubflowFailed
from mptcpspec.replay.plan import PlanError
from mptcpspec.replay.serverplan import make_server_plan
from mptcpspec.replay.serving import ServerReplay, require_local
from mptcpspec.replay.setup import ReplayError, SetupProblem
from mptcpspec.replay.subflow import SubflowState
from mptcpspec.replay.transport import RawTransport, nft_script
from mptcpspec.replay.wire import tcp_packet
from tests.conftest import DATA

ip = ipaddress.ip_address
SYN, ACK, FIN, RST, PSH = 2, 16, 1, 4, 8
M32, M64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
CLIENT_KEY = 0x1122334455667788
LISTEN = ip("198.51.100.2")
ADDED = ip("203.0.113.2")


class Flow:
    """One subflow of the simulated client."""

    def __init__(self, src, sport, dst, dport, isn):
        self.src, self.sport, self.dst, self.dport = ip(src), sport, ip(dst), dport
        self.isn = self.seq = isn
        self.rcv = 0
        self.irs = 0

    def pkt(self, flags, opts=(), payload=b"", seq=None):
        s = self.seq if seq is None else seq
        return tcp_packet(self.src, self.dst, self.sport, self.dport, s, self.rcv, flags, 65535, opts, payload)


class Client:
    """A simulated MPTCP v1 client of the replayed server."""

    def __init__(self, core: ServerReplay, server_key: int):
        self.core, self.sk, self.ck = core, server_key, CLIENT_KEY
        self.idsn = crypto.key_idsn(self.ck)
        self.sidsn = crypto.key_idsn(self.sk)
        self.dsn = 1  # next relative DSN of ours
        self.received = bytearray()  # the server's stream, in order
        self.pieces: dict[int, bytes] = {}  # received beyond it, by relative DSN
        self.server_dfin = False
        self.now = 0.0
        self.log: list = []  # every packet from the server: (subflow flow, decoded packet, options)

    def send(self, flow: Flow, raw: bytes) -> list:
        self.now += 0.001
        return self.take(self.core.receive(raw, self.now))

    def take(self, packets) -> list:
        got = []
        for raw in packets:
            p = decode_frame(101, raw)
            opts = decode_mptcp_options(p.options, 1) if p.options else ()
            got.append((p, opts))
            self.log.append((p, opts))
        return got

    def poll(self, seconds: float = 0.0) -> list:
        self.now += seconds
        return self.take(self.core.poll(self.now))

    def data_ack(self) -> int:
        return (self.sidsn + 1 + len(self.received) + (1 if self.server_dfin else 0)) & M64

    def ack_dss(self) -> Dss:
        return Dss(flags=DssFlags.DATA_ACK_PRESENT | DssFlags.DATA_ACK_8, data_ack=self.data_ack())

    def absorb(self, flow: Flow, got) -> None:
        """Take the server's data and DATA_FIN from ``got`` and acknowledge them."""
        for p, opts in got:
            if (p.src, p.sport, p.dst, p.dport) != (flow.dst, flow.dport, flow.src, flow.sport):
                continue
            for o in opts:
                if type(o) is Dss and o.flags & DssFlags.DATA_FIN:
                    self.server_dfin = True
                if type(o) is Dss and o.dsn is not None and p.payload_len and p.seq == flow.rcv:
                    self.pieces[(o.dsn - self.sidsn) & M64] = p.payload
                    flow.rcv = (flow.rcv + p.payload_len) & M32
            while len(self.received) + 1 in self.pieces:
                self.received += self.pieces.pop(len(self.received) + 1)
            if int(p.flags) & FIN:
                flow.rcv = (p.seq + p.payload_len + 1) & M32


def connect(core: ServerReplay, sk: int):
    client = Client(core, sk)
    f = Flow("198.51.100.1", 40000, LISTEN, 5201, 1000)
    core.start(0.0)
    ((synack, opts),) = client.send(f, f.pkt(SYN, [Mss(mss=1460), MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA)]))
    assert int(synack.flags) == SYN | ACK and synack.ack == 1001
    (mpc,) = [o for o in opts if type(o) is MpCapable]
    assert mpc.sender_key == sk  # the captured server's key
    f.seq = 1001
    f.rcv = (synack.seq + 1) & M32
    f.irs = synack.seq
    third = MpCapable(version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=CLIENT_KEY, receiver_key=sk)
    assert client.send(f, f.pkt(ACK, [third])) == []
    return client, f


def send_data(client: Client, f: Flow, data: bytes, first: bool = False) -> list:
    """``data`` at the client's next DSN on ``f``: its mapping (MP_CAPABLE on the first), its DATA_ACK."""
    n = len(data)
    ssn = (f.seq - f.isn) & M32
    if first:
        opt = MpCapable(
            version=1, flags=MpCapableFlags.HMAC_SHA, sender_key=CLIENT_KEY, receiver_key=client.sk, data_level_length=n
        )
    else:
        opt = Dss(
            flags=DssFlags.DATA_ACK_PRESENT | DssFlags.DATA_ACK_8 | DssFlags.MAPPING_PRESENT | DssFlags.DSN_8,
            data_ack=client.data_ack(),
            dsn=(client.idsn + client.dsn) & M64,
            ssn=ssn,
            data_level_length=n,
        )
    got = client.send(f, f.pkt(ACK | PSH, [opt], data))
    f.seq = (f.seq + n) & M32
    client.dsn += n
    return got


def data_fin(client: Client, f: Flow) -> list:
    dss = Dss(
        flags=DssFlags.DATA_ACK_PRESENT
        | DssFlags.DATA_ACK_8
        | DssFlags.MAPPING_PRESENT
        | DssFlags.DSN_8
        | DssFlags.DATA_FIN,
        data_ack=client.data_ack(),
        dsn=(client.idsn + client.dsn) & M64,
        ssn=0,
        data_level_length=1,
    )
    return client.send(f, f.pkt(ACK, [dss]))


def ack(client: Client, f: Flow) -> list:
    return client.send(f, f.pkt(ACK, [client.ack_dss()]))


@pytest.fixture(scope="module")
def add_addr_plan():
    return make_server_plan(DATA / "v4-add-addr.pcap")


def test_plan_holds_the_servers_data_and_signals(add_addr_plan):
    p = add_addr_plan
    assert p.data_len == 32768 and sum(len(s.data) for s in p.segments) == 32768
    assert p.client_data_len == 32768 and p.data_fin and p.data_fin_after_client
    # the kernel server replied at the client's EOF: every segment waits for the client's DATA_FIN
    assert {s.needs for s in p.segments} == {32769}
    kinds = [type(s.option) for s in p.signals]
    assert kinds == [AddAddr, RemoveAddr]
    assert p.signals[0].option.address == ADDED and p.signals[0].option.address_id == 5
    assert [(s.index, s.address_id) for s in p.subflows] == [(0, 0), (1, 5), (2, 0)]


def test_whole_session(add_addr_plan):
    plan = add_addr_plan
    core = ServerReplay(plan, listen=LISTEN, rng=random.Random(7))
    client, f = connect(core, plan.server_key)
    assert any(isinstance(e, ClientKey) and e.client_key == CLIENT_KEY for e in core.events)
    stream = bytes(range(256)) * 128  # 32768 octets
    got = send_data(client, f, stream[:1000], first=True)
    # the captured server announced 203.0.113.2 (id 5) once it had the first 1000 octets
    adds = [o for _, opts in got for o in opts if type(o) is AddAddr]
    assert len(adds) == 1 and adds[0].address == ADDED and adds[0].address_id == 5 and not adds[0].echo
    assert adds[0].hmac == crypto.add_addr_hmac(plan.server_key, CLIENT_KEY, 5, ADDED, None)
    # not echoed: sent again
    again = [o for _, opts in client.poll(1.0) for o in opts if type(o) is AddAddr]
    assert again and again[0].hmac == adds[0].hmac
    echo = AddAddr(echo=True, address_id=5, address=ADDED)
    client.send(f, f.pkt(ACK, [echo, client.ack_dss()]))
    assert any(isinstance(e, AddAddrEchoReceived) for e in core.events)
    assert not [o for _, opts in client.poll(5.0) for o in opts if type(o) is AddAddr]

    # a join with a token that is not ours is refused
    j = Flow("203.0.113.1", 40001, ADDED, 5201, 5000)
    ((rst, _),) = client.send(j, j.pkt(SYN, [MpJoinSyn(address_id=3, token=12345, nonce=1)]))
    assert int(rst.flags) & RST
    # a join with a wrong HMAC in its third ACK is reset
    token = crypto.key_token(plan.server_key)
    bad = Flow("203.0.113.1", 40002, ADDED, 5201, 6000)
    ((synack, opts),) = client.send(bad, bad.pkt(SYN, [MpJoinSyn(address_id=3, token=token, nonce=0xAAAA)]))
    (jsa,) = [o for o in opts if type(o) is MpJoinSynAck]
    assert jsa.address_id == 5  # the ADD_ADDR's id: the captured subflow to 203.0.113.2
    assert jsa.truncated_hmac == crypto.join_synack_hmac(plan.server_key, CLIENT_KEY, jsa.nonce, 0xAAAA)
    bad.seq, bad.rcv = 6001, (synack.seq + 1) & M32
    ((reset, _),) = client.send(bad, bad.pkt(ACK, [MpJoinAck(hmac=bytes(20))]))
    assert int(reset.flags) & RST
    assert any(isinstance(e, SubflowFailed) for e in core.events)
    # a right one is established with the fourth ACK
    good = Flow("203.0.113.1", 40003, ADDED, 5201, 7000)
    ((synack, opts),) = client.send(good, good.pkt(SYN, [MpJoinSyn(address_id=3, token=token, nonce=0xBBBB)]))
    (jsa,) = [o for o in opts if type(o) is MpJoinSynAck]
    assert jsa.truncated_hmac == crypto.join_synack_hmac(plan.server_key, CLIENT_KEY, jsa.nonce, 0xBBBB)
    good.seq, good.rcv = 7001, (synack.seq + 1) & M32
    hmac = crypto.join_ack_hmac(CLIENT_KEY, plan.server_key, 0xBBBB, jsa.nonce)
    ((fourth, _),) = client.send(good, good.pkt(ACK, [MpJoinAck(hmac=hmac)]))
    assert int(fourth.flags) == ACK and fourth.ack == 7001
    states = {s.local: s.state for s in core.subflows}
    assert (
        states
        == {
            (LISTEN, 5201): SubflowState.ESTABLISHED,
            (ADDED, 5201): SubflowState.ESTABLISHED,
        }
        or SubflowState.FAILED in states.values()
    )

    # the rest of the client's data: no server data before the client's DATA_FIN (the captured point)
    got = []
    for k in range(1000, len(stream), 1400):
        got += send_data(client, f, stream[k : k + 1400])
    assert not [p for p, _ in got if p.payload_len]
    # the server's REMOVE_ADDR came halfway (the captured server's point): id 5, and our subflow
    # from 203.0.113.2 got a FIN
    removes = [o for _, opts in got for o in opts if type(o) is RemoveAddr]
    assert removes and removes[0].address_ids == (5,)
    assert any(int(p.flags) & FIN and p.src == ADDED for p, _ in got)
    assert core.received() == 32768
    got = data_fin(client, f)
    client.absorb(f, got)
    for _ in range(200):
        if client.server_dfin:
            break
        got = ack(client, f)
        got += client.poll(0.01)
        client.absorb(f, got)
    assert bytes(client.received) == b"".join(s.data for s in sorted(plan.segments, key=lambda s: s.dsn))
    assert client.server_dfin
    # both DATA_FINs acknowledged; FINs both ways on the first subflow
    got = ack(client, f)
    client.absorb(f, got)
    got = client.send(f, f.pkt(FIN | ACK, [client.ack_dss()]))
    f.seq += 1
    client.absorb(f, got)
    ack(client, f)
    # the added subflow: the client answers our FIN with its own
    fin_seq = next(p.seq for p, _ in client.log if p.src == ADDED and p.dport == 40003 and int(p.flags) & FIN)
    good.rcv = (fin_seq + 1) & M32
    client.send(good, good.pkt(FIN | ACK, [client.ack_dss()]))
    client.poll(1.0)
    rep = core.report(client.now)
    assert rep.side == "server"
    assert rep.server_data == 32768 and rep.data_delivered == 32768 == rep.data_planned, rep.reason
    assert rep.ok, (rep.reason, rep.closure_state, [s.result for s in rep.subflows])
    assert rep.client_key == CLIENT_KEY and rep.server_key == plan.server_key


def test_no_client_is_a_clear_abort(add_addr_plan):
    core = ServerReplay(add_addr_plan, listen=LISTEN, timeout=2.0)
    assert core.start(100.0) == []
    assert core.deadline() == 102.0
    assert core.poll(101.0) == []
    core.poll(102.0)
    rep = core.report(102.0)
    assert core.done and not rep.ok and rep.abort is AbortCause.NO_CLIENT
    assert rep.reason == "no client connected to 198.51.100.2:5201 within 2 s"


def test_plain_tcp_client_is_refused(add_addr_plan):
    core = ServerReplay(add_addr_plan, listen=LISTEN)
    core.start(0.0)
    f = Flow("198.51.100.1", 40000, LISTEN, 5201, 1)
    (rst,) = core.receive(f.pkt(SYN), 0.1)
    assert decode_frame(101, rst).flags & RST
    assert core.report(0.1).abort is AbortCause.NO_MPTCP


def test_listen_address_must_be_local():
    with pytest.raises(ReplayError) as e:
        require_local([ip("192.0.2.200")])
    assert e.value.problem is SetupProblem.NOT_LOCAL
    assert str(e.value) == "listen address 192.0.2.200 is not an address of this host"
    require_local([ip("127.0.0.1")])


def test_plan_errors():
    with pytest.raises(PlanError, match="no MPTCP stream 9"):
        make_server_plan(DATA / "v4-two-subflows.pcap", 9)


def test_data_waits_for_the_clients_data_the_captured_server_had():
    """v4-fastclose.pcap: the captured server replied once it had 16384 client octets (before any
    DATA_FIN): one octet short, nothing goes; the last octet lets the reply go."""
    plan = make_server_plan(DATA / "v4-fastclose.pcap")
    assert {s.needs for s in plan.segments} == {16384} and plan.client_fastclose and not plan.fastclose
    core = ServerReplay(plan, listen=LISTEN, rng=random.Random(1))
    client, f = connect(core, plan.server_key)
    stream = bytes(16384)
    got = send_data(client, f, stream[:1000], first=True)
    for k in range(1000, 16383, 1400):
        got += send_data(client, f, stream[k : min(k + 1400, 16383)])
    assert core.received() == 16383 and not [p for p, _ in got if p.payload_len]
    got = send_data(client, f, stream[16383:])
    assert sum(p.payload_len for p, _ in got) > 0


def test_transport_takes_any_client_to_the_listen_ports():
    t = RawTransport(["198.51.100.2"], (), listen_ports=[5201])
    to_listen = tcp_packet(ip("192.0.2.9"), LISTEN, 40000, 5201, 1, 0, SYN, 65535)
    elsewhere = tcp_packet(ip("192.0.2.9"), LISTEN, 40000, 22, 1, 0, SYN, 65535)
    assert t.filter_incoming(elsewhere) is None
    assert t.filter_incoming(to_listen) == to_listen
    assert "192.0.2.9" in repr(t)  # learned: the replay may answer it
    script = nft_script("t", [LISTEN], 0x4D50, [5201])
    assert "ip saddr { 198.51.100.2 } tcp sport { 5201 } tcp flags & rst == rst" in script
    assert "sport" not in nft_script("t", [LISTEN], 0x4D50)  # the client side's rule, unchanged
