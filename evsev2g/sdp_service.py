"""
The SDP server: a UDP socket on the serving interface, joined to ff02::1,
answering each valid request unicast to its sender ([V2G2-139]).

Twisted's ``joinGroup`` cannot name the interface for IPv6 (it passes an
address where the kernel wants an interface index), so the socket is built
here, as EvseV2G builds it, and handed to ``reactor.adoptDatagramPort``:
``AF_INET6``, ``SO_REUSEADDR``, ``IPV6_V6ONLY``, ``SO_BINDTODEVICE`` (so only
this interface's requests arrive and their scope is known), bind
``("::", port)``, ``IPV6_JOIN_GROUP`` ff02::1 with the interface index.
On ``lo`` the same socket answers unicast requests to ``::1``.

What to answer is :func:`evsev2g.sdp.choose_response`; whether to answer at
all is the ``answering`` predicate (the session core gates it on the data
link being ready, as EvseV2G does with ``dlink_ready``; default: always).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from evsev2g.errors import MalformedSDP, StartupError
from evsev2g.netif import ServingAddress
from evsev2g.ports import PortService
from evsev2g.sdp import Offers, build_response, choose_response, parse_request

#: The all-nodes link-local multicast group SDP requests are sent to.
SDP_GROUP = "ff02::1"


def always() -> bool:
    """:returns: ``True``: the default ``answering`` predicate."""
    return True


class SDPProtocol(DatagramProtocol):
    """
    Answers SDP requests; drops everything else with a log line.

    :param serving: the interface the socket is bound to (gives replies
        their scope).
    :param offers: returns the servers running now (their ports may be
        chosen at start-up).
    :param answering: returns whether to answer at all right now.
    """

    log = Logger()
    noisy = False

    def __init__(
        self,
        serving: ServingAddress,
        offers: Callable[[], Offers],
        answering: Callable[[], bool] = always,
    ):
        self.serving = serving
        self.offers = offers
        self.answering = answering

    def datagramReceived(self, datagram: bytes, addr) -> None:
        """
        :param datagram: the UDP payload.
        :param addr: ``(host, port)`` of the sender.
        """
        host, port = addr[0], addr[1]
        peer = f"[{host}%{self.serving.interface}]:{port}"
        try:
            self._answer(datagram, host, port, peer)
        except Exception:
            self.log.failure("SDP: failed on a datagram from {peer}", peer=peer)

    def _answer(self, datagram: bytes, host: str, port: int, peer: str) -> None:
        """Parse, decide, reply."""
        try:
            request = parse_request(datagram)
        except MalformedSDP as error:
            self.log.warn("SDP: dropped a datagram from {peer}: {problem}", peer=peer, problem=str(error))
            return
        if not self.answering():
            self.log.info("SDP: request from {peer} ignored: not answering now (data link not ready)", peer=peer)
            return
        response = choose_response(request, self.offers())
        if response is None:
            self.log.warn(
                "SDP: nothing to offer {peer} (asked {security} over {transport})",
                peer=peer, security=request.security.name, transport=request.transport.name,
            )
            return
        self.transport.write(build_response(response), (self.serving.scoped(host), port))
        self.log.info(
            "SDP: {peer} asked {asked}; offered port {port} {security}",
            peer=peer, asked=request.security.name, port=response.port, security=response.security.name,
        )


def open_sdp_socket(serving: ServingAddress, port: int) -> socket.socket:
    """
    Build the SDP socket for one interface.

    :param serving: the interface.
    :param port: the UDP port (15118; 0 lets the kernel choose, for tests).
    :returns: a bound, non-blocking socket joined to ff02::1 there.
    :raises StartupError: saying which step failed and why.
    """
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    group = socket.inet_pton(socket.AF_INET6, SDP_GROUP) + struct.pack("@I", serving.index)
    steps = [
        ("SO_REUSEADDR", lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)),
        ("IPV6_V6ONLY", lambda: sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)),
        (
            f"SO_BINDTODEVICE {serving.interface}",
            lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, serving.interface.encode()),
        ),
        (f"bind to UDP port {port}", lambda: sock.bind(("::", port))),
        (f"join {SDP_GROUP}", lambda: sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)),
    ]
    for step, action in steps:
        try:
            action()
        except OSError as error:
            sock.close()
            raise StartupError(f"SDP server on {serving.interface}: {step} failed: {error.strerror}") from None
    sock.setblocking(False)
    return sock


class SDPService(PortService):
    """
    The SDP server as a twistd service.

    :param reactor: provides ``IReactorSocket`` (``adoptDatagramPort``).
    :param serving: the interface to serve.
    :param port: the UDP port.
    :param protocol: the :class:`SDPProtocol`.
    """

    def __init__(self, reactor, serving: ServingAddress, port: int, protocol: SDPProtocol):
        self._reactor = reactor
        self.serving = serving
        self._port = port
        self.protocol = protocol
        self.setName("sdp")

    def open_port(self):
        """:returns: the adopted datagram port."""
        sock = open_sdp_socket(self.serving, self._port)
        try:
            return self._reactor.adoptDatagramPort(sock.fileno(), socket.AF_INET6, self.protocol)
        finally:
            sock.close()
