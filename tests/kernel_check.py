"""Check a capture of kernel MPTCP traffic against the codecs and the crypto.

:func:`check_capture` walks every TCP packet of a capture and returns a
:class:`Report`: every option decoded strictly and re-encoded byte for byte,
then per connection the protocol's arithmetic: tokens from keys against the
tokens in MP_JOIN SYNs, the first DSN against IDSN+1, both MP_JOIN HMACs,
ADD_ADDR HMACs and, where negotiated, every DSS checksum whose mapping's
payload is in the capture.  Tests assert on the counts, so a capture that
silently checks nothing fails.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from mptcpspec.capture.packets import TcpFlags, decode_packet
from mptcpspec.capture.pcap import read_records
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
    decode_tcp_options,
    encode_tcp_options,
)


@dataclass
class Report:
    packets: int = 0
    options: Counter = field(default_factory=Counter)  # class name -> count
    checked: Counter = field(default_factory=Counter)  # check name -> verified count
    failures: list = field(default_factory=list)
    unverifiable: Counter = field(default_factory=Counter)

    def ok(self, what: str, good: bool, detail: str = "") -> None:
        if good:
            self.checked[what] += 1
        else:
            self.failures.append(f"{what}: {detail}")


@dataclass
class _Conn:
    version: int
    client: tuple  # (addr, port) of the side that sent the first SYN
    client_key: int | None = None
    server_key: int | None = None
    checksum: bool = False
    mpc_data_len: int | None = None  # data carried with MP_CAPABLE (v1), in the client direction

    client_eps: set = field(default_factory=set)  # endpoints, on every subflow, of the connection's client side

    def is_client(self, ep) -> bool:
        return ep == self.client or ep in self.client_eps

    def key_of(self, ep) -> int | None:
        return self.client_key if self.is_client(ep) else self.server_key

    def peer_key_of(self, ep) -> int | None:
        return self.server_key if self.is_client(ep) else self.client_key


def check_capture(path) -> Report:
    rep = Report()
    pkts = []
    for rec in read_records(path):
        pkt = decode_packet(rec)
        if pkt is None:
            continue
        rep.packets += 1
        area = decode_tcp_options(pkt.options)  # strict: any malformed option fails the test
        if encode_tcp_options(area) != pkt.options:
            rep.failures.append(f"re-encode differs: {pkt.options.hex()} -> {encode_tcp_options(area).hex()}")
        else:
            rep.checked["options area re-encoded byte-identical"] += 1
        for o in area.mptcp:
            rep.options[type(o).__name__] += 1
        pkts.append((pkt, area.mptcp))

    conns: dict = {}  # subflow key (frozenset of endpoints) -> _Conn
    by_token: dict = {}
    isn: dict = {}  # (src endpoint, dst endpoint) -> ISN of that direction
    joins: dict = {}  # subflow key -> dict(nonce_a, nonce_b, a_ep, conn)
    payload: dict = defaultdict(dict)  # direction -> {seq: payload}
    mappings: list = []  # (direction, conn, sender ep, Dss)

    for pkt, mp in pkts:
        src, dst = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        key = frozenset((src, dst))
        # a SYN with a new ISN on the ports of an earlier connection starts a new one (ports reused)
        fresh_syn = pkt.flags & TcpFlags.SYN and isn.get((src, dst), pkt.seq) != pkt.seq
        if pkt.flags & TcpFlags.SYN:
            isn[(src, dst)] = pkt.seq
        if pkt.payload:
            payload[(src, dst)][pkt.seq] = pkt.payload
        for o in mp:
            if isinstance(o, MpCapable):
                c = conns.get(key)
                if (c is None or fresh_syn) and pkt.flags & TcpFlags.SYN and not pkt.flags & TcpFlags.ACK:
                    c = conns[key] = _Conn(o.version, src)
                if c is None:
                    continue
                if o.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                    c.checksum = True
                if o.sender_key is not None:
                    if c.is_client(src):
                        c.client_key = o.sender_key
                    else:
                        c.server_key = o.sender_key
                if o.receiver_key is not None:
                    peer = o.receiver_key
                    known = c.peer_key_of(src)
                    rep.ok("MP_CAPABLE echoes the peer's key", known is None or known == peer, f"{peer:#x}")
                    if c.is_client(src):
                        c.server_key = peer
                    else:
                        c.client_key = peer
                if o.data_level_length is not None and c.is_client(src) and c.mpc_data_len is None:
                    c.mpc_data_len = o.data_level_length
                for k in (c.client_key, c.server_key):
                    if k is not None:
                        by_token[crypto.key_token(k, c.version)] = c
            elif isinstance(o, MpJoinSyn):
                c = by_token.get(o.token)
                rep.ok("MP_JOIN SYN token = token of the receiver's key", c is not None, f"{o.token:#x}")
                if c is not None:
                    conns[key] = c
                    joins[key] = {"a": src, "nonce_a": o.nonce, "conn": c}
                    # The token names the receiver B; the SYN's sender A is the other side.
                    b_is_client = c.client_key is not None and crypto.key_token(c.client_key, c.version) == o.token
                    c.client_eps.add(dst if b_is_client else src)
            elif isinstance(o, MpJoinSynAck):
                j = joins.get(key)
                if j is None:
                    continue
                j["nonce_b"] = o.nonce
                c = j["conn"]
                a, b = j["a"], src
                chk = crypto.verify_join_synack(
                    c.key_of(b), c.key_of(a), o.nonce, j["nonce_a"], o.truncated_hmac, c.version
                )
                rep.ok("MP_JOIN SYN/ACK truncated HMAC", chk.ok, str(chk))
            elif isinstance(o, MpJoinAck):
                j = joins.get(key)
                if j is None or "nonce_b" not in j:
                    continue
                c = j["conn"]
                a, b = j["a"], dst
                chk = crypto.verify_join_ack(c.key_of(a), c.key_of(b), j["nonce_a"], j["nonce_b"], o.hmac, c.version)
                rep.ok("MP_JOIN ACK HMAC", chk.ok, str(chk))
            elif isinstance(o, AddAddr):
                c = conns.get(key)
                if c is None or o.echo or o.hmac is None:
                    continue
                chk = crypto.verify_add_addr(
                    c.key_of(src), c.peer_key_of(src), o.address_id, o.address, o.port, o.hmac, c.version
                )
                rep.ok("ADD_ADDR HMAC", chk.ok, str(chk))
            elif isinstance(o, Dss) and DssFlags.MAPPING_PRESENT in o.flags:
                c = conns.get(key)
                if c is not None:
                    mappings.append(((src, dst), c, src, o, pkt.seq))

    # The first data-level octet each side sends is IDSN + 1 (RFC 8684 §3.1, §3.3).
    first: dict = {}
    for _d, c, sender, o, _ in mappings:
        if o.data_level_length == 0:
            continue
        k = (id(c), c.is_client(sender))
        first[k] = min(first.get(k, o.dsn), o.dsn) if o.dsn is not None else first.get(k)
    for _d, c, sender, o, _ in mappings:
        k = (id(c), c.is_client(sender))
        if k not in first:
            continue
        key = c.key_of(sender)
        if key is None:
            continue
        idsn = crypto.key_idsn(key, c.version)
        expect = idsn + 1
        if c.is_client(sender) and c.mpc_data_len:
            expect += c.mpc_data_len  # v1: the first data rode on MP_CAPABLE, mapped from IDSN + 1
        dsn_bits = 64 if DssFlags.DSN_8 in o.flags else 32
        got = first.pop(k)
        good = got in {(idsn + 1) % (1 << dsn_bits), expect % (1 << dsn_bits)}
        rep.ok("first DSN = IDSN + 1", good, f"{got:#x} != {expect:#x}")

    # DSS checksums (RFC 8684 §3.3.1) where negotiated and the whole mapping is in the capture.
    for d, c, sender, o, _ in mappings:
        if not c.checksum:
            rep.ok("no DSS checksum unless negotiated", o.checksum is None, f"{o}")
            continue
        rep.ok("DSS checksum present when negotiated", o.checksum is not None, f"{o}")
        if o.checksum is None or d not in isn:
            continue
        fin = 1 if DssFlags.DATA_FIN in o.flags else 0
        want = o.data_level_length - fin
        start = (isn[d] + o.ssn) & 0xFFFFFFFF
        data = b""
        segs = payload[d]
        s = start
        while len(data) < want and s in segs:
            data += segs[s]
            s = (s + len(segs[s])) & 0xFFFFFFFF
        if len(data) < want:
            rep.unverifiable["DSS checksum (mapping payload not in capture)"] += 1
            continue
        dsn = o.dsn
        if DssFlags.DSN_8 not in o.flags:
            idsn = crypto.key_idsn(c.key_of(sender), c.version)
            dsn = (idsn & ~0xFFFFFFFF) | dsn
            if dsn < idsn:
                dsn += 1 << 32
        chk = crypto.verify_dss_checksum(dsn, o.ssn, o.data_level_length, data[:want], o.checksum)
        rep.ok("DSS checksum", chk.ok, str(chk))
    return rep
