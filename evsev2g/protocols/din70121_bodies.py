"""
DIN SPEC 70121 response bodies, built from the charger seam's values.

Every builder produces a schema-valid body for any response code: a FAILED
response still carries every mandatory element ([V2G2-736]; the EV ignores
them, [V2G2-735]).  :meth:`DINBodies.build` makes the body for any request
name; requests the DC/EIM sequence never uses (ServiceDetail,
PaymentDetails, ChargingStatus, MeteringReceipt, Certificate*) are only
ever answered FAILED_SequenceError, with the schema's minimum content
(:func:`~evsev2g.protocols.minimal.minimal_body`).  The DC bodies are
:class:`~evsev2g.protocols.dc_bodies.DCBodies`'.
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.protocols.dc_bodies import DCBodies
from evsev2g.protocols.minimal import minimal_body
from evsev2g.protocols.physical import SHORT_MAX

__all__ = ["DINBodies", "PMAX_DURATION", "ISOLATION_LEVELS"]

#: Duration of the single PMaxSchedule entry offered, in s (24 h).
PMAX_DURATION = 86400

#: IsolationStatus values DIN's isolationLevelType can carry (No_IMD cannot).
ISOLATION_LEVELS = DCBodies.isolation_levels

#: DIN EVSESupportedEnergyTransferType values a DC charger may offer.
_OFFERABLE = ("DC_extended", "DC_core", "DC_combo_core")


class DINBodies(DCBodies):
    """
    Response-body builders bound to one :class:`~evsev2g.protocols.din70121.DINStateMachine`.
    """

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
        special = {
            "ServicePaymentSelectionRes": lambda c: self.simple(response_name, c),
            "SessionStopRes": lambda c: self.simple(response_name, c),
            "ContractAuthenticationRes": lambda c: self.processing(response_name, c, "Finished"),
            "SessionSetupRes": self.session_setup,
            "ServiceDiscoveryRes": self.service_discovery,
            "ChargeParameterDiscoveryRes": lambda c: self.charge_parameter_discovery(c, "Finished"),
            "CableCheckRes": lambda c: self.cable_check(c, "Finished"),
            "PreChargeRes": self.pre_charge,
            "PowerDeliveryRes": lambda c: self.power_delivery(c, "EVSE_NotReady"),
            "CurrentDemandRes": lambda c: self.current_demand(c, 0.0, 0.0),
            "WeldingDetectionRes": self.welding_detection,
        }
        builder = special.get(response_name)
        if builder is not None:
            return builder(code)
        fill = {"ResponseCode": code}
        service_id = request_body.get("ServiceID") if request_body is not None else None
        if service_id is not None:
            fill["ServiceID"] = service_id
        return minimal_body("din70121", response_name, fill)

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
        entry for 24 h, and the charger's DC limits.
        """
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
        return Message(
            "ChargeParameterDiscoveryRes",
            ResponseCode=code,
            EVSEProcessing=processing,
            SAScheduleList=Message("SAScheduleList", SAScheduleTuple=[tuple_]),
            DC_EVSEChargeParameter=self.dc_charge_parameter(),
        )
