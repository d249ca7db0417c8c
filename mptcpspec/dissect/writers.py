"""Writers for dissected packets and connections: text (a tree like ``tshark -V`` for MPTCP),
JSON lines, tshark-style fields, and the connection table.

Each writer takes :class:`~mptcpspec.analysis.model.PacketInfo` values one at a time and writes to a
text stream; none reads back up the pipeline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Protocol, TextIO

from mptcpspec.analysis import ConnectionSummary, PacketInfo, PairFrame
from mptcpspec.analysis.expert import KINDS, Severity
from mptcpspec.capture.packets import TcpFlags
from mptcpspec.codec.options import (
    CutOption,
    Dss,
    DssFlags,
    MalformedOption,
    MptcpOption,
    MptcpUnknown,
    encode_option,
)
from mptcpspec.dissect.show import jsonable, option_dict, option_tree
from mptcpspec.records import field_names

__all__ = [
    "pair_text",
    "PacketWriter",
    "TextWriter",
    "JsonWriter",
    "FieldsWriter",
    "connection_rows",
    "write_connections",
    "expert_summary",
]


class PacketWriter(Protocol):
    """What the dissector's loop writes packets to."""

    def write(self, info: PacketInfo) -> None: ...

    def flush(self) -> None:
        """Write out what is held back (at the end, or before a message)."""


_FLAG_NAMES = (
    (int(TcpFlags.SYN), "SYN"),
    (int(TcpFlags.FIN), "FIN"),
    (int(TcpFlags.RST), "RST"),
    (int(TcpFlags.PSH), "PSH"),
    (int(TcpFlags.ACK), "ACK"),
    (int(TcpFlags.URG), "URG"),
    (int(TcpFlags.ECE), "ECE"),
    (int(TcpFlags.CWR), "CWR"),
    (int(TcpFlags.AE), "AE"),
)
_ACK = int(TcpFlags.ACK)
_DATA_FIN = int(DssFlags.DATA_FIN)


def _flags(f: int) -> str:
    return ", ".join(n for b, n in _FLAG_NAMES if f & b)


def _short(o: MptcpOption | MalformedOption | CutOption) -> str:
    if isinstance(o, MalformedOption):
        return "malformed"
    if isinstance(o, CutOption):
        return f"{getattr(o.option_class, 'NAME', 'MPTCP')}[cut]"
    if isinstance(o, Dss):
        parts = []
        if o.data_ack is not None:
            parts.append("ack")
        if o.dsn is not None:
            parts.append("map")
        if o.flags & _DATA_FIN:
            parts.append("fin")
        return "DSS" + (f"[{','.join(parts)}]" if parts else "")
    return f"subtype {o.subtype:#x}" if isinstance(o, MptcpUnknown) else o.NAME


class TextWriter:
    """One summary line per packet; under packets with MPTCP, the option tree and the analysis."""

    def __init__(self, out: TextIO, *, tree: bool = True) -> None:
        self.out = out
        self.tree = tree
        self.first_ts: int | None = None

    def write(self, info: PacketInfo) -> None:
        if self.first_ts is None:
            self.first_ts = info.timestamp_ns
        rel = (info.timestamp_ns - self.first_ts) / 1e9
        p = info.packet
        w = self.out.write
        if p is None:
            what = f"malformed: {info.error}" if info.error is not None else "not TCP"
            w(f"{info.number:>6} {rel:>11.6f} {what}\n")
            return
        mp = info.mptcp
        proto = "MPTCP" if mp or info.connection is not None else "TCP"
        line = (
            f"{info.number:>6} {rel:>11.6f} {p.src} → {p.dst} {proto} {info.orig_len} "
            f"{p.sport} → {p.dport} [{_flags(int(p.flags))}] Seq={info.tcp_seq}"
        )
        if int(p.flags) & _ACK:
            line += f" Ack={info.tcp_ack}"
        line += f" Win={p.window} Len={p.payload_len}"
        if mp:
            line += " " + " ".join(_short(o) for o in mp)
        if p.options_cut or p.payload_cut:
            line += " [Packet size limited during capture]"  # tshark's words
        w(line + "\n")
        if self.tree and info.pair is not None:
            w(f"    [{pair_text(info.pair)}]\n")
        if not self.tree or (not mp and not info.experts and not info.checks):
            return
        i1, i2 = "    ", "        "
        head = "Multipath TCP"
        if info.mptcp_stream is None and info.connection is not None:
            head += ", a new connection (numbered once a key is seen, as in Wireshark)"
        if info.mptcp_stream is not None:
            head += f", stream {info.mptcp_stream}"
            sf = info.subflow
            head += f", subflow tcp.stream {info.tcp_stream}"
            if sf is not None and sf.kind:
                head += f" ({sf.kind}{', master' if info.master else ''})"
            head += ", client → server" if info.from_client else ", server → client"
        w(i1 + head + "\n")
        offsets = _offsets(info)
        for o in mp:
            off = offsets.get(id(o))
            if isinstance(o, CutOption):
                n = o.length
            else:
                n = len(o.data) if isinstance(o, MalformedOption) else len(encode_option(o))
            for line in option_tree(o, off, n, indent=i2, hide_absent=True):
                w(line + "\n")
        for d in info.dss:
            parts = []
            if d.dsn64 is not None:
                parts.append(f"DSN {d.dsn if d.dsn is not None else '?'} (relative), {d.dsn64:#x} (64 bits)")
            if d.ack64 is not None:
                parts.append(f"DATA_ACK {d.ack if d.ack is not None else '?'} (relative), {d.ack64:#x} (64 bits)")
            if parts:
                w(f"{i2}[{'; '.join(parts)}]\n")
        if info.payload_dsn is not None:
            w(f"{i2}[payload at DSN {info.payload_dsn} (relative)]\n")
        if info.reinjection_of:
            w(f"{i2}[reinjection of frame(s) {', '.join(map(str, info.reinjection_of))}]\n")
        if info.reinjected_in:
            w(f"{i2}[reinjected in frame(s) {', '.join(map(str, info.reinjected_in))}]\n")
        for c in info.checks:
            w(f"{i2}[Check: {c}]\n")
        for e in info.experts:
            w(f"{i2}[Expert Info ({e.severity.name.title()}): {e.message}] ({e.key})\n")
        conn = info.connection
        if conn is not None and conn.established:
            w(f"{i2}[Closure: client {conn.closure_state(0)}, server {conn.closure_state(1)}]\n")

    def flush(self) -> None:
        """Nothing is held back: each packet is written as it comes."""


