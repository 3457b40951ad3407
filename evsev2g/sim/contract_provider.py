"""
A contract-certificate provider for the simulated charger: what a backend
(CSMS with OCPP ``Get15118EVCertificate``, or a certificate provisioning
service) does with a CertificateInstallationReq or CertificateUpdateReq,
over the test PKI, so the whole Plug & Charge flow runs on one machine.

:class:`ContractProvider` takes the request as EVerest publishes it
(``iso15118_certificate_request``: the whole V2G message as base64 EXI) and
returns what ``set_get_certificate_response`` carries: the complete
CertificateInstallationRes / CertificateUpdateRes V2G message as base64 EXI,
or ``status: Failed``.  It

* checks the request's signature: with the OEM provisioning certificate
  (installation; it must lead through the OEM Sub-CAs to the OEM root) or with the
  current contract certificate (update; the chain must lead to the MO root
  and carry the request's eMAID);
* issues a new contract leaf under MO Sub-CA 2 (eMAID: the configured one
  for an installation, the current one for an update);
* encrypts its private key for the EV (:mod:`evsev2g.security.provisioning`);
* signs the four referenced elements with the CPS leaf key and sends the
  CPS chain as ``SAProvisioningCertificateChain``.

:func:`attach` connects a provider to a session's charger seam.
"""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.logger import Logger

from evsev2g.exi.errors import ExiError
from evsev2g.exi.message import Message
from evsev2g.pki import CONTRACT_USAGE
from evsev2g.protocols.iso15118_2.pnc_session import ISO2_SCHEMA_VERSION
from evsev2g.pki.profiles import issue, leaf
from evsev2g.responses import ProtocolError
from evsev2g.security import contract, layout, provisioning, xmldsig
from evsev2g.security.credentials import read_certificates, read_private_key

__all__ = ["ContractProvider", "attach", "ISO2_SCHEMA"]

log = Logger()

#: ``iso15118_schema_version`` of an ISO 15118-2 request.
ISO2_SCHEMA = ISO2_SCHEMA_VERSION

#: Days a contract certificate issued here is valid (test PKI profile).
CONTRACT_DAYS = 730

_REQUESTS = {"Install": "CertificateInstallationReq", "Update": "CertificateUpdateReq"}
_RESPONSES = {"Install": "CertificateInstallationRes", "Update": "CertificateUpdateRes"}


class RequestRefused(Exception):
    """The request cannot be answered; the message says why."""


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


