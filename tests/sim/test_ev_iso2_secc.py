"""
The ISO 15118-2 EV simulator against the real SECC in this process: real
TCP and TLS (TLS 1.2, the ISO cipher, the SECC chain verified against the
test PKI's V2G root) on ::1, real V2GTP framing, the real EXI codec, the
ISO-2 state machine and the simulated charger — AC and DC, pause and
resume, a different car after a pause, charger-initiated pause and stop,
renegotiation, and the ``v2g_messages`` var with the real codec.
"""

import base64

import pytest
import pytest_twisted
from lxml import etree

from evsev2g.exi import load_codec
from evsev2g.exi.codec import SCHEMA_SETS
from evsev2g.security import layout
from evsev2g.sim.ev import EVSettings, run_ev
from evsev2g.sim.loopback import start_secc
from evsev2g.testing import VarRecorder

FAST = [
    "simulator.auth_delay_ms=50",
    "simulator.cable_check_ms=50",
    "simulator.voltage_slew_rate=0",
    "simulator.current_slew_rate=0",
    "simulator.ac_contactor_delay_ms=20",
    "simulator.meter_interval_ms=50",
    "max_connections=16",
]
ISO_CIPHER = ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256")
LOOP = {"dc": "CurrentDemandRes", "ac": "ChargingStatusRes"}


class Recorders:
    """
    Records the vars of every session the backend sees, and (asked for by
    name: it is a debug var) its ``v2g_messages``.
    """

    def __init__(self, backend):
        self.sessions = []
        self.v2g_messages = []
        original = backend.session_started

        def started(charger):
            original(charger)
            self.sessions.append(VarRecorder(charger))
            messages = []
            self.v2g_messages.append(messages)
            charger.subscribe(lambda name, payload: messages.append(payload), names=("v2g_messages",))

        backend.session_started = started

    def names(self):
        """Every session's var names, one list per session."""
        return [recorder.names() for recorder in self.sessions]


@pytest.fixture
def make_secc(reactor, test_pki):
    """``make_secc(mode, tls, *settings)`` starts an SECC on ::1; all are stopped afterwards."""
    running = []

    def make(mode="dc", tls=False, *settings):
        security = ["tls_security=force", "tls_port=0", f"certs_dir={test_pki.directory}"] if tls else []
        secc = start_secc(reactor, FAST + [f"simulator.mode={mode}"] + security + list(settings))
        secc.recorders = Recorders(secc.sessions.backend)
        secc.tls = tls
        secc.mode = mode
        running.append(secc)
        return secc

    yield make
    for secc in running:
        pytest_twisted.blockon(secc.service.stopService())


def iso_ev(secc, test_pki, **overrides):
    """An ISO-2 EV for ``secc``: small battery, quick loops, timeouts a busy machine cannot trip."""
    values = dict(
        msg_timeout=10.0, current_demand_timeout=10.0,
        host=secc.host, port=secc.port, protocol="iso15118-2", mode=secc.mode, tls=secc.tls,
        v2g_root=test_pki.path(layout.V2G_ROOT), capacity_wh=100, start_soc=70, target_soc=99,
        max_current=100, max_current_demands=12, poll_interval=0.01, current_demand_interval=0.02, pause_seconds=0.1,
    )
    values.update(overrides)
    return EVSettings(**values)


