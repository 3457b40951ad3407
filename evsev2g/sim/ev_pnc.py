"""
The EV side of Plug & Charge for the EV simulator: the contract it holds,
the signed requests it sends, and what it does with a certificate response.

An :class:`EVContract` is the contract leaf, its Sub-CAs and its private
key (from the test PKI's ``client/mo``, or installed by a
CertificateInstallationRes).  The message builders return bodies and header
signatures as :class:`~evsev2g.exi.message.Message` trees; the simulator
wraps them into V2G messages.  Signatures use the standalone-xmldsig form
of SignedInfo (:mod:`evsev2g.security.xmldsig`).
"""

from __future__ import annotations

from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from evsev2g.exi.message import Message
from evsev2g.responses import ProtocolError, SignatureError
from evsev2g.security import contract, layout, provisioning, xmldsig
from evsev2g.security.credentials import read_certificates, read_private_key

__all__ = ["EVContract", "EVIdentity", "install_request", "update_request", "authorization_request",
           "metering_receipt_request", "accept_certificate_response"]

#: The Id the EV gives every signed body element.
BODY_ID = "id1"


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@attrs.frozen
class EVContract:
    """
    :param chain: the parsed contract chain.
    :param key: the contract private key.
    """

    chain: contract.ContractChain
    key: ec.EllipticCurvePrivateKey

    @property
    def emaid(self) -> str:
        """The eMAID (the leaf's CN)."""
        return self.chain.emaid

    def cert_chain(self, name: str = "ContractSignatureCertChain") -> Message:
        """:returns: the chain as a ``CertificateChainType`` element."""
        subs = [_der(c) for c in self.chain.sub_cas]
        return Message(name, Certificate=_der(self.chain.leaf),
                       SubCertificates=Message("SubCertificates", Certificate=subs) if subs else None)

    @classmethod
    def from_directory(cls, certs_dir: Path) -> "EVContract | None":
        """:returns: the test PKI's contract (``client/mo``), or ``None`` when it has none."""
        directory = Path(certs_dir)
        if not (directory / layout.CONTRACT_CERT_CHAIN).exists():
            return None
        leaf, *subs = read_certificates(directory / layout.CONTRACT_CERT_CHAIN)
        return cls(contract.ContractChain(leaf, tuple(subs)), read_private_key(directory / layout.CONTRACT_LEAF_KEY, None))


@attrs.frozen
class EVIdentity:
    """
    What the EV holds for Plug & Charge.

    :param provisioning_cert: the OEM provisioning certificate.
    :param provisioning_key: its private key.
    :param v2g_roots: the V2G roots the EV trusts (for the CPS signature
        and ListOfRootCertificateIDs).
    """

    provisioning_cert: x509.Certificate
    provisioning_key: ec.EllipticCurvePrivateKey
    v2g_roots: tuple[x509.Certificate, ...]

    @classmethod
    def from_directory(cls, certs_dir: Path) -> "EVIdentity":
        """:returns: the test PKI's OEM provisioning leaf, key and V2G root."""
        directory = Path(certs_dir)
        return cls(
            read_certificates(directory / layout.OEM_LEAF)[0],
            read_private_key(directory / layout.OEM_LEAF_KEY, None),
            tuple(read_certificates(directory / layout.V2G_ROOT)),
        )

    def root_ids(self) -> Message:
        """:returns: ``ListOfRootCertificateIDs`` naming the trusted V2G roots."""
        return Message("ListOfRootCertificateIDs", RootCertificateID=[
            Message("RootCertificateID", X509IssuerName=root.issuer.rfc4514_string(), X509SerialNumber=root.serial_number)
            for root in self.v2g_roots
        ])


def install_request(codec, identity: EVIdentity) -> tuple[Message, Message]:
    """:returns: ``(CertificateInstallationReq, header Signature)`` signed with the provisioning key."""
    body = Message("CertificateInstallationReq", attrs={"Id": BODY_ID},
                   OEMProvisioningCert=_der(identity.provisioning_cert), ListOfRootCertificateIDs=identity.root_ids())
    return body, xmldsig.sign(codec, [body], identity.provisioning_key)


