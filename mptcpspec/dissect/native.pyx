# cython: language_level=3, boundscheck=False, cdivision=True, initializedcheck=False
"""The compiled hot path of ``dissect -T fields``: frames to rows without a Python object per packet.

The common segment (Ethernet, Linux cooked v1 or v2 or raw IPv4; IPv4 without a fragment offset;
a TCP header captured whole, ACK set and neither SYN nor RST; a subflow already known with both
initial sequence numbers seen; no MPTCP option but one DSS) is decoded here from the frame's octets,
analysed here on the analyzer's own objects (the same subflows, connection sides and mappings the
Python analysis keeps; for ``connections``, the subflow TCP analysis too, its streams' state held
in C and written back to the analyzer's objects whenever Python's feed reads them), and its row
written here.  Anything else goes through the Python pipeline
(:meth:`~mptcpspec.dissect.pipeline.Dissection.feed_frame` and the writer's row), which stays the
reference: each step below transcribes a branch of :mod:`mptcpspec.analysis.connections` and
:mod:`mptcpspec.analysis.datalevel`, and what a branch does rarely (an expert item, a gap, a
checksum) it leaves to the Python methods themselves.  tests/test_native.py shows the rows, the
connections, the expert counts and the state of the TCP analysis are the same as the pure path's
on every capture.

Built by setup.py where a C compiler exists; :mod:`mptcpspec.dissect.hotpath` loads it.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject, Py_SIZE
from cpython.tuple cimport PyTuple_GET_SIZE
from cpython.list cimport PyList_GET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLongMask
from cpython.ref cimport Py_INCREF, Py_XDECREF

from mptcpspec.analysis.datalevel import MAX_MAPPINGS
from mptcpspec.analysis.model import SIDE_NAMES, Connection, Direction, DssInfo, Mapping, Side, Subflow
from mptcpspec.analysis.seqspace import MAX_RANGES, carried, expand
from mptcpspec.analysis.tcpanalysis import FAST_RT_NS, MAX_UNACKED, OOO_NS, Flow, Stream
import os

from mptcpspec.capture.packets import decode_frame
from mptcpspec.capture.pcap import pcapng_ns
from mptcpspec.capture.stream import Input, open_input
from mptcpspec.codec import crypto
from mptcpspec.codec.crypto import Check, Verdict
from mptcpspec.codec.options import Dss
from mptcpspec.codec.runtime import fast_constructor
from mptcpspec.fsm.observer import Observer

cdef object M32 = 0xFFFFFFFF
cdef object M64 = 0xFFFFFFFFFFFFFFFF
cdef object TWO62 = 1 << 62
cdef object _Dss = Dss
cdef object _Observer = Observer
cdef object _MAX_RANGES = MAX_RANGES

cdef extern from "Python.h":
    size_t _PyLong_NumBits(object v) except? <size_t>-1


cdef extern from *:
    """
    #include <structmember.h>
    static Py_ssize_t mptcpspec_slot_offset(PyObject *descr) {
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        return m->type == T_OBJECT_EX ? m->offset : -1;
    }
    """
    Py_ssize_t mptcpspec_slot_offset(object descr)


cdef Py_ssize_t slot_offset(type cls, str name) except -1:
    """Where the slot ``name`` of ``cls``'s instances lies in them: the analyzer's objects are
    plain slotted classes, their attributes read and written here as a C structure's fields."""
    off = mptcpspec_slot_offset(cls.__dict__[name])
    if off <= 0:
        raise ImportError(f"{cls.__name__}.{name} is not a slot")
    return off


cdef object unset(object o):
    raise AttributeError(f"{type(o).__name__}: a slot is not set")


cdef inline object get(object o, Py_ssize_t off):
    """``o``'s slot at ``off`` (``o`` of the class the offset was taken from, never None)."""
    cdef PyObject* v = (<PyObject**>((<char*><PyObject*>o) + off))[0]
    if v is NULL:
        return unset(o)
    return <object>v


cdef inline void put(object o, Py_ssize_t off, object v) noexcept:
    cdef PyObject** at = <PyObject**>((<char*><PyObject*>o) + off)
    cdef PyObject* old = at[0]
    Py_INCREF(v)
    at[0] = <PyObject*>v
    Py_XDECREF(old)


cdef object _object_new = object.__new__

# The option decoders generated from spec/ (mptcpspec regen): decode_dss_at
include "native_options.pxi"

cdef object _Check = Check
cdef object VERIFIED = Verdict.VERIFIED
cdef object MISMATCH = Verdict.MISMATCH
cdef object UNVERIFIABLE = Verdict.UNVERIFIABLE


