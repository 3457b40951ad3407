"""
Regression tests for bugs the differential test against EXIficient found
(``tests/exi/test_differential.py``).  Each case is small and hand-written,
with the bytes walked bit by bit in its docstring, so it runs without Java.
"""

import pytest

from evsev2g.exi import ExiError, Message, load_codec
from tests.exi.conftest import fragment_grammar


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


def test_non_ascii_string_is_coded_per_code_point(iso2):
    """
    ``<KeyName>é€😀</KeyName>`` (xmldsig fragment, bytes as EXIficient
    writes them): code 9 (6 bits), CH 0, length 3 + 2, then one Unsigned
    Integer per code point (``e9 01``, ``ac 41``, ``80 ec 07``), EE 0, ED 46.
    """
    data = bytes.fromhex("80240bd203588301d80eb8")
    msg = Message("KeyName", value="é€😀")
    assert iso2.encode_fragment(msg, grammar="xmldsig") == data
    assert iso2.decode_fragment(data, grammar="xmldsig").value == "é€😀"


def test_truncated_non_ascii_string_raises_exi_error(iso2):
    """A stream that ends inside a multi-octet code point is reported, not misread."""
    with pytest.raises(ExiError, match="truncated"):
        iso2.decode_fragment(bytes.fromhex("80240bd203588301d8"), grammar="xmldsig")


def _schedule(codec, entries: int) -> Message:
    """An ISO-2 ChargeParameterDiscoveryRes whose one SAScheduleTuple has ``entries`` PMaxScheduleEntry."""
    entry = Message("PMaxScheduleEntry", RelativeTimeInterval=Message("RelativeTimeInterval", start=0),
                    PMax=Message("PMax", Multiplier=0, Unit="W", Value=11000))
    rows = [Message("PMaxScheduleEntry", RelativeTimeInterval=Message("RelativeTimeInterval", start=i * 60),
                    PMax=entry.PMax) for i in range(entries)]
    res = Message("ChargeParameterDiscoveryRes", ResponseCode="OK", EVSEProcessing="Finished",
                  SAScheduleList=Message("SAScheduleList", SAScheduleTuple=[Message(
                      "SAScheduleTuple", SAScheduleTupleID=1,
                      PMaxSchedule=Message("PMaxSchedule", PMaxScheduleEntry=rows))]),
                  AC_EVSEChargeParameter=Message(
                      "AC_EVSEChargeParameter",
                      AC_EVSEStatus=Message("AC_EVSEStatus", NotificationMaxDelay=0, EVSENotification="None",
                                            RCD=False),
                      EVSENominalVoltage=Message("EVSENominalVoltage", Multiplier=0, Unit="V", Value=230),
                      EVSEMaxCurrent=Message("EVSEMaxCurrent", Multiplier=0, Unit="A", Value=32)))
    return Message("V2G_Message", Header=Message("Header", SessionID=bytes(8)),
                   Body=Message("Body", ChargeParameterDiscoveryRes=res))


def test_stream_windowing_is_invisible(monkeypatch, golden):
    """
    Long lists are coded with the stream int trimmed and the output int set
    aside every ``WINDOW`` bits (so the time grows linearly, not as the
    square of the size).  With a window of one bit, which trims and splits at
    every loop step, every golden vector is still byte-exact and a
    1024-entry PMaxSchedule gives the same bytes as the normal codec.
    """
    from evsev2g.exi import codegen
    from evsev2g.exi.codec import Codec
    normal = {name: load_codec(name) for name in ("appHandshake", "din70121", "iso15118-2")}
    window = codegen.WINDOW
    monkeypatch.setattr(codegen, "WINDOW", 1)
    tiny = {name: Codec(name) for name in normal}
    for vector in golden:
        codec = tiny[vector["protocol"]]
        data = bytes.fromhex(vector["exi_hex"])
        if vector.get("fragment"):
            grammar = fragment_grammar(vector)
            msg = codec.decode_fragment(data, grammar=grammar)
            assert msg == normal[vector["protocol"]].decode_fragment(data, grammar=grammar)
            assert codec.encode_fragment(codec.from_xml(vector["xml"].encode()), grammar=grammar) == data
        else:
            msg = codec.decode(data)
            assert msg == normal[vector["protocol"]].decode(data)
            assert codec.encode(codec.from_xml(vector["xml"].encode())) == data
    long_list = _schedule(normal["iso15118-2"], 1024)
    data = normal["iso15118-2"].encode(long_list)
    assert len(data) * 8 > 4 * window
    assert tiny["iso15118-2"].encode(long_list) == data
    assert tiny["iso15118-2"].decode(data) == normal["iso15118-2"].decode(data)
    assert len(normal["iso15118-2"].decode(data).Body.ChargeParameterDiscoveryRes.SAScheduleList
               .SAScheduleTuple[0].PMaxSchedule.PMaxScheduleEntry) == 1024
