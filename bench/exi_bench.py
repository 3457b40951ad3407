"""
Speed and memory figures of the EXI engine (prints them; asserts nothing).

    python bench/exi_bench.py [--runs N]

For each schema set: the cold build (XSDs → grammars → generated code →
compiled), then encode and decode microseconds per message (median of
``--runs`` batches) for the messages of the issue, taken from
``../shared/exi-vectors/golden.jsonl``, and the peak RSS of the process.
Targets (2 cores, CPython 3.11): ISO-2 CurrentDemandReq decode ≤ 30 µs
and encode ≤ 30 µs; cold build ≤ 1 s per set.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evsev2g.exi.codec import Codec, load_codec  # noqa: E402

MESSAGES = [
    ("appHandshake", "supportedAppProtocolReq", 68, "A supportedAppProtocolReq (2 AppProtocol)"),
    ("din70121", "CurrentDemandReq", 49, "B DIN CurrentDemandReq (all optionals)"),
    ("iso15118-2", "CurrentDemandReq", 46, "C ISO-2 CurrentDemandReq (all optionals)"),
    ("iso15118-2", "ChargeParameterDiscoveryRes", 39, "D ISO-2 ChargeParameterDiscoveryRes (AC, 1 tuple)"),
    ("iso15118-2", "ChargeParameterDiscoveryRes", 165, "E ISO-2 ChargeParameterDiscoveryRes (DC, SAScheduleList, tariffs)"),
]


def per_call_us(fn, batch: int, runs: int) -> float:
    """Median over ``runs`` batches of the time per call, in µs."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch * 1e6)
    return statistics.median(samples)


def schedule_message(golden, entries: int, tuples: int = 1):
    """
    The DC ChargeParameterDiscoveryRes vector with its first SAScheduleTuple
    given ``entries`` PMaxScheduleEntry (up to maxOccurs 1024), ``tuples``
    times (up to 3).
    """
    codec = load_codec("iso15118-2")
    vector = next(v for v in golden if v["protocol"] == "iso15118-2"
                  and v["message"] == "ChargeParameterDiscoveryRes" and len(v["exi_hex"]) // 2 == 165)
    msg = codec.decode(bytes.fromhex(vector["exi_hex"]))
    schedule_list = msg.Body.ChargeParameterDiscoveryRes.SAScheduleList
    first = schedule_list.SAScheduleTuple[0]
    first.PMaxSchedule.set("PMaxScheduleEntry", [first.PMaxSchedule.PMaxScheduleEntry[0]] * entries)
    copies = []
    for k in range(tuples):
        copy = codec.decode(codec.encode(msg)).Body.ChargeParameterDiscoveryRes.SAScheduleList \
            .SAScheduleTuple[0]
        copy.set("SAScheduleTupleID", k + 1)
        copies.append(copy)
    schedule_list.set("SAScheduleTuple", copies)
    return codec, msg


def scaling(golden, runs: int) -> None:
    """
    Encode/decode time against message size: it should grow linearly (the
    stream and output ints are trimmed and split every ``codegen.WINDOW``
    bits inside loops; without that the growth was quadratic).  V2GTP
    messages are capped at 8 KiB by the transport; 1024 entries is the
    schema's maximum.
    """
    print("size scaling, ISO-2 ChargeParameterDiscoveryRes with long PMaxSchedules (ms per message):")
    for entries, tuples in ((3, 1), (100, 1), (400, 1), (1024, 1), (1024, 3)):
        codec, msg = schedule_message(golden, entries, tuples)
        data = codec.encode(msg)
        batch = max(1, 2000 // (entries * tuples))
        dec = per_call_us(lambda: codec.decode(data), batch, max(3, runs // 3)) / 1000
        enc = per_call_us(lambda: codec.encode(msg), batch, max(3, runs // 3)) / 1000
        print(f"  {tuples} x {entries:4d} entries {len(data):7d} B  encode {enc:8.2f}  decode {dec:8.2f}")


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--vectors", default=str(ROOT.parent / "shared" / "exi-vectors" / "golden.jsonl"))
    args = parser.parse_args()
    print("cold grammar build (XSD parse + grammars + code generation + compile):")
    os.environ["EVSEV2G_EXI_CACHE"] = "off"  # built here, not loaded from the codec cache
    for name in ("appHandshake", "din70121", "iso15118-2"):
        start = time.perf_counter()
        Codec(name)
        print(f"  {name:14s} {(time.perf_counter() - start) * 1000:7.1f} ms")
    with open(args.vectors, encoding="utf-8") as fh:
        golden = [json.loads(line) for line in fh]
    print(f"encode / decode, µs per message (median of {args.runs} batches of {args.batch}):")
    for proto, message, size, label in MESSAGES:
        vector = next(v for v in golden if v["protocol"] == proto and v["message"] == message
                      and len(v["exi_hex"]) // 2 == size)
        codec = load_codec(proto)
        data = bytes.fromhex(vector["exi_hex"])
        msg = codec.decode(data)
        assert codec.encode(msg) == data
        dec = per_call_us(lambda: codec.decode(data), args.batch, args.runs)
        enc = per_call_us(lambda: codec.encode(msg), args.batch, args.runs)
        print(f"  {label:66s} {size:4d} B  encode {enc:7.1f}  decode {dec:7.1f}")
    scaling(golden, args.runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS: {peak / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
