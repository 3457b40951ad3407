"""
Protocol errors and the one table that maps them to response codes.

A state machine that finds something wrong raises one of the
:class:`ProtocolError` subclasses below; the machine's dispatcher turns it
into the response the standard asks for with :func:`response_code` and
decides with :func:`closes_connection` whether the connection ends right
after it.  No other place in the code chooses a FAILED code.

Termination policy:

- ``ALWAYS``: FAILED_SequenceError (ISO 15118-2 [V2G2-538], [V2G2-539];
  EvseV2G does the same for DIN) and FAILED_UnknownSession (the EV does not
  hold our session, nothing it sends later can be served) send the response
  and close.
- ``POLICY``: every other FAILED code closes only when
  ``terminate_connection_on_failed_response`` is set ([V2G2-034],
  DIN [V2G-DC-665] as EvseV2G reads them); otherwise the session accepts only
  SessionStopReq afterwards, so the EV ends it as the standard expects.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ProtocolError",
    "SequenceError",
    "UnknownSession",
    "PaymentSelectionInvalid",
    "ServiceSelectionInvalid",
    "NoChargeServiceSelected",
    "ServiceIDInvalid",
    "WrongEnergyTransfer",
    "WrongChargeParameter",
    "PowerDeliveryNotApplied",
    "TariffSelectionInvalid",
    "ChargingProfileInvalid",
    "PauseNotAllowed",
    "AuthorizationRejected",
    "AuthorizationTimeout",
    "OngoingTimeout",
    "CableCheckFailed",
    "ChargerStopped",
    "EmergencyShutdown",
    "ContactorError",
    "Rule",
    "RULES",
    "ALWAYS",
    "POLICY",
    "DIN70121",
    "ISO15118_2",
    "response_code",
    "closes_connection",
]

#: Protocol keys of the table (the EVerest SupportedAppProtocol names).
DIN70121 = "DIN70121"
ISO15118_2 = "ISO15118D2"

ALWAYS = "always"
POLICY = "policy"


class ProtocolError(Exception):
    """
    Something in a request (or the charger's state) makes the SECC answer
    FAILED*.  The message says what, for the log.
    """


class SequenceError(ProtocolError):
    """The request is not allowed in the session's current state."""


class UnknownSession(ProtocolError):
    """The header's SessionID is not this session's."""


class PaymentSelectionInvalid(ProtocolError):
    """The selected payment option was not offered."""


class ServiceSelectionInvalid(ProtocolError):
    """A selected service was not offered."""


class NoChargeServiceSelected(ProtocolError):
    """The charge service (ServiceID 1) is missing from the selection."""


class ServiceIDInvalid(ProtocolError):
    """ServiceDetailReq names a service that was not offered."""


class WrongEnergyTransfer(ProtocolError):
    """The requested energy transfer type/mode is not offered."""


class WrongChargeParameter(ProtocolError):
    """The EV's charge parameters do not fit this charger."""


class PowerDeliveryNotApplied(ProtocolError):
    """The charger cannot deliver power now (status is not EVSE_Ready)."""


class TariffSelectionInvalid(ProtocolError):
    """ChargingProfile names an SAScheduleTupleID that was not offered."""


class ChargingProfileInvalid(ProtocolError):
    """ChargingProfile exceeds the offered schedule."""


class PauseNotAllowed(ProtocolError):
    """SessionStop(Pause) outside the states after PowerDelivery(Stop) or WeldingDetection (ISO 15118-2)."""


class AuthorizationRejected(ProtocolError):
    """``authorization_response`` was not Accepted."""


class AuthorizationTimeout(ProtocolError):
    """No authorization within ``auth_timeout_eim`` / ``auth_timeout_pnc``."""


class OngoingTimeout(ProtocolError):
    """An EVSEProcessing=Ongoing loop exceeded its limit."""


class CableCheckFailed(ProtocolError):
    """The cable check failed or the isolation monitor reports a fault."""


class ChargerStopped(ProtocolError):
    """The charger asked to stop and the EV did not end the session in time."""


class EmergencyShutdown(ProtocolError):
    """``send_error(Error_EmergencyShutdown)`` is active."""


class ContactorError(ProtocolError):
    """The contactor did not close in time (ISO 15118-2 AC)."""


@dataclass(frozen=True)
class Rule:
    """
    One row of the table.

    :ivar codes: response code per protocol key.
    :ivar closes: :data:`ALWAYS` or :data:`POLICY`.
    :ivar cites: requirement ids the row comes from.
    """

    codes: dict
    closes: str
    cites: str


def _both(code: str, closes: str = POLICY, cites: str = "") -> Rule:
    return Rule({DIN70121: code, ISO15118_2: code}, closes, cites)


#: The table: protocol error → response code per protocol, termination.
RULES: dict[type, Rule] = {
    SequenceError: _both("FAILED_SequenceError", ALWAYS, "[V2G2-459] [V2G2-538] [V2G2-539]; DIN state tables [V2G-DC-437]…[V2G-DC-469]"),
    UnknownSession: _both("FAILED_UnknownSession", ALWAYS, "[V2G2-460]"),
    PaymentSelectionInvalid: _both("FAILED_PaymentSelectionInvalid", cites="[V2G2-465]; DIN ExternalPayment only [V2G-DC-252]"),
    ServiceSelectionInvalid: _both("FAILED_ServiceSelectionInvalid", cites="[V2G2-467]"),
    NoChargeServiceSelected: Rule(
        {DIN70121: "FAILED_ServiceSelectionInvalid", ISO15118_2: "FAILED_NoChargeServiceSelected"},
        POLICY,
        "[V2G2-804]; DIN has no FAILED_NoChargeServiceSelected",
    ),
    ServiceIDInvalid: _both("FAILED_ServiceIDInvalid", cites="[V2G2-425] [V2G2-464]"),
    WrongEnergyTransfer: Rule(
        {DIN70121: "FAILED_WrongEnergyTransferType", ISO15118_2: "FAILED_WrongEnergyTransferMode"},
        POLICY,
        "[V2G2-476]; DIN's code is named ...Type",
    ),
    WrongChargeParameter: _both("FAILED_WrongChargeParameter", cites="[V2G2-477]; IEC 61851-23 CC.5.6"),
    PowerDeliveryNotApplied: _both("FAILED_PowerDeliveryNotApplied", cites="[V2G2-480]"),
    TariffSelectionInvalid: _both("FAILED_TariffSelectionInvalid", cites="[V2G2-479]"),
    ChargingProfileInvalid: _both("FAILED_ChargingProfileInvalid", cites="[V2G2-478]"),
    PauseNotAllowed: Rule({ISO15118_2: "FAILED"}, ALWAYS, "[V2G2-739]; EvseV2G answers FAILED and terminates"),
    AuthorizationRejected: _both("FAILED"),
    AuthorizationTimeout: _both("FAILED"),
    OngoingTimeout: _both("FAILED", cites="[V2G2-712] [V2G2-713]"),
    CableCheckFailed: _both("FAILED"),
    ChargerStopped: _both("FAILED"),
    EmergencyShutdown: _both("FAILED"),
    ContactorError: Rule({ISO15118_2: "FAILED_ContactorError"}, POLICY, "[V2G2-860] [V2G2-862] [V2G2-865]"),
}


def _rule(error: ProtocolError | type) -> Rule:
    kind = error if isinstance(error, type) else type(error)
    for cls in kind.__mro__:
        rule = RULES.get(cls)
        if rule is not None:
            return rule
    raise KeyError(f"no response-code rule for {kind.__name__}")


def response_code(error: ProtocolError | type, protocol: str) -> str:
    """
    The response code for ``error`` in ``protocol``.

    :param error: a :class:`ProtocolError` instance or subclass.
    :param protocol: :data:`DIN70121` or :data:`ISO15118_2`.
    :returns: the ``responseCodeType`` string.
    :raises KeyError: no code for that error in that protocol.
    """
    rule = _rule(error)
    try:
        return rule.codes[protocol]
    except KeyError:
        raise KeyError(f"{type(error).__name__ if not isinstance(error, type) else error.__name__} has no code in {protocol}") from None


def closes_connection(error: ProtocolError | type, terminate_on_failed: bool) -> bool:
    """
    Whether the connection closes right after the FAILED response.

    :param error: a :class:`ProtocolError` instance or subclass.
    :param terminate_on_failed: the ``terminate_connection_on_failed_response``
        setting.
    :returns: ``bool``.
    """
    return _rule(error).closes == ALWAYS or terminate_on_failed


# -- Plug & Charge: certificates and signatures (ISO 15118-2 only) ----------


class CertificateProblem(ProtocolError):
    """A contract (or provisioning) certificate chain is unusable."""


class CertChainError(CertificateProblem):
    """
    The chain is malformed or broken: undecodable DER, too many Sub-CAs, a
    signature that does not verify, wrong key usage or basic constraints,
    an eMAID that is not the leaf's.
    """


class NoTrustedRoot(CertChainError):
    """
    The chain leads to no installed MO or V2G root.  Plug & Charge hands
    such a chain on to the backend when central validation is allowed.
    """


class CertificateExpired(CertificateProblem):
    """A certificate of the chain is outside its validity period (expired or not yet valid)."""


class CertificateRevoked(CertificateProblem):
    """The backend reports a certificate of the chain revoked."""


class NoCertificateAvailable(CertificateProblem):
    """No contract certificate can be provided (certificate installation/update)."""


class SignatureError(ProtocolError):
    """An XML signature is missing, malformed, over the wrong element, or does not verify."""


class ChallengeInvalid(ProtocolError):
    """AuthorizationReq's GenChallenge is missing, not 16 bytes, or not the one sent."""


class MeteringSignatureNotValid(ProtocolError):
    """MeteringReceiptReq's signature does not verify with the contract key."""


__all__ += [
    "CertificateProblem",
    "CertChainError",
    "NoTrustedRoot",
    "CertificateExpired",
    "CertificateRevoked",
    "NoCertificateAvailable",
    "SignatureError",
    "ChallengeInvalid",
    "MeteringSignatureNotValid",
]


def _iso(code: str, cites: str = "") -> Rule:
    return Rule({ISO15118_2: code}, POLICY, cites)


RULES.update({
    CertificateProblem: _iso("FAILED_CertChainError"),
    NoTrustedRoot: _iso("FAILED_CertChainError", "EvseV2G answers NoCertificateAvailable; the chain is what fails"),
    CertChainError: _iso("FAILED_CertChainError", "EvseV2G handle_iso_payment_details"),
    CertificateExpired: _iso("FAILED_CertificateExpired", "EvseV2G handle_iso_payment_details"),
    CertificateRevoked: _iso("FAILED_CertificateRevoked"),
    NoCertificateAvailable: _iso("FAILED_NoCertificateAvailable"),
    SignatureError: _iso("FAILED_SignatureError", "AuthorizationReq / Cert*Req signature"),
    ChallengeInvalid: _iso("FAILED_ChallengeInvalid", "[V2G2-475]"),
    MeteringSignatureNotValid: _iso("FAILED_MeteringSignatureNotValid", "[V2G2-481]"),
})
