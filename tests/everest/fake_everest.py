"""
A fake EVerest for the module under test, written from
``../shared/everest/MQTT_PROTOCOL.md`` (§3–§9) and the interface YAML, not
from evsev2g's bridge: the manager (config answers, ready, global ready),
an EvseManager stand-in (``evse_manager``: calls ISO15118_charger commands,
reacts to the vars like EvseManager and a DC power supply), an EvseSecurity
stand-in (``evse_security``/``main``, answering from a certificate
directory in EvseSecurity's layout) and an ISO15118_vas module stand-in.

One plain paho client, driven without threads: :meth:`FakeEverest.pump`
runs its loop for a while, :meth:`FakeEverest.wait` until a condition
holds.  Every message it receives is checked against the envelope rules,
and every var against the interface YAML (:mod:`tests.everest.schema`).
"""

from __future__ import annotations

import json
import time
import uuid

import paho.mqtt.client as paho

from tests.everest.schema import Schemas

DUT = "iso15118_charger"
EVSE_MANAGER = "evse_manager"
SECURITY = ("evse_security", "main")
VAS = ("vas_provider", "main")

CONFIG_NAMES = {"B": ("GetConfig", "GetConfigResponse"), "C": ("ConfigurationRequest", "ConfigurationResponse")}

#: EvseManager's start-up calls, in its order (MQTT_PROTOCOL.md §9.2).
STARTUP_CALLS = [
    ("setup", {"evse_id": {"evse_id": "DE*PNX*E12345*1", "evse_id_din": "49A80737A45678"}, "sae_j2847_mode": "None", "debug_mode": False}),
    ("set_charging_parameters", {"physical_values": {"dc_current_regulation_tolerance": 5, "dc_peak_current_ripple": 2}}),
    ("session_setup", {"payment_options": ["ExternalPayment"], "supported_certificate_service": False, "central_contract_validation_allowed": False}),
    ("update_energy_transfer_modes", {"supported_energy_transfer_modes": ["DC_extended"]}),
    ("set_powersupply_capabilities", {"capabilities": {
        "bidirectional": False, "max_export_voltage_V": 900, "min_export_voltage_V": 150, "max_export_current_A": 200,
        "min_export_current_A": 0, "max_export_power_W": 100000, "current_regulation_tolerance_A": 2, "peak_current_ripple_A": 1}}),
    ("update_dc_maximum_limits", {"maximum_limits": {"evse_maximum_current_limit": 200, "evse_maximum_power_limit": 100000, "evse_maximum_voltage_limit": 900}}),
    ("update_dc_minimum_limits", {"minimum_limits": {"evse_minimum_current_limit": 0, "evse_minimum_voltage_limit": 150, "evse_minimum_power_limit": 0}}),
    ("update_isolation_status", {"isolation_status": "Invalid"}),
    ("receipt_is_required", {"receipt_required": False}),
    ("reset_error", {}),
]


#: EvseManager's start-up calls for an AC charger (ISO 15118-2 only).
AC_STARTUP_CALLS = [
    STARTUP_CALLS[0],
    ("set_charging_parameters", {"physical_values": {"ac_nominal_voltage": 230}}),
    STARTUP_CALLS[2],
    ("update_energy_transfer_modes", {"supported_energy_transfer_modes": ["AC_single_phase_core", "AC_three_phase_core"]}),
    ("update_ac_maximum_limits", {"maximum_limits": {"charge_power": {"total": 22080}}}),
    ("update_ac_max_current", {"max_current": 32}),
    ("receipt_is_required", {"receipt_required": False}),
    ("reset_error", {}),
]


def module_param(name, value):
    datatype = "bool" if isinstance(value, bool) else "integer" if isinstance(value, int) else "string"
    return {"name": name, "value": value, "characteristics": {"datatype": datatype, "mutability": "ReadOnly"}}


