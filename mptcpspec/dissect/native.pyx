# cython: language_level=3, boundscheck=False, cdivision=True, initializedcheck=False
"""The compiled hot path of ``dissect -T fields``: frames to rows without a Python object per packet.

The common segment (Ethernet, Linux cooked v1 or v2 or raw IPv4; IPv4 without a fragment offset;
a TCP header captured whole, ACK set and none of SYN, FIN, RST; a subflow already known with both
initial sequence numbers seen; no MPTCP option but one DSS) is decoded here from the frame's octets,
analysed here on the analyzer's own objects (the same subflows, connection sides and mappings the
Python analysis keeps), and its row written here.  Anything else goes through the Python pipeline
(:meth:`~mptcpspec.dissect.pipeline.Dissection.feed_frame` and the writer's row), which stays the
reference: each step below transcribes a branch of :mod:`mptcpspec.analysis.connections` and
:mod:`mptcpspec.analysis.datalevel`, and what a branch does rarely (an expert item, a gap, a
checksum) it leaves to the Python methods themselves.  tests/test_native.py shows the rows, the
connections and the expert counts are the same as the pure path's on every capture.

Built by setup.py where a C compiler exists; :mod:`mptcpspec.dissect.hotpath` loads it.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

from mptcpspec.analysis.datalevel import MAX_MAPPINGS
from mptcpspec.analysis.model import SIDE_NAMES, DssInfo, Mapping
from mptcpspec.analysis.seqspace import MAX_RANGES, carried
from mptcpspec.capture.packets import decode_frame
from mptcpspec.codec import crypto
from mptcpspec.codec.crypto import Verdict
from mptcpspec.codec.options import Dss, DssFlags
from mptcpspec.codec.runtime import FlagTable, fast_constructor
from mptcpspec.fsm.observer import Observer

cdef object _dssinfo = fast_constructor(DssInfo)
cdef object _new_dss = fast_constructor(Dss)
cdef object _dss_flags = FlagTable(DssFlags)
cdef object _mapping = Mapping
cdef object M32 = 0xFFFFFFFF
cdef object M64 = 0xFFFFFFFFFFFFFFFF
cdef object NOT32 = ~0xFFFFFFFF
cdef object TWO32 = 1 << 32
cdef object HALF32 = 0x80000000
cdef object TWO62 = 1 << 62
cdef object _Dss = Dss
cdef object _Observer = Observer
cdef object _MAX_RANGES = MAX_RANGES
cdef object _bisect_right
from bisect import bisect_right as _bisect_right

# DSS flag bits (RFC 8684 §3.3)
cdef enum:
    F_A = 0x01  # DATA_ACK present
    F_a = 0x02  # DATA_ACK is 8 octets
    F_M = 0x04  # mapping present
    F_m = 0x08  # DSN is 8 octets
    F_F = 0x10  # DATA_FIN

cdef enum:
    T_FIN = 0x01
    T_SYN = 0x02
    T_RST = 0x04
    T_ACK = 0x10

# Field kinds of the row
cdef enum:
    K_NUMBER = 1
    K_TCP_STREAM
    K_SRCPORT
    K_DSTPORT
    K_TCP_LEN
    K_TCP_SEQ
    K_TCP_ACK
    K_MPTCP_STREAM
    K_MPTCP_DSN
    K_MPTCP_ACK
    K_DSS_DSN
    K_OPTION  # + the option field's index among the option cells

#: the fields this path writes itself; the MPTCP option fields (tcp.options.mptcp.*) too
FIELD_KINDS = {
    "frame.number": K_NUMBER,
    "tcp.stream": K_TCP_STREAM,
    "tcp.srcport": K_SRCPORT,
    "tcp.dstport": K_DSTPORT,
    "tcp.len": K_TCP_LEN,
    "tcp.seq": K_TCP_SEQ,
    "tcp.ack": K_TCP_ACK,
    "mptcp.stream": K_MPTCP_STREAM,
    "mptcp.dsn": K_MPTCP_DSN,
    "mptcp.ack": K_MPTCP_ACK,
    "mptcp.dss.dsn": K_DSS_DSN,
}
#: an option field's kind: this plus the index of its cell among the option cells
K_OPTION_BASE = K_OPTION
#: option fields written here from a DSS directly (the rest through the option table's cells)
DSS_CELLS = ("subtype", "rawdataack", "rawdataseqno", "subflowseqno", "datalvllen")

DEF OUT_SIZE = 1 << 16
DEF MAX_FIELDS = 64
DEF AREAS_KEPT = 4096


cdef inline uint32_t be32(const uint8_t* b) noexcept nogil:
    return (<uint32_t>b[0] << 24) | (<uint32_t>b[1] << 16) | (<uint32_t>b[2] << 8) | b[3]


cdef inline unsigned int be16(const uint8_t* b) noexcept nogil:
    return (<unsigned int>b[0] << 8) | b[1]


cdef class FieldsEngine:
    """One ``-T fields`` run over a :class:`~mptcpspec.dissect.pipeline.Dissection`."""

    cdef object dis, analyzer, clock, out, row, one, flows, areas, area_cache, ctx, reader, mappings, space
    cdef object counts, experts, cells_of, dss_cache
    cdef bint dss_cells  # every option field asked for is in DSS_CELLS: cells from the DSS itself
    cdef int cell_of[MAX_FIELDS]  # K_OPTION + i: its index in DSS_CELLS
    cdef int nkinds
    cdef int kinds[MAX_FIELDS]
    cdef bytes sep
    cdef bint verify
    cdef char buf[OUT_SIZE]
    cdef Py_ssize_t used
    cdef long tcp_count
    cdef public long taken  #: frames this path took (the rest went through the Python pipeline)
    cdef bint first_seen
    cdef object first_ns, prev_ns
    # the packet at hand (fast path)
    cdef long number
    cdef object ctx_sf
    cdef int ctx_d
    cdef bint ctx_ready
    cdef int linktype
    cdef object ts
    cdef bytes data

    def __init__(self, dissection, writer, kinds, one, row, option_names=()):
        """``kinds``: each field's kind (FIELD_KINDS, or K_OPTION + the index of its cell among
        the option cells ``one`` gives for an option); ``row``: the writer's row function, for a
        frame the Python pipeline analyses."""
        self.dis = dissection
        an = dissection.analyzer
        self.analyzer = an
        self.clock = an.clock
        hot = an.hot_parts()
        self.flows = hot.flows
        self.areas = hot.areas
        self.ctx = hot.ctx
        self.reader = hot.reader
        self.mappings = hot.mappings
        self.space = hot.space
        self.verify = bool(hot.ctx.verify)
        self.counts = an.counts
        self.experts = an.experts
        self.out = writer.out
        self.sep = writer.sep.encode()
        self.row = row
        self.one = one
        self.area_cache = {}
        self.dss_cache = {}
        prefix = "tcp.options.mptcp."
        short = [n[len(prefix):] if n.startswith(prefix) else n for n in option_names]
        self.dss_cells = all(n in DSS_CELLS for n in short)
        if self.dss_cells:
            for i, n in enumerate(short):
                self.cell_of[i] = DSS_CELLS.index(n)
        self.cells_of = {}
        if len(kinds) > MAX_FIELDS:
            raise ValueError("too many fields for the compiled path")
        self.nkinds = len(kinds)
        for i, k in enumerate(kinds):
            self.kinds[i] = k
        self.used = 0
        self.tcp_count = 0
        self.first_seen = False

    # ------------------------------------------------------------------------------ output

    cdef inline void _flush(self) except *:
        if self.used:
            self.out.write(PyBytes_FromStringAndSize(self.buf, self.used).decode("utf-8", "surrogatepass"))
            self.used = 0

    cdef inline void _room(self, Py_ssize_t n) except *:
        if self.used + n > OUT_SIZE:
            self._flush()

    cdef inline void _put(self, const char* s, Py_ssize_t n) noexcept:
        memcpy(self.buf + self.used, s, n)
        self.used += n

    cdef inline void _uint(self, uint64_t v) noexcept:
        cdef char tmp[24]
        cdef int i = 24
        if v == 0:
            self.buf[self.used] = 48
            self.used += 1
            return
        while v:
            i -= 1
            tmp[i] = <char>(48 + v % 10)
            v //= 10
        memcpy(self.buf + self.used, tmp + i, 24 - i)
        self.used += 24 - i

    cdef inline void _obj(self, object v) except *:
        """A Python int (or None: nothing) as decimal."""
        if v is None:
            return
        if 0 <= v <= 0xFFFFFFFFFFFFFFFF:
            self._uint(<uint64_t>v)
        else:
            s = str(v).encode()
            self._put(PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s))

    cdef void _python_row(self, str text) except *:
        b = text.encode("utf-8", "surrogatepass")
        cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
        if n + 1 > OUT_SIZE:
            self._flush()
            self.out.write(text + "\n")
            return
        self._room(n + 1)
        self._put(PyBytes_AS_STRING(b), n)
        self._put("\n", 1)

    # ------------------------------------------------------------------------------- loop

    def run(self):
        """Every frame of the capture, its row written; the counts and times left as the Python
        pipeline leaves them."""
        dis = self.dis
        cdef long frames = dis.frames
        cdef long number
        try:
            for batch in dis.reader.batches():
                for frame in batch:
                    frames += 1
                    number = frames
                    ts, linktype, data, orig_len, _, _ = frame
                    if not self.first_seen:
                        self.first_seen = True
                        if self.clock.first_ns is None:
                            self.clock.first_ns = ts
                    if not self._fast(number, ts, linktype, data):
                        self.prev_ns_sync()
                        dis.frames = frames
                        dis.frame = frame
                        self._python_row(self.row(dis.feed_frame(number, frame)))
                    else:
                        self.taken += 1
                        self.prev_ns = ts
        finally:
            dis.frames = frames
            self.prev_ns_sync()
            self.counts["TCP"] += self.tcp_count
            self.tcp_count = 0
            self._flush()

    cdef inline void prev_ns_sync(self) except *:
        if self.prev_ns is not None:
            self.clock.prev_ns = self.prev_ns
            self.prev_ns = None

    # ------------------------------------------------------------------------ the segment

    cdef void _prepare(self) except *:
        """The packet context, as Analyzer.feed_tcp sets it, for a Python part called from here."""
        if self.ctx_ready:
            return
        self.ctx_ready = True
        ctx = self.ctx
        ctx.number = self.number
        ctx.pkt = None
        ctx.sf = self.ctx_sf
        ctx.d = self.ctx_d
        if ctx.checks:
            ctx.checks = []
        if ctx.experts:
            ctx.experts = []
        if ctx.reinjection_of:
            ctx.reinjection_of = []

    cdef bint _fast(self, long number, object ts, int linktype, bytes data) except -1:
        self.linktype = linktype
        self.ts = ts
        self.data = data
        cdef const uint8_t* b = <const uint8_t*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t p, t, end, o, doff, total
        cdef unsigned int et, frag, offflags, flags, sport, dport
        cdef uint32_t seq, ack
        # the link layer: the common ones, IP directly after them
        if linktype == 113:  # Linux cooked v1
            if n <= 16:
                return False
            et = be16(b + 14)
            p = 16
        elif linktype == 1:  # Ethernet
            if n <= 14:
                return False
            et = be16(b + 12)
            p = 14
        elif linktype == 276:  # Linux cooked v2
            if n < 20:
                return False
            et = be16(b)
            p = 20
            if n <= p:
                return False
        elif linktype == 101 or linktype == 12 or linktype == 14 or linktype == 228:  # raw IP, raw IPv4
            et = 0x0800
            p = 0
            if n <= p:
                return False
        else:
            return False
        if et != 0x0800 or b[p] != 0x45 or n < p + 40:
            return False
        if b[p + 9] != 6:
            return False
        frag = be16(b + p + 6)
        if frag & 0x1FFF:
            return False
        total = be16(b + p + 2)
        if total == 0:
            total = n - p
        elif total < 20:
            return False
        t = p + 20
        end = p + total
        sport = be16(b + t)
        dport = be16(b + t + 2)
        seq = be32(b + t + 4)
        ack = be32(b + t + 8)
        offflags = be16(b + t + 12)
        doff = (offflags >> 12) * 4
        o = t + doff
        if doff < 20 or o > end or n < o:
            return False
        flags = offflags & 0x1FF
        if flags & (T_SYN | T_FIN | T_RST) or not flags & T_ACK:
            return False
        key = (be32(b + p + 12), sport, be32(b + p + 16), dport, 4)
        hit = self.flows.get(key)
        if hit is None:
            return False
        return self._segment(number, b, t, o, end, sport, dport, seq, ack, hit)

    cdef bint _segment(
        self, long number, const uint8_t* b, Py_ssize_t t, Py_ssize_t o, Py_ssize_t end,
        unsigned int sport, unsigned int dport, uint32_t seq, uint32_t ack, tuple hit,
    ) except -1:
        """feed_tcp for a segment with ACK and none of SYN, FIN, RST, its TCP header captured whole."""
        cdef Py_ssize_t nopt = o - t - 20
        cdef long plen = end - o
        sf = hit[0]
        cdef int d = hit[1]
        dirs = sf.dirs
        if d:
            me = dirs[1]
            peer = dirs[0]
        else:
            me = dirs[0]
            peer = dirs[1]
        isn = me.isn
        pisn = peer.isn
        if isn is None or pisn is None:
            return False
        cdef uint32_t tcp_seq = <uint32_t>(seq - <uint32_t>isn)
        cdef uint32_t tcp_ack = <uint32_t>(ack - <uint32_t>pisn)
        pfin = peer.fin
        if pfin is not None and not peer.fin_acked and ack == <uint32_t>((<uint32_t>pfin) + 1):
            return False  # the peer's FIN acknowledged: the subflow may close
        conn = sf.conn
        # the MPTCP options: none, or one DSS
        found = ()
        if nopt:
            version = conn.version if conn is not None else None
            found = self._area(b + t + 20, nopt, version)
            if found is None:
                return False
        if conn is None:
            if found:
                return False  # an MPTCP option on a subflow of no connection: linked here or there
            if plen:
                me.data += plen
            self.tcp_count += 1
            self._write(number, sf, sport, dport, plen, tcp_seq, tcp_ack, None, False, None, None, False, None)
            return True
        cdef bint one_dss = bool(found)
        obs = sf.observer
        if type(obs) is _Observer:
            return False
        stream = conn.stream
        if stream is None and one_dss:
            return False  # numbered here
        if dirs[0].fin_acked and dirs[1].fin_acked and not sf.closed:
            return False
        # from here on the packet is this path's: the analyzer's objects change
        self.number = number
        self.ctx_sf = sf
        self.ctx_d = d
        self.ctx_ready = False
        if plen:
            me.data += plen
        info = None
        if one_dss:
            info = self._dss(found[0], sf, d, number, conn)
        conn.last_frame = number
        payload_dsn = payload_dsn64 = None
        if plen:
            if not conn.fallback and not conn.unlinked:
                got = self._data(sf, d, conn, seq, plen, number, b, o, end)
                if got is not None:
                    payload_dsn, payload_dsn64, _ = got
        else:
            ms = me.mappings
            if ms:
                rel = (seq - isn - me.syn_data) & M32
                if rel < me.map_hi:
                    for m in reversed(ms):
                        if m.ssn <= rel < m.ssn + m.data_level_length:
                            payload_dsn64 = (m.dsn64 + rel - m.ssn) & M64
                            idsn = conn.sides[d if sf.to_client_side else 1 - d].idsn
                            payload_dsn = None if idsn is None else (payload_dsn64 - idsn) & M64
                            break
        if self.ctx_ready:
            experts = self.ctx.experts
            if experts:
                for e in experts:
                    self.experts[e.key] += 1
                    conn.experts[e.key] += 1
        self.tcp_count += 1
        shown = stream is not None and one_dss
        self._write(number, sf, sport, dport, plen, tcp_seq, tcp_ack, conn if shown else None, shown, found,
                    info, payload_dsn64 is not None, payload_dsn)
        return True

    cdef object _area(self, const uint8_t* a, Py_ssize_t n, object version):
        """The MPTCP options of an options area: () or (a DSS,), else None.  Kept by the area's octets
        with the timestamps' values left out (nothing else in it changes from segment to segment)."""
        cdef char key[44]
        cdef Py_ssize_t i = 0, ln, at = -1, atlen = 0
        cdef int mptcp = 0
        cdef uint8_t kind
        memcpy(key, a, n)
        while i < n:
            kind = a[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= n:
                return None
            ln = a[i + 1]
            if ln < 2 or i + ln > n:
                return None
            if kind == 8 and ln == 10:
                memcpy(key + i + 2, b"\0\0\0\0\0\0\0\0", 8)
            elif kind == 30:
                mptcp += 1
                at = i
                atlen = ln
            i += ln
        if mptcp == 0:
            return ()
        if mptcp == 1 and atlen >= 4 and a[at + 2] >> 4 == 2:
            # one DSS, the rest no MPTCP option: the DSS's own octets are all its decoding depends on
            k = PyBytes_FromStringAndSize(<const char*>a + at, atlen)
            got = self.dss_cache.get(k)
            if got is not None:
                return got
            o = decode_dss_at(a + at, atlen)
            if o is not None:
                got = (o,)
                if len(self.dss_cache) >= AREAS_KEPT:
                    self.dss_cache.clear()
                self.dss_cache[k] = got
                return got
        key[n] = <char>(0xFF if version is None else <int>version)
        k = PyBytes_FromStringAndSize(key, n + 1)
        got = self.area_cache.get(k)
        if got is None:
            found = self.areas.decode(PyBytes_FromStringAndSize(<const char*>a, n), version)
            if len(found) == 0:
                got = ()
            elif len(found) == 1 and type(found[0]) is _Dss:
                got = found
            else:
                got = False
            if len(self.area_cache) >= AREAS_KEPT:
                self.area_cache.clear()
            self.area_cache[k] = got
        if got is False:
            return None
        return got

    # ------------------------------------------------------------------------ data level

    cdef object _dss(self, object o, object sf, int d, long number, object conn):
        """DssReader.dss, without a cut option."""
        fl = sf.dirs[d]
        memo = fl.memo
        if memo is not None and memo[0] is o:
            _, info, mconn, narrow, pidsn, midsn, m, me, peer, mfl, to_client = memo
            if (
                sf.conn is mconn
                and sf.to_client_side is to_client
                and not mconn.checksum
                and peer.idsn == pidsn
                and me.idsn == midsn
                and (m is None or mfl.mappings[-1] is m)
            ):
                ack64 = info.ack64
                fresh = True
                if narrow is not None:
                    ref = peer.dsn_ref
                    if ref is None:
                        ref = me.ack_ref
                        if ref is None and pidsn is not None:
                            ref = (pidsn + 1) & M64
                    if ref is None:
                        fresh = False
                    else:
                        v = (ref & NOT32) | narrow
                        if v - ref > HALF32:
                            v -= TWO32
                        elif ref - v > HALF32:
                            v += TWO32
                        fresh = (v & M64) == ack64
                if fresh:
                    if ack64 is not None:
                        me.ack_ref = ack64
                        if ack64 > peer.hole_lo or (peer.seg_high is not None and ack64 > peer.seg_high):
                            self._prepare()
                            self.space.acked(peer, ack64, mconn)
                        if peer.dfin is not None and not peer.dfin_acked and ((ack64 - peer.dfin) & M64) - 1 < TWO62:
                            peer.dfin_acked = True
                            self._prepare()
                            self.ctx.closure(mconn, "DATA_ACK[DFIN]")
                    if m is not None:
                        me.dsn_ref = info.dsn64
                        m.frame = number
                        mfl.last = m
                    return info
        self._prepare()  # the full path below may meet anything
        info = self._dss_full(o, sf, d, number)
        self._remember(o, info, sf, d)
        return info

    cdef void _remember(self, object o, object info, object sf, int d) except *:
        fl = sf.dirs[d]
        conn = sf.conn
        cdef int f = o.flags
        fl.memo = None
        if conn is None or conn.checksum or o.checksum is not None or f & F_F:
            return
        if f & F_A and (o.data_ack is None or info.ack64 is None):
            return
        m = None
        if f & F_M:
            ssn, dl, dsn64 = o.ssn, o.data_level_length, info.dsn64
            if not f & F_m or dsn64 is None or not dl or ssn is None:
                return
            ms = fl.mappings
            m = ms[-1] if ms else None
            if (
                m is None
                or m is not fl.last
                or not (
                    m.ssn == ssn
                    and m.end == ssn + dl
                    and ssn < m.end
                    and ((m.dsn64 - ssn) & M64) == ((dsn64 - ssn) & M64)
                )
            ):
                return
        side = d if sf.to_client_side else 1 - d
        me, peer = conn.sides[side], conn.sides[1 - side]
        if f & F_M and not me.checked_first and me.idsn is not None:
            return
        fl.memo = (
            o, info, conn, o.data_ack if f & F_A and not f & F_a else None, peer.idsn, me.idsn, m, me, peer, fl,
            sf.to_client_side,
        )

    cdef object _dss_full(self, object o, object sf, int d, long number):
        """DssReader._dss, its rare branches through the Python parts."""
        conn = sf.conn
        if conn is None:
            return _dssinfo(None, None, None, None)
        ctx = self.ctx
        cdef int f = o.flags
        cdef int side = d if sf.to_client_side else 1 - d
        sides = conn.sides
        me = sides[side]
        peer = sides[1 - side]
        sf.dirs[d].seen_dss = True
        ack64 = ack = dsn64 = dsn = None
        if f & F_A:
            data_ack = o.data_ack
            if data_ack is not None:
                if f & F_a:
                    ack64 = data_ack
                else:
                    ref = peer.dsn_ref
                    if ref is None:
                        ref = me.ack_ref
                        if ref is None and peer.idsn is not None:
                            ref = (peer.idsn + 1) & M64
                    if ref is not None:
                        v = (ref & NOT32) | data_ack
                        if v - ref > HALF32:
                            v -= TWO32
                        elif ref - v > HALF32:
                            v += TWO32
                        ack64 = v & M64
                if ack64 is not None:
                    me.ack_ref = ack64
                    if ack64 > peer.hole_lo or (peer.seg_high is not None and ack64 > peer.seg_high):
                        self.space.acked(peer, ack64, conn)
                    if peer.idsn is not None:
                        ack = (ack64 - peer.idsn) & M64
                    if peer.dfin is not None and not peer.dfin_acked and ((ack64 - peer.dfin) & M64) - 1 < TWO62:
                        peer.dfin_acked = True
                        ctx.closure(conn, "DATA_ACK[DFIN]")
        if f & F_M:
            odsn, ssn, dl = o.dsn, o.ssn, o.data_level_length
            if odsn is None or ssn is None or dl is None:
                return _dssinfo(dsn64, dsn, ack64, ack)
            if f & F_m:
                dsn64 = odsn
            else:
                ref = me.dsn_ref if me.dsn_ref is not None else ((me.idsn + 1) & M64 if me.idsn is not None else None)
                if ref is not None:
                    v = (ref & NOT32) | odsn
                    if v - ref > HALF32:
                        v -= TWO32
                    elif ref - v > HALF32:
                        v += TWO32
                    dsn64 = v & M64
            if dsn64 is not None:
                me.dsn_ref = dsn64
                if me.idsn is not None:
                    dsn = (dsn64 - me.idsn) & M64
            if dl == 0:
                ctx.expert("mptcp.dss.infinite_mapping")
                if conn.fallback is None:
                    conn.fallback = f"infinite mapping in frame {number}"
                    ctx.expert("mptcp.fallback", f"fallback to regular TCP: {conn.fallback}")
            fin = 1 if f & F_F else 0
            checksum = o.checksum
            if conn.checksum:
                if checksum is None:
                    ctx.expert("mptcp.dss.checksum_missing")
            elif checksum is not None and sides[0].flags is not None:
                ctx.expert("mptcp.dss.checksum_unexpected")
            if dsn64 is not None and dl:
                if fin:
                    me.dfin = (dsn64 + dl - 1) & M64
                if not (fin and dl == 1 and ssn == 0):
                    fl = sf.dirs[d]
                    ms = fl.mappings
                    m = ms[-1] if ms else None
                    if (
                        m is not None
                        and m.ssn == ssn
                        and m.end == ssn + dl - fin
                        and ssn < m.end
                        and ((m.dsn64 - ssn) & M64) == ((dsn64 - ssn) & M64)
                    ):
                        m.frame = number
                        fl.last = m
                    else:
                        self._mapping(conn, sf, d, ssn, dsn64, dl - fin, checksum, dl)
                elif conn.checksum and checksum is not None and ctx.verify:
                    # A DATA_FIN alone: the checksum covers the pseudo-header only (RFC 8684 §3.3.1).
                    c = crypto.verify_dss_checksum(dsn64, 0, 1, b"", checksum)
                    ctx.check(c)
                    if c.verdict is Verdict.MISMATCH:
                        ctx.expert("mptcp.dss.checksum_mismatch", str(c))
                if not me.checked_first and me.idsn is not None:
                    me.checked_first = True
                    expect = (me.idsn + 1) & M64
                    if dsn64 != expect:
                        ctx.expert(
                            "mptcp.dss.first_dsn",
                            f"the {SIDE_NAMES[side]}'s first mapping starts at DSN {dsn64:#x}, IDSN + 1 is {expect:#x}",
                        )
            if fin:
                ctx.closure(conn, "DATA_FIN")
        return _dssinfo(dsn64, dsn, ack64, ack)

    cdef void _mapping(self, object conn, object sf, int d, object ssn, object dsn64, object length,
                       object checksum, object dl) except *:
        """Mappings.mapping, its common case (new subflow octets, new data) here."""
        fl = sf.dirs[d]
        end = ssn + length
        if ssn < fl.ssn_hi or (length and (conn.unlinked or dsn64 < fl.dsn_hi)):
            self.mappings.mapping(conn, sf, d, ssn, dsn64, length, checksum, dl)
            return
        side = conn.sides[d if sf.to_client_side else 1 - d]
        if length:
            # Mappings._data_range: new data (no retransmission on this subflow: dsn64 >= dsn_hi)
            dend = dsn64 + length
            high = side.high
            if side.first_dsn is None or high is None:
                side.first_dsn = dsn64
                side.high = dend
            elif dend > high:
                side.high = dend
            else:
                self.mappings.mapping(conn, sf, d, ssn, dsn64, length, checksum, dl)
                return
        m = _mapping(ssn, end, dsn64, self.number, checksum if self.verify and conn.checksum else None, None, dl)
        ms = fl.mappings
        ms.append(m)
        if len(ms) > MAX_MAPPINGS:
            del ms[0]
        fl.last = m
        if end > fl.ssn_hi:
            fl.ssn_hi = end
        if ssn + dl > fl.map_hi:
            fl.map_hi = ssn + dl
        if length:
            if dsn64 < side.first_dsn:
                side.first_dsn = dsn64
        dend = dsn64 + end - ssn
        if dend > fl.dsn_hi:
            fl.dsn_hi = dend

    cdef object _data(self, object sf, int d, object conn, uint32_t seq, long n, long number,
                      const uint8_t* b, Py_ssize_t o, Py_ssize_t end):
        """Mappings.data for a segment without SYN: the common case (its mapping found, no
        checksum to take) here, the rest through the Python method."""
        fl = sf.dirs[d]
        rel = (seq - fl.isn - fl.syn_data) & M32
        m = fl.last
        if m is None or not (m.ssn <= rel < m.end):
            m = None
            for cand in reversed(fl.mappings):
                if cand.ssn <= rel < cand.end:
                    m = cand
                    break
        if m is None or rel + n > m.end or m.checksum is not None:
            return self._python_data(sf, d, conn, seq, n, number)
        fl.last = m
        dsn64 = (m.dsn64 + rel - m.ssn) & M64
        side = conn.sides[d if sf.to_client_side else 1 - d]
        self._segment_range(side, dsn64, n, sf.index, number)
        return ((dsn64 - side.idsn) & M64 if side.idsn is not None else None), dsn64, m.frame

    cdef object _python_data(self, object sf, int d, object conn, uint32_t seq, long n, long number):
        self._prepare()
        self.ctx.pkt = decode_frame(self.linktype, self.data, self.ts)
        return self.mappings.data(sf, d, conn, 0, seq, n, number)

    cdef void _segment_range(self, object side, object dsn64, long n, object subflow, long number) except *:
        """SequenceSpace.segment without a reinjection (with one: the Python method)."""
        end = dsn64 + n
        starts = side.starts
        ranges = side.ranges
        cdef Py_ssize_t i = len(starts)
        if i and dsn64 < starts[i - 1]:
            i = _bisect_right(starts, dsn64)
        cdef Py_ssize_t j = i - 1
        reach = dsn64 - side.max_seg
        while j >= 0:
            r = ranges[j]
            if r[0] <= reach:
                break
            if r[1] > dsn64 and r[2] != subflow:
                self._prepare()
                self.space.segment(side, dsn64, n, subflow, number)
                return
            j -= 1
        cdef Py_ssize_t k = i
        cdef Py_ssize_t nranges = len(ranges)
        while k < nranges and ranges[k][0] < end:
            if ranges[k][2] != subflow:
                self._prepare()
                self.space.segment(side, dsn64, n, subflow, number)
                return
            k += 1
        if dsn64 == side.seg_high:
            side.seg_high = end
        elif dsn64 == side.hole_lo and end < side.holes[0][1]:
            side.holes[0][0] = side.hole_lo = end
        else:
            carried(side, dsn64, end)
        if n > side.max_seg:
            side.max_seg = n
        if i == nranges:
            starts.append(dsn64)
            ranges.append((dsn64, end, subflow, number))
        else:
            starts.insert(i, dsn64)
            ranges.insert(i, (dsn64, end, subflow, number))
        if nranges >= _MAX_RANGES:
            del ranges[: _MAX_RANGES // 2]
            del starts[: _MAX_RANGES // 2]

    # ------------------------------------------------------------------------------ row

    cdef void _dss_cell(self, object o, int which) except *:
        """A DSS's cell of DSS_CELLS[which], as the option table prints it."""
        if which == 0:
            self._put("2", 1)
        elif which == 1:
            self._obj(o.data_ack)
        elif which == 2:
            self._obj(o.dsn)
        elif o.dsn is not None:
            self._obj(o.ssn if which == 3 else o.data_level_length)

    cdef void _write(self, long number, object sf, unsigned int sport, unsigned int dport, long plen,
                     uint32_t tcp_seq, uint32_t tcp_ack, object conn, bint shown, object found, object info,
                     bint mapped, object payload_dsn) except *:
        cdef int i, k
        cdef Py_ssize_t ns = PyBytes_GET_SIZE(self.sep)
        cdef const char* sep = PyBytes_AS_STRING(self.sep)
        cells = None
        if found and not self.dss_cells:
            cells = self.cells_of.get(id(found))
            if cells is None or cells[0] is not found:
                cells = (found, [c.encode("utf-8", "surrogatepass") for c in self.one(found)])
                if len(self.cells_of) >= AREAS_KEPT:
                    self.cells_of.clear()
                self.cells_of[id(found)] = cells
            cells = cells[1]
        self._room(1024)
        for i in range(self.nkinds):
            if i:
                self._put(sep, ns)
            k = self.kinds[i]
            if k == K_NUMBER:
                self._uint(number)
            elif k == K_TCP_STREAM:
                self._obj(sf.index)
            elif k == K_SRCPORT:
                self._uint(sport)
            elif k == K_DSTPORT:
                self._uint(dport)
            elif k == K_TCP_LEN:
                self._uint(plen)
            elif k == K_TCP_SEQ:
                self._uint(tcp_seq)
            elif k == K_TCP_ACK:
                self._uint(tcp_ack)
            elif k == K_MPTCP_STREAM:
                if shown:
                    self._obj(conn.stream)
            elif k == K_MPTCP_DSN:
                if shown:
                    if mapped:
                        self._obj(payload_dsn)
                    elif not plen and tcp_seq == 1:
                        if conn.sides[0 if (self.ctx_d == 0) == sf.to_client_side else 1].idsn is not None:
                            self._put("1", 1)
            elif k == K_MPTCP_ACK:
                if info is not None:
                    self._obj(info.ack)
            elif k == K_DSS_DSN:
                if info is not None:
                    self._obj(info.dsn)
            elif k >= K_OPTION and self.dss_cells:
                if found:
                    self._dss_cell(found[0], self.cell_of[k - K_OPTION])
            elif k >= K_OPTION:
                if cells is not None:
                    c = cells[k - K_OPTION]
                    if PyBytes_GET_SIZE(c) > 512:
                        self._flush()
                        self.out.write(c.decode("utf-8", "surrogatepass"))
                    else:
                        self._room(PyBytes_GET_SIZE(c) + 2)
                        self._put(PyBytes_AS_STRING(c), PyBytes_GET_SIZE(c))
            self._room(64)
        self._put("\n", 1)


cdef inline uint64_t be64(const uint8_t* b) noexcept nogil:
    return (<uint64_t>be32(b) << 32) | be32(b + 4)


cdef object decode_dss_at(const uint8_t* a, Py_ssize_t n):
    """decode_dss of the ``n`` octets at ``a`` (kind 30, length ``n``, subtype DSS), or None where it
    would not give a well-formed DSS (the generated decoder then says what is wrong)."""
    cdef unsigned int flags = a[3]
    cdef Py_ssize_t p = 4
    data_ack = dsn = ssn = dll = checksum = None
    if flags & F_A:
        if flags & F_a:
            if p + 8 > n:
                return None
            data_ack = be64(a + p)
            p += 8
        else:
            if p + 4 > n:
                return None
            data_ack = be32(a + p)
            p += 4
    if flags & F_M:
        if flags & F_m:
            if p + 14 > n:
                return None
            dsn = be64(a + p)
            p += 8
        else:
            if p + 10 > n:
                return None
            dsn = be32(a + p)
            p += 4
        ssn = be32(a + p)
        dll = be16(a + p + 4)
        p += 6
        if n == p + 2:
            checksum = be16(a + p)
            p += 2
    if p != n:
        return None
    return _new_dss(a[2] & 15, _dss_flags[flags], data_ack, dsn, ssn, dll, checksum)


def decode_dss_option(bytes option):
    """The DSS in ``option`` (its octets, kind first) as this path decodes it, or None (for tests:
    it must equal the generated decoder's)."""
    if PyBytes_GET_SIZE(option) < 4:
        return None
    return decode_dss_at(<const uint8_t*>PyBytes_AS_STRING(option), PyBytes_GET_SIZE(option))
