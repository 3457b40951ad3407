"""
The codec's public behaviour beyond the vectors: hand-built messages,
validation with paths, real-car quirks, limits and hostile input, the CLI.
"""

import subprocess
import sys

import pytest

from evsev2g.exi import ExiError, LimitExceeded, Limits, Message, load_codec
from evsev2g.exi.__main__ import main as cli_main

DIN_SESSION_SETUP = bytes.fromhex("809a02000000000000000011d01811959401930c00")
DIN_ONE_BYTE_SID = bytes.fromhex("809a004011d01811959401930c00")


def iso_session_setup_res(**fields):
    """A hand-built ISO-2 SessionSetupRes with its children in reverse schema order."""
    body = dict(EVSETimeStamp=1700000000, EVSEID="DE*ABC*E123", ResponseCode="OK_NewSessionEstablished")
    body.update(fields)
    return Message("V2G_Message",
                   Body=Message("Body", SessionSetupRes=Message("SessionSetupRes", **body)),
                   Header=Message("Header", SessionID=bytes(range(8))))


def test_load_codec_is_cached_per_process():
    """``load_codec`` builds a set once and hands out the same codec."""
    assert load_codec("din70121") is load_codec("din70121")
    with pytest.raises(ExiError, match="unknown schema set"):
        load_codec("iso15118-20")


def test_hand_built_children_in_any_order_are_put_in_schema_order(iso2):
    """Keyword-built children in any order encode in schema order and decode back equal."""
    msg = iso_session_setup_res()
    data = iso2.encode(msg)
    decoded = iso2.decode(data)
    assert [k for k, _ in decoded.Body.SessionSetupRes] == ["ResponseCode", "EVSEID", "EVSETimeStamp"]
    assert decoded.Header.SessionID == bytes(range(8))
    assert decoded.Body.SessionSetupRes.EVSEID == "DE*ABC*E123"
    assert decoded.ns == "urn:iso:15118:2:2013:MsgDef"
    assert decoded.Header.Notification is None  # declared, absent


@pytest.mark.parametrize("change,message", [
    (dict(ResponseCode="OK_Maybe"), "V2G_Message/Body/SessionSetupRes/ResponseCode: 'OK_Maybe' is not one"),
    (dict(EVSETimeStamp="now"), "V2G_Message/Body/SessionSetupRes/EVSETimeStamp: expected int"),
    (dict(EVSEID="x" * 40), "V2G_Message/Body/SessionSetupRes/EVSEID: length 40"),
    (dict(Bogus=1), "V2G_Message/Body/SessionSetupRes: unknown child 'Bogus'"),
    (dict(ResponseCode=None), "V2G_Message/Body/SessionSetupRes: .*ResponseCode"),
])
def test_encoder_validates_and_names_the_path(iso2, change, message):
    """Wrong values, unknown and missing children raise ExiError naming the element path."""
    with pytest.raises(ExiError, match=message):
        iso2.encode(iso_session_setup_res(**change))


def test_out_of_range_integer_is_rejected(din):
    """A value outside its facets (percent 0..100) is refused with its path ([V2G-DC] types)."""
    status = Message("DC_EVStatus", EVReady=True, EVErrorCode="NO_ERROR", EVRESSSOC=101)
    msg = Message("V2G_Message", Header=Message("Header", SessionID=b"\x00"),
                  Body=Message("Body", CableCheckReq=Message("CableCheckReq", DC_EVStatus=status)))
    with pytest.raises(ExiError, match="EVRESSSOC: value 101 out of range"):
        din.encode(msg)


def test_one_byte_session_id_is_accepted(din):
    """Polestar 2 and Audi Q4 send a 1-byte SessionID; it decodes and re-encodes exactly."""
    msg = din.decode(DIN_ONE_BYTE_SID)
    assert msg.Header.SessionID == b"\x00"
    assert din.encode(msg) == DIN_ONE_BYTE_SID


