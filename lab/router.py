"""The lab with a router: a third namespace, ``router``, between the client and the server.

::

    with RoutedLab() as lab:
        lab.router_accounting()  # counters of what the router forwards on each path
        lab.router_nft(RULESET)  # any nftables ruleset, in the router
        lab.rate_limit_all()
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        server, client = lab.transfer(size=40000, reply=30000, first=1000, wait_subflows=2)
        lab.router_counters()  # {"path1_c2s": (packets, bytes), ...}

Layout: the client's and the server's addresses, routes and veth names are those of :class:`lab.Lab`
(``ADDRS``); each path ``p`` now crosses the router on two veth pairs::

    client  veth0 198.51.100.1  ----  cli0 [router] srv0  ----  veth0 198.51.100.2  server
            veth1 203.0.113.1   ----  cli1 [router] srv1  ----  veth1 203.0.113.2

and the same for IPv6 (2001:db8:1::/64 on path 0, 2001:db8:2::/64 on path 1).  The router has no
address of its own: it forwards (``ip_forward``, IPv6 ``forwarding``) by input interface (policy
routing), so a packet that enters from path ``p``'s client side leaves by path ``p``'s server side
and back, whatever its addresses (as the client sends by source address and the server answers by
destination, both directions of a subflow cross the same path).  Every veth has a fixed MAC address
(:func:`mac`) and every neighbour is a permanent entry: no address resolution (ARP, NDP) is needed,
IPv4 and IPv6 alike.  An address the router makes up (a NAT's) gets one with :meth:`RoutedLab.via_router`.

Offloads are off on the router's veths as on the others, and ``rp_filter`` is off, so captured
segments are wire segments and the router forwards them unchanged but for the IP TTL (hop limit),
which it decrements by one, and what its nftables rules change.  The router namespace is deleted
with the others on every exit path.
"""

from __future__ import annotations

import json

from lab import Lab
from lab.host import LabError, run_command, wait_until
from lab.topology import ADDRS, PAIRS, PREFIXLEN, ROLES

__all__ = [
    "ACCOUNTING_TABLE",
    "DIRECTIONS",
    "ROUTER",
    "ROUTER_SIDES",
    "RoutedLab",
    "accounting_ruleset",
    "mac",
    "payload_rules",
]

ROUTER = "router"
#: The router's veth of each side of a path: ``cli{p}`` faces the client, ``srv{p}`` the server.
ROUTER_SIDES = {"client": "cli", "server": "srv"}
_MAC_SIDE = {"client": 1, "router-client": 2, "router-server": 3, "server": 4}
ACCOUNTING_TABLE = "lab_accounting"
DIRECTIONS = {"c2s": "client->server", "s2c": "server->client"}


def mac(side: str, pair: int) -> str:
    """The fixed MAC address of a veth: ``side`` is ``client``, ``router-client``, ``router-server``
    or ``server``."""
    return f"02:6c:61:62:{_MAC_SIDE[side]:02x}:{pair:02x}"


def payload_rules(action: str) -> str:
    """nftables rules (one a line) that apply ``action`` (``goto CHAIN``, a verdict, ...) to a TCP
    segment with payload, IPv4 or IPv6 (no extension headers): its IP length is more than the IP and
    TCP headers (``tcp doff``).  nftables cannot subtract one field from another, hence one rule per
    data offset; at most one of them matches a segment."""
    lines = []
    for doff in range(5, 16):
        lines.append(f"tcp doff {doff} ip length > {20 + 4 * doff} {action}")
        lines.append(f"tcp doff {doff} ip6 length > {4 * doff} {action}")
    return "\n".join(lines)


