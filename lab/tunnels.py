"""Tunnels in the lab: MPTCP subflows over VXLAN, each subflow in its own tunnel.

::

    with VxlanLab() as lab:
        with lab.capture(path, iface="veth0", bpf=VXLAN_TCP):
            server, client = lab.transfer(dst=lab.overlay("server", 0), size=40000, reply=20000, wait_subflows=2)

    server, client, capture = vxlan_capture(path, family=6, underlay=6)  # the same, checked

Layout: the lab's pair 0 is the underlay (198.51.100.1 ↔ 198.51.100.2, or 2001:db8:1::1 ↔
2001:db8:1::2 with ``underlay=6``; pair 1 stays unused).  Over it, tunnel ``t`` (0 and 1) is a
VXLAN device ``vxT`` on both sides, VNI ``100 + t``, UDP port 4789, with its own addresses::

    client  vx0  192.0.2.1/26   2001:db8:100::1/64  --- VNI 100 ---  vx0  192.0.2.2/26   2001:db8:100::2/64  server
            vx1  192.0.2.65/26  2001:db8:101::1/64  --- VNI 101 ---  vx1  192.0.2.66/26  2001:db8:101::2/64

The client connects to the server's tunnel-0 address; its ``subflow`` endpoint on its tunnel-1
address makes the second subflow, which leaves by tunnel 1 (source routing, as the lab does for
its pairs) and so crosses the underlay with VNI 101.  The tunnels' MAC addresses and neighbours
(ARP, NDP) are fixed, so no address resolution crosses a tunnel; offloads are off on the VXLAN
devices as on the veths, and they are shaped (20 Mbit/s) so that the default scheduler uses both
subflows.  A capture on the underlay veth (``bpf=VXLAN_TCP``) holds Ethernet / IP / UDP 4789 /
VXLAN / Ethernet / IP / TCP frames: the tunnelled TCP segments, nothing else.  Everything lives in
the lab's namespaces and goes with them.

Only VXLAN: a kernel built without 802.1Q VLANs, MPLS routing, GRE, IP-in-IP or Geneve (as the
one the committed captures were made on) cannot make those devices; :func:`tunnel_problem` says
whether this one can make a device type.
"""

from __future__ import annotations

import os

from lab import Lab
from lab.capture import Capture
from lab.host import CMD_TIMEOUT, PREFIX, LabError, delete_namespace, in_ci, lab_problem, run_command
from lab.traffic import expected

__all__ = [
    "OVERLAY",
    "TUNNELS",
    "VNI_BASE",
    "VXLAN_PORT",
    "VXLAN_TCP",
    "VxlanLab",
    "need_vxlan",
    "tunnel_problem",
    "vxlan_capture",
]

VXLAN_PORT = 4789
VNI_BASE = 100
TUNNELS = (0, 1)
# (role, tunnel, family) -> address on the tunnel's device; prefix lengths in OVERLAY_PREFIXLEN.
OVERLAY = {
    ("client", 0, 4): "192.0.2.1",
    ("server", 0, 4): "192.0.2.2",
    ("client", 1, 4): "192.0.2.65",
    ("server", 1, 4): "192.0.2.66",
    ("client", 0, 6): "2001:db8:100::1",
    ("server", 0, 6): "2001:db8:100::2",
    ("client", 1, 6): "2001:db8:101::1",
    ("server", 1, 6): "2001:db8:101::2",
}
OVERLAY_PREFIXLEN = {4: 26, 6: 64}
OVERLAY_NETS = {
    (0, 4): "192.0.2.0/26",
    (1, 4): "192.0.2.64/26",
    (0, 6): "2001:db8:100::/64",
    (1, 6): "2001:db8:101::/64",
}
#: tcpdump filter: VXLAN datagrams to port 4789 whose inner Ethernet frame holds IPv4 or IPv6 TCP.
#: Offsets from the UDP header (8 UDP + 8 VXLAN, then the inner EtherType at +12 and IP at +14);
#: libpcap's ``udp[]`` indexes IPv4 only, so over IPv6 (no extension headers) they count from ``ip6[40]``.
VXLAN_TCP = (
    f"udp dst port {VXLAN_PORT} and ("
    "(ip and ((udp[28:2] = 0x0800 and udp[39] = 6) or (udp[28:2] = 0x86dd and udp[36] = 6))) or "
    "(ip6 and ip6[6] = 17 and ((ip6[68:2] = 0x0800 and ip6[79] = 6) or (ip6[68:2] = 0x86dd and ip6[76] = 6))))"
)


def tunnel_mac(role: str, tunnel: int) -> str:
    """The fixed MAC address of a tunnel's device (locally administered)."""
    return f"02:00:00:00:{tunnel:02x}:{1 if role == 'client' else 2:02x}"


def tunnel_problem(kind: str = "vxlan", *args: str) -> str | None:
    """Why this host cannot make a ``kind`` device (``ip link add ... type KIND ARGS``), or None.

    Tried in a namespace of its own, deleted afterwards; the lab's own needs come first.
    """
    why = lab_problem()
    if why is not None:
        return why
    probe = f"{PREFIX}-{os.getpid()}-probe-{kind}"
    run_command(["ip", "netns", "add", probe])
    try:
        r = run_command(["ip", "-n", probe, "link", "add", "t0", "type", kind, *args], check=False, timeout=CMD_TIMEOUT)
        if r.returncode != 0:
            return f"this kernel cannot make {kind} devices: {(r.stderr or r.stdout).strip()}"
    finally:
        delete_namespace(probe)
    return None


