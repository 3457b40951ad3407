"""
SDP, the SECC Discovery Protocol (ISO 15118-2 §7.10.1, DIN SPEC 70121
§8.7.3): the datagrams and the choice of what to offer.  No Twisted here;
the UDP server that uses this is :mod:`evsev2g.sdp_service`.

A request is a V2GTP frame of type 0x9000 with 2 payload bytes (security,
transport protocol); the answer is type 0x9001 with 20 bytes (the SECC's
IPv6 address, its port, security, transport protocol) [V2G2-623].  Anything
else is dropped without an answer, as ISO 15118-4's SDP test cases expect.
"""

from __future__ import annotations

import struct
from enum import IntEnum

import attrs

from evsev2g.errors import MalformedSDP, V2GTPError
from evsev2g.v2gtp import HEADER_SIZE, PayloadType, build_frame, parse_header


#: The UDP port of SDP ([V2G2-139]).
SDP_PORT = 15118


class Security(IntEnum):
    """The security byte of SDP."""

    TLS = 0x00
    NO_TLS = 0x10


class TransportProtocol(IntEnum):
    """The transport-protocol byte of SDP."""

    TCP = 0x00
    UDP = 0x10


REQUEST_PAYLOAD = struct.Struct("!BB")
RESPONSE_PAYLOAD = struct.Struct("!16sHBB")


@attrs.frozen
class SDPRequest:
    """
    What the EV asks for.

    :param security: a :class:`Security`.
    :param transport: a :class:`TransportProtocol`.
    """

    security: Security
    transport: TransportProtocol


@attrs.frozen
class SDPResponse:
    """
    What the SECC announces.

    :param address: the SECC's IPv6 address, 16 bytes.
    :param port: the TCP port of the announced server.
    :param security: a :class:`Security`: TLS or not on that port.
    :param transport: a :class:`TransportProtocol`, always TCP here.
    """

    address: bytes
    port: int
    security: Security
    transport: TransportProtocol = TransportProtocol.TCP


def _parse(datagram: bytes, payload_type: PayloadType, payload: struct.Struct) -> tuple:
    """Check size and header of an SDP datagram; unpack its payload."""
    size = HEADER_SIZE + payload.size
    if len(datagram) != size:
        kind = "request" if payload_type == PayloadType.SDP_REQUEST else "response"
        raise MalformedSDP(f"{len(datagram)} bytes; an SDP {kind} has {size}")
    try:
        header = parse_header(datagram, frozenset({payload_type}), payload.size)
    except V2GTPError as error:
        raise MalformedSDP(str(error)) from None
    if header.payload_length != payload.size:
        raise MalformedSDP(f"payload length {header.payload_length}, expected {payload.size}")
    return payload.unpack_from(datagram, HEADER_SIZE)


def _enum(kind: type[IntEnum], value: int, what: str) -> IntEnum:
    """The enum member for a byte, or MalformedSDP naming the reserved value."""
    try:
        return kind(value)
    except ValueError:
        raise MalformedSDP(f"{what} byte 0x{value:02X} is reserved") from None


def parse_request(datagram: bytes) -> SDPRequest:
    """
    :param datagram: a received UDP payload.
    :returns: the request.
    :raises MalformedSDP: wrong size, header, payload type or length, or a
        reserved security or transport value.
    """
    security, transport = _parse(datagram, PayloadType.SDP_REQUEST, REQUEST_PAYLOAD)
    return SDPRequest(_enum(Security, security, "security"), _enum(TransportProtocol, transport, "transport"))


def build_request(request: SDPRequest) -> bytes:
    """
    :param request: what an EV asks for.
    :returns: the 10-byte datagram (for EV simulators and tests).
    """
    return build_frame(PayloadType.SDP_REQUEST, REQUEST_PAYLOAD.pack(request.security, request.transport))


def build_response(response: SDPResponse) -> bytes:
    """
    :param response: what the SECC announces.
    :returns: the 28-byte datagram.
    """
    payload = RESPONSE_PAYLOAD.pack(response.address, response.port, response.security, response.transport)
    return build_frame(PayloadType.SDP_RESPONSE, payload)


def parse_response(datagram: bytes) -> SDPResponse:
    """
    :param datagram: a received UDP payload (EV side).
    :returns: the response.
    :raises MalformedSDP: when it is not a well-formed SDP response.
    """
    address, port, security, transport = _parse(datagram, PayloadType.SDP_RESPONSE, RESPONSE_PAYLOAD)
    return SDPResponse(
        address, port, _enum(Security, security, "security"), _enum(TransportProtocol, transport, "transport")
    )


@attrs.frozen
class Offers:
    """
    The servers running at the moment of a request.

    :param address: the SECC's IPv6 address, 16 bytes.
    :param tcp_port: the plain TCP server's port, or ``None`` when there is
        none (``tls_security: force``).
    :param tls_port: the TLS server's port, or ``None`` when there is none
        (``prohibit``, or ``allow`` without usable certificates).
    """

    address: bytes
    tcp_port: int | None
    tls_port: int | None


def choose_response(request: SDPRequest, offers: Offers) -> SDPResponse | None:
    """
    Decide the answer to a request, as EvseV2G does.

    An EV asking for TLS gets the TLS server when there is one, else the TCP
    server marked no-TLS (it decides whether to go on).  An EV asking for no
    TLS gets the TCP server when there is one, else the TLS server.  With
    ``tls_security`` this gives: prohibit → always 0x10; force → always
    0x00; allow → what the EV asked, TLS only when it is usable.

    :param request: the EV's request.
    :param offers: what is running.
    :returns: the response, or ``None`` when nothing can be offered (no
        server, or a transport other than TCP).
    """
    if request.transport != TransportProtocol.TCP:
        return None
    tls = (offers.tls_port, Security.TLS)
    tcp = (offers.tcp_port, Security.NO_TLS)
    order = (tls, tcp) if request.security == Security.TLS else (tcp, tls)
    for port, security in order:
        if port is not None:
            return SDPResponse(offers.address, port, security)
    return None
