"""
The EV simulator's side of the wire: SDP discovery, a V2GTP client and the
EV's TLS client context.

Written from the standards (ISO 15118-2 §7.8 V2GTP, SDP, §7.7.3.5 TLS; DIN
70121 uses the same framing), independently of the SECC's own framing and
TLS code, so that the EV simulator also checks ours.
"""

from __future__ import annotations

import socket
import struct

from OpenSSL import SSL
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, IOpenSSLClientConnectionCreator
from twisted.internet.protocol import DatagramProtocol, Protocol
from zope.interface import implementer

from evsev2g.write_now import write_now

__all__ = [
    "EVLinkError",
    "frame",
    "SDP_REQUEST_TYPE",
    "SDP_RESPONSE_TYPE",
    "sdp_request",
    "parse_sdp_response",
    "SDPClient",
    "V2GTPClient",
    "EVTLSCreator",
    "describe_tls",
    "peer_subject",
    "ISO_CIPHER_SUITE",
]

SDP_REQUEST_TYPE = 0x9000
SDP_RESPONSE_TYPE = 0x9001
EXI_TYPE = 0x8001
#: Security byte: no transport-layer security / TLS.
NO_TLS = 0x10
TLS = 0x00
TCP = 0x00
#: [V2G2-159]: the EV waits at least 250 ms for an SDP answer …
SDP_RESPONSE_WAIT = 0.25
#: … and sends at most 50 requests ([V2G2-161]).
SDP_MAX_REQUESTS = 50


class EVLinkError(Exception):
    """Discovery or the connection failed; the message says how."""


def frame(payload_type: int, payload: bytes) -> bytes:
    """
    A V2GTP frame: version 1, inverse 0xFE, payload type, length, payload.

    :param payload_type: ``int``.
    :param payload: ``bytes``.
    :returns: the frame.
    """
    return struct.pack("!BBHI", 0x01, 0xFE, payload_type, len(payload)) + payload


def sdp_request(security: int = NO_TLS) -> bytes:
    """
    The SDP request datagram (10 bytes).

    :param security: ``0x10`` no TLS, ``0x00`` TLS.
    :returns: the datagram.
    """
    return frame(SDP_REQUEST_TYPE, bytes((security, TCP)))


def parse_sdp_response(data: bytes) -> tuple[str, int, int]:
    """
    Read an SDP response datagram (28 bytes).

    :param data: the datagram.
    :returns: ``(IPv6 address text, port, security byte)``.
    :raises EVLinkError: anything but a well-formed SDP response.
    """
    if len(data) != 28:
        raise EVLinkError(f"SDP response of {len(data)} bytes, expected 28")
    version, inverse, kind, length = struct.unpack("!BBHI", data[:8])
    if (version, inverse, kind, length) != (0x01, 0xFE, SDP_RESPONSE_TYPE, 20):
        raise EVLinkError(f"not an SDP response header: {data[:8].hex()}")
    address = socket.inet_ntop(socket.AF_INET6, data[8:24])
    port, security, transport = struct.unpack("!HBB", data[24:28])
    if transport != TCP:
        raise EVLinkError(f"SDP offers transport 0x{transport:02X}, not TCP")
    return address, port, security


