"""
The TLS server's certificate chain and key, loaded and checked.

Whatever stores them (files, EVerest's evse_security), the TLS server gets a
:class:`TLSCredentials` that has passed :func:`check_credentials`: a P-256
key matching the leaf, every certificate in its validity period, each one
signed by the next, the last one signed by the V2G root when it is known.
Any failure is a :class:`~evsev2g.errors.CertificatesUnavailable` that says
which certificate and why.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from evsev2g.errors import CertificatesUnavailable


@attrs.frozen
class TLSCredentials:
    """
    What the TLS server presents.

    :param chain: the SECC leaf first, then the Sub-CAs up to (not
        including) the root, as :class:`cryptography.x509.Certificate`.
    :param key: the leaf's private key.
    :param root: the V2G root the chain ends at, or ``None`` when unknown.
    """

    chain: tuple[x509.Certificate, ...]
    key: ec.EllipticCurvePrivateKey
    root: x509.Certificate | None = None

    @property
    def leaf(self) -> x509.Certificate:
        """The SECC leaf certificate."""
        return self.chain[0]


def subject_line(certificate: x509.Certificate) -> str:
    """
    :param certificate: any certificate.
    :returns: its subject in RFC 4514 form, for messages.
    """
    return certificate.subject.rfc4514_string()


def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """:returns: whether ``parent`` issued and signed ``child``."""
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def parse_fields(certificate: x509.Certificate) -> x509.Certificate:
    """
    Parse every field of a certificate now.  ``cryptography`` parses
    lazily: a malformed subject, issuer, validity or extension raises
    ``ValueError`` on first access, not when the certificate is loaded.

    :returns: ``certificate``.
    :raises ValueError: (or ``UnsupportedAlgorithm``, ``InvalidVersion``) for a
        malformed field.
    """
    certificate.public_key()
    certificate.subject.rfc4514_string(), certificate.issuer.rfc4514_string()
    certificate.not_valid_before_utc, certificate.not_valid_after_utc, certificate.signature_hash_algorithm
    list(certificate.extensions)
    return certificate


def _read(path: Path) -> bytes:
    """A file's bytes, or CertificatesUnavailable saying why not."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise CertificatesUnavailable(f"cannot read {path}: {error.strerror}") from None


def read_certificates(path: Path) -> list[x509.Certificate]:
    """
    :param path: a PEM file with one or more certificates.
    :returns: the certificates in file order.
    :raises CertificatesUnavailable: the file is missing or holds none.
    """
    data = _read(path)
    try:
        return [parse_fields(certificate) for certificate in x509.load_pem_x509_certificates(data)]
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
        raise CertificatesUnavailable(f"{path} holds no PEM certificate, or a malformed one") from None


def read_private_key(path: Path, password: bytes | None) -> ec.EllipticCurvePrivateKey:
    """
    :param path: a PEM private key, encrypted or not.
    :param password: the password of an encrypted key, or ``None``.
    :returns: the key.
    :raises CertificatesUnavailable: missing file, wrong or missing
        password, or not an elliptic-curve key.
    """
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=password or None)
    except TypeError:
        raise CertificatesUnavailable(f"{path} is encrypted and no password was given") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificatesUnavailable(f"{path}: not a PEM private key, or the password is wrong") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificatesUnavailable(f"{path}: not an elliptic-curve key (ISO 15118-2 needs P-256)")
    return key


def check_credentials(
    chain: Sequence[x509.Certificate],
    key: ec.EllipticCurvePrivateKey,
    root: x509.Certificate | None,
    now: datetime.datetime,
) -> TLSCredentials:
    """
    Check a chain and key for the TLS server.

    :param chain: leaf first, then Sub-CAs; a root at the end is dropped.
    :param key: the leaf's private key.
    :param root: the V2G root to check the chain against, or ``None``.
    :param now: the current time, timezone-aware.
    :returns: the checked :class:`TLSCredentials`.
    :raises CertificatesUnavailable: saying what is wrong.
    """
    chain = list(chain)
    if not chain:
        raise CertificatesUnavailable("the certificate chain is empty")
    if len(chain) > 1 and chain[-1].subject == chain[-1].issuer:
        chain.pop()
    leaf = chain[0]
    if not isinstance(key.curve, ec.SECP256R1):
        raise CertificatesUnavailable(f"the key is on {key.curve.name}; ISO 15118-2 needs secp256r1 (P-256)")
    if leaf.public_key() != key.public_key():
        raise CertificatesUnavailable(f"the private key does not belong to the leaf {subject_line(leaf)}")
    for certificate in chain + ([root] if root is not None else []):
        if now < certificate.not_valid_before_utc:
            raise CertificatesUnavailable(f"{subject_line(certificate)} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
        if now > certificate.not_valid_after_utc:
            raise CertificatesUnavailable(f"{subject_line(certificate)} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    issuers = chain[1:] + ([root] if root is not None else [])
    for child, parent in zip(chain, issuers):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise CertificatesUnavailable(
                f"{subject_line(child)} is not signed by {subject_line(parent)}"
            ) from None
    return TLSCredentials(tuple(chain), key, root)
