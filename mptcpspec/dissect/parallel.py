"""``dissect -j N``: a capture of many connections dissected by N worker processes, its output
octet for octet what one process writes.

A first pass (:func:`plan_shares`) reads the capture once, decodes each frame's TCP header and only
the MPTCP options that link subflows to connections (MP_CAPABLE keys, the tokens of MP_JOIN SYNs),
and cuts the frames into shares that share no state of the analysis: every frame of a TCP stream,
of every stream on the same addresses and ports, and of every subflow linked to the same MPTCP
connection by a token, is in one share; frames without TCP go in blocks of 4096.  The shares are
balanced by their frames.  The pass also numbers the TCP streams (``tcp.stream``) and the MPTCP
connections (``mptcp.stream``) as the analysis will, in the frame where each is numbered.

Each worker (:class:`ShareDissection`) reads the file itself and runs the one-process path (the
:class:`~mptcpspec.dissect.pipeline.Dissection` and ``dissect_capture`` with the
:class:`~mptcpspec.dissect.writers.FieldsWriter`) on its share; a frame
of another share is counted and timed only (``frame.number`` and ``frame.time_delta`` stay the
capture's), and where the first pass numbered a stream of another share the worker's numbering
moves on by one, so its own streams take the capture's numbers.  The worker checks that each stream
of its share is numbered in the frame and with the number the first pass said; where one is not, or
anything else goes wrong in a worker, the parallel run is dropped and one process reads the capture:
the output is the same either way.  The rows come back in files, one per worker, and are merged in
frame order.

Cases the shares cannot give the same output for (a display filter that needs the last frame shown
of the whole capture, rows that hold newlines, a subflow met without its handshake, whose data the
analysis looks for in every connection, MPTCP options the snapshot length cut before their
connection was numbered) are left to one process; so are captures of one connection (nothing to
share), small files, and runs the compiled hot path takes: it cannot skip the frames of other
shares, which go through the Python path in a worker and cost as much as its own, so one process
is faster.
"""

from __future__ import annotations

import heapq
import os
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from itertools import compress
from typing import IO, TYPE_CHECKING, TextIO, cast

from mptcpspec.analysis import PacketInfo
from mptcpspec.analysis.model import Subflow
from mptcpspec.capture.packets import Packet, TcpFlags, decode_frame
from mptcpspec.capture.pcap import CaptureError, CaptureReader, Frame, Readable
from mptcpspec.capture.stream import open_input
from mptcpspec.codec.crypto import key_token
from mptcpspec.codec.options import MalformedOption, MpCapable, MpJoinSyn, decode_mptcp_options
from mptcpspec.dissect.hotpath import fields_engine
from mptcpspec.dissect.outcome import ReadOutcome
from mptcpspec.dissect.pipeline import Dissection, Source
from mptcpspec.dissect.reading import dissect_capture
from mptcpspec.dissect.writers import FieldsWriter, PacketWriter
from mptcpspec.errors import DecodeError, MptcpspecError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = [
    "MIN_SIZE",
    "MOST",
    "Plan",
    "ShareDissection",
    "ShareMismatch",
    "cpu_count",
    "dissect_parallel",
    "plan_shares",
]

