"""Tests for :mod:`evsev2g.sdp`: SDP datagrams and what to offer."""

import pytest

from evsev2g.errors import MalformedSDP
from evsev2g.sdp import (
    Offers,
    SDPRequest,
    SDPResponse,
    Security,
    TransportProtocol,
    build_request,
    build_response,
    choose_response,
    parse_request,
    parse_response,
)

ADDRESS = bytes.fromhex("fe800000000000000000000000000001")
TLS, NO_TLS = Security.TLS, Security.NO_TLS
TCP = TransportProtocol.TCP


def test_parse_request_bytes():
    """A 10-byte request: header type 0x9000, length 2, security, transport [V2G2-623]."""
    assert parse_request(bytes.fromhex("01fe9000000000020000")) == SDPRequest(TLS, TCP)
    assert parse_request(bytes.fromhex("01fe9000000000021000")) == SDPRequest(NO_TLS, TCP)
    assert build_request(SDPRequest(NO_TLS, TCP)) == bytes.fromhex("01fe9000000000021000")


def test_build_response_bytes():
    """A 28-byte response: type 0x9001, length 20, address, port, security, transport."""
    datagram = build_response(SDPResponse(ADDRESS, 61341, NO_TLS))
    assert datagram == bytes.fromhex("01fe900100000014") + ADDRESS + bytes.fromhex("ef9d1000")
    assert parse_response(datagram) == SDPResponse(ADDRESS, 61341, NO_TLS, TCP)


@pytest.mark.parametrize(
    "hex_datagram, problem",
    [
        ("01fe90000000000000", "9 bytes; an SDP request has 10"),
        ("01fe9000000000000000", "payload length 0"),
        ("01fe7000000000020000", "payload type 0x7000"),
        ("fffe9000000000020000", "protocol version 0xFF"),
        ("01ff9000000000020000", "inverse 0xFF"),
        ("01fe9000000000030000", "payload length 3"),
        ("01fe900000000002000000", "11 bytes; an SDP request has 10"),
        ("01fe9000", "4 bytes"),
        ("", "0 bytes"),
        ("01fe9000000000020500", "security byte 0x05 is reserved"),
        ("01fe9000000000020001", "transport byte 0x01 is reserved"),
    ],
)
def test_malformed_requests(hex_datagram, problem):
    """Wrong size, header, type or length, reserved values: MalformedSDP saying why (ISO 15118-4 VTB_V2GTPSDP cases)."""
    with pytest.raises(MalformedSDP, match=problem):
        parse_request(bytes.fromhex(hex_datagram))


BOTH = Offers(ADDRESS, 61341, 64109)
TCP_ONLY = Offers(ADDRESS, 61341, None)
TLS_ONLY = Offers(ADDRESS, None, 64109)


@pytest.mark.parametrize(
    "asked, offers, expected",
    [
        # allow with certificates: what the EV asked
        (TLS, BOTH, (64109, TLS)),
        (NO_TLS, BOTH, (61341, NO_TLS)),
        # prohibit, or allow without usable certificates: always no TLS
        (TLS, TCP_ONLY, (61341, NO_TLS)),
        (NO_TLS, TCP_ONLY, (61341, NO_TLS)),
        # force: always TLS
        (TLS, TLS_ONLY, (64109, TLS)),
        (NO_TLS, TLS_ONLY, (64109, TLS)),
    ],
)
def test_offer_follows_tls_security(asked, offers, expected):
    """prohibit → 0x10, force → 0x00, allow → what the EV asked (TLS only when usable), as EvseV2G."""
    response = choose_response(SDPRequest(asked, TCP), offers)
    assert (response.port, response.security) == expected
    assert response.address == ADDRESS and response.transport == TCP


def test_nothing_to_offer():
    """UDP transport, or no server at all: no answer."""
    assert choose_response(SDPRequest(TLS, TransportProtocol.UDP), BOTH) is None
    assert choose_response(SDPRequest(NO_TLS, TCP), Offers(ADDRESS, None, None)) is None
