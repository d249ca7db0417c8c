"""``mptcpspec options -r FILE``: every MPTCP option in a capture, one line (or JSON object) each."""

from __future__ import annotations

import dataclasses
import json
from typing import TextIO

from mptcpspec.capture.packets import LINKTYPES, Packet, decode_packet
from mptcpspec.capture.pcap import CaptureError, CaptureReader, Readable
from mptcpspec.codec.options import (
    KIND_MPTCP,
    CutOption,
    MalformedOption,
    MptcpUnknown,
    TcpOption,
    decode_cut_option,
    decode_tcp_options,
)
from mptcpspec.dissect.outcome import ReadOutcome, outcome
from mptcpspec.dissect.show import option_dict, value_text
from mptcpspec.errors import DecodeError

__all__ = ["list_options", "option_summary"]


def option_summary(opt: TcpOption | CutOption) -> str:
    """``NAME field=value ...`` with absent fields left out."""
    if isinstance(opt, MalformedOption):
        return f"malformed MPTCP option ({opt.error.reason}) [{opt.data.hex()}]"
    if isinstance(opt, CutOption):  # the fields captured whole
        name = getattr(opt.option_class, "NAME", "MPTCP option")
        head = f"{name} [cut by the snapshot length: {len(opt.data)} of {opt.length or '?'} octets captured]"
        return " ".join([head] + [f"{n}={_value(n, v)}" for n, v in opt.fields if n != "reserved" or v])
    parts = [f"MPTCP subtype {opt.subtype:#x}" if isinstance(opt, MptcpUnknown) else opt.NAME]
    for f in dataclasses.fields(opt):
        v = getattr(opt, f.name)
        if v is None or (f.name == "reserved" and not v):
            continue
        parts.append(f"{f.name}={_value(f.name, v)}")
    return " ".join(parts)


def _value(name: str, v: object) -> str:
    return value_text(name, v).replace("  ", " ").replace(" | ", "|").replace(" ", "")


def _endpoints(pkt: Packet) -> str:
    src = f"[{pkt.src}]" if pkt.version == 6 else str(pkt.src)
    dst = f"[{pkt.dst}]" if pkt.version == 6 else str(pkt.dst)
    return f"{src}:{pkt.sport} > {dst}:{pkt.dport}"


def list_options(source: Readable, *, as_json: bool = False, out: TextIO) -> ReadOutcome:
    """Write the MPTCP options of every TCP packet of the capture ``source``; how the read ended.

    As with :func:`~mptcpspec.dissect.reading.dissect_capture`, a file that is no capture raises
    :class:`~mptcpspec.capture.pcap.CaptureError` before anything is written."""
    reader = CaptureReader(source)
    first_ts = None
    count = 0
    frame = 0
    unsupported: dict[int, int] = {}
    damage = None
    try:
        for rec in reader:
            frame += 1
            if first_ts is None:
                first_ts = rec.timestamp_ns
            rel = (rec.timestamp_ns - first_ts) / 1e9
            try:
                pkt = decode_packet(rec)
            except DecodeError as e:
                if as_json:
                    out.write(json.dumps({"frame": frame, "error": str(e)}) + "\n")
                else:
                    out.write(f"{frame} {rel:.6f} malformed packet: {e}\n")
                continue
            if pkt is None:
                if rec.linktype not in LINKTYPES:
                    unsupported[rec.linktype] = unsupported.get(rec.linktype, 0) + 1
                continue
            if pkt.options:
                count += _write_options(pkt, frame, rel, as_json, out)
    except CaptureError as e:
        damage = e
    result = outcome(frame, count, damage, reader.problems, unsupported)
    if not as_json:
        out.write(f"# {count} MPTCP option(s)\n")
    return result


def _write_options(pkt: Packet, frame: int, rel: float, as_json: bool, out: TextIO) -> int:
    """Write the MPTCP options of one packet; how many there were."""
    count = 0
    area = pkt.options
    for item in decode_tcp_options(area, strict=False).options:
        opt: TcpOption | CutOption = item
        if getattr(opt, "KIND", None) != KIND_MPTCP and not (
            isinstance(opt, MalformedOption) and opt.kind == KIND_MPTCP
        ):
            continue
        if (
            isinstance(opt, MalformedOption)
            and pkt.options_cut
            and len(opt.data) >= 2
            and 2 <= opt.data[1]
            and len(area) < opt.offset + opt.data[1] <= pkt.hdr_len - 20
        ):
            opt = decode_cut_option(opt.data, opt.offset)  # not malformed: the snapshot length cut it
        count += 1
        if as_json:
            d = {
                "frame": frame,
                "time": rel,
                "src": str(pkt.src),
                "sport": pkt.sport,
                "dst": str(pkt.dst),
                "dport": pkt.dport,
                "tcp_flags": str(pkt.flags),
                **option_dict(opt),
            }
            out.write(json.dumps(d) + "\n")
        else:
            out.write(f"{frame} {rel:.6f} {_endpoints(pkt)} {option_summary(opt)}\n")
    return count