def accounting_ruleset(table: str = ACCOUNTING_TABLE) -> str:
    """An nftables table counting what the router forwards on each path ``p`` and direction (after
    any drop of a filter chain of priority < 100): counters ``path{p}_c2s`` and ``path{p}_s2c``
    (every packet), ``path{p}_c2s_data`` and ``path{p}_s2c_data`` (TCP segments with payload)."""
    counters, rules, chains = [], [], []
    for p in PAIRS:
        for d, side in (("c2s", "client"), ("s2c", "server")):
            name = f"path{p}_{d}"
            counters += [f"counter {name} {{ }}", f"counter {name}_data {{ }}"]
            rules.append(f'iifname "{ROUTER_SIDES[side]}{p}" counter name {name} jump {name}')
            data = "\n        ".join(payload_rules(f"counter name {name}_data return").splitlines())
            chains.append(f"chain {name} {{\n        meta l4proto tcp\n        {data}\n    }}")
    body = "\n    ".join(counters)
    chain_text = "\n    ".join(chains)
    forward = "\n        ".join(rules)
    return f"""table inet {table} {{
    {body}
    chain forward {{
        type filter hook forward priority 100; policy accept;
        {forward}
    }}
    {chain_text}
}}"""


class RoutedLab(Lab):
    """:class:`lab.Lab` with a ``router`` namespace on both paths; use as a context manager.

    Arguments as :class:`lab.Lab`.  See the module for the layout.
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        base = self.ns_names["client"].removesuffix("-client")
        self.ns_names[ROUTER] = f"{base}-{ROUTER}"

    @property
    def router(self) -> str:
        return self.ns_names[ROUTER]

    @staticmethod
    def router_dev(side: str, pair: int) -> str:
        """The router's veth of path ``pair`` facing ``side`` (``client`` or ``server``)."""
        return f"{ROUTER_SIDES[side]}{pair}"

    # -- building
    def _build(self) -> None:
        for role in (*ROLES, ROUTER):
            ns = self.ns(role)
            run_command(["ip", "netns", "add", ns])
            self._created.append(ns)  # deleted with the others, whatever happens next
            settings = {
                "net.ipv6.conf.all.accept_dad": 0,
                "net.ipv6.conf.default.accept_dad": 0,
                "net.ipv4.conf.all.rp_filter": 0,
                "net.ipv4.conf.default.rp_filter": 0,
            }
            if role == ROUTER:
                settings |= {
                    "net.ipv4.ip_forward": 1,
                    "net.ipv6.conf.all.forwarding": 1,
                    "net.ipv6.conf.default.forwarding": 1,
                }
            else:
                settings |= {"net.mptcp.enabled": 1, "net.mptcp.checksum_enabled": int(self.checksum)}
                if self.tfo:
                    settings["net.ipv4.tcp_fastopen"] = 3
            self.sysctl(role, settings)
            self.ip(role, "link", "set", "lo", "up")
        for pair in PAIRS:
            dev = self.dev(pair)
            for side in ROLES:
                rdev = self.router_dev(side, pair)
                run_command(
                    ["ip", "-n", self.ns(side), "link", "add", dev, "address", mac(side, pair), "type", "veth"]
                    + ["peer", "name", rdev, "address", mac(f"router-{side}", pair), "netns", self.router]
                )
                for role, d in ((side, dev), (ROUTER, rdev)):
                    self.offloads_off(role, d)
                self.ip(ROUTER, "link", "set", rdev, "up")
        for role in ROLES:
            for pair in PAIRS:
                dev = self.dev(pair)
                for fam in (4, 6):
                    extra = ["nodad"] if fam == 6 else []
                    self.ip(role, "addr", "add", f"{self.addr(role, pair, fam)}/{PREFIXLEN[fam]}", "dev", dev, *extra)
                self.ip(role, "link", "set", dev, "up")
            subflows, accepted = self.limits
            self.ip(role, "mptcp", "limits", "set", "subflows", str(subflows), "add_addr_accepted", str(accepted))
        self._neighbours()
        self._router_routes()
        self._source_routes()
        for pair in PAIRS:
            self._wait_routed_link_up(pair)

    def _neighbours(self) -> None:
        """Permanent neighbours: the client's and server's peers on path ``p`` are the router's
        veths there; the router's are the client's and server's veths, for every address of theirs."""
        for pair in PAIRS:
            for fam in (4, 6):
                self.via_router("client", self.addr("server", pair, fam), pair)
                self.via_router("server", self.addr("client", pair, fam), pair)
            for (role, _, _), address in ADDRS.items():
                self.ip(
                    ROUTER,
                    *("neigh", "replace", address, "lladdr", mac(role, pair)),
                    *("dev", self.router_dev(role, pair), "nud", "permanent"),
                )

    def _router_routes(self) -> None:
        """Router: what enters from one side of path ``p`` leaves by its other side (tables 10p, 11p)."""
        for pair in PAIRS:
            for table, into, out in ((100 + pair, "client", "server"), (110 + pair, "server", "client")):
                for fam in (4, 6):
                    f = f"-{fam}"
                    self.ip(ROUTER, f, "rule", "add", "iif", self.router_dev(into, pair), "table", table)
                    self.ip(ROUTER, f, "route", "add", "default", "dev", self.router_dev(out, pair), "table", table)

    def _wait_routed_link_up(self, pair: int, timeout: float = 5.0) -> None:
        devs = [(role, self.dev(pair)) for role in ROLES] + [(ROUTER, self.router_dev(s, pair)) for s in ROLES]

        def up() -> bool:
            return all("LOWER_UP" in self.ip(role, "-o", "link", "show", d).stdout for role, d in devs)

        wait_until(up, f"the veths of path {pair} to come up (LOWER_UP) in the three namespaces", timeout)

    def via_router(self, role: str, address: str, pair: int) -> None:
        """``role`` (``client`` or ``server``) reaches ``address`` on its veth of path ``pair``
        through the router: a permanent neighbour entry with the router's MAC address there.  For
        an address the router makes up, e.g. the one a NAT rule translates to."""
        self.ip(
            role,
            *("neigh", "replace", address, "lladdr", mac(f"router-{role}", pair)),
            *("dev", self.dev(pair), "nud", "permanent"),
        )

    # -- nftables in the router
    def router_nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (``nft -f -`` syntax) in the router."""
        self.run(ROUTER, "nft", "-f", "-", input=ruleset)

    def router_nft_check(self, ruleset: str) -> str | None:
        """Why ``nft --check`` rejects ``ruleset`` in the router (its message), or None if it accepts it.

        The check runs the kernel's validation too (a transaction that is then aborted), so a rule
        this kernel cannot execute is refused."""
        r = self.run(ROUTER, "nft", "--check", "-f", "-", input=ruleset, check=False)
        return None if r.returncode == 0 else (r.stderr or r.stdout).strip() or f"nft exited {r.returncode}"

    def router_accounting(self) -> None:
        """Load :func:`accounting_ruleset` in the router."""
        self.router_nft(accounting_ruleset())

    def router_counters(self) -> dict[str, tuple[int, int]]:
        """The router's named nftables counters: name -> (packets, bytes) (``nft -j list counters``)."""
        out = self.run(ROUTER, "nft", "-j", "list", "counters").stdout
        try:
            items = json.loads(out)["nftables"]
        except (ValueError, KeyError) as e:
            raise LabError(f"router: `nft -j list counters` printed no nftables JSON: {out[:200]!r}") from e
        found: dict[str, tuple[int, int]] = {}
        for item in items:
            c = item.get("counter")
            if c is None:
                continue
            if c["name"] in found:
                raise LabError(f"router: two nftables counters named {c['name']!r} (tables differ); name them apart")
            found[c["name"]] = (int(c["packets"]), int(c["bytes"]))
        return found

    def qdisc_drops(self) -> dict[str, dict[str, int]]:
        """Packets the root qdisc of each client and server veth dropped: role -> veth -> count.

        A capture (``-i any``) sees a packet before its qdisc: one it dropped never left."""
        drops: dict[str, dict[str, int]] = {}
        for role in ROLES:
            for pair in PAIRS:
                dev = self.dev(pair)
                out = self.run(role, "tc", "-j", "-s", "qdisc", "show", "dev", dev, "root").stdout
                qdiscs = json.loads(out or "[]")
                drops.setdefault(role, {})[dev] = sum(int(q.get("drops", 0)) for q in qdiscs)
        return drops
