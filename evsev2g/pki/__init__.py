"""
A complete ISO 15118-2 test PKI, written in EVerest's certificate layout.

``python -m evsev2g.pki create DIR`` (see :mod:`evsev2g.pki.__main__`) calls
:func:`create_test_pki`, which writes four chains:

* V2G root → CPO Sub-CA 1 → CPO Sub-CA 2 → SECC leaf (the TLS server);
* V2G root → CPS Sub-CA 1 → CPS Sub-CA 2 → CPS leaf (signs certificate
  installation responses for the simulated backend);
* MO root → MO Sub-CA 1 → MO Sub-CA 2 → contract leaf (CN = eMAID);
* OEM root → OEM Sub-CA 1 → OEM Sub-CA 2 → OEM provisioning leaf (CN = PCID).

File names are those of :mod:`evsev2g.security.layout`.  The SECC key is
encrypted with a random password kept in ``SECC_LEAF_PASSWORD.txt``, as
EvseSecurity expects; the other keys (EV side, simulated backend) are plain
PKCS#8.  Key files are readable by their owner only.  These are test
certificates: never put them on a charger in the field.
"""

from __future__ import annotations

import datetime
import os
import secrets
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evsev2g.pki.profiles import CA_USAGE, issue, leaf, root, sub_ca
from evsev2g.security import layout

DEFAULT_EVSE_ID = "DE*EV2*E0001"
DEFAULT_EMAID = "DEEV2C000000001"
DEFAULT_PCID = "EV2G0000000000000A"


@attrs.frozen
class Issued:
    """
    A certificate with its private key.

    :param certificate: the certificate.
    :param key: its private key.
    """

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@attrs.frozen
class CreatedPKI:
    """
    What :func:`create_test_pki` made.

    :param directory: the certificate directory.
    :param secc_password: the SECC key's password.
    :param issued: every certificate with its key, by layout path.
    """

    directory: Path
    secc_password: str
    issued: dict

    def path(self, relative) -> Path:
        """:returns: the absolute path of a layout entry."""
        return self.directory / relative


def _chain(profiles, anchor: Issued, now) -> list[Issued]:
    """Issue each profile under the previous one, starting below ``anchor``."""
    issued, parent = [], anchor
    for profile in profiles:
        key = ec.generate_private_key(ec.SECP256R1())
        issued.append(Issued(issue(profile, key.public_key(), parent.certificate, parent.key, now), key))
        parent = issued[-1]
    return issued


def _root(common_name: str, domain: str, now) -> Issued:
    """A self-signed root."""
    key = ec.generate_private_key(ec.SECP256R1())
    return Issued(issue(root(common_name, domain), key.public_key(), None, key, now), key)


