"""Names the generators and their users share, without the schema machinery (and construct)."""

from __future__ import annotations

import re

__all__ = ["snake"]


def snake(name: str) -> str:
    """``MpJoinSynAck`` -> ``mp_join_syn_ack``: the name generated functions and exports use."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