def _offsets(info: PacketInfo) -> dict[int, int]:
    """id(MPTCP option) -> its offset in the options area."""
    raw = info.packet.options if info.packet is not None else b""
    starts = []
    i, n = 0, len(raw)
    while i < n:
        k = raw[i]
        if k == 1:
            i += 1
            continue
        if k == 0 or i + 1 >= n or raw[i + 1] < 2:
            if k == 30:
                starts.append(i)
            break
        if k == 30:
            starts.append(i)
        i += raw[i + 1]
    return {id(o): off for o, off in zip(info.mptcp, starts)}


class JsonWriter:
    """One JSON object per packet, one per line."""

    def __init__(self, out: TextIO) -> None:
        import json  # here: the text and fields outputs start without it

        self.out = out
        self.dumps = json.dumps

    def write(self, info: PacketInfo) -> None:
        self.out.write(self.dumps(packet_dict(info), separators=(",", ":")) + "\n")

    def flush(self) -> None:
        """Nothing is held back: each packet is written as it comes."""


def pair_text(q: PairFrame) -> str:
    """What the capture at the other end says of a frame, as the text output's tree shows it."""
    if q.lost:
        parts = ["Other end: never received (lost on the way)"]
    elif q.injected:
        parts = ["Other end: never sent there (made on the way)"]
    elif q.peer_frame is not None:
        parts = [f"Other end: frame {q.peer_frame}"]
        if q.owd_ns is not None:
            parts.append(f"one-way delay {q.owd_ns / 1e9:.9f} s")
    else:
        parts = ["Other end: while the other capture was not running"]
    if q.ooo_delay_ns:
        parts.append(f"waited {q.ooo_delay_ns / 1e9:.9f} s out of order")
    if q.reinjection_useful is not None:
        parts.append("a useful reinjection" if q.reinjection_useful else "a redundant reinjection")
    if q.changes:
        parts.append("changed on the way: " + ", ".join(q.changes))
    return "; ".join(parts)


