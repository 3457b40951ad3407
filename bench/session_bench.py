"""
Session bench: 1, 10 and 100 concurrent EV simulators against one SECC
process on loopback, in charging loops: DIN 70121 DC (CurrentDemand), ISO
15118-2 DC (CurrentDemand) and AC (ChargingStatus), each over TCP and, for
ISO 15118-2, over TLS (a throw-away test PKI made at start).

The SECC is ``twistd -n evsev2g`` (simulated charger, TCP or TLS on ::1) in its own
process; the EVs run in other processes (several EVs per process, at most
``--evs-per-process``), so they do not steal the SECC's measurements.  For
each run it prints:

- the EV-observed response latency per message type: count, p50, p99, max;
- the SECC's CPU time per message (user + system, from /proc, over the whole
  run divided by the requests answered), and the EV processes' (they share
  the machine's cores with the SECC);
- the SECC's resident memory after the run and its peak (VmRSS, VmHWM).

On a charger the EVs are other computers; here they share the cores with
the SECC.  With 100 EVs they use as much CPU as the SECC, and at equal
priority the scheduler's sharing of two cores between eleven processes
shows in the p99 (10–40 ms for the same code, run to run).  The EV
processes therefore run under ``nice`` (``--ev-nice``, default 10) so that
the latency they see is the SECC's; ``--ev-nice 0`` measures the shared
machine instead.

On a virtual machine the hypervisor can take a CPU away for milliseconds
at a time.  In a run that loses more than 20 ms of CPU that way (the
``steal`` column of ``/proc/stat``, printed with every run) the rare slow
responses are the host's doing, not the SECC's: for one EV they are a few
samples of 2–10 ms, which is the whole p99 (inside the SECC such a
response shows up as a reactor pass whose wall time is several times its
CPU time).  Such a run is marked "disturbed" and repeated, up to
``--attempts`` times; the targets are judged on the run with the least CPU
stolen, and the disturbed runs' p99 are printed beside them, not hidden.

Targets (issues 4 and 7): the loop response's p99 ≤ 2 ms with 1 session
and ≤ 25 ms (V2G_SECC_Msg_Performance_Time for CurrentDemand) with 100
sessions; RSS ≤ 80 MB with 100 sessions — for every kind.  With many
sessions the p99 is printed twice: over the whole run (EVs arriving within
two seconds, with their TLS handshakes and session set-ups, while the first
already charge) and over the time all of them are charging.  The script
prints PASS/MISS per target; it is a measurement, not a test, and its exit
status is 0 either way unless something broke.

Usage: python bench/session_bench.py [--kinds din iso2-dc iso2-ac iso2-dc-tls iso2-ac-tls]
       [--sessions 1 10 100] [--loops 200] [--interval 0.05] [--evs-per-process 10] [--ev-nice 10] [--attempts 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWISTD = str(Path(sys.executable).parent / "twistd")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

#: Bench kinds: (EV protocol, mode, TLS, the loop's response).
KINDS = {
    "din": ("din70121", "dc", False, "CurrentDemandRes"),
    "iso2-dc": ("iso15118-2", "dc", False, "CurrentDemandRes"),
    "iso2-ac": ("iso15118-2", "ac", False, "ChargingStatusRes"),
    "iso2-dc-tls": ("iso15118-2", "dc", True, "CurrentDemandRes"),
    "iso2-ac-tls": ("iso15118-2", "ac", True, "ChargingStatusRes"),
}


# -- the EV worker process -------------------------------------------------------


def worker(port: int, count: int, loops: int, interval: float, stagger: float, kind: str, v2g_root: str) -> None:
    """Run ``count`` EV simulators at once; print their results as JSON."""
    from twisted.internet import reactor
    from twisted.internet.defer import gatherResults
    from twisted.internet.task import deferLater

    from evsev2g.sim.ev import EVSettings, load_ev_codecs, run_ev

    protocol, mode, tls, _ = KINDS[kind]
    codecs = load_ev_codecs(protocol)
    settings = EVSettings(
        protocol=protocol,
        mode=mode,
        tls=tls,
        v2g_root=v2g_root or None,
        host="::1",
        port=port,
        capacity_wh=1e6,
        start_soc=20,
        target_soc=90,
        poll_interval=0.02,
        current_demand_interval=interval,
        max_current_demands=loops,
    )
    outcome = {}
    # Ready, then wait for the go: no EV starts while another worker
    # process is still importing and loading codecs (which would load the
    # machine and show up as SECC latency).
    import gc

    gc.collect()
    gc.freeze()  # as the SECC does after start-up: collections skip the codecs
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    cpu_at_go = time.process_time()

    def one(index):
        return deferLater(reactor, index * stagger, lambda: None).addCallback(lambda _: run_ev(reactor, settings, codecs=codecs))

    def done(results):
        outcome["cpu_seconds"] = time.process_time() - cpu_at_go
        outcome["results"] = [
            {"code": r.code, "reason": r.reason, "latencies": r.latencies, "sent_at": r.sent_at} for r in results
        ]
        reactor.stop()

    def failed(failure):
        outcome["error"] = failure.getTraceback()
        reactor.stop()

    reactor.callWhenRunning(lambda: gatherResults([one(i) for i in range(count)]).addCallbacks(done, failed))
    reactor.run()
    sys.stdout.write(json.dumps(outcome))


# -- the SECC process --------------------------------------------------------------


class SECCProcess:
    """``twistd -n evsev2g`` on ::1 with the simulated charger."""

    def __init__(self, max_connections: int, mode: str = "dc", certs_dir: str | None = None) -> None:
        security = ["tls_security=prohibit"] if certs_dir is None else ["tls_security=force", "tls_port=0", f"certs_dir={certs_dir}"]
        settings = security + [
            "device=lo", "enable_sdp_server=false", "tcp_port=0", f"max_connections={max_connections}",
            "simulator.auth_delay_ms=100", "simulator.cable_check_ms=100", "simulator.voltage_slew_rate=0",
            "simulator.current_slew_rate=0", f"simulator.mode={mode}", "simulator.ac_contactor_delay_ms=10",
        ]
        self.process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "evsev2g", "--config", str(ROOT / "tap_config.yaml")]
            + [argument for setting in settings for argument in ("--set", setting)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT),
        )
        self.port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if "TCP port" in line:
                words = line.replace(",", "").split()
                which = "TCP" if certs_dir is None else "TLS"
                self.port = int(words[words.index(which) + 2])
                break
        if self.port is None:
            self.stop()
            raise SystemExit("the SECC did not start")
        # keep draining its log so it never blocks on a full pipe
        self.log_lines = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for _ in self.process.stdout:
            self.log_lines += 1

    def cpu_seconds(self) -> float:
        """User + system CPU time of the SECC so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, amount, _ = line.split()
                values[key[:-1]] = int(amount) / 1024.0
        return values["VmRSS"], values["VmHWM"]

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


