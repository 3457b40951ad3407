"""Server-side helpers for real-socket tests: listeners on ::1, an echoing session, a read counter."""

import threading

from evsev2g.tls import TLSServerCreator
from evsev2g.transport import ConnectionRegistry, ConnectionSettings, V2GTPListenerService, V2GTPServerFactory

EXI = 0x8001


def echo(session, payload_type, payload):
    """A RecordingSession responder that answers each payload with itself."""
    session.link.send(payload, payload_type)


def answer_and_close(session, payload_type, payload):
    """A RecordingSession responder that answers once, then closes in order."""
    session.link.send(payload, payload_type)
    session.link.close()


def start_listener(
    reactor,
    serving,
    sessions,
    tls: TLSServerCreator | None = None,
    max_payload=1024,
    io_timeout=15.0,
    fin_wait=3.0,
    close_delay=2.0,
):
    """
    A started TCP (or TLS, given a creator) listener at a free dynamic port.

    :returns: the :class:`V2GTPListenerService`; stop it with ``await service.stopService()``.
    """
    settings = ConnectionSettings(
        secure=tls is not None,
        max_payload=max_payload,
        max_connections=4,
        io_timeout=io_timeout if tls is not None else None,
        fin_wait=fin_wait,
        close_delay=close_delay,
    )
    factory = V2GTPServerFactory(sessions, settings, ConnectionRegistry(), reactor)
    service = V2GTPListenerService(reactor, serving, 0, factory, tls)
    service.startService()
    return service


async def exchange_then_stop(service, client, *args, until=None, **kwargs):
    """
    Run a blocking EV-side client in a thread against a started listener,
    then stop the listener (also when the client fails).

    :param client: called as ``client(port, *args, **kwargs)``.
    :param until: a predicate to wait for (up to 5 s) before stopping, e.g.
        that the server has seen the client's FIN (stopping drops open
        connections).
    :returns: what the client returned.
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater
    from twisted.internet.threads import deferToThread

    try:
        result = await deferToThread(client, service.port_number, *args, **kwargs)
        for _ in range(500):
            if until is None or until():
                break
            await deferLater(reactor, 0.01, lambda: None)
        return result
    finally:
        await service.stopService()


class ReadCounter:
    """
    Counts the bytes the server's connections have read, so that a client
    thread can wait until the server has read what it sent (an event, not a
    pause): ``converse(..., after_each=counter.wait_for)``.

    :param factory: the listener's :class:`V2GTPServerFactory`; its
        connections report each read here.
    """

    #: Seconds a client waits at most before the test fails (a server that never reads).
    LIMIT = 30.0

    def __init__(self, factory):
        self.total = 0
        self._changed = threading.Condition()
        build = factory.buildProtocol

        def build_counting(addr):
            connection = build(addr)
            received = connection.dataReceived

            def counting(data):
                with self._changed:
                    self.total += len(data)
                    self._changed.notify_all()
                received(data)

            connection.dataReceived = counting
            return connection

        factory.buildProtocol = build_counting

    def wait_for(self, total: int) -> None:
        """Block (in the client's thread) until the server has read ``total`` bytes in all."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.total >= total, self.LIMIT):
                raise AssertionError(f"the server read {self.total} of {total} bytes")