def when_charging(reactor, secc, action, delay=0.1):
    """An EV progress callback doing ``action(charger)`` on every live session ``delay`` s after charging first began."""
    seen = []

    def act():
        for charger in list(secc.sessions.backend.evses):
            action(charger)

    def progress(report):
        if report["state"] == "charging" and not seen:
            seen.append(report)
            reactor.callLater(delay, act)

    return progress


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("mode", ["dc", "ac"])
@pytest_twisted.ensureDeferred
async def test_whole_iso2_session(reactor, make_secc, test_pki, mode, tls):
    """A whole ISO-2 EIM session, AC or DC, over TCP or TLS: clean, the loop answered, meter readings, the charger told each step."""
    secc = make_secc(mode, tls)
    result = await run_ev(reactor, iso_ev(secc, test_pki))
    assert result.code == 0, result.reason
    assert result.tls == ([ISO_CIPHER] if tls else [])
    assert result.session_setups[0][0] == "OK_NewSessionEstablished"
    assert len(result.latencies[LOOP[mode]]) == 12 and result.energy_wh > 0
    assert result.meter_readings, "no MeterInfo in the charge loop"
    assert result.states[-2:] == ["session stopped", "done"]
    await secc.sessions.when_finished(1)
    (names,) = secc.recorders.names()
    wanted = ["require_auth_eim", "requested_energy_transfer_mode", "v2g_setup_finished"]
    wanted += ["ac_close_contactor", "ac_open_contactor"] if mode == "ac" else ["start_cable_check", "start_pre_charge",
                                                                             "current_demand_started", "dc_open_contactor"]
    for name in wanted + ["dlink_terminate"]:
        assert name in names, name
    assert "hlc_session_failed" not in names and names[-1] == "dlink_terminate"
    modes = secc.recorders.sessions[0].payloads("requested_energy_transfer_mode")
    assert modes == ["AC_three_phase_core" if mode == "ac" else "DC_extended"]


@pytest.mark.parametrize("mode", ["dc", "ac"])
@pytest_twisted.ensureDeferred
async def test_pause_then_resume_with_the_same_session_id(reactor, make_secc, test_pki, mode):
    """EV pause (PowerDelivery Stop, SessionStop Pause), a new connection with the old SessionID: OK_OldSessionJoined, charging resumes."""
    secc = make_secc(mode, False)
    result = await run_ev(reactor, iso_ev(secc, test_pki, pause_after=4))
    assert result.code == 0, result.reason
    (first, first_id), (second, second_id) = result.session_setups
    assert (first, second) == ("OK_NewSessionEstablished", "OK_OldSessionJoined") and first_id == second_id
    assert "paused" in result.states and len(result.latencies[LOOP[mode]]) == 12
    await secc.sessions.when_finished(2)
    paused, resumed = secc.recorders.names()
    assert paused[-1] == "dlink_pause" and "hlc_session_failed" not in paused
    assert resumed[-1] == "dlink_terminate"


@pytest_twisted.ensureDeferred
async def test_a_different_car_after_a_pause_gets_a_fresh_session(reactor, make_secc, test_pki):
    """Car A pauses and leaves; car B (another EVCCID, SessionID 0) gets a new SessionID and its own authorization."""
    secc = make_secc("dc", False)
    a = await run_ev(reactor, iso_ev(secc, test_pki, pause_after=3, resume=False))
    assert a.code == 0 and "paused" in a.reason, a.reason
    b = await run_ev(reactor, iso_ev(secc, test_pki, evcc_id=bytes.fromhex("02005e0000b2")))
    assert b.code == 0, b.reason
    assert b.session_setups == [("OK_NewSessionEstablished", b.session_setups[0][1])]
    assert b.session_setups[0][1] != a.session_setups[0][1]
    await secc.sessions.when_finished(2)
    _, second = secc.recorders.sessions
    assert "require_auth_eim" in second.names()
    assert second.payloads("evcc_id") == ["02:00:5E:00:00:B2"]


@pytest.mark.parametrize("mode", ["dc", "ac"])
@pytest_twisted.ensureDeferred
async def test_charger_initiated_stop(reactor, make_secc, test_pki, mode):
    """stop_charging mid-loop: the EV hears it (StopCharging / EVSE_Shutdown), stops, SessionStop(Terminate); exit 3, dlink_terminate."""
    secc = make_secc(mode, False)
    act = when_charging(reactor, secc, lambda charger: charger.stop_charging(True))
    result = await run_ev(reactor, iso_ev(secc, test_pki, max_current_demands=0, target_soc=100, capacity_wh=50000), act)
    assert result.code == 3, result.reason
    assert "StopCharging" in result.reason or "EVSE_Shutdown" in result.reason
    await secc.sessions.when_finished(1)
    (names,) = secc.recorders.names()
    assert names[-1] == "dlink_terminate" and "hlc_session_failed" not in names


