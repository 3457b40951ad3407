"""
Plug & Charge of one ISO 15118-2 session
(:class:`evsev2g.protocols.iso15118_2.pnc.PlugAndCharge`) with the real
charger seam, the file security provider over the test PKI, messages that
went through the EXI codec, and an injected clock.
"""

import base64
import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.task import Clock

from evsev2g.charger import Charger
from evsev2g.exi import Message, load_codec
from evsev2g.pki import issue_leaf
from evsev2g.protocols.iso15118_2.pnc_session import CERTIFICATE_WAIT, PlugAndCharge
from evsev2g.responses import (
    AuthorizationTimeout, CertChainError, CertificateExpired, CertificateRevoked, CertificateServiceFailed,
    ChallengeInvalid, ISO15118_2, MeteringSignatureNotValid, NoTrustedRoot, SignatureError, response_code,
)
from evsev2g.security import contract, layout, xmldsig
from evsev2g.security.files import FileSecurity
from evsev2g.sim import ev_pnc
from evsev2g.sim.contract_provider import ContractProvider, attach

SESSION = b"\x11" * 8


@pytest.fixture(scope="module")
def iso2():
    """The ISO 15118-2 codec."""
    return load_codec("iso15118-2")


@pytest.fixture
def clock():
    """A fake clock."""
    return Clock()


@pytest.fixture
def charger(clock):
    """A charger seam recording the vars published."""
    seam = Charger(clock)
    seam.published = []
    seam.subscribe(lambda name, payload: seam.published.append((name, payload)))
    return seam


def make_pnc(charger, clock, iso2, pki, verify=True, timeout=55.0, certs_dir=None):
    """A PlugAndCharge over the test PKI."""
    return PlugAndCharge(charger, clock, iso2, FileSecurity(certs_dir or pki.directory), verify_chain=verify,
                         auth_timeout=timeout, label="test")


@pytest.fixture
def ev(test_pki):
    """The EV's contract from the test PKI."""
    return ev_pnc.EVContract.from_directory(test_pki.directory)


def wire(iso2, name, body, signature=None):
    """``(body, header)`` of a V2G message after an EXI round trip."""
    message = Message("V2G_Message", Header=Message("Header", SessionID=SESSION, Signature=signature),
                      Body=Message("Body", **{name: body}))
    decoded = iso2.decode(iso2.encode(message))
    return decoded.Body.get(name), decoded.Header


def payment_details(iso2, ev_contract, emaid=None):
    """A PaymentDetailsReq body for a contract."""
    body = Message("PaymentDetailsReq", eMAID=emaid or ev_contract.emaid, ContractSignatureCertChain=ev_contract.cert_chain())
    return wire(iso2, "PaymentDetailsReq", body)[0]


def result(deferred):
    """The result of a Deferred that has fired (its failure raised)."""
    outcome = []
    deferred.addBoth(outcome.append)
    assert outcome, "the Deferred has not fired"
    if hasattr(outcome[0], "raiseException"):
        outcome[0].raiseException()
    return outcome[0]


def signed_authorization(iso2, ev_contract, challenge, key=None):
    """A signed AuthorizationReq ``(body, header)``."""
    body, signature = ev_pnc.authorization_request(iso2, ev_contract, challenge)
    if key is not None:
        signature = xmldsig.sign(iso2, [body], key)
    return wire(iso2, "AuthorizationReq", body, signature)


