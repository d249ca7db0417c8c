"""State machines from a small DSL: ``spec/*.fsm`` -> typed model -> checks, code, pictures.

* :func:`parse` / :func:`load` read a ``.fsm`` file (lark grammar ``fsm.lark``) into a
  :class:`~mptcpspec.fsm.model.Machine`;
* :mod:`mptcpspec.fsm.static` and :mod:`mptcpspec.fsm.explore` check it (determinism,
  reachability, two endpoints over in-order and lossy channels), :mod:`mptcpspec.fsm.coverage`
  over all runs at once (calls never enabled, signals only dropped, unspecified receptions,
  transitions no run takes), and :mod:`mptcpspec.fsm.mutation` removes each transition in turn
  to show that some check needs it;
* :mod:`mptcpspec.fsm.codegen` writes ``mptcpspec/codec/generated/<machine>.py``, which runs on
  :mod:`mptcpspec.fsm.runtime`;
* :mod:`mptcpspec.fsm.render` draws it (DOT, SVG/PNG through Graphviz, Mermaid);
* :class:`mptcpspec.fsm.observer.Observer` follows both endpoints of a connection from the
  signals seen on the wire.

Importing this package does not import lark: the parser is loaded on first use, and the
generated modules need only :mod:`mptcpspec.fsm.runtime`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mptcpspec.fsm.errors import FsmSpecError, Problem, ProtocolError

if TYPE_CHECKING:
    from pathlib import Path

    from mptcpspec.fsm.model import Machine

__all__ = ["FsmSpecError", "Problem", "ProtocolError", "load", "parse"]


def parse(text: str, file: str = "<string>") -> Machine:
    """See :func:`mptcpspec.fsm.parser.parse`."""
    from mptcpspec.fsm import parser

    return parser.parse(text, file)


def load(path: str | Path, *, check: bool = True) -> Machine:
    """See :func:`mptcpspec.fsm.parser.load`."""
    from mptcpspec.fsm import parser

    return parser.load(path, check=check)
