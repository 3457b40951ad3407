"""
The V2G communication session (placeholder until the session core lands).

For now a session only logs what arrives: payload type, length, hex and
peer.  The seam is final: the transport calls
:func:`build_session_factory` once at start-up and uses the returned
:class:`~evsev2g.interfaces.ISessionFactory` for every connection; the real
session replaces this module and keeps that function's signature.
"""

from __future__ import annotations

from twisted.logger import Logger
from zope.interface import implementer

from evsev2g.config import Config
from evsev2g.interfaces import ISession, ISessionFactory, ISessionLink


@implementer(ISession)
class LoggingSession:
    """
    Logs each payload and the end of the connection; never answers.

    :param link: the connection.
    """

    log = Logger()

    def __init__(self, link: ISessionLink):
        self.link = link

    def payload_received(self, payload_type: int, payload: bytes) -> None:
        """
        :param payload_type: the V2GTP payload type.
        :param payload: the message body.
        """
        host, port = self.link.peer
        self.log.info(
            "[{host}]:{port}: payload type 0x{payload_type:04X}, {length} bytes: {hex}",
            host=host, port=port, payload_type=payload_type, length=len(payload), hex=payload.hex(),
        )

    def connection_lost(self, reason: str) -> None:
        """:param reason: why the connection ended."""
        host, port = self.link.peer
        self.log.info("[{host}]:{port}: session ended: {reason}", host=host, port=port, reason=reason)


@implementer(ISessionFactory)
class LoggingSessionFactory:
    """Makes a :class:`LoggingSession` per connection."""

    def new_session(self, link: ISessionLink) -> LoggingSession:
        """
        :param link: the new connection.
        :returns: its session.
        """
        return LoggingSession(link)


def build_session_factory(config: Config, reactor) -> ISessionFactory:
    """
    The one place ``makeService`` gets sessions from.

    :param config: the service configuration.
    :param reactor: the reactor (clock and more) the sessions will use.
    :returns: an :class:`~evsev2g.interfaces.ISessionFactory`.
    """
    return LoggingSessionFactory()
