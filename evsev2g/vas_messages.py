"""
Value-added services in ISO 15118-2 message trees, both ways.

The registry (:mod:`evsev2g.vas`) speaks EVerest's dict shapes; the ISO-2
state machine builds and reads :class:`~evsev2g.exi.message.Message`
trees.  These three functions are the only translation between them:

- :func:`service_entry` — a ``Service`` of ServiceDiscoveryRes's
  ServiceList;
- :func:`parameter_list` — ServiceDetailRes's ``ServiceParameterList``;
- :func:`selected_services` — PaymentServiceSelectionReq's
  ``SelectedServiceList`` as EVerest ``SelectedService`` dicts;
- :func:`parameter_sets_of` — a received ``ServiceParameterList`` back as
  EVerest ``ParameterSet`` dicts (what an EV, or a test, reads).

Pure data: nothing here imports Twisted.
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.protocols.physical import physical_value, to_number
from evsev2g.vas_types import OfferedService

__all__ = ["RATIONAL_UNIT", "service_entry", "parameter_list", "selected_services", "parameter_sets_of"]

#: The unit a ``rational_number`` parameter is sent with: ISO-2's
#: physicalValue needs one and EVerest's type has none; EvseV2G sends W.
RATIONAL_UNIT = "W"

_ELEMENTS = {
    "finite_string": "stringValue",
    "byte_value": "byteValue",
    "short_value": "shortValue",
    "int_value": "intValue",
    "bool_value": "boolValue",
}


def service_entry(service: OfferedService) -> Message:
    """
    :param service: an offered value-added service.
    :returns: its ``Service`` node (ServiceID, ServiceName, ServiceCategory,
        ServiceScope, FreeService; absent optional fields left out).
    """
    return Message(
        "Service",
        ServiceID=service.service_id,
        ServiceName=service.service_name,
        ServiceCategory=service.service_category,
        ServiceScope=service.service_scope,
        FreeService=service.free_service,
    )


def _parameter(parameter: dict) -> Message:
    ((kind, value),) = parameter["value"].items()
    if kind == "rational_number":
        # finest multiplier that fits the short Value (-3 … 3)
        return Message("Parameter", attrs={"Name": parameter["name"]}, physicalValue=physical_value(value, RATIONAL_UNIT, "physicalValue", min_multiplier=-3))
    return Message("Parameter", attrs={"Name": parameter["name"]}, **{_ELEMENTS[kind]: value})


def parameter_list(sets: list[dict]) -> Message | None:
    """
    :param sets: parameter sets as :meth:`ServiceRegistry.parameter_sets
        <evsev2g.vas.ServiceRegistry.parameter_sets>` fires with.
    :returns: the ``ServiceParameterList`` node, or ``None`` for no sets
        (ServiceDetailRes then leaves it out).
    """
    if not sets:
        return None
    return Message(
        "ServiceParameterList",
        ParameterSet=[
            Message("ParameterSet", ParameterSetID=each["set_id"], Parameter=[_parameter(parameter) for parameter in each["parameters"]])
            for each in sets
        ],
    )


def selected_services(selected_list: Message | None) -> list[dict]:
    """
    :param selected_list: PaymentServiceSelectionReq's
        ``SelectedServiceList`` node (or ``None``).
    :returns: one EVerest ``SelectedService`` dict per entry, in order;
        ``parameter_set_id`` is ``None`` when the EV named no set (the
        registry hands providers ``0`` then).
    """
    if selected_list is None:
        return []
    return [
        {"service_id": entry.ServiceID, "parameter_set_id": entry.get("ParameterSetID")}
        for entry in selected_list.getlist("SelectedService")
    ]


def parameter_sets_of(parameter_list_node: Message | None) -> list[dict]:
    """
    :param parameter_list_node: a decoded ``ServiceParameterList`` (or
        ``None`` when ServiceDetailRes had none).
    :returns: its sets as EVerest ``ParameterSet`` dicts, in order; a
        physicalValue reads as ``rational_number`` (its unit is dropped).
    """
    if parameter_list_node is None:
        return []
    kinds = {element: kind for kind, element in _ELEMENTS.items()}
    sets = []
    for each in parameter_list_node.getlist("ParameterSet"):
        parameters = []
        for parameter in each.getlist("Parameter"):
            name, value = parameter.children[0]
            value = {"rational_number": to_number(value)} if name == "physicalValue" else {kinds[name]: value}
            parameters.append({"name": parameter.attrs["Name"], "value": value})
        sets.append({"set_id": each.ParameterSetID, "parameters": parameters})
    return sets
