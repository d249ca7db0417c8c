"""A lab scenario with packet loss and reordering, for the subflow-level TCP analysis
(retransmissions, duplicate ACKs, out-of-order segments).

The kernel here may have no netem, so both are made with nftables and plain qdiscs, on the data
segments to the server, over two subflows, the capture taken in the client::

    server input, every LOSS-th segment dropped (nftables ``numgen inc``, after the capture point):
        the capture shows it twice: duplicate ACKs with SACK, fast retransmissions, retransmissions
    server output, the SYN/ACKs delayed (the same way): an initial RTT of some milliseconds, which
        Wireshark takes for the out-of-order threshold
    client output, every REORDER-th segment delayed: nftables gives it ``meta priority 1:30``, which
        sends it to a class of an ``htb`` qdisc shaped slower than the default one: it leaves after
        segments sent later (out-of-order segments, duplicate ACKs)

A TCP sender never leaves a hole on the wire when its own host drops a segment (the drop is an
error it sees, and it sends again at once), so "previous segment not captured" needs a capture that
missed frames: the tests delete frames from this one.

Run as root::

    python3 -m lab.loss OUT.pcap
    python3 -m lab.loss OUT.pcap --loss 13 --reorder 7 --size 60000 --reply 20000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab import DEFAULT_PORT, WHOLE_MTU, Lab, LabError, expected

__all__ = ["LOSSY_TABLE", "loss", "lossy_paths", "nft_rule_table", "random_loss_table"]

LOSSY_TABLE = "lab_lossy"


def nft_rule_table(table: str, hook: str, every: int, action: str, port: int = DEFAULT_PORT) -> str:
    """An nftables table that applies ``action`` to every ``every``-th TCP segment with payload to
    ``port`` at ``hook`` (``output`` or ``input``)."""
    return f"""table inet {table} {{
    chain {hook} {{
        type filter hook {hook} priority 0;
        tcp dport {port} meta length > 120 numgen inc mod {every} == 0 {action}
    }}
}}"""


def random_loss_table(percent: int, devs: tuple[str, ...] = ("veth0", "veth1"), table: str = LOSSY_TABLE) -> str:
    """An nftables table that drops ``percent`` % of the TCP packets, at random (``numgen random``),
    coming in and going out of each of ``devs``: loss each way on those paths."""
    lines = []
    for dev in devs:
        lines.append(f'iifname "{dev}" meta l4proto tcp numgen random mod 100 < {percent} drop')
    ins = "\n        ".join(lines)
    outs = "\n        ".join(x.replace("iifname", "oifname") for x in lines)
    return f"""table inet {table} {{
    chain input {{
        type filter hook input priority 0;
        {ins}
    }}
    chain output {{
        type filter hook output priority 0;
        {outs}
    }}
}}"""


def lossy_paths(lab: Lab, percent: int = 5, role: str = "server") -> None:
    """Both paths of ``lab`` lossy: ``percent`` % of the TCP packets dropped each way, in ``role``'s
    namespace (on its veth0 and veth1), at random; ``lab.run(role, "nft", "delete", "table",
    "inet", LOSSY_TABLE)`` ends it (deleting the lab's namespaces does too)."""
    lab.run(role, "nft", "-f", "-", input=random_loss_table(percent, tuple(lab.dev(p) for p in (0, 1))))


def _shape_with_slow_class(lab: Lab, role: str, dev: str, slow: str, rate: str = "20mbit") -> None:
    """``dev`` of ``role``: an ``htb`` qdisc (1:) whose default class 1:10 is shaped at ``rate`` (so
    the scheduler spreads data over the subflows, as :meth:`~lab.network.Network.rate_limit`) and
    class 1:30, where ``meta priority 1:30`` sends a packet, at ``slow``."""
    lab.run(role, "tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
    lab.run(role, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", rate)
    # a bucket smaller than any packet: every packet of the slow class waits for its tokens
    lab.run(
        role,
        *("tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:30"),
        *("htb", "rate", slow, "burst", "100", "cburst", "100"),
    )


def loss(
    path: Path,
    *,
    loss_every: int = 13,
    reorder_every: int = 7,
    size: int = 60000,
    reply: int = 20000,
    timeout: float = 30.0,
) -> dict:
    """Capture (client side, every interface) one MPTCP connection over two subflows whose data to
    the server is lost and reordered as the module says; the transfer must still be exact.  Returns
    tcpdump's counts."""
    with Lab() as lab:
        for pair in (0, 1):
            _shape_with_slow_class(lab, "server", lab.dev(pair), "2kbit")
            _shape_with_slow_class(lab, "client", lab.dev(pair), "20mbit", rate="200mbit")
        lab.endpoint_add("client", lab.addr("client", 1), "subflow", id=3)
        # the SYN/ACKs in the server's slow class: a handshake of some milliseconds, which Wireshark
        # takes for the out-of-order threshold (its initial RTT)
        slow_synack = f"""table inet lab_slow_synack {{
    chain output {{
        type filter hook output priority 0;
        tcp sport {DEFAULT_PORT} tcp flags & (syn | ack) == syn | ack meta priority set 1:30
    }}
}}"""
        tables = (
            ("client", nft_rule_table("lab_reorder", "output", reorder_every, "meta priority set 1:30")),
            ("server", nft_rule_table("lab_loss", "input", loss_every, "drop")),
            ("server", slow_synack),
        )
        for role, table in tables:
            lab.run(role, "nft", "-f", "-", input=table)
        with lab.capture(path, timeout=timeout, buffer_kib=65536, snaplen=WHOLE_MTU) as cap:
            s, c = lab.transfer(size=size, reply=reply, first=1000, wait_subflows=2, timeout=timeout)
        if (s["length"], s["sha256"]) != (size, expected(size)["sha256"]):
            raise LabError(f"server received {s['length']} octets, not the {size} sent")
        if (c["reply"]["length"], c["reply"]["sha256"]) != (reply, expected(reply, 1)["sha256"]):
            raise LabError(f"client received {c['reply']['length']} octets, not the {reply} sent")
        return cap.stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m lab.loss", description=__doc__.split("\n")[0])
    p.add_argument("path", type=Path)
    p.add_argument("--loss", type=int, default=13, help="drop every Nth data segment at the server's input")
    p.add_argument("--reorder", type=int, default=7, help="delay every Nth data segment at the client's output")
    p.add_argument("--size", type=int, default=60000)
    p.add_argument("--reply", type=int, default=20000)
    a = p.parse_args(argv)
    stats = loss(a.path, loss_every=a.loss, reorder_every=a.reorder, size=a.size, reply=a.reply)
    print(f"{a.path}: {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
