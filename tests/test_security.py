"""Tests for :mod:`evsev2g.security`: the file-based provider and its checks."""

import datetime
import shutil

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from zope.interface.verify import verifyObject

from evsev2g.errors import CertificatesUnavailable
from evsev2g.interfaces import ISecurity
from evsev2g.pki import create_test_pki
from evsev2g.security import layout
from evsev2g.security.credentials import check_credentials
from evsev2g.security.files import FileSecurity


@pytest.fixture
def pki_copy(test_pki, tmp_path):
    """A copy of the session's test PKI that a test may damage."""
    target = tmp_path / "certs"
    shutil.copytree(test_pki.directory, target)
    return target


def problem(directory, **kwargs) -> str:
    """The reason FileSecurity gives for refusing a directory."""
    with pytest.raises(CertificatesUnavailable) as caught:
        FileSecurity(directory, **kwargs).tls_server_credentials()
    return str(caught.value)


def test_provides_isecurity(test_pki):
    """FileSecurity provides ISecurity."""
    verifyObject(ISecurity, FileSecurity(test_pki.directory))


def test_reads_the_encrypted_key_and_the_chain(test_pki):
    """The chain file gives leaf, Sub-CA 2, Sub-CA 1; the key is decrypted with the password file."""
    credentials = FileSecurity(test_pki.directory).tls_server_credentials()
    names = [c.subject.rfc4514_string().split("CN=")[1] for c in credentials.chain]
    assert names == ["DE*EV2*E0001", "CPO Sub-CA 2", "CPO Sub-CA 1"]
    assert credentials.root.subject == test_pki.issued[layout.V2G_ROOT].certificate.subject
    assert isinstance(credentials.key, ec.EllipticCurvePrivateKey)


def test_chain_from_leaf_and_sub_cas_when_no_chain_file(pki_copy):
    """Without CPO_CERT_CHAIN.pem, SECC_LEAF.pem and the CPO Sub-CAs in ca/cso make the chain."""
    (pki_copy / layout.CPO_CERT_CHAIN).unlink()
    assert len(FileSecurity(pki_copy).tls_server_credentials().chain) == 3


def test_verify_files(test_pki):
    """verify_file gives the CA bundle of each kind; unknown kinds and absent bundles are errors."""
    security = FileSecurity(test_pki.directory)
    assert security.verify_file("V2G") == test_pki.path(layout.V2G_ROOT)
    assert security.verify_file("MO") == test_pki.path(layout.MO_ROOT)
    with pytest.raises(CertificatesUnavailable, match="no CSMS root"):
        security.verify_file("CSMS")
    with pytest.raises(ValueError, match="unknown CA type 'OEM'"):
        security.verify_file("OEM")


def test_missing_directory(tmp_path):
    """A directory that is not there is named."""
    assert problem(tmp_path / "nope") == f"{tmp_path / 'nope'} is not a directory"


def test_missing_key(pki_copy):
    """A missing key file is named."""
    (pki_copy / layout.SECC_LEAF_KEY).unlink()
    assert problem(pki_copy) == f"cannot read {pki_copy / layout.SECC_LEAF_KEY}: No such file or directory"


def test_missing_password_file(pki_copy):
    """An encrypted key without its password file says so."""
    (pki_copy / layout.SECC_LEAF_PASSWORD).unlink()
    assert problem(pki_copy).endswith("is encrypted and no password was given")


def test_wrong_password(pki_copy):
    """A wrong password says so."""
    (pki_copy / layout.SECC_LEAF_PASSWORD).write_text("wrong\n")
    assert "not a PEM private key, or the password is wrong" in problem(pki_copy)


def test_key_of_another_leaf(pki_copy, test_pki):
    """A key that does not belong to the leaf is refused."""
    shutil.copy(test_pki.path(layout.CONTRACT_LEAF_KEY), pki_copy / layout.SECC_LEAF_KEY)
    (pki_copy / layout.SECC_LEAF_PASSWORD).unlink()
    assert problem(pki_copy) == "the private key does not belong to the leaf DC=CPO,C=DE,O=evsev2g test PKI,CN=DE*EV2*E0001"


def test_expired_leaf(test_pki):
    """A leaf past its validity (60 days for the SECC leaf) is refused with its end date."""
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=61)
    assert "CN=DE*EV2*E0001 expired on" in problem(test_pki.directory, now=lambda: later)


def test_chain_to_another_root(pki_copy, tmp_path):
    """A chain that does not lead to the V2G root in ca/v2g is refused."""
    other = create_test_pki(tmp_path / "other")
    shutil.copy(other.path(layout.V2G_ROOT), pki_copy / layout.V2G_ROOT)
    assert problem(pki_copy) == (
        "DC=V2G,C=DE,O=evsev2g test PKI,CN=CPO Sub-CA 1 is not signed by DC=V2G,C=DE,O=evsev2g test PKI,CN=V2G Root CA"
    )


def test_wrong_curve(credentials):
    """A key not on P-256 is refused."""
    key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(CertificatesUnavailable, match="secp384r1; ISO 15118-2 needs secp256r1"):
        check_credentials(credentials.chain, key, None, datetime.datetime.now(datetime.timezone.utc))
