"""The server side of a replay: answer a live MPTCP client as the captured server did (sans-IO).

:class:`ServerReplay` has the outside of :class:`~replay.core.Replay` (``start``, ``receive``,
``poll``, ``deadline``, ``done``, ``events``, ``report``, ``local_addresses``), so that
:func:`~replay.run.run_replay` drives it.  It waits for a client's MP_CAPABLE SYN on the listen
address and port and answers with the captured server's key; the client's key comes with its
third ACK (RFC 8684 §3.1), and from the two keys: tokens, IDSNs, the MP_JOIN HMACs (§3.2: the
client's SYN must carry our token, our SYN/ACK carries the truncated HMAC, the client's third ACK's
HMAC is checked, a wrong one resets that subflow), DATA_ACKs, DSS checksums when either side asked,
and the ADD_ADDR HMAC (§3.4.1), sent again until the client echoes it.

The captured server's data (:mod:`replay.serverplan`) goes out on the live subflow that stands for
the captured one (the MP_CAPABLE one; a join to the same server address, in order), else on another
open one, each segment once the live client's data reached the point the captured server had
received when it sent it; its ADD_ADDR, MP_PRIO and REMOVE_ADDR likewise (a REMOVE_ADDR also closes
our subflows on that address with a FIN), then its DATA_FIN (after the client's, if the captured one
came after it) or MP_FASTCLOSE.  Whatever the client sends is acknowledged at both levels and
counted.  The subflow, data-level, receiving and closing parts are those of the client side
(:mod:`replay.subflow`, :mod:`replay.datalevel`, :mod:`replay.receiving`, :mod:`replay.closing`,
:mod:`replay.sending`): in their words "client" is our end and "server" the live peer.
"""

from __future__ import annotations

import bisect
import errno
import ipaddress
import random
import socket
from collections.abc import Callable, Iterable, Mapping

from mptcpspec.capture.packets import Packet, TcpFlags, decode_frame
from mptcpspec.codec import crypto
from mptcpspec.codec.generated.closure import Event as ClosureEvent
from mptcpspec.codec.generated.closure import State as ClosureState
from mptcpspec.codec.options import (
    AddAddr,
    MpCapable,
    MpCapableFlags,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MptcpItem,
    MpTcpRst,
    Mss,
    RemoveAddr,
    SackPermitted,
    TcpOption,
    WindowScale,
    decode_mptcp_options,
    decode_tcp_options,
)
from mptcpspec.errors import MptcpspecError
from mptcpspec.replay.closing import Closing
from mptcpspec.replay.connection import Connection, Keys
from mptcpspec.replay.core import LINKTYPE_RAW, TIME_WAIT
from mptcpspec.replay.datalevel import M64, OutgoingData
from mptcpspec.replay.events import (
    AbortCause,
    AddAddrEchoReceived,
    AddAddrSent,
    ClientKey,
    ClientSyn,
    CloseHow,
    FailCause,
    PrioritySent,
    RemoveAddrSent,
    ReplayEvent,
    Retransmitted,
    SegmentKind,
    SubflowClosed,
    SubflowEstablished,
)
from mptcpspec.replay.handshake import MIN_MSS
from mptcpspec.replay.plan import PlannedSubflow, ReplayPlan, SubflowKind
from mptcpspec.replay.receiving import Receiver
from mptcpspec.replay.recovery import MIN_RTO
from mptcpspec.replay.report import Report, SubflowReport
from mptcpspec.replay.sending import CLOSABLE, OPEN_WAIT, Sender
from mptcpspec.replay.serverplan import ServerPlan
from mptcpspec.replay.setup import Address, ReplayError, ReplayOptions, SetupProblem, Timing, show_endpoint
from mptcpspec.replay.subflow import M32, OPEN, Subflow, SubflowState
from mptcpspec.replay.wire import tcp_packet

__all__ = ["ServerReplay", "require_local"]

