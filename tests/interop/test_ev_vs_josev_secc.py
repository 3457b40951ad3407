"""
Our EV simulator against a charger we did not write: Josev's SECC
(``iso15118`` 0.31.2, its own EXI codec and state machine) in one network
namespace, ``python -m evsev2g.sim.ev`` in the other, SDP over ff02::1.

Every end-to-end test of our SECC uses our EV simulator; these prove that
the simulator speaks ISO 15118-2 as an independent SECC understands it, so
the two halves of evsev2g cannot pass each other's tests on a shared
mistake.  ``josev_secc.py`` beside this file starts Josev's SECC and only
makes its simulated power supply follow the EV's targets (Josev's keeps
1 V, which no EV can pre-charge against).  Josev's setup and skips are
those of ``test_josev_din.py``; namespaces ``ev2gjs…``/``vjs…``.

Over TCP only: Josev's SECC needs its own certificate files for TLS, and
our TLS client is proved against our TLS server and Python's ``ssl``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.interop.test_josev_din import josev_python  # noqa: F401
from tests.test_netns import NetnsPair, prepared

pytestmark = [pytest.mark.netns, pytest.mark.interop]

DRIVER = str(Path(__file__).with_name("josev_secc.py"))


@pytest.fixture(scope="module")
def josev_secc(josev_python, tmp_path_factory):
    """Josev's SECC (ISO 15118-2 and DIN 70121, EIM) in the SECC namespace of a fresh pair, ready; stopped afterwards."""
    pair_factory = prepared(NetnsPair("js"))
    pair = next(pair_factory)
    workdir = tmp_path_factory.mktemp("josev-secc")
    log_path = workdir / "secc.log"
    log = open(log_path, "w")
    environment = dict(os.environ, PKI_PATH=f"{workdir}/pki/", LOG_LEVEL="INFO", MESSAGE_LOG_JSON="True")
    process = subprocess.Popen(
        ["ip", "netns", "exec", pair.secc_ns, str(josev_python), DRIVER, "--interface", pair.secc_if,
         "--protocols", "ISO_15118_2,DIN_SPEC_70121"],
        stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=str(workdir),
    )
    try:
        deadline = time.monotonic() + 60
        while "Communication session handler started" not in log_path.read_text():
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"Josev's SECC did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        pair.log_path = log_path
        yield pair
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        for _ in pair_factory:
            pass


def run_ev(pair, *flags, protocol="iso15118-2"):
    """Our EV simulator in the EV namespace; :returns: the finished process."""
    return subprocess.run(
        ["ip", "netns", "exec", pair.ev_ns, sys.executable, "-m", "evsev2g.sim.ev", "--interface", pair.ev_if,
         "--protocol", protocol, "--capacity", "60", "--start-soc", "70", "--target-soc", "75", "--interval", "0.05",
         "--msg-timeout", "10", "--loop-timeout", "10", *flags],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("mode", ["dc", "ac"])
def test_our_ev_charges_at_josevs_secc(josev_secc, mode):
    """
    Our EV (ISO-2, EIM, AC or DC, TCP) runs a whole session at Josev's SECC:
    every request it builds is accepted by an independent decoder and state
    machine (no FAILED, which would exit 2), and it reads every response
    Josev's encoder sends, to SessionStop.
    """
    ev = run_ev(josev_secc, "--mode", mode, "--current-demands", "10")
    assert ev.returncode == 0, ev.stdout + ev.stderr + josev_secc.log_path.read_text()[-3000:]
    assert "stopped cleanly" in ev.stdout and "EV SessionSetup: OK_NewSessionEstablished" in ev.stdout
    states = ("cable check", "pre-charge", "charging", "welding detection") if mode == "dc" else ("charging", "stopping")
    for state in states:
        assert f"EV {state}" in ev.stdout, state


def test_our_ev_pauses_and_resumes_at_josevs_secc(josev_secc):
    """
    Our EV pauses (PowerDelivery Stop, WeldingDetection, SessionStop Pause),
    finds Josev's SECC again with SDP and presents its SessionID: Josev
    answers OK_OldSessionJoined, the EV replays the sequence and charges to
    a clean end.  Proves our pause/resume against an independent SECC.
    """
    ev = run_ev(josev_secc, "--mode", "dc", "--capacity", "5000", "--current-demands", "12", "--pause-after", "4", "--pause-seconds", "0.5")
    assert ev.returncode == 0, ev.stdout + ev.stderr + josev_secc.log_path.read_text()[-3000:]
    assert "EV paused" in ev.stdout and "EV SessionSetup: OK_OldSessionJoined" in ev.stdout
    new, joined = [line.split()[-1] for line in ev.stdout.splitlines() if line.startswith("EV SessionSetup:")]
    assert new == joined


def test_our_din_ev_charges_at_josevs_secc(josev_secc):
    """Our EV in DIN SPEC 70121 (offering DIN only) runs a whole DC session at Josev's SECC to SessionStop."""
    ev = run_ev(josev_secc, "--current-demands", "10", protocol="din70121")
    assert ev.returncode == 0, ev.stdout + ev.stderr + josev_secc.log_path.read_text()[-3000:]
    assert "stopped cleanly" in ev.stdout and "EV welding detection" in ev.stdout
