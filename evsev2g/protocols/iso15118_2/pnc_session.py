"""
Plug & Charge for the ISO 15118-2 state machine: what the SECC does with
PaymentDetailsReq, a signed AuthorizationReq, CertificateInstallationReq /
CertificateUpdateReq and a signed MeteringReceiptReq.

:class:`PlugAndCharge` holds one session's PnC state (the contract chain,
the outstanding GenChallenge, the authorization wait) and answers bodies;
it knows nothing of the sequence table, which the state machine keeps
(:class:`evsev2g.protocols.iso15118_2.pnc.ContractPath` joins the two).  Every
refusal is a :mod:`evsev2g.responses` error, so the machine answers the
FAILED code the standard names and logs the reason.

* **PaymentDetails** (only on a TLS session): the contract chain is parsed
  (garbage DER, more than two Sub-CAs, a key off P-256 →
  FAILED_CertChainError), the eMAID must be the leaf's CN (ignoring ``-``
  and case, as EvseV2G); with ``verify_contract_cert_chain`` the chain is
  verified here against the installed MO and V2G roots
  (:meth:`~evsev2g.interfaces.ISecurity.verify_file`): expired or not yet
  valid → FAILED_CertificateExpired, broken → FAILED_CertChainError, no
  installed root → handed on to the backend when ``session_setup`` allowed
  central contract validation, else FAILED_CertChainError.  A leaf expiring
  within 21 days is answered OK_CertificateExpiresSoon.  A fresh 16-byte
  GenChallenge from the OS and EVSETimeStamp go back, and the
  ``auth_timeout_pnc`` clock starts.
* **AuthorizationReq**: the first one after PaymentDetails must carry the
  challenge (else FAILED_ChallengeInvalid, [V2G2-475]) and a header
  Signature over the AuthorizationReq by the contract key (else
  FAILED_SignatureError); then ``require_auth_pnc`` is published with the
  eMAID, the PEM chain and (when verified here) the OCSP hash data.  The
  EV's later, empty AuthorizationReqs poll ([V2G2-684]) until
  ``authorization_response``, or FAILED once ``auth_timeout_pnc`` has
  passed since PaymentDetails (0: no limit).
* **CertificateInstallation / CertificateUpdate**: the whole request
  message goes out as base64 EXI on ``iso15118_certificate_request``; the
  EXI of ``set_get_certificate_response`` is relayed with its signature
  when it arrives within :data:`CERTIFICATE_WAIT`, else FAILED.  The
  request's own signature is the backend's to check (it holds the OEM
  roots).
* **MeteringReceipt**: when the session is PnC, the header Signature over
  MeteringReceiptReq must verify with the contract key
  (FAILED_MeteringSignatureNotValid, [V2G2-481]).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable

from twisted.internet import defer
from twisted.logger import Logger

from evsev2g.exi.errors import ExiError
from evsev2g.exi.message import Message
from evsev2g.responses import (
    AuthorizationRejected,
    AuthorizationTimeout,
    CertChainError,
    CertificateExpired,
    CertificateRevoked,
    CertificateServiceFailed,
    MeteringSignatureNotValid,
    NoCertificateAvailable,
    NoTrustedRoot,
    SequenceError,
    SignatureError,
)
from evsev2g.errors import CertificatesUnavailable
from evsev2g.protocols.iso15118_2.machine import ISO2_NAMESPACE
from evsev2g.security import contract, xmldsig
from evsev2g.security.challenge import Challenge

__all__ = ["PlugAndCharge", "CERTIFICATE_WAIT", "ISO2_SCHEMA_VERSION", "OCSP_WAIT"]

log = Logger()

#: ``iso15118_schema_version`` of the certificate request: the ISO-2
#: namespace, as EvseV2G sends it.
ISO2_SCHEMA_VERSION = ISO2_NAMESPACE

#: Seconds the SECC waits for ``set_get_certificate_response``: inside
#: V2G_SECC_Msg_Performance_Time of CertificateInstallation/Update (4.5 s,
#: EvseV2G's ``V2G_SECC_MSG_CERTINSTALL_TIME``), less time to decode, encode
#: and send the 4 kB answer.
CERTIFICATE_WAIT = 4.0

#: Seconds PaymentDetails waits for the provider's OCSP request data
#: (within PaymentDetails' 4.5 s); after that it goes on without it.
OCSP_WAIT = 1.0

#: ``certificate_status`` of ``authorization_response`` → the error of a
#: FAILED AuthorizationRes (EvseV2G maps them so).
_CERTIFICATE_STATUS = {
    "SignatureError": SignatureError,
    "CertificateExpired": CertificateExpired,
    "CertificateRevoked": CertificateRevoked,
    "NoCertificateAvailable": NoCertificateAvailable,
    "CertChainError": CertChainError,
    "ContractCancelled": CertChainError,
}

_RESPONSES = {"Install": "CertificateInstallationRes", "Update": "CertificateUpdateRes"}


def utc_now() -> datetime.datetime:
    """:returns: the current time, timezone-aware UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


