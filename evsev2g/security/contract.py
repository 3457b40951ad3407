"""
Contract certificate chains (ISO 15118-2 Plug & Charge): parsing and
verification with ``cryptography``, no protocol state.

A contract chain arrives in PaymentDetailsReq (and, for the EV's current
contract, in CertificateUpdateReq) as ``ContractSignatureCertChain``: the
leaf's DER and at most :data:`MAX_SUB_CAS` Sub-CA DERs.  The leaf's subject
CN is the eMAID.

Every failure raises a :mod:`evsev2g.responses` error whose message says
which certificate and why, so the state machine answers the FAILED code the
standard names and logs the reason:

* undecodable DER, too many Sub-CAs, a broken signature, wrong key usage or
  basic constraints, a key that is not P-256, an eMAID that is not the
  leaf's → :class:`~evsev2g.responses.CertChainError`;
* no installed MO or V2G root the chain leads to →
  :class:`~evsev2g.responses.NoTrustedRoot` (a ``CertChainError``; Plug &
  Charge may hand such a chain to the backend instead);
* a certificate outside its validity period (expired or not yet valid) →
  :class:`~evsev2g.responses.CertificateExpired`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.logger import Logger

from evsev2g.responses import CertChainError, CertificateExpired, NoTrustedRoot
from evsev2g.errors import CertificatesUnavailable
from evsev2g.security.credentials import parse_fields, read_certificates, signed_by, subject_line

log = Logger()

#: At most two Sub-CAs between a contract leaf and its root (ISO 15118-2
#: Annex F certificate profiles; the schema allows four).
MAX_SUB_CAS = 2

#: ``OK_CertificateExpiresSoon`` when the leaf expires within this many days
#: (RISE-V2G cites [V2G2-690] for it).
EXPIRES_SOON = datetime.timedelta(days=21)


@attrs.frozen
class ContractChain:
    """
    A parsed contract chain.

    :param leaf: the contract certificate.
    :param sub_cas: its Sub-CAs, issuer of the leaf first.
    """

    leaf: x509.Certificate
    sub_cas: tuple[x509.Certificate, ...] = ()

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The leaf, then the Sub-CAs."""
        return (self.leaf, *self.sub_cas)

    @property
    def emaid(self) -> str:
        """The leaf's subject CN (the eMAID), or ``""`` when it has none."""
        return common_name(self.leaf)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The leaf's public key (checked to be P-256 by :func:`parse_chain`)."""
        return self.leaf.public_key()

    def pem(self) -> str:
        """The chain as PEM text, leaf first (what EVerest's commands take)."""
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.certificates)


@attrs.frozen
class Verified:
    """
    The outcome of a successful :func:`verify_chain`.

    :param anchor: the installed root the chain leads to.
    :param expires_soon: the leaf expires within :data:`EXPIRES_SOON`.
    """

    anchor: x509.Certificate
    expires_soon: bool