class FakeEverest:
    """
    :param broker: ``("tcp", host, port)`` or ``("unix", path)``.
    :param prefix: the EVerest prefix (a fresh one per test).
    :param generation: ``"B"`` or ``"C"``.
    :param config: the DUT's ``config_module`` values.
    :param certs: a certificate directory in EvseSecurity's layout, or ``None``.
    :param schemas: the interface/type YAML.
    """

    def __init__(self, broker, prefix, generation, config, certs, schemas: Schemas, security=True, vas=False, evse_manager=True,
                 telemetry_id=None, module_names=True):
        self.prefix = prefix
        self.generation = generation
        self.config = dict(config)
        self.certs = certs
        self.schemas = schemas
        self.security = security
        self.vas = vas
        self.react = evse_manager
        self.vars: list[tuple[str, str, object]] = []
        self.errors: list[tuple[str, dict]] = []
        self.results: dict[str, dict] = {}
        self.config_requests: list[dict] = []
        self.ready = False
        self.global_ready_sent = False
        self.security_calls: list[str] = []
        self.vas_calls: list[tuple[str, dict]] = []
        self.problems: list[str] = []
        self.telemetry_id = telemetry_id
        self.module_names = module_names
        self.telemetry_prefix = prefix.rstrip("/") + "-telemetry/"
        self.telemetry: list[tuple[str, dict]] = []
        self.present = {"evse_present_voltage": 0, "evse_present_current": 0}
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311, clean_session=True)
        if broker[0] == "unix":
            self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311, clean_session=True, transport="unix")
            self.address = (broker[1], 1)
        else:
            self.address = (broker[1], broker[2])
        self.client.on_message = self._message
        self.client.on_connect = self._connected
        self.client.connect(*self.address, keepalive=30)
        self.wait(lambda: self.client.is_connected(), 5, "the fake EVerest connects to the broker")

    # -- plumbing ---------------------------------------------------------------

    def topic(self, rest: str) -> str:
        return self.prefix + rest

    def _connected(self, client, userdata, flags, reason, properties):
        p = self.prefix
        for topic in (
            f"{p}config/request",
            f"{p}modules/{DUT}/ready",
            f"{p}modules/{DUT}/impl/+/var/+",
            f"{p}modules/{DUT}/impl/+/error/#",
            f"{p}modules/{DUT}/impl/+/cmd/+/response/{EVSE_MANAGER}",
            f"{p}modules/{SECURITY[0]}/impl/{SECURITY[1]}/cmd/+",
            f"{p}modules/{VAS[0]}/impl/{VAS[1]}/cmd/+",
            f"{self.telemetry_prefix}#",
        ):
            client.subscribe(topic, 2)
        # the manager's retained start-up topic with the settings (§4.3)
        settings = {"prefix": p, "telemetry_prefix": self.telemetry_prefix, "telemetry_enabled": self.telemetry_id is not None,
                    "validate_schema": False, "forward_exceptions": False}
        client.publish(f"{p}settings", json.dumps({"msg_type": CONFIG_NAMES[self.generation][1], "data": settings}), qos=2, retain=True)
        if self.module_names:
            names = {DUT: "PyEvseV2G", EVSE_MANAGER: "EvseManager", SECURITY[0]: "EvseSecurity"}
            client.publish(f"{p}module_names", json.dumps({"msg_type": CONFIG_NAMES[self.generation][1], "data": names}), qos=2, retain=True)

    def publish(self, topic: str, msg_type: str | None, data, raw: bytes | None = None) -> None:
        payload = raw if raw is not None else json.dumps({"msg_type": msg_type, "data": data})
        self.client.publish(topic, payload, qos=2)

    def pump(self, seconds: float = 0.1) -> None:
        """Run the client's loop for ``seconds`` (reconnecting when the broker went away)."""
        end = time.monotonic() + seconds
        while True:
            if not self.client.is_connected():
                try:
                    self.client.reconnect()
                except OSError:
                    time.sleep(0.1)
            self.client.loop(timeout=0.02)
            if time.monotonic() >= end:
                return

    def wait(self, condition, timeout: float, what: str):
        """Pump until ``condition()`` is true; :raises AssertionError: naming ``what`` after ``timeout`` s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = condition()
            if value:
                return value
            self.pump(0.05)
        raise AssertionError(f"timed out waiting for: {what}")

    def disconnect(self) -> None:
        self.client.disconnect()

    # -- receiving ----------------------------------------------------------------

    def _message(self, client, userdata, message):
        if message.topic.startswith(self.telemetry_prefix):
            self._telemetry(message)
            return
        if message.topic in (self.prefix + "settings", self.prefix + "module_names"):
            return
        topic = message.topic[len(self.prefix):]
        try:
            envelope = json.loads(message.payload.decode())
        except ValueError:
            self.problems.append(f"not JSON on {topic}: {message.payload!r}")
            return
        parts = topic.split("/")
        if topic == "config/request":
            self._config_request(envelope)
        elif topic == f"modules/{DUT}/ready":
            self._expect(envelope, "ModuleReady", topic)
            self.ready = envelope.get("data") is True
        elif parts[:2] == ["modules", DUT] and parts[4] == "var":
            self._expect(envelope, "Var", topic)
            impl, name = parts[3], parts[5]
            value = envelope["data"]["data"]
            interface = "ISO15118_charger" if impl == "charger" else "iso15118_extensions"
            try:
                self.schemas.check_var(interface, name, value)
            except AssertionError as error:
                self.problems.append(f"var {impl}.{name}: {error}")
            self.vars.append((impl, name, value))
            if self.react:
                self._react(name, value)
        elif parts[:2] == ["modules", DUT] and parts[4] == "error":
            if envelope.get("msg_type") not in ("RaiseError", "ClearError"):
                self.problems.append(f"error topic {topic} with msg_type {envelope.get('msg_type')}")
            self.errors.append((envelope.get("msg_type"), envelope.get("data")))
        elif parts[:2] == ["modules", DUT] and parts[4] == "cmd":
            self._expect(envelope, "CmdResult", topic)
            inner = envelope["data"]["data"]
            inner["_cmd"] = parts[5]
            self.results[inner["id"]] = inner
        elif parts[:2] == ["modules", SECURITY[0]]:
            self._security_call(parts[5], envelope)
        elif parts[:2] == ["modules", VAS[0]]:
            self._vas_call(parts[5], envelope)

    def _telemetry(self, message):
        """Telemetry (§7.5): raw JSON in Gen C, an ExternalMQTT envelope around the JSON text in Gen B."""
        document = json.loads(message.payload.decode())
        if self.generation == "B":
            if document.get("msg_type") != "ExternalMQTT":
                self.problems.append(f"Gen B telemetry without ExternalMQTT envelope: {document!r}")
                return
            document = json.loads(document["data"])
        block = message.topic[len(self.telemetry_prefix):]
        for key in ("timestamp", "connector_id", "type"):
            if key not in document:
                self.problems.append(f"telemetry {block} without {key}")
        self.telemetry.append((block, document))

    def _expect(self, envelope, msg_type, topic):
        if not isinstance(envelope, dict) or envelope.get("msg_type") != msg_type:
            self.problems.append(f"{topic}: expected msg_type {msg_type}, got {envelope!r}")

    # -- the manager ----------------------------------------------------------------

    def module_config(self) -> dict:
        connections = {"iso15118_vas": []}
        if self.security:
            connections["security"] = [{"module_id": SECURITY[0], "implementation_id": SECURITY[1], "requirement": {"id": "security"}}]
        if self.vas:
            connections["iso15118_vas"] = [{"module_id": VAS[0], "implementation_id": VAS[1], "requirement": {"id": "iso15118_vas"}}]
        return {
            "module_id": DUT, "module_name": "PyEvseV2G", "standalone": False, "telemetry_enabled": self.telemetry_id is not None,
            "configuration_parameters": {"!module": [module_param(k, v) for k, v in self.config.items()]},
            "connections": connections, "mapping": None, "access": None,
        }

    def _config_request(self, envelope):
        request_type, response_type = CONFIG_NAMES[self.generation]
        if envelope.get("msg_type") != request_type:
            self.problems.append(f"config request with msg_type {envelope.get('msg_type')}, expected {request_type}")
            return
        data = envelope["data"]
        self.config_requests.append(data)
        origin = data["origin"]
        data = {"module_config": self.module_config(), "mappings": {origin: None}}
        if self.telemetry_id is not None:
            data["telemetry_config"] = {"id": self.telemetry_id}
        response = {"status": "Ok", "status_info": "", "type": "Get", "response": {"type": "Module", "data": data}}
        self.publish(self.topic(f"modules/{origin}/response"), response_type, response)

    def send_global_ready(self) -> None:
        self.publish(self.topic("ready"), "GlobalReady", True)
        self.global_ready_sent = True

    # -- EvseManager ------------------------------------------------------------------

    def call(self, cmd: str, args: dict, impl: str = "charger", raw: bytes | None = None) -> str:
        call_id = str(uuid.uuid4())
        topic = self.topic(f"modules/{DUT}/impl/{impl}/cmd/{cmd}")
        self.publish(topic, "Cmd", {"id": call_id, "args": args, "origin": EVSE_MANAGER}, raw=raw)
        return call_id

    def result(self, call_id: str, timeout: float = 10) -> dict:
        return self.wait(lambda: self.results.get(call_id), timeout, f"the result of call {call_id}")

    def call_ok(self, cmd: str, args: dict, impl: str = "charger"):
        answer = self.result(self.call(cmd, args, impl))
        assert "error" not in answer, (cmd, answer)
        assert answer["origin"] == DUT
        interface = "ISO15118_charger" if impl == "charger" else "iso15118_extensions"
        self.schemas.check_result(interface, cmd, answer.get("retval"))
        return answer.get("retval")

    def start_up(self, ac: bool = False) -> None:
        """EvseManager's ready hook: the start-up calls (DC or AC charger), then dlink_ready(true)."""
        for cmd, args in AC_STARTUP_CALLS if ac else STARTUP_CALLS:
            self.call_ok(cmd, args)
        self.call_ok("dlink_ready", {"value": True})

    def _react(self, name, value):
        if name == "require_auth_eim":
            self.call("authorization_response", {"authorization_status": "Accepted", "certificate_status": "NoCertificateAvailable"})
        elif name == "start_cable_check":
            self.call("update_isolation_status", {"isolation_status": "Valid"})
            self.call("cable_check_finished", {"status": True})
        elif name == "ac_close_contactor":
            self.call("ac_contactor_closed", {"status": True})
        elif name == "ac_open_contactor":
            self.call("ac_contactor_closed", {"status": False})
        elif name == "dc_ev_target_voltage_current":
            self.present = {"evse_present_voltage": value["dc_ev_target_voltage"], "evse_present_current": value["dc_ev_target_current"]}
            self.call("update_dc_present_values", {"present_voltage_current": dict(self.present)})

    def names(self, impl: str = "charger") -> list[str]:
        return [name for i, name, _ in self.vars if i == impl]

    def values(self, name: str) -> list:
        return [value for _, each, value in self.vars if each == name]

    # -- EvseSecurity -------------------------------------------------------------------

    def _security_call(self, cmd, envelope):
        data = envelope["data"]
        self.security_calls.append(cmd)
        certs = self.certs
        bundles = {"V2G": "ca/v2g/V2G_ROOT_CA.pem", "MO": "ca/mo/MO_ROOT_CA.pem", "CSMS": "ca/csms/CSMS_ROOT_CA.pem", "MF": "ca/mf/MF_ROOT_CA.pem"}
        error = None
        retval = None
        if cmd == "get_all_valid_certificates_info":
            if certs is None:
                retval = {"status": "NotFound", "info": []}
            else:
                retval = {"status": "Accepted", "info": [{
                    "key": str(certs / "client/cso/SECC_LEAF.key"),
                    "certificate": str(certs / "client/cso/CPO_CERT_CHAIN.pem"),
                    "certificate_single": str(certs / "client/cso/SECC_LEAF.pem"),
                    "certificate_root": (certs / "ca/v2g/V2G_ROOT_CA.pem").read_text(),
                    "certificate_count": 3,
                    **({"password": (certs / "client/cso/SECC_LEAF_PASSWORD.txt").read_text().splitlines()[0]}
                       if (certs / "client/cso/SECC_LEAF_PASSWORD.txt").exists() else {}),
                }]}
        elif cmd == "get_verify_file":
            path = certs / bundles[data["args"]["certificate_type"]] if certs is not None else None
            retval = str(path) if path is not None and path.exists() else ""
        elif cmd in ("get_mo_ocsp_request_data", "get_v2g_ocsp_request_data"):
            retval = {"ocsp_request_data_list": []}
        elif cmd == "verify_certificate":
            retval = "Valid"
        else:
            error = {"__everest__error_type": "HandlerException", "__everest__error_msg": f"not in this fake: {cmd}"}
        inner = {"id": data["id"], "origin": SECURITY[0]}
        if error:
            inner["error"] = error
        else:
            inner["retval"] = retval
        self.publish(self.topic(f"modules/{SECURITY[0]}/impl/{SECURITY[1]}/cmd/{cmd}/response/{data['origin']}"), "CmdResult",
                     {"type": "result", "data": inner})

    def store_update(self, update: dict) -> None:
        self.publish(self.topic(f"modules/{SECURITY[0]}/impl/{SECURITY[1]}/var/certificate_store_update"), "Var", {"data": update})

    # -- an ISO15118_vas module ---------------------------------------------------------------

    def offer_vas(self, services: list) -> None:
        self.publish(self.topic(f"modules/{VAS[0]}/impl/{VAS[1]}/var/offered_vas"), "Var", {"data": {"services": services}})

    def _vas_call(self, cmd, envelope):
        data = envelope["data"]
        self.vas_calls.append((cmd, data["args"]))
        retval = [{"set_id": 1, "parameters": [{"name": "Protocol", "value": {"int_value": 443}}]}] if cmd == "get_service_parameters" else None
        self.publish(self.topic(f"modules/{VAS[0]}/impl/{VAS[1]}/cmd/{cmd}/response/{data['origin']}"), "CmdResult",
                     {"type": "result", "data": {"id": data["id"], "origin": VAS[0], "retval": retval}})
