# cython: language_level=3
"""The first pass of ``dissect -j`` compiled: the plan of
:func:`mptcpspec.dissect.planner.plan_shares`, whose Python pass stays the reference.

The capture file's records are read here (pcap; pcapng of one section, its Interface Description
and Enhanced Packet Blocks), and the common frame is read from its octets: a TCP segment in IPv4
after Ethernet or Linux cooked v1 or v2, its header captured whole.  When it is an ACK without SYN,
FIN or RST of a stream the planner holds steady (nothing to learn from its options), it is followed
here: its stream found by a C hash of its addresses and ports, its share that stream's.  Every
other frame goes to the Python planner as the Python pass sends it (``_Planner.segment`` with the
same arguments, ``_Planner.frame`` for a frame to decode), so the planner's streams, connections
and numbers are made by the reference code alone.  Where the file holds what this reader does not
take (or is damaged), it stops before that record, and the Python pass goes on from there.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLong
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF

from array import array

from mptcpspec.capture.pcap import pcapng_ns

cdef extern from *:
    """
    #include <structmember.h>
    static Py_ssize_t mptcpspec_fp_slot_offset(PyObject *descr) {
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        return m->type == T_OBJECT_EX ? m->offset : -1;
    }
    """
    Py_ssize_t mptcpspec_fp_slot_offset(object descr)

cdef enum:
    CHUNK = 1 << 20  # octets read at a time
    MAX_RECORD = 1 << 24  # as the capture reader: longer is corrupt framing
    EVERY = 0x4000  # frames between two progress reports


cdef Py_ssize_t slot_offset(type cls, str name) except -1:
    """Where the slot ``name`` of ``cls``'s instances lies in them."""
    off = mptcpspec_fp_slot_offset(cls.__dict__[name])
    if off <= 0:
        raise TypeError(f"{cls.__name__}.{name} is not a slot")
    return off


cdef inline object get(object o, Py_ssize_t off):
    cdef PyObject* v = (<PyObject**>((<char*><PyObject*>o) + off))[0]
    if v is NULL:
        raise AttributeError(f"{type(o).__name__}: a slot is not set")
    return <object>v


cdef inline void put(object o, Py_ssize_t off, object v) noexcept:
    cdef PyObject** at = <PyObject**>((<char*><PyObject*>o) + off)
    cdef PyObject* old = at[0]
    Py_INCREF(v)
    at[0] = <PyObject*>v
    Py_XDECREF(old)


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


cdef inline void put_be(uint8_t* k, uint32_t v, int n) noexcept nogil:
    """``v`` in ``n`` octets at ``k``, big-endian (as a frame holds it)."""
    cdef int j
    for j in range(n):
        k[n - 1 - j] = v & 255
        v >>= 8


cdef struct Entry:
    uint64_t addrs  # source and destination, as the frame holds them
    uint32_t ports  # source and destination port, as the frame holds them
    int used
    PyObject* hit  # the planner's (stream, direction) of these addresses and ports (owned)


cdef inline uint64_t mix(uint64_t addrs, uint32_t ports) noexcept nogil:
    cdef uint64_t h = (addrs ^ (<uint64_t>ports << 17) ^ (addrs >> 31)) * <uint64_t>0x9E3779B97F4A7C15
    return h ^ (h >> 29)


