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

import pytest

from tests.interop.test_josev_din import Josev, LoggedSECC, folded, josev_python, secc_problems  # noqa: F401
from tests.test_netns import NetnsPair, prepared

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


def start_secc(pair, test_pki, log_path, *settings):
    """Our SECC (TCP and TLS) in the SECC namespace; :returns: it, once it serves."""
    address = pair.link_local(pair.secc_ns, pair.secc_if)
    server = LoggedSECC(
        pair, log_path, f"device={pair.secc_if}", "tls_security=allow", f"certs_dir={test_pki.directory}",
        "simulator.auth_delay_ms=200", "simulator.cable_check_ms=200", "simulator.ac_contactor_delay_ms=50",
        "simulator.meter_interval_ms=200", *settings,
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
    Josev's EVCC, ISO 15118-2 only, EIM, in the charger's mode (DC_extended
    or AC_three_phase_core), over TCP or — asking for TLS in SDP — over TLS
    1.2 with ECDHE-ECDSA-AES128-SHA256 and our SECC chain verified by Josev
    against the V2G root: the whole session, every answer OK, a clean end.
    Proves: SDP's TLS answer, our TLS server with an independent client,
    the ISO-2 handshake and the EIM AC/DC sequence with an independent codec.
    """
    whole = WHOLE_DC if secc.mode == "dc" else WHOLE_AC
    start = len(secc.text())
    flags = ["--protocols", "ISO_15118_2", "--mode", JOSEV_MODE[secc.mode], "--loops", "4"]
    report = josev.run(*flags, *(["--tls"] if tls else []))
    assert report["sdp_security"] == ("TLS" if tls else "NO_TLS"), report["log"]
    if tls:
        assert report["tls"] == ["TLSv1.2", "ECDHE-ECDSA-AES128-SHA256"], report
    assert_clean_iso2_session(secc, start, report, whole)
    loop = "CurrentDemandReq" if secc.mode == "dc" else "ChargingStatusReq"
    assert report["sent"].count(loop) >= 3


@pytest.fixture
def stop_pair(josev_python):
    """Another veth pair (the module's SECC keeps its ports on the first)."""
    yield from prepared(NetnsPair("i3"))


def test_charger_stop_in_the_charge_loop(stop_pair, josev_python, test_pki, tmp_path_factory):
    """
    AC over TCP, the simulated charger calls stop_charging(true) 1 s after the
    contactor closed: the SECC tells Josev EVSENotification StopCharging in
    ChargingStatusRes, Josev stops with PowerDelivery and SessionStop, and the
    session ends with dlink_terminate.  Proves the charger-initiated stop
    reaches an independent EV in the form the standard gives it.
    """
    server = start_secc(stop_pair, test_pki, tmp_path_factory.mktemp("secc-stop") / "secc.log",
                        "simulator.mode=ac", "simulator.stop_after_ms=1000")
    josev = Josev(josev_python, stop_pair, tmp_path_factory.mktemp("josev-stop"), test_pki)
    try:
        report = josev.run("--protocols", "ISO_15118_2", "--mode", "AC_three_phase_core", "--loops", "1000")
        assert "StopCharging" in report["notifications"], report["log"]
        assert folded(report["sent"])[-3:] == ["ChargingStatusReq", "PowerDeliveryReq", "SessionStopReq"], report["log"]
        server.wait_for("simulated EVSE: dlink_terminate")
    finally:
        server.stop()
    assert "Traceback" not in server.text()
