"""Make the committed SVG that tests/test_plot.py compares ``mptcpspec plot`` with::

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


def make(folder: Path) -> Path:
    """The SVG of the reinjection capture's dsn plot, made in ``folder``."""
    out = folder / GOLDEN.name
    subprocess.run(
        [sys.executable, "-m", "mptcpspec", "plot", "dsn", "-r", str(CAPTURE), "-o", str(out), "--size", "10x6"],
        check=True,
        cwd=ROOT,
    )
    return out


if __name__ == "__main__":
    made = make(GOLDEN.parent)
    print(f"wrote {made.relative_to(ROOT)}")