def run(sessions: int, loops: int, interval: float, per_process: int, kind: str = "din", pki=None, ev_nice: int = 10) -> dict:
    """One bench run with ``sessions`` EVs of ``kind``; returns the figures."""
    _, mode, tls, _ = KINDS[kind]
    certs_dir = str(pki.directory) if tls else None
    v2g_root = ""
    if tls:
        from evsev2g.security import layout

        v2g_root = str(pki.path(layout.V2G_ROOT))
    secc = SECCProcess(max_connections=max(4, sessions + 4), mode=mode, certs_dir=certs_dir)
    try:
        rss_idle, _ = secc.memory_mb()
        counts = []
        remaining = sessions
        while remaining:
            take = min(per_process, remaining)
            counts.append(take)
            remaining -= take
        stagger = min(0.02, 2.0 / max(sessions, 1))
        workers = [
            subprocess.Popen(
                ["nice", "-n", str(ev_nice), sys.executable, __file__, "--worker", str(secc.port), str(count), str(loops), str(interval), str(stagger),
                 kind, v2g_root],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT),
            )
            for count in counts
        ]
        for w in workers:
            w.stdout.readline()  # "ready": imported, codecs loaded
        # Each worker's results are far more than a pipe holds: read them
        # while it runs, or it blocks writing them and never exits.
        texts = [[] for _ in workers]
        readers = [threading.Thread(target=lambda w=w, t=t: t.append(w.stdout.read()), daemon=True) for w, t in zip(workers, texts)]
        for reader in readers:
            reader.start()
        cpu_before = secc.cpu_seconds()
        steal_before = stolen_seconds()
        started = time.monotonic()
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        rss_peak_during = 0.0
        while any(w.poll() is None for w in workers):
            rss_peak_during = max(rss_peak_during, secc.memory_mb()[0])
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        steal = stolen_seconds() - steal_before
        for reader in readers:
            reader.join()
        outputs = [json.loads("".join(t) or "{}") for t in texts]
        cpu = secc.cpu_seconds() - cpu_before
        rss, hwm = secc.memory_mb()
    finally:
        secc.stop()
    latencies: dict[str, list[float]] = {}
    failures = []
    for output in outputs:
        if "error" in output:
            failures.append(output["error"])
            continue
        for result in output["results"]:
            if result["code"] != 0:
                failures.append(result["reason"])
            for name, values in result["latencies"].items():
                latencies.setdefault(name, []).extend(values)
    loop_name = KINDS[kind][3]
    messages = sum(len(v) for v in latencies.values()) + sessions  # + one handshake each
    ev_cpu = sum(output.get("cpu_seconds", 0.0) for output in outputs)
    return {
        "kind": kind,
        "sessions": sessions,
        "elapsed": elapsed,
        "steal": steal,
        "latencies": latencies,
        "failures": failures,
        "cpu_per_message_us": cpu / messages * 1e6 if messages else 0.0,
        "cpu_seconds": cpu,
        "ev_cpu_per_message_us": ev_cpu / messages * 1e6 if messages else 0.0,
        "messages": messages,
        "all_charging": all_charging(outputs, loop_name),
        "rss_idle": rss_idle,
        "rss": max(rss, rss_peak_during),
        "hwm": hwm,
    }


