"""
Tests for :mod:`evsev2g.session` logic with a Clock, a fake link and a fake
codec (the codec and real sockets are exercised in the integration tests).
"""

from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from evsev2g.interfaces import ISession, ISessionFactory
from evsev2g.protocols.apphandshake import load_protocol_versions
from evsev2g.protocols.context import ProtocolSettings
from evsev2g.session import SessionFactory, SessionSettings
from evsev2g.sim.charger import SimulatedCharger, SimulatorSettings
from evsev2g.testing import DIN_DC_SESSION, FakeCodec, FakeSessionLink, VarRecorder, app_protocol_request, din_request
from evsev2g.timers import Timers
from tests.protocols.test_apphandshake import ISO2

DIN = "urn:din:70121:2012:MsgDef"
#: The requests of a DIN DC session up to the first CurrentDemand.
UP_TO_CHARGING = DIN_DC_SESSION[: DIN_DC_SESSION.index("CurrentDemandReq") + 1]
SID = bytes.fromhex("1122334455667788")


class Rig:
    """A session factory with the simulator backend, all on a Clock."""

    def __init__(self, **protocol):
        self.clock = Clock()
        self.codec = FakeCodec()
        self.backend = SimulatedCharger(self.clock, SimulatorSettings(auth_delay=0, cable_check_duration=0, voltage_slew_rate=0, current_slew_rate=0))
        self.factory = SessionFactory(
            self.clock,
            self.backend,
            self.codec,
            lambda schema: self.codec,
            load_protocol_versions(),
            SessionSettings(protocol=ProtocolSettings(**protocol), protocol_flags={"supported_DIN70121": True}),
            new_session_id=lambda: SID,
        )

    def connect(self, **link_options):
        """A new connection: ``(link, session, var recorder)``."""
        link = FakeSessionLink(**link_options)
        session = self.factory.new_session(link)
        link.session = session
        recorder = VarRecorder(session.charger)
        return link, session, recorder

    def send(self, link, session, message):
        """Deliver ``message``; returns the decoded answer or ``None``."""
        before = len(link.sent)
        session.payload_received(0x8001, self.codec.encode(message))
        if len(link.sent) == before:
            return None
        return self.codec.decode(link.sent[-1][1])


def handshake(rig, link, session):
    """Negotiate DIN; returns the supportedAppProtocolRes."""
    return rig.send(link, session, app_protocol_request((DIN, 2, 0, 1, 1)))


def set_up(rig, link, session):
    """Handshake and SessionSetup."""
    handshake(rig, link, session)
    rig.send(link, session, din_request("SessionSetupReq"))


def charge(rig, link, session):
    """Handshake and a DIN DC session up to the first CurrentDemand."""
    handshake(rig, link, session)
    sid = b"\x00"
    for name in UP_TO_CHARGING:
        rig.send(link, session, din_request(name, sid))
        sid = SID


def test_interfaces():
    """The factory and its sessions provide the seam's interfaces."""
    rig = Rig()
    link, session, _ = rig.connect()
    assert verifyObject(ISessionFactory, rig.factory)
    assert verifyObject(ISession, session)


def test_whole_session_with_the_simulator():
    """Handshake, a whole DIN DC session against the simulated charger, SessionStop, close, dlink_terminate."""
    rig = Rig()
    link, session, vars_ = rig.connect()
    assert handshake(rig, link, session).ResponseCode == "OK_SuccessfulNegotiation"
    sid = b"\x00"
    for name in UP_TO_CHARGING:
        response = rig.send(link, session, din_request(name, sid))
        body = response.Body.children[0][1]
        assert body.ResponseCode.startswith("OK"), (name, body.ResponseCode)
        sid = SID
        if "EVSEProcessing" in body:
            assert body.EVSEProcessing == "Finished", name
    assert session.charger.dc_present_values["evse_present_voltage"] == 400
    rig.clock.advance(1)
    rig.send(link, session, din_request("PowerDeliveryReq", SID, ReadyToChargeState=False))
    rig.send(link, session, din_request("WeldingDetectionReq", SID))
    response = rig.send(link, session, din_request("SessionStopReq", SID))
    assert response.Body.SessionStopRes.ResponseCode == "OK"
    assert link.closed
    assert vars_.names()[-1] == "dlink_terminate"
    assert rig.backend.evses == {}
    assert rig.factory.sessions == set()