cdef inline uint64_t internet_sum(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """The sum of the big-endian 16-bit words of ``n`` octets (an odd last one padded with zero)."""
    cdef uint64_t total = 0
    cdef Py_ssize_t i = 0
    while i + 1 < n:
        total += (<uint64_t>p[i] << 8) | p[i + 1]
        i += 2
    if i < n:
        total += <uint64_t>p[i] << 8
    return total


cdef inline unsigned int fold16(uint64_t total) noexcept nogil:
    """The one's complement sum folded to 16 bits (crypto._fold: 0 only for a zero sum)."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return <unsigned int>total


cdef inline bint as_u64(object v, uint64_t* out) noexcept:
    """``v`` (an int) as a C integer, when it is one of 0 .. 2**64 - 1: False otherwise."""
    if type(v) is not int or Py_SIZE(v) < 0 or (Py_SIZE(v) > 2 and _PyLong_NumBits(v) > 64):
        return False
    out[0] = PyLong_AsUnsignedLongLongMask(v)
    return True


cdef inline uint64_t expand32(uint64_t ref, uint64_t narrow) noexcept:
    """seqspace.expand: the 64-bit number closest to ``ref`` whose low 32 bits are ``narrow``
    (modulo 2**64, as it masks)."""
    cdef uint64_t v = (ref & 0xFFFFFFFF00000000) | narrow
    if v > ref and v - ref > 0x80000000:
        v -= 0x100000000
    elif ref > v and ref - v > 0x80000000:
        v += 0x100000000
    return v


cdef object expand_any(object value, object ref):
    """seqspace.expand(value, ref): in C integers when both fit them, else the Python function."""
    cdef uint64_t r, v
    if as_u64(ref, &r) and as_u64(value, &v) and v <= 0xFFFFFFFF:
        return expand32(r, v)
    return expand(value, ref)


cdef inline bint as_i64(object v, int64_t* out) noexcept:
    """``v`` (an int) as a C integer, when it fits one: False when it does not, or is no int."""
    cdef int overflow = 0
    if type(v) is not int:
        return False
    out[0] = PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0


# Where each attribute the hot path reads or writes lies in its object (see slot_offset)
cdef Py_ssize_t CONN_checksum = slot_offset(Connection, "checksum")
cdef Py_ssize_t CONN_experts = slot_offset(Connection, "experts")
cdef Py_ssize_t CONN_fallback = slot_offset(Connection, "fallback")
cdef Py_ssize_t CONN_last_frame = slot_offset(Connection, "last_frame")
cdef Py_ssize_t CONN_sides = slot_offset(Connection, "sides")
cdef Py_ssize_t CONN_stream = slot_offset(Connection, "stream")
cdef Py_ssize_t CONN_unlinked = slot_offset(Connection, "unlinked")
cdef Py_ssize_t CONN_version = slot_offset(Connection, "version")
cdef Py_ssize_t DIR_data = slot_offset(Direction, "data")
cdef Py_ssize_t DIR_dsn_hi = slot_offset(Direction, "dsn_hi")
cdef Py_ssize_t DIR_fin = slot_offset(Direction, "fin")
cdef Py_ssize_t DIR_fin_acked = slot_offset(Direction, "fin_acked")
cdef Py_ssize_t DIR_isn = slot_offset(Direction, "isn")
cdef Py_ssize_t DIR_seen_dss = slot_offset(Direction, "seen_dss")
cdef Py_ssize_t DIR_last = slot_offset(Direction, "last")
cdef Py_ssize_t DIR_map_hi = slot_offset(Direction, "map_hi")
cdef Py_ssize_t DIR_mappings = slot_offset(Direction, "mappings")
cdef Py_ssize_t DIR_memo = slot_offset(Direction, "memo")
cdef Py_ssize_t DIR_ssn_hi = slot_offset(Direction, "ssn_hi")
cdef Py_ssize_t DIR_syn_data = slot_offset(Direction, "syn_data")
cdef Py_ssize_t DSS_checksum = slot_offset(Dss, "checksum")
cdef Py_ssize_t DSS_data_ack = slot_offset(Dss, "data_ack")
cdef Py_ssize_t DSS_data_level_length = slot_offset(Dss, "data_level_length")
cdef Py_ssize_t DSS_dsn = slot_offset(Dss, "dsn")
cdef Py_ssize_t DSS_flags = slot_offset(Dss, "flags")
cdef Py_ssize_t DSS_ssn = slot_offset(Dss, "ssn")
cdef Py_ssize_t INFO_ack = slot_offset(DssInfo, "ack")
cdef Py_ssize_t INFO_ack64 = slot_offset(DssInfo, "ack64")
cdef Py_ssize_t INFO_dsn = slot_offset(DssInfo, "dsn")
cdef Py_ssize_t INFO_dsn64 = slot_offset(DssInfo, "dsn64")
cdef Py_ssize_t MAP_checksum = slot_offset(Mapping, "checksum")
cdef Py_ssize_t MAP_buffer = slot_offset(Mapping, "buffer")
cdef Py_ssize_t MAP_data_level_length = slot_offset(Mapping, "data_level_length")
cdef Py_ssize_t MAP_dsn64 = slot_offset(Mapping, "dsn64")
cdef Py_ssize_t MAP_end = slot_offset(Mapping, "end")
cdef Py_ssize_t MAP_frame = slot_offset(Mapping, "frame")
cdef Py_ssize_t MAP_ssn = slot_offset(Mapping, "ssn")
cdef Py_ssize_t SF_closed = slot_offset(Subflow, "closed")
cdef Py_ssize_t SF_conn = slot_offset(Subflow, "conn")
cdef Py_ssize_t SF_dirs = slot_offset(Subflow, "dirs")
cdef Py_ssize_t SF_index = slot_offset(Subflow, "index")
cdef Py_ssize_t SF_retransmissions = slot_offset(Subflow, "retransmissions")
cdef Py_ssize_t SF_observer = slot_offset(Subflow, "observer")
cdef Py_ssize_t SF_to_client_side = slot_offset(Subflow, "to_client_side")
cdef Py_ssize_t SIDE_ack_ref = slot_offset(Side, "ack_ref")
cdef Py_ssize_t SIDE_checked_first = slot_offset(Side, "checked_first")
cdef Py_ssize_t SIDE_dfin = slot_offset(Side, "dfin")
cdef Py_ssize_t SIDE_dfin_acked = slot_offset(Side, "dfin_acked")
cdef Py_ssize_t SIDE_dsn_ref = slot_offset(Side, "dsn_ref")
cdef Py_ssize_t SIDE_first_dsn = slot_offset(Side, "first_dsn")
cdef Py_ssize_t SIDE_high = slot_offset(Side, "high")
cdef Py_ssize_t SIDE_hole_lo = slot_offset(Side, "hole_lo")
cdef Py_ssize_t SIDE_holes = slot_offset(Side, "holes")
cdef Py_ssize_t SIDE_idsn = slot_offset(Side, "idsn")
cdef Py_ssize_t SIDE_max_seg = slot_offset(Side, "max_seg")
cdef Py_ssize_t SIDE_ranges = slot_offset(Side, "ranges")
cdef Py_ssize_t SIDE_seg_high = slot_offset(Side, "seg_high")
cdef Py_ssize_t SIDE_seg_low = slot_offset(Side, "seg_low")
cdef Py_ssize_t SIDE_starts = slot_offset(Side, "starts")

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
    T_PSH = 0x08
    T_ACK = 0x10
    T_URG = 0x20

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

cdef const char* DIGIT_PAIRS = (
    b"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    b"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    b"8081828384858687888990919293949596979899"
)
DEF OUT_SIZE = 1 << 16
DEF FLOW_SLOTS = 64  # subflows by addresses and ports, direct-mapped in front of the analyzer's dict
DEF DSS_SLOTS = 64  # DSS options by their octets, direct-mapped in front of dss_cache


cdef struct FlowSlot:
    uint8_t key[12]  # source and destination addresses, then the ports, as on the wire
    PyObject* hit  # (subflow, direction), owned; NULL: empty


cdef struct DssSlot:
    Py_ssize_t n
    uint8_t octets[40]
    PyObject* found  # (the DSS,), owned; NULL: empty
DEF CHUNK = 1 << 20  # octets read at a time
DEF MAX_RECORD = 1 << 24  # as the capture reader: longer is corrupt framing
DEF MAX_FIELDS = 64
DEF AREAS_KEPT = 4096


cdef inline uint32_t be32(const uint8_t* b) noexcept nogil:
    return (<uint32_t>b[0] << 24) | (<uint32_t>b[1] << 16) | (<uint32_t>b[2] << 8) | b[3]


cdef inline unsigned int be16(const uint8_t* b) noexcept nogil:
    return (<unsigned int>b[0] << 8) | b[1]


cdef inline uint32_t rd32(const uint8_t* b, bint swapped) noexcept nogil:
    """A 32-bit field of a capture file: little-endian, or big-endian when ``swapped``."""
    if swapped:
        return be32(b)
    return b[0] | (<uint32_t>b[1] << 8) | (<uint32_t>b[2] << 16) | (<uint32_t>b[3] << 24)


cdef inline unsigned int rd16(const uint8_t* b, bint swapped) noexcept nogil:
    if swapped:
        return be16(b)
    return b[0] | (<unsigned int>b[1] << 8)


def _reopen(source):
    """The capture file of ``source`` opened again from its start, or None (standard input, a
    stream, frames of a live capture)."""
    if isinstance(source, Input):
        if source.name == "-" or not os.path.isfile(source.name):
            return None
        return source.reopen()
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        return open_input(os.fspath(source))
    return None


# ------------------------------------------------------------------ the subflow TCP analysis
#
# mptcpspec.analysis.tcpanalysis.TcpAnalyzer.feed, for the segments of this path that need nothing
# it does only rarely: ACK set, no SYN, RST or urgent data, a stream it already follows.
# Only what feed keeps is written (the flows' and the stream's state, the retransmission counts);
# the TcpAnalysis it returns is not made: no output of a run taken here shows it.

cdef Py_ssize_t FLOW_base_seq = slot_offset(Flow, "base_seq")
cdef Py_ssize_t FLOW_base_set = slot_offset(Flow, "base_set")
cdef Py_ssize_t FLOW_win_scale = slot_offset(Flow, "win_scale")
cdef Py_ssize_t FLOW_window = slot_offset(Flow, "window")
cdef Py_ssize_t FLOW_first_ack = slot_offset(Flow, "first_ack")
cdef Py_ssize_t FLOW_nextseq = slot_offset(Flow, "nextseq")
cdef Py_ssize_t FLOW_nextseqframe = slot_offset(Flow, "nextseqframe")
cdef Py_ssize_t FLOW_nextseqtime = slot_offset(Flow, "nextseqtime")
cdef Py_ssize_t FLOW_maxseqtobeacked = slot_offset(Flow, "maxseqtobeacked")
cdef Py_ssize_t FLOW_lastack = slot_offset(Flow, "lastack")
cdef Py_ssize_t FLOW_lastacktime = slot_offset(Flow, "lastacktime")
cdef Py_ssize_t FLOW_lastnondupack = slot_offset(Flow, "lastnondupack")
cdef Py_ssize_t FLOW_dupacknum = slot_offset(Flow, "dupacknum")
cdef Py_ssize_t FLOW_segments = slot_offset(Flow, "segments")
cdef Py_ssize_t FLOW_valid_bif = slot_offset(Flow, "valid_bif")
cdef Py_ssize_t FLOW_push_bytes = slot_offset(Flow, "push_bytes")
cdef Py_ssize_t FLOW_push_last = slot_offset(Flow, "push_last")
cdef Py_ssize_t FLOW_lastflags = slot_offset(Flow, "lastflags")
cdef Py_ssize_t FLOW_sacks = slot_offset(Flow, "sacks")
cdef Py_ssize_t FLOW_mp_ops = slot_offset(Flow, "mp_ops")
cdef Py_ssize_t FLOW_ordered = slot_offset(Flow, "ordered")
cdef Py_ssize_t FLOW_closing = slot_offset(Flow, "closing")
cdef Py_ssize_t STREAM_flows = slot_offset(Stream, "flows")
cdef Py_ssize_t STREAM_prev = slot_offset(Stream, "prev")
cdef Py_ssize_t STREAM_mru_syn = slot_offset(Stream, "mru_syn")
cdef Py_ssize_t STREAM_first_rtt = slot_offset(Stream, "first_rtt")

cdef object NO_SACKS = ()
cdef int64_t C_MAX_UNACKED = MAX_UNACKED
cdef int64_t C_FAST_RT_NS = FAST_RT_NS
cdef int64_t C_OOO_NS = OOO_NS
cdef long DSS_OP_BIT = 1 << Dss.SUBTYPE  # a DSS's bit of mp_operations

# TcpFlag's bits (Wireshark's TCP_A_*)
cdef enum:
    A_RETRANS = 0x0001
    A_LOST = 0x0002
    A_ACK_LOST = 0x0004
    A_KA = 0x0008
    A_DUP = 0x0010
    A_ZW = 0x0020
    A_ZWP = 0x0040
    A_ZWPA = 0x0080
    A_KAA = 0x0100
    A_OOO = 0x0200
    A_FAST = 0x0400
    A_WU = 0x0800
    A_WF = 0x1000
    A_SPUR = 0x4000
    A_ANY_RETRANS = A_RETRANS | A_FAST | A_SPUR


cdef inline bint plain_options(const uint8_t* raw, Py_ssize_t n) noexcept nogil:
    """feed's test for an options area it need not scan: none; or NOP, NOP, timestamps, then
    nothing, or an MPTCP option and nothing but NOPs after it."""
    cdef Py_ssize_t end, i
    if n == 0:
        return True
    if n < 12 or raw[0] != 1 or raw[1] != 1 or raw[2] != 8 or raw[3] != 10:
        return False
    if n == 12:
        return True
    if n <= 13 or raw[12] != 30:
        return False
    end = 12 + raw[13]
    for i in range(end, n):
        if raw[i] != 1:
            return False
    return True


cdef inline bint before(uint32_t a, uint32_t b) noexcept nogil:
    """(a - b) mod 2**32 >= 2**31: Wireshark's LT_SEQ with the equal case kept apart by callers."""
    return <uint32_t>(a - b) >= 0x80000000u


cdef struct Seg:
    # an unacknowledged segment: tcpanalysis.Flow.segments' [seq, nextseq, frame, time]
    uint32_t seq
    uint32_t nxt
    int64_t frame
    int64_t time


cdef struct CFlow:
    # tcpanalysis.Flow as C fields (its sacks stay on the Python object)
    uint32_t base_seq
    uint32_t nextseq
    uint32_t maxseqtobeacked
    uint32_t lastack
    int64_t nextseqframe
    int64_t nextseqtime
    int64_t lastacktime
    int64_t lastnondupack
    int64_t push_bytes
    long window
    long dupacknum
    long lastflags
    long mp_ops
    int win_scale
    bint base_set
    bint first_ack
    bint valid_bif
    bint push_last
    bint closing
    bint ordered
    Seg* segs  # segs[head:head + n], oldest first
    Py_ssize_t head
    Py_ssize_t n
    Py_ssize_t cap


cdef inline object py_bool(bint v):
    return True if v else False


cdef class Mirror:
    """A TCP stream's analysis state (a tcpanalysis.Stream and its two Flows) as C fields, for the
    segments tcp_feed takes.  Made from the Python objects when tcp_feed first meets the stream,
    written back to them (:meth:`store`) before Python's feed reads the stream and at the end of a
    run.  Written through at once: a flow's base (TcpAnalyzer.ends reads it from another stream),
    its SACK blocks and the stream's times."""

    cdef CFlow f[2]
    cdef object st
    cdef tuple flows
    cdef int64_t first_rtt, mru_syn

    def __cinit__(self, st):
        self.st = st
        self.flows = <tuple>get(st, STREAM_flows)
        self.first_rtt = get(st, STREAM_first_rtt)
        self.mru_syn = get(st, STREAM_mru_syn)
        cdef int i
        cdef CFlow* f
        cdef Py_ssize_t k, n
        for i in range(2):
            o = self.flows[i]
            f = &self.f[i]
            f.base_seq = get(o, FLOW_base_seq)
            f.nextseq = get(o, FLOW_nextseq)
            f.maxseqtobeacked = get(o, FLOW_maxseqtobeacked)
            f.lastack = get(o, FLOW_lastack)
            f.nextseqframe = get(o, FLOW_nextseqframe)
            f.nextseqtime = get(o, FLOW_nextseqtime)
            f.lastacktime = get(o, FLOW_lastacktime)
            f.lastnondupack = get(o, FLOW_lastnondupack)
            f.push_bytes = get(o, FLOW_push_bytes)
            f.window = get(o, FLOW_window)
            f.dupacknum = get(o, FLOW_dupacknum)
            f.lastflags = get(o, FLOW_lastflags)
            f.mp_ops = get(o, FLOW_mp_ops)
            f.win_scale = get(o, FLOW_win_scale)
            f.base_set = get(o, FLOW_base_set) is True
            f.first_ack = get(o, FLOW_first_ack) is True
            f.valid_bif = get(o, FLOW_valid_bif) is True
            f.push_last = get(o, FLOW_push_last) is True
            f.closing = get(o, FLOW_closing) is True
            f.ordered = get(o, FLOW_ordered) is True
            segs = <list>get(o, FLOW_segments)
            n = len(segs)
            f.cap = n * 2 if n > 8 else 16
            f.segs = <Seg*>PyMem_Malloc(f.cap * sizeof(Seg))
            if f.segs is NULL:
                raise MemoryError()
            f.head = 0
            f.n = n
            for k in range(n):
                e = <list>segs[k]
                f.segs[k].seq = e[0]
                f.segs[k].nxt = e[1]
                f.segs[k].frame = e[2]
                f.segs[k].time = e[3]

    def __dealloc__(self):
        cdef int i
        for i in range(2):
            PyMem_Free(self.f[i].segs)
            self.f[i].segs = NULL

    cdef void store(self) except *:
        """The C fields back into the Python objects."""
        cdef int i
        cdef CFlow* f
        cdef Seg* s
        cdef Py_ssize_t k
        for i in range(2):
            o = self.flows[i]
            f = &self.f[i]
            put(o, FLOW_base_seq, f.base_seq)
            put(o, FLOW_nextseq, f.nextseq)
            put(o, FLOW_maxseqtobeacked, f.maxseqtobeacked)
            put(o, FLOW_lastack, f.lastack)
            put(o, FLOW_nextseqframe, f.nextseqframe)
            put(o, FLOW_nextseqtime, f.nextseqtime)
            put(o, FLOW_lastacktime, f.lastacktime)
            put(o, FLOW_lastnondupack, f.lastnondupack)
            put(o, FLOW_push_bytes, f.push_bytes)
            put(o, FLOW_window, f.window)
            put(o, FLOW_dupacknum, f.dupacknum)
            put(o, FLOW_lastflags, f.lastflags)
            put(o, FLOW_mp_ops, f.mp_ops)
            put(o, FLOW_win_scale, f.win_scale)
            put(o, FLOW_base_set, py_bool(f.base_set))
            put(o, FLOW_first_ack, py_bool(f.first_ack))
            put(o, FLOW_valid_bif, py_bool(f.valid_bif))
            put(o, FLOW_push_last, py_bool(f.push_last))
            put(o, FLOW_closing, py_bool(f.closing))
            put(o, FLOW_ordered, py_bool(f.ordered))
            segs = []
            for k in range(f.head, f.head + f.n):
                s = &f.segs[k]
                segs.append([s.seq, s.nxt, s.frame, s.time])
            put(o, FLOW_segments, segs)


cdef int seg_append(CFlow* f, uint32_t seq, uint32_t nxt, int64_t frame, int64_t time) except -1:
    cdef Seg* grown
    if f.head + f.n == f.cap:
        if f.head:
            memmove(f.segs, f.segs + f.head, f.n * sizeof(Seg))
            f.head = 0
        else:
            grown = <Seg*>PyMem_Realloc(f.segs, f.cap * 2 * sizeof(Seg))
            if grown is NULL:
                raise MemoryError()
            f.segs = grown
            f.cap *= 2
    cdef Seg* s = &f.segs[f.head + f.n]
    s.seq = seq
    s.nxt = nxt
    s.frame = frame
    s.time = time
    f.n += 1
    return 0


cdef int tcp_feed(dict streams, dict mirrors, dict mp_ops, list last, int64_t number, object ts_obj, int64_t ts,
                  object sf, int d, object conn, object found, const uint8_t* opts, Py_ssize_t nopt, uint32_t seq,
                  uint32_t ack, unsigned int flags, unsigned int window, unsigned int urgent, long seglen) except -1:
    """TcpAnalyzer.feed of one segment where it need not leave C for anything: 1 when done, 0 (nothing
    changed) where the Python analysis must take it.  The stream's state is its Mirror in
    ``mirrors`` (by stream number), made on first use.  ``last``: [subflow, its stream's mirror,
    connection, its mp_operations] of the call before (the connection's operations change here or
    in Python's feed, after which the engine forgets them)."""
    if flags & (T_SYN | T_RST | T_URG) or not flags & T_ACK or urgent:
        return 0
    cdef bint fin = flags & T_FIN
    cdef Mirror mi
    if last[0] is sf:
        mi = <Mirror>last[1]
    else:
        index = get(sf, SF_index)
        found_mi = mirrors.get(index)
        if found_mi is None:
            st = streams.get(index)
            if st is None:
                return 0
            found_mi = mirrors[index] = Mirror(st)
        mi = <Mirror>found_mi
        last[0] = sf
        last[1] = mi
    cdef CFlow* fw = &mi.f[d]
    cdef CFlow* rv = &mi.f[1 - d]
    fwd = mi.flows[d]
    if get(fwd, FLOW_sacks) is not NO_SACKS:
        put(fwd, FLOW_sacks, NO_SACKS)
    put(mi.st, STREAM_prev, ts_obj)
    cdef long mp = -1
    mp_obj = None
    if conn is not None:
        if last[2] is conn:
            mp_obj = last[3]
        else:
            mp_obj = mp_ops.get(conn, 0)
            last[2] = conn
            last[3] = mp_obj
        mp = mp_obj
    # _analyze
    cdef unsigned int ta = 0
    if not fw.base_set:
        fw.base_seq = <uint32_t>(seq - 1)
        fw.base_set = True
        put(fwd, FLOW_base_seq, fw.base_seq)
        put(fwd, FLOW_base_set, True)
    if not rv.base_set:
        rv.base_seq = <uint32_t>(ack - 1)
        rv.base_set = True
        rev = mi.flows[1 - d]
        put(rev, FLOW_base_seq, rv.base_seq)
        put(rev, FLOW_base_set, True)
    rv.valid_bif = True
    cdef uint32_t nextseq = fw.nextseq
    cdef uint32_t lastack = fw.lastack
    cdef long fwd_window = fw.window
    cdef long rev_window = rv.window
    cdef long shift, rev_ws
    cdef bint plain, not_advanced
    cdef uint32_t m, rl, nxt, cur, rev_next
    cdef int64_t t, thr
    if not (seglen == 1 and seq == nextseq and rev_window == 0):
        if window == 0 and not fin:
            ta |= A_ZW
        if nextseq and before(nextseq, seq) and seq != nextseq:
            ta |= A_LOST
            fw.valid_bif = False
        if seglen <= 1 and seq == <uint32_t>(nextseq - 1) and not fin:
            ta |= A_KA
        if not seglen and window and window != fwd_window and seq == nextseq and ack == lastack and not fin:
            ta |= A_WU
        if seglen and not fin:
            rev_ws = rv.win_scale
            if rev_ws != -1:
                shift = 0 if rv.first_ack or rev_ws == -2 else rev_ws
                if <uint32_t>(seq + seglen) == <uint32_t>(rv.lastack + (<uint64_t>rev_window << shift)):
                    ta |= A_WF
        plain = not seglen and seq == nextseq and ack == lastack and not fin
        if plain and window and window == fwd_window and rv.lastflags & A_KA:
            ta |= A_KAA
        elif plain and window == 0 and fwd_window == 0 and rv.lastflags & A_ZWP:
            ta |= A_ZWPA
        elif plain and window and window == fwd_window:
            if mp < 0 or mp == fw.mp_ops:
                fw.dupacknum = 1 if fw.dupacknum == -1 else fw.dupacknum + 1
                ta |= A_DUP
    else:
        ta |= A_ZWP
    # finished_fwd
    if ack != lastack:
        fw.lastnondupack = number
        fw.dupacknum = 0
    m = rv.maxseqtobeacked
    if m and before(m, ack):
        rev_next = rv.nextseq
        if m < rev_next:
            rv.maxseqtobeacked = rev_next
            ta |= A_ACK_LOST
        else:
            if rv.dupacknum == 0:
                ta |= A_ACK_LOST
            rv.dupacknum = -1
    if seglen or fin:
        not_advanced = nextseq != 0 and before(seq, nextseq)
        if not ta & A_KA:
            if seglen > 1 and <uint32_t>(nextseq - 1) == seq:
                not_advanced = False
            rl = rv.lastack
            if seglen and rl and (before(<uint32_t>(seq + seglen), rl) or <uint32_t>(seq + seglen) == rl):
                ta |= A_SPUR
            elif not_advanced:  # (each test below needs it)
                t = ts - rv.lastacktime
                if rv.dupacknum >= 2 and rl == seq and 0 <= t < C_FAST_RT_NS:
                    ta |= A_FAST
                else:
                    t = ts - fw.nextseqtime
                    thr = mi.first_rtt
                    if not thr:
                        thr = C_OOO_NS
                    if 0 <= t < thr and nextseq != <uint32_t>(seq + seglen + fin):
                        ta |= A_OOO
                    else:
                        ta |= A_RETRANS
    # finished_checking_retransmission_type
    nxt = <uint32_t>(seq + seglen)
    cdef uint32_t base
    cdef Seg* top
    if (seglen or fin) and fw.n < C_MAX_UNACKED:
        if fin:
            nxt += 1
        if fw.n and fw.ordered:
            top = &fw.segs[fw.head + fw.n - 1]
            base = fw.base_seq
            if not (
                not before(seq, top.seq)
                and not before(nxt, top.nxt)
                and <uint32_t>(seq - base) >= <uint32_t>(top.seq - base)
                and <uint32_t>(nxt - base) >= <uint32_t>(top.nxt - base)
            ):
                fw.ordered = False
        seg_append(fw, seq, nxt, number, ts)
    if not ta & A_ZWP:
        cur = fw.nextseq
        if (before(cur, nxt) and cur != nxt) or not cur:
            fw.nextseq = nxt
            fw.nextseqframe = number
            fw.nextseqtime = ts
        m = fw.maxseqtobeacked
        if seq == m or not m:
            fw.maxseqtobeacked = fw.nextseq
    fw.window = window
    fw.lastack = ack
    fw.lastacktime = ts
    if mp >= 0:
        fw.mp_ops = mp
    fw.lastflags = ta
    # the segments this acknowledges
    if rv.n:
        if rv.ordered:
            acked_ordered(rv, ack)
        else:
            acked(rv, ack)
        if not rv.n:
            rv.ordered = True
    # bytes in flight: only the octets pushed are kept
    if seglen and fw.n and fw.valid_bif:
        if flags & T_PSH:
            fw.push_bytes = seglen if fw.push_last else fw.push_bytes + seglen
            fw.push_last = True
        elif fw.push_last:
            fw.push_bytes = seglen
            fw.push_last = False
        else:
            fw.push_bytes += seglen
    # feed, after _analyze
    if not mi.first_rtt and mi.mru_syn:
        mi.first_rtt = ts - mi.mru_syn
        put(mi.st, STREAM_first_rtt, mi.first_rtt)
    if fin and not rv.closing:  # _header_experts: the side that closes first
        fw.closing = True
    fw.first_ack = False
    if not plain_options(opts, nopt):
        options(opts, nopt, fw, fwd, rv.base_seq)
    if found and conn is not None and mp != 0xFF:
        if mp | DSS_OP_BIT != mp:
            mp_ops[conn] = last[3] = mp | DSS_OP_BIT
            last[2] = conn
    if ta & A_ANY_RETRANS:
        counts = get(sf, SF_retransmissions)
        (<list>counts)[d] += 1
    return 1


cdef void options(const uint8_t* raw, Py_ssize_t n, CFlow* fw, object fwd, uint32_t base) except *:
    """tcpanalysis._options on a segment without SYN: what it keeps of the window scale and SACK
    options (their last blocks, relative to the other direction's base; D-SACK is an expert item
    only, TCP Fast Open a SYN's).  The walk is _scan's: it stops at the end of the option list and
    at a length that does not fit."""
    cdef Py_ssize_t i = 0, ln, j, sack = -1, sack_len = 0
    cdef int ws = -1
    while i < n:
        if raw[i] == 0:
            break
        if raw[i] == 1:
            i += 1
            continue
        if i + 1 >= n:
            break
        ln = raw[i + 1]
        if ln < 2 or i + ln > n:
            break
        if raw[i] == 3 and ln == 3:
            ws = raw[i + 2]
        elif raw[i] == 5:
            sack = i
            sack_len = ln
        i += ln
    if ws >= 0:
        fw.win_scale = ws if ws < 14 else 14
    if sack >= 0 and sack_len >= 10:
        blocks = []
        j = sack + 2
        while j < sack + sack_len - 7 and len(blocks) < 3:
            blocks.append((<uint32_t>(be32(raw + j) - base), <uint32_t>(be32(raw + j + 4) - base)))
            j += 8
        put(fwd, FLOW_sacks, blocks)


cdef void acked_ordered(CFlow* f, uint32_t ack) noexcept:
    """tcpanalysis._acked_ordered: the segments ``ack`` acknowledges are the head."""
    cdef Py_ssize_t k = 0
    cdef Seg* s
    while k < f.n and not before(ack, f.segs[f.head + k].nxt):  # those that end after ack are kept
        k += 1
    f.head += k
    f.n -= k
    if not f.n:
        f.head = 0
    for k in range(f.head, f.head + f.n):
        s = &f.segs[k]
        if not before(s.seq, ack):
            break
        s.seq = ack


cdef void acked(CFlow* f, uint32_t ack) noexcept:
    """tcpanalysis._acked: the segments ``ack`` acknowledges removed, those it acknowledges in part
    trimmed, the rest kept in order."""
    cdef Py_ssize_t k, j = f.head
    cdef Seg* s
    for k in range(f.head, f.head + f.n):
        s = &f.segs[k]
        if ack == s.nxt:
            continue
        if before(s.seq, ack) and not before(s.nxt, ack):  # ack inside the segment
            s.seq = ack
        elif not before(ack, s.nxt):  # ends before ack
            continue
        if j != k:
            f.segs[j] = s[0]
        j += 1
    f.n = j - f.head
    if not f.n:
        f.head = 0


cdef class FieldsEngine:
    """One ``-T fields`` run over a :class:`~mptcpspec.dissect.pipeline.Dissection`."""

    cdef object dis, analyzer, clock, out, row, one, areas, ctx, reader, mappings, space
    cdef dict flows, area_cache
    cdef object counts, experts, table, tcp_feed
    cdef dict tcp_streams, tcp_mp_ops, tcp_mirrors
    cdef list tcp_last
    cdef dict cells_of, dss_cache
    cdef bint dss_cells  # every option field asked for is in DSS_CELLS: cells from the DSS itself
    cdef int cell_of[MAX_FIELDS]  # K_OPTION + i: its index in DSS_CELLS
    cdef int nkinds
    cdef int kinds[MAX_FIELDS]
    cdef FlowSlot flow_slots[FLOW_SLOTS]
    cdef DssSlot dss_slots[DSS_SLOTS]
    cdef bytes sep
    cdef bint verify
    cdef char buf[OUT_SIZE]
    cdef Py_ssize_t used
    cdef long tcp_count
    cdef public long taken  #: frames this path took (the rest went through the Python pipeline)
    cdef public long tcp_taken  #: of those, the frames whose subflow TCP analysis was made here
    cdef bint first_seen
    cdef object first_ns, prev_ns
    # the packet at hand (fast path)
    cdef long number
    cdef object ctx_sf
    cdef int ctx_d
    cdef bint ctx_ready
    cdef int linktype
    cdef object ts
    cdef const uint8_t* cur
    cdef Py_ssize_t curn
    cdef long frames
    cdef int iface
    cdef public long records  #: records this path read itself
    cdef bytes chunk
    cdef Py_ssize_t pos, offset
    cdef bytes mine  # None: every frame; else 1 for each frame of this share (dissect -j)
    cdef object skip

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
        self.table = hot.table
        self.verify = bool(hot.ctx.verify)
        self.counts = an.counts
        self.experts = an.experts
        self.out = writer.out if writer is not None else None  # None: no rows (connections)
        self.sep = writer.sep.encode() if writer is not None else b""
        # the subflow TCP analysis, when on (connections' retransmissions): fed as feed_tcp feeds it
        self.tcp_feed = an.tcp.feed if an.tcp.enabled else None
        self.tcp_streams = an.tcp.streams
        self.tcp_mp_ops = an.tcp.mp_ops
        self.tcp_mirrors = {}  # stream number -> its Mirror: the state tcp_feed keeps in C
        self.tcp_last = [None, None, None, None]
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

    def only(self, bytes mine, skip):
        """Analyse only the frames whose octet in ``mine`` is 1 (a share of ``dissect -j``): each other
        frame is counted and timed, ``skip(number)`` is told of it, and it has no row."""
        self.mine = mine
        self.skip = skip

    def __dealloc__(self):
        self._forget_flows()
        cdef int i
        for i in range(DSS_SLOTS):
            Py_XDECREF(self.dss_slots[i].found)
            self.dss_slots[i].found = NULL

    cdef void _forget_flows(self) noexcept:
        """Empty the flow slots: the Python path may have changed the analyzer's subflows by flow."""
        cdef int i
        for i in range(FLOW_SLOTS):
            if self.flow_slots[i].hit != NULL:
                Py_XDECREF(self.flow_slots[i].hit)
                self.flow_slots[i].hit = NULL

    # ------------------------------------------------------------------------------ output

    cdef inline int _flush(self) except -1:
        if self.used and self.out is not None:
            self.out.write(PyBytes_FromStringAndSize(self.buf, self.used).decode("utf-8", "surrogatepass"))
            self.used = 0

    cdef inline int _room(self, Py_ssize_t n) except -1:
        if self.used + n > OUT_SIZE:
            self._flush()

    cdef inline void _put(self, const char* s, Py_ssize_t n) noexcept:
        memcpy(self.buf + self.used, s, n)
        self.used += n

    cdef inline void _uint(self, uint64_t v) noexcept:
        cdef char tmp[24]
        cdef int i = 24
        cdef unsigned int two
        while v >= 100:  # two digits at a time
            two = <unsigned int>(v % 100) * 2
            v //= 100
            i -= 2
            tmp[i] = DIGIT_PAIRS[two]
            tmp[i + 1] = DIGIT_PAIRS[two + 1]
        if v >= 10:
            two = <unsigned int>v * 2
            i -= 2
            tmp[i] = DIGIT_PAIRS[two]
            tmp[i + 1] = DIGIT_PAIRS[two + 1]
        else:
            i -= 1
            tmp[i] = <char>(48 + v)
        memcpy(self.buf + self.used, tmp + i, 24 - i)
        self.used += 24 - i

    cdef inline int _obj(self, object v) except -1:
        """A Python int (or None: nothing) as decimal."""
        if v is None:
            return 0
        if type(v) is int and Py_SIZE(v) >= 0 and (Py_SIZE(v) <= 2 or _PyLong_NumBits(v) <= 64):
            self._uint(PyLong_AsUnsignedLongLongMask(v))  # a non-negative int of 64 bits at most: exact
            return 0
        s = str(v).encode()
        self._put(PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s))
        return 0

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
        pipeline leaves them.  A capture file is read here, the compressed forms too; where the
        file holds anything this reader does not take (or is damaged), the capture's own reader
        takes over from the same record, and says what the Python pipeline would."""
        dis = self.dis
        self.frames = dis.frames
        tcp = self.analyzer.tcp
        if self.tcp_feed is not None:
            tcp.on_feed = self._tcp_fed  # Python's feed: the stream's state written back first
        try:
            f = _reopen(dis.source)
            clean = False
            if f is not None:
                with f:
                    # a compressed stream that ended early is damage the capture's reader reports
                    clean = self._read(f) and getattr(f, "damage", None) is None
            if not clean:
                skip = self.records
                for batch in dis.reader.batches():
                    for frame in batch:
                        if skip:
                            skip -= 1
                            continue
                        self._frame(frame)
        finally:
            if self.tcp_feed is not None:
                tcp.on_feed = None
                self._tcp_store()
            dis.frames = self.frames
            self.prev_ns_sync()
            if self.tcp_count:
                self.counts["TCP"] += self.tcp_count
                self.tcp_count = 0
            self._flush()

    cdef void _frame(self, tuple frame) except *:
        """A frame as the capture's reader gives it."""
        ts, linktype, data, orig_len, _, _ = frame
        cdef bytes b = data
        self._take(ts, linktype, <const uint8_t*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), orig_len, frame)

    cdef void _take(self, object ts, int linktype, const uint8_t* data, Py_ssize_t n, object orig_len,
                    object frame) except *:
        """Frame ``self.frames + 1``: this path's, or the Python pipeline's (``frame``: the reader's
        tuple of it, made here when None)."""
        self.frames += 1
        cdef long number = self.frames
        if not self.first_seen:
            self.first_seen = True
            if self.clock.first_ns is None:
                self.clock.first_ns = ts
        if self.mine is not None and (number > PyBytes_GET_SIZE(self.mine) or not self.mine[number - 1]):
            self.skip(number)
            self.prev_ns = ts
            return
        self.ts = ts
        self.linktype = linktype
        self.cur = data
        self.curn = n
        if self._fast(number, linktype, data, n):
            self.taken += 1
            self.prev_ns = ts
            return
        self.prev_ns_sync()
        self._forget_flows()
        self.tcp_last[2] = None  # the Python analysis may change the connection's mp_operations
        dis = self.dis
        if frame is None:
            frame = (ts, linktype, PyBytes_FromStringAndSize(<const char*>data, n), orig_len, self.iface, False)
        dis.frames = number
        dis.frame = frame
        info = dis.feed_frame(number, frame)
        if self.row is not None:
            self._python_row(self.row(info))

    # --------------------------------------------------------------------------- reading

    cdef bint _more(self, object f, Py_ssize_t need) except -1:
        """At least ``need`` octets from the position on in the chunk: False at the end of the file."""
        cdef Py_ssize_t have = PyBytes_GET_SIZE(self.chunk) - self.pos
        if have >= need:
            return True
        add = f.read(max(CHUNK, need - have))
        if not add:
            return False
        self.offset += self.pos
        self.chunk = self.chunk[self.pos :] + add
        self.pos = 0
        return PyBytes_GET_SIZE(self.chunk) >= need or self._more(f, need)

    cdef bint _read(self, object f) except -1:
        """Read the capture from ``f``: True when read to its end, False when it stopped before a
        record it leaves to the capture's reader (``self.records`` were taken)."""
        self.chunk = b""
        self.pos = 0
        self.offset = 0
        if not self._more(f, 24):
            return False
        cdef const uint8_t* b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
        cdef uint32_t magic = b[0] | (<uint32_t>b[1] << 8) | (<uint32_t>b[2] << 16) | (<uint32_t>b[3] << 24)
        if magic == 0xA1B2C3D4 or magic == 0xA1B23C4D:
            return self._pcap(f, False, magic == 0xA1B23C4D)
        if magic == 0xD4C3B2A1 or magic == 0x4D3CB2A1:
            return self._pcap(f, True, magic == 0x4D3CB2A1)
        if magic == 0x0A0D0D0A:
            return self._pcapng(f)
        return False

    cdef bint _pcap(self, object f, bint swapped, bint nanos) except -1:
        cdef const uint8_t* b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
        if rd16(b + 4, swapped) != 2:
            return False
        cdef int linktype = rd32(b + 20, swapped) & 0xFFFF
        cdef int64_t scale = 1 if nanos else 1000
        cdef uint32_t sec, frac, incl, orig
        cdef Py_ssize_t size, p
        self.pos = 24
        reader = self.dis.reader
        while True:
            size = PyBytes_GET_SIZE(self.chunk)
            if size - self.pos < 16:
                if not self._more(f, 16):
                    if PyBytes_GET_SIZE(self.chunk) - self.pos:
                        return False  # a record header cut short: the reader says so
                    break
                size = PyBytes_GET_SIZE(self.chunk)
            b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
            p = self.pos
            sec = rd32(b + p, swapped)
            frac = rd32(b + p + 4, swapped)
            incl = rd32(b + p + 8, swapped)
            orig = rd32(b + p + 12, swapped)
            if incl > MAX_RECORD:
                return False
            if size - p - 16 < incl:
                if not self._more(f, 16 + incl):
                    return False
                b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
                p = self.pos
            self.pos = p + 16 + incl
            self.records += 1
            self._take(<int64_t>sec * 1000000000 + <int64_t>frac * scale, linktype, b + p + 16, incl, orig, None)
        reader.linktypes.add(linktype)
        reader.format = "pcap"
        reader.records = self.records
        return True

    cdef bint _pcapng(self, object f) except -1:
        cdef const uint8_t* b
        cdef bint swapped = False
        cdef uint32_t btype, blen, iface, caplen, orig, bom
        cdef Py_ssize_t p, q, olen, body
        cdef bint first = True
        cdef uint64_t ts
        ifaces = []  # (linktype, resolution, offset in seconds)
        reader = self.dis.reader
        skipped = 0
        linktypes = set()
        while True:
            if not self._more(f, 12):
                if PyBytes_GET_SIZE(self.chunk) - self.pos:
                    return False
                break
            b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
            p = self.pos
            btype = rd32(b + p, swapped)
            if btype == 0x0A0D0D0A:
                if not first:
                    return False  # a second section: the reader's
                bom = rd32(b + p + 8, False)
                if bom == 0x1A2B3C4D:
                    swapped = False
                elif bom == 0x4D3C2B1A:
                    swapped = True
                else:
                    return False
            elif first:
                return False
            blen = rd32(b + p + 4, swapped)
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                return False
            if not self._more(f, blen):
                return False
            b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
            p = self.pos
            if rd32(b + p + blen - 4, swapped) != blen:
                return False
            first = False
            if btype == 1:  # Interface Description Block
                if blen - 12 < 8:
                    return False
                linktype = rd16(b + p + 8, swapped)
                resol, tsoffset = 6, 0
                q = p + 16
                body = p + blen - 4
                while q + 4 <= body:
                    code = rd16(b + q, swapped)
                    olen = rd16(b + q + 2, swapped)
                    if code == 0:
                        break
                    if (code == 9 and olen >= 1 and q + 4 >= body) or (code == 14 and olen >= 8 and q + 12 > body):
                        return False  # an option value past the block: the reader's
                    if code == 9 and olen >= 1:
                        resol = b[q + 4]
                    elif code == 14 and olen >= 8:
                        tsoffset = <int64_t>((<uint64_t>rd32(b + q + 4 + (0 if swapped else 4), swapped) << 32)
                                             | rd32(b + q + 4 + (4 if swapped else 0), swapped))
                    q += 4 + ((olen + 3) & ~3)
                ifaces.append((linktype, resol, tsoffset))
                linktypes.add(linktype)
                self.pos = p + blen
            elif btype == 6:  # Enhanced Packet Block
                if blen < 32:
                    return False
                iface = rd32(b + p + 8, swapped)
                if iface >= len(ifaces):
                    return False
                caplen = rd32(b + p + 20, swapped)
                orig = rd32(b + p + 24, swapped)
                if caplen > blen - 32:
                    return False
                ts = (<uint64_t>rd32(b + p + 12, swapped) << 32) | rd32(b + p + 16, swapped)
                linktype, resol, tsoffset = ifaces[iface]
                if resol == 6 and tsoffset == 0 and ts < 9000000000000000:
                    ns = <int64_t>ts * 1000
                elif resol == 9 and tsoffset == 0 and ts < 9000000000000000000:
                    ns = <int64_t>ts
                else:
                    ns = pcapng_ns(ts, resol, tsoffset)
                self.pos = p + blen
                self.records += 1
                self.iface = iface
                self._take(ns, linktype, b + p + 28, caplen, orig if orig >= caplen else caplen, None)
            elif btype == 3 or btype == 2:  # Simple and obsolete Packet Blocks: the reader's
                return False
            else:
                if btype != 0x0A0D0D0A:
                    skipped += 1
                self.pos = p + blen
        reader.linktypes.update(linktypes)
        reader.format = "pcapng"
        reader.records = self.records
        reader.skipped_blocks += skipped
        return True

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

    cdef bint _fast(self, long number, int linktype, const uint8_t* b, Py_ssize_t n) except -1:
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
        if flags & (T_SYN | T_RST) or not flags & T_ACK:
            return False
        cdef FlowSlot* slot = &self.flow_slots[(b[p + 15] ^ b[p + 19] ^ sport ^ (dport >> 4) ^ dport) & (FLOW_SLOTS - 1)]
        if slot.hit != NULL and memcmp(slot.key, b + p + 12, 8) == 0 and memcmp(slot.key + 8, b + t, 4) == 0:
            hit = <tuple>slot.hit
        else:
            key = (be32(b + p + 12), sport, be32(b + p + 16), dport, 4)
            hit = self.flows.get(key)
            if hit is None:
                return False
            memcpy(slot.key, b + p + 12, 8)
            memcpy(slot.key + 8, b + t, 4)
            Py_INCREF(hit)
            Py_XDECREF(slot.hit)
            slot.hit = <PyObject*>hit
        return self._segment(number, b, t, o, end, sport, dport, seq, ack, flags, hit)

    cdef bint _segment(
        self, long number, const uint8_t* b, Py_ssize_t t, Py_ssize_t o, Py_ssize_t end,
        unsigned int sport, unsigned int dport, uint32_t seq, uint32_t ack, unsigned int flags, tuple hit,
    ) except -1:
        """feed_tcp for a segment with ACK and neither SYN nor RST, its TCP header captured whole."""
        cdef Py_ssize_t nopt = o - t - 20
        cdef long plen = end - o
        sf = hit[0]
        cdef int d = hit[1]
        dirs = get(sf, SF_dirs)
        if d:
            me = dirs[1]
            peer = dirs[0]
        else:
            me = dirs[0]
            peer = dirs[1]
        isn = get(me, DIR_isn)
        pisn = get(peer, DIR_isn)
        if isn is None or pisn is None:
            return False
        cdef uint32_t tcp_seq = <uint32_t>(seq - <uint32_t>isn)
        cdef uint32_t tcp_ack = <uint32_t>(ack - <uint32_t>pisn)
        pfin = get(peer, DIR_fin)
        cdef bint acks_fin = (
            pfin is not None and not get(peer, DIR_fin_acked) and ack == <uint32_t>((<uint32_t>pfin) + 1)
        )
        conn = get(sf, SF_conn)
        # the MPTCP options: none, or one DSS
        found = ()
        if nopt:
            version = get(conn, CONN_version) if conn is not None else None
            found = self._area(b + t + 20, nopt, version)
            if found is None:
                return False
        if conn is None:
            if found:
                return False  # an MPTCP option on a subflow of no connection: linked here or there
            self._tcp_state(me, peer, acks_fin, flags, seq, plen)
            self.tcp_count += 1
            if self.tcp_feed is not None:
                self._tcp_analysis(number, sf, d, None, found, b, t, o, seq, ack, flags, plen)
            if self.out is not None:
                self._write(number, sf, sport, dport, plen, tcp_seq, tcp_ack, None, False, None, None, False, None)
            return True
        cdef bint one_dss = bool(found)
        obs = get(sf, SF_observer)
        if type(obs) is _Observer:
            return False
        stream = get(conn, CONN_stream)
        if stream is None and one_dss:
            return False  # numbered here
        # from here on the packet is this path's: the analyzer's objects change
        self.number = number
        self.ctx_sf = sf
        self.ctx_d = d
        self.ctx_ready = False
        self._tcp_state(me, peer, acks_fin, flags, seq, plen)
        info = None
        if one_dss:
            info = self._dss(found[0], sf, d, number, conn)
        put(conn, CONN_last_frame, number)
        payload_dsn = payload_dsn64 = None
        if plen:
            if not get(conn, CONN_fallback) and not get(conn, CONN_unlinked):
                got = self._data(sf, d, conn, seq, plen, number, b, o, end)
                if got is not None:
                    payload_dsn, payload_dsn64, _ = got
        else:
            ms = get(me, DIR_mappings)
            if ms:
                rel = (seq - isn - get(me, DIR_syn_data)) & M32
                if rel < get(me, DIR_map_hi):
                    for m in reversed(ms):
                        if get(m, MAP_ssn) <= rel < get(m, MAP_ssn) + get(m, MAP_data_level_length):
                            payload_dsn64 = (get(m, MAP_dsn64) + rel - get(m, MAP_ssn)) & M64
                            idsn = get(conn, CONN_sides)[d if get(sf, SF_to_client_side) else 1 - d].idsn
                            payload_dsn = None if idsn is None else (payload_dsn64 - idsn) & M64
                            break
        if get(dirs[0], DIR_fin_acked) and get(dirs[1], DIR_fin_acked) and not get(sf, SF_closed):
            self.table.closed(sf)
        if self.ctx_ready:
            experts = self.ctx.experts
            if experts:
                for e in experts:
                    self.experts[e.key] += 1
                    get(conn, CONN_experts)[e.key] += 1
        self.tcp_count += 1
        if self.tcp_feed is not None:
            self._tcp_analysis(number, sf, d, conn, found, b, t, o, seq, ack, flags, plen)
        if self.out is not None:
            shown = stream is not None and one_dss
            self._write(number, sf, sport, dport, plen, tcp_seq, tcp_ack, conn if shown else None, shown, found,
                        info, payload_dsn64 is not None, payload_dsn)
        return True

    cdef void _tcp_analysis(self, long number, object sf, int d, object conn, object found, const uint8_t* b,
                            Py_ssize_t t, Py_ssize_t o, uint32_t seq, uint32_t ack, unsigned int flags,
                            long plen) except *:
        """The subflow TCP analysis of this segment, feed_tcp's last step: here where it can be, else
        in Python."""
        if tcp_feed(self.tcp_streams, self.tcp_mirrors, self.tcp_mp_ops, self.tcp_last, number, self.ts,
                    <int64_t>self.ts, sf, d, conn, found, b + t + 20, o - t - 20, seq, ack, flags, be16(b + t + 14),
                    be16(b + t + 18), plen):
            self.tcp_taken += 1
            return
        self.tcp_last[2] = None  # Python's feed may change the connection's mp_operations
        pkt = decode_frame(self.linktype, PyBytes_FromStringAndSize(<const char*>self.cur, self.curn), self.ts)
        self.tcp_feed(number, self.ts, pkt, get(sf, SF_index), d, conn, found, get(sf, SF_retransmissions))

    def _tcp_fed(self, stream):
        """TcpAnalyzer.on_feed: the stream's state, kept here, written back for Python's feed (and
        read again from it when tcp_feed next meets the stream)."""
        mi = self.tcp_mirrors.pop(stream, None)
        if mi is not None:
            self.tcp_last[0] = self.tcp_last[1] = None
            (<Mirror>mi).store()

    cdef void _tcp_store(self) except *:
        """Every stream's state kept here written back: the analyzer's objects as the pure path
        leaves them."""
        for mi in self.tcp_mirrors.values():
            (<Mirror>mi).store()
        self.tcp_mirrors.clear()
        self.tcp_last[0] = self.tcp_last[1] = None

    cdef inline void _tcp_state(self, object me, object peer, bint acks_fin, unsigned int flags, uint32_t seq,
                                long plen) except *:
        """What every segment changes at the TCP level: the peer's FIN acknowledged, data sent, a FIN."""
        if acks_fin:
            put(peer, DIR_fin_acked, True)
        if plen:
            put(me, DIR_data, get(me, DIR_data) + plen)
        if flags & T_FIN and get(me, DIR_fin) is None:
            put(me, DIR_fin, <uint32_t>(seq + <uint32_t>plen))

    cdef object _area(self, const uint8_t* a, Py_ssize_t n, object version):
        """The MPTCP options of an options area: () or (a DSS,), else None.  Kept by the area's octets
        with the timestamps' values left out (nothing else in it changes from segment to segment)."""
        cdef char key[44]
        cdef Py_ssize_t i = 0, ln, at = -1, atlen = 0
        cdef int mptcp = 0
        cdef uint8_t kind
        cdef DssSlot* slot
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
            slot = &self.dss_slots[(a[at + atlen - 1] ^ (a[at + atlen - 2] << 1) ^ a[at + 3] ^ atlen) & (DSS_SLOTS - 1)]
            if slot.found != NULL and slot.n == atlen and memcmp(slot.octets, a + at, atlen) == 0:
                return <tuple>slot.found
            # kept by the octets too (a repeated DSS must be the same object: DssReader's memo is by identity)
            k = PyBytes_FromStringAndSize(<const char*>a + at, atlen)
            got = self.dss_cache.get(k)
            if got is None:
                o = decode_dss_at(a + at, atlen)
                if o is not None:
                    got = (o,)
                    if len(self.dss_cache) >= AREAS_KEPT:
                        self.dss_cache.clear()
                    self.dss_cache[k] = got
            if got is not None:
                slot.n = atlen
                memcpy(slot.octets, a + at, atlen)
                Py_INCREF(got)
                Py_XDECREF(slot.found)
                slot.found = <PyObject*>got
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
        cdef uint64_t r64, n64, a64
        fl = get(sf, SF_dirs)[d]
        memo = get(fl, DIR_memo)
        if memo is not None and memo[0] is o:
            _, info, mconn, narrow, pidsn, midsn, m, me, peer, mfl, to_client = memo
            if (
                get(sf, SF_conn) is mconn
                and get(sf, SF_to_client_side) is to_client
                and not get(mconn, CONN_checksum)
                and get(peer, SIDE_idsn) == pidsn
                and get(me, SIDE_idsn) == midsn
                and (m is None or get(mfl, DIR_mappings)[-1] is m)
            ):
                ack64 = get(info, INFO_ack64)
                fresh = True
                if narrow is not None:
                    ref = get(peer, SIDE_dsn_ref)
                    if ref is None:
                        ref = get(me, SIDE_ack_ref)
                        if ref is None and pidsn is not None:
                            ref = (pidsn + 1) & M64
                    if ref is None:
                        fresh = False
                    elif as_u64(ref, &r64) and as_u64(narrow, &n64) and n64 <= 0xFFFFFFFF:
                        fresh = ack64 is not None and as_u64(ack64, &a64) and expand32(r64, n64) == a64
                    else:
                        fresh = expand(narrow, ref) == ack64
                if fresh:
                    if ack64 is not None:
                        put(me, SIDE_ack_ref, ack64)
                        if ack64 > get(peer, SIDE_hole_lo) or (get(peer, SIDE_seg_high) is not None and ack64 > get(peer, SIDE_seg_high)):
                            self._prepare()
                            self.space.acked(peer, ack64, mconn)
                        if get(peer, SIDE_dfin) is not None and not get(peer, SIDE_dfin_acked) and ((ack64 - get(peer, SIDE_dfin)) & M64) - 1 < TWO62:
                            put(peer, SIDE_dfin_acked, True)
                            self._prepare()
                            self.ctx.closure(mconn, "DATA_ACK[DFIN]")
                    if m is not None:
                        put(me, SIDE_dsn_ref, get(info, INFO_dsn64))
                        put(m, MAP_frame, number)
                        put(mfl, DIR_last, m)
                    return info
        info = self._dss_full(o, sf, d, number)
        self._remember(o, info, sf, d)
        return info

    cdef void _remember(self, object o, object info, object sf, int d) except *:
        fl = get(sf, SF_dirs)[d]
        conn = get(sf, SF_conn)
        cdef int f = get(o, DSS_flags)
        put(fl, DIR_memo, None)
        if conn is None or get(conn, CONN_checksum) or get(o, DSS_checksum) is not None or f & F_F:
            return
        if f & F_A and (get(o, DSS_data_ack) is None or get(info, INFO_ack64) is None):
            return
        m = None
        if f & F_M:
            ssn, dl, dsn64 = get(o, DSS_ssn), get(o, DSS_data_level_length), get(info, INFO_dsn64)
            if not f & F_m or dsn64 is None or not dl or ssn is None:
                return
            ms = get(fl, DIR_mappings)
            m = ms[-1] if ms else None
            if (
                m is None
                or m is not get(fl, DIR_last)
                or not (
                    get(m, MAP_ssn) == ssn
                    and get(m, MAP_end) == ssn + dl
                    and ssn < get(m, MAP_end)
                    and ((get(m, MAP_dsn64) - ssn) & M64) == ((dsn64 - ssn) & M64)
                )
            ):
                return
        side = d if get(sf, SF_to_client_side) else 1 - d
        me, peer = get(conn, CONN_sides)[side], get(conn, CONN_sides)[1 - side]
        if f & F_M and not get(me, SIDE_checked_first) and get(me, SIDE_idsn) is not None:
            return
        narrow = get(o, DSS_data_ack) if f & F_A and not f & F_a else None
        memo = (o, info, conn, narrow, get(peer, SIDE_idsn), get(me, SIDE_idsn), m, me, peer, fl, get(sf, SF_to_client_side))
        put(fl, DIR_memo, memo)

    cdef object _dss_full(self, object o, object sf, int d, long number):
        """DssReader._dss, its rare branches through the Python parts."""
        conn = get(sf, SF_conn)
        if conn is None:
            return new_dssinfo(None, None, None, None)
        ctx = self.ctx  # made ready (_prepare) before each call of a Python part below
        cdef int f = get(o, DSS_flags)
        cdef int side = d if get(sf, SF_to_client_side) else 1 - d
        sides = get(conn, CONN_sides)
        me = sides[side]
        peer = sides[1 - side]
        put(get(sf, SF_dirs)[d], DIR_seen_dss, True)
        ack64 = ack = dsn64 = dsn = None
        if f & F_A:
            data_ack = get(o, DSS_data_ack)
            if data_ack is not None:
                if f & F_a:
                    ack64 = data_ack
                else:
                    ref = get(peer, SIDE_dsn_ref)
                    if ref is None:
                        ref = get(me, SIDE_ack_ref)
                        if ref is None and get(peer, SIDE_idsn) is not None:
                            ref = (get(peer, SIDE_idsn) + 1) & M64
                    if ref is not None:
                        ack64 = expand_any(data_ack, ref)
                if ack64 is not None:
                    put(me, SIDE_ack_ref, ack64)
                    if ack64 > get(peer, SIDE_hole_lo) or (get(peer, SIDE_seg_high) is not None and ack64 > get(peer, SIDE_seg_high)):
                        self._prepare()
                        self.space.acked(peer, ack64, conn)
                    if get(peer, SIDE_idsn) is not None:
                        ack = (ack64 - get(peer, SIDE_idsn)) & M64
                    if get(peer, SIDE_dfin) is not None and not get(peer, SIDE_dfin_acked) and ((ack64 - get(peer, SIDE_dfin)) & M64) - 1 < TWO62:
                        put(peer, SIDE_dfin_acked, True)
                        self._prepare()
                        ctx.closure(conn, "DATA_ACK[DFIN]")
        if f & F_M:
            odsn, ssn, dl = get(o, DSS_dsn), get(o, DSS_ssn), get(o, DSS_data_level_length)
            if odsn is None or ssn is None or dl is None:
                return new_dssinfo(dsn64, dsn, ack64, ack)
            if f & F_m:
                dsn64 = odsn
            else:
                ref = get(me, SIDE_dsn_ref) if get(me, SIDE_dsn_ref) is not None else ((get(me, SIDE_idsn) + 1) & M64 if get(me, SIDE_idsn) is not None else None)
                if ref is not None:
                    dsn64 = expand_any(odsn, ref)
            if dsn64 is not None:
                put(me, SIDE_dsn_ref, dsn64)
                if get(me, SIDE_idsn) is not None:
                    dsn = (dsn64 - get(me, SIDE_idsn)) & M64
            if dl == 0:
                self._prepare()
                ctx.expert("mptcp.dss.infinite_mapping")
                if get(conn, CONN_fallback) is None:
                    put(conn, CONN_fallback, f"infinite mapping in frame {number}")
                    self._prepare()
                    ctx.expert("mptcp.fallback", f"fallback to regular TCP: {get(conn, CONN_fallback)}")
            fin = 1 if f & F_F else 0
            checksum = get(o, DSS_checksum)
            if get(conn, CONN_checksum):
                if checksum is None:
                    self._prepare()
                    ctx.expert("mptcp.dss.checksum_missing")
            elif checksum is not None and sides[0].flags is not None:
                self._prepare()
                ctx.expert("mptcp.dss.checksum_unexpected")
            if dsn64 is not None and dl:
                if fin:
                    put(me, SIDE_dfin, (dsn64 + dl - 1) & M64)
                if not (fin and dl == 1 and ssn == 0):
                    fl = get(sf, SF_dirs)[d]
                    ms = get(fl, DIR_mappings)
                    m = ms[-1] if ms else None
                    if (
                        m is not None
                        and get(m, MAP_ssn) == ssn
                        and get(m, MAP_end) == ssn + dl - fin
                        and ssn < get(m, MAP_end)
                        and ((get(m, MAP_dsn64) - ssn) & M64) == ((dsn64 - ssn) & M64)
                    ):
                        put(m, MAP_frame, number)
                        put(fl, DIR_last, m)
                    else:
                        self._mapping(conn, sf, d, ssn, dsn64, dl - fin, checksum, dl)
                elif get(conn, CONN_checksum) and checksum is not None and ctx.verify:
                    # A DATA_FIN alone: the checksum covers the pseudo-header only (RFC 8684 §3.3.1).
                    self._prepare()
                    c = crypto.verify_dss_checksum(dsn64, 0, 1, b"", checksum)
                    ctx.check(c)
                    if c.verdict is Verdict.MISMATCH:
                        self._prepare()
                        ctx.expert("mptcp.dss.checksum_mismatch", str(c))
                if not get(me, SIDE_checked_first) and get(me, SIDE_idsn) is not None:
                    put(me, SIDE_checked_first, True)
                    expect = (get(me, SIDE_idsn) + 1) & M64
                    if dsn64 != expect:
                        self._prepare()
                        ctx.expert(
                            "mptcp.dss.first_dsn",
                            f"the {SIDE_NAMES[side]}'s first mapping starts at DSN {dsn64:#x}, IDSN + 1 is {expect:#x}",
                        )
            if fin:
                self._prepare()
                ctx.closure(conn, "DATA_FIN")
        return new_dssinfo(dsn64, dsn, ack64, ack)

    cdef void _mapping(self, object conn, object sf, int d, object ssn, object dsn64, object length,
                       object checksum, object dl) except *:
        """Mappings.mapping, its common case (new subflow octets, new data) here."""
        fl = get(sf, SF_dirs)[d]
        end = ssn + length
        if ssn < get(fl, DIR_ssn_hi) or (length and (get(conn, CONN_unlinked) or dsn64 < get(fl, DIR_dsn_hi))):
            self._prepare()
            self.mappings.mapping(conn, sf, d, ssn, dsn64, length, checksum, dl)
            return
        side = get(conn, CONN_sides)[d if get(sf, SF_to_client_side) else 1 - d]
        if length:
            # Mappings._data_range: new data (no retransmission on this subflow: dsn64 >= dsn_hi)
            dend = dsn64 + length
            high = get(side, SIDE_high)
            if get(side, SIDE_first_dsn) is None or high is None:
                put(side, SIDE_first_dsn, dsn64)
                put(side, SIDE_high, dend)
            elif dend > high:
                put(side, SIDE_high, dend)
            else:
                self._prepare()
                self.mappings.mapping(conn, sf, d, ssn, dsn64, length, checksum, dl)
                return
        m = new_mapping(ssn, end, dsn64, self.number, checksum if self.verify and get(conn, CONN_checksum) else None, dl)
        ms = get(fl, DIR_mappings)
        ms.append(m)
        if len(ms) > MAX_MAPPINGS:
            del ms[0]
        put(fl, DIR_last, m)
        if end > get(fl, DIR_ssn_hi):
            put(fl, DIR_ssn_hi, end)
        if ssn + dl > get(fl, DIR_map_hi):
            put(fl, DIR_map_hi, ssn + dl)
        if length:
            if dsn64 < get(side, SIDE_first_dsn):
                put(side, SIDE_first_dsn, dsn64)
        dend = dsn64 + end - ssn
        if dend > get(fl, DIR_dsn_hi):
            put(fl, DIR_dsn_hi, dend)

    cdef object _data(self, object sf, int d, object conn, uint32_t seq, long n, long number,
                      const uint8_t* b, Py_ssize_t o, Py_ssize_t end):
        """Mappings.data for a segment without SYN: the common case (its mapping found, no
        checksum to take) here, the rest through the Python method."""
        fl = get(sf, SF_dirs)[d]
        cdef int64_t lo, hi
        cdef uint32_t crel
        cdef uint64_t dsn, rdsn
        m = get(fl, DIR_last)
        if m is not None and as_i64(get(m, MAP_ssn), &lo) and as_i64(get(m, MAP_end), &hi):
            # the direction's latest mapping, in C integers (the arithmetic below is modulo 2**32 and
            # 2**64 as the Python one masks it)
            crel = seq - <uint32_t>PyLong_AsUnsignedLongLongMask(get(fl, DIR_isn))
            crel -= <uint32_t>PyLong_AsUnsignedLongLongMask(get(fl, DIR_syn_data))
            if (
                lo <= crel < hi
                and crel + n <= hi
                and (get(m, MAP_checksum) is None or self._checksum(m, crel, lo, hi, n, b, o, end))
            ):
                dsn = PyLong_AsUnsignedLongLongMask(get(m, MAP_dsn64)) + crel - <uint64_t>lo
                side = get(conn, CONN_sides)[d if get(sf, SF_to_client_side) else 1 - d]
                pdsn = dsn  # a Python int
                self._segment_range(side, pdsn, n, get(sf, SF_index), number)
                idsn = get(side, SIDE_idsn)
                if idsn is None:
                    return None, pdsn, get(m, MAP_frame)
                rdsn = dsn - PyLong_AsUnsignedLongLongMask(idsn)  # modulo 2**64
                return rdsn, pdsn, get(m, MAP_frame)
        rel = (seq - get(fl, DIR_isn) - get(fl, DIR_syn_data)) & M32
        if m is None or not (get(m, MAP_ssn) <= rel < get(m, MAP_end)):
            m = None
            for cand in reversed(get(fl, DIR_mappings)):
                if get(cand, MAP_ssn) <= rel < get(cand, MAP_end):
                    m = cand
                    break
        if m is None or rel + n > get(m, MAP_end) or get(m, MAP_checksum) is not None:
            return self._python_data(sf, d, conn, seq, n, number)
        put(fl, DIR_last, m)
        dsn64 = (get(m, MAP_dsn64) + rel - get(m, MAP_ssn)) & M64
        side = get(conn, CONN_sides)[d if get(sf, SF_to_client_side) else 1 - d]
        self._segment_range(side, dsn64, n, get(sf, SF_index), number)
        return ((dsn64 - get(side, SIDE_idsn)) & M64 if get(side, SIDE_idsn) is not None else None), dsn64, get(m, MAP_frame)

    cdef bint _checksum(self, object m, uint32_t crel, int64_t lo, int64_t hi, long n, const uint8_t* b,
                        Py_ssize_t o, Py_ssize_t end) except -1:
        """Mappings._checksum for the segment that starts mapping ``m`` with its checksum pending,
        when the segment is cut by the snapshot length (unverifiable) or holds the whole mapping
        (verified here, in C); False for the rest (the Python method's)."""
        if crel != lo or get(m, MAP_buffer) is not None:
            return False
        cdef Py_ssize_t captured = min(end, self.curn) - o
        csum = get(m, MAP_checksum)
        if captured < n:  # the payload cut: ctx.check of an unverifiable checksum
            self._prepare()
            self.ctx.check(
                _Check(
                    UNVERIFIABLE,
                    "DSS checksum",
                    None,
                    csum,
                    f"payload cut by the snapshot length ({captured} of {n} octets captured)",
                )
            )
            put(m, MAP_checksum, None)
            return True
        cdef int64_t want = hi - lo
        if n < want:
            return False  # the mapping continues in later segments: gathered by the Python method
        cdef uint64_t dsn64, dl, c16
        if not (as_u64(get(m, MAP_dsn64), &dsn64) and as_u64(get(m, MAP_data_level_length), &dl) and dl <= 0xFFFF
                and as_u64(csum, &c16) and c16 <= 0xFFFF and lo >= 0 and lo <= 0xFFFFFFFF):
            return False
        if dl == 0 or want < <int64_t>dl - 1:
            return False  # crypto.verify_dss_checksum's unverifiable cases: the Python method's
        # RFC 8684 §3.3.1: the pseudo-header (DSN, SSN, data-level length, zero) and the payload
        cdef uint64_t total = (dsn64 >> 48) + ((dsn64 >> 32) & 0xFFFF) + ((dsn64 >> 16) & 0xFFFF) + (dsn64 & 0xFFFF)
        total += (<uint64_t>lo >> 16) + (<uint64_t>lo & 0xFFFF) + dl
        total += internet_sum(b + o, want)
        cdef unsigned int expected = (~fold16(total)) & 0xFFFF
        verified = fold16(total + c16) == 0xFFFF
        c = _Check(VERIFIED if verified else MISMATCH, "DSS checksum", expected, csum)
        frame = get(m, MAP_frame)
        if frame != self.number:
            c = _Check(c.verdict, c.what, c.expected, c.actual, f"mapping of frame {frame}")
        self._prepare()
        self.ctx.check(c)
        if not verified:
            self.ctx.expert("mptcp.dss.checksum_mismatch", str(c))
        put(m, MAP_checksum, None)
        put(m, MAP_buffer, None)
        return True

    cdef object _python_data(self, object sf, int d, object conn, uint32_t seq, long n, long number):
        self._prepare()
        self.ctx.pkt = decode_frame(self.linktype, PyBytes_FromStringAndSize(<const char*>self.cur, self.curn), self.ts)
        return self.mappings.data(sf, d, conn, 0, seq, n, number)

    cdef void _segment_range(self, object side, object dsn64, long n, object subflow, long number) except *:
        """SequenceSpace.segment without a reinjection (with one: the Python method)."""
        end = dsn64 + n
        cdef list starts = get(side, SIDE_starts)
        cdef list ranges = get(side, SIDE_ranges)
        cdef Py_ssize_t i = len(starts)
        if i and dsn64 < starts[i - 1]:
            i = bisect_right(starts, dsn64)
        cdef Py_ssize_t j = i - 1
        reach = dsn64 - get(side, SIDE_max_seg)
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
        high = get(side, SIDE_seg_high)
        if dsn64 == high:
            put(side, SIDE_seg_high, end)
        elif dsn64 == get(side, SIDE_hole_lo) and end < get(side, SIDE_holes)[0][1]:
            get(side, SIDE_holes)[0][0] = end  # side.holes[0][0] = side.hole_lo = end
            put(side, SIDE_hole_lo, end)
        elif (
            high is not None and dsn64 <= high and end <= get(side, SIDE_hole_lo) and dsn64 >= get(side, SIDE_seg_low)
        ):
            # carried(), its common case: data below the highest, no hole touched, not below the lowest
            if end > high:
                put(side, SIDE_seg_high, end)
        else:
            carried(side, dsn64, end)
        if n > get(side, SIDE_max_seg):
            put(side, SIDE_max_seg, n)
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

    cdef int _dss_cell(self, object o, int which) except -1:
        """A DSS's cell of DSS_CELLS[which], as the option table prints it."""
        if which == 0:
            self._put("2", 1)
        elif which == 1:
            self._obj(get(o, DSS_data_ack))
        elif which == 2:
            self._obj(get(o, DSS_dsn))
        elif get(o, DSS_dsn) is not None:
            self._obj(get(o, DSS_ssn) if which == 3 else get(o, DSS_data_level_length))

    cdef void _write(self, long number, object sf, unsigned int sport, unsigned int dport, long plen,
                     uint32_t tcp_seq, uint32_t tcp_ack, object conn, bint shown, object found, object info,
                     bint mapped, object payload_dsn) except *:
        cdef int i, k
        cdef Py_ssize_t ns = PyBytes_GET_SIZE(self.sep)
        cdef const char* sep = PyBytes_AS_STRING(self.sep)
        cells = None
        cdef bint has_opt = found is not None and PyTuple_GET_SIZE(found) > 0
        o = (<tuple>found)[0] if has_opt else None
        if has_opt and not self.dss_cells:
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
                self._obj(get(sf, SF_index))
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
                    self._obj(get(conn, CONN_stream))
            elif k == K_MPTCP_DSN:
                if shown:
                    if mapped:
                        self._obj(payload_dsn)
                    elif not plen and tcp_seq == 1:
                        from_client = (self.ctx_d == 0) == (get(sf, SF_to_client_side) is True)
                        if get(get(conn, CONN_sides)[0 if from_client else 1], SIDE_idsn) is not None:
                            self._put("1", 1)
            elif k == K_MPTCP_ACK:
                if info is not None:
                    self._obj(get(info, INFO_ack))
            elif k == K_DSS_DSN:
                if info is not None:
                    self._obj(get(info, INFO_dsn))
            elif k >= K_OPTION and self.dss_cells:
                if has_opt:
                    self._dss_cell(o, self.cell_of[k - K_OPTION])
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