def _pem(*certificates: x509.Certificate) -> bytes:
    """PEM text of certificates, in order."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM of a key, encrypted when a password is given."""
    encryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _write(path: Path, data: bytes, secret: bool = False) -> None:
    """
    Write a file atomically (a temporary file renamed over it, so a
    running SECC never reads half of it), creating its directory; secrets
    get mode 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if secret else 0o644
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _chains(evse_id: str, emaid: str, pcid: str) -> list:
    """
    Each chain: its root file, then (file, profile) from Sub-CA 1 down to
    the leaf, then the file holding leaf + Sub-CA 2 + Sub-CA 1.
    """
    mo_sub2_usage = CA_USAGE | {"digital_signature", "content_commitment"}  # signs SalesTariffs
    return [
        (layout.V2G_ROOT, [
            (layout.CPO_SUB_CA1, sub_ca("CPO Sub-CA 1", "V2G", 1460, 1)),
            (layout.CPO_SUB_CA2, sub_ca("CPO Sub-CA 2", "V2G", 365, 0)),
            (layout.SECC_LEAF, leaf(evse_id, "CPO", 60, ("digital_signature", "key_agreement"))),
        ], layout.CPO_CERT_CHAIN),
        (layout.V2G_ROOT, [
            (layout.CPS_SUB_CA1, sub_ca("CPS Sub-CA 1", "V2G", 1460, 1)),
            (layout.CPS_SUB_CA2, sub_ca("CPS Sub-CA 2", "CPS", 730, 0)),
            (layout.CPS_LEAF, leaf("CPS Leaf", "CPS", 90, ("digital_signature",))),
        ], layout.CPS_CERT_CHAIN),
        (layout.MO_ROOT, [
            (layout.MO_SUB_CA1, sub_ca("MO Sub-CA 1", "MO", 1460, 1)),
            (layout.MO_SUB_CA2, sub_ca("MO Sub-CA 2", "MO", 1460, 0, mo_sub2_usage)),
            (layout.CONTRACT_LEAF, leaf(emaid, "MO", 730, CONTRACT_USAGE)),
        ], layout.CONTRACT_CERT_CHAIN),
        (layout.OEM_ROOT, [
            (layout.OEM_SUB_CA1, sub_ca("OEM Sub-CA 1", "OEM", 1460, 1)),
            (layout.OEM_SUB_CA2, sub_ca("OEM Sub-CA 2", "OEM", 1460, 0)),
            (layout.OEM_LEAF, leaf(pcid, "OEM", 1460, ("digital_signature", "key_agreement"))),
        ], layout.OEM_CERT_CHAIN),
    ]


#: Key usage of a contract leaf.
CONTRACT_USAGE = ("digital_signature", "content_commitment", "key_agreement")

#: Leaf file → (its key file, its chain file, its Sub-CA 2, its Sub-CA 1).
LEAVES = {
    layout.SECC_LEAF: (layout.SECC_LEAF_KEY, layout.CPO_CERT_CHAIN, layout.CPO_SUB_CA2, layout.CPO_SUB_CA1),
    layout.CPS_LEAF: (layout.CPS_LEAF_KEY, layout.CPS_CERT_CHAIN, layout.CPS_SUB_CA2, layout.CPS_SUB_CA1),
    layout.CONTRACT_LEAF: (layout.CONTRACT_LEAF_KEY, layout.CONTRACT_CERT_CHAIN, layout.MO_SUB_CA2, layout.MO_SUB_CA1),
    layout.OEM_LEAF: (layout.OEM_LEAF_KEY, layout.OEM_CERT_CHAIN, layout.OEM_SUB_CA2, layout.OEM_SUB_CA1),
}


class PKIExists(Exception):
    """The directory already holds a PKI and replacing it was not asked for."""


def create_test_pki(
    directory: str | Path,
    *,
    evse_id: str = DEFAULT_EVSE_ID,
    emaid: str = DEFAULT_EMAID,
    pcid: str = DEFAULT_PCID,
    replace: bool = False,
    now: datetime.datetime | None = None,
) -> CreatedPKI:
    """
    Write a complete ISO 15118-2 test PKI.

    :param directory: the certificate directory (created when absent).
    :param evse_id: the SECC leaf's CN (the charger's EVSE id).
    :param emaid: the contract leaf's CN.
    :param pcid: the OEM provisioning leaf's CN.
    :param replace: overwrite an existing PKI in ``directory``.
    :param now: the start of validity (default: the current time).
    :returns: a :class:`CreatedPKI` describing what was written.
    :raises PKIExists: when ``directory`` already has a SECC leaf and
        ``replace`` is false.
    """
    directory = Path(directory).absolute()
    if not replace and (directory / layout.SECC_LEAF).exists():
        raise PKIExists(f"{directory} already holds a PKI ({layout.SECC_LEAF}); pass --force to replace it")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    roots = {
        layout.V2G_ROOT: _root("V2G Root CA", "V2G", now),
        layout.MO_ROOT: _root("MO Root CA", "MO", now),
        layout.OEM_ROOT: _root("OEM Root CA", "OEM", now),
    }
    chains = _chains(evse_id, emaid, pcid)
    issued = dict(roots)
    for root_file, members, chain_file in chains:
        made = _chain([profile for _, profile in members], roots[root_file], now)
        issued.update(zip([relative for relative, _ in members], made))
        _write(directory / chain_file, _pem(*(item.certificate for item in reversed(made))))
    for relative, item in issued.items():
        _write(directory / relative, _pem(item.certificate))
    for relative, item in roots.items():
        _write(directory / relative.with_suffix(".der"), item.certificate.public_bytes(serialization.Encoding.DER))

    password = secrets.token_urlsafe(18)
    _write(directory / layout.SECC_LEAF_KEY, _key_pem(issued[layout.SECC_LEAF].key, password.encode()), secret=True)
    _write(directory / layout.SECC_LEAF_PASSWORD, password.encode() + b"\n", secret=True)
    for key_file, owner in (
        (layout.CPS_LEAF_KEY, layout.CPS_LEAF),
        (layout.CONTRACT_LEAF_KEY, layout.CONTRACT_LEAF),
        (layout.OEM_LEAF_KEY, layout.OEM_LEAF),
        (layout.MO_SUB_CA2_KEY, layout.MO_SUB_CA2),
    ):
        _write(directory / key_file, _key_pem(issued[owner].key), secret=True)
    return CreatedPKI(directory, password, issued)


def issue_leaf(
    pki: CreatedPKI,
    relative,
    *,
    common_name: str | None = None,
    now: datetime.datetime | None = None,
    days: int | None = None,
) -> Issued:
    """
    Issue a new leaf of one of the four chains under the same Sub-CA 2,
    without writing it (a contract certificate for the simulated backend,
    an expired one for a test).

    :param pki: a PKI made by :func:`create_test_pki` (its keys in memory).
    :param relative: the leaf's layout path (``layout.SECC_LEAF``,
        ``CPS_LEAF``, ``CONTRACT_LEAF`` or ``OEM_LEAF``).
    :param common_name: the new CN (default: the old leaf's).
    :param now: the start of validity (default: the current time).
    :param days: validity in days (default: the profile's).
    :returns: the new certificate and key.
    """
    old = pki.issued[relative].certificate
    profile = next(p for chain in _chains("", "", "") for r, p in chain[1] if r == relative)
    name = common_name or old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    profile = attrs.evolve(profile, common_name=name, days=profile.days if days is None else days)
    issuer = pki.issued[LEAVES[relative][2]]
    key = ec.generate_private_key(ec.SECP256R1())
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return Issued(issue(profile, key.public_key(), issuer.certificate, issuer.key, now), key)


def reissue_leaf(pki: CreatedPKI, relative, **options) -> Issued:
    """
    Replace a leaf on disk: certificate, key (the SECC key encrypted with
    the PKI's password) and chain file, each written atomically, the chain
    file last.  What a certificate renewal does to a running charger.

    :param options: as :func:`issue_leaf`.
    :returns: the new certificate and key (also recorded in ``pki.issued``).
    """
    made = issue_leaf(pki, relative, **options)
    key_file, chain_file, sub2, sub1 = LEAVES[relative]
    password = pki.secc_password.encode() if relative == layout.SECC_LEAF else None
    pki.issued[relative] = made
    _write(pki.path(key_file), _key_pem(made.key, password), secret=True)
    _write(pki.path(relative), _pem(made.certificate))
    if chain_file is not None:
        _write(pki.path(chain_file), _pem(made.certificate, pki.issued[sub2].certificate, pki.issued[sub1].certificate))
    return made
