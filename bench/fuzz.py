"""
Long fuzzing runs of the targets in ``tests/fuzz/targets.py`` (prints
figures; asserts nothing).

    python bench/fuzz.py --inputs 1000000 [--targets exi-din70121,sdp] [--seed 1]

Each target runs in its own process (so its memory is its own) with a
mutation engine: start from the target's seeds (``../shared/exi-vectors``),
mutate (bit flips, bytes set to edge values, insertions, deletions,
duplicated and spliced ranges, truncation), run, and keep an input in the
corpus when it gives an outcome not seen before (up to 2,000 kept, so
that the corpus is full early and the RSS samples show the target alone).  Per
target it prints: inputs run, inputs per second, outcomes by documented
exception, **undocumented exceptions** (the first few, with the input in
hex to replay), the slowest input and how many took over 50 ms, both in
wall-clock time and in this thread's CPU time (on a shared machine the
wall clock also counts the time the process waited for a core), how much
of the slowest input's CPU time went to garbage collection, the inputs
over 50 ms of CPU without the collections they met (a full collection
walks every object earlier inputs left for the cycle collector, however
small the input that meets it), the best
of three replays of the slowest input (is it slow in itself, or did it
meet a one-off cost such as a lazy first use or a garbage collection?),
and the RSS
sampled ten times over the run (flat means nothing grows).

Before the first counted input each seed runs once, untimed: a fresh
process pays there what a running SECC paid at start-up (OpenSSL's and
the other modules the service imports, the first use of the code paths
every session takes).  The harness begins logging, to nowhere, as twistd
and the EVerest module do at start (until logging begins, Twisted keeps the
last 65,536 log events, and every session they name, alive), and then
collects and freezes what exists (``gc.freeze``), as the SECC does once its
codecs are loaded (:func:`evsev2g.session.release_freed_memory`): a full
collection walks what the inputs made, not the harness's own corpus and
decoded reference vectors.

    python bench/fuzz.py --replay exi-din70121 80981234...

runs one input and prints its outcome or traceback.

The issue's figure is N = 1,000,000 per target: no exception but the
documented ones, no input over 50 ms, memory flat.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: An input slower than this is counted (seconds).
SLOW = 0.050

#: Corpus entries kept at most.
CORPUS_LIMIT = 2_000

def outcome_key(outcome: str) -> str:
    """The part of an outcome that says which way an input went (numbers stripped)."""
    return "".join(ch for ch in outcome if not ch.isdigit())[:120]


def fuzz_one(name: str, inputs: int, seed: int, progress: Path | None) -> dict:
    """Run ``inputs`` inputs against target ``name`` in this process; returns the figures."""
    from twisted.logger import globalLogBeginner

    from tests.fuzz.targets import make_target, mutate, rss_mb

    # Begin logging, to nowhere, as twistd and the EVerest module do at start:
    # until then Twisted keeps the last 65,536 log events, and with them every
    # session an event names, which made the machine targets' heap grow and
    # their full collections slow.
    globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)
    target = make_target(name)
    rng = random.Random(seed)
    corpus = list(target.seeds()) or [b""]
    for seed in corpus:  # warm-up, not counted: the costs a running SECC paid at start-up
        try:
            target.run(seed)
        except Exception:  # noqa: BLE001 - the counted run below reports it
            pass
    gc.collect()
    gc.freeze()  # the harness's own state, as the SECC freezes its start-up state
    collecting = [0.0, 0.0]  # CPU seconds in collections so far, start of the current one

    def count_collections(phase: str, info: dict) -> None:
        if phase == "start":
            collecting[1] = time.thread_time()
        else:
            collecting[0] += time.thread_time() - collecting[1]

    gc.callbacks.append(count_collections)
    seen: set[str] = set()
    outcomes: dict[str, int] = {}
    undocumented: list[dict] = []
    undocumented_count = 0
    slowest = slowest_cpu = (0.0, b"")
    slowest_cpu_gc = 0.0
    slowest_own = 0.0  # CPU of the slowest input without the collections it met
    slow = slow_cpu = slow_own = 0
    samples = []
    every = max(inputs // 10, 1)
    started = time.perf_counter()

    def figures(done: int) -> dict:
        """The figures after ``done`` inputs."""
        seconds = time.perf_counter() - started
        extra = target.figures() if hasattr(target, "figures") else {}
        return {
            "target": name,
            "inputs": done,
            "seconds": round(seconds, 1),
            "per_second": round(done / seconds) if seconds else 0,
            "outcomes": dict(outcomes),
            "undocumented": undocumented_count,
            "undocumented_examples": undocumented,
            "slowest_ms": round(slowest[0] * 1000, 2),
            "slowest_input": slowest[1].hex()[:400],
            "over_50ms": slow,
            "slowest_cpu_ms": round(slowest_cpu[0] * 1000, 2),
            "slowest_cpu_input": slowest_cpu[1].hex()[:400],
            "slowest_cpu_gc_ms": round(slowest_cpu_gc * 1000, 2),
            "slowest_own_cpu_ms": round(slowest_own * 1000, 2),
            "over_50ms_own_cpu": slow_own,
            "over_50ms_cpu": slow_cpu,
            "rss_mb": list(samples),
            "corpus": len(corpus),
            **extra,
        }

    index = -1
    for index in range(inputs):
        if index < len(corpus) and index < 1000:
            data = corpus[index]
        else:
            data = mutate(rng, rng.choice(corpus), corpus)
        begin, begin_cpu, begin_gc = time.perf_counter(), time.thread_time(), collecting[0]
        try:
            result = target.run(data)
            key = "ok"
        except target.documented as error:
            result = f"{type(error).__name__}: {error}"
            key = type(error).__name__
        except Exception as error:
            undocumented_count += 1
            key = "UNDOCUMENTED"
            result = f"{type(error).__name__}: {error}"
            if len(undocumented) < 10:
                undocumented.append({"input": data.hex(), "error": result[:500],
                                     "where": traceback.format_exc(limit=-3)[-1500:]})
        elapsed = time.perf_counter() - begin
        cpu = time.thread_time() - begin_cpu
        outcomes[key] = outcomes.get(key, 0) + 1
        collected = collecting[0] - begin_gc
        if cpu > slowest_cpu[0]:
            slowest_cpu = (cpu, data)
            slowest_cpu_gc = collected
        slowest_own = max(slowest_own, cpu - collected)
        if cpu - collected > SLOW:
            slow_own += 1
        if cpu > SLOW:
            slow_cpu += 1
        if elapsed > slowest[0]:
            slowest = (elapsed, data)
        if elapsed > SLOW:
            slow += 1
        novel = outcome_key(result)
        if novel not in seen and len(corpus) < CORPUS_LIMIT:
            seen.add(novel)
            corpus.append(data)
        if (index + 1) % every == 0:
            samples.append(round(rss_mb(), 1))
            if progress is not None:
                progress.write_text(json.dumps(figures(index + 1)))
    result = figures(index + 1)
    # Is the slowest input slow in itself, or did it meet a one-off cost
    # (a lazy first use, a garbage collection)?  Its best of three replays says.
    replays = []
    for _ in range(3):
        begin_cpu = time.thread_time()
        try:
            target.run(slowest_cpu[1])
        except Exception:  # noqa: BLE001 - counted above already
            pass
        replays.append(time.thread_time() - begin_cpu)
    result["slowest_cpu_replayed_ms"] = round(min(replays) * 1000, 2)
    gc.callbacks.remove(count_collections)
    close = getattr(target, "close", None)
    if close is not None:
        close()
    return result


def replay(name: str, hex_input: str) -> int:
    """Run one input and print what happens."""
    from tests.fuzz.targets import make_target

    target = make_target(name)
    try:
        print("outcome:", target.run(bytes.fromhex(hex_input)))
    except target.documented as error:
        print(f"documented: {type(error).__name__}: {error}")
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def main(argv=None) -> int:
    """Run the targets, one process each, and print a table."""
    from tests.fuzz.targets import TARGET_NAMES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs per target (default 10,000)")
    parser.add_argument("--targets", default=",".join(TARGET_NAMES), help="comma-separated target names")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--progress", type=Path, help="a folder where each target's figures so far are written ten times per run")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--replay", nargs=2, metavar=("TARGET", "HEX"))
    args = parser.parse_args(argv)
    if args.replay:
        return replay(*args.replay)
    if args.one:
        progress = args.progress / f"{args.one}.json" if args.progress else None
        print(json.dumps(fuzz_one(args.one, args.inputs, args.seed, progress)))
        return 0
    results = []
    for name in args.targets.split(","):
        done = subprocess.run(
            [sys.executable, __file__, "--one", name, "--inputs", str(args.inputs), "--seed", str(args.seed)]
            + (["--progress", str(args.progress)] if args.progress else []),
            capture_output=True, text=True, cwd=ROOT,
        )
        if done.returncode != 0:
            print(f"{name}: the run failed:\n{done.stderr[-3000:]}")
            results.append({"target": name, "failed": done.stderr[-3000:]})
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(
            f"{name:20} {result['inputs']:>9,} inputs {result['per_second']:>7,}/s  "
            f"undocumented {result['undocumented']}  slowest {result['slowest_ms']} ms "
            f"(CPU {result['slowest_cpu_ms']} ms, {result['slowest_cpu_gc_ms']} ms of it collecting garbage, "
            f"replayed {result['slowest_cpu_replayed_ms']} ms)  "
            f">50 ms {result['over_50ms']} (CPU {result['over_50ms_cpu']}, without collections "
            f"{result['over_50ms_own_cpu']}; slowest so {result['slowest_own_cpu_ms']} ms)  "
            f"RSS MB {result['rss_mb']}  corpus {result['corpus']}"
        )
        print(f"{'':20} outcomes {result['outcomes']}")
        if "requests" in result:
            print(f"{'':20} an input is a whole session: {result['requests']:,} requests, "
                  f"slowest request {result['slowest_request_cpu_ms']} ms CPU")
        for example in result["undocumented_examples"][:3]:
            print(f"{'':20} UNDOCUMENTED {example['error']}\n{'':20}   replay: python bench/fuzz.py --replay {name} {example['input']}")
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if any(r.get("undocumented") or r.get("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
