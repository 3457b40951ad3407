"""
DIN SPEC 70121 response bodies, built from the charger seam's values.

Every builder produces a schema-valid body for any response code: a FAILED
response still carries every mandatory element ([V2G2-736]; the EV ignores
them, [V2G2-735]).  :meth:`DINBodies.build` makes the body for any request
name, which is how FAILED_SequenceError answers requests the DC/EIM
sequence never uses (ServiceDetail, PaymentDetails, ChargingStatus,
MeteringReceipt, Certificate*).
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.protocols.physical import SHORT_MAX, physical_value

__all__ = ["DINBodies", "PMAX_DURATION", "ISOLATION_LEVELS"]

#: Duration of the single PMaxSchedule entry offered, in s (24 h).
PMAX_DURATION = 86400

#: IsolationStatus values DIN's isolationLevelType can carry (No_IMD cannot).
ISOLATION_LEVELS = frozenset({"Invalid", "Valid", "Warning", "Fault"})

#: DIN EVSESupportedEnergyTransferType values a DC charger may offer.
_OFFERABLE = ("DC_extended", "DC_core", "DC_combo_core")


class DINBodies:
    """
    Response-body builders bound to one :class:`~evsev2g.protocols.din70121.DINStateMachine`.
    """

    def __init__(self, machine) -> None:
        """:param machine: the state machine (its charger and status logic)."""
        self.machine = machine
        self.charger = machine.charger

    # -- shared pieces -----------------------------------------------------

    def evse_id(self) -> bytes:
        """
        The DIN EVSEID (hexBinary, at most 32 bytes): ``setup``'s
        ``evse_id_din`` read as hex digits (as EVerest configures it, e.g.
        ``49A80737A45678``), else the single byte 0x00 that the chargers in
        the real captures send for "no ID".  (EvseV2G sends the ASCII bytes of
        the ISO-2 ``evse_id`` instead and ignores ``evse_id_din``.)
        """
        evse = self.charger.evse_id or {}
        din = (evse.get("evse_id_din") or "").strip()
        if din:
            try:
                raw = bytes.fromhex(din)
            except ValueError:
                raw = b""
            if 0 < len(raw) <= 32:
                return raw
        return b"\x00"

    def energy_transfer_type(self) -> str:
        """The EnergyTransferType offered: the charger's first DC mode DIN can name."""
        for mode in self.charger.energy_transfer_modes:
            if mode in _OFFERABLE:
                return mode
        return "DC_extended"

    def status(self, normal: str) -> Message:
        """DC_EVSEStatus with the isolation status when known."""
        isolation = self.charger.isolation_status
        return Message(
            "DC_EVSEStatus",
            EVSEIsolationStatus=isolation if isolation in ISOLATION_LEVELS else None,
            EVSEStatusCode=self.machine.status_code(normal),
            NotificationMaxDelay=0,
            EVSENotification="None",
        )

    def present_voltage(self) -> Message:
        """EVSEPresentVoltage from ``update_dc_present_values``."""
        return physical_value(self.charger.dc_present_values["evse_present_voltage"], "V", "EVSEPresentVoltage")

    def pmax(self) -> int:
        """PMax offered: the charger's maximum power in W, capped to DIN's 16-bit PMaxType."""
        power = self.charger.dc_limit("max_export_power_W") or 0
        return int(max(0, min(power, SHORT_MAX)))

    # -- per message -------------------------------------------------------

    def build(self, response_name: str, code: str, request_body=None) -> Message:
        """
        A body for ``response_name`` carrying ``code`` (used for FAILED
        answers).

        :param response_name: e.g. ``"CableCheckRes"``.
        :param code: the ResponseCode.
        :param request_body: the request's body (ServiceDetailRes echoes its
            ServiceID), or ``None``.
        :returns: the body ``Message``.
        """
        if response_name in ("ServicePaymentSelectionRes", "SessionStopRes"):
            return self.simple(response_name, code)
        if response_name == "ContractAuthenticationRes":
            return self.processing(response_name, code, "Finished")
        if response_name == "ServiceDetailRes":
            service_id = request_body.get("ServiceID") if request_body is not None else None
            return Message(response_name, ResponseCode=code, ServiceID=service_id if service_id is not None else 1)
        special = {
            "SessionSetupRes": self.session_setup,
            "ServiceDiscoveryRes": self.service_discovery,
            "ChargeParameterDiscoveryRes": lambda c: self.charge_parameter_discovery(c, "Finished"),
            "CableCheckRes": lambda c: self.cable_check(c, "Finished"),
            "PreChargeRes": self.pre_charge,
            "PowerDeliveryRes": lambda c: self.power_delivery(c, "EVSE_NotReady"),
            "CurrentDemandRes": lambda c: self.current_demand(c, 0.0, 0.0),
            "WeldingDetectionRes": self.welding_detection,
            "PaymentDetailsRes": self._payment_details,
            "ChargingStatusRes": self._charging_status,
            "MeteringReceiptRes": self._metering_receipt,
            "CertificateInstallationRes": self._certificate_installation,
            "CertificateUpdateRes": self._certificate_update,
        }
        return special[response_name](code)

    def simple(self, name: str, code: str) -> Message:
        """A body with only a ResponseCode."""
        return Message(name, ResponseCode=code)

    def processing(self, name: str, code: str, processing: str) -> Message:
        """ResponseCode plus EVSEProcessing."""
        return Message(name, ResponseCode=code, EVSEProcessing=processing)

    def session_setup(self, code: str) -> Message:
        """SessionSetupRes (DateTimeNow is optional and left out)."""
        return Message("SessionSetupRes", ResponseCode=code, EVSEID=self.evse_id())

    def service_discovery(self, code: str) -> Message:
        """
        ServiceDiscoveryRes: ExternalPayment only ([V2G-DC-252]), the charge
        service (ID 1, EVCharging) without ServiceName/ServiceScope
        ([V2G-DC-628], [V2G-DC-629]).
        """
        return Message(
            "ServiceDiscoveryRes",
            ResponseCode=code,
            PaymentOptions=Message("PaymentOptions", PaymentOption=["ExternalPayment"]),
            ChargeService=Message(
                "ChargeService",
                ServiceTag=Message("ServiceTag", ServiceID=1, ServiceCategory="EVCharging"),
                FreeService=False,
                EnergyTransferType=self.energy_transfer_type(),
            ),
        )

    def charge_parameter_discovery(self, code: str, processing: str) -> Message:
        """
        ChargeParameterDiscoveryRes: one SAScheduleTuple (ID 1) with one PMax
        entry for 24 h, and the charger's DC limits (power supply
        capabilities, nominal values preferred).
        """
        charger = self.charger
        tuple_ = Message(
            "SAScheduleTuple",
            SAScheduleTupleID=1,
            PMaxSchedule=Message(
                "PMaxSchedule",
                PMaxScheduleID=1,
                PMaxScheduleEntry=[
                    Message(
                        "PMaxScheduleEntry",
                        RelativeTimeInterval=Message("RelativeTimeInterval", start=0, duration=PMAX_DURATION),
                        PMax=self.pmax(),
                    )
                ],
            ),
        )
        limit = charger.dc_limit
        tolerance = limit("current_regulation_tolerance_A")
        if tolerance is None:
            tolerance = charger.physical_values.get("dc_current_regulation_tolerance")
        ripple = limit("peak_current_ripple_A")
        if ripple is None:
            ripple = charger.physical_values.get("dc_peak_current_ripple", 0)
        energy = charger.physical_values.get("dc_energy_to_be_delivered")
        parameter = Message(
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
        return Message(
            "ChargeParameterDiscoveryRes",
            ResponseCode=code,
            EVSEProcessing=processing,
            SAScheduleList=Message("SAScheduleList", SAScheduleTuple=[tuple_]),
            DC_EVSEChargeParameter=parameter,
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
        EV's target runs into them.
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
        )

    def welding_detection(self, code: str) -> Message:
        """WeldingDetectionRes with the present output voltage."""
        return Message(
            "WeldingDetectionRes",
            ResponseCode=code,
            DC_EVSEStatus=self.status("EVSE_Shutdown"),
            EVSEPresentVoltage=self.present_voltage(),
        )

    # -- bodies only ever sent as FAILED_SequenceError in DIN DC/EIM ----------

    def _ac_status(self) -> Message:
        return Message("AC_EVSEStatus", PowerSwitchClosed=False, RCD=False, NotificationMaxDelay=0, EVSENotification="None")

    def _payment_details(self, code: str) -> Message:
        return Message("PaymentDetailsRes", ResponseCode=code, GenChallenge="", DateTimeNow=0)

    def _charging_status(self, code: str) -> Message:
        return Message(
            "ChargingStatusRes",
            ResponseCode=code,
            EVSEID=self.evse_id(),
            SAScheduleTupleID=1,
            ReceiptRequired=False,
            AC_EVSEStatus=self._ac_status(),
        )

    def _metering_receipt(self, code: str) -> Message:
        return Message("MeteringReceiptRes", ResponseCode=code, AC_EVSEStatus=self._ac_status())

    def _certificate_fields(self) -> dict:
        return {
            "ContractSignatureCertChain": Message("ContractSignatureCertChain", Certificate=b""),
            "ContractSignatureEncryptedPrivateKey": b"",
            "DHParams": b"",
            "ContractID": "",
        }

    def _certificate_installation(self, code: str) -> Message:
        return Message("CertificateInstallationRes", attrs={"Id": "id1"}, ResponseCode=code, **self._certificate_fields())

    def _certificate_update(self, code: str) -> Message:
        return Message(
            "CertificateUpdateRes", attrs={"Id": "id1"}, ResponseCode=code, RetryCounter=0, **self._certificate_fields()
        )
