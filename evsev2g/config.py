"""
The configuration of evsev2g: every key, its default and what it allows.

The first keys are EvseV2G's (``../shared/everest/EvseV2G-manifest.yaml``),
with the same names, types and defaults, so an EVerest module config can be
pasted in.  evsev2g's own keys follow, grouped below them.  The file
``tap_config.yaml`` at the top of the project shows every key with its
default; :func:`load_config` reads such a file plus ``--set`` overrides into
one frozen :class:`Config`.

To add a key, add one :func:`~evsev2g.config_types.setting` line to the
schema below; to add a nested section (``simulator:``, timers …), write a
small frozen attrs class with its own settings and add it here with
:func:`~evsev2g.config_types.group`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import yaml

from evsev2g.config_types import (
    Check,
    Choice,
    Directory,
    Flag,
    Text,
    Whole,
    build_section,
    group,
    override,
    setting,
)
from evsev2g import timers
from evsev2g.errors import ConfigError
from evsev2g.sdp import SDP_PORT

#: The IANA dynamic port range the SECC's TCP and TLS ports must lie in
#: (ISO 15118-2 Table 15, as EvseV2G's connection code quotes it).
DYNAMIC_PORTS = (49152, 65535)

#: The value of ``tcp_port``/``tls_port`` that asks for any free port in
#: :data:`DYNAMIC_PORTS` (meant for tests and labs).
ANY_DYNAMIC_PORT = 0

_port = Whole(*DYNAMIC_PORTS, also={ANY_DYNAMIC_PORT: "any free port in that range"})


@attrs.frozen
class BackendName(Check):
    """
    The name of a charger-backend plugin found on this installation
    (:func:`evsev2g.backends.backend_names`): ``simulator`` and ``everest``
    ship with evsev2g, a drop-in plugin adds its own name.
    """

    @property
    def allowed(self) -> str:
        """The backend names found, in words."""
        from evsev2g.backends import backend_names

        return ", ".join(backend_names()) or "none found"

    def from_yaml(self, key, value, base):
        """:returns: the name, when a backend plugin has it."""
        from evsev2g.backends import backend_names

        if isinstance(value, str) and value in backend_names():
            return value
        raise self.reject(key, value)


@attrs.frozen
class EverestConfig:
    """
    The EVerest module (``backend: everest``): who we are on EVerest's MQTT
    and where the broker is.  Under ``python -m evsev2g.everest`` the
    manager's ``EV_*`` environment sets these; under ``twistd`` this group
    does (the module entry in the EVerest config is then ``standalone: true``).
    """

    module_id: str = setting(
        "iso15118_charger", Text("a module id of the EVerest config"), "Our module id (EVerest's EV_MODULE)."
    )
    mqtt_broker_host: str = setting("localhost", Text("a host name or address"), "MQTT broker host (TCP).")
    mqtt_broker_port: int = setting(1883, Whole(1, 65535), "MQTT broker port (TCP).")
    mqtt_broker_socket_path: str = setting(
        "-", Text("a unix socket path, or - for TCP"), "MQTT broker unix socket; replaces host and port ('-': TCP)."
    )
    mqtt_everest_prefix: str = setting("everest/", Text("a topic prefix"), "EVerest's topic prefix.")
    generation: str = setting(
        "C",
        Choice(("C", "B")),
        "EVerest MQTT protocol generation: C (main since 2026-08, ConfigurationRequest) or B "
        "(releases 2025.12.0 to 2026.02.1, GetConfig).",
    )


@attrs.frozen
class SimulatorConfig:
    """
    The simulated charger (``backend: simulator``): what it can deliver and
    how fast it reacts.  Durations in ms, limits in V, A, W.
    """

    auth_delay_ms: int = setting(
        1000, Whole(0, 600000, "ms"), "Delay from require_auth_eim to the simulated authorization (0: at once)."
    )
    authorization: str = setting(
        "Accepted",
        Choice(("Accepted", "Blocked", "Expired", "Invalid", "NoCredit", "Unknown")),
        "The authorization status the simulator answers.",
    )
    cable_check_ms: int = setting(1000, Whole(0, 600000, "ms"), "Duration of the simulated cable check.")
    isolation_status: str = setting(
        "Valid", Choice(("Valid", "Warning", "Fault", "Invalid")), "The isolation status the cable check finds."
    )
    max_voltage: int = setting(920, Whole(50, 1500, "V"), "Maximum output voltage.")
    min_voltage: int = setting(150, Whole(0, 1500, "V"), "Minimum output voltage.")
    max_current: int = setting(250, Whole(1, 10000, "A"), "Maximum output current.")
    min_current: int = setting(0, Whole(0, 10000, "A"), "Minimum output current.")
    max_power: int = setting(150000, Whole(1000, 1000000, "W"), "Maximum output power.")
    voltage_slew_rate: int = setting(
        400, Whole(0, 100000, "V/s"), "How fast the output voltage follows the EV's target (0: at once)."
    )
    current_slew_rate: int = setting(
        100, Whole(0, 100000, "A/s"), "How fast the output current follows the EV's target (0: at once)."
    )
    mode: str = setting(
        "dc", Choice(("dc", "ac")),
        "What the simulated charger delivers: dc (DC_extended; DIN 70121 and ISO 15118-2) or ac (AC single and three phase; ISO 15118-2).",
    )
    ac_nominal_voltage: int = setting(230, Whole(100, 480, "V"), "AC nominal voltage per phase (EVSENominalVoltage).")
    ac_max_current: int = setting(32, Whole(6, 400, "A"), "AC maximum current per phase (EVSEMaxCurrent).")
    ac_phases: int = setting(3, Whole(1, 3), "AC phases the simulated charger delivers on.")
    ac_contactor_delay_ms: int = setting(
        100, Whole(0, 2000, "ms"), "Delay from ac_close_contactor to ac_contactor_closed (EvseV2G waits up to 3 s)."
    )
    meter_interval_ms: int = setting(1000, Whole(10, 600000, "ms"), "Interval of the simulated meter's update_meter_info.")
    receipt_required: bool = setting(False, Flag(), "What the simulator tells the SECC with receipt_is_required.")
    pause_after_ms: int = setting(
        0, Whole(0, 86400000, "ms"),
        "Charger-initiated pause (pause_charging) this long after energy starts flowing, once per service run (0: never).",
    )
    stop_after_ms: int = setting(
        0, Whole(0, 86400000, "ms"),
        "Charger-initiated stop (stop_charging) this long after energy starts flowing, once per service run (0: never).",
    )
    reduce_power_after_ms: int = setting(
        0, Whole(0, 86400000, "ms"),
        "Halve the maximum power this long after energy starts flowing, once per service run (ISO 15118-2: ReNegotiation; 0: never).",
    )
    pnc: bool = setting(
        False, Flag(),
        "Plug & Charge: offer Contract payment (ISO 15118-2 over TLS), authorize require_auth_pnc, and answer certificate "
        "installation/update requests from the test PKI in certs_dir (python -m evsev2g.pki create).",
    )
    certificate_delay_ms: int = setting(
        200, Whole(0, 60000, "ms"), "How long the simulated backend takes to answer a certificate request (pnc)."
    )
    evse_id: str = setting("DE*EVS*E0001", Text("an EVSE ID"), "EVSEID for ISO 15118-2 (setup.evse_id).")
    evse_id_din: str = setting(
        "49A80737A45678",
        Text("hex digits (DIN SPEC 91286 EVSE ID)"),
        "EVSEID sent in DIN 70121 SessionSetupRes, as hex digits (anything else sends the single byte 00)."
    )

    def check_together(self) -> None:
        """
        :raises ConfigError: when a minimum exceeds its maximum.
        """
        if self.min_voltage > self.max_voltage:
            raise ConfigError("simulator.min_voltage", f"must not exceed simulator.max_voltage ({self.max_voltage})")
        if self.min_current > self.max_current:
            raise ConfigError("simulator.min_current", f"must not exceed simulator.max_current ({self.max_current})")


def _ms(seconds: float) -> int:
    """A timer of :mod:`evsev2g.timers` (seconds) as a ``*_ms`` key's default."""
    return round(seconds * 1000)


