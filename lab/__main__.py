"""``python3 -m lab cleanup [--all]`` and ``python3 -m lab check``."""

from __future__ import annotations

import argparse
import sys

from lab.host import PREFIX, cleanup_leftovers, lab_problem


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m lab", description="the kernel test lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cleanup", help="delete namespaces left by labs whose process is gone")
    c.add_argument("--all", action="store_true", help=f"delete every {PREFIX}-* namespace")
    sub.add_parser("check", help="say whether the lab can run here")
    a = p.parse_args(argv)
    if a.cmd == "cleanup":
        for ns in cleanup_leftovers(everything=a.all):
            print("deleted", ns)
        return 0
    why = lab_problem()
    print(why or "the lab can run here")
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main())
