"""
An independent EV against our SECC: Josev's EVCC (``iso15118`` on PyPI,
Apache-2.0, its own EXI codec: EXIficient in Java through py4j) in one
network namespace, ``twistd evsev2g`` with the simulated charger in
another, joined by a veth pair with link-local addresses only; the EV finds
the SECC with SDP multicast to ff02::1.

Josev lives in its own virtualenv, never ours: ``EVSEV2G_JOSEV_VENV`` names
one that has ``iso15118==0.31.2``, else one is made once in the user's
cache directory (``~/.cache/evsev2g/josev-0.31.2``, about 30 s with PyPI).
Nothing of Josev is in this repository; ``josev_evcc.py`` beside this file
only configures and observes it.

Skipped, with the reason, when Java is missing, when Josev cannot be
installed, or when the kernel refuses network namespaces.  Deselect with
``-m "not interop"``.  Namespaces are named ``ev2gio…`` and veth ends
``vio…`` (random part) and are deleted afterwards, also on failure.

Each Josev run takes about 10 s: 3 s for its JVM, the session, and 5 s
that Josev waits after SessionStopRes before it closes TCP.

What Josev 0.31.2 does that is its own, not ours to change (seen while
writing these tests; kept here for whoever reads a failure):

- its configuration loader puts ``supportedProtocols`` through a ``set``, so
  the priorities it offers depend on the hash seed (the driver fixes them);
- with TLS it removes DIN from its offer and may send a
  supportedAppProtocolReq with no AppProtocol at all (we answer
  Failed_NoNegotiation) — with ISO 15118-2 served, an EV asking for TLS
  gets it (``test_josev_iso2.py``);
- with ``chargeLoopCycle`` 1 it sends WeldingDetectionReq straight after
  PowerDeliveryRes(ReadyToCharge=true), skipping CurrentDemand and
  PowerDelivery(stop): we answer FAILED_SequenceError and close, as DIN asks
  ([V2G-DC-462]);
- it stops on EVSEIsolationStatus Warning after CableCheck (DIN allows
  Warning, [V2G-DC-499]) and, while stopping, sends its last CableCheckReq
  once more instead of SessionStopReq (answered FAILED_SequenceError);
- on any FAILED answer it stops without SessionStopReq, and it closes TCP
  5 s after SessionStopRes (our SECC closes it after 2 s + 3 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.independent import independent_check_unavailable
from tests.test_netns import NetnsPair, prepared
from tests.test_twistd import twistd_command

pytestmark = [pytest.mark.netns, pytest.mark.interop]

JOSEV = "iso15118==0.31.2"
#: Josev 0.31.2 imports aiofile without declaring it.
JOSEV_EXTRAS = ("aiofile",)
DRIVER = str(Path(__file__).with_name("josev_evcc.py"))

#: Requests of a whole DIN DC session, repeats folded ([V2G-DC-437]…[V2G-DC-469]).
WHOLE_SESSION = [
    "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq",
    "ContractAuthenticationReq", "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq",
    "PowerDeliveryReq", "CurrentDemandReq", "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq",
]


def folded(names: list[str]) -> list[str]:
    """``names`` with consecutive repeats (Ongoing loops, the charge loop) folded into one."""
    return [name for index, name in enumerate(names) if index == 0 or names[index - 1] != name]


def josev_venv() -> Path:
    """Where Josev's virtualenv is, or is to be made."""
    override = os.environ.get("EVSEV2G_JOSEV_VENV")
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "evsev2g" / f"josev-{JOSEV.split('==')[1]}"


def josev_ready(python: Path) -> bool:
    """Whether ``python`` imports Josev's EVCC."""
    if not python.exists():
        return False
    check = subprocess.run(
        [str(python), "-c", "import iso15118.evcc, aiofile, py4j"], capture_output=True, text=True, timeout=120
    )
    return check.returncode == 0


