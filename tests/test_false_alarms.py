"""No false alarms from the handshake machines, on captures the kernel made (``lab/strays.py``).

* ``v4-stray-ack.pcap``: a bare ACK of the join's initiator before the SYN/ACK, and the listener's
  RST without ACK in answer to it; both are segments TCP drops (RFC 9293 Section 3.10.7), so they
  get an expert item and the join, which then completes, ends ESTABLISHED on both ends.
* ``v4-stray-ack-capable.pcap``: the same before the MP_CAPABLE SYN/ACK: no fallback.
* ``v4-reset-client.pcap`` / ``v4-reset-server.pcap``: the ACK of the initiator's HMAC never shows
  (nftables dropped it) and ``ss -K`` resets the join on one side: the RST of an initiator in
  PRE_ESTABLISHED, of a listener in ESTABLISHED (RFC 8684 Section 3.6: a subflow may be reset in any
  state).
* ``v4-reset-established.pcap``: a RST on a join that completed and carried data.
* ``v4-add-addr-no-keys.pcap``: frames 5-40 of ``v4-add-addr.pcap`` (``editcap -r``), which start
  after the MP_CAPABLE handshake: the ADD_ADDR's HMAC cannot be checked without the keys.

Each connection carried 16384 octets each way (``lab.strays.SIZE``), checked by both peers.  The
lab tests make the four kernel captures afresh and check the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mptcpspec.capture.packets import Packet, TcpFlags, decode_frame
from mptcpspec.capture.pcap import read_records
from mptcpspec.codec.crypto import Verdict
from tests.conftest import CAPTURES, DATA
from tests.dissect_helpers import cli, experts, run, verdicts

STRAYS = DATA / "strays"
SIZE = 16384  # octets each way (lab.strays.SIZE)
JOIN_FROM = "203.0.113.1"  # the client's subflow endpoint: the join's initiator
SERVER = "198.51.100.2"
ACK, RST, SYN = int(TcpFlags.ACK), int(TcpFlags.RST), int(TcpFlags.SYN)
HANDSHAKE_ITEMS = ("mptcp.handshake.illegal", "mptcp.handshake.out_of_order")


def packets(path: Path) -> list[tuple[int, Packet]]:
    """(frame number, TCP segment) of each frame, as the capture layer decodes it."""
    out = []
    for n, r in enumerate(read_records(path), 1):
        p = decode_frame(r.linktype, r.data)
        if p is not None:
            out.append((n, p))
    return out


def join_of(d):
    """The connection's summary and that of its joined subflow (the one from 203.0.113.1)."""
    (conn,) = d.connections()
    s = conn.summary()
    (join,) = [sf for sf in s.subflows if sf.kind == "MP_JOIN"]
    assert join.initiator.startswith(JOIN_FROM + ":"), join
    return s, join


def common(path: Path):
    """What every kernel capture of lab/strays.py shows: data exact both ways, a closed connection,
    every check verified, no handshake flagged illegal; returns the infos, summary and join."""
    infos, d = run(path)
    s, join = join_of(d)
    assert (s.client_bytes, s.server_bytes) == (SIZE, SIZE)
    assert (s.client_state, s.server_state) == ("M_CLOSED", "M_CLOSED")
    got = verdicts(infos)
    assert got and all(v == "VERIFIED" for _, v in got), got
    assert {"MP_JOIN SYN/ACK HMAC (v1)", "MP_JOIN ACK HMAC (v1)"} <= {w for w, _ in got}
    found = experts(infos)
    assert "mptcp.handshake.illegal" not in found, [
        str(e) for i in infos for e in i.experts if e.key == "mptcp.handshake.illegal"
    ]
    assert not any("cannot send RST" in e.message for i in infos for e in i.experts)
    return infos, s, join


def check_stray_ack(path: Path, kind: str = "MP_JOIN") -> None:
    infos, s, join = common(path)
    (sf,) = [sf for sf in s.subflows if sf.kind == kind]
    src = sf.initiator.rpartition(":")[0]
    segs = packets(path)
    synack = next(n for n, p in segs if str(p.dst) == src and int(p.flags) & (SYN | ACK) == SYN | ACK)
    # the bare ACK (no option) from the initiator before the SYN/ACK, and the listener's RST without ACK
    stray = [n for n, p in segs if n < synack and str(p.src) == src and int(p.flags) == ACK and not p.options]
    answer = [n for n, p in segs if str(p.dst) == src and int(p.flags) == RST]
    assert len(stray) == 1 and len(answer) == 1, (stray, answer)
    flagged = [i.number for i in infos for e in i.experts if e.key == "mptcp.handshake.out_of_order"]
    assert flagged == stray + answer
    assert s.fallback is None
    for one in s.subflows:
        assert one.state == "A=ESTABLISHED B=ESTABLISHED" and not one.reset and one.closed, one
        assert sum(one.bytes) > 0  # data flowed on both subflows
    out = cli("connections", "-r", str(path)).stdout
    assert out.count("A=ESTABLISHED B=ESTABLISHED") == 2 and "FAILED" not in out and "FALLBACK" not in out, out


