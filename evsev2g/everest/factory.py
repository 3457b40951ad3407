"""
The ``everest`` backend plugin: a small factory that imports the EVerest
bridge (:mod:`evsev2g.everest.backend` and what it needs) only when the
``backend`` key chooses it, so a process with another backend never loads it.
"""

from __future__ import annotations

from twisted.plugin import IPlugin
from zope.interface import implementer

from evsev2g.interfaces import IChargerBackendFactory


@implementer(IChargerBackendFactory, IPlugin)
class EverestBackendFactory:
    """``backend: everest``: the EVerest module over MQTT."""

    name = "everest"
    description = "the EVerest module on MQTT in place of EvseV2G: EvseManager, EvseSecurity and ISO15118_vas modules"
    retries_servers = True

    def make(self, config, reactor, module=None):
        """:returns: an :class:`~evsev2g.everest.backend.EverestBackend` (``module``: an ``EverestModule`` to use, for tests)."""
        from evsev2g.everest.backend import EverestBackend

        return EverestBackend(config, reactor, module)