def test_pnc_authorization_end_to_end(charger, clock, iso2, test_pki, ev):
    """PaymentDetails verifies the chain and sends a fresh challenge; the signed AuthorizationReq publishes require_auth_pnc; empty polls wait for Accepted."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    res = result(pnc.payment_details(payment_details(iso2, ev)))
    assert res.ResponseCode == "OK" and len(res.GenChallenge) == 16
    assert abs(res.EVSETimeStamp - datetime.datetime.now(datetime.timezone.utc).timestamp()) < 60
    assert pnc.authorization(*signed_authorization(iso2, ev, res.GenChallenge)) is False
    (name, token), = [p for p in charger.published if p[0] == "require_auth_pnc"]
    assert token["id_token"] == {"value": "DEEV2C000000001", "type": "eMAID"}
    assert token["authorization_type"] == "PlugAndCharge"
    assert token["certificate"] == ev.chain.pem()
    assert len(token["iso15118CertificateHashData"]) == 3 and token["iso15118CertificateHashData"][0]["hashAlgorithm"] == "SHA256"
    empty = wire(iso2, "AuthorizationReq", Message("AuthorizationReq"))
    assert pnc.authorization(*empty) is False
    charger.authorization_response("Accepted", "Accepted")
    assert pnc.authorization(*empty) is True


def test_wrong_tampered_and_replayed(charger, clock, iso2, test_pki, ev):
    """A wrong challenge is FAILED_ChallengeInvalid, a signature by another key FAILED_SignatureError, a replayed signed request FAILED_ChallengeInvalid."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    challenge = result(pnc.payment_details(payment_details(iso2, ev))).GenChallenge
    with pytest.raises(ChallengeInvalid):
        pnc.authorization(*signed_authorization(iso2, ev, bytes(16)))
    challenge = result(pnc.payment_details(payment_details(iso2, ev))).GenChallenge
    with pytest.raises(SignatureError) as caught:
        pnc.authorization(*signed_authorization(iso2, ev, challenge, key=ec.generate_private_key(ec.SECP256R1())))
    assert response_code(caught.value, ISO15118_2) == "FAILED_SignatureError"
    challenge = result(pnc.payment_details(payment_details(iso2, ev))).GenChallenge
    request = signed_authorization(iso2, ev, challenge)
    assert pnc.authorization(*request) is False
    with pytest.raises(ChallengeInvalid, match="no GenChallenge is outstanding"):
        pnc.authorization(*request)


def test_unsigned_first_authorization(charger, clock, iso2, test_pki, ev):
    """The first AuthorizationReq of a Contract session without a Signature is FAILED_SignatureError."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    challenge = result(pnc.payment_details(payment_details(iso2, ev))).GenChallenge
    body = Message("AuthorizationReq", attrs={"Id": "id1"}, GenChallenge=challenge)
    with pytest.raises(SignatureError, match="no Signature"):
        pnc.authorization(*wire(iso2, "AuthorizationReq", body))


def test_auth_timeout_pnc(charger, clock, iso2, test_pki, ev):
    """Without authorization_response, the poll after auth_timeout_pnc (from PaymentDetails) is FAILED; before it, Ongoing."""
    pnc = make_pnc(charger, clock, iso2, test_pki, timeout=10)
    challenge = result(pnc.payment_details(payment_details(iso2, ev))).GenChallenge
    assert pnc.authorization(*signed_authorization(iso2, ev, challenge)) is False
    empty = wire(iso2, "AuthorizationReq", Message("AuthorizationReq"))
    clock.advance(9.9)
    assert pnc.authorization(*empty) is False
    clock.advance(0.1)
    with pytest.raises(AuthorizationTimeout, match="auth_timeout_pnc = 10 s"):
        pnc.authorization(*empty)


def test_backend_rejects_the_certificate(charger, clock, iso2, test_pki, ev):
    """authorization_response with certificate_status CertificateRevoked gives FAILED_CertificateRevoked."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    challenge = result(pnc.payment_details(payment_details(iso2, ev))).GenChallenge
    pnc.authorization(*signed_authorization(iso2, ev, challenge))
    charger.authorization_response("Invalid", "CertificateRevoked")
    with pytest.raises(CertificateRevoked) as caught:
        pnc.authorization(*wire(iso2, "AuthorizationReq", Message("AuthorizationReq")))
    assert response_code(caught.value, ISO15118_2) == "FAILED_CertificateRevoked"


