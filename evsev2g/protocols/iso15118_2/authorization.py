"""
ISO 15118-2 authorization and charge parameters: PaymentDetails and the
certificate messages (handed to the contract path), Authorization and
ChargeParameterDiscovery for AC and DC, as a mixin of
:class:`~evsev2g.protocols.iso15118_2.machine.ISO2StateMachine`.
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.protocols.dc import utc_timestamp
from evsev2g.protocols.physical import to_number
from evsev2g.protocols.iso15118_2.bodies import NO_ENERGY_PAUSE_SCHEDULE_DURATION, SA_SCHEDULE_DURATION
from evsev2g.protocols.iso15118_2.states import State
from evsev2g.responses import WrongChargeParameter, WrongEnergyTransfer

__all__ = ["AuthorizationAndParameters", "SERVICE_PARAMETERS", "charging_needs"]

#: EVerest SelectedServiceParameters (energy_transfer, connector) per mode.
SERVICE_PARAMETERS = {
    "AC_single_phase_core": ("AC", "SinglePhase"),
    "AC_three_phase_core": ("AC", "ThreePhase"),
    "DC_core": ("DC", "Core"),
    "DC_extended": ("DC", "Extended"),
    "DC_combo_core": ("DC", "Core"),
    "DC_unique": ("DC", "Extended"),
}


class AuthorizationAndParameters:
    """Authorization and ChargeParameterDiscovery handlers (a mixin)."""

    def init_parameters(self) -> None:
        """Per-session parameter state; called from ``__init__``."""
        #: the energy transfer mode the EV requested
        self.energy_mode: str | None = None
        #: PMax (W) of the schedule offered, and the clock time it ends
        self.offered_pmax: float | None = None
        self.schedule_end: float | None = None

    # -- Contract path ---------------------------------------------------------

    def _payment_details(self, body):
        """Contract payment only: the contract path's (FAILED_SequenceError without Plug & Charge)."""
        reply = self.contract.payment_details(body)
        self.state = State.PAYMENT_DETAILS_ACCEPTED
        return reply

    def _certificate_installation(self, body):
        """The contract path's (FAILED_SequenceError without Plug & Charge)."""
        reply = self.contract.certificate_installation(body)
        self.state = State.CERTIFICATE_PROVIDED
        return reply

    def _certificate_update(self, body):
        """The contract path's (FAILED_SequenceError without Plug & Charge)."""
        reply = self.contract.certificate_update(body)
        self.state = State.CERTIFICATE_PROVIDED
        return reply

    # -- Authorization -------------------------------------------------------------

    def _authorization(self, body):
        """
        EIM: ``require_auth_eim`` on the first request,
        Ongoing_WaitingForCustomerInteraction until ``authorization_response``
        (ISO 15118-2 asks for this value while no positive EIM information is
        available), FAILED when rejected or after ``auth_timeout_eim``.  Contract: the contract path's checks first
        (challenge, signature), then the same wait on its terms.
        """
        if self.payment_option == "Contract":
            finished = self.contract.authorization(body)
            waiting = "Ongoing"
        else:
            finished = self.eim_authorized()
            waiting = "Ongoing_WaitingForCustomerInteraction"
        self.state = State.AUTHORIZED if finished else State.AUTHORIZING
        return Message("AuthorizationRes", ResponseCode="OK", EVSEProcessing="Finished" if finished else waiting), False

    # -- ChargeParameterDiscovery ------------------------------------------------------

    def _charge_parameter_discovery(self, body):
        """
        The requested mode must be one offered ([V2G2-476]) and the EV's
        parameters of its kind ([V2G2-477]).  Publishes
        ``requested_energy_transfer_mode``, ``departure_time``, the AC or DC
        EV values and (iso15118_extensions) ``charging_needs`` for OCPP; Ongoing while the charger has no limits to offer
        (bounded by V2G_SECC_Ongoing_Performance_Time); negative EV values
        are refused unless SAE J2847/2 V2H is set up (EvseV2G); once Finished, one
        SAScheduleTuple with one PMax entry (a resumed session keeps its
        schedule, shortened by the pause, [V2G2-741]).
        """
        requested = body.RequestedEnergyTransferMode
        offered = self.offered_energy_modes()
        if requested not in offered:
            raise WrongEnergyTransfer(f"{requested} requested; offered {offered}")
        dc = requested.startswith("DC")
        parameter = body.get("DC_EVChargeParameter" if dc else "AC_EVChargeParameter")
        if parameter is None:
            raise WrongChargeParameter(f"{requested} requested without {'DC' if dc else 'AC'}_EVChargeParameter")
        negative = [name for name, value in parameter.children if isinstance(value, Message) and "Value" in value and to_number(value) < 0]
        if negative and self.charger.sae_j2847_mode != "V2H":
            raise WrongChargeParameter(f"negative EV values {negative} (allowed only for SAE J2847/2 V2H)")
        self.dc = dc
        self.energy_mode = requested
        charger = self.charger
        charger.publish("requested_energy_transfer_mode", requested)
        energy_transfer, connector = SERVICE_PARAMETERS[requested]
        charger.publish_on_change(
            "selected_service_parameters",
            {
                "energy_transfer": energy_transfer,
                "connector": connector,
                "control_mode": "ScheduledControl",
                "mobility_needs_mode": "EVCC",
                "pricing": "NoPricing",
            },
        )
        departure = parameter.get("DepartureTime")
        now = self.clock.seconds()
        if departure is not None:
            charger.publish_on_change("departure_time", utc_timestamp(now + departure))
        charger.publish_on_change("charging_needs", charging_needs(requested, parameter, departure, now))
        if dc:
            finished = self.dc_charge_parameters(parameter)
            pmax = charger.dc_limit("max_export_power_W") or 0
            evse_parameter = self.bodies.dc_charge_parameter()
        else:
            finished, max_current, pmax = self.ac_charge_parameters(parameter)
            evse_parameter = self.bodies.ac_charge_parameter(max_current or 0)
        if not finished:
            self.state = State.DISCOVERING_PARAMETERS
            return self.bodies.charge_parameter_discovery("Ongoing", None, evse_parameter), False
        duration = self._schedule_duration(departure, now)
        if self.resumed is not None and self.resumed.values.get("schedule_pmax") is not None and self.offered_pmax is None:
            pmax = self.resumed.values["schedule_pmax"]
            end = self.resumed.values.get("schedule_end")
            if end is not None:
                duration = max(1, int(end - now))
        self.offered_pmax = pmax
        self.schedule_end = now + duration
        self.state = State.PARAMETERS_DISCOVERED
        schedule = self.bodies.sa_schedule_list(pmax, duration)
        return self.bodies.charge_parameter_discovery("Finished", schedule, evse_parameter), False

    def _schedule_duration(self, departure, now: float) -> int:
        """The EV's departure time, else 24 h; 30 min while a no-energy pause is pending (EvseV2G)."""
        if self.charger.no_energy_pause_mode in ("PauseBeforeCableCheck", "PauseAfterPrecharge"):
            return NO_ENERGY_PAUSE_SCHEDULE_DURATION
        return departure if departure else SA_SCHEDULE_DURATION


