"""
Internet access for the car as a value-added service: ServiceID 3
(InternetAccess), category Internet.

ISO 15118-2 (Table 107, read the same way by EVerest's Iso15118InternetVas
module) defines its parameter sets, each with a ``Protocol`` string and a
``Port`` int parameter:

====  ========  ====
set   Protocol  Port
====  ========  ====
1     ftp       20
2     ftp       21
3     http      80
4     https     443
====  ========  ====

:class:`InternetAccess` offers the sets of the protocols it is configured
with.  What "giving the car internet access" means on a given charger
(forwarding, NAT, a DHCP/RA daemon on the PLC interface, opening the chosen
ports) is the integrator's: the provider hands the EV's choice to an
``on_selected`` callable, and :class:`SetupProgram` is one that runs a
program (as EVerest's module runs its ``vas-internet-setup.sh``).  The
interface has no end-of-session call, so tearing the access down again
belongs to whatever watches the session (EvseManager's session events, the
``dlink_*`` vars).

The drop-in :mod:`evsev2g.plugins.evsev2g_vas` builds one from environment
variables (:meth:`InternetAccess.from_environment`); without them it offers
nothing: a charger should not announce internet access it cannot give.

ISO 15118-2 offers value-added services over TLS only; the state machine
applies that rule, not this provider.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Callable, Mapping

from twisted.logger import Logger
from twisted.plugin import IPlugin
from zope.interface import implementer

from evsev2g.errors import ConfigError
from evsev2g.interfaces import IValueAddedService

__all__ = [
    "INTERNET_ACCESS_SERVICE_ID",
    "PROTOCOLS",
    "InternetSelection",
    "InternetAccess",
    "SetupProgram",
    "ENVIRONMENT_KEYS",
]

#: ServiceID of InternetAccess (ISO 15118-2 Table 105).
INTERNET_ACCESS_SERVICE_ID = 3

#: Protocol → its (ParameterSetID, port) pairs (ISO 15118-2 Table 107).
PROTOCOLS: dict[str, tuple[tuple[int, int], ...]] = {
    "ftp": ((1, 20), (2, 21)),
    "http": ((3, 80),),
    "https": ((4, 443),),
}

#: The environment variables :meth:`InternetAccess.from_environment` reads.
ENVIRONMENT_KEYS = {
    "protocols": "EVSEV2G_INTERNET_ACCESS",
    "scope": "EVSEV2G_INTERNET_ACCESS_SCOPE",
    "free": "EVSEV2G_INTERNET_ACCESS_FREE",
    "setup": "EVSEV2G_INTERNET_ACCESS_SETUP",
}


def _split(command: str) -> list[str]:
    """A command line in shell quoting, split into its words (:mod:`shlex` loads only when one is configured)."""
    import shlex

    return shlex.split(command)


@dataclass(frozen=True)
class InternetSelection:
    """
    What the EV chose in one PaymentServiceSelectionReq.

    :ivar parameter_set_ids: the chosen sets this provider offers.
    :ivar protocols: their protocols (``"http"`` …), in set order, once each.
    :ivar ports: their TCP ports, in set order.
    """

    parameter_set_ids: tuple[int, ...]
    protocols: tuple[str, ...]
    ports: tuple[int, ...]


@implementer(IPlugin, IValueAddedService)
class InternetAccess:
    """
    ServiceID 3 with the parameter sets of the configured protocols.

    :param protocols: any of ``"ftp"``, ``"http"``, ``"https"``; none means
        nothing is offered.
    :param free_service: FreeService in ServiceDiscoveryRes.
    :param service_scope: ServiceScope (≤ 64 characters) or ``None``.
    :param on_selected: called with an :class:`InternetSelection` when the
        EV selects the service with at least one known set; may return a
        ``Deferred`` (a failure is logged by the registry).
    :param name: the provider's name in the log.
    :raises ConfigError: for an unknown protocol or a scope too long.
    :ivar selections: every :class:`InternetSelection` made, oldest first.
    """

    log = Logger()

    def __init__(
        self,
        protocols=("http", "https"),
        free_service: bool = True,
        service_scope: str | None = None,
        on_selected: Callable[[InternetSelection], object] | None = None,
        name: str = "internet-access",
    ):
        unknown = [each for each in protocols if each not in PROTOCOLS]
        if unknown:
            raise ConfigError("internet access protocols", f"{', '.join(map(repr, unknown))} unknown; use {', '.join(PROTOCOLS)}")
        if service_scope is not None and not 1 <= len(service_scope) <= 64:
            raise ConfigError("internet access scope", "1 to 64 characters")
        self.protocols = tuple(each for each in PROTOCOLS if each in protocols)
        self.free_service = free_service
        self.service_scope = service_scope
        self.on_selected = on_selected
        self.name = name
        self.selections: list[InternetSelection] = []

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, reactor=None) -> "InternetAccess":
        """
        One configured by environment variables (the drop-in's way, since
        plugins have no configuration keys of their own):

        - ``EVSEV2G_INTERNET_ACCESS``: protocols, comma-separated
          (``http,https``); unset or empty offers nothing.
        - ``EVSEV2G_INTERNET_ACCESS_SCOPE``: ServiceScope.
        - ``EVSEV2G_INTERNET_ACCESS_FREE``: ``true`` (default) or ``false``.
        - ``EVSEV2G_INTERNET_ACCESS_SETUP``: a program (with arguments, shell
          quoting) run by :class:`SetupProgram` on selection.

        :param environ: the variables (default ``os.environ``).
        :param reactor: for :class:`SetupProgram`; the global reactor when
            ``None`` (looked up only when the program runs).
        :raises ConfigError: naming the variable that is wrong.
        """
        environ = os.environ if environ is None else environ
        keys = ENVIRONMENT_KEYS
        protocols = [each.strip().lower() for each in environ.get(keys["protocols"], "").split(",") if each.strip()]
        free = environ.get(keys["free"], "true").strip().lower()
        if free not in ("true", "false"):
            raise ConfigError(keys["free"], f"{free!r} is not true or false")
        setup = environ.get(keys["setup"], "").strip()
        try:
            return cls(
                protocols,
                free_service=free == "true",
                service_scope=environ.get(keys["scope"]) or None,
                on_selected=SetupProgram(_split(setup), reactor) if setup else None,
            )
        except ConfigError as error:
            key = {"protocols": keys["protocols"], "scope": keys["scope"], "setup": keys["setup"]}[error.key.rsplit(" ", 1)[-1]]
            raise ConfigError(key, error.problem) from None

    def offered_services(self) -> list[dict]:
        """
        :returns: the InternetAccess service, or nothing when no protocol
            is configured.
        """
        if not self.protocols:
            return []
        service = {
            "service_id": INTERNET_ACCESS_SERVICE_ID,
            "service_name": "InternetAccess",
            "service_category": "Internet",
            "free_service": self.free_service,
        }
        if self.service_scope is not None:
            service["service_scope"] = self.service_scope
        return [service]

    def _sets(self) -> dict[int, tuple[str, int]]:
        return {set_id: (protocol, port) for protocol in self.protocols for set_id, port in PROTOCOLS[protocol]}

    def get_service_parameters(self, service_id: int) -> list[dict]:
        """
        :param service_id: must be 3.
        :returns: one ``ParameterSet`` per configured set: ``Protocol``
            (``finite_string``) and ``Port`` (``int_value``).
        :raises KeyError: for another ServiceID.
        """
        if service_id != INTERNET_ACCESS_SERVICE_ID:
            raise KeyError(f"internet access is service {INTERNET_ACCESS_SERVICE_ID}, not {service_id}")
        return [
            {
                "set_id": set_id,
                "parameters": [
                    {"name": "Protocol", "value": {"finite_string": protocol}},
                    {"name": "Port", "value": {"int_value": port}},
                ],
            }
            for set_id, (protocol, port) in sorted(self._sets().items())
        ]

    def selected_services(self, selected_services: list[dict]):
        """
        Record the EV's choice and hand it to ``on_selected``.

        Sets this provider does not offer (``0``: the EV named none) are
        logged and ignored; if none is left, ``on_selected`` is not called.

        :param selected_services: EVerest ``SelectedService`` dicts.
        :returns: what ``on_selected`` returns, or ``None``.
        """
        offered = self._sets()
        chosen = []
        for entry in selected_services:
            if entry["service_id"] != INTERNET_ACCESS_SERVICE_ID:
                continue
            set_id = entry["parameter_set_id"]
            if set_id in offered:
                chosen.append(set_id)
            else:
                self.log.warn("{provider}: the EV chose parameter set {set_id}, which is not offered; ignored", provider=self.name, set_id=set_id)
        if not chosen:
            return None
        chosen = sorted(set(chosen))
        protocols = tuple(dict.fromkeys(offered[set_id][0] for set_id in chosen))
        selection = InternetSelection(tuple(chosen), protocols, tuple(offered[set_id][1] for set_id in chosen))
        self.selections.append(selection)
        self.log.info("{provider}: the EV chose {protocols} (ports {ports})", provider=self.name, protocols=", ".join(protocols), ports=", ".join(map(str, selection.ports)))
        return self.on_selected(selection) if self.on_selected is not None else None


class SetupProgram:
    """
    An ``on_selected`` that runs a program: ``program [args…] start PORT…``.

    :param command: the program and its first arguments.
    :raises ConfigError: the program is missing or not executable.
    :param reactor: ``IReactorProcess``; the global reactor when ``None``
        (looked up only when the program runs).
    """

    def __init__(self, command: list[str], reactor=None):
        if not command:
            raise ConfigError("internet access setup", "an empty command")
        if shutil.which(command[0]) is None:
            raise ConfigError("internet access setup", f"{command[0]!r} is not an executable program")
        self.command = list(command)
        self.reactor = reactor

    def __call__(self, selection: InternetSelection):
        """
        :returns: a ``Deferred`` firing ``None`` when the program exits 0,
            failing with ``RuntimeError`` (exit code and output) otherwise.
        """
        from twisted.internet.utils import getProcessOutputAndValue

        reactor = self.reactor
        if reactor is None:
            from twisted.internet import reactor
        program, *arguments = self.command
        arguments += ["start", *map(str, selection.ports)]
        ran = getProcessOutputAndValue(program, arguments, env=dict(os.environ), reactor=reactor)

        def exited(result) -> None:
            out, err, code = result
            if code != 0:
                text = (err or out).decode(errors="replace").strip()[-200:]
                raise RuntimeError(f"{program} exited with {code}: {text}")

        return ran.addCallback(exited)