def common_name(certificate: x509.Certificate) -> str:
    """:returns: the subject CN of a certificate, or ``""``."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def normalise_emaid(emaid: str) -> str:
    """
    :param emaid: an eMAID as written anywhere.
    :returns: it without ``-`` and upper-cased: EvseV2G compares eMAIDs so,
        and publishes the id token so.
    """
    return emaid.replace("-", "").upper()


def load_der(der: bytes, what: str) -> x509.Certificate:
    """
    :param der: one certificate's DER.
    :param what: its role, for the message (``"contract leaf"``).
    :returns: the certificate.
    :raises CertChainError: when it is not DER X.509 or not P-256.
    """
    try:
        certificate = parse_fields(x509.load_der_x509_certificate(bytes(der)))
        key = certificate.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as error:
        raise CertChainError(f"{what}: not a DER X.509 certificate ({error})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertChainError(f"{what} {subject_line(certificate)}: key is not ECC secp256r1")
    return certificate


def parse_chain(leaf_der: bytes, sub_ca_ders: Sequence[bytes] = ()) -> ContractChain:
    """
    Parse ``ContractSignatureCertChain``.

    :param leaf_der: the ``Certificate`` element's bytes.
    :param sub_ca_ders: the ``SubCertificates`` element's bytes, in order.
    :returns: the :class:`ContractChain`.
    :raises CertChainError: garbage DER, a key not on P-256, or more than
        :data:`MAX_SUB_CAS` Sub-CAs (a self-signed root some EVs append is
        dropped first: it proves nothing, the installed roots decide).
    """
    if len(sub_ca_ders) > MAX_SUB_CAS + 1:
        raise CertChainError(f"contract chain has {len(sub_ca_ders)} Sub-CAs; at most {MAX_SUB_CAS} are allowed")
    leaf = load_der(leaf_der, "contract leaf")
    subs = tuple(load_der(der, f"Sub-CA {i + 1}") for i, der in enumerate(sub_ca_ders))
    if subs and subs[-1].subject == subs[-1].issuer and signed_by(subs[-1], subs[-1]):
        subs = subs[:-1]
    if len(subs) > MAX_SUB_CAS:
        raise CertChainError(f"contract chain has {len(subs)} Sub-CAs; at most {MAX_SUB_CAS} are allowed")
    return ContractChain(leaf, subs)


def check_emaid(chain: ContractChain, emaid: str) -> None:
    """
    The request's eMAID must be the leaf's CN, ignoring ``-`` and case
    (EvseV2G ``handle_iso_payment_details``).

    :raises CertChainError: when they differ.
    """
    if normalise_emaid(emaid) != normalise_emaid(chain.emaid):
        raise CertChainError(f"eMAID {emaid!r} is not the contract leaf's ({chain.emaid!r})")


def constraints(certificate: x509.Certificate) -> x509.BasicConstraints | None:
    """:returns: the certificate's basic constraints, or ``None``."""
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _usage(certificate: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _check_validity(certificate: x509.Certificate, what: str, now: datetime.datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise CertificateExpired(
            f"{what} {subject_line(certificate)} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if now > certificate.not_valid_after_utc:
        raise CertificateExpired(
            f"{what} {subject_line(certificate)} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )


def check_profile(chain: ContractChain) -> None:
    """
    Key usage and basic constraints: the leaf is no CA and may sign
    (digitalSignature); each Sub-CA is a CA that may sign certificates, and
    its path length admits the Sub-CAs below it.

    :raises CertChainError: naming the certificate and what is wrong.
    """
    leaf_constraints = constraints(chain.leaf)
    if leaf_constraints is not None and leaf_constraints.ca:
        raise CertChainError(f"contract leaf {subject_line(chain.leaf)} is a CA certificate")
    usage = _usage(chain.leaf)
    if usage is None or not usage.digital_signature:
        raise CertChainError(f"contract leaf {subject_line(chain.leaf)} may not sign (keyUsage lacks digitalSignature)")
    for below, sub in enumerate(chain.sub_cas):
        basic, usage = constraints(sub), _usage(sub)
        if basic is None or not basic.ca:
            raise CertChainError(f"Sub-CA {subject_line(sub)} is not a CA certificate")
        if usage is None or not usage.key_cert_sign:
            raise CertChainError(f"Sub-CA {subject_line(sub)} may not sign certificates (keyUsage)")
        if basic.path_length is not None and basic.path_length < below:
            raise CertChainError(f"Sub-CA {subject_line(sub)} has pathlen {basic.path_length}, {below} Sub-CA(s) below it")


def verify_chain(
    chain: ContractChain,
    anchors: Iterable[x509.Certificate],
    now: datetime.datetime,
) -> Verified:
    """
    Verify a contract chain against installed roots.

    Order of checks, so the code names the first real problem: profile
    (:func:`check_profile`), validity of each certificate, each signature
    up the chain, then a root among ``anchors`` (valid, a CA) that signed
    the top of the chain.

    :param chain: the parsed chain.
    :param anchors: the installed MO and V2G roots.
    :param now: the current time, timezone-aware.
    :returns: :class:`Verified`.
    :raises CertChainError: see :func:`check_profile`, or a broken signature.
    :raises CertificateExpired: a certificate outside its validity period.
    :raises NoTrustedRoot: no valid anchor signed the top of the chain.
    """
    check_profile(chain)
    for index, certificate in enumerate(chain.certificates):
        _check_validity(certificate, "contract leaf" if index == 0 else "Sub-CA", now)
    for child, parent in zip(chain.certificates, chain.sub_cas):
        if not signed_by(child, parent):
            raise CertChainError(f"{subject_line(child)} is not signed by {subject_line(parent)}")
    top = chain.certificates[-1]
    candidates = [a for a in anchors if a.subject == top.issuer]
    for anchor in candidates:
        basic = constraints(anchor)
        if basic is None or not basic.ca or not signed_by(top, anchor):
            continue
        _check_validity(anchor, "root", now)
        return Verified(anchor, chain.leaf.not_valid_after_utc - now < EXPIRES_SOON)
    issuer = top.issuer.rfc4514_string()
    if candidates:
        raise NoTrustedRoot(f"{subject_line(top)} names {issuer}, but no installed root of that name signed it")
    raise NoTrustedRoot(f"{subject_line(top)} is issued by {issuer}, which is no installed MO or V2G root")


def read_anchors(paths: Iterable) -> list[x509.Certificate]:
    """
    :param paths: PEM bundle files; missing, unreadable or malformed ones
        are skipped (logged).
    :returns: every certificate in them.
    """
    anchors = []
    for path in paths:
        try:
            anchors += read_certificates(Path(path))
        except CertificatesUnavailable as error:
            log.warn("trust anchors: {why}", why=str(error))
    return anchors
