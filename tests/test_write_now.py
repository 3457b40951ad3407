"""write_now: a frame leaves in the write call, not on the reactor's next pass."""

import socket

from twisted.internet import reactor, tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOProtocol

from evsev2g.write_now import socket_of, write_now


def received(peer: socket.socket, seconds: float) -> bytes | None:
    """What ``peer`` receives within ``seconds``, or ``None``."""
    peer.settimeout(seconds)
    try:
        return peer.recv(100)
    except socket.timeout:
        return None


def test_the_bytes_reach_the_peer_without_a_reactor_pass():
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    connection = tcp.Connection(ours, Protocol(), reactor)
    connection.connected = True
    try:
        connection.write(b"held")  # Twisted's own write only buffers
        assert received(peer, 0.2) is None
        write_now(connection, b"frame")
        assert received(peer, 1.0) == b"heldframe"
        assert not connection.dataBuffer and not connection._tempDataBuffer
    finally:
        reactor.removeWriter(connection)
        ours.close()
        peer.close()


def test_a_closing_connection_is_left_to_the_reactor():
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    connection = tcp.Connection(ours, Protocol(), reactor)
    connection.connected = True
    connection.disconnecting = True
    try:
        write_now(connection, b"frame")
        assert received(peer, 0.2) is None
    finally:
        reactor.removeWriter(connection)
        ours.close()
        peer.close()


def test_under_tls_the_tcp_connection_is_the_socket():
    tls = TLSMemoryBIOProtocol.__new__(TLSMemoryBIOProtocol)
    ours, peer = socket.socketpair()
    try:
        connection = tcp.Connection(ours, Protocol(), reactor)
        tls.transport = connection
        assert socket_of(tls) is connection
    finally:
        ours.close()
        peer.close()


def test_a_transport_that_is_not_a_socket_just_gets_the_write():
    transport = StringTransport()
    write_now(transport, b"frame")
    assert transport.value() == b"frame"
    assert socket_of(transport) is None