def need_vxlan() -> None:
    """In a test: skip with the reason when the lab or VXLAN cannot run here; with CI=true, fail."""
    import pytest

    why = tunnel_problem("vxlan", "id", str(VNI_BASE), "dstport", str(VXLAN_PORT))
    if why is None:
        return
    if in_ci():
        pytest.fail(f"{why} (CI=true: the lab tests must run)")
    pytest.skip(why)


class VxlanLab(Lab):
    """The lab with two VXLAN tunnels over pair 0, one per subflow; use as a context manager.

    ``underlay``: 4 or 6, the family of the tunnels' outer addresses.  ``rate``: the tbf rate of
    the tunnel devices (None: unshaped).  The client has a ``subflow`` endpoint on its tunnel-1
    address of each family (ids 11 and 12), so a connection to :meth:`overlay` ``("server", 0)``
    gets a second subflow over tunnel 1.  Other arguments as :class:`lab.Lab`.
    """

    def __init__(self, *, underlay: int = 4, rate: str | None = "20mbit", **kw):
        super().__init__(**kw)
        if underlay not in (4, 6):
            raise ValueError(f"underlay family {underlay}: 4 or 6")
        self.underlay, self.rate = underlay, rate

    @staticmethod
    def tunnel_dev(tunnel: int) -> str:
        return f"vx{tunnel}"

    @staticmethod
    def overlay(role: str, tunnel: int = 0, family: int = 4) -> str:
        """A tunnel device's address."""
        return OVERLAY[(role, tunnel, family)]

    def _build(self) -> None:
        super()._build()
        for t in TUNNELS:
            dev = self.tunnel_dev(t)
            for role in ("client", "server"):
                other = "server" if role == "client" else "client"
                self.ip(
                    role,
                    *("link", "add", dev, "address", tunnel_mac(role, t), "type", "vxlan", "id", VNI_BASE + t),
                    *("local", self.addr(role, 0, self.underlay), "remote", self.addr(other, 0, self.underlay)),
                    *("dstport", VXLAN_PORT, "dev", self.dev(0), "nolearning"),
                )
                self.offloads_off(role, dev)
                for fam in (4, 6):
                    extra = ["nodad"] if fam == 6 else []
                    addr = f"{self.overlay(role, t, fam)}/{OVERLAY_PREFIXLEN[fam]}"
                    self.ip(role, "addr", "add", addr, "dev", dev, *extra)
                    self.ip(
                        role,
                        *("neigh", "replace", self.overlay(other, t, fam), "lladdr", tunnel_mac(other, t)),
                        *("dev", dev, "nud", "permanent"),
                    )
                self.ip(role, "link", "set", dev, "up")
                if self.rate:
                    self.rate_limit(role, dev, self.rate)
        self._tunnel_routes()
        for t in TUNNELS:
            self._wait_link_up(self.tunnel_dev(t))
        for fam, ident in ((4, 11), (6, 12)):
            self.endpoint_add("client", self.overlay("client", 1, fam), "subflow", dev=self.tunnel_dev(1), id=ident)

    def _tunnel_routes(self) -> None:
        """Client: a packet from a tunnel's address leaves by that tunnel, whatever its destination."""
        for t in TUNNELS:
            table = str(200 + t)
            for fam in (4, 6):
                f = f"-{fam}"
                self.ip("client", f, "rule", "add", "from", self.overlay("client", t, fam), "table", table)
                for other in TUNNELS:
                    via = [] if other == t else ["via", self.overlay("server", t, fam)]
                    net = OVERLAY_NETS[(other, fam)]
                    self.ip("client", f, "route", "add", net, *via, "dev", self.tunnel_dev(t), "table", table)


def vxlan_capture(
    path, *, family: int = 4, underlay: int = 4, size: int = 40000, reply: int = 20000, timeout: float = 10.0
) -> tuple[dict, dict, Capture]:
    """One MPTCP transfer over the two tunnels of a fresh :class:`VxlanLab`, captured on the
    client's underlay veth with :data:`VXLAN_TCP`: (server result, client result, capture).

    The client sends ``size`` octets to the server's tunnel-0 address of ``family`` once both
    subflows are up, the server replies ``reply`` octets, both close.  Raises :class:`LabError`
    unless each side received exactly what the other sent over two subflows without a reset.
    """
    with VxlanLab(underlay=underlay) as lab:
        with lab.capture(path, iface=lab.dev(0), bpf=VXLAN_TCP, timeout=timeout) as cap:
            server, client = lab.transfer(
                family=family,
                dst=lab.overlay("server", 0, family),
                size=size,
                reply=reply,
                wait_subflows=len(TUNNELS),
                timeout=timeout,
            )
    got = ({k: server[k] for k in ("length", "sha256")}, client["reply"], client["subflows"])
    if got != (expected(size), expected(reply, 1), len(TUNNELS)) or server["reset"] or client["reset"]:
        raise LabError(f"the transfer over VXLAN went wrong: server {server}, client {client}")
    return server, client, cap
