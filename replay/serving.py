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
from mptcpspec.codec.options import (
    AddAddr,
    MpCapable,
    MpPrio,
    MptcpItem,
    RemoveAddr,
    decode_mptcp_options,
)
from mptcpspec.errors import MptcpspecError
from mptcpspec.replay.accepting import SYN_RECEIVED, Acceptor
from mptcpspec.replay.closing import Closing
from mptcpspec.replay.connection import Connection, Keys
from mptcpspec.replay.core import LINKTYPE_RAW, TIME_WAIT
from mptcpspec.replay.datalevel import M64, OutgoingData
from mptcpspec.replay.engine import Engine
from mptcpspec.replay.events import (
    AbortCause,
    AddAddrEchoReceived,
    AddAddrSent,
    CloseHow,
    PrioritySent,
    RemoveAddrSent,
    SubflowClosed,
)
from mptcpspec.replay.plan import ReplayPlan
from mptcpspec.replay.receiving import Receiver
from mptcpspec.replay.recovery import MIN_RTO
from mptcpspec.replay.report import Report, SubflowReport
from mptcpspec.replay.sending import CLOSABLE, OPEN_WAIT, Sender
from mptcpspec.replay.serverplan import ServerPlan
from mptcpspec.replay.setup import Address, ReplayError, ReplayOptions, SetupProblem, Timing, show_endpoint
from mptcpspec.replay.subflow import M32, OPEN, Subflow, SubflowState

__all__ = ["ServerReplay", "require_local"]

SYN, ACK, RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.RST)
ESTABLISHED = SubflowState.ESTABLISHED
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

    def timers(self) -> list[float]:
        """The data's timers, when an ADD_ADDR goes again, and when a signal stops waiting."""
        rto = self.closing.rto()
        times = super().timers()
        times += [a.sent_at + rto * (2 << a.tries) for a in self.adds if not a.stopped]
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


class ServerReplay(Engine):
    """Play ``plan``'s server side: listen on ``listen`` (the live address of the captured server's
    first address) and ``listen_port`` (default: the captured port); ``servers`` maps the captured
    server's other addresses (those its ADD_ADDRs announce) to live ones.  ``timeout``: seconds to
    wait for the client's SYN, and of silence from it after.  The other arguments are those of
    :class:`~replay.core.Replay`.  The replay sends from its :meth:`local_addresses`, which must
    be this host's (:func:`require_local`)."""

    sender: ServerSender

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
        super().__init__(time_wait)
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
        self.matched = self.sender.matched  #: captured subflows a live one stands for
        self.acceptor = Acceptor(
            conn, plan, live, self.listen, self.matched, rng or random.SystemRandom(), rto, min_rto
        )
        self.acceptor.clock = self.clock
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
        conn.t0 = conn.sched0 = conn.last_heard = self.started_at = now
        conn.started = True
        return []

    def on_silence(self, now: float) -> None:
        conn = self.conn
        if not conn.subflows:
            where = show_endpoint((self.listen, self.port))
            conn.abort(now, AbortCause.NO_CLIENT, f"no client connected to {where} within {conn.options.timeout:g} s")
        else:
            conn.abort(now, AbortCause.TARGET_SILENT, f"the client sent nothing for {conn.options.timeout:g} s")

    def due_more(self, now: float, out: list[bytes]) -> None:
        self.sender.add_addr_again(now, out)

    def on_gave_up(self, sf: Subflow, now: float) -> None:
        conn = self.conn
        if sf is conn.subflows[0] and conn.keys.server is None:
            conn.abort(now, AbortCause.FIRST_SUBFLOW_FAILED, "the client never acknowledged our SYN/ACK")

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
                return self.acceptor.syn(pkt, now)
            return []
        out = self._receive(sf, pkt, now)
        self.ending()
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
            if not self.acceptor.third_ack(sf, pkt, opts, now, out):
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

    # -- the end

    def report(self, now: float) -> Report:
        """What the replay did: ``data_delivered`` and ``data_planned`` are the server's octets (ours),
        ``server_data`` the client octets received; ``client_key`` the live client's."""
        conn = self.conn
        ok, reason, seconds = self.outcome(now)
        return Report(
            ok,
            reason,
            conn.abort_cause,
            seconds,  # from the client's SYN (or the start, if none came)
            conn.keys.server or 0,
            conn.keys.client,
            conn.out.delivered(),
            conn.plan.data_len,
            conn.inc.octets(),
            self.closing.state,
            tuple(SubflowReport.of(sf) for sf in conn.subflows),
            tuple(conn.events),
            None,
            False,
            False,
            conn.keys.checksum,
            self.splan.checksum,
            side="server",
        )
