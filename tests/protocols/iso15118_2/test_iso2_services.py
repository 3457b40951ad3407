"""
Tests of ISO 15118-2 ServiceDiscovery, ServiceDetail,
PaymentServiceSelection, PaymentDetails and Authorization (EIM), with the
real value-added-service registry (:class:`evsev2g.vas.ServiceRegistry`)
holding :class:`evsev2g.testing.FakeValueAddedService` providers.
"""

import pytest
from twisted.internet.task import Clock

from evsev2g.exi.message import Message
from evsev2g.protocols.context import ProtocolSettings
from evsev2g.protocols.iso15118_2 import State
from evsev2g.testing import FakeValueAddedService
from evsev2g.vas import ServiceRegistry
from tests.protocols.iso15118_2.harness import START, Harness

INTERNET = {"service_id": 3, "service_name": "InternetAccess", "service_category": "Internet", "service_scope": "www", "free_service": True}
CUSTOM = {"service_id": 600, "service_name": "Parking", "service_category": "OtherCustom", "free_service": False}
SETS = {
    3: [
        {"set_id": 1, "parameters": [{"name": "Protocol", "value": {"finite_string": "http"}}, {"name": "Port", "value": {"int_value": 80}}]},
        {"set_id": 2, "parameters": [{"name": "Protocol", "value": {"finite_string": "https"}}, {"name": "Port", "value": {"int_value": 443}}]},
    ]
}


def vas_harness(services=(INTERNET, CUSTOM), sets=SETS, asynchronous=False, secure=True, **commands):
    """A harness over TLS whose registry holds one fake provider; returns (harness, provider)."""
    clock = Clock()
    clock.advance(START)
    provider = FakeValueAddedService("fake", list(services), sets, asynchronous=asynchronous)
    registry = ServiceRegistry([provider], clock=clock)
    if asynchronous:
        provider.release()
    return Harness(clock=clock, services=registry, secure=secure, **commands), provider


def selection(*services, option="ExternalPayment"):
    """A PaymentServiceSelectionReq's fields: ``services`` as ServiceID or (ServiceID, ParameterSetID)."""
    entries = []
    for each in services:
        service_id, set_id = each if isinstance(each, tuple) else (each, None)
        entries.append(Message("SelectedService", ServiceID=service_id, ParameterSetID=set_id))
    return {"SelectedPaymentOption": option, "SelectedServiceList": Message("SelectedServiceList", SelectedService=entries)}


def test_discovery_offers_modes_payment_and_services():
    """Energy modes from update_energy_transfer_modes; payment from session_setup; SAE and value-added services listed."""
    h, _ = vas_harness(setup={"evse_id": {"evse_id": "DE*TST*E1"}, "sae_j2847_mode": "V2H", "debug_mode": False})
    h.charger.update_energy_transfer_modes(["AC_three_phase_core", "DC_extended", "AC_BPT"])
    h.run(["SessionSetupReq"])
    code, body, _ = h.send("ServiceDiscoveryReq")
    assert code == "OK"
    assert body.ChargeService.SupportedEnergyTransferMode.EnergyTransferMode == ["AC_three_phase_core", "DC_extended"]
    assert body.PaymentOptionList.PaymentOption == ["ExternalPayment"]
    services = {each.ServiceID: each for each in body.ServiceList.Service}
    assert sorted(services) == [3, 600, 28472]
    assert services[3].ServiceCategory == "Internet" and services[3].ServiceScope == "www" and services[3].FreeService


def test_value_added_services_only_over_tls():
    """Over plain TCP the ServiceList leaves the registry's services out (EvseV2G, Josev); SAE services stay."""
    h, _ = vas_harness(secure=False, setup={"evse_id": {"evse_id": "DE*TST*E1"}, "sae_j2847_mode": "V2G", "debug_mode": False})
    h.run(["SessionSetupReq"])
    _, body, _ = h.send("ServiceDiscoveryReq")
    assert [each.ServiceID for each in body.ServiceList.Service] == [28473]
    assert h.send("PaymentServiceSelectionReq", **selection(1, 3))[0] == "FAILED_ServiceSelectionInvalid"


