"""
Soak and load of ``twistd evsev2g`` (prints figures; asserts nothing).

    python bench/soak.py [--sequential 1000] [--concurrent 100] [--misbehaving 0.3]

The SECC runs as its own process (``twistd -n evsev2g`` on ``lo``, plain
TCP, the simulated charger), so its memory and file descriptors are its
own; the EVs are this process's EV simulators on the same reactor.

1. ``--sequential`` sessions one after the other, each a whole DIN DC
   session of a few CurrentDemand; the SECC's RSS is read after every 100.
2. ``--concurrent`` EVs at once (``--rounds`` times), a share of them misbehaving, in equal
   parts: dropping the connection mid-charge, sending garbage, connecting
   and idling, and pausing (seconds between CurrentDemand: slow but legal,
   so they are expected to complete).  Well-behaved EVs send CurrentDemand
   every ``--interval`` s (0.1 s, as cars do; the sequential phase goes as
   fast as it can).  All EVs run in this one process, so on a busy machine
   their own latency adds to the SECC's.

It prints sessions completed against started per kind (every well-behaved
EV must complete), the RSS series (the last reading once the SECC has
been idle long enough to collect and trim, :mod:`evsev2g.memory`), the
SECC's open file descriptors at
the start and at the end, and the p50/p99/max CurrentDemand response time
seen by the well-behaved EVs.  Between phases and at the end it waits
until the SECC has closed every connection (its descriptor count returns
to where it started), or says it did not.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evsev2g.memory import IDLE_TRIM_DELAY  # noqa: E402

TWISTD = Path(sys.executable).parent / "twistd"

SETTINGS = [
    "device=lo", "tls_security=prohibit", "enable_sdp_server=false", "max_connections=160",
    "tls_timeout=3000", "simulator.auth_delay_ms=0", "simulator.cable_check_ms=0",
    "simulator.voltage_slew_rate=0", "simulator.current_slew_rate=0",
]


def free_tcp_port() -> int:
    """A TCP port on ::1 in 49152-65535 (where tcp_port must lie), free right now."""
    for candidate in random.sample(range(49152, 65536), 64):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("::1", candidate))
            except OSError:
                continue
            return candidate
    raise RuntimeError("no free TCP port in 49152-65535")


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid``, MB."""
    with open(f"/proc/{pid}/status") as lines:
        for line in lines:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    """Open file descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered))) - 1))]


async def soak(reactor, args) -> dict:
    """
    Run both phases against a twistd SECC.

    :param args: ``sequential``, ``concurrent``, ``misbehaving``,
        ``current_demands``, ``pause``, ``settle``, ``every`` (sessions
        between RSS readings).
    :returns: the figures (see :func:`report`).
    """
    from twisted.internet.defer import DeferredList, ensureDeferred
    from twisted.internet.endpoints import TCP6ClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol
    from twisted.internet.task import deferLater

    from evsev2g.sim.ev import EVSettings, SimulatedEV, load_ev_codecs

    port = free_tcp_port()
    command = [str(TWISTD), "-n", "--pidfile=", "evsev2g"]
    for setting in SETTINGS + [f"tcp_port={port}"]:
        command += ["--set", setting]
    log = tempfile.NamedTemporaryFile(prefix="soak-secc-", suffix=".log", delete=False)
    secc = subprocess.Popen(command, cwd=tempfile.gettempdir(), stdout=log, stderr=subprocess.STDOUT)
    codecs = load_ev_codecs()

    async def sleep(seconds):
        await deferLater(reactor, seconds, lambda: None)

    try:
        for _ in range(600):
            if secc.poll() is not None:
                raise RuntimeError(f"twistd evsev2g exited with status {secc.returncode}; see {log.name}")
            try:
                socket.create_connection(("::1", port), timeout=1).close()
                break
            except OSError:
                await sleep(0.05)
        await sleep(args.settle)  # the probe connection above is closed by its first-message timer
        fds_start = open_fds(secc.pid)
        rss = [("start", rss_mb(secc.pid))]

        def ev_settings(**overrides):
            values = dict(host="::1", port=port, capacity_wh=60000, start_soc=30, target_soc=90, max_current=100,
                          poll_interval=0.01, current_demand_interval=0.01, max_current_demands=args.current_demands)
            values.update(overrides)
            return EVSettings(**values)

        cd_times: list[float] = []
        counts: dict[str, list[int]] = {}

        def count(kind, ok):
            started_done = counts.setdefault(kind, [0, 0])
            started_done[0] += 1
            started_done[1] += bool(ok)

        async def good_ev(kind="well-behaved", **overrides):
            ev = SimulatedEV(reactor, ev_settings(**overrides), codecs, lambda report: None)
            result = await ensureDeferred(ev.run())
            count(kind, result.code == 0)
            if kind in ("sequential", "well-behaved"):
                cd_times.extend(result.latencies.get("CurrentDemandRes", []))
            if result.code != 0 and len(failures) < 10:
                failures.append(f"{kind}: {result.reason}")

        failures: list[str] = []

        async def dropping_ev():
            dropped = []

            def progress(report):
                if report["state"] == "charging" and not dropped and ev.link is not None:
                    dropped.append(True)
                    ev.link.transport.abortConnection()

            ev = SimulatedEV(reactor, ev_settings(max_current_demands=0), codecs, progress)
            await ensureDeferred(ev.run())
            count("dropping mid-charge", bool(dropped))

        class Raw(Protocol):
            def __init__(self, garbage):
                self.garbage = garbage
                self.done = None

            def connectionMade(self):
                if self.garbage:
                    self.transport.write(bytes(random.randrange(256) for _ in range(random.randint(1, 300))))

            def connectionLost(self, reason):
                if self.done is not None and not self.done.called:
                    self.done.callback(None)

        async def raw_client(kind, garbage):
            from twisted.internet.defer import Deferred

            protocol = Raw(garbage)
            protocol.done = Deferred()
            await connectProtocol(TCP6ClientEndpoint(reactor, "::1", port), protocol)
            # the SECC closes it (bad header, or the first-message timer); a
            # guard keeps a SECC that never does from hanging the bench
            guard = reactor.callLater(args.guard, protocol.transport.abortConnection)
            await protocol.done
            closed_by_secc = guard.active()
            if closed_by_secc:
                guard.cancel()
            elif len(failures) < 10:
                failures.append(f"{kind}: not closed by the SECC within {args.guard:g} s")
            count(kind, closed_by_secc)

        # -- phase 1: sequential ---------------------------------------------
        began = time.monotonic()
        for index in range(1, args.sequential + 1):
            await good_ev("sequential")
            if index % args.every == 0:
                rss.append((f"after {index}", rss_mb(secc.pid)))
        sequential_s = time.monotonic() - began
        sequential_cd = list(cd_times)
        rss_sequential_end = rss[-1][1]

        # -- phase 2: concurrent with misbehaving EVs --------------------------
        kinds = ["dropping mid-charge", "garbage", "idling", "pausing"]
        bad = int(args.concurrent * args.misbehaving)
        plan = ["well-behaved"] * (args.concurrent - bad) + [kinds[i % len(kinds)] for i in range(bad)]
        random.Random(1).shuffle(plan)
        cd_times.clear()
        began = time.monotonic()
        for round_ in range(1, args.rounds + 1):
            jobs = []
            for kind in plan:
                if kind == "well-behaved":
                    jobs.append(ensureDeferred(good_ev(current_demand_interval=args.interval)))
                elif kind == "pausing":
                    jobs.append(ensureDeferred(good_ev("pausing", current_demand_interval=args.pause, max_current_demands=3)))
                elif kind == "dropping mid-charge":
                    jobs.append(ensureDeferred(dropping_ev()))
                else:
                    jobs.append(ensureDeferred(raw_client(kind, kind == "garbage")))
            await DeferredList(jobs, consumeErrors=True)
            rss.append((f"after concurrent round {round_}", rss_mb(secc.pid)))
        concurrent_s = time.monotonic() - began
        for _ in range(int(args.settle * 20) + 100):
            if open_fds(secc.pid) <= fds_start:
                break
            await sleep(0.05)
        fds_end = open_fds(secc.pid)
        rss.append(("end", rss_mb(secc.pid)))
        await sleep(IDLE_TRIM_DELAY + 1.0)  # the SECC collects and trims once idle (evsev2g.memory)
        rss.append(("idle again", rss_mb(secc.pid)))
    finally:
        secc.terminate()
        secc.wait(timeout=30)

    return {
        "log": log.name, "sequential": args.sequential, "concurrent": args.concurrent, "rounds": args.rounds, "misbehaving": bad,
        "sequential_s": sequential_s, "concurrent_s": concurrent_s, "counts": counts, "rss": rss,
        "rss_sequential_end": rss_sequential_end, "fds_start": fds_start, "fds_end": fds_end,
        "current_demand": {"sequential": sequential_cd, "concurrent, well-behaved": cd_times}, "failures": failures,
    }


def report(figures: dict) -> None:
    """Print the figures of :func:`soak`."""
    print(f"SECC: twistd evsev2g (log {figures['log']})")
    print(f"phase 1: {figures['sequential']} sequential sessions in {figures['sequential_s']:.1f} s; "
          f"phase 2: {figures['rounds']} x {figures['concurrent']} concurrent EVs ({figures['misbehaving']} misbehaving) "
          f"in {figures['concurrent_s']:.1f} s")
    print("sessions completed / started:")
    for kind, (started, done) in figures["counts"].items():
        print(f"  {kind:22} {done:>5} / {started}")
    print("RSS of the SECC, MB: " + ", ".join(f"{label} {value:.1f}" for label, value in figures["rss"]))
    print(f"open file descriptors of the SECC: {figures['fds_start']} at the start, {figures['fds_end']} at the end")
    for label, values in figures["current_demand"].items():
        if values:
            print(f"CurrentDemandRes round trip ({label}, {len(values)}): p50 {percentile(values, 0.5) * 1000:.1f} ms, "
                  f"p99 {percentile(values, 0.99) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms")
    for failure in figures["failures"]:
        print(f"  not completed: {failure}")


def main(argv=None) -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=1000)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--misbehaving", type=float, default=0.3, help="share of the concurrent EVs that misbehave")
    parser.add_argument("--current-demands", type=int, default=5, help="CurrentDemand per well-behaved session")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between a pausing EV's CurrentDemand")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds for the SECC to close what it closes by timer")
    parser.add_argument("--every", type=int, default=100, help="sessions between RSS readings")
    parser.add_argument("--interval", type=float, default=0.1,
                        help="seconds between a concurrent well-behaved EV's CurrentDemand (cars: about 0.1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the concurrent phase (the RSS after each shows whether it grows)")
    parser.add_argument("--guard", type=float, default=60.0, help="seconds after which a raw client gives up on the SECC closing it")
    args = parser.parse_args(argv)
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import react

    async def run(reactor):
        report(await soak(reactor, args))

    return react(lambda reactor: ensureDeferred(run(reactor)))


if __name__ == "__main__":
    sys.exit(main())