cdef class FirstPass:
    """One read of a capture for a ``_Planner`` (``stream``: its stream class, whose slots
    ``steady``, ``node`` and ``data`` are read here; ``plain``, ``numbered``: the steady states)."""

    cdef object planner, segment, frame, flows, fresh, progress
    cdef Py_ssize_t off_steady, off_node, off_data
    cdef long plain, numbered
    cdef Entry* table
    cdef Py_ssize_t cap, used
    cdef int* nodes
    cdef Py_ssize_t nnodes, nodes_cap
    cdef public long number  #: frames followed
    cdef public long records  #: records this reader read itself
    cdef public bint stopped  #: the planner left the capture to one process: the read stopped
    cdef bytes chunk
    cdef Py_ssize_t pos, offset

    def __init__(self, planner, type stream, long plain, long numbered, progress=None):
        self.planner = planner
        self.segment = planner.segment
        self.frame = planner.frame
        self.flows = planner.flows
        self.fresh = planner.fresh
        if type(self.flows) is not dict or type(self.fresh) is not list:
            raise TypeError("the planner's flows must be a dict and its fresh keys a list")
        self.progress = progress
        self.off_steady = slot_offset(stream, "steady")
        self.off_node = slot_offset(stream, "node")
        self.off_data = slot_offset(stream, "data")
        self.plain, self.numbered = plain, numbered
        self.cap = 1024
        self.table = <Entry*>calloc(self.cap, sizeof(Entry))
        self.nodes_cap = 1 << 16
        self.nodes = <int*>calloc(self.nodes_cap, sizeof(int))
        if self.table is NULL or self.nodes is NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef Py_ssize_t j
        if self.table is not NULL:
            for j in range(self.cap):
                if self.table[j].used:
                    Py_XDECREF(self.table[j].hit)
            free(self.table)
        free(self.nodes)

    def read(self, f):
        """Read the capture from ``f``: True when read to its end (or stopped by the planner), False
        when it stopped before a record it leaves to the capture's reader (:attr:`records` taken).
        Either way the frames followed are in the planner's ``frame_node``."""
        try:
            whole = self._read(f)
            if self.progress is not None:
                self.progress(self.offset + self.pos, self.number)
            return whole
        finally:
            done = PyBytes_FromStringAndSize(<const char*>self.nodes, self.nnodes * sizeof(int))
            self.nnodes = 0
            self.planner.frame_node.frombytes(done)

    # --------------------------------------------------------------------------- a frame

    cdef bint _take(self, int64_t ts, int linktype, const uint8_t* b, Py_ssize_t n) except -1:
        """Frame ``number + 1``, its share found: False when the planner stopped the read."""
        cdef long node
        cdef int* grown
        self.number += 1
        node = self._node(self.number, linktype, b, n, ts)
        if self.nnodes == self.nodes_cap:
            grown = <int*>realloc(self.nodes, 2 * self.nodes_cap * sizeof(int))
            if grown is NULL:
                raise MemoryError()
            self.nodes = grown
            self.nodes_cap *= 2
        self.nodes[self.nnodes] = <int>node
        self.nnodes += 1
        if self.progress is not None and not self.number & (EVERY - 1):
            self.progress(self.offset + self.pos, self.number)
        return not self.stopped

    cdef long _node(self, long number, int linktype, const uint8_t* b, Py_ssize_t n, int64_t ts) except -1:
        """As the Python pass's loop: the common segment read here, the rest to the planner."""
        cdef Py_ssize_t at, i, o, tot
        cdef unsigned int of
        cdef long node
        if linktype == 113:  # Linux cooked v1
            at, i = 14, 16
        elif linktype == 1:  # Ethernet
            at, i = 12, 14
        elif linktype == 276:  # Linux cooked v2
            at, i = 0, 20
        else:
            return self._decode(number, linktype, b, n, ts)
        if n < i + 40 or be16(b + at) != 0x0800 or b[i] != 0x45 or b[i + 9] != 6 or be16(b + i + 6) & 0x3FFF:
            return self._decode(number, linktype, b, n, ts)
        tot = be16(b + i + 2)
        of = be16(b + i + 32)
        o = i + 20 + ((of >> 12) << 2)  # the TCP payload
        if not (i + 40 <= o <= i + tot and o <= n):
            return self._decode(number, linktype, b, n, ts)
        if of & 0x17 == 0x10:
            hit = self._hit(b + i)
            if hit is not None:
                st = (<tuple>hit)[0]
                steady = PyLong_AsLong(get(st, self.off_steady))
                if steady == self.numbered or (
                    steady == self.plain and memchr(b + i + 40, 0x1E, o - i - 40) is NULL
                ):
                    if o < i + tot and get(st, self.off_data) is not True:
                        put(st, self.off_data, True)
                    return PyLong_AsLong(get(st, self.off_node))
        key = (be32(b + i + 12), be16(b + i + 20), be32(b + i + 16), be16(b + i + 22), 4)
        raw = PyBytes_FromStringAndSize(<const char*>(b + i + 40), o - i - 40)
        node = self.segment(number, key, of & 0x1FF, be32(b + i + 24), be32(b + i + 28), tot - o + i, raw, False)
        self._after()
        return node

    cdef long _decode(self, long number, int linktype, const uint8_t* b, Py_ssize_t n, int64_t ts) except -1:
        """Any other frame: decoded and followed by the planner."""
        cdef long node = self.frame(number, linktype, PyBytes_FromStringAndSize(<const char*>b, n), ts)
        self._after()
        return node

    cdef void _after(self) except *:
        """After the planner followed a frame: the streams it started replace the ones this hash
        held for their addresses and ports; whether it left the capture to one process."""
        cdef uint64_t addrs
        cdef uint32_t ports
        cdef uint8_t k[12]
        cdef Entry* e
        fresh = <list>self.fresh
        if fresh:
            for key in fresh:
                if key[4] != 4:
                    continue
                put_be(k, key[0], 4)
                put_be(k + 4, key[2], 4)
                put_be(k + 8, key[1], 2)
                put_be(k + 10, key[3], 2)
                memcpy(&addrs, k, 8)
                memcpy(&ports, k + 8, 4)
                e = self._find(addrs, ports)
                if e.used:
                    hit = self.flows[key]
                    Py_INCREF(hit)
                    Py_XDECREF(e.hit)
                    e.hit = <PyObject*>hit
            del fresh[:]
        if self.planner.serial is not None:
            self.stopped = True

    # --------------------------------------------------------------------------- the hash

    cdef Entry* _find(self, uint64_t addrs, uint32_t ports) noexcept:
        """The entry of these addresses and ports, or the free one where it would go."""
        cdef Py_ssize_t mask = self.cap - 1
        cdef Py_ssize_t j = mix(addrs, ports) & mask
        cdef Entry* e
        while True:
            e = &self.table[j]
            if not e.used or (e.addrs == addrs and e.ports == ports):
                return e
            j = (j + 1) & mask

    cdef object _hit(self, const uint8_t* ip):
        """The planner's (stream, direction) of the segment in IPv4 at ``ip``, or None."""
        cdef uint64_t addrs
        cdef uint32_t ports
        memcpy(&addrs, ip + 12, 8)
        memcpy(&ports, ip + 20, 4)
        cdef Entry* e = self._find(addrs, ports)
        if e.used:
            return <object>e.hit
        hit = self.flows.get((be32(ip + 12), be16(ip + 20), be32(ip + 16), be16(ip + 22), 4))
        if hit is None:
            return None
        if 2 * (self.used + 1) > self.cap:
            self._grow()
            e = self._find(addrs, ports)
        e.addrs, e.ports, e.used = addrs, ports, 1
        Py_INCREF(hit)
        e.hit = <PyObject*>hit
        self.used += 1
        return hit

    cdef void _grow(self) except *:
        cdef Entry* old = self.table
        cdef Py_ssize_t cap = self.cap, j
        cdef Entry* e
        self.table = <Entry*>calloc(2 * cap, sizeof(Entry))
        if self.table is NULL:
            self.table = old
            raise MemoryError()
        self.cap = 2 * cap
        for j in range(cap):
            if old[j].used:
                e = self._find(old[j].addrs, old[j].ports)
                e[0] = old[j]
        free(old)

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
        self.chunk = b""
        self.pos = 0
        self.offset = 0
        if not self._more(f, 24):
            return False
        cdef const uint8_t* b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
        cdef uint32_t magic = rd32(b, False)
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
        cdef uint32_t sec, frac, incl
        cdef Py_ssize_t size, p
        self.pos = 24
        while True:
            size = PyBytes_GET_SIZE(self.chunk)
            if size - self.pos < 16:
                if not self._more(f, 16):
                    return PyBytes_GET_SIZE(self.chunk) == self.pos  # a record header cut short: the reader's
                size = PyBytes_GET_SIZE(self.chunk)
            b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
            p = self.pos
            sec = rd32(b + p, swapped)
            frac = rd32(b + p + 4, swapped)
            incl = rd32(b + p + 8, swapped)
            if incl > MAX_RECORD:
                return False
            if size - p - 16 < incl:
                if not self._more(f, 16 + incl):
                    return False
                b = <const uint8_t*>PyBytes_AS_STRING(self.chunk)
                p = self.pos
            self.pos = p + 16 + incl
            self.records += 1
            if not self._take(<int64_t>sec * 1000000000 + <int64_t>frac * scale, linktype, b + p + 16, incl):
                return True

    cdef bint _pcapng(self, object f) except -1:
        cdef const uint8_t* b
        cdef bint swapped = False
        cdef uint32_t btype, blen, iface, caplen
        cdef Py_ssize_t p, q, olen, body
        cdef bint first = True
        cdef uint64_t ts
        cdef int64_t ns
        ifaces = []  # (linktype, resolution, offset in seconds)
        while True:
            if not self._more(f, 12):
                return PyBytes_GET_SIZE(self.chunk) == self.pos
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
                self.pos = p + blen
            elif btype == 6:  # Enhanced Packet Block
                if blen < 32:
                    return False
                iface = rd32(b + p + 8, swapped)
                if iface >= len(ifaces):
                    return False
                caplen = rd32(b + p + 20, swapped)
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
                if not self._take(ns, linktype, b + p + 28, caplen):
                    return True
            elif btype == 3 or btype == 2:  # Simple and obsolete Packet Blocks: the reader's
                return False
            else:
                self.pos = p + blen


