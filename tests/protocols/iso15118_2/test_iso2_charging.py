"""
Tests of ISO 15118-2 ChargeParameterDiscovery, AC and DC PowerDelivery,
ChargingStatus, MeteringReceipt, renegotiation (both ways) and the
charger-initiated stop, pause and no-energy pause.
"""

import pytest

from evsev2g.exi.message import Message
from evsev2g.protocols.context import ProtocolSettings
from evsev2g.protocols.iso15118_2 import State
from evsev2g.protocols.physical import physical_value, to_number
from evsev2g.testing_iso2 import ISO2_AC_SESSION, ISO2_DC_SESSION
from evsev2g.timers import AC_CONTACTOR_CLOSE_TIME, NO_ENERGY_PAUSE_NOTIFICATION_DELAY, Timers
from tests.protocols.iso15118_2.harness import Harness

TO_PARAMETERS = ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq", "AuthorizationReq"]


def test_requested_mode_must_be_offered():
    """An energy mode the charger did not offer: FAILED_WrongEnergyTransferMode ([V2G2-476])."""
    h = Harness(dc=False)
    h.run(TO_PARAMETERS)
    code, _, _ = h.send("ChargeParameterDiscoveryReq", RequestedEnergyTransferMode="DC_core")
    assert code == "FAILED_WrongEnergyTransferMode"


def test_parameters_must_match_the_mode():
    """DC requested with AC parameters: FAILED_WrongChargeParameter ([V2G2-477])."""
    h = Harness()
    h.run(TO_PARAMETERS)
    ac = Harness(dc=False).request("ChargeParameterDiscoveryReq").Body.ChargeParameterDiscoveryReq.AC_EVChargeParameter
    request = h.request("ChargeParameterDiscoveryReq")
    body = request.Body.ChargeParameterDiscoveryReq
    body.children = [(name, value) for name, value in body.children if name != "DC_EVChargeParameter"] + [("AC_EVChargeParameter", ac)]
    code, _, _ = h.unpack(h.machine.handle(request))
    assert code == "FAILED_WrongChargeParameter"


def test_negative_ev_values_refused_unless_v2h():
    """A negative EVMaxCurrent: FAILED_WrongChargeParameter, except with SAE J2847/2 V2H set up (EvseV2G)."""
    for mode, expected in (("None", "FAILED_WrongChargeParameter"), ("V2H", "OK")):
        h = Harness(dc=False, setup={"evse_id": {"evse_id": "DE*TST*E1"}, "sae_j2847_mode": mode, "debug_mode": False})
        h.run(TO_PARAMETERS)
        request = h.request("ChargeParameterDiscoveryReq")
        request.Body.ChargeParameterDiscoveryReq.AC_EVChargeParameter.set("EVMaxCurrent", physical_value(-16, "A", "EVMaxCurrent"))
        assert h.unpack(h.machine.handle(request))[0] == expected


def test_dc_ev_below_charger_minimum():
    """EV maximum voltage below the charger minimum: FAILED_WrongChargeParameter, status EVSE_Shutdown (IEC 61851-23 CC.5.6)."""
    h = Harness()
    h.run(TO_PARAMETERS)
    request = h.request("ChargeParameterDiscoveryReq")
    request.Body.ChargeParameterDiscoveryReq.DC_EVChargeParameter.set(
        "EVMaximumVoltageLimit", physical_value(100, "V", "EVMaximumVoltageLimit")
    )
    code, body, _ = h.unpack(h.machine.handle(request))
    assert code == "FAILED_WrongChargeParameter"
    assert body.DC_EVSEChargeParameter.DC_EVSEStatus.EVSEStatusCode == "EVSE_Shutdown"


