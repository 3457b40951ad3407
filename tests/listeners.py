"""Server-side helpers for real-socket tests: listeners on ::1 and an echoing session."""

from evsev2g.tls import TLSServerCreator
from evsev2g.transport import ConnectionRegistry, ConnectionSettings, V2GTPListenerService, V2GTPServerFactory

EXI = 0x8001


def echo(session, payload_type, payload):
    """A RecordingSession responder that answers each payload with itself."""
    session.link.send(payload, payload_type)


def start_listener(reactor, serving, sessions, tls: TLSServerCreator | None = None, max_payload=1024, io_timeout=15.0):
    """
    A started TCP (or TLS, given a creator) listener at a free dynamic port.

    :returns: the :class:`V2GTPListenerService`; stop it with ``await service.stopService()``.
    """
    settings = ConnectionSettings(
        secure=tls is not None,
        max_payload=max_payload,
        max_connections=4,
        io_timeout=io_timeout if tls is not None else None,
    )
    factory = V2GTPServerFactory(sessions, settings, ConnectionRegistry(), reactor)
    service = V2GTPListenerService(reactor, serving, 0, factory, tls)
    service.startService()
    return service
