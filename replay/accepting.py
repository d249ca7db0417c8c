"""The server side's handshakes: a live client's SYNs answered as the captured server would (sans-IO).

:class:`Acceptor` turns a client's SYN to a listen address into a new subflow and its SYN/ACK:
an MP_CAPABLE SYN gets the captured server's key (RFC 8684 §3.1), an MP_JOIN SYN that carries our
token gets the truncated HMAC for the live keys with the address ID and backup flag the captured
server gave that subflow (§3.2); anything else a reset.  The client's third ACK is checked: its
MP_CAPABLE must echo our key and bring its own, its MP_JOIN HMAC must be the one the keys and
nonces give (a wrong one resets that subflow); the fourth ACK establishes a join.
"""

from __future__ import annotations

import random

from mptcpspec.capture.packets import Packet, TcpFlags
from mptcpspec.codec import crypto
from mptcpspec.codec.options import (
    AddAddr,
    MpCapable,
    MpCapableFlags,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MptcpItem,
    MpTcpRst,
    Mss,
    SackPermitted,
    TcpOption,
    WindowScale,
    decode_mptcp_options,
    decode_tcp_options,
)
from mptcpspec.replay.connection import Connection
from mptcpspec.replay.events import AbortCause, ClientKey, ClientSyn, FailCause, SegmentKind, SubflowEstablished
from mptcpspec.replay.handshake import MIN_MSS
from mptcpspec.replay.plan import PlannedSubflow, SubflowKind
from mptcpspec.replay.serverplan import ServerPlan
from mptcpspec.replay.setup import Address, show_endpoint
from mptcpspec.replay.subflow import M32, Clock, Subflow, SubflowState
from mptcpspec.replay.wire import tcp_packet

__all__ = ["SYN_RECEIVED", "Acceptor"]

SYN, ACK, RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.RST)
ESTABLISHED = SubflowState.ESTABLISHED
#: a live subflow whose SYN/ACK went out, the client's third ACK not yet in (the engine's SYN_SENT)
SYN_RECEIVED = SubflowState.SYN_SENT