def test_ac_parameters_ongoing_until_the_charger_has_limits():
    """No nominal voltage yet: Ongoing, then Finished with the schedule; FAILED after the ongoing limit."""
    h = Harness(dc=False, settings=ProtocolSettings(timers=Timers(ongoing=10)))
    h.charger.set_charging_parameters({})
    h.run(TO_PARAMETERS)
    code, body, _ = h.send("ChargeParameterDiscoveryReq")
    assert (code, body.EVSEProcessing, body.get("SAScheduleList")) == ("OK", "Ongoing", None)
    h.charger.set_charging_parameters({"ac_nominal_voltage": 230})
    _, body, _ = h.send("ChargeParameterDiscoveryReq")
    assert body.EVSEProcessing == "Finished" and body.SAScheduleList is not None
    h = Harness(dc=False, settings=ProtocolSettings(timers=Timers(ongoing=10)))
    h.charger.set_charging_parameters({})
    h.run(TO_PARAMETERS)
    h.send("ChargeParameterDiscoveryReq")
    h.clock.advance(10)
    assert h.send("ChargeParameterDiscoveryReq")[0] == "FAILED"


def test_ac_contactor_wait_closes_later():
    """PowerDelivery(Start) publishes ac_close_contactor and answers once ac_contactor_closed(true) arrives."""
    h = Harness(dc=False)
    h.run(ISO2_AC_SESSION[:5])
    answers = []
    h.send_deferred("PowerDeliveryReq").addCallback(answers.append)
    assert answers == [] and "ac_close_contactor" in h.vars.names()
    h.clock.advance(1)
    h.charger.ac_contactor_closed(False)
    assert answers == []
    h.charger.ac_contactor_closed(True)
    assert answers[0][0] == "OK" and h.machine.state is State.POWER_DELIVERY_STARTED
    assert not h.clock.getDelayedCalls()


def test_ac_contactor_not_closed_in_time():
    """No ac_contactor_closed(true) within 3 s: FAILED_ContactorError ([V2G2-860]); contactor opened at the end."""
    h = Harness(dc=False)
    h.run(ISO2_AC_SESSION[:5])
    answers = []
    h.send_deferred("PowerDeliveryReq").addCallback(answers.append)
    h.clock.advance(AC_CONTACTOR_CLOSE_TIME)
    assert answers[0][0] == "FAILED_ContactorError" and h.machine.state is State.FAILED
    code, _, reply = h.send("SessionStopReq")
    assert code == "OK" and reply.close
    assert "ac_open_contactor" in h.vars.names()


def test_charging_status_meter_info_once_per_update():
    """MeterInfo in the next ChargingStatusRes only, then meter_info_requested; ReceiptRequired false for EIM ([V2G2-691])."""
    h = Harness(dc=False)
    h.charger.receipt_is_required(True)
    h.run(ISO2_AC_SESSION[:6])
    h.charger.update_meter_info({"timestamp": "2026-12-05T08:00:00Z", "energy_Wh_import": {"total": 1500.4}, "meter_id": "M1"})
    _, body, _ = h.send("ChargingStatusReq")
    assert (body.MeterInfo.MeterID, body.MeterInfo.MeterReading) == ("M1", 1500) and body.ReceiptRequired is False
    assert body.EVSEMaxCurrent.Value * 10 ** body.EVSEMaxCurrent.Multiplier == 32
    _, body, _ = h.send("ChargingStatusReq")
    assert body.get("MeterInfo") is None
    assert h.vars.names().count("meter_info_requested") == 2  # loop start, after the MeterInfo went out
    code, body, _ = h.send("MeteringReceiptReq")
    assert code == "OK" and body.AC_EVSEStatus.RCD is False


def test_dc_start_only_after_pre_charge_and_with_the_offered_tuple():
    """PowerDelivery(Start) elsewhere: FAILED_SequenceError; another SAScheduleTupleID: FAILED_TariffSelectionInvalid."""
    h = Harness()
    h.run(ISO2_DC_SESSION[:6])
    assert h.send("PowerDeliveryReq")[0] == "FAILED_SequenceError"
    h = Harness()
    h.run(ISO2_DC_SESSION[:7])
    assert h.send("PowerDeliveryReq", SAScheduleTupleID=2)[0] == "FAILED_TariffSelectionInvalid"


def test_dc_start_refused_while_charger_not_ready():
    """A stop requested during pre-charge: PowerDelivery(Start) gets FAILED_PowerDeliveryNotApplied ([V2G2-480])."""
    h = Harness()
    h.run(ISO2_DC_SESSION[:7])
    h.charger.stop_charging(True)
    assert h.send("PowerDeliveryReq")[0] == "FAILED_PowerDeliveryNotApplied"