#: A run during which the hypervisor took more CPU than this (s, all CPUs)
#: is disturbed: its latencies measure the host, not the SECC.
STEAL_LIMIT = 0.02


def disturbed(figures: dict) -> bool:
    """Whether the hypervisor took more than :data:`STEAL_LIMIT` of CPU during the run."""
    return figures["steal"] > STEAL_LIMIT


def stolen_seconds() -> float:
    """
    CPU time the hypervisor took from this virtual machine since boot, all
    CPUs together (the ``steal`` column of ``/proc/stat``; 0 on bare metal
    or where it is not counted).
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def all_charging(outputs: list[dict], name: str) -> list[float]:
    """
    The loop responses of the time when every EV was in its charge loop:
    from the last EV's first loop request to the first EV's last one.  (The
    rest of the run has EVs arriving, with their TLS handshakes and session
    set-ups, or leaving: a ramp no charger park sees at once.)
    """
    results = [r for output in outputs for r in output.get("results", []) if r["sent_at"].get(name)]
    if not results:
        return []
    begin = max(r["sent_at"][name][0] for r in results)
    end = min(r["sent_at"][name][-1] for r in results)
    return [latency for r in results for latency, at in zip(r["latencies"][name], r["sent_at"][name]) if begin <= at <= end]


def report(figures: dict) -> None:
    """Print one run's table."""
    out = sys.stdout
    out.write(
        f"\n== {figures['kind']}, {figures['sessions']} concurrent session(s): {figures['messages']} requests in {figures['elapsed']:.1f} s,"
        f" SECC CPU {figures['cpu_seconds']:.2f} s = {figures['cpu_per_message_us']:.0f} µs per message"
        f" (the EVs' {figures['ev_cpu_per_message_us']:.0f} µs),"
        f" RSS {figures['rss_idle']:.1f} MB idle → {figures['rss']:.1f} MB (peak {figures['hwm']:.1f} MB),"
        f" CPU stolen by the hypervisor {figures['steal'] * 1000:.0f} ms{' (disturbed)' if disturbed(figures) else ''}\n"
    )
    out.write(f"{'response':<36}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}\n")
    for name, values in sorted(figures["latencies"].items(), key=lambda item: -len(item[1])):
        out.write(
            f"{name:<36}{len(values):>8}{percentile(values, 0.5) * 1000:>10.2f}"
            f"{percentile(values, 0.99) * 1000:>10.2f}{max(values) * 1000:>10.2f}\n"
        )
    steady = figures["all_charging"]
    if steady and figures["sessions"] > 1:
        name = KINDS[figures["kind"]][3]
        label = f"{name}, all {figures['sessions']} charging"
        out.write(
            f"{label:<36}{len(steady):>8}{percentile(steady, 0.5) * 1000:>10.2f}"
            f"{percentile(steady, 0.99) * 1000:>10.2f}{max(steady) * 1000:>10.2f}\n"
        )
    if figures["failures"]:
        out.write(f"!! {len(figures['failures'])} EV session(s) not clean, e.g.: {figures['failures'][0]}\n")


