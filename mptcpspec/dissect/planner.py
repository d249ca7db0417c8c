"""The first pass of ``dissect -j`` (:mod:`mptcpspec.dissect.parallel`): the capture read once, its
frames cut into shares that share no state of the analysis, its streams numbered as the analysis will.

:func:`plan_shares` decodes each frame's TCP header and only the MPTCP options that link subflows to
connections (MP_CAPABLE keys, the tokens of MP_JOIN SYNs): every frame of a TCP stream, of every
stream on the same addresses and ports, and of every subflow linked to the same MPTCP connection by
a token, is in one share; frames without TCP go in blocks of 4096.  The shares are balanced by their
frames.  The TCP streams (``tcp.stream``) and the MPTCP connections (``mptcp.stream``) are numbered
in the frame where the analysis numbers each.

This Python pass is the reference.  Where the extension :mod:`mptcpspec.dissect.firstpass` was built
(and the compiled hot path runs), it reads the file and follows the common segment (a steady
stream's ACK) in C, and hands :class:`_Planner` every other frame, as the loop here does: the same
plan, in a tenth of the time.
"""

from __future__ import annotations

import heapq
import os
import struct
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import cast

from mptcpspec.capture.packets import Packet, TcpFlags, decode_frame
from mptcpspec.capture.pcap import CaptureError, CaptureReader, Readable
from mptcpspec.capture.source import FrameSource
from mptcpspec.capture.stream import Input, open_input
from mptcpspec.codec.crypto import key_token
from mptcpspec.codec.options import MalformedOption, MpCapable, MpJoinSyn, decode_mptcp_options
from mptcpspec.dissect.hotpath import MODE
from mptcpspec.errors import DecodeError

__all__ = ["Plan", "firstpass_module", "plan_shares"]

_SYN, _ACK, _FIN, _RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.FIN), int(TcpFlags.RST)
_M32 = 0xFFFFFFFF
_KIND_MPTCP = 30
_BLOCK = 12  # frames without TCP: a share for each 4096 frames of the capture
_MOST_SHARES = 255  # a share's number is an octet
#: From an EtherType on: the EtherType, an IPv4 header of 20 octets and the TCP header's first 14
#: (version and IHL, total length, fragment, protocol, addresses, ports, sequence and
#: acknowledgment numbers, data offset and flags), directly after it (Ethernet, Linux cooked v1) or
#: 18 octets on (cooked v2).
_ETHER = struct.Struct("!HBxH2xHxB2xIIHHIIH")
_SLL2 = struct.Struct("!H18xBxH2xHxB2xIIHHIIH")
#: link type -> (the unpacking, where it starts, the IP header's offset) of the first pass's common
#: segment
_COMMON = {1: (_ETHER.unpack_from, 12, 14), 113: (_ETHER.unpack_from, 14, 16), 276: (_SLL2.unpack_from, 0, 20)}


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


def _weights(frame_node: array[int], nodes: int) -> list[int]:
    """The frames of each node (``frame_node``: each frame's)."""
    weight = [0] * nodes
    for node, n in Counter(frame_node).items():
        weight[node] = n
    return weight


def _owners(frame_node: array[int], of_node: list[int]) -> bytes:
    """Each frame's share (``of_node``: each node's)."""
    return bytes(map(of_node.__getitem__, frame_node))


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
        self.fresh: list[_FlowKey] | None = None  #: where kept: the keys of the streams started
        self.tally = (_weights, _owners)  #: how the frames of each node are counted, and shared

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

    def frame(self, number: int, linktype: int, data: bytes, ts: int) -> int:
        """The node of frame ``number``, decoded (a frame the common segment's reading leaves)."""
        try:
            pkt = decode_frame(linktype, data, ts)
        except DecodeError:
            return self.other(number)
        return self.other(number) if pkt is None else self.packet(number, pkt)

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
            back = (key[2], key[3], key[0], key[1], key[4])
            self.flows[key], self.flows[back] = (st, d), (st, 1 - d)
            if self.fresh is not None:
                self.fresh += (key, back)
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
        weights, owners = self.tally
        weight = weights(self.frame_node, len(self.parent))
        load: dict[int, int] = {}
        for node in range(len(self.parent)):
            root = find(node)
            load[root] = load.get(root, 0) + weight[node]
        groups = sorted(((n, root) for root, n in load.items() if n), reverse=True)
        shares = min(jobs, len(groups), _MOST_SHARES)
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
        owner = owners(self.frame_node, of_node)
        loads = [0] * shares
        for have, w in heap:
            loads[w] = have
        return Plan(frames, shares, owner, self.tcp_starts, self.numbered, tuple(loads))


