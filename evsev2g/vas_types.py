"""
The shapes value-added-service providers answer with, checked.

Providers speak EVerest's ``iso15118_vas`` types (``OfferedService``,
``ParameterSet``, ``SelectedService``) as plain dicts, whether they are
local plugins or ISO15118_vas modules reached over MQTT.  Everything a
provider hands over is checked here against those types *and* against what
an ISO 15118-2 message can carry (the schema's lengths, ranges and counts),
so that whatever passes can be encoded; whatever does not raises
:class:`ShapeError` with a message naming the offending field.

Pure data: nothing here imports Twisted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHARGE_SERVICE_ID",
    "SERVICE_ID_MIN",
    "SERVICE_ID_MAX",
    "SERVICE_NAME_MAX",
    "SERVICE_SCOPE_MAX",
    "SERVICE_LIST_MAX",
    "PARAMETER_SETS_MAX",
    "PARAMETERS_MAX",
    "PARAMETER_NAME_MAX",
    "FINITE_STRING_MAX",
    "SELECTED_SERVICES_MAX",
    "CATEGORIES",
    "VALUE_KINDS",
    "ShapeError",
    "OfferedService",
    "check_offered_service",
    "check_parameter_sets",
    "check_selected_service",
    "EV_PARAMETER_SETS_MAX",
    "EV_STRING_MAX",
    "fit_for_ev_decoders",
]

#: The charge service's ServiceID ([V2G2-417]); never a value-added service.
CHARGE_SERVICE_ID = 1
#: ServiceIDs a provider may offer (serviceIDType is an unsignedShort).
SERVICE_ID_MIN = 2
SERVICE_ID_MAX = 65535
#: serviceNameType and serviceScopeType maxLength (ISO 15118-2 schema; the
#: EVerest types say the same).
SERVICE_NAME_MAX = 32
SERVICE_SCOPE_MAX = 64
#: ServiceListType: at most 8 Service entries in ServiceDiscoveryRes.
SERVICE_LIST_MAX = 8
#: ServiceParameterListType: at most 255 ParameterSets; ParameterSetType: 1
#: to 16 Parameters.
PARAMETER_SETS_MAX = 255
PARAMETERS_MAX = 16
#: EVerest's ``Parameter.name`` and ``ParameterValue.finite_string`` limits.
PARAMETER_NAME_MAX = 80
FINITE_STRING_MAX = 80
#: SelectedServiceListType: at most 16 SelectedService entries.
SELECTED_SERVICES_MAX = 16

#: What widespread EV-side decoders hold, below the schema's limits: cbv2g
#: (EVerest, and the openV2G lineage many EVs use) has room for 5
#: ParameterSets in a ServiceParameterList and 64 characters in a Parameter
#: Name or stringValue.  EvseV2G cuts its ServiceDetailRes to these; so does
#: :func:`fit_for_ev_decoders`.
EV_PARAMETER_SETS_MAX = 5
EV_STRING_MAX = 64

#: ServiceCategory values a value-added service may have (serviceCategoryType
#: less ``EVCharging``, which is the charge service's).
CATEGORIES = ("Internet", "ContractCertificate", "OtherCustom")

#: The ServiceIDs ISO 15118-2 assigns (Table 105), with the name and category
#: a provider gets when it gives none: 2 Certificate, 3 InternetAccess, 4
#: UseCaseInformation; everything else is ``OtherCustom`` without a name.
_KNOWN = {
    2: ("Certificate", "ContractCertificate"),
    3: ("InternetAccess", "Internet"),
    4: ("UseCaseInformation", "OtherCustom"),
}

_SHORT = (-32768, 32767)
_BYTE = (-128, 127)
_INT = (-(2**31), 2**31 - 1)

#: The ``ParameterValue`` variants; exactly one is set in a value.
VALUE_KINDS = ("finite_string", "rational_number", "byte_value", "short_value", "int_value", "bool_value")


class ShapeError(ValueError):
    """A provider's answer is not of the documented shape; says where."""


@dataclass(frozen=True)
class OfferedService:
    """
    One value-added service as ServiceDiscoveryRes lists it.

    :ivar service_id: ServiceID, 2–65535.
    :ivar service_name: ServiceName (≤ 32 characters) or ``None``.
    :ivar service_category: ``"Internet"``, ``"ContractCertificate"`` or
        ``"OtherCustom"``.
    :ivar service_scope: ServiceScope (≤ 64 characters) or ``None``.
    :ivar free_service: FreeService.
    :ivar provider: the :class:`~evsev2g.interfaces.IValueAddedService`
        that offers it (not compared).
    """

    service_id: int
    service_name: str | None
    service_category: str
    service_scope: str | None
    free_service: bool
    provider: object = field(default=None, compare=False, repr=False)


