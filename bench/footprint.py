"""
The memory and start-up figures of ``twistd evsev2g`` (prints them; asserts
nothing).

    python bench/footprint.py [--runs 3]

For each run, in fresh processes:

* **bare imports**: a Python that imports Twisted's reactor, pyOpenSSL,
  cryptography's x509 and lxml and does nothing else (the floor the issue
  measures against), the same without lxml (a warm start never imports
  it), and that plus what any twistd plugin with a YAML configuration
  imports (twistd's own modules, Twisted's TLS, PyYAML, attrs, txaio), and
  that plus the plugin scan twistd does before it knows which plugin runs
  (it imports every ``IServiceMaker`` plugin module: Twisted's own too);
* **twistd evsev2g** on ``lo`` (TCP, TLS with a test PKI, SDP on a free
  port, all three codecs loaded at start-up as always): the seconds from
  the process's start until it answers an SDP request (asked every 5 ms),
  the CPU time it used until then (what the wall clock would show on an
  idle board: a busy machine stretches the wall clock, not the CPU time),
  its RSS once idle (1 s after that answer) and its peak RSS (VmHWM), with
  the EXI codec cache cold (emptied first) and warm (second start);
* **after sessions**: the warm start again, then one DIN 70121 DC session
  over TCP and one ISO 15118-2 DC session over TLS from the EV simulator
  (found by SDP), and its RSS once idle again (1 s after the SECC gives
  free heap pages back, :data:`evsev2g.memory.IDLE_TRIM_DELAY` after the
  last connection): the codecs unpack each generated function on its first
  call (:mod:`evsev2g.exi.packed_code`), so this is the idle figure of a
  charger that has served both protocols;
* **codec cache build**: on a cold start the missing codecs are built in
  child processes (``evsev2g.exi.codec.prepare``), one per schema set, in
  parallel; the row gives the peak RSS of the largest such child, measured
  the same way (a process that empties a cache and prepares the three).

The package's bytecode is compiled first, as installing it does (pip
compiles every module): otherwise ``PYTHONDONTWRITEBYTECODE`` in the
environment makes every start compile evsev2g from source, which no
installed SECC does.

Memory is in MiB (kB from ``/proc``, divided by 1024).  Targets (issue 10):
idle RSS ≤ 55 MB, start-up peak ≤ 60 MB, SDP answered within 0.5 s of
start; read here as MiB, the stricter reading.  Medians over ``--runs`` are
printed.
"""

from __future__ import annotations

import argparse
import ast
import compileall
import os
import shutil
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
PYTHON = Path(sys.executable)
TWISTD = PYTHON.parent / "twistd"

BARE = {
    "bare imports (Twisted, pyOpenSSL, cryptography, lxml)": "import twisted.internet.reactor, OpenSSL, cryptography.x509, lxml.etree",
    "bare imports without lxml": "import twisted.internet.reactor, OpenSSL, cryptography.x509",
    "bare imports without lxml, with twistd's own and PyYAML": (
        "import twisted.internet.reactor, OpenSSL, cryptography.x509, twisted.scripts.twistd, "
        "twisted.application.app, twisted.protocols.tls, twisted.python.usage, yaml, attrs, txaio"
    ),
    "the same and twistd's plugin scan (every IServiceMaker)": (
        "import twisted.internet.reactor, OpenSSL, cryptography.x509, twisted.scripts.twistd, "
        "twisted.application.app, twisted.protocols.tls, twisted.python.usage, yaml, attrs, txaio\n"
        "from twisted.application.service import IServiceMaker\n"
        "from twisted.plugin import getPlugins\n"
        "makers = list(getPlugins(IServiceMaker))"
    ),
}

SDP_REQUEST = bytes([0x01, 0xFE, 0x90, 0x00, 0, 0, 0, 2, 0x10, 0x00])


def status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, MiB."""
    figures = {}
    with open(f"/proc/{pid}/status") as lines:
        for line in lines:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0]) / 1024
    return figures


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used, seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare(code: str) -> dict[str, float]:
    """Peak and final RSS of a Python that runs ``code``, MiB."""
    probe = (
        f"{code}\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith(('VmRSS', 'VmHWM')): print(line.strip())\n"
    )
    out = subprocess.run([str(PYTHON), "-c", probe], capture_output=True, text=True, check=True).stdout
    figures = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        figures[key] = int(value.split()[0]) / 1024
    return figures


def child_build_peak(cache: Path) -> dict[str, float]:
    """Peak RSS of the largest child process building the three codecs into an empty cache, MiB."""
    probe = (
        "import resource\n"
        "from evsev2g.exi.codec import prepare\n"
        "problems = prepare(['appHandshake', 'din70121', 'iso15118-2'])\n"
        "assert not problems, problems\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(cache), PYTHONPATH=str(ROOT))
    out = subprocess.run([str(PYTHON), "-c", probe], capture_output=True, text=True, check=True, env=environment).stdout
    return {"idle": float("nan"), "peak": int(out.split()[-1]) / 1024}


def free_udp_port() -> int:
    """A UDP port on ::1 free right now."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1", 0))
        return sock.getsockname()[1]