def plan_shares(
    source: Readable | FrameSource,
    jobs: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    quick: bool = True,
    compiled: bool = True,
    files: Sequence[str] = (),
) -> Plan:
    """Read ``source`` through and cut it into at most ``jobs`` shares (one, with :attr:`Plan.why`,
    when it cannot be shared: one connection, a subflow without its handshake...).  Raises the
    :class:`~mptcpspec.capture.pcap.CaptureError` of a file that is no capture; damage met later ends
    the read, and the plan covers the frames before it.  ``progress`` is told (file offset, frames)
    as the read goes.  ``quick`` False: every segment decoded, none read from its octets here (the
    same plan, slower).  ``compiled`` False: the Python pass, the reference, even where
    :mod:`mptcpspec.dissect.firstpass` was built (the same plan).  A ``FrameSource`` (several files
    read as one capture) is read by the Python pass, or by the compiled one file after file where
    ``files`` names its files in order (the Python pass reads it again where one of them is not
    read whole)."""
    framed = isinstance(source, FrameSource)
    if framed and files and quick and compiled:
        plan = _compiled_files(files, jobs, progress)
        if plan is not None:
            return plan
    p = _Planner()
    number = 0
    fast = firstpass_module() if quick and compiled and not framed else None
    f = _reopen(source) if fast is not None and not isinstance(source, FrameSource) else None
    if fast is not None and f is not None:
        p.fresh = []
        p.tally = (fast.weights, fast.owners)
        pass_ = fast.FirstPass(p, _Stream, _PLAIN, _NUMBERED, progress)
        with f:
            # a compressed stream that ended early: its damage is the capture reader's to meet
            clean = pass_.read(f) and getattr(f, "damage", None) is None
        number, p.fresh = pass_.number, None
        if clean or p.serial is not None:
            return p.plan(number, jobs)
    reader = source if isinstance(source, FrameSource) else CaptureReader(source)
    skip = number  # the frames the compiled pass followed before a record it left to the reader
    segment, flows, frame = p.segment, p.flows, p.frame
    add = p.frame_node.append
    common = (_COMMON if quick else {}).get
    how, last = None, -1
    try:
        for batch in reader.batches():
            if skip:
                skip, batch = max(0, skip - len(batch)), batch[skip:]
            for ts, linktype, data, _, _, _ in batch:
                number += 1
                node = -1
                # A TCP segment in IPv4 after Ethernet or Linux cooked, its header captured whole,
                # is read here; the common one (a known stream's ACK without SYN, FIN or RST,
                # nothing to learn from its options) is followed here too, the others by
                # _Planner.segment.  Any other frame is decoded and followed by _Planner.frame.
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
                    node = frame(number, linktype, data, ts)
                add(node)
                if p.serial is not None:
                    return p.plan(number, jobs)  # the rest need not be read
            if progress is not None:
                progress(reader.position, number)
    except CaptureError:
        if not number:
            raise
    return p.plan(number, jobs)


def firstpass_module() -> ModuleType | None:
    """:mod:`mptcpspec.dissect.firstpass`, where it was built and the compiled hot path runs (not
    with ``MPTCPSPEC_PURE=1``), else None."""
    if MODE != "compiled":
        return None
    try:
        from mptcpspec.dissect import firstpass  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return cast(ModuleType, firstpass)


def _compiled_files(files: Sequence[str], jobs: int, progress: Callable[[int, int], None] | None) -> Plan | None:
    """The plan of ``files`` read as one capture by the compiled pass, or None (not built, or a file
    not read whole: its damage is the Python pass's to meet)."""
    fast = firstpass_module()
    if fast is None:
        return None
    p = _Planner()
    p.fresh = []
    p.tally = (fast.weights, fast.owners)
    pass_ = fast.FirstPass(p, _Stream, _PLAIN, _NUMBERED, progress)
    for path in files:
        try:
            f = open_input(path)
        except (OSError, CaptureError):
            return None
        with f:
            if not pass_.read(f) or getattr(f, "damage", None) is not None:
                return None
        if p.serial is not None:  # one process will read it: the plan says why
            break
    p.fresh = None
    return p.plan(pass_.number, jobs)


def _reopen(source: Readable) -> Input | None:
    """The capture file of ``source`` opened again from its start, or None (not a named file)."""
    if isinstance(source, Input):
        return source.reopen() if source.name != "-" and os.path.isfile(source.name) else None
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        return open_input(os.fspath(source))
    return None