#: files smaller than this (octets, as stored) are read by one process: starting workers costs more
MIN_SIZE = 1 << 20
#: a capture whose largest share would hold more than this part of the frames is read by one
#: process: the first pass and that share would take longer than one process
MOST = 0.7
_SYN, _ACK, _FIN, _RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.FIN), int(TcpFlags.RST)
_M32 = 0xFFFFFFFF
_KIND_MPTCP = 30
_BLOCK = 12  # frames without TCP: a share for each 4096 frames of the capture
_CHUNK = 1 << 16  # frames merged at a time
_NOWHERE = 255  # a frame no worker wrote a row for (the display filter dropped it)
_ZERO = (IPv4Address(0), 0)
#: From an EtherType on: the EtherType, an IPv4 header of 20 octets and the TCP header's first 14
#: (version and IHL, total length, fragment, protocol, addresses, ports, sequence and
#: acknowledgment numbers, data offset and flags), directly after it (Ethernet, Linux cooked v1) or
#: 18 octets on (cooked v2).
_ETHER = struct.Struct("!HBxH2xHxB2xIIHHIIH")
_SLL2 = struct.Struct("!H18xBxH2xHxB2xIIHHIIH")
#: link type -> (the unpacking, where it starts, the IP header's offset) of the first pass's common
#: segment
_COMMON = {1: (_ETHER.unpack_from, 12, 14), 113: (_ETHER.unpack_from, 14, 16), 276: (_SLL2.unpack_from, 0, 20)}


