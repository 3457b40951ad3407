"""
DC response bodies DIN SPEC 70121 and ISO 15118-2 share (their elements
have the same names and, for the codec, order does not matter): the
DC_EVSEStatus, the DC_EVSEChargeParameter and the bodies of CableCheck,
PreCharge, PowerDelivery, CurrentDemand and WeldingDetection.
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.protocols.physical import physical_value

__all__ = ["DCBodies"]


class DCBodies:
    """
    DC body builders bound to one state machine (a
    :class:`~evsev2g.protocols.dc.DCChargeLoop`).
    """

    #: IsolationStatus values the protocol's isolationLevelType can carry.
    isolation_levels = frozenset({"Invalid", "Valid", "Warning", "Fault"})

    #: DC_EVSEStatus children in the schema's order (DIN's here).  The EXI
    #: encoder orders by the schema anyway; the XML of the message log
    #: (``v2g_messages``) follows the built tree, so it must be in order.
    status_order = ("EVSEIsolationStatus", "EVSEStatusCode", "NotificationMaxDelay", "EVSENotification")

    def __init__(self, machine) -> None:
        """:param machine: the state machine (its charger and status logic)."""
        self.machine = machine
        self.charger = machine.charger

    def status(self, normal: str) -> Message:
        """DC_EVSEStatus with the isolation status when known and the machine's notification."""
        isolation = self.charger.isolation_status
        notification, delay = self.machine.notification()
        values = {
            "EVSEIsolationStatus": isolation if isolation in self.isolation_levels else None,
            "EVSEStatusCode": self.machine.status_code(normal),
            "NotificationMaxDelay": delay,
            "EVSENotification": notification,
        }
        return Message("DC_EVSEStatus", [(name, values[name]) for name in self.status_order if values[name] is not None])

    def present_voltage(self) -> Message:
        """EVSEPresentVoltage from ``update_dc_present_values``."""
        return physical_value(self.charger.dc_present_values["evse_present_voltage"], "V", "EVSEPresentVoltage")

    def dc_charge_parameter(self) -> Message:
        """
        DC_EVSEChargeParameter: the charger's DC limits (power supply
        capabilities, nominal values preferred).
        """
        charger = self.charger
        limit = charger.dc_limit
        tolerance = limit("current_regulation_tolerance_A")
        if tolerance is None:
            tolerance = charger.physical_values.get("dc_current_regulation_tolerance")
        ripple = limit("peak_current_ripple_A")
        if ripple is None:
            ripple = charger.physical_values.get("dc_peak_current_ripple", 0)
        energy = charger.physical_values.get("dc_energy_to_be_delivered")
        return Message(
            "DC_EVSEChargeParameter",
            DC_EVSEStatus=self.status("EVSE_Ready"),
            EVSEMaximumCurrentLimit=physical_value(limit("max_export_current_A") or 0, "A", "EVSEMaximumCurrentLimit"),
            EVSEMaximumPowerLimit=physical_value(limit("max_export_power_W") or 0, "W", "EVSEMaximumPowerLimit"),
            EVSEMaximumVoltageLimit=physical_value(limit("max_export_voltage_V") or 0, "V", "EVSEMaximumVoltageLimit"),
            EVSEMinimumCurrentLimit=physical_value(limit("min_export_current_A") or 0, "A", "EVSEMinimumCurrentLimit"),
            EVSEMinimumVoltageLimit=physical_value(limit("min_export_voltage_V") or 0, "V", "EVSEMinimumVoltageLimit"),
            EVSECurrentRegulationTolerance=(
                physical_value(tolerance, "A", "EVSECurrentRegulationTolerance") if tolerance is not None else None
            ),
            EVSEPeakCurrentRipple=physical_value(ripple or 0, "A", "EVSEPeakCurrentRipple"),
            EVSEEnergyToBeDelivered=physical_value(energy, "Wh", "EVSEEnergyToBeDelivered") if energy else None,
        )

    def cable_check(self, code: str, processing: str) -> Message:
        """CableCheckRes: EVSE_IsolationMonitoringActive while Ongoing, EVSE_Ready once Finished."""
        normal = "EVSE_Ready" if processing == "Finished" else "EVSE_IsolationMonitoringActive"
        return Message("CableCheckRes", ResponseCode=code, DC_EVSEStatus=self.status(normal), EVSEProcessing=processing)

    def pre_charge(self, code: str) -> Message:
        """PreChargeRes with the present output voltage."""
        return Message(
            "PreChargeRes", ResponseCode=code, DC_EVSEStatus=self.status("EVSE_Ready"), EVSEPresentVoltage=self.present_voltage()
        )

    def power_delivery(self, code: str, normal: str) -> Message:
        """PowerDeliveryRes with the DC status (the EVSEStatus substitution)."""
        return Message("PowerDeliveryRes", ResponseCode=code, DC_EVSEStatus=self.status(normal))

    def current_demand(self, code: str, target_voltage: float, target_current: float) -> Message:
        """
        CurrentDemandRes: present values, present limits
        (``update_dc_maximum_limits``, else capabilities) and whether the
        EV's target runs into them, plus :meth:`current_demand_extra`.
        """
        charger = self.charger
        present = charger.dc_present_values
        limit = charger.dc_limit
        max_current = limit("max_export_current_A", "evse_maximum_current_limit")
        max_voltage = limit("max_export_voltage_V", "evse_maximum_voltage_limit")
        max_power = limit("max_export_power_W", "evse_maximum_power_limit")
        return Message(
            "CurrentDemandRes",
            ResponseCode=code,
            DC_EVSEStatus=self.status("EVSE_Ready"),
            EVSEPresentVoltage=physical_value(present["evse_present_voltage"], "V", "EVSEPresentVoltage"),
            EVSEPresentCurrent=physical_value(present.get("evse_present_current") or 0, "A", "EVSEPresentCurrent"),
            EVSECurrentLimitAchieved=max_current is not None and target_current >= max_current,
            EVSEVoltageLimitAchieved=max_voltage is not None and target_voltage >= max_voltage,
            EVSEPowerLimitAchieved=max_power is not None and target_voltage * target_current >= max_power,
            EVSEMaximumVoltageLimit=physical_value(max_voltage, "V", "EVSEMaximumVoltageLimit") if max_voltage is not None else None,
            EVSEMaximumCurrentLimit=physical_value(max_current, "A", "EVSEMaximumCurrentLimit") if max_current is not None else None,
            EVSEMaximumPowerLimit=physical_value(max_power, "W", "EVSEMaximumPowerLimit") if max_power is not None else None,
            **self.current_demand_extra(),
        )

    def current_demand_extra(self) -> dict:
        """Elements a protocol adds to CurrentDemandRes (none in DIN)."""
        return {}

    def welding_detection(self, code: str) -> Message:
        """WeldingDetectionRes with the present output voltage."""
        return Message(
            "WeldingDetectionRes",
            ResponseCode=code,
            DC_EVSEStatus=self.status("EVSE_Shutdown"),
            EVSEPresentVoltage=self.present_voltage(),
        )
