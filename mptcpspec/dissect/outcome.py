"""How a read of a capture ended: the frames read, and what was wrong with the file."""

from __future__ import annotations

from mptcpspec.capture.pcap import CaptureError
from mptcpspec.records import dataclass

__all__ = ["ReadOutcome", "outcome"]


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    """How a read of a capture ended."""

    frames: int  #: frames read
    written: int = 0  #: what was written: packets that passed the filter (``dissect``), options (``options``)
    #: why the read stopped before the end of the file (corrupt framing); None when it reached the end
    damage: str | None = None
    problems: tuple[str, ...] = ()  #: what was wrong but did not stop the read (a record cut short)
    unsupported: tuple[tuple[int, int], ...] = ()  #: (link type, frames) of link types not decoded

    @property
    def damaged(self) -> bool:
        """The file was damaged: the output covers only what could be read."""
        return self.damage is not None or bool(self.problems)


def outcome(
    frames: int,
    written: int,
    damage: CaptureError | None,
    problems: list[str],
    unsupported: dict[int, int] | None = None,
) -> ReadOutcome:
    """The :class:`ReadOutcome` of a read that ended with ``damage`` (None: at the end of the file);
    re-raises the damage when not a frame was read: the file is then no capture to speak of."""
    if damage is not None and frames == 0:
        raise damage
    return ReadOutcome(
        frames,
        written,
        None if damage is None else str(damage),
        tuple(problems),
        tuple(sorted((unsupported or {}).items())),
    )