SYN, ACK, RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.RST)
ESTABLISHED = SubflowState.ESTABLISHED
#: a live subflow whose SYN/ACK went out, the client's third ACK not yet in (the engine's SYN_SENT)
SYN_RECEIVED = SubflowState.SYN_SENT
ALL_IN = 1 << 62  #: what the gate counts once the client's DATA_FIN arrived: every point is reached


def require_local(addresses: Iterable[Address]) -> None:
    """:class:`ReplayError` (``NOT_LOCAL``) unless every address is configured on this host (in
    this network namespace): a socket can be bound to it."""
    for a in addresses:
        fam = socket.AF_INET if a.version == 4 else socket.AF_INET6
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            try:
                s.bind((str(a), 0))
            except OSError as e:
                if e.errno in (errno.EADDRNOTAVAIL, errno.EINVAL):
                    raise ReplayError(
                        SetupProblem.NOT_LOCAL, f"listen address {a} is not an address of this host"
                    ) from None
                raise ReplayError(SetupProblem.NOT_LOCAL, f"listen address {a}: {e.strerror or e}") from None


class GatedData(OutgoingData):
    """Our data-level stream, each segment held back until the client's data reached its point."""

    __slots__ = ("starts", "needs", "received", "held_from")

    def __init__(
        self, idsn: int, plan: ReplayPlan, fill: int, mss: int, splan: ServerPlan, received: Callable[[], int]
    ) -> None:
        pairs = sorted((s.dsn, s.needs) for s in splan.segments)
        self.starts = [d for d, _ in pairs]
        self.needs = [n for _, n in pairs]
        self.received = received  #: client octets received in order (its DATA_FIN: :data:`ALL_IN`)
        #: the relative DSN from which data waits for a signal not yet sent (None: none waits)
        self.held_from: int | None = None
        super().__init__(idsn, plan, fill, mss)

    def open_at(self, dsn: int) -> bool:
        """The segment at relative DSN ``dsn`` may go: the client's data reached its point, and the
        signals the captured server sent before it went."""
        if self.held_from is not None and dsn >= self.held_from:
            return False
        k = bisect.bisect_right(self.starts, dsn) - 1
        return k < 0 or self.received() >= self.needs[k]

    def next_planned(self) -> int | None:
        k = super().next_planned()
        return k if k is None or self.open_at(self.segments[k].dsn) else None

    def lowest_unsent(self) -> int | None:
        k = super().lowest_unsent()
        return k if k is None or self.open_at(self.segments[k].dsn) else None


class ServerReceiver(Receiver):
    """The client's packets on open subflows (:class:`~replay.receiving.Receiver`), its abortive
    close worded as the client's."""

    __slots__ = ("expected",)

    def __init__(self, conn: Connection, closing: Closing, expected: bool) -> None:
        super().__init__(conn, closing)
        self.expected = expected  #: the captured client ended with MP_FASTCLOSE too

    def reset_by_server(self, now: float, how: str) -> None:
        conn = self.conn
        if how == "MP_FASTCLOSE" and self.expected and conn.out.unsent == 0:
            return  # the end the capture shows, once our data went: the closure machine closes
        conn.abort(
            now,
            AbortCause.RESET_BY_CLIENT,
            f"the client reset the connection ({how}) after acknowledging {conn.out.delivered()} of "
            f"{conn.plan.data_len} server octets at data level",
        )


class PendingAddAddr:
    """An ADD_ADDR sent and not yet echoed."""

    __slots__ = ("option", "subflow", "sent_at", "tries", "echoed", "stopped")

    def __init__(self, option: AddAddr, subflow: int, now: float) -> None:
        self.option, self.subflow, self.sent_at, self.tries = option, subflow, now, 0
        self.echoed = False
        self.stopped = False  #: echoed, withdrawn (REMOVE_ADDR) or given up: not sent again


