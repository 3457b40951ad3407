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

Admission (:class:`ConnectionRegistry`): when ``max_connections`` are
open, a new connection is still taken and the least valuable open one is
dropped in its place, so idle or hostile peers cannot lock a real car out:
first the oldest connection that has not got past the application
handshake, else the one silent longest among those without a charging
session.  A charging session (see :attr:`~evsev2g.interfaces.ISession.charging`)
is never dropped to make room: when every open connection is charging, the
new one is refused.

Stage timers (clock injected; ``io_timeout``, the ``tls_timeout`` key, bounds
each stage), so a slow or silent peer is closed in bounded time:

* TLS handshake: from the TCP connection to the handshake's end;
* first message: from the connection (TLS: the handshake's end) to the
  first whole V2GTP frame;
* a frame: from its first byte to its last, whatever arrives between
  (a byte-at-a-time peer does not restart it; nor does a V2GTP header
  without its payload);
* a peer that stops reading: while our answers wait in a full write buffer
  (the transport paused us as its producer), a new request drops the
  connection at once and the buffer is given ``io_timeout`` to drain, so
  what we hold for one EV stays within the transport's buffer size plus
  one answer.

Silence between whole messages after the first is the session's
V2G_SECC_Sequence_Timeout ([V2G2-443]).
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
from twisted.internet.interfaces import IHalfCloseableProtocol, IHandshakeListener, IPushProducer, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from evsev2g.config import DYNAMIC_PORTS
from evsev2g.errors import V2GTPError
from evsev2g.interfaces import ISession, ISessionFactory, ISessionLink
from evsev2g.netif import ServingAddress
from evsev2g.ports import PortService, listen_in_range
from evsev2g.tls import FrameTLSFactory, TLSServerCreator, describe_session, hello_answered
from evsev2g.v2gtp import STREAM_PAYLOAD_TYPES, PayloadType, V2GTPStreamParser, build_frame
from evsev2g.write_now import write_now

#: Seconds an orderly close waits for the EV to close its side before
#: sending our FIN: cars want to send the first FIN after SessionStopRes
#: (EvseV2G waits 2 s for it since field tests showed cars that did not
#: like the charger's FIN first; Josev's EVCC closes 5 s after
#: SessionStopRes).
CLOSE_DELAY = 2.0

#: Connections the kernel holds for us before we accept them.  A small
#: backlog lets a burst of connections (a flood, or a busy moment) leave a
#: real car's connection unaccepted in the kernel for seconds, past its
#: V2G_EVCC_Msg_Timeout, before admission (which works on accepted
#: connections) can make room for it; the soak showed it with 8.
LISTEN_BACKLOG = 128

#: Seconds an orderly close waits for the EV's FIN after our own
#: (EvseV2G: "some EVs did not like the immediate shutdown").
FIN_WAIT = 3.0


#: :meth:`ConnectionRegistry.make_room`'s answer when nothing may be dropped.
REFUSE = object()


@attrs.frozen
class ConnectionSettings:
    """
    How connections of one listener behave.

    :param secure: whether the connection runs TLS.
    :param max_payload: the largest V2GTP payload accepted, bytes.
    :param max_connections: open connections at most (over all listeners
        sharing one :class:`ConnectionRegistry`).
    :param io_timeout: seconds each connection stage may take (TLS
        handshake, first message, one frame, draining a full write buffer),
        or ``None`` for no such bounds.
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

    :param idle: told when the first connection comes (``busy()``) and
        when the last one goes (``idle()``), e.g. an
        :class:`~evsev2g.memory.IdleTrim`; or ``None``.
    """

    def __init__(self, idle=None):
        self.connections: set[V2GTPConnection] = set()
        self._gone: dict[V2GTPConnection, list[Deferred]] = {}
        self._idle = idle

    def add(self, connection: "V2GTPConnection") -> None:
        """:param connection: a connection just made."""
        if not self.connections and self._idle is not None:
            self._idle.busy()
        self.connections.add(connection)

    def make_room(self, limit: int) -> "V2GTPConnection | None":
        """
        Choose the connection to drop so that a new one fits under
        ``limit``.

        :param limit: ``max_connections``.
        :returns: ``None`` while there is room; else the oldest connection
            not past the application handshake, else the one silent longest
            among those not charging; else (all charging) the new
            connection itself should be refused, said by returning
            :data:`REFUSE`.
        """
        open_now = [c for c in self.connections if not c.leaving]
        if len(open_now) < limit:
            return None
        fresh = [c for c in open_now if not c.handshaken]
        if fresh:
            return min(fresh, key=lambda c: c.connected_at)
        idle = [c for c in open_now if not c.charging]
        if idle:
            return min(idle, key=lambda c: c.heard_at)
        return REFUSE

    def remove(self, connection: "V2GTPConnection") -> None:
        """:param connection: a connection just lost."""
        was_open = connection in self.connections
        self.connections.discard(connection)
        for waiter in self._gone.pop(connection, []):
            waiter.callback(None)
        if was_open and not self.connections and self._idle is not None:
            self._idle.idle()

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


@implementer(ISessionLink, IHandshakeListener, IHalfCloseableProtocol, IPushProducer)
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
        self._frames = 0
        self._frame_timer = None
        self._write_paused = False
        self._write_timer = None
        self._registered = False
        self._handshake_done = False
        self.peer: tuple[str, int] = ("", 0)
        self.secure = settings.secure
        #: when the connection was made, and when its last whole frame came (clock seconds)
        self.connected_at = self.heard_at = clock.seconds()

    # -- admission ------------------------------------------------------------

    @property
    def leaving(self) -> bool:
        """Closing or dropped already: no longer counts against the limit."""
        return self._closing or self._gone

    @property
    def handshaken(self) -> bool:
        """Whether the session got past the application handshake."""
        return bool(getattr(self._session, "handshaken", False))

    @property
    def charging(self) -> bool:
        """Whether the session is charging (never dropped to make room)."""
        return bool(getattr(self._session, "charging", False))

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
        write_now(self.transport, build_frame(payload_type, payload))

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
        self._cancel_all_timers()
        if self._settings.close_delay > 0:
            self._timer = self._clock.callLater(self._settings.close_delay, self._half_close)
        else:
            self._half_close()

    def _half_close(self) -> None:
        """Send our FIN (TLS: close_notify) and wait for the EV's."""
        self._timer = None
        if self._gone:
            return
        self._stop_being_producer()
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
        self._stop_being_producer()
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
        self._cancel_all_timers()
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
        limit = self._settings.max_connections
        victim = self._registry.make_room(limit)
        if victim is REFUSE:
            self.log.warn(
                "{peer}: {kind} connection refused: all {count} open connections are charging (max_connections)",
                peer=self._peer_text, kind=kind, count=limit,
            )
            self._refused = True
            self.abort()
            return
        if victim is not None:
            victim.make_way(self._peer_text, limit)
        self._registry.add(self)
        self.log.info("{peer}: {kind} connection accepted", peer=self._peer_text, kind=kind)
        self.transport.registerProducer(self, True)
        self._registered = True
        timeout = self._settings.io_timeout
        if timeout is not None:
            if self.secure:
                self._start_timer(timeout, f"TLS handshake not finished within {timeout:g} s")
            else:
                self._start_timer(timeout, f"no V2GTP message within {timeout:g} s of connecting")
        try:
            self._session = self._session_factory.new_session(self)
        except Exception:
            self._drop("the session factory failed", failed=True)

    def _hello_answered(self) -> bool:
        """Whether a TLS connection got as far as our ServerHello (see :func:`evsev2g.tls.hello_answered`)."""
        try:
            return hello_answered(self.transport.getHandle())
        except Exception:  # noqa: BLE001 - only a log line depends on it
            return False

    def make_way(self, newcomer: str, limit: int) -> None:
        """
        Drop this connection for a new one (the limit is reached and this
        one is the least valuable: see :meth:`ConnectionRegistry.make_room`).

        :param newcomer: the new peer, for the log.
        :param limit: ``max_connections``, for the log.
        """
        if self.handshaken:
            silent = self._clock.seconds() - self.heard_at
            why = f"making room for {newcomer} (max_connections {limit}): silent {silent:.1f} s, not charging"
        else:
            why = f"making room for {newcomer} (max_connections {limit}): no application handshake yet"
        self._drop(why)

    def handshakeCompleted(self) -> None:
        """The TLS handshake is done: its timer gives way to the first message's; log what was agreed."""
        self._handshake_done = True
        self._cancel_timer()
        timeout = self._settings.io_timeout
        if timeout is not None and not self.leaving and self._frames == 0:
            self._start_timer(timeout, f"no V2GTP message within {timeout:g} s of the TLS handshake")
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
                if self._write_paused:
                    self._drop("the EV sends requests but does not read our answers")
                    return
                self._frame_done()
                self._deliver(payload_type, payload)
                if self._closing or self._gone:
                    return
        except V2GTPError as error:
            self._drop(f"V2GTP: {error}")
            return
        timeout = self._settings.io_timeout
        if timeout is not None and self._parser.mid_frame and self._frame_timer is None:
            self._frame_timer = self._clock.callLater(
                timeout, self._drop, f"a V2GTP frame not finished within {timeout:g} s of its first byte"
            )

    def _frame_done(self) -> None:
        """A whole frame came: stop the first-message and frame timers."""
        self._frames += 1
        self.heard_at = self._clock.seconds()
        if self._frames == 1:
            self._cancel_timer()
        if self._frame_timer is not None:
            if self._frame_timer.active():
                self._frame_timer.cancel()
            self._frame_timer = None

    # -- IPushProducer: our answers waiting in a full write buffer ------------

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full: the EV does not read.  Its
        next request drops the connection; the buffer has ``io_timeout`` to
        drain.
        """
        self._write_paused = True
        timeout = self._settings.io_timeout
        if timeout is not None and self._write_timer is None and not self._gone:
            self._write_timer = self._clock.callLater(
                timeout, self._drop, f"the EV read none of our answers for {timeout:g} s"
            )

    def resumeProducing(self) -> None:
        """The write buffer drained: go on as usual."""
        self._write_paused = False
        if self._write_timer is not None:
            if self._write_timer.active():
                self._write_timer.cancel()
            self._write_timer = None

    def stopProducing(self) -> None:
        """The transport is going away; :meth:`connectionLost` follows."""

    def _stop_being_producer(self) -> None:
        """
        Unregister from the transport before closing: a transport with a
        registered producer holds its close back until the producer goes.
        """
        self.resumeProducing()
        if self._registered:
            self._registered = False
            self.transport.unregisterProducer()

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
        self._stop_being_producer()
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
        self._cancel_all_timers()
        why = self._why or _describe_reason(reason)
        if self._why is None and _is_tls_error(reason):
            if self._handshake_done:
                why = f"TLS error: {why}"
            elif self._hello_answered() and why.startswith(NOT_TLS):
                why = f"TLS handshake failed: bytes that are not TLS records after the ClientHello [{why[len(NOT_TLS):].strip()}]"
            else:
                why = f"TLS handshake failed: {why}"
            self.log.warn("{peer}: {why}", peer=self._peer_text, why=why)
        else:
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

    def _cancel_all_timers(self) -> None:
        """Stop the stage timer, the frame timer and the write timer."""
        self._cancel_timer()
        for name in ("_frame_timer", "_write_timer"):
            timer = getattr(self, name)
            if timer is not None and timer.active():
                timer.cancel()
            setattr(self, name, None)

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


#: The cause given to bytes that are not TLS at all (see :data:`TLS_CAUSES`).
NOT_TLS = "not TLS: plain TCP to the TLS port?"


#: OpenSSL's reasons for a failed handshake, in words that name the cause
#: (ISO 15118-2 §7.7.3.5: TLS 1.2, ECDHE-ECDSA-AES128-SHA256, P-256).
TLS_CAUSES = {
    "unsupported protocol": "the EV offers no TLS 1.2 (TLS 1.3 only, or TLS 1.0/1.1)",
    "no protocols available": "the EV offers no TLS 1.2 (TLS 1.3 only, or TLS 1.0/1.1)",
    "no shared cipher": "no cipher suite in common (we serve only ECDHE-ECDSA-AES128-SHA256)",
    "no suitable key share": "no key-exchange group in common (we serve only P-256)",
    "no shared groups": "no key-exchange group in common (we serve only P-256)",
    "wrong version number": NOT_TLS,
    "http request": NOT_TLS,
    "packet length too long": NOT_TLS,
    "unknown protocol": NOT_TLS,
    "record layer failure": NOT_TLS,
    "unexpected message": "a TLS message out of order in the handshake",
    "bad record type": NOT_TLS,
    "decryption failed or bad record mac": "a damaged TLS record",
    "bad record mac": "a damaged TLS record",
    "tlsv1 alert protocol version": "the EV refused our TLS version",
    "sslv3 alert handshake failure": "the EV ended the handshake (no common parameters)",
}


def _is_tls_error(reason: Failure) -> bool:
    """Whether the connection ended on an OpenSSL error."""
    return type(reason.value).__module__.startswith("OpenSSL")


def _describe_reason(reason: Failure) -> str:
    """A short text for how a connection ended; OpenSSL errors name their cause."""
    if reason.check(ConnectionDone):
        return "closed cleanly"
    if reason.check(ConnectionLost):
        return "connection lost"
    error = reason.value
    text = str(error) or type(error).__name__
    if _is_tls_error(reason):
        lowered = text.lower()
        for needle, cause in TLS_CAUSES.items():
            if needle in lowered:
                return f"{cause} [{_openssl_reason(error) or needle}]"
        return f"OpenSSL: {_openssl_reason(error) or text}"
    return text


def _openssl_reason(error) -> str:
    """The reason strings of a pyOpenSSL error, joined."""
    try:
        return "; ".join(entry[2] for entry in error.args[0] if len(entry) > 2 and entry[2])
    except (IndexError, TypeError):
        return ""


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
        factory = self.factory if self.tls is None else FrameTLSFactory(self.tls, False, self.factory)
        kind = "TLS server" if self.tls is not None else "TCP server"

        def listen(port):
            """Open the port on the serving address."""
            return self._reactor.listenTCP(port, factory, backlog=LISTEN_BACKLOG, interface=self.serving.host)

        return listen_in_range(listen, self._port, self._port_range, kind)

    def stopService(self) -> Deferred:
        """
        :returns: a Deferred that fires when the port is closed and this
            listener's connections are gone.
        """
        closed = PortService.stopService(self)
        return DeferredList([closed, self.factory.registry.abort_all()])
