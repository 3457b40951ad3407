"""
Value-added services in ISO 15118-2 messages (:mod:`evsev2g.vas_messages`):
whatever the registry accepts encodes with the real ISO-2 codec, and reads
back as it was meant.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from evsev2g.exi import Message, load_codec
from evsev2g.vas import ServiceRegistry
from evsev2g.vas_internet import InternetAccess
from evsev2g.vas_messages import parameter_list, parameter_sets_of, selected_services, service_entry
from evsev2g.vas_types import check_offered_service, check_parameter_sets, fit_for_ev_decoders

ISO2 = load_codec("iso15118-2")
SID = bytes.fromhex("0102030405060708")


def v2g(body: str, **fields) -> Message:
    """A V2G_Message with our SessionID around one body element."""
    return Message("V2G_Message", Header=Message("Header", SessionID=SID), Body=Message("Body", **{body: Message(body, **fields)}))


def round_trip(message: Message) -> Message:
    """Encode (the encoder checks the schema) and decode again."""
    return ISO2.decode(ISO2.encode(message))


def discovery(services) -> Message:
    """A ServiceDiscoveryRes listing ``services`` after the charge service."""
    return v2g(
        "ServiceDiscoveryRes",
        ResponseCode="OK",
        PaymentOptionList=Message("PaymentOptionList", PaymentOption=["ExternalPayment"]),
        ChargeService=Message(
            "ChargeService",
            ServiceID=1,
            ServiceCategory="EVCharging",
            FreeService=False,
            SupportedEnergyTransferMode=Message("SupportedEnergyTransferMode", EnergyTransferMode=["DC_extended"]),
        ),
        ServiceList=Message("ServiceList", Service=[service_entry(each) for each in services]) if services else None,
    )


def detail(sets) -> Message:
    """A ServiceDetailRes for service 3 with ``sets``."""
    return v2g("ServiceDetailRes", ResponseCode="OK", ServiceID=3, ServiceParameterList=parameter_list(sets))


def test_internet_access_in_discovery_and_detail():
    """The example provider's service and parameter sets make a ServiceDiscoveryRes and a ServiceDetailRes that encode and read back."""
    registry = ServiceRegistry([InternetAccess(["http", "https"], service_scope="depot")], clock=Clock())
    body = round_trip(discovery(registry.offered())).Body.ServiceDiscoveryRes
    (service,) = body.ServiceList.Service
    assert (service.ServiceID, service.ServiceName, service.ServiceCategory, service.ServiceScope, service.FreeService) == (3, "InternetAccess", "Internet", "depot", True)
    sets = []
    registry.parameter_sets(3).addCallback(sets.extend)
    decoded = round_trip(detail(sets)).Body.ServiceDetailRes.ServiceParameterList.ParameterSet
    assert [(each.ParameterSetID, [(p.attrs["Name"], p.get("stringValue"), p.get("intValue")) for p in each.Parameter]) for each in decoded] == [
        (3, [("Protocol", "http", None), ("Port", None, 80)]),
        (4, [("Protocol", "https", None), ("Port", None, 443)]),
    ]


def test_no_sets_leaves_the_list_out():
    """An empty answer gives a ServiceDetailRes without ServiceParameterList."""
    assert parameter_list([]) is None
    assert round_trip(detail([])).Body.ServiceDetailRes.get("ServiceParameterList") is None


def test_selected_services_from_a_request():
    """PaymentServiceSelectionReq's SelectedServiceList reads as SelectedService dicts; a missing ParameterSetID is None."""
    request = round_trip(
        v2g(
            "PaymentServiceSelectionReq",
            SelectedPaymentOption="ExternalPayment",
            SelectedServiceList=Message(
                "SelectedServiceList",
                SelectedService=[Message("SelectedService", ServiceID=1), Message("SelectedService", ServiceID=3, ParameterSetID=4)],
            ),
        )
    )
    assert selected_services(request.Body.PaymentServiceSelectionReq.SelectedServiceList) == [
        {"service_id": 1, "parameter_set_id": None},
        {"service_id": 3, "parameter_set_id": 4},
    ]
    assert selected_services(None) == []


text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=80)
values = st.one_of(
    st.builds(lambda v: {"finite_string": v}, st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=80)),
    st.builds(lambda v: {"rational_number": v}, st.floats(-3.2e7, 3.2e7, allow_nan=False)),
    st.builds(lambda v: {"byte_value": v}, st.integers(-128, 127)),
    st.builds(lambda v: {"short_value": v}, st.integers(-32768, 32767)),
    st.builds(lambda v: {"int_value": v}, st.integers(-(2**31), 2**31 - 1)),
    st.builds(lambda v: {"bool_value": v}, st.booleans()),
)
parameter_sets = st.lists(
    st.fixed_dictionaries({"set_id": st.integers(-32768, 32767), "parameters": st.lists(st.fixed_dictionaries({"name": text, "value": values}), min_size=1, max_size=16)}),
    max_size=8,
    unique_by=lambda each: each["set_id"],
)


@settings(max_examples=60, deadline=None)
@given(parameter_sets)
def test_every_accepted_answer_encodes(sets):
    """Any answer check_parameter_sets accepts, once fitted for EV decoders, encodes as a schema-valid ServiceDetailRes with the same values."""
    fitted, _ = fit_for_ev_decoders(check_parameter_sets(sets, 3))
    got = parameter_sets_of(round_trip(detail(fitted)).Body.ServiceDetailRes.get("ServiceParameterList"))
    assert [each["set_id"] for each in got] == [each["set_id"] for each in fitted]
    for sent, back in zip(fitted, got):
        assert [p["name"] for p in back["parameters"]] == [p["name"] for p in sent["parameters"]]
        for parameter, read in zip(sent["parameters"], back["parameters"]):
            ((kind, value),) = parameter["value"].items()
            ((read_kind, read_value),) = read["value"].items()
            assert read_kind == kind
            if kind == "rational_number":
                assert abs(read_value - value) <= max(0.0005, abs(value) * 0.001)
            else:
                assert read_value == value


services = st.lists(
    st.fixed_dictionaries(
        {"service_id": st.integers(2, 65535)},
        optional={
            "service_name": st.text(min_size=1, max_size=32),
            "service_scope": st.text(min_size=1, max_size=64),
            "free_service": st.booleans(),
            "service_category": st.sampled_from(["Internet", "ContractCertificate", "OtherCustom"]),
        },
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(services)
def test_every_accepted_service_encodes(entries):
    """Any OfferedService check_offered_service accepts makes a ServiceDiscoveryRes entry that encodes."""
    records = [check_offered_service(entry) for entry in entries]
    body = round_trip(discovery(records)).Body.ServiceDiscoveryRes
    assert [s.ServiceID for s in body.ServiceList.Service] == [r.service_id for r in records]
