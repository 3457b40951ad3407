"""
Charger backends: found as plugins, chosen by the ``backend`` key, and
assembled with the V2G servers into one service.

A backend plugin (:class:`~evsev2g.interfaces.IChargerBackendFactory`) is
a module-level object in the :mod:`evsev2g.plugins` drop-in package;
:mod:`evsev2g.plugins.evsev2g_backends` ships ``simulator``
(:class:`SimulatorBackendFactory`, below) and ``everest``
(:class:`evsev2g.everest.factory.EverestBackendFactory`, which imports the
bridge only when chosen).  Its ``make``
returns an :class:`~evsev2g.interfaces.IBackendRuntime`: the backend the
sessions talk to, the security provider it brings (or ``None`` for the
files under ``certs_dir``) and a service of its own (or ``None``).

:func:`assemble` builds the service tree.  Without a backend service the
V2G servers are built at once and a start-up failure ends the process
with one line (as before).  With one (the EVerest module), the servers
start once the backend is ready; a failure (no such device yet, a port
taken, TLS forced without a certificate) is reported to the backend, which
raises ``generic/CommunicationFault``, and retried every second until the
servers run, when it is cleared.
"""

from __future__ import annotations

from twisted.application.service import MultiService, Service
from twisted.internet.defer import succeed
from twisted.logger import Logger
from twisted.plugin import IPlugin
from zope.interface import implementer

from evsev2g import session as session_module
from evsev2g.errors import ConfigError, StartupError
from evsev2g.interfaces import IBackendRuntime, IChargerBackendFactory
from evsev2g.plugin_loader import load_plugins

__all__ = [
    "backend_factories",
    "backend_names",
    "make_runtime",
    "retries_servers",
    "assemble",
    "ServerStarter",
    "SimulatorBackendFactory",
    "SimulatorRuntime",
    "STARTUP_RETRY",
]

log = Logger()

#: Seconds between attempts to start the V2G servers (EvseV2G retries each second).
STARTUP_RETRY = 1.0


def backend_factories() -> dict:
    """:returns: ``{name: factory}`` of every backend plugin found (first of a name wins)."""
    return {f.name: f for f in load_plugins(IChargerBackendFactory, "backend", key=lambda f: f.name)}


def backend_names() -> list[str]:
    """:returns: the names the ``backend`` key accepts on this installation."""
    return sorted(backend_factories())


def retries_servers(config) -> bool:
    """:returns: whether the backend ``config.backend`` names starts (and retries) the V2G servers itself."""
    factory = backend_factories().get(config.backend)
    return bool(getattr(factory, "retries_servers", False))


def make_runtime(config, reactor) -> IBackendRuntime:
    """
    :param config: the checked :class:`evsev2g.config.Config`.
    :param reactor: the reactor.
    :returns: the runtime of the backend ``config.backend`` names.
    :raises ConfigError: no plugin has that name (it went away since the
        configuration was checked).
    """
    factories = backend_factories()
    try:
        factory = factories[config.backend]
    except KeyError:
        raise ConfigError("backend", f"no backend plugin named {config.backend!r} (found: {', '.join(sorted(factories)) or 'none'})") from None
    return factory.make(config, reactor)


def assemble(config, reactor, runtime: IBackendRuntime, serving=None):
    """
    The whole service: the backend's own service and the V2G servers.

    :param config: the configuration.
    :param reactor: the reactor.
    :param runtime: the backend's runtime.
    :param serving: the interface and address (resolved from ``device``
        when ``None``, at each start attempt for a backend with a service).
    :returns: an ``IService``: the :class:`~evsev2g.service.SECCService`
        itself for a backend without a service.
    :raises StartupError: (no backend service) the servers cannot be built.
    """
    from evsev2g.service import build_service

    sessions = session_module.build_session_factory(config, reactor, backend=runtime.backend, security=runtime.security)
    services = getattr(sessions, "services", None)
    if services is not None:
        runtime.use_services(services)
    if runtime.service is None:
        if serving is None:
            serving = _resolve(config)
        return build_service(config, serving, reactor, sessions, security=runtime.security)
    top = MultiService()
    runtime.service.setServiceParent(top)
    ServerStarter(config, reactor, sessions, runtime, serving).setServiceParent(top)
    return top