#: ChargingNeeds DC fields (EVerest DCChargingParameters) by element.
_DC_NEEDS = (
    ("EVMaximumCurrentLimit", "ev_max_current"),
    ("EVMaximumVoltageLimit", "ev_max_voltage"),
    ("EVMaximumPowerLimit", "ev_max_power"),
    ("EVEnergyCapacity", "ev_energy_capacity"),
    ("EVEnergyRequest", "energy_amount"),
)

#: ChargingNeeds AC fields (EVerest ACChargingParameters) by element.
_AC_NEEDS = (("EAmount", "energy_amount"), ("EVMinCurrent", "ev_min_current"), ("EVMaxCurrent", "ev_max_current"), ("EVMaxVoltage", "ev_max_voltage"))


def charging_needs(requested: str, parameter: Message, departure, now: float) -> dict:
    """
    The ``charging_needs`` payload (EVerest ChargingNeeds, what OCPP's
    NotifyEVChargingNeeds carries) from ChargeParameterDiscoveryReq.

    :param requested: the requested energy transfer mode.
    :param parameter: the AC_ or DC_EVChargeParameter.
    :param departure: DepartureTime in s from now, or ``None``.
    :param now: the clock time.
    """
    needs: dict = {"requested_energy_transfer": requested}
    if departure is not None:
        needs["departure_time"] = utc_timestamp(now + departure)
    if parameter.name == "DC_EVChargeParameter":
        dc = {key: to_number(parameter.get(element)) for element, key in _DC_NEEDS if parameter.get(element) is not None}
        dc["state_of_charge"] = parameter.DC_EVStatus.EVRESSSOC
        for element, key in (("FullSOC", "full_soc"), ("BulkSOC", "bulk_soc")):
            if parameter.get(element) is not None:
                dc[key] = parameter.get(element)
        needs["dc_charging_parameters"] = dc
    else:
        needs["ac_charging_parameters"] = {key: to_number(parameter.get(element)) for element, key in _AC_NEEDS}
    return needs
