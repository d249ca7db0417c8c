"""Hypothesis strategies: every option value the RFCs allow, and raw octets to throw at decoders."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from mptcpspec.codec.options import (
    AddAddr,
    AddAddrV0,
    Dss,
    DssFlags,
    FastOpen,
    MpCapable,
    MpCapableFlags,
    MpExperimental,
    MpFail,
    MpFastclose,
    MpJoinAck,
    MpJoinSyn,
    MpJoinSynAck,
    MpPrio,
    MpTcpRst,
    MptcpUnknown,
    Mss,
    RemoveAddr,
    Sack,
    SackPermitted,
    TcpRstReason,
    TcpUnknown,
    Timestamps,
    WindowScale,
)

u4 = st.integers(0, 0xF)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 0xFFFFFFFFFFFFFFFF)
# Edges matter more than the middle.
u64 = st.one_of(u64, st.sampled_from([0, 1, 0xFFFFFFFF, 0x100000000, 0xFFFFFFFFFFFFFFFF]))
ipv4 = st.builds(ipaddress.IPv4Address, u32)
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))


@st.composite
def mp_capable(draw):
    version = draw(st.sampled_from([0, 1, 1, 2]))
    lengths = [12, 20] if version == 0 else [4, 12, 20, 22, 24]
    n = draw(st.sampled_from(lengths))
    return MpCapable(
        version=version,
        flags=MpCapableFlags(draw(u8)),
        sender_key=draw(u64) if n >= 12 else None,
        receiver_key=draw(u64) if n >= 20 else None,
        data_level_length=draw(u16) if n >= 22 else None,
        checksum=draw(u16) if n >= 24 else None,
    )


@st.composite
def dss(draw):
    flags = DssFlags(draw(u8))
    m = DssFlags.MAPPING_PRESENT in flags
    ack = draw(u64 if DssFlags.DATA_ACK_8 in flags else u32) if DssFlags.DATA_ACK_PRESENT in flags else None
    return Dss(
        reserved=draw(u4),
        flags=flags,
        data_ack=ack,
        dsn=draw(u64 if DssFlags.DSN_8 in flags else u32) if m else None,
        ssn=draw(u32) if m else None,
        data_level_length=draw(u16) if m else None,
        checksum=draw(st.none() | u16) if m else None,
    )


@st.composite
def add_addr(draw):
    return AddAddr(
        reserved=draw(st.integers(0, 7)),
        echo=draw(st.booleans()),
        address_id=draw(u8),
        address=draw(ipv4 | ipv6),
        port=draw(st.none() | u16),
        hmac=draw(st.none() | u64),
    )


@st.composite
def add_addr_v0(draw):
    addr = draw(ipv4 | ipv6)
    return AddAddrV0(ip_version=addr.version, address_id=draw(u8), address=addr, port=draw(st.none() | u16))


MPTCP = {
    "MpCapable": mp_capable(),
    "MpJoinSyn": st.builds(
        MpJoinSyn, reserved=st.integers(0, 7), backup=st.booleans(), address_id=u8, token=u32, nonce=u32
    ),
    "MpJoinSynAck": st.builds(
        MpJoinSynAck, reserved=st.integers(0, 7), backup=st.booleans(), address_id=u8, truncated_hmac=u64, nonce=u32
    ),
    "MpJoinAck": st.builds(MpJoinAck, reserved=st.integers(0, 0xFFF), hmac=st.binary(min_size=20, max_size=20)),
    "Dss": dss(),
    "AddAddrV0": add_addr_v0(),
    "AddAddr": add_addr(),
    "RemoveAddr": st.builds(RemoveAddr, reserved=u4, address_ids=st.lists(u8, min_size=1, max_size=37).map(tuple)),
    "MpPrio": st.builds(MpPrio, reserved=st.integers(0, 7), backup=st.booleans(), address_id=st.none() | u8),
    "MpFail": st.builds(MpFail, reserved=st.integers(0, 0xFFF), dsn=u64),
    "MpFastclose": st.builds(MpFastclose, reserved=st.integers(0, 0xFFF), receiver_key=u64),
    "MpTcpRst": st.builds(
        MpTcpRst,
        flag_u=st.booleans(),
        flag_v=st.booleans(),
        flag_w=st.booleans(),
        transient=st.booleans(),
        reason=st.sampled_from(list(TcpRstReason)) | u8,
    ),
    "MpExperimental": st.builds(MpExperimental, bits=u4, payload=st.binary(max_size=37)),
    "MptcpUnknown": st.builds(
        MptcpUnknown, subtype=st.sampled_from([9, 10, 11, 12, 13, 14]), bits=u4, payload=st.binary(max_size=37)
    ),
}

TCP = {
    "Mss": st.builds(Mss, mss=u16),
    "WindowScale": st.builds(WindowScale, shift=u8),
    "SackPermitted": st.just(SackPermitted()),
    "Sack": st.builds(Sack, edges=st.lists(u32, min_size=2, max_size=8).filter(lambda x: len(x) % 2 == 0).map(tuple)),
    "Timestamps": st.builds(Timestamps, tsval=u32, tsecr=u32),
    "FastOpen": st.builds(FastOpen, cookie=st.just(b"") | st.binary(min_size=4, max_size=16)),
    "TcpUnknown": st.builds(
        TcpUnknown, kind=st.integers(6, 255).filter(lambda k: k not in (8, 30, 34)), data=st.binary(max_size=38)
    ),
}

ALL = {**MPTCP, **TCP}
any_option = st.one_of(*ALL.values())


@st.composite
def mptcp_octets(draw):
    """Kind 30 with a consistent length octet and random content: mostly malformed, sometimes not."""
    body = draw(st.binary(min_size=0, max_size=38))
    if body and draw(st.booleans()):
        # Steer the subtype nibble to a defined subtype so every decoder gets exercised.
        st_nib = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 15]))
        body = bytes([(st_nib << 4) | (body[0] & 0xF)]) + body[1:]
    return bytes([30, len(body) + 2]) + body


@st.composite
def mutated(draw, strategy=any_option):
    """The encoding of a valid option with a few octets changed, cut or added (length octet kept in step)."""
    from mptcpspec.codec.options import encode_option

    data = bytearray(encode_option(draw(strategy)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "cut", "add"]))
        if op == "flip" and len(data) > 2:
            i = draw(st.integers(2, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut" and len(data) > 3:
            del data[-draw(st.integers(1, min(4, len(data) - 3))) :]
        elif op == "add" and len(data) < 40:
            data += draw(st.binary(min_size=1, max_size=min(8, 40 - len(data))))
    if len(data) >= 2 and data[0] not in (0, 1):
        data[1] = len(data)
    return bytes(data)
