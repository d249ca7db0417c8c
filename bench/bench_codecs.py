"""Generated codecs against construct, side by side, in one run.

    python bench/bench_codecs.py [--repeat 7]

For each option format: the median time of one decode (and one encode) with
construct's interpreted parse/build of the spec schema (the reference), with
construct's compile() of the same schema, and with the generated codec
(``decode_<name>(b, 0, n)``, as the options-area decoder calls it).  Medians
of ``--repeat`` runs of an auto-sized loop; the ratio column is
construct-interpreted / generated.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import sys
import timeit
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mptcpspec.codec import options as o  # noqa: E402
from mptcpspec.codec.codegen import snake  # noqa: E402
from mptcpspec.codec.generated import options as gm  # noqa: E402
from mptcpspec.codec.generated import tcp_options as gt  # noqa: E402
from mptcpspec.codec.reference import Reference  # noqa: E402

SAMPLES = [
    o.MpCapable(version=1, flags=o.MpCapableFlags.HMAC_SHA),
    o.MpCapable(version=1, flags=o.MpCapableFlags.HMAC_SHA, sender_key=0x29A6C86981AD933C),
    o.MpCapable(
        version=1,
        flags=o.MpCapableFlags.HMAC_SHA | o.MpCapableFlags.CHECKSUM_REQUIRED,
        sender_key=0x1FDB5DF328BC3DEF,
        receiver_key=0x29A6C86981AD933C,
        data_level_length=8192,
        checksum=0x1234,
    ),
    o.MpJoinSyn(address_id=1, token=0xE47F0142, nonce=0x1B665A18),
    o.MpJoinSynAck(address_id=1, truncated_hmac=0x5AB680C7884AF03D, nonce=0x33ABE9D5),
    o.MpJoinAck(hmac=bytes.fromhex("cb7b87f5e5f0502f43b535fb70ef6607df2e6c7a")),
    o.Dss(flags=o.DssFlags.DATA_ACK_PRESENT, data_ack=3518592185),
    o.Dss(
        flags=o.DssFlags.DATA_ACK_PRESENT | o.DssFlags.DATA_ACK_8 | o.DssFlags.MAPPING_PRESENT | o.DssFlags.DSN_8,
        data_ack=14413541604287230030,
        dsn=3576348362,
        ssn=1,
        data_level_length=1400,
        checksum=0x82F,
    ),
    o.AddAddrV0(ip_version=4, address_id=1, address=ipaddress.ip_address("192.0.2.2")),
    o.AddAddr(address_id=1, address=ipaddress.ip_address("203.0.113.2"), port=8080, hmac=0xF8295862F645DF19),
    o.AddAddr(address_id=2, address=ipaddress.ip_address("2001:db8:2::2"), hmac=0xF8295862F645DF19),
    o.RemoveAddr(address_ids=(1, 2)),
    o.MpPrio(backup=True),
    o.MpFail(dsn=0x1122334455667788),
    o.MpFastclose(receiver_key=0x29A6C86981AD933C),
    o.MpTcpRst(transient=True, reason=o.TcpRstReason.MPTCP_SPECIFIC),
    o.MpExperimental(bits=1, payload=b"\x01\x02\x03"),
    o.Timestamps(tsval=464494241, tsecr=3275212179),
    o.Sack(edges=(1, 2, 3, 4)),
]


def median_us(fn, repeat: int) -> float:
    t = timeit.Timer(fn)
    number, _ = t.autorange()
    return statistics.median(x / number for x in t.repeat(repeat, number)) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    ref = Reference()
    fmts = {f.spec.cls: f for f in ref.formats()}
    rows = []
    for v in SAMPLES:
        cls = type(v).__name__
        data = o.encode_option(v)
        n = len(data)
        mod = gm if v.KIND == 30 else gt
        dec = getattr(mod, f"decode_{snake(cls)}")
        enc = getattr(mod, f"encode_{snake(cls)}")
        schema = fmts[cls].spec.schema
        compiled = schema.compile()
        built = fmts[cls].to_dict(v, n)
        assert dec(data, 0, n) == v and ref.decode(data) == v and schema.build(built) == data
        c_parse = median_us(partial(schema.parse, data), args.repeat)
        c_comp = median_us(partial(compiled.parse, data), args.repeat)
        g_dec = median_us(partial(dec, data, 0, n), args.repeat)
        c_build = median_us(partial(schema.build, built), args.repeat)
        g_enc = median_us(partial(enc, v), args.repeat)
        rows.append((f"{v.NAME} ({cls})", n, c_parse, c_comp, g_dec, c_parse / g_dec, c_build, g_enc, c_build / g_enc))
    head = (
        "option",
        "octets",
        "construct parse µs",
        "construct compiled µs",
        "generated decode µs",
        "decode ×",
        "construct build µs",
        "generated encode µs",
        "encode ×",
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.2f} | {r[5]:.0f}× | {r[6]:.1f} | "
            f"{r[7]:.2f} | {r[8]:.0f}× |"
        )
    worst = min(rows, key=lambda r: r[5])
    dss28 = next(r for r in rows if r[0].startswith("DSS") and r[1] == 28)
    print(
        f"\nDSS of 28 octets: {dss28[4]:.2f} µs per decode (target ≤ 1 µs). "
        f"Smallest decode speed-up: {worst[5]:.0f}× ({worst[0]}; target ≥ 20×). "
        f"Python {sys.version.split()[0]}, medians of {args.repeat} runs."
    )


if __name__ == "__main__":
    main()
