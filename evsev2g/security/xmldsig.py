"""
XML signatures over EXI fragments, as ISO 15118-2 uses them (Plug & Charge).

A signed message carries ``Header/Signature`` whose ``SignedInfo`` lists
one ``Reference`` per signed body element (``URI="#<Id>"``).  The bytes that
count are EXI, not XML:

* **Digest** of a referenced element: SHA-256 of the element encoded alone
  as an EXI fragment with the ISO-2 (``V2G_CI_MsgDef``) schema set
  (:meth:`evsev2g.exi.codec.Codec.encode_fragment` with ``grammar=None``).
* **Signature**: ECDSA P-256 with SHA-256 over ``SignedInfo`` encoded as an
  EXI fragment, carried as raw ``r‖s`` (64 bytes), not DER.  ``SignedInfo``
  is encoded in one of two forms (:data:`FORMS`): with
  ``xmldsig-core-schema.xsd`` alone (RISE-V2G, Josev, OpenV2G-era EVerest:
  ``80 81 …``), or with the MsgDef set (libcbv2g's
  ``encode_iso2_exiFragment``: ``80 d0 …``).  We sign with the first and
  verify with the first, then the second, so cars of either kind pass.

Algorithms are fixed: canonicalization and the one transform per reference
``http://www.w3.org/TR/canonical-exi/``, digest
``http://www.w3.org/2001/04/xmlenc#sha256``, signature
``http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256``; at most
:data:`MAX_REFERENCES` references.  Every failure is a
:class:`~evsev2g.responses.SignatureError` whose message says what was
wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from evsev2g.exi.errors import ExiError
from evsev2g.exi.message import Message
from evsev2g.responses import SignatureError

CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

#: At most four references in one SignedInfo (CertificateInstallationRes
#: signs four elements; [V2G2-909] as quoted in the notes).
MAX_REFERENCES = 4

#: SignedInfo encodings, in the order verification tries them: the
#: standalone xmldsig grammar, then the ISO-2 MsgDef fragment grammar.
FORMS = ("xmldsig", None)

#: Bytes of a raw P-256 signature (r‖s).
SIGNATURE_SIZE = 64


def fragment(codec, element: Message) -> bytes:
    """
    :param codec: the ISO-2 codec.
    :param element: a signed element (its ``Id`` attribute set).
    :returns: the element as an EXI fragment with the MsgDef schema set.
    :raises SignatureError: when it cannot be encoded.
    """
    try:
        return codec.encode_fragment(element)
    except (ExiError, ValueError, TypeError) as error:
        raise SignatureError(f"{element.name} cannot be encoded as an EXI fragment: {error}") from None


def digest(codec, element: Message) -> bytes:
    """:returns: the SHA-256 digest of :func:`fragment` of ``element``."""
    return hashlib.sha256(fragment(codec, element)).digest()


def signed_info(references: Iterable[tuple[str, bytes]]) -> Message:
    """
    :param references: ``(Id, digest)`` per signed element, in order.
    :returns: the ``SignedInfo`` element listing them.
    """
    return Message(
        "SignedInfo",
        CanonicalizationMethod=Message("CanonicalizationMethod", attrs={"Algorithm": CANONICAL_EXI}),
        SignatureMethod=Message("SignatureMethod", attrs={"Algorithm": ECDSA_SHA256}),
        Reference=[
            Message(
                "Reference",
                attrs={"URI": f"#{identifier}"},
                Transforms=Message("Transforms", Transform=Message("Transform", attrs={"Algorithm": CANONICAL_EXI})),
                DigestMethod=Message("DigestMethod", attrs={"Algorithm": DIGEST_SHA256}),
                DigestValue=value,
            )
            for identifier, value in references
        ],
    )


def signed_info_bytes(codec, info: Message, form: str | None = "xmldsig") -> bytes:
    """
    :param codec: the ISO-2 codec.
    :param info: a ``SignedInfo`` element.
    :param form: ``"xmldsig"`` or ``None`` (MsgDef), see :data:`FORMS`.
    :returns: the bytes the signature is computed over.
    :raises SignatureError: when it cannot be encoded.
    """
    try:
        return codec.encode_fragment(info, grammar=form)
    except (ExiError, ValueError, TypeError) as error:
        raise SignatureError(f"SignedInfo cannot be encoded as an EXI fragment: {error}") from None


def raw_signature(der: bytes) -> bytes:
    """:returns: a DER ECDSA signature as raw ``r‖s`` (64 bytes)."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign(codec, elements: Sequence[Message], key: ec.EllipticCurvePrivateKey, form: str | None = "xmldsig") -> Message:
    """
    Make the ``Signature`` for the header of a message.

    :param codec: the ISO-2 codec.
    :param elements: the elements to sign, each with its ``Id`` attribute.
    :param key: the signer's P-256 private key.
    :param form: the SignedInfo encoding (default: standalone xmldsig).
    :returns: ``Signature`` with ``SignedInfo`` and ``SignatureValue``.
    """
    if not 1 <= len(elements) <= MAX_REFERENCES:
        raise ValueError(f"sign 1 to {MAX_REFERENCES} elements, not {len(elements)}")
    info = signed_info((element.attrs["Id"], digest(codec, element)) for element in elements)
    value = raw_signature(key.sign(signed_info_bytes(codec, info, form), ec.ECDSA(hashes.SHA256())))
    return Message("Signature", SignedInfo=info, SignatureValue=Message("SignatureValue", value=value))


