"""Handshakes and keys: MP_CAPABLE, MP_JOIN, tokens, HMACs, MP_FASTCLOSE.

:class:`Links` makes the connections and links subflows to them by token: the keys of MP_CAPABLE
(v0: SYN and SYN/ACK; v1: SYN/ACK, then the third ACK with both) give each side's token and IDSN;
an MP_JOIN SYN names the token of the side it joins.  :class:`Handshakes` follows the MP_CAPABLE
and MP_JOIN options of each subflow, verifies the MP_JOIN HMACs, the echoed keys and the key of
MP_FASTCLOSE, and feeds each subflow's handshake to the state machines generated from ``spec/``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mptcpspec.analysis.context import PacketContext
from mptcpspec.analysis.datalevel import Mappings
from mptcpspec.analysis.model import SERVER, SIDE_NAMES, Connection, FinishedHandshake, Subflow
from mptcpspec.analysis.seqspace import M32, M64, data_starts
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec import crypto
from mptcpspec.codec.crypto import Check, Verdict
from mptcpspec.codec.generated.establishment import EstablishmentMachine
from mptcpspec.codec.generated.join import JoinMachine
from mptcpspec.codec.options import (
    CutOption,
    Dss,
    DssFlags,
    MalformedOption,
    MpCapable,
    MpCapableFlags,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MptcpOption,
)
from mptcpspec.fsm.observer import Observer

__all__ = ["Links", "Handshakes", "Order"]

_SYN, _ACK, _RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.RST)
_F_M = int(DssFlags.MAPPING_PRESENT)
_HMAC = int(MpCapableFlags.HMAC_SHA)  # H: HMAC-SHA1 (v0) or HMAC-SHA256 (v1)
# C to G: the algorithm bits besides H, as RFC 6824 §3.1 assigns them
_RCV_SYN_ACK = ("rcv SYN_ACK", "rcv SYN_ACK+MP_JOIN", "rcv SYN_ACK+MP_CAPABLE")
_OTHER_ALGORITHMS = int(
    MpCapableFlags.NO_SOURCE_ADDR | MpCapableFlags.D | MpCapableFlags.E | MpCapableFlags.F | MpCapableFlags.G
)

#: A signal that changed nothing in a handshake machine's states is not fed again while they stay
#: as they are (:meth:`Handshakes.handshake`); False feeds every one, the reference the tests hold
#: the skip to.
SKIP_QUIET_SIGNALS = True

#: A signal fed to a subflow's machine: its direction (0: from A), name and guards.
_Fed = tuple[object, ...]


class Links:
    """The connections of a capture and the tokens that link subflows to them."""

    __slots__ = ("ctx", "conns", "tokens", "join_tokens")

    def __init__(self, ctx: PacketContext, conns: list[Connection]) -> None:
        self.ctx = ctx
        self.conns = conns  # every connection, in the order made
        self.tokens: dict[int, Connection] = {}
        self.join_tokens: dict[int, Connection] = {}  # unknown tokens of MP_JOIN SYNs

    def new_connection(self, version: int | None, number: int) -> Connection:
        conn = Connection(None, version, number)
        self.conns.append(conn)
        return conn

    def unlinked(self, sf: Subflow, number: int, kind: str | None = None) -> Connection:
        """A connection for a subflow met without its handshake (or joining an unknown token)."""
        conn = self.new_connection(None, number)
        conn.unlinked = conn.established = True
        conn.subflows.append(sf)
        sf.conn = conn
        sf.kind = kind
        return conn

    def register_key(self, conn: Connection, side: int, key: int) -> None:
        """``side`` of ``conn`` has key ``key``: its token and IDSN follow."""
        s = conn.sides[side]
        if s.key == key:
            return
        s.key = key
        if conn.version not in (0, 1):
            self.ctx.expert(
                "mptcp.connection.unsupported_version",
                f"MPTCP version {conn.version}: no token or IDSN can be derived from its keys",
            )
            return
        s.token = token = crypto.key_token(key, conn.version)
        s.idsn = idsn = crypto.key_idsn(key, conn.version)
        data_starts(s, (idsn + 1) & M64)  # its data starts at IDSN + 1
        other = self.tokens.get(token)
        if other is not None and other is not conn:
            self.ctx.expert(
                "mptcp.token.collision",
                f"token {token:#010x} of the {SIDE_NAMES[side]} is also the token of MPTCP stream {other.stream}",
            )
        self.tokens[token] = conn


class Handshakes:
    """MP_CAPABLE, MP_JOIN and MP_FASTCLOSE: keys, tokens, HMACs, the handshake machines."""

    __slots__ = ("ctx", "links", "mappings", "order", "quiet")

    def __init__(self, ctx: PacketContext, links: Links, mappings: Mappings) -> None:
        self.ctx = ctx
        self.links = links
        self.mappings = mappings
        self.order = Order(ctx)  # the segments out of the handshake's order
        # subflow index -> the state sets of its machine's two endpoints (objects of that machine
        # alone), and the signals that changed nothing there and told nothing: see handshake
        self.quiet: dict[int, tuple[frozenset[str], frozenset[str], set[_Fed]]] = {}

    # ------------------------------------------------------------------ MP_CAPABLE

    def mp_capable(self, o: MpCapable) -> None:
        sf = self.ctx.sf
        self._mp_capable(o, sf)
        if sf.conn is not None and o.sender_key is not None:
            sf.conn.master_sf = sf

    def _mp_capable(self, o: MpCapable, sf: Subflow) -> None:
        ctx, links = self.ctx, self.links
        d, number = ctx.d, ctx.number
        flags = int(ctx.pkt.flags)
        conn = sf.conn
        if flags & _SYN and not flags & _ACK:
            if conn is None:
                conn = sf.conn = links.new_connection(o.version, number)
                conn.subflows.append(sf)
                sf.kind = "MP_CAPABLE"
                sf.to_client_side = d == 0
                if o.version == 1:  # the machine in spec/establishment.fsm is v1's handshake
                    sf.observer = Observer(EstablishmentMachine, ("A", "B"))
            self._algorithm(o)
            conn.sides[sf.side(d)].flags = o.flags
            if o.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                conn.checksum = True
            if o.sender_key is not None:
                links.register_key(conn, sf.side(d), o.sender_key)
            return
        if conn is None:
            # The capture missed the SYN: start from what this packet says.
            if flags & _SYN:
                conn = sf.conn = links.new_connection(o.version, number)
                sf.to_client_side = d == 1
            elif o.receiver_key is not None:
                conn = sf.conn = links.new_connection(o.version, number)
                sf.to_client_side = d == 0
            else:
                return
            conn.subflows.append(sf)
            sf.kind = "MP_CAPABLE"
        if sf.kind != "MP_CAPABLE":
            ctx.expert("mptcp.option.unexpected", "MP_CAPABLE on an MP_JOIN subflow")
            return
        side = sf.side(d)
        if flags & _SYN:  # SYN/ACK
            self._algorithm(o)
            if o.version != conn.version:
                conn.version = o.version  # the listener's answer decides
            conn.sides[side].flags = o.flags
            if o.flags & MpCapableFlags.CHECKSUM_REQUIRED:
                conn.checksum = True
            if o.sender_key is not None:
                links.register_key(conn, side, o.sender_key)
            return
        # Third ACK, or (v1) the first data with MP_CAPABLE: the sender's key, then the receiver's.
        conn.established = True
        s, r = conn.sides[side], conn.sides[1 - side]
        if o.sender_key is not None:
            if s.key is not None and s.key != o.sender_key:
                ctx.expert(
                    "mptcp.connection.echoed_key_mismatch",
                    f"sender's key {o.sender_key:#018x} differs from the SYN's {s.key:#018x}",
                )
            elif s.key is None:
                links.register_key(conn, side, o.sender_key)
        if o.receiver_key is not None:
            if r.key is not None and r.key != o.receiver_key:
                ctx.expert(
                    "mptcp.connection.echoed_key_mismatch",
                    f"receiver's key {o.receiver_key:#018x} differs from the SYN/ACK's {r.key:#018x}",
                )
                ctx.check(Check(Verdict.MISMATCH, "MP_CAPABLE echoed key", r.key, o.receiver_key))
            elif r.key is None:
                links.register_key(conn, 1 - side, o.receiver_key)
            else:
                ctx.check(Check(Verdict.VERIFIED, "MP_CAPABLE echoed key", r.key, o.receiver_key))
        if o.data_level_length is not None and ctx.pkt.payload_len:
            # v1: the first data rides on MP_CAPABLE, mapped from IDSN + 1 (RFC 8684 §3.1).
            # The mapping is implicit: DSN IDSN + 1, subflow sequence number 1; the kernel repeats the
            # option on every segment of that first mapping.
            if s.idsn is not None:
                s.checked_first = True
                dl = o.data_level_length
                self.mappings.mapping(conn, sf, d, 1, (s.idsn + 1) & M64, dl, o.checksum, dl)

    def _algorithm(self, o: MpCapable) -> None:
        f = int(o.flags)
        if not f & _HMAC:
            self.ctx.expert("mptcp.connection.missing_algorithm", "MP_CAPABLE sets no HMAC algorithm flag (H)")
        elif f & _OTHER_ALGORITHMS:
            self.ctx.expert(
                "mptcp.connection.unsupported_algorithm",
                f"MP_CAPABLE flags {f:#04x} ask for an algorithm besides HMAC-SHA1/SHA256",
            )

    # ------------------------------------------------------------------ MP_JOIN

    def mp_join(self, o: MpJoinSyn | MpJoinSynAck | MpJoinAck) -> None:
        ctx, links = self.ctx, self.links
        sf, d = ctx.sf, ctx.d
        if type(o) is MpJoinSyn:
            flags = int(ctx.pkt.flags)
            if not flags & _SYN or flags & _ACK:
                ctx.expert("mptcp.option.unexpected", "MP_JOIN of SYN length on a packet that is not a SYN")
                return
            sf.address_ids[d] = o.address_id
            sf.backup[d] = o.backup
            sf.nonces[d] = o.nonce
            conn = links.tokens.get(o.token)
            if sf.conn is None:
                sf.kind = "MP_JOIN"
                sf.observer = Observer(JoinMachine, ("A", "B"))
            if conn is None:
                ctx.expert("mptcp.join.unknown_token", f"token {o.token:#010x} names no connection seen")
                if sf.conn is None:
                    other = links.join_tokens.get(o.token)
                    if other is not None:
                        other.subflows.append(sf)
                        sf.conn = other
                    else:
                        links.join_tokens[o.token] = links.unlinked(sf, ctx.number, "MP_JOIN")
                    sf.observer = None
                return
            conn.established = True  # a subflow joins an established connection (RFC 8684 Section 3.2)
            if sf.conn is None:
                sf.conn = conn
                conn.subflows.append(sf)
                # The token is the receiver's: the initiator is the other side.
                sf.to_client_side = conn.sides[SERVER].token == o.token
            return
        conn = sf.conn
        if conn is None:
            return
        a = sf.side(0)  # the initiator's connection side
        ka, kb = conn.sides[a].key, conn.sides[1 - a].key
        if type(o) is MpJoinSynAck:
            sf.address_ids[d] = o.address_id
            sf.backup[d] = o.backup
            sf.nonces[d] = o.nonce
        if not ctx.verify:
            return
        if conn.version not in (0, 1):
            why = (
                "the keys are unknown: the token names no connection of this capture"
                if conn.unlinked
                else f"MPTCP version {conn.version} has no known HMAC"
            )
            what = f"MP_JOIN {'SYN/ACK' if type(o) is MpJoinSynAck else 'ACK'} HMAC"
            c = Check(Verdict.UNVERIFIABLE, what, None, None, why)
        elif type(o) is MpJoinSynAck:
            c = crypto.verify_join_synack(kb, ka, o.nonce, sf.nonces[0], o.truncated_hmac, conn.version)
        else:
            assert type(o) is MpJoinAck  # the MP_JOIN of a SYN returned above
            c = crypto.verify_join_ack(ka, kb, sf.nonces[0], sf.nonces[1], o.hmac, conn.version)
        ctx.check(c)
        if c.verdict is Verdict.MISMATCH:
            ctx.expert("mptcp.join.hmac_mismatch", str(c))

    # ------------------------------------------------------------------ handshake machines

    def handshake(self, obs: Observer, mptcp: Sequence[MptcpOption | MalformedOption | CutOption]) -> bool:
        """Feed this packet of the subflow, whose MPTCP options are ``mptcp``, to its handshake machine ``obs``.

        Returns True for a segment out of the handshake's order (an expert item says why): the
        machines ignore it, and a RST among them closes nothing."""
        ctx = self.ctx
        sf, pkt, d = ctx.sf, ctx.pkt, ctx.d
        flags = int(pkt.flags)
        guards: dict[str, bool] = {}
        sig: str | None
        if sf.kind == "MP_JOIN":
            types = {type(o) for o in mptcp}
            if flags & _RST:
                sig = "RST"
            elif flags & _SYN and not flags & _ACK:
                sig = "SYN+MP_JOIN" if MpJoinSyn in types else None
                guards["token_ok"] = sf.conn is not None
            elif flags & _SYN:
                sig = "SYN_ACK+MP_JOIN" if MpJoinSynAck in types else "SYN_ACK"
                guards["hmac_ok"] = self._verified("MP_JOIN SYN/ACK")
            elif MpJoinAck in types:
                sig = "ACK+MP_JOIN"
                guards["hmac_ok"] = self._verified("MP_JOIN ACK")
            else:
                sig = "ACK"
        else:
            mpc: MpCapable | None = None  # the first of each
            dss: Dss | None = None
            for o in mptcp:
                if type(o) is MpCapable:
                    if mpc is None:
                        mpc = o
                elif type(o) is Dss and dss is None:
                    dss = o
            if flags & _SYN and not flags & _ACK:
                sig = "SYN+MP_CAPABLE" if mpc else "SYN"
            elif flags & _SYN:
                sig = "SYN_ACK+MP_CAPABLE" if mpc else "SYN_ACK"
                if mpc is None and sf.conn is not None and sf.conn.fallback is None:
                    sf.conn.fallback = "the SYN/ACK carries no MP_CAPABLE"
                    ctx.expert("mptcp.fallback", f"fallback to regular TCP: {sf.conn.fallback}")
            elif isinstance(mpc, MpCapable):
                sig = "DATA+MP_CAPABLE" if mpc.data_level_length is not None else "ACK+MP_CAPABLE"
            elif isinstance(dss, Dss):
                if int(dss.flags) & _F_M and dss.data_level_length == 0:
                    sig = "DSS[INFINITE_MAPPING]"
                elif int(dss.flags) & _F_M and pkt.payload_len:
                    sig = "DATA+DSS"
                else:
                    sig = "ACK+DSS"
            elif flags & _RST:
                sig = None
            else:
                sig = "ACK"
        stray = self.order.judge(obs, flags, d, bool(mptcp))
        if stray is not None:
            ctx.expert(
                "mptcp.handshake.out_of_order",
                f"{sf.kind} subflow: {stray}: out of the handshake's order, the handshake machines ignore it",
            )
            sig = None
        if sig is not None:
            # A signal that changed nothing where the machine is, and told nothing (a subflow whose
            # handshake stays in MPC_ACK_SENT sees the same two on every segment), changes nothing
            # there again: the observer's state sets are new objects whenever anything in it
            # changes (states or signals owed), and what it has sent and received only grows, which
            # flags fewer.  Then only its count of signals moves, and it is not final (else it was
            # left).  The key holds the guards, which may decide a move.
            fed: _Fed = (d, sig, *guards.items())
            held = obs.states("A"), obs.states("B")
            quiet = self.quiet.get(sf.index)
            if (
                quiet is not None
                and quiet[0] is held[0]
                and quiet[1] is held[1]
                and fed in quiet[2]
                and SKIP_QUIET_SIGNALS
            ):
                obs.count += 1
                return False
            illegal = obs.feed(("A", "B") if d == 0 else ("B", "A"), sig, **guards)
            for f in illegal:
                ctx.expert(
                    "mptcp.handshake.illegal",
                    f"{sf.kind} {f.signal}: {f.role} {f.endpoint} in {'|'.join(f.states)}: {f.reason}",
                )
            if not illegal and obs.states("A") is held[0] and obs.states("B") is held[1]:
                if quiet is None or quiet[0] is not held[0] or quiet[1] is not held[1]:
                    quiet = self.quiet[sf.index] = (held[0], held[1], set())
                quiet[2].add(fed)
        if obs.is_final("A") and obs.is_final("B"):
            states = obs.states("A") | obs.states("B")
            if "FALLBACK" in states and sf.conn is not None and sf.conn.fallback is None:
                sf.conn.fallback = "the MP_CAPABLE handshake did not complete (no MP_CAPABLE on the SYN/ACK or ACK)"
                ctx.expert("mptcp.fallback", sf.conn.fallback)
            sf.observer = FinishedHandshake(obs)
            self.order.windows.pop(sf.index, None)
            self.quiet.pop(sf.index, None)
        return stray is not None

    def _verified(self, prefix: str) -> bool:
        return all(c.verdict is not Verdict.MISMATCH for c in self.ctx.checks if c.what.startswith(prefix))

    # ------------------------------------------------------------------ MP_FASTCLOSE

    def fastclose(self, o: MpFastclose) -> None:
        ctx = self.ctx
        sf = ctx.sf
        conn = sf.conn
        if conn is None:
            return
        receiver = conn.sides[1 - sf.side(ctx.d)]
        if receiver.key is None:
            c = Check(Verdict.UNVERIFIABLE, "MP_FASTCLOSE key", None, o.receiver_key, "unknown: the receiver's key")
        else:
            c = Check(
                Verdict.VERIFIED if receiver.key == o.receiver_key else Verdict.MISMATCH,
                "MP_FASTCLOSE key",
                receiver.key,
                o.receiver_key,
            )
        ctx.check(c)
        if c.verdict is Verdict.MISMATCH:
            ctx.expert("mptcp.fastclose.key_mismatch", str(c))
        key_valid = c.verdict is not Verdict.MISMATCH
        ctx.closure(conn, "RST+MP_FASTCLOSE" if int(ctx.pkt.flags) & _RST else "MP_FASTCLOSE", key_valid=key_valid)


class Order:
    """Which segments of a handshake TCP itself drops (RFC 9293 Section 3.10.7): those are out of the
    handshake's order, and no step of it."""

    __slots__ = ("ctx", "windows")

    def __init__(self, ctx: PacketContext) -> None:
        self.ctx = ctx
        # subflow index -> window scale of the initiator's and the listener's SYN (None: none),
        # then the latest window each advertised, scaled: while the subflow's handshake is followed
        self.windows: dict[int, list[int | None]] = {}

    def judge(self, obs: Observer, flags: int, d: int, has_mptcp: bool) -> str | None:
        """Why TCP drops this segment (RFC 9293 Section 3.10.7), which is then no step of the
        handshake, or None.  Judged: a RST outside its receiver's window (in SYN-SENT: a RST that
        does not acknowledge the SYN); a segment without MPTCP option that acknowledges nothing its
        receiver sent (before the SYN/ACK, or beyond it while the receiver sent no data)."""
        ctx = self.ctx
        sf, pkt = ctx.sf, ctx.pkt
        me, peer = sf.dirs[d], sf.dirs[1 - d]  # the sender's direction, the receiver's
        src, dst = ("A", "B") if d == 0 else ("B", "A")
        win = self.windows.setdefault(sf.index, [None, None, None, None])
        if flags & _SYN:
            win[d] = _window_scale(pkt.options)
            win[2 + d] = pkt.window  # a SYN's window is never scaled (RFC 7323 Section 2.2)
            if not flags & _RST:
                return None
        elif not flags & _RST:
            if win[0] is not None and win[1] is not None:
                win[2 + d] = pkt.window << (win[d] or 0)
            else:
                win[2 + d] = pkt.window
        if flags & _RST:
            if _awaits_syn(obs, dst):
                # SYN-SENT: a RST is acceptable only if its ACK acknowledges the SYN
                if not flags & _ACK:
                    return f"a RST without ACK to {dst}, which has not received a SYN/ACK"
                rel = (pkt.ack - (peer.isn or 0)) & M32
                if not 1 <= rel <= 1 + peer.syn_data:
                    return f"a RST whose ACK number ({rel}, relative) does not acknowledge {dst}'s SYN"
                return None
            wnd = win[2 + (1 - d)]
            rel = (pkt.seq - (me.isn or 0)) & M32
            # in the receiver's window, above everything the sender may have sent (and its FIN)
            if wnd is not None and (rel - 1) & M32 >= 2 + me.syn_data + me.data + wnd:
                return f"a RST whose sequence number ({rel}, relative) lies outside {dst}'s window"
            return None
        if not flags & _ACK or has_mptcp:
            return None
        if _awaits_syn(obs, src):
            return f"an ACK from {src}, which has not received a SYN/ACK"
        rel = (pkt.ack - (peer.isn or 0)) & M32
        if not peer.data and not 1 <= rel <= 2 + peer.syn_data:
            return f"an ACK number ({rel}, relative) that acknowledges nothing {dst} sent"
        return None


def _awaits_syn(obs: Observer, endpoint: str) -> bool:
    """The endpoint waits for the SYN/ACK: each of its states has a transition on one that leaves
    the state (a state that only acknowledges a retransmitted SYN/ACK has received one)."""
    t = obs.table
    return all(any(tr.target != st for ev in _RCV_SYN_ACK for tr in t.options(st, ev)) for st in obs.states(endpoint))


def _window_scale(options: bytes) -> int | None:
    """The shift of a SYN's window scale option (RFC 7323 Section 2.3; at most 14), or None."""
    i, n = 0, len(options)
    while i < n:
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n or options[i + 1] < 2:
            break
        if kind == 3 and options[i + 1] == 3 and i + 2 < n:
            return min(options[i + 2], 14)
        i += options[i + 1]
    return None