class Acceptor:
    """The handshakes of the server side: ``live`` maps each captured server address to a live
    one, ``listen`` is the live first address, ``matched`` the captured subflows a live one
    already stands for (shared with the sender); ``rng`` draws ISNs and nonces."""

    def __init__(
        self,
        conn: Connection,
        splan: ServerPlan,
        live: dict[Address, Address],
        listen: Address,
        matched: set[int],
        rng: random.Random,
        rto: float,
        min_rto: float,
    ) -> None:
        self.conn, self.splan, self.live, self.listen, self.matched = conn, splan, live, listen, matched
        self.rng, self.rto, self.min_rto = rng, rto, min_rto
        self.client_nonce: dict[int, int] = {}  #: each join's nonce from the client's SYN
        self.clock = Clock()

    def syn(self, pkt: Packet, now: float) -> list[bytes]:
        """A client's SYN to a listen address: a new subflow and its SYN/ACK, or a reset."""
        conn = self.conn
        keys = conn.keys
        opts = decode_mptcp_options(pkt.options, 1) if pkt.options else ()
        mpc = next((o for o in opts if type(o) is MpCapable), None)
        join = next((o for o in opts if type(o) is MpJoinSyn), None)
        refuse = [tcp_packet(pkt.dst, pkt.src, pkt.dport, pkt.sport, 0, pkt.seq + 1, RST | ACK, 0)]
        if conn.subflows and mpc is not None:
            return []  # a second connection: one is replayed
        if mpc is not None and mpc.version != 1:
            return refuse
        if mpc is None and join is None:
            if not conn.subflows:
                conn.abort(
                    now,
                    AbortCause.NO_MPTCP,
                    f"the client's SYN from {show_endpoint((pkt.src, pkt.sport))} carries no MP_CAPABLE "
                    "(a plain TCP client is not served)",
                )
            return refuse
        if join is not None and (keys.server is None or join.token != crypto.key_token(keys.client, 1)):
            return refuse  # not our connection, or before the client's key is known
        index, address_id, backup = self.match(pkt.dst, join is not None)
        kind = SubflowKind.MP_JOIN if join is not None else SubflowKind.MP_CAPABLE
        tcp_opts = decode_tcp_options(pkt.options, 1, strict=False).options if pkt.options else ()
        sack = any(type(o) is SackPermitted for o in tcp_opts)
        shift = next((o.shift for o in tcp_opts if type(o) is WindowScale), None)
        planned = PlannedSubflow(
            index, kind, (pkt.dst, pkt.dport), (pkt.src, pkt.sport), address_id, backup, 0, sack, shift is not None
        )
        nonce = self.rng.getrandbits(32)
        isn = self.rng.getrandbits(32)
        sf = Subflow(
            planned, (pkt.dst, pkt.dport), (pkt.src, pkt.sport), isn, nonce, self.rto, self.min_rto, self.clock
        )
        sf.irs = pkt.seq
        sf.rcv_nxt = (pkt.seq + 1) & M32
        mss = next((o.mss for o in tcp_opts if type(o) is Mss), MIN_MSS)
        sf.mss = max(min(mss, conn.options.mss), MIN_MSS)
        sf.sack_ok = sack
        sf.snd_shift = min(shift, 14) if shift is not None else 0
        sf.wnd = pkt.window
        syn_opts: list[TcpOption] = [Mss(mss=conn.options.mss)]
        if join is None:
            assert mpc is not None
            if mpc.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                keys.checksum = True
            flags = MpCapableFlags.HMAC_SHA | (MpCapableFlags.CHECKSUM_REQUIRED if keys.checksum else 0)
            syn_opts.append(MpCapable(version=1, flags=MpCapableFlags(flags), sender_key=keys.client))
            conn.t0 = conn.sched0 = now  # captured times are relative to the first SYN
        else:
            self.client_nonce[index] = join.nonce
            hmac = crypto.join_synack_hmac(keys.client, keys.server or 0, nonce, join.nonce, 1)
            syn_opts.append(MpJoinSynAck(backup=backup, address_id=address_id, truncated_hmac=hmac, nonce=nonce))
        if sack:
            syn_opts.append(SackPermitted())
        if shift is not None:
            syn_opts.append(WindowScale(shift=0))
        conn.subflows.append(sf)
        conn.by_index.setdefault(index, sf)
        conn.by_flow[(*sf.local, *sf.remote)] = sf
        sf.enter(SYN_RECEIVED, "SYN/ACK sent")
        sf.opened_at = now
        conn.last_heard = now
        sf.received += 1
        out = sf.packet(SYN, syn_opts, seq=sf.isn)
        sf.keep(out, 1, now, SegmentKind.SYN)
        conn.emit(
            ClientSyn(
                conn.since(now),
                index,
                show_endpoint(sf.local),
                show_endpoint(sf.remote),
                kind,
                None if join is None else join.address_id,
                bool(join is not None and join.backup),
            )
        )
        return [out]

    def match(self, dst: Address, is_join: bool) -> tuple[int, int, bool]:
        """The captured subflow a live one to ``dst`` stands for: (index, our address ID, backup).
        A join with no captured counterpart gets a new index, and the address ID of ``dst``."""
        splan = self.splan
        ids = {self.live[o.address]: o.address_id for s in splan.signals if isinstance(o := s.option, AddAddr)}
        for s in splan.subflows:
            if s.index in self.matched or (s.kind is SubflowKind.MP_JOIN) != is_join:
                continue
            if self.live.get(s.server[0]) == dst:
                self.matched.add(s.index)
                return s.index, s.address_id, s.backup
        used = {sf.index for sf in self.conn.subflows} | {s.index for s in splan.subflows}
        index = max(used, default=-1) + 1 if is_join else 0
        return index, (0 if dst == self.listen else ids.get(dst, 0)), False

    def third_ack(self, sf: Subflow, pkt: Packet, opts: tuple[MptcpItem, ...], now: float, out: list[bytes]) -> bool:
        """The client's third ACK on ``sf``: MP_CAPABLE with both keys, or MP_JOIN with its HMAC.
        True when the subflow is established."""
        conn = self.conn
        keys = conn.keys
        if not sf.is_join:
            mpc = next((o for o in opts if type(o) is MpCapable and o.sender_key is not None), None)
            if mpc is None or mpc.receiver_key != keys.client:
                what = "no MP_CAPABLE with its key" if mpc is None else "a receiver key that is not ours"
                out.append(sf.packet(RST, [MpTcpRst(reason=0)]))
                sf.give_up(f"failed: the client's third ACK carries {what}")
                conn.abort(
                    now,
                    AbortCause.NO_MPTCP,
                    f"the client's MP_CAPABLE third ACK carries {what} (a client falling back is not served)",
                )
                return False
            keys.learn(mpc.sender_key or 0)
            conn.inc.start(keys.idsn_server or 0)
            if mpc.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                keys.checksum = True
            sf.enter(ESTABLISHED)
            conn.emit(ClientKey(conn.since(now), sf.index, mpc.sender_key or 0, keys.token_server or 0, keys.checksum))
            conn.emit(SubflowEstablished(conn.since(now), sf.index, sf.kind))
            return True
        j = next((o for o in opts if type(o) is MpJoinAck), None)
        nonce = self.client_nonce.get(sf.index, 0)
        want = crypto.join_ack_hmac(keys.server or 0, keys.client, nonce, sf.nonce, 1)
        if j is None or j.hmac != want:
            detail = (
                "the client's MP_JOIN third ACK carries no HMAC"
                if j is None
                else f"the client's MP_JOIN HMAC {j.hmac.hex()} is not {want.hex()}: wrong key or nonce"
            )
            out.append(sf.packet(RST, [MpTcpRst(reason=0)]))
            conn.give_up(sf, now, FailCause.HMAC_MISMATCH if j is not None else FailCause.NO_MP_JOIN, detail)
            return False
        sf.enter(ESTABLISHED)
        conn.emit(SubflowEstablished(conn.since(now), sf.index, sf.kind))
        out.append(sf.packet(0, [conn.ack_dss()]))  # the fourth ACK: the join is established (RFC 8684 §3.2)
        return True
