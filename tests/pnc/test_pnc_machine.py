"""
The ISO 15118-2 state machine's Contract path with every bad input the
issue names, on a Clock, messages through the real EXI codec: each gives
the FAILED code the standard names, is logged with its reason, and the
session still ends cleanly with SessionStop; nothing else breaks.
"""

import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.defer import Deferred

from evsev2g.exi import Message
from evsev2g.pki import issue_leaf
from evsev2g.protocols.context import ProtocolSettings
from evsev2g.protocols.iso15118_2.pnc import ContractPath
from evsev2g.security import contract, layout, xmldsig
from evsev2g.security.files import FileSecurity
from evsev2g.sim import ev_pnc

from tests.protocols.iso15118_2.harness import Harness, codec

UTC = datetime.timezone.utc


class PnCHarness(Harness):
    """The ISO-2 harness with Contract payment over TLS and the file security provider."""

    def __init__(self, pki, certs_dir=None, verify=True, central=False, **options):
        super().__init__(dc=True, secure=True, settings=ProtocolSettings(verify_contract_cert_chain=verify), **options)
        self.charger.session_setup(["Contract", "ExternalPayment"], True, central)
        self.context.security = FileSecurity(certs_dir or pki.directory)
        self.machine.contract = ContractPath(self.machine)
        self.pki = pki

    def signed(self, name, body, signature):
        """Send ``body`` with a header Signature; :returns: (code, body, reply)."""
        message = Message("V2G_Message", Header=Message("Header", SessionID=self.machine.session_id, Signature=signature),
                          Body=Message("Body", [(name, body)]))
        message = codec().decode(codec().encode(message))  # as it would arrive
        reply = self.machine.handle(message)
        if isinstance(reply, Deferred):
            fired = []
            reply.addBoth(fired.append)
            assert fired, f"{name} is still waiting"
            reply = fired[0]
        return self.unpack(reply)

    def to_payment_details(self):
        """SessionSetup … PaymentServiceSelection(Contract)."""
        self.run(["SessionSetupReq", "ServiceDiscoveryReq"])
        selected = Message("SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=1)])
        code, _, _ = self.send("PaymentServiceSelectionReq", SelectedPaymentOption="Contract", SelectedServiceList=selected)
        assert code == "OK"

    def payment_details(self, ev_contract, emaid=None):
        """PaymentDetailsReq for ``ev_contract``; :returns: (code, body)."""
        body = Message("PaymentDetailsReq", eMAID=emaid or ev_contract.emaid, ContractSignatureCertChain=ev_contract.cert_chain())
        code, body, _ = self.signed("PaymentDetailsReq", body, None)
        return code, body

    def ends_cleanly(self):
        """SessionStop is answered OK and the connection may close."""
        code, _, reply = self.send("SessionStopReq")
        assert code == "OK" and reply.close


@pytest.fixture
def ev(test_pki):
    """The EV's contract."""
    return ev_pnc.EVContract.from_directory(test_pki.directory)


def other_contract(test_pki, ev, **options):
    """The EV's contract with another leaf (``issue_leaf`` options)."""
    made = issue_leaf(test_pki, layout.CONTRACT_LEAF, **options)
    return ev_pnc.EVContract(contract.ContractChain(made.certificate, ev.chain.sub_cas), made.key)


def test_contract_session_and_services(test_pki, ev):
    """Over TLS the machine offers Contract and the certificate service (Installation, Update); PnC authorizes with a signed request."""
    h = PnCHarness(test_pki)
    h.run(["SessionSetupReq"])
    _, discovery, _ = h.send("ServiceDiscoveryReq")
    assert discovery.PaymentOptionList.getlist("PaymentOption") == ["Contract", "ExternalPayment"]
    assert [s.ServiceID for s in discovery.ServiceList.getlist("Service")] == [2]
    _, detail, _ = h.send("ServiceDetailReq", ServiceID=2)
    assert [(p.ParameterSetID, p.Parameter[0].stringValue) for p in detail.ServiceParameterList.getlist("ParameterSet")] == [
        (1, "Installation"), (2, "Update")]
    selected = Message("SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=1)])
    assert h.send("PaymentServiceSelectionReq", SelectedPaymentOption="Contract", SelectedServiceList=selected)[0] == "OK"
    code, details = h.payment_details(ev)
    assert code == "OK" and len(details.GenChallenge) == 16
    code, body, _ = h.signed("AuthorizationReq", *ev_pnc.authorization_request(codec(), ev, details.GenChallenge))
    assert (code, body.EVSEProcessing) == ("OK", "Ongoing")
    h.charger.authorization_response("Accepted", "Accepted")
    code, body, _ = h.send("AuthorizationReq")
    assert (code, body.EVSEProcessing) == ("OK", "Finished")


def test_no_contract_over_tcp(test_pki):
    """Over plain TCP Contract is not offered and choosing it is FAILED_PaymentSelectionInvalid."""
    h = PnCHarness(test_pki)
    h.context.secure = False
    h.run(["SessionSetupReq"])
    _, discovery, _ = h.send("ServiceDiscoveryReq")
    assert discovery.PaymentOptionList.getlist("PaymentOption") == ["ExternalPayment"] and discovery.get("ServiceList") is None
    selected = Message("SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=1)])
    assert h.send("PaymentServiceSelectionReq", SelectedPaymentOption="Contract", SelectedServiceList=selected)[0] == "FAILED_PaymentSelectionInvalid"


def long_chain(test_pki, ev):
    """The EV's chain with a third Sub-CA (the schema allows four)."""
    chain = ev.cert_chain()
    subs = chain.SubCertificates.getlist("Certificate")
    return ev_pnc.EVContract(ev.chain, ev.key), Message(
        "ContractSignatureCertChain", Certificate=chain.Certificate,
        SubCertificates=Message("SubCertificates", Certificate=subs + [subs[-1]]))


@pytest.mark.parametrize("case, code, reason", [
    ("expired", "FAILED_CertificateExpired", "expired on"),
    ("not yet valid", "FAILED_CertificateExpired", "is not valid before"),
    ("wrong eMAID", "FAILED_CertChainError", "is not the contract leaf's"),
    ("garbage DER", "FAILED_CertChainError", "not a DER X.509 certificate"),
    ("chain too long", "FAILED_CertChainError", "3 Sub-CAs; at most 2"),
    ("unknown root", "FAILED_CertChainError", "no installed MO or V2G root"),
])
def test_payment_details_refusals(test_pki, ev, tmp_path, log_events, case, code, reason):
    """Each bad contract chain gives its FAILED code with a 16-byte GenChallenge and a time stamp, a log line with the reason, and a clean SessionStop."""
    certs_dir = None
    if case == "unknown root":
        certs_dir = tmp_path / "certs"
        (certs_dir / layout.V2G_ROOT).parent.mkdir(parents=True)
        (certs_dir / layout.V2G_ROOT).write_bytes(test_pki.path(layout.V2G_ROOT).read_bytes())
    h = PnCHarness(test_pki, certs_dir)
    h.to_payment_details()
    chain, emaid = ev.cert_chain(), None
    if case == "expired":
        chain = other_contract(test_pki, ev, now=datetime.datetime(2020, 1, 1, tzinfo=UTC), days=30).cert_chain()
    elif case == "not yet valid":
        chain = other_contract(test_pki, ev, now=datetime.datetime.now(UTC) + datetime.timedelta(days=2)).cert_chain()
    elif case == "wrong eMAID":
        emaid = "DEEV2C000000999"
    elif case == "garbage DER":
        chain = Message("ContractSignatureCertChain", Certificate=b"\x30\x82\x02\x00" + bytes(60))
    elif case == "chain too long":
        chain = long_chain(test_pki, ev)[1]
    body = Message("PaymentDetailsReq", eMAID=emaid or ev.emaid, ContractSignatureCertChain=chain)
    got, res, _ = h.signed("PaymentDetailsReq", body, None)
    assert got == code
    assert len(res.GenChallenge) == 16 and res.EVSETimeStamp is not None
    assert f"PaymentDetailsReq answered {code}" in log_events.text() and reason in log_events.text()
    h.ends_cleanly()


def test_unknown_root_handed_on_with_central_validation(test_pki, ev, tmp_path):
    """With central contract validation allowed, a chain to no installed root is handed on: OK, and require_auth_pnc carries no hash data."""
    certs_dir = tmp_path / "certs"
    (certs_dir / layout.V2G_ROOT).parent.mkdir(parents=True)
    (certs_dir / layout.V2G_ROOT).write_bytes(test_pki.path(layout.V2G_ROOT).read_bytes())
    h = PnCHarness(test_pki, certs_dir, central=True)
    h.to_payment_details()
    code, details = h.payment_details(ev)
    assert code == "OK"
    h.signed("AuthorizationReq", *ev_pnc.authorization_request(codec(), ev, details.GenChallenge))
    (token,) = h.vars.payloads("require_auth_pnc")
    assert "iso15118CertificateHashData" not in token


def authorization_case(h, test_pki, ev, challenge, case):
    """The signed AuthorizationReq ``(body, signature)`` of a bad case."""
    if case == "wrong challenge":
        return ev_pnc.authorization_request(codec(), ev, bytes(16))
    body, signature = ev_pnc.authorization_request(codec(), ev, challenge)
    if case == "tampered signature":
        value = bytearray(signature.SignatureValue.value)
        value[0] ^= 0x80
        signature.SignatureValue.value = bytes(value)
    elif case == "another key":
        signature = xmldsig.sign(codec(), [body], ec.generate_private_key(ec.SECP256R1()))
    elif case == "wrong element":
        other = Message("MeteringReceiptReq", attrs={"Id": "id7"}, SessionID=bytes(8),
                        MeterInfo=Message("MeterInfo", MeterID="M"))
        signature = xmldsig.sign(codec(), [other], ev.key)
    elif case == "no signature":
        signature = None
    return body, signature


@pytest.mark.parametrize("case, code, reason", [
    ("wrong challenge", "FAILED_ChallengeInvalid", "not the one sent"),
    ("tampered signature", "FAILED_SignatureError", "does not verify"),
    ("another key", "FAILED_SignatureError", "does not verify"),
    ("wrong element", "FAILED_SignatureError", "names no signed element"),
    ("no signature", "FAILED_SignatureError", "carries no Signature"),
])
def test_authorization_refusals(test_pki, ev, log_events, case, code, reason):
    """Each bad AuthorizationReq gives its FAILED code and reason, require_auth_pnc is not published, and SessionStop still ends the session cleanly."""
    h = PnCHarness(test_pki)
    h.to_payment_details()
    _, details = h.payment_details(ev)
    got, _, _ = h.signed("AuthorizationReq", *authorization_case(h, test_pki, ev, details.GenChallenge, case))
    assert got == code
    assert reason in log_events.text()
    assert h.vars.payloads("require_auth_pnc") == []
    h.ends_cleanly()


def test_replayed_authorization(test_pki, ev):
    """A signed AuthorizationReq replayed in the next session (its challenge spent, a new one issued) is FAILED_ChallengeInvalid."""
    first = PnCHarness(test_pki)
    first.to_payment_details()
    _, details = first.payment_details(ev)
    request = ev_pnc.authorization_request(codec(), ev, details.GenChallenge)
    assert first.signed("AuthorizationReq", *request)[0] == "OK"
    second = PnCHarness(test_pki)
    second.to_payment_details()
    second.payment_details(ev)
    assert second.signed("AuthorizationReq", *request)[0] == "FAILED_ChallengeInvalid"


def test_metering_receipt_signature(test_pki, ev):
    """A MeteringReceiptReq signed by another key is FAILED_MeteringSignatureNotValid."""
    h = PnCHarness(test_pki)
    h.to_payment_details()
    _, details = h.payment_details(ev)
    h.charger.authorization_response("Accepted", "Accepted")
    h.signed("AuthorizationReq", *ev_pnc.authorization_request(codec(), ev, details.GenChallenge))
    h.run(["ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq"])
    meter = Message("MeterInfo", MeterID="M1", MeterReading=10)
    stranger = ev_pnc.EVContract(ev.chain, ec.generate_private_key(ec.SECP256R1()))
    body, signature = ev_pnc.metering_receipt_request(codec(), stranger, h.machine.session_id, meter, 1)
    assert h.signed("MeteringReceiptReq", body, signature)[0] == "FAILED_MeteringSignatureNotValid"


def install_request(test_pki):
    """A signed CertificateInstallationReq ``(body, signature)``."""
    return ev_pnc.install_request(codec(), ev_pnc.EVIdentity.from_directory(test_pki.directory))


def to_installation(h):
    """SessionSetup … PaymentServiceSelection(Contract) with the certificate service, Installation."""
    h.run(["SessionSetupReq", "ServiceDiscoveryReq"])
    selected = Message("SelectedServiceList", SelectedService=[
        Message("SelectedService", ServiceID=1), Message("SelectedService", ServiceID=2, ParameterSetID=1)])
    assert h.send("PaymentServiceSelectionReq", SelectedPaymentOption="Contract", SelectedServiceList=selected)[0] == "OK"


def send_waiting(h, name, body, signature):
    """Send a request whose answer waits; :returns: the Deferred of (code, body, reply)."""
    message = Message("V2G_Message", Header=Message("Header", SessionID=h.machine.session_id, Signature=signature),
                      Body=Message("Body", [(name, body)]))
    reply = h.machine.handle(codec().decode(codec().encode(message)))
    assert isinstance(reply, Deferred)
    return reply.addCallback(h.unpack)


def test_certificate_installation_relayed_with_its_signature(test_pki):
    """The backend's CertificateInstallationRes goes to the EV with the backend's header Signature; the EV accepts it; PaymentDetails follows."""
    from evsev2g.sim.contract_provider import ContractProvider, attach

    h = PnCHarness(test_pki)
    attach(h.charger, ContractProvider(test_pki.directory, codec(), "DEEV2C000000077"), h.clock, delay=1.0)
    to_installation(h)
    done = []
    send_waiting(h, "CertificateInstallationReq", *install_request(test_pki)).addCallback(done.append)
    h.clock.advance(1.0)
    (code, _, reply), = done
    assert code == "OK" and reply.message.Header.Signature is not None
    wire = codec().decode(codec().encode(reply.message))
    identity = ev_pnc.EVIdentity.from_directory(test_pki.directory)
    new = ev_pnc.accept_certificate_response(codec(), wire, identity, datetime.datetime.now(UTC))
    assert new.emaid == "DEEV2C000000077"
    assert h.payment_details(new)[0] == "OK"


def test_certificate_installation_timeout_leaves_the_session_usable(test_pki, log_events):
    """
    No backend answer within 4 s: CertificateInstallationRes FAILED with the
    reason logged; unlike EvseV2G, later answers are not all FAILED:
    SessionStop is answered OK.
    """
    h = PnCHarness(test_pki)
    to_installation(h)
    done = []
    send_waiting(h, "CertificateInstallationReq", *install_request(test_pki)).addCallback(done.append)
    h.clock.advance(3.9)
    assert done == []
    h.clock.advance(0.1)
    (code, body, _), = done
    assert code == "FAILED" and body.get("Signature") is None
    assert "no set_get_certificate_response within 4 s" in log_events.text()
    h.ends_cleanly()


def test_signed_sales_tariff(test_pki, ev, tmp_path):
    """
    On a PnC session the Finished ChargeParameterDiscoveryRes carries a
    SalesTariff per tuple, signed in the header with the MO Sub-CA 2 key
    (checked here with the contract chain's Sub-CA 2); without that key in
    the certificate directory there is none.
    """
    h = PnCHarness(test_pki)
    h.to_payment_details()
    _, details = h.payment_details(ev)
    h.charger.authorization_response("Accepted", "Accepted")
    h.signed("AuthorizationReq", *ev_pnc.authorization_request(codec(), ev, details.GenChallenge))
    code, body, reply = h.send("ChargeParameterDiscoveryReq")
    assert code == "OK" and body.EVSEProcessing == "Finished"
    (tuple_,) = body.SAScheduleList.getlist("SAScheduleTuple")
    tariff = tuple_.SalesTariff
    assert tariff.SalesTariffID == tuple_.SAScheduleTupleID
    wire = codec().decode(codec().encode(reply.message))
    received = wire.Body.ChargeParameterDiscoveryRes.SAScheduleList.SAScheduleTuple[0].SalesTariff
    identifier = received.attrs["Id"]
    assert xmldsig.verify(codec(), wire.Header.Signature, {identifier: received}, ev.chain.sub_cas[0].public_key(), [identifier])

    import shutil

    shutil.copytree(test_pki.directory, tmp_path / "certs")
    (tmp_path / "certs" / layout.MO_SUB_CA2_KEY).unlink()
    unsigned = PnCHarness(test_pki, tmp_path / "certs")
    unsigned.to_payment_details()
    _, details = unsigned.payment_details(ev)
    unsigned.charger.authorization_response("Accepted", "Accepted")
    unsigned.signed("AuthorizationReq", *ev_pnc.authorization_request(codec(), ev, details.GenChallenge))
    _, body, reply = unsigned.send("ChargeParameterDiscoveryReq")
    assert body.SAScheduleList.SAScheduleTuple[0].get("SalesTariff") is None and reply.message.Header.get("Signature") is None