def replaced_leaf(test_pki, ev, **options):
    """The EV's contract with a leaf issued with ``options``."""
    made = issue_leaf(test_pki, layout.CONTRACT_LEAF, **options)
    return ev_pnc.EVContract(contract.ContractChain(made.certificate, ev.chain.sub_cas), made.key)


def test_payment_details_refusals(charger, clock, iso2, test_pki, ev, tmp_path):
    """Expired, not yet valid, wrong eMAID, garbage DER and unknown root each give their FAILED code."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    with pytest.raises(CertificateExpired, match="expired on"):
        result(pnc.payment_details(payment_details(iso2, replaced_leaf(test_pki, ev, now=old, days=10))))
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)
    with pytest.raises(CertificateExpired, match="not valid before"):
        result(pnc.payment_details(payment_details(iso2, replaced_leaf(test_pki, ev, now=future))))
    with pytest.raises(CertChainError, match="is not the contract leaf's"):
        result(pnc.payment_details(payment_details(iso2, ev, emaid="DEEV2C000000002")))
    garbage = wire(iso2, "PaymentDetailsReq", Message("PaymentDetailsReq", eMAID="DEEV2C000000001",
                   ContractSignatureCertChain=Message("ContractSignatureCertChain", Certificate=b"\x30\x00garbage")))[0]
    with pytest.raises(CertChainError, match="not a DER X.509"):
        result(pnc.payment_details(garbage))
    no_mo = tmp_path / "certs"
    (no_mo / "ca" / "v2g").mkdir(parents=True)
    (no_mo / layout.V2G_ROOT).write_bytes(test_pki.path(layout.V2G_ROOT).read_bytes())
    pnc = make_pnc(charger, clock, iso2, test_pki, certs_dir=no_mo)
    with pytest.raises(NoTrustedRoot):
        result(pnc.payment_details(payment_details(iso2, ev)))
    charger.session_setup(["Contract", "ExternalPayment"], True, True)
    res = result(pnc.payment_details(payment_details(iso2, ev)))
    assert res.ResponseCode == "OK" and pnc.hash_data is None  # handed on to the backend


def test_expires_soon_and_verification_off(charger, clock, iso2, test_pki, ev):
    """A leaf expiring within 21 days is OK_CertificateExpiresSoon; without verify_contract_cert_chain an expired chain is handed on."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    assert result(pnc.payment_details(payment_details(iso2, replaced_leaf(test_pki, ev, days=5)))).ResponseCode == "OK_CertificateExpiresSoon"
    pnc = make_pnc(charger, clock, iso2, test_pki, verify=False)
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    assert result(pnc.payment_details(payment_details(iso2, replaced_leaf(test_pki, ev, now=old, days=10)))).ResponseCode == "OK"


def install_message(iso2, test_pki):
    """A whole signed CertificateInstallationReq message."""
    body, signature = ev_pnc.install_request(iso2, ev_pnc.EVIdentity.from_directory(test_pki.directory))
    return Message("V2G_Message", Header=Message("Header", SessionID=SESSION, Signature=signature),
                   Body=Message("Body", CertificateInstallationReq=body))