@attrs.frozen
class TimersConfig:
    """
    SECC timers ([V2G2-443], [V2G2-712], [V2G2-700], [V2G2-704]; DIN Tables
    75–77).  The defaults are the standard's, from :mod:`evsev2g.timers`;
    test benches shorten them.
    """

    sequence_timeout_ms: int = setting(
        _ms(timers.V2G_SECC_SEQUENCE_TIMEOUT),
        Whole(100, 600000, "ms"),
        "V2G_SECC_Sequence_Timeout: silence before the SECC ends the session.",
    )
    ongoing_ms: int = setting(
        _ms(timers.V2G_SECC_ONGOING_PERFORMANCE_TIME),
        Whole(100, 600000, "ms"),
        "V2G_SECC_Ongoing_Performance_Time: longest EVSEProcessing=Ongoing loop.",
    )
    cable_check_ms: int = setting(
        _ms(timers.V2G_SECC_CABLE_CHECK_PERFORMANCE_TIME),
        Whole(100, 600000, "ms"),
        "V2G_SECC_CableCheck_Performance_Time: longest cable check.",
    )
    pre_charge_ms: int = setting(
        _ms(timers.V2G_SECC_PRE_CHARGE_PERFORMANCE_TIME),
        Whole(100, 600000, "ms"),
        "V2G_SECC_PreCharge_Performance_Time: pre-charge past it is logged.",
    )
    communication_setup_ms: int = setting(
        _ms(timers.V2G_SECC_COMMUNICATION_SETUP_PERFORMANCE_TIME),
        Whole(100, 600000, "ms"),
        "V2G_SECC_CommunicationSetup_Performance_Time: from dlink_ready to a V2G connection; "
        "then dlink_error (EVerest backend).",
    )
    stop_charging_grace_ms: int = setting(
        _ms(timers.STOP_CHARGING_GRACE_TIME),
        Whole(100, 600000, "ms"),
        "After stop_charging the EV has this long to stop before answers turn FAILED.",
    )