class PlugAndCharge:
    """
    One session's Plug & Charge.

    :param charger: the session's ``ICharger``.
    :param clock: ``IReactorTime``.
    :param codec: the ISO-2 codec.
    :param security: the ``ISecurity`` provider.
    :param verify_chain: the ``verify_contract_cert_chain`` key.
    :param auth_timeout: the ``auth_timeout_pnc`` key (s; 0 = no limit).
    :param label: the session's name for log lines.
    :param now: returns the current time (certificate validity).
    :param random: returns ``n`` random bytes (default: the OS's).
    """

    def __init__(self, charger, clock, codec, security, *, verify_chain: bool, auth_timeout: float,
                 label: str = "", now: Callable[[], datetime.datetime] = utc_now, random=None):
        self.charger = charger
        self.clock = clock
        self.codec = codec
        self.security = security
        self.verify_chain = verify_chain
        self.auth_timeout = auth_timeout
        self.label = label
        self._now = now
        self.challenge = Challenge(random) if random is not None else Challenge()
        self.chain: contract.ContractChain | None = None
        self.hash_data: list | None = None
        self.auth_started: float | None = None
        self.auth_requested = False

    # -- PaymentDetails ------------------------------------------------------------

    def payment_details(self, body: Message) -> defer.Deferred:
        """
        :param body: PaymentDetailsReq.
        :returns: a Deferred firing with the PaymentDetailsRes body, or
            failing with a :class:`ProtocolError`.
        """
        return defer.ensureDeferred(self._payment_details(body))

    async def _payment_details(self, body: Message) -> Message:
        self.chain, self.hash_data, self.auth_requested = None, None, False
        cert_chain = body.ContractSignatureCertChain
        subs = cert_chain.SubCertificates.getlist("Certificate") if cert_chain.get("SubCertificates") else []
        chain = contract.parse_chain(cert_chain.Certificate, subs)
        contract.check_emaid(chain, body.eMAID)
        code = "OK"
        if self.verify_chain:
            try:
                verified = contract.verify_chain(chain, await self._anchors(), self._now())
            except NoTrustedRoot as error:
                if not self.charger.central_contract_validation_allowed:
                    raise
                log.info("{session}: {why}; handed on to the backend (central contract validation)",
                         session=self.label, why=str(error))
            else:
                code = "OK_CertificateExpiresSoon" if verified.expires_soon else "OK"
                self.hash_data = await self._ocsp(chain)
        self.chain = chain
        self.auth_started = self.clock.seconds()
        return Message(
            "PaymentDetailsRes",
            ResponseCode=code,
            GenChallenge=self.challenge.issue(),
            EVSETimeStamp=int(self._now().timestamp()),
        )

    async def _anchors(self) -> list:
        """
        The installed V2G and MO roots (either may be missing; none without a
        provider).  ``verify_file`` answers at once by the interface; a
        provider that answers with a Deferred is waited for all the same.
        """
        if self.security is None:
            return []
        paths = []
        for ca_type in ("V2G", "MO"):
            try:
                paths.append(await defer.maybeDeferred(self.security.verify_file, ca_type))
            except CertificatesUnavailable:
                continue
        return contract.read_anchors(paths)

    async def _ocsp(self, chain: contract.ContractChain) -> list | None:
        """The provider's OCSP request data in ``iso15118CertificateHashData`` shape, or ``None``."""
        if self.security is None:
            return None
        try:
            data = await defer.maybeDeferred(self.security.mo_ocsp_request_data, chain.pem()).addTimeout(OCSP_WAIT, self.clock)
        except Exception as error:  # the provider's trouble must not fail the EV
            log.warn("{session}: no OCSP request data for the contract ({why})", session=self.label, why=repr(error))
            return None
        entries = []
        for entry in (data or {}).get("ocsp_request_data_list", [])[:4]:
            hashed = entry.get("certificate_hash_data") or {}
            entries.append({
                "hashAlgorithm": hashed.get("hash_algorithm", "SHA256"),
                "issuerNameHash": hashed.get("issuer_name_hash", ""),
                "issuerKeyHash": hashed.get("issuer_key_hash", ""),
                "serialNumber": hashed.get("serial_number", ""),
                "responderURL": entry.get("responder_url", ""),
            })
        return entries or None

    # -- Authorization -------------------------------------------------------------

    def authorization(self, body: Message, header: Message) -> bool:
        """
        One AuthorizationReq of a Contract session.

        :param body: AuthorizationReq.
        :param header: the request's Header (for its Signature).
        :returns: ``True`` when authorized (EVSEProcessing=Finished),
            ``False`` to answer Ongoing.
        :raises ProtocolError: see the module docstring.
        """
        if self.chain is None:
            raise SequenceError("AuthorizationReq with Contract payment before a successful PaymentDetails")
        if not self.auth_requested:
            self.challenge.check(body.get("GenChallenge"))
            identifier = body.attrs.get("Id")
            if identifier is None:
                raise SignatureError("the first AuthorizationReq of a Contract session has no Id to sign")
            xmldsig.verify(self.codec, header.get("Signature"), {identifier: body}, self.chain.public_key, [identifier])
            self.charger.publish("require_auth_pnc", self.id_token())
            self.auth_requested = True
        elif body.get("GenChallenge") is not None:
            self.challenge.check(body.get("GenChallenge"))  # a second signed request is a replay: the challenge is spent
        status = self.charger.authorization_status
        if status == "Accepted":
            return True
        if status is not None:
            certificate_status = self.charger.certificate_status
            error = _CERTIFICATE_STATUS.get(certificate_status, AuthorizationRejected)
            raise error(f"the backend answered {status} (certificate {certificate_status})")
        if self.auth_timeout and self.clock.seconds() - self.auth_started >= self.auth_timeout:
            raise AuthorizationTimeout(f"no authorization within auth_timeout_pnc = {self.auth_timeout:g} s of PaymentDetails")
        return False

    def id_token(self) -> dict:
        """The ``require_auth_pnc`` payload (EVerest's ProvidedIdToken)."""
        token = {
            "id_token": {"value": contract.normalise_emaid(self.chain.emaid), "type": "eMAID"},
            "authorization_type": "PlugAndCharge",
            "certificate": self.chain.pem(),
        }
        if self.hash_data:
            token["iso15118CertificateHashData"] = self.hash_data
        return token

    # -- certificate installation and update ---------------------------------------------

    def certificate_request(self, request: Message, action: str) -> defer.Deferred:
        """
        Hand a CertificateInstallationReq / UpdateReq to the backend.

        :param request: the whole request ``V2G_Message``.
        :param action: ``"Install"`` or ``"Update"``.
        :returns: a Deferred firing with the backend's response
            ``V2G_Message`` (its Signature kept), or failing with
            :class:`~evsev2g.responses.CertificateServiceFailed`.
        """
        waiting = defer.Deferred()

        def observed(name, arguments):
            if name == "set_get_certificate_response" and not waiting.called:
                waiting.callback(arguments["certificate_response"])

        stop = self.charger.observe(observed)
        self.charger.publish("iso15118_certificate_request", {
            "exi_request": base64.b64encode(self.codec.encode(request)).decode(),
            "iso15118_schema_version": ISO2_SCHEMA_VERSION,
            "certificate_action": action,
        })
        waiting.addTimeout(CERTIFICATE_WAIT, self.clock)

        def answered(response):
            return self._relayed(response, action)

        def timed_out(failure):
            failure.trap(defer.CancelledError, defer.TimeoutError)
            raise CertificateServiceFailed(f"no set_get_certificate_response within {CERTIFICATE_WAIT:g} s")

        def done(result):
            stop()
            return result

        return waiting.addCallbacks(answered, timed_out).addBoth(done)

    def _relayed(self, response: dict, action: str) -> Message:
        """The backend's answer as the message to send, or CertificateServiceFailed."""
        if response.get("status") != "Accepted" or not response.get("exi_response"):
            raise CertificateServiceFailed(f"the backend answered {response.get('status')} without a response")
        if response.get("certificate_action") != action:
            raise CertificateServiceFailed(f"the backend answered a {response.get('certificate_action')} for a {action} request")
        try:
            message = self.codec.decode(base64.b64decode(response["exi_response"], validate=True))
        except (ExiError, ValueError) as error:
            raise CertificateServiceFailed(f"the backend's response is not ISO-2 EXI: {error}") from None
        if message.Body.get(_RESPONSES[action]) is None:
            raise CertificateServiceFailed(f"the backend's response is not a {_RESPONSES[action]}")
        return message

    # -- MeteringReceipt ----------------------------------------------------------------

    def metering_receipt(self, body: Message, header: Message) -> None:
        """
        Check a MeteringReceiptReq's signature on a PnC session.

        :raises MeteringSignatureNotValid: missing or wrong signature.
        """
        if self.chain is None:
            return
        identifier = body.attrs.get("Id")
        try:
            if identifier is None:
                raise SignatureError("MeteringReceiptReq has no Id to sign")
            xmldsig.verify(self.codec, header.get("Signature"), {identifier: body}, self.chain.public_key, [identifier])
        except SignatureError as error:
            raise MeteringSignatureNotValid(str(error)) from None
