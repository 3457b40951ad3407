"""
ISO 15118-2 response bodies, built from the charger seam's values.

The DC bodies are :class:`~evsev2g.protocols.dc_bodies.DCBodies`' (ISO-2
adds EVSEID, SAScheduleTupleID, MeterInfo and ReceiptRequired to
CurrentDemandRes).  FAILED answers carry the schema's minimum content
(:func:`~evsev2g.protocols.minimal.minimal_body`, [V2G2-736]) with the
present EVSE status.
"""

from __future__ import annotations

from datetime import datetime

from evsev2g.exi.message import Message
from evsev2g.protocols.dc_bodies import DCBodies
from evsev2g.protocols.minimal import minimal_body
from evsev2g.protocols.physical import physical_value

__all__ = ["ISO2Bodies", "NO_EVSE_ID", "SA_SCHEDULE_DURATION", "NO_ENERGY_PAUSE_SCHEDULE_DURATION"]

#: EVSEID sent when ``setup`` gave none that fits evseIDType (7–37
#: characters): the standard's "no ID" value.
NO_EVSE_ID = "ZZ00000"

#: Duration of the single PMaxSchedule entry offered when the EV names no
#: departure time, in s (24 h, as EvseV2G).
SA_SCHEDULE_DURATION = 86400

#: The schedule while a no-energy pause is pending (EvseV2G: 30 min).
NO_ENERGY_PAUSE_SCHEDULE_DURATION = 1800

#: The one SAScheduleTuple offered.
SA_SCHEDULE_TUPLE_ID = 1