def cpu_count() -> int:
    """The processors this process may run on (``-j 0``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Plan:
    """How a capture is cut into shares, and its streams numbered, as the first pass found."""

    frames: int  #: frames read (up to any damage that ended the read)
    shares: int  #: workers
    owner: bytes  #: ``owner[n - 1]``: the share of frame ``n``
    tcp_starts: dict[int, int]  #: frame -> the ``tcp.stream`` that starts there
    numbered: dict[int, int]  #: frame -> the ``mptcp.stream`` that is numbered there
    loads: tuple[int, ...]  #: frames of each share
    #: why the capture is left to one process (then ``shares`` is 1), or None
    why: str | None = None


class ShareMismatch(MptcpspecError):
    """A worker's analysis did not number a stream where the first pass said (or its rows could not
    be told apart): the parallel run is dropped."""


# --------------------------------------------------------------------------- the first pass


#: (source, source port, destination, destination port, IP version), the addresses as integers
_FlowKey = tuple[int, int, int, int, int]
_UNSTEADY, _PLAIN, _NUMBERED = 0, 1, 2  # _Stream.steady


class _Conn:
    """An MPTCP connection as the first pass sees it."""

    __slots__ = ("number", "version", "keys", "tokens")

    def __init__(self, version: int) -> None:
        self.number: int | None = None
        self.version = version
        self.keys: list[int | None] = [None, None]  #: client's, server's
        self.tokens: list[int | None] = [None, None]


class _Stream:
    """A TCP stream as the first pass sees it: what decides whether a SYN on its addresses and ports
    starts a new stream, and the connection it is a subflow of."""

    __slots__ = (
        "node",
        "isn",
        "syn_seen",
        "data",
        "fin",
        "acked",
        "closed",
        "reset",
        "conn",
        "client",
        "join",
        "steady",
    )

    def __init__(self, node: int) -> None:
        self.node = node
        self.isn: list[int | None] = [None, None]
        self.syn_seen = False
        self.data = False
        self.fin: list[int | None] = [None, None]
        self.acked = [False, False]
        self.closed = self.reset = False
        self.conn: _Conn | None = None
        self.client = True  #: its initiator is the connection's client
        self.join = False  #: an MP_JOIN subflow
        #: what its next ACK without SYN, FIN or RST changes here: only ``data`` (_PLAIN: unless it
        #: carries an MPTCP option; _NUMBERED: a connection numbered, both keys known), or more
        self.steady = _UNSTEADY


class _Planner:
    """The first pass: streams, connections, the shares' bounds (union-find over nodes: one per
    addresses-and-ports pair, one per token, one per block of frames without TCP)."""

    def __init__(self) -> None:
        self.flows: dict[_FlowKey, tuple[_Stream, int]] = {}
        self.parent: list[int] = []
        self.frame_node = array("i")
        self.blocks: dict[int, int] = {}
        self.token_nodes: dict[int, int] = {}
        self.tokens: dict[int, _Conn] = {}  # token -> the connection it names, as the analysis links them
        self.tcp_starts: dict[int, int] = {}
        self.numbered: dict[int, int] = {}
        self.serial: str | None = None  #: why the capture is left to one process

    def node(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = a = parent[parent[a]]
        return a

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def other(self, number: int) -> int:
        """The node of frame ``number``, which has no TCP."""
        block = number >> _BLOCK
        node = self.blocks.get(block)
        if node is None:
            node = self.blocks[block] = self.node()
        return node

    def packet(self, number: int, pkt: Packet) -> int:
        """The node of frame ``number``, decoded into TCP segment ``pkt``."""
        key = (pkt.src._ip, pkt.sport, pkt.dst._ip, pkt.dport, pkt.version)  # type: ignore[union-attr]
        return self.segment(
            number, key, int(pkt.flags), pkt.seq, pkt.ack, pkt.payload_len, pkt.options, pkt.options_cut
        )

    def segment(self, number: int, key: _FlowKey, flags: int, seq: int, ack: int, n: int, raw: bytes, cut: bool) -> int:
        """The node of frame ``number``, a TCP segment of flow ``key`` (with ``flags``, sequence and
        acknowledgment numbers, ``n`` octets of payload, its options area ``raw``, ``cut`` by the
        snapshot length): its stream followed as :class:`~mptcpspec.analysis.connections.SubflowTable`
        and the analyzer follow it."""
        hit = self.flows.get(key)
        node = -1
        if hit is not None and flags & _SYN and not flags & _ACK and hit[1] == 0:
            st = hit[0]
            if st.isn[0] is not None and st.isn[0] != seq and (st.closed or st.reset or st.data):
                node, hit = st.node, None  # the ports used again: a new stream, the same share
        if hit is None:
            st = _Stream(self.node() if node < 0 else node)
            d = 1 if flags & _SYN and flags & _ACK else 0
            self.tcp_starts[number] = len(self.tcp_starts)
            self.flows[key] = (st, d)
            self.flows[(key[2], key[3], key[0], key[1], key[4])] = (st, 1 - d)
        else:
            st, d = hit
        isn = st.isn
        if flags & _SYN:
            if isn[d] is None or not st.syn_seen or d == 1:
                isn[d] = seq
            if d == 0:
                st.syn_seen = True
        elif isn[d] is None:
            isn[d] = (seq - 1) & _M32
        if flags & _ACK:
            if isn[1 - d] is None:
                isn[1 - d] = (ack - 1) & _M32
            fin = st.fin[1 - d]
            if fin is not None and not st.acked[1 - d] and ack == (fin + 1) & _M32:
                st.acked[1 - d] = True
        if n:
            st.data = True
        if flags & _FIN and st.fin[d] is None:
            st.fin[d] = (seq + n) & _M32
        conn = st.conn
        if cut:
            if (flags & _SYN or conn is None or conn.number is None) and _KIND_MPTCP in raw:
                self.serial = (
                    f"frame {number}: the snapshot length cut MPTCP options before their connection was numbered"
                )
        elif raw and (conn is None or conn.number is None or flags & _SYN or None in conn.keys) and _KIND_MPTCP in raw:
            self.options(number, st, d, flags, raw)
        conn = st.conn
        if conn is not None:
            if flags & _RST:
                st.reset = st.closed = True  # a RST out of the handshake's order does not: the workers tell
            elif st.acked[0] and st.acked[1]:
                st.closed = True
        elif flags & _RST and (raw or cut):
            st.reset = True
        if (
            None in isn
            or st.fin[0] is not None
            and not st.acked[0]
            or st.fin[1] is not None
            and not st.acked[1]
            or conn is not None
            and (conn.number is None or None in conn.keys)
        ):
            st.steady = _UNSTEADY
        else:
            st.steady = _PLAIN if conn is None else _NUMBERED
        return st.node

    def options(self, number: int, st: _Stream, d: int, flags: int, raw: bytes) -> None:
        """The MPTCP options of a segment: connections made, keys and tokens, joins linked, the
        connection numbered (as Handshakes, Links and Analyzer.feed_tcp do)."""
        conn = st.conn
        found = decode_mptcp_options(raw, conn.version if conn is not None else None)
        if not found:
            return
        pure_syn = flags & _SYN and not flags & _ACK
        mptcp = [o for o in found if type(o) is not MalformedOption]
        for o in mptcp:
            if type(o) is MpCapable:
                if conn is None:
                    if pure_syn or flags & _SYN or o.receiver_key is not None:
                        conn = st.conn = _Conn(o.version)
                        st.client = d == 0 if pure_syn or not flags & _SYN else d == 1
                    else:
                        continue
                if st.join:
                    continue
                if flags & _SYN and not pure_syn:
                    conn.version = o.version  # the listener's answer decides
                side = d if st.client else 1 - d
                if o.sender_key is not None:
                    self.key(conn, st, side, o.sender_key)
                if not pure_syn and not flags & _SYN and o.receiver_key is not None:
                    self.key(conn, st, 1 - side, o.receiver_key)
            elif type(o) is MpJoinSyn and pure_syn:
                node = self.token_nodes.get(o.token)
                if node is None:
                    node = self.token_nodes[o.token] = self.node()
                self.union(st.node, node)
                target = self.tokens.get(o.token)
                if st.conn is None:
                    st.join = True
                    if target is None:
                        self.serial = f"frame {number}: an MP_JOIN names a token of no connection seen before"
                        return
                    conn = st.conn = target
                    st.client = target.tokens[1] == o.token
        if conn is None:
            if mptcp and not (pure_syn and type(mptcp[0]) is MpCapable):
                self.serial = f"frame {number}: MPTCP options on a subflow whose handshake was not seen"
            return
        if conn.number is None and not (pure_syn and conn.keys[d if st.client else 1 - d] is None):
            conn.number = len(self.numbered)
            self.numbered[number] = conn.number

    def key(self, conn: _Conn, st: _Stream, side: int, key: int) -> None:
        """``side`` of ``conn`` has ``key``: its token links the subflows that name it (as
        Links.register_key; a token it makes otherwise names no connection here, and a join naming
        it leaves the capture to one process)."""
        if conn.keys[side] == key:
            return
        conn.keys[side] = key
        if conn.version not in (0, 1):
            return
        token = key_token(key, conn.version)
        node = self.token_nodes.get(token)
        if node is None:
            node = self.token_nodes[token] = self.node()
        self.union(st.node, node)
        conn.tokens[side] = token
        self.tokens[token] = conn

    def plan(self, frames: int, jobs: int) -> Plan:
        """The shares (one, with why, when the capture cannot be shared)."""
        if self.serial is not None:
            return Plan(frames, 1, b"", {}, {}, (frames,), self.serial)
        find = self.find
        weight = [0] * len(self.parent)
        for node, n in Counter(self.frame_node).items():
            weight[node] = n
        load: dict[int, int] = {}
        for node in range(len(self.parent)):
            root = find(node)
            load[root] = load.get(root, 0) + weight[node]
        groups = sorted(((n, root) for root, n in load.items() if n), reverse=True)
        shares = min(jobs, len(groups), _NOWHERE)
        if shares < 2:
            why = "one worker asked" if jobs < 2 else "one connection: nothing to share"
            return Plan(frames, 1, b"", {}, {}, (frames,), why)
        heap = [(0, w) for w in range(shares)]
        share_of: dict[int, int] = {}
        for n, root in groups:  # the largest first, each to the share with the fewest frames
            have, w = heapq.heappop(heap)
            share_of[root] = w
            heapq.heappush(heap, (have + n, w))
        of_node = [share_of.get(find(node), 0) for node in range(len(self.parent))]
        owner = bytes(map(of_node.__getitem__, self.frame_node))
        loads = [0] * shares
        for have, w in heap:
            loads[w] = have
        return Plan(frames, shares, owner, self.tcp_starts, self.numbered, tuple(loads))


def plan_shares(
    source: Readable,
    jobs: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    quick: bool = True,
) -> Plan:
    """Read ``source`` through and cut it into at most ``jobs`` shares (one, with :attr:`Plan.why`,
    when it cannot be shared: one connection, a subflow without its handshake...).  Raises the
    :class:`~mptcpspec.capture.pcap.CaptureError` of a file that is no capture; damage met later ends
    the read, and the plan covers the frames before it.  ``progress`` is told (file offset, frames)
    after each batch of frames.  ``quick`` False: every segment decoded, none read from its octets
    here (the same plan, slower)."""
    p = _Planner()
    reader = CaptureReader(source)
    number = 0
    other, packet, segment, flows = p.other, p.packet, p.segment, p.flows
    add = p.frame_node.append
    common = (_COMMON if quick else {}).get
    how, last = None, -1
    try:
        for batch in reader.batches():
            for ts, linktype, data, _, _, _ in batch:
                number += 1
                node = -1
                # A TCP segment in IPv4 after Ethernet or Linux cooked, its header captured whole,
                # is read here; the common one (a known stream's ACK without SYN, FIN or RST,
                # nothing to learn from its options) is followed here too, the others by
                # _Planner.segment.  Any other frame is decoded and followed by _Planner.packet.
                if linktype != last:
                    how, last = common(linktype), linktype
                if how is not None:
                    unpack, at, i = how
                    try:
                        et, vihl, tot, frag, proto, src, dst, sport, dport, seq, ack, of = unpack(data, at)
                    except struct.error:  # too short
                        et = of = 0
                    o = i + 20 + ((of >> 12) << 2)  # the TCP payload
                    if (
                        et == 0x0800
                        and vihl == 0x45
                        and proto == 6
                        and not frag & 0x3FFF
                        and i + 40 <= o <= i + tot
                        and o <= len(data)
                    ):
                        key = (src, sport, dst, dport, 4)
                        hit = flows.get(key) if of & 0x17 == 0x10 else None
                        st = None if hit is None else hit[0]
                        if st is not None and (
                            st.steady == _NUMBERED or st.steady == _PLAIN and data.find(b"\x1e", i + 40, o) < 0
                        ):
                            if o < i + tot and not st.data:
                                st.data = True
                            node = st.node
                        else:
                            node = segment(number, key, of & 0x1FF, seq, ack, tot - o + i, data[i + 40 : o], False)
                if node < 0:
                    try:
                        pkt = decode_frame(linktype, data, ts)
                    except DecodeError:
                        pkt = None
                    node = other(number) if pkt is None else packet(number, pkt)
                add(node)
            if progress is not None:
                progress(reader.position, number)
            if p.serial is not None:
                break  # the rest need not be read
    except CaptureError:
        if not number:
            raise
    return p.plan(number, jobs)


# --------------------------------------------------------------------------- the workers


def _mask(owner: bytes, share: int) -> bytes:
    """1 for each frame of ``share``, 0 for the others."""
    table = bytearray(256)
    table[share] = 1
    return owner.translate(table)


class ShareDissection(Dissection):
    """The :class:`~mptcpspec.dissect.pipeline.Dissection` of one share of a :class:`Plan`: the
    frames of the share are dissected as one process dissects them; the others are counted and timed
    only, and where the plan numbered a stream of theirs, the numbering moves on by one.  Raises
    :class:`ShareMismatch` where a stream of the share is numbered elsewhere or otherwise than the
    plan says."""

    def __init__(self, source: Source, plan: Plan, share: int, **kw: bool) -> None:
        super().__init__(source, **kw)
        owner = plan.owner
        self.plan = plan
        self.mine = _mask(owner, share)
        self.starts = {f: s for f, s in plan.tcp_starts.items() if owner[f - 1] == share}
        self.numbers = {f: s for f, s in plan.numbered.items() if owner[f - 1] == share}
        #: frame of another share -> 1: a TCP stream starts there, 2: a connection is numbered, 3: both
        self.elsewhere: dict[int, int] = {}
        for f in plan.tcp_starts:
            if owner[f - 1] != share:
                self.elsewhere[f] = 1
        for f in plan.numbered:
            if owner[f - 1] != share:
                self.elsewhere[f] = self.elsewhere.get(f, 0) | 2
        self.table = self.analyzer.hot_parts().table
        self.tcp_hi = self.mptcp_hi = -1  # the highest numbers this share's frames showed
        self.tcp_seen = self.mptcp_seen = 0

    def __iter__(self) -> Iterator[PacketInfo]:
        """The share's frames, each with its number in the capture (as Dissection's own loop)."""
        mine, last, feed, skip, tick = self.mine, self.plan.frames, self.feed_frame, self.skip, self.analyzer.clock.tick
        n = self.frames
        for batch in self.reader.batches():
            for frame in batch:
                n += 1
                self.frames = n
                if n <= last and mine[n - 1]:
                    self.frame = frame
                    yield feed(n, frame)
                else:
                    skip(n)
                    tick(frame[0])

    def feed_frame(self, number: int, frame: Frame) -> PacketInfo:
        """As Dissection's; a frame of another share (from the compiled path, which takes no frame
        of a stream it does not know) is counted and timed, and its row is dropped on output."""
        if number > self.plan.frames or not self.mine[number - 1]:
            self.skip(number)
            return self.analyzer.clock.info(number, frame[0], 0, 0)
        info = super().feed_frame(number, frame)
        t = info.tcp_stream
        if t is not None and t > self.tcp_hi:
            if self.starts.get(number) != t:
                raise ShareMismatch(f"frame {number} starts TCP stream {t}, not as the first pass found")
            self.tcp_hi = t
            self.tcp_seen += 1
        m = info.mptcp_stream
        if m is not None and m > self.mptcp_hi:
            if self.numbers.get(number) != m:
                raise ShareMismatch(f"frame {number} numbers MPTCP stream {m}, not as the first pass found")
            self.mptcp_hi = m
            self.mptcp_seen += 1
        return info

    def skip(self, number: int) -> None:
        """Frame ``number`` is another share's: the numbers it gives streams are taken."""
        if number > self.plan.frames:
            raise ShareMismatch(f"frame {number}: beyond the {self.plan.frames} frames of the first pass")
        what = self.elsewhere.get(number)
        if what is not None:
            if what & 1:
                subflows = self.table.subflows
                subflows.append(Subflow(len(subflows), _ZERO, _ZERO, number))
            if what & 2:
                # Analyzer has no public way to skip a number; this is the counter feed_tcp takes from
                self.analyzer._next_stream += 1

    def finish(self) -> None:
        """After the read: every stream of the share was numbered (raises :class:`ShareMismatch`)."""
        if self.frames != self.plan.frames:
            raise ShareMismatch(f"{self.frames} frames read, the first pass read {self.plan.frames}")
        if self.tcp_seen != len(self.starts) or self.mptcp_seen != len(self.numbers):
            raise ShareMismatch("a stream the first pass found was not numbered")


