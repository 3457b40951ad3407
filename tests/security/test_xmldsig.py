"""
XML signatures over EXI fragments (:mod:`evsev2g.security.xmldsig`):
byte-exact against the reference fragments of
``shared/exi-vectors/iso2-signature-fragments.jsonl``, both SignedInfo
forms, and every way a signature can be wrong.
"""

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from evsev2g.exi import Message
from evsev2g.responses import ISO15118_2, SignatureError, response_code
from evsev2g.security import xmldsig
from tests.independent import reference_file


@pytest.fixture(scope="module")
def fragments(shared_dir):
    """The signature fragment vectors."""
    path = reference_file(shared_dir / "exi-vectors" / "iso2-signature-fragments.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rise(fragments):
    """RISE-V2G's conformant CertificateInstallationRes set: elements by Id and the SignedInfo vector."""
    chosen = [f for f in fragments if f["conformant"] and "RISE" in f["source"]]
    info = next(f for f in chosen if f["fragment_of"] == "SignedInfo")
    return chosen, info


def test_digests_of_rise_elements_match_their_references(fragments, iso2):
    """Each RISE element re-encoded by our fragment encoder has the recorded bytes, whose SHA-256 is the DigestValue SignedInfo lists for its Id."""
    chosen, info_vector = rise(fragments)
    info = iso2.decode_fragment(bytes.fromhex(info_vector["exi_hex"]), grammar="xmldsig")
    listed = {r.attrs["URI"][1:]: r.DigestValue for r in info.getlist("Reference")}
    elements = {}
    for vector in chosen:
        if vector["fragment_of"] == "SignedInfo":
            continue
        element = iso2.decode_fragment(bytes.fromhex(vector["exi_hex"]))
        assert xmldsig.fragment(iso2, element).hex() == vector["exi_hex"]
        assert xmldsig.digest(iso2, element) == bytes.fromhex(vector["sha256"]) == listed[element.attrs["Id"]]
        elements[element.attrs["Id"]] = element
    xmldsig.check_references(iso2, info, elements, required=["id1", "id2", "id3", "id4"])


def test_our_signed_info_is_byte_exact_with_rise(fragments, iso2):
    """SignedInfo built by signed_info() from (Id, digest) pairs encodes, standalone xmldsig form, to RISE's bytes (80 81 …)."""
    _, info_vector = rise(fragments)
    decoded = iso2.decode_fragment(bytes.fromhex(info_vector["exi_hex"]), grammar="xmldsig")
    built = xmldsig.signed_info((r.attrs["URI"][1:], r.DigestValue) for r in decoded.getlist("Reference"))
    data = xmldsig.signed_info_bytes(iso2, built)
    assert data.hex() == info_vector["exi_hex"]
    assert hashlib.sha256(data).hexdigest() == info_vector["sha256"]
    assert data[:2] == b"\x80\x81"


def test_cbv2g_fragments_are_byte_exact(fragments, iso2):
    """The libcbv2g AuthorizationReq, MeteringReceiptReq, SalesTariff and MsgDef-form SignedInfo fragments re-encode to their bytes and digests."""
    for vector in fragments:
        if "WWCP" not in vector["source"]:
            continue
        element = iso2.decode_fragment(bytes.fromhex(vector["exi_hex"]))
        data = iso2.encode_fragment(element)
        assert data.hex() == vector["exi_hex"], vector["fragment_of"]
        assert hashlib.sha256(data).hexdigest() == vector["sha256"]
    info = next(v for v in fragments if v["fragment_of"] == "SignedInfo" and "WWCP" in v["source"])
    assert bytes.fromhex(info["exi_hex"])[:2] == b"\x80\xd0"


def authorization(iso2, key, form="xmldsig"):
    """A signed AuthorizationReq body with its Signature."""
    body = Message("AuthorizationReq", attrs={"Id": "id1"}, GenChallenge=bytes(range(16)))
    return body, xmldsig.sign(iso2, [body], key, form)


@pytest.mark.parametrize("form", xmldsig.FORMS)
def test_both_signed_info_forms_verify(iso2, form):
    """A signature over SignedInfo in either EXI form (standalone xmldsig, MsgDef) verifies, and says which form it was."""
    key = ec.generate_private_key(ec.SECP256R1())
    body, signature = authorization(iso2, key, form)
    assert xmldsig.verify(iso2, signature, {"id1": body}, key.public_key(), required=["id1"]) == form


def test_signature_value_is_raw_r_s(iso2):
    """SignatureValue is 64 bytes r‖s; the same signature as DER is refused."""
    key = ec.generate_private_key(ec.SECP256R1())
    body, signature = authorization(iso2, key)
    assert len(signature.SignatureValue.value) == 64
    der = key.sign(xmldsig.signed_info_bytes(iso2, signature.SignedInfo), ec.ECDSA(hashes.SHA256()))
    signature.SignatureValue.value = der
    with pytest.raises(SignatureError, match="DER is not allowed"):
        xmldsig.verify(iso2, signature, {"id1": body}, key.public_key())


def test_signature_survives_the_wire(iso2):
    """A signed AuthorizationReq encoded in a full V2G message and decoded again still verifies (the digest is over the fragment, not the message)."""
    key = ec.generate_private_key(ec.SECP256R1())
    body, signature = authorization(iso2, key)
    message = Message("V2G_Message", Header=Message("Header", SessionID=b"\x01" * 8, Signature=signature),
                      Body=Message("Body", AuthorizationReq=body))
    decoded = iso2.decode(iso2.encode(message))
    received = decoded.Body.AuthorizationReq
    assert xmldsig.verify(iso2, decoded.Header.Signature, {received.attrs["Id"]: received}, key.public_key(), ["id1"])


def bad(iso2, key, change):
    """Apply ``change(body, signature)`` and return the verification error message."""
    body, signature = authorization(iso2, key)
    elements = change(body, signature) or {"id1": body}
    with pytest.raises(SignatureError) as caught:
        xmldsig.verify(iso2, signature, elements, key.public_key(), required=["id1"])
    assert response_code(caught.value, ISO15118_2) == "FAILED_SignatureError"
    return str(caught.value)


def test_tampered_element(iso2):
    """Changing the signed element after signing breaks its digest."""
    key = ec.generate_private_key(ec.SECP256R1())

    def change(body, signature):
        body.children[0] = ("GenChallenge", bytes(16))
        body._index = None

    assert "digest of AuthorizationReq (#id1) does not match" in bad(iso2, key, change)


def test_tampered_signature_value(iso2):
    """A flipped bit in SignatureValue fails in both forms."""
    key = ec.generate_private_key(ec.SECP256R1())

    def change(body, signature):
        value = bytearray(signature.SignatureValue.value)
        value[5] ^= 1
        signature.SignatureValue.value = bytes(value)

    assert "does not verify over SignedInfo" in bad(iso2, key, change)


def test_signed_by_another_key(iso2):
    """A valid signature by a key other than the contract's fails."""
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    body, signature = authorization(iso2, other)
    with pytest.raises(SignatureError, match="does not verify"):
        xmldsig.verify(iso2, signature, {"id1": body}, key.public_key(), required=["id1"])


def test_signature_over_the_wrong_element(iso2):
    """A signature whose Reference names another element than the one required fails, even when it verifies."""
    key = ec.generate_private_key(ec.SECP256R1())
    other = Message("MeteringReceiptReq", attrs={"Id": "id9"}, SessionID=bytes(8), MeterInfo=Message("MeterInfo", MeterID="M1"))
    signature = xmldsig.sign(iso2, [other], key)
    body = Message("AuthorizationReq", attrs={"Id": "id1"}, GenChallenge=bytes(16))
    with pytest.raises(SignatureError, match="does not cover #id1"):
        xmldsig.verify(iso2, signature, {"id1": body, "id9": other}, key.public_key(), required=["id1"])
    with pytest.raises(SignatureError, match="names no signed element"):
        xmldsig.verify(iso2, signature, {"id1": body}, key.public_key(), required=["id1"])


def test_missing_signature_and_wrong_algorithms(iso2):
    """No Signature, an unknown SignatureMethod, or two transforms are each refused with the reason."""
    key = ec.generate_private_key(ec.SECP256R1())
    body = Message("AuthorizationReq", attrs={"Id": "id1"}, GenChallenge=bytes(16))
    with pytest.raises(SignatureError, match="carries no Signature"):
        xmldsig.verify(iso2, None, {"id1": body}, key.public_key())

    def rsa_method(body, signature):
        signature.SignedInfo.SignatureMethod.attrs["Algorithm"] = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

    assert "SignatureMethod is" in bad(iso2, key, rsa_method)

    def two_transforms(body, signature):
        transforms = signature.SignedInfo.Reference[0].Transforms
        transforms.children.append(transforms.children[0])
        transforms._index = None

    assert "exactly one is allowed" in bad(iso2, key, two_transforms)


@pytest.mark.parametrize("value", [bytes(64), b"\xff" * 64], ids=["zero r and s", "r and s beyond the order"])
def test_out_of_range_signature_values(iso2, value):
    """r‖s of zeros or beyond the curve order is a SignatureError, never another exception."""
    key = ec.generate_private_key(ec.SECP256R1())
    body, signature = authorization(iso2, key)
    signature.SignatureValue.value = value
    with pytest.raises(SignatureError, match="does not verify"):
        xmldsig.verify(iso2, signature, {"id1": body}, key.public_key(), required=["id1"])


def test_too_many_references(iso2):
    """A SignedInfo with five references is refused before any digest is computed."""
    key = ec.generate_private_key(ec.SECP256R1())
    body, signature = authorization(iso2, key)
    reference = signature.SignedInfo.getlist("Reference")[0]
    signature.SignedInfo.children.extend([("Reference", reference)] * 4)
    signature.SignedInfo._index = None
    with pytest.raises(SignatureError, match="5 references; 1 to 4"):
        xmldsig.verify(iso2, signature, {"id1": body}, key.public_key(), required=["id1"])
