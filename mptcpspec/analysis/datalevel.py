"""The data level: DSS options, mappings, the payload they map, checksums.

:class:`DssReader` reads each DSS option: its DATA_ACK and DSN expanded to 64 bits and made
relative to the IDSNs, a DATA_FIN, and the mapping it carries.  :class:`Mappings` keeps each subflow
direction's mappings: conflicts and data-level retransmissions between them, the mapping that covers
each segment's payload, and the DSS checksum over a mapping's payload when the connection
negotiated checksums.  What a segment carries at the data level goes to
:class:`~mptcpspec.analysis.seqspace.SequenceSpace` (reinjections, gaps).

Both are on the dissector's hot path: each segment that repeats its direction's latest DSS takes a
shortcut (:meth:`DssReader.dss`), and the per-segment work stays in locals.
"""

from __future__ import annotations

from collections.abc import Callable

from mptcpspec.analysis.context import PacketContext
from mptcpspec.analysis.model import SIDE_NAMES, Connection, Direction, DssInfo, Mapping, Side, Subflow
from mptcpspec.analysis.seqspace import M32, M64, SequenceSpace, blind, expand
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec import crypto
from mptcpspec.codec.crypto import Check, Verdict
from mptcpspec.codec.options import Dss, DssFlags, decode_mptcp_options
from mptcpspec.codec.runtime import fast_constructor

__all__ = ["DssReader", "Mappings", "Payload"]

#: what a payload's data level is: (DSN relative to the sender's IDSN, DSN 64 bits, frame of the mapping)
Payload = tuple[int | None, int | None, int | None]

# Flag bits as plain ints: the hot path tests them on every segment.
_SYN = int(TcpFlags.SYN)
_F_A = int(DssFlags.DATA_ACK_PRESENT)
_F_a = int(DssFlags.DATA_ACK_8)
_F_M = int(DssFlags.MAPPING_PRESENT)
_F_m = int(DssFlags.DSN_8)
_F_F = int(DssFlags.DATA_FIN)
MAX_MAPPINGS = 64  # mappings remembered per subflow direction

_dssinfo: Callable[[int | None, int | None, int | None, int | None], DssInfo]
_dssinfo = fast_constructor(DssInfo)


