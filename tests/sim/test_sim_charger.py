"""Tests for :mod:`evsev2g.sim.charger`: the simulated charger on the seam, with a Clock."""

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from evsev2g.charger import Charger
from evsev2g.interfaces import IChargerBackend
from evsev2g.sim.charger import SimulatedCharger, SimulatorSettings


def make(**settings):
    """A simulator backend with ``settings`` serving one session's charger, on a Clock."""
    clock = Clock()
    backend = SimulatedCharger(clock, SimulatorSettings(**settings))
    charger = Charger(clock)
    backend.session_started(charger)
    return clock, backend, charger


def test_backend_interface():
    """SimulatedCharger provides IChargerBackend."""
    assert verifyObject(IChargerBackend, SimulatedCharger(Clock()))


def test_configures_the_charger_like_evse_manager():
    """At session start the charger gets EVSEID, capabilities, limits, modes and dlink_ready."""
    _, _, charger = make(max_current=125)
    assert charger.evse_id["evse_id_din"] == "49A80737A45678"
    assert charger.capabilities["max_export_current_A"] == 125
    assert charger.energy_transfer_modes == ["DC_extended"]
    assert charger.link_ready and charger.isolation_status == "Invalid"


def test_authorizes_after_the_delay():
    """require_auth_eim is answered Accepted after auth_delay."""
    clock, _, charger = make(auth_delay=2)
    charger.publish("require_auth_eim")
    clock.advance(1.9)
    assert charger.authorized is None
    clock.advance(0.1)
    assert charger.authorized is True


def test_cable_check_and_isolation():
    """start_cable_check leads to isolation Valid and cable_check_finished(True)."""
    clock, _, charger = make(cable_check_duration=1.5)
    charger.publish("start_cable_check")
    clock.advance(1.5)
    assert charger.cable_check_ok is True and charger.isolation_status == "Valid"


def test_isolation_fault_fails_the_cable_check():
    """A simulated isolation fault makes the cable check fail."""
    clock, _, charger = make(cable_check_duration=0, isolation_status="Fault")
    charger.publish("start_cable_check")
    assert charger.cable_check_ok is False


def test_follows_target_within_limits_and_meters():
    """The output follows the EV's target with the slew rate, within the limits, and energy is metered."""
    clock, backend, charger = make(voltage_slew_rate=100, current_slew_rate=50, max_current=80, max_power=30000, tick=0.1)
    evse = backend.evses[charger]
    charger.publish("start_pre_charge")
    charger.publish("dc_ev_target_voltage_current", {"dc_ev_target_voltage": 400, "dc_ev_target_current": 2})
    clock.advance(1.0)
    assert charger.dc_present_values["evse_present_voltage"] == pytest.approx(100, abs=1)
    assert charger.dc_present_values["evse_present_current"] <= 2
    clock.pump([0.1] * 40)
    assert charger.dc_present_values["evse_present_voltage"] == 400
    charger.publish("current_demand_started")
    charger.publish("dc_ev_target_voltage_current", {"dc_ev_target_voltage": 400, "dc_ev_target_current": 150})
    clock.pump([0.1] * 30)
    # 150 A asked, 80 A max, 30 kW / 400 V = 75 A
    assert charger.dc_present_values["evse_present_current"] == pytest.approx(75)
    clock.pump([0.1] * 36)
    assert evse.energy_wh > 0
    assert charger.meter_info["energy_Wh_import"]["total"] > 0
    charger.publish("dc_open_contactor")
    clock.pump([0.1] * 100)
    assert charger.dc_present_values == {"evse_present_voltage": 0, "evse_present_current": 0}
    assert not evse._loop.running


def test_sessions_have_separate_evses():
    """Two sessions get two simulated EVSEs; ending one leaves the other alone."""
    clock = Clock()
    backend = SimulatedCharger(clock, SimulatorSettings(auth_delay=1))
    first, second = Charger(clock), Charger(clock)
    backend.session_started(first)
    backend.session_started(second)
    first.publish("require_auth_eim")
    backend.session_ended(first)
    clock.advance(2)
    assert first.authorized is None  # its pending authorization was cancelled
    second.publish("require_auth_eim")
    clock.advance(2)
    assert second.authorized is True
    assert list(backend.evses) == [second]


def test_settings_checked():
    """Inconsistent simulator settings are refused."""
    with pytest.raises(ValueError):
        SimulatorSettings(min_voltage=900, max_voltage=500)
    with pytest.raises(ValueError):
        SimulatorSettings(tick=0)


