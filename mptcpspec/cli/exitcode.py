"""The one exit-status convention of every ``mptcpspec`` command."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """What a command's exit status means; the same numbers for every command.

    ``DAMAGED`` is the partial success of a command that did its work on what it could read
    (a truncated capture, a replay that started but did not close cleanly, a stale generated
    file, a failed check); ``UNUSABLE`` means it could not start at all.
    """

    #: the work was done in full
    OK = 0
    #: done on what could be read or run, but the input was damaged or the outcome is not clean
    DAMAGED = 1
    #: the command line is wrong (an unknown option, a bad filter or field); nothing was done
    USAGE = 2
    #: the input or the target cannot be used (no such file, not a capture, no privileges...)
    UNUSABLE = 3
    #: the capture was read to its end, but some of its frames are of a link type that is not
    #: decoded: they are counted and named on stderr, and left out of the analysis
    UNDECODED = 4
    #: interrupted by SIGINT (128 + 2, as a shell reports it)
    INTERRUPTED = 130
