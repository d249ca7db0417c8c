"""MPTCP cryptography: key-derived tokens and IDSNs, MP_JOIN and ADD_ADDR HMACs,
the DSS checksum, key generation, and checks of all of them against captured values.

Conventions: keys, nonces, tokens, IDSNs and truncated HMACs are Python ``int``;
full (or 160-bit) HMACs are ``bytes``.  ``version`` is the MPTCP version: 0 for
RFC 6824 (SHA-1 / HMAC-SHA1), 1 for RFC 8684 (SHA-256 / HMAC-SHA256).  Every
hash and HMAC is computed with the standard library (``hashlib``, ``hmac``: OpenSSL's
where Python is built with it, as it usually is), digests compared with
``hmac.compare_digest`` (in constant time).

What the Linux implementation (net/mptcp) does, and this module mirrors:

* ``mptcp_crypto_key_sha()`` (crypto.c) hashes the 64-bit key as 8 octets in
  network byte order (``cpu_to_be64``); the token is the first 32-bit big-endian
  word of the digest, the IDSN the last 64-bit big-endian word
  (``mptcp_hashed_key[6..7]`` of the 32-octet SHA-256 digest).  Wireshark's
  v0 ``mptcp_cryptodata_sha1()`` does the same with SHA-1 (first 4 octets, last
  8 octets of the 20-octet digest).
* ``mptcp_crypto_hmac_sha(key1, key2, msg)`` (crypto.c) is HMAC-SHA256 keyed by
  ``be64(key1) || be64(key2)`` and returns the full 32-octet digest.
* ``subflow_generate_hmac(key1, key2, nonce1, nonce2)`` (subflow.c) hashes
  ``be32(nonce1) || be32(nonce2)``.  The listener sends in the MP_JOIN SYN/ACK
  ``get_unaligned_be64(hmac)`` of ``(local_key, remote_key, local_nonce,
  remote_nonce)`` (``subflow_req_create_thmac``), i.e. the *leftmost* 64 bits of
  HMAC-B; the initiator checks it with the keys and nonces swapped
  (``subflow_thmac_valid``) and sends the leftmost 160 bits
  (``MPTCPOPT_HMAC_LEN`` = 20) of HMAC-A in the third ACK
  (``subflow_finish_connect``).
* ``add_addr_generate_hmac(key1, key2, addr)`` (options.c) hashes
  ``id || address || be16(port)`` (port 0 when the option carries none) and
  returns ``get_unaligned_be64(&hmac[SHA256_DIGEST_SIZE - 8])``: the *rightmost*
  64 bits.  The sender passes ``(local_key, remote_key)``
  (``mptcp_established_options_add_addr``), the receiver ``(remote_key,
  local_key)`` (``add_addr_hmac_valid``): the key of the host that sends the
  ADD_ADDR comes first.  Linux kernels before commit 12555a2d97e5 ("mptcp: use
  rightmost 64 bits in ADD_ADDR HMAC", May 2020) sent the *leftmost* 64 bits;
  the tcpdump test capture mptcp-aa-v1.pcap (February 2020) is of that kind.
  ``add_addr_hmac(..., leftmost=True)`` reproduces it.
* ``__mptcp_make_csum(data_seq, subflow_seq, data_len, sum)`` (options.c) folds
  the Internet checksum of the pseudo-header ``be64(DSN) || be32(SSN) ||
  be16(data_len) || 0x0000`` plus the payload sum.  The DSN is always the 64-bit
  value, whatever width the option carries.  The SSN is relative to the
  subflow's initial sequence number (``rel_write_seq`` starts at 1 on the
  sender, ``ssn_offset`` is the peer's ISN on the receiver), exactly the value
  the DSS option carries.  The receiver (``validate_data_csum`` in subflow.c)
  starts the sum from the received checksum field, adds the payload and the
  pseudo-header with ``data_len = map_data_len + map_data_fin`` (a DATA_FIN
  takes one octet of data-level length but no payload) and accepts when the
  folded result is zero.
"""