class SDPClient(DatagramProtocol):
    """
    Sends SDP requests to the all-nodes multicast group until one is answered.

    :ivar result: a ``Deferred`` firing with ``(host, port, security)``,
        ``host`` carrying the ``%interface`` scope for link-local addresses.
    """

    def __init__(self, clock, interface: str | None, port: int = 15118, security: int = NO_TLS,
                 group: str = "ff02::1", wait: float = SDP_RESPONSE_WAIT, attempts: int = SDP_MAX_REQUESTS) -> None:
        """
        :param clock: ``IReactorTime``.
        :param interface: the network interface to discover on (scope of
            ``ff02::1``), or ``None`` for a unicast ``group`` address.
        :param port: the SECC's SDP port (15118).
        :param security: the security byte asked for.
        :param group: where requests go (``ff02::1``, or a unicast address).
        :param wait: seconds between requests.
        :param attempts: requests at most.
        """
        self.clock = clock
        self.interface = interface
        self.destination = (f"{group}%{interface}" if interface else group, port)
        self.security = security
        self.wait = wait
        self.attempts = attempts
        self.sent = 0
        self.result: Deferred = Deferred()
        self._call = None

    def startProtocol(self) -> None:
        """Send the first request."""
        if self.interface:
            index = socket.if_nametoindex(self.interface)
            self.transport.getHandle().setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        self._send()

    def _send(self) -> None:
        if self.result.called:
            return
        if self.sent >= self.attempts:
            self.result.errback(EVLinkError(f"no SDP answer after {self.sent} requests"))
            return
        self.sent += 1
        try:
            self.transport.write(sdp_request(self.security), self.destination)
        except OSError as error:
            self.result.errback(EVLinkError(f"cannot send SDP to {self.destination}: {error}"))
            return
        self._call = self.clock.callLater(self.wait, self._send)

    def datagramReceived(self, data: bytes, address) -> None:
        """Take the first well-formed answer."""
        if self.result.called:
            return
        try:
            host, port, security = parse_sdp_response(data)
        except EVLinkError:
            return
        if host.startswith("fe80") and self.interface:
            host = f"{host}%{self.interface}"
        if self._call is not None and self._call.active():
            self._call.cancel()
        self.result.callback((host, port, security))

    def stopProtocol(self) -> None:
        """Stop resending."""
        if self._call is not None and self._call.active():
            self._call.cancel()


#: The cipher suite the EV offers (ISO 15118-2 §7.7.3.5; the static-ECDH
#: one OpenSSL no longer has).
ISO_CIPHER_SUITE = "ECDHE-ECDSA-AES128-SHA256"


@implementer(IOpenSSLClientConnectionCreator)
class EVTLSCreator:
    """
    The EV's TLS client: TLS 1.2 only, ``ECDHE-ECDSA-AES128-SHA256`` on
    secp256r1, no client certificate, the SECC's chain verified against the
    V2G root (§7.7.3.5; no host name check: the SECC leaf names an EVSE,
    not a host).

    :ivar v2g_root: the V2G root PEM path, or ``None`` to accept any chain.
    """

    def __init__(self, v2g_root=None, key_log=None) -> None:
        """
        :param v2g_root: the V2G root certificate (PEM), or ``None``.
        :param key_log: a file to append TLS secrets to (SSLKEYLOGFILE), or ``None``.
        """
        self.v2g_root = v2g_root
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_max_proto_version(SSL.TLS1_2_VERSION)
        context.set_cipher_list(ISO_CIPHER_SUITE.encode())
        context.set_tmp_ecdh(ec.SECP256R1())
        context.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION)
        if v2g_root is not None:
            context.load_verify_locations(str(v2g_root))
            context.set_verify(SSL.VERIFY_PEER, lambda connection, certificate, errno, depth, ok: bool(ok))
        else:
            context.set_verify(SSL.VERIFY_NONE)
        if key_log is not None:
            path = str(key_log)

            def write(connection, line: bytes) -> None:
                with open(path, "ab") as file:
                    file.write(line + b"\n")

            context.set_keylog_callback(write)
        self._context = context

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        """:returns: a client-side connection on the shared context."""
        connection = SSL.Connection(self._context, None)
        connection.set_connect_state()
        return connection


def describe_tls(connection: SSL.Connection) -> tuple[str, str]:
    """:returns: ``(protocol version, cipher)`` of a finished handshake."""
    return connection.get_protocol_version_name(), connection.get_cipher_name()


def peer_subject(connection: SSL.Connection) -> str:
    """:returns: the SECC leaf's subject CN, or ``""``."""
    certificate = connection.get_peer_certificate()
    if certificate is None:
        return ""
    return dict(certificate.get_subject().get_components()).get(b"CN", b"").decode(errors="replace")


