"""The network of the lab: MPTCP path-manager endpoints and limits, traffic shaping, loss and delay."""

from __future__ import annotations

from lab.host import LabError
from lab.topology import PAIRS, ROLES, Namespaces


class Network(Namespaces):
    """Endpoints and limits of the in-kernel path manager, and qdiscs on the veths."""

    def endpoint_add(
        self,
        role: str,
        address: str,
        *flags: str,
        dev: str | None = None,
        id: int | None = None,
        port: int | None = None,
    ) -> None:
        """``ip mptcp endpoint add ADDRESS dev DEV [id N] [port P] FLAGS`` (signal, subflow, backup, fullmesh).

        ``dev`` defaults to the veth of the address's pair.
        """
        argv = ["mptcp", "endpoint", "add", address, "dev", dev or self.dev(self.pair_of(address))]
        if id is not None:
            argv += ["id", str(id)]
        if port is not None:
            argv += ["port", str(port)]
        self.ip(role, *argv, *flags)

    def endpoint_change(
        self, role: str, *, id: int | None = None, address: str | None = None, backup: bool = True
    ) -> None:
        """Set or clear an endpoint's backup flag; live subflows from it get MP_PRIO."""
        sel = (["id", str(id)] if id is not None else []) + ([address] if address else [])
        self.ip(role, "mptcp", "endpoint", "change", *sel, "backup" if backup else "nobackup")

    def endpoint_delete(self, role: str, id: int, address: str | None = None) -> None:
        """Delete an endpoint; for a signal endpoint the peer gets REMOVE_ADDR."""
        self.ip(role, "mptcp", "endpoint", "delete", "id", str(id), *([address] if address else []))

    def endpoints(self, role: str) -> str:
        return self.ip(role, "mptcp", "endpoint", "show").stdout

    def set_limits(self, role: str, subflows: int = 8, add_addr_accepted: int = 8) -> None:
        self.ip(role, "mptcp", "limits", "set", "subflows", str(subflows), "add_addr_accepted", str(add_addr_accepted))

    def qdisc_available(self, kind: str, *args: str) -> bool:
        """Whether this kernel has qdisc ``kind`` (tried on the client's lo, then removed)."""
        r = self.run("client", "tc", "qdisc", "add", "dev", "lo", "root", kind, *args, check=False)
        if r.returncode != 0:
            return False
        self.run("client", "tc", "qdisc", "del", "dev", "lo", "root", check=False)
        return True

    def rate_limit(self, role: str, dev: str, rate: str = "20mbit", burst: int = 3000, latency: str = "50ms") -> None:
        """``tc qdisc replace dev DEV root tbf rate R burst B latency L``.

        On an unshaped veth every send drains at once and the default scheduler keeps all data on
        the first subflow; with both pairs shaped (20 Mbit/s, sends of 4 KiB) it spreads the data
        over every subflow in both directions.
        """
        self.run(
            role,
            "tc",
            "qdisc",
            "replace",
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            str(burst),
            "latency",
            latency,
        )

    def rate_limit_all(self, rate: str = "20mbit") -> None:
        """:meth:`rate_limit` on every veth, both sides."""
        for role in ROLES:
            for pair in PAIRS:
                self.rate_limit(role, self.dev(pair), rate)

    def netem(
        self, role: str, dev: str, *, loss: str | None = "5%", delay: str | None = None, seed: int | None = None
    ) -> None:
        """``tc qdisc replace dev DEV root netem [loss L] [delay D] [seed S]``.

        Needs tc and a kernel with sch_netem (CONFIG_NET_SCH_NETEM); raises :class:`LabError`
        saying so when it is missing (see :meth:`qdisc_available`).
        """
        if not self.qdisc_available("netem"):
            raise LabError("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): cannot emulate loss or delay")
        argv = ["tc", "qdisc", "replace", "dev", dev, "root", "netem"]
        if loss:
            argv += ["loss", loss]
        if delay:
            argv += ["delay", delay]
        if seed is not None:
            argv += ["seed", str(seed)]
        self.run(role, *argv)

    def netem_clear(self, role: str, dev: str) -> None:
        self.run(role, "tc", "qdisc", "del", "dev", dev, "root", check=False)
