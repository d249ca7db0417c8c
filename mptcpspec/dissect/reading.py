"""A whole read of a capture, as the commands make it: the loop of ``dissect`` (writing, filtering,
following, counting), the read behind ``connections``, and what was wrong with the file.

A file that cannot be read at all (not a capture, or its first record already damaged) raises
:class:`~mptcpspec.capture.pcap.CaptureError` before anything is written; damage met later ends the
read and is returned in the :class:`ReadOutcome` with the frames read before it, whose output is
complete.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TYPE_CHECKING

from mptcpspec.analysis import ConnectionSummary, PacketInfo
from mptcpspec.capture.pcap import CaptureError, Frame
from mptcpspec.dissect.hotpath import fields_engine, summary_engine
from mptcpspec.dissect.outcome import ReadOutcome, outcome
from mptcpspec.dissect.pipeline import Dissection
from mptcpspec.dissect.writers import FieldsWriter, PacketWriter, TextWriter

if TYPE_CHECKING:
    from mptcpspec.dissect.follow import Follower

__all__ = ["PROGRESS_EVERY", "Progress", "ReadOutcome", "dissect_capture", "read_connections"]

#: Told how far the read is: (file offset reached, frames so far), every :data:`PROGRESS_EVERY` frames
#: (a power of two).
Progress = Callable[[int, int], None]
PROGRESS_EVERY = 0x4000


def dissect_capture(
    d: Dissection,
    *,
    writer: PacketWriter | None = None,
    keep: Callable[[PacketInfo], bool] | None = None,
    follower: Follower | None = None,
    count: int | None = None,
    progress: Progress | None = None,
    frames_out: Callable[[Frame], None] | None = None,
    line_buffered: bool = False,
) -> ReadOutcome:
    """Dissect the whole capture of ``d``: every packet to ``follower``, those that ``keep`` accepts
    to ``writer`` and their frames as read to ``frames_out``, until the end of the capture or
    ``count`` frames read (tshark's ``-c``); ``progress`` is told how far the read is.  The writer
    is flushed at the end, and after each packet when ``line_buffered`` (tshark's ``-l``)."""
    # What the imports made lives to the end: no collection need look at it again.  The packets'
    # objects die young, freed as they go; the cyclic collector runs less often for them.  Both
    # undone after the loop, for a caller that runs this in its own process.
    gc_threshold, gc_frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(20000, 20, 20)
    written = 0
    damage = None
    try:
        if (
            isinstance(writer, FieldsWriter)
            and follower is None
            and keep is None
            and not count
            and progress is None
            and frames_out is None
            and not line_buffered
        ):
            writer.flush()
            engine = fields_engine(d, writer)
            if engine is not None:
                engine.run()  # the compiled hot path
            else:
                writer.write_all(d)  # the rows and nothing else: the writer's own loop
        elif (
            writer is None
            and follower is None
            and keep is None
            and not count
            and progress is None
            and frames_out is None
            and (engine := summary_engine(d)) is not None
        ):
            engine.run()  # the analysis alone, by the compiled hot path (connections)
        else:
            first = True
            reader = d.reader
            clock = d.analyzer.clock
            clock.filtering = keep is not None  # frame.time_delta_displayed: from the last frame kept
            for info in d:
                if follower is not None:
                    follower.feed(info)
                if progress is not None and not info.number & (PROGRESS_EVERY - 1):
                    progress(reader.position, info.number)
                if first:
                    first = False
                    if isinstance(writer, TextWriter) and writer.first_ts is None:
                        writer.first_ts = info.timestamp_ns  # times are relative to the first frame, as tshark's
                if keep is None or keep(info):
                    clock.shown_ns = info.timestamp_ns
                    written += 1
                    if frames_out is not None:
                        frames_out(d.frame)
                    if writer is not None:
                        writer.write(info)
                        if line_buffered:
                            writer.flush()
                if count and info.number >= count:
                    break
    except CaptureError as e:
        damage = e
    finally:
        gc.set_threshold(*gc_threshold)
        if not gc_frozen:
            gc.unfreeze()
    if writer is not None:
        writer.flush()
    return outcome(d.frames, written, damage, d.problems, d.unsupported)


def read_connections(d: Dissection, progress: Progress | None = None) -> tuple[ReadOutcome, list[ConnectionSummary]]:
    """Read the whole capture of ``d``; its MPTCP connections, summed up."""
    result = dissect_capture(d, progress=progress)
    return result, [c.summary() for c in d.connections()]