class _Rows:
    """The text stream a worker's writer writes to: its rows, encoded, to the share's file.  From the
    compiled path, which writes a row for every frame, the rows of other shares are dropped."""

    def __init__(self, raw: IO[bytes], encoding: str, errors: str, mine: bytes | None) -> None:
        self.raw = raw
        self.encoding, self.errors = encoding, errors
        self.mine = mine  # None: only the share's rows come
        self.lines = 0  # rows that came
        self.tail = ""

    def write(self, text: str) -> int:
        mine = self.mine
        if mine is None:
            self.lines += text.count("\n")
            self.raw.write(text.encode(self.encoding, self.errors))
            return len(text)
        rows = (self.tail + text).split("\n")
        self.tail = rows.pop()
        at = self.lines
        self.lines = at + len(rows)
        kept = list(compress(rows, mine[at : self.lines]))
        if kept:
            kept.append("")
            self.raw.write("\n".join(kept).encode(self.encoding, self.errors))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()


@dataclass(frozen=True, slots=True)
class _Job:
    path: str
    plan: Plan
    writer: FieldsWriter
    keep: Callable[[PacketInfo], bool] | None
    verify: bool
    tcp_analysis: bool
    encoding: str
    errors: str


@dataclass(frozen=True, slots=True)
class _Done:
    """What came of a worker's share: its ReadOutcome's parts, and the frames the filter kept."""

    frames: int
    written: int
    damage: str | None
    problems: tuple[str, ...]
    unsupported: tuple[tuple[int, int], ...]
    kept: bytes  #: array("I") of the frames kept, with a display filter