def test_contract_offered_only_over_tls_with_a_contract_path():
    """Contract is left out over TCP and, without Plug & Charge, over TLS too; ExternalPayment stays."""
    for secure in (False, True):
        h = Harness(secure=secure, session_setup={"payment_options": ["Contract", "ExternalPayment"],
                                                  "supported_certificate_service": False,
                                                  "central_contract_validation_allowed": False})
        h.run(["SessionSetupReq"])
        _, body, _ = h.send("ServiceDiscoveryReq")
        assert body.PaymentOptionList.PaymentOption == ["ExternalPayment"]


def test_discovery_filters_by_category_and_scope():
    """ServiceCategory and ServiceScope filter the ServiceList; EVCharging leaves only the charge service."""
    for filters, expected in (({"ServiceCategory": "Internet"}, [3]), ({"ServiceScope": "www"}, [3]), ({"ServiceCategory": "EVCharging"}, None)):
        h, _ = vas_harness()
        h.run(["SessionSetupReq"])
        code, body, _ = h.send("ServiceDiscoveryReq", **filters)
        assert code == "OK" and body.ChargeService.ServiceID == 1
        listed = body.get("ServiceList")
        assert (None if listed is None else [each.ServiceID for each in listed.Service]) == expected
    # A service filtered out was not offered: selecting it is refused.
    code, _, _ = h.send("PaymentServiceSelectionReq", **selection(1, 3))
    assert code == "FAILED_ServiceSelectionInvalid"


def test_service_detail_of_a_value_added_service():
    """ServiceDetail hands over the provider's parameter sets as ISO-2 ParameterSets; the charge service has none."""
    h, provider = vas_harness()
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    answers = []
    h.send_deferred("ServiceDetailReq", ServiceID=3).addCallback(answers.append)
    code, body, _ = answers[0]
    assert code == "OK" and body.ServiceID == 3 and ("get_service_parameters", 3) in provider.calls
    sets = body.ServiceParameterList.ParameterSet
    assert [(each.ParameterSetID, [(p.attrs["Name"], p.get("stringValue"), p.get("intValue")) for p in each.Parameter]) for each in sets] == [
        (1, [("Protocol", "http", None), ("Port", None, 80)]),
        (2, [("Protocol", "https", None), ("Port", None, 443)]),
    ]
    code, body, _ = h.send("ServiceDetailReq", ServiceID=1)
    assert code == "OK" and body.get("ServiceParameterList") is None


def test_service_detail_waits_for_a_slow_provider_then_answers_without_parameters():
    """A provider answering after the registry's timeout: OK without parameters (EvseV2G's empty answer); the session goes on."""
    h, provider = vas_harness(asynchronous=True)
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    answers = []
    h.send_deferred("ServiceDetailReq", ServiceID=3).addCallback(answers.append)
    assert answers == []
    h.clock.advance(10)
    code, body, reply = answers[0]
    assert code == "OK" and body.get("ServiceParameterList") is None and not reply.close
    provider.release()
    selected = []
    h.send_deferred("PaymentServiceSelectionReq", **selection(1, 3)).addCallback(selected.append)
    provider.release()
    assert selected[0][0] == "OK" and provider.selections == [[{"service_id": 3, "parameter_set_id": 0}]]


def test_service_detail_unknown_or_failing():
    """A ServiceID not offered: FAILED_ServiceIDInvalid echoing it ([V2G2-425]); a provider that raises: OK, no parameters."""
    h, _ = vas_harness()
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    code, body, _ = h.send("ServiceDetailReq", ServiceID=77)
    assert code == "FAILED_ServiceIDInvalid" and body.ServiceID == 77
    h, _ = vas_harness(sets={})
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    answers = []
    h.send_deferred("ServiceDetailReq", ServiceID=3).addCallback(answers.append)
    assert answers[0][0] == "OK" and answers[0][1].ServiceID == 3 and answers[0][1].get("ServiceParameterList") is None


