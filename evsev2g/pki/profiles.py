"""
Certificate profiles of an ISO 15118-2 test PKI.

All keys are ECC secp256r1 and every certificate is signed with
ECDSA-SHA256 (ISO 15118-2 Annex F).  Roots are CAs without a path length;
Sub-CA 1 has pathlen 1, Sub-CA 2 pathlen 0, leaves are not CAs.  Subjects
carry a domain component naming the role: ``DC=V2G`` for the V2G root and
the CPO Sub-CAs, ``DC=CPO`` for the SECC leaf, ``DC=MO`` across the MO chain
with the eMAID as the contract leaf's CN, ``DC=OEM`` and ``DC=CPS`` likewise.
Validity periods follow the usual test sets (SECC leaf 60 days, CPO Sub-CA 2
one year, roots ten years).
"""

from __future__ import annotations

import datetime

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ORGANIZATION = "evsev2g test PKI"
COUNTRY = "DE"

#: Key usages a CA has; MO Sub-CA 2 also signs SalesTariffs.
CA_USAGE = frozenset({"key_cert_sign", "crl_sign"})


@attrs.frozen
class Profile:
    """
    One certificate's shape.

    :param common_name: the subject CN.
    :param domain: the subject DC (role), e.g. ``"CPO"``.
    :param days: validity in days.
    :param path_length: for a CA, its path length (``None`` for a root);
        ignored for leaves.
    :param ca: whether it is a CA.
    :param usage: the keyUsage bits set, as ``x509.KeyUsage`` argument names.
    """

    common_name: str
    domain: str
    days: int
    ca: bool
    path_length: int | None = None
    usage: frozenset[str] = CA_USAGE


def root(common_name: str, domain: str) -> Profile:
    """:returns: a root CA profile (ten years, no path length)."""
    return Profile(common_name, domain, 3650, ca=True)


def sub_ca(common_name: str, domain: str, days: int, path_length: int, usage=CA_USAGE) -> Profile:
    """:returns: a Sub-CA profile."""
    return Profile(common_name, domain, days, ca=True, path_length=path_length, usage=frozenset(usage))


def leaf(common_name: str, domain: str, days: int, usage) -> Profile:
    """:returns: an end-entity profile."""
    return Profile(common_name, domain, days, ca=False, usage=frozenset(usage))


def subject(profile: Profile) -> x509.Name:
    """:returns: the subject name of a profile."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, profile.common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, profile.domain),
        ]
    )


def _key_usage(bits: frozenset[str]) -> x509.KeyUsage:
    """The keyUsage extension with exactly ``bits`` set."""
    names = (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
    )
    unknown = bits - set(names)
    if unknown:
        raise ValueError(f"unknown key usage {sorted(unknown)}")
    return x509.KeyUsage(**{name: name in bits for name in names})


def issue(
    profile: Profile,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
) -> x509.Certificate:
    """
    Make and sign one certificate.

    :param profile: its shape.
    :param public_key: the subject's public key.
    :param issuer: the issuing CA's certificate, or ``None`` for a root.
    :param issuer_key: the issuer's private key (the subject's own for a root).
    :param now: the start of validity (an hour of clock skew is allowed).
    :returns: the certificate.
    """
    name = subject(profile)
    issuer_name = issuer.subject if issuer is not None else name
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=profile.days))
        .add_extension(
            x509.BasicConstraints(ca=profile.ca, path_length=profile.path_length if profile.ca else None),
            critical=True,
        )
        .add_extension(_key_usage(profile.usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    authority = issuer.public_key() if issuer is not None else public_key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority), critical=False
    )
    return builder.sign(issuer_key, hashes.SHA256())