def _algorithm(node, what: str, expected: str) -> None:
    found = node.attrs.get("Algorithm") if node is not None else None
    if found != expected:
        raise SignatureError(f"{what} is {found!r}, not {expected}")


def check_references(codec, info: Message, elements: Mapping[str, Message], required: Iterable[str]) -> None:
    """
    Check SignedInfo's algorithms and each reference's digest.

    :param codec: the ISO-2 codec.
    :param info: the received ``SignedInfo``.
    :param elements: the message's signable elements by ``Id``.
    :param required: the ``Id`` s that must be referenced.
    :raises SignatureError: naming the first problem.
    """
    _algorithm(info.get("CanonicalizationMethod"), "CanonicalizationMethod", CANONICAL_EXI)
    _algorithm(info.get("SignatureMethod"), "SignatureMethod", ECDSA_SHA256)
    references = info.getlist("Reference")
    if not 1 <= len(references) <= MAX_REFERENCES:
        raise SignatureError(f"SignedInfo has {len(references)} references; 1 to {MAX_REFERENCES} are allowed")
    referenced = set()
    for reference in references:
        uri = reference.attrs.get("URI") or ""
        if not uri.startswith("#") or uri[1:] not in elements:
            raise SignatureError(f"Reference URI {uri!r} names no signed element of this message")
        transforms = reference.get("Transforms")
        transform_list = transforms.getlist("Transform") if transforms is not None else []
        if len(transform_list) != 1:
            raise SignatureError(f"Reference {uri} has {len(transform_list)} transforms; exactly one is allowed")
        _algorithm(transform_list[0], f"Reference {uri} transform", CANONICAL_EXI)
        _algorithm(reference.get("DigestMethod"), f"Reference {uri} DigestMethod", DIGEST_SHA256)
        if reference.get("DigestValue") != digest(codec, elements[uri[1:]]):
            raise SignatureError(f"digest of {elements[uri[1:]].name} ({uri}) does not match its Reference")
        referenced.add(uri[1:])
    missing = [identifier for identifier in required if identifier not in referenced]
    if missing:
        raise SignatureError(f"the signature does not cover {', '.join('#' + m for m in missing)}")


def verify(
    codec,
    signature: Message | None,
    elements: Mapping[str, Message],
    public_key: ec.EllipticCurvePublicKey,
    required: Iterable[str] = (),
) -> str | None:
    """
    Verify a header ``Signature``.

    :param codec: the ISO-2 codec.
    :param signature: the header's ``Signature`` element, or ``None``.
    :param elements: the signable elements of the message by ``Id``.
    :param public_key: the signer's P-256 public key.
    :param required: ``Id`` s the signature must cover (e.g. the
        AuthorizationReq body's), so a signature over another element fails.
    :returns: the :data:`FORMS` entry whose encoding verified.
    :raises SignatureError: missing, malformed, wrong digest, or no form
        of SignedInfo verifies.
    """
    if signature is None:
        raise SignatureError("the message carries no Signature")
    info = signature.get("SignedInfo")
    value_node = signature.get("SignatureValue")
    if info is None or value_node is None:
        raise SignatureError("Signature lacks SignedInfo or SignatureValue")
    value = value_node.value if isinstance(value_node, Message) else value_node
    if not isinstance(value, bytes) or len(value) != SIGNATURE_SIZE:
        size = len(value) if isinstance(value, bytes) else "no"
        raise SignatureError(f"SignatureValue has {size} bytes; raw r‖s has {SIGNATURE_SIZE} (DER is not allowed)")
    check_references(codec, info, elements, required)
    der = encode_dss_signature(int.from_bytes(value[:32], "big"), int.from_bytes(value[32:], "big"))
    for form in FORMS:
        try:
            data = signed_info_bytes(codec, info, form)
        except SignatureError:
            continue
        try:
            public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return form
    raise SignatureError("the SignatureValue does not verify over SignedInfo with the signer's key (either EXI form)")
