"""
Regression tests for bugs the differential test against EXIficient found
(``tests/exi/test_differential.py``).  Each case is small and hand-written,
with the bytes walked bit by bit in its docstring, so it runs without Java.
"""

from evsev2g.exi import Message


def test_empty_simple_content_after_attribute_decodes_to_empty_value(iso2):
    """
    ``<SignatureValue Id="x"/>`` as EXIficient writes it (xmldsig fragment
    grammar): SE code 31 (6 bits), AT(Id) code 0 (2 bits), "x" (length+2 = 3,
    0x78), then no CH but the escape (1 bit) and second-level EE (3 bits),
    then ED 46.  The element's value is the empty binary; the decoder used to
    return the attribute's value as the element's value.
    """
    msg = iso2.decode_fragment(bytes.fromhex("807c03788b80"), grammar="xmldsig")
    assert msg == Message("SignatureValue", attrs={"Id": "x"}, value=b"")
    assert msg.value == b""


def test_empty_simple_content_without_attribute_decodes_to_empty_value(iso2):
    """
    ``<SignatureValue/>``: SE 31, the escape "10" in the start state
    (AT(Id), CH, escape), second-level EE "000", ED: the value is ``b""``,
    not ``None``, as ``from_xml`` gives for the same XML.
    """
    msg = iso2.decode_fragment(bytes.fromhex("807e1700"), grammar="xmldsig")
    assert msg.value == b""
    assert msg == iso2.from_xml(b'<SignatureValue xmlns="http://www.w3.org/2000/09/xmldsig#"/>')


def test_enumeration_in_element_content_tolerates_surrounding_whitespace(iso2):
    """
    ``from_xml`` reads ``<ResponseCode> OK </ResponseCode>`` (pretty-printed
    XML from other tools) as ``OK``, as EXIficient does: fragment code 162
    (8 bits), CH 0, enumeration index 0 (5 bits), EE 0, ED 244.  No value of
    an enumeration has edge or double spaces, so nothing else can match.
    """
    msg = iso2.from_xml(b'<ResponseCode xmlns="urn:iso:15118:2:2013:MsgBody">\n  OK\n</ResponseCode>')
    assert msg.value == "OK"
    assert iso2.encode_fragment(msg) == bytes.fromhex("80a201e8")