@attrs.frozen
class Config:
    """
    Everything ``twistd evsev2g`` is told, checked and typed.

    Fields are the configuration keys; see ``tap_config.yaml`` or the README
    for the same list with explanations.
    """

    # -- EvseV2G's keys (EVerest manifest) ---------------------------------
    device: str = setting(
        "eth0",
        Text("an interface name with an IPv6 link-local address, 'auto' or 'lo'"),
        "Network interface for SDP, TCP and TLS; 'auto' takes the first with an "
        "IPv6 link-local address, 'lo' serves on ::1 for local use.",
    )
    supported_DIN70121: bool = setting(True, Flag(), "Offer DIN SPEC 70121 in the protocol handshake.")
    supported_ISO15118_2: bool = setting(True, Flag(), "Offer ISO 15118-2:2013 in the protocol handshake (AC and DC; over TCP and TLS).")
    tls_security: str = setting(
        "allow",
        Choice(("prohibit", "allow", "force")),
        "prohibit: TCP only; allow: TCP and TLS, the EV chooses; force: TLS only.",
    )
    terminate_connection_on_failed_response: bool = setting(
        False, Flag(), "Close the connection after any FAILED response code."
    )
    tls_key_logging: bool = setting(
        False, Flag(), "Write TLS session secrets (SSLKEYLOGFILE format) for Wireshark; testing only."
    )
    tls_key_logging_path: Path = setting(
        Path("/tmp"), Directory(), "Directory of the key log file tls_session_keys.log."
    )
    tls_timeout: int = setting(
        15000,
        Whole(100, 600000, "ms"),
        "Bound on each connection stage, TCP and TLS: the TLS handshake, the first message, "
        "one frame from its first byte to its last, an EV not reading our answers.",
    )
    verify_contract_cert_chain: bool = setting(
        False,
        Flag(),
        "Verify the contract certificate chain in PaymentDetails against the installed MO and V2G roots "
        "(Plug & Charge); otherwise it is handed on in require_auth_pnc.",
    )
    auth_timeout_pnc: int = setting(
        55,
        Whole(0, 86400, "s"),
        "Seconds to wait for Plug & Charge authorization, counted from PaymentDetails; "
        "after it AuthorizationRes is FAILED. 0 waits forever.",
    )
    auth_timeout_eim: int = setting(
        300, Whole(0, 86400, "s"), "Seconds to wait for external (EIM) authorization; 0 waits forever."
    )
    enable_sdp_server: bool = setting(True, Flag(), "Answer SDP requests (off when a proxy such as IsoMux does SDP).")
    publish_telemetry_only_on_change: bool = setting(
        True, Flag(), "Publish a telemetry block only when one of its values changed (EVerest backend, when the manager enables telemetry)."
    )

    # -- evsev2g's own keys ------------------------------------------------
    backend: str = setting(
        "simulator",
        BackendName(),
        "What sits behind the charger seam, a backend plugin: simulator (the embedded simulated "
        "charger) or everest (the EVerest module over MQTT: EvseManager, EvseSecurity, VAS modules).",
    )
    certs_dir: Path = setting(
        Path("/etc/everest/certs"),
        Directory(),
        "Certificate directory in EVerest's EvseSecurity layout (python -m evsev2g.pki create DIR makes one).",
    )
    tcp_port: int = setting(61341, _port, "TCP port of the plain V2G server.")
    tls_port: int = setting(64109, _port, "TCP port of the TLS V2G server.")
    sdp_port: int = setting(
        SDP_PORT,
        Whole(1, 65535, also={0: "any free port (tests)"}),
        "UDP port of the SDP server; ISO 15118 fixes 15118, change it only in labs and tests.",
    )
    v2gtp_max_payload: int = setting(
        8192,
        Whole(512, 1048576, "bytes"),
        "Largest V2GTP payload accepted; a larger announced length closes the connection.",
    )
    max_connections: int = setting(
        4,
        Whole(1, 1024),
        "Open TCP and TLS connections at most; at the limit a new one takes the place of the oldest "
        "without application handshake, else of the one silent longest that is not charging; only "
        "when all are charging is it refused.",
    )

    log_v2g_messages: bool = setting(
        False, Flag(), "Log every V2G message received and sent as XML (decoded EXI)."
    )
    simulator: SimulatorConfig = group(SimulatorConfig, "The simulated charger (backend: simulator).")
    everest: EverestConfig = group(EverestConfig, "The EVerest module on MQTT (backend: everest).")
    timers: TimersConfig = group(TimersConfig, "SECC timers named after the standard; defaults are the standard's.")

    @property
    def tls_timeout_seconds(self) -> float:
        """``tls_timeout`` in seconds."""
        return self.tls_timeout / 1000.0

    def check_together(self) -> None:
        """
        Checks that involve more than one key.

        :raises ConfigError: when both servers would share a fixed port.
        """
        both = self.tls_security == "allow"
        if both and self.tcp_port == self.tls_port != ANY_DYNAMIC_PORT:
            raise ConfigError("tls_port", f"must differ from tcp_port ({self.tcp_port})")


