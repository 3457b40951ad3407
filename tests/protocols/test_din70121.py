"""
Tests for :mod:`evsev2g.protocols.din70121`: the DIN SPEC 70121 DC state
machine, driven with hand-built messages and a ``Clock`` (no sockets).
"""

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from evsev2g.exi.message import Message
from evsev2g.interfaces import IProtocolStateMachine, IProtocolVersion
from evsev2g.protocols.context import ProtocolContext, ProtocolSettings
from evsev2g.protocols.din70121 import DIN70121Version, DINStateMachine, State
from evsev2g.protocols.physical import physical_value, to_number
from evsev2g.testing import VarRecorder, dc_charger, din_ev_status, din_request
from evsev2g.timers import Timers

SID = bytes.fromhex("0102030405060708")


class Harness:
    """A DIN state machine with a DC charger, a Clock and a var recorder."""

    def __init__(self, settings=None, **charger_commands):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.charger = dc_charger(self.clock, **charger_commands)
        self.vars = VarRecorder(self.charger)
        context = ProtocolContext(
            charger=self.charger,
            clock=self.clock,
            settings=settings or ProtocolSettings(),
            new_session_id=lambda: SID,
            label="test",
        )
        self.machine = DINStateMachine(context)

    def send(self, name, session_id=None, **fields):
        """Send one request; return (response code, body, reply)."""
        if session_id is None:
            session_id = SID if self.machine.session_id else b"\x00"
        reply = self.machine.handle(din_request(name, session_id, **fields))
        body = reply.message.Body.children[0][1]
        return body.ResponseCode, body, reply

    def run_to(self, last):
        """Run the normal sequence up to and including request ``last``."""
        steps = [
            ("SessionSetupReq", {}),
            ("ServiceDiscoveryReq", {}),
            ("ServicePaymentSelectionReq", {}),
            ("ContractAuthenticationReq", {}),
            ("ChargeParameterDiscoveryReq", {}),
            ("CableCheckReq", {}),
            ("PreChargeReq", {}),
            ("PowerDeliveryReq", {}),
            ("CurrentDemandReq", {}),
        ]
        for name, fields in steps:
            if name == "ContractAuthenticationReq":
                self.charger.authorization_response("Accepted", "NoCertificateAvailable")
            if name == "CableCheckReq":
                self.charger.update_isolation_status("Valid")
                self.charger.cable_check_finished(True)
            code, body, reply = self.send(name, **fields)
            assert code.startswith("OK"), (name, code)
            if name == last:
                return body


def test_interfaces():
    """The plugin and its state machine provide their interfaces."""
    plugin = DIN70121Version()
    assert verifyObject(IProtocolVersion, plugin)
    assert verifyObject(IProtocolStateMachine, Harness().machine)


