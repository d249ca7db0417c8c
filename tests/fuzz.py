"""Long-running fuzzer for every decoder of untrusted octets.

    python3 -m tests.fuzz --count 1000000 [--seed 1] [--reference-every 50]

Feeds random and mutated octets (seeded, reproducible) to the options-area
decoder (strict and lenient), the single-option decoder, and, every N-th
input, the construct reference, which must agree; and, every fourth input,
mutated frames of every link type and encapsulation (tests/test_encap.py's
variants around the kernel captures' packets) to the frame decoder
(``decode_frame``) and the layer walk (``frame_layers``).  Any exception other
than DecodeError, any disagreement, or any input that takes longer than a
second is printed with its octets and fails the run.  The hypothesis tests
in tests/ run a smaller share of the same on every test run.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from mptcpspec.capture.encap import MAX_LAYERS, frame_layers
from mptcpspec.capture.packets import LINKTYPES, decode_frame
from mptcpspec.codec.options import decode_option, decode_tcp_options, encode_option, encode_tcp_options
from mptcpspec.codec.reference import Reference
from mptcpspec.errors import DecodeError

SEEDS = [
    bytes.fromhex(h.replace(" ", ""))
    for h in (
        "1e040181",
        "1e0c0101 29a6c86981ad933c",
        "1e140101 1fdb5df328bc3def 29a6c86981ad933c",
        "1e160101 1fdb5df328bc3def 29a6c86981ad933c 2000",
        "1e0c1001 e47f0142 1b665a18",
        "1e101001 5ab680c7884af03d 33abe9d5",
        "1e181000 cb7b87f5e5f0502f43b535fb70ef6607df2e6c7a",
        "1e082001 d1a3c0b9",
        "1e1c200f 0000000000000001 00000000000000aa 00000005 0010 abcd",
        "1e083401 0a010202",
        "1e103001 0a000201 f8295862f645df19",
        "1e1e3001 20010db8000200000000000000000002 1f90 f8295862f645df19",
        "1e054001 02",
        "1e0351",
        "1e045101",
        "1e0c6000 1122334455667788",
        "1e0c7000 29a6c86981ad933c",
        "1e048101",
        "1e06f1 010203",
        "1e059c 0102",
        "0101080a 1baf7a21 00000000",
        "020405b4",
        "010303 08",
        "0402",
        "050a 00000001 00000002",
        "2206 01020304",
        "2202",
        "fe04 abcd",
    )
]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2 and len(b) > 1:
            del b[rng.randrange(1, len(b)) :]
        elif op == 3:
            b += rng.randbytes(rng.randint(1, 8))
        elif op == 4 and len(b) > 1 and b[0] > 1:
            b[1] = len(b) if rng.random() < 0.7 else rng.randrange(256)
    return bytes(b[:60])


def _area(rng: random.Random) -> bytes:
    parts = [rng.choice(SEEDS) for _ in range(rng.randint(1, 4))]
    return b"".join(parts)


def _frame_seeds() -> list[tuple[int, bytes]]:
    """(link type, frame) of every encapsulation variant of tests/test_encap.py."""
    from tests.test_encap import all_frames

    return list(all_frames())


def _fuzz_frame(rng: random.Random, seeds: list[tuple[int, bytes]]) -> tuple[int, bytes, str | None]:
    """One mutated frame through decode_frame and frame_layers: (link type, frame, problem or None)."""
    linktype, data = rng.choice(seeds)
    b = bytearray(data[: rng.randint(0, 160)])
    for _ in range(rng.randint(1, 6)):
        if b:
            b[rng.randrange(len(b))] = rng.randrange(256)
    if rng.random() < 0.1:
        linktype = rng.choice(sorted(LINKTYPES))
    data = bytes(b)
    try:
        decode_frame(linktype, data)
    except DecodeError:
        pass
    except Exception as e:  # noqa: BLE001 - the point is to catch anything
        return linktype, data, f"decode_frame: {type(e).__name__}: {e}"
    try:
        if len(frame_layers(linktype, data)) > MAX_LAYERS + 3:
            return linktype, data, "frame_layers: too many layers"
    except Exception as e:  # noqa: BLE001
        return linktype, data, f"frame_layers: {type(e).__name__}: {e}"
    return linktype, data, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reference-every", type=int, default=50)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    ref = Reference()
    frame_seeds = _frame_seeds()
    bad = 0
    decoded = rejected = compared = frames = 0
    t0 = time.perf_counter()
    for i in range(args.count):
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randint(0, 44))
        elif kind == 1:
            data = _mutate(rng, rng.choice(SEEDS))
        elif kind == 2:
            data = _mutate(rng, _area(rng))
        else:
            body = rng.randbytes(rng.randint(0, 38))
            data = bytes([30, len(body) + 2]) + body
        start = time.perf_counter()
        if i % 4 == 0:
            frames += 1
            linktype, frame, problem = _fuzz_frame(rng, frame_seeds)
            if problem is not None:
                print(f"{problem} on link type {linktype}, frame {frame.hex()}", file=sys.stderr)
                bad += 1
        try:
            area = decode_tcp_options(data)
            decoded += 1
            if len(data) <= 40 and encode_tcp_options(area) != data:
                print(f"re-encode differs: {data.hex()}", file=sys.stderr)
                bad += 1
        except DecodeError:
            rejected += 1
        except Exception as e:  # noqa: BLE001 - the point is to catch anything
            print(f"{type(e).__name__} on {data.hex()}: {e}", file=sys.stderr)
            bad += 1
        try:
            decode_tcp_options(data, strict=False)
        except Exception as e:  # noqa: BLE001
            print(f"lenient mode raised {type(e).__name__} on {data.hex()}: {e}", file=sys.stderr)
            bad += 1
        if data and (len(data) == 1 or (len(data) >= 2 and data[1] == len(data))):
            try:
                ours = decode_option(data)
                # Options over the 40-octet TCP option space decode (to be reported) but never encode.
                if len(data) <= 40 and encode_option(ours) != data:
                    print(f"single option re-encode differs: {data.hex()}", file=sys.stderr)
                    bad += 1
            except DecodeError as e:
                ours = e
            except Exception as e:  # noqa: BLE001
                print(f"{type(e).__name__} on {data.hex()}: {e}", file=sys.stderr)
                bad += 1
                continue
            if i % args.reference_every == 0:
                compared += 1
                try:
                    theirs = ref.decode(data)
                except DecodeError as e:
                    theirs = e
                if isinstance(ours, DecodeError) != isinstance(theirs, DecodeError) or (
                    not isinstance(ours, DecodeError) and ours != theirs
                ):
                    print(f"reference disagrees on {data.hex()}: {ours!r} vs {theirs!r}", file=sys.stderr)
                    bad += 1
        if time.perf_counter() - start > 1.0:
            print(f"slow input ({time.perf_counter() - start:.1f} s): {data.hex()}", file=sys.stderr)
            bad += 1
    dt = time.perf_counter() - t0
    print(
        f"{args.count} inputs in {dt:.1f} s: {decoded} decoded, {rejected} rejected with DecodeError, "
        f"{compared} compared with the construct reference, {frames} frames, {bad} problems"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
