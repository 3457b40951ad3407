"""
supportedAppProtocol negotiation ([V2G2-167]…[V2G2-172]).

The EV lists up to 20 protocols (namespace, major/minor version, SchemaID,
Priority 1 = most wanted).  The SECC chooses, among the protocol-version
plugins that are registered, enabled by configuration (``supported_DIN70121``,
``supported_ISO15118_2``), allowed by the charger
(``update_supported_app_protocols``) and usable with it (DIN needs a DC
charger), the EV entry with the lowest Priority number whose namespace and
major version match; on equal priority the entry listed first wins.  It
echoes that entry's SchemaID.  Namespaces it does not know are ignored
(Tesla offers ``urn:tesla:din:2018:MsgDef`` at Priority 1).

Plugins are found in :mod:`evsev2g.plugins` by
:func:`evsev2g.plugin_loader.load_plugins` and checked with
``verifyObject``; a broken one is logged by name and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from twisted.logger import Logger

from evsev2g.exi.message import Message
from evsev2g.interfaces import IProtocolVersion
from evsev2g.plugin_loader import load_plugins

__all__ = [
    "OK",
    "OK_MINOR_DEVIATION",
    "FAILED",
    "Negotiation",
    "negotiate",
    "load_protocol_versions",
    "configured_versions",
    "enabled_versions",
]

OK = "OK_SuccessfulNegotiation"
OK_MINOR_DEVIATION = "OK_SuccessfulNegotiationWithMinorDeviation"
FAILED = "Failed_NoNegotiation"

_log = Logger()


@dataclass
class Negotiation:
    """
    The outcome of one handshake.

    :ivar response: the ``supportedAppProtocolRes`` message.
    :ivar protocol: the chosen :class:`IProtocolVersion`, or ``None``.
    :ivar offered: the EV's entries as EVerest ``AppProtocol`` dicts, in
        the EV's order (the ``ev_app_protocol`` var).
    """

    response: Message
    protocol: object | None
    offered: list[dict]

    @property
    def failed(self) -> bool:
        """No protocol was agreed: send the response and close ([V2G2-172])."""
        return self.protocol is None


def negotiate(request: Message, versions: Iterable[object], refuse: bool = False) -> Negotiation:
    """
    Answer a ``supportedAppProtocolReq``.

    :param request: the decoded request.
    :param versions: the usable :class:`IProtocolVersion` plugins.
    :param refuse: answer Failed_NoNegotiation whatever the EV offers (the
        charger is stopping or in emergency shutdown, as EvseV2G does).
    :returns: a :class:`Negotiation`.
    """
    entries = request.getlist("AppProtocol")
    offered = [
        {
            "protocol_namespace": entry.ProtocolNamespace,
            "version_number_major": entry.VersionNumberMajor,
            "version_number_minor": entry.VersionNumberMinor,
            "schema_id": entry.SchemaID,
            "priority": entry.Priority,
        }
        for entry in entries
    ]
    by_namespace: dict[str, list[object]] = {}
    for version in versions:
        by_namespace.setdefault(version.namespace, []).append(version)
    best = None
    if not refuse:
        for index, entry in enumerate(entries):
            for version in by_namespace.get(entry.ProtocolNamespace, ()):
                if version.version_major != entry.VersionNumberMajor:
                    continue
                key = (entry.Priority, index)
                if best is None or key < best[0]:
                    best = (key, entry, version)
    if best is None:
        response = Message("supportedAppProtocolRes", ResponseCode=FAILED)
        return Negotiation(response, None, offered)
    _, entry, version = best
    code = OK if entry.VersionNumberMinor == version.version_minor else OK_MINOR_DEVIATION
    response = Message("supportedAppProtocolRes", ResponseCode=code, SchemaID=entry.SchemaID)
    return Negotiation(response, version, offered)


def load_protocol_versions(package=None, log: Logger = _log) -> list[object]:
    """
    Every protocol-version plugin in the drop-in package that passes
    ``verifyObject``; the others are logged by name and left out.  Two
    plugins for the same namespace and major version: the first found wins,
    the other is logged.

    :param package: the plugin package (default :mod:`evsev2g.plugins`).
    :param log: where to report broken plugins.
    :returns: a ``list`` of :class:`IProtocolVersion` providers.
    """
    return load_plugins(
        IProtocolVersion, "protocol", package, key=lambda plugin: (plugin.namespace, plugin.version_major), log=log
    )


def configured_versions(versions: Iterable[object], config_flags: dict) -> list[object]:
    """
    The plugins the configuration enables, whatever a charger restricts later.

    :param versions: the loaded plugins.
    :param config_flags: configuration flags by key (``{"supported_DIN70121":
        True, …}``); a plugin whose ``config_key`` is ``None`` or missing here
        is enabled.
    :returns: the subset, in the given order.
    """
    return [v for v in versions if v.config_key is None or config_flags.get(v.config_key, True)]


def enabled_versions(versions: Iterable[object], config_flags: dict, charger, secure: bool = False) -> list[object]:
    """
    The plugins this session may negotiate: those of
    :func:`configured_versions` that the charger allows and can serve, and
    over TLS only those that run over TLS (DIN SPEC 70121 never does,
    [V2G-DC-618]).

    :param versions: the loaded plugins.
    :param config_flags: configuration flags by key, as for
        :func:`configured_versions`.
    :param charger: the session's ``ICharger`` (``update_supported_app_protocols``
        and what it can serve).
    :param secure: the connection is TLS.
    :returns: the subset, in the given order.
    """
    allowed = charger.supported_app_protocols
    chosen = []
    for version in configured_versions(versions, config_flags):
        if allowed is not None and version.name not in allowed:
            continue
        if not version.usable_with(charger):
            continue
        if secure and not version.allows_tls:
            continue
        chosen.append(version)
    return chosen