def test_sequence_timeout():
    """No request for V2G_SECC_Sequence_Timeout: the session ends and the connection closes ([V2G2-443])."""
    rig = Rig(timers=Timers(sequence_timeout=60))
    link, session, vars_ = rig.connect()
    set_up(rig, link, session)
    rig.clock.advance(59.9)
    assert not link.closed
    rig.send(link, session, din_request("ServiceDiscoveryReq", SID))
    rig.clock.advance(59.9)
    assert not link.closed
    rig.clock.advance(0.2)
    assert link.closed
    assert vars_.payloads("hlc_session_failed") == ["ChargingParametersNotAccepted"]
    assert vars_.names()[-1] == "dlink_error"
    assert rig.clock.getDelayedCalls() == []


def test_undecodable_closes():
    """Undecodable EXI closes that connection without an answer."""
    rig = Rig()
    link, session, vars_ = rig.connect()
    session.payload_received(0x8001, b"\x80\xff\xff")
    assert link.closed and link.sent == []
    assert vars_.names()[-1] == "dlink_error"


def test_no_negotiation_sends_and_closes():
    """No common protocol: Failed_NoNegotiation is sent, then the connection closes ([V2G2-172])."""
    rig = Rig()
    link, session, vars_ = rig.connect()
    response = rig.send(link, session, app_protocol_request(("urn:tesla:din:2018:MsgDef", 0, 7, 1, 1)))
    assert response.ResponseCode == "Failed_NoNegotiation"
    assert link.closed
    assert vars_.payloads("hlc_session_failed") == ["ProtocolNegotiationFailed"]


def test_first_message_must_be_the_handshake():
    """A session that starts with anything but supportedAppProtocolReq is closed."""
    rig = Rig()
    link, session, _ = rig.connect()
    assert rig.send(link, session, din_request("SessionSetupReq")) is None
    assert link.closed


def test_failed_response_closes_with_policy():
    """terminate_connection_on_failed_response: any FAILED answer is sent, then the connection closes."""
    rig = Rig(terminate_connection_on_failed_response=True)
    link, session, _ = rig.connect()
    set_up(rig, link, session)
    rig.send(link, session, din_request("ServiceDiscoveryReq", SID))
    response = rig.send(link, session, din_request("ServicePaymentSelectionReq", SID, SelectedPaymentOption="Contract"))
    assert response.Body.ServicePaymentSelectionRes.ResponseCode == "FAILED_PaymentSelectionInvalid"
    assert link.closed


def test_sequence_error_closes():
    """FAILED_SequenceError is sent and the connection closes."""
    rig = Rig()
    link, session, _ = rig.connect()
    set_up(rig, link, session)
    response = rig.send(link, session, din_request("CurrentDemandReq", SID))
    assert response.Body.CurrentDemandRes.ResponseCode == "FAILED_SequenceError"
    assert link.closed


def test_dlink_down_drops_the_connection():
    """dlink_ready(false) from the charger drops the connection at once (no answer)."""
    rig = Rig()
    link, session, vars_ = rig.connect()
    handshake(rig, link, session)
    session.charger.dlink_ready(False)
    assert link.aborted
    assert vars_.names()[-1] == "dlink_error"


