"""
An independent EV against our SECC in ISO 15118-2: Josev's EVCC
(``iso15118`` 0.31.2 from PyPI, its own EXI codec — EXIficient in Java — and
its own TLS client on Python's ``ssl``) in one network namespace, ``twistd
evsev2g`` with the simulated charger in another, link-local addresses only,
SDP multicast to ff02::1.  Josev's setup, skips and the namespace naming
(``ev2gi2…``/``vi2…``) are those of ``test_josev_din.py``.

What each test proves is in its docstring; all of them prove that an EV
stack we did not write encodes, decodes and sequences ISO-2 EIM with our
SECC the same way (its codec is not ours, its state machine is not ours).

What Josev 0.31.2 does that is its own (seen while writing these tests):

- it offers only ISO 15118-2 when asked for TLS and picks EIM unless PnC is
  offered over TLS (our simulator offers ExternalPayment only);
- it never pauses (its code says "TODO Implement also a mechanism for
  pausing"), so pause and resume are proved with our EV simulator only;
- it answers EVSENotification StopCharging in AC (ChargingStatus) with
  PowerDelivery(Stop) and SessionStop(Terminate).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.interop.test_josev_din import Josev, LoggedSECC, folded, josev_python, secc_problems  # noqa: F401
from tests.test_netns import NetnsPair, prepared
from tests.test_twistd import twistd_command

pytestmark = [pytest.mark.netns, pytest.mark.interop]

#: Requests of a whole ISO-2 EIM DC session, repeats folded.
WHOLE_DC = [
    "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq",
    "AuthorizationReq", "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq",
    "CurrentDemandReq", "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq",
]
#: … and AC.
WHOLE_AC = [
    "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq",
    "AuthorizationReq", "ChargeParameterDiscoveryReq", "PowerDeliveryReq", "ChargingStatusReq", "PowerDeliveryReq",
    "SessionStopReq",
]
JOSEV_MODE = {"dc": "DC_extended", "ac": "AC_three_phase_core"}


@pytest.fixture(scope="module")
def iso2_pair(josev_python):
    """A fresh veth pair between two namespaces for the module, removed afterwards."""
    yield from prepared(NetnsPair("i2"))


@pytest.fixture(scope="module")
def josev(josev_python, iso2_pair, test_pki, tmp_path_factory):
    """Josev's EVCC (its PKI directory holds our test PKI's V2G root), ready to run."""
    return Josev(josev_python, iso2_pair, tmp_path_factory.mktemp("josev-iso2"), test_pki)


class EnvironmentSECC(LoggedSECC):
    """:class:`LoggedSECC` with its own environment (drop-in plugins read theirs from it)."""

    def __init__(self, pair, log_path, *settings, env):
        self.log_path = log_path
        self._out = open(log_path, "w")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", pair.secc_ns, *twistd_command(*settings)],
            stdout=self._out, stderr=subprocess.STDOUT, cwd="/", env=env,
        )


def start_secc(pair, test_pki, log_path, *settings, env=None):
    """Our SECC (TCP and TLS) in the SECC namespace; :returns: it, once it serves."""
    address = pair.link_local(pair.secc_ns, pair.secc_if)
    server = EnvironmentSECC(
        pair, log_path, f"device={pair.secc_if}", "tls_security=allow", f"certs_dir={test_pki.directory}",
        "simulator.auth_delay_ms=200", "simulator.cable_check_ms=200", "simulator.ac_contactor_delay_ms=50",
        "simulator.meter_interval_ms=200", *settings, env=env if env is not None else dict(os.environ),
    )
    try:
        server.wait_for(f"on {pair.secc_if} [{address}]")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module", params=["dc", "ac"])
def secc(request, iso2_pair, test_pki, tmp_path_factory):
    """Our SECC with the simulated charger in ``dc`` or ``ac`` mode (one at a time)."""
    server = start_secc(iso2_pair, test_pki, tmp_path_factory.mktemp("secc") / "secc.log", f"simulator.mode={request.param}")
    server.mode = request.param
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.text()


def assert_clean_iso2_session(secc, start: int, report: dict, whole: list) -> None:
    """
    Josev ran the whole ISO-2 session and calls it successful; every answer
    was OK; the SECC saw the connection close, told the charger
    dlink_terminate, and logged no warning or error.
    """
    assert report["status"] == 0 and report["successful"], report
    assert report["protocol"] == "ISO_15118_2", report
    assert folded(report["sent"]) == whole, report["log"]
    assert all(code.startswith("OK") for _, code in report["response_codes"]), report["response_codes"]
    closed = secc.wait_for("connection closed: ", start)
    secc.wait_for("simulated EVSE: dlink_terminate", closed)
    assert secc_problems(secc.text()[start:]) == []


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_whole_iso2_eim_session(secc, josev, tls):
    """
    Josev's EVCC, EIM, in the charger's mode (DC_extended or
    AC_three_phase_core): over TCP offering ISO 15118-2 only, or asking for
    TLS in SDP and offering ISO-2 at Priority 1 and DIN at 2 (Josev drops
    DIN itself over TLS) — then over TLS 1.2 with ECDHE-ECDSA-AES128-SHA256
    and our SECC chain verified by Josev against the V2G root: the whole
    session, every answer OK, a clean end.  Proves: SDP answers TLS exactly
    when asked and a TLS-capable protocol is served, our TLS server with an
    independent client, the ISO-2 handshake and the EIM AC/DC sequence with
    an independent codec.
    """
    whole = WHOLE_DC if secc.mode == "dc" else WHOLE_AC
    start = len(secc.text())
    protocols = "ISO_15118_2,DIN_SPEC_70121" if tls else "ISO_15118_2"
    flags = ["--protocols", protocols, "--mode", JOSEV_MODE[secc.mode], "--loops", "4"]
    report = josev.run(*flags, *(["--tls"] if tls else []))
    assert report["sdp_security"] == ("TLS" if tls else "NO_TLS"), report["log"]
    if tls:
        assert report["tls"] == ["TLSv1.2", "ECDHE-ECDSA-AES128-SHA256"], report
        secc.wait_for("asked TLS; offered port", start)
    assert_clean_iso2_session(secc, start, report, whole)
    loop = "CurrentDemandReq" if secc.mode == "dc" else "ChargingStatusReq"
    assert report["sent"].count(loop) >= 3


@pytest.fixture
def other_pair(josev_python):
    """Another veth pair (the module's SECC keeps its ports on the first)."""
    yield from prepared(NetnsPair("i3"))


def charger_acts(pair, python, test_pki, tmp_path_factory, mode, setting, loops="1000"):
    """
    One SECC whose simulated charger does ``setting`` once energy flows, one
    Josev session against it; :returns: ``(Josev's report, the SECC's log)``.
    """
    server = start_secc(pair, test_pki, tmp_path_factory.mktemp("secc-act") / "secc.log", f"simulator.mode={mode}", setting)
    josev = Josev(python, pair, tmp_path_factory.mktemp("josev-act"), test_pki)
    try:
        report = josev.run("--protocols", "ISO_15118_2", "--mode", JOSEV_MODE[mode], "--loops", loops)
        server.wait_for("simulated EVSE: dlink_terminate")
    finally:
        server.stop()
    log = server.text()
    assert "Traceback" not in log
    return report, log


@pytest.mark.parametrize("mode", ["dc", "ac"])
def test_charger_stop_in_the_charge_loop(other_pair, josev_python, test_pki, tmp_path_factory, mode):
    """
    The simulated charger calls stop_charging(true) 1 s after energy starts
    flowing: the SECC tells Josev EVSENotification StopCharging in
    ChargingStatusRes / CurrentDemandRes, Josev stops with PowerDelivery
    (and WeldingDetection for DC) and SessionStop, and the session ends with
    dlink_terminate.  Proves the charger-initiated stop reaches an
    independent EV in the form the standard gives it.
    """
    report, _ = charger_acts(other_pair, josev_python, test_pki, tmp_path_factory, mode, "simulator.stop_after_ms=1000")
    assert "StopCharging" in report["notifications"], report["log"]
    loop = "CurrentDemandReq" if mode == "dc" else "ChargingStatusReq"
    ending = ["PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"] if mode == "dc" else ["PowerDeliveryReq", "SessionStopReq"]
    assert folded(report["sent"])[-len(ending) - 1:] == [loop, *ending], report["log"]
    assert report["sent"].count(loop) < 1000


def test_charger_power_reduction_renegotiates_ac(other_pair, josev_python, test_pki, tmp_path_factory):
    """
    AC: the simulated charger halves its maximum power 0.3 s into charging;
    the SECC announces EVSENotification ReNegotiation; Josev sends
    PowerDelivery(Renegotiate), ChargeParameterDiscovery gets the new
    schedule, PowerDelivery(Start) and charging go on to a clean end.
    Proves charger-side renegotiation with an independent EV.  (Josev's DC
    CurrentDemand ignores ReNegotiation, so DC is proved with our EV only.)
    """
    # 150 loops: past the reduction at 0.3 s even at 10 ms a loop, within Josev's 60 s at 100 ms a loop (a busy CI machine).
    report, _ = charger_acts(other_pair, josev_python, test_pki, tmp_path_factory, "ac", "simulator.reduce_power_after_ms=300",
                             loops="150")
    assert "ReNegotiation" in report["notifications"], report["log"]
    sent = folded(report["sent"])
    renegotiation = ["ChargingStatusReq", "PowerDeliveryReq", "ChargeParameterDiscoveryReq", "PowerDeliveryReq", "ChargingStatusReq"]
    assert any(sent[i:i + 5] == renegotiation for i in range(len(sent))), report["log"]
    assert sent[-2:] == ["PowerDeliveryReq", "SessionStopReq"] and report["status"] == 0, report
    assert all(code.startswith("OK") for _, code in report["response_codes"]), report["response_codes"]


def test_josev_reads_our_value_added_services_over_tls(other_pair, josev_python, test_pki, tmp_path_factory):
    """
    twistd with the Internet-access drop-in (http, https): over TLS, Josev's
    own codec decodes ServiceDiscoveryRes's ServiceList with ServiceID 3
    "InternetAccess" and the session runs to a clean end (Josev never
    chooses such a service: it only ever selects the certificate service);
    over TCP the list is absent, as value-added services need TLS.  Proves
    our ServiceList encodes as an independent EV reads it.
    """
    environment = dict(os.environ, EVSEV2G_INTERNET_ACCESS="http,https")
    server = start_secc(other_pair, test_pki, tmp_path_factory.mktemp("secc-vas") / "secc.log", env=environment)
    josev = Josev(josev_python, other_pair, tmp_path_factory.mktemp("josev-vas"), test_pki)
    try:
        secure = josev.run("--tls", "--protocols", "ISO_15118_2", "--loops", "3")
        plain = josev.run("--protocols", "ISO_15118_2", "--loops", "3")
    finally:
        server.stop()
    assert secure["status"] == 0 and secure["tls"], secure
    assert secure["services"] == [[3, "InternetAccess"]], secure["log"]
    assert plain["status"] == 0 and plain["services"] == [], plain["log"]
    assert "Traceback" not in server.text()
