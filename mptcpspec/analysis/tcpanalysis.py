"""The subflow-level TCP analysis, as Wireshark 4.0 makes it (``tcp.analysis.*``).

Each TCP stream (subflow) is followed in both directions with the rules of Wireshark 4.0's
``tcp_analyze_sequence_number`` (preferences ``tcp.analyze_sequence_numbers``,
``tcp.calculate_timestamps``, ``tcp.track_bytes_in_flight`` on, ``tcp.default_window_scaling``
unknown, ``tcp.fastrt_supersedes_ooo`` on): retransmissions (plain, fast, spurious), out-of-order
segments, segments not captured and acknowledgments of them, duplicate ACKs, window updates, full and
zero windows, keep-alives, the frame a segment acknowledges and the round-trip time, the bytes in
flight; the scaled window, the next sequence number and the times within the stream.  One
:class:`TcpAnalysis` per TCP segment, with the TCP expert items ``tshark -z expert`` counts for it.

The rules are Wireshark's, written again; where they are not TCP's (RFC 9293), ``docs/tcp-analysis.md``
says so.  Sequence numbers are compared modulo 2**32 (RFC 9293 §3.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntFlag

from mptcpspec.capture.packets import Packet, TcpFlags
from mptcpspec.codec.runtime import fast_constructor
from mptcpspec.records import dataclass

__all__ = ["Flow", "Stream", "TcpAnalysis", "TcpAnalyzer", "TcpFlag", "TcpExpert"]

M32 = 0xFFFFFFFF
HALF = 0x80000000
_SYN, _ACK, _FIN, _RST, _PSH = (
    int(TcpFlags.SYN),
    int(TcpFlags.ACK),
    int(TcpFlags.FIN),
    int(TcpFlags.RST),
    int(TcpFlags.PSH),
)
_SFR = _SYN | _FIN | _RST
_HEADER = _SFR  # flags with expert items of their own
_NO_SACKS: tuple[tuple[int, int], ...] = ()
_NOP_NOP_TS = b"\x01\x01\x08\x0a"  #: how Linux starts its options: NOP, NOP, timestamps
_MPTCP = 30
MAX_UNACKED = 10000  #: Wireshark's TCP_MAX_UNACKED_SEGMENTS: segments kept per direction
FAST_RT_NS = 20_000_000  #: a fast retransmission comes within 20 ms of the duplicate ACK
OOO_NS = 3_000_000  #: out-of-order threshold without an initial RTT
MAX_SACK = 3  #: SACK blocks kept for the bytes in flight (Wireshark keeps the first three)

TcpExpert = tuple[str, str, str]  #: (severity, group, summary), as ``tshark -z expert`` prints them


class TcpFlag(IntFlag):
    """What the analysis found on a segment (Wireshark's ``TCP_A_*``)."""

    RETRANSMISSION = 0x0001
    LOST_PACKET = 0x0002
    ACK_LOST_PACKET = 0x0004
    KEEP_ALIVE = 0x0008
    DUPLICATE_ACK = 0x0010
    ZERO_WINDOW = 0x0020
    ZERO_WINDOW_PROBE = 0x0040
    ZERO_WINDOW_PROBE_ACK = 0x0080
    KEEP_ALIVE_ACK = 0x0100
    OUT_OF_ORDER = 0x0200
    FAST_RETRANSMISSION = 0x0400
    WINDOW_UPDATE = 0x0800
    WINDOW_FULL = 0x1000
    REUSED_PORTS = 0x2000
    SPURIOUS_RETRANSMISSION = 0x4000


_F = TcpFlag
_RETRANS, _LOST, _ACK_LOST, _KA = (
    int(_F.RETRANSMISSION),
    int(_F.LOST_PACKET),
    int(_F.ACK_LOST_PACKET),
    int(_F.KEEP_ALIVE),
)
_DUP, _ZW, _ZWP, _ZWPA = (
    int(_F.DUPLICATE_ACK),
    int(_F.ZERO_WINDOW),
    int(_F.ZERO_WINDOW_PROBE),
    int(_F.ZERO_WINDOW_PROBE_ACK),
)
_KAA, _OOO, _FAST, _WU = (
    int(_F.KEEP_ALIVE_ACK),
    int(_F.OUT_OF_ORDER),
    int(_F.FAST_RETRANSMISSION),
    int(_F.WINDOW_UPDATE),
)
_WF, _REUSED, _SPUR = int(_F.WINDOW_FULL), int(_F.REUSED_PORTS), int(_F.SPURIOUS_RETRANSMISSION)
_ANY_RETRANS = _RETRANS | _FAST | _SPUR

_SEQ = "Sequence"
_RETRANS_EXPERT = ("Note", _SEQ, "This frame is a (suspected) retransmission")
#: the expert items of the analysis flags, in the order Wireshark shows them
_FLAG_EXPERTS: tuple[tuple[int, tuple[TcpExpert, ...]], ...] = (
    (
        _REUSED,
        (("Note", _SEQ, "A new tcp session is started with the same ports as an earlier session in this trace"),),
    ),
    (_RETRANS, (_RETRANS_EXPERT,)),
    (_FAST, (("Note", _SEQ, "This frame is a (suspected) fast retransmission"), _RETRANS_EXPERT)),
    (_SPUR, (("Note", _SEQ, "This frame is a (suspected) spurious retransmission"), _RETRANS_EXPERT)),
    (_OOO, (("Warning", _SEQ, "This frame is a (suspected) out-of-order segment"),)),
    (_LOST, (("Warning", _SEQ, "Previous segment(s) not captured (common at capture start)"),)),
    (_ACK_LOST, (("Warning", _SEQ, "ACKed segment that wasn't captured (common at capture start)"),)),
    (_WU, (("Chat", _SEQ, "TCP window update"),)),
    (_WF, (("Warning", _SEQ, "TCP window specified by the receiver is now completely full"),)),
    (_KA, (("Note", _SEQ, "TCP keep-alive segment"),)),
    (_KAA, (("Note", _SEQ, "ACK to a TCP keep-alive segment"),)),
    (_ZWP, (("Note", _SEQ, "TCP Zero Window Probe"),)),
    (_ZW, (("Warning", _SEQ, "TCP Zero Window segment"),)),
    (_ZWPA, (("Note", _SEQ, "ACK to a TCP Zero Window Probe"),)),
)
_FIN_EXPERT = ("Chat", _SEQ, "Connection finish (FIN)")
_FIN_ACTIVE = ("Note", _SEQ, "This frame initiates the connection closing")
_FIN_PASSIVE = ("Note", _SEQ, "This frame undergoes the connection closing")
_RST_EXPERT = ("Warning", _SEQ, "Connection reset (RST)")
_DSACK = ("Warning", _SEQ, "D-SACK Sequence")
_TFO_SYN = ("Note", _SEQ, "TCP SYN with TFO Cookie")
_TFO_ACK = ("Note", _SEQ, "TCP SYN-ACK accepting TFO data")
_TFO_IGNORED = ("Note", _SEQ, "TCP SYN-ACK ignoring TFO data")
_ACK_NONZERO = ("Note", "Protocol", "The acknowledgment number field is nonzero while the ACK flag is not set")
_URG_NONZERO = ("Note", "Protocol", "The urgent pointer field is nonzero while the URG flag is not set")


@dataclass(frozen=True, slots=True)
class TcpAnalysis:
    """The subflow TCP analysis of one segment, as Wireshark 4.0 shows it (times in nanoseconds).

    A value that Wireshark does not show on the segment is None (0 for ``flags``)."""

    flags: TcpFlag  #: what was found (``tcp.analysis.flags`` and the items under it)
    window_size: int  #: the window, scaled (``tcp.window_size``)
    #: ``tcp.window_size_scalefactor``: 1 << shift; -1 unknown, -2 no scaling; None on a SYN
    scalefactor: int | None
    nxtseq: int  #: relative sequence number after the segment (``tcp.nxtseq``)
    time_relative_ns: int  #: since the stream's first frame (``tcp.time_relative``)
    time_delta_ns: int  #: since the stream's previous frame (``tcp.time_delta``)
    acks_frame: int | None = None  #: the frame whose segment this acknowledges (``tcp.analysis.acks_frame``)
    ack_rtt_ns: int | None = None  #: time since that frame (``tcp.analysis.ack_rtt``)
    initial_rtt_ns: int | None = None  #: SYN to the first ACK of the handshake (``tcp.analysis.initial_rtt``)
    bytes_in_flight: int | None = None  #: ``tcp.analysis.bytes_in_flight``
    push_bytes_sent: int | None = None  #: ``tcp.analysis.push_bytes_sent``
    dupack_num: int | None = None  #: ``tcp.analysis.duplicate_ack_num``
    dupack_frame: int | None = None  #: ``tcp.analysis.duplicate_ack_frame``
    rto_ns: int | None = None  #: a retransmission: time since the segment retransmitted (``tcp.analysis.rto``)
    rto_frame: int | None = None  #: ``tcp.analysis.rto_frame``
    experts: tuple[TcpExpert, ...] = ()  #: TCP's expert items, as ``tshark -z expert`` counts them

    @property
    def retransmission(self) -> bool:
        """Any retransmission Wireshark reports: plain, fast or spurious."""
        return bool(self.flags & _ANY_RETRANS)


_analysis = fast_constructor(TcpAnalysis)
_FLAG_VALUES: dict[int, TcpFlag] = {}  # the flags as TcpFlag, made once each


class Flow:
    """One direction of a TCP stream, as Wireshark's ``tcp_flow_t`` follows it."""

    __slots__ = (
        "base_seq",
        "base_set",
        "win_scale",
        "window",
        "first_ack",
        "nextseq",
        "nextseqframe",
        "nextseqtime",
        "maxseqtobeacked",
        "lastack",
        "lastacktime",
        "lastnondupack",
        "dupacknum",
        "segments",
        "valid_bif",
        "push_bytes",
        "push_last",
        "lastflags",
        "closing",
        "sacks",
        "mp_ops",
        "ordered",
    )

    def __init__(self) -> None:
        self.base_seq = 0
        self.base_set = False
        self.win_scale = -1  # -1 unknown, -2 no scaling, else the shift
        self.window = 0  # the last raw window
        self.first_ack = False
        self.nextseq = 0
        self.nextseqframe = 0
        self.nextseqtime = 0
        self.maxseqtobeacked = 0
        self.lastack = 0
        self.lastacktime = 0
        self.lastnondupack = 0
        self.dupacknum = 0
        self.segments: list[list[int]] = []  # unacknowledged: [seq, nextseq, frame, time], oldest first
        self.valid_bif = True
        self.push_bytes = 0
        self.push_last = False
        self.lastflags = 0
        self.closing = False
        self.sacks: Sequence[tuple[int, int]] = _NO_SACKS  # SACK blocks of this direction's latest segment
        self.mp_ops = 0
        #: the segments' starts and ends never decrease (in sequence space and relative to the base):
        #: those an ACK removes are the list's head
        self.ordered = True


class Stream:
    """A TCP stream's analysis state: its two flows and its times."""

    __slots__ = ("flows", "first", "prev", "mru_syn", "first_rtt", "tfo_data")

    def __init__(self, ts: int) -> None:
        self.flows = (Flow(), Flow())
        self.first = ts
        self.prev = ts
        self.mru_syn = 0
        self.first_rtt = 0
        self.tfo_data = False


def _scan(raw: bytes) -> tuple[int | None, list[tuple[int, int]] | None, int | None]:
    """(window scale shift, SACK blocks, TFO option length) of an options area; None when absent."""
    ws = tfo = None
    sacks = None
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            break
        ln = raw[i + 1]
        if ln < 2 or i + ln > n:
            break
        if kind == 3 and ln == 3:
            ws = raw[i + 2]
        elif kind == 5:
            sacks = [
                (int.from_bytes(raw[j : j + 4], "big"), int.from_bytes(raw[j + 4 : j + 8], "big"))
                for j in range(i + 2, i + ln - 7, 8)
            ]
        elif kind == 34:
            tfo = ln
        i += ln
    return ws, sacks, tfo


_OP_BITS: dict[type, int] = {}  # option class -> its bit of mp_operations


def _mp_operations(found: Sequence[object]) -> int:
    """The MPTCP option subtypes of a segment, as the bits of Wireshark's ``mp_operations``
    (MP_CAPABLE 0x01 ... MP_FASTCLOSE 0x80)."""
    bits = 0
    for o in found:
        b = _OP_BITS.get(type(o))
        if b is None:
            s = getattr(o, "SUBTYPE", 8)
            b = _OP_BITS[type(o)] = 1 << s if isinstance(s, int) and s < 8 else 0
        bits |= b
    return bits


def _header_experts(pkt: Packet, flags: int, ts: int, st: Stream, fwd: Flow, rev: Flow) -> list[TcpExpert]:
    """The expert items of the header's flags and fields (SYN, FIN, RST, TCP Fast Open's ACK, the
    ACK and urgent fields where their flags are off), with what they change in the stream's state."""
    experts: list[TcpExpert] = []
    if flags & _SYN:
        if flags & _ACK:
            experts.append(("Chat", _SEQ, f"Connection establish acknowledge (SYN+ACK): server port {pkt.sport}"))
        else:
            experts.append(("Chat", _SEQ, f"Connection establish request (SYN): server port {pkt.dport}"))
            st.mru_syn = ts
        fwd.first_ack = True
    if flags & _FIN:
        experts.append(_FIN_EXPERT)
        if not rev.closing:
            fwd.closing = True
            experts.append(_FIN_ACTIVE)
        else:
            experts.append(_FIN_PASSIVE)
    if flags & _RST:
        experts.append(_RST_EXPERT)
    if flags & _ACK:
        if flags & _SYN:
            if (pkt.ack - rev.base_seq) & M32 > 1:
                experts.append(_TFO_ACK)
            elif st.tfo_data:
                experts.append(_TFO_IGNORED)
    elif pkt.ack:
        experts.append(_ACK_NONZERO)
    if pkt.urgent and not flags & int(TcpFlags.URG):
        experts.append(_URG_NONZERO)
    return experts


def _options(
    raw: bytes, flags: int, ack: int, seglen: int, st: Stream, fwd: Flow, rev: Flow, experts: list[TcpExpert]
) -> None:
    """The options the analysis reads: window scale, SACK (its blocks, D-SACK), TCP Fast Open."""
    ws_opt, sacks, tfo = _scan(raw)
    if ws_opt is not None:
        fwd.win_scale = min(ws_opt, 14)
    if sacks:
        base = rev.base_seq
        blocks = [((a - base) & M32, (b - base) & M32) for a, b in sacks]
        fwd.sacks = blocks[:MAX_SACK]
        rel_ack = (ack - base) & M32 if flags & _ACK else ack
        right0 = blocks[0][1]
        # RFC 2883 §4: the first block lies below the cumulative ACK, or inside the second
        if (
            (right0 - rel_ack) & M32 == 0
            or (right0 - rel_ack) & M32 >= HALF
            or (len(blocks) > 1 and (blocks[1][0] - right0) & M32 >= HALF and (blocks[1][1] - right0) & M32 < HALF)
        ):
            experts.append(_DSACK)
    if tfo is not None and flags & _SYN and not flags & _ACK and tfo > 2:
        experts.append(_TFO_SYN)
        if seglen:
            st.tfo_data = True


class TcpAnalyzer:
    """Feed TCP segments in capture order with their stream and direction; get a :class:`TcpAnalysis`."""

    __slots__ = ("streams", "mp_ops", "last_found", "last_bits", "enabled", "ends", "on_feed")

    def __init__(self, enabled: bool = True) -> None:
        """``enabled`` False: :meth:`feed` returns None at once (a caller that needs none of it)."""
        self.enabled = enabled
        self.streams: dict[int, Stream] = {}
        #: MPTCP connection -> the option subtypes seen on it so far (Wireshark's ``mp_operations``):
        #: a duplicate ACK is not one when a new subtype came since the sender's last segment (RFC 8684 §4)
        self.mp_ops: dict[object, int] = {}
        self.last_found: Sequence[object] = ()
        self.last_bits = 0
        #: (source, source port, destination, destination port) -> the flow of the latest stream on
        #: those ends that sends that way: a SYN that starts a new stream on them reuses their ports
        self.ends: dict[tuple[object, int, object, int], Flow] = {}
        #: called with a stream's number before :meth:`feed` reads that stream's state: a compiled
        #: path that keeps the state of some streams in its own structures writes it back here
        self.on_feed: Callable[[int], None] | None = None

    def feed(
        self,
        number: int,
        ts: int,
        pkt: Packet,
        stream: int,
        d: int,
        conn: object | None = None,
        found: Sequence[object] = (),
        counts: list[int] | None = None,
    ) -> TcpAnalysis | None:
        """Frame ``number`` at ``ts`` (ns): ``pkt`` of TCP stream ``stream``, sent in direction ``d``
        (0: by the stream's initiator); ``conn`` its MPTCP connection (any object), ``found`` its MPTCP
        options; ``counts[d]`` counts the retransmissions (any kind).  None when not :attr:`enabled`."""
        if not self.enabled:
            return None
        if self.on_feed is not None:
            self.on_feed(stream)
        st = self.streams.get(stream)
        flags = int(pkt.flags)
        seq, ack, win, seglen = pkt.seq, pkt.ack, pkt.window, pkt.payload_len
        ta = 0  # analysis flags
        has_ta = False
        if st is None:
            st = self.streams[stream] = Stream(ts)
            fwd, rev = (st.flows[1], st.flows[0]) if d else st.flows
            # a SYN on the ends of an earlier stream with another sequence number: tshark's new
            # conversation, flagged as reusing the ports (dissect_tcp)
            ends = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
            earlier = self.ends.get(ends)
            if flags & (_SYN | _ACK) == _SYN and earlier is not None and earlier.base_set and seq != earlier.base_seq:
                ta |= _REUSED
            self.ends[ends] = fwd
            self.ends[(pkt.dst, pkt.dport, pkt.src, pkt.sport)] = rev
        else:
            fwd, rev = (st.flows[1], st.flows[0]) if d else st.flows
        # port reuse (dissect_tcp, before the analysis)
        if flags & (_SYN | _ACK) == _SYN and fwd.base_set and seq == fwd.base_seq:
            fwd.nextseq = fwd.maxseqtobeacked  # a SYN again: tshark 4.0 flags no port reuse for it
        elif flags & (_SYN | _ACK) == _SYN | _ACK and fwd.base_set and seq != fwd.base_seq:
            fwd.base_seq = seq
            fwd.ordered = False
            ta |= _REUSED
        fwd.sacks = _NO_SACKS
        delta = ts - st.prev
        st.prev = ts
        mp = -1 if conn is None else self.mp_ops.get(conn, 0)
        r = _analyze(number, ts, seq, ack, seglen, flags, win, st, fwd, rev, mp, ta)
        ta, has_ta, acks_frame, ack_rtt, bif, push, dupnum, dupframe, rto, rto_frame = r
        # the window, scaled (SYNs never are)
        if flags & _SYN:
            window, scale = win, None
        else:
            ws = fwd.win_scale
            window = win << ws if ws >= 0 else win
            scale = 1 << ws if ws >= 0 else ws
        experts: list[TcpExpert] = (
            _header_experts(pkt, flags, ts, st, fwd, rev) if flags & _HEADER or not flags & _ACK or pkt.urgent else []
        )
        if flags & (_SYN | _ACK) == _ACK:
            if st.mru_syn and not st.first_rtt:
                st.first_rtt = ts - st.mru_syn
            fwd.first_ack = False
        raw = pkt.options
        if raw and not (
            raw.startswith(_NOP_NOP_TS)
            and (
                (n := len(raw)) == 12
                or n > 13
                and raw[12] == _MPTCP
                and ((end := 12 + raw[13]) == n or not raw[end:].strip(b"\x01"))
            )
        ):
            _options(raw, flags, ack, seglen, st, fwd, rev, experts)
        if flags & _SYN and not pkt.options_cut:
            # verify_tcp_window_scaling (not reached when the snapshot length cut the options: the
            # scale stays unknown, as Wireshark's dissection stops at the cut)
            if fwd.win_scale == -1:
                fwd.win_scale = rev.win_scale = -2
            elif flags & _ACK and rev.win_scale == -2:
                fwd.win_scale = -2
        if found and conn is not None and mp != 0xFF:
            if found is not self.last_found:  # a DSS repeated octet for octet is the same object
                self.last_found, self.last_bits = found, _mp_operations(found)
            ops = mp | self.last_bits
            if ops != mp:
                self.mp_ops[conn] = ops
        first_rtt = st.first_rtt
        if ta:
            if ta & _ANY_RETRANS and counts is not None:
                counts[d] += 1
            for bit, items in _FLAG_EXPERTS:
                if ta & bit:
                    experts.extend(items)
        if dupnum:
            experts.append(("Note", _SEQ, f"Duplicate ACK (#{dupnum})"))
        rel = (seq - fwd.base_seq) & M32
        nxt = (rel + seglen + (1 if flags & (_SYN | _FIN) else 0)) & M32
        return _analysis(
            _FLAG_VALUES[ta] if ta in _FLAG_VALUES else _FLAG_VALUES.setdefault(ta, TcpFlag(ta)),
            window,
            scale,
            nxt,
            ts - st.first,
            delta,
            acks_frame,
            ack_rtt,
            first_rtt if has_ta and first_rtt else None,
            bif,
            push,
            dupnum,
            dupframe,
            rto,
            rto_frame,
            tuple(experts),
        )


def _analyze(
    number: int,
    ts: int,
    seq: int,
    ack: int,
    seglen: int,
    flags: int,
    window: int,
    st: Stream,
    fwd: Flow,
    rev: Flow,
    mp: int,
    ta: int,
) -> tuple[int, bool, int | None, int | None, int | None, int | None, int | None, int | None, int | None, int | None]:
    """Wireshark 4.0's ``tcp_analyze_sequence_number`` on one segment (raw numbers)."""
    has_ta = bool(ta)
    acks_frame = ack_rtt = bif = push = dupnum = dupframe = rto = rto_frame = None
    if not fwd.base_set:
        fwd.base_seq = seq if flags & _SYN else (seq - 1) & M32
        fwd.base_set = True
    if not rev.base_set and flags & _ACK:
        rev.base_seq = (ack - 1) & M32
        rev.base_set = True
    if flags & _ACK:
        rev.valid_bif = True
    nextseq = fwd.nextseq
    lastack = fwd.lastack
    fin_syn_rst = flags & _SFR
    done = False
    if seglen == 1 and seq == nextseq and rev.window == 0:
        ta |= _ZWP
        done = True
    if not done:
        if window == 0 and not fin_syn_rst:
            ta |= _ZW
        if nextseq and (nextseq - seq) & M32 >= HALF and seq != nextseq and not flags & _RST:
            ta |= _LOST
            fwd.valid_bif = False
        if seglen <= 1 and seq == (nextseq - 1) & M32 and not fin_syn_rst:
            ta |= _KA
        if not seglen and window and window != fwd.window and seq == nextseq and ack == lastack and not fin_syn_rst:
            ta |= _WU
        if seglen and rev.win_scale != -1 and not fin_syn_rst:
            shift = 0 if rev.first_ack or rev.win_scale == -2 else rev.win_scale
            if (seq + seglen) & M32 == (rev.lastack + (rev.window << shift)) & M32:
                ta |= _WF
        plain = not seglen and seq == nextseq and ack == lastack and not fin_syn_rst
        if plain and window and window == fwd.window and rev.lastflags & _KA:
            ta |= _KAA
            done = True
        elif plain and window == 0 and fwd.window == 0 and rev.lastflags & _ZWP:
            ta |= _ZWPA
            done = True
        elif plain and window and window == fwd.window:
            if mp < 0 or mp == fwd.mp_ops:
                fwd.dupacknum = 1 if fwd.dupacknum == -1 else fwd.dupacknum + 1
                ta |= _DUP
                dupnum, dupframe = fwd.dupacknum, fwd.lastnondupack
    # finished_fwd
    if ack != lastack:
        fwd.lastnondupack = number
        fwd.dupacknum = 0
    m = rev.maxseqtobeacked
    if m and (m - ack) & M32 >= HALF and flags & _ACK:
        # acknowledges beyond what the capture saw of the other direction: once per hole (while
        # the other direction sends duplicate ACKs, they say the same)
        has_ta = True
        if m < rev.nextseq:
            rev.maxseqtobeacked = rev.nextseq
            ta |= _ACK_LOST
        else:
            if rev.dupacknum == 0:
                ta |= _ACK_LOST
            rev.dupacknum = -1
    if seglen or flags & (_SYN | _FIN):
        not_advanced = bool(nextseq) and (seq - nextseq) & M32 >= HALF
        if not ta & _KA:
            if seglen > 1 and (nextseq - 1) & M32 == seq:
                not_advanced = False
            rl = rev.lastack
            if seglen and rl and ((seq + seglen - rl) & M32 >= HALF or (seq + seglen) & M32 == rl):
                ta |= _SPUR
            else:
                t = ts - rev.lastacktime
                if not_advanced and rev.dupacknum >= 2 and rl == seq and 0 <= t < FAST_RT_NS:
                    ta |= _FAST
                else:
                    t = ts - fwd.nextseqtime
                    thr = st.first_rtt or OOO_NS
                    syn_fin = 1 if flags & (_SYN | _FIN) else 0
                    if not_advanced and 0 <= t < thr and nextseq != (seq + seglen + syn_fin) & M32:
                        ta |= _OOO
                    elif not_advanced:
                        ta |= _RETRANS
                        rto = ts - fwd.nextseqtime
                        rto_frame = fwd.nextseqframe
                        if fwd.segments:
                            s = fwd.segments[0]
                            rto = ts - s[3]
                            rto_frame = s[2]
    # finished_checking_retransmission_type
    nxt = (seq + seglen) & M32
    segs = fwd.segments
    if (seglen or flags & (_SYN | _FIN)) and len(segs) < MAX_UNACKED:
        if flags & (_SYN | _FIN):
            nxt = (nxt + 1) & M32
        if segs and fwd.ordered:
            last = segs[-1]
            b = fwd.base_seq
            fwd.ordered = (
                (seq - last[0]) & M32 < HALF
                and (nxt - last[1]) & M32 < HALF
                and (seq - b) & M32 >= (last[0] - b) & M32
                and (nxt - b) & M32 >= (last[1] - b) & M32
            )
        segs.append([seq, nxt, number, ts])
    if not (ta & _ZWP):
        cur = fwd.nextseq
        if ((cur - nxt) & M32 >= HALF and cur != nxt) or not cur:
            fwd.nextseq = nxt
            fwd.nextseqframe = number
            fwd.nextseqtime = ts
        if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
            fwd.maxseqtobeacked = fwd.nextseq
    fwd.window = window
    fwd.lastack = ack
    fwd.lastacktime = ts
    if mp >= 0:
        fwd.mp_ops = mp
    if ta:
        has_ta = True
    fwd.lastflags = ta
    # the segments this acknowledges
    rsegs = rev.segments
    if rsegs:
        if rev.ordered:
            acked = _acked_ordered(rsegs, ack)
        else:
            acked = _acked(rev, ack)
        if acked is not None:
            has_ta = True
            acks_frame = acked[2]
            ack_rtt = ts - acked[3]
        if not rev.segments:
            rev.ordered = True
    # bytes in flight
    if seglen and segs and fwd.valid_bif:
        base = fwd.base_seq
        if fwd.ordered:  # the lowest start is the first's, the highest end the last's
            first_seq = (segs[0][0] - base) & M32
            last_seq = (segs[-1][1] - base) & M32
        else:
            first_seq = (segs[-1][0] - base) & M32
            last_seq = (segs[-1][1] - base) & M32
            for s in segs:
                a = (s[1] - base) & M32
                if a > last_seq:
                    last_seq = a
                a = (s[0] - base) & M32
                if a < first_seq:
                    first_seq = a
        in_flight = (last_seq - first_seq) & M32
        if rev.sacks:
            delivered = 0
            for a, b in rev.sacks:
                delivered += (b - a) & M32
            in_flight = (in_flight - delivered) & M32
        has_ta = True
        if 0 < in_flight < 2_000_000_000:
            bif = in_flight - 1 if flags & (_SYN | _FIN) else in_flight
        if flags & _PSH:
            fwd.push_bytes = seglen if fwd.push_last else fwd.push_bytes + seglen
            fwd.push_last = True
        elif fwd.push_last:
            fwd.push_bytes = seglen
            fwd.push_last = False
        else:
            fwd.push_bytes += seglen
        push = fwd.push_bytes
    if not bif:
        bif = push = None
    if ack_rtt == 0:
        ack_rtt = None
    if rto == 0:
        rto = rto_frame = None
    return ta, has_ta, acks_frame, ack_rtt, bif, push, dupnum, dupframe, rto, rto_frame


def _acked(flow: Flow, ack: int) -> list[int] | None:
    """Wireshark's removal of the segments ``ack`` acknowledges from ``flow``'s list (newest first,
    trimming those it acknowledges in part); the oldest segment that ends exactly at ``ack``."""
    acked = None
    keep = []
    segs = flow.segments
    for s in reversed(segs):
        if ack == s[1]:
            acked = s
        elif (s[0] - ack) & M32 >= HALF and (s[1] - ack) & M32 < HALF:  # ack inside the segment
            s[0] = ack
            keep.append(s)
        elif (ack - s[1]) & M32 >= HALF:  # ends after ack
            keep.append(s)
    if len(keep) != len(segs):
        keep.reverse()
        flow.segments = keep
    return acked


def _acked_ordered(segs: list[list[int]], ack: int) -> list[int] | None:
    """:func:`_acked` for a list whose starts and ends never decrease (the common case): the
    segments acknowledged are its head, those acknowledged in part come right after."""
    acked = None
    k, n = 0, len(segs)
    while k < n:
        s = segs[k]
        d = (ack - s[1]) & M32
        if d >= HALF:  # ends after ack: kept, and so are those after it
            break
        if d == 0 and acked is None:
            acked = s
        k += 1
    if k:
        del segs[:k]
    for s in segs:
        if (s[0] - ack) & M32 < HALF:
            break
        s[0] = ack
    return acked
