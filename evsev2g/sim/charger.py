"""
The simulated charger (``backend: simulator``, the default): it plays
EvseManager, the AC contactor or the DC power supply, and the meter on the
charger seam.

Each V2G session gets its own :class:`SimulatedEVSE`, so several EVs in one
process never share state.  It configures the session's charger the way
EvseManager does at start-up and at session start (DC: power-supply
capabilities and limits; AC: nominal voltage, maximum current and power),
authorizes EIM after a short delay, runs the cable check and reports the
isolation, follows the EV's target voltage and current within its limits
with a configurable slew rate (DC) or closes the contactor after a short
delay and delivers the current both sides allow (AC), and meters the energy
(``update_meter_info``).  When configured, it pauses or stops charging from
the charger side once energy flows (``pause_charging`` /
``stop_charging``), once per backend, so the resumed session charges on.
All time comes from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from evsev2g.interfaces import IChargerBackend

__all__ = ["SimulatorSettings", "SimulatedEVSE", "SimulatedCharger", "PRE_CHARGE_CURRENT_LIMIT", "AC_MODES", "DC_MODES"]

#: Current the supply allows while pre-charging, in A (IEC 61851-23 limits
#: pre-charge current to 2 A).
PRE_CHARGE_CURRENT_LIMIT = 2.0

#: The energy transfer modes offered per simulator ``mode``.
DC_MODES = ("DC_extended",)
AC_MODES = ("AC_single_phase_core", "AC_three_phase_core")


@dataclass(frozen=True)
class SimulatorSettings:
    """
    What the simulated charger can do and how fast it reacts.

    :ivar auth_delay: s from ``require_auth_eim`` to ``authorization_response``
        (0: at once).
    :ivar authorization_status: the AuthorizationStatus it answers.
    :ivar cable_check_duration: s the cable check takes.
    :ivar isolation_status: the IsolationStatus the cable check finds.
    :ivar max_voltage: V.  :ivar min_voltage: V.
    :ivar max_current: A.  :ivar min_current: A.
    :ivar max_power: W.
    :ivar voltage_slew_rate: V/s the output voltage moves (0: jumps).
    :ivar current_slew_rate: A/s the output current moves (0: jumps).
    :ivar tick: s between updates of the present values while the output is on.
    :ivar meter_interval: s between meter readings sent to the seam.
    :ivar evse_id: ISO 15118-2 EVSEID.  :ivar evse_id_din: DIN EVSEID.
    :ivar meter_id: MeterID.
    :ivar mode: ``dc`` or ``ac``.
    :ivar energy_transfer_modes: modes offered (empty: those of ``mode``).
    :ivar ac_nominal_voltage: V per phase.  :ivar ac_max_current: A per phase.
    :ivar ac_phases: phases delivered.
    :ivar ac_contactor_delay: s from ``ac_close_contactor`` to ``ac_contactor_closed``.
    :ivar receipt_required: told to the SECC with ``receipt_is_required``.
    :ivar pause_after: s of energy flow before a charger-initiated pause (0: never).
    :ivar stop_after: s of energy flow before a charger-initiated stop (0: never).
    :ivar reduce_power_after: s of energy flow before the maximum power is
        halved (the grid asks for less; ISO-2 renegotiates) (0: never).
    """

    auth_delay: float = 1.0
    authorization_status: str = "Accepted"
    cable_check_duration: float = 1.0
    isolation_status: str = "Valid"
    max_voltage: float = 920.0
    min_voltage: float = 150.0
    max_current: float = 250.0
    min_current: float = 0.0
    max_power: float = 150000.0
    voltage_slew_rate: float = 400.0
    current_slew_rate: float = 100.0
    tick: float = 0.1
    meter_interval: float = 1.0
    evse_id: str = "DE*EVS*E0001"
    evse_id_din: str = "49A80737A45678"
    meter_id: str = "SIM-METER-1"
    mode: str = "dc"
    energy_transfer_modes: tuple = ()
    ac_nominal_voltage: float = 230.0
    ac_max_current: float = 32.0
    ac_phases: int = 3
    ac_contactor_delay: float = 0.1
    receipt_required: bool = False
    pause_after: float = 0.0
    stop_after: float = 0.0
    reduce_power_after: float = 0.0

    @classmethod
    def from_config(cls, s) -> "SimulatorSettings":
        """
        :param s: the ``simulator`` group of :class:`evsev2g.config.Config`.
        :returns: the settings it asks for.
        """
        return cls(
            auth_delay=s.auth_delay_ms / 1000.0,
            authorization_status=s.authorization,
            cable_check_duration=s.cable_check_ms / 1000.0,
            isolation_status=s.isolation_status,
            max_voltage=float(s.max_voltage),
            min_voltage=float(s.min_voltage),
            max_current=float(s.max_current),
            min_current=float(s.min_current),
            max_power=float(s.max_power),
            voltage_slew_rate=float(s.voltage_slew_rate),
            current_slew_rate=float(s.current_slew_rate),
            meter_interval=s.meter_interval_ms / 1000.0,
            evse_id=s.evse_id,
            evse_id_din=s.evse_id_din,
            mode=s.mode,
            ac_nominal_voltage=float(s.ac_nominal_voltage),
            ac_max_current=float(s.ac_max_current),
            ac_phases=s.ac_phases,
            ac_contactor_delay=s.ac_contactor_delay_ms / 1000.0,
            receipt_required=s.receipt_required,
            pause_after=s.pause_after_ms / 1000.0,
            stop_after=s.stop_after_ms / 1000.0,
            reduce_power_after=s.reduce_power_after_ms / 1000.0,
        )

    @property
    def modes(self) -> tuple:
        """The energy transfer modes offered."""
        return self.energy_transfer_modes or (AC_MODES if self.mode == "ac" else DC_MODES)

    def __post_init__(self) -> None:
        if self.min_voltage > self.max_voltage or self.min_current > self.max_current:
            raise ValueError("simulator minimum limits exceed the maximum limits")
        if self.mode not in ("dc", "ac"):
            raise ValueError("simulator mode must be dc or ac")
        for name in ("auth_delay", "cable_check_duration", "voltage_slew_rate", "current_slew_rate", "ac_contactor_delay",
                     "pause_after", "stop_after", "reduce_power_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"simulator {name} must not be negative")
        if self.tick <= 0 or self.meter_interval <= 0:
            raise ValueError("simulator tick and meter_interval must be positive")


def _approach(value: float, target: float, rate: float, dt: float) -> float:
    if rate <= 0:
        return target
    step = rate * dt
    if value < target:
        return min(target, value + step)
    return max(target, value - step)


class SimulatedEVSE:
    """
    One simulated EVSE serving one session's charger.

    :ivar mode: ``"idle"``, ``"cable_check"``, ``"pre_charge"``,
        ``"charging"`` or ``"off"`` (contactors opened).
    :ivar voltage: present output voltage, V (per phase for AC).
    :ivar current: present output current, A (per phase for AC).
    :ivar contactor_closed: AC: the contactor is closed.
    :ivar energy_wh: energy delivered this session, Wh.
    """

    log = Logger()

    def __init__(self, charger, clock, settings: SimulatorSettings, take_trigger=lambda name: True) -> None:
        """
        Configure ``charger`` like EvseManager does and start listening to it.

        :param charger: the session's ``ICharger``.
        :param clock: ``IReactorTime``.
        :param settings: :class:`SimulatorSettings`.
        :param take_trigger: ``name`` → whether a one-shot charger action
            (``"pause"``, ``"stop"``) may still happen.
        """
        self.charger = charger
        self.clock = clock
        self.settings = settings
        self.take_trigger = take_trigger
        self.ac = settings.mode == "ac"
        self.phases = settings.ac_phases if self.ac else 1
        self.contactor_closed = False
        self.ev_max_current = settings.ac_max_current
        self.max_power = settings.max_power
        self.ac_max_current = settings.ac_max_current
        self.mode = "idle"
        self.voltage = 0.0
        self.current = 0.0
        self.energy_wh = 0.0
        self.target_voltage = 0.0
        self.target_current = 0.0
        self._last = clock.seconds()
        self._last_meter: float | None = None
        self._pending = []
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._configure()
        self._unsubscribe = charger.subscribe(self._var)

    def _configure(self) -> None:
        s = self.settings
        c = self.charger
        c.setup({"evse_id": s.evse_id, "evse_id_din": s.evse_id_din}, "None", False)
        c.set_charging_parameters({"dc_current_regulation_tolerance": 5, "dc_peak_current_ripple": 2})
        c.session_setup(["ExternalPayment"], False, False)
        c.receipt_is_required(s.receipt_required)
        c.update_energy_transfer_modes(list(s.modes))
        if self.ac:
            c.set_charging_parameters({"ac_nominal_voltage": s.ac_nominal_voltage})
            c.update_ac_maximum_limits({"charge_power": {"total": s.ac_nominal_voltage * s.ac_max_current * s.ac_phases}})
            c.update_ac_max_current(s.ac_max_current)
            c.dlink_ready(True)
            return
        c.set_powersupply_capabilities(
            {
                "bidirectional": False,
                "max_export_voltage_V": s.max_voltage,
                "min_export_voltage_V": s.min_voltage,
                "max_export_current_A": s.max_current,
                "min_export_current_A": s.min_current,
                "max_export_power_W": s.max_power,
                "current_regulation_tolerance_A": 5,
                "peak_current_ripple_A": 2,
            }
        )
        c.update_dc_maximum_limits(
            {
                "evse_maximum_current_limit": s.max_current,
                "evse_maximum_power_limit": s.max_power,
                "evse_maximum_voltage_limit": s.max_voltage,
            }
        )
        c.update_dc_minimum_limits(
            {
                "evse_minimum_current_limit": s.min_current,
                "evse_minimum_voltage_limit": s.min_voltage,
                "evse_minimum_power_limit": 0,
            }
        )
        c.update_isolation_status("Invalid")
        c.update_dc_present_values({"evse_present_voltage": 0, "evse_present_current": 0})
        c.dlink_ready(True)

    # -- reacting to vars -----------------------------------------------------

    def _var(self, name: str, payload) -> None:
        handler = getattr(self, "_on_" + name, None)
        if handler is not None:
            handler(payload)

    def _later(self, delay: float, function, *args) -> None:
        if delay <= 0:
            function(*args)
        else:
            self._pending.append(self.clock.callLater(delay, function, *args))

    def _on_require_auth_eim(self, payload) -> None:
        self._later(self.settings.auth_delay, self._authorize)

    def _authorize(self) -> None:
        self.charger.authorization_response(self.settings.authorization_status, "NoCertificateAvailable")

    def _on_start_cable_check(self, payload) -> None:
        self._switch("cable_check")
        self._later(self.settings.cable_check_duration, self._cable_check_done)

    def _cable_check_done(self) -> None:
        self._advance()
        self.target_voltage = 0.0  # the test voltage is removed before pre-charge
        self.charger.update_isolation_status(self.settings.isolation_status)
        self.charger.cable_check_finished(self.settings.isolation_status in ("Valid", "Warning"))

    def _on_start_pre_charge(self, payload) -> None:
        self._switch("pre_charge")

    def _on_current_demand_started(self, payload) -> None:
        self._switch("charging")
        self._arm_triggers()

    def _on_ac_close_contactor(self, payload) -> None:
        self._later(self.settings.ac_contactor_delay, self._ac_contactor_closed)

    def _ac_contactor_closed(self) -> None:
        self.contactor_closed = True
        self.target_voltage = self.settings.ac_nominal_voltage
        self._switch("charging")
        self.charger.ac_contactor_closed(True)
        self._arm_triggers()

    def _on_ac_open_contactor(self, payload) -> None:
        self._switch("off")
        if self.contactor_closed:
            self.contactor_closed = False
            self.charger.ac_contactor_closed(False)

    def _on_ac_ev_max_current(self, payload) -> None:
        self._advance()
        self.ev_max_current = float(payload)

    def _arm_triggers(self) -> None:
        """Schedule the configured charger-initiated pause or stop (once per backend)."""
        s = self.settings
        if s.pause_after > 0 and self.take_trigger("pause"):
            self._later(s.pause_after, self._charger_action, "pause_charging", True)
        if s.stop_after > 0 and self.take_trigger("stop"):
            self._later(s.stop_after, self._charger_action, "stop_charging", True)
        if s.reduce_power_after > 0 and self.take_trigger("reduce_power"):
            self._later(s.reduce_power_after, self.reduce_power, 0.5)

    def reduce_power(self, factor: float) -> None:
        """
        The grid asks for less: scale the maximum power (DC: power-supply
        capabilities and limits; AC: maximum power and current) by ``factor``.
        """
        s = self.settings
        self._advance()
        self.log.info("simulated EVSE: maximum power × {factor}", factor=factor)
        if self.ac:
            self.ac_max_current = max(6.0, round(self.ac_max_current * factor, 1))
            self.charger.update_ac_maximum_limits(
                {"charge_power": {"total": s.ac_nominal_voltage * self.ac_max_current * s.ac_phases}})
            self.charger.update_ac_max_current(self.ac_max_current)
            return
        self.max_power = self.max_power * factor
        capabilities = dict(self.charger.capabilities or {}, max_export_power_W=self.max_power)
        self.charger.set_powersupply_capabilities(capabilities)
        self.charger.update_dc_maximum_limits(
            {"evse_maximum_current_limit": s.max_current, "evse_maximum_power_limit": self.max_power,
             "evse_maximum_voltage_limit": s.max_voltage})

    def _on_meter_info_requested(self, payload) -> None:
        """
        The SECC wants a fresh reading (it sent the last one): send one now,
        unless one went out within the last tick (a meter reads at most that
        often; the periodic reading follows anyway).
        """
        now = self.clock.seconds()
        if self._last_meter is not None and now - self._last_meter < self.settings.tick:
            return
        self._advance()
        self._last_meter = now
        self.charger.update_meter_info(self.meter_reading(now))

    def _charger_action(self, command: str, value) -> None:
        self.log.info("simulated EVSE: {command}({value})", command=command, value=value)
        getattr(self.charger, command)(value)

    def _on_dc_ev_target_voltage_current(self, payload) -> None:
        self._advance()
        self.target_voltage = max(0.0, payload["dc_ev_target_voltage"])
        self.target_current = max(0.0, payload["dc_ev_target_current"])
        if self.settings.voltage_slew_rate <= 0 or self.settings.current_slew_rate <= 0:
            self._advance()

    def _on_dc_open_contactor(self, payload) -> None:
        self._switch("off")

    def _on_current_demand_finished(self, payload) -> None:
        self._switch("off")

    def _on_dlink_error(self, payload) -> None:
        self.log.info("simulated EVSE: dlink_error (the data link would be re-matched)")

    def _on_dlink_terminate(self, payload) -> None:
        self.log.info("simulated EVSE: dlink_terminate (the data link would go unmatched)")

    def _on_dlink_pause(self, payload) -> None:
        self.log.info("simulated EVSE: dlink_pause (output off, the EV may resume)")
        self._switch("off")

    # -- the power supply -------------------------------------------------------

    def _switch(self, mode: str) -> None:
        self._advance()
        self.mode = mode
        if self.ac:
            if mode == "off":
                self.target_voltage = 0.0
        elif mode == "cable_check":
            self.target_voltage = min(self.settings.max_voltage, 500.0)
            self.target_current = 0.0
        elif mode == "off":
            self.target_voltage = 0.0
            self.target_current = 0.0
        if not self._loop.running and mode != "idle":
            self._loop.start(self.settings.tick, now=False)
        if self.ac:  # a contactor switches at once
            self._advance()

    def _limits(self) -> tuple[float, float]:
        s = self.settings
        if self.ac:
            if self.mode != "charging":
                return 0.0, 0.0
            current = min(self.ac_max_current, self.ev_max_current)
            return s.ac_nominal_voltage, max(current, 0.0)
        voltage = min(max(self.target_voltage, 0.0), s.max_voltage)
        if self.mode == "charging":
            current = min(self.target_current, s.max_current)
            if self.voltage > 1.0:
                current = min(current, self.max_power / self.voltage)
        elif self.mode == "pre_charge":
            current = min(self.target_current, PRE_CHARGE_CURRENT_LIMIT)
        else:
            current = 0.0
        return voltage, max(current, 0.0)

    def _advance(self) -> None:
        now = self.clock.seconds()
        dt = max(0.0, now - self._last)
        self._last = now
        voltage, current = self._limits()
        old_power = self.power
        if self.ac:  # the contactor switches: no slew
            self.voltage, self.current = voltage, current
        else:
            self.voltage = _approach(self.voltage, voltage, self.settings.voltage_slew_rate, dt)
            self.current = _approach(self.current, current, self.settings.current_slew_rate, dt)
        self.energy_wh += (old_power + self.power) / 2.0 * dt / 3600.0
        if not self.ac:
            present = {"evse_present_voltage": round(self.voltage, 1), "evse_present_current": round(self.current, 1)}
            if present != self.charger.dc_present_values:  # as a power module reports: on change
                self.charger.update_dc_present_values(present)
        if self._last_meter is None or now - self._last_meter >= self.settings.meter_interval:
            self._last_meter = now
            self.charger.update_meter_info(self.meter_reading(now))

    @property
    def power(self) -> float:
        """Present output power, W (all phases)."""
        return self.voltage * self.current * self.phases

    def meter_reading(self, now: float) -> dict:
        """:returns: the simulated meter's Powermeter payload at ``now``."""
        if self.ac:
            phases = ("L1", "L2", "L3")[: self.phases]
            voltage = {phase: round(self.voltage, 1) for phase in phases}
            current = {phase: round(self.current, 1) for phase in phases}
        else:
            voltage, current = {"DC": round(self.voltage, 1)}, {"DC": round(self.current, 1)}
        return {
            "timestamp": datetime.fromtimestamp(now, timezone.utc).isoformat().replace("+00:00", "Z"),
            "meter_id": self.settings.meter_id,
            "energy_Wh_import": {"total": round(self.energy_wh, 3)},
            "power_W": {"total": round(self.power, 1)},
            "voltage_V": voltage,
            "current_A": current,
        }

    def _tick(self) -> None:
        self._advance()
        if self.mode == "off" and self.voltage == 0.0 and self.current == 0.0:
            self._loop.stop()

    def stop(self) -> None:
        """The session is over: stop the timers and forget the charger."""
        if self._loop.running:
            self._loop.stop()
        for call in self._pending:
            if call.active():
                call.cancel()
        self._pending = []
        self._unsubscribe()