@pytest.fixture(scope="module")
def josev_python() -> Path:
    """The Python of a virtualenv with Josev; made (once) when missing; skips when it cannot be (fails in CI)."""
    if shutil.which("java") is None:
        independent_check_unavailable("Java is not installed: Josev's EXI codec is EXIficient in Java (apt-get install openjdk-17-jre-headless)")
    venv = josev_venv()
    python = venv / "bin" / "python"
    if josev_ready(python):
        return python
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        independent_check_unavailable(f"no place for Josev's virtualenv at {venv}: {error.strerror}")
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", JOSEV, *JOSEV_EXTRAS],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            independent_check_unavailable(f"Josev ({JOSEV}) could not be installed into {venv}: {lines[-1] if lines else done.returncode}")
    if not josev_ready(python):
        independent_check_unavailable(f"Josev ({JOSEV}) was installed into {venv} but its EVCC does not import")
    return python


@pytest.fixture(scope="module")
def josev_pair(josev_python):
    """A fresh veth pair between two namespaces for the module, removed afterwards."""
    yield from prepared(NetnsPair("io"))


class LoggedSECC:
    """
    ``twistd evsev2g`` in the SECC namespace, its log in a file that is
    read without blocking.
    """

    def __init__(self, pair, log_path: Path, *settings: str):
        self.log_path = log_path
        self._out = open(log_path, "w")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", pair.secc_ns, *twistd_command(*settings)],
            stdout=self._out, stderr=subprocess.STDOUT, cwd="/",
        )

    def text(self) -> str:
        """Everything logged so far."""
        return self.log_path.read_text()

    def wait_for(self, needle: str, after: int = 0, timeout: float = 20.0) -> int:
        """
        Wait until ``needle`` is logged after character ``after``.

        :returns: the offset just past the line holding it.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            found = text.find(needle, after)
            if found >= 0:
                end = text.find("\n", found)
                return len(text) if end < 0 else end + 1
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{needle!r} not logged by the SECC:\n{text[after:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then wait; kill if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


@pytest.fixture(scope="module")
def secc(josev_pair, test_pki, tmp_path_factory):
    """Our SECC on the SECC side: TCP and TLS (test PKI), fast simulated authorization and cable check."""
    pair = josev_pair
    address = pair.link_local(pair.secc_ns, pair.secc_if)
    server = LoggedSECC(
        pair,
        tmp_path_factory.mktemp("secc") / "secc.log",
        f"device={pair.secc_if}",
        "tls_security=allow",
        f"certs_dir={test_pki.directory}",
        "simulator.auth_delay_ms=200",
        "simulator.cable_check_ms=200",
    )
    try:
        server.wait_for(f"on {pair.secc_if} [{address}]")
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.text()


class Josev:
    """Runs Josev's EVCC in the EV namespace through ``josev_evcc.py``."""

    def __init__(self, python: Path, pair, workdir: Path, test_pki):
        self.python = python
        self.pair = pair
        self.workdir = workdir
        self.runs = 0
        # Josev's EVCC checks the SECC's TLS chain against this V2G root.
        roots = workdir / "pki" / "iso15118_2" / "certs"
        roots.mkdir(parents=True)
        shutil.copy(test_pki.directory / "ca" / "v2g" / "V2G_ROOT_CA.pem", roots / "v2gRootCACert.pem")

    def run(self, *flags: str) -> dict:
        """
        One EVCC session.

        :returns: the driver's report plus ``status`` (its exit status) and
            ``log`` (the path of Josev's own log).
        """
        self.runs += 1
        result = self.workdir / f"run{self.runs}.json"
        log = self.workdir / f"run{self.runs}.log"
        environment = dict(os.environ, PKI_PATH=f"{self.workdir / 'pki'}/", LOG_LEVEL="INFO", MESSAGE_LOG_JSON="True")
        with open(log, "w") as out:
            done = subprocess.run(
                ["ip", "netns", "exec", self.pair.ev_ns, str(self.python), DRIVER,
                 "--interface", self.pair.ev_if, "--result", str(result), "--timeout", "60", *flags],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, env=environment, timeout=120,
            )
        if not result.exists():
            raise AssertionError(f"Josev's driver wrote no report (status {done.returncode}):\n{log.read_text()[-3000:]}")
        report = json.loads(result.read_text())
        report.update(status=done.returncode, log=str(log))
        return report


@pytest.fixture(scope="module")
def josev(josev_python, josev_pair, test_pki, tmp_path_factory):
    """Josev's EVCC, ready to run."""
    return Josev(josev_python, josev_pair, tmp_path_factory.mktemp("josev"), test_pki)