def test_end_vars_wait_for_the_connection_to_close():
    """
    After SessionStopRes the connection closes in an orderly way, which may
    take seconds; ``dlink_terminate`` and the hand-back to the backend come
    only once it is gone, as in EvseV2G's teardown (SLAC tearing the link down
    at once would cut the EV off before it closed TCP).
    """
    rig = Rig()
    link, session, vars_ = rig.connect(lose_on_close=False)
    charge(rig, link, session)
    rig.send(link, session, din_request("PowerDeliveryReq", SID, ReadyToChargeState=False))
    rig.send(link, session, din_request("WeldingDetectionReq", SID))
    assert rig.send(link, session, din_request("SessionStopReq", SID)).Body.SessionStopRes.ResponseCode == "OK"
    assert link.closed
    assert "dlink_terminate" not in vars_.names()
    assert rig.factory.sessions == {session}
    finished = rig.factory.when_finished(1)
    assert not finished.called
    session.connection_lost("closed cleanly")
    assert vars_.names()[-1] == "dlink_terminate"
    assert rig.factory.sessions == set() and rig.backend.evses == {}
    assert finished.result == 1


def test_contactors_open_at_once_when_the_session_ends_mid_charge():
    """
    A session that ends while current flows (here: the sequence timeout)
    opens the contactors at once, before the orderly close; the rest of the
    end follows when the connection is gone.
    """
    rig = Rig()
    link, session, vars_ = rig.connect(lose_on_close=False)
    charge(rig, link, session)
    rig.clock.advance(60)
    assert link.closed
    assert vars_.names()[-2:] == ["current_demand_finished", "dc_open_contactor"]
    session.connection_lost("closed cleanly")
    assert vars_.names()[-4:] == ["current_demand_finished", "dc_open_contactor", "hlc_session_failed", "dlink_error"]
    assert vars_.names().count("dc_open_contactor") == 1


def test_disconnect_mid_charge_then_new_session(log_events):
    """
    The EV vanishing mid-charge (Josev's EVCC dropping TCP after three
    CurrentDemandRes) ends that session cleanly, with a warning naming the
    last request; the next connection works.
    """
    rig = Rig()
    link, session, vars_ = rig.connect()
    charge(rig, link, session)
    session.connection_lost("connection reset")
    assert vars_.names()[-4:] == ["current_demand_finished", "dc_open_contactor", "hlc_session_failed", "dlink_error"]
    assert "the connection ended before the session did (connection reset); last request CurrentDemandReq" in log_events.text()
    assert "DIN session ends (connection lost: connection reset); last request CurrentDemandReq" in log_events.text()
    assert rig.backend.evses == {}
    link2, session2, _ = rig.connect()
    assert handshake(rig, link2, session2).ResponseCode == "OK_SuccessfulNegotiation"
    response = rig.send(link2, session2, din_request("SessionSetupReq"))
    assert response.Body.SessionSetupRes.ResponseCode == "OK_NewSessionEstablished"


def test_two_sessions_do_not_share_state():
    """An emergency on one session's charger does not touch the other session."""
    rig = Rig()
    a = rig.connect()
    b = rig.connect()
    handshake(rig, a[0], a[1])
    handshake(rig, b[0], b[1])
    a[1].charger.send_error("Error_EmergencyShutdown")
    ra = rig.send(a[0], a[1], din_request("SessionSetupReq"))
    rb = rig.send(b[0], b[1], din_request("SessionSetupReq"))
    assert ra.Body.SessionSetupRes.ResponseCode == "FAILED"
    assert rb.Body.SessionSetupRes.ResponseCode == "OK_NewSessionEstablished"


def test_v2g_messages_emitted_to_subscribers():
    """Every message received and sent is emitted as v2g_messages to a subscriber of that var."""
    rig = Rig()
    link, session, _ = rig.connect()
    seen = []
    session.charger.subscribe(lambda name, payload: seen.append(payload), names=["v2g_messages"])
    handshake(rig, link, session)
    rig.send(link, session, din_request("SessionSetupReq"))
    assert [each["id"] for each in seen] == ["SupportedAppProtocolReq", "SupportedAppProtocolRes", "SessionSetupReq", "SessionSetupRes"]
    assert seen[-1]["xml"] == "<V2G_Message/>"
    assert bytes.fromhex(seen[-1]["exi"]) == b"\x01\xfe\x80\x01" + len(link.sent[-1][1]).to_bytes(4, "big") + link.sent[-1][1]