class ServerSender(Sender):
    """What the replayed server sends on its own: its data, its signals, its close."""

    __slots__ = ("splan", "live", "port", "next_sig", "adds", "removed", "sig_ready", "matched")

    def __init__(
        self, conn: Connection, closing: Closing, splan: ServerPlan, live: Mapping[Address, Address], port: int
    ) -> None:
        super().__init__(conn, None, closing)  # type: ignore[arg-type]  # no handshake of ours: we open nothing
        self.mpc_data_sent = True  # the client's first data carries MP_CAPABLE, never the server's
        self.held = True
        self.splan, self.live, self.port = splan, live, port
        self.next_sig = 0
        self.adds: list[PendingAddAddr] = []
        self.removed: set[int] = set()  #: our address IDs a REMOVE_ADDR withdrew
        #: when the next signal's data points were reached (it may wait for the client's subflows)
        self.sig_ready: float | None = None
        self.matched: set[int] = set()  #: captured subflows a live one stands for
        self._hold()

    @property
    def gated(self) -> GatedData:
        """Our data-level stream (the server's core makes it a :class:`GatedData`)."""
        out = self.conn.out
        assert isinstance(out, GatedData)
        return out

    def _hold(self) -> None:
        """Data after the next signal waits for it (capture order)."""
        signals = self.splan.signals
        self.gated.held_from = signals[self.next_sig].after if self.next_sig < len(signals) else None

    def gate(self, needs: int) -> bool:
        return self.gated.received() >= needs

    def pump(self, now: float) -> list[bytes]:
        """Everything that may go now."""
        out: list[bytes] = []
        conn = self.conn
        if conn.done or conn.keys.server is None or not conn.subflows:
            return out
        self.recover(now, out)
        if self.orphans:
            self.send_orphans(now, out)
        self._data(now, out)
        if conn.out.unsent == 0:
            self._tail(now, out)
        if self.next_sig < len(self.splan.signals):
            self._server_signals(now, out)
        data = conn.out
        if (
            data.unsent == 0
            and self.next_sig == len(self.splan.signals)
            and data.dfin_sent_at is None
            and data.una == data.end
            and self.closing.state in CLOSABLE
            and self.gate(self.splan.close_needs)
        ):
            if self.splan.fastclose:
                self.closing.handle(now, ClosureEvent.M_FASTCLOSE_RST, out)
            else:
                self.closing.handle(now, ClosureEvent.M_CLOSE, out)
        return out

    def add_addr_option(self, o: AddAddr) -> AddAddr:
        """The captured ADD_ADDR for the live address, port and keys."""
        keys = self.conn.keys
        address = self.live.get(o.address, o.address)
        port = o.port
        if port is not None and port == self.splan.server[1]:
            port = self.port
        hmac = crypto.add_addr_hmac(keys.client, keys.server or 0, o.address_id, address, port, 1)
        return AddAddr(address_id=o.address_id, address=address, port=port, hmac=hmac)

    def _server_signals(self, now: float, out: list[bytes]) -> None:
        conn = self.conn
        signals = self.splan.signals
        while self.next_sig < len(signals):
            sig = signals[self.next_sig]
            if conn.out.sent_to() < sig.after or not self.gate(sig.needs):
                break
            if self.sig_ready is None:
                self.sig_ready = now
            if not self.matched.issuperset(sig.waits) and now < self.sig_ready + OPEN_WAIT:
                break  # the subflows it concerns were open in the capture: wait a little for them
            self.sig_ready = None
            sf = conn.by_index.get(sig.subflow)
            if sf is None or sf.state is not ESTABLISHED or sf.fin_sent:
                sf = conn.established()
            if sf is None:
                break
            self.next_sig += 1
            self._hold()
            o = sig.option
            if isinstance(o, AddAddr):
                opt = self.add_addr_option(o)
                out.append(sf.packet(0, [opt, conn.ack_dss()]))
                self.adds.append(PendingAddAddr(opt, sf.index, now))
                conn.emit(AddAddrSent(conn.since(now), sf.index, opt.address_id, str(opt.address), opt.port, 0))
            elif isinstance(o, MpPrio):
                out.append(sf.packet(0, [o, conn.ack_dss()]))
                conn.emit(PrioritySent(conn.since(now), sf.index, bool(o.backup)))
            else:
                self._remove(sf, o, now, out)

    def _remove(self, sf: Subflow, o: RemoveAddr, now: float, out: list[bytes]) -> None:
        """REMOVE_ADDR, then a FIN on each of our subflows from a withdrawn address."""
        conn = self.conn
        ids = set(o.address_ids)
        self.removed |= ids
        for add in self.adds:
            if add.option.address_id in ids:
                add.stopped = True  # withdrawn: no longer sent again
        gone = [s for s in conn.subflows if s.is_join and (s.address_id or 0) in ids and s.state is ESTABLISHED]
        carrier = sf if sf not in gone else next((s for s in conn.subflows if s.state is ESTABLISHED), sf)
        out.append(carrier.packet(0, [o, conn.ack_dss()]))
        conn.emit(RemoveAddrSent(conn.since(now), carrier.index, tuple(o.address_ids)))
        for s in gone:
            if not s.fin_sent:
                out.append(self.closing.fin(s, now))
            conn.by_index.pop(s.index, None)  # its planned data goes on another subflow

    def add_addr_timers(self) -> list[float]:
        rto = self.closing.rto()
        times = [a.sent_at + rto * (2 << a.tries) for a in self.adds if not a.stopped]
        if self.sig_ready is not None:
            times.append(self.sig_ready + OPEN_WAIT)
        return times

    def add_addr_again(self, now: float, out: list[bytes]) -> None:
        """ADD_ADDRs not echoed in time go again (RFC 8684 §3.4.1), at most ``max_tries`` times."""
        conn = self.conn
        rto = self.closing.rto()
        for a in self.adds:
            if a.stopped or now < a.sent_at + rto * (2 << a.tries):
                continue
            if a.tries >= conn.options.max_tries:
                a.stopped = True  # given up: the client never echoed it
                continue
            sf = conn.by_index.get(a.subflow)
            if sf is None or sf.state is not ESTABLISHED:
                sf = conn.established()
            if sf is None:
                continue
            a.tries += 1
            a.sent_at = now
            out.append(sf.packet(0, [a.option, conn.ack_dss()]))
            o = a.option
            conn.emit(AddAddrSent(conn.since(now), sf.index, o.address_id, str(o.address), o.port, a.tries))

    def echo(self, sf: Subflow, o: AddAddr, now: float) -> None:
        for a in self.adds:
            if not a.echoed and a.option.address_id == o.address_id:
                a.echoed = a.stopped = True
                self.conn.emit(AddAddrEchoReceived(self.conn.since(now), sf.index, o.address_id))


