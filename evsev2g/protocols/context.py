"""
What a protocol state machine is given (:class:`ProtocolContext`) and what
it returns (:class:`Reply`), and :func:`body_name`, which both the state
machines and the session read messages by.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from evsev2g.exi.message import Message
from zope.interface import implementer

from evsev2g.errors import ServiceUnavailable
from evsev2g.interfaces import IServiceRegistry
from evsev2g.protocols.paused import PausedSessions
from evsev2g.timers import Timers

__all__ = ["ProtocolSettings", "ProtocolContext", "Reply", "NoServices", "random_session_id", "body_name"]


def body_name(message: Message) -> str | None:
    """
    The element name of a ``V2G_Message``'s body, e.g. ``"CurrentDemandReq"``.

    :param message: a ``V2G_Message`` (DIN SPEC 70121 or ISO 15118-2).
    :returns: ``str``, or ``None`` when it has no body or an empty one.
    """
    body = message.get("Body")
    if body is None or not body.children:
        return None
    return body.children[0][0]


def random_session_id() -> bytes:
    """
    A fresh SessionID: 8 random bytes, never all zero ([V2G2-750]; DIN's
    sessionIDType is hexBinary of at most 8 bytes).

    :returns: ``bytes`` of length 8.
    """
    while True:
        value = os.urandom(8)
        if any(value):
            return value


@dataclass(frozen=True)
class ProtocolSettings:
    """
    The configuration a state machine reads.

    :ivar terminate_connection_on_failed_response: close right after any
        FAILED response (EvseV2G key).
    :ivar auth_timeout_eim: seconds to wait for EIM authorization, 0 = for
        ever (EvseV2G key; we apply it to DIN too).
    :ivar auth_timeout_pnc: the same for Plug&Charge (ISO 15118-2).
    :ivar timers: the SECC timers.
    """

    terminate_connection_on_failed_response: bool = False
    auth_timeout_eim: float = 300.0
    auth_timeout_pnc: float = 55.0
    timers: Timers = field(default_factory=Timers)


@implementer(IServiceRegistry)
class NoServices:
    """
    The value-added-service registry of a set-up without any: nothing
    offered, nothing to detail, selections ignored.  (The registry proper
    is :mod:`evsev2g.vas`'s; this has its shape.)
    """

    def offered(self) -> list:
        """:returns: no services."""
        return []

    def parameter_sets(self, service_id: int) -> Deferred:
        """:returns: a ``Deferred`` failing with ``ServiceUnavailable`` (unknown): no service is offered."""
        return fail(ServiceUnavailable(service_id, "no value-added services", unknown=True))

    def select(self, selected_services) -> Deferred:
        """:returns: a ``Deferred`` firing ``None``."""
        return succeed(None)


@dataclass
class ProtocolContext:
    """
    Everything one session's state machine works with.

    :ivar charger: the session's :class:`evsev2g.interfaces.ICharger`.
    :ivar clock: ``IReactorTime`` for all time-keeping.
    :ivar settings: :class:`ProtocolSettings`.
    :ivar new_session_id: makes the SessionID for SessionSetupRes.
    :ivar log: a ``Logger`` whose lines name the session.
    :ivar label: a short name of the session for log lines (the peer).
    :ivar secure: the connection is TLS (ISO 15118-2 offers Contract
        payment only then).
    :ivar services: the value-added-service registry (``offered()``,
        ``parameter_sets(id)``, ``select(list)``).
    :ivar paused: the process's store of paused ISO 15118-2 sessions
        (:class:`~evsev2g.protocols.paused.PausedSessions`), kept by the
        session factory.
    """

    charger: object
    clock: object
    settings: ProtocolSettings = field(default_factory=ProtocolSettings)
    new_session_id: Callable[[], bytes] = random_session_id
    log: Logger = field(default_factory=Logger)
    label: str = ""
    secure: bool = False
    services: object = field(default_factory=NoServices)
    paused: PausedSessions = field(default_factory=PausedSessions)


@dataclass
class Reply:
    """
    A state machine's answer to one request.

    :ivar message: the response ``V2G_Message`` (or handshake response).
    :ivar close: close the connection after sending it.
    :ivar failed: the response code is a FAILED one.
    :ivar name: the response body's element name, e.g. ``"CurrentDemandRes"``.
    """

    message: Message
    close: bool = False
    failed: bool = False
    name: str = ""