@pytest.mark.parametrize("mode", ["dc", "ac"])
@pytest_twisted.ensureDeferred
async def test_charger_initiated_pause(reactor, make_secc, test_pki, mode):
    """pause_charging mid-loop: StopCharging reaches the EV, which pauses; it resumes with its SessionID and charges on."""
    secc = make_secc(mode, False)
    act = when_charging(reactor, secc, lambda charger: charger.pause_charging(True))
    result = await run_ev(reactor, iso_ev(secc, test_pki, on_stop_charging="pause"), act)
    assert result.code == 0, result.reason
    assert "StopCharging" in result.notifications
    assert [code for code, _ in result.session_setups] == ["OK_NewSessionEstablished", "OK_OldSessionJoined"]
    await secc.sessions.when_finished(2)
    assert secc.recorders.names()[0][-1] == "dlink_pause"


@pytest.mark.parametrize("mode", ["dc", "ac"])
@pytest_twisted.ensureDeferred
async def test_ev_renegotiation(reactor, make_secc, test_pki, mode):
    """PowerDelivery(Renegotiate) mid-loop: ChargeParameterDiscovery again (DC: cable check again), then charging goes on."""
    secc = make_secc(mode, False)
    result = await run_ev(reactor, iso_ev(secc, test_pki, renegotiate_after=4))
    assert result.code == 0, result.reason
    assert "renegotiation" in result.states and result.states.count("charge parameters") == 2
    assert len(result.latencies[LOOP[mode]]) == 12
    await secc.sessions.when_finished(1)
    (recorder,) = secc.recorders.sessions
    assert len(recorder.payloads("requested_energy_transfer_mode")) >= 1
    if mode == "dc":
        assert recorder.names().count("start_cable_check") == 2


def _schema(shared_dir, protocol, cache={}):
    if protocol not in cache:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        cache[protocol] = etree.XMLSchema(etree.parse(str(shared_dir / "xsd" / SCHEMA_SETS[protocol][0]), parser))
    return cache[protocol]


@pytest.mark.parametrize("protocol", ["din70121", "iso15118-2"])
@pytest_twisted.ensureDeferred
async def test_v2g_messages_with_the_real_codec(reactor, make_secc, test_pki, shared_dir, log_events, protocol):
    """
    log_v2g_messages and the v2g_messages var with the real codec: every
    message of a whole session (both directions) has an EVerest message id,
    XML valid against the official XSD, and an ``exi`` V2GTP frame that
    decodes to the same message; the log holds the same XML.
    """
    secc = make_secc("dc", False, "log_v2g_messages=true")
    settings = iso_ev(secc, test_pki, max_current_demands=3) if protocol == "iso15118-2" else EVSettings(
        host=secc.host, port=secc.port, capacity_wh=50, start_soc=70, target_soc=72, poll_interval=0.01,
        current_demand_interval=0.01, max_current_demands=3, msg_timeout=10.0, current_demand_timeout=10.0)
    result = await run_ev(reactor, settings)
    assert result.code == 0, result.reason
    await secc.sessions.when_finished(1)
    messages = secc.recorders.v2g_messages[0]
    codecs = {name: load_codec(name) for name in ("appHandshake", protocol)}
    ids = [message["id"] for message in messages]
    assert "UnknownMessage" not in ids and ids[:2] == ["SupportedAppProtocolReq", "SupportedAppProtocolRes"]
    assert "SessionStopRes" in ids and len(ids) >= 20
    for message in messages:
        schema = "appHandshake" if message["id"].startswith("SupportedAppProtocol") else protocol
        frame = bytes.fromhex(message["exi"])
        assert frame[:2] == b"\x01\xfe" and base64.b64decode(message["exi_base64"]) == frame
        decoded = codecs[schema].decode(frame[8:])
        document = etree.fromstring(message["xml"].encode())
        assert _schema(shared_dir, schema).validate(document), (message["id"], _schema(shared_dir, schema).error_log.last_error)
        assert codecs[schema].from_xml(message["xml"].encode()) == decoded, message["id"]
    logged = log_events.text()
    assert "received SessionSetupReq" in logged and "sent CurrentDemandRes" in logged


@pytest.mark.parametrize("mode", ["dc", "ac"])
@pytest_twisted.ensureDeferred
async def test_charger_initiated_renegotiation(reactor, make_secc, test_pki, mode):
    """The simulated charger halves its power mid-loop: EVSENotification ReNegotiation, the EV renegotiates and charges on."""
    secc = make_secc(mode, False)
    act = when_charging(reactor, secc, lambda charger: secc.sessions.backend.evses[charger].reduce_power(0.5))
    result = await run_ev(reactor, iso_ev(secc, test_pki, max_current_demands=15), act)
    assert result.code == 0, result.reason
    assert "ReNegotiation" in result.notifications
    assert "renegotiation" in result.states and result.states.count("charge parameters") == 2