@pytest.mark.parametrize("cut", range(1, len(DIN_SESSION_SETUP) - 1))
def test_truncated_input_raises_exi_error_with_position(din, cut):
    """Every truncation of a real message raises ExiError with a bit position."""
    with pytest.raises(ExiError) as info:
        din.decode(DIN_SESSION_SETUP[:cut])
    assert info.value.bit is not None


def test_bad_header_and_non_bytes(din):
    """A wrong header byte, a cookie, empty data and non-bytes are refused cleanly."""
    for data in (b"", b"\x81\x00", b"$EXI\x80", "809a"):
        with pytest.raises(ExiError):
            din.decode(data)


def test_limits_are_enforced():
    """Configured limits stop oversized binaries and streams before any large allocation."""
    tight = load_codec("din70121", limits=Limits(max_binary=4, max_bytes=64))
    with pytest.raises(LimitExceeded, match="binary"):
        tight.decode(DIN_SESSION_SETUP)
    with pytest.raises(LimitExceeded):
        tight.decode(b"\x80" + b"\x00" * 100)


def test_huge_declared_string_length_fails_fast(app):
    """A string length of 2^40 characters is refused by the limit, not allocated."""
    # DocContent 0 (2 bits), SE(AppProtocol) 0, SE(ProtocolNamespace) 0, CH 0, then length uint
    bits = "00" + "0" + "0" + "0"
    length = (1 << 40) + 2
    groups = []
    while True:
        g, length = length & 0x7F, length >> 7
        groups.append(g | (0x80 if length else 0))
        if not length:
            break
    stream = bits + "".join(f"{g:08b}" for g in groups)
    stream += "0" * (-len(stream) % 8)
    data = b"\x80" + int(stream, 2).to_bytes(len(stream) // 8, "big") + b"\x00" * 16
    with pytest.raises(LimitExceeded, match="string"):
        app.decode(data)


def test_cli_decodes_a_v2gtp_frame(capsys):
    """``decode`` strips a V2GTP header and prints indented XML of a real capture."""
    frame = bytes.fromhex("01fe8001") + len(DIN_SESSION_SETUP).to_bytes(4, "big") + DIN_SESSION_SETUP
    assert cli_main(["decode", "--schema", "auto", frame.hex()]) == 0
    out = capsys.readouterr()
    assert "<v2gci_b:EVCCID>0465650064C3</v2gci_b:EVCCID>" in out.out
    assert "schema: din70121" in out.err


def test_cli_encode_round_trip_and_one_line_errors(tmp_path, capsys):
    """``encode`` reads XML and prints hex; bad input gives one error line and exit 1."""
    assert cli_main(["decode", "--schema", "din70121", DIN_SESSION_SETUP.hex()]) == 0
    xml = capsys.readouterr().out
    path = tmp_path / "m.xml"
    path.write_text(xml)
    assert cli_main(["encode", "--schema", "din70121", str(path)]) == 0
    assert capsys.readouterr().out.strip() == DIN_SESSION_SETUP.hex()
    assert cli_main(["decode", "--schema", "iso15118-2", "8098ff"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_cli_runs_as_module(tmp_path):
    """``python -m evsev2g.exi`` works as a program, reading binary files too."""
    path = tmp_path / "m.bin"
    path.write_bytes(DIN_ONE_BYTE_SID)
    proc = subprocess.run([sys.executable, "-m", "evsev2g.exi", "decode", "--file", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "SessionSetupReq" in proc.stdout


def test_error_path_names_an_xmldsig_element_once():
    """An unknown child in an xmldsig type (children kept in document order) names the element once in the path."""
    from evsev2g.exi import ExiError, Message, load_codec

    codec = load_codec("iso15118-2")
    with pytest.raises(ExiError) as info:
        codec.encode_fragment(Message("KeyInfo", Bogus=1), grammar="xmldsig")
    assert str(info.value).startswith("KeyInfo: unknown child 'Bogus'")
