"""
The DC part DIN SPEC 70121 and ISO 15118-2 share: cable check, pre-charge,
power delivery on and off, the CurrentDemand loop, welding detection, the
DC_EVSEStatus code and the vars EvseV2G publishes from the EV's DC values.

:class:`DCChargeLoop` is mixed into a
:class:`~evsev2g.protocols.base.SequenceStateMachine` whose ``State`` has
the members named below (``CABLE_CHECKING`` …) and whose ``bodies`` is a
:class:`~evsev2g.protocols.dc_bodies.DCBodies`.  Numbers the EV sends are
clamped into the range of the var they go out in, as
:mod:`evsev2g.charger_types` declares it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from evsev2g.protocols.base import OngoingWait
from evsev2g.protocols.physical import clamp_to_var, to_number
from evsev2g.responses import CableCheckFailed, OngoingTimeout, PowerDeliveryNotApplied, SequenceError, WrongChargeParameter

__all__ = ["DCChargeLoop", "ISOLATION_OK"]

#: Isolation results that let the cable check finish ([V2G-DC-499]).
ISOLATION_OK = frozenset({"Valid", "Warning"})


class DCChargeLoop:
    """
    DC handlers and var publishers (a mixin; see the module docstring).

    :cvar isolation_ok: isolation results that let the cable check finish.

    :ivar energy_flowing: CurrentDemand started and no PowerDelivery stop yet.
    :ivar output_engaged: the charger's DC output may be on: cable check
        started and no ``dc_open_contactor`` since.
    """

    isolation_ok = ISOLATION_OK

    def init_dc(self) -> None:
        """Set up the DC state; called from the machine's ``__init__``."""
        self.energy_flowing = False
        self.output_engaged = False
        self.incompatible = False
        self._pre_charge_late_logged = False
        self.parameters_wait = OngoingWait(self.clock, OngoingTimeout, "the charger offering power (V2G_SECC_Ongoing_Performance_Time)")
        self.cable_check_wait = OngoingWait(self.clock, OngoingTimeout, "the cable check (V2G_SECC_CableCheck_Performance_Time)")
        self.pre_charge_wait = OngoingWait(self.clock, OngoingTimeout, "pre-charge")

    # -- status --------------------------------------------------------------

    def status_code(self, normal: str) -> str:
        """
        DC_EVSEStatusCode for a response: ``normal`` unless the charger
        reports an error or asks to stop ([V2G-DC-663]; the EV then ends the
        session), or the EV cannot charge here (IEC 61851-23 CC.5.6).

        :param normal: the code of the phase (EVSE_Ready …).
        :returns: the DC_EVSEStatusCodeType string.
        """
        errors = self.charger.errors
        if errors:
            if "Error_EmergencyShutdown" in errors:
                return "EVSE_EmergencyShutdown"
            if "Error_Malfunction" in errors:
                return "EVSE_Malfunction"
            if "Error_UtilityInterruptEvent" in errors:
                return "EVSE_UtilityInterruptEvent"
        if self.charger_asks_to_stop() or self.incompatible:
            return "EVSE_Shutdown"
        return normal

    def charger_asks_to_stop(self) -> bool:
        """The charger wants the energy transfer to end (``stop_charging``)."""
        return self.charger.stop_requested_at is not None

    # -- ChargeParameterDiscovery --------------------------------------------

    def dc_charge_parameters(self, parameter) -> bool:
        """
        The DC part of ChargeParameterDiscovery: publish the EV's values,
        refuse an EV whose maximum is below the charger's minimum (IEC
        61851-23 CC.5.6), and wait (Ongoing, bounded by
        V2G_SECC_Ongoing_Performance_Time) while the charger offers no power
        (cars abort on zero power).

        :param parameter: the request's DC_EVChargeParameter.
        :returns: ``True`` when Finished, ``False`` for Ongoing.
        :raises WrongChargeParameter: the EV cannot charge here.
        :raises OngoingTimeout: no power offered in time.
        """
        charger = self.charger
        self.publish_ev_status(parameter.DC_EVStatus)
        ev_current = to_number(parameter.EVMaximumCurrentLimit)
        ev_voltage = to_number(parameter.EVMaximumVoltageLimit)
        self.publish_ev_maximum_limits(ev_current, to_number(parameter.get("EVMaximumPowerLimit")), ev_voltage)
        for element, var in (("EVEnergyCapacity", "dc_ev_energy_capacity"), ("EVEnergyRequest", "dc_ev_energy_request")):
            value = to_number(parameter.get(element))
            if value is not None:
                charger.publish_on_change(var, clamp_to_var(var, value))
        for element, var in (("FullSOC", "dc_full_soc"), ("BulkSOC", "dc_bulk_soc")):
            value = parameter.get(element)
            if value is not None:
                charger.publish_on_change(var, clamp_to_var(var, value))
        min_current = charger.dc_limit("min_export_current_A", "evse_minimum_current_limit", "min")
        min_voltage = charger.dc_limit("min_export_voltage_V", "evse_minimum_voltage_limit", "min")
        if (min_current is not None and ev_current < min_current) or (min_voltage is not None and ev_voltage < min_voltage):
            self.incompatible = True
            raise WrongChargeParameter(
                f"EV maximum {ev_voltage:g} V / {ev_current:g} A is below the charger minimum {min_voltage} V / {min_current} A"
            )
        max_power = charger.dc_limit("max_export_power_W", "evse_maximum_power_limit")
        max_current = charger.dc_limit("max_export_current_A", "evse_maximum_current_limit")
        offered = bool(max_power and max_current and max_power > 0 and max_current > 0)
        return self.parameters_wait.poll(offered, self.settings.timers.ongoing)

    # -- handlers: each returns (response body, close) -----------------------

    def _cable_check(self, body):
        """
        ``start_cable_check`` on the first request; Finished once
        ``cable_check_finished(True)`` arrived and the isolation is Valid or
        Warning ([V2G-DC-499]; :attr:`isolation_ok`); FAILED on an isolation fault or after
        V2G_SECC_CableCheck_Performance_Time ([V2G2-700]…[V2G2-703]).
        """
        charger = self.charger
        self.publish_ev_status(body.DC_EVStatus)
        if self.cable_check_wait.begin():
            charger.publish("start_cable_check")
            self.output_engaged = True
        isolation = charger.isolation_status
        if isolation == "Fault":
            raise CableCheckFailed("the isolation monitor reports a fault")
        if self.cable_check_wait.poll(bool(charger.cable_check_ok) and isolation in self.isolation_ok, self.settings.timers.cable_check):
            self.state = self.State.CABLE_CHECKED
            return self.bodies.cable_check("OK", "Finished"), False
        self.state = self.State.CABLE_CHECKING
        return self.bodies.cable_check("OK", "Ongoing"), False

    def _pre_charge(self, body):
        """``start_pre_charge`` on the first request; the EV's target is passed on ([V2G2-704]…[V2G2-707])."""
        if self.pre_charge_wait.begin():
            self.charger.publish("start_pre_charge")
        elif not self._pre_charge_late_logged and self.pre_charge_wait.late(self.settings.timers.pre_charge):
            self._pre_charge_late_logged = True
            self.log.warn(
                "{session}: pre-charge longer than V2G_SECC_PreCharge_Performance_Time; the EV may give up",
                session=self.context.label,
            )
        self.publish_ev_status(body.DC_EVStatus)
        self.publish_target(body)
        self.state = self.State.PRE_CHARGING
        return self.bodies.pre_charge("OK"), False

    def dc_start_power(self) -> None:
        """
        PowerDelivery start in DC: ``v2g_setup_finished`` (once); refused
        with FAILED_PowerDeliveryNotApplied unless the charger is EVSE_Ready
        ([V2G2-480]).
        """
        if self.state is not self.State.PRE_CHARGING:
            raise SequenceError(f"PowerDelivery start {self.state.value}")
        self.publish_setup_finished()
        status = self.status_code("EVSE_Ready")
        if status != "EVSE_Ready":
            raise PowerDeliveryNotApplied(f"charger status is {status}")
        self.state = self.State.POWER_DELIVERY_STARTED

    def dc_stop_power(self) -> None:
        """PowerDelivery stop in DC: ``current_demand_finished`` (if charging) and ``dc_open_contactor``."""
        if self.energy_flowing:
            self.energy_flowing = False
            self.charger.publish("current_demand_finished")
        self.output_engaged = False
        self.charger.publish("dc_open_contactor")
        self.state = self.State.POWER_DELIVERY_STOPPED

    def _current_demand(self, body):
        """
        ``current_demand_started`` on the first request; the EV's values are
        published on change; the answer carries the present values and the
        present limits.  Nothing here waits: it is answered from cached
        values (V2G_SECC_CurrentDemand_Performance_Time 25 ms).
        """
        charger = self.charger
        if self.state is self.State.POWER_DELIVERY_STARTED:
            self.energy_flowing = True
            charger.publish("current_demand_started")
        self.publish_ev_status(body.DC_EVStatus)
        target_voltage, target_current = self.publish_target(body)
        maximum = [to_number(body.get(name)) for name in ("EVMaximumCurrentLimit", "EVMaximumPowerLimit", "EVMaximumVoltageLimit")]
        if any(value is not None for value in maximum):
            self.publish_ev_maximum_limits(*maximum)
        bulk = body.get("BulkChargingComplete")
        if bulk is not None:
            charger.publish_on_change("dc_bulk_charging_complete", bulk)
        charger.publish_on_change("dc_charging_complete", body.ChargingComplete)
        self.publish_remaining_time(body)
        self.state = self.State.CHARGING
        return self.bodies.current_demand("OK", target_voltage, target_current), False

    def _welding_detection(self, body):
        """Publishes the EV status and answers the present voltage."""
        self.publish_ev_status(body.DC_EVStatus)
        self.state = self.State.POWER_DELIVERY_STOPPED
        return self.bodies.welding_detection("OK"), False

    # -- vars ----------------------------------------------------------------

    def publish_ev_status(self, status) -> None:
        """``dc_ev_status`` on change."""
        payload = {
            "dc_ev_ready": status.EVReady,
            "dc_ev_error_code": status.EVErrorCode,
            "dc_ev_ress_soc": clamp_to_var("dc_ev_status", status.EVRESSSOC, "dc_ev_ress_soc"),
        }
        for element, key in (("EVCabinConditioning", "dc_ev_cabin_conditioning"), ("EVRESSConditioning", "dc_ev_ress_conditioning")):
            value = status.get(element)
            if value is not None:
                payload[key] = value
        self.charger.publish_on_change("dc_ev_status", payload)

    def publish_target(self, body) -> tuple[float, float]:
        """``dc_ev_target_voltage_current`` on change; :returns: (voltage, current) as sent."""
        voltage = to_number(body.EVTargetVoltage)
        current = to_number(body.EVTargetCurrent)
        # Cars send targets below the battery voltage, even negative, early on
        # (Skoda Enyaq): passed on, clamped only to the var's range.
        var = "dc_ev_target_voltage_current"
        self.charger.publish_on_change(
            var,
            {
                "dc_ev_target_voltage": clamp_to_var(var, voltage, "dc_ev_target_voltage"),
                "dc_ev_target_current": clamp_to_var(var, current, "dc_ev_target_current"),
            },
        )
        return voltage, current

    def publish_ev_maximum_limits(self, current, power, voltage) -> None:
        """``dc_ev_maximum_limits`` on change, with the values the EV sent."""
        var = "dc_ev_maximum_limits"
        payload = {}
        for key, value in (
            ("dc_ev_maximum_current_limit", current),
            ("dc_ev_maximum_power_limit", power),
            ("dc_ev_maximum_voltage_limit", voltage),
        ):
            if value is not None:
                payload[key] = clamp_to_var(var, value, key)
        self.charger.publish_on_change(var, payload)

    def publish_remaining_time(self, body) -> None:
        """``dc_ev_remaining_time`` as absolute UTC times (EvseV2G's conversion)."""
        payload = {}
        now = self.clock.seconds()
        for element, key in (
            ("RemainingTimeToFullSoC", "ev_remaining_time_to_full_soc"),
            ("RemainingTimeToBulkSoC", "ev_remaining_time_to_full_bulk_soc"),
        ):
            seconds = to_number(body.get(element))
            if seconds is not None:
                payload[key] = utc_timestamp(now + seconds)
        if payload:
            self.charger.publish_on_change("dc_ev_remaining_time", payload)

    # -- end -----------------------------------------------------------------

    def end_energy_transfer(self) -> None:
        """
        The session is ending: publish ``current_demand_finished`` if energy
        is flowing and ``dc_open_contactor`` if the output may be on (from the
        cable check on), now, not after the connection's orderly close, which
        may still take seconds.
        """
        if self.energy_flowing:
            self.energy_flowing = False
            self.charger.publish("current_demand_finished")
        if self.output_engaged:
            self.output_engaged = False
            self.charger.publish("dc_open_contactor")


def utc_timestamp(seconds: float) -> str:
    """RFC 3339 UTC time (whole seconds, ``Z``) of a clock time, never before the epoch."""
    when = datetime.fromtimestamp(max(0.0, seconds), timezone.utc).replace(microsecond=0)
    return when.isoformat().replace("+00:00", "Z")
