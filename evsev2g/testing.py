"""
Fakes for testing code that uses evsev2g, shipped so users can reuse them.

* :class:`RecordingSession` / :class:`RecordingSessionFactory`: sessions that
  record what the transport hands them and can answer through a callback.
* :class:`FakeSessionLink`: a connection as a session sees it, recording
  what the session sends and whether it closed or aborted.
* :class:`FakeSecurity`: a security provider with fixed credentials, or
  none.
* :func:`if_inet6_line`: one line of ``/proc/net/if_inet6``, to feed
  :func:`evsev2g.netif.parse_if_inet6` a made-up host.

Each fake declares its interface; the tests check it with ``verifyObject``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from zope.interface import implementer

from evsev2g.errors import CertificatesUnavailable
from evsev2g.interfaces import ISecurity, ISession, ISessionFactory, ISessionLink
from evsev2g.security.credentials import TLSCredentials


@implementer(ISession)
class RecordingSession:
    """
    Records payloads and the end of its connection.

    :param link: the connection.
    :param respond: called as ``respond(session, payload_type, payload)``
        for each payload, or ``None``; use ``session.link`` to answer.
    """

    def __init__(self, link: ISessionLink, respond: Callable | None = None):
        self.link = link
        self.respond = respond
        self.payloads: list[tuple[int, bytes]] = []
        self.lost: list[str] = []

    def payload_received(self, payload_type: int, payload: bytes) -> None:
        """Record the payload, then call :attr:`respond`."""
        self.payloads.append((payload_type, payload))
        if self.respond is not None:
            self.respond(self, payload_type, payload)

    def connection_lost(self, reason: str) -> None:
        """Record the reason."""
        self.lost.append(reason)


@implementer(ISessionFactory)
class RecordingSessionFactory:
    """
    Makes :class:`RecordingSession` objects and keeps them in
    :attr:`sessions`, oldest first.

    :param respond: passed to every session.
    """

    def __init__(self, respond: Callable | None = None):
        self.respond = respond
        self.sessions: list[RecordingSession] = []

    def new_session(self, link: ISessionLink) -> RecordingSession:
        """:returns: a new recording session for ``link``."""
        session = RecordingSession(link, self.respond)
        self.sessions.append(session)
        return session


@implementer(ISessionLink)
class FakeSessionLink:
    """
    A connection that records what is done to it.

    :param peer: ``(host, port)`` of the pretend EV.
    :param secure: whether it pretends to be TLS.
    """

    def __init__(self, peer: tuple[str, int] = ("fe80::1%veth0", 50000), secure: bool = False):
        self.peer = peer
        self.secure = secure
        self.sent: list[tuple[int, bytes]] = []
        self.closed = False
        self.aborted = False

    def send(self, payload: bytes, payload_type: int = 0x8001) -> None:
        """Record the message."""
        self.sent.append((payload_type, payload))

    def close(self) -> None:
        """Record an orderly close."""
        self.closed = True

    def abort(self) -> None:
        """Record an abort."""
        self.aborted = True


@implementer(ISecurity)
class FakeSecurity:
    """
    A security provider with fixed answers.

    :param credentials: what :meth:`tls_server_credentials` returns, or
        ``None`` to raise :class:`CertificatesUnavailable` with ``problem``.
    :param problem: the reason given when there are no credentials.
    :param bundles: ``ca_type`` → path for :meth:`verify_file`.
    """

    def __init__(
        self,
        credentials: TLSCredentials | None = None,
        problem: str = "no certificates (FakeSecurity)",
        bundles: dict[str, Path] | None = None,
    ):
        self.credentials = credentials
        self.problem = problem
        self.bundles = bundles or {}

    def tls_server_credentials(self) -> TLSCredentials:
        """:returns: the fixed credentials, or raises."""
        if self.credentials is None:
            raise CertificatesUnavailable(self.problem)
        return self.credentials

    def verify_file(self, ca_type: str) -> Path:
        """:returns: the fixed bundle path, or raises."""
        if ca_type not in self.bundles:
            raise CertificatesUnavailable(f"no {ca_type} root (FakeSecurity)")
        return self.bundles[ca_type]


def if_inet6_line(interface: str, index: int, address: str, flags: int = 0x80) -> str:
    """
    :param interface: the interface name.
    :param index: its index.
    :param address: an IPv6 address.
    :param flags: address flags (0x80 permanent; 0x40 tentative).
    :returns: the line ``/proc/net/if_inet6`` would show for it.
    """
    parsed = ipaddress.IPv6Address(address)
    scope = 0x20 if parsed.is_link_local else 0x10 if parsed.is_loopback else 0x00
    return f"{parsed.packed.hex()} {index:02x} 40 {scope:02x} {flags:02x} {interface:>8}"
