"""
``python -m evsev2g.everest``: evsev2g as an EVerest module.

``python -m evsev2g.everest``
    Run the module the way EVerest's manager starts a Python module: from the
    ``EV_*`` environment (``EV_MODULE``, ``EV_MQTT_EVEREST_PREFIX``,
    ``EV_MQTT_BROKER_HOST``/``EV_MQTT_BROKER_PORT`` or
    ``EV_MQTT_BROKER_SOCKET_PATH``); the configuration comes from the
    manager (``config_module`` of the module's entry).  The protocol
    generation is C unless ``EVSEV2G_EVEREST_GENERATION=B`` (the manager's,
    seen in its retained ``module_names``, wins).  Logs go to standard
    output, where the manager collects them, at ``EVSEV2G_LOG_LEVEL``
    (default ``info``).

``python -m evsev2g.everest install MODULES_DIR [--name NAME]``
    Write the module folder ``MODULES_DIR/NAME`` (default ``PyEvseV2G``):
    ``manifest.yaml`` (EvseV2G's provides, requires and config, plus
    evsev2g's own keys) and the ``module.py`` the manager starts, which runs
    this interpreter (the one evsev2g is installed in).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

__all__ = ["main", "settings_from_environment"]


def settings_from_environment(environ=os.environ):
    """
    :param environ: the environment.
    :returns: the :class:`~evsev2g.everest.module.ModuleSettings` it gives.
    :raises SystemExit: ``EV_MODULE`` or the broker address is missing.
    """
    from evsev2g.everest.module import ModuleSettings
    from evsev2g.everest.mqtt import BrokerAddress

    module_id = environ.get("EV_MODULE", "")
    if not module_id:
        raise SystemExit("python -m evsev2g.everest: EV_MODULE is not set (EVerest's manager sets it; see the README)")
    path = environ.get("EV_MQTT_BROKER_SOCKET_PATH", "")
    host, port = environ.get("EV_MQTT_BROKER_HOST", ""), environ.get("EV_MQTT_BROKER_PORT", "")
    host = environ.get("MQTT_SERVER_ADDRESS", host)
    port = environ.get("MQTT_SERVER_PORT", port)
    if path:
        broker = BrokerAddress(path=path)
    elif host and port.isdigit():
        broker = BrokerAddress(host, int(port))
    else:
        raise SystemExit(
            "python -m evsev2g.everest: no broker: set EV_MQTT_BROKER_HOST and EV_MQTT_BROKER_PORT, "
            "or EV_MQTT_BROKER_SOCKET_PATH"
        )
    generation = environ.get("EVSEV2G_EVEREST_GENERATION", "C").upper()
    if generation not in ("B", "C"):
        raise SystemExit(f"python -m evsev2g.everest: EVSEV2G_EVEREST_GENERATION must be B or C, not {generation!r}")
    return ModuleSettings(
        module_id=module_id,
        prefix=environ.get("EV_MQTT_EVEREST_PREFIX", "everest/") or "everest/",
        broker=broker,
        generation=generation,
    )


def run(environ=os.environ) -> int:
    """Run the module until the manager stops it; :returns: the exit status."""
    from twisted.internet import reactor
    from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate, globalLogBeginner, textFileLogObserver

    settings = settings_from_environment(environ)
    level = LogLevel.levelWithName(environ.get("EVSEV2G_LOG_LEVEL", "info"))
    observer = FilteringLogObserver(textFileLogObserver(sys.stdout), [LogLevelFilterPredicate(defaultLogLevel=level)])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)

    from twisted.logger import Logger

    from evsev2g.backends import assemble
    from evsev2g.errors import ConfigError
    from evsev2g.everest.backend import EverestBackend
    from evsev2g.everest.config import config_from_manager
    from evsev2g.everest.module import EverestModule

    log = Logger(namespace="evsev2g.everest")
    module = EverestModule(reactor, settings)
    status = {"code": 0}

    def configured(module_config):
        try:
            config = config_from_manager(module.config_values(), replace(settings, generation=module.generation.name))
        except ConfigError as error:
            log.critical("the module config from the manager is not usable: {error}", error=str(error))
            status["code"] = 1
            reactor.stop()
            return
        top = assemble(config, reactor, EverestBackend(config, reactor, module))
        # The MQTT connection runs already (it brought the config); starting
        # the tree leaves it as it is and stopping the tree stops it.
        top.startService()
        reactor.addSystemEventTrigger("before", "shutdown", top.stopService)

    def no_config(failure):
        log.critical("cannot run as an EVerest module: {problem}", problem=failure.getErrorMessage())
        status["code"] = 1
        reactor.stop()

    module.request_config().addCallbacks(configured, no_config)
    module.mqtt.startService()
    log.info(
        "evsev2g EVerest module {module} (generation {gen}) on broker {broker}, prefix {prefix}",
        module=settings.module_id, gen=settings.generation, broker=str(settings.broker), prefix=settings.prefix,
    )
    reactor.run()
    return status["code"]


def main(argv=None) -> int:
    """The command line; :returns: the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install"]:
        from evsev2g.everest.install import main as install

        return install(argv[1:])
    if argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return run()


if __name__ == "__main__":
    sys.exit(main())