def _integer(value: Any, where: str, bounds: tuple[int, int]) -> int:
    if type(value) is not int:
        raise ShapeError(f"{where} must be an integer, not {type(value).__name__}")
    low, high = bounds
    if not low <= value <= high:
        raise ShapeError(f"{where} = {value} is outside {low}…{high}")
    return value


def _text(value: Any, where: str, longest: int, shortest: int = 1) -> str:
    if not isinstance(value, str):
        raise ShapeError(f"{where} must be a string, not {type(value).__name__}")
    if not shortest <= len(value) <= longest:
        raise ShapeError(f"{where} has {len(value)} characters; {shortest}…{longest} allowed")
    return value


def _mapping(value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise ShapeError(f"{where} must be an object (dict), not {type(value).__name__}")
    missing = [key for key in required if key not in value]
    if missing:
        raise ShapeError(f"{where} lacks {', '.join(missing)}")
    unknown = sorted(str(key) for key in value if key not in required and key not in optional)
    if unknown:
        raise ShapeError(f"{where} has unknown field(s) {', '.join(unknown)}")
    return value


def _sequence(value: Any, where: str, longest: int, shortest: int = 0) -> list:
    if not isinstance(value, (list, tuple)):
        raise ShapeError(f"{where} must be a list, not {type(value).__name__}")
    if not shortest <= len(value) <= longest:
        raise ShapeError(f"{where} has {len(value)} entries; {shortest}…{longest} allowed")
    return list(value)


def check_offered_service(entry: Any, provider: object = None) -> OfferedService:
    """
    One entry of a provider's ``offered_services()`` answer, as a record.

    A missing name or category is filled from ISO 15118-2 Table 105 for
    ServiceIDs 2–4 (as EvseV2G does for ``offered_vas``); a missing
    ``free_service`` is ``True`` (EvseV2G's default).

    :param entry: an EVerest ``OfferedService`` dict, optionally with
        ``service_category``.
    :param provider: the provider, kept in the record.
    :returns: an :class:`OfferedService`.
    :raises ShapeError: naming what is wrong.
    """
    entry = _mapping(entry, "service", ("service_id",), ("service_name", "service_scope", "free_service", "service_category"))
    service_id = _integer(entry["service_id"], "service_id", (SERVICE_ID_MIN, SERVICE_ID_MAX))
    where = f"service {service_id}"
    default_name, default_category = _KNOWN.get(service_id, (None, "OtherCustom"))
    name = entry.get("service_name")
    name = default_name if name is None else _text(name, f"{where} service_name", SERVICE_NAME_MAX)
    scope = entry.get("service_scope")
    scope = None if scope is None else _text(scope, f"{where} service_scope", SERVICE_SCOPE_MAX)
    free = entry.get("free_service", True)
    if not isinstance(free, bool):
        raise ShapeError(f"{where} free_service must be a boolean, not {type(free).__name__}")
    category = entry.get("service_category")
    if category is None:
        category = default_category
    elif category not in CATEGORIES:
        raise ShapeError(f"{where} service_category {category!r} is not one of {', '.join(CATEGORIES)}")
    return OfferedService(service_id, name, category, scope, free, provider)


def _check_value(value: Any, where: str) -> dict:
    value = _mapping(value, where, (), VALUE_KINDS)
    if len(value) != 1:
        raise ShapeError(f"{where} must set exactly one of {', '.join(VALUE_KINDS)}, not {len(value)}")
    ((kind, item),) = value.items()
    if kind == "finite_string":
        item = _text(item, f"{where} finite_string", FINITE_STRING_MAX, shortest=0)
    elif kind == "rational_number":
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ShapeError(f"{where} rational_number must be a finite number, not {item!r}")
    elif kind == "bool_value":
        if not isinstance(item, bool):
            raise ShapeError(f"{where} bool_value must be a boolean, not {type(item).__name__}")
    else:
        bounds = {"byte_value": _BYTE, "short_value": _SHORT, "int_value": _INT}[kind]
        item = _integer(item, f"{where} {kind}", bounds)
    return {kind: item}


def check_parameter_sets(answer: Any, service_id: int) -> list[dict]:
    """
    A provider's ``get_service_parameters`` answer, checked and copied.

    Besides EVerest's ``ParameterSet`` type: ``set_id`` is a short (the
    schema's ParameterSetID), unique within the answer; each set has 1–16
    parameters (ParameterSetType) and there are at most 255 sets.

    :param answer: what the provider answered.
    :param service_id: the ServiceID asked for (for messages).
    :returns: a new ``list`` of new ``dict``\\ s in EVerest's shape.
    :raises ShapeError: naming what is wrong.
    """
    where = f"service {service_id} parameter sets"
    sets = _sequence(answer, where, PARAMETER_SETS_MAX)
    checked = []
    seen = set()
    for index, each in enumerate(sets):
        each = _mapping(each, f"{where}[{index}]", ("set_id", "parameters"), ())
        set_id = _integer(each["set_id"], f"{where}[{index}] set_id", _SHORT)
        if set_id in seen:
            raise ShapeError(f"{where}: set_id {set_id} appears twice")
        seen.add(set_id)
        here = f"service {service_id} set {set_id}"
        parameters = _sequence(each["parameters"], f"{here} parameters", PARAMETERS_MAX, shortest=1)
        copied = []
        for number, parameter in enumerate(parameters):
            parameter = _mapping(parameter, f"{here} parameter[{number}]", ("name", "value"), ())
            name = _text(parameter["name"], f"{here} parameter[{number}] name", PARAMETER_NAME_MAX)
            copied.append({"name": name, "value": _check_value(parameter["value"], f"{here} parameter {name!r} value")})
        checked.append({"set_id": set_id, "parameters": copied})
    return checked


def check_selected_service(entry: Any) -> dict:
    """
    One of the EV's choices as handed to :meth:`ServiceRegistry.select
    <evsev2g.vas.ServiceRegistry.select>`.

    :param entry: an EVerest ``SelectedService`` dict; ``parameter_set_id``
        may be missing or ``None`` when the EV named no set.
    :returns: a new ``{"service_id": int, "parameter_set_id": int}``, the
        set id ``0`` when the EV named none (EvseV2G's convention).
    :raises ShapeError: naming what is wrong.
    """
    entry = _mapping(entry, "selected service", ("service_id",), ("parameter_set_id",))
    service_id = _integer(entry["service_id"], "selected service_id", (0, SERVICE_ID_MAX))
    set_id = entry.get("parameter_set_id")
    set_id = 0 if set_id is None else _integer(set_id, f"selected service {service_id} parameter_set_id", _SHORT)
    return {"service_id": service_id, "parameter_set_id": set_id}


def fit_for_ev_decoders(sets: list[dict]) -> tuple[list[dict], list[str]]:
    """
    Checked parameter sets cut to what EV decoders hold
    (:data:`EV_PARAMETER_SETS_MAX` sets, :data:`EV_STRING_MAX`-character
    names and strings), as EvseV2G does.

    :param sets: the output of :func:`check_parameter_sets`.
    :returns: the sets to send (new ``list``; ``sets`` is not changed) and
        one note per cut, for the log.
    """
    notes = []
    if len(sets) > EV_PARAMETER_SETS_MAX:
        dropped = [each["set_id"] for each in sets[EV_PARAMETER_SETS_MAX:]]
        notes.append(f"only the first {EV_PARAMETER_SETS_MAX} parameter sets fit EV decoders; sets {dropped} left out")
    fitted = []
    for each in sets[:EV_PARAMETER_SETS_MAX]:
        parameters = []
        for parameter in each["parameters"]:
            name, value = parameter["name"], dict(parameter["value"])
            if len(name) > EV_STRING_MAX:
                notes.append(f"set {each['set_id']}: parameter name {name!r} cut to {EV_STRING_MAX} characters")
                name = name[:EV_STRING_MAX]
            text = value.get("finite_string")
            if text is not None and len(text) > EV_STRING_MAX:
                notes.append(f"set {each['set_id']}: parameter {name!r} string cut to {EV_STRING_MAX} characters")
                value["finite_string"] = text[:EV_STRING_MAX]
            parameters.append({"name": name, "value": value})
        fitted.append({"set_id": each["set_id"], "parameters": parameters})
    return fitted, notes
