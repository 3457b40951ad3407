"""Server-side helpers for real-socket tests: listeners on ::1 and an echoing session."""

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