def test_ac_configures_the_charger_like_evse_manager():
    """mode ac: AC modes, nominal voltage, EVSEMaxCurrent and the AC power limit reach the seam; receipt flag told."""
    _, _, charger = make(mode="ac", ac_nominal_voltage=230, ac_max_current=16, ac_phases=3, receipt_required=True)
    assert charger.energy_transfer_modes == ["AC_single_phase_core", "AC_three_phase_core"]
    assert charger.physical_values["ac_nominal_voltage"] == 230
    assert charger.ac_max_current == 16
    assert charger.ac_maximum_limits["charge_power"]["total"] == 230 * 16 * 3
    assert charger.receipt_required is True and charger.link_ready


def test_ac_contactor_closes_after_the_delay_and_energy_is_metered():
    """ac_close_contactor → ac_contactor_closed(True) after the delay; then 3 × 230 V × min(EVSE, EV) A is metered; open reports False."""
    clock, backend, charger = make(mode="ac", ac_max_current=32, ac_contactor_delay=0.2, meter_interval=1.0, tick=0.1)
    evse = backend.evses[charger]
    charger.publish("ac_ev_max_current", 16)
    charger.publish("ac_close_contactor")
    clock.advance(0.1)
    assert charger.ac_contactor_is_closed is False
    clock.advance(0.1)
    assert charger.ac_contactor_is_closed is True and evse.power == 230 * 16 * 3
    for _ in range(36):
        clock.advance(0.1)
    assert evse.energy_wh == pytest.approx(230 * 16 * 3 * 3.6 / 3600, rel=0.01)
    meter = charger.meter_info
    assert meter["energy_Wh_import"]["total"] == pytest.approx(evse.energy_wh, abs=5)
    assert meter["voltage_V"] == {"L1": 230, "L2": 230, "L3": 230} and meter["current_A"]["L3"] == 16
    charger.publish("ac_open_contactor")
    assert charger.ac_contactor_is_closed is False and evse.power == 0


def test_charger_initiated_pause_and_stop_happen_once_per_backend():
    """pause_after/stop_after fire pause_charging/stop_charging once energy flows, once per backend: a resumed session charges on."""
    clock, backend, charger = make(pause_after=1.0, stop_after=2.0)
    charger.publish("current_demand_started")
    clock.advance(1.0)
    assert charger.pause_requested is True and charger.stop_requested_at is None
    clock.advance(1.0)
    assert charger.stop_requested_at is not None
    backend.session_ended(charger)
    again = Charger(clock)
    backend.session_started(again)
    again.publish("current_demand_started")
    clock.advance(5)
    assert again.pause_requested is False and again.stop_requested_at is None


def test_settings_from_the_configuration():
    """Every simulator.* key reaches SimulatorSettings, ms turned into seconds."""
    from evsev2g.config import load_config

    config = load_config(None, ["simulator.mode=ac", "simulator.ac_contactor_delay_ms=250", "simulator.receipt_required=true",
                                "simulator.pause_after_ms=1500", "simulator.meter_interval_ms=200", "simulator.ac_phases=1"])
    settings = SimulatorSettings.from_config(config.simulator)
    assert (settings.mode, settings.ac_contactor_delay, settings.receipt_required) == ("ac", 0.25, True)
    assert (settings.pause_after, settings.meter_interval, settings.ac_phases, settings.stop_after) == (1.5, 0.2, 1, 0.0)
    assert settings.modes == ("AC_single_phase_core", "AC_three_phase_core")


def test_power_reduction_once_per_backend():
    """reduce_power_after halves the DC maximum power once energy flows (capabilities and limits), once per backend."""
    clock, backend, charger = make(max_power=100000, reduce_power_after=1.0)
    charger.publish("current_demand_started")
    clock.advance(1.0)
    assert charger.capabilities["max_export_power_W"] == 50000
    assert charger.dc_maximum_limits["evse_maximum_power_limit"] == 50000
    again = Charger(clock)
    backend.session_started(again)
    again.publish("current_demand_started")
    clock.advance(2.0)
    assert again.capabilities["max_export_power_W"] == 100000


def test_ac_power_reduction_and_fresh_meter_on_request():
    """AC: reduce_power lowers the maximum power and EVSEMaxCurrent; meter_info_requested gets a fresh reading at once."""
    clock, backend, charger = make(mode="ac", ac_max_current=32, meter_interval=100)
    evse = backend.evses[charger]
    evse.reduce_power(0.5)
    assert charger.ac_max_current == 16 and charger.ac_maximum_limits["charge_power"]["total"] == 230 * 16 * 3
    charger.publish("ac_close_contactor")
    clock.advance(0.2)
    first = charger.meter_info
    clock.advance(1.0)
    assert charger.meter_info is first
    charger.publish("meter_info_requested")
    assert charger.meter_info is not first
    assert charger.meter_info["energy_Wh_import"]["total"] > first["energy_Wh_import"]["total"]
