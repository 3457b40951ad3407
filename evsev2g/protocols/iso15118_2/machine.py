"""
The ISO 15118-2 SECC state machine (AC and DC, external identification;
Plug & Charge through the contract seam of
:mod:`~evsev2g.protocols.iso15118_2.contract`).

:class:`ISO2StateMachine` is the protocol base
(:class:`~evsev2g.protocols.base.SequenceStateMachine`: dispatch, SessionID
check, FAILED handling) with the message groups mixed in:
:mod:`~evsev2g.protocols.iso15118_2.services` (session and services),
:mod:`~evsev2g.protocols.iso15118_2.authorization` (authorization and
charge parameters), :mod:`~evsev2g.protocols.iso15118_2.ac` and the DC steps
DIN shares (:mod:`evsev2g.protocols.dc`).  This module holds what ties them:
PowerDelivery (Start, Stop, Renegotiate for both kinds), the EVSE
notification (charger-initiated stop, pause, no-energy pause,
renegotiation) and the end of the energy transfer.

Sequence ([V2G2-542]…[V2G2-596], :mod:`~evsev2g.protocols.iso15118_2.states`):
SessionSetup → ServiceDiscovery → ServiceDetail* → PaymentServiceSelection →
Authorization* → ChargeParameterDiscovery* → AC: PowerDelivery(Start) →
ChargingStatus*/MeteringReceipt → PowerDelivery(Stop) → SessionStop; DC:
CableCheck* → PreCharge* → PowerDelivery(Start) → CurrentDemand*/MeteringReceipt
→ PowerDelivery(Stop) → WeldingDetection* → SessionStop (Terminate or Pause).
PowerDelivery(Renegotiate) from the charge loop goes back to
ChargeParameterDiscovery ([V2G2-812]).
"""

from __future__ import annotations

from zope.interface import implementer

from evsev2g.charger import DC_ENERGY_MODES
from evsev2g.interfaces import IProtocolStateMachine
from evsev2g.protocols.base import SequenceStateMachine
from evsev2g.protocols.context import ProtocolContext
from evsev2g.protocols.dc import ISOLATION_OK, DCChargeLoop
from evsev2g.protocols.iso15118_2.ac import ACCharging
from evsev2g.protocols.iso15118_2.authorization import AuthorizationAndParameters
from evsev2g.protocols.iso15118_2.bodies import SA_SCHEDULE_TUPLE_ID, ISO2Bodies
from evsev2g.protocols.iso15118_2.contract import contract_path
from evsev2g.protocols.iso15118_2.services import SessionAndServices
from evsev2g.protocols.iso15118_2.states import ALLOWED_AC, ALLOWED_DC, CHARGE_LOOP, REQUESTS, SHUTDOWN_PATH, State
from evsev2g.protocols.physical import to_number
from evsev2g.responses import (
    ISO15118_2,
    ChargerStopped,
    PowerDeliveryNotApplied,
    SequenceError,
    TariffSelectionInvalid,
)
from evsev2g.timers import NO_ENERGY_PAUSE_NOTIFICATION_DELAY, RENEGOTIATION_NOTIFICATION_DELAY

__all__ = ["ISO2_NAMESPACE", "ISO2StateMachine"]

ISO2_NAMESPACE = "urn:iso:15118:2:2013:MsgDef"

#: No-energy pause modes that refuse PowerDelivery(Start) (IEC 61851-23:2023 CC.3.5).
_PAUSING = frozenset({"PauseBeforeCableCheck", "PauseAfterPrecharge"})


