"""
ISO 15118-2 AC: the AC charge parameters, the contactor at
PowerDelivery(Start/Stop), ChargingStatus and MeteringReceipt, as a mixin
of :class:`~evsev2g.protocols.iso15118_2.machine.ISO2StateMachine`.

PowerDelivery(Start) publishes ``ac_close_contactor`` unless the charger
reports the contactor closed already, and waits up to
:data:`~evsev2g.timers.AC_CONTACTOR_CLOSE_TIME` for
``ac_contactor_closed(true)`` (FAILED_ContactorError after that,
[V2G2-860], [V2G2-862], [V2G2-865]); the answer is a ``Deferred`` meanwhile,
inside PowerDelivery's 4.5 s performance time.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from evsev2g.protocols.iso15118_2.states import State
from evsev2g.protocols.physical import clamp_to_var, to_number
from evsev2g.responses import ContactorError
from evsev2g.timers import AC_CONTACTOR_CLOSE_TIME

__all__ = ["ACCharging", "AC_EV_VARS"]

#: AC_EVChargeParameter element → the var it is published in.
AC_EV_VARS = (
    ("EAmount", "ac_eamount"),
    ("EVMaxVoltage", "ac_ev_max_voltage"),
    ("EVMaxCurrent", "ac_ev_max_current"),
    ("EVMinCurrent", "ac_ev_min_current"),
)


class ACCharging:
    """AC handlers (a mixin)."""

    def init_ac(self) -> None:
        """Per-session AC state; called from ``__init__``."""
        #: ``ac_close_contactor`` was published and no ``ac_open_contactor`` since
        self.contactor_requested = False

    def phases(self) -> int:
        """Phases in use: 3 for AC_three_phase_core, else 1."""
        return 3 if self.energy_mode == "AC_three_phase_core" else 1

    def ac_max_current(self) -> float | None:
        """
        EVSEMaxCurrent offered in ChargeParameterDiscovery: the nominal
        current from ``update_ac_maximum_limits`` (charge power / nominal
        voltage / phases, EvseV2G PR #1872: never the momentary current,
        which may be 0 and makes cars abort), else ``update_ac_max_current``.
        """
        charger = self.charger
        voltage = charger.physical_values.get("ac_nominal_voltage")
        limits = charger.ac_maximum_limits
        if limits and voltage:
            return limits["charge_power"]["total"] / voltage / self.phases()
        return charger.ac_max_current

    def ac_charge_parameters(self, parameter) -> tuple[bool, float | None, float]:
        """
        Publish the EV's AC values (on change, clamped into the vars'
        ranges); Ongoing while the charger has no nominal voltage or
        maximum current to offer.

        :returns: (finished, EVSEMaxCurrent, PMax in W).
        """
        for element, var in AC_EV_VARS:
            value = to_number(parameter.get(element))
            if value is not None:
                self.charger.publish_on_change(var, clamp_to_var(var, value))
        voltage = self.charger.physical_values.get("ac_nominal_voltage") or 0
        current = self.ac_max_current()
        ready = bool(voltage and current and current > 0)
        finished = self.parameters_wait.poll(ready, self.settings.timers.ongoing)
        return finished, current, (current or 0) * voltage * self.phases()

    def ac_start_power(self):
        """
        PowerDelivery(Start) in AC: ``v2g_setup_finished`` once, the
        contactor closed (see the module docstring).

        :returns: (body, close), or a ``Deferred`` firing with it.
        """
        self.publish_setup_finished()
        charger = self.charger
        self.contactor_requested = True
        if charger.ac_contactor_is_closed:
            return self._ac_started(None)
        closed = Deferred()

        def observe(name, arguments):
            if name == "ac_contactor_closed" and arguments["status"] and not closed.called:
                closed.callback(None)

        def too_late():
            if not closed.called:
                closed.errback(ContactorError(f"the contactor did not close within {AC_CONTACTOR_CLOSE_TIME:g} s"))

        # Observe first: a charger may answer while the var is being published.
        stop_observing = charger.observe(observe)
        timer = self.clock.callLater(AC_CONTACTOR_CLOSE_TIME, too_late)

        def done(result):
            stop_observing()
            if timer.active():
                timer.cancel()
            return result

        closed.addBoth(done)
        charger.publish("ac_close_contactor")
        return closed.addCallback(self._ac_started)

    def _ac_started(self, _):
        self.state = State.POWER_DELIVERY_STARTED
        return self.bodies.ac_power_delivery(), False

    def ac_stop_power(self) -> None:
        """PowerDelivery(Stop) in AC: ``ac_open_contactor``."""
        self.open_ac_contactor()
        self.state = State.POWER_DELIVERY_STOPPED

    def open_ac_contactor(self) -> None:
        """``ac_open_contactor`` if it was asked to close."""
        if self.contactor_requested:
            self.contactor_requested = False
            self.charger.publish("ac_open_contactor")

    def _charging_status(self, body):
        """
        EVSEID, the tuple, EVSEMaxCurrent (``update_ac_max_current``),
        MeterInfo once per ``update_meter_info`` (then
        ``meter_info_requested`` for the next), ReceiptRequired (a receipt
        pending allows only MeteringReceipt next, [V2G2-568]).  Answered
        from cached values.
        """
        self.note_charge_loop()
        reply = self.bodies.charging_status(self.charger.ac_max_current)
        self.state = State.RECEIPT_REQUIRED if reply.ReceiptRequired else State.CHARGING
        return reply, False

    def _metering_receipt(self, body):
        """EIM: OK (nothing to verify); Contract: the contract path checks the signature first."""
        self.contract.metering_receipt(body)
        self.state = State.CHARGING
        return self.bodies.metering_receipt(), False