class Mappings:
    """Each subflow direction's mappings, and the payload they map."""

    __slots__ = ("ctx", "space")

    def __init__(self, ctx: PacketContext, space: SequenceSpace) -> None:
        self.ctx = ctx
        self.space = space

    def mapping(
        self, conn: Connection, sf: Subflow, d: int, ssn: int, dsn64: int, length: int, checksum: int | None, dl: int
    ) -> None:
        """Record a mapping of ``length`` subflow octets from relative ``ssn`` to ``dsn64``; ``dl`` is the
        data-level length as sent (with the DATA_FIN's octet), which the checksum covers."""
        ctx = self.ctx
        number = ctx.number
        fl = sf.dirs[d]
        end = ssn + length
        ms = fl.mappings
        known = None
        if ssn < fl.ssn_hi:  # else no mapping reaches these subflow octets
            for m in reversed(ms):
                if m.ssn < end and ssn < m.end:  # overlapping subflow data
                    if ((m.dsn64 - m.ssn) & M64) != ((dsn64 - ssn) & M64):
                        ctx.expert(
                            "mptcp.dss.mapping_conflict",
                            f"subflow octets {ssn}..{end} mapped to DSN {dsn64:#x}, frame {m.frame} mapped "
                            f"them to {(m.dsn64 + ssn - m.ssn) & M64:#x}",
                        )
                    elif m.ssn == ssn and m.end == end:
                        known = m
                        m.frame = number  # the mapping as this packet repeats it (Wireshark's related_mapping)
                    break
        if known is None:
            m = Mapping(ssn, end, dsn64, number, checksum if ctx.verify and conn.checksum else None, None, dl)
            ms.append(m)
            if len(ms) > MAX_MAPPINGS:
                del ms[0]
            fl.last = m
            if end > fl.ssn_hi:
                fl.ssn_hi = end
            if ssn + dl > fl.map_hi:
                fl.map_hi = ssn + dl
            if length:
                self._data_range(conn.sides[sf.side(d)], fl, dsn64, length, ssn)
                if conn.unlinked:
                    self.space.orphan_data(dsn64, length)
            dend = dsn64 + end - ssn
            if dend > fl.dsn_hi:
                fl.dsn_hi = dend
        else:
            fl.last = known

    def _data_range(self, side: Side, fl: Direction, dsn64: int, length: int, ssn: int) -> None:
        """Account a data range at connection level: new data, reinjection, order."""
        end = dsn64 + length
        below = False
        high = side.high
        if side.first_dsn is None or high is None:
            side.first_dsn = dsn64
            side.high = end
        elif end > high:
            side.high = end
        else:
            below = True
        if dsn64 < side.first_dsn:
            side.first_dsn = dsn64
        # A data-level retransmission on this same subflow (at other subflow octets): the mapping
        # ranges this subflow direction made before.
        again = None
        if dsn64 < fl.dsn_hi:  # else none of the mappings before this one reaches its data
            for m in fl.mappings[:-1]:
                if m.dsn64 < end and dsn64 < m.dsn64 + (m.end - m.ssn) and m.ssn != ssn:
                    again = m.frame
        if again is not None:
            self.ctx.expert(
                "mptcp.dss.retransmission",
                f"DSN {dsn64:#x}+{length} was mapped on this subflow before, in frame {again}, at other subflow octets",
            )
        elif below:
            self.ctx.expert(
                "mptcp.dss.out_of_order", f"mapping at DSN {dsn64:#x} starts below the highest DSN seen, {high:#x}"
            )

    def data(self, sf: Subflow, d: int, conn: Connection, flags: int, seq: int, n: int, number: int) -> Payload | None:
        """Check the ``n`` octets of payload at ``seq`` of frame ``number`` against the mappings;
        return where they lie at the data level, when a mapping covers them."""
        fl = sf.dirs[d]
        isn = fl.isn
        if isn is None:
            return None
        if flags & _SYN:
            # TFO data on the SYN: before IDSN + 1 in the data stream, outside any mapping.
            if sf.kind != "MP_CAPABLE":
                return None
            idsn = conn.sides[sf.side(d)].idsn
            return 1 - n, (None if idsn is None else (idsn + 1 - n) & M64), None
        rel = (seq - isn - fl.syn_data) & M32
        m = fl.last
        if m is None or not (m.ssn <= rel < m.end):
            m = None
            for cand in reversed(fl.mappings):
                if cand.ssn <= rel < cand.end:
                    m = fl.last = cand
                    break
        if m is None:
            self._unmapped(sf, d, conn, rel, n)
            return None
        if rel + n > m.end:
            self.ctx.expert(
                "mptcp.dss.missing_mapping",
                f"subflow octets {m.end}..{rel + n} run past the mapping of frame {m.frame}",
            )
        dsn64 = (m.dsn64 + rel - m.ssn) & M64
        if m.checksum is not None:
            self._checksum(m, rel, n)
        side = conn.sides[d if sf.to_client_side else 1 - d]
        self.space.segment(side, dsn64, n, sf.index, number)
        return ((dsn64 - side.idsn) & M64 if side.idsn is not None else None), dsn64, m.frame

    def _unmapped(self, sf: Subflow, d: int, conn: Connection, rel: int, n: int) -> None:
        """Payload at relative ``rel`` that no mapping covers: why, and what follows from it."""
        ctx = self.ctx
        hidden = sf.dirs[d].hidden
        if ctx.pkt.options_cut or (hidden is not None and (rel - hidden) & M32 <= 0xFFFF):
            # its mapping may be in what the snapshot length cut (of this segment or of one a little
            # before): where its data lies is unknown, so the data-level holes of this side are too
            # (found again from the next segment)
            blind(conn.sides[sf.side(d)])
            return
        if not sf.dirs[d].seen_dss and not sf.dirs[1 - d].seen_dss and sf.kind == "MP_CAPABLE":
            if conn.fallback is None and conn.sides[0].key is not None and conn.sides[1].key is not None:
                conn.fallback = f"data without any DSS option in frame {ctx.number}"
                ctx.expert("mptcp.fallback", f"fallback to regular TCP: {conn.fallback}")
            return
        if (
            conn.fallback is None
            and len(conn.subflows) == 1
            and sf.kind == "MP_CAPABLE"
            and not decode_mptcp_options(ctx.pkt.options)
        ):
            # MPTCP options gone from the only subflow, mid-connection (a middlebox stripping
            # them): regular TCP from here on (RFC 8684 §3.7)
            conn.fallback = f"data without MPTCP options, after DSS options, in frame {ctx.number}"
            ctx.expert("mptcp.fallback", f"fallback to regular TCP: {conn.fallback}")
            return
        ctx.expert("mptcp.dss.missing_mapping", f"subflow octets {rel}..{rel + n} are covered by no mapping")

    def _checksum(self, m: Mapping, rel: int, n: int) -> None:
        ctx = self.ctx
        pkt = ctx.pkt
        ssn, csum, buf = m.ssn, m.checksum, m.buffer
        want = m.end - ssn
        payload = pkt.payload
        if buf is None:
            if rel != ssn:
                return  # a retransmission covering part of a mapping already checked, or a gap
            if pkt.payload_cut:
                ctx.check(
                    Check(
                        Verdict.UNVERIFIABLE,
                        "DSS checksum",
                        None,
                        csum,
                        f"payload cut by the snapshot length ({len(payload)} of {n} octets captured)",
                    )
                )
                m.checksum = None
                return
            if n >= want:
                self._verify_checksum(m, payload[:want])
                return
            m.buffer = bytearray(payload)
            return
        if rel != ssn + len(buf) or pkt.payload_cut:
            if pkt.payload_cut:
                ctx.check(
                    Check(
                        Verdict.UNVERIFIABLE,
                        "DSS checksum",
                        None,
                        csum,
                        f"payload cut by the snapshot length (mapping of frame {m.frame})",
                    )
                )
                m.checksum = None
            return
        buf += payload[: want - len(buf)]
        if len(buf) >= want:
            self._verify_checksum(m, bytes(buf))

    def _verify_checksum(self, m: Mapping, payload: bytes) -> None:
        ctx = self.ctx
        frame = m.frame
        # The pseudo-header's data-level length is the one sent: it counts a DATA_FIN's octet.
        c = crypto.verify_dss_checksum(m.dsn64, m.ssn, m.data_level_length, payload, m.checksum)
        if frame != ctx.number:
            c = Check(
                c.verdict, c.what, c.expected, c.actual, (c.why + "; " if c.why else "") + f"mapping of frame {frame}"
            )
        ctx.check(c)
        if c.verdict is Verdict.MISMATCH:
            ctx.expert("mptcp.dss.checksum_mismatch", str(c))
        m.checksum = None
        m.buffer = None


