"""
V2GTP, the 8-byte framing under every SDP datagram and every TCP/TLS
message (ISO 15118-2 §7.8.3, DIN SPEC 70121 §8.6): protocol version 0x01,
its inverse 0xFE, a 16-bit payload type and a 32-bit payload length, all
big-endian ([V2G2-156]).  No Twisted here: bytes in, frames out.

The length is checked against the configured maximum *before* anything is
buffered for it, so a hostile length cannot make us allocate.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import IntEnum

import attrs

from evsev2g.errors import BadHeader, PayloadTooLarge, UnknownPayloadType, V2GTPError

PROTOCOL_VERSION = 0x01
INVERSE_PROTOCOL_VERSION = 0xFE
HEADER = struct.Struct("!BBHI")
HEADER_SIZE = HEADER.size


class PayloadType(IntEnum):
    """V2GTP payload types this stack knows (ISO 15118-2 Table 10)."""

    #: EXI-encoded V2G message: supportedAppProtocol, DIN 70121, ISO 15118-2.
    EXI = 0x8001
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001


#: What a TCP/TLS connection of this SECC accepts: DIN and ISO 15118-2 use
#: only the EXI type; anything else closes the connection.
STREAM_PAYLOAD_TYPES = frozenset({PayloadType.EXI})


@attrs.frozen
class V2GTPHeader:
    """
    A checked V2GTP header.

    :param payload_type: the payload type, an ``int``.
    :param payload_length: the payload length in bytes, header excluded.
    """

    payload_type: int
    payload_length: int


def build_frame(payload_type: int, payload: bytes) -> bytes:
    """
    Put a V2GTP header in front of a payload.

    :param payload_type: the payload type, 0–0xFFFF.
    :param payload: the message body.
    :returns: header and payload.
    """
    return HEADER.pack(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, payload_type, len(payload)) + payload


def parse_header(data: bytes, accepted_types: frozenset[int], max_payload: int) -> V2GTPHeader:
    """
    Check the first 8 bytes of a frame.

    Checks run in the order of the standard: version and inverse version,
    then payload type ([V2G2-092]), then length ([V2G2-094]).

    :param data: at least :data:`HEADER_SIZE` bytes; only those are read.
    :param accepted_types: payload types this endpoint takes.
    :param max_payload: the largest payload length accepted, in bytes.
    :returns: the header.
    :raises BadHeader: wrong version or inverse version, or a zero length.
    :raises UnknownPayloadType: a type not in ``accepted_types``.
    :raises PayloadTooLarge: a length above ``max_payload``.
    """
    version, inverse, payload_type, length = HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION or inverse != INVERSE_PROTOCOL_VERSION:
        raise BadHeader(f"protocol version 0x{version:02X} / inverse 0x{inverse:02X}, expected 0x01 / 0xFE")
    if payload_type not in accepted_types:
        raise UnknownPayloadType(f"payload type 0x{payload_type:04X} is not accepted here")
    if length == 0:
        raise BadHeader("payload length 0")
    if length > max_payload:
        raise PayloadTooLarge(f"payload length {length} bytes is above the maximum of {max_payload}")
    return V2GTPHeader(payload_type, length)


class V2GTPStreamParser:
    """
    Cut a byte stream into V2GTP frames.

    Feed it whatever the socket delivered: a frame split over many reads and
    many frames in one read both come out whole, in order.  After an error
    the stream is out of step for good: iterating any later :meth:`feed`
    raises the same error again.

    :param max_payload: the largest payload length accepted, in bytes.
    :param accepted_types: payload types accepted; others are errors.
    """

    def __init__(self, max_payload: int, accepted_types: frozenset[int] = STREAM_PAYLOAD_TYPES):
        self._max_payload = max_payload
        self._accepted = accepted_types
        self._buffer = bytearray()
        self._header: V2GTPHeader | None = None
        self._error: Exception | None = None

    @property
    def mid_frame(self) -> bool:
        """Whether part of a frame has arrived and the rest has not."""
        return self._header is not None or bool(self._buffer)

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """
        Take the next bytes of the stream.

        The bytes are buffered at once; the frames they complete come out as
        the result is iterated, so a caller that stops early (its connection
        is closing) leaves the rest buffered.

        :param data: the next bytes of the stream.
        :returns: an iterator of the completed frames, as
            ``(payload_type, payload)``.
        :raises V2GTPError: while iterating, at the first header that breaks
            the rules, after every good frame before it has come out.
        """
        if self._error is None:
            self._buffer += data
        return self._frames()

    def _frames(self) -> Iterator[tuple[int, bytes]]:
        """Yield complete frames from the buffer until it runs short."""
        while True:
            if self._error is not None:
                raise self._error
            if self._header is None:
                if len(self._buffer) < HEADER_SIZE:
                    return
                try:
                    self._header = parse_header(self._buffer, self._accepted, self._max_payload)
                except V2GTPError as error:
                    self._error = error
                    self._buffer.clear()
                    raise
                del self._buffer[:HEADER_SIZE]
            length = self._header.payload_length
            if len(self._buffer) < length:
                return
            frame = (self._header.payload_type, bytes(self._buffer[:length]))
            del self._buffer[:length]
            self._header = None
            yield frame