def check_reset_in_join(path: Path, by: str) -> None:
    infos, s, join = common(path)
    resets = [p for _, p in packets(path) if int(p.flags) & RST and JOIN_FROM in (str(p.src), str(p.dst))]
    # the first RST is the one `ss -K` made (the other end may answer it with its own: FAILED may reset)
    assert resets and str(resets[0].src) == (JOIN_FROM if by == "client" else SERVER)
    # The initiator never saw the ACK of its HMAC: it either reset in PRE_ESTABLISHED or received the
    # listener's RST there (RFC 8684 Section 3.2: ESTABLISHED "only on receipt of an ACK").
    assert join.state == "A=FAILED B=ESTABLISHED" and join.reset
    assert not any(e.key in HANDSHAKE_ITEMS for i in infos for e in i.experts)


def check_reset_established(path: Path) -> None:
    infos, s, join = common(path)
    assert join.state == "A=ESTABLISHED B=ESTABLISHED" and join.reset
    assert sum(join.bytes) > 0
    assert any(int(p.flags) & RST and str(p.src) == SERVER for _, p in packets(path))
    assert not any(e.key in HANDSHAKE_ITEMS for i in infos for e in i.experts)


CHECKS = {
    "stray-ack": check_stray_ack,
    "stray-ack-capable": lambda p: check_stray_ack(p, "MP_CAPABLE"),
    "reset-client": lambda p: check_reset_in_join(p, "client"),
    "reset-server": lambda p: check_reset_in_join(p, "server"),
    "reset-established": check_reset_established,
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_committed_capture(name):
    CHECKS[name](STRAYS / f"v4-{name}.pcap")


@pytest.mark.lab
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_fresh_lab_capture(name, tmp_path, lab_host):
    from lab import TOOLS, need_lab
    from lab.strays import make

    need_lab((*TOOLS, "nft"))
    path = tmp_path / f"v4-{name}.pcap"
    make(name, path)
    CHECKS[name](path)


# ----------------------------------------------------------------------------- closure and ADD_ADDR


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_no_closure_state_before_the_connection_is_established(path):
    """RFC 8684 Appendix D starts the closure machine in M_ESTAB, "connection established": not on
    the SYN or the SYN/ACK of the MP_CAPABLE handshake, but from its third ACK on."""
    segs = packets(path)[:3]
    flags = [int(p.flags) & (SYN | ACK) for _, p in segs]
    assert flags == [SYN, SYN | ACK, ACK]
    rows = cli(
        "dissect",
        "-r",
        str(path),
        "-c",
        "3",
        "-T",
        "fields",
        "-e",
        "mptcp.closure.client",
        "-e",
        "mptcp.closure.server",
    )
    assert rows.stdout.splitlines() == ["\t", "\t", "M_ESTAB\tM_ESTAB"], rows.stdout + rows.stderr
    tree = cli("dissect", "-r", str(path), "-c", "2").stdout
    assert "[Closure" not in tree and "MP_CAPABLE" in tree


def test_add_addr_hmac_without_the_keys_is_unverifiable():
    cut = STRAYS / "v4-add-addr-no-keys.pcap"
    whole = [r.data for r in read_records(DATA / "v4-add-addr.pcap")]
    assert [r.data for r in read_records(cut)] == whole[4:40]  # frames 5-40
    infos, _ = run(cut)
    (c,) = [c for i in infos for c in i.checks if c.what.startswith("ADD_ADDR")]
    assert (c.verdict, c.why) == (Verdict.UNVERIFIABLE, "keys not captured")
    # the same ADD_ADDR verifies where the keys are in the capture
    full, _ = run(DATA / "v4-add-addr.pcap")
    assert [c.verdict for i in full for c in i.checks if c.what.startswith("ADD_ADDR")] == [Verdict.VERIFIED]
    rows = cli(
        "dissect", "-r", str(cut), "-Y", "mptcp.add_addr.hmac.status", "-T", "fields",
        "-e", "mptcp.add_addr.hmac.status", "-e", "mptcp.check",
    )  # fmt: skip
    assert rows.stdout.splitlines() == ["unverifiable\tADD_ADDR HMAC (v1)=unverifiable"], rows.stderr
    tree = cli("dissect", "-r", str(cut), "-Y", "mptcp.add_addr.hmac.status").stdout
    assert "[Check: ADD_ADDR HMAC (v1): UNVERIFIABLE: keys not captured]" in tree
