"""
The EVerest backend (``backend: everest``): evsev2g as an EVerest module in
place of EvseV2G.

It provides ``charger`` (ISO15118_charger) and ``extensions``
(iso15118_extensions) and requires ``security`` (evse_security) and
``iso15118_vas`` (ISO15118_vas, 0…128), with EvseV2G's implementation ids,
so an existing EVerest config only changes the module name.

- **Commands** from EvseManager and OCPP go to the one
  :class:`~evsev2g.evse.EVSEState` of this module instance
  (:meth:`~evsev2g.evse.EVSEState.command`): EVSE-level ones persist across
  sessions, session ones reach the session holding the EVSE (or wait for
  the next, see :mod:`evsev2g.evse`).  Every command is answered: its
  result, or ``SchemaValidationError`` naming the argument that does not
  fit the interface, or ``HandlerException``.
- **Vars** of every session's charger are published as EVerest vars on
  ``charger`` or ``extensions``.  A session that a newer one superseded
  publishes no ``dlink_*`` / ``hlc_session_failed``: the data link belongs
  to the newer session.
- ``supported_app_protocols_secc`` goes out at global ready, again at
  EvseManager's first ``setup`` and at each ``dlink_ready(true)``
  (EvseManager subscribes in its own ready hook and could have missed the
  first), and after a reconnection to the broker; active errors are raised
  again at that ``setup`` and after a reconnection.  Vars and errors
  published before global ready wait for it
  (:class:`~evsev2g.everest.module.EverestModule`).
- ``dlink_ready(true)`` opens SDP (:attr:`link_ready`) and starts
  V2G_SECC_CommunicationSetup_Performance_Time ([V2G2-714]); no V2G
  connection by then publishes ``dlink_error`` ([V2G2-716]) so that
  EvseManager restarts the data link.  ``dlink_ready(false)`` stops it (and
  drops the running connection, :mod:`evsev2g.session`).
- ``generic/CommunicationFault`` is raised on ``charger`` while the V2G
  servers cannot start and cleared once they run.
- Telemetry (category ``V2G``) when the manager enables it
  (:mod:`evsev2g.everest.telemetry`), de-duplicated with
  ``publish_telemetry_only_on_change``.
- EvseSecurity over MQTT is the security provider
  (:class:`evsev2g.security.everest.EverestSecurity`); each ISO15118_vas
  module is a value-added-service provider
  (:class:`evsev2g.everest.vas.EverestVAS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from evsev2g.charger_spec import COMMANDS, VARS
from evsev2g.everest.factory import EverestBackendFactory
from evsev2g.evse import EVSEState
from evsev2g.interfaces import IBackendRuntime, ISingleEVSEBackend

if TYPE_CHECKING:
    from evsev2g.everest.module import EverestModule, ModuleSettings

__all__ = ["EverestBackend", "EverestBackendFactory", "EXTENSION_COMMANDS", "EXTENSION_VARS", "module_settings"]

#: iso15118_extensions' commands and vars; everything else is ISO15118_charger's.
EXTENSION_COMMANDS = frozenset({"set_get_certificate_response"})
EXTENSION_VARS = frozenset({"iso15118_certificate_request", "charging_needs", "ev_info", "service_renegotiation_supported"})

#: Vars of a session's end that a superseded session must not publish.
_END_VARS = frozenset({"dlink_error", "dlink_terminate", "dlink_pause", "hlc_session_failed"})

COMMUNICATION_FAULT = "generic/CommunicationFault"
_FAULT_DESCRIPTION = "Communication with the underlying hardware or device has a fault"


#: Exit status of ``twistd`` (backend ``everest``) when the manager's config
#: never came or was refused; ``python -m evsev2g.everest`` exits 1 too.
EXIT_NO_CONFIG = 1


def _exit_with(status: int) -> None:
    """End the process with ``status`` once the reactor has shut down (services stopped, log lines written)."""
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def module_settings(config) -> ModuleSettings:
    """:returns: the :class:`ModuleSettings` of the configuration's ``everest`` group."""
    # MQTT (paho) is imported when this backend is chosen, not when the plugin is found
    from evsev2g.everest.module import ModuleSettings
    from evsev2g.everest.mqtt import BrokerAddress

    e = config.everest
    path = None if e.mqtt_broker_socket_path in ("", "-") else e.mqtt_broker_socket_path
    broker = BrokerAddress(e.mqtt_broker_host, e.mqtt_broker_port, path)
    return ModuleSettings(module_id=e.module_id, prefix=e.mqtt_everest_prefix, broker=broker, generation=e.generation)