def weights(frame_node, Py_ssize_t nodes):
    """Frames of each node: ``weights[node]`` (``frame_node``: array("i"), each frame's node)."""
    cdef const int[:] fn = frame_node
    cdef Py_ssize_t k, n = fn.shape[0]
    cdef long* count = <long*>calloc(nodes if nodes else 1, sizeof(long))
    if count is NULL:
        raise MemoryError()
    try:
        for k in range(n):
            if not 0 <= fn[k] < nodes:
                raise IndexError(f"frame {k + 1}: node {fn[k]} of {nodes}")
            count[fn[k]] += 1
        return [count[k] for k in range(nodes)]
    finally:
        free(count)


def owners(frame_node, list of_node):
    """Each frame's share: ``of_node[frame_node[k]]`` for each frame, as bytes."""
    cdef const int[:] fn = frame_node
    cdef Py_ssize_t k, n = fn.shape[0], nodes = len(of_node)
    cdef bytes shares = bytes(of_node)  # each below 256
    cdef const uint8_t* s = <const uint8_t*>PyBytes_AS_STRING(shares)
    out = PyBytes_FromStringAndSize(NULL, n)
    cdef uint8_t* o = <uint8_t*>PyBytes_AS_STRING(out)
    for k in range(n):
        if not 0 <= fn[k] < nodes:
            raise IndexError(f"frame {k + 1}: node {fn[k]} of {nodes}")
        o[k] = s[fn[k]]
    return out



