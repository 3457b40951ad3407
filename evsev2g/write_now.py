"""
Writing one V2GTP frame and sending it at once.

Twisted's TCP transport never sends in ``write()``: it buffers the bytes,
asks the reactor to watch the socket for writability and sends them when
the next reactor iteration reports it writable.  That suits a protocol
that writes many small pieces; a V2G peer writes one whole frame per
message and then waits for the answer, so the deferral only adds a loop
iteration (an ``epoll_wait`` and the timed-call pass) before every response
leaves, and, over TLS, comes on top of the record encryption.

:func:`write_now` writes through the transport as usual (over TLS the
frame is encrypted first) and then lets the socket transport send what it
holds, exactly as the reactor would have on its next pass
(``IWriteDescriptor.doWrite``).  Whatever the kernel does not take at once
stays buffered and goes out when the socket is writable again, as before;
a connection that is closing, or a transport that is not a socket
(a test's string transport), is left to the reactor.
"""

from __future__ import annotations

from twisted.internet.abstract import FileDescriptor
from twisted.protocols.tls import TLSMemoryBIOProtocol


def socket_of(transport) -> FileDescriptor | None:
    """The socket transport under ``transport`` (under TLS, the TCP connection), or ``None``."""
    if isinstance(transport, TLSMemoryBIOProtocol):
        transport = transport.transport
    return transport if isinstance(transport, FileDescriptor) else None


def write_now(transport, data: bytes) -> None:
    """
    Write ``data`` and send it without waiting for the next reactor iteration.

    :param transport: the protocol's transport (TCP, or TLS over TCP).
    :param data: one whole frame.
    """
    transport.write(data)
    wire = socket_of(transport)
    if wire is not None and wire.connected and not wire.disconnecting:
        # A failure to send (the peer reset the connection) is not ours to
        # handle here: the bytes stay buffered, the socket stays watched,
        # and the reactor's next doWrite sees the same error and closes the
        # connection the usual way.
        wire.doWrite()
