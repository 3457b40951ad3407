"""
The charger seam: what a V2G session knows of the charger and tells it.

It is shaped like EVerest's ``ISO15118_charger`` interface plus
``iso15118_extensions``: every command is a method taking that command's
arguments (checked against the EVerest types in
:mod:`evsev2g.charger_types`), and every var is an event delivered to
subscribers with the payload shape of the EVerest type.

One :class:`Charger` belongs to one V2G communication session and keeps
that session's state (authorization, cable check, stop and pause,
payment options, certificate response: the commands of
:data:`~evsev2g.charger_spec.SESSION_COMMANDS`), so nothing of one car
reaches the next.  The EVSE-level values (limits, capabilities, EVSEID,
``dlink_ready`` …) live in the :class:`~evsev2g.evse.EVSEState` it is
given, which outlives sessions; the charger reads and writes them under the
same attribute names (properties delegating to the EVSE), and its
EVSE-level commands are applied there.  Whatever sits behind the seam
(:class:`evsev2g.interfaces.IChargerBackend`, the simulator or the EVerest
bridge) provides the EVSE of each new session and is handed the session's
charger when it starts and when it ends.

The protocol state machines read the stored values (attributes below) and
publish vars; they never wait on the charger: a value that has not arrived
yet makes them answer ``Ongoing`` and look again at the next request.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from twisted.logger import Logger
from zope.interface import implementer

from evsev2g.charger_spec import (
    COMMAND_DOCS,
    COMMANDS,
    DC_ENERGY_MODES,
    DEBUG_VARS,
    SESSION_COMMANDS,
    VARS,
    check_command,
    check_var,
    tell_observers,
)
from evsev2g.evse import EVSE_ATTRIBUTES, EVSEState
from evsev2g.interfaces import ICharger

__all__ = ["Charger", "COMMANDS", "VARS", "DEBUG_VARS", "DC_ENERGY_MODES"]

Subscriber = Callable[[str, Any], None]



@implementer(ICharger)
class Charger:
    """
    The charger seam of one V2G communication session.

    Attributes are the values set by commands; ``None`` means "not received
    yet".  Dict-valued ones keep EVerest's JSON shape.  The EVSE-level ones
    (:data:`~evsev2g.evse.EVSE_ATTRIBUTES`: ``evse_id``, ``capabilities``,
    the limits, ``link_ready``, ``errors`` …, documented on
    :class:`~evsev2g.evse.EVSEState`) are properties reading and writing the
    charger's :attr:`evse`; the others belong to this session alone:

    :ivar evse: the :class:`~evsev2g.evse.EVSEState` of the EVSE this
        session runs on.
    :ivar payment_options: ``session_setup``'s list (default ExternalPayment).
    :ivar supported_certificate_service: from ``session_setup``.
    :ivar central_contract_validation_allowed: from ``session_setup``.
    :ivar authorization_status: from ``authorization_response``.
    :ivar certificate_status: from ``authorization_response``.
    :ivar cable_check_ok: from ``cable_check_finished``.
    :ivar stop_requested_at: clock time of ``stop_charging(True)``, cleared
        by ``stop_charging(False)``.
    :ivar pause_requested: from ``pause_charging`` (ISO 15118-20 only).
    :ivar no_energy_pause_mode: from ``no_energy_pause_charging`` (IEC
        61851-23 CC.3.5: no power for this car yet), or ``None``.
    :ivar certificate_response: ``set_get_certificate_response``' object.
    :ivar superseded: a newer session took the EVSE from this one
        (:meth:`take_evse`).
    """

    log = Logger()

    def __init__(self, clock, name: str = "", evse: EVSEState | None = None) -> None:
        """
        :param clock: an ``IReactorTime`` (the reactor, or a ``Clock`` in
            tests): stamps ``stop_charging``.
        :param name: a label for log lines (the session's peer, say).
        :param evse: the EVSE the session runs on; a new one of its own
            when ``None`` (a charger on its own, as in unit tests).
        """
        self.clock = clock
        self.name = name
        self.evse = evse if evse is not None else EVSEState(clock, name)
        self._subscribers: list[tuple[Subscriber, frozenset[str] | None]] = []
        self._observers: list[Callable[[str, dict[str, Any]], None]] = []
        self._last: dict[str, Any] = {}
        self.payment_options: list[str] = ["ExternalPayment"]
        self.supported_certificate_service = False
        self.central_contract_validation_allowed = False
        self.authorization_status: str | None = None
        self.certificate_status: str | None = None
        self.cable_check_ok: bool | None = None
        self.stop_requested_at: float | None = None
        self.pause_requested = False
        self.no_energy_pause_mode: str | None = None
        self.certificate_response: dict[str, Any] | None = None
        self.superseded = False

    def __repr__(self) -> str:
        return f"<Charger {self.name or id(self)}>"

    # -- vars --------------------------------------------------------------

    def subscribe(self, callback: Subscriber, names=None) -> Callable[[], None]:
        """
        Receive vars as ``callback(name, payload)``.

        :param callback: called synchronously for every matching var.
        :param names: an iterable of var names, or ``None`` for every var
            (debug vars then only while ``debug_mode`` is on).
        :returns: a function that cancels the subscription.
        """
        entry = (callback, frozenset(names) if names is not None else None)
        if entry[1] is not None:
            for each in entry[1]:
                if each not in VARS:
                    raise ValueError(f"unknown var {each!r}")
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def wants(self, name: str) -> bool:
        """
        Whether publishing ``name`` would reach anybody.  Lets callers skip
        building costly payloads (XML of every message for ``v2g_messages``).

        :param name: a var name.
        :returns: ``bool``.
        """
        for _, names in self._subscribers:
            if names is None:
                if name not in DEBUG_VARS or self.debug_mode:
                    return True
            elif name in names:
                return True
        return False

    def publish(self, name: str, payload: Any = None) -> None:
        """
        Emit a var to its subscribers.

        :param name: a var of ISO15118_charger or iso15118_extensions.
        :param payload: its value in EVerest's JSON shape (``None`` for null
            vars).
        :raises ValueError: unknown var or a payload of the wrong shape (a
            programming error in the caller, never the EV's fault).
        """
        check_var(name, payload)
        self._last[name] = payload
        for callback, names in list(self._subscribers):
            if names is None:
                if name in DEBUG_VARS and not self.debug_mode:
                    continue
            elif name not in names:
                continue
            try:
                callback(name, payload)
            except Exception:
                self.log.failure("var subscriber {callback!r} failed on {var}", callback=callback, var=name)

    def publish_on_change(self, name: str, payload: Any) -> bool:
        """
        Emit a var unless it was last published with an equal payload in
        this session (EvseV2G's "on change" vars; the first value of a
        session is always published).

        :returns: ``True`` when it was published.
        """
        if name in self._last and self._last[name] == payload:
            return False
        self.publish(name, payload)
        return True

    def last(self, name: str, default: Any = None) -> Any:
        """The payload ``name`` was last published with in this session."""
        return self._last.get(name, default)

    # -- commands ------------------------------------------------------------

    def observe(self, callback: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """
        Be told of every command after it took effect, as
        ``callback(name, arguments)``: this session's commands and the EVSE's
        (from wherever they came).  The session uses it to react at once to
        ``dlink_ready(False)``.

        :returns: a function that stops the observation.
        """
        self._observers.append(callback)
        stop_evse = self.evse.observe(callback)

        def stop() -> None:
            stop_evse()
            if callback in self._observers:
                self._observers.remove(callback)

        return stop

    def command(self, name: str, **arguments: Any) -> Any:
        """
        Run a command by name (what a bridge receiving commands by topic
        calls); the methods below are the same thing with signatures.
        EVSE-level commands are applied to :attr:`evse` (every session on
        that EVSE sees them), session commands to this charger.

        :param name: a command of ISO15118_charger or iso15118_extensions.
        :param arguments: its arguments by name.
        :returns: the command's result (only ``update_supported_app_protocols``
            has one).
        :raises ValueError: unknown command, missing/extra arguments or an
            argument of the wrong shape.
        """
        check_command(name, arguments)
        if name not in SESSION_COMMANDS:
            return self.evse.apply(name, arguments)
        result = getattr(self, "_apply_" + name)(**arguments)
        tell_observers(self._observers, name, arguments, self.log)
        return result

    # -- one session per EVSE ----------------------------------------------

    def take_evse(self, release: Callable[[str], None]) -> None:
        """
        This session reached SessionSetup and takes its EVSE; an older
        session still holding it is ended first (see
        :meth:`evsev2g.evse.EVSEState.take`).  Session commands EvseManager
        sent before this session existed (``session_setup``, an early
        ``authorization_response``) are applied now.

        :param release: called with a reason if a newer session later takes
            the EVSE from this one: the session turns the output off, then
            closes its connection.
        """

        def released(reason: str) -> None:
            self.superseded = True
            release(reason)

        self.evse.take(self, released)

    def release_evse(self) -> None:
        """The session is over: the EVSE is free for the next one."""
        self.evse.release(self)

    # -- this session's commands (the EVSE's are in evsev2g.evse) ---------------

    def _apply_session_setup(self, payment_options, supported_certificate_service, central_contract_validation_allowed):
        self.payment_options = list(dict.fromkeys(payment_options))
        self.supported_certificate_service = supported_certificate_service
        self.central_contract_validation_allowed = central_contract_validation_allowed
        self.authorization_status = None
        self.certificate_status = None

    def _apply_authorization_response(self, authorization_status, certificate_status):
        self.authorization_status = authorization_status
        self.certificate_status = certificate_status

    def _apply_cable_check_finished(self, status):
        self.cable_check_ok = status

    def _apply_stop_charging(self, stop):
        if stop:
            if self.stop_requested_at is None:
                self.stop_requested_at = self.clock.seconds()
        else:
            self.stop_requested_at = None

    def _apply_pause_charging(self, pause):
        self.pause_requested = pause

    def _apply_no_energy_pause_charging(self, mode):
        self.no_energy_pause_mode = mode

    def _apply_set_get_certificate_response(self, certificate_response):
        self.certificate_response = dict(certificate_response)

    # -- derived values the state machines share ---------------------------

    @property
    def emergency(self) -> bool:
        """``send_error(Error_EmergencyShutdown)`` was received (cleared when the session it hit ends)."""
        return "Error_EmergencyShutdown" in self.errors

    @property
    def authorized(self) -> bool | None:
        """``None`` while no answer arrived, else whether it was Accepted."""
        if self.authorization_status is None:
            return None
        return self.authorization_status == "Accepted"

    def dc_limit(self, capability: str, limit: str | None = None, table: str = "max") -> float | None:
        """The EVSE's DC limit: see :meth:`evsev2g.evse.EVSEState.dc_limit`."""
        return self.evse.dc_limit(capability, limit, table)