class ServerReplay:
    """Play ``plan``'s server side: listen on ``listen`` (the live address of the captured server's
    first address) and ``listen_port`` (default: the captured port); ``servers`` maps the captured
    server's other addresses (those its ADD_ADDRs announce) to live ones.  ``timeout``: seconds to
    wait for the client's SYN, and of silence from it after.  The other arguments are those of
    :class:`~replay.core.Replay`.  The replay sends from its :meth:`local_addresses`, which must
    be this host's (:func:`require_local`)."""

    def __init__(
        self,
        plan: ServerPlan,
        *,
        listen: Address | str,
        listen_port: int | None = None,
        servers: Mapping[Address | str, Address | str] | None = None,
        timing: Timing = "fast",
        rto: float = 0.2,
        max_tries: int = 8,
        timeout: float = 10.0,
        fill: int = 0,
        mss: int = 1460,
        rng: random.Random | None = None,
        min_rto: float = MIN_RTO,
        time_wait: float = TIME_WAIT,
    ) -> None:
        ip = ipaddress.ip_address
        self.splan = plan
        self.listen = ip(listen)
        self.port = listen_port or plan.server[1]
        live = {ip(k): ip(v) for k, v in (servers or {}).items()}
        live[plan.server[0]] = self.listen
        for a in plan.addresses():
            live.setdefault(a, a)
        self.live = live
        #: (live address, port) pairs a client's SYN may come to
        self.listening = {(a, self.port) for a in live.values()}
        for sig in plan.signals:
            if isinstance(sig.option, AddAddr) and sig.option.port is not None:
                self.listening.add((live[sig.option.address], sig.option.port))
        self.ports = sorted({p for _, p in self.listening})
        options = ReplayOptions(timing, rto, max_tries, timeout, fill, False, mss, False, False, None)
        rplan = plan.replay_plan()
        keys = Keys(plan.server_key, True, plan.checksum)
        self.conn = conn = Connection(rplan, options, keys, [])
        conn.out = GatedData(keys.idsn_client, rplan, fill, mss, plan, self.received)
        self.closing = Closing(conn)
        self.receiver = ServerReceiver(conn, self.closing, plan.client_fastclose)
        self.sender = ServerSender(conn, self.closing, plan, live, self.port)
        self.rng = rng or random.SystemRandom()
        self.rto, self.min_rto = rto, min_rto
        self.client_nonce: dict[int, int] = {}
        self.matched = self.sender.matched  #: captured subflows a live one stands for
        self.time_wait = time_wait
        self.time_wait_until: float | None = None
        self._ended = False
        self.started_at = 0.0

    # -- what it is

    @property
    def plan(self) -> ServerPlan:
        return self.splan

    @property
    def keys(self) -> Keys:
        """Our keys: ``client`` is the replayed server's, ``server`` the live client's (the
        engine's words are those of the client side)."""
        return self.conn.keys

    @property
    def subflows(self) -> list[Subflow]:
        return self.conn.subflows

    @property
    def events(self) -> list[ReplayEvent]:
        return self.conn.events

    @property
    def done(self) -> bool:
        return self.conn.done and self.time_wait_until is None

    @property
    def failed(self) -> str | None:
        return self.conn.failure

    def received(self) -> int:
        """Client data-level octets received in order (its DATA_FIN: every point is reached)."""
        inc = self.conn.inc
        if inc.next is None or inc.idsn is None:
            return 0
        if inc.dfin is not None and inc.next == (inc.dfin + 1) & M64:
            return ALL_IN
        return (inc.next - inc.idsn - 1) & M64

    def local_addresses(self) -> list[Address]:
        """The live server addresses: the listen address and those the ADD_ADDRs announce."""
        return sorted(set(self.live.values()), key=str)

    def peer_addresses(self) -> list[Address]:
        """The live client addresses seen so far."""
        return sorted({sf.remote[0] for sf in self.conn.subflows}, key=str)

    # -- the outside

    def start(self, now: float) -> list[bytes]:
        """Start waiting for the client's SYN (nothing to send)."""
        conn = self.conn
        conn.t0 = conn.last_heard = self.started_at = now
        conn.started = True
        return []

    def deadline(self) -> float | None:
        conn = self.conn
        if conn.done:
            return self.time_wait_until
        times = [conn.last_heard + conn.options.timeout]
        for sf in conn.subflows:
            times += sf.timers(conn.options.rto)
        times += self.closing.timers()
        times += self.sender.timers()
        times += self.sender.add_addr_timers()
        return min(times)

    def poll(self, now: float) -> list[bytes]:
        conn = self.conn
        if conn.done:
            if self.time_wait_until is not None and now >= self.time_wait_until:
                self.time_wait_until = None
            return []
        out: list[bytes] = []
        if now - conn.last_heard >= conn.options.timeout:
            if not conn.subflows:
                where = show_endpoint((self.listen, self.port))
                conn.abort(
                    now, AbortCause.NO_CLIENT, f"no client connected to {where} within {conn.options.timeout:g} s"
                )
            else:
                conn.abort(now, AbortCause.TARGET_SILENT, f"the client sent nothing for {conn.options.timeout:g} s")
            return out
        self._retransmit(now, out)
        self.sender.add_addr_again(now, out)
        if self.closing.poll(now, out):
            out += self.sender.reinject(now)
            out += self.sender.pump(now)
        self._ending()
        return out

    def _retransmit(self, now: float, out: list[bytes]) -> None:
        conn = self.conn
        max_tries = conn.options.max_tries
        for sf in conn.subflows:
            u = sf.due(now)
            if u is None:
                continue
            if sf.probing:
                out.append(self.sender.again(sf, sf.probe(now), now))
                continue
            if sf.timeouts >= max_tries:
                conn.give_up(sf, now, FailCause.NO_ANSWER, f"no answer after {sf.timeouts + 1} transmissions")
                if sf is conn.subflows[0] and sf.state is not ESTABLISHED and conn.keys.server is None:
                    conn.abort(now, AbortCause.FIRST_SUBFLOW_FAILED, "the client never acknowledged our SYN/ACK")
                continue
            sf.expire(u, now)
            out.append(self.sender.again(sf, u, now))
            conn.emit(Retransmitted(conn.since(now), sf.index, u.kind, (u.seq - sf.isn) & M32, u.tries))
            if u.kind is SegmentKind.DATA:
                out += self.sender.reinject_stalled(sf, now)

    def _ending(self) -> None:
        conn = self.conn
        if not conn.done or self._ended:
            return
        self._ended = True
        if conn.failure is None and self.time_wait > 0:
            # TIME-WAIT: the client's FINs on subflows still closing are acknowledged (the closure
            # machine ends the connection as soon as both DATA_FINs are; the kernel's subflow FINs
            # come then)
            self.time_wait_until = (conn.ended_at or 0.0) + self.time_wait

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """One IP packet to a listen address: what to send in answer."""
        conn = self.conn
        try:
            pkt = decode_frame(LINKTYPE_RAW, data)
        except MptcpspecError:
            return []
        if pkt is None:
            return []
        sf = conn.by_flow.get((pkt.dst, pkt.dport, pkt.src, pkt.sport))
        if conn.done:
            if self.time_wait_until is None or sf is None:
                return []
            return self._closed_fin(sf, pkt, now)
        if sf is None:
            flags = int(pkt.flags)
            if flags & SYN and not flags & (ACK | RST) and (pkt.dst, pkt.dport) in self.listening:
                return self._syn(pkt, now)
            return []
        out = self._receive(sf, pkt, now)
        self._ending()
        return out

    def _receive(self, sf: Subflow, pkt: Packet, now: float) -> list[bytes]:
        conn = self.conn
        conn.last_heard = now
        sf.received += 1
        opts: tuple[MptcpItem, ...] = decode_mptcp_options(pkt.options, 1) if pkt.options else ()
        flags = int(pkt.flags)
        if flags & RST:
            if sf.state is SubflowState.FAILED:
                return []
            live = self.sender.orphan(sf, now)
            answer = self.receiver.reset(sf, opts, now)
            if sf is conn.subflows[0] and conn.keys.server is None:
                conn.abort(now, AbortCause.REFUSED, "the client reset the connection in its handshake")
            return answer + self.sender.pump(now) if live else answer
        if flags & SYN:
            # The client's SYN again (our SYN/ACK lost): the SYN/ACK again.
            if sf.state is SYN_RECEIVED and pkt.seq == sf.irs and sf.unacked:
                sf.sent += 1
                sf.retransmitted += 1
                return [sf.unacked[0].packet]
            return []
        out: list[bytes] = []
        if sf.state is SYN_RECEIVED:
            if not flags & ACK or pkt.ack != (sf.isn + 1) & M32:
                return []
            if not self._third_ack(sf, pkt, opts, now, out):
                return out
        if sf.state is SubflowState.CLOSED:
            return self.receiver.fin_again(sf, pkt)
        if sf.state not in OPEN:
            return out
        for o in opts:
            if type(o) is MpCapable and o.data_level_length and conn.inc.idsn is not None:
                # RFC 8684 §3.1: the client's first data carries MP_CAPABLE with its length: DSN
                # IDSN + 1, subflow sequence number 1.
                sf.map((conn.inc.idsn + 1) & M64, 1, o.data_level_length)
            elif type(o) is AddAddr and o.echo:
                self.sender.echo(sf, o, now)
        out += self.receiver.established(sf, pkt, opts, flags, now)
        out += self.sender.pump(now)
        return out

    def _closed_fin(self, sf: Subflow, pkt: Packet, now: float) -> list[bytes]:
        """After the close: a client's FIN on ``sf``, first or again, acknowledged (RFC 9293
        §3.10.7.4); the subflow is closed once both FINs are acknowledged."""
        flags = int(pkt.flags)
        if flags & RST or sf.rcv_nxt is None or sf.state not in OPEN:
            return []
        sf.received += 1
        out: list[bytes] = []
        end = (pkt.seq + pkt.payload_len) & M32
        if flags & TcpFlags.FIN and sf.rcv_nxt in (end, (end + 1) & M32):
            sf.rcv_nxt = (end + 1) & M32
            sf.peer_fin = True
            out.append(sf.packet(0, [self.conn.ack_dss()]))
        if flags & ACK and sf.fin_sent and pkt.ack == sf.snd_nxt:
            sf.fin_acked = True
        if sf.fin_acked and sf.peer_fin:
            sf.drop_queue()
            sf.enter(SubflowState.CLOSED)
            self.conn.emit(SubflowClosed(self.conn.since(now), sf.index, CloseHow.FIN_EXCHANGE))
        return out

    # -- the handshakes

    def _syn(self, pkt: Packet, now: float) -> list[bytes]:
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
        index, address_id, backup = self._match(pkt.dst, join is not None)
        kind = SubflowKind.MP_JOIN if join is not None else SubflowKind.MP_CAPABLE
        tcp_opts = decode_tcp_options(pkt.options, 1, strict=False).options if pkt.options else ()
        sack = any(type(o) is SackPermitted for o in tcp_opts)
        shift = next((o.shift for o in tcp_opts if type(o) is WindowScale), None)
        planned = PlannedSubflow(
            index, kind, (pkt.dst, pkt.dport), (pkt.src, pkt.sport), address_id, backup, 0, sack, shift is not None
        )
        nonce = self.rng.getrandbits(32)
        isn = self.rng.getrandbits(32)
        sf = Subflow(planned, (pkt.dst, pkt.dport), (pkt.src, pkt.sport), isn, nonce, self.rto, self.min_rto)
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
            conn.t0 = now  # captured times are relative to the first SYN
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

    def _match(self, dst: Address, is_join: bool) -> tuple[int, int, bool]:
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

    def _third_ack(self, sf: Subflow, pkt: Packet, opts: tuple[MptcpItem, ...], now: float, out: list[bytes]) -> bool:
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

    # -- the end

    def report(self, now: float) -> Report:
        """What the replay did: ``data_delivered`` and ``data_planned`` are the server's octets (ours),
        ``server_data`` the client octets received; ``client_key`` the live client's."""
        conn = self.conn
        state = self.closing.state
        end = conn.ended_at if conn.ended_at is not None else now
        ok = conn.done and conn.failure is None and state is ClosureState.M_CLOSED
        reason = conn.failure or ("closed cleanly" if ok else f"unfinished: closure in {state.name}")
        return Report(
            ok,
            reason,
            conn.abort_cause,
            end - conn.t0 if conn.started else 0.0,  # from the client's SYN (or the start, if none came)
            conn.keys.server or 0,
            conn.keys.client,
            conn.out.delivered(),
            conn.plan.data_len,
            conn.inc.octets(),
            state,
            tuple(SubflowReport.of(sf) for sf in conn.subflows),
            tuple(conn.events),
            None,
            False,
            False,
            conn.keys.checksum,
            self.splan.checksum,
            side="server",
        )