from __future__ import annotations

import ipaddress
from enum import IntEnum
from functools import lru_cache

from mptcpspec.errors import EncodeError, MptcpspecError
from mptcpspec.records import dataclass

# ``hashlib`` and ``hmac`` are imported on the first hash or HMAC (loading OpenSSL's library takes a
# few milliseconds): a command or a capture that computes none starts without them.

__all__ = [
    "key_token",
    "key_idsn",
    "keyed_hmac",
    "join_hmac",
    "join_synack_hmac",
    "join_ack_hmac",
    "add_addr_hmac",
    "dss_checksum",
    "dss_checksum_ok",
    "generate_key",
    "Verdict",
    "Check",
    "verify_token",
    "verify_idsn",
    "verify_join_synack",
    "verify_join_ack",
    "verify_add_addr",
    "verify_dss_checksum",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The hash of each version, by its ``hashlib`` name: v0 (RFC 6824) SHA-1, v1 (RFC 8684) SHA-256.
_ALGORITHMS = {0: "sha1", 1: "sha256"}

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1

#: Length in octets of the HMAC carried in the MP_JOIN third ACK (both versions).
JOIN_ACK_HMAC_LEN = 20

_KEYGEN_MAX_TRIES = 10_000


# --------------------------------------------------------------------------- helpers


def _algorithm(version: int) -> str:
    try:
        return _ALGORITHMS[version]
    except (KeyError, TypeError):
        raise EncodeError(
            "MPTCP crypto", "version", f"unsupported MPTCP version {version!r}; expected 0 or 1"
        ) from None


def _uint(value: int, bits: int, what: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(what, field, f"expected an int, got {type(value).__name__}")
    if value < 0 or value >> bits:
        raise EncodeError(what, field, f"{value} does not fit in {bits} bits")
    return value


def _key_bytes(key1: int, key2: int, what: str) -> bytes:
    return _uint(key1, 64, what, "key1").to_bytes(8, "big") + _uint(key2, 64, what, "key2").to_bytes(8, "big")


@lru_cache(maxsize=4096)
def _key_digest(key: int, version: int) -> bytes:
    import hashlib

    return hashlib.new(_ALGORITHMS[version], key.to_bytes(8, "big")).digest()


def _digest_of_key(key: int, version: int) -> bytes:
    _algorithm(version)
    return _key_digest(_uint(key, 64, "MPTCP key", "key"), version)


# --------------------------------------------------------------------------- keys


def key_token(key: int, version: int = 1) -> int:
    """Token of a 64-bit key: the most significant 32 bits of its hash.

    RFC 8684 §3.1/§3.2 (SHA-256, v1) and RFC 6824 §3.1/§3.2 (SHA-1, v0): the
    token is the hash of the key truncated to its most significant 32 bits.  The
    key is hashed as 8 octets in network byte order, as ``mptcp_crypto_key_sha``
    does (``cpu_to_be64``); the token is the first big-endian 32-bit word of the
    digest.
    """
    return int.from_bytes(_digest_of_key(key, version)[:4], "big")


def key_idsn(key: int, version: int = 1) -> int:
    """Initial Data Sequence Number of a 64-bit key: the least significant 64 bits of its hash.

    RFC 8684 §3.1 (SHA-256) and RFC 6824 §3.1 (SHA-1).  ``mptcp_crypto_key_sha``
    takes the last 8 octets of the digest as a big-endian integer.  The first
    data octet a host sends has DSN ``IDSN + 1`` (the SYN takes the IDSN itself).
    """
    return int.from_bytes(_digest_of_key(key, version)[-8:], "big")


def keyed_hmac(key1: int, key2: int, message: bytes, version: int = 1) -> bytes:
    """HMAC with Key = ``key1 || key2`` (8 octets each, big-endian) over ``message``; the full digest.

    The primitive every MPTCP HMAC uses (RFC 8684 §3.2, RFC 6824 §3.2; Linux
    ``mptcp_crypto_hmac_sha``): HMAC-SHA256 (32 octets) for v1, HMAC-SHA1
    (20 octets) for v0.
    """
    import hmac

    key = _key_bytes(key1, key2, "MPTCP HMAC")
    return hmac.digest(key, message, _algorithm(version))


def generate_key(version: int = 1, *, in_use: set[int] | None = None) -> int:
    """A fresh 64-bit key from a CSPRNG, never 0, whose token is not in ``in_use``.

    RFC 8684 §3.1: the key must be hard to guess and the token derived from it
    must be unique among the host's connections, so a host picks again on a
    collision.  Linux does the same in ``subflow_check_req`` (draw until the key
    is non-zero, retry on an existing token).  ``in_use`` holds the tokens (not
    keys) already taken on this host.  Raises :class:`MptcpspecError` if no free
    token turns up after many draws (``in_use`` covering nearly the whole 32-bit
    space).
    """
    _algorithm(version)
    import secrets  # here only: a dissector draws no key

    for _ in range(_KEYGEN_MAX_TRIES):
        key = secrets.randbits(64)
        if key == 0:
            continue
        if in_use and key_token(key, version) in in_use:
            continue
        return key
    raise MptcpspecError(
        f"no key with a free token after {_KEYGEN_MAX_TRIES} draws ({len(in_use or ())} tokens in use)"
    )


# --------------------------------------------------------------------------- MP_JOIN


def join_hmac(key_local: int, key_remote: int, nonce_local: int, nonce_remote: int, version: int = 1) -> bytes:
    """The full MP_JOIN HMAC computed by the host whose key is ``key_local``.

    RFC 8684 §3.2 (HMAC-SHA256, 32 octets) and RFC 6824 §3.2 (HMAC-SHA1, 20
    octets): ``HMAC(Key=(Key-local || Key-remote), Msg=(R-local || R-remote))``,
    keys as 8 octets and random numbers (nonces) as 4 octets, big-endian.

    With host A the initiator of the subflow and host B the listener:

    * HMAC-A, sent by A in the third ACK, is ``join_hmac(key_A, key_B, R_A, R_B)``;
    * HMAC-B, sent by B in the SYN/ACK, is ``join_hmac(key_B, key_A, R_B, R_A)``.

    Linux: ``subflow_generate_hmac(key1, key2, nonce1, nonce2)`` in subflow.c.
    """
    msg = _uint(nonce_local, 32, "MP_JOIN", "nonce_local").to_bytes(4, "big") + _uint(
        nonce_remote, 32, "MP_JOIN", "nonce_remote"
    ).to_bytes(4, "big")
    return keyed_hmac(key_local, key_remote, msg, version)


def join_synack_hmac(key_local: int, key_remote: int, nonce_local: int, nonce_remote: int, version: int = 1) -> int:
    """The truncated HMAC of an MP_JOIN SYN/ACK: the leftmost 64 bits of :func:`join_hmac`.

    RFC 8684 §3.2 / RFC 6824 §3.2.  Called from the listener's (B's) point of
    view: ``join_synack_hmac(key_B, key_A, R_B, R_A)``.  Linux:
    ``subflow_req_create_thmac`` (``get_unaligned_be64(hmac)``).
    """
    return int.from_bytes(join_hmac(key_local, key_remote, nonce_local, nonce_remote, version)[:8], "big")


def join_ack_hmac(key_local: int, key_remote: int, nonce_local: int, nonce_remote: int, version: int = 1) -> bytes:
    """The HMAC of an MP_JOIN third ACK: the leftmost 160 bits (20 octets) of :func:`join_hmac`.

    RFC 8684 §3.2 (truncated from 256 bits) / RFC 6824 §3.2 (the whole
    HMAC-SHA1).  Called from the initiator's (A's) point of view:
    ``join_ack_hmac(key_A, key_B, R_A, R_B)``.  Linux: ``subflow_finish_connect``
    copies ``MPTCPOPT_HMAC_LEN`` (20) octets.
    """
    return join_hmac(key_local, key_remote, nonce_local, nonce_remote, version)[:JOIN_ACK_HMAC_LEN]


# --------------------------------------------------------------------------- ADD_ADDR


def _as_address(address: object) -> IPAddress:
    if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return address
    if isinstance(address, str):
        try:
            return ipaddress.ip_address(address)
        except ValueError as exc:
            raise EncodeError("ADD_ADDR", "address", str(exc)) from None
    raise EncodeError("ADD_ADDR", "address", f"expected an IPv4Address or IPv6Address, got {type(address).__name__}")


def add_addr_hmac(
    key_sender: int,
    key_receiver: int,
    address_id: int,
    address: IPAddress,
    port: int | None,
    version: int = 1,
    *,
    leftmost: bool = False,
) -> int:
    """The 64-bit truncated HMAC of an ADD_ADDR option (RFC 8684 §3.4.1).

    ``HMAC-SHA256(Key=(Key-sender || Key-receiver), Msg=(Address ID || IP
    Address || Port))``: the ID is one octet, the address 4 or 16 octets, the
    port 2 octets big-endian and present in the message even when the option
    carries none (then 0).  ``key_sender`` is the key of the host that sends
    the ADD_ADDR.

    The value returned is the *rightmost* 64 bits of the 32-octet HMAC, as RFC
    8684 §3.4.1 says and as Linux sends it: ``add_addr_generate_hmac`` in
    options.c returns ``get_unaligned_be64(&hmac[SHA256_DIGEST_SIZE -
    sizeof(u64)])``, called with ``(msk->local_key, msk->remote_key)`` by the
    sender.  ``leftmost=True`` gives the first 64 bits instead, which Linux sent
    before commit 12555a2d97e5 (May 2020); use it only to check such old
    captures.

    MPTCP v0 (RFC 6824 §3.4.1) ADD_ADDR carries no HMAC: ``version=0`` raises
    :class:`EncodeError`.
    """
    if version == 0:
        raise EncodeError("ADD_ADDR", "version", "MPTCP v0 (RFC 6824) ADD_ADDR carries no HMAC")
    addr = _as_address(address)
    msg = (
        _uint(address_id, 8, "ADD_ADDR", "address_id").to_bytes(1, "big")
        + addr.packed
        + _uint(0 if port is None else port, 16, "ADD_ADDR", "port").to_bytes(2, "big")
    )
    digest = keyed_hmac(key_sender, key_receiver, msg, version)
    return int.from_bytes(digest[:8] if leftmost else digest[-8:], "big")


# --------------------------------------------------------------------------- DSS checksum


def _fold(total: int) -> int:
    """One's complement sum of 16-bit words, folded to 16 bits.

    ``total`` is the sum of big-endian 16-bit words, or any integer congruent to
    it modulo 0xFFFF that is zero only when every word is zero (since 2**16 is
    1 modulo 0xFFFF, a whole buffer read as one big integer qualifies).  A
    non-zero sum folds to 1..0xFFFF (end-around carry never yields 0).
    """
    return 0 if total == 0 else (total - 1) % 0xFFFF + 1


def _payload_sum(payload: bytes | bytearray | memoryview) -> int:
    # The buffer read as one big-endian integer is congruent, modulo 0xFFFF, to
    # the sum of its 16-bit words; an odd length is padded with a zero octet on
    # the right (RFC 793 / RFC 1071), which is a shift by 8 bits.
    n = len(payload)
    value = int.from_bytes(payload, "big")
    return value << 8 if n & 1 else value


def _pseudo_header_sum(dsn: int, ssn: int, data_level_length: int) -> int:
    dsn = _uint(dsn, 64, "DSS", "dsn")
    ssn = _uint(ssn, 32, "DSS", "ssn")
    length = _uint(data_level_length, 16, "DSS", "data_level_length")
    # be64(DSN) || be32(SSN) || be16(length) || be16(0), as 16-bit words.
    return (
        (dsn >> 48)
        + ((dsn >> 32) & 0xFFFF)
        + ((dsn >> 16) & 0xFFFF)
        + (dsn & 0xFFFF)
        + (ssn >> 16)
        + (ssn & 0xFFFF)
        + length
    )


def dss_checksum(dsn: int, ssn: int, data_level_length: int, payload: bytes) -> int:
    """The DSS checksum to place in the option (RFC 8684 §3.3.1, RFC 6824 §3.3.1).

    The 16-bit one's complement of the one's complement sum of the
    pseudo-header ``DSN (64 bits) || SSN (32) || data-level length (16) ||
    zero checksum (16)`` followed by the mapped payload (zero-padded to an even
    length).

    * ``dsn`` is the full 64-bit data sequence number, even when the option
      carries only its low 32 bits (RFC 8684 §3.3.1; Linux ``mptcp_make_csum``
      puts ``cpu_to_be64(data_seq)``).  For the data of an MP_CAPABLE ACK it is
      ``IDSN + 1`` with ``ssn`` 1.
    * ``ssn`` is the subflow sequence number relative to the subflow's initial
      sequence number (the first data octet is 1), as carried in the option.
    * ``data_level_length`` is the length field of the option.  A DATA_FIN
      takes one octet of it but none of the payload: for a DATA_FIN alone pass
      ``data_level_length=1`` and ``payload=b""``; for data plus DATA_FIN pass
      ``len(payload) + 1`` (Linux ``validate_data_csum`` uses ``map_data_len +
      map_data_fin``).
    * ``payload`` is all the data the mapping covers, which may span several
      TCP segments.

    Linux: ``__mptcp_make_csum`` (options.c).  Summing is done on whole-buffer
    integers, with no per-octet Python loop.
    """
    total = _pseudo_header_sum(dsn, ssn, data_level_length) + _payload_sum(payload)
    return ~_fold(total) & 0xFFFF


def dss_checksum_ok(dsn: int, ssn: int, data_level_length: int, payload: bytes, checksum: int) -> bool:
    """Whether ``checksum`` is a valid DSS checksum for this mapping (RFC 8684 §3.3.1).

    Checked the receiver's way (Linux ``validate_data_csum``): the one's
    complement sum of pseudo-header, payload and the received checksum must be
    0xFFFF, so both representations of zero are accepted.
    """
    total = _pseudo_header_sum(dsn, ssn, data_level_length) + _payload_sum(payload)
    total += _uint(checksum, 16, "DSS", "checksum")
    return _fold(total) == 0xFFFF


# --------------------------------------------------------------------------- verification


class Verdict(IntEnum):
    """Outcome of checking a captured value against the one computed from its inputs."""

    VERIFIED = 0
    MISMATCH = 1
    UNVERIFIABLE = 2


@dataclass(frozen=True, slots=True)
class Check:
    """Result of one check: ``what`` was checked, the value computed (``expected``)
    and the value seen (``actual``), and ``why`` for anything not plainly verified."""

    verdict: Verdict
    what: str
    expected: object = None
    actual: object = None
    why: str = ""

    @property
    def ok(self) -> bool:
        """True only when the value was checked and matched."""
        return self.verdict == Verdict.VERIFIED

    def __str__(self) -> str:
        text = f"{self.what}: {self.verdict.name}"
        if self.verdict is Verdict.MISMATCH:
            text += f" (expected {_show(self.expected)}, got {_show(self.actual)})"
        if self.why:
            text += f": {self.why}"
        return text


def _show(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, int) and not isinstance(value, bool):
        return hex(value)
    return repr(value)


def _unknown(what: str, actual: object, **inputs: object) -> Check:
    """UNVERIFIABLE, naming the ``inputs`` that are None (callers pass at least one)."""
    unknown = [name for name, value in inputs.items() if value is None]
    return Check(Verdict.UNVERIFIABLE, what, None, actual, "unknown: " + ", ".join(unknown))


def _compare(what: str, expected: object, actual: object, why: str = "") -> Check:
    if isinstance(expected, bytes):  # a digest: hmac, which made it, is loaded
        from hmac import compare_digest

        same = isinstance(actual, (bytes, bytearray)) and compare_digest(expected, bytes(actual))
    else:
        same = expected == actual
    return Check(Verdict.VERIFIED if same else Verdict.MISMATCH, what, expected, actual, why)


def verify_token(key: int | None, token: int | None, version: int = 1) -> Check:
    """Check that ``token`` is the token of ``key`` (RFC 8684 §3.2, RFC 6824 §3.2)."""
    what = f"token (v{version})"
    if key is None or token is None:
        return _unknown(what, token, key=key, token=token)
    return _compare(what, key_token(key, version), token)


def verify_idsn(key: int | None, idsn: int | None, version: int = 1, *, bits: int = 64) -> Check:
    """Check that ``idsn`` is the IDSN of ``key`` (RFC 8684 §3.1, RFC 6824 §3.1).

    ``bits=32`` compares only the low 32 bits, for a DSN seen in a 32-bit DSS
    field.
    """
    what = f"IDSN (v{version})"
    if bits not in (32, 64):
        raise EncodeError("IDSN", "bits", f"expected 32 or 64, got {bits!r}")
    if key is None or idsn is None:
        return _unknown(what, idsn, key=key, idsn=idsn)
    mask = _U64 if bits == 64 else _U32
    return _compare(what, key_idsn(key, version) & mask, idsn, "" if bits == 64 else "low 32 bits only")


def verify_join_synack(
    key_b: int | None,
    key_a: int | None,
    nonce_b: int | None,
    nonce_a: int | None,
    truncated_hmac: int | None,
    version: int = 1,
) -> Check:
    """Check the truncated HMAC-B of an MP_JOIN SYN/ACK sent by the listener B (RFC 8684 §3.2).

    ``key_b``/``nonce_b`` are the listener's, ``key_a``/``nonce_a`` the
    initiator's (``nonce_a`` from the SYN, ``nonce_b`` from the SYN/ACK).
    """
    what = f"MP_JOIN SYN/ACK HMAC (v{version})"
    if key_b is None or key_a is None or nonce_b is None or nonce_a is None or truncated_hmac is None:
        return _unknown(
            what,
            truncated_hmac,
            key_b=key_b,
            key_a=key_a,
            nonce_b=nonce_b,
            nonce_a=nonce_a,
            truncated_hmac=truncated_hmac,
        )
    return _compare(what, join_synack_hmac(key_b, key_a, nonce_b, nonce_a, version), truncated_hmac)


def verify_join_ack(
    key_a: int | None,
    key_b: int | None,
    nonce_a: int | None,
    nonce_b: int | None,
    hmac: bytes | int | None,
    version: int = 1,
) -> Check:
    """Check the 160-bit HMAC-A of an MP_JOIN third ACK sent by the initiator A (RFC 8684 §3.2).

    ``hmac`` is the 20 octets of the option (an ``int`` is taken as their
    big-endian value).
    """
    what = f"MP_JOIN ACK HMAC (v{version})"
    if key_a is None or key_b is None or nonce_a is None or nonce_b is None or hmac is None:
        return _unknown(what, hmac, key_a=key_a, key_b=key_b, nonce_a=nonce_a, nonce_b=nonce_b, hmac=hmac)
    if isinstance(hmac, int) and not isinstance(hmac, bool):
        hmac = _uint(hmac, 8 * JOIN_ACK_HMAC_LEN, "MP_JOIN", "hmac").to_bytes(JOIN_ACK_HMAC_LEN, "big")
    return _compare(what, join_ack_hmac(key_a, key_b, nonce_a, nonce_b, version), hmac)


def verify_add_addr(
    key_sender: int | None,
    key_receiver: int | None,
    address_id: int | None,
    address: IPAddress | None,
    port: int | None,
    hmac: int | None,
    version: int = 1,
    *,
    accept_leftmost: bool = False,
) -> Check:
    """Check the truncated HMAC of an ADD_ADDR option (RFC 8684 §3.4.1).

    ``port`` may be None (the option carries no port: 0 is hashed).  An HMAC
    that matches only the leftmost 64 bits, as Linux sent before May 2020, is a
    MISMATCH whose ``why`` says so, or VERIFIED (with that note) when
    ``accept_leftmost`` is true.  Version 0 has no ADD_ADDR HMAC: UNVERIFIABLE.
    """
    what = f"ADD_ADDR HMAC (v{version})"
    if version == 0:
        return Check(Verdict.UNVERIFIABLE, what, None, hmac, "MPTCP v0 (RFC 6824) ADD_ADDR carries no HMAC")
    if key_sender is None or key_receiver is None or address_id is None or address is None or hmac is None:
        return _unknown(
            what,
            hmac,
            key_sender=key_sender,
            key_receiver=key_receiver,
            address_id=address_id,
            address=address,
            hmac=hmac,
        )
    expected = add_addr_hmac(key_sender, key_receiver, address_id, address, port, version)
    if expected == hmac:
        return Check(Verdict.VERIFIED, what, expected, hmac)
    legacy = add_addr_hmac(key_sender, key_receiver, address_id, address, port, version, leftmost=True)
    if legacy == hmac:
        note = "matches the leftmost 64 bits of the HMAC (Linux before May 2020); RFC 8684 §3.4.1 takes the rightmost"
        verdict = Verdict.VERIFIED if accept_leftmost else Verdict.MISMATCH
        return Check(verdict, what, expected, hmac, note)
    return Check(Verdict.MISMATCH, what, expected, hmac)


def verify_dss_checksum(
    dsn: int | None,
    ssn: int | None,
    data_level_length: int | None,
    payload: bytes | None,
    checksum: int | None,
    payload_len: int | None = None,
) -> Check:
    """Check a DSS checksum against the mapped payload (RFC 8684 §3.3.1).

    Arguments as for :func:`dss_checksum`; ``payload_len`` is the number of
    payload octets the packet really had, when known: a payload cut by the
    capture's snaplen (``len(payload) < payload_len``) is UNVERIFIABLE, as is a
    payload shorter than the mapping (``len(payload) < data_level_length - 1``:
    the mapping continues in other segments) and the infinite mapping
    (``data_level_length == 0``, which Linux sends with checksum 0).
    """
    what = "DSS checksum"
    if dsn is None or ssn is None or data_level_length is None or payload is None or checksum is None:
        return _unknown(
            what, checksum, dsn=dsn, ssn=ssn, data_level_length=data_level_length, payload=payload, checksum=checksum
        )
    n = len(payload)
    if payload_len is not None and n < payload_len:
        return Check(
            Verdict.UNVERIFIABLE, what, None, checksum, f"payload truncated: {n} of {payload_len} octets captured"
        )
    if data_level_length == 0:
        return Check(
            Verdict.UNVERIFIABLE, what, None, checksum, "infinite mapping (data-level length 0) has no checksum"
        )
    if n < data_level_length - 1:
        return Check(
            Verdict.UNVERIFIABLE,
            what,
            None,
            checksum,
            f"mapping covers {data_level_length} octets, only {n} given (it spans other segments)",
        )
    expected = dss_checksum(dsn, ssn, data_level_length, payload)
    if dss_checksum_ok(dsn, ssn, data_level_length, payload, checksum):
        return Check(Verdict.VERIFIED, what, expected, checksum)
    return Check(Verdict.MISMATCH, what, expected, checksum)