class DssReader:
    """Each DSS option: its numbers at the data level, its DATA_ACK and DATA_FIN, its mapping."""

    __slots__ = ("ctx", "space", "mappings")

    def __init__(self, ctx: PacketContext, space: SequenceSpace, mappings: Mappings) -> None:
        self.ctx = ctx
        self.space = space
        self.mappings = mappings

    def dss(self, o: Dss, sf: Subflow, d: int, number: int, *, cut: bool = False) -> DssInfo:
        """The DSS option ``o`` of frame ``number``, sent on ``sf`` in direction ``d``.  ``cut``: ``o``
        is what the snapshot length left of one (``captured_option``): its checksum is unknown."""
        if cut:
            sf.dirs[d].memo = None
            return self._dss(o, sf, d, number, cut)
        memo = sf.dirs[d].memo
        if memo is not None and memo[0] is o:
            # The same DSS object as this direction's latest (the options cache hands every segment
            # that repeats a DSS octet for octet the same object): what the full path below would
            # do, when nothing it depends on has changed since.
            _, info, conn, narrow, pidsn, midsn, m, me, peer, fl, to_client = memo
            if (
                sf.conn is conn
                and sf.to_client_side is to_client
                and not conn.checksum
                and peer.idsn == pidsn
                and me.idsn == midsn
                and (m is None or fl.mappings[-1] is m)
            ):
                ack64 = info.ack64
                if narrow is not None:  # a 32-bit DATA_ACK, expanded against the references of now
                    ref = peer.dsn_ref
                    if ref is None:
                        ref = me.ack_ref
                        if ref is None and pidsn is not None:
                            ref = (pidsn + 1) & M64
                    if ref is None:  # never so: the kept DATA_ACK was expanded against one
                        fresh = False
                    else:
                        v = (ref & ~M32) | narrow
                        if v - ref > 0x80000000:
                            v -= 1 << 32
                        elif ref - v > 0x80000000:
                            v += 1 << 32
                        fresh = (v & M64) == ack64
                else:
                    fresh = True
                if fresh:
                    if ack64 is not None:
                        me.ack_ref = ack64
                        if ack64 > peer.hole_lo or (peer.seg_high is not None and ack64 > peer.seg_high):
                            self.space.acked(peer, ack64, conn)
                        if (
                            peer.dfin is not None
                            and not peer.dfin_acked
                            and ((ack64 - peer.dfin) & M64) - 1 < (1 << 62)
                        ):
                            peer.dfin_acked = True
                            self.ctx.closure(conn, "DATA_ACK[DFIN]")
                    if m is not None:
                        me.dsn_ref = info.dsn64
                        m.frame = number  # the mapping as this packet repeats it (Wireshark's related_mapping)
                        fl.last = m
                    return info
        info = self._dss(o, sf, d, number)
        self._remember(o, info, sf, d)
        return info

    def _remember(self, o: Dss, info: DssInfo, sf: Subflow, d: int) -> None:
        """Keep ``info`` for the segments that repeat ``o``, when :meth:`dss` can take it for them:
        no DATA_FIN, no infinite mapping, no checksums, 64-bit DSN, and the direction's latest
        mapping is the one ``o`` repeats."""
        fl = sf.dirs[d]
        conn = sf.conn
        f = int(o.flags)
        fl.memo = None
        if conn is None or conn.checksum or o.checksum is not None or f & _F_F:
            return
        if f & _F_A and (o.data_ack is None or info.ack64 is None):
            return
        m = None
        if f & _F_M:
            ssn, dl, dsn64 = o.ssn, o.data_level_length, info.dsn64
            if not f & _F_m or dsn64 is None or not dl or ssn is None:
                return
            ms = fl.mappings
            m = ms[-1] if ms else None
            # what dss finds when it looks for the mapping a segment repeats
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
        side = sf.side(d)
        me, peer = conn.sides[side], conn.sides[1 - side]
        if f & _F_M and not me.checked_first and me.idsn is not None:
            return
        fl.memo = (
            o,
            info,
            conn,
            o.data_ack if f & _F_A and not f & _F_a else None,
            peer.idsn,
            me.idsn,
            m,
            me,
            peer,
            fl,
            sf.to_client_side,
        )

    def _dss(self, o: Dss, sf: Subflow, d: int, number: int, cut: bool = False) -> DssInfo:
        """:meth:`dss` without its shortcut."""
        conn = sf.conn
        if conn is None:
            return DssInfo()
        ctx = self.ctx
        f = int(o.flags)
        side = d if sf.to_client_side else 1 - d
        sides = conn.sides
        me, peer = sides[side], sides[1 - side]
        sf.dirs[d].seen_dss = True
        ack64 = ack = dsn64 = dsn = None
        if f & _F_A:
            data_ack = o.data_ack
            if data_ack is not None:
                if f & _F_a:
                    ack64 = data_ack
                else:
                    ref = peer.dsn_ref
                    if ref is None:
                        ref = me.ack_ref
                        if ref is None and peer.idsn is not None:
                            ref = (peer.idsn + 1) & M64
                    if ref is not None:  # expand(data_ack, ref), inline
                        v = (ref & ~M32) | data_ack
                        if v - ref > 0x80000000:
                            v -= 1 << 32
                        elif ref - v > 0x80000000:
                            v += 1 << 32
                        ack64 = v & M64
                if ack64 is not None:
                    me.ack_ref = ack64
                    if ack64 > peer.hole_lo or (peer.seg_high is not None and ack64 > peer.seg_high):
                        self.space.acked(peer, ack64, conn)
                    if peer.idsn is not None:
                        ack = (ack64 - peer.idsn) & M64
                    if peer.dfin is not None and not peer.dfin_acked and ((ack64 - peer.dfin) & M64) - 1 < (1 << 62):
                        peer.dfin_acked = True
                        ctx.closure(conn, "DATA_ACK[DFIN]")
        if f & _F_M:
            odsn, ssn, dl = o.dsn, o.ssn, o.data_level_length
            if odsn is None or ssn is None or dl is None:  # all three or none
                return _dssinfo(dsn64, dsn, ack64, ack)
            if f & _F_m:
                dsn64 = odsn
            else:
                ref = me.dsn_ref if me.dsn_ref is not None else ((me.idsn + 1) & M64 if me.idsn is not None else None)
                dsn64 = expand(odsn, ref) if ref is not None else None
            if dsn64 is not None:
                me.dsn_ref = dsn64
                if me.idsn is not None:
                    dsn = (dsn64 - me.idsn) & M64
            if dl == 0:
                ctx.expert("mptcp.dss.infinite_mapping")
                if conn.fallback is None:
                    conn.fallback = f"infinite mapping in frame {number}"
                    ctx.expert("mptcp.fallback", f"fallback to regular TCP: {conn.fallback}")
            fin = 1 if f & _F_F else 0
            checksum = o.checksum
            if conn.checksum:
                if checksum is None and not cut:
                    ctx.expert("mptcp.dss.checksum_missing")
            elif checksum is not None and sides[0].flags is not None:
                ctx.expert("mptcp.dss.checksum_unexpected")
            if dsn64 is not None and dl:
                if fin:
                    me.dfin = (dsn64 + dl - 1) & M64
                if not (fin and dl == 1 and ssn == 0):
                    # The mapping the subflow's latest one repeats (each segment of a mapping carries it):
                    # what mapping() finds first in its scan, settled here.
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
                        m.frame = number  # the mapping as this packet repeats it (Wireshark's related_mapping)
                        fl.last = m
                    else:
                        self.mappings.mapping(conn, sf, d, ssn, dsn64, dl - fin, checksum, dl)
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