def packet_dict(info: PacketInfo) -> dict[str, object]:
    """One packet as a dict of plain JSON values: what ``-T json`` prints."""
    d: dict[str, object] = {
        "frame": info.number,
        "time": info.timestamp_ns / 1e9,
        "len": info.orig_len,
        "caplen": info.caplen,
    }
    p = info.packet
    if p is None:
        if info.error is not None:
            d["error"] = str(info.error)
        return d
    d["ip"] = {"version": p.version, "src": str(p.src), "dst": str(p.dst)}
    d["tcp"] = {
        "stream": info.tcp_stream,
        "srcport": p.sport,
        "dstport": p.dport,
        "seq": info.tcp_seq,
        "seq_raw": p.seq,
        "ack": info.tcp_ack,
        "ack_raw": p.ack,
        "flags": int(p.flags),
        "flags_names": _flags(int(p.flags)).split(", ") if int(p.flags) else [],
        "window": p.window,
        "len": p.payload_len,
    }
    if info.pair is not None:
        q = info.pair
        d["pair"] = {
            "peer_frame": q.peer_frame,
            "owd_ns": q.owd_ns,
            "lost": q.lost,
            "injected": q.injected,
            "reinjection_useful": q.reinjection_useful,
            "ooo_delay_ns": q.ooo_delay_ns,
            "changes": list(q.changes),
        }
    mp = info.mptcp
    if not mp and info.connection is None and not info.experts:
        return d
    offsets = _offsets(info)
    m: dict[str, object] = {}
    c = info.connection
    if info.mptcp_stream is not None and c is not None:  # a numbered stream is a connection's
        m.update(
            {
                "stream": info.mptcp_stream,
                "version": c.version,
                "master": info.master,
                "from_client": info.from_client,
                "checksums": c.checksum,
                "closure": {"client": c.closure_state(0), "server": c.closure_state(1)},
            }
        )
        sf = info.subflow
        if sf is not None:
            m["subflow"] = {"kind": sf.kind, "state": sf.state}
    m["options"] = [option_dict(o, offsets.get(id(o))) for o in mp]
    if info.dss:
        m["dss"] = [{"dsn64": x.dsn64, "dsn": x.dsn, "ack64": x.ack64, "ack": x.ack} for x in info.dss]
    if info.payload_dsn is not None:
        m["payload_dsn"] = info.payload_dsn
    if info.reinjection_of:
        m["reinjection_of"] = list(info.reinjection_of)
    if info.reinjected_in:
        m["reinjected_in"] = list(info.reinjected_in)
    if info.checks:
        m["checks"] = [
            {
                "what": c.what,
                "verdict": c.verdict.name.lower(),
                "expected": jsonable(c.expected),
                "actual": jsonable(c.actual),
                "why": c.why,
            }
            for c in info.checks
        ]
    if info.experts:
        m["expert"] = [{"key": e.key, "severity": e.severity.name.lower(), "message": e.message} for e in info.experts]
    d["mptcp"] = m
    return d


def _separator(value: str) -> str:
    return {"/t": "\t", "/s": " ", "/n": "\n"}.get(value, value)


class FieldsWriter:
    """``-T fields``: the values of the chosen fields, as tshark 4.0 prints them.

    ``options`` are tshark's ``-E`` settings: ``separator`` (default tab; ``/t``, ``/s``),
    ``header`` (``y``/``n``), ``occurrence`` (``f``, ``l``, ``a`` or a number), ``aggregator``
    (default ``,``), ``quote`` (``d``, ``s``, ``n``).
    """

    def __init__(self, out: TextIO, names: list[str], options: dict[str, str] | None = None) -> None:
        from mptcpspec.dissect.fields import FIELDS, UnknownFieldError, compile_row  # the table: -T fields only

        unknown = [n for n in names if n not in FIELDS]
        if unknown:
            raise UnknownFieldError(unknown[0])
        o = options or {}
        self.out = out
        self.names = names
        self.getters = [FIELDS[n].get for n in names]
        self.buf: list[str] = []
        self.sep = _separator(o.get("separator", "/t"))
        self.agg = _separator(o.get("aggregator", ","))
        self.occ = o.get("occurrence", "a")
        q = o.get("quote", "n")
        self.quote = {"d": '"', "s": "'", "n": ""}[q]
        #: the whole row of a TCP packet in the default output mode, compiled from the fields' cells
        self.row = compile_row(names, self.agg, self.sep, self._slow) if self.occ == "a" and not self.quote else None
        if o.get("bom", "n") == "y":
            out.write("\ufeff")  # as tshark -E bom=y: the UTF-8 byte order mark first
        if o.get("header", "n") == "y":
            out.write(self.sep.join(names) + "\n")

    def write_all(self, infos: Iterable[PacketInfo]) -> None:
        """:meth:`write` for each of ``infos``, in a loop of its own (the dissector's main loop when
        nothing but the rows is asked for)."""
        row = self.row
        if row is None:
            for info in infos:
                self.write(info)
            return
        buf = self.buf
        for info in infos:
            buf.append(row(info))
            if len(buf) >= 256:
                self.flush()
                buf = self.buf

    def _slow(self, info: PacketInfo) -> str:
        return self.sep.join([self.agg.join(g(info)) for g in self.getters])

    def write(self, info: PacketInfo) -> None:
        q, occ, agg = self.quote, self.occ, self.agg
        row = self.row
        if row is not None:  # the common case, kept short
            buf = self.buf
            buf.append(row(info))
            if len(buf) >= 256:
                self.flush()
            return
        cells = []
        for get in self.getters:
            vals = get(info)
            if vals and occ != "a":
                if occ == "f":
                    vals = vals[:1]
                elif occ == "l":
                    vals = vals[-1:]
                else:
                    k = int(occ)  # from the first (1) or, negative, from the last (-1); tshark 4.0 takes f, l, a only
                    vals = vals[k - 1 : k] if k > 0 else vals[k : len(vals) + k + 1] if k < 0 else vals
            cells.append(f"{q}{agg.join(vals)}{q}" if vals else "")
        buf = self.buf
        buf.append(self.sep.join(cells))
        if len(buf) >= 256:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.buf.append("")
            self.out.write("\n".join(self.buf))
            self.buf = []


