"""
The EVSE's state: what EvseManager configures and keeps configuring,
across V2G sessions.

EvseManager sends EVSE-level commands at any time, also between sessions
(``setup``, ``set_powersupply_capabilities``, the limits, the present
values, ``dlink_ready``, errors …); they persist for the EVSE.  One
:class:`EVSEState` belongs to one EVSE: the EVerest bridge has exactly one
per module instance, the simulator makes one per session.

Each V2G session has its own :class:`evsev2g.charger.Charger`, which reads
the EVSE's values through it and keeps the session's own
(:data:`~evsev2g.charger_spec.SESSION_COMMANDS`).  A command arriving from
outside (:meth:`EVSEState.command`, what the bridge calls) is applied here,
or handed to the session that holds the EVSE; session commands that come
before the car's session exists (``session_setup``, an early
``authorization_response``) are kept and replayed into the next session
when it takes the EVSE.

**One EVSE, one session.**  A session takes the EVSE when it reaches
SessionSetup (:meth:`EVSEState.take`).  If an older session still holds
it (the car restarted its stack, a half-open connection), the older one is
ended first through the release callback it gave, which turns the output
off before anything else; two sessions never drive one EVSE.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.logger import Logger

from evsev2g.charger_spec import CARRIED_COMMANDS, SESSION_COMMANDS, check_command, tell_observers

__all__ = ["EVSEState", "EVSE_ATTRIBUTES", "STORED"]

#: The EVSE-level values a session's charger reads through its EVSE.
EVSE_ATTRIBUTES = (
    "evse_id",
    "sae_j2847_mode",
    "debug_mode",
    "physical_values",
    "bpt_config",
    "capabilities",
    "ac_contactor_is_closed",
    "link_ready",
    "receipt_required",
    "supported_app_protocols",
    "energy_transfer_modes",
    "ac_max_current",
    "ac_parameters",
    "ac_maximum_limits",
    "ac_minimum_limits",
    "ac_target_values",
    "ac_present_power",
    "dc_maximum_limits",
    "dc_minimum_limits",
    "isolation_status",
    "dc_present_values",
    "meter_info",
    "meter_info_fresh",
    "errors",
)

#: EVSE-level commands that store their one argument in an attribute (a
#: copy of objects, so later changes by the caller do not leak in).
STORED = {
    "set_charging_parameters": "physical_values",
    "bpt_setup": "bpt_config",
    "set_powersupply_capabilities": "capabilities",
    "ac_contactor_closed": "ac_contactor_is_closed",
    "dlink_ready": "link_ready",
    "receipt_is_required": "receipt_required",
       "update_ac_max_current": "ac_max_current",
    "update_ac_parameters": "ac_parameters",
    "update_ac_maximum_limits": "ac_maximum_limits",
    "update_ac_minimum_limits": "ac_minimum_limits",
    "update_ac_target_values": "ac_target_values",
    "update_ac_present_power": "ac_present_power",
    "update_dc_maximum_limits": "dc_maximum_limits",
    "update_dc_minimum_limits": "dc_minimum_limits",
    "update_isolation_status": "isolation_status",
}

Observer = Callable[[str, dict[str, Any]], None]


class EVSEState:
    """
    The EVSE-lifetime state of one EVSE.

    Attributes are the values set by EVSE-level commands; ``None`` means
    "not received yet".  Dict-valued ones keep EVerest's JSON shape.

    :ivar evse_id: ``setup``'s EVSEID object (``{"evse_id", "evse_id_din"?}``).
    :ivar sae_j2847_mode: ``"None"``, ``"V2G"`` or ``"V2H"``.
    :ivar debug_mode: publish the debug vars to subscribers of every var.
    :ivar physical_values: ``set_charging_parameters``' SetupPhysicalValues.
    :ivar bpt_config: ``bpt_setup``'s BptSetup (ISO 15118-20 only; stored).
    :ivar capabilities: ``set_powersupply_capabilities``' Capabilities.
    :ivar ac_contactor_is_closed: from ``ac_contactor_closed``.
    :ivar link_ready: from ``dlink_ready``.
    :ivar receipt_required: from ``receipt_is_required``.
    :ivar supported_app_protocols: ``update_supported_app_protocols``' list,
        or ``None`` for "as configured".
    :ivar energy_transfer_modes: from ``update_energy_transfer_modes``.
    :ivar ac_max_current: from ``update_ac_max_current`` (A).
    :ivar ac_parameters, ac_maximum_limits, ac_minimum_limits,
        ac_target_values, ac_present_power: the AC commands' objects.
    :ivar dc_maximum_limits: DcEvseMaximumLimits.
    :ivar dc_minimum_limits: DcEvseMinimumLimits.
    :ivar isolation_status: IsolationStatus string.
    :ivar dc_present_values: DcEvsePresentVoltageCurrent.
    :ivar meter_info: Powermeter; ``meter_info_fresh`` says whether it has
        not been sent to the EV yet.
    :ivar errors: the active EvseError strings (``send_error``), emptied by
        ``reset_error`` except ``Error_EmergencyShutdown``, which lasts until
        the session it hit is over.
    :ivar holder: the :class:`~evsev2g.charger.Charger` of the session
        holding the EVSE (it reached SessionSetup), or ``None``.
    """

    log = Logger()

    def __init__(self, clock, name: str = "") -> None:
        """
        :param clock: an ``IReactorTime``.
        :param name: a label for log lines.
        """
        self.clock = clock
        self.name = name
        self._observers: list[Observer] = []
        self._carried: dict[str, dict[str, Any]] = {}
        self._release: Callable[[str], None] | None = None
        self.holder = None
        self.evse_id: dict[str, Any] | None = None
        self.sae_j2847_mode = "None"
        self.debug_mode = False
        self.physical_values: dict[str, Any] = {}
        self.bpt_config: dict[str, Any] | None = None
        self.capabilities: dict[str, Any] | None = None
        self.ac_contactor_is_closed = False
        self.link_ready = False
        self.receipt_required = False
        self.supported_app_protocols: list[str] | None = None
        self.energy_transfer_modes: list[str] = []
        self.ac_max_current: float | None = None
        self.ac_parameters: dict[str, Any] | None = None
        self.ac_maximum_limits: dict[str, Any] | None = None
        self.ac_minimum_limits: dict[str, Any] | None = None
        self.ac_target_values: dict[str, Any] | None = None
        self.ac_present_power: dict[str, Any] | None = None
        self.dc_maximum_limits: dict[str, Any] | None = None
        self.dc_minimum_limits: dict[str, Any] | None = None
        self.isolation_status: str | None = None
        self.dc_present_values: dict[str, Any] = {"evse_present_voltage": 0, "evse_present_current": 0}
        self.meter_info: dict[str, Any] | None = None
        self.meter_info_fresh = False
        self.errors: set[str] = set()

    def __repr__(self) -> str:
        return f"<EVSEState {self.name or id(self)}>"

    # -- commands from outside ---------------------------------------------

    def command(self, name: str, **arguments: Any) -> Any:
        """
        Run a command by name, as EvseManager (or OCPP) sends it to the
        EVSE: EVSE-level commands are applied here, session commands go to
        the session holding the EVSE; while none does, ``session_setup`` and
        ``authorization_response`` are kept for the next one and the other
        session commands are dropped with a log line.

        :param name: a command of ISO15118_charger or iso15118_extensions.
        :param arguments: its arguments by name.
        :returns: the command's result (``bool`` for
            ``update_supported_app_protocols``, else ``None``).
        :raises ValueError: unknown command or arguments of the wrong shape;
            nothing changes then.
        """
        check_command(name, arguments)
        if name in SESSION_COMMANDS:
            holder = self.holder
            if holder is not None:
                return holder.command(name, **arguments)
            if name in CARRIED_COMMANDS:
                if name == "session_setup":
                    # A new session setup forgets what was given for the car before.
                    self._carried.pop("authorization_response", None)
                    self._carried.pop("no_energy_pause_charging", None)
                self._carried[name] = dict(arguments)
                self.log.debug("{evse}: {command} kept for the next session", evse=self, command=name)
            else:
                self.log.info("{evse}: {command} while no session holds the EVSE; nothing to do", evse=self, command=name)
            return None
        return self.apply(name, arguments)

    def apply(self, name: str, arguments: dict[str, Any]) -> Any:
        """
        Apply an EVSE-level command whose arguments were checked, and tell
        the observers.

        :returns: the command's result.
        """
        if name in STORED:
            (value,) = arguments.values()
            setattr(self, STORED[name], dict(value) if isinstance(value, dict) else value)
            result = None
        else:
            result = getattr(self, "_apply_" + name)(**arguments)
        tell_observers(self._observers, name, arguments, self.log)
        return result

    def observe(self, callback: Observer) -> Callable[[], None]:
        """
        Be told of every EVSE-level command after it took effect, as
        ``callback(name, arguments)``.

        :returns: a function that stops the observation.
        """
        self._observers.append(callback)
        return lambda: self._observers.remove(callback) if callback in self._observers else None

    # -- one session at a time ---------------------------------------------------

    def take(self, charger, release: Callable[[str], None]) -> None:
        """
        The session of ``charger`` reached SessionSetup and takes the EVSE.

        An older session still holding it is ended first: its ``release``
        callback runs (the session turns the output off, then closes its
        connection).  Then the session commands kept since the last session
        are replayed into ``charger``.

        :param charger: the new session's :class:`~evsev2g.charger.Charger`.
        :param release: called with a reason if a newer session takes the
            EVSE from this one.
        """
        old, old_release = self.holder, self._release
        if old is charger:
            self._release = release
            return
        self.holder, self._release = None, None
        if old is not None and old_release is not None:
            self.log.warn(
                "{evse}: session {new} takes the EVSE from the older session {old}, which is ended first",
                evse=self, new=charger.name, old=old.name,
            )
            try:
                old_release("a newer session took the EVSE")
            except Exception:
                self.log.failure("{evse}: ending the older session failed", evse=self)
        self.holder, self._release = charger, release
        carried, self._carried = self._carried, {}
        for name, arguments in carried.items():
            charger.command(name, **arguments)

    def release(self, charger) -> None:
        """
        The session of ``charger`` is over; the EVSE is free.  An emergency
        shutdown it saw is forgotten, so the next car can be served.
        Harmless for a session that never held the EVSE.
        """
        if self.holder is charger:
            self.holder, self._release = None, None
            self.errors.discard("Error_EmergencyShutdown")

    # -- EVSE-level commands that do more than store (the others: STORED) ---------

    def _apply_setup(self, evse_id, sae_j2847_mode, debug_mode):
        self.evse_id = dict(evse_id)
        self.sae_j2847_mode = sae_j2847_mode
        self.debug_mode = debug_mode

    def _apply_update_supported_app_protocols(self, supported_app_protocols):
        self.supported_app_protocols = list(supported_app_protocols["app_protocols"])
        return bool(self.supported_app_protocols)

    def _apply_update_energy_transfer_modes(self, supported_energy_transfer_modes):
        self.energy_transfer_modes = list(dict.fromkeys(supported_energy_transfer_modes))

    def _apply_update_dc_present_values(self, present_voltage_current):
        values = {"evse_present_current": 0}
        values.update(present_voltage_current)
        self.dc_present_values = values

    def _apply_update_meter_info(self, powermeter):
        self.meter_info = dict(powermeter)
        self.meter_info_fresh = True

    def _apply_send_error(self, error):
        self.errors.add(error)

    def _apply_reset_error(self):
        self.errors &= {"Error_EmergencyShutdown"}

    # -- derived values ----------------------------------------------------------

    def dc_limit(self, capability: str, limit: str | None = None, table: str = "max") -> float | None:
        """
        A DC limit: the present value from ``update_dc_maximum_limits`` /
        ``update_dc_minimum_limits`` when ``limit`` is given and known, else the
        power supply's capability (its ``nominal_`` value preferred).

        :param capability: a Capabilities key such as ``"max_export_current_A"``.
        :param limit: a DcEvseMaximumLimits/DcEvseMinimumLimits key, or ``None``.
        :param table: ``"max"`` or ``"min"``: which limits object ``limit`` is in.
        :returns: the value, or ``None`` when nothing was received.
        """
        if limit is not None:
            limits = self.dc_maximum_limits if table == "max" else self.dc_minimum_limits
            if limits and limit in limits:
                return limits[limit]
        if self.capabilities:
            nominal = self.capabilities.get("nominal_" + capability)
            if nominal is not None:
                return nominal
            return self.capabilities.get(capability)
        return None
