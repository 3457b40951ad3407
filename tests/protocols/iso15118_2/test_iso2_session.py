"""
Tests for :mod:`evsev2g.protocols.iso15118_2`: whole AC and DC sessions
with external identification, the sequence and SessionID checks, and every
response (FAILED ones included) encoded with the real codec and valid
against the official XSD.
"""

import pytest
from lxml import etree
from zope.interface.verify import verifyObject

from evsev2g.interfaces import IProtocolStateMachine, IProtocolVersion
from evsev2g.plugins.evsev2g_protocols import ISO15118_2Version
from evsev2g.protocols.context import ProtocolSettings
from evsev2g.protocols.iso15118_2 import ISO2_NAMESPACE, REQUESTS, State
from evsev2g.testing_iso2 import ISO2_AC_SESSION, ISO2_DC_SESSION
from tests.protocols.iso15118_2.harness import Harness, codec
from tests.independent import reference_file


def test_interfaces_and_plugin():
    """The plugin and its state machine provide their interfaces; ISO-2 over TLS, AC or DC."""
    plugin = ISO15118_2Version()
    assert verifyObject(IProtocolVersion, plugin)
    assert verifyObject(IProtocolStateMachine, Harness().machine)
    assert (plugin.namespace, plugin.version_major, plugin.schema, plugin.config_key) == (
        ISO2_NAMESPACE, 2, "iso15118-2", "supported_ISO15118_2"
    )
    assert plugin.allows_tls
    assert plugin.usable_with(Harness(dc=False).charger) and plugin.usable_with(Harness().charger)


def test_full_ac_session():
    """
    A whole AC EIM session: every answer OK, the contactor closed on
    PowerDelivery(Start) and opened on Stop, and the vars EvseV2G publishes.
    """
    h = Harness(dc=False)
    h.run(ISO2_AC_SESSION[:5])
    body = h.bodies[-1]
    assert body.EVSEProcessing == "Finished"
    [tuple_] = body.SAScheduleList.SAScheduleTuple
    [entry] = tuple_.PMaxSchedule.PMaxScheduleEntry
    # 22080 W / 230 V / 3 phases = 32 A per phase; PMax 32 × 230 × 3.
    assert entry.PMax.Value * 10 ** entry.PMax.Multiplier == 22080
    assert entry.RelativeTimeInterval.duration == 7200
    assert body.AC_EVSEChargeParameter.EVSEMaxCurrent.Value == 320
    h.run(["PowerDeliveryReq", "ChargingStatusReq", "PowerDeliveryReq:Stop", "SessionStopReq"])
    names = h.vars.names()
    for var in ("evcc_id", "selected_payment_option", "require_auth_eim", "requested_energy_transfer_mode",
                "departure_time", "ac_eamount", "ac_ev_max_voltage", "ac_ev_max_current", "ac_ev_min_current",
                "v2g_setup_finished", "ac_open_contactor", "selected_service_parameters"):
        assert var in names, var
    assert h.vars.payloads("ac_eamount") == [20000]
    assert h.vars.payloads("requested_energy_transfer_mode") == ["AC_three_phase_core"]
    assert h.vars.payloads("selected_service_parameters")[0]["connector"] == "ThreePhase"
    assert h.vars.payloads("charging_needs") == [{
        "requested_energy_transfer": "AC_three_phase_core",
        "departure_time": "2023-11-15T00:13:20Z",
        "ac_charging_parameters": {"energy_amount": 20000, "ev_min_current": 6, "ev_max_current": 32, "ev_max_voltage": 400},
    }]
    assert h.machine.state is State.STOPPED and h.replies[-1].close and h.machine.clean_stop
    h.machine.finish("test")
    assert h.vars.names()[-1] == "dlink_terminate" and "hlc_session_failed" not in h.vars.names()


def test_full_dc_session():
    """A whole DC EIM session: cable check, pre-charge, CurrentDemand with ISO-2's extra elements, welding."""
    h = Harness()
    h.run(ISO2_DC_SESSION[:9])
    body = h.bodies[-1]
    assert body.EVSEID == "DE*TST*E1" and body.SAScheduleTupleID == 1
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_Ready"
    h.run(ISO2_DC_SESSION[9:])
    names = h.vars.names()
    for var in ("start_cable_check", "start_pre_charge", "v2g_setup_finished", "current_demand_started",
                "dc_ev_target_voltage_current", "dc_ev_remaining_time", "current_demand_finished", "dc_open_contactor",
                "dc_ev_energy_capacity", "dc_full_soc", "departure_time"):
        assert var in names, var
    assert h.vars.payloads("departure_time") == ["2023-11-14T23:13:20Z"]
    [needs] = h.vars.payloads("charging_needs")
    assert needs["dc_charging_parameters"] == {
        "ev_max_current": 200, "ev_max_voltage": 450, "ev_max_power": 100000, "ev_energy_capacity": 60000,
        "energy_amount": 30000, "state_of_charge": 50, "full_soc": 100, "bulk_soc": 80,
    }
    h.machine.finish("test")
    assert names.count("dc_open_contactor") == 1 and h.vars.names()[-1] == "dlink_terminate"


def test_sequence_error_closes():
    """A request not allowed in the state: FAILED_SequenceError, then close ([V2G2-538], [V2G2-539])."""
    h = Harness()
    h.run(["SessionSetupReq"])
    code, body, reply = h.send("ChargeParameterDiscoveryReq")
    assert code == "FAILED_SequenceError" and reply.close and reply.failed
    assert h.machine.state is State.STOPPED


