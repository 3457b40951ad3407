"""
The TCP and TLS servers: accept connections, cut V2GTP frames, drive the
session seam (:mod:`evsev2g.interfaces`).

Per connection, :class:`V2GTPConnection` asks the
:class:`~evsev2g.interfaces.ISessionFactory` for a session, calls
``payload_received`` once per frame and ``connection_lost`` once at the end,
and is the session's :class:`~evsev2g.interfaces.ISessionLink`.  A header
that breaks the rules (bad version, unknown type, length 0 or above
``v2gtp_max_payload``) closes that connection at once without an answer and
logs why; other connections go on.

Timers (clock injected):

* TLS: ``tls_timeout`` bounds the handshake, and any stall in the middle of
  a frame (bytes of a frame arrived, the rest does not come).  Silence
  between whole messages is the session's V2G_SECC_Sequence_Timeout.
* Orderly close (:meth:`V2GTPConnection.close`): flush, give the EV
  :data:`CLOSE_DELAY` seconds to close first, then half-close and wait up to
  :data:`FIN_WAIT` seconds for the EV's FIN before closing (plain TCP, the
  ordinary way; dropped one more FIN wait later if even that cannot finish)
  or dropping (TLS) the connection, as EvseV2G does: some EVs dislike an
  abrupt close, and some insist on sending the first FIN themselves.
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IHandshakeListener, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from evsev2g.config import DYNAMIC_PORTS
from evsev2g.errors import V2GTPError
from evsev2g.interfaces import ISession, ISessionFactory, ISessionLink
from evsev2g.netif import ServingAddress
from evsev2g.ports import PortService, listen_in_range
from evsev2g.tls import TLSServerCreator, describe_session
from evsev2g.v2gtp import STREAM_PAYLOAD_TYPES, PayloadType, V2GTPStreamParser, build_frame

#: Seconds an orderly close waits for the EV to close its side before
#: sending our FIN: cars want to send the first FIN after SessionStopRes
#: (EvseV2G waits 2 s for it since field tests showed cars that did not
#: like the charger's FIN first; Josev's EVCC closes 5 s after
#: SessionStopRes).
CLOSE_DELAY = 2.0

#: Seconds an orderly close waits for the EV's FIN after our own
#: (EvseV2G: "some EVs did not like the immediate shutdown").
FIN_WAIT = 3.0


@attrs.frozen
class ConnectionSettings:
    """
    How connections of one listener behave.

    :param secure: whether the connection runs TLS.
    :param max_payload: the largest V2GTP payload accepted, bytes.
    :param max_connections: open connections at most (over all listeners
        sharing one :class:`ConnectionRegistry`).
    :param io_timeout: seconds for the TLS handshake (TLS only) and for a
        stalled frame, or ``None`` for no such bound (plain TCP).
    :param fin_wait: seconds an orderly close waits for the EV's FIN.
    :param close_delay: seconds an orderly close waits for the EV to close
        first, before sending our FIN.
    """

    secure: bool
    max_payload: int
    max_connections: int
    io_timeout: float | None = None
    fin_wait: float = FIN_WAIT
    close_delay: float = CLOSE_DELAY


class ConnectionRegistry:
    """
    The open connections of all listeners, for the connection limit and
    for closing them all when the service stops.
    """

    def __init__(self):
        self.connections: set[V2GTPConnection] = set()
        self._gone: dict[V2GTPConnection, list[Deferred]] = {}

    def add(self, connection: "V2GTPConnection") -> None:
        """:param connection: a connection just made."""
        self.connections.add(connection)

    def remove(self, connection: "V2GTPConnection") -> None:
        """:param connection: a connection just lost."""
        self.connections.discard(connection)
        for waiter in self._gone.pop(connection, []):
            waiter.callback(None)

    def abort_all(self) -> Deferred:
        """
        Drop every open connection.

        :returns: a Deferred that fires when all of them are gone.
        """
        waiting = []
        for connection in list(self.connections):
            waiter = Deferred()
            self._gone.setdefault(connection, []).append(waiter)
            waiting.append(waiter)
            connection.abort()
        return DeferredList(waiting) if waiting else succeed(None)


@implementer(ISessionLink, IHandshakeListener, IHalfCloseableProtocol)
class V2GTPConnection(Protocol):
    """
    One accepted TCP or TLS connection carrying V2GTP frames.

    :param session_factory: makes the session for this connection.
    :param settings: limits and timers.
    :param registry: the open connections (limit and shutdown).
    :param clock: the reactor's clock (``IReactorTime``).
    """

    log = Logger()

    def __init__(
        self,
        session_factory: ISessionFactory,
        settings: ConnectionSettings,
        registry: ConnectionRegistry,
        clock: IReactorTime,
    ):
        self._session_factory = session_factory
        self._settings = settings
        self._registry = registry
        self._clock = clock
        self._parser = V2GTPStreamParser(settings.max_payload, STREAM_PAYLOAD_TYPES)
        self._session: ISession | None = None
        self._timer = None
        self._why: str | None = None
        self._closing = False
        self._aborted = False
        self._refused = False
        self._gone = False
        self.peer: tuple[str, int] = ("", 0)
        self.secure = settings.secure

    # -- ISessionLink -------------------------------------------------------

    def send(self, payload: bytes, payload_type: int = PayloadType.EXI) -> None:
        """
        Frame and write one message; dropped with a log line once closing.

        :param payload: the message body.
        :param payload_type: the V2GTP payload type.
        """
        if self._closing or self._gone:
            self.log.warn("{peer}: not sending {size} bytes: the connection is closing", peer=self._peer_text, size=len(payload))
            return
        self.transport.write(build_frame(payload_type, payload))

    def close(self) -> None:
        """
        Orderly close: everything written goes out; the EV has
        :data:`CLOSE_DELAY` seconds to close first (we then close at once),
        then our FIN (TLS: close_notify) follows and the EV has
        :data:`FIN_WAIT` more seconds to close its side.  Requests arriving
        meanwhile are ignored.
        """
        if self._closing or self._gone:
            return
        self._closing = True
        self._cancel_timer()
        if self._settings.close_delay > 0:
            self._timer = self._clock.callLater(self._settings.close_delay, self._half_close)
        else:
            self._half_close()

    def _half_close(self) -> None:
        """Send our FIN (TLS: close_notify) and wait for the EV's."""
        self._timer = None
        if self._gone:
            return
        if self.secure:
            self.transport.loseConnection()
        else:
            self.transport.loseWriteConnection()
        wait = self._settings.fin_wait
        why = f"the EV did not close its side within {wait:g} s"
        self._timer = self._clock.callLater(wait, self._fin_wait_over, why)

    def _fin_wait_over(self, why: str) -> None:
        """
        The EV kept its side open through the FIN wait: no fault after a
        finished session, so logged as information.  A plain TCP socket is
        closed the ordinary way, as EvseV2G closes it, not reset: the EV
        already has our FIN and a finished session.  TLS is dropped.
        """
        self._timer = None
        if self.secure:
            self._drop(why, expected=True)
            return
        self._why = why
        self.log.info("{peer}: closing the connection: {why}", peer=self._peer_text, why=why)
        self.transport.loseConnection()
        if not self._gone:
            # Our FIN has not even gone out (an EV that reads nothing):
            # give it one more FIN wait, then drop.
            self._timer = self._clock.callLater(self._settings.fin_wait, self._drop, why)

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._gone or self._aborted:
            return
        self._closing = self._aborted = True
        self._cancel_timer()
        self.transport.abortConnection()

    # -- Twisted ------------------------------------------------------------

    @property
    def _peer_text(self) -> str:
        """The peer as ``[host]:port`` for log lines."""
        return f"[{self.peer[0]}]:{self.peer[1]}"

    def connectionMade(self) -> None:
        """Check the connection limit, make the session, start the handshake timer."""
        address = self.transport.getPeer()
        self.peer = (address.host, address.port)
        kind = "TLS" if self.secure else "TCP"
        if len(self._registry.connections) >= self._settings.max_connections:
            self.log.warn(
                "{peer}: {kind} connection refused: {count} connections are open (max_connections)",
                peer=self._peer_text, kind=kind, count=len(self._registry.connections),
            )
            self._refused = True
            self.abort()
            return
        self._registry.add(self)
        self.log.info("{peer}: {kind} connection accepted", peer=self._peer_text, kind=kind)
        timeout = self._settings.io_timeout
        if self.secure and timeout is not None:
            self._start_timer(timeout, f"TLS handshake not finished within {timeout:g} s")
        try:
            self._session = self._session_factory.new_session(self)
        except Exception:
            self._drop("the session factory failed", failed=True)

    def handshakeCompleted(self) -> None:
        """The TLS handshake is done: stop its timer, log what was agreed."""
        self._cancel_timer()
        try:
            agreed = describe_session(self.transport.getHandle())
        except Exception:
            agreed = {}
        self.log.info(
            "{peer}: TLS handshake done: {version} {cipher} {group}",
            peer=self._peer_text, version=agreed.get("version"), cipher=agreed.get("cipher"), group=agreed.get("group"),
        )

    def dataReceived(self, data: bytes) -> None:
        """
        Cut frames and hand them to the session; a bad header closes.

        :param data: bytes as they arrived.
        """
        if self._closing or self._gone:
            return
        try:
            for payload_type, payload in self._parser.feed(data):
                self._deliver(payload_type, payload)
                if self._closing or self._gone:
                    return
        except V2GTPError as error:
            self._drop(f"V2GTP: {error}")
            return
        timeout = self._settings.io_timeout
        if timeout is not None:
            self._cancel_timer()
            if self._parser.mid_frame:
                self._start_timer(timeout, f"a V2GTP frame stalled for {timeout:g} s")

    def _deliver(self, payload_type: int, payload: bytes) -> None:
        """Hand one frame to the session; a session error drops the connection."""
        if self._session is None:
            return
        try:
            self._session.payload_received(payload_type, payload)
        except Exception:
            self._drop("the session failed on a payload", failed=True)

    def readConnectionLost(self) -> None:
        """The EV sent its FIN (plain TCP): finish closing our side too."""
        if not self._closing:
            self.log.info("{peer}: the EV closed its side", peer=self._peer_text)
            self._closing = True
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """Our FIN is out; wait for the EV's (see :meth:`close`)."""

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        """
        Tell the session once, with a short reason.

        :param reason: why Twisted says the connection ended.
        """
        if self._gone or self._refused:
            return
        self._gone = True
        self._cancel_timer()
        why = self._why or _describe_reason(reason)
        self.log.info("{peer}: connection closed: {why}", peer=self._peer_text, why=why)
        session, self._session = self._session, None
        if session is not None:
            try:
                session.connection_lost(why)
            except Exception:
                self.log.failure("{peer}: the session raised in connection_lost", peer=self._peer_text)
        self._registry.remove(self)

    # -- timers -------------------------------------------------------------

    def _start_timer(self, seconds: float, why: str) -> None:
        """Drop the connection after ``seconds``, saying ``why``, unless cancelled first."""
        self._cancel_timer()
        self._timer = self._clock.callLater(seconds, self._drop, why)

    def _cancel_timer(self) -> None:
        """Stop the running timer, if any."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _drop(self, why: str, failed: bool = False, expected: bool = False) -> None:
        """
        Drop the connection without an answer, logging why.

        :param why: the reason, also given to the session.
        :param failed: log the exception being handled (a bug), not a warning.
        :param expected: no fault of anybody's: logged as information.
        """
        self._why = why
        if failed:
            self.log.failure("{peer}: dropping the connection: {why}", peer=self._peer_text, why=why)
        elif expected:
            self.log.info("{peer}: dropping the connection: {why}", peer=self._peer_text, why=why)
        else:
            self.log.warn("{peer}: dropping the connection: {why}", peer=self._peer_text, why=why)
        self.abort()


def _describe_reason(reason: Failure) -> str:
    """A short text for how a connection ended."""
    if reason.check(ConnectionDone):
        return "closed cleanly"
    if reason.check(ConnectionLost):
        return "connection lost"
    error = reason.value
    text = str(error) or type(error).__name__
    if type(error).__module__.startswith("OpenSSL"):
        return f"TLS error: {text}"
    return text


class V2GTPServerFactory(Factory):
    """
    Makes a :class:`V2GTPConnection` per accepted connection.

    :param session_factory: makes each connection's session.
    :param settings: limits and timers.
    :param registry: the open connections, shared by all listeners.
    :param clock: the reactor's clock.
    """

    noisy = False

    def __init__(self, session_factory, settings: ConnectionSettings, registry: ConnectionRegistry, clock):
        self.session_factory = session_factory
        self.settings = settings
        self.registry = registry
        self.clock = clock

    def buildProtocol(self, addr) -> V2GTPConnection:
        """:returns: a new connection protocol."""
        return V2GTPConnection(self.session_factory, self.settings, self.registry, self.clock)


class V2GTPListenerService(PortService):
    """
    A TCP or TLS server on the serving address.

    :param reactor: provides ``IReactorTCP`` and ``IReactorTime``.
    :param serving: the interface and address to listen on.
    :param port: the configured port (0: any free one in 49152–65535).
    :param factory: the connection factory.
    :param tls: the TLS connection creator, or ``None`` for plain TCP.
    :param port_range: where port 0 picks from (tests may narrow it).
    """

    def __init__(
        self,
        reactor,
        serving: ServingAddress,
        port: int,
        factory: V2GTPServerFactory,
        tls: TLSServerCreator | None = None,
        port_range: tuple[int, int] = DYNAMIC_PORTS,
    ):
        self._reactor = reactor
        self.serving = serving
        self._port = port
        self.factory = factory
        self.tls = tls
        self._port_range = port_range
        self.setName("tls" if tls is not None else "tcp")

    def open_port(self):
        """:returns: the listening port on the serving address."""
        factory = self.factory if self.tls is None else TLSMemoryBIOFactory(self.tls, False, self.factory)
        kind = "TLS server" if self.tls is not None else "TCP server"

        def listen(port):
            """Open the port on the serving address."""
            return self._reactor.listenTCP(port, factory, backlog=8, interface=self.serving.host)

        return listen_in_range(listen, self._port, self._port_range, kind)

    def stopService(self) -> Deferred:
        """
        :returns: a Deferred that fires when the port is closed and this
            listener's connections are gone.
        """
        closed = PortService.stopService(self)
        return DeferredList([closed, self.factory.registry.abort_all()])
