"""
The EVerest types the charger seam speaks, as small declarative shapes.

EVerest's ``ISO15118_charger`` and ``iso15118_extensions`` interfaces pass
JSON-like values (``dict``, ``list``, ``str``, numbers, ``bool``).  The seam
(:mod:`evsev2g.charger`) keeps them in exactly that form, so a bridge to
EVerest can pass them through unchanged, and checks every command argument
and every var payload against the shapes below: enumerations, required and
allowed object keys, number ranges, array lengths.

Only the facts of the type definitions (names, enumerations, ranges) are
used here; the shapes are written for this project.

A shape is a callable ``check(value, path)`` that raises
:class:`ShapeError` naming the offending path.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

__all__ = [
    "ShapeError",
    "Enum",
    "Number",
    "Integer",
    "Boolean",
    "String",
    "Array",
    "Object",
    "Null",
    "Loose",
    "TYPES",
]

Check = Callable[[Any, str], None]


class ShapeError(ValueError):
    """
    A value does not have the shape its EVerest type asks for.

    :ivar path: where in the value, e.g. ``"capabilities.max_export_current_A"``.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


class Enum:
    """A string out of a fixed set."""

    def __init__(self, name: str, values: Iterable[str]) -> None:
        """
        :param name: the EVerest type name, for messages.
        :param values: the allowed strings.
        """
        self.name = name
        self.values = tuple(values)
        self._set = frozenset(self.values)

    def __call__(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or value not in self._set:
            raise ShapeError(path, f"{value!r} is not a {self.name} ({', '.join(self.values)})")


class Number:
    """A JSON number (``int`` or ``float``, never ``bool``) within bounds."""

    def __init__(self, minimum: float | None = None, maximum: float | None = None) -> None:
        """
        :param minimum: smallest allowed value, or ``None``.
        :param maximum: largest allowed value, or ``None``.
        """
        self.minimum = minimum
        self.maximum = maximum

    def _kind_ok(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def __call__(self, value: Any, path: str) -> None:
        if not self._kind_ok(value):
            raise ShapeError(path, f"{value!r} is not a number")
        if value != value:  # NaN
            raise ShapeError(path, "NaN is not a number")
        if self.minimum is not None and value < self.minimum:
            raise ShapeError(path, f"{value!r} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ShapeError(path, f"{value!r} is above the maximum {self.maximum}")


class Integer(Number):
    """A JSON integer within bounds."""

    def _kind_ok(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)


def Boolean(value: Any, path: str) -> None:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise ShapeError(path, f"{value!r} is not a boolean")


def Null(value: Any, path: str) -> None:
    """The payload of a ``type: "null"`` var: nothing."""
    if value is not None:
        raise ShapeError(path, f"{value!r} given where no payload is expected")


class String:
    """A string with an optional length range and pattern."""

    def __init__(self, min_length: int = 0, max_length: int | None = None, pattern: str | None = None) -> None:
        """
        :param min_length: fewest characters.
        :param max_length: most characters, or ``None``.
        :param pattern: a regular expression the whole string must match.
        """
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = re.compile(pattern) if pattern else None

    def __call__(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise ShapeError(path, f"{value!r} is not a string")
        if len(value) < self.min_length:
            raise ShapeError(path, f"shorter than {self.min_length} characters")
        if self.max_length is not None and len(value) > self.max_length:
            raise ShapeError(path, f"longer than {self.max_length} characters")
        if self.pattern is not None and not self.pattern.search(value):
            raise ShapeError(path, f"{value!r} does not match {self.pattern.pattern}")


class Array:
    """A list of items of one shape, with a length range."""

    def __init__(self, item: Check, min_items: int = 0, max_items: int | None = None) -> None:
        """
        :param item: the shape of every item.
        :param min_items: fewest items.
        :param max_items: most items, or ``None``.
        """
        self.item = item
        self.min_items = min_items
        self.max_items = max_items

    def __call__(self, value: Any, path: str) -> None:
        if not isinstance(value, (list, tuple)):
            raise ShapeError(path, f"{value!r} is not an array")
        if len(value) < self.min_items:
            raise ShapeError(path, f"fewer than {self.min_items} items")
        if self.max_items is not None and len(value) > self.max_items:
            raise ShapeError(path, f"more than {self.max_items} items")
        for index, each in enumerate(value):
            self.item(each, f"{path}[{index}]")


class Object:
    """A dict with required and optional keys; other keys are refused."""

    def __init__(self, name: str, required: dict[str, Check] | None = None, optional: dict[str, Check] | None = None) -> None:
        """
        :param name: the EVerest type name, for messages.
        :param required: keys that must be present, with their shapes.
        :param optional: keys that may be present, with their shapes.
        """
        self.name = name
        self.required = dict(required or {})
        self.optional = dict(optional or {})

    def __call__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise ShapeError(path, f"{value!r} is not an object ({self.name})")
        for key, check in self.required.items():
            if key not in value:
                raise ShapeError(f"{path}.{key}", f"missing (required by {self.name})")
            check(value[key], f"{path}.{key}")
        for key, item in value.items():
            if key in self.required:
                continue
            check = self.optional.get(key)
            if check is None:
                raise ShapeError(f"{path}.{key}", f"not a property of {self.name}")
            check(item, f"{path}.{key}")


class Loose:
    """
    An object whose inner shape is not checked: payloads of ISO 15118-20
    vars that the DIN and ISO 15118-2 state machines never publish.
    """

    def __init__(self, name: str) -> None:
        """:param name: the EVerest type name, for messages."""
        self.name = name

    def __call__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise ShapeError(path, f"{value!r} is not an object ({self.name})")


def _unchecked(value: Any, path: str) -> None:
    """Anything goes (meter fields no state machine reads)."""


# -- enumerations -----------------------------------------------------------

PaymentOption = Enum("PaymentOption", ["Contract", "ExternalPayment"])
EnergyTransferMode = Enum(
    "EnergyTransferMode",
    [
        "AC_single_phase_core", "AC_two_phase", "AC_three_phase_core", "DC_core",
        "DC_extended", "DC_combo_core", "DC_unique", "DC", "AC_BPT", "AC_BPT_DER",
        "AC_DER_IEC", "AC_DER_SAE", "DC_BPT", "DC_ACDP", "DC_ACDP_BPT", "WPT", "MCS",
        "MCS_BPT",
    ],
)
IsolationStatus = Enum("IsolationStatus", ["Invalid", "Valid", "Warning", "Fault", "No_IMD"])
DcEvErrorCode = Enum(
    "DcEvErrorCode",
    [
        "NO_ERROR", "FAILED_RESSTemperatureInhibit", "FAILED_EVShiftPosition",
        "FAILED_ChargerConnectorLockFault", "FAILED_EVRESSMalfunction",
        "FAILED_ChargingCurrentdifferential", "FAILED_ChargingVoltageOutOfRange",
        "Reserved_A", "Reserved_B", "Reserved_C", "FAILED_ChargingSystemIncompatibility",
        "NoData",
    ],
)
EvseError = Enum(
    "EvseError",
    ["Error_Contactor", "Error_RCD", "Error_UtilityInterruptEvent", "Error_Malfunction", "Error_EmergencyShutdown"],
)
SaeJ2847BidiMode = Enum("SaeJ2847BidiMode", ["None", "V2G", "V2H"])
NoEnergyPauseMode = Enum("NoEnergyPauseMode", ["PauseAfterPrecharge", "PauseBeforeCableCheck", "AllowEvToIgnorePause"])
SupportedAppProtocol = Enum("SupportedAppProtocol", ["DIN70121", "ISO15118D2", "ISO15118D20"])
CertificateAction = Enum("CertificateActionEnum", ["Install", "Update"])
AuthorizationStatus = Enum(
    "AuthorizationStatus",
    [
        "Accepted", "Blocked", "ConcurrentTx", "Expired", "Invalid", "NoCredit",
        "NotAllowedTypeEVSE", "NotAtThisLocation", "NotAtThisTime", "Unknown",
        "PinRequired", "Timeout",
    ],
)
CertificateStatus = Enum(
    "CertificateStatus",
    [
        "Accepted", "SignatureError", "CertificateExpired", "CertificateRevoked",
        "NoCertificateAvailable", "CertChainError", "ContractCancelled",
    ],
)
AuthorizationType = Enum("AuthorizationType", ["OCPP", "RFID", "Autocharge", "PlugAndCharge", "BankCard"])
IdTokenType = Enum(
    "IdTokenType",
    ["Central", "eMAID", "MacAddress", "ISO14443", "ISO15693", "KeyCode", "Local", "NoAuthorization"],
)
Connector = Enum(
    "Connector",
    [
        "SinglePhase", "ThreePhase", "Core", "Extended", "Dual2", "Dual4", "Mcs", "Chaoji",
        "UltraChaoji", "rMcs", "xMcs", "Aviation", "Marine",
    ],
)
BptChannel = Enum("BptChannel", ["Unified", "Separated"])
GeneratorMode = Enum("GeneratorMode", ["GridFollowing", "GridForming"])
GridCodeIslandingDetectionMethod = Enum("GridCodeIslandingDetectionMethod", ["Active", "Passive"])
HlcSessionFailedReason = Enum(
    "HlcSessionFailedReasonEnum",
    [
        "ProtocolNegotiationFailed", "AuthorizationFailed", "ChargingParametersNotAccepted",
        "EnergyTransferSetupFailed", "ChargingInterrupted", "FailedTLSHandshake",
        "UnexpectedSessionEnd",
    ],
)
V2gMessageId = Enum(
    "V2gMessageId",
    [
        "SupportedAppProtocolReq", "SupportedAppProtocolRes", "SessionSetupReq", "SessionSetupRes",
        "ServiceDiscoveryReq", "ServiceDiscoveryRes", "ServiceDetailReq", "ServiceDetailRes",
        "PaymentServiceSelectionReq", "PaymentServiceSelectionRes", "ServicePaymentSelectionReq",
        "ServicePaymentSelectionRes", "PaymentDetailsReq", "PaymentDetailsRes", "AuthorizationReq",
        "AuthorizationRes", "ContractAuthenticationReq", "ContractAuthenticationRes",
        "ChargeParameterDiscoveryReq", "ChargeParameterDiscoveryRes", "ChargingStatusReq",
        "ChargingStatusRes", "MeteringReceiptReq", "MeteringReceiptRes", "PowerDeliveryReq",
        "PowerDeliveryRes", "CableCheckReq", "CableCheckRes", "PreChargeReq", "PreChargeRes",
        "CurrentDemandReq", "CurrentDemandRes", "WeldingDetectionReq", "WeldingDetectionRes",
        "SessionStopReq", "SessionStopRes", "CertificateInstallationReq",
        "CertificateInstallationRes", "CertificateUpdateReq", "CertificateUpdateRes",
        "AuthorizationSetupReq", "AuthorizationSetupRes", "ScheduleExchangeReq",
        "ScheduleExchangeRes", "ServiceSelectionReq", "ServiceSelectionRes", "AcChargeLoopReq",
        "AcChargeLoopRes", "AcChargeParameterDiscoveryReq", "AcChargeParameterDiscoveryRes",
        "AcDerChargeParameterDiscoveryReq", "AcDerChargeParameterDiscoveryRes",
        "AcDerChargeLoopReq", "AcDerChargeLoopRes", "AcDerSaeChargeParameterDiscoveryReq",
        "AcDerSaeChargeParameterDiscoveryRes", "AcDerSaeChargeLoopReq", "AcDerSaeChargeLoopRes",
        "DcCableCheckReq", "DcCableCheckRes", "DcChargeLoopReq", "DcChargeLoopRes",
        "DcChargeParameterDiscoveryReq", "DcChargeParameterDiscoveryRes", "DcPreChargeReq",
        "DcPreChargeRes", "DcWeldingDetectionReq", "DcWeldingDetectionRes", "UnknownMessage",
    ],
)

# -- objects ----------------------------------------------------------------

_any_number = Number()
_date_time = String(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _phases(name: str, required: Iterable[str] = (), keys: Iterable[str] = ("L1", "L2", "L3")) -> Object:
    """A units object: ``total``/``DC`` plus per-phase numbers."""
    required = tuple(required)
    return Object(
        name,
        required={key: _any_number for key in required},
        optional={key: _any_number for key in keys if key not in required},
    )


Power = _phases("Power", required=("total",), keys=("total", "L1", "L2", "L3"))
Energy = _phases("Energy", required=("total",), keys=("total", "L1", "L2", "L3"))
ReactivePower = _phases("ReactivePower", required=("total",), keys=("total", "L1", "L2", "L3"))
Voltage = _phases("Voltage", keys=("DC", "L1", "L2", "L3"))
Current = _phases("Current", keys=("DC", "L1", "L2", "L3", "N"))
Frequency = _phases("Frequency", required=("L1",), keys=("L1", "L2", "L3"))

EVSEID = Object("EVSEID", required={"evse_id": String()}, optional={"evse_id_din": String()})

SetupPhysicalValues = Object(
    "SetupPhysicalValues",
    optional={
        "ac_nominal_voltage": Number(0, 1000),
        "dc_current_regulation_tolerance": Number(0, 400),
        "dc_peak_current_ripple": Number(0, 400),
        "dc_energy_to_be_delivered": Number(0, 200000),
    },
)

BptSetup = Object(
    "BptSetup",
    required={"bpt_channel": BptChannel, "generator_mode": GeneratorMode},
    optional={"grid_code_detection": GridCodeIslandingDetectionMethod},
)

_capability_numbers = [
    "current_regulation_tolerance_A", "peak_current_ripple_A", "max_export_voltage_V",
    "nominal_max_export_voltage_V", "min_export_voltage_V", "nominal_min_export_voltage_V",
    "max_export_current_A", "nominal_max_export_current_A", "min_export_current_A",
    "nominal_min_export_current_A", "max_import_voltage_V", "nominal_max_import_voltage_V",
    "min_import_voltage_V", "nominal_min_import_voltage_V", "max_import_current_A",
    "nominal_max_import_current_A", "min_import_current_A", "nominal_min_import_current_A",
    "max_export_power_W", "nominal_max_export_power_W", "max_import_power_W",
    "nominal_max_import_power_W",
]
_capability_required = [
    "max_export_voltage_V", "min_export_voltage_V", "max_export_current_A",
    "min_export_current_A", "max_export_power_W", "current_regulation_tolerance_A",
    "peak_current_ripple_A",
]
Capabilities = Object(
    "Capabilities",
    required={"bidirectional": Boolean, **{key: _any_number for key in _capability_required}},
    optional={
        **{key: _any_number for key in _capability_numbers if key not in _capability_required},
        "conversion_efficiency_import": Number(0.0, 1.0),
        "conversion_efficiency_export": Number(0.0, 1.0),
    },
)

SupportedAppProtocols = Object(
    "SupportedAppProtocols",
    required={"app_protocols": Array(SupportedAppProtocol, 0, 20)},
)

AcParameters = Object(
    "AcParameters",
    required={
        "nominal_frequency": Number(0),
        "nominal_voltage": Number(0),
        "connectors": Array(Connector, 1),
    },
    optional={
        "max_power_asymmetry": Number(0),
        "power_ramp_limitation": Number(0),
        "evse_max_reactive_power": Number(0),
    },
)
AcEvseMaximumPower = Object("AcEvseMaximumPower", required={"charge_power": Power}, optional={"discharge_power": Power})
AcEvseMinimumPower = Object("AcEvseMinimumPower", required={"charge_power": Power}, optional={"discharge_power": Power})
AcTargetValues = Object(
    "AcTargetValues",
    required={"target_active_power": Power},
    optional={"target_reactive_power": ReactivePower, "target_frequency": Number(0)},
)

DcEvseMaximumLimits = Object(
    "DcEvseMaximumLimits",
    required={
        "evse_maximum_current_limit": Number(-10000, 10000),
        "evse_maximum_power_limit": Number(-1000000, 1000000),
        "evse_maximum_voltage_limit": Number(0, 1500),
    },
    optional={
        "evse_maximum_discharge_current_limit": Number(0, 10000),
        "evse_maximum_discharge_power_limit": Number(0, 1000000),
    },
)
DcEvseMinimumLimits = Object(
    "DcEvseMinimumLimits",
    required={
        "evse_minimum_current_limit": Number(0, 10000),
        "evse_minimum_voltage_limit": Number(0, 1500),
        "evse_minimum_power_limit": Number(0, 1000000),
    },
    optional={
        "evse_minimum_discharge_current_limit": Number(0, 10000),
        "evse_minimum_discharge_power_limit": Number(0, 1000000),
    },
)
DcEvsePresentVoltageCurrent = Object(
    "DcEvsePresentVoltageCurrent",
    required={"evse_present_voltage": Number(0, 1500)},
    optional={"evse_present_current": Number(0, 10000)},
)

Powermeter = Object(
    "Powermeter",
    required={"timestamp": _date_time, "energy_Wh_import": Energy},
    optional={
        "meter_id": String(),
        "phase_seq_error": Boolean,
        "energy_Wh_export": Energy,
        "power_W": Power,
        "voltage_V": Voltage,
        "VAR": ReactivePower,
        "current_A": Current,
        "frequency_Hz": Frequency,
        # signed values and temperatures are passed through unchecked: the
        # DIN and ISO-2 state machines never read them.
        "energy_Wh_import_signed": _unchecked,
        "energy_Wh_export_signed": _unchecked,
        "power_W_signed": _unchecked,
        "voltage_V_signed": _unchecked,
        "VAR_signed": _unchecked,
        "current_A_signed": _unchecked,
        "frequency_Hz_signed": _unchecked,
        "signed_meter_value": _unchecked,
        "temperatures": Array(_unchecked),
    },
)

ResponseExiStreamStatus = Object(
    "ResponseExiStreamStatus",
    required={"status": Enum("status", ["Accepted", "Failed"]), "certificate_action": CertificateAction},
    optional={"exi_response": String(max_length=5600)},
)
RequestExiStreamSchema = Object(
    "RequestExiStreamSchema",
    required={
        "exi_request": String(max_length=5600),
        "iso15118_schema_version": String(max_length=50),
        "certificate_action": CertificateAction,
    },
)

DcEvStatus = Object(
    "DcEvStatus",
    required={"dc_ev_ready": Boolean, "dc_ev_error_code": DcEvErrorCode, "dc_ev_ress_soc": Number(0, 100)},
    optional={"dc_ev_cabin_conditioning": Boolean, "dc_ev_ress_conditioning": Boolean},
)
DcEvTargetValues = Object(
    "DcEvTargetValues",
    required={"dc_ev_target_voltage": Number(-2, 1500), "dc_ev_target_current": Number(-2, 10000)},
)
DcEvMaximumLimits = Object(
    "DcEvMaximumLimits",
    optional={
        "dc_ev_maximum_current_limit": Number(-2, 10000),
        "dc_ev_maximum_power_limit": Number(-2, 350000),
        "dc_ev_maximum_voltage_limit": Number(-2, 1500),
    },
)
DcEvRemainingTime = Object(
    "DcEvRemainingTime",
    optional={"ev_remaining_time_to_full_soc": _date_time, "ev_remaining_time_to_full_bulk_soc": _date_time},
)
AppProtocol = Object(
    "AppProtocol",
    required={
        "protocol_namespace": String(1, 100),
        "version_number_major": Integer(0),
        "version_number_minor": Integer(0),
        "schema_id": Integer(0, 255),
        "priority": Integer(1, 20),
    },
)
AppProtocols = Object("AppProtocols", required={"Protocols": Array(AppProtocol, 1, 20)})
V2gMessages = Object(
    "V2gMessages",
    required={"id": V2gMessageId},
    optional={"xml": String(), "v2g_json": String(), "exi": String(), "exi_base64": String()},
)
IdToken = Object(
    "IdToken",
    required={"value": String(0, 36), "type": IdTokenType},
    optional={"additional_info": Array(Object("CustomIdToken", required={"value": String(0, 36), "type": String(0, 50)}))},
)
CertificateHashDataInfo = Object(
    "CertificateHashDataInfo",
    required={
        "hashAlgorithm": Enum("hashAlgorithm", ["SHA256", "SHA384", "SHA512"]),
        "issuerNameHash": String(max_length=128),
        "issuerKeyHash": String(max_length=128),
        "serialNumber": String(max_length=40),
        "responderURL": String(max_length=512),
    },
)
ProvidedIdToken = Object(
    "ProvidedIdToken",
    required={"id_token": IdToken, "authorization_type": AuthorizationType},
    optional={
        "request_id": Integer(),
        "parent_id_token": IdToken,
        "connectors": Array(Integer(1)),
        "prevalidated": Boolean,
        "certificate": String(max_length=5500),
        "iso15118CertificateHashData": Array(CertificateHashDataInfo, 1, 4),
    },
)

#: Every type by its EVerest name, for lookups in tests and the bridge.
TYPES: dict[str, Check] = {
    name: value
    for name, value in dict(globals()).items()
    if isinstance(value, (Enum, Object)) and not name.startswith("_")
}