def test_certificate_installation_through_the_backend(charger, clock, iso2, test_pki):
    """The request goes out as base64 EXI; the provider's answer 0.5 s later is relayed with its signature, which the EV accepts."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    attach(charger, ContractProvider(test_pki.directory, iso2, "DEEV2C000000007"), clock, delay=0.5)
    request = install_message(iso2, test_pki)
    pending = pnc.certificate_request(request, "Install")
    (name, payload), = [p for p in charger.published if p[0] == "iso15118_certificate_request"]
    assert payload["certificate_action"] == "Install" and payload["iso15118_schema_version"] == "urn:iso:15118:2:2013:MsgDef"
    assert base64.b64decode(payload["exi_request"]) == iso2.encode(request)
    clock.advance(0.5)
    message = result(pending)
    new = ev_pnc.accept_certificate_response(iso2, message, ev_pnc.EVIdentity.from_directory(test_pki.directory),
                                             datetime.datetime.now(datetime.timezone.utc))
    assert new.emaid == "DEEV2C000000007"


def test_certificate_installation_timeout_and_failure(charger, clock, iso2, test_pki):
    """No answer within the wait is FAILED; so is status Failed; an answer after the timeout changes nothing."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    pending = pnc.certificate_request(install_message(iso2, test_pki), "Install")
    clock.advance(CERTIFICATE_WAIT)
    with pytest.raises(CertificateServiceFailed, match="no set_get_certificate_response within 4 s") as caught:
        result(pending)
    assert response_code(caught.value, ISO15118_2) == "FAILED"
    charger.set_get_certificate_response({"status": "Accepted", "certificate_action": "Install", "exi_response": "AAAA"})
    pending = pnc.certificate_request(install_message(iso2, test_pki), "Install")
    charger.set_get_certificate_response({"status": "Failed", "certificate_action": "Install"})
    with pytest.raises(CertificateServiceFailed, match="answered Failed"):
        result(pending)
    pending = pnc.certificate_request(install_message(iso2, test_pki), "Install")
    charger.set_get_certificate_response({"status": "Accepted", "certificate_action": "Install", "exi_response": "AAAA"})
    with pytest.raises(CertificateServiceFailed, match="not ISO-2 EXI"):
        result(pending)
    assert clock.getDelayedCalls() == []


def test_metering_receipt_signature(charger, clock, iso2, test_pki, ev):
    """On a PnC session a MeteringReceiptReq signed by the contract key passes; signed by another key it is FAILED_MeteringSignatureNotValid."""
    pnc = make_pnc(charger, clock, iso2, test_pki)
    result(pnc.payment_details(payment_details(iso2, ev)))
    meter = Message("MeterInfo", MeterID="M1", MeterReading=1234)
    body, signature = ev_pnc.metering_receipt_request(iso2, ev, SESSION, meter, 1)
    pnc.metering_receipt(*wire(iso2, "MeteringReceiptReq", body, signature))
    stranger = ev_pnc.EVContract(ev.chain, ec.generate_private_key(ec.SECP256R1()))
    body, signature = ev_pnc.metering_receipt_request(iso2, stranger, SESSION, meter, 1)
    with pytest.raises(MeteringSignatureNotValid) as caught:
        pnc.metering_receipt(*wire(iso2, "MeteringReceiptReq", body, signature))
    assert response_code(caught.value, ISO15118_2) == "FAILED_MeteringSignatureNotValid"


def test_a_slow_provider(charger, clock, iso2, test_pki, ev):
    """
    A provider that answers with Deferreds (as one over MQTT would): the
    trust anchors are waited for; OCSP data that does not come within
    OCSP_WAIT is gone without, and PaymentDetails still answers OK.
    """
    from twisted.internet import defer

    from evsev2g.protocols.iso15118_2.pnc_session import OCSP_WAIT
    from evsev2g.testing import FakeSecurity

    class Remote(FakeSecurity):
        def verify_file(self, ca_type):
            return defer.succeed(super().verify_file(ca_type))

        def mo_ocsp_request_data(self, certificate_chain):
            return defer.Deferred()  # never answers

    security = Remote(bundles={"V2G": test_pki.path(layout.V2G_ROOT), "MO": test_pki.path(layout.MO_ROOT)})
    pnc = PlugAndCharge(charger, clock, iso2, security, verify_chain=True, auth_timeout=55, label="test")
    pending = pnc.payment_details(payment_details(iso2, ev))
    clock.advance(OCSP_WAIT)
    res = result(pending)
    assert res.ResponseCode == "OK" and pnc.hash_data is None
