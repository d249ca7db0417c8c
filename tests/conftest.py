"""Test settings shared by every file.

With CI=true, hypothesis runs derandomized: the same generated inputs on every run, so a landing
is not decided by the luck of a random draw; the long-running fuzzer (`python3 -m tests.fuzz`) and
local runs keep exploring new inputs.
"""

import os
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")
