"""
The vocabulary of the charger seam: every command of EVerest's
``ISO15118_charger`` and ``iso15118_extensions`` with its arguments' shapes,
every var with its payload's shape, and which commands belong to one V2G
session rather than to the EVSE.

EvseManager configures the EVSE at start-up and at any time after
(``setup``, limits, ``dlink_ready`` …): those values outlive sessions and
are kept by :class:`evsev2g.evse.EVSEState`.  The commands in
:data:`SESSION_COMMANDS` answer one car (its authorization, its cable
check, a stop or pause of its charging, its certificate) and are kept by
that session's :class:`evsev2g.charger.Charger`, so nothing of one car
reaches the next.
"""

from __future__ import annotations

from typing import Any, Callable

from evsev2g import charger_types as T

__all__ = [
    "COMMANDS",
    "COMMAND_DOCS",
    "VARS",
    "DEBUG_VARS",
    "DC_ENERGY_MODES",
    "SESSION_COMMANDS",
    "CARRIED_COMMANDS",
    "check_command",
    "check_var",
]

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
#: One line per command for the seam's methods (:class:`~evsev2g.charger.Charger`).
COMMAND_DOCS = {
    'setup': 'At start-up: the EVSEID (``{"evse_id": str, "evse_id_din"?: str}``), SAE J2847/2 bidi mode, debug mode.',
    'set_charging_parameters': 'SetupPhysicalValues: AC nominal voltage, DC regulation tolerance, ripple, energy.',
    'session_setup': 'At each session start: payment options offered (1–2 PaymentOption), whether certificate installation is offered, whether contracts may be validated centrally. Forgets an earlier authorization.',
    'bpt_setup': 'BptSetup for ISO 15118-20 (stored only).',
    'set_powersupply_capabilities': 'power_supply_DC Capabilities: DC limits offered in ChargeParameterDiscoveryRes.',
    'authorization_response': 'The answer to ``require_auth_eim`` / ``require_auth_pnc``.',
    'ac_contactor_closed': 'The AC contactor is closed (``True``) or open.',
    'dlink_ready': 'The data link (SLAC) is up; ``False`` ends the V2G session at once.',
    'cable_check_finished': 'The cable check is over; ``True`` when it passed.',
    'receipt_is_required': 'Whether the EV must send MeteringReceiptReq (ISO 15118-2 PnC).',
    'stop_charging': 'The charger wants the session to end (``True``) or withdraws that.',
    'pause_charging': 'Pause (ISO 15118-20 only; stored, DIN and ISO-2 cannot do it).',
    'no_energy_pause_charging': 'IEC 61851-23 no-energy pause mode for this car (ISO 15118-2; kept for the next car when sent before its session).',
    'update_supported_app_protocols': 'Restrict the protocols offered in the app handshake (only ones enabled by configuration can be switched on). :returns: ``True`` when at least one protocol remains enabled.',
    'update_energy_transfer_modes': 'The energy transfer modes the charger offers.',
    'update_ac_max_current': 'AC line current limit per phase in A.',
    'update_ac_parameters': 'AcParameters (ISO 15118-20; stored).',
    'update_ac_maximum_limits': 'AcEvseMaximumPower.',
    'update_ac_minimum_limits': 'AcEvseMinimumPower (ISO 15118-20; stored).',
    'update_ac_target_values': 'AcTargetValues (ISO 15118-20; stored).',
    'update_ac_present_power': 'Present AC power (ISO 15118-20; stored).',
    'update_dc_maximum_limits': 'DcEvseMaximumLimits: the present EVSE limits (CurrentDemandRes).',
    'update_dc_minimum_limits': 'DcEvseMinimumLimits.',
    'update_isolation_status': 'Isolation monitor result: Invalid, Valid, Warning, Fault or No_IMD.',
    'update_dc_present_values': 'DcEvsePresentVoltageCurrent: measured output voltage and current.',
    'update_meter_info': 'Powermeter: sent as MeterInfo in the next message that carries one.',
    'send_error': 'An EvseError is active (Error_EmergencyShutdown lasts for the session).',
    'reset_error': 'Clear the errors, except an emergency shutdown.',
    'set_get_certificate_response': "iso15118_extensions: the backend's CertificateInstallation/UpdateRes.",
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


#: Commands that concern one V2G session (one car), kept by its
#: :class:`~evsev2g.charger.Charger`; every other command sets EVSE state.
#: (``no_energy_pause_charging`` has no "off" value: as EVSE state it would
#: pause every later car.)
SESSION_COMMANDS = frozenset(
    {
        "session_setup",
        "authorization_response",
        "cable_check_finished",
        "stop_charging",
        "pause_charging",
        "no_energy_pause_charging",
        "set_get_certificate_response",
    }
)

#: Session commands that EvseManager may send before the car's session
#: exists (``session_setup`` at plug-in, an authorization given before the
#: car asks for it, no power available yet): received while no session
#: holds the EVSE, they are kept for the next session.  The other session
#: commands are then dropped.
CARRIED_COMMANDS = frozenset({"session_setup", "authorization_response", "no_energy_pause_charging"})


def _lookup(name: str, table: dict[str, Any], kind: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}") from None


def check_command(name: str, arguments: dict[str, Any]) -> None:
    """
    Check a command's arguments against the interface.

    :param name: a command of ISO15118_charger or iso15118_extensions.
    :param arguments: its arguments by name.
    :raises ValueError: unknown command, missing or unexpected arguments,
        or an argument of the wrong shape (a
        :class:`~evsev2g.charger_types.ShapeError` naming the place).
    """
    spec = _lookup(name, COMMANDS, "command")
    names = [arg for arg, _ in spec]
    extra = set(arguments) - set(names)
    if extra:
        raise ValueError(f"{name}: unexpected arguments {sorted(extra)}")
    for arg, shape in spec:
        if arg not in arguments:
            raise ValueError(f"{name}: missing argument {arg!r}")
        shape(arguments[arg], f"{name}.{arg}")


def check_var(name: str, payload: Any = None) -> None:
    """
    Check a var's payload against the interface.

    :raises ValueError: unknown var or a payload of the wrong shape.
    """
    _lookup(name, VARS, "var")(payload, name)


Subscriber = Callable[[str, Any], None]


def tell_observers(observers: list, name: str, arguments: dict[str, Any], log) -> None:
    """
    Tell each command observer that command ``name`` took effect; an
    observer that raises is logged and the others are still told.

    :param observers: the ``callback(name, arguments)`` functions.
    :param name: the command's name.
    :param arguments: its arguments by name.
    :param log: a ``twisted.logger.Logger`` for a failing observer.
    """
    for observer in list(observers):
        try:
            observer(name, arguments)
        except Exception:
            log.failure("command observer failed on {command}", command=name)