def test_full_dc_session_vars_and_answers():
    """
    A whole DIN DC session: every answer OK and Finished in the end, and the
    vars EvseV2G publishes at each step, in order.
    """
    h = Harness()
    code, body, _ = h.send("SessionSetupReq")
    assert code == "OK_NewSessionEstablished"
    assert body.EVSEID == bytes.fromhex("49A80737A45679")
    assert h.vars.payloads("evcc_id") == ["0A:0B:0C:0D:0E:0F"]
    code, body, _ = h.send("ServiceDiscoveryReq")
    assert body.PaymentOptions.getlist("PaymentOption") == ["ExternalPayment"]
    assert body.ChargeService.EnergyTransferType == "DC_extended"
    assert body.ChargeService.ServiceTag.ServiceID == 1
    h.send("ServicePaymentSelectionReq")
    code, body, _ = h.send("ContractAuthenticationReq")
    assert (code, body.EVSEProcessing) == ("OK", "Ongoing")
    code, body, _ = h.send("ContractAuthenticationReq")
    assert body.EVSEProcessing == "Ongoing"
    assert h.vars.names().count("require_auth_eim") == 1
    h.charger.authorization_response("Accepted", "NoCertificateAvailable")
    code, body, _ = h.send("ContractAuthenticationReq")
    assert body.EVSEProcessing == "Finished"
    code, body, _ = h.send("ChargeParameterDiscoveryReq")
    assert (code, body.EVSEProcessing) == ("OK", "Finished")
    parameter = body.DC_EVSEChargeParameter
    assert to_number(parameter.EVSEMaximumVoltageLimit) == 920
    assert to_number(parameter.EVSEMaximumCurrentLimit) == 250
    entry = body.SAScheduleList.SAScheduleTuple[0].PMaxSchedule.PMaxScheduleEntry[0]
    assert entry.PMax == 32767
    code, body, _ = h.send("CableCheckReq")
    assert body.EVSEProcessing == "Ongoing"
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_IsolationMonitoringActive"
    h.charger.update_isolation_status("Valid")
    h.charger.cable_check_finished(True)
    code, body, _ = h.send("CableCheckReq")
    assert body.EVSEProcessing == "Finished"
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_Ready"
    assert body.DC_EVSEStatus.EVSEIsolationStatus == "Valid"
    h.charger.update_dc_present_values({"evse_present_voltage": 398.5})
    code, body, _ = h.send("PreChargeReq")
    assert to_number(body.EVSEPresentVoltage) == pytest.approx(398.5)
    code, body, _ = h.send("PowerDeliveryReq")
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_Ready"
    h.charger.update_dc_present_values({"evse_present_voltage": 400, "evse_present_current": 99.5})
    code, body, _ = h.send("CurrentDemandReq")
    assert code == "OK"
    assert to_number(body.EVSEPresentCurrent) == pytest.approx(99.5)
    assert body.EVSECurrentLimitAchieved is False
    assert to_number(body.EVSEMaximumPowerLimit) == 150000
    h.send("CurrentDemandReq")
    code, body, _ = h.send("PowerDeliveryReq", ReadyToChargeState=False)
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_Shutdown"
    h.send("WeldingDetectionReq")
    code, body, reply = h.send("SessionStopReq")
    assert code == "OK" and reply.close
    h.machine.finish("closed")
    names = h.vars.names()
    expected_order = [
        "evcc_id",
        "selected_payment_option",
        "require_auth_eim",
        "requested_energy_transfer_mode",
        "start_cable_check",
        "start_pre_charge",
        "v2g_setup_finished",
        "current_demand_started",
        "current_demand_finished",
        "dc_open_contactor",
        "dlink_terminate",
    ]
    positions = [names.index(name) for name in expected_order]
    assert positions == sorted(positions)
    assert "hlc_session_failed" not in names
    assert "dlink_error" not in names
    assert h.vars.payloads("dc_ev_maximum_limits")[0] == {
        "dc_ev_maximum_current_limit": 200,
        "dc_ev_maximum_power_limit": 100000,
        "dc_ev_maximum_voltage_limit": 450,
    }
    assert h.vars.payloads("dc_ev_energy_capacity") == [60000]
    assert h.vars.payloads("dc_bulk_soc") == [80]
    assert h.vars.payloads("dc_ev_target_voltage_current")[-1] == {"dc_ev_target_voltage": 400, "dc_ev_target_current": 100}
    assert h.vars.payloads("dc_ev_status")[0] == {"dc_ev_ready": True, "dc_ev_error_code": "NO_ERROR", "dc_ev_ress_soc": 50}
    remaining = h.vars.payloads("dc_ev_remaining_time")
    assert remaining == [{"ev_remaining_time_to_full_soc": "2023-11-14T22:43:20Z"}]


def test_on_change_vars_are_not_repeated():
    """CurrentDemand values equal to the last ones are not published again (EvseV2G on-change)."""
    h = Harness()
    h.run_to("CurrentDemandReq")
    before = len(h.vars.events)
    h.send("CurrentDemandReq")
    assert len(h.vars.events) == before


def test_sequence_error_and_close():
    """A request not allowed in the state: FAILED_SequenceError, then close ([V2G2-538], [V2G2-539])."""
    h = Harness()
    h.send("SessionSetupReq")
    code, body, reply = h.send("CableCheckReq")
    assert code == "FAILED_SequenceError"
    assert reply.close and reply.failed
    assert body.DC_EVSEStatus.EVSEStatusCode  # mandatory fields present


def test_sequence_error_before_session_setup_echoes_session_id():
    """Before SessionSetup there is no session of ours: the EV's SessionID is echoed."""
    h = Harness()
    reply = h.machine.handle(din_request("ServiceDiscoveryReq", b"\x11"))
    assert reply.message.Header.SessionID == b"\x11"
    assert reply.message.Body.ServiceDiscoveryRes.ResponseCode == "FAILED_SequenceError"
    assert reply.close