class ISO2Bodies(DCBodies):
    """Response-body builders bound to one ISO 15118-2 state machine."""

    #: ISO-2's isolationLevelType also has No_IMD.
    isolation_levels = frozenset({"Invalid", "Valid", "Warning", "Fault", "No_IMD"})

    #: ISO-2's DC_EVSEStatus extends EVSEStatusType: its fields come first.
    status_order = ("NotificationMaxDelay", "EVSENotification", "EVSEIsolationStatus", "EVSEStatusCode")

    # -- shared pieces -----------------------------------------------------

    def evse_id(self) -> str:
        """``setup``'s ``evse_id`` (7–37 characters), else :data:`NO_EVSE_ID`."""
        evse_id = ((self.charger.evse_id or {}).get("evse_id") or "").strip()
        return evse_id if 7 <= len(evse_id) <= 37 else NO_EVSE_ID

    def ac_status(self) -> Message:
        """AC_EVSEStatus: the notification and the RCD flag (``send_error(Error_RCD)``)."""
        notification, delay = self.machine.notification()
        return Message(
            "AC_EVSEStatus",
            NotificationMaxDelay=delay,
            EVSENotification=notification,
            RCD="Error_RCD" in self.charger.errors,
        )

    def evse_status(self) -> dict:
        """The EVSEStatus substitution of the session's kind, as keyword arguments."""
        if self.machine.dc:
            return {"DC_EVSEStatus": self.status("EVSE_Ready")}
        return {"AC_EVSEStatus": self.ac_status()}

    def meter_info(self) -> Message | None:
        """
        MeterInfo from ``update_meter_info``, once per update (EvseV2G);
        ``None`` when nothing new arrived.
        """
        meter = self.machine.fresh_meter_info()
        if meter is None:
            return None
        try:
            stamp = int(datetime.fromisoformat(meter["timestamp"].replace("Z", "+00:00")).timestamp())
        except (ValueError, AttributeError):
            stamp = None
        return Message(
            "MeterInfo",
            MeterID=(meter.get("meter_id") or "")[:32],
            MeterReading=max(0, int(meter["energy_Wh_import"]["total"])),
            TMeter=stamp,
        )

    def receipt_required(self) -> bool:
        """ReceiptRequired: ``receipt_is_required`` with Contract payment only, false for EIM ([V2G2-691])."""
        return bool(self.charger.receipt_required) and self.machine.payment_option == "Contract"

    # -- per message -------------------------------------------------------

    def failed(self, response_name: str, code: str, request_body) -> Message:
        """
        A FAILED body: the schema's minimum content ([V2G2-736]), with the
        present EVSE status and the ServiceID the EV asked for.
        """
        fill = {"ResponseCode": code, "EVSEID": self.evse_id(), "SAScheduleTupleID": SA_SCHEDULE_TUPLE_ID}
        if self.machine.dc:
            fill["DC_EVSEStatus"] = self.status("EVSE_NotReady")
        else:
            fill["AC_EVSEStatus"] = self.ac_status()
        service_id = request_body.get("ServiceID") if request_body is not None else None
        if service_id is not None:
            fill["ServiceID"] = service_id
        return minimal_body("iso15118-2", response_name, fill, "DC_" if self.machine.dc else "AC_")

    def session_setup(self, code: str) -> Message:
        """SessionSetupRes with the EVSEID and the time."""
        return Message(
            "SessionSetupRes", ResponseCode=code, EVSEID=self.evse_id(), EVSETimeStamp=int(self.machine.clock.seconds())
        )

    def service_discovery(self, payment_options, modes, services) -> Message:
        """
        ServiceDiscoveryRes: the payment options, the charge service (ID 1)
        with the energy transfer modes, and the other services (≤ 8).

        :param payment_options: PaymentOption strings.
        :param modes: EnergyTransferMode strings (1–6).
        :param services: ``Service`` messages.
        """
        return Message(
            "ServiceDiscoveryRes",
            ResponseCode="OK",
            PaymentOptionList=Message("PaymentOptionList", PaymentOption=list(payment_options)),
            ChargeService=Message(
                "ChargeService",
                ServiceID=1,
                ServiceCategory="EVCharging",
                FreeService=False,
                SupportedEnergyTransferMode=Message("SupportedEnergyTransferMode", EnergyTransferMode=list(modes)),
            ),
            ServiceList=Message("ServiceList", Service=list(services)) if services else None,
        )

    def sa_schedule_list(self, pmax: float, duration: int) -> Message:
        """One SAScheduleTuple (ID 1) with one PMax entry from now for ``duration`` s ([V2G2-773])."""
        entry = Message(
            "PMaxScheduleEntry",
            RelativeTimeInterval=Message("RelativeTimeInterval", start=0, duration=duration),
            PMax=physical_value(max(0.0, pmax), "W", "PMax"),
        )
        tuple_ = Message("SAScheduleTuple", SAScheduleTupleID=SA_SCHEDULE_TUPLE_ID, PMaxSchedule=Message("PMaxSchedule", PMaxScheduleEntry=[entry]))
        return Message("SAScheduleList", SAScheduleTuple=[tuple_])

    def ac_charge_parameter(self, max_current: float) -> Message:
        """AC_EVSEChargeParameter: status, nominal voltage, maximum current."""
        voltage = self.charger.physical_values.get("ac_nominal_voltage") or 0
        return Message(
            "AC_EVSEChargeParameter",
            AC_EVSEStatus=self.ac_status(),
            EVSENominalVoltage=physical_value(voltage, "V", "EVSENominalVoltage"),
            EVSEMaxCurrent=physical_value(max_current, "A", "EVSEMaxCurrent"),
        )

    def charge_parameter_discovery(self, processing: str, schedule: Message | None, parameter: Message) -> Message:
        """ChargeParameterDiscoveryRes; the schedule only once Finished."""
        return Message(
            "ChargeParameterDiscoveryRes",
            ResponseCode="OK",
            EVSEProcessing=processing,
            SAScheduleList=schedule if processing == "Finished" else None,
            **{parameter.name: parameter},
        )

    def ac_power_delivery(self) -> Message:
        """PowerDeliveryRes with the AC status."""
        return Message("PowerDeliveryRes", ResponseCode="OK", AC_EVSEStatus=self.ac_status())

    def charging_status(self, max_current: float | None) -> Message:
        """
        ChargingStatusRes: EVSEID, the tuple, EVSEMaxCurrent, MeterInfo once
        per update, ReceiptRequired always present ([V2G2-691]; true only
        with a MeterInfo the EV can sign).
        """
        meter = self.meter_info()
        return Message(
            "ChargingStatusRes",
            ResponseCode="OK",
            EVSEID=self.evse_id(),
            SAScheduleTupleID=SA_SCHEDULE_TUPLE_ID,
            EVSEMaxCurrent=physical_value(max_current, "A", "EVSEMaxCurrent") if max_current is not None else None,
            MeterInfo=meter,
            ReceiptRequired=self.receipt_required() and meter is not None,
            AC_EVSEStatus=self.ac_status(),
        )

    def current_demand_extra(self) -> dict:
        """What ISO-2 adds to CurrentDemandRes (ReceiptRequired with Contract payment only, true only with a MeterInfo)."""
        meter = self.meter_info()
        contract = self.machine.payment_option == "Contract"
        return {
            "EVSEID": self.evse_id(),
            "SAScheduleTupleID": SA_SCHEDULE_TUPLE_ID,
            "MeterInfo": meter,
            "ReceiptRequired": (self.receipt_required() and meter is not None) if contract else None,
        }

    def metering_receipt(self) -> Message:
        """MeteringReceiptRes with the EVSE status of the session's kind."""
        return Message("MeteringReceiptRes", ResponseCode="OK", **self.evse_status())
