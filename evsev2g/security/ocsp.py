"""
OCSP request data of a certificate chain, in EVerest's shapes
(``OCSPRequestDataList`` of ``types/evse_security.yaml``).

Each entry identifies one certificate as an OCSP request would (RFC 6960
CertID with SHA-256: the hash of the issuer's DER name, the hash of the
issuer's public key bits, the serial number) and carries the responder URL
from the certificate's Authority Information Access extension.  The backend
(OCPP ``Authorize`` with ``iso15118CertificateHashData``) uses it to check
revocation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID


def responder_url(certificate: x509.Certificate) -> str | None:
    """:returns: the first AIA OCSP URL of a certificate, or ``None``."""
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for description in access:
        if description.access_method == AuthorityInformationAccessOID.OCSP:
            return str(description.access_location.value)
    return None


def hash_data(certificate: x509.Certificate, issuer: x509.Certificate) -> dict:
    """
    :param certificate: the certificate to identify.
    :param issuer: its issuer.
    :returns: EVerest's ``CertificateHashData`` (SHA256, lower-case hex,
        serial without leading zeroes).
    """
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256()).build()
    return {
        "hash_algorithm": "SHA256",
        "issuer_name_hash": request.issuer_name_hash.hex(),
        "issuer_key_hash": request.issuer_key_hash.hex(),
        "serial_number": format(request.serial_number, "x"),
    }


def request_data(chain: Sequence[x509.Certificate], anchors: Iterable[x509.Certificate] = ()) -> dict:
    """
    :param chain: leaf first, then Sub-CAs (a self-signed root at the end
        is left out).
    :param anchors: installed roots, to find the issuer of the chain's top.
    :returns: ``{"ocsp_request_data_list": [...]}``: one entry per
        certificate whose issuer is known, in chain order.
    """
    chain = [c for c in chain if c.subject != c.issuer or len(chain) == 1]
    issuers = {c.subject.public_bytes(): c for c in list(anchors) + chain}
    entries = []
    for certificate in chain:
        issuer = issuers.get(certificate.issuer.public_bytes())
        if issuer is None:
            continue
        entry = {"certificate_hash_data": hash_data(certificate, issuer)}
        url = responder_url(certificate)
        if url is not None:
            entry["responder_url"] = url
        entries.append(entry)
    return {"ocsp_request_data_list": entries}
