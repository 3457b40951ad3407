"""
Tests of ISO 15118-2 ServiceDiscovery, ServiceDetail,
PaymentServiceSelection, PaymentDetails and Authorization (EIM), with the
value-added-service registry stand-in of :mod:`evsev2g.testing_iso2`.
"""

from twisted.internet.defer import Deferred

from evsev2g.exi.message import Message
from evsev2g.protocols.context import ProtocolSettings
from evsev2g.protocols.iso15118_2 import State
from evsev2g.protocols.iso15118_2.parameters import everest_parameter_set, parameter_set, parameter_value
from evsev2g.testing_iso2 import OfferedService, StaticServices
from evsev2g.timers import PLUGIN_ANSWER_TIME
from tests.protocols.iso15118_2.harness import Harness

import pytest

INTERNET = OfferedService(3, "InternetAccess", "Internet", "www", True)
CUSTOM = OfferedService(600, "Parking", "OtherCustom", None, False)
SETS = {
    3: [
        {"set_id": 1, "parameters": [{"name": "Protocol", "value": {"finite_string": "http"}}, {"name": "Port", "value": {"int_value": 80}}]},
        {"set_id": 2, "parameters": [{"name": "Protocol", "value": {"finite_string": "https"}}, {"name": "Port", "value": {"int_value": 443}}]},
    ]
}


def selection(*services, option="ExternalPayment"):
    """A PaymentServiceSelectionReq's fields: ``services`` as ServiceID or (ServiceID, ParameterSetID)."""
    entries = []
    for each in services:
        service_id, set_id = each if isinstance(each, tuple) else (each, None)
        entries.append(Message("SelectedService", ServiceID=service_id, ParameterSetID=set_id))
    return {"SelectedPaymentOption": option, "SelectedServiceList": Message("SelectedServiceList", SelectedService=entries)}


def test_discovery_offers_modes_payment_and_services():
    """Energy modes from update_energy_transfer_modes; payment from session_setup; SAE and value-added services listed."""
    h = Harness(dc=False, services=StaticServices([INTERNET, CUSTOM]), setup={"evse_id": {"evse_id": "DE*TST*E1"}, "sae_j2847_mode": "V2H", "debug_mode": False})
    h.run(["SessionSetupReq"])
    code, body, _ = h.send("ServiceDiscoveryReq")
    assert code == "OK"
    assert body.ChargeService.SupportedEnergyTransferMode.EnergyTransferMode == ["AC_single_phase_core", "AC_three_phase_core"]
    assert body.PaymentOptionList.PaymentOption == ["ExternalPayment"]
    services = {each.ServiceID: each for each in body.ServiceList.Service}
    assert sorted(services) == [3, 600, 28472]
    assert services[3].ServiceCategory == "Internet" and services[3].ServiceScope == "www" and services[3].FreeService


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
        h = Harness(services=StaticServices([INTERNET, CUSTOM]))
        h.run(["SessionSetupReq"])
        code, body, _ = h.send("ServiceDiscoveryReq", **filters)
        assert code == "OK" and body.ChargeService.ServiceID == 1
        listed = body.get("ServiceList")
        assert (None if listed is None else [each.ServiceID for each in listed.Service]) == expected
    # A service filtered out was not offered: selecting it is refused.
    code, _, _ = h.send("PaymentServiceSelectionReq", **selection(1, 3))
    assert code == "FAILED_ServiceSelectionInvalid"


def test_service_detail_of_a_value_added_service():
    """ServiceDetail hands over the registry's parameter sets, converted to ISO-2 Parameters."""
    h = Harness(services=StaticServices([INTERNET], SETS))
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    answers = []
    h.send_deferred("ServiceDetailReq", ServiceID=3).addCallback(answers.append)
    code, body, _ = answers[0]
    assert code == "OK" and body.ServiceID == 3
    sets = body.ServiceParameterList.ParameterSet
    assert [everest_parameter_set(each) for each in sets] == SETS[3]
    code, body, _ = h.send("ServiceDetailReq", ServiceID=1)
    assert code == "OK" and body.get("ServiceParameterList") is None


def test_service_detail_waits_for_a_slow_provider_then_gives_up():
    """A parameter set still pending after PLUGIN_ANSWER_TIME: FAILED_ServiceIDInvalid; the session goes on."""
    pending = Deferred()
    h = Harness(services=StaticServices([INTERNET], {3: pending}))
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    answers = []
    h.send_deferred("ServiceDetailReq", ServiceID=3).addCallback(answers.append)
    assert answers == []
    h.clock.advance(PLUGIN_ANSWER_TIME)
    code, _, reply = answers[0]
    assert code == "FAILED_ServiceIDInvalid" and not reply.close


def test_service_detail_unknown_or_unavailable():
    """A ServiceID not offered, or whose provider fails: FAILED_ServiceIDInvalid echoing the ID ([V2G2-425])."""
    h = Harness(services=StaticServices([INTERNET], unavailable={3}))
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    code, body, _ = h.send("ServiceDetailReq", ServiceID=77)
    assert code == "FAILED_ServiceIDInvalid" and body.ServiceID == 77
    h = Harness(services=StaticServices([INTERNET], unavailable={3}))
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    answers = []
    h.send_deferred("ServiceDetailReq", ServiceID=3).addCallback(answers.append)
    assert answers[0][0] == "FAILED_ServiceIDInvalid"


def test_selection_publishes_and_tells_the_registry():
    """PaymentServiceSelection publishes the option, SAE bidi mode, and hands the VAS choice to the registry."""
    services = StaticServices([INTERNET], SETS)
    h = Harness(services=services, setup={"evse_id": {"evse_id": "DE*TST*E1"}, "sae_j2847_mode": "V2G", "debug_mode": False})
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    answers = []
    h.send_deferred("PaymentServiceSelectionReq", **selection(1, (3, 2), 28473)).addCallback(answers.append)
    assert answers[0][0] == "OK" and h.machine.state is State.PAYMENT_SELECTED
    assert services.selections == [[{"service_id": 3, "parameter_set_id": 2}]]
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
    h = Harness(services=StaticServices([INTERNET]))
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
    """require_auth_eim once; Ongoing until authorization_response(Accepted)."""
    h = Harness()
    h.run(["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"])
    for _ in range(2):
        code, body, _ = h.send("AuthorizationReq")
        assert (code, body.EVSEProcessing) == ("OK", "Ongoing")
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
    assert h.send("AuthorizationReq")[1].EVSEProcessing == "Ongoing"
    h.clock.advance(30)
    assert h.send("AuthorizationReq")[0] == "FAILED"
    assert h.machine.state is State.FAILED


def test_parameter_conversion_both_ways():
    """Every EVerest ParameterValue kind converts to its ISO-2 element and back; wrong shapes are refused."""
    values = [
        {"finite_string": "x"}, {"bool_value": True}, {"byte_value": -3}, {"short_value": 1000},
        {"int_value": 70000}, {"rational_number": 12.5},
    ]
    everest = {"set_id": 4, "parameters": [{"name": f"p{i}", "value": v} for i, v in enumerate(values)]}
    assert everest_parameter_set(parameter_set(everest)) == everest
    for bad in ({"byte_value": 300}, {"int_value": 1, "bool_value": True}, {"float": 1.0}, {"short_value": True}):
        with pytest.raises(ValueError):
            parameter_value("p", bad)
    with pytest.raises(ValueError):
        parameter_set({"set_id": 1, "parameters": []})
