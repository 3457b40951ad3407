"""
The configuration of ``python -m evsev2g.everest``: what the manager sends
(the ``config_module`` entries of the module, with the manifest's defaults
filled in) becomes one checked :class:`~evsev2g.config.Config` with
``backend: everest`` and the ``everest`` group from the ``EV_*``
environment.  The manifest (:mod:`evsev2g.everest.install`) declares
EvseV2G's keys and the top-level scalar keys of evsev2g listed in
:data:`EXTRA_KEYS`.
"""

from __future__ import annotations

from pathlib import Path

from twisted.logger import Logger

from evsev2g.config import Config
from evsev2g.config_types import build_section, describe, settings_of
from evsev2g.errors import ConfigError

__all__ = ["config_from_manager", "EXTRA_KEYS"]

log = Logger()

#: evsev2g's own keys the manifest offers beside EvseV2G's.
EXTRA_KEYS = ("tcp_port", "tls_port", "sdp_port", "v2gtp_max_payload", "max_connections", "log_v2g_messages")


def config_from_manager(values: dict, settings) -> Config:
    """
    :param values: ``{name: value}`` of the module's configuration
        parameters.
    :param settings: the :class:`~evsev2g.everest.module.ModuleSettings`
        from the environment.
    :returns: the checked configuration.
    :raises evsev2g.errors.ConfigError: a value the key does not allow.
    """
    known = {info.key for info in describe(Config)}
    checks = settings_of(Config)
    raw = {}
    for name, value in values.items():
        if name in known and "." not in name:
            if isinstance(value, str):
                # a manager that sends every value as text: typed by the key, as --set is
                try:
                    value = checks[name].check.from_text(name, value)
                except ConfigError:
                    pass  # build_section names the key and what it allows
            raw[name] = value
        else:
            log.warn("module config key {key!r} is not an evsev2g key; ignored", key=name)
    raw["backend"] = "everest"
    broker = settings.broker
    raw["everest"] = {
        "module_id": settings.module_id,
        "mqtt_everest_prefix": settings.prefix,
        "generation": settings.generation,
        "mqtt_broker_socket_path": broker.path or "-",
        "mqtt_broker_host": broker.host or "localhost",
        "mqtt_broker_port": broker.port,
    }
    return build_section(Config, raw, Path.cwd())
