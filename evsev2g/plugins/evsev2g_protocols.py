"""
The protocol-version plugins shipped with evsev2g: what the app handshake
offers (namespace, version, schema, configuration key, TLS) and the state
machine each one makes per session.
"""

from __future__ import annotations

from twisted.plugin import IPlugin
from zope.interface import implementer

from evsev2g.charger import DC_ENERGY_MODES
from evsev2g.interfaces import IProtocolVersion
from evsev2g.protocols.context import ProtocolContext
from evsev2g.protocols.din70121 import DIN_NAMESPACE, DINStateMachine
from evsev2g.protocols.iso15118_2 import ISO2_NAMESPACE, ISO2StateMachine
from evsev2g.protocols.iso15118_2.services import ENERGY_TRANSFER_MODES
from evsev2g.responses import DIN70121, ISO15118_2

__all__ = ["DIN70121Version", "ISO15118_2Version", "din70121", "iso15118_2"]


class _ProtocolPlugin:
    """What the plugins share: the modes they serve, their machine, their repr."""

    #: energy transfer modes the protocol can serve
    modes: frozenset = frozenset()
    #: the state-machine class
    machine = None

    def usable_with(self, charger) -> bool:
        """
        Usable when the charger offers one of :attr:`modes` (or has not said
        which modes it offers).
        """
        offered = charger.energy_transfer_modes
        return not offered or any(mode in self.modes for mode in offered)

    def new_state_machine(self, context: ProtocolContext):
        """:returns: a state machine of :attr:`machine` for one session."""
        return self.machine(context)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


@implementer(IPlugin, IProtocolVersion)
class DIN70121Version(_ProtocolPlugin):
    """The DIN SPEC 70121 protocol-version plugin: DC only."""

    name = DIN70121
    namespace = DIN_NAMESPACE
    version_major = 2
    version_minor = 0
    schema = "din70121"
    config_key = "supported_DIN70121"
    #: DIN SPEC 70121 never runs over TLS ([V2G-DC-618]).
    allows_tls = False
    modes = DC_ENERGY_MODES
    machine = DINStateMachine


@implementer(IPlugin, IProtocolVersion)
class ISO15118_2Version(_ProtocolPlugin):
    """The ISO 15118-2:2013 protocol-version plugin: AC and DC."""

    name = ISO15118_2
    #: What ``selected_protocol`` reports, as EvseV2G.
    selected_protocol = "ISO15118-2-2013"
    namespace = ISO2_NAMESPACE
    version_major = 2
    version_minor = 0
    schema = "iso15118-2"
    config_key = "supported_ISO15118_2"
    #: ISO 15118-2 may run over TLS (and must for Plug & Charge).
    allows_tls = True
    modes = frozenset(ENERGY_TRANSFER_MODES)
    machine = ISO2StateMachine


din70121 = DIN70121Version()
iso15118_2 = ISO15118_2Version()
