"""
PhysicalValueType (Multiplier, Unit, Value) ⇄ Python numbers.

DIN 70121 and ISO 15118-2 carry voltages, currents, powers, energies and
times as ``Value × 10^Multiplier`` with a 16-bit signed Value and a
Multiplier of -3…3.
"""

from __future__ import annotations

from evsev2g.charger import VARS
from evsev2g.exi.message import Message

__all__ = ["to_number", "physical_value", "clamp_to_var", "SHORT_MIN", "SHORT_MAX"]

SHORT_MIN = -32768
SHORT_MAX = 32767


def to_number(value: Message | None) -> float | None:
    """
    The number a PhysicalValue stands for.

    :param value: a PhysicalValue node, or ``None``.
    :returns: ``float`` (``int`` when exact), or ``None`` for ``None``.
    """
    if value is None:
        return None
    multiplier = value.get("Multiplier", 0) or 0
    number = value.Value * (10 ** multiplier) if multiplier >= 0 else value.Value / (10 ** -multiplier)
    return number


def physical_value(number: float, unit: str | None, name: str = "PhysicalValue", min_multiplier: int = -1) -> Message:
    """
    Encode ``number`` with the finest multiplier (not below
    ``min_multiplier``) whose Value fits 16 bits; values beyond what
    Multiplier 3 can carry are clamped.

    :param number: the quantity in the base unit (V, A, W, Wh, s).
    :param unit: the unitSymbolType, or ``None`` to leave Unit out.
    :param name: the element name of the node.
    :param min_multiplier: the finest multiplier to use (-3…3).
    :returns: a ``Message`` with Multiplier, Unit and Value.
    """
    for multiplier in range(min_multiplier, 4):
        scaled = round(number / (10 ** multiplier)) if multiplier >= 0 else round(number * (10 ** -multiplier))
        if SHORT_MIN <= scaled <= SHORT_MAX:
            break
    else:
        scaled = max(SHORT_MIN, min(SHORT_MAX, scaled))
    return Message(name, Multiplier=multiplier, Unit=unit, Value=int(scaled))


def clamp_to_var(var: str, value: float, key: str | None = None) -> float:
    """
    Clamp a number the EV sent into the range of the EVerest var it is
    published in, as :mod:`evsev2g.charger_types` declares it (so the range
    is written once, where the payload shape is).

    :param var: a var of :data:`evsev2g.charger.VARS` whose type is a
        ``Number`` or an ``Object`` of ``Number`` fields.
    :param value: the number.
    :param key: the field of an ``Object`` var, else ``None``.
    :returns: ``value`` within the declared minimum and maximum.
    """
    shape = VARS[var]
    if key is not None:
        shape = shape.required.get(key) or shape.optional[key]
    low, high = shape.minimum, shape.maximum
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value