def decode_dss_option(bytes option):
    """The DSS in ``option`` (its octets, kind first) as this path decodes it, or None (for tests:
    it must equal the generated decoder's)."""
    if PyBytes_GET_SIZE(option) < 4:
        return None
    return decode_dss_at(<const uint8_t*>PyBytes_AS_STRING(option), PyBytes_GET_SIZE(option))


cdef object new_dssinfo(object dsn64, object dsn, object ack64, object ack):
    """DssInfo(dsn64, dsn, ack64, ack): its slots set as fast_constructor sets them."""
    r = _object_new(DssInfo)
    put(r, INFO_dsn64, dsn64)
    put(r, INFO_dsn, dsn)
    put(r, INFO_ack64, ack64)
    put(r, INFO_ack, ack)
    return r


cdef object new_mapping(object ssn, object end, object dsn64, long frame, object checksum, object dl):
    """Mapping(ssn, end, dsn64, frame, checksum, None, dl), as its __init__ sets it."""
    r = _object_new(Mapping)
    put(r, MAP_ssn, ssn)
    put(r, MAP_end, end)
    put(r, MAP_dsn64, dsn64)
    put(r, MAP_frame, frame)
    put(r, MAP_checksum, checksum)
    put(r, MAP_buffer, None)
    put(r, MAP_data_level_length, dl)
    return r


cdef Py_ssize_t bisect_right(list a, object x) except -1:
    """bisect.bisect_right(a, x), on a list of ints."""
    cdef Py_ssize_t lo = 0, hi = len(a), mid
    while lo < hi:
        mid = (lo + hi) // 2
        if x < <object>PyList_GET_ITEM(a, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