@implementer(IHandshakeListener)
class V2GTPClient(Protocol):
    """
    A TCP (or TLS) connection to the SECC carrying one request at a time.

    :ivar handshake_d: over TLS, fires with ``(version, cipher)`` when the
        handshake is done, or fails when the connection ends before.
    """

    def __init__(self, clock, max_payload: int = 65536, tls: bool = False) -> None:
        """
        :param clock: ``IReactorTime`` for the response timeouts.
        :param max_payload: largest payload accepted from the SECC.
        :param tls: whether the transport is TLS (:attr:`handshake_d` fires).
        """
        self.clock = clock
        self.tls = tls
        self.max_payload = max_payload
        self._buffer = b""
        self._waiting: Deferred | None = None
        self._timeout = None
        self.connected_d: Deferred = Deferred()
        self.handshake_d: Deferred = Deferred()
        self.closed_d: Deferred = Deferred()
        self.closed = False

    def handshakeCompleted(self) -> None:
        """TLS is up: note the version and cipher."""
        if not self.handshake_d.called:
            self.handshake_d.callback(describe_tls(self.transport.getHandle()))

    def connectionMade(self) -> None:
        """Ready to send."""
        self.connected_d.callback(self)

    def request(self, payload: bytes, timeout: float) -> Deferred:
        """
        Send one EXI payload and wait for the answer.

        :param payload: the EXI message.
        :param timeout: seconds to wait (V2G_EVCC_Msg_Timeout).
        :returns: a ``Deferred`` firing with the response payload, or failing
            with :class:`EVLinkError` on timeout or loss of the connection.
        """
        if self.closed:
            raise EVLinkError("the SECC closed the connection")
        if self._waiting is not None:
            raise EVLinkError("a request is already waiting")
        self._waiting = Deferred()
        self._timeout = self.clock.callLater(timeout, self._time_out, timeout)
        write_now(self.transport, frame(EXI_TYPE, payload))
        return self._waiting

    def _time_out(self, timeout: float) -> None:
        self._timeout = None
        self._fail(EVLinkError(f"no response within {timeout:g} s (V2G_EVCC_Msg_Timeout)"))

    def _take_waiting(self) -> Deferred | None:
        """The waiting request's ``Deferred`` (or ``None``), its timeout cancelled."""
        waiting, self._waiting = self._waiting, None
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        return waiting

    def _fail(self, error: Exception) -> None:
        waiting = self._take_waiting()
        if waiting is not None:
            waiting.errback(error)

    def dataReceived(self, data: bytes) -> None:
        """Cut frames; deliver EXI payloads to the waiting request."""
        self._buffer += data
        while len(self._buffer) >= 8:
            version, inverse, kind, length = struct.unpack("!BBHI", self._buffer[:8])
            if version != 0x01 or inverse != 0xFE:
                self._fail(EVLinkError(f"bad V2GTP header from the SECC: {self._buffer[:8].hex()}"))
                self.transport.abortConnection()
                return
            if length > self.max_payload:
                self._fail(EVLinkError(f"SECC announces a {length}-byte payload"))
                self.transport.abortConnection()
                return
            if len(self._buffer) < 8 + length:
                return
            payload, self._buffer = self._buffer[8 : 8 + length], self._buffer[8 + length :]
            if kind != EXI_TYPE:
                continue
            waiting = self._take_waiting()
            if waiting is not None:
                waiting.callback(payload)

    def connectionLost(self, reason) -> None:
        """Fail the waiting request; note the end."""
        self.closed = True
        self._fail(EVLinkError("the SECC closed the connection"))
        if self.tls and not self.handshake_d.called:
            self.handshake_d.errback(EVLinkError(f"the connection ended before the TLS handshake finished: {reason.getErrorMessage()}"))
        if not self.closed_d.called:
            self.closed_d.callback(None)

    def close(self) -> Deferred:
        """
        Close our side and wait for the connection to end.

        :returns: a ``Deferred`` firing when it is gone.
        """
        if self.transport is None:
            self.closed = True
            if not self.closed_d.called:
                self.closed_d.callback(None)
        elif not self.closed:
            self.transport.loseConnection()
        return self.closed_d
