"""
What the EV simulator is and does (:class:`EVSettings`), how a session went
(:class:`EVResult`) and how a flow ends one early (:class:`EVStop`).

Exit codes (the command line's status, :attr:`EVResult.code`):

== ==========================================================
0  clean session: target SoC reached (or paused as asked), SessionStop answered OK
1  discovery, connection, TLS or timeout problem
2  the SECC answered FAILED (or something the EV cannot follow)
3  the charger stopped the session (EVSE_Shutdown, StopCharging or worse)
4  no protocol agreed in the handshake
== ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EVSettings", "EVResult", "EVStop", "PROTOCOLS", "MODES"]

#: The protocols the EV simulator speaks (EXI schema names).
PROTOCOLS = ("din70121", "iso15118-2")
#: Energy transfer: ``dc`` (DC_extended) or ``ac`` (AC_three_phase_core).
MODES = ("dc", "ac")

#: EV-side timeouts (DIN SPEC 70121 Tables 75 and 76; ISO 15118-2 Table 109).
V2G_EVCC_MSG_TIMEOUT = 2.0
V2G_EVCC_CURRENT_DEMAND_TIMEOUT = 0.25
V2G_EVCC_ONGOING_TIMEOUT = 60.0


@dataclass
class EVSettings:
    """
    What the simulated EV is and does.

    :ivar host: SECC address (skip SDP), or ``None``.
    :ivar port: SECC TCP (or TLS) port with ``host``.
    :ivar interface: network interface for SDP (scope of ff02::1).
    :ivar sdp_port: the SECC's SDP port.
    :ivar protocol: ``din70121`` or ``iso15118-2``.
    :ivar mode: ``dc`` or ``ac`` (ISO 15118-2 only; DIN is DC).
    :ivar tls: ask for TLS in SDP and connect with TLS 1.2 (ISO 15118-2 only).
    :ivar v2g_root: the V2G root certificate (PEM) that must anchor the
        SECC's chain; ``None`` accepts any chain (a lab shortcut).
    :ivar tls_key_log: append TLS secrets here (SSLKEYLOGFILE), or ``None``.
    :ivar start_soc: state of charge at plug-in, %.
    :ivar target_soc: stop charging at this SoC, %.
    :ivar capacity_wh: battery capacity, Wh.
    :ivar max_current: A the EV accepts (DC).
    :ivar max_voltage: V the EV accepts.
    :ivar max_power: W the EV accepts.
    :ivar empty_voltage: battery voltage at 0 % (V); full adds ``voltage_span``.
    :ivar voltage_span: V between 0 % and 100 %.
    :ivar ac_max_current: A per phase the on-board charger draws at most.
    :ivar ac_min_current: A per phase it needs at least.
    :ivar ac_phases: phases the on-board charger uses.
    :ivar poll_interval: s between Ongoing polls and pre-charge requests.
    :ivar current_demand_interval: s between CurrentDemand / ChargingStatus requests.
    :ivar max_current_demands: stop after this many loop requests (0 = SoC only).
    :ivar evcc_id: EVCCID (the EV's MAC, 6 bytes).
    :ivar session_id: the SessionID of the first SessionSetupReq (``None``:
        a new session; a paused session's id asks to resume it).
    :ivar pause_after: pause after this many loop requests (0: never):
        PowerDelivery(Stop), SessionStop(Pause), reconnect.
    :ivar pause_seconds: s between the paused connection's end and the new one.
    :ivar resume: reconnect and resume after a pause (else end there, exit 0).
    :ivar renegotiate_after: PowerDelivery(Renegotiate) after this many loop
        requests (0: never).
    :ivar on_stop_charging: what the EV does on EVSENotification
        StopCharging: ``terminate`` (SessionStop Terminate, exit 3) or
        ``pause`` (SessionStop Pause, then resume like ``pause_after``).
    :ivar service_id: a value-added service to choose (ServiceDetail, then
        PaymentServiceSelection), or ``None``.
    :ivar parameter_set_id: its ParameterSetID (``None``: the first offered).
    :ivar pnc: Plug & Charge (Contract payment) instead of EIM (ISO 15118-2
        over TLS; the flow is :mod:`evsev2g.sim.ev_iso2_pnc`).
    :ivar certs_dir: the EV's certificate directory for PnC (contract and
        OEM files in :mod:`evsev2g.security.layout` names), or ``None``.
    :ivar msg_timeout: V2G_EVCC_Msg_Timeout.
    :ivar current_demand_timeout: CurrentDemand timeout (ChargingStatus
        waits ``msg_timeout``, ISO-2 ServiceDetail and PowerDelivery 5 s).
    :ivar ongoing_timeout: V2G_EVCC_Ongoing_Timeout.
    """

    host: str | None = None
    port: int = 61341
    interface: str | None = None
    sdp_port: int = 15118
    protocol: str = "din70121"
    mode: str = "dc"
    tls: bool = False
    v2g_root: Path | str | None = None
    tls_key_log: Path | str | None = None
    start_soc: float = 30.0
    target_soc: float = 80.0
    capacity_wh: float = 60000.0
    max_current: float = 200.0
    max_voltage: float = 450.0
    max_power: float = 100000.0
    empty_voltage: float = 340.0
    voltage_span: float = 60.0
    ac_max_current: float = 32.0
    ac_min_current: float = 6.0
    ac_phases: int = 3
    poll_interval: float = 0.05
    current_demand_interval: float = 0.05
    max_current_demands: int = 0
    evcc_id: bytes = bytes.fromhex("02005e000001")
    session_id: bytes | None = None
    pause_after: int = 0
    pause_seconds: float = 0.5
    resume: bool = True
    renegotiate_after: int = 0
    on_stop_charging: str = "terminate"
    service_id: int | None = None
    parameter_set_id: int | None = None
    pnc: bool = False
    certs_dir: Path | str | None = None
    msg_timeout: float = V2G_EVCC_MSG_TIMEOUT
    current_demand_timeout: float = V2G_EVCC_CURRENT_DEMAND_TIMEOUT
    ongoing_timeout: float = V2G_EVCC_ONGOING_TIMEOUT

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.protocol == "din70121" and (self.mode != "dc" or self.tls):
            raise ValueError("DIN SPEC 70121 is DC over TCP only")
        if self.pnc and self.protocol != "iso15118-2":
            raise ValueError("Plug & Charge needs ISO 15118-2")
        if self.pnc and self.certs_dir is None:
            raise ValueError("Plug & Charge needs the EV's certificate directory (--certs-dir)")
        if self.on_stop_charging not in ("terminate", "pause"):
            raise ValueError("on_stop_charging must be terminate or pause")


@dataclass
class EVResult:
    """
    How the session went.

    :ivar code: the exit status (0 clean).
    :ivar reason: one line for people.
    :ivar soc: final state of charge, %.
    :ivar energy_wh: energy received, Wh.
    :ivar latencies: response times in s per response name.
    :ivar sent_at: for each of those, when its request was sent (wall
        clock, ``time.time()``), in the same order.
    :ivar states: the states gone through, in order.
    :ivar session_setups: ``(ResponseCode, SessionID)`` of each SessionSetupRes.
    :ivar tls: ``(version, cipher)`` of each TLS connection.
    :ivar selected_services: ``(ServiceID, ParameterSetID)`` chosen in
        PaymentServiceSelection besides the charge service.
    :ivar meter_readings: MeterReading (Wh) of each MeterInfo received.
    :ivar notifications: EVSENotification values other than ``None`` seen.
    :ivar receipts: MeteringReceipt requests sent.
    """

    code: int
    reason: str
    soc: float = 0.0
    energy_wh: float = 0.0
    latencies: dict = field(default_factory=dict)
    sent_at: dict = field(default_factory=dict)
    states: list = field(default_factory=list)
    session_setups: list = field(default_factory=list)
    tls: list = field(default_factory=list)
    selected_services: list = field(default_factory=list)
    meter_readings: list = field(default_factory=list)
    notifications: list = field(default_factory=list)
    receipts: int = 0


class EVStop(Exception):
    """Ends the EV session early with an exit code and a reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
