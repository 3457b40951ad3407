"""
The codec against the reference vectors of ``../shared/exi-vectors``:
golden encodings from four reference codecs, real captures from cars and
chargers, and the ISO 15118-2 signature fragments with their digests.
"""

import hashlib

import pytest
from lxml import etree

from evsev2g.exi import ExiError, load_codec
from evsev2g.exi.codec import SCHEMA_SETS
from tests.exi.conftest import fragment_grammar, signature_grammar


def _roundtrip(codec, vector, data):
    if vector.get("fragment"):
        grammar = fragment_grammar(vector)
        return (codec.decode_fragment(data, grammar=grammar),
                lambda m: codec.encode_fragment(m, grammar=grammar))
    return codec.decode(data), codec.encode


def test_golden_vectors_are_byte_exact(golden):
    """
    For every golden vector: ``encode(from_xml(xml)) == exi``,
    ``encode(decode(exi)) == exi`` and ``decode(exi) == from_xml(xml)``
    (fragments through the fragment API with the vector's grammar).  The
    DIN CertificateUpdateRes vector whose codecs disagree follows ``exi_hex``.
    """
    failures = []
    for vector in golden:
        codec = load_codec(vector["protocol"])
        data = bytes.fromhex(vector["exi_hex"])
        decoded, encode = _roundtrip(codec, vector, data)
        from_xml = codec.from_xml(vector["xml"].encode())
        label = f"{vector['protocol']} {vector['message']} {vector.get('note', '')[:40]}"
        if encode(decoded) != data:
            failures.append(f"{label}: re-encode differs")
        if encode(from_xml) != data:
            failures.append(f"{label}: encode(from_xml) differs")
        if decoded != from_xml:
            failures.append(f"{label}: decode != from_xml")
    assert not failures, failures
    assert len(golden) == 134


def test_exificient_second_level_ee_is_accepted(golden, din):
    """
    EXIficient writes an empty string element as a second-level EE
    (§8.5.4.4.1); the decoder accepts it and yields the same tree as the
    CH("") form the golden bytes carry, which is what the encoder writes.
    """
    vector = next(v for v in golden if "other_codec_output" in v and "exificient" in v["other_codec_output"])
    golden_msg = din.decode(bytes.fromhex(vector["exi_hex"]))
    alt = din.decode(bytes.fromhex(vector["other_codec_output"]["exificient"]))
    assert alt == golden_msg
    assert din.encode(alt) == bytes.fromhex(vector["exi_hex"])


def test_real_world_captures_round_trip(real_world):
    """
    Every capture from real cars, chargers and lab tools decodes and
    re-encodes to the same bytes, up to trailing bytes after the document
    end (a Tesla Model Y sends a trailing 0x00).
    """
    failures = []
    for capture in real_world:
        codec = load_codec(capture["protocol"])
        data = bytes.fromhex(capture["exi_hex"])
        out = codec.encode(codec.decode(data))
        if not (data.startswith(out) and not any(data[len(out):])):
            failures.append((capture["protocol"], capture["message"], capture["source"]))
    assert not failures, failures[:5]
    assert len(real_world) == 769


def test_trailing_zero_byte_is_tolerated(real_world):
    """Decoding stops at the document end; the Tesla's extra 0x00 is ignored."""
    capture = next(c for c in real_world if "2024-04-20_ModelY" in c["source"]
                   and c["message"] == "ContractAuthenticationReq")
    data = bytes.fromhex(capture["exi_hex"])
    codec = load_codec("din70121")
    out = codec.encode(codec.decode(data))
    assert len(out) == len(data) - 1 and data == out + b"\x00"


def test_signature_fragments_give_recorded_bytes_and_digests(signature_fragments, iso2):
    """
    Conformant fragments decode and re-encode to the recorded bytes, whose
    SHA-256 is the recorded digest.  The non-conformant counter-examples
    (elements written in the empty namespace, i.e. SE(*) deviations) are
    told apart: decoding them raises ExiError naming the deviation, except
    the SignedInfo one, which is conformant EXI over different digests.
    """
    for fragment in signature_fragments:
        data = bytes.fromhex(fragment["exi_hex"])
        grammar = signature_grammar(fragment)
        assert hashlib.sha256(data).hexdigest() == fragment["sha256"]
        if fragment["conformant"] or fragment["fragment_of"] == "SignedInfo":
            msg = iso2.decode_fragment(data, grammar=grammar)
            assert msg.name == fragment["fragment_of"]
            out = iso2.encode_fragment(msg, grammar=grammar)
            assert out == data
            assert hashlib.sha256(out).hexdigest() == fragment["sha256"]
        else:
            with pytest.raises(ExiError, match="SE\\(\\*\\) schema deviation"):
                iso2.decode_fragment(data, grammar=grammar)


def test_emaid_fragment_uses_element_fragment_grammar(signature_fragments, iso2):
    """
    ``{MsgBody}eMAID`` is declared with two types, so its fragment uses the
    element fragment grammar (§8.5.3): 9-bit codes, attribute code 4 is
    ``{MsgDataTypes}Id``.  Built by hand, it encodes to RISE's bytes.
    """
    fragment = next(f for f in signature_fragments if f["fragment_of"] == "eMAID" and f["conformant"])
    msg = iso2.decode_fragment(bytes.fromhex(fragment["exi_hex"]))
    assert msg.attrs == {"Id": "id4"} and isinstance(msg.value, str)
    from evsev2g.exi import Message
    built = Message("eMAID", attrs={"Id": "id4"}, value=msg.value)
    assert iso2.encode_fragment(built) == bytes.fromhex(fragment["exi_hex"])


def _schema(official_xsd, protocol, cache={}):
    if protocol not in cache:
        (entry,) = SCHEMA_SETS[protocol]
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        cache[protocol] = etree.XMLSchema(etree.parse(str(official_xsd / entry), parser))
    return cache[protocol]


def test_to_xml_validates_against_official_xsds(golden, official_xsd):
    """``to_xml`` of every decoded golden document validates with lxml against the official XSDs."""
    for vector in golden:
        if vector.get("fragment"):
            continue
        codec = load_codec(vector["protocol"])
        xml = codec.to_xml(codec.decode(bytes.fromhex(vector["exi_hex"])))
        schema = _schema(official_xsd, vector["protocol"])
        doc = etree.fromstring(xml)
        assert schema.validate(doc), (vector["message"], schema.error_log.last_error)
        assert codec.from_xml(xml) == codec.decode(bytes.fromhex(vector["exi_hex"]))