@pytest.mark.parametrize("mode", ["dc", "ac"])
@pytest_twisted.ensureDeferred
async def test_receipt_required_is_for_pnc_only(reactor, make_secc, test_pki, mode):
    """simulator.receipt_required=true in an EIM session: ReceiptRequired stays false ([V2G2-691]); no MeteringReceipt, a clean end."""
    secc = make_secc(mode, False, "simulator.receipt_required=true")
    result = await run_ev(reactor, iso_ev(secc, test_pki))
    assert result.code == 0, result.reason
    assert result.receipts == 0 and "MeteringReceiptRes" not in result.latencies


@pytest_twisted.ensureDeferred
async def test_internet_access_chosen_end_to_end(reactor, test_pki):
    """
    The Internet-access provider in the SECC's registry, the EV over TLS:
    ServiceDiscovery lists ServiceID 3, ServiceDetail gives its parameter
    sets, the EV chooses set 4 (https); the provider hears the choice
    (port 443), the charger gets selected_service_parameters, and the
    session charges to a clean end.  Over plain TCP the service is not
    offered (value-added services need TLS), and asking for it fails the EV.
    """
    from evsev2g.vas import ServiceRegistry
    from evsev2g.vas_internet import InternetAccess

    chosen = []
    registry = ServiceRegistry(clock=reactor)
    await registry.add_provider(InternetAccess(("http", "https"), on_selected=chosen.append))
    secc = start_secc(reactor, FAST + ["tls_security=allow", "tls_port=0", f"certs_dir={test_pki.directory}"], services=registry)
    secc.tls, secc.mode = True, "dc"
    recorders = Recorders(secc.sessions.backend)
    try:
        settings = iso_ev(secc, test_pki, port=secc.service.tls.port_number, service_id=3, parameter_set_id=4)
        result = await run_ev(reactor, settings)
        assert result.code == 0, result.reason
        assert result.selected_services == [(3, 4)] and "service detail" in result.states
        assert [selection.ports for selection in chosen] == [(443,)] or [list(s.ports) for s in chosen] == [[443]]
        await secc.sessions.when_finished(1)
        assert recorders.sessions[0].payloads("selected_service_parameters"), recorders.sessions[0].names()
        plain = await run_ev(reactor, iso_ev(secc, test_pki, tls=False, service_id=3))
        assert plain.code == 2 and "does not offer service 3" in plain.reason
    finally:
        await secc.service.stopService()


@pytest_twisted.ensureDeferred
async def test_ev_refuses_a_chain_from_another_v2g_root(reactor, make_secc, test_pki, tmp_path):
    """The EV verifies the SECC's chain: with another PKI's V2G root the TLS handshake fails, exit 1, nothing is sent."""
    from evsev2g.pki import create_test_pki

    other = create_test_pki(tmp_path / "other")
    secc = make_secc("dc", True)
    result = await run_ev(reactor, iso_ev(secc, test_pki, v2g_root=other.path(layout.V2G_ROOT)))
    assert result.code == 1 and "TLS" in result.reason, result.reason
    assert result.session_setups == [] and "handshake" not in result.states


@pytest.mark.parametrize("setting, failed", [
    ("simulator.authorization=Blocked", "AuthorizationRes: FAILED"),
    ("simulator.isolation_status=Fault", "CableCheckRes: FAILED"),
])
@pytest_twisted.ensureDeferred
async def test_charger_refusals_reach_the_ev_as_failed(reactor, make_secc, test_pki, setting, failed):
    """EIM refused, or an isolation fault in the cable check: the EV gets the FAILED answer (exit 2) and the session ends with hlc_session_failed."""
    secc = make_secc("dc", False, setting)
    result = await run_ev(reactor, iso_ev(secc, test_pki))
    assert result.code == 2 and result.reason.startswith(failed), result.reason
    await secc.sessions.when_finished(1)
    (names,) = secc.recorders.names()
    assert names[-1] in ("dlink_error", "dlink_terminate") and "hlc_session_failed" in names