class ContractProvider:
    """
    :param certs_dir: a test PKI made by ``python -m evsev2g.pki create``
        (needs MO Sub-CA 2 with its key, the CPS chain and key, and the OEM
        and MO roots).
    :param codec: the ISO-2 codec.
    :param emaid: the eMAID of contracts installed here.
    :param now: returns the current time (timezone-aware).
    """

    def __init__(self, certs_dir: Path, codec, emaid: str, now=None):
        directory = Path(certs_dir)
        self.codec = codec
        self.emaid = emaid
        self._now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.mo_sub2 = read_certificates(directory / layout.MO_SUB_CA2)[0]
        self.mo_sub2_key = read_private_key(directory / layout.MO_SUB_CA2_KEY, None)
        self.mo_sub1 = read_certificates(directory / layout.MO_SUB_CA1)[0]
        self.cps_chain = read_certificates(directory / layout.CPS_CERT_CHAIN)
        self.cps_key = read_private_key(directory / layout.CPS_LEAF_KEY, None)
        self.oem_anchors = contract.read_anchors([directory / layout.OEM_ROOT])
        self.oem_sub_cas = tuple(read_certificates(directory / p)[0] for p in (layout.OEM_SUB_CA2, layout.OEM_SUB_CA1))
        self.mo_anchors = contract.read_anchors([directory / layout.MO_ROOT])
        self.answered = 0

    # -- the EVerest-shaped entry point ---------------------------------------

    def answer(self, request: dict) -> dict:
        """
        :param request: an ``iso15118_certificate_request`` payload.
        :returns: the ``certificate_response`` argument of
            ``set_get_certificate_response``.
        """
        action = request.get("certificate_action")
        try:
            if request.get("iso15118_schema_version") != ISO2_SCHEMA:
                raise RequestRefused(f"schema {request.get('iso15118_schema_version')!r} is not ISO 15118-2")
            if action not in _REQUESTS:
                raise RequestRefused(f"unknown certificate_action {action!r}")
            data = base64.b64decode(request.get("exi_request", ""), validate=True)
            response = self.respond(data, action)
        except (RequestRefused, ValueError) as error:
            log.warn("contract provider: {action} refused: {why}", action=action, why=str(error))
            return {"status": "Failed", "certificate_action": action if action in _REQUESTS else "Install"}
        self.answered += 1
        return {"status": "Accepted", "certificate_action": action, "exi_response": base64.b64encode(response).decode()}

    # -- EXI in, EXI out ----------------------------------------------------------

    def respond(self, data: bytes, action: str) -> bytes:
        """
        :param data: the request V2G message (EXI).
        :param action: ``"Install"`` or ``"Update"``.
        :returns: the response V2G message (EXI).
        :raises RequestRefused: saying why.
        """
        try:
            message = self.codec.decode(data)
        except ExiError as error:
            raise RequestRefused(f"undecodable request: {error}") from None
        name = _REQUESTS[action]
        body = message.Body.get(name)
        if body is None:
            raise RequestRefused(f"the message is not a {name}")
        elements = {body.attrs.get("Id"): body}
        try:
            if action == "Install":
                provisioning_cert = contract.load_der(body.OEMProvisioningCert, "OEM provisioning certificate")
                oem_chain = contract.ContractChain(provisioning_cert, self.oem_sub_cas)
                contract.verify_chain(oem_chain, self.oem_anchors, self._now())
                recipient, emaid = provisioning_cert.public_key(), self.emaid
            else:
                chain = body.ContractSignatureCertChain
                sub_cas = chain.SubCertificates.getlist("Certificate") if chain.get("SubCertificates") else []
                current = contract.parse_chain(chain.Certificate, sub_cas)
                contract.verify_chain(current, self.mo_anchors, self._now())
                contract.check_emaid(current, body.eMAID)
                recipient, emaid = current.public_key, current.emaid
            xmldsig.verify(self.codec, message.Header.get("Signature"), elements, recipient, required=[body.attrs.get("Id")])
        except ProtocolError as error:
            raise RequestRefused(f"{type(error).__name__}: {error}") from None
        return self.codec.encode(self.build_response(message.Header.SessionID, action, recipient, emaid))

    def build_response(self, session_id: bytes, action: str, recipient, emaid: str) -> Message:
        """
        Issue a contract and build the signed response message.

        :returns: the response ``V2G_Message``.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = issue(leaf(emaid, "MO", CONTRACT_DAYS, CONTRACT_USAGE), key.public_key(), self.mo_sub2, self.mo_sub2_key, self._now())
        encrypted, dh_public = provisioning.encrypt_private_key(key, recipient)
        signed = [
            Message("ContractSignatureCertChain", attrs={"Id": "id1"}, Certificate=_der(certificate),
                    SubCertificates=Message("SubCertificates", Certificate=[_der(self.mo_sub2), _der(self.mo_sub1)])),
            Message("ContractSignatureEncryptedPrivateKey", attrs={"Id": "id2"}, value=encrypted),
            Message("DHpublickey", attrs={"Id": "id3"}, value=dh_public),
            Message("eMAID", attrs={"Id": "id4"}, value=emaid),
        ]
        signature = xmldsig.sign(self.codec, signed, self.cps_key)
        cps_leaf, *cps_subs = self.cps_chain
        body = Message(
            _RESPONSES[action],
            ResponseCode="OK",
            SAProvisioningCertificateChain=Message(
                "SAProvisioningCertificateChain", Certificate=_der(cps_leaf),
                SubCertificates=Message("SubCertificates", Certificate=[_der(c) for c in cps_subs]),
            ),
            ContractSignatureCertChain=signed[0],
            ContractSignatureEncryptedPrivateKey=signed[1],
            DHpublickey=signed[2],
            eMAID=signed[3],
        )
        return Message(
            "V2G_Message",
            Header=Message("Header", SessionID=session_id, Signature=signature),
            Body=Message("Body", **{_RESPONSES[action]: body}),
        )


def attach(charger, provider: ContractProvider, clock, delay: float = 0.0):
    """
    Answer the session's certificate requests: on ``iso15118_certificate_request``
    call ``set_get_certificate_response`` with the provider's answer after
    ``delay`` seconds (a backend's round trip).

    :param charger: the session's ``ICharger``.
    :param clock: provides ``IReactorTime``.
    :returns: the function that ends the subscription.
    """

    def requested(name: str, payload: dict) -> None:
        response = provider.answer(payload)
        clock.callLater(delay, charger.command, "set_get_certificate_response", certificate_response=response)

    return charger.subscribe(requested, names=["iso15118_certificate_request"])
