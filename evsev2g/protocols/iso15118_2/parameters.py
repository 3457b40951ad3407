"""
Service parameters: EVerest's ``ParameterSet`` / ``ParameterValue``
(``types/iso15118_vas.yaml``) ⇄ ISO 15118-2's ParameterSet / Parameter.

A ParameterValue has exactly one of ``finite_string``, ``rational_number``,
``byte_value``, ``short_value``, ``int_value``, ``bool_value``; a Parameter
has a Name and one of stringValue, physicalValue, byteValue, shortValue,
intValue, boolValue.  A rational number becomes a PhysicalValue without a
unit of its own; ISO-2's schema requires one, and EvseV2G sends W, so do we.
Values outside their type's range are refused rather than truncated.
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.protocols.physical import physical_value, to_number

__all__ = ["parameter_set", "parameter_value", "everest_parameter_set", "MAX_PARAMETERS"]

#: A ParameterSet holds at most 16 Parameters (ParameterSetType).
MAX_PARAMETERS = 16

#: EVerest key → (ISO element, lowest, highest) for the integer kinds.
_INTEGERS = {
    "byte_value": ("byteValue", -128, 127),
    "short_value": ("shortValue", -32768, 32767),
    "int_value": ("intValue", -(2**31), 2**31 - 1),
}


def parameter_value(name: str, value: dict) -> Message:
    """
    :param name: the parameter's name.
    :param value: an EVerest ParameterValue.
    :returns: the ISO-2 ``Parameter``.
    :raises ValueError: not exactly one known value, or one out of range.
    """
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"parameter {name!r}: a ParameterValue has exactly one value, not {value!r}")
    (key, item), = value.items()
    if key == "finite_string":
        return Message("Parameter", attrs={"Name": name}, stringValue=str(item)[:80])
    if key == "bool_value":
        return Message("Parameter", attrs={"Name": name}, boolValue=bool(item))
    if key == "rational_number":
        return Message("Parameter", attrs={"Name": name}, physicalValue=physical_value(float(item), "W", "physicalValue"))
    if key in _INTEGERS:
        element, low, high = _INTEGERS[key]
        if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
            raise ValueError(f"parameter {name!r}: {key} {item!r} is not an integer in {low}…{high}")
        return Message("Parameter", attrs={"Name": name}, **{element: item})
    raise ValueError(f"parameter {name!r}: unknown value kind {key!r}")


def parameter_set(everest: dict) -> Message:
    """
    :param everest: an EVerest ParameterSet (``set_id``, ``parameters``).
    :returns: the ISO-2 ``ParameterSet`` (1–16 parameters).
    :raises ValueError: a wrong shape.
    """
    parameters = everest["parameters"]
    if not 1 <= len(parameters) <= MAX_PARAMETERS:
        raise ValueError(f"parameter set {everest.get('set_id')}: {len(parameters)} parameters (1…{MAX_PARAMETERS} allowed)")
    set_id = everest["set_id"]
    if not -32768 <= set_id <= 32767:
        raise ValueError(f"parameter set id {set_id} does not fit a short")
    return Message(
        "ParameterSet",
        ParameterSetID=set_id,
        Parameter=[parameter_value(each["name"], each["value"]) for each in parameters],
    )


def everest_parameter_set(message: Message) -> dict:
    """
    :param message: an ISO-2 ``ParameterSet`` (what an EV reads).
    :returns: the EVerest ParameterSet dict.
    """
    parameters = []
    for each in message.getlist("Parameter"):
        if each.get("stringValue") is not None:
            value = {"finite_string": each.stringValue}
        elif each.get("boolValue") is not None:
            value = {"bool_value": each.boolValue}
        elif each.get("physicalValue") is not None:
            value = {"rational_number": to_number(each.physicalValue)}
        else:
            value = next({key: each.get(element)} for key, (element, _, _) in _INTEGERS.items() if each.get(element) is not None)
        parameters.append({"name": each.attrs["Name"], "value": value})
    return {"set_id": message.ParameterSetID, "parameters": parameters}