# --------------------------------------------------------------------------- summaries


def expert_summary(counts: Counter[str]) -> list[str]:
    """Lines of the expert-info summary, most severe first."""
    if not counts:
        return ["Expert info: none"]
    lines = ["Expert info:", f"  {'severity':<8} {'count':>7}  key: meaning"]
    for key, n in sorted(counts.items(), key=lambda kv: (-KINDS[kv[0]][0], kv[0])):
        sev, meaning = KINDS[key]
        lines.append(f"  {Severity(sev).name.lower():<8} {n:>7}  {key}: {meaning}")
    return lines


def _key(v: int | None) -> str:
    return "-" if v is None else f"{v:#018x}"


def _tok(v: int | None) -> str:
    return "-" if v is None else f"{v:#010x}"


def connection_rows(summaries: list[ConnectionSummary]) -> list[str]:
    lines = []
    for s in summaries:
        lines.append(
            f"MPTCP stream {'-' if s.stream is None else s.stream}: {s.client} → {s.server}  "
            f"v{'?' if s.version is None else s.version}{'  (handshake not captured)' if s.unlinked else ''}"
            f"{'  checksums' if s.checksum else ''}{'  FALLBACK: ' + s.fallback if s.fallback else ''}"
        )
        lines.append(
            f"  keys      client {_key(s.client_key)} (token {_tok(s.client_token)})  "
            f"server {_key(s.server_key)} (token {_tok(s.server_token)})"
        )
        lines.append(
            f"  data      client→server {s.client_bytes} octets ({s.client_reinjected} reinjected)  "
            f"server→client {s.server_bytes} octets ({s.server_reinjected} reinjected)"
        )
        if s.client_state is not None:
            lines.append(f"  closure   client {s.client_state}, server {s.server_state}")
        for sf in s.subflows:
            ids = "/".join("-" if a is None else str(a) for a in sf.address_ids)
            end = "reset" if sf.reset else ("closed" if sf.closed else "open")
            why = f" ({sf.tcprst_reason})" if sf.tcprst_reason else ""
            lines.append(
                f"  subflow   tcp.stream {sf.tcp_stream} {sf.kind or '?'} {sf.initiator} → {sf.listener} "
                f"ids {ids}{' backup' if any(sf.backup) else ''}  {sf.state or ''}  {end}{why}  "
                f"{sf.bytes[0]}/{sf.bytes[1]} octets, {sf.retransmissions[0]}/{sf.retransmissions[1]} retransmitted"
            )
        for side, aid, addr, port, added, removed in s.addresses:
            lines.append(
                f"  address   {side} id {aid} {addr}{':' + str(port) if port else ''} added in frame {added}"
                + (f", removed in frame {removed}" if removed else "")
            )
        for frame, event in s.history:
            lines.append(f"  event     frame {frame}: {event}")
        checks = ", ".join(f"{what} {verdict.lower()} {n}" for what, verdict, n in s.checks) or "none"
        lines.append(f"  checks    {checks}")
        experts = ", ".join(f"{k} {n}" for k, n in s.experts) or "none"
        lines.append(f"  expert    {experts}")
    return lines


def summary_dict(s: ConnectionSummary) -> dict[str, object]:
    """One connection as a dict of plain JSON values: what ``connections --json`` prints."""
    d: dict[str, object] = {name: getattr(s, name) for name in field_names(type(s))}
    d["subflows"] = [{name: getattr(sf, name) for name in field_names(type(sf))} for sf in s.subflows]
    d["checks"] = [{"what": w, "verdict": v.lower(), "count": n} for w, v, n in s.checks]
    d["experts"] = dict(s.experts)
    d["addresses"] = [dict(zip(("side", "id", "address", "port", "added", "removed"), a)) for a in s.addresses]
    d["history"] = [{"frame": f, "event": e} for f, e in s.history]
    return d


def write_connections(summaries: list[ConnectionSummary], out: TextIO, *, as_json: bool = False) -> None:
    if as_json:
        import json

        for s in summaries:
            out.write(json.dumps(summary_dict(s)) + "\n")
        return
    for line in connection_rows(summaries):
        out.write(line + "\n")
    if not summaries:
        out.write("no MPTCP connection\n")