def test_unknown_session():
    """A SessionID other than ours: FAILED_UnknownSession ([V2G2-460]) and close."""
    h = Harness()
    h.send("SessionSetupReq")
    code, body, reply = h.send("ServiceDiscoveryReq", session_id=b"\x00")
    assert code == "FAILED_UnknownSession"
    assert reply.close
    assert reply.message.Header.SessionID == SID


def test_sequence_error_wins_over_unknown_session():
    """Wrong state and wrong SessionID together: FAILED_SequenceError (ISO 15118-4 SessionSetup_002)."""
    h = Harness()
    h.send("SessionSetupReq")
    code, _, _ = h.send("PreChargeReq", session_id=b"\x99")
    assert code == "FAILED_SequenceError"


def test_requests_outside_dc_eim_get_sequence_error():
    """DIN requests the DC/EIM sequence never uses are answered FAILED_SequenceError with a valid body."""
    h = Harness()
    h.send("SessionSetupReq")
    for name in ("ServiceDetailReq", "ChargingStatusReq"):
        h2 = Harness()
        h2.send("SessionSetupReq")
        code, body, reply = h2.send(name)
        assert code == "FAILED_SequenceError" and reply.close
    _, body, _ = Harness().send("ServiceDetailReq", ServiceID=7)
    assert body.ServiceID == 7


def test_not_a_request_closes_without_answer():
    """A message that is no DIN request (a response, an empty body) cannot be answered: close."""
    h = Harness()
    empty = Message("V2G_Message", Header=Message("Header", SessionID=b"\x00"), Body=Message("Body"))
    reply = h.machine.handle(empty)
    assert reply.message is None and reply.close


def test_session_stop_allowed_before_charging():
    """SessionStop is accepted in any state before the charge loop (a car sent it right after CPD)."""
    h = Harness()
    h.run_to("ChargeParameterDiscoveryReq")
    code, _, reply = h.send("SessionStopReq")
    assert code == "OK" and reply.close
    h.machine.finish("done")
    assert h.vars.names()[-1] == "dlink_terminate"


@pytest.mark.parametrize("request_name", ["SessionStopReq", "PowerDeliveryReq", "CableCheckReq"])
def test_sequence_errors_in_the_charge_loop(request_name):
    """
    Inside the charge loop SessionStop, PowerDelivery(ReadyToCharge) again and
    earlier steps are sequence errors: FAILED_SequenceError and close.
    """
    h = Harness()
    h.run_to("CurrentDemandReq")
    code, _, reply = h.send(request_name)
    assert code == "FAILED_SequenceError" and reply.close


