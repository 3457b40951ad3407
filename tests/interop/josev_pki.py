"""
Josev's own ISO 15118-2 test PKI, made by Josev's ``create_certs.sh``
(OpenSSL, its own profiles and names), and the same files laid out for our
SECC as EVerest's EvseSecurity keeps them (``CERTS_LAYOUT.md``): the SECC
chain and encrypted key with its password file, the V2G and MO roots, and
the extras our simulated backend needs (CPS chain and key, MO Sub-CAs and
Sub-CA 2 key, OEM Sub-CAs and root).

Nothing of evsev2g makes these certificates: the layout step only copies,
converts DER to PEM, and writes the two backend keys unencrypted.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from evsev2g.security import layout

#: Josev's files (under ``iso15118_2/``) for each layout entry.
CERTIFICATES = {
    layout.V2G_ROOT: ["v2gRootCACert.pem"],
    layout.CPO_SUB_CA1: ["cpoSubCA1Cert.pem"],
    layout.CPO_SUB_CA2: ["cpoSubCA2Cert.pem"],
    layout.SECC_LEAF: ["seccLeafCert.pem"],
    layout.CPO_CERT_CHAIN: ["seccLeafCert.pem", "cpoSubCA2Cert.pem", "cpoSubCA1Cert.pem"],
    layout.MO_ROOT: ["moRootCACert.pem"],
    layout.MO_SUB_CA1: ["moSubCA1Cert.pem"],
    layout.MO_SUB_CA2: ["moSubCA2Cert.pem"],
    layout.CPS_SUB_CA1: ["cpsSubCA1Cert.pem"],
    layout.CPS_SUB_CA2: ["cpsSubCA2Cert.pem"],
    layout.CPS_LEAF: ["cpsLeafCert.pem"],
    layout.CPS_CERT_CHAIN: ["cpsLeafCert.pem", "cpsSubCA2Cert.pem", "cpsSubCA1Cert.pem"],
    layout.OEM_ROOT: ["oemRootCACert.pem"],
    layout.OEM_SUB_CA1: ["oemSubCA1Cert.pem"],
    layout.OEM_SUB_CA2: ["oemSubCA2Cert.pem"],
}


def make_josev_pki(josev_python: Path, workdir: Path) -> Path:
    """
    Run Josev's ``create_certs.sh -v iso-2`` in ``workdir/pki`` (its
    ``PKI_PATH``).

    :returns: ``workdir/pki``.
    """
    package = subprocess.run(
        [str(josev_python), "-c", "import iso15118, os; print(os.path.dirname(iso15118.__file__))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    pki = workdir / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    source = Path(package) / "shared" / "pki"
    shutil.copytree(source / "configs", pki / "configs", dirs_exist_ok=True)
    shutil.copy(source / "create_certs.sh", pki / "create_certs.sh")
    subprocess.run(["bash", "create_certs.sh", "-v", "iso-2"], cwd=pki, capture_output=True, check=True, timeout=120)
    return pki


def _password(keys: Path, name: str) -> bytes:
    return (keys / name).read_text().splitlines()[0].encode()


def lay_out(pki: Path, certs_dir: Path) -> Path:
    """
    Lay Josev's PKI out as EvseSecurity keeps a certificate directory.

    :param pki: what :func:`make_josev_pki` made.
    :param certs_dir: the directory to fill (our SECC's ``certs_dir``).
    :returns: ``certs_dir``.
    """
    certs, keys = pki / "iso15118_2" / "certs", pki / "iso15118_2" / "private_keys"
    for relative, names in CERTIFICATES.items():
        target = certs_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"".join((certs / name).read_bytes() for name in names))
    # The SECC key stays encrypted, its password beside it, as EvseSecurity has it.
    shutil.copy(keys / "seccLeaf.key", certs_dir / layout.SECC_LEAF_KEY)
    shutil.copy(keys / "seccLeafPassword.txt", certs_dir / layout.SECC_LEAF_PASSWORD)
    # The simulated backend's signing keys, decrypted (test PKI extras).
    for key_name, password_name, relative in (
        ("cpsLeaf.key", "cpsLeafPassword.txt", layout.CPS_LEAF_KEY),
        ("moSubCA2.key", "moSubCA2LeafPassword.txt", layout.MO_SUB_CA2_KEY),
    ):
        key = serialization.load_pem_private_key((keys / key_name).read_bytes(), _password(keys, password_name))
        target = certs_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    return certs_dir


def contract_chain(pki: Path) -> list[x509.Certificate]:
    """Josev's contract leaf, MO Sub-CA 2 and Sub-CA 1."""
    certs = pki / "iso15118_2" / "certs"
    return [x509.load_pem_x509_certificate((certs / name).read_bytes())
            for name in ("contractLeafCert.pem", "moSubCA2Cert.pem", "moSubCA1Cert.pem")]
