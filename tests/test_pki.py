"""Tests for :mod:`evsev2g.pki`: the ISO 15118-2 test PKI."""

import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evsev2g.pki import PKIExists, create_test_pki
from evsev2g.pki.__main__ import main
from evsev2g.security import layout
from evsev2g.security.credentials import read_certificates


def cert(pki, relative) -> x509.Certificate:
    """The first certificate of a layout file."""
    return read_certificates(pki.path(relative))[0]


def dc(certificate) -> str:
    """The subject's domain component."""
    return certificate.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)[0].value


def cn(certificate) -> str:
    """The subject's common name."""
    return certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


CHAINS = {
    "CPO": [layout.V2G_ROOT, layout.CPO_SUB_CA1, layout.CPO_SUB_CA2, layout.SECC_LEAF],
    "CPS": [layout.V2G_ROOT, layout.CPS_SUB_CA1, layout.CPS_SUB_CA2, layout.CPS_LEAF],
    "MO": [layout.MO_ROOT, layout.MO_SUB_CA1, layout.MO_SUB_CA2, layout.CONTRACT_LEAF],
    "OEM": [layout.OEM_ROOT, layout.OEM_SUB_CA1, layout.OEM_SUB_CA2, layout.OEM_LEAF],
}


@pytest.mark.parametrize("name", CHAINS)
def test_chains_verify_and_follow_the_profile(test_pki, name):
    """Each chain: P-256, ECDSA-SHA256, root CA without pathlen, Sub-CA 1 pathlen 1, Sub-CA 2 pathlen 0, leaf not a CA."""
    certificates = [cert(test_pki, relative) for relative in CHAINS[name]]
    for child, parent in zip(certificates[1:], certificates):
        child.verify_directly_issued_by(parent)
    certificates[0].verify_directly_issued_by(certificates[0])
    expected_pathlen = [None, 1, 0, None]
    for certificate, pathlen in zip(certificates, expected_pathlen):
        assert isinstance(certificate.public_key().curve, ec.SECP256R1)
        assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical
        assert constraints.value.ca == (certificate is not certificates[-1])
        assert constraints.value.path_length == pathlen
        assert certificate.extensions.get_extension_for_class(x509.KeyUsage).critical
        certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_leaf_profiles(test_pki):
    """SECC leaf DC=CPO with digitalSignature+keyAgreement; contract leaf DC=MO with CN=eMAID; CAs sign certificates."""
    secc = cert(test_pki, layout.SECC_LEAF)
    usage = secc.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (dc(secc), cn(secc)) == ("CPO", "DE*EV2*E0001")
    assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
    contract = cert(test_pki, layout.CONTRACT_LEAF)
    assert (dc(contract), cn(contract)) == ("MO", "DEEV2C000000001")
    assert dc(cert(test_pki, layout.CPO_SUB_CA2)) == "V2G"
    assert dc(cert(test_pki, layout.OEM_LEAF)) == "OEM"
    assert dc(cert(test_pki, layout.CPS_LEAF)) == "CPS"
    for relative in (layout.CPO_SUB_CA1, layout.CPO_SUB_CA2, layout.MO_SUB_CA2):
        assert cert(test_pki, relative).extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    validity = secc.not_valid_after_utc - secc.not_valid_before_utc
    assert 60 <= validity.days <= 61


def test_bundles_keys_and_permissions(test_pki):
    """Chain files hold leaf, Sub-CA 2, Sub-CA 1; keys match their leaves and are mode 0600."""
    for chain, members in (
        (layout.CPO_CERT_CHAIN, (layout.SECC_LEAF, layout.CPO_SUB_CA2, layout.CPO_SUB_CA1)),
        (layout.CONTRACT_CERT_CHAIN, (layout.CONTRACT_LEAF, layout.MO_SUB_CA2, layout.MO_SUB_CA1)),
        (layout.OEM_CERT_CHAIN, (layout.OEM_LEAF, layout.OEM_SUB_CA2, layout.OEM_SUB_CA1)),
        (layout.CPS_CERT_CHAIN, (layout.CPS_LEAF, layout.CPS_SUB_CA2, layout.CPS_SUB_CA1)),
    ):
        assert read_certificates(test_pki.path(chain)) == [cert(test_pki, m) for m in members]
    for key, leaf in (
        (layout.CONTRACT_LEAF_KEY, layout.CONTRACT_LEAF),
        (layout.OEM_LEAF_KEY, layout.OEM_LEAF),
        (layout.CPS_LEAF_KEY, layout.CPS_LEAF),
        (layout.MO_SUB_CA2_KEY, layout.MO_SUB_CA2),
    ):
        private = load_pem_private_key(test_pki.path(key).read_bytes(), None)
        assert private.public_key() == cert(test_pki, leaf).public_key()
        assert test_pki.path(key).stat().st_mode & 0o777 == 0o600
    encrypted = test_pki.path(layout.SECC_LEAF_KEY).read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in encrypted
    assert test_pki.path(layout.SECC_LEAF_PASSWORD).read_text().strip() == test_pki.secc_password
    der = test_pki.path(layout.V2G_ROOT.with_suffix(".der")).read_bytes()
    assert der == cert(test_pki, layout.V2G_ROOT).public_bytes(Encoding.DER)


def test_existing_pki_is_not_replaced_without_force(tmp_path):
    """A second create into the same directory refuses unless asked to replace."""
    first = create_test_pki(tmp_path / "certs")
    with pytest.raises(PKIExists, match="already holds a PKI"):
        create_test_pki(tmp_path / "certs")
    second = create_test_pki(tmp_path / "certs", replace=True)
    assert second.secc_password != first.secc_password


def test_command_line_create_and_check(tmp_path, capsys):
    """python -m evsev2g.pki create DIR writes a usable PKI; check DIR says so; a damaged one fails with the reason."""
    directory = tmp_path / "certs"
    assert main(["create", str(directory), "--evse-id", "DE*ABC*E42"]) == 0
    assert f"set certs_dir: {directory}" in capsys.readouterr().out
    assert main(["check", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "usable: DC=CPO,C=DE,O=evsev2g test PKI,CN=DE*ABC*E42" in out
    assert f"Plug & Charge: MO root {directory / layout.MO_ROOT}" in out and "certificate installation and update can be answered" in out
    assert main(["create", str(directory)]) == 1
    assert "pass --force to replace it" in capsys.readouterr().err
    (directory / layout.SECC_LEAF_KEY).unlink()
    assert main(["check", str(directory)]) == 1
    assert "not usable: cannot read" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    """`python -m evsev2g.pki create DIR` runs as a module."""
    result = subprocess.run(
        [sys.executable, "-m", "evsev2g.pki", "create", str(tmp_path / "c")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c" / layout.CPO_CERT_CHAIN).is_file()