def test_payment_and_service_selection_checks():
    """Only ExternalPayment ([V2G-DC-252]) and only the charge service may be selected."""

    h = Harness()
    h.send("SessionSetupReq")
    h.send("ServiceDiscoveryReq")
    code, _, reply = h.send("ServicePaymentSelectionReq", SelectedPaymentOption="Contract")
    assert code == "FAILED_PaymentSelectionInvalid"
    assert not reply.close  # policy: the EV is to send SessionStop
    code, _, _ = h.send("SessionStopReq")
    assert code == "OK"

    h = Harness()
    h.send("SessionSetupReq")
    h.send("ServiceDiscoveryReq")
    services = Message("SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=1), Message("SelectedService", ServiceID=3)])
    code, _, _ = h.send("ServicePaymentSelectionReq", SelectedServiceList=services)
    assert code == "FAILED_ServiceSelectionInvalid"


def test_failed_then_only_stop_path():
    """After a FAILED answer that keeps the connection, a forward request is a sequence error."""
    h = Harness()
    h.send("SessionSetupReq")
    h.send("ServiceDiscoveryReq")
    h.send("ServicePaymentSelectionReq", SelectedPaymentOption="Contract")
    code, _, reply = h.send("ContractAuthenticationReq")
    assert code == "FAILED_SequenceError" and reply.close


def test_terminate_connection_on_failed_response():
    """With terminate_connection_on_failed_response every FAILED answer closes."""
    h = Harness(settings=ProtocolSettings(terminate_connection_on_failed_response=True))
    h.send("SessionSetupReq")
    h.send("ServiceDiscoveryReq")
    _, _, reply = h.send("ServicePaymentSelectionReq", SelectedPaymentOption="Contract")
    assert reply.close and reply.failed


def test_authorization_rejected():
    """authorization_response other than Accepted: FAILED."""
    h = Harness()
    h.run_to("ServicePaymentSelectionReq")
    h.charger.authorization_response("Blocked", "NoCertificateAvailable")
    code, body, _ = h.send("ContractAuthenticationReq")
    assert code == "FAILED"
    h.send("SessionStopReq")
    h.machine.finish("closed")
    assert "hlc_session_failed" not in h.vars.names()  # it ended with SessionStop


def test_auth_timeout_eim():
    """Not authorized within auth_timeout_eim: FAILED at the next ContractAuthenticationReq."""
    h = Harness(settings=ProtocolSettings(auth_timeout_eim=30))
    h.run_to("ServicePaymentSelectionReq")
    h.clock.advance(29)
    code, body, _ = h.send("ContractAuthenticationReq")
    assert body.EVSEProcessing == "Ongoing"
    h.clock.advance(1)
    code, body, _ = h.send("ContractAuthenticationReq")
    assert code == "FAILED"


def test_auth_timeout_zero_waits_for_ever():
    """auth_timeout_eim 0 means wait for ever."""
    h = Harness(settings=ProtocolSettings(auth_timeout_eim=0))
    h.run_to("ServicePaymentSelectionReq")
    h.clock.advance(10_000)
    code, body, _ = h.send("ContractAuthenticationReq")
    assert (code, body.EVSEProcessing) == ("OK", "Ongoing")


def test_wrong_energy_transfer_type_and_ac_parameters():
    """AC requested: FAILED_WrongEnergyTransferType; DC without DC parameters: FAILED_WrongChargeParameter."""
    h = Harness()
    h.run_to("ContractAuthenticationReq")
    code, _, _ = h.send("ChargeParameterDiscoveryReq", EVRequestedEnergyTransferType="AC_three_phase_core")
    assert code == "FAILED_WrongEnergyTransferType"
    h = Harness()
    h.run_to("ContractAuthenticationReq")
    request = din_request("ChargeParameterDiscoveryReq", SID)
    cpd = request.Body.ChargeParameterDiscoveryReq
    cpd.set("DC_EVChargeParameter", None)
    cpd.set("AC_EVChargeParameter", Message("AC_EVChargeParameter", DepartureTime=0))
    reply = h.machine.handle(request)
    assert reply.message.Body.ChargeParameterDiscoveryRes.ResponseCode == "FAILED_WrongChargeParameter"


def test_ev_below_charger_minimum():
    """EV maximum voltage below the charger's minimum: FAILED_WrongChargeParameter with EVSE_Shutdown (IEC 61851-23 CC.5.6)."""
    h = Harness()
    h.run_to("ContractAuthenticationReq")
    parameter = Message(
        "DC_EVChargeParameter",
        DC_EVStatus=din_ev_status(),
        EVMaximumCurrentLimit=physical_value(100, "A", "EVMaximumCurrentLimit"),
        EVMaximumVoltageLimit=physical_value(100, "V", "EVMaximumVoltageLimit"),
    )
    code, body, _ = h.send("ChargeParameterDiscoveryReq", DC_EVChargeParameter=parameter)
    assert code == "FAILED_WrongChargeParameter"
    assert body.DC_EVSEChargeParameter.DC_EVSEStatus.EVSEStatusCode == "EVSE_Shutdown"


def test_parameters_ongoing_without_power_then_timeout():
    """No power offered yet: Ongoing (cars abort on zero power), FAILED after the ongoing limit."""
    h = Harness(settings=ProtocolSettings(timers=Timers(ongoing=10)))
    h.charger.capabilities = None
    h.run_to("ContractAuthenticationReq")
    code, body, _ = h.send("ChargeParameterDiscoveryReq")
    assert (code, body.EVSEProcessing) == ("OK", "Ongoing")
    h.clock.advance(10)
    code, _, _ = h.send("ChargeParameterDiscoveryReq")
    assert code == "FAILED"


def test_cable_check_needs_valid_isolation_and_times_out():
    """CableCheck stays Ongoing until finished and isolation Valid/Warning ([V2G-DC-499]); FAILED after 38 s."""
    h = Harness()
    h.run_to("ChargeParameterDiscoveryReq")
    h.charger.cable_check_finished(True)
    _, body, _ = h.send("CableCheckReq")
    assert body.EVSEProcessing == "Ongoing"
    h.clock.advance(38)
    code, _, _ = h.send("CableCheckReq")
    assert code == "FAILED"


def test_cable_check_isolation_fault():
    """An isolation fault during the cable check: FAILED."""
    h = Harness()
    h.run_to("ChargeParameterDiscoveryReq")
    h.charger.update_isolation_status("Fault")
    code, body, _ = h.send("CableCheckReq")
    assert code == "FAILED"
    assert body.DC_EVSEStatus.EVSEIsolationStatus == "Fault"


def test_negative_target_voltage_is_tolerated():
    """A target voltage below the battery, even negative (Skoda Enyaq), is answered OK and passed on clamped."""
    h = Harness()
    h.run_to("CableCheckReq")
    code, _, _ = h.send("PreChargeReq", EVTargetVoltage=physical_value(-5, "V", "EVTargetVoltage"))
    assert code == "OK"
    assert h.vars.payloads("dc_ev_target_voltage_current")[-1]["dc_ev_target_voltage"] == -2


def test_charger_stop_signals_shutdown_then_fails():
    """
    stop_charging: the status code turns EVSE_Shutdown ([V2G-DC-663]) while
    EVSENotification stays None ([V2G-DC-500]); PowerDelivery(ready) is not
    applied; after the grace time forward requests get FAILED.
    """
    h = Harness()
    h.run_to("CurrentDemandReq")
    h.charger.stop_charging(True)
    code, body, _ = h.send("CurrentDemandReq")
    assert code == "OK"
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_Shutdown"
    assert body.DC_EVSEStatus.EVSENotification == "None"
    h.clock.advance(10)
    code, _, reply = h.send("CurrentDemandReq")
    assert code == "FAILED" and not reply.close
    code, _, _ = h.send("PowerDeliveryReq", ReadyToChargeState=False)
    assert code == "OK"
    h.send("WeldingDetectionReq")
    h.send("SessionStopReq")
    h.machine.finish("closed")
    assert "hlc_session_failed" not in h.vars.names()
    assert h.vars.names()[-1] == "dlink_terminate"


def test_stop_before_power_delivery_means_not_applied():
    """A stop requested during pre-charge: PowerDelivery(ready) gets FAILED_PowerDeliveryNotApplied."""
    h = Harness()
    h.run_to("PreChargeReq")
    h.charger.stop_charging(True)
    code, body, _ = h.send("PowerDeliveryReq")
    assert code == "FAILED_PowerDeliveryNotApplied"
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_Shutdown"


def test_emergency_shutdown_from_the_charger():
    """send_error(Error_EmergencyShutdown): FAILED with EVSE_EmergencyShutdown; the shutdown path still answers."""
    h = Harness()
    h.run_to("CurrentDemandReq")
    h.charger.send_error("Error_EmergencyShutdown")
    code, body, _ = h.send("CurrentDemandReq")
    assert code == "FAILED"
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_EmergencyShutdown"
    code, body, _ = h.send("PowerDeliveryReq", ReadyToChargeState=False)
    assert code == "OK"
    assert body.DC_EVSEStatus.EVSEStatusCode == "EVSE_EmergencyShutdown"
    assert "dc_open_contactor" in h.vars.names()
    code, _, reply = h.send("SessionStopReq")
    assert code == "OK" and reply.close


def test_tariff_selection_invalid():
    """A ChargingProfile naming another SAScheduleTuple: FAILED_TariffSelectionInvalid."""
    h = Harness()
    h.run_to("PreChargeReq")
    profile = Message(
        "ChargingProfile",
        SAScheduleTupleID=2,
        ProfileEntry=[Message("ProfileEntry", ChargingProfileEntryStart=0, ChargingProfileEntryMaxPower=1000)],
    )
    code, _, _ = h.send("PowerDeliveryReq", ChargingProfile=profile)
    assert code == "FAILED_TariffSelectionInvalid"


def test_profile_above_pmax_is_tolerated():
    """Cars send profiles above PMax: logged, not failed."""
    h = Harness()
    h.run_to("PreChargeReq")
    profile = Message(
        "ChargingProfile",
        SAScheduleTupleID=1,
        ProfileEntry=[Message("ProfileEntry", ChargingProfileEntryStart=0, ChargingProfileEntryMaxPower=32767)],
    )
    h.charger.set_powersupply_capabilities(dict(h.charger.capabilities, max_export_power_W=20000))
    code, _, _ = h.send("PowerDeliveryReq", ChargingProfile=profile)
    assert code == "OK"


def test_disconnect_mid_charge_publishes_failure():
    """The EV vanishing during CurrentDemand: current_demand_finished, dc_open_contactor, hlc_session_failed, dlink_error."""
    h = Harness()
    h.run_to("CurrentDemandReq")
    h.vars.clear()
    h.machine.finish("connection lost")
    h.machine.finish("again")  # only once
    assert h.vars.events == [
        ("current_demand_finished", None),
        ("dc_open_contactor", None),
        ("hlc_session_failed", "ChargingInterrupted"),
        ("dlink_error", None),
    ]


@pytest.mark.parametrize(
    "last, reason",
    [("PreChargeReq", "EnergyTransferSetupFailed"), ("PowerDeliveryReq", "EnergyTransferSetupFailed")],
)
def test_session_ending_with_output_on_opens_the_contactor(last, reason):
    """
    A session ending after the cable check started the output but before
    current flowed (during pre-charge, or between PowerDelivery(start) and
    the first CurrentDemand) still opens the contactor, once, before the rest
    of the end; no current_demand_finished since no CurrentDemand ran.
    """
    h = Harness()
    h.run_to(last)
    h.vars.clear()
    h.machine.end_energy_transfer()
    assert h.vars.events == [("dc_open_contactor", None)]
    h.machine.finish("sequence timeout")
    assert h.vars.events == [("dc_open_contactor", None), ("hlc_session_failed", reason), ("dlink_error", None)]


def test_session_ending_before_cable_check_leaves_the_contactor_alone():
    """Before the cable check nothing was switched on: no dc_open_contactor at the end."""
    h = Harness()
    h.run_to("ChargeParameterDiscoveryReq")
    h.vars.clear()
    h.machine.finish("connection lost")
    assert [name for name, _ in h.vars.events] == ["hlc_session_failed", "dlink_error"]


def test_one_byte_session_id_in_session_setup():
    """SessionSetupReq with a 1-byte SessionID (0x00) starts a session with our 8-byte id; a non-MAC EVCCID is tolerated."""
    h = Harness()
    reply = h.machine.handle(din_request("SessionSetupReq", b"\x00", EVCCID=b""))
    assert reply.message.Header.SessionID == SID
    assert reply.message.Body.SessionSetupRes.ResponseCode == "OK_NewSessionEstablished"
    assert h.vars.payloads("evcc_id") == []


def test_failure_reason_by_phase():
    """hlc_session_failed names the phase the session broke in."""
    h = Harness()
    h.run_to("ServicePaymentSelectionReq")
    h.machine.finish("timeout")
    assert h.vars.payloads("hlc_session_failed") == ["AuthorizationFailed"]


def test_din_disabled_for_ac_only_charger():
    """DIN is DC only: an AC-only charger does not offer it."""
    clock = Clock()
    plugin = DIN70121Version()
    charger = dc_charger(clock)
    assert plugin.usable_with(charger)
    charger.update_energy_transfer_modes(["AC_three_phase_core"])
    assert not plugin.usable_with(charger)
    assert State.HANDSHAKEN is not None


@pytest.mark.parametrize("evse_id_din, expected", [("49A80737A45678", bytes.fromhex("49A80737A45678")), ("49*EVS*1", b"\x00"), ("", b"\x00")])
def test_din_evse_id(evse_id_din, expected):
    """The DIN EVSEID is evse_id_din read as hex digits, else the single byte 00 real chargers send."""
    h = Harness()
    h.charger.setup({"evse_id": "DE*TST*E1", "evse_id_din": evse_id_din}, "None", False)
    _, body, _ = h.send("SessionSetupReq")
    assert body.EVSEID == expected