def secc_problems(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """Warning, error and critical lines of the SECC's log, but for the ``allowed`` ones."""
    return [
        line for line in text.splitlines()
        if any(level in line for level in ("#warn]", "#error]", "#critical]")) and not any(a in line for a in allowed)
    ]


def assert_clean_session(secc, start: int, report: dict) -> None:
    """
    Both sides ended the session cleanly: Josev says so, the SECC answered
    SessionStop, the connection closed, and only then did the SECC end the
    session and tell the charger dlink_terminate (EvseV2G's teardown order).
    """
    assert report["status"] == 0 and report["successful"], report
    assert report["protocol"] == "DIN_SPEC_70121"
    assert all(code.startswith("OK") for _, code in report["response_codes"]), report["response_codes"]
    closed = secc.wait_for("connection closed: ", start)
    secc.wait_for("DIN session ends (session over); last request SessionStopReq", closed)
    secc.wait_for("simulated EVSE: dlink_terminate", closed)
    assert secc_problems(secc.text()[start:]) == []


def test_whole_din_dc_session(secc, josev):
    """
    Josev's EVCC, DIN only, no TLS: the whole DC session (handshake …
    CurrentDemand loop … PowerDelivery stop, WeldingDetection, SessionStop)
    with every answer OK, ending cleanly on both sides.
    """
    start = len(secc.text())
    report = josev.run("--protocols", "DIN_SPEC_70121")
    assert folded(report["sent"]) == WHOLE_SESSION, report["log"]
    assert report["sent"].count("CurrentDemandReq") >= 3
    assert report["sdp_security"] == "NO_TLS"
    assert_clean_session(secc, start, report)


def test_din_first_in_the_offer_gets_din_over_tcp(secc, josev):
    """
    Josev offers DIN at Priority 1 and ISO 15118-2 at 2, over TCP: both are
    served, so the handshake follows the EV's priority and picks DIN; the
    whole DIN session runs to the end.  (That TLS with ISO-2 first gets
    ISO-2 over TLS is ``test_josev_iso2.py``'s (its TLS sessions); since ISO-2 is served, SDP
    answers an EV asking for TLS with the TLS server.)
    """
    start = len(secc.text())
    report = josev.run("--protocols", "DIN_SPEC_70121,ISO_15118_2")
    assert report["sdp_security"] == "NO_TLS", report["log"]
    assert report["response_codes"][0] == ["supportedAppProtocolRes", "OK_SuccessfulNegotiation"]
    assert folded(report["sent"]) == WHOLE_SESSION
    assert_clean_session(secc, start, report)


def test_ev_stops_after_charge_parameter_discovery(secc, josev):
    """A real car sent SessionStopReq right after ChargeParameterDiscovery; DIN allows it: answered OK, closed cleanly."""
    start = len(secc.text())
    report = josev.run("--stop-after-parameters")
    assert folded(report["sent"])[-2:] == ["ChargeParameterDiscoveryReq", "SessionStopReq"], report["log"]
    assert_clean_session(secc, start, report)


def test_ev_drops_the_connection_mid_charge_then_next_session_works(secc, josev):
    """
    Josev drops TCP after three CurrentDemandRes (an EV unplugged): the SECC
    ends that session, tells the charger (dlink_error) and warns once with
    the last request; the next Josev session (one charge loop) is clean.
    """
    start = len(secc.text())
    dropped = josev.run("--drop-after", "3")
    assert dropped["status"] == 1 and dropped["successful"] is False, dropped
    assert dropped["received"].count("CurrentDemandRes") == 3
    end = secc.wait_for("DIN session ends (connection lost: ", start)
    secc.wait_for("simulated EVSE: dlink_error", start)
    warned = "the connection ended before the session did"
    assert [line for line in secc_problems(secc.text()[start:end]) if warned in line and "CurrentDemandReq" in line]
    assert secc_problems(secc.text()[start:end], (warned,)) == []
    again = josev.run("--loops", "2")
    assert folded(again["sent"]) == WHOLE_SESSION, again["log"]
    assert_clean_session(secc, end, again)