@pytest.mark.parametrize("dc", [False, True], ids=["AC", "DC"])
def test_ev_renegotiates(dc):
    """PowerDelivery(Renegotiate) from the loop goes back to CPD; DC then repeats cable check and pre-charge."""
    h = Harness(dc=dc)
    steps = ISO2_DC_SESSION[:9] if dc else ISO2_AC_SESSION[:7]
    h.run(steps)
    code, _, _ = h.send("PowerDeliveryReq", ChargeProgress="Renegotiate")
    assert code == "OK" and h.machine.state is State.RENEGOTIATING
    assert h.send("ChargingStatusReq" if not dc else "CurrentDemandReq")[0] == "FAILED_SequenceError"
    h = Harness(dc=dc)
    h.run(steps)
    h.send("PowerDeliveryReq", ChargeProgress="Renegotiate")
    if dc:
        assert h.vars.names()[-2:] == ["current_demand_finished", "dc_open_contactor"]
        h.run(["ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq"])
        assert h.vars.names().count("start_cable_check") == 2
    else:
        h.run(["ChargeParameterDiscoveryReq", "PowerDeliveryReq", "ChargingStatusReq"])


def test_renegotiate_outside_the_loop_is_a_sequence_error():
    """Renegotiate not coming from the charge loop: FAILED_SequenceError ([V2G2-812])."""
    h = Harness()
    h.run(ISO2_DC_SESSION[:7])
    assert h.send("PowerDeliveryReq", ChargeProgress="Renegotiate")[0] == "FAILED_SequenceError"


def test_charger_asks_to_renegotiate_when_its_power_changes():
    """New power-supply capabilities during charging: EVSENotification=ReNegotiation until the EV renegotiates."""
    h = Harness()
    h.run(ISO2_DC_SESSION[:9])
    assert h.bodies[-1].DC_EVSEStatus.EVSENotification == "None"
    capabilities = dict(h.charger.capabilities, max_export_power_W=50000)
    h.charger.set_powersupply_capabilities(capabilities)
    _, body, _ = h.send("CurrentDemandReq")
    assert body.DC_EVSEStatus.EVSENotification == "ReNegotiation"
    h.send("PowerDeliveryReq", ChargeProgress="Renegotiate")
    h.run(["ChargeParameterDiscoveryReq"])
    [tuple_] = h.bodies[-1].SAScheduleList.SAScheduleTuple
    assert to_number(tuple_.PMaxSchedule.PMaxScheduleEntry[0].PMax) == 50000
    h.run(["CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq"])
    assert h.bodies[-1].DC_EVSEStatus.EVSENotification == "None"


@pytest.mark.parametrize("command", ["stop_charging", "pause_charging"])
def test_charger_initiated_stop_or_pause(command):
    """
    stop_charging / pause_charging: StopCharging with the grace time as
    NotificationMaxDelay and EVSE_Shutdown; the EV stops and ends or pauses
    the session; an EV that keeps charging past the delay gets FAILED.
    """
    h = Harness()
    h.run(ISO2_DC_SESSION[:9])
    getattr(h.charger, command)(True)
    _, body, _ = h.send("CurrentDemandReq")
    status = body.DC_EVSEStatus
    assert (status.EVSENotification, status.NotificationMaxDelay, status.EVSEStatusCode) == ("StopCharging", 10, "EVSE_Shutdown")
    h.run(["PowerDeliveryReq:Stop", "WeldingDetectionReq", "SessionStopReq:Pause"])
    h.machine.finish("test")
    assert "dlink_pause" in h.vars.names() and "hlc_session_failed" not in h.vars.names()
    h = Harness(dc=False)
    h.run(ISO2_AC_SESSION[:7])
    getattr(h.charger, command)(True)
    _, body, _ = h.send("ChargingStatusReq")
    assert body.AC_EVSEStatus.EVSENotification == "StopCharging"
    h.clock.advance(10)
    code, _, _ = h.send("ChargingStatusReq")
    assert code == "FAILED"