def update_request(codec, identity: EVIdentity, current: EVContract) -> tuple[Message, Message]:
    """:returns: ``(CertificateUpdateReq, header Signature)`` signed with the current contract key."""
    body = Message("CertificateUpdateReq", attrs={"Id": BODY_ID}, ContractSignatureCertChain=current.cert_chain(),
                   eMAID=current.emaid, ListOfRootCertificateIDs=identity.root_ids())
    return body, xmldsig.sign(codec, [body], current.key)


def authorization_request(codec, current: EVContract, challenge: bytes) -> tuple[Message, Message]:
    """:returns: ``(AuthorizationReq, header Signature)`` with Id and GenChallenge, signed with the contract key."""
    body = Message("AuthorizationReq", attrs={"Id": BODY_ID}, GenChallenge=challenge)
    return body, xmldsig.sign(codec, [body], current.key)


def metering_receipt_request(codec, current: EVContract, session_id: bytes, meter_info: Message,
                             sa_schedule_tuple_id: int | None = None) -> tuple[Message, Message]:
    """:returns: ``(MeteringReceiptReq, header Signature)`` signed with the contract key."""
    body = Message("MeteringReceiptReq", attrs={"Id": BODY_ID}, SessionID=session_id,
                   SAScheduleTupleID=sa_schedule_tuple_id, MeterInfo=meter_info)
    return body, xmldsig.sign(codec, [body], current.key)


def accept_certificate_response(codec, message: Message, identity: EVIdentity, now,
                                current: EVContract | None = None) -> EVContract:
    """
    Check a CertificateInstallationRes / UpdateRes and take the new contract.

    :param message: the decoded response ``V2G_Message``.
    :param current: the contract an update was signed with (its key
        decrypts), or ``None`` for an installation (the provisioning key).
    :returns: the new :class:`EVContract`.
    :raises ProtocolError: a FAILED response code, a CPS chain that does not
        lead to a trusted V2G root, a bad signature, or a key that does not
        decrypt to the certificate's.
    """
    body = message.Body.get("CertificateInstallationRes") or message.Body.get("CertificateUpdateRes")
    if body is None:
        raise ProtocolError("not a certificate response")
    if body.ResponseCode.startswith("FAILED"):
        raise ProtocolError(f"the SECC answered {body.ResponseCode}")
    provisioning_chain = body.SAProvisioningCertificateChain
    subs = provisioning_chain.SubCertificates.getlist("Certificate") if provisioning_chain.get("SubCertificates") else []
    cps = contract.parse_chain(provisioning_chain.Certificate, subs)
    contract.verify_chain(cps, identity.v2g_roots, now)
    signed = [body.ContractSignatureCertChain, body.ContractSignatureEncryptedPrivateKey, body.DHpublickey, body.eMAID]
    elements = {element.attrs.get("Id"): element for element in signed}
    xmldsig.verify(codec, message.Header.get("Signature"), elements, cps.public_key, required=list(elements))
    chain = body.ContractSignatureCertChain
    new_subs = chain.SubCertificates.getlist("Certificate") if chain.get("SubCertificates") else []
    new_chain = contract.parse_chain(chain.Certificate, new_subs)
    recipient = current.key if current is not None else identity.provisioning_key
    try:
        key = provisioning.decrypt_private_key(body.ContractSignatureEncryptedPrivateKey.value, body.DHpublickey.value, recipient)
    except ValueError as error:
        raise SignatureError(f"the contract key does not decrypt: {error}") from None
    if key.public_key() != new_chain.public_key:
        raise SignatureError("the decrypted contract key does not belong to the contract certificate")
    return EVContract(new_chain, key)


#: The files an EV holds for Plug & Charge (besides its contract).
EV_FILES = (layout.OEM_LEAF, layout.OEM_LEAF_KEY, layout.V2G_ROOT)
#: … and its contract.
CONTRACT_FILES = (layout.CONTRACT_CERT_CHAIN, layout.CONTRACT_LEAF_KEY)


def ev_directory(certs_dir: Path, directory: Path, with_contract: bool = True) -> Path:
    """
    Copy what an EV holds out of a test PKI: the OEM provisioning leaf and
    key, the V2G root and, ``with_contract``, the contract chain and key.

    :param certs_dir: the test PKI (``python -m evsev2g.pki create``).
    :param directory: the EV's directory (made when absent).
    :returns: ``directory``.
    """
    import shutil

    for relative in EV_FILES + (CONTRACT_FILES if with_contract else ()):
        target = Path(directory) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(certs_dir) / relative, target)
    return Path(directory)