def _work(job: _Job, share: int, fd: int, result: Connection) -> None:
    """A worker: share ``share`` of the capture dissected, its rows to the file ``fd``; what came of
    it sent on ``result``: a _Done, or why the parallel run must be dropped (a str)."""
    try:
        with open(fd, "wb", buffering=1 << 20, closefd=False) as raw, open_input(job.path) as f:
            d = ShareDissection(f, job.plan, share, verify=job.verify, tcp_analysis=job.tcp_analysis)
            writer = job.writer
            compiled = job.keep is None and fields_engine(d, writer) is not None
            rows = _Rows(raw, job.encoding, job.errors, d.mine if compiled else None)
            writer.out = cast(TextIO, rows)
            keep = job.keep
            kept = array("I")
            if keep is not None:
                test, add = keep, kept.append

                def keep(info: PacketInfo) -> bool:
                    if test(info):
                        add(info.number)
                        return True
                    return False

            done = dissect_capture(d, writer=writer, keep=keep)
            d.finish()
            rows.flush()
            want = job.plan.frames if compiled else len(kept) if keep is not None else d.mine.count(1)
            if rows.lines != want or rows.tail:
                raise ShareMismatch(f"{rows.lines} rows for {want} frames: a row holds a newline")
        result.send(_Done(done.frames, done.written, done.damage, done.problems, done.unsupported, kept.tobytes()))
    except ShareMismatch as e:
        result.send(str(e))
    except KeyboardInterrupt:
        pass
    except BaseException:  # noqa: B036 -- one process then reads the capture, and says what went wrong
        import traceback

        result.send(traceback.format_exc())
    finally:
        result.close()


