"""
Contract key transport of CertificateInstallationRes / CertificateUpdateRes
(ISO 15118-2 [V2G2-818] as the notes quote it).

The provisioning service makes an ephemeral P-256 key pair, agrees a secret
by ECDH with the EV's key (the OEM provisioning certificate's for an
installation, the old contract certificate's for an update), derives a
16-byte AES key with the NIST SP 800-56A concatenation KDF over SHA-256 and
OtherInfo ``01 55 56``, and encrypts the 32-byte contract private scalar
with AES-128-CBC under a random IV.  The response carries
``ContractSignatureEncryptedPrivateKey`` = IV ‖ ciphertext (48 bytes) and
``DHpublickey`` = the ephemeral public point, uncompressed (65 bytes).

The simulated backend encrypts; the EV simulator decrypts.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

#: OtherInfo of the KDF: AlgorithmID 0x01, PartyUInfo 'U', PartyVInfo 'V'.
OTHER_INFO = b"\x01\x55\x56"

ENCRYPTED_SIZE = 48
DH_PUBLIC_SIZE = 65


def _session_key(private: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey) -> bytes:
    shared = private.exchange(ec.ECDH(), public)
    return ConcatKDFHash(algorithm=hashes.SHA256(), length=16, otherinfo=OTHER_INFO).derive(shared)


def encrypt_private_key(
    contract_key: ec.EllipticCurvePrivateKey, recipient: ec.EllipticCurvePublicKey
) -> tuple[bytes, bytes]:
    """
    :param contract_key: the new contract private key.
    :param recipient: the EV's public key (OEM provisioning or old contract).
    :returns: ``(encrypted, dh_public)``: 48 and 65 bytes.
    """
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(_session_key(ephemeral, recipient)), modes.CBC(iv)).encryptor()
    scalar = contract_key.private_numbers().private_value.to_bytes(32, "big")
    encrypted = iv + encryptor.update(scalar) + encryptor.finalize()
    dh_public = ephemeral.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return encrypted, dh_public


def decrypt_private_key(
    encrypted: bytes, dh_public: bytes, recipient_key: ec.EllipticCurvePrivateKey
) -> ec.EllipticCurvePrivateKey:
    """
    :param encrypted: ``ContractSignatureEncryptedPrivateKey`` (48 bytes).
    :param dh_public: ``DHpublickey`` (65 bytes).
    :param recipient_key: the EV's private key the service encrypted for.
    :returns: the contract private key.
    :raises ValueError: wrong sizes, a point not on P-256, or a scalar out
        of range (wrong key).
    """
    if len(encrypted) != ENCRYPTED_SIZE or len(dh_public) != DH_PUBLIC_SIZE:
        raise ValueError(f"encrypted key must be {ENCRYPTED_SIZE} bytes and DH public key {DH_PUBLIC_SIZE}")
    ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(dh_public))
    decryptor = Cipher(algorithms.AES(_session_key(recipient_key, ephemeral)), modes.CBC(encrypted[:16])).decryptor()
    scalar = decryptor.update(encrypted[16:]) + decryptor.finalize()
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
