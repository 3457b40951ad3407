"""
Tests of the session with ISO 15118-2: the timers with an answer that
waits (a PowerDelivery waiting on the AC contactor): V2G_SECC_Sequence_Timeout
runs from the response sent to the next request and is stopped while the
reply is pending ([V2G2-443]), a performance time overrun is logged; what
``selected_protocol`` says; which protocols a TLS connection may agree on.
"""

from twisted.internet.task import Clock
from twisted.logger import formatEvent

from evsev2g.protocols.apphandshake import load_protocol_versions
from evsev2g.protocols.context import ProtocolSettings
from evsev2g.protocols.iso15118_2 import ISO2_NAMESPACE
from evsev2g.session import SessionFactory, SessionSettings
from evsev2g.testing import FakeCodec, FakeSessionLink, app_protocol_request
from evsev2g.testing_iso2 import ISO2_AC_SESSION, ac_charger, iso2_request
from evsev2g.timers import AC_CONTACTOR_CLOSE_TIME, Timers

SID = bytes.fromhex("1122334455667788")


class ACBackend:
    """Sets up each session's charger as an AC charger that authorizes at once."""

    link_ready = True

    def __init__(self, clock):
        self.clock = clock
        self.chargers = []

    def session_started(self, charger):
        template = ac_charger(self.clock)
        for name in ("evse_id", "physical_values", "energy_transfer_modes", "ac_max_current", "ac_maximum_limits"):
            setattr(charger, name, getattr(template, name))
        charger.authorization_response("Accepted", "NoCertificateAvailable")
        self.chargers.append(charger)

    def session_ended(self, charger):
        pass


def rig(sequence_timeout=60):
    clock = Clock()
    codec = FakeCodec()
    factory = SessionFactory(
        clock,
        ACBackend(clock),
        codec,
        lambda schema: codec,
        load_protocol_versions(),
        SessionSettings(protocol=ProtocolSettings(timers=Timers(sequence_timeout=sequence_timeout))),
        new_session_id=lambda: SID,
    )
    link = FakeSessionLink()
    session = factory.new_session(link)
    session.payload_received(0x8001, codec.encode(app_protocol_request((ISO2_NAMESPACE, 2, 0, 1, 1))))
    sid = b"\x00"
    for name in ISO2_AC_SESSION[:5]:
        session.payload_received(0x8001, codec.encode(iso2_request(name, sid, dc=False)))
        sid = SID
    return clock, codec, link, session


def test_sequence_timer_stopped_while_the_reply_waits_and_restarted_when_sent():
    """
    PowerDelivery waits 2.5 s for the contactor: no sequence timeout meanwhile
    even with a 2 s timeout; the 2 s count from the response on.
    """
    clock, codec, link, session = rig(sequence_timeout=2)
    sent = len(link.sent)
    session.payload_received(0x8001, codec.encode(iso2_request("PowerDeliveryReq", SID, dc=False)))
    clock.advance(2.5)
    assert not link.closed and len(link.sent) == sent
    session.charger.ac_contactor_closed(True)
    assert len(link.sent) == sent + 1
    assert codec.decode(link.sent[-1][1]).Body.PowerDeliveryRes.ResponseCode == "OK"
    clock.advance(1.9)
    assert not link.closed
    clock.advance(0.2)
    assert link.closed


def test_performance_time_overrun_is_logged(log_events):
    """
    A response later than its performance time is logged with the figures;
    ISO-2's PowerDelivery has 4.5 s (Table 109), so 2.9 s is not late.
    """
    clock, codec, link, session = rig()
    session.payload_received(0x8001, codec.encode(iso2_request("PowerDeliveryReq", SID, dc=False)))
    clock.advance(AC_CONTACTOR_CLOSE_TIME - 0.1)
    session.charger.ac_contactor_closed(True)
    assert not [event for event in log_events if "performance time" in formatEvent(event)]
    # ChargingStatus (1.5 s) answered 2 s late is logged.
    machine = session.machine
    original = machine.handle

    def slow(request):
        clock.advance(2.0)
        return original(request)

    machine.handle = slow
    session.payload_received(0x8001, codec.encode(iso2_request("ChargingStatusReq", SID, dc=False)))
    assert codec.decode(link.sent[-1][1]).Body.ChargingStatusRes.ResponseCode == "OK"
    [line] = [formatEvent(event) for event in log_events if "performance time" in formatEvent(event)]
    assert "ChargingStatusRes took 2000.0 ms (performance time 1500 ms)" in line


def test_selected_protocol_names_iso2_as_evsev2g_does():
    """selected_protocol reports ISO15118-2-2013 for ISO-2 (EvseV2G's string), not the SupportedAppProtocol name."""
    clock = Clock()
    codec = FakeCodec()
    backend = ACBackend(clock)
    seen = []
    original = backend.session_started
    backend.session_started = lambda charger: (original(charger), charger.subscribe(lambda name, value: seen.append(value), names=["selected_protocol"]))
    factory = SessionFactory(clock, backend, codec, lambda schema: codec, load_protocol_versions(), SessionSettings())
    session = factory.new_session(FakeSessionLink())
    session.payload_received(0x8001, codec.encode(app_protocol_request((ISO2_NAMESPACE, 2, 0, 1, 1))))
    assert seen == ["ISO15118-2-2013"]


def test_tls_connection_never_agrees_on_din():
    """Over TLS only protocols that run over TLS are negotiated: DIN offered alone gets Failed_NoNegotiation ([V2G-DC-618])."""
    clock = Clock()
    codec = FakeCodec()
    factory = SessionFactory(clock, ACBackend(clock), codec, lambda schema: codec, load_protocol_versions(), SessionSettings())
    for offer, expected in (
        ([("urn:din:70121:2012:MsgDef", 2, 0, 1, 1)], "Failed_NoNegotiation"),
        ([("urn:din:70121:2012:MsgDef", 2, 0, 1, 1), (ISO2_NAMESPACE, 2, 0, 2, 2)], "OK_SuccessfulNegotiation"),
    ):
        link = FakeSessionLink(secure=True)
        session = factory.new_session(link)
        session.charger.update_energy_transfer_modes(["DC_extended"])
        session.payload_received(0x8001, codec.encode(app_protocol_request(*offer)))
        answer = codec.decode(link.sent[0][1])
        assert answer.ResponseCode == expected
        assert (session.protocol.name if session.protocol else None) == ("ISO15118D2" if expected.startswith("OK") else None)
