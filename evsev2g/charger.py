"""
The charger seam: what a V2G session knows of the charger and tells it.

It is shaped like EVerest's ``ISO15118_charger`` interface plus
``iso15118_extensions``: every command is a method taking that command's
arguments (checked against the EVerest types in
:mod:`evsev2g.charger_types`), and every var is an event delivered to
subscribers with the payload shape of the EVerest type.

One :class:`Charger` belongs to one V2G communication session.  Several
EVs on several connections in one process therefore never see each other's
state: whatever sits behind the seam (:class:`evsev2g.interfaces.IChargerBackend`,
the simulator or the EVerest bridge) is handed each session's charger when the
session starts and configures it, and routes later commands to it.

The protocol state machines read the stored values (attributes below) and
publish vars; they never wait on the charger: a value that has not arrived
yet makes them answer ``Ongoing`` and look again at the next request.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.logger import Logger
from zope.interface import implementer

from evsev2g import charger_types as T
from evsev2g.interfaces import ICharger

__all__ = ["Charger", "COMMANDS", "VARS", "DEBUG_VARS", "DC_ENERGY_MODES"]

#: Every command of ISO15118_charger and iso15118_extensions with its
#: arguments in order and their shapes.
COMMANDS: dict[str, tuple[tuple[str, Any], ...]] = {
    "setup": (("evse_id", T.EVSEID), ("sae_j2847_mode", T.SaeJ2847BidiMode), ("debug_mode", T.Boolean)),
    "set_charging_parameters": (("physical_values", T.SetupPhysicalValues),),
    "session_setup": (
        ("payment_options", T.Array(T.PaymentOption, 1, 2)),
        ("supported_certificate_service", T.Boolean),
        ("central_contract_validation_allowed", T.Boolean),
    ),
    "bpt_setup": (("bpt_config", T.BptSetup),),
    "set_powersupply_capabilities": (("capabilities", T.Capabilities),),
    "authorization_response": (
        ("authorization_status", T.AuthorizationStatus),
        ("certificate_status", T.CertificateStatus),
    ),
    "ac_contactor_closed": (("status", T.Boolean),),
    "dlink_ready": (("value", T.Boolean),),
    "cable_check_finished": (("status", T.Boolean),),
    "receipt_is_required": (("receipt_required", T.Boolean),),
    "stop_charging": (("stop", T.Boolean),),
    "pause_charging": (("pause", T.Boolean),),
    "no_energy_pause_charging": (("mode", T.NoEnergyPauseMode),),
    "update_supported_app_protocols": (("supported_app_protocols", T.SupportedAppProtocols),),
    "update_energy_transfer_modes": (("supported_energy_transfer_modes", T.Array(T.EnergyTransferMode, 1, 18)),),
    "update_ac_max_current": (("max_current", T.Number(0, 400)),),
    "update_ac_parameters": (("ac_parameters", T.AcParameters),),
    "update_ac_maximum_limits": (("maximum_limits", T.AcEvseMaximumPower),),
    "update_ac_minimum_limits": (("minimum_limits", T.AcEvseMinimumPower),),
    "update_ac_target_values": (("target_values", T.AcTargetValues),),
    "update_ac_present_power": (("present_power", T.Power),),
    "update_dc_maximum_limits": (("maximum_limits", T.DcEvseMaximumLimits),),
    "update_dc_minimum_limits": (("minimum_limits", T.DcEvseMinimumLimits),),
    "update_isolation_status": (("isolation_status", T.IsolationStatus),),
    "update_dc_present_values": (("present_voltage_current", T.DcEvsePresentVoltageCurrent),),
    "update_meter_info": (("powermeter", T.Powermeter),),
    "send_error": (("error", T.EvseError),),
    "reset_error": (),
    # iso15118_extensions
    "set_get_certificate_response": (("certificate_response", T.ResponseExiStreamStatus),),
}

_n = T.Number
#: Every var of ISO15118_charger and iso15118_extensions with its payload shape.
VARS: dict[str, Any] = {
    "supported_app_protocols_secc": T.SupportedAppProtocols,
    "require_auth_eim": T.Null,
    "require_auth_pnc": T.ProvidedIdToken,
    "ac_close_contactor": T.Null,
    "ac_open_contactor": T.Null,
    "start_cable_check": T.Null,
    "start_pre_charge": T.Null,
    "dc_open_contactor": T.Null,
    "v2g_setup_finished": T.Null,
    "current_demand_started": T.Null,
    "current_demand_finished": T.Null,
    "sae_bidi_mode_active": T.Null,
    "evcc_id": T.String(pattern=r"^[A-F0-9]{2}(:[A-F0-9]{2}){5}$"),
    "selected_payment_option": T.PaymentOption,
    "requested_energy_transfer_mode": T.EnergyTransferMode,
    "departure_time": T.String(),
    "ac_eamount": _n(0, 200000),
    "ac_ev_max_voltage": _n(0, 1000),
    "ac_ev_max_current": _n(0, 400),
    "ac_ev_min_current": _n(0, 400),
    "ac_ev_power_limits": T.Object("AcEvPowerLimits", optional={
        "max_charge_power": T.Power, "min_charge_power": T.Power,
        "max_discharge_power": T.Power, "min_discharge_power": T.Power}),
    "ac_ev_present_powers": T.Object("AcEvPresentPowerValues", required={"present_active_power": T.Power},
                                     optional={"present_reactive_power": T.Power}),
    "ac_ev_dynamic_control_mode": T.Loose("AcEvDynamicModeValues"),
    "dc_ev_energy_capacity": _n(0, 200000),
    "dc_ev_energy_request": _n(0, 200000),
    "dc_full_soc": _n(0, 100),
    "dc_bulk_soc": _n(0, 100),
    "dc_ev_status": T.DcEvStatus,
    "dc_bulk_charging_complete": T.Boolean,
    "dc_charging_complete": T.Boolean,
    "dc_ev_target_voltage_current": T.DcEvTargetValues,
    "dc_ev_maximum_limits": T.DcEvMaximumLimits,
    "dc_ev_remaining_time": T.DcEvRemainingTime,
    "hlc_session_failed": T.HlcSessionFailedReason,
    "dlink_terminate": T.Null,
    "dlink_error": T.Null,
    "dlink_pause": T.Null,
    "ev_app_protocol": T.AppProtocols,
    "v2g_messages": T.V2gMessages,
    "selected_protocol": T.String(),
    "display_parameters": T.Loose("DisplayParameters"),
    "d20_dc_dynamic_charge_mode": T.Loose("DcChargeDynamicModeValues"),
    "dc_ev_present_voltage": _n(),
    "meter_info_requested": T.Null,
    "selected_service_parameters": T.Loose("SelectedServiceParameters"),
    "ev_termination": T.Object("EvTermination", optional={"ev_termination_code": T.String(), "ev_termination_explanation": T.String()}),
    # iso15118_extensions
    "iso15118_certificate_request": T.RequestExiStreamSchema,
    "charging_needs": T.Loose("ChargingNeeds"),
    "ev_info": T.Loose("EvInformation"),
    "service_renegotiation_supported": T.Boolean,
}

#: Vars EvseV2G publishes only in debug mode (``setup(debug_mode=True)``,
#: EvseManager's ``session_logging``).  A subscriber that asks for one of
#: them by name gets it regardless.
DEBUG_VARS = frozenset({"ev_app_protocol", "v2g_messages", "selected_protocol"})

#: Energy transfer modes that make a DC charger (DIN 70121 is DC only).
DC_ENERGY_MODES = frozenset({"DC_core", "DC_extended", "DC_combo_core", "DC_unique"})

Subscriber = Callable[[str, Any], None]


def _validate(name: str, table: dict[str, Any], kind: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}") from None


@implementer(ICharger)
class Charger:
    """
    The charger seam of one V2G communication session.

    Attributes are the values set by commands; ``None`` means "not received
    yet".  Dict-valued ones keep EVerest's JSON shape.

    :ivar evse_id: ``setup``'s EVSEID object (``{"evse_id", "evse_id_din"?}``).
    :ivar sae_j2847_mode: ``"None"``, ``"V2G"`` or ``"V2H"``.
    :ivar debug_mode: publish the debug vars (:data:`DEBUG_VARS`) to
        subscribers of every var.
    :ivar physical_values: ``set_charging_parameters``' SetupPhysicalValues.
    :ivar payment_options: ``session_setup``'s list (default ExternalPayment).
    :ivar supported_certificate_service: from ``session_setup``.
    :ivar central_contract_validation_allowed: from ``session_setup``.
    :ivar bpt_config: ``bpt_setup``'s BptSetup (ISO 15118-20 only; stored).
    :ivar capabilities: ``set_powersupply_capabilities``' Capabilities.
    :ivar authorization_status: from ``authorization_response``.
    :ivar certificate_status: from ``authorization_response``.
    :ivar ac_contactor_is_closed: from ``ac_contactor_closed``.
    :ivar link_ready: from ``dlink_ready``.
    :ivar cable_check_ok: from ``cable_check_finished``.
    :ivar receipt_required: from ``receipt_is_required``.
    :ivar stop_requested_at: clock time of ``stop_charging(True)``, cleared
        by ``stop_charging(False)``.
    :ivar pause_requested: from ``pause_charging`` (ISO 15118-20 only).
    :ivar no_energy_pause_mode: from ``no_energy_pause_charging``.
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
        ``reset_error`` except ``Error_EmergencyShutdown``, which lasts for
        the session.
    :ivar certificate_response: ``set_get_certificate_response``' object.
    """

    log = Logger()

    def __init__(self, clock, name: str = "") -> None:
        """
        :param clock: an ``IReactorTime`` (the reactor, or a ``Clock`` in
            tests): stamps ``stop_charging``.
        :param name: a label for log lines (the session's peer, say).
        """
        self.clock = clock
        self.name = name
        self._subscribers: list[tuple[Subscriber, frozenset[str] | None]] = []
        self._observers: list[Callable[[str, dict[str, Any]], None]] = []
        self._last: dict[str, Any] = {}
        self.evse_id: dict[str, Any] | None = None
        self.sae_j2847_mode = "None"
        self.debug_mode = False
        self.physical_values: dict[str, Any] = {}
        self.payment_options: list[str] = ["ExternalPayment"]
        self.supported_certificate_service = False
        self.central_contract_validation_allowed = False
        self.bpt_config: dict[str, Any] | None = None
        self.capabilities: dict[str, Any] | None = None
        self.authorization_status: str | None = None
        self.certificate_status: str | None = None
        self.ac_contactor_is_closed = False
        self.link_ready = False
        self.cable_check_ok: bool | None = None
        self.receipt_required = False
        self.stop_requested_at: float | None = None
        self.pause_requested = False
        self.no_energy_pause_mode: str | None = None
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
        self.certificate_response: dict[str, Any] | None = None

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
                _validate(each, VARS, "var")
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
        _validate(name, VARS, "var")(payload, name)
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
        ``callback(name, arguments)``.  The session uses it to react at once
        to ``dlink_ready(False)``.

        :returns: a function that stops the observation.
        """
        self._observers.append(callback)
        return lambda: self._observers.remove(callback) if callback in self._observers else None

    def command(self, name: str, **arguments: Any) -> Any:
        """
        Run a command by name (what a bridge receiving commands by topic
        calls); the methods below are the same thing with signatures.

        :param name: a command of ISO15118_charger or iso15118_extensions.
        :param arguments: its arguments by name.
        :returns: the command's result (only ``update_supported_app_protocols``
            has one).
        :raises ValueError: unknown command, missing/extra arguments or an
            argument of the wrong shape.
        """
        spec = _validate(name, COMMANDS, "command")
        names = [arg for arg, _ in spec]
        extra = set(arguments) - set(names)
        if extra:
            raise ValueError(f"{name}: unexpected arguments {sorted(extra)}")
        for arg, shape in spec:
            if arg not in arguments:
                raise ValueError(f"{name}: missing argument {arg!r}")
            shape(arguments[arg], f"{name}.{arg}")
        result = getattr(self, "_apply_" + name)(**arguments)
        for observer in list(self._observers):
            try:
                observer(name, arguments)
            except Exception:
                self.log.failure("command observer failed on {command}", command=name)
        return result

    def setup(self, evse_id, sae_j2847_mode, debug_mode):
        """
        At start-up: the EVSEID (``{"evse_id": str, "evse_id_din"?: str}``),
        SAE J2847/2 bidi mode, debug mode.
        """
        return self.command("setup", evse_id=evse_id, sae_j2847_mode=sae_j2847_mode, debug_mode=debug_mode)

    def _apply_setup(self, evse_id, sae_j2847_mode, debug_mode):
        self.evse_id = dict(evse_id)
        self.sae_j2847_mode = sae_j2847_mode
        self.debug_mode = debug_mode

    def set_charging_parameters(self, physical_values):
        """SetupPhysicalValues: AC nominal voltage, DC regulation tolerance, ripple, energy."""
        return self.command("set_charging_parameters", physical_values=physical_values)

    def _apply_set_charging_parameters(self, physical_values):
        self.physical_values = dict(physical_values)

    def session_setup(self, payment_options, supported_certificate_service, central_contract_validation_allowed):
        """
        At each session start: payment options offered (1–2 PaymentOption),
        whether certificate installation is offered, whether contracts may be
        validated centrally.  Forgets an earlier authorization.
        """
        return self.command(
            "session_setup",
            payment_options=payment_options,
            supported_certificate_service=supported_certificate_service,
            central_contract_validation_allowed=central_contract_validation_allowed,
        )

    def _apply_session_setup(self, payment_options, supported_certificate_service, central_contract_validation_allowed):
        self.payment_options = list(dict.fromkeys(payment_options))
        self.supported_certificate_service = supported_certificate_service
        self.central_contract_validation_allowed = central_contract_validation_allowed
        self.authorization_status = None
        self.certificate_status = None

    def bpt_setup(self, bpt_config):
        """BptSetup for ISO 15118-20 (stored only)."""
        return self.command("bpt_setup", bpt_config=bpt_config)

    def _apply_bpt_setup(self, bpt_config):
        self.bpt_config = dict(bpt_config)

    def set_powersupply_capabilities(self, capabilities):
        """power_supply_DC Capabilities: DC limits offered in ChargeParameterDiscoveryRes."""
        return self.command("set_powersupply_capabilities", capabilities=capabilities)

    def _apply_set_powersupply_capabilities(self, capabilities):
        self.capabilities = dict(capabilities)

    def authorization_response(self, authorization_status, certificate_status):
        """The answer to ``require_auth_eim`` / ``require_auth_pnc``."""
        return self.command(
            "authorization_response",
            authorization_status=authorization_status,
            certificate_status=certificate_status,
        )

    def _apply_authorization_response(self, authorization_status, certificate_status):
        self.authorization_status = authorization_status
        self.certificate_status = certificate_status

    def ac_contactor_closed(self, status):
        """The AC contactor is closed (``True``) or open."""
        return self.command("ac_contactor_closed", status=status)

    def _apply_ac_contactor_closed(self, status):
        self.ac_contactor_is_closed = status

    def dlink_ready(self, value):
        """The data link (SLAC) is up; ``False`` ends the V2G session at once."""
        return self.command("dlink_ready", value=value)

    def _apply_dlink_ready(self, value):
        self.link_ready = value

    def cable_check_finished(self, status):
        """The cable check is over; ``True`` when it passed."""
        return self.command("cable_check_finished", status=status)

    def _apply_cable_check_finished(self, status):
        self.cable_check_ok = status

    def receipt_is_required(self, receipt_required):
        """Whether the EV must send MeteringReceiptReq (ISO 15118-2 PnC)."""
        return self.command("receipt_is_required", receipt_required=receipt_required)

    def _apply_receipt_is_required(self, receipt_required):
        self.receipt_required = receipt_required

    def stop_charging(self, stop):
        """The charger wants the session to end (``True``) or withdraws that."""
        return self.command("stop_charging", stop=stop)

    def _apply_stop_charging(self, stop):
        if stop:
            if self.stop_requested_at is None:
                self.stop_requested_at = self.clock.seconds()
        else:
            self.stop_requested_at = None

    def pause_charging(self, pause):
        """Pause (ISO 15118-20 only; stored, DIN and ISO-2 cannot do it)."""
        return self.command("pause_charging", pause=pause)

    def _apply_pause_charging(self, pause):
        self.pause_requested = pause

    def no_energy_pause_charging(self, mode):
        """IEC 61851-23 no-energy pause mode (stored for ISO 15118-2)."""
        return self.command("no_energy_pause_charging", mode=mode)

    def _apply_no_energy_pause_charging(self, mode):
        self.no_energy_pause_mode = mode

    def update_supported_app_protocols(self, supported_app_protocols):
        """
        Restrict the protocols offered in the app handshake (only ones enabled
        by configuration can be switched on).

        :returns: ``True`` when at least one protocol remains enabled.
        """
        return self.command("update_supported_app_protocols", supported_app_protocols=supported_app_protocols)

    def _apply_update_supported_app_protocols(self, supported_app_protocols):
        self.supported_app_protocols = list(supported_app_protocols["app_protocols"])
        return bool(self.supported_app_protocols)

    def update_energy_transfer_modes(self, supported_energy_transfer_modes):
        """The energy transfer modes the charger offers."""
        return self.command("update_energy_transfer_modes", supported_energy_transfer_modes=supported_energy_transfer_modes)

    def _apply_update_energy_transfer_modes(self, supported_energy_transfer_modes):
        self.energy_transfer_modes = list(dict.fromkeys(supported_energy_transfer_modes))

    def update_ac_max_current(self, max_current):
        """AC line current limit per phase in A."""
        return self.command("update_ac_max_current", max_current=max_current)

    def _apply_update_ac_max_current(self, max_current):
        self.ac_max_current = max_current

    def update_ac_parameters(self, ac_parameters):
        """AcParameters (ISO 15118-20; stored)."""
        return self.command("update_ac_parameters", ac_parameters=ac_parameters)

    def _apply_update_ac_parameters(self, ac_parameters):
        self.ac_parameters = dict(ac_parameters)

    def update_ac_maximum_limits(self, maximum_limits):
        """AcEvseMaximumPower."""
        return self.command("update_ac_maximum_limits", maximum_limits=maximum_limits)

    def _apply_update_ac_maximum_limits(self, maximum_limits):
        self.ac_maximum_limits = dict(maximum_limits)

    def update_ac_minimum_limits(self, minimum_limits):
        """AcEvseMinimumPower (ISO 15118-20; stored)."""
        return self.command("update_ac_minimum_limits", minimum_limits=minimum_limits)

    def _apply_update_ac_minimum_limits(self, minimum_limits):
        self.ac_minimum_limits = dict(minimum_limits)

    def update_ac_target_values(self, target_values):
        """AcTargetValues (ISO 15118-20; stored)."""
        return self.command("update_ac_target_values", target_values=target_values)

    def _apply_update_ac_target_values(self, target_values):
        self.ac_target_values = dict(target_values)

    def update_ac_present_power(self, present_power):
        """Present AC power (ISO 15118-20; stored)."""
        return self.command("update_ac_present_power", present_power=present_power)

    def _apply_update_ac_present_power(self, present_power):
        self.ac_present_power = dict(present_power)

    def update_dc_maximum_limits(self, maximum_limits):
        """DcEvseMaximumLimits: the present EVSE limits (CurrentDemandRes)."""
        return self.command("update_dc_maximum_limits", maximum_limits=maximum_limits)

    def _apply_update_dc_maximum_limits(self, maximum_limits):
        self.dc_maximum_limits = dict(maximum_limits)

    def update_dc_minimum_limits(self, minimum_limits):
        """DcEvseMinimumLimits."""
        return self.command("update_dc_minimum_limits", minimum_limits=minimum_limits)

    def _apply_update_dc_minimum_limits(self, minimum_limits):
        self.dc_minimum_limits = dict(minimum_limits)

    def update_isolation_status(self, isolation_status):
        """Isolation monitor result: Invalid, Valid, Warning, Fault or No_IMD."""
        return self.command("update_isolation_status", isolation_status=isolation_status)

    def _apply_update_isolation_status(self, isolation_status):
        self.isolation_status = isolation_status

    def update_dc_present_values(self, present_voltage_current):
        """DcEvsePresentVoltageCurrent: measured output voltage and current."""
        return self.command("update_dc_present_values", present_voltage_current=present_voltage_current)

    def _apply_update_dc_present_values(self, present_voltage_current):
        values = {"evse_present_current": 0}
        values.update(present_voltage_current)
        self.dc_present_values = values

    def update_meter_info(self, powermeter):
        """Powermeter: sent as MeterInfo in the next message that carries one."""
        return self.command("update_meter_info", powermeter=powermeter)

    def _apply_update_meter_info(self, powermeter):
        self.meter_info = dict(powermeter)
        self.meter_info_fresh = True

    def send_error(self, error):
        """An EvseError is active (Error_EmergencyShutdown lasts for the session)."""
        return self.command("send_error", error=error)

    def _apply_send_error(self, error):
        self.errors.add(error)

    def reset_error(self):
        """Clear the errors, except an emergency shutdown."""
        return self.command("reset_error")

    def _apply_reset_error(self):
        self.errors &= {"Error_EmergencyShutdown"}

    def set_get_certificate_response(self, certificate_response):
        """iso15118_extensions: the backend's CertificateInstallation/UpdateRes."""
        return self.command("set_get_certificate_response", certificate_response=certificate_response)

    def _apply_set_get_certificate_response(self, certificate_response):
        self.certificate_response = dict(certificate_response)

    # -- derived values the state machines share ---------------------------

    @property
    def emergency(self) -> bool:
        """``send_error(Error_EmergencyShutdown)`` was received this session."""
        return "Error_EmergencyShutdown" in self.errors

    @property
    def authorized(self) -> bool | None:
        """``None`` while no answer arrived, else whether it was Accepted."""
        if self.authorization_status is None:
            return None
        return self.authorization_status == "Accepted"

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
