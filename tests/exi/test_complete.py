"""
``decode(complete=True)``: what the session asks of every request.  The
decoder marks a tree suspect where the stream left the schema's promises
open (an early end, a value breaking a length facet); only a suspect tree
goes through the encoder's full check.  The equivalence with that full
check over mutated inputs is the fuzz target ``exi-*``
(``tests/fuzz/targets.py``); these tests pin each way in.
"""

import pytest

from evsev2g.exi import ExiError, Message

PATTERN = 0xA5


def _bits(data: bytes) -> str:
    return "".join(f"{byte:08b}" for byte in data)


def _bytes(bits: str) -> bytes:
    assert len(bits) % 8 == 0
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def resize_binary(data: bytes, old: int, new: int) -> bytes:
    """
    Rewrite the one binary value of ``old`` bytes of :data:`PATTERN` in an
    EXI stream as ``new`` such bytes (the length is a one-byte unsigned
    integer on the wire, so the stream stays byte-aligned): how a peer
    that ignores the facet would write it.
    """
    bits = _bits(data)
    before = f"{old:08b}" + f"{PATTERN:08b}" * old
    assert bits.count(before) == 1
    return _bytes(bits.replace(before, f"{new:08b}" + f"{PATTERN:08b}" * new))


def iso2_message(body_name, session_id=bytes([PATTERN]) * 8, **body):
    """An ISO-2 V2G_Message with one body element."""
    return Message("V2G_Message", Header=Message("Header", SessionID=session_id),
                   Body=Message("Body", **{body_name: Message(body_name, **body)}))


def test_a_well_formed_request_is_not_encoded_again(iso2, monkeypatch):
    """A tree the decoder did not mark suspect is accepted without the encoder's pass."""
    data = iso2.encode(iso2_message("SessionStopReq", session_id=bytes(range(8)), ChargingSession="Terminate"))

    def refuse(message):
        raise AssertionError("encode called")

    monkeypatch.setattr(iso2, "encode", refuse)
    assert iso2.decode(data, complete=True).Body.SessionStopReq.ChargingSession == "Terminate"


def test_a_session_id_longer_than_its_facet_decodes_but_is_not_complete(iso2):
    """A 9-byte SessionID (hexBinary, maxLength 8) decodes; the complete check names the length."""
    data = resize_binary(iso2.encode(iso2_message("SessionStopReq", ChargingSession="Terminate")), 8, 9)
    assert iso2.decode(data).Header.SessionID == bytes([PATTERN]) * 9
    with pytest.raises(ExiError, match="length 9 bytes outside"):
        iso2.decode(data, complete=True)


def test_an_empty_gen_challenge_is_not_complete(iso2):
    """A 0-byte GenChallenge (length 16) decodes; the complete check refuses it."""
    message = iso2_message("PaymentDetailsRes", ResponseCode="OK", GenChallenge=bytes([PATTERN]) * 16,
                           EVSETimeStamp=1700000000)
    data = resize_binary(iso2.encode(message), 16, 0)
    assert iso2.decode(data).Body.PaymentDetailsRes.GenChallenge == b""
    with pytest.raises(ExiError, match="length 0 bytes outside 16..16"):
        iso2.decode(data, complete=True)


def test_a_value_within_its_facets_is_complete(iso2):
    """The same rewrite within the facet (a 1-byte SessionID) stays complete."""
    data = resize_binary(iso2.encode(iso2_message("SessionStopReq", ChargingSession="Terminate")), 8, 1)
    assert iso2.decode(data, complete=True).Header.SessionID == bytes([PATTERN])


def _ended_before_value(message) -> bool:
    node = message
    for name in ("Body", "PreChargeReq", "EVTargetCurrent"):
        node = node.get(name) if isinstance(node, Message) else None
    return isinstance(node, Message) and node.get("Value") is None


def test_an_element_ended_early_is_not_complete(din):
    """
    A DIN PreChargeReq whose EVTargetCurrent ends before its Value (a
    second-level EE, legal in non-strict EXI): decodes, not complete.
    """
    from evsev2g.testing import din_request

    message = din_request("PreChargeReq")
    data = bytearray(din.encode(message))
    for bit in range(8 * len(data)):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 0x80 >> (bit % 8)
        try:
            decoded = din.decode(bytes(flipped))
        except ExiError:
            continue
        if _ended_before_value(decoded):
            break
    else:
        pytest.fail("no single bit flip ends EVTargetCurrent early")
    with pytest.raises(ExiError, match="missing mandatory child: expected Value"):
        din.decode(bytes(flipped), complete=True)
