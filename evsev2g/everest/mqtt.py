"""
MQTT inside the Twisted reactor: paho-mqtt 2.x driven through its socket
callbacks, with no thread and no blocking call.

paho does the MQTT protocol (packets, QoS 1/2 flows, keep-alive, the queue
of QoS > 0 messages published while offline); this module does the I/O the
way a Twisted program must:

- the TCP connection is opened non-blocking (the host name resolved by the
  reactor's resolver, ``connect_ex`` and a wait for writability), or a unix
  stream socket (EVerest's ``mqtt_broker_socket_path``), and only then
  handed to paho, whose own ``connect`` would block;
- paho's ``on_socket_open`` / ``on_socket_close`` /
  ``on_socket_register_write`` / ``on_socket_unregister_write`` add and
  remove the socket as a reader and writer of the reactor, which calls
  ``loop_read`` / ``loop_write``; ``loop_misc`` (keep-alive) runs once a
  second from a ``LoopingCall`` on the injected clock;
- a lost or refused connection is retried with exponential back-off
  (0.25 s doubling to 8 s), and every subscription is made again once the
  broker accepted the new connection (clean session, as EVerest uses).

QoS 2 for everything, as EVerest's framework publishes and subscribes.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

import paho.mqtt.client as paho
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReadDescriptor, IWriteDescriptor
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["BrokerAddress", "ReactorMQTT", "QOS", "QUEUE_LIMIT", "MAX_PAYLOAD", "INFLIGHT"]

#: EVerest's QoS for commands, results, vars, errors, ready and config.
QOS = 2

#: Reconnect back-off: first delay, factor, ceiling (s).
BACKOFF = (0.25, 2.0, 8.0)

#: EVerest's keep-alive since it speaks MQTT 5 through libmosquitto (s).
KEEPALIVE = 20

#: QoS 1/2 messages in flight at once.  Mosquitto accepts 20 from a client
#: (its ``max_inflight_messages``) and silently drops QoS 2 messages beyond
#: that for MQTT 3.1.1 clients (measured: with 100 in flight, a burst of 200
#: results lost 37); the rest wait in paho's queue.
INFLIGHT = 20

#: Largest message handled (bytes); EVerest's largest (a certificate
#: chain, a V2G message log entry) are a few kB.  Larger ones are dropped
#: with a log line.
MAX_PAYLOAD = 1 << 20

#: Most QoS 2 messages kept for the broker while it is away (about 40 min
#: of a session's vars at CurrentDemand's 4 Hz); beyond, new ones are
#: dropped with one log line per outage.
QUEUE_LIMIT = 10000


class BrokerAddress:
    """
    Where the broker is: TCP ``host``/``port`` or a unix socket ``path``.

    :ivar host: host name or address, or ``None`` for a unix socket.
    :ivar port: TCP port.
    :ivar path: unix socket path, or ``None``.
    """

    def __init__(self, host: str | None = "localhost", port: int = 1883, path: str | None = None) -> None:
        if path:
            host = None
        elif not host:
            raise ValueError("a broker needs a host and port or a unix socket path")
        self.host, self.port, self.path = host, port, path or None

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


class _PahoClient(paho.Client):
    """paho's client, given a socket we connected without blocking."""

    ready_socket: socket.socket | None = None

    def _create_socket(self):  # paho's hook for the connection socket
        sock, self.ready_socket = self.ready_socket, None
        if sock is None:
            raise OSError(errno.ENOTCONN, "no connected socket to hand to paho")
        return sock


@implementer(IReadDescriptor, IWriteDescriptor)
class _SocketDescriptor:
    """paho's socket as a reactor reader and writer."""

    def __init__(self, owner: "ReactorMQTT", sock) -> None:
        self.owner, self.sock = owner, sock

    def fileno(self) -> int:
        try:
            return self.sock.fileno()
        except OSError:
            return -1

    def logPrefix(self) -> str:
        return "mqtt"

    def doRead(self):
        self.owner._client.loop_read()

    def doWrite(self):
        self.owner._client.loop_write()

    def connectionLost(self, reason) -> None:
        self.owner._socket_gone(self)


@implementer(IWriteDescriptor)
class _Connecting:
    """A non-blocking TCP connect in progress: writable means done."""

    def __init__(self, sock, done: Deferred) -> None:
        self.sock, self.done = sock, done

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return "mqtt-connect"

    def doWrite(self):
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if not self.done.called:
            if code:
                self.done.errback(Failure(OSError(code, errno.errorcode.get(code, str(code)))))
            else:
                self.done.callback(self.sock)

    def connectionLost(self, reason) -> None:
        if not self.done.called:
            self.done.errback(reason)