def test_selection_publishes_and_tells_the_registry():
    """PaymentServiceSelection publishes the option, SAE bidi mode, and hands the VAS choice to the registry."""
    h, provider = vas_harness(setup={"evse_id": {"evse_id": "DE*TST*E1"}, "sae_j2847_mode": "V2G", "debug_mode": False})
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    answers = []
    h.send_deferred("PaymentServiceSelectionReq", **selection(1, (3, 2), 28473)).addCallback(answers.append)
    assert answers[0][0] == "OK" and h.machine.state is State.PAYMENT_SELECTED
    assert provider.selections == [[{"service_id": 3, "parameter_set_id": 2}]]
    assert h.vars.payloads("selected_payment_option") == ["ExternalPayment"]
    assert "sae_bidi_mode_active" in h.vars.names()


@pytest.mark.parametrize(
    "fields, code",
    [
        (selection(1, option="Contract"), "FAILED_PaymentSelectionInvalid"),
        (selection(3), "FAILED_NoChargeServiceSelected"),
        (selection(1, 44), "FAILED_ServiceSelectionInvalid"),
    ],
)
def test_selection_errors(fields, code):
    """Option not offered [V2G2-465], charge service missing [V2G2-804], service not offered [V2G2-467]."""
    h, _ = vas_harness()
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    assert h.send("PaymentServiceSelectionReq", **fields)[0] == code


def test_payment_details_and_certificates_out_of_sequence_without_pnc():
    """EIM only: PaymentDetails and the certificate messages are FAILED_SequenceError (close)."""
    for name in ("PaymentDetailsReq", "CertificateInstallationReq"):
        h = Harness()
        h.run(["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"])
        fields = {}
        if name == "CertificateInstallationReq":
            fields = {"OEMProvisioningCert": b"\x30\x00", "ListOfRootCertificateIDs": Message(
                "ListOfRootCertificateIDs", RootCertificateID=[Message("RootCertificateID", X509IssuerName="CN=x", X509SerialNumber=1)])}
            request = h.request(name, **fields)
            request.Body.children[0][1].attrs["Id"] = "id1"
            reply = h.machine.handle(request)
            code = h.unpack(reply)[0]
        else:
            code, _, reply = h.send(name)
        assert code == "FAILED_SequenceError" and reply.close


def test_authorization_ongoing_then_finished():
    """require_auth_eim once; Ongoing_WaitingForCustomerInteraction until authorization_response(Accepted)."""
    h = Harness()
    h.run(["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"])
    for _ in range(2):
        code, body, _ = h.send("AuthorizationReq")
        assert (code, body.EVSEProcessing) == ("OK", "Ongoing_WaitingForCustomerInteraction")
    h.charger.authorization_response("Accepted", "NoCertificateAvailable")
    _, body, _ = h.send("AuthorizationReq")
    assert body.EVSEProcessing == "Finished" and h.vars.names().count("require_auth_eim") == 1


def test_authorization_rejected_or_timed_out():
    """Rejected: FAILED; not authorized within auth_timeout_eim: FAILED ([V2G2-712] budget of the setting)."""
    h = Harness()
    h.run(["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"])
    h.charger.authorization_response("Blocked", "NoCertificateAvailable")
    assert h.send("AuthorizationReq")[0] == "FAILED"
    h = Harness(settings=ProtocolSettings(auth_timeout_eim=30))
    h.run(["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"])
    assert h.send("AuthorizationReq")[1].EVSEProcessing == "Ongoing_WaitingForCustomerInteraction"
    h.clock.advance(30)
    assert h.send("AuthorizationReq")[0] == "FAILED"
    assert h.machine.state is State.FAILED


def test_no_services_is_a_registry():
    """The default registry of a set-up without services provides IServiceRegistry and knows no ServiceID."""
    from zope.interface.verify import verifyObject

    from evsev2g.errors import ServiceUnavailable
    from evsev2g.interfaces import IServiceRegistry
    from evsev2g.protocols.context import NoServices

    registry = NoServices()
    assert verifyObject(IServiceRegistry, registry) and registry.offered() == []
    failures = []
    registry.parameter_sets(3).addErrback(failures.append)
    assert failures[0].check(ServiceUnavailable) and failures[0].value.unknown