def test_no_energy_pause_before_and_after_pre_charge():
    """
    no_energy_pause_charging: StopCharging (0 s before the cable check,
    300 s after pre-charge), a 30-minute schedule, and PowerDelivery(Start)
    refused with the contactor opened (IEC 61851-23:2023 CC.3.5).
    """
    h = Harness(no_energy_pause_charging={"mode": "PauseAfterPrecharge"})
    h.run(ISO2_DC_SESSION[:5])
    body = h.bodies[-1]
    status = body.DC_EVSEChargeParameter.DC_EVSEStatus
    assert (status.EVSENotification, status.NotificationMaxDelay) == ("StopCharging", NO_ENERGY_PAUSE_NOTIFICATION_DELAY)
    assert body.SAScheduleList.SAScheduleTuple[0].PMaxSchedule.PMaxScheduleEntry[0].RelativeTimeInterval.duration == 1800
    h.run(["CableCheckReq", "PreChargeReq"])
    assert h.send("PowerDeliveryReq")[0] == "FAILED_PowerDeliveryNotApplied"
    assert h.vars.names()[-1] == "dc_open_contactor"
    h = Harness(no_energy_pause_charging={"mode": "PauseBeforeCableCheck"})
    h.run(ISO2_DC_SESSION[:5])
    assert h.bodies[-1].DC_EVSEChargeParameter.DC_EVSEStatus.NotificationMaxDelay == 0
    h = Harness(no_energy_pause_charging={"mode": "AllowEvToIgnorePause"})
    h.run(ISO2_DC_SESSION[:9])


def test_emergency_shutdown_lets_the_ev_stop():
    """Emergency shutdown: FAILED with EVSE_EmergencyShutdown; PowerDelivery(Stop) and SessionStop still answered."""
    h = Harness()
    h.run(ISO2_DC_SESSION[:9])
    h.charger.send_error("Error_EmergencyShutdown")
    code, body, _ = h.send("CurrentDemandReq")
    assert code == "FAILED" and body.DC_EVSEStatus.EVSEStatusCode == "EVSE_EmergencyShutdown"
    assert [name for name, _ in body.children] == ["ResponseCode", "DC_EVSEStatus", "EVSEPresentVoltage", "EVSEPresentCurrent",
                                                   "EVSECurrentLimitAchieved", "EVSEVoltageLimitAchieved", "EVSEPowerLimitAchieved",
                                                   "EVSEID", "SAScheduleTupleID"]
    h.run(["PowerDeliveryReq:Stop", "SessionStopReq"])


def test_cable_check_with_no_imd():
    """ISO-2's isolation status No_IMD lets the cable check finish once the charger says it is done."""
    h = Harness()
    h.run(ISO2_DC_SESSION[:5])
    h.charger.update_isolation_status("No_IMD")
    _, body, _ = h.send("CableCheckReq")
    assert body.EVSEProcessing == "Ongoing"
    h.charger.cable_check_finished(True)
    _, body, _ = h.send("CableCheckReq")
    assert body.EVSEProcessing == "Finished" and body.DC_EVSEStatus.EVSEIsolationStatus == "No_IMD"


def test_rcd_error_in_ac_status():
    """send_error(Error_RCD) sets RCD in AC_EVSEStatus."""
    h = Harness(dc=False)
    h.run(ISO2_AC_SESSION[:7])
    h.charger.send_error("Error_RCD")
    _, body, _ = h.send("ChargingStatusReq")
    assert body.AC_EVSEStatus.RCD is True


def test_ev_values_are_clamped_to_the_var_ranges():
    """An EAmount beyond the ac_eamount range is published clamped (charger_types declares the range)."""
    h = Harness(dc=False)
    h.run(TO_PARAMETERS)
    request = h.request("ChargeParameterDiscoveryReq")
    request.Body.ChargeParameterDiscoveryReq.AC_EVChargeParameter.set("EAmount", Message("EAmount", Multiplier=3, Unit="Wh", Value=30000))
    h.unpack(h.machine.handle(request))
    assert h.vars.payloads("ac_eamount") == [200000]
