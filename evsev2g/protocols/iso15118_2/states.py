"""
ISO 15118-2 states and the requests allowed after each response.

The AC and DC tables are the same up to ChargeParameterDiscovery; which one
applies is decided by the energy transfer mode the EV requests there.
SessionStop is allowed in every state after SessionSetup outside the
charge loop ([V2G2-542]…[V2G2-596]; EvseV2G's bitmasks).
"""

from __future__ import annotations

import enum

__all__ = ["State", "REQUESTS", "SHUTDOWN_PATH", "ALLOWED_AC", "ALLOWED_DC", "CHARGE_LOOP"]

#: Every request of the ISO 15118-2 schema.
REQUESTS = frozenset(
    {
        "SessionSetupReq", "ServiceDiscoveryReq", "ServiceDetailReq", "PaymentServiceSelectionReq",
        "PaymentDetailsReq", "AuthorizationReq", "ChargeParameterDiscoveryReq", "PowerDeliveryReq",
        "ChargingStatusReq", "MeteringReceiptReq", "SessionStopReq", "CertificateUpdateReq",
        "CertificateInstallationReq", "CableCheckReq", "PreChargeReq", "CurrentDemandReq",
        "WeldingDetectionReq",
    }
)


class State(enum.Enum):
    """Where the session is: named after what was last answered."""

    HANDSHAKEN = "waiting for SessionSetupReq"
    SESSION_SET_UP = "after SessionSetupRes"
    SERVICES_DISCOVERED = "after ServiceDiscoveryRes or ServiceDetailRes"
    PAYMENT_SELECTED = "after PaymentServiceSelectionRes"
    CERTIFICATE_PROVIDED = "after CertificateInstallationRes or CertificateUpdateRes"
    PAYMENT_DETAILS_ACCEPTED = "after PaymentDetailsRes"
    AUTHORIZING = "after AuthorizationRes(Ongoing)"
    AUTHORIZED = "after AuthorizationRes(Finished)"
    DISCOVERING_PARAMETERS = "after ChargeParameterDiscoveryRes(Ongoing)"
    PARAMETERS_DISCOVERED = "after ChargeParameterDiscoveryRes(Finished)"
    CABLE_CHECKING = "after CableCheckRes(Ongoing)"
    CABLE_CHECKED = "after CableCheckRes(Finished)"
    PRE_CHARGING = "after PreChargeRes"
    POWER_DELIVERY_STARTED = "after PowerDeliveryRes(Start)"
    CHARGING = "after ChargingStatusRes, CurrentDemandRes or MeteringReceiptRes"
    RECEIPT_REQUIRED = "after a response with ReceiptRequired=true"
    RENEGOTIATING = "after PowerDeliveryRes(Renegotiate)"
    POWER_DELIVERY_STOPPED = "after PowerDeliveryRes(Stop) or WeldingDetectionRes"
    FAILED = "after a FAILED response (the EV is to stop)"
    STOPPED = "after SessionStopRes"


_STOP = "SessionStopReq"

#: Requests that belong to shutting down: answered while the charger is in
#: emergency shutdown or has stopped, and all the EV may send after FAILED.
SHUTDOWN_PATH = frozenset({"PowerDeliveryReq", "WeldingDetectionReq", _STOP})

#: States of the charge loop, where SessionStop is not allowed.
CHARGE_LOOP = frozenset({State.POWER_DELIVERY_STARTED, State.CHARGING, State.RECEIPT_REQUIRED})

_COMMON = {
    State.HANDSHAKEN: {"SessionSetupReq"},
    State.SESSION_SET_UP: {"ServiceDiscoveryReq", _STOP},
    State.SERVICES_DISCOVERED: {"ServiceDetailReq", "PaymentServiceSelectionReq", _STOP},
    # ExternalPayment goes on with Authorization; Contract with
    # PaymentDetails, after CertificateInstallation/Update if needed.
    State.PAYMENT_SELECTED: {
        "AuthorizationReq", "PaymentDetailsReq", "CertificateInstallationReq", "CertificateUpdateReq", _STOP,
    },
    State.CERTIFICATE_PROVIDED: {"PaymentDetailsReq", _STOP},
    State.PAYMENT_DETAILS_ACCEPTED: {"AuthorizationReq", _STOP},
    State.AUTHORIZING: {"AuthorizationReq", _STOP},
    State.AUTHORIZED: {"ChargeParameterDiscoveryReq", _STOP},
    State.DISCOVERING_PARAMETERS: {"ChargeParameterDiscoveryReq", _STOP},
    # [V2G2-812]: the EV renegotiates from the charge loop, back to CPD only.
    State.RENEGOTIATING: {"ChargeParameterDiscoveryReq"},
    State.RECEIPT_REQUIRED: {"MeteringReceiptReq"},
    State.FAILED: SHUTDOWN_PATH,
    State.STOPPED: set(),
}

#: AC ([V2G2-568], [V2G2-575]…[V2G2-577]).
ALLOWED_AC = {
    **_COMMON,
    State.PARAMETERS_DISCOVERED: {"PowerDeliveryReq", _STOP},
    State.POWER_DELIVERY_STARTED: {"ChargingStatusReq"},
    State.CHARGING: {"ChargingStatusReq", "MeteringReceiptReq", "PowerDeliveryReq"},
    State.POWER_DELIVERY_STOPPED: {_STOP},
}

#: DC ([V2G2-578]…[V2G2-596]).
ALLOWED_DC = {
    **_COMMON,
    State.PARAMETERS_DISCOVERED: {"CableCheckReq", _STOP},
    State.CABLE_CHECKING: {"CableCheckReq", _STOP},
    State.CABLE_CHECKED: {"PreChargeReq", _STOP},
    State.PRE_CHARGING: {"PreChargeReq", "PowerDeliveryReq", _STOP},
    State.POWER_DELIVERY_STARTED: {"CurrentDemandReq"},
    State.CHARGING: {"CurrentDemandReq", "MeteringReceiptReq", "PowerDeliveryReq"},
    State.POWER_DELIVERY_STOPPED: {"WeldingDetectionReq", _STOP},
}