def merge(bytes tag, list rows, write, Py_ssize_t flush_at=1 << 20):
    """The workers' rows in the order of their frames (``dissect -j``): for each octet ``w`` of
    ``tag`` but 255, the next row of ``rows[w]`` (a buffer of rows, each ending in a newline; at its
    end, what is left of it, then nothing), handed to ``write`` (bytes) about ``flush_at`` octets at
    a time."""
    cdef Py_ssize_t k, w, start, size, nfiles = len(rows)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(tag)
    cdef const uint8_t* t = <const uint8_t*>PyBytes_AS_STRING(tag)
    cdef Py_ssize_t slots = nfiles if nfiles else 1
    cdef const uint8_t** base = <const uint8_t**>calloc(slots, sizeof(uint8_t*))
    cdef Py_ssize_t* pos = <Py_ssize_t*>calloc(slots, sizeof(Py_ssize_t))
    cdef Py_ssize_t* end = <Py_ssize_t*>calloc(slots, sizeof(Py_ssize_t))
    cdef Py_ssize_t cap = flush_at + (1 << 16), used = 0
    cdef char* out = <char*>malloc(cap)
    cdef char* grown
    cdef const uint8_t[::1] view
    cdef const uint8_t* nl
    views = []  # the buffers, held while their pointers are used
    try:
        if base is NULL or pos is NULL or end is NULL or out is NULL:
            raise MemoryError()
        for w in range(nfiles):
            view = memoryview(rows[w]).cast("B")
            views.append(view)
            end[w] = view.shape[0]
            base[w] = &view[0] if end[w] else NULL
        for k in range(n):
            w = t[k]
            if w == 255:
                continue
            if w >= nfiles:
                raise IndexError(f"frame {k + 1}: rows of worker {w} of {nfiles}")
            start = pos[w]
            if start >= end[w]:
                continue
            nl = <const uint8_t*>memchr(base[w] + start, 10, end[w] - start)
            pos[w] = end[w] if nl is NULL else nl - base[w] + 1
            size = pos[w] - start
            if used + size > cap:
                cap = 2 * (used + size)
                grown = <char*>realloc(out, cap)
                if grown is NULL:
                    raise MemoryError()
                out = grown
            memcpy(out + used, base[w] + start, size)
            used += size
            if used >= flush_at:
                write(PyBytes_FromStringAndSize(out, used))
                used = 0
        if used:
            write(PyBytes_FromStringAndSize(out, used))
    finally:
        free(base)
        free(pos)
        free(end)
        free(out)