def _command_method(name: str) -> Callable:
    """
    ``Charger.<name>(…)``: the command ``name`` with the interface's argument
    names as its parameters (positional or by name), run by
    :meth:`Charger.command`.
    """
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [inspect.Parameter(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for arg, _ in COMMANDS[name]]
    signature = inspect.Signature(parameters)

    names = tuple(arg for arg, _ in COMMANDS[name])

    def method(self, *args, **kwargs):
        if not kwargs and len(args) == len(names):  # the common call, without inspect's cost
            return self.command(name, **dict(zip(names, args)))
        arguments = signature.bind(self, *args, **kwargs).arguments
        del arguments["self"]
        return self.command(name, **arguments)

    method.__name__, method.__qualname__ = name, f"Charger.{name}"
    method.__signature__ = signature
    method.__doc__ = COMMAND_DOCS[name]
    return method


# Every command of the interfaces is a method of the same name
# (``charger.stop_charging(True)``); its arguments are the interface's.
for _name in COMMANDS:
    setattr(Charger, _name, _command_method(_name))


def _delegate(name: str) -> property:
    def get(self):
        return getattr(self.evse, name)

    def put(self, value):
        setattr(self.evse, name, value)

    return property(get, put, doc=f"The EVSE's ``{name}`` (:class:`~evsev2g.evse.EVSEState`).")


for _name in EVSE_ATTRIBUTES:
    setattr(Charger, _name, _delegate(_name))
del _name