@implementer(IChargerBackend)
class SimulatedCharger:
    """
    The simulator backend: one :class:`SimulatedEVSE` per session.

    :ivar link_ready: always ``True``: the simulated data link is matched.
    :ivar evses: the simulated EVSE of each live session's charger.
    """

    log = Logger()

    def __init__(self, clock, settings: SimulatorSettings | None = None) -> None:
        """
        :param clock: ``IReactorTime``.
        :param settings: :class:`SimulatorSettings` (defaults if ``None``).
        """
        self.clock = clock
        self.settings = settings or SimulatorSettings()
        self.link_ready = True
        self.evses: dict[object, SimulatedEVSE] = {}
        self.triggered: set[str] = set()

    def take_trigger(self, name: str) -> bool:
        """:returns: ``True`` the first time ``name`` (``pause``, ``stop``) is asked for."""
        if name in self.triggered:
            return False
        self.triggered.add(name)
        return True

    def session_started(self, charger) -> None:
        """Give the new session its own simulated EVSE."""
        self.evses[charger] = SimulatedEVSE(charger, self.clock, self.settings, self.take_trigger)

    def session_ended(self, charger) -> None:
        """Stop and drop that session's simulated EVSE."""
        evse = self.evses.pop(charger, None)
        if evse is not None:
            evse.stop()
            self.log.info(
                "simulated EVSE for {charger}: {energy:.3f} kWh delivered",
                charger=charger,
                energy=evse.energy_wh / 1000.0,
            )
