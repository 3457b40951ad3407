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

Response bodies live in :mod:`evsev2g.protocols.din70121_bodies`; the
dispatch, SessionID check and FAILED handling are
:class:`~evsev2g.protocols.base.SequenceStateMachine`'s, the DC steps
:class:`~evsev2g.protocols.dc.DCChargeLoop`'s.  The plugin object is in
:mod:`evsev2g.plugins.evsev2g_protocols`.
"""

from __future__ import annotations

import enum

from zope.interface import implementer

from evsev2g.charger import DC_ENERGY_MODES
from evsev2g.interfaces import IProtocolStateMachine
from evsev2g.protocols.base import SequenceStateMachine
from evsev2g.protocols.context import ProtocolContext
from evsev2g.protocols.dc import DCChargeLoop
from evsev2g.protocols.din70121_bodies import DINBodies
from evsev2g.responses import (
    DIN70121,
    NoChargeServiceSelected,
    PaymentSelectionInvalid,
    ServiceSelectionInvalid,
    TariffSelectionInvalid,
    WrongChargeParameter,
    WrongEnergyTransfer,
)

__all__ = ["DIN_NAMESPACE", "State", "DINStateMachine", "DIN70121Version", "REQUESTS", "ALLOWED"]

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



@implementer(IProtocolStateMachine)
class DINStateMachine(DCChargeLoop, SequenceStateMachine):
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

    protocol = DIN70121
    protocol_label = "DIN"
    requests = REQUESTS
    shutdown_path = _SHUTDOWN_PATH
    State = State

    def __init__(self, context: ProtocolContext) -> None:
        """
        :param context: charger, clock, settings, session-id source, logger.
        """
        super().__init__(context)
        self.init_dc()
        self.bodies = DINBodies(self)

    def allowed(self):
        """The requests allowed in the present state (:data:`ALLOWED`)."""
        return ALLOWED[self.state]

    def failed_body(self, response_name, code, request_body):
        """The normal body with the FAILED code (the DC status tells why)."""
        return self.bodies.build(response_name, code, request_body)

    def notification(self) -> tuple[str, int]:
        """
        EVSENotification and NotificationMaxDelay: DIN keeps them at None
        and 0; a stop by the charger is signalled with EVSE_Shutdown
        ([V2G-DC-663], [V2G-DC-500], [V2G-DC-636]).
        """
        return "None", 0

    # -- handlers: each returns (response body, close) -----------------------

    def _session_setup(self, body):
        """[V2G-DC-393]: always a new session with a fresh SessionID."""
        self.publish_evcc_id(body.EVCCID)
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
        self.authorization_wait.begin()
        self.state = State.PAYMENT_SELECTED
        return self.bodies.simple("ServicePaymentSelectionRes", "OK"), False

    def _contract_authentication(self, body):
        """
        EIM: ``require_auth_eim`` on the first request, Ongoing until
        ``authorization_response``; FAILED when it is not Accepted or when
        ``auth_timeout_eim`` (if not 0) passes first.
        """
        if self.eim_authorized():
            self.state = State.AUTHORIZED
            return self.bodies.processing("ContractAuthenticationRes", "OK", "Finished"), False
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
        if not self.dc_charge_parameters(parameter):
            self.state = State.DISCOVERING_PARAMETERS
            return self.bodies.charge_parameter_discovery("OK", "Ongoing"), False
        self.state = State.PARAMETERS_DISCOVERED
        return self.bodies.charge_parameter_discovery("OK", "Finished"), False

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
            self.publish_ev_status(parameter.DC_EVStatus)
        if ready:
            if self.state is State.PRE_CHARGING:
                self._check_profile(body.get("ChargingProfile"))
            self.dc_start_power()
            return self.bodies.power_delivery("OK", "EVSE_Ready"), False
        self.dc_stop_power()
        return self.bodies.power_delivery("OK", "EVSE_Shutdown"), False

    def _check_profile(self, profile) -> None:
        if profile is None:
            return
        tuple_id = profile.SAScheduleTupleID
        if tuple_id != 1:
            raise TariffSelectionInvalid(f"ChargingProfile names SAScheduleTuple {tuple_id}; only 1 was offered")
        self.tolerate_profile((entry.ChargingProfileEntryMaxPower for entry in profile.getlist("ProfileEntry")), self.bodies.pmax())

    def _session_stop(self, body):
        """OK, then close; ``dlink_terminate`` follows once the connection is closed."""
        # SessionStop is not allowed in the charge loop, but after a FAILED
        # answer the EV may go straight here.
        self.end_energy_transfer()
        self.clean_stop = True
        self.state = State.STOPPED
        return self.bodies.simple("SessionStopRes", "OK"), True



def __getattr__(name: str):
    # The plugin object lives with the other plugins; importing it from here
    # keeps working.
    if name == "DIN70121Version":
        from evsev2g.plugins.evsev2g_protocols import DIN70121Version

        return DIN70121Version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
