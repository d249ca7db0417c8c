"""Remake the paired captures of this folder (as root): one kernel MPTCP connection captured at the
client and at the server at once.

    python3 tests/data/pair/make.py            # all
    python3 tests/data/pair/make.py loss nat   # some

``direct``: the lab's two namespaces joined directly (nothing on the way), 100,000 octets up and
10,000 down.  ``loss``, ``nat``: through the lab's router (``lab.pairs``), 150,000 octets up and
20,000 down, with the router's ground truth beside them (``NAME-facts.json``).  Every capture is cut
to 128 octets a packet (``editcap -s 128``: the headers and options whole, what pairing reads).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent))  # the repository: lab, mptcpspec

from lab import Lab, expected  # noqa: E402
from lab.pairs import CLIENT_PCAP, SERVER_PCAP, run  # noqa: E402

SNAPLEN = 128


def _cut(made: Path, out: Path) -> None:
    subprocess.run(["editcap", "-F", "pcap", "-s", str(SNAPLEN), str(made), str(out)], check=True)


def direct() -> None:
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        lab.rate_limit_all("20mbit")
        lab.endpoint_add("client", lab.addr("client", 1), "subflow")
        client, server = Path(tmp) / "client.pcap", Path(tmp) / "server.pcap"
        with lab.capture(client, ns="client"), lab.capture(server, ns="server"):
            s, _ = lab.transfer(size=100_000, reply=10_000, first=1000, wait_subflows=2)
        assert {k: s[k] for k in ("length", "sha256")} == expected(100_000)
        _cut(client, HERE / "direct-client.pcap")
        _cut(server, HERE / "direct-server.pcap")


def through_router(name: str, **options: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        facts = run(name, Path(tmp), size=150_000, reply=20_000, **options)
        for role, made in (("client", CLIENT_PCAP), ("server", SERVER_PCAP)):
            out = HERE / f"{name}-{role}.pcap"
            _cut(Path(tmp) / made, out)
        facts.pop("paths", None)
        facts["snaplen"] = SNAPLEN
        (HERE / f"{name}-facts.json").write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")


MAKERS = {"direct": direct, "loss": lambda: through_router("loss", every=10), "nat": lambda: through_router("nat")}


def main(argv: list[str]) -> int:
    if shutil.which("editcap") is None:
        print("needs editcap (Debian: apt-get install tshark)", file=sys.stderr)
        return 3
    for name in argv or list(MAKERS):
        MAKERS[name]()
        print(f"made {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
