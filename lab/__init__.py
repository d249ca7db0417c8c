"""The kernel test lab: two network namespaces joined by two veth pairs, MPTCP on both.

::

    with Lab(checksum=True) as lab:
        lab.rate_limit_all()  # so that the default scheduler spreads data over the subflows
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        with lab.capture(path):
            server, client = lab.transfer(size=40000, reply=30000, first=1000, wait_subflows=2)
        assert server["sha256"] == expected(40000)["sha256"]

Layout (documentation ranges only; nothing is routed outside the namespaces)::

    client  veth0  198.51.100.1/24  2001:db8:1::1/64  ----  veth0  198.51.100.2/24  2001:db8:1::2/64  server
            veth1  203.0.113.1/24   2001:db8:2::1/64  ----  veth1  203.0.113.2/24   2001:db8:2::2/64

In the client, traffic from a pair's address leaves by that pair (source routing), so a subflow
from 203.0.113.1 to 198.51.100.2 really crosses pair 1; the server answers by destination, so
both directions of a subflow use the same pair.  Segmentation offloads (TSO, GSO, GRO, LRO...)
and transmit checksum offload are off on every veth: captured segments are wire segments with
correct TCP checksums.  IPv6 DAD is off, so v6 addresses work at once.

Namespace names are ``PREFIX-<pid>-<counter>-client|server``: parallel labs never collide, and
:func:`cleanup_leftovers` removes those of a process that is gone.  Everything the lab creates
(namespaces, hence veths; processes started in them) is deleted on every exit path.

The lab waits on conditions, never for a fixed time: a link up, a socket in LISTEN or closed
(``ss``), a process gone, a namespace gone, a capture that holds what was sent.

Parts: :mod:`lab.host` (can the lab run here, commands, waiting), :mod:`lab.topology` (the
namespaces, addresses, routes, sockets), :mod:`lab.network` (path manager, shaping),
:mod:`lab.capture` (tcpdump), :mod:`lab.traffic` (the peers of ``lab/peer.py`` and transfers).

For tests: :func:`need_lab` skips (or, with ``CI=true``, fails) when the lab cannot run.
``python3 -m lab cleanup [--all]`` removes leftovers from the command line.  The lab is not part
of the installed package: tests and benchmarks import it from the repository.
"""

from __future__ import annotations

from lab.capture import SNAPLEN, WHOLE_MTU, Capture, Capturing
from lab.host import (
    CMD_TIMEOUT,
    PREFIX,
    TOOLS,
    LabError,
    cleanup_leftovers,
    delete_namespace,
    in_ci,
    lab_problem,
    list_namespaces,
    need_lab,
    wait_until,
)
from lab.network import Network
from lab.topology import ADDRS, NETS, PAIRS, PREFIXLEN, ROLES, Socket
from lab.traffic import DEFAULT_PORT, PEER, Peer, Traffic, expected

__all__ = [
    "ADDRS",
    "CMD_TIMEOUT",
    "DEFAULT_PORT",
    "NETS",
    "PAIRS",
    "PEER",
    "PREFIX",
    "PREFIXLEN",
    "ROLES",
    "SNAPLEN",
    "WHOLE_MTU",
    "TOOLS",
    "Capture",
    "Lab",
    "LabError",
    "Peer",
    "Socket",
    "cleanup_leftovers",
    "delete_namespace",
    "expected",
    "in_ci",
    "lab_problem",
    "list_namespaces",
    "need_lab",
    "wait_until",
]


class Lab(Traffic, Capturing, Network):
    """Two namespaces, ``client`` and ``server``, joined by two veth pairs; use as a context manager.

    ``checksum``: net.mptcp.checksum_enabled=1 in both.  ``tfo``: net.ipv4.tcp_fastopen=3 in both.
    """