@implementer(ISingleEVSEBackend, IBackendRuntime)
class EverestBackend:
    """
    The bridge between the sessions and EVerest.

    :param config: the configuration.
    :param reactor: the reactor.
    :param module: an :class:`EverestModule` whose config already arrived
        (``python -m evsev2g.everest``), or ``None`` to make one from the
        ``everest`` group and ask the manager for the config (``twistd``).
    :ivar evse: the one EVSE of this module instance.
    :ivar vas_providers: one :class:`~evsev2g.everest.vas.EverestVAS` per
        connected ISO15118_vas module.
    """

    log = Logger()

    def __init__(self, config, reactor, module: EverestModule | None = None) -> None:
        from evsev2g.everest.module import EverestModule
        from evsev2g.security.everest import EverestSecurity

        self.config = config
        self.reactor = reactor
        self.module = module if module is not None else EverestModule(reactor, module_settings(config))
        self.evse = EVSEState(reactor, self.module.settings.module_id)
        self.security = EverestSecurity(self.module, reactor)
        self.backend = self
        self.vas_providers: list = []
        self.registry = None
        self.telemetry = None
        self.chargers: dict = {}
        self.service = MultiService()
        self.module.mqtt.setServiceParent(self.service)
        self._setup_timer = None
        self._ready: Deferred | None = None
        self._evse_seen = False
        self._app_protocols: list[str] | None = None
        self.evse.observe(self._evse_command)
        self.module.on_reconnected(self._republish)

    @property
    def link_ready(self) -> bool:
        """SDP answers while EvseManager's data link is up (``dlink_ready``)."""
        return bool(self.evse.link_ready)

    # -- IBackendRuntime ------------------------------------------------------------

    def when_ready(self) -> Deferred:
        """
        Config (unless given), subscriptions, ModuleReady, GlobalReady, the
        first certificates: then the servers may start.
        """
        if self._ready is None:
            if self.module.module_config is not None:
                start = succeed(self.module.module_config)
            else:
                start = self.module.request_config()
            self._ready = start.addCallback(self._configured)
            self._ready.addErrback(self._config_failed)
        return self._ready

    def _config_failed(self, failure):
        self.log.critical("cannot run as an EVerest module: {problem}", problem=failure.getErrorMessage())
        if self.reactor.running:
            # twistd exits 0 once its reactor stops: a module that never got
            # its config must not look to the manager like a clean shutdown.
            self.reactor.addSystemEventTrigger("after", "shutdown", _exit_with, EXIT_NO_CONFIG)
            self.reactor.stop()
        return failure

    def _configured(self, module_config):
        from evsev2g.everest.vas import EverestVAS

        module = self.module
        module.provide("charger", self._command, [c for c in COMMANDS if c not in EXTENSION_COMMANDS])
        module.provide("extensions", self._command, sorted(EXTENSION_COMMANDS))
        security = module.connections("security")
        if not security:
            self.log.error(
                "EVerest config: requirement 'security' (evse_security) has no connection; "
                "TLS runs only with certificates from EvseSecurity, so only TCP is served"
            )
        else:
            self.security.connect(*security[0])
        for module_id, impl in module.connections("iso15118_vas"):
            provider = EverestVAS(module, module_id, impl, self._vas_changed)
            self.vas_providers.append(provider)
            if self.registry is not None:
                self.registry.add_provider(provider)
        module.on_shutdown(self._shutdown)
        if module_config.get("telemetry_enabled") and module.telemetry_id is not None:
            from evsev2g.everest.telemetry import Telemetry

            config = self.config
            self.telemetry = Telemetry(module.mqtt, self.reactor, module.telemetry_id, module.telemetry_prefix,
                                       module.generation.name, config.publish_telemetry_only_on_change,
                                       config.tcp_port, config.tls_security != "prohibit")
        ready = module.signal_ready()
        ready.addCallback(self._global_ready)
        return ready

    def _global_ready(self, _):
        self._publish_app_protocols()
        return self.security.refresh().addErrback(lambda f: None)

    def use_services(self, registry) -> None:
        """The sessions' registry: each ISO15118_vas module joins it as a provider."""
        self.registry = registry
        for provider in self.vas_providers:
            registry.add_provider(provider)

    def _vas_changed(self, provider) -> None:
        if self.registry is not None:
            self.registry.refresh(provider)

    def servers_failed(self, problem: str) -> None:
        """Raise ``generic/CommunicationFault`` on ``charger`` (once)."""
        self.module.raise_error("charger", COMMUNICATION_FAULT, problem, _FAULT_DESCRIPTION)

    def servers_running(self) -> None:
        """Clear ``generic/CommunicationFault``."""
        self.module.clear_error("charger", COMMUNICATION_FAULT)

    def _shutdown(self) -> None:
        if self.reactor.running:
            self.reactor.stop()

    # -- commands ----------------------------------------------------------------------

    def _command(self, name: str, args: dict):
        result = self.evse.command(name, **args)
        if name == "update_supported_app_protocols":
            return bool(result)
        return None

    def _evse_command(self, name: str, arguments: dict) -> None:
        if name == "setup" and not self._evse_seen:
            # EvseManager is up and has subscribed by now: what it may have missed.
            self._evse_seen = True
            self._publish_app_protocols()
            self.module.republish_errors()
        if name == "dlink_ready":
            self._stop_setup_timer()
            if arguments["value"]:
                self._publish_app_protocols()
                seconds = self.config.timers.communication_setup_ms / 1000.0
                self._setup_timer = self.reactor.callLater(seconds, self._setup_expired, seconds)

    def _stop_setup_timer(self) -> None:
        if self._setup_timer is not None and self._setup_timer.active():
            self._setup_timer.cancel()
        self._setup_timer = None

    def _setup_expired(self, seconds: float) -> None:
        self._setup_timer = None
        self.log.warn(
            "no V2G connection {seconds:g} s after dlink_ready (V2G_SECC_CommunicationSetup_Performance_Time): dlink_error",
            seconds=seconds,
        )
        self.module.publish_var("charger", "dlink_error", None)

    # -- sessions (IChargerBackend) ----------------------------------------------------

    def session_started(self, charger) -> None:
        """A V2G connection: the setup timer is met; forward the session's vars."""
        self._stop_setup_timer()
        self.chargers[charger] = charger.subscribe(lambda name, payload: self._var(charger, name, payload))
        if self.telemetry is not None:
            self.telemetry.session_started()

    def session_ended(self, charger) -> None:
        """Stop forwarding that session's vars."""
        unsubscribe = self.chargers.pop(charger, None)
        if unsubscribe is not None:
            unsubscribe()
        if self.telemetry is not None and not charger.superseded:
            self.telemetry.session_ended()

    def _var(self, charger, name: str, payload) -> None:
        if charger.superseded and name in _END_VARS:
            self.log.info("{charger}: {var} not published: a newer session holds the EVSE", charger=charger, var=name)
            return
        impl = "extensions" if name in EXTENSION_VARS else "charger"
        self.module.publish_var(impl, name, payload)
        if self.telemetry is not None and not charger.superseded:
            self.telemetry.var(name, payload)

    # -- what EvseManager needs again ---------------------------------------------------

    def _publish_app_protocols(self) -> None:
        from evsev2g.protocols.apphandshake import configured_versions, load_protocol_versions

        if self._app_protocols is None:
            flags = {"supported_DIN70121": self.config.supported_DIN70121, "supported_ISO15118_2": self.config.supported_ISO15118_2}
            self._app_protocols = [v.name for v in configured_versions(load_protocol_versions(), flags)]
        payload = {"app_protocols": list(self._app_protocols)}
        VARS["supported_app_protocols_secc"](payload, "supported_app_protocols_secc")
        self.module.publish_var("charger", "supported_app_protocols_secc", payload)

    def _republish(self) -> None:
        if self.module.global_ready:
            self._publish_app_protocols()
