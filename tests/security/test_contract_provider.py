"""
The simulated backend's contract-certificate provider
(:mod:`evsev2g.sim.contract_provider`) with the EV side of
:mod:`evsev2g.sim.ev_pnc`: installation and update round trips over the
test PKI, and refusals of bad requests and bad responses.
"""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.task import Clock

from evsev2g.charger import Charger
from evsev2g.exi import Message
from evsev2g.pki import create_test_pki
from evsev2g.responses import ProtocolError, SignatureError
from evsev2g.security import xmldsig
from evsev2g.sim import ev_pnc
from evsev2g.sim.contract_provider import ISO2_SCHEMA, ContractProvider, attach

SESSION = b"\x01\x02\x03\x04\x05\x06\x07\x08"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test PKI of this module's own."""
    return create_test_pki(tmp_path_factory.mktemp("provider") / "certs")


@pytest.fixture
def provider(pki, iso2):
    """A provider that installs eMAID DEEV2C000000042."""
    return ContractProvider(pki.directory, iso2, "DEEV2C000000042")


@pytest.fixture
def identity(pki):
    """The EV's provisioning identity from the test PKI."""
    return ev_pnc.EVIdentity.from_directory(pki.directory)


def request(iso2, body, signature, action):
    """The iso15118_certificate_request payload EvseV2G would publish for a signed request."""
    message = Message("V2G_Message", Header=Message("Header", SessionID=SESSION, Signature=signature),
                      Body=Message("Body", **{body.name: body}))
    return {"exi_request": base64.b64encode(iso2.encode(message)).decode(),
            "iso15118_schema_version": ISO2_SCHEMA, "certificate_action": action}


def response_message(iso2, answer):
    """The decoded response V2G message of an Accepted answer."""
    assert answer["status"] == "Accepted"
    return iso2.decode(base64.b64decode(answer["exi_response"]))


def test_install_then_update(provider, identity, iso2, now):
    """Installation gives a contract the EV decrypts with its provisioning key; an update signed with it gives a new one for the same eMAID."""
    answer = provider.answer(request(iso2, *ev_pnc.install_request(iso2, identity), "Install"))
    message = response_message(iso2, answer)
    assert message.Header.SessionID == SESSION
    assert len(base64.b64decode(answer["exi_response"])) < 4200  # EVerest's exi_response holds 5600 base64 characters
    installed = ev_pnc.accept_certificate_response(iso2, message, identity, now)
    assert installed.emaid == "DEEV2C000000042"
    answer = provider.answer(request(iso2, *ev_pnc.update_request(iso2, identity, installed), "Update"))
    assert answer["certificate_action"] == "Update"
    updated = ev_pnc.accept_certificate_response(iso2, response_message(iso2, answer), identity, now, current=installed)
    assert updated.emaid == installed.emaid and updated.chain.leaf != installed.chain.leaf


def test_refused_requests(provider, identity, iso2, log_events):
    """A request with a foreign signature, another schema, bad base64 or an unknown action is answered Failed, with the reason logged."""
    body, _ = ev_pnc.install_request(iso2, identity)
    foreign = xmldsig.sign(iso2, [body], ec.generate_private_key(ec.SECP256R1()))
    assert provider.answer(request(iso2, body, foreign, "Install"))["status"] == "Failed"
    assert "SignatureError" in log_events.text()
    good = request(iso2, *ev_pnc.install_request(iso2, identity), "Install")
    assert provider.answer({**good, "iso15118_schema_version": "urn:iso:15118:2:2010:MsgDef"})["status"] == "Failed"
    assert provider.answer({**good, "exi_request": "not base64!"})["status"] == "Failed"
    assert provider.answer({**good, "certificate_action": "Delete"})["status"] == "Failed"
    assert provider.answer({**good, "certificate_action": "Update"})["status"] == "Failed"  # an install body is no update
    assert provider.answered == 0


def test_update_with_someone_elses_emaid(provider, identity, iso2, pki):
    """An update whose eMAID is not the current contract's is refused."""
    current = ev_pnc.EVContract.from_directory(pki.directory)
    body, _ = ev_pnc.update_request(iso2, identity, current)
    body.children = [(n, "DEEV2C999999999" if n == "eMAID" else v) for n, v in body.children]
    body._index = None
    signature = xmldsig.sign(iso2, [body], current.key)
    assert provider.answer(request(iso2, body, signature, "Update"))["status"] == "Failed"


def test_the_ev_refuses_a_tampered_response(provider, identity, iso2, now):
    """The EV refuses a response whose signed eMAID was changed after signing, and one meant for another key."""
    message = response_message(iso2, provider.answer(request(iso2, *ev_pnc.install_request(iso2, identity), "Install")))
    message.Body.CertificateInstallationRes.eMAID.value = "DEEV2C000000666"
    with pytest.raises(SignatureError, match="digest of eMAID"):
        ev_pnc.accept_certificate_response(iso2, message, identity, now)
    message = response_message(iso2, provider.answer(request(iso2, *ev_pnc.install_request(iso2, identity), "Install")))
    stranger = ev_pnc.EVIdentity(identity.provisioning_cert, ec.generate_private_key(ec.SECP256R1()), identity.v2g_roots)
    with pytest.raises(ProtocolError):
        ev_pnc.accept_certificate_response(iso2, message, stranger, now)


def test_attach_answers_through_the_charger_seam(provider, identity, iso2):
    """attach() answers an iso15118_certificate_request with set_get_certificate_response after the backend delay."""
    clock = Clock()
    charger = Charger(clock)
    attach(charger, provider, clock, delay=0.5)
    charger.publish("iso15118_certificate_request", request(iso2, *ev_pnc.install_request(iso2, identity), "Install"))
    assert charger.certificate_response is None
    clock.advance(0.5)
    assert charger.certificate_response["status"] == "Accepted"


def test_pnc_simulated_charger(pki, identity, iso2):
    """The PnC simulator offers Contract and the certificate service, authorizes require_auth_pnc after auth_delay, and answers certificate requests."""
    from evsev2g.sim.charger import SimulatorSettings
    from evsev2g.sim.pnc_charger import PnCSimulatedCharger

    clock = Clock()
    backend = PnCSimulatedCharger(clock, SimulatorSettings(auth_delay=1.0), pki.directory, certificate_delay=0.25)
    charger = Charger(clock)
    backend.session_started(charger)
    assert charger.payment_options == ["Contract", "ExternalPayment"] and charger.supported_certificate_service
    charger.publish("require_auth_pnc", {"id_token": {"value": "DEEV2C000000001", "type": "eMAID"}, "authorization_type": "PlugAndCharge"})
    clock.advance(1.0)
    assert (charger.authorization_status, charger.certificate_status) == ("Accepted", "Accepted")
    charger.publish("iso15118_certificate_request", request(iso2, *ev_pnc.install_request(iso2, identity), "Install"))
    clock.advance(0.25)
    assert charger.certificate_response["status"] == "Accepted"
    backend.session_ended(charger)
    charger.publish("require_auth_pnc", {"id_token": {"value": "X", "type": "eMAID"}, "authorization_type": "PlugAndCharge"})
    assert clock.getDelayedCalls() == []
