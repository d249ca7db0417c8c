"""Address management: ADD_ADDR (its HMAC verified), REMOVE_ADDR, MP_PRIO.

Each side's announced addresses are kept in its :attr:`~mptcpspec.analysis.model.Side.addresses`,
and every announcement in the connection's history, in the order seen.
"""

from __future__ import annotations

from mptcpspec.analysis.context import PacketContext
from mptcpspec.analysis.model import SIDE_NAMES, Address
from mptcpspec.codec import crypto
from mptcpspec.codec.crypto import Check, Verdict
from mptcpspec.codec.options import AddAddr, AddAddrV0, MpPrio, RemoveAddr

__all__ = ["Addresses"]


class Addresses:
    """ADD_ADDR, REMOVE_ADDR and MP_PRIO of the packet under analysis."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: PacketContext) -> None:
        self.ctx = ctx

    def add_addr(self, o: AddAddr | AddAddrV0) -> None:
        ctx = self.ctx
        sf = ctx.sf
        conn = sf.conn
        if conn is None:
            return
        side = sf.side(ctx.d)
        echo = getattr(o, "echo", False)
        port = o.port
        what = "ADD_ADDR echo" if echo else "ADD_ADDR"
        conn.history.append(
            (ctx.number, f"{SIDE_NAMES[side]} {what} id {o.address_id} {o.address}" + (f" port {port}" if port else ""))
        )
        if echo:
            return
        conn.sides[side].addresses[o.address_id] = Address(o.address, port, ctx.number)
        if type(o) is AddAddr and o.hmac is not None and ctx.verify:
            ks, kr = conn.sides[side].key, conn.sides[1 - side].key
            # an ADD_ADDR with an HMAC is v1's (RFC 8684 Section 3.4.1): the version when none was seen
            version = 1 if conn.version is None else conn.version
            what = f"ADD_ADDR HMAC (v{version})"
            if version not in (0, 1):
                c = Check(Verdict.UNVERIFIABLE, what, None, o.hmac, f"MPTCP version {version} has no known HMAC")
            elif ks is None or kr is None:
                c = Check(Verdict.UNVERIFIABLE, what, None, o.hmac, "keys not captured")
            else:
                c = crypto.verify_add_addr(ks, kr, o.address_id, o.address, port, o.hmac, version)
            ctx.check(c)
            if c.verdict is Verdict.MISMATCH:
                ctx.expert("mptcp.add_addr.hmac_mismatch", str(c))

    def remove_addr(self, o: RemoveAddr) -> None:
        ctx = self.ctx
        conn = ctx.sf.conn
        if conn is None:
            return
        side = ctx.sf.side(ctx.d)
        for aid in o.address_ids:
            a = conn.sides[side].addresses.get(aid)
            if a is not None:
                a.removed = ctx.number
        conn.history.append((ctx.number, f"{SIDE_NAMES[side]} REMOVE_ADDR id(s) {', '.join(map(str, o.address_ids))}"))

    def mp_prio(self, o: MpPrio) -> None:
        ctx = self.ctx
        sf = ctx.sf
        conn = sf.conn
        if conn is None:
            return
        side = sf.side(ctx.d)
        if o.address_id is None:
            sf.backup[1 - ctx.d] = o.backup  # v1: the receiver is asked to treat this subflow as backup
        conn.history.append(
            (
                ctx.number,
                f"{SIDE_NAMES[side]} MP_PRIO backup={int(o.backup)}"
                + (f" id {o.address_id}" if o.address_id is not None else ""),
            )
        )