@implementer(IProtocolStateMachine)
class ISO2StateMachine(SessionAndServices, AuthorizationAndParameters, ACCharging, DCChargeLoop, SequenceStateMachine):
    """
    The ISO 15118-2 state machine of one session.

    :ivar dc: the session is DC (decided by the mode the EV requests in
        ChargeParameterDiscovery; before that, whether the charger offers DC).
    :ivar payment_option: the option selected in PaymentServiceSelection.
    :ivar energy_mode: the mode requested in ChargeParameterDiscovery.
    :ivar contract: the contract path (:mod:`~evsev2g.protocols.iso15118_2.contract`).
    """

    protocol = ISO15118_2
    protocol_label = "ISO 15118-2"
    requests = REQUESTS
    shutdown_path = SHUTDOWN_PATH
    State = State
    #: ISO-2 also knows No_IMD: a charger without an isolation monitor finishes on cable_check_finished alone.
    isolation_ok = ISOLATION_OK | {"No_IMD"}

    def __init__(self, context: ProtocolContext) -> None:
        """:param context: charger, clock, settings, session-id source, logger, services, paused store."""
        super().__init__(context)
        self.init_dc()
        self.init_ac()
        self.init_services()
        self.init_parameters()
        modes = self.offered_energy_modes()
        self.dc = any(mode in DC_ENERGY_MODES for mode in modes)
        self.bodies = ISO2Bodies(self)
        self.contract = contract_path(self)
        self.meter_sent = None
        self.offered_basis: float | None = None
        self._pause_seen_at: float | None = None

    # -- SequenceStateMachine ------------------------------------------------

    def allowed(self):
        """The requests allowed now, from the AC or DC table."""
        return (ALLOWED_DC if self.dc else ALLOWED_AC).get(self.state, ())

    def failed_body(self, response_name, code, request_body):
        """The schema's minimum content with the present EVSE status ([V2G2-736])."""
        return self.bodies.failed(response_name, code, request_body)

    def check_charger_go_ahead(self) -> None:
        """
        As the base, and a ``pause_charging(true)`` the EV has not followed
        within the notification's delay ends in FAILED like a stop.
        """
        super().check_charger_go_ahead()
        if not self.charger.pause_requested:
            self._pause_seen_at = None
            return
        now = self.clock.seconds()
        if self._pause_seen_at is None:
            self._pause_seen_at = now
        elif now - self._pause_seen_at >= self.settings.timers.stop_charging_grace:
            raise ChargerStopped("the charger asked to pause and the EV did not stop charging")

    # -- status --------------------------------------------------------------

    def charger_asks_to_stop(self) -> bool:
        """``stop_charging(true)`` or ``pause_charging(true)``: EVSE_Shutdown and StopCharging."""
        return self.charger.stop_requested_at is not None or bool(self.charger.pause_requested)

    def charger_stopping(self) -> bool:
        """As the base, and a pause the charger asked for: no ``hlc_session_failed`` at the end."""
        return super().charger_stopping() or bool(self.charger.pause_requested)

    def notification(self) -> tuple[str, int]:
        """
        EVSENotification and NotificationMaxDelay (s): StopCharging when the
        charger stops or pauses (the EV has the stop grace time to end
        charging), or during a DC no-energy pause (0 s before the cable
        check, 300 s after pre-charge, IEC 61851-23:2023 CC.3.5);
        ReNegotiation when the charger's power behind the offered schedule
        changed during charging; else None.
        """
        if self.charger_asks_to_stop():
            return "StopCharging", int(self.settings.timers.stop_charging_grace)
        mode = self.charger.no_energy_pause_mode
        if self.dc and mode is not None:
            return "StopCharging", 0 if mode == "PauseBeforeCableCheck" else NO_ENERGY_PAUSE_NOTIFICATION_DELAY
        if self.state in CHARGE_LOOP and self.offered_basis is not None and self.schedule_basis() != self.offered_basis:
            return "ReNegotiation", RENEGOTIATION_NOTIFICATION_DELAY
        return "None", 0

    def schedule_basis(self) -> float | None:
        """
        The charger value the offered PMax came from: DC maximum power of
        the power supply, AC ``update_ac_maximum_limits`` power (the momentary
        AC current is EVSEMaxCurrent's business, not a reason to renegotiate).
        """
        if self.dc:
            return self.charger.dc_limit("max_export_power_W")
        limits = self.charger.ac_maximum_limits
        return limits["charge_power"]["total"] if limits else None

    def _charge_parameter_discovery(self, body):
        reply = super()._charge_parameter_discovery(body)
        if self.state is State.PARAMETERS_DISCOVERED:
            self.offered_basis = self.schedule_basis()
        return reply

    _charge_parameter_discovery.__doc__ = AuthorizationAndParameters._charge_parameter_discovery.__doc__

    # -- the charge loop -----------------------------------------------------

    def fresh_meter_info(self) -> dict | None:
        """
        ``update_meter_info``'s Powermeter once per update (EvseV2G), then
        ``meter_info_requested`` so the charger sends the next one.
        """
        meter = self.charger.meter_info
        if not meter or meter is self.meter_sent:
            return None
        self.meter_sent = meter
        self.charger.publish("meter_info_requested")
        return meter

    def note_charge_loop(self) -> None:
        """At the first request of a charge loop, ask for a meter reading."""
        if self.state is State.POWER_DELIVERY_STARTED:
            self.charger.publish("meter_info_requested")

    def _current_demand(self, body):
        self.note_charge_loop()
        reply, close = super()._current_demand(body)
        if reply.get("ReceiptRequired"):
            self.state = State.RECEIPT_REQUIRED
        return reply, close

    _current_demand.__doc__ = DCChargeLoop._current_demand.__doc__

    # -- PowerDelivery -------------------------------------------------------------

    def _power_delivery(self, body):
        """
        Start: from ChargeParameterDiscovery (AC) or PreCharge (DC) only
        ([V2G2-812]), SAScheduleTuple 1 ([V2G2-479]); DC refuses while a
        no-energy pause is pending (FAILED_PowerDeliveryNotApplied,
        ``dc_open_contactor``).  Renegotiate: from the charge loop only,
        back to ChargeParameterDiscovery (DC: output off, cable check again).
        Stop: the contactor opens.  ChargingProfile entries above PMax are
        logged, not refused (cars get schedules wrong; EvseV2G does the same).
        """
        progress = body.ChargeProgress
        if self.dc:
            parameter = body.get("DC_EVPowerDeliveryParameter")
            if parameter is not None:
                self.publish_ev_status(parameter.DC_EVStatus)
        if progress == "Stop":
            if self.dc:
                self.dc_stop_power()
                return self.bodies.power_delivery("OK", "EVSE_Shutdown"), False
            self.ac_stop_power()
            return self.bodies.ac_power_delivery(), False
        if progress == "Renegotiate":
            if self.state is not State.CHARGING:
                raise SequenceError(f"PowerDelivery(Renegotiate) {self.state.value}")
            self._check_schedule(body)
            return self._renegotiate()
        ready = State.PRE_CHARGING if self.dc else State.PARAMETERS_DISCOVERED
        if self.state is not ready:
            raise SequenceError(f"PowerDelivery(Start) {self.state.value}")
        self._check_schedule(body)
        if not self.dc:
            return self.ac_start_power()
        if self.charger.no_energy_pause_mode in _PAUSING:
            self.dc_stop_power()
            raise PowerDeliveryNotApplied(f"no-energy pause {self.charger.no_energy_pause_mode} pending")
        self.dc_start_power()
        return self.bodies.power_delivery("OK", "EVSE_Ready"), False

    def _check_schedule(self, body) -> None:
        tuple_id = body.SAScheduleTupleID
        if tuple_id != SA_SCHEDULE_TUPLE_ID:
            raise TariffSelectionInvalid(f"PowerDelivery names SAScheduleTuple {tuple_id}; only {SA_SCHEDULE_TUPLE_ID} was offered")
        profile = body.get("ChargingProfile")
        if profile is not None and self.offered_pmax is not None:
            powers = (to_number(entry.ChargingProfileEntryMaxPower) for entry in profile.getlist("ProfileEntry"))
            self.tolerate_profile(powers, self.offered_pmax)

    def _renegotiate(self):
        self.parameters_wait.reset()
        self.offered_basis = None
        self.state = State.RENEGOTIATING
        if not self.dc:
            return self.bodies.ac_power_delivery(), False
        # DC goes through the cable check and pre-charge again.
        self.end_energy_transfer()
        self.cable_check_wait.reset()
        self.pre_charge_wait.reset()
        self._pre_charge_late_logged = False
        self.charger.cable_check_ok = None
        return self.bodies.power_delivery("OK", "EVSE_Ready"), False

    # -- end -----------------------------------------------------------------------

    def end_energy_transfer(self) -> None:
        """
        The session is ending: DC ``current_demand_finished`` and
        ``dc_open_contactor`` as far as they are due, AC ``ac_open_contactor``
        if it was asked to close.
        """
        DCChargeLoop.end_energy_transfer(self)
        self.open_ac_contactor()
