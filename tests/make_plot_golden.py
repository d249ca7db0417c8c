"""Make the committed SVG that tests/test_plot.py compares ``mptcpspec plot`` with, and the
manual's pictures (docs/images/, shown by docs/plot.md), which it compares too::

    python -m tests.make_plot_golden

Run it after a change that alters the picture on purpose, and look at the new file before
committing it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "tests" / "data" / "v4-reinjection.pcap"
GOLDEN = ROOT / "tests" / "data" / "plots" / "v4-reinjection-dsn.svg"
#: the pictures of the manual (docs/plot.md): file -> the plot command's arguments
PICTURES = {
    "dsn-reinjection.png": ["dsn", "-r", "tests/data/v4-reinjection.pcap"],
    "dsn-add-addr.png": ["dsn", "-r", "tests/data/v4-add-addr.pcap"],
    "subflow-loss.png": ["subflow", "-r", "tests/data/v4-loss.pcap", "--tcp-stream", "1"],
    "reinject-reinjection.png": ["reinject", "-r", "tests/data/v4-reinjection.pcap"],
}
IMAGES = ROOT / "docs" / "images"


def make(folder: Path) -> Path:
    """The SVG of the reinjection capture's dsn plot, made in ``folder``."""
    out = folder / GOLDEN.name
    subprocess.run(
        [sys.executable, "-m", "mptcpspec", "plot", "dsn", "-r", str(CAPTURE), "-o", str(out), "--size", "10x6"],
        check=True,
        cwd=ROOT,
    )
    return out


def pictures(folder: Path) -> list[Path]:
    """The manual's pictures, made in ``folder``."""
    out = []
    for name, args in PICTURES.items():
        subprocess.run(
            [sys.executable, "-m", "mptcpspec", "plot", *args, "-o", str(folder / name), "--size", "10x6"],
            check=True,
            cwd=ROOT,
        )
        out.append(folder / name)
    return out


if __name__ == "__main__":
    made = [make(GOLDEN.parent), *pictures(IMAGES)]
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in made))
