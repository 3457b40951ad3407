"""
ISO 15118-2 fakes, shipped so users can reuse them (the general ones are in
:mod:`evsev2g.testing`):

* :func:`iso2_request`: an ISO 15118-2 request with sensible defaults for
  its mandatory fields, AC or DC;
* :func:`iso2_dc_ev_status`: a DC_EVStatus;
* :func:`ac_charger`: a charger seam set up like EvseManager's AC charger;
* :data:`ISO2_AC_SESSION`, :data:`ISO2_DC_SESSION`: the requests of a whole
  EIM session, one of each loop.

(Value-added-service providers to test with:
:class:`evsev2g.testing.FakeValueAddedService` in an
:class:`evsev2g.vas.ServiceRegistry`.)
"""

from __future__ import annotations

from typing import Any

from evsev2g.charger import Charger
from evsev2g.exi.message import Message
from evsev2g.protocols.physical import physical_value
from evsev2g.testing import din_ev_status, din_request

__all__ = [
    "iso2_request",
    "iso2_dc_ev_status",
    "ac_charger",
    "ISO2_AC_SESSION",
    "ISO2_DC_SESSION",
]


#: DIN's and ISO-2's DC_EVStatus have the same mandatory children.
iso2_dc_ev_status = din_ev_status


def _pv(number: float, unit: str, name: str) -> Message:
    return physical_value(number, unit, name)


def _ac_parameter() -> Message:
    return Message(
        "AC_EVChargeParameter",
        DepartureTime=7200,
        EAmount=_pv(20000, "Wh", "EAmount"),
        EVMaxVoltage=_pv(400, "V", "EVMaxVoltage"),
        EVMaxCurrent=_pv(32, "A", "EVMaxCurrent"),
        EVMinCurrent=_pv(6, "A", "EVMinCurrent"),
    )


def _dc_fields(name: str) -> dict:
    """The DC request bodies are DIN's (same element names and values)."""
    return dict(din_request(name).Body.children[0][1].children)


def _dc_parameter() -> Message:
    parameter = _dc_fields("ChargeParameterDiscoveryReq")["DC_EVChargeParameter"]
    return Message("DC_EVChargeParameter", [("DepartureTime", 3600), *parameter.children])


def iso2_request(name: str, session_id: bytes = b"\x00", dc: bool = True, **fields: Any) -> Message:
    """
    An ISO 15118-2 ``V2G_Message`` request with defaults for ``name``'s
    mandatory fields; ``fields`` override or add body children.

    :param name: the request body name, e.g. ``"ChargingStatusReq"``.
    :param session_id: the header SessionID.
    :param dc: DC defaults (ChargeParameterDiscovery, PowerDelivery) rather than AC.
    :returns: the message.
    """
    defaults: dict[str, Any] = {
        "SessionSetupReq": {"EVCCID": bytes.fromhex("0a0b0c0d0e0f")},
        "ServiceDiscoveryReq": {},
        "ServiceDetailReq": {"ServiceID": 1},
        "PaymentServiceSelectionReq": {
            "SelectedPaymentOption": "ExternalPayment",
            "SelectedServiceList": Message("SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=1)]),
        },
        "PaymentDetailsReq": {
            "eMAID": "DEABCC1234567890",
            "ContractSignatureCertChain": Message("ContractSignatureCertChain", Certificate=b"\x30\x00"),
        },
        "AuthorizationReq": {},
        "ChargeParameterDiscoveryReq": (
            {"RequestedEnergyTransferMode": "DC_extended", "DC_EVChargeParameter": _dc_parameter()}
            if dc
            else {"RequestedEnergyTransferMode": "AC_three_phase_core", "AC_EVChargeParameter": _ac_parameter()}
        ),
        "PowerDeliveryReq": {
            "ChargeProgress": "Start",
            "SAScheduleTupleID": 1,
            **(
                {
                    "DC_EVPowerDeliveryParameter": Message(
                        "DC_EVPowerDeliveryParameter", DC_EVStatus=iso2_dc_ev_status(), ChargingComplete=False
                    )
                }
                if dc
                else {}
            ),
        },
        "ChargingStatusReq": {},
        "MeteringReceiptReq": {
            "SessionID": session_id,
            "SAScheduleTupleID": 1,
            "MeterInfo": Message("MeterInfo", MeterID="METER1", MeterReading=1000),
        },
        **{each: _dc_fields(each) for each in ("CableCheckReq", "PreChargeReq", "CurrentDemandReq", "WeldingDetectionReq")},
        "SessionStopReq": {"ChargingSession": "Terminate"},
        "CertificateInstallationReq": {},
        "CertificateUpdateReq": {},
    }.get(name, {})
    body_fields = dict(defaults)
    body_fields.update(fields)
    attrs = {"Id": "id1"} if name == "MeteringReceiptReq" else None
    return Message(
        "V2G_Message",
        Header=Message("Header", SessionID=session_id),
        Body=Message("Body", [(name, Message(name, attrs=attrs, **body_fields))]),
    )


def ac_charger(clock, **overrides) -> Charger:
    """
    A :class:`~evsev2g.charger.Charger` set up the way EvseManager sets up
    an AC charger (230 V, 32 A, three phases).

    :param clock: ``IReactorTime``.
    :param overrides: extra commands to run, ``name=arguments dict``.
    :returns: the charger.
    """
    charger = Charger(clock, name="test")
    charger.setup({"evse_id": "DE*TST*E1"}, "None", False)
    charger.session_setup(["ExternalPayment"], False, False)
    charger.set_charging_parameters({"ac_nominal_voltage": 230})
    charger.update_energy_transfer_modes(["AC_single_phase_core", "AC_three_phase_core"])
    charger.update_ac_max_current(32)
    charger.update_ac_maximum_limits({"charge_power": {"total": 22080}})
    for name, arguments in overrides.items():
        charger.command(name, **arguments)
    return charger


#: The requests of a whole ISO-2 AC EIM session, in order (one of each loop).
ISO2_AC_SESSION = (
    "SessionSetupReq",
    "ServiceDiscoveryReq",
    "PaymentServiceSelectionReq",
    "AuthorizationReq",
    "ChargeParameterDiscoveryReq",
    "PowerDeliveryReq",
    "ChargingStatusReq",
    "PowerDeliveryReq:Stop",
    "SessionStopReq",
)

#: The requests of a whole ISO-2 DC EIM session, in order (one of each loop).
ISO2_DC_SESSION = (
    "SessionSetupReq",
    "ServiceDiscoveryReq",
    "PaymentServiceSelectionReq",
    "AuthorizationReq",
    "ChargeParameterDiscoveryReq",
    "CableCheckReq",
    "PreChargeReq",
    "PowerDeliveryReq",
    "CurrentDemandReq",
    "PowerDeliveryReq:Stop",
    "WeldingDetectionReq",
    "SessionStopReq",
)