def test_unknown_session_and_sequence_error_wins():
    """A foreign SessionID: FAILED_UnknownSession ([V2G2-460]), zeros included; a sequence error wins over it."""
    for session_id in (b"\x09" * 8, b"\x00"):
        h = Harness()
        h.run(["SessionSetupReq"])
        code, _, reply = h.send("ServiceDiscoveryReq", session_id=session_id)
        assert code == "FAILED_UnknownSession" and reply.close
    h = Harness()
    h.run(["SessionSetupReq"])
    code, _, _ = h.send("AuthorizationReq", session_id=b"\x09" * 8)
    assert code == "FAILED_SequenceError"


def test_not_a_request_closes_without_answer():
    """A response element where a request belongs: nothing to answer, the connection closes."""
    h = Harness()
    from evsev2g.exi.message import Message

    message = Message("V2G_Message", Header=Message("Header", SessionID=b"\x00"),
                      Body=Message("Body", [("SessionSetupRes", Message("SessionSetupRes", ResponseCode="OK", EVSEID="ZZ00000"))]))
    reply = h.machine.handle(message)
    assert reply.message is None and reply.close


def test_failed_keeps_connection_unless_configured():
    """A FAILED code other than sequence/session keeps the connection; with the setting every FAILED closes."""
    for terminate in (False, True):
        h = Harness(settings=ProtocolSettings(terminate_connection_on_failed_response=terminate))
        h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
        code, _, reply = h.send("PaymentServiceSelectionReq", SelectedPaymentOption="Contract")
        assert code == "FAILED_PaymentSelectionInvalid" and reply.close is terminate
        assert h.machine.state is (State.STOPPED if terminate else State.FAILED)


@pytest.fixture(scope="module")
def official_schema(shared_dir):
    """The official ISO 15118-2 message schema (lxml), from ../shared/xsd."""
    path = reference_file(shared_dir / "xsd" / "iso15118-2" / "V2G_CI_MsgDef.xsd")
    return etree.XMLSchema(etree.parse(str(path)))


def _valid(schema, message):
    """The XML of the built tree (what v2g_messages logs) and of the decoded wire bytes both validate."""
    for tree in (message, codec().decode(codec().encode(message))):
        document = etree.fromstring(codec().to_xml(tree))
        assert schema.validate(document), schema.error_log.last_error


def test_every_response_valid_against_the_official_xsd(official_schema):
    """
    Every response of a whole AC and DC session, and a FAILED answer to
    every request of the schema (the minimum content, [V2G2-736]), encodes
    with the real codec and validates against the official XSD.
    """
    for dc, steps in ((False, ISO2_AC_SESSION), (True, ISO2_DC_SESSION)):
        h = Harness(dc=dc)
        h.charger.update_meter_info({"timestamp": "2026-12-05T08:00:00Z", "energy_Wh_import": {"total": 1234}, "meter_id": "M1"})
        h.run(steps)
        for reply in h.replies:
            _valid(official_schema, reply.message)
        for name in sorted(REQUESTS - {"SessionSetupReq"}):
            failed = Harness(dc=dc)
            failed.run(["SessionSetupReq"])
            code, body, reply = failed.send(name)
            if name not in ("ServiceDiscoveryReq", "SessionStopReq"):
                assert code == "FAILED_SequenceError", name
            _valid(official_schema, reply.message)


def test_failed_bodies_carry_no_optional_elements():
    """FAILED ChargingStatusRes has no MeterInfo/ReceiptRequired/EVSEMaxCurrent (EVerest #1523, [V2G2-736])."""
    h = Harness(dc=False)
    h.run(["SessionSetupReq"])
    code, body, _ = h.send("ChargingStatusReq")
    assert code == "FAILED_SequenceError"
    assert [name for name, _ in body.children] == ["ResponseCode", "EVSEID", "SAScheduleTupleID", "AC_EVSEStatus"]


def test_service_and_loop_responses_valid_against_the_official_xsd(official_schema):
    """
    The responses the whole-session test does not reach are valid too: a
    ServiceList with SAE and value-added services, ServiceDetail with
    parameter sets, MeteringReceipt (AC and DC), renegotiation, a
    ChargingStatus with MeterInfo, the notifications.
    """
    from tests.protocols.iso15118_2.test_iso2_services import selection, vas_harness

    h, _ = vas_harness(setup={"evse_id": {"evse_id": "DE*TST*E1"}, "sae_j2847_mode": "V2G", "debug_mode": False})
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    h.send_deferred("ServiceDetailReq", ServiceID=3)
    h.send_deferred("PaymentServiceSelectionReq", **selection(1, (3, 1), 28473))
    h.run(ISO2_DC_SESSION[3:9] + ("MeteringReceiptReq",))
    h.charger.stop_charging(True)
    h.run(["CurrentDemandReq", "PowerDeliveryReq:Stop", "WeldingDetectionReq", "SessionStopReq:Pause"])
    ac = Harness(dc=False)
    ac.run(ISO2_AC_SESSION[:7])
    ac.charger.update_meter_info({"timestamp": "2026-12-05T08:00:00Z", "energy_Wh_import": {"total": 10}})
    ac.run(["ChargingStatusReq", "MeteringReceiptReq", "PowerDeliveryReq:Renegotiate", "ChargeParameterDiscoveryReq"])
    for reply in h.replies + ac.replies:
        _valid(official_schema, reply.message)
    assert len(h.replies) == 15 and len(ac.replies) == 11