def read_config_file(path: Path) -> dict:
    """
    Read a YAML configuration file into a raw mapping.

    :param path: the file.
    :returns: the mapping (empty for an empty file).
    :raises ConfigError: when the file cannot be read, is not YAML or is not
        a mapping of keys to values.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError("config", f"cannot read the file: {error.strerror}", str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("config", "the file is not UTF-8 text", str(path)) from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError("config", f"not valid YAML{where}: {problem}", str(path)) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError("config", "must be a mapping of keys to values", str(path))
    return values


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """
    Build the configuration from a file and command-line overrides.

    :param path: a YAML file, or ``None`` for all defaults.  Relative paths
        inside it are relative to its directory.
    :param overrides: ``KEY=VALUE`` strings, applied in order after the
        file; relative paths in them are relative to the current directory.
    :returns: the checked, frozen :class:`Config`.
    :raises ConfigError: for the first problem found, naming the key, what
        is allowed and where the value came from.
    """
    if path is None:
        values, base, source = {}, Path.cwd(), None
    else:
        file = Path(path)
        values, base, source = read_config_file(file), file.absolute().parent, str(path)
    from_command_line: set[str] = set()
    for assignment in overrides:
        try:
            values = override(values, Config, assignment)
        except ConfigError as error:
            raise error.located("--set") from None
        from_command_line.add(assignment.partition("=")[0].strip().split(".")[0])
    try:
        return build_section(Config, values, base)
    except ConfigError as error:
        top = error.key.split(".")[0]
        where = "--set" if top in from_command_line else source
        raise (error.located(where) if where else error) from None
