"""
An SECC with the simulated charger in this process, for the demo, the
integration tests and the bench.

:func:`start_secc` builds the real service tree (transport, sessions,
state machines, simulator) from a configuration, wired as ``twistd
evsev2g``'s ``makeService`` wires it, and starts it; the caller stops it
with ``stopService()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from evsev2g.config import load_config
from evsev2g.netif import interface_names, read_addresses, resolve_device
from evsev2g.service import build_service
from evsev2g.session import build_session_factory

__all__ = ["RunningSECC", "start_secc", "LOOPBACK_OVERRIDES"]

#: Overrides that make an SECC serve plain TCP on ::1, any free port, no SDP.
LOOPBACK_OVERRIDES = (
    "device=lo",
    "tls_security=prohibit",
    "enable_sdp_server=false",
    "tcp_port=0",
)


@dataclass
class RunningSECC:
    """
    A started SECC.

    :ivar service: the top-level service (call ``stopService()``).
    :ivar sessions: the :class:`~evsev2g.session.SessionFactory`.
    :ivar host: the address it serves on.
    :ivar port: its TCP port.
    """

    service: object
    sessions: object
    host: str
    port: int


def start_secc(reactor, overrides=(), config_file=None, load_codec=None, services=None) -> RunningSECC:
    """
    Build and start an SECC.

    :param reactor: the reactor.
    :param overrides: ``KEY=VALUE`` settings applied after
        :data:`LOOPBACK_OVERRIDES` (so they win).
    :param config_file: a YAML configuration file, or ``None``.
    :param load_codec: schema name → codec (default: :func:`evsev2g.exi.load_codec`).
    :param services: a value-added-service registry for the sessions
        (:class:`evsev2g.vas.ServiceRegistry`), or ``None`` for the factory's own.
    :returns: the :class:`RunningSECC`.
    """
    config = load_config(config_file, list(LOOPBACK_OVERRIDES) + list(overrides))
    serving = resolve_device(config.device, read_addresses(), interface_names())
    sessions = build_session_factory(config, reactor, load_codec=load_codec)
    if services is not None:
        sessions.services = services
    service = build_service(config, serving, reactor, sessions)
    service.privilegedStartService()
    service.startService()
    port = service.tcp.port_number if service.tcp is not None else service.tls.port_number
    return RunningSECC(service, sessions, serving.host, port)