class ReactorMQTT(Service):
    """
    One MQTT connection run by the reactor, as an ``IService``.

    :ivar connected: whether the broker accepted the connection (CONNACK).
    """

    log = Logger()

    def __init__(self, reactor, broker: BrokerAddress, client_id: str = "", keepalive: int = KEEPALIVE) -> None:
        """
        :param reactor: provides ``IReactorFDSet``, ``IReactorTime`` and a
            ``nameResolver``.
        :param broker: where the broker is.
        :param client_id: the MQTT client id (EVerest modules use none).
        :param keepalive: seconds.
        """
        self.reactor = reactor
        self.broker = broker
        self.connected = False
        self._client = _PahoClient(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            transport="unix" if broker.path else "tcp",
        )
        self._client.max_queued_messages_set(QUEUE_LIMIT)
        self._client.max_inflight_messages_set(INFLIGHT)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_socket_open = self._on_socket_open
        self._client.on_socket_close = self._on_socket_close
        self._client.on_socket_register_write = self._on_register_write
        self._client.on_socket_unregister_write = self._on_unregister_write
        self._keepalive = keepalive
        self._subscriptions: dict[str, list[Callable[[str, bytes], None]]] = {}
        self._on_connected: list[Callable[[bool], None]] = []
        self._descriptor: _SocketDescriptor | None = None
        self._misc = LoopingCall(self._loop_misc)
        self._misc.clock = reactor
        self._retry = None
        self._delay = BACKOFF[0]
        self._attempt: Deferred | None = None
        self._first = True
        self._refused_logged = False
        self._queue_full_logged = False

    # -- public ------------------------------------------------------------

    def when_connected(self, callback: Callable[[bool], None]) -> None:
        """
        Call ``callback(first)`` every time the broker accepts a connection
        (after the subscriptions were made again); ``first`` is ``True``
        only the first time.
        """
        self._on_connected.append(callback)

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        """
        Receive messages on ``topic`` (wildcards allowed) as
        ``callback(topic, payload)``; kept across reconnections.
        """
        first = topic not in self._subscriptions
        self._subscriptions.setdefault(topic, []).append(callback)
        if first and self.connected:
            self._client.subscribe(topic, QOS)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """
        Publish with QoS 2.  While the broker is away the message waits in
        paho's queue and goes out after the reconnection.
        """
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE and not self._queue_full_logged:
            self._queue_full_logged = True
            self.log.error("MQTT: {limit} messages wait for the broker; dropping new ones until it is back", limit=QUEUE_LIMIT)

    def startService(self) -> None:
        """Connect (and keep reconnecting); harmless when running already."""
        if self.running:
            return
        super().startService()
        self._misc.start(1.0, now=False)
        self._connect()

    def stopService(self):
        """Disconnect cleanly, stop retrying."""
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._attempt is not None and not self._attempt.called:
            self._attempt.cancel()
        if self._misc.running:
            self._misc.stop()
        if self.connected:
            self._client.disconnect()
            self._client.loop_write()
        self._drop_socket()
        self.connected = False

    # -- connecting ----------------------------------------------------------

    def _connect(self) -> None:
        self._retry = None
        if not self.running:
            return
        attempt = self._open_socket()
        self._attempt = attempt
        attempt.addCallbacks(self._socket_ready, self._connect_failed)

    def _open_socket(self) -> Deferred:
        broker = self.broker
        if broker.path:
            done: Deferred = Deferred()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(broker.path)
            except OSError as error:
                sock.close()
                done.errback(Failure(error))
            else:
                done.callback(sock)
            return done

        def resolved(addresses):
            for family, kind, proto, _, address in addresses:
                return _connect_tcp(self.reactor, family, address)
            raise OSError(errno.EHOSTUNREACH, f"{broker.host} has no address")

        return _resolve(self.reactor, broker.host, broker.port).addCallback(resolved)

    def _socket_ready(self, sock) -> None:
        self._attempt = None
        if not self.running:
            sock.close()
            return
        self._client.ready_socket = sock
        # connect_async only records the address; reconnect() takes our socket.
        self._client.connect_async(self.broker.path or self.broker.host, self.broker.port, self._keepalive)
        try:
            self._client.reconnect()
        except Exception as error:
            self._connect_failed(Failure(error))

    def _connect_failed(self, failure: Failure) -> None:
        self._attempt = None
        if not self.running:
            return
        problem = failure.getErrorMessage()
        if failure.check(OSError) and failure.value.strerror:
            problem = failure.value.strerror
        if not self._refused_logged:
            self.log.error("MQTT broker {broker} unreachable ({problem}); retrying with back-off", broker=str(self.broker), problem=problem)
            self._refused_logged = True
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if not self.running or self._retry is not None:
            return
        delay = self._delay
        self._delay = min(self._delay * BACKOFF[1], BACKOFF[2])
        self._retry = self.reactor.callLater(delay, self._connect)

    # -- paho callbacks --------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.log.error("MQTT broker {broker} refused the connection: {reason}", broker=str(self.broker), reason=str(reason_code))
            return
        self.connected = True
        self._delay = BACKOFF[0]
        self._refused_logged = False
        self._queue_full_logged = False
        first, self._first = self._first, False
        if not first:
            self.log.info("MQTT: reconnected to {broker}", broker=str(self.broker))
        for topic in self._subscriptions:
            client.subscribe(topic, QOS)
        for callback in list(self._on_connected):
            try:
                callback(first)
            except Exception:
                self.log.failure("MQTT connection callback failed")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected
        self.connected = False
        if was and self.running:
            self.log.warn("MQTT: connection to {broker} lost ({reason}); reconnecting", broker=str(self.broker), reason=str(reason_code))
        self._drop_socket()
        self._schedule_retry()

    def _on_message(self, client, userdata, message) -> None:
        topic = message.topic
        if len(message.payload) > MAX_PAYLOAD:
            self.log.warn("MQTT: {size} bytes on {topic} dropped (more than {limit})", size=len(message.payload), topic=topic, limit=MAX_PAYLOAD)
            return
        for pattern, callbacks in list(self._subscriptions.items()):
            if paho.topic_matches_sub(pattern, topic):
                for callback in list(callbacks):
                    try:
                        callback(topic, message.payload)
                    except Exception:
                        self.log.failure("MQTT handler for {topic} failed", topic=topic)

    def _on_socket_open(self, client, userdata, sock) -> None:
        self._descriptor = _SocketDescriptor(self, sock)
        self.reactor.addReader(self._descriptor)

    def _on_socket_close(self, client, userdata, sock) -> None:
        self._drop_socket()

    def _on_register_write(self, client, userdata, sock) -> None:
        if self._descriptor is not None:
            self.reactor.addWriter(self._descriptor)

    def _on_unregister_write(self, client, userdata, sock) -> None:
        if self._descriptor is not None:
            self.reactor.removeWriter(self._descriptor)

    def _socket_gone(self, descriptor) -> None:
        if descriptor is self._descriptor:
            self._drop_socket()

    def _drop_socket(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            self.reactor.removeReader(descriptor)
            self.reactor.removeWriter(descriptor)

    def _loop_misc(self) -> None:
        if self._descriptor is not None:
            self._client.loop_misc()


def _resolve(reactor, host: str, port: int) -> Deferred:
    """Resolve ``host`` without blocking the reactor: a list of getaddrinfo-like tuples."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        socket.inet_pton(family, host)
    except OSError:
        pass
    else:
        d: Deferred = Deferred()
        d.callback([(family, socket.SOCK_STREAM, 0, "", (host, port))])
        return d
    from twisted.internet.interfaces import IResolutionReceiver

    found: list = []
    done: Deferred = Deferred()

    @implementer(IResolutionReceiver)
    class Receiver:
        def resolutionBegan(self, resolution):
            pass

        def addressResolved(self, address):
            family = socket.AF_INET6 if address.type == "TCP" and ":" in address.host else socket.AF_INET
            found.append((family, socket.SOCK_STREAM, 0, "", (address.host, address.port)))

        def resolutionComplete(self):
            done.callback(found)

    reactor.nameResolver.resolveHostName(Receiver(), host, port)
    return done


def _connect_tcp(reactor, family: int, address) -> Deferred:
    """A TCP connection opened without blocking; fires with the connected socket."""
    done: Deferred = Deferred()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    # MQTT packets are small and answer each other (PUBLISH, PUBREC, PUBREL,
    # PUBCOMP): without TCP_NODELAY, Nagle and delayed ACKs add tens of ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    code = sock.connect_ex(address)
    if code == 0:
        done.callback(sock)
        return done
    if code not in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
        sock.close()
        done.errback(Failure(OSError(code, errno.errorcode.get(code, str(code)))))
        return done
    waiter = _Connecting(sock, done)
    reactor.addWriter(waiter)

    def finished(result):
        reactor.removeWriter(waiter)
        if isinstance(result, Failure):
            sock.close()
        return result

    return done.addBoth(finished)
