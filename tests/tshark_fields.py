"""Read tshark's MPTCP analysis fields, per frame, for the differential test of ``mptcpspec dissect``.

``tshark_mptcp_fields(pcap, fields)`` runs tshark (Wireshark 4.0) once over a capture with
``-T fields`` and returns ``{frame number: {field: [value, ...]}}``: every requested field of every
frame, each value exactly as tshark prints it in ``-T fields`` (decimal integers, ``1``/``0`` for
booleans, ``1`` for a present FT_NONE field such as an expert info, no unit strings), all
occurrences kept in tree order.  An absent field is ``[]``; a present field whose value is the empty
string (``mptcp.analysis.subflows`` of a connection with no attached subflow) is ``[""]``.

How tshark is run (see ``docs/tshark-mptcp.md`` for why):

* ``WIRESHARK_CONFIG_DIR`` points to an empty directory, so no personal preference file applies;
  every preference that matters is then pinned with ``-o`` (``RECOMMENDED_PREFS``, overridable).
* single pass (no ``-2``, no ``-R``): tshark's MPTCP analysis is stateful and, in one pass, each
  frame shows the state built from the frames before it (``mptcp.reinjected_in`` and later-learned
  keys never appear earlier); a second pass changes values and even flips MP_JOIN subflow
  directions of v1 connections.
* ``-n`` (no name resolution); ``-E separator=\\x1e -E aggregator=\\x1f -E quote=d``: two control
  characters that cannot occur in these fields' values (tshark takes one character for each), and
  double quotes so that a present empty value (``""``) differs from an absent one (nothing).
  tshark escapes ``\\t \\n \\r \\b \\f`` inside values as two-character sequences and nothing else.

Only the standard library is used.  Run as a script to print the table of a capture::

    python3 -m tests.tshark_fields CAPTURE [-e FIELD ...] [-o NAME:VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping

__all__ = [
    "ANALYSIS_FIELDS",
    "EXPERT_FIELDS",
    "RECOMMENDED_PREFS",
    "TsharkError",
    "tshark_command",
    "tshark_mptcp_fields",
]

TSHARK = shutil.which("tshark") or "tshark"

SEPARATOR = "\x1e"  # between fields (-E separator)
AGGREGATOR = "\x1f"  # between the occurrences of one field (-E aggregator)
QUOTE = '"'  # -E quote=d: a present field is "..."; an absent one is empty

# Preferences pinned for the differential test: every MPTCP analysis on, TCP sequence analysis
# with relative numbers on (the MPTCP mapping analysis reads the relative subflow sequence number).
# These are the 4.0 names: "tcp.analyze_mptcp" does not exist (tshark refuses it).
RECOMMENDED_PREFS: dict[str, str] = {
    "tcp.analyze_sequence_numbers": "TRUE",
    "tcp.relative_sequence_numbers": "TRUE",
    "mptcp.analyze_mptcp": "TRUE",
    "mptcp.relative_sequence_numbers": "TRUE",
    "mptcp.analyze_mappings": "TRUE",
    "mptcp.intersubflows_retransmission": "TRUE",
}

# tshark's generated MPTCP fields (none of them is read from the packet's octets directly).
ANALYSIS_FIELDS: tuple[str, ...] = (
    "tcp.stream",
    "mptcp.analysis",
    "mptcp.stream",
    "mptcp.master",
    "mptcp.analysis.subflows",
    "mptcp.expected_token",
    "mptcp.expected_idsn",
    "mptcp.ack",
    "mptcp.dss.dsn",
    "mptcp.rawdsn64",
    "mptcp.dsn",
    "mptcp.related_mapping",
    "mptcp.reinjection_of",
    "mptcp.reinjected_in",
    "mptcp.rm_addr.count",
)

# The MPTCP expert infos (FT_NONE: printed "1" per occurrence).
EXPERT_FIELDS: tuple[str, ...] = (
    "mptcp.connection.echoed_key_mismatch",
    "mptcp.connection.missing_algorithm",
    "mptcp.connection.unsupported_algorithm",
    "mptcp.dss.infinite_mapping",
    "mptcp.dss.missing_mapping",
)


class TsharkError(RuntimeError):
    """tshark failed, or printed something this module cannot read."""


def _merged_prefs(prefs: Mapping[str, object] | None) -> dict[str, str]:
    merged = dict(RECOMMENDED_PREFS)
    for name, value in (prefs or {}).items():
        if isinstance(value, bool):
            value = "TRUE" if value else "FALSE"
        merged[name] = str(value)
    return merged


def tshark_command(
    pcap_path: str | os.PathLike, fields: Iterable[str], prefs: Mapping[str, object] | None = None
) -> list[str]:
    """The tshark command line: frame.number first, then ``fields``, with the merged prefs."""
    cmd = [TSHARK, "-n", "-r", os.fspath(pcap_path)]
    for name, value in _merged_prefs(prefs).items():
        cmd += ["-o", f"{name}:{value}"]
    cmd += [
        "-T",
        "fields",
        "-E",
        f"separator={SEPARATOR}",
        "-E",
        f"aggregator={AGGREGATOR}",
        "-E",
        "quote=d",
        "-E",
        "occurrence=a",
        "-E",
        "header=n",
        "-e",
        "frame.number",
    ]
    for field in fields:
        cmd += ["-e", field]
    return cmd


def _parse_value(cell: str, line: str) -> list[str]:
    if cell == "":
        return []
    if len(cell) < 2 or cell[0] != QUOTE or cell[-1] != QUOTE:
        raise TsharkError(f"unquoted field value {cell!r} in tshark line {line!r}")
    return cell[1:-1].split(AGGREGATOR)


def tshark_mptcp_fields(
    pcap_path: str | os.PathLike,
    fields: Iterable[str],
    prefs: Mapping[str, object] | None = None,
    config_dir: str | os.PathLike | None = None,
) -> dict[int, dict[str, list[str]]]:
    """Per frame number, each of ``fields`` as tshark 4.0 displays it in ``-T fields``.

    ``prefs`` ({name: value}, booleans allowed) is applied over ``RECOMMENDED_PREFS``.
    ``config_dir`` is used as ``WIRESHARK_CONFIG_DIR``; by default a fresh empty directory.
    Every frame of the capture has an entry, with ``[]`` for each absent field.
    """
    fields = list(fields)
    if not fields:
        raise ValueError("no field requested")
    for field in fields:
        if not field or any(c in field for c in " \t\n" + SEPARATOR + AGGREGATOR):
            raise ValueError(f"bad field name {field!r}")
    if shutil.which(TSHARK) is None:
        raise TsharkError("tshark is not installed")
    cmd = tshark_command(pcap_path, fields, prefs)

    tmp = None
    if config_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="tshark-cfg-")
        config_dir = tmp.name
    try:
        env = dict(os.environ)
        env["WIRESHARK_CONFIG_DIR"] = os.fspath(config_dir)
        proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise TsharkError(f"tshark exited with {proc.returncode}: {err}")

    out = proc.stdout.decode("utf-8", "surrogateescape")
    result: dict[int, dict[str, list[str]]] = {}
    for line in out.split("\n"):
        if line == "":
            continue
        cells = line.split(SEPARATOR)
        if len(cells) != len(fields) + 1:
            raise TsharkError(f"expected {len(fields) + 1} fields, got {len(cells)} in {line!r}")
        number = _parse_value(cells[0], line)
        if len(number) != 1 or not number[0].isdigit():
            raise TsharkError(f"bad frame.number in {line!r}")
        row: dict[str, list[str]] = {}
        for field, cell in zip(fields, cells[1:]):
            values = _parse_value(cell, line)
            # the same field requested twice keeps one entry (same values)
            row[field] = values
        result[int(number[0])] = row
    return result


def _show(values: list[str]) -> str:
    if not values:
        return "-"
    return "|".join(v if v != "" else '""' for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.tshark_fields",
        description="Print tshark 4.0's MPTCP analysis fields of a capture, one line a frame "
        "('-' absent, '|' between occurrences, '\"\"' an empty value).",
    )
    parser.add_argument("capture")
    parser.add_argument(
        "-e",
        "--field",
        action="append",
        dest="fields",
        help="field to show (repeatable; default: the MPTCP analysis fields and expert infos)",
    )
    parser.add_argument(
        "-o",
        "--pref",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="preference over RECOMMENDED_PREFS (repeatable)",
    )
    args = parser.parse_args(argv)
    prefs = {}
    for item in args.pref:
        name, sep, value = item.partition(":")
        if not sep:
            parser.error(f"-o wants NAME:VALUE, not {item!r}")
        prefs[name] = value
    fields = args.fields or list(ANALYSIS_FIELDS + EXPERT_FIELDS)
    try:
        table = tshark_mptcp_fields(args.capture, fields, prefs)
    except (TsharkError, ValueError) as exc:
        print(f"tshark_fields: {exc}", file=sys.stderr)
        return 1
    lines = ["\t".join(["frame"] + fields)]
    lines += ["\t".join([str(n)] + [_show(table[n][f]) for f in fields]) for n in sorted(table)]
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