def test_foreign_payload_type_ignored():
    """V2GTP payload types other than 0x8001 are ignored ([V2G2-800])."""
    rig = Rig()
    link, session, _ = rig.connect()
    session.payload_received(0x8002, b"\x01\x02")
    assert not link.closed and link.sent == []


def test_handshake_refused_while_charger_stops():
    """A charger that asked to stop refuses the handshake (Failed_NoNegotiation)."""
    rig = Rig()
    link, session, _ = rig.connect()
    session.charger.stop_charging(True)
    assert handshake(rig, link, session).ResponseCode == "Failed_NoNegotiation"


def test_supported_app_protocols_published_at_session_start():
    """supported_app_protocols_secc lists the protocols configuration enables, at session start."""
    rig = Rig()
    seen = []
    original = rig.backend.session_started

    def started(charger):
        original(charger)
        charger.subscribe(lambda name, payload: seen.append(payload), names=["supported_app_protocols_secc"])

    rig.backend.session_started = started
    rig.connect()
    assert seen == [{"app_protocols": ["DIN70121", "ISO15118D2"]}]


def real_codec_factory(*settings):
    """A session factory as ``twistd evsev2g`` builds it (real codecs, shipped plugins), on a Clock."""
    from evsev2g.config import load_config
    from evsev2g.session import build_session_factory

    return build_session_factory(load_config(None, list(settings)), Clock())


def test_iso2_served_and_chosen_by_priority():
    """
    With the ISO 15118-2 plugin registered and enabled, an EV offering ISO-2
    at Priority 1 and DIN at 2 (Josev's EVCC, most ISO-2 cars) gets ISO-2
    with its SchemaID, ISO-2 alone gets ISO-2; with supported_ISO15118_2
    false the first offer gets DIN ([V2G2-172]).  Real codec.
    """
    offers = (
        ([(ISO2, 2, 0, 1, 1), (DIN, 2, 0, 2, 2)], "OK_SuccessfulNegotiation", 1, "ISO15118D2"),
        ([(ISO2, 2, 0, 1, 1)], "OK_SuccessfulNegotiation", 1, "ISO15118D2"),
    )
    factory = real_codec_factory("supported_ISO15118_2=true", "supported_DIN70121=true")
    codec = factory.handshake_codec
    for offer, code, schema_id, name in offers:
        link = FakeSessionLink()
        session = factory.new_session(link)
        session.payload_received(0x8001, codec.encode(app_protocol_request(*offer)))
        answer = codec.decode(link.sent[0][1])
        assert (answer.ResponseCode, answer.SchemaID) == (code, schema_id)
        assert not link.closed
        assert session.protocol.name == name
    assert [v.name for v in factory.configured_versions()] == ["DIN70121", "ISO15118D2"]
    assert factory.tls_protocols() == ["ISO15118D2"]
    factory = real_codec_factory("supported_ISO15118_2=false", "supported_DIN70121=true")
    link = FakeSessionLink()
    session = factory.new_session(link)
    session.payload_received(0x8001, codec.encode(app_protocol_request(*offers[0][0])))
    assert codec.decode(link.sent[0][1]).SchemaID == 2 and session.protocol.name == "DIN70121"
    assert factory.tls_protocols() == []


def test_tls_protocols_follow_plugins_and_configuration():
    """Only enabled plugins that allow TLS count: DIN never does ([V2G-DC-618]); an ISO-2 plugin does while enabled."""
    rig = Rig()
    for flags, expected in (({"supported_ISO15118_2": True}, ["ISO15118D2"]), ({"supported_ISO15118_2": False}, [])):
        rig.factory.settings = SessionSettings(protocol_flags=flags)
        assert rig.factory.tls_protocols() == expected
