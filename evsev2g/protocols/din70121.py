"""
DIN SPEC 70121 DC charging: the SECC state machine.

One :class:`DINStateMachine` per V2G session.  It takes decoded
``V2G_Message`` requests and returns :class:`~evsev2g.protocols.context.Reply`
objects; time comes from the injected clock, EVSE values from the session's
charger seam, which it also tells what the EV does (the vars EvseV2G
publishes at each step).  It never waits: a charger answer that has not
arrived yet gives EVSEProcessing=Ongoing and is looked at again at the
EV's next request.

Sequence (allowed next requests after each response, [V2G-DC-437]…[V2G-DC-469]):
SessionSetup → ServiceDiscovery → ServicePaymentSelection →
ContractAuthentication (while Ongoing) → ChargeParameterDiscovery (while
Ongoing) → CableCheck (while Ongoing) → PreCharge* → PowerDelivery(ready) →
CurrentDemand* → PowerDelivery(not ready) → WeldingDetection* → SessionStop.
SessionStop is accepted in every state after SessionSetup outside the
charge loop (real cars send it straight after ChargeParameterDiscovery).

Response bodies live in :mod:`evsev2g.protocols.din70121_bodies`.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from twisted.plugin import IPlugin
from zope.interface import implementer

from evsev2g.charger import DC_ENERGY_MODES
from evsev2g.exi.message import Message
from evsev2g.interfaces import IProtocolStateMachine, IProtocolVersion
from evsev2g.protocols.context import ProtocolContext, Reply, body_name
from evsev2g.protocols.din70121_bodies import DINBodies
from evsev2g.protocols.physical import to_number
from evsev2g.protocols.teardown import publish_session_end
from evsev2g.responses import (
    DIN70121,
    AuthorizationRejected,
    AuthorizationTimeout,
    CableCheckFailed,
    ChargerStopped,
    EmergencyShutdown,
    NoChargeServiceSelected,
    OngoingTimeout,
    PaymentSelectionInvalid,
    PowerDeliveryNotApplied,
    ProtocolError,
    SequenceError,
    ServiceSelectionInvalid,
    TariffSelectionInvalid,
    UnknownSession,
    WrongChargeParameter,
    WrongEnergyTransfer,
    closes_connection,
    response_code,
)

__all__ = ["DIN_NAMESPACE", "State", "DINStateMachine", "DIN70121Version", "REQUESTS"]

DIN_NAMESPACE = "urn:din:70121:2012:MsgDef"

#: Every request of the DIN schema.  Those outside the DC/EIM sequence
#: (ServiceDetail, PaymentDetails, ChargingStatus, MeteringReceipt,
#: Certificate*) are answered FAILED_SequenceError.
REQUESTS = frozenset(
    {
        "SessionSetupReq", "ServiceDiscoveryReq", "ServiceDetailReq", "ServicePaymentSelectionReq",
        "PaymentDetailsReq", "ContractAuthenticationReq", "ChargeParameterDiscoveryReq",
        "PowerDeliveryReq", "ChargingStatusReq", "MeteringReceiptReq", "SessionStopReq",
        "CertificateUpdateReq", "CertificateInstallationReq", "CableCheckReq", "PreChargeReq",
        "CurrentDemandReq", "WeldingDetectionReq",
    }
)


class State(enum.Enum):
    """Where the session is: named after what was last answered."""

    HANDSHAKEN = "waiting for SessionSetupReq"
    SESSION_SET_UP = "after SessionSetupRes"
    SERVICES_DISCOVERED = "after ServiceDiscoveryRes"
    PAYMENT_SELECTED = "after ServicePaymentSelectionRes"
    AUTHORIZING = "after ContractAuthenticationRes(Ongoing)"
    AUTHORIZED = "after ContractAuthenticationRes(Finished)"
    DISCOVERING_PARAMETERS = "after ChargeParameterDiscoveryRes(Ongoing)"
    PARAMETERS_DISCOVERED = "after ChargeParameterDiscoveryRes(Finished)"
    CABLE_CHECKING = "after CableCheckRes(Ongoing)"
    CABLE_CHECKED = "after CableCheckRes(Finished)"
    PRE_CHARGING = "after PreChargeRes"
    POWER_DELIVERY_STARTED = "after PowerDeliveryRes(ReadyToCharge)"
    CHARGING = "after CurrentDemandRes"
    POWER_DELIVERY_STOPPED = "after PowerDeliveryRes(not ReadyToCharge) or WeldingDetectionRes"
    FAILED = "after a FAILED response (the EV is to stop)"
    STOPPED = "after SessionStopRes"


_STOP = "SessionStopReq"

#: Requests that are part of shutting down: answered even while the
#: charger is in emergency shutdown or has stopped, and all the EV may send
#: after a FAILED response.
_SHUTDOWN_PATH = frozenset({"PowerDeliveryReq", "WeldingDetectionReq", _STOP})

#: Allowed requests per state ([V2G-DC-437]…[V2G-DC-469]).
ALLOWED = {
    State.HANDSHAKEN: {"SessionSetupReq"},
    State.SESSION_SET_UP: {"ServiceDiscoveryReq", _STOP},
    State.SERVICES_DISCOVERED: {"ServicePaymentSelectionReq", _STOP},
    State.PAYMENT_SELECTED: {"ContractAuthenticationReq", _STOP},
    State.AUTHORIZING: {"ContractAuthenticationReq", _STOP},
    State.AUTHORIZED: {"ChargeParameterDiscoveryReq", _STOP},
    State.DISCOVERING_PARAMETERS: {"ChargeParameterDiscoveryReq", _STOP},
    State.PARAMETERS_DISCOVERED: {"CableCheckReq", _STOP},
    State.CABLE_CHECKING: {"CableCheckReq", _STOP},
    State.CABLE_CHECKED: {"PreChargeReq", _STOP},
    State.PRE_CHARGING: {"PreChargeReq", "PowerDeliveryReq", _STOP},
    State.POWER_DELIVERY_STARTED: {"CurrentDemandReq"},
    State.CHARGING: {"CurrentDemandReq", "PowerDeliveryReq"},
    State.POWER_DELIVERY_STOPPED: {"WeldingDetectionReq", _STOP},
    # After a FAILED response the EV ends the session; a car that was
    # charging first opens its contactors (PowerDelivery(false), welding).
    State.FAILED: _SHUTDOWN_PATH,
    State.STOPPED: set(),
}


def _bounded(value: float, low: float, high: float) -> float:
    """Clamp a number the EV sent into the range of its EVerest var."""
    return low if value < low else high if value > high else value


@implementer(IProtocolStateMachine)
class DINStateMachine:
    """
    The DIN SPEC 70121 DC state machine of one session.

    :ivar state: the :class:`State`.
    :ivar session_id: our SessionID (``bytes``) once SessionSetupRes went out.
    :ivar last_request: body name of the last request handled.
    :ivar energy_flowing: CurrentDemand started and no PowerDelivery stop yet.
    :ivar output_engaged: the charger's DC output may be on: cable check
        started and no ``dc_open_contactor`` since.
    :ivar clean_stop: the session ended with SessionStopRes OK.
    """

    def __init__(self, context: ProtocolContext) -> None:
        """
        :param context: charger, clock, settings, session-id source, logger.
        """
        self.context = context
        self.charger = context.charger
        self.clock = context.clock
        self.settings = context.settings
        self.log = context.log
        self.state = State.HANDSHAKEN
        self.session_id: bytes | None = None
        self.last_request: str | None = None
        self.energy_flowing = False
        self.output_engaged = False
        self.clean_stop = False
        self.finished = False
        self._auth_started: float | None = None
        self._auth_requested = False
        self._parameters_started: float | None = None
        self._cable_check_started: float | None = None
        self._pre_charge_started: float | None = None
        self._pre_charge_late_logged = False
        self._setup_finished_published = False
        self._incompatible = False
        self.bodies = DINBodies(self)
        self._handlers = {
            "SessionSetupReq": self._session_setup,
            "ServiceDiscoveryReq": self._service_discovery,
            "ServicePaymentSelectionReq": self._service_payment_selection,
            "ContractAuthenticationReq": self._contract_authentication,
            "ChargeParameterDiscoveryReq": self._charge_parameter_discovery,
            "CableCheckReq": self._cable_check,
            "PreChargeReq": self._pre_charge,
            "PowerDeliveryReq": self._power_delivery,
            "CurrentDemandReq": self._current_demand,
            "WeldingDetectionReq": self._welding_detection,
            "SessionStopReq": self._session_stop,
        }

    # -- the one entry point ---------------------------------------------

    def handle(self, request: Message) -> Reply:
        """
        Answer one request.

        Checks in this order: a request of the DIN schema at all (else the
        connection closes, nothing can be answered); allowed in the state
        (FAILED_SequenceError, which wins over the session check, as ISO
        15118-4 tests it); the SessionID (FAILED_UnknownSession,
        [V2G2-460]); the charger's emergency shutdown or expired stop
        request (FAILED, except on the shutdown path); then the message's
        own handler.

        :param request: a ``V2G_Message``.
        :returns: a :class:`Reply`; ``Reply.message`` is ``None`` when there
            is nothing to answer and the connection must close.
        """
        name = body_name(request)
        if name not in REQUESTS:
            self.log.warn(
                "{session}: DIN message {name!r} is not a request; closing", session=self.context.label, name=name
            )
            return Reply(None, close=True, failed=True, name="")
        self.last_request = name
        body = request.Body.get(name)
        response_name = name[:-3] + "Res"
        try:
            if name not in ALLOWED[self.state]:
                raise SequenceError(f"{name} not allowed {self.state.value}")
            if self.state is not State.HANDSHAKEN:
                received = request.Header.SessionID
                if received != self.session_id:
                    raise UnknownSession(f"SessionID {received.hex()} is not ours ({self.session_id.hex()})")
            if name not in _SHUTDOWN_PATH:
                self._check_charger_go_ahead()
            reply_body, close = self._handlers[name](body)
        except ProtocolError as error:
            return self._failed(error, name, response_name, request, body)
        return Reply(self._message(response_name, reply_body, request), close=close, name=response_name)

    def _failed(self, error: ProtocolError, name, response_name, request, body) -> Reply:
        code = response_code(error, DIN70121)
        close = closes_connection(error, self.settings.terminate_connection_on_failed_response)
        self.log.warn(
            "{session}: {request} answered {code}: {why}",
            session=self.context.label,
            request=name,
            code=code,
            why=str(error) or type(error).__name__,
        )
        reply_body = self.bodies.build(response_name, code, body)
        if close:
            self.state = State.STOPPED
        elif self.state is not State.HANDSHAKEN:
            self.state = State.FAILED
        return Reply(self._message(response_name, reply_body, request), close=close, failed=True, name=response_name)

    def _message(self, response_name: str, body: Message, request: Message) -> Message:
        session_id = self.session_id
        if session_id is None:
            session_id = request.Header.SessionID
        return Message(
            "V2G_Message",
            Header=Message("Header", SessionID=session_id),
            Body=Message("Body", [(response_name, body)]),
        )

    def _check_charger_go_ahead(self) -> None:
        charger = self.charger
        if charger.emergency:
            raise EmergencyShutdown("the charger reports an emergency shutdown")
        stop = charger.stop_requested_at
        if stop is not None and self.clock.seconds() - stop >= self.settings.timers.stop_charging_grace:
            raise ChargerStopped("the charger asked to stop and the EV did not end the session")

    # -- status the bodies report ------------------------------------------

    def status_code(self, normal: str) -> str:
        """
        DC_EVSEStatusCode for a response: ``normal`` unless the charger
        reports an error or asked to stop.  A stop by the charger is
        signalled with EVSE_Shutdown, never with EVSENotification, which DIN
        keeps at None ([V2G-DC-663], [V2G-DC-500]).

        :param normal: the code of the phase (EVSE_Ready …).
        :returns: the DC_EVSEStatusCodeType string.
        """
        charger = self.charger
        errors = charger.errors
        if errors:
            if "Error_EmergencyShutdown" in errors:
                return "EVSE_EmergencyShutdown"
            if "Error_Malfunction" in errors:
                return "EVSE_Malfunction"
            if "Error_UtilityInterruptEvent" in errors:
                return "EVSE_UtilityInterruptEvent"
        if charger.stop_requested_at is not None or self._incompatible:
            return "EVSE_Shutdown"
        return normal

    # -- handlers: each returns (response body, close) -----------------------

    def _session_setup(self, body):
        """[V2G-DC-393]: always a new session with a fresh SessionID."""
        evcc_id = body.EVCCID or b""
        if len(evcc_id) == 6:
            self.charger.publish("evcc_id", ":".join(f"{b:02X}" for b in evcc_id))
        else:
            self.log.info(
                "{session}: EVCCID {evccid} is not a 6-byte MAC; evcc_id not published",
                session=self.context.label,
                evccid=evcc_id.hex(),
            )
        self.session_id = self.context.new_session_id()
        self.state = State.SESSION_SET_UP
        return self.bodies.session_setup("OK_NewSessionEstablished"), False

    def _service_discovery(self, body):
        """ExternalPayment only ([V2G-DC-252]); no ServiceList ([V2G-DC-628], [V2G-DC-629])."""
        self.state = State.SERVICES_DISCOVERED
        return self.bodies.service_discovery("OK"), False

    def _service_payment_selection(self, body):
        """Only ExternalPayment and the charge service may be selected."""
        option = body.SelectedPaymentOption
        if option != "ExternalPayment":
            raise PaymentSelectionInvalid(f"{option} selected; DIN offers ExternalPayment only")
        selected = [each.ServiceID for each in body.SelectedServiceList.getlist("SelectedService")]
        if 1 not in selected:
            raise NoChargeServiceSelected(f"services {selected} do not include the charge service 1")
        if any(each != 1 for each in selected):
            raise ServiceSelectionInvalid(f"services {selected}: only the charge service 1 is offered")
        self.charger.publish("selected_payment_option", "ExternalPayment")
        self._auth_started = self.clock.seconds()
        self.state = State.PAYMENT_SELECTED
        return self.bodies.simple("ServicePaymentSelectionRes", "OK"), False

    def _contract_authentication(self, body):
        """
        EIM: ``require_auth_eim`` on the first request, Ongoing until
        ``authorization_response``; FAILED when it is not Accepted or when
        ``auth_timeout_eim`` (if not 0) passes first.
        """
        if not self._auth_requested:
            self._auth_requested = True
            self.charger.publish("require_auth_eim")
        authorized = self.charger.authorized
        if authorized:
            self.state = State.AUTHORIZED
            return self.bodies.processing("ContractAuthenticationRes", "OK", "Finished"), False
        if authorized is False:
            raise AuthorizationRejected(f"authorization {self.charger.authorization_status}")
        limit = self.settings.auth_timeout_eim
        if limit and self.clock.seconds() - self._auth_started >= limit:
            raise AuthorizationTimeout(f"not authorized within auth_timeout_eim={limit:g} s")
        self.state = State.AUTHORIZING
        return self.bodies.processing("ContractAuthenticationRes", "OK", "Ongoing"), False

    def _charge_parameter_discovery(self, body):
        """
        Publishes what the EV asks for; FAILED_WrongEnergyTransferType for
        a non-DC request, FAILED_WrongChargeParameter for AC parameters or
        an EV whose maximum is below the charger's minimum (IEC 61851-23
        CC.5.6).  Ongoing while the charger has offered no power yet (cars
        abort on zero power), bounded by V2G_SECC_Ongoing_Performance_Time.
        """
        requested = body.EVRequestedEnergyTransferType
        parameter = body.get("DC_EVChargeParameter")
        if requested not in DC_ENERGY_MODES:
            raise WrongEnergyTransfer(f"{requested} requested; this is a DC charger")
        if parameter is None:
            raise WrongChargeParameter("no DC_EVChargeParameter")
        charger = self.charger
        offered = self.bodies.energy_transfer_type()
        if requested != offered:
            self.log.info(
                "{session}: EV requests {requested}, {offered} was offered; accepted (both DC)",
                session=self.context.label,
                requested=requested,
                offered=offered,
            )
        charger.publish("requested_energy_transfer_mode", requested)
        self._publish_ev_status(parameter.DC_EVStatus)
        ev_current = to_number(parameter.EVMaximumCurrentLimit)
        ev_voltage = to_number(parameter.EVMaximumVoltageLimit)
        ev_power = to_number(parameter.get("EVMaximumPowerLimit"))
        self._publish_ev_maximum_limits(ev_current, ev_power, ev_voltage)
        for element, var, high in (
            ("EVEnergyCapacity", "dc_ev_energy_capacity", 200000),
            ("EVEnergyRequest", "dc_ev_energy_request", 200000),
        ):
            value = to_number(parameter.get(element))
            if value is not None:
                charger.publish_on_change(var, _bounded(value, 0, high))
        for element, var in (("FullSOC", "dc_full_soc"), ("BulkSOC", "dc_bulk_soc")):
            value = parameter.get(element)
            if value is not None:
                charger.publish_on_change(var, _bounded(value, 0, 100))
        min_current = charger.dc_limit("min_export_current_A", "evse_minimum_current_limit", "min")
        min_voltage = charger.dc_limit("min_export_voltage_V", "evse_minimum_voltage_limit", "min")
        if (min_current is not None and ev_current < min_current) or (min_voltage is not None and ev_voltage < min_voltage):
            self._incompatible = True
            raise WrongChargeParameter(
                f"EV maximum {ev_voltage:g} V / {ev_current:g} A is below the charger minimum {min_voltage} V / {min_current} A"
            )
        if self._parameters_started is None:
            self._parameters_started = self.clock.seconds()
        max_power = charger.dc_limit("max_export_power_W", "evse_maximum_power_limit")
        max_current = charger.dc_limit("max_export_current_A", "evse_maximum_current_limit")
        if not max_power or not max_current or max_power <= 0 or max_current <= 0:
            if self.clock.seconds() - self._parameters_started >= self.settings.timers.ongoing:
                raise OngoingTimeout("the charger offered no power within V2G_SECC_Ongoing_Performance_Time")
            self.state = State.DISCOVERING_PARAMETERS
            return self.bodies.charge_parameter_discovery("OK", "Ongoing"), False
        self.state = State.PARAMETERS_DISCOVERED
        return self.bodies.charge_parameter_discovery("OK", "Finished"), False

    def _cable_check(self, body):
        """
        ``start_cable_check`` on the first request; Finished once
        ``cable_check_finished(True)`` arrived and the isolation is Valid or
        Warning ([V2G-DC-499]); FAILED on an isolation fault or after
        V2G_SECC_CableCheck_Performance_Time.
        """
        charger = self.charger
        self._publish_ev_status(body.DC_EVStatus)
        now = self.clock.seconds()
        if self._cable_check_started is None:
            self._cable_check_started = now
            charger.publish("start_cable_check")
            self.output_engaged = True
        isolation = charger.isolation_status
        if isolation == "Fault":
            raise CableCheckFailed("the isolation monitor reports a fault")
        if charger.cable_check_ok and isolation in ("Valid", "Warning"):
            self.state = State.CABLE_CHECKED
            return self.bodies.cable_check("OK", "Finished"), False
        if now - self._cable_check_started >= self.settings.timers.cable_check:
            raise OngoingTimeout("cable check not finished within V2G_SECC_CableCheck_Performance_Time")
        self.state = State.CABLE_CHECKING
        return self.bodies.cable_check("OK", "Ongoing"), False

    def _pre_charge(self, body):
        """``start_pre_charge`` on the first request; the EV's target is passed on."""
        charger = self.charger
        now = self.clock.seconds()
        if self._pre_charge_started is None:
            self._pre_charge_started = now
            charger.publish("start_pre_charge")
        elif not self._pre_charge_late_logged and now - self._pre_charge_started > self.settings.timers.pre_charge:
            self._pre_charge_late_logged = True
            self.log.warn(
                "{session}: pre-charge longer than V2G_SECC_PreCharge_Performance_Time; the EV may give up",
                session=self.context.label,
            )
        self._publish_ev_status(body.DC_EVStatus)
        self._publish_target(body)
        self.state = State.PRE_CHARGING
        return self.bodies.pre_charge("OK"), False

    def _power_delivery(self, body):
        """
        ReadyToChargeState true: ``v2g_setup_finished``; FAILED_PowerDeliveryNotApplied
        unless the charger is EVSE_Ready.  False: ``current_demand_finished``
        (if charging) and ``dc_open_contactor``.  A ChargingProfile must name
        SAScheduleTuple 1; profiles above PMax are only logged (cars get
        schedules wrong).
        """
        ready = body.ReadyToChargeState
        parameter = body.get("DC_EVPowerDeliveryParameter")
        if parameter is not None:
            self._publish_ev_status(parameter.DC_EVStatus)
        if ready:
            if self.state is not State.PRE_CHARGING:
                raise SequenceError(f"PowerDelivery(ReadyToCharge) {self.state.value}")
            self._check_profile(body.get("ChargingProfile"))
            if not self._setup_finished_published:
                self._setup_finished_published = True
                self.charger.publish("v2g_setup_finished")
            status = self.status_code("EVSE_Ready")
            if status != "EVSE_Ready":
                raise PowerDeliveryNotApplied(f"charger status is {status}")
            self.state = State.POWER_DELIVERY_STARTED
            return self.bodies.power_delivery("OK", "EVSE_Ready"), False
        if self.energy_flowing:
            self.energy_flowing = False
            self.charger.publish("current_demand_finished")
        self._open_contactor()
        self.state = State.POWER_DELIVERY_STOPPED
        return self.bodies.power_delivery("OK", "EVSE_Shutdown"), False

    def _check_profile(self, profile) -> None:
        if profile is None:
            return
        tuple_id = profile.SAScheduleTupleID
        if tuple_id != 1:
            raise TariffSelectionInvalid(f"ChargingProfile names SAScheduleTuple {tuple_id}; only 1 was offered")
        pmax = self.bodies.pmax()
        for entry in profile.getlist("ProfileEntry"):
            if entry.ChargingProfileEntryMaxPower > pmax:
                self.log.info(
                    "{session}: ChargingProfile entry {power} W exceeds PMax {pmax} W (tolerated)",
                    session=self.context.label,
                    power=entry.ChargingProfileEntryMaxPower,
                    pmax=pmax,
                )
                break

    def _current_demand(self, body):
        """
        ``current_demand_started`` on the first request; the EV's values are
        published on change; the answer carries the present values and the
        present limits.  Nothing here waits: it is answered from cached
        values (V2G_SECC_CurrentDemand performance time 25 ms).
        """
        charger = self.charger
        if self.state is State.POWER_DELIVERY_STARTED:
            self.energy_flowing = True
            charger.publish("current_demand_started")
        self._publish_ev_status(body.DC_EVStatus)
        target_voltage, target_current = self._publish_target(body)
        maximum = [to_number(body.get(name)) for name in ("EVMaximumCurrentLimit", "EVMaximumPowerLimit", "EVMaximumVoltageLimit")]
        if any(value is not None for value in maximum):
            self._publish_ev_maximum_limits(*maximum)
        bulk = body.get("BulkChargingComplete")
        if bulk is not None:
            charger.publish_on_change("dc_bulk_charging_complete", bulk)
        charger.publish_on_change("dc_charging_complete", body.ChargingComplete)
        self._publish_remaining_time(body)
        self.state = State.CHARGING
        return self.bodies.current_demand("OK", target_voltage, target_current), False

    def _welding_detection(self, body):
        """Publishes the EV status and answers the present voltage."""
        self._publish_ev_status(body.DC_EVStatus)
        self.state = State.POWER_DELIVERY_STOPPED
        return self.bodies.welding_detection("OK"), False

    def _session_stop(self, body):
        """OK, then close; ``dlink_terminate`` follows once the connection is closed."""
        # SessionStop is not allowed in the charge loop, but after a FAILED
        # answer the EV may go straight here.
        self.end_energy_transfer()
        self.clean_stop = True
        self.state = State.STOPPED
        return self.bodies.simple("SessionStopRes", "OK"), True

    # -- vars ----------------------------------------------------------------

    def _publish_ev_status(self, status) -> None:
        payload = {
            "dc_ev_ready": status.EVReady,
            "dc_ev_error_code": status.EVErrorCode,
            "dc_ev_ress_soc": _bounded(status.EVRESSSOC, 0, 100),
        }
        for element, key in (("EVCabinConditioning", "dc_ev_cabin_conditioning"), ("EVRESSConditioning", "dc_ev_ress_conditioning")):
            value = status.get(element)
            if value is not None:
                payload[key] = value
        self.charger.publish_on_change("dc_ev_status", payload)

    def _publish_target(self, body) -> tuple[float, float]:
        voltage = to_number(body.EVTargetVoltage)
        current = to_number(body.EVTargetCurrent)
        # Cars send targets below the battery voltage, even negative, early on
        # (Skoda Enyaq): passed on, clamped only to the var's range.
        self.charger.publish_on_change(
            "dc_ev_target_voltage_current",
            {"dc_ev_target_voltage": _bounded(voltage, -2, 1500), "dc_ev_target_current": _bounded(current, -2, 10000)},
        )
        return voltage, current

    def _publish_ev_maximum_limits(self, current, power, voltage) -> None:
        payload = {}
        if current is not None:
            payload["dc_ev_maximum_current_limit"] = _bounded(current, -2, 10000)
        if power is not None:
            payload["dc_ev_maximum_power_limit"] = _bounded(power, -2, 350000)
        if voltage is not None:
            payload["dc_ev_maximum_voltage_limit"] = _bounded(voltage, -2, 1500)
        self.charger.publish_on_change("dc_ev_maximum_limits", payload)

    def _publish_remaining_time(self, body) -> None:
        payload = {}
        now = self.clock.seconds()
        for element, key in (
            ("RemainingTimeToFullSoC", "ev_remaining_time_to_full_soc"),
            ("RemainingTimeToBulkSoC", "ev_remaining_time_to_full_bulk_soc"),
        ):
            seconds = to_number(body.get(element))
            if seconds is not None:
                when = datetime.fromtimestamp(max(0.0, now + seconds), timezone.utc).replace(microsecond=0)
                payload[key] = when.isoformat().replace("+00:00", "Z")
        if payload:
            self.charger.publish_on_change("dc_ev_remaining_time", payload)

    # -- end -----------------------------------------------------------------

    def end_energy_transfer(self) -> None:
        """
        The session is ending: publish ``current_demand_finished`` if energy
        is flowing and ``dc_open_contactor`` if the output may be on (from the
        cable check on), now, not after the connection's orderly close, which
        may still take seconds.
        """
        if self.energy_flowing:
            self.energy_flowing = False
            self.charger.publish("current_demand_finished")
        if self.output_engaged:
            self._open_contactor()

    def _open_contactor(self) -> None:
        self.output_engaged = False
        self.charger.publish("dc_open_contactor")

    def finish(self, reason: str) -> None:
        """
        Publish the end-of-session vars once: whatever
        :meth:`end_energy_transfer` has not published yet,
        ``hlc_session_failed`` unless the session stopped cleanly or the
        charger stopped it, and ``dlink_terminate`` (after SessionStop) or
        ``dlink_error``.

        :param reason: why the session ended, for the log.
        """
        if self.finished:
            return
        self.finished = True
        charger = self.charger
        self.log.info(
            "{session}: DIN session ends ({reason}); last request {last}",
            session=self.context.label,
            reason=reason,
            last=self.last_request,
        )
        self.end_energy_transfer()
        publish_session_end(
            charger,
            last_request=self.last_request,
            clean_stop=self.clean_stop,
            dlink="terminate",
            charger_stopped=charger.stop_requested_at is not None or charger.emergency,
        )


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
        """:returns: a :class:`DINStateMachine` for one session."""
        return DINStateMachine(context)

    def __repr__(self) -> str:
        return "<DIN70121Version>"