def _resolve(config):
    from evsev2g.netif import interface_names, read_addresses, resolve_device

    return resolve_device(config.device, read_addresses(), interface_names())


class ServerStarter(Service):
    """
    Starts the V2G servers once the backend is ready, retrying each
    :data:`STARTUP_RETRY` seconds while they cannot start, and tells the
    backend how it went.

    :ivar secc: the running :class:`~evsev2g.service.SECCService`, or ``None``.
    """

    name = "v2g-servers"

    def __init__(self, config, reactor, sessions, runtime: IBackendRuntime, serving=None) -> None:
        self.config, self.reactor, self.sessions, self.runtime = config, reactor, sessions, runtime
        self.serving = serving
        self.secc = None
        self._retry = None
        self._failing: str | None = None

    def startService(self) -> None:
        super().startService()
        self.runtime.when_ready().addCallback(lambda _: self._attempt()).addErrback(
            lambda failure: log.failure("the backend never became ready", failure)
        )

    def _attempt(self) -> None:
        self._retry = None
        if not self.running or self.secc is not None:
            return
        from evsev2g.service import build_service

        secc = None
        try:
            serving = self.serving if self.serving is not None else _resolve(self.config)
            secc = build_service(self.config, serving, self.reactor, self.sessions, security=self.runtime.security)
            secc.privilegedStartService()
            secc.startService()
        except (ConfigError, StartupError, SystemExit, OSError) as error:
            problem = str(error) if not isinstance(error, SystemExit) else "the servers could not open their ports (see the log above)"
            if secc is not None and secc.running:
                secc.stopService()
            if problem != self._failing:
                log.error("V2G servers cannot start: {problem}; retrying every {seconds:g} s", problem=problem, seconds=STARTUP_RETRY)
            self._failing = problem
            self.runtime.servers_failed(problem)
            self._retry = self.reactor.callLater(STARTUP_RETRY, self._attempt)
            return
        self.secc = secc
        if self._failing is not None:
            log.info("V2G servers started after all")
        self._failing = None
        self.runtime.servers_running()

    def stopService(self):
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        secc, self.secc = self.secc, None
        if secc is not None:
            return secc.stopService()
        return None


@implementer(IBackendRuntime)
class SimulatorRuntime:
    """The simulator: no service of its own, certificates from ``certs_dir``, ready at once."""

    security = None
    service = None

    def __init__(self, backend) -> None:
        self.backend = backend

    def when_ready(self):
        return succeed(None)

    def servers_failed(self, problem: str) -> None:
        log.error("V2G servers cannot start: {problem}", problem=problem)

    def servers_running(self) -> None:
        pass

    def use_services(self, registry) -> None:
        """The simulator brings no value-added services of its own."""


@implementer(IChargerBackendFactory, IPlugin)
class SimulatorBackendFactory:
    """``backend: simulator``: the embedded simulated charger (:mod:`evsev2g.sim.charger`)."""

    name = "simulator"
    description = "the embedded simulated charger: plays EvseManager and a DC power supply (demos, tests, labs)"
    retries_servers = False

    def make(self, config, reactor) -> SimulatorRuntime:
        from evsev2g.sim.charger import SimulatedCharger, SimulatorSettings

        settings = SimulatorSettings.from_config(config.simulator)
        if config.simulator.pnc:
            from evsev2g.sim.pnc_charger import PnCSimulatedCharger

            backend = PnCSimulatedCharger(
                reactor, settings, config.certs_dir, certificate_delay=config.simulator.certificate_delay_ms / 1000.0
            )
        else:
            backend = SimulatedCharger(reactor, settings)
        return SimulatorRuntime(backend)
