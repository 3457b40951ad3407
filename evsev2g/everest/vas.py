"""
An ISO15118_vas module reached over MQTT, as a value-added-service
provider (:class:`~evsev2g.interfaces.IValueAddedService`): to the session
it is the same thing as a local plugin.

- ``offered_vas`` (var): the services offered now; each publication
  replaces the previous list.
- ``get_service_parameters(service_id)`` (command with a result): the
  parameter sets, a Deferred (the session bounds the wait).
- ``selected_services(selected_services)`` (command): what the EV chose.
"""

from __future__ import annotations

from twisted.logger import Logger
from zope.interface import implementer

from evsev2g.interfaces import IValueAddedService

__all__ = ["EverestVAS", "VAS_CALL_TIMEOUT"]

#: Longest wait for a VAS module's answer (s), inside the EV's 2 s
#: V2G_EVCC_Msg_Timeout for ServiceDetailRes.
VAS_CALL_TIMEOUT = 1.5


@implementer(IValueAddedService)
class EverestVAS:
    """
    :param module: the :class:`~evsev2g.everest.module.EverestModule`.
    :param module_id: the VAS module's id.
    :param impl: its implementation id.
    """

    log = Logger()

    def __init__(self, module, module_id: str, impl: str, changed=None) -> None:
        """
        :param changed: called with this provider after each ``offered_vas``
            (the registry then asks :meth:`offered_services` again).
        """
        self.module, self.module_id, self.impl = module, module_id, impl
        self._changed = changed
        self.name = f"{module_id}.{impl}"
        self._offered: list[dict] = []
        module.subscribe_var(module_id, impl, "offered_vas", self._offered_vas)

    def _offered_vas(self, value) -> None:
        services = value.get("services") if isinstance(value, dict) else None
        if not isinstance(services, list) or not all(isinstance(s, dict) and isinstance(s.get("service_id"), int) for s in services):
            self.log.warn("{vas}: offered_vas with a bad payload ignored: {payload!r}", vas=self.name, payload=value)
            return
        self._offered = [dict(s) for s in services]
        self.log.info("{vas}: offers services {ids}", vas=self.name, ids=[s["service_id"] for s in self._offered])
        if self._changed is not None:
            self._changed(self)

    def offered_services(self) -> list[dict]:
        """The services of the last ``offered_vas``."""
        return [dict(s) for s in self._offered]

    def get_service_parameters(self, service_id: int):
        """The module's ``get_service_parameters``: a Deferred firing with the ParameterSet list."""
        return self.module.call(self.module_id, self.impl, "get_service_parameters", {"service_id": service_id}, timeout=VAS_CALL_TIMEOUT)

    def selected_services(self, selected_services):
        """The module's ``selected_services``: a Deferred firing when it answered."""
        return self.module.call(self.module_id, self.impl, "selected_services", {"selected_services": list(selected_services)}, timeout=VAS_CALL_TIMEOUT)