def _collect(pipes: list[Connection]) -> list[_Done] | None:
    """What each worker sent, or None as soon as one dropped the run (or ended without a word)."""
    from multiprocessing.connection import wait

    got: dict[int, _Done] = {}
    waiting = dict(enumerate(pipes))
    while waiting:
        for ready in wait(list(waiting.values())):
            w = next(w for w, p in waiting.items() if p is ready)
            del waiting[w]
            try:
                msg = pipes[w].recv()
            except EOFError:
                return None
            if not isinstance(msg, _Done):
                return None
            got[w] = msg
    return [got[w] for w in range(len(pipes))]


def _merge(out: TextIO, files: Sequence[IO[bytes]], tag: bytes, encoding: str, errors: str) -> None:
    """The workers' rows, in the order of the frames they are of (``tag[n - 1]``: frame ``n``'s
    worker, or _NOWHERE)."""
    binary = getattr(out, "buffer", None)
    out.flush()
    for f in files:
        f.seek(0)
    nexts = [f.readline for f in files]
    for at in range(0, len(tag), _CHUNK):
        part = tag[at : at + _CHUNK]
        block = b"".join([nexts[w]() for w in part if w != _NOWHERE])
        if binary is not None:
            binary.write(block)
        else:
            out.write(block.decode(encoding, errors))
    if binary is not None:
        binary.flush()


