"""
ISO 15118-2 session and services: SessionSetup (new or resumed session),
ServiceDiscovery, ServiceDetail, PaymentServiceSelection and SessionStop
(Terminate or Pause), as a mixin of
:class:`~evsev2g.protocols.iso15118_2.machine.ISO2StateMachine`.

Services other than charging come from three places: SAE J2847/2
bidirectional services from ``setup``'s ``sae_j2847_mode``
(``evsev2g_behaviour.md`` §6.2), the contract path's (the certificate
service, Plug & Charge), and the value-added-service registry of the
context (:class:`evsev2g.vas.ServiceRegistry`: ``offered()``,
``parameter_sets(id)``, ``select(list)``), listed only over TLS as EvseV2G
and Josev do (``standards.md`` §2); it bounds every provider's answer
itself.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred

from evsev2g.errors import ServiceUnavailable
from evsev2g.exi.message import Message
from evsev2g.protocols.iso15118_2.states import State
from evsev2g.protocols.paused import PausedSession
from evsev2g.responses import (
    NoChargeServiceSelected,
    PauseNotAllowed,
    PaymentSelectionInvalid,
    ServiceIDInvalid,
    ServiceSelectionInvalid,
)
from evsev2g.vas_messages import parameter_list, selected_services, service_entry

__all__ = ["SessionAndServices", "SAE_J2847_SERVICES", "MAX_SERVICES", "ENERGY_TRANSFER_MODES"]

#: SAE J2847/2 bidirectional services by ``sae_j2847_mode``.
SAE_J2847_SERVICES = {"V2H": (28472, "SAE J2847/2 V2H"), "V2G": (28473, "SAE J2847/2 V2G")}

#: ServiceList holds at most 8 services (ServiceListType).
MAX_SERVICES = 8

#: The EnergyTransferModeType values of ISO 15118-2 (EVerest knows more).
ENERGY_TRANSFER_MODES = ("AC_single_phase_core", "AC_three_phase_core", "DC_core", "DC_extended", "DC_combo_core", "DC_unique")


class SessionAndServices:
    """SessionSetup … PaymentServiceSelection and SessionStop handlers (a mixin)."""

    def init_services(self) -> None:
        """Per-session service state; called from ``__init__``."""
        #: the paused session this one resumed, if any
        self.resumed: PausedSession | None = None
        #: ServiceID → "charge" | "sae" | "contract" | "vas", as last offered
        self.services_offered: dict[int, str] = {}
        self.payment_options_offered: list[str] = []
        self.payment_option: str | None = None

    # -- offers -------------------------------------------------------------

    def offered_payment_options(self) -> list[str]:
        """
        The payment options: the resumed session's only ([V2G2-740]), else
        ``session_setup``'s, Contract only over TLS and with a contract path
        (EvseV2G), ExternalPayment when nothing is left.
        """
        if self.resumed is not None and self.resumed.payment_option:
            return [self.resumed.payment_option]
        options = [
            option
            for option in self.charger.payment_options
            if option != "Contract" or (self.context.secure and self.contract.supports_contract)
        ]
        return options or ["ExternalPayment"]

    def offered_energy_modes(self) -> list[str]:
        """``update_energy_transfer_modes``' modes ISO-2 can name (≤ 6), else DC_extended."""
        modes = [mode for mode in self.charger.energy_transfer_modes if mode in ENERGY_TRANSFER_MODES][:6]
        return modes or ["DC_extended"]

    def _service_entries(self) -> list[tuple[int, str, Message, str | None]]:
        """(ServiceID, kind, Service message, scope) of every service besides charging."""
        entries = []
        sae = SAE_J2847_SERVICES.get(self.charger.sae_j2847_mode)
        if sae is not None:
            entries.append((sae[0], "sae", _service(sae[0], sae[1], "OtherCustom", None, True), None))
        for message in self.contract.services():
            entries.append((message.ServiceID, "contract", message, message.get("ServiceScope")))
        if self.context.secure:
            for each in self.context.services.offered():
                if each.service_id not in (1, *(entry[0] for entry in entries)):
                    entries.append((each.service_id, "vas", service_entry(each), each.service_scope))
        return entries[:MAX_SERVICES]

    # -- handlers ---------------------------------------------------------------

    def _session_setup(self, body):
        """
        A SessionID of a paused session resumes it (OK_OldSessionJoined,
        [V2G2-756]); anything else, zeros included, is a new session with a
        fresh SessionID (OK_NewSessionEstablished, [V2G2-750]).
        """
        self.publish_evcc_id(body.EVCCID)
        presented = self.request.Header.SessionID
        resumed = self.context.paused.take(presented, self.clock.seconds())
        if resumed is not None:
            self.resumed = resumed
            self.session_id = resumed.session_id
            code = "OK_OldSessionJoined"
            self.log.info("{session}: paused session {sid} resumed", session=self.context.label, sid=presented.hex())
        else:
            self.session_id = self.context.new_session_id()
            code = "OK_NewSessionEstablished"
        self.state = State.SESSION_SET_UP
        return self.bodies.session_setup(code), False

    def _service_discovery(self, body):
        """
        Payment options, energy modes and the services matching the EV's
        ServiceScope and ServiceCategory filters.
        """
        scope = body.get("ServiceScope")
        category = body.get("ServiceCategory")
        entries = [
            entry
            for entry in self._service_entries()
            if (category is None or entry[2].ServiceCategory == category) and (scope is None or entry[3] == scope)
        ]
        self.services_offered = {1: "charge", **{entry[0]: entry[1] for entry in entries}}
        self.payment_options_offered = self.offered_payment_options()
        self.state = State.SERVICES_DISCOVERED
        return self.bodies.service_discovery(self.payment_options_offered, self.offered_energy_modes(), [e[2] for e in entries]), False

    def _service_detail(self, body):
        """
        The charge and SAE services have no parameters; the contract path
        details its own; a value-added service's parameter sets come from
        the registry (a ``Deferred``; the registry bounds the provider's
        time).  FAILED_ServiceIDInvalid for a service not offered
        ([V2G2-425], [V2G2-464]).  When its provider fails (the registry
        logs it by name), the answer is OK without parameters, as EvseV2G
        answers an empty result: a broken plugin must not end the charging
        session.
        """
        service_id = body.ServiceID
        kind = self.services_offered.get(service_id)
        self.state = State.SERVICES_DISCOVERED
        if kind in ("charge", "sae"):
            return Message("ServiceDetailRes", ResponseCode="OK", ServiceID=service_id), False
        if kind == "contract":
            return self.contract.service_detail(service_id), False
        if kind != "vas":
            raise ServiceIDInvalid(f"service {service_id} was not offered")

        def answered(sets):
            return Message("ServiceDetailRes", ResponseCode="OK", ServiceID=service_id, ServiceParameterList=parameter_list(sets)), False

        def unavailable(failure):
            if failure.check(ServiceUnavailable) and failure.value.unknown:
                raise ServiceIDInvalid(str(failure.value))
            self.log.warn(
                "{session}: service {service_id} gave no parameters ({why}); answered without any",
                session=self.context.label,
                service_id=service_id,
                why=failure.getErrorMessage(),
            )
            return answered([])

        return maybeDeferred(self.context.services.parameter_sets, service_id).addCallbacks(answered, unavailable)

    def _payment_service_selection(self, body):
        """
        The option must have been offered ([V2G2-465]), the charge service
        selected ([V2G2-804]) and every other service offered ([V2G2-467]).
        Publishes ``selected_payment_option``, ``sae_bidi_mode_active`` for
        an SAE service, and hands the value-added services chosen to the
        registry.
        """
        option = body.SelectedPaymentOption
        if option not in self.payment_options_offered:
            raise PaymentSelectionInvalid(f"{option} selected; offered {self.payment_options_offered}")
        ids = [each.ServiceID for each in body.SelectedServiceList.getlist("SelectedService")]
        if 1 not in ids:
            raise NoChargeServiceSelected(f"services {ids} do not include the charge service 1")
        unknown = [service_id for service_id in ids if service_id not in self.services_offered]
        if unknown:
            raise ServiceSelectionInvalid(f"services {unknown} were not offered")
        self.payment_option = option
        self.charger.publish("selected_payment_option", option)
        if any(self.services_offered[service_id] == "sae" for service_id in ids):
            self.charger.publish("sae_bidi_mode_active")
        if option == "ExternalPayment":
            self.authorization_wait.begin()
        self.state = State.PAYMENT_SELECTED
        reply = (Message("PaymentServiceSelectionRes", ResponseCode="OK"), False)
        chosen = [each for each in selected_services(body.SelectedServiceList) if self.services_offered[each["service_id"]] == "vas"]
        if not chosen:
            return reply
        # The registry tells each provider and never fails.
        return self.context.services.select(chosen).addCallback(lambda _: reply)

    def _session_stop(self, body):
        """
        Terminate: OK and close (``dlink_terminate``).  Pause: allowed after
        PowerDelivery(Stop) or WeldingDetection only; the session is kept
        for its EV to resume (``dlink_pause``).
        """
        if body.ChargingSession == "Pause":
            if self.state is not State.POWER_DELIVERY_STOPPED:
                raise PauseNotAllowed(f"SessionStop(Pause) {self.state.value}")
            self.context.paused.keep(self.paused_session())
            self.dlink = "pause"
        self.end_energy_transfer()
        self.clean_stop = True
        self.state = State.STOPPED
        return Message("SessionStopRes", ResponseCode="OK"), True

    def paused_session(self) -> PausedSession:
        """What a resume takes over ([V2G2-740]…[V2G2-743])."""
        return PausedSession(
            session_id=self.session_id,
            paused_at=self.clock.seconds(),
            payment_option=self.payment_option,
            energy_mode=self.energy_mode,
            values={"schedule_pmax": self.offered_pmax, "schedule_end": self.schedule_end},
        )


def _service(service_id: int, name: str, category: str, scope, free: bool) -> Message:
    """A ServiceList entry of the SECC's own."""
    return Message("Service", ServiceID=service_id, ServiceName=name, ServiceCategory=category, ServiceScope=scope, FreeService=free)



