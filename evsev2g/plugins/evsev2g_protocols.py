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


@implementer(IPlugin, IProtocolVersion)
class DIN70121Version:
    """The DIN SPEC 70121 protocol-version plugin."""

    name = DIN70121
    namespace = DIN_NAMESPACE
    version_major = 2
    version_minor = 0
    schema = "din70121"
    config_key = "supported_DIN70121"
    #: DIN SPEC 70121 never runs over TLS ([V2G-DC-618]).
    allows_tls = False

    def usable_with(self, charger) -> bool:
        """
        DIN 70121 is DC only: usable when the charger offers a DC energy
        transfer mode (or has not said which it offers).
        """
        modes = charger.energy_transfer_modes
        return not modes or any(mode in DC_ENERGY_MODES for mode in modes)

    def new_state_machine(self, context: ProtocolContext) -> DINStateMachine:
        """:returns: a :class:`~evsev2g.protocols.din70121.DINStateMachine` for one session."""
        return DINStateMachine(context)

    def __repr__(self) -> str:
        return "<DIN70121Version>"


@implementer(IPlugin, IProtocolVersion)
class ISO15118_2Version:
    """The ISO 15118-2:2013 protocol-version plugin (AC and DC)."""

    name = ISO15118_2
    namespace = ISO2_NAMESPACE
    version_major = 2
    version_minor = 0
    schema = "iso15118-2"
    config_key = "supported_ISO15118_2"
    #: ISO 15118-2 may run over TLS (and must for Plug & Charge).
    allows_tls = True

    def usable_with(self, charger) -> bool:
        """Usable when the charger offers an AC or DC mode ISO 15118-2 can name (or has not said)."""
        modes = charger.energy_transfer_modes
        return not modes or any(mode in ENERGY_TRANSFER_MODES for mode in modes)

    def new_state_machine(self, context: ProtocolContext) -> ISO2StateMachine:
        """:returns: an :class:`~evsev2g.protocols.iso15118_2.ISO2StateMachine` for one session."""
        return ISO2StateMachine(context)

    def __repr__(self) -> str:
        return "<ISO15118_2Version>"


din70121 = DIN70121Version()
iso15118_2 = ISO15118_2Version()