def _tags(plan: Plan, results: list[_Done], filtered: bool) -> bytes:
    """Frame -> the worker that wrote its row."""
    if not filtered:
        return plan.owner
    tag = bytearray([_NOWHERE]) * plan.frames
    for w, msg in enumerate(results):
        kept = array("I")
        kept.frombytes(msg.kept)
        for n in kept:
            tag[n - 1] = w
    return bytes(tag)


def _shareable(writer: PacketWriter, keep: object, filter_text: str | None) -> bool:
    """Whether rows written by shares can be the rows of one process."""
    if not isinstance(writer, FieldsWriter) or "\n" in writer.sep + writer.agg + writer.quote:
        return False
    if keep is not None and (
        "frame.time_delta_displayed" in writer.names or "time_delta_displayed" in (filter_text or "")
    ):
        return False  # the last frame shown of the whole capture
    return True


def dissect_parallel(
    path: str,
    writer: PacketWriter,
    jobs: int,
    *,
    keep: Callable[[PacketInfo], bool] | None = None,
    filter_text: str | None = None,
    verify: bool = True,
    tcp_analysis: bool = True,
    progress: Callable[[int, int], None] | None = None,
    sparing: bool = True,
) -> ReadOutcome | None:
    """``dissect_capture`` of the capture file ``path`` with the ``-T fields`` ``writer`` (its
    header already written) and the display filter ``keep`` (of text ``filter_text``), by ``jobs``
    worker processes; None, with nothing written, where one process must read it (see the module).
    ``progress`` follows the first pass.  ``sparing``: also leave to one process what it reads
    faster: a file smaller than :data:`MIN_SIZE`, a capture whose largest share would hold more
    than :data:`MOST` of the frames, a run the compiled hot path takes (it takes no frame of
    another share: those go through the Python path in a worker, and cost as much as its own)."""
    if jobs < 2 or path == "-" or not _shareable(writer, keep, filter_text):
        return None
    try:
        if not os.path.isfile(path) or (sparing and os.path.getsize(path) < MIN_SIZE):
            return None
    except OSError:
        return None
    assert isinstance(writer, FieldsWriter)  # _shareable
    if sparing and keep is None:
        probe = Dissection(path, verify=verify, tcp_analysis=tcp_analysis)
        if fields_engine(probe, writer) is not None:
            return None
    with open_input(path) as f:
        plan = plan_shares(f, jobs, progress)
    if plan.shares < 2 or (sparing and max(plan.loads) > MOST * plan.frames):
        return None
    out = writer.out
    binary = getattr(out, "buffer", None) is not None
    encoding = (getattr(out, "encoding", None) or "utf-8") if binary else "utf-8"
    errors = (getattr(out, "errors", None) or "strict") if binary else "surrogatepass"
    job = _Job(path, plan, writer, keep, verify, tcp_analysis, encoding, errors)
    out.flush()  # the header: a worker must not write it again
    sys.stdout.flush()
    sys.stderr.flush()
    import multiprocessing  # here: a run left to one process does not load it
    import tempfile

    context = multiprocessing.get_context("fork")
    files = [tempfile.TemporaryFile() for _ in range(plan.shares)]
    procs, pipes = [], []
    try:
        for w in range(plan.shares):
            recv, send = context.Pipe(duplex=False)
            proc = context.Process(target=_work, args=(job, w, files[w].fileno(), send), daemon=True)
            proc.start()
            send.close()
            procs.append(proc)
            pipes.append(recv)
        results = _collect(pipes)
        if results is None:
            return None
        for proc in procs:
            proc.join()
        _merge(out, files, _tags(plan, results, keep is not None), encoding, errors)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for pipe in pipes:
            pipe.close()
        for spool in files:
            spool.close()
    first = results[0]
    unsupported: dict[int, int] = {}
    for done in results:
        for linktype, n in done.unsupported:
            unsupported[linktype] = unsupported.get(linktype, 0) + n
    written = sum(done.written for done in results)
    return ReadOutcome(first.frames, written, first.damage, first.problems, tuple(sorted(unsupported.items())))