def targets(all_figures: list[dict]) -> None:
    """Print the issue's targets against the figures."""
    out = sys.stdout
    out.write("\nTargets:\n")
    for figures in all_figures:
        kind = figures["kind"]
        name = KINDS[kind][3]
        values = figures["latencies"].get(name, [])
        if not values:
            out.write(f"  {kind:<12} no {name} measured: MISS\n")
            continue
        p99 = percentile(values, 0.99) * 1000
        label = f"{kind:<12} {name} p99, {figures['sessions']:>3} session(s):"
        for other in figures["others"]:
            other_p99 = percentile(other["latencies"].get(name, [0.0]), 0.99) * 1000
            out.write(f"  {label} {other_p99:6.2f} ms in a run disturbed by the hypervisor ({other['steal'] * 1000:.0f} ms stolen): not counted\n")
        if disturbed(figures):
            out.write(f"  {kind:<12} every run was disturbed: the one below had the least CPU stolen ({figures['steal'] * 1000:.0f} ms)\n")
        if figures["sessions"] == 1:
            out.write(f"  {label} {p99:6.2f} ms (≤ 2 ms)   {'PASS' if p99 <= 2 else 'MISS'}\n")
        if figures["sessions"] >= 100:
            out.write(f"  {label} {p99:6.2f} ms (≤ 25 ms)  {'PASS' if p99 <= 25 else 'MISS'}  (whole run, arrivals included)\n")
            steady = figures["all_charging"]
            if steady:
                p99 = percentile(steady, 0.99) * 1000
                out.write(f"  {label} {p99:6.2f} ms (≤ 25 ms)  {'PASS' if p99 <= 25 else 'MISS'}  (all {figures['sessions']} charging)\n")
            out.write(f"  {kind:<12} SECC RSS, {figures['sessions']} sessions: {figures['rss']:6.1f} MB (≤ 80 MB) {'PASS' if figures['rss'] <= 80 else 'MISS'}\n")


def main(argv=None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=list(KINDS), help="what to run (default: all)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 100], help="concurrent EVs per run")
    parser.add_argument("--loops", type=int, default=200, help="CurrentDemand requests per EV (default %(default)s)")
    parser.add_argument("--interval", type=float, default=0.05, help="s between an EV's CurrentDemand requests (default %(default)s)")
    parser.add_argument("--evs-per-process", type=int, default=10, help="EV simulators per worker process (default %(default)s)")
    parser.add_argument("--ev-nice", type=int, default=10, help="niceness of the EV processes (default %(default)s; 0: the SECC's)")
    parser.add_argument(
        "--attempts", type=int, default=3,
        help="runs of each kind and size at most, while the hypervisor steals CPU during them (default %(default)s)",
    )
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker:
        port, count, loops, interval, stagger, kind, v2g_root = arguments.worker
        worker(int(port), int(count), int(loops), float(interval), float(stagger), kind, v2g_root)
        return 0
    sys.stdout.write(
        f"evsev2g session bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, EV processes at nice {arguments.ev_nice}\n"
    )
    import tempfile

    from evsev2g.pki import create_test_pki

    all_figures = []
    with tempfile.TemporaryDirectory(prefix="evsev2g-bench-pki-") as temporary:
        pki = create_test_pki(f"{temporary}/certs") if any(KINDS[kind][2] for kind in arguments.kinds) else None
        for kind in arguments.kinds:
            for sessions in arguments.sessions:
                tries = []
                while len(tries) < arguments.attempts:
                    figures = run(sessions, arguments.loops, arguments.interval, arguments.evs_per_process, kind, pki, arguments.ev_nice)
                    report(figures)
                    tries.append(figures)
                    if not disturbed(figures):
                        break
                    if len(tries) < arguments.attempts:
                        sys.stdout.write("   (the hypervisor took CPU from this machine during the run: running it again)\n")
                chosen = min(tries, key=lambda figures: figures["steal"])
                chosen["others"] = [figures for figures in tries if figures is not chosen]
                all_figures.append(chosen)
    targets(all_figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