#: Two sessions, one per protocol, run by the EV simulator against the SECC (argv: SDP port, V2G root).
SESSIONS = """
import sys
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from evsev2g.sim.ev import EVSettings, run_ev

async def both():
    codes = []
    for protocol, tls in (("din70121", False), ("iso15118-2", True)):
        settings = EVSettings(interface="lo", sdp_port=int(sys.argv[1]), protocol=protocol, tls=tls,
                              v2g_root=sys.argv[2], max_current_demands=10, poll_interval=0.02,
                              current_demand_interval=0.02)
        result = await run_ev(reactor, settings)
        codes.append((result.code, result.reason))
    print(codes)
    reactor.stop()

reactor.callWhenRunning(lambda: ensureDeferred(both()))
reactor.run()
"""

#: Quick simulated charger (its delays change no memory figure).
QUICK_CHARGER = ["simulator.auth_delay_ms=0", "simulator.cable_check_ms=50", "simulator.voltage_slew_rate=0",
                 "simulator.current_slew_rate=0"]


def start_twistd(certs: Path, cache: Path, sessions: bool = False) -> dict[str, float]:
    """
    Start ``twistd evsev2g``, time its first SDP answer, read its memory
    (after two EV sessions with ``sessions``), stop it.
    """
    sdp_port = free_udp_port()
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(cache))
    command = [str(TWISTD), "-n", "--pidfile=", "evsev2g", "--set", "device=lo", "--set", f"certs_dir={certs}",
               "--set", "tcp_port=0", "--set", "tls_port=0", "--set", f"sdp_port={sdp_port}"]
    if sessions:
        command += [argument for setting in QUICK_CHARGER for argument in ("--set", setting)]
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=run_dir, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                sock.settimeout(0.005)
                answered = None
                while answered is None and time.monotonic() - started < 30:
                    sock.sendto(SDP_REQUEST, ("::1", sdp_port))
                    try:
                        sock.recv(64)
                        answered = time.monotonic() - started
                        cpu = cpu_seconds(process.pid)
                    except (socket.timeout, ConnectionRefusedError):
                        if process.poll() is not None:
                            raise RuntimeError(f"twistd exited with status {process.returncode}") from None
            if answered is None:
                raise RuntimeError("no SDP answer within 30 s")
            if sessions:
                root = certs / "ca" / "v2g" / "V2G_ROOT_CA.pem"
                ran = subprocess.run([str(PYTHON), "-c", SESSIONS, str(sdp_port), str(root)], capture_output=True,
                                     text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
                try:
                    codes = [code for code, _ in ast.literal_eval(ran.stdout.strip())]
                except (ValueError, SyntaxError):
                    codes = None
                if codes != [0, 0]:
                    raise RuntimeError(f"the EV sessions failed: {ran.stdout.strip()} {ran.stderr[-500:]}")
                time.sleep(IDLE_TRIM_DELAY)
            time.sleep(1.0)
            figures = status(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=20)
    return {"sdp_s": answered, "cpu_s": cpu, "idle": figures["VmRSS"], "peak": figures["VmHWM"]}


def main(argv=None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    compileall.compile_dir(str(ROOT / "evsev2g"), quiet=1)
    from evsev2g.pki import create_test_pki

    with tempfile.TemporaryDirectory() as scratch:
        certs = create_test_pki(Path(scratch) / "certs").directory
        cache = Path(scratch) / "exi-cache"
        rows: dict[str, list[dict]] = {}
        for _ in range(args.runs):
            for label, code in BARE.items():
                figures = bare(code)
                rows.setdefault(label, []).append({"idle": figures["VmRSS"], "peak": figures["VmHWM"]})
            shutil.rmtree(cache, ignore_errors=True)
            rows.setdefault("twistd evsev2g, codec cache cold", []).append(start_twistd(certs, cache))
            rows.setdefault("twistd evsev2g, codec cache warm", []).append(start_twistd(certs, cache))
            rows.setdefault("the same, after a DIN and an ISO-2 TLS session", []).append(start_twistd(certs, cache, True))
            shutil.rmtree(cache, ignore_errors=True)
            rows.setdefault("codec cache build, largest child process", []).append(child_build_peak(cache))
    print(f"{'process':58} {'idle RSS MiB':>12} {'peak RSS MiB':>12} {'SDP answer s':>13} {'CPU s to it':>12}")
    for label, runs in rows.items():
        idle = statistics.median(r["idle"] for r in runs)
        peak = statistics.median(r["peak"] for r in runs)
        sdp = f"{statistics.median(r['sdp_s'] for r in runs):.2f}" if "sdp_s" in runs[0] else "-"
        cpu = f"{statistics.median(r['cpu_s'] for r in runs):.2f}" if "cpu_s" in runs[0] else "-"
        idle_text = "-" if idle != idle else f"{idle:.1f}"
        print(f"{label:58} {idle_text:>12} {peak:12.1f} {sdp:>13} {cpu:>12}")
    print(f"(medians of {args.runs} runs; targets: idle ≤ 55, peak ≤ 60 (MiB), SDP answered ≤ 0.5 s after start)")
    if args.runs > 1:
        print("highest of the runs:")
        for label, runs in rows.items():
            if "sdp_s" in runs[0]:
                print(f"  {label:56} idle {max(r['idle'] for r in runs):.1f}  peak {max(r['peak'] for r in runs):.1f}  "
                      f"SDP answer {max(r['sdp_s'] for r in runs):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
