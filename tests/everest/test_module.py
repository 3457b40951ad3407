"""
The EVerest module against a real Mosquitto and a fake EVerest written from
MQTT_PROTOCOL.md and the interface YAML: start-up, commands, vars, errors,
EvseSecurity, bad input.  The module runs as EVerest's manager starts a
Python module: ``python -m evsev2g.everest`` with the ``EV_*`` environment.
"""

import pytest

from tests.everest.fake_everest import DUT, STARTUP_CALLS

LOCAL = {"device": "lo", "tcp_port": 0, "tls_port": 0, "sdp_port": 0, "tls_security": "allow"}


@pytest.mark.parametrize("generation", ["C", "B"])
def test_start_up_commands_and_certificates(start_module, test_pki, generation):
    """
    Gen C and Gen B: config request, ModuleReady, GlobalReady; every start-up
    command of EvseManager answered with a schema-valid result; the TLS
    server runs on the chain EvseSecurity named; supported_app_protocols_secc
    is published.
    """
    fake, module = start_module(LOCAL, generation=generation, certs=test_pki.directory)
    assert fake.config_requests == [{"type": "Get", "origin": DUT, "request": {"type": "Module"}}]
    module.wait_for(fake, "TLS port")
    fake.start_up()
    assert fake.call_ok("update_supported_app_protocols", {"supported_app_protocols": {"app_protocols": ["DIN70121"]}}) is True
    fake.wait(lambda: fake.values("supported_app_protocols_secc"), 10, "supported_app_protocols_secc")
    assert {"get_all_valid_certificates_info", "get_verify_file"} <= set(fake.security_calls)
    assert "TLS port off" not in module.log and "TLS server off" not in module.log
    assert fake.problems == []
    assert module.stop() == 0 or module.process.returncode == -15
    assert "Traceback" not in module.log


def test_bad_input_gets_an_error_result_or_a_log_line_and_the_module_goes_on(start_module):
    """
    Malformed JSON, a wrong msg_type, no id/origin (nobody to answer: a log
    line); an unknown command, arguments of the wrong type, args that are not
    an object (an error result of the framework's kind); the next call works.
    """
    fake, module = start_module(dict(LOCAL, tls_security="prohibit"))
    module.wait_for(fake, "TCP port")
    cmd_topic = fake.topic(f"modules/{DUT}/impl/charger/cmd/")
    fake.publish(cmd_topic + "dlink_ready", None, None, raw=b"{not json")
    fake.publish(cmd_topic + "dlink_ready", "Var", {"id": "x", "args": {"value": True}, "origin": "evse_manager"})
    fake.publish(cmd_topic + "dlink_ready", "Cmd", {"args": {"value": True}})
    fake.publish(cmd_topic + "dlink_ready", None, None, raw=b"[" * (2 << 20))
    errors = {
        fake.call("fly_to_the_moon", {}): "HandlerException",
        fake.call("dlink_ready", {"value": "yes"}): "SchemaValidationError",
        fake.call("dlink_ready", {"valeu": True}): "SchemaValidationError",
        fake.call("update_isolation_status", {"isolation_status": "Broken"}): "SchemaValidationError",
        fake.call("set_get_certificate_response", {"certificate_response": {}}, impl="charger"): "HandlerException",
        fake.call("dlink_ready", [True]): "MessageParsingError",
    }
    for call_id, kind in errors.items():
        answer = fake.result(call_id)
        assert answer["error"]["__everest__error_type"] == kind, answer
        assert answer["error"]["__everest__error_msg"]
        assert "retval" not in answer
    assert fake.call_ok("dlink_ready", {"value": True}) is None
    for needle in ("not JSON", "expected Cmd", "no id or origin", "dropped (more than 1048576)"):
        assert needle in module.log, needle
    assert module.process.poll() is None and "Traceback" not in module.log


def test_communication_fault_while_the_servers_cannot_start(start_module):
    """
    The TCP port is taken: generic/CommunicationFault is raised on charger
    (an error object as §7.1 describes), raised again when EvseManager's
    setup shows it is up, and cleared (same uuid) once the port is free: the
    module retries each second.
    """
    import random
    import socket

    holder = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    while True:
        port = random.randint(50000, 60000)
        try:
            holder.bind(("::1", port))
            break
        except OSError:
            continue
    holder.listen(1)
    fake, module = start_module(dict(LOCAL, tls_security="prohibit", tcp_port=port))
    try:
        raised = fake.wait(lambda: [e for kind, e in fake.errors if kind == "RaiseError"], 15, "RaiseError")
        # EvseManager's first setup: the active error is raised again (it may have subscribed late).
        fake.call_ok(*STARTUP_CALLS[0])
        again = fake.wait(lambda: [e for kind, e in fake.errors if kind == "RaiseError"][1:], 15, "RaiseError again")
        assert again[0]["uuid"] == raised[0]["uuid"]
    finally:
        holder.close()
    error = raised[0]
    assert error["type"] == "generic/CommunicationFault" and error["state"] == "Active"
    assert error["origin"] == {"module_id": DUT, "implementation_id": "charger"}
    assert error["severity"] in ("Low", "Medium", "High") and error["uuid"] and error["message"]
    cleared = fake.wait(lambda: [e for kind, e in fake.errors if kind == "ClearError"], 15, "ClearError")[0]
    assert cleared["uuid"] == error["uuid"] and cleared["state"] == "ClearedByModule"
    module.wait_for(fake, f"TCP port {port}")
    assert [kind for kind, _ in fake.errors] == ["RaiseError", "RaiseError", "ClearError"]


def test_missing_security_requirement_serves_tcp_and_says_why(start_module):
    """No evse_security connection: one clear log line, TCP only, commands still answered."""
    fake, module = start_module(dict(LOCAL), security=False)
    module.wait_for(fake, "requirement 'security'")
    module.wait_for(fake, "TCP port")
    fake.start_up()
    assert "TLS port off" in module.log


def test_refusing_broker_then_reachable(tmp_path, broker, prefix, schemas):
    """The broker is down at start: a log line, retries with back-off; once it is up the start-up completes."""
    from tests.everest.conftest import ModuleProcess
    from tests.everest.fake_everest import FakeEverest

    broker.stop()
    module = ModuleProcess(broker, prefix, tmp_path / "module.log")
    try:
        deadline = __import__("time").monotonic() + 10
        while "unreachable" not in module.log and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
        assert "unreachable" in module.log and module.process.poll() is None
        broker.start()
        fake = FakeEverest(("tcp", "127.0.0.1", broker.port), prefix, "C", dict(LOCAL, tls_security="prohibit"), None, schemas)
        fake.wait(lambda: fake.ready, 30, "ModuleReady after the broker came up")
        fake.send_global_ready()
        module.wait_for(fake, "TCP port")
        fake.start_up()
        fake.disconnect()
    finally:
        module.stop()
    assert "Traceback" not in module.log


def test_no_config_from_the_manager_ends_the_module(tmp_path, broker, prefix):
    """Nobody answers the config request: after two 5 s waits the module says so and exits 1 (as framework modules do)."""
    from tests.everest.conftest import ModuleProcess

    module = ModuleProcess(broker, prefix, tmp_path / "module.log")
    assert module.process.wait(30) == 1
    assert "no config from the manager" in module.log


def test_installed_module_py_started_as_the_manager_does(tmp_path, broker, prefix, schemas, shared_dir):
    """
    ``install MODULES_DIR`` writes a manifest with EvseV2G's provides,
    requires and config (names, types, defaults, enums) and a module.py; the
    manager's way of starting it (``python3 module.py`` with EV_*) reaches
    ModuleReady and answers commands.
    """
    import subprocess
    import sys

    import yaml

    from tests.everest.conftest import REPO
    from tests.everest.fake_everest import FakeEverest

    done = subprocess.run([sys.executable, "-m", "evsev2g.everest", "install", str(tmp_path / "modules")],
                          capture_output=True, text=True, timeout=60, cwd="/", env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "modules" / "PyEvseV2G"
    ours = yaml.safe_load((folder / "manifest.yaml").read_text())
    seed = yaml.safe_load((shared_dir / "everest" / "EvseV2G-manifest.yaml").read_text())
    assert {k: v["interface"] for k, v in ours["provides"].items()} == {k: v["interface"] for k, v in seed["provides"].items()}
    assert ours["requires"]["iso15118_vas"]["max_connections"] == seed["requires"]["iso15118_vas"]["max_connections"]
    assert {k: v["interface"] for k, v in ours["requires"].items()} == {k: v["interface"] for k, v in seed["requires"].items()}
    for key, spec in seed["config"].items():
        assert ours["config"][key]["type"] == spec["type"], key
        assert ours["config"][key]["default"] == spec["default"], key
        assert ours["config"][key].get("enum") == spec.get("enum"), key
    assert set(ours) <= {"description", "config", "provides", "requires", "metadata", "enable_telemetry",
                         "enable_external_mqtt", "enable_global_errors"}
    fake = FakeEverest(("tcp", "127.0.0.1", broker.port), prefix, "C", dict(LOCAL, tls_security="prohibit"), None, schemas)
    env = {"EV_MODULE": DUT, "EV_PREFIX": "/usr", "EV_MQTT_EVEREST_PREFIX": prefix, "EV_MQTT_EXTERNAL_PREFIX": "",
           "EV_MQTT_BROKER_HOST": "127.0.0.1", "EV_MQTT_BROKER_PORT": str(broker.port), "EV_LOG_CONF_FILE": "/dev/null",
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    log = open(tmp_path / "module.log", "w")
    module = subprocess.Popen(["python3", str((folder / "module.py").resolve())], env=env, stdout=log, stderr=subprocess.STDOUT, cwd="/")
    try:
        fake.wait(lambda: fake.ready or module.poll() is not None, 30, "ModuleReady from the installed module")
        assert fake.ready, (tmp_path / "module.log").read_text()
        fake.send_global_ready()
        fake.start_up()
    finally:
        module.terminate()
        module.wait(15)
        fake.disconnect()


def test_under_twistd_with_backend_everest(tmp_path, broker, prefix, schemas):
    """``twistd evsev2g --set backend=everest`` with the everest.* keys is the same module (commands answered)."""
    import subprocess

    from tests.everest.fake_everest import FakeEverest
    from tests.test_twistd import twistd_command

    fake = FakeEverest(("tcp", "127.0.0.1", broker.port), prefix, "B", {}, None, schemas)
    log_path = tmp_path / "twistd.log"
    log = open(log_path, "w")
    command = twistd_command("backend=everest", "device=lo", "tls_security=prohibit", "tcp_port=0", "sdp_port=0",
                             f"everest.mqtt_broker_port={broker.port}", "everest.mqtt_broker_host=127.0.0.1",
                             f"everest.mqtt_everest_prefix={prefix}", "everest.generation=B", f"everest.module_id={DUT}")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd="/")
    try:
        fake.wait(lambda: fake.ready or process.poll() is not None, 30, "ModuleReady from twistd")
        assert fake.ready, log_path.read_text()
        fake.send_global_ready()
        fake.wait(lambda: "TCP port" in log_path.read_text(), 20, "the servers under twistd")
        fake.start_up()
        assert fake.problems == []
    finally:
        process.terminate()
        process.wait(15)
        fake.disconnect()
    assert "Traceback" not in log_path.read_text()


def test_certificate_store_update_reloads_tls_and_vas_modules_offer(start_module, test_pki):
    """
    certificate_store_update from EvseSecurity: the module asks for the chain
    again and the TLS server reloads it; an ISO15118_vas module's offered_vas
    reaches the module (its services join the registry).
    """
    fake, module = start_module(dict(LOCAL), certs=test_pki.directory, vas=True)
    module.wait_for(fake, "TLS port")
    asked = fake.security_calls.count("get_all_valid_certificates_info")
    fake.store_update({"operation": "Installed", "leaf_certificate_type": "V2G"})
    module.wait_for(fake, "TLS server chain reloaded")
    assert fake.security_calls.count("get_all_valid_certificates_info") == asked + 1
    fake.offer_vas([{"service_id": 3, "service_name": "InternetAccess"}, {"service_id": 1234, "service_name": "Parking"}])
    module.wait_for(fake, "offers services [3, 1234]")
    fake.store_update({"operation": "Installed"})  # neither leaf nor CA type: nothing to reload, no crash
    fake.publish(fake.topic("modules/evse_security/impl/main/var/certificate_store_update"), "Var", {"data": "garbage"})
    module.wait_for(fake, "bad payload ignored")
    assert "Traceback" not in module.log


def test_gen_c_shutdown_topic_stops_the_module(start_module):
    """Gen C: a raw ``{P}shutdown`` (no envelope) ends the module cleanly, exit 0."""
    fake, module = start_module(dict(LOCAL, tls_security="prohibit"))
    module.wait_for(fake, "TCP port")
    fake.publish(fake.topic("shutdown"), None, None, raw=b"true")
    fake.wait(lambda: module.process.poll() is not None, 20, "the module to exit")
    assert module.process.returncode == 0, module.log
    assert "asks us to shut down" in module.log and "Traceback" not in module.log


def test_broker_refusing_the_connection(tmp_path, prefix):
    """A broker that refuses us (no anonymous clients): a clear log line, retries with back-off, no crash."""
    from tests.everest.broker import Mosquitto
    from tests.everest.conftest import ModuleProcess

    strict = Mosquitto(tmp_path, anonymous=False).start()
    module = ModuleProcess(strict, prefix, tmp_path / "module.log")
    try:
        import time

        deadline = time.monotonic() + 15
        while module.log.count("refused the connection") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert module.log.count("refused the connection") >= 2, module.log
        assert module.process.poll() is None
    finally:
        module.stop()
        strict.stop()
    assert "Traceback" not in module.log


def test_manager_sending_text_values_and_a_runtime_change(start_module):
    """Config values sent as text are typed by their key; a Gen C set_request is answered Rejected (all ReadOnly)."""
    import json

    fake, module = start_module({"device": "lo", "tcp_port": "0", "tls_port": "0", "sdp_port": "0", "tls_security": "prohibit",
                                 "tls_timeout": "12000", "enable_sdp_server": "false", "colour": "blue"})
    module.wait_for(fake, "SDP off")
    assert "'colour' is not an evsev2g key" in module.log
    replies = []
    fake.client.subscribe(fake.topic(f"modules/{DUT}/config/set_response"), 2)
    fake.client.message_callback_add(fake.topic(f"modules/{DUT}/config/set_response"),
                                     lambda client, userdata, message: replies.append(json.loads(message.payload)))
    fake.publish(fake.topic(f"modules/{DUT}/config/set_request"), "ConfigurationRequest",
                 {"identifier": {"module_id": DUT, "configuration_parameter_name": "device"}, "value": "eth1"})
    reply = fake.wait(lambda: replies, 10, "set_response")[0]
    assert reply == {"msg_type": "ConfigurationResponse",
                     "data": {"status": "Ok", "status_info": "", "type": "Set", "response": {"status": "Rejected"}}}


@pytest.mark.parametrize("manager, configured", [("B", "C"), ("C", "B")])
def test_the_managers_generation_wins(start_module, manager, configured):
    """The retained module_names tells the manager's generation; a module configured for the other one follows it."""
    fake, module = start_module(dict(LOCAL, tls_security="prohibit"), generation=manager, module_generation=configured)
    module.wait_for(fake, "TCP port")
    fake.start_up()
    assert f"generation {manager}" in module.log and fake.problems == []


def test_twistd_with_a_missing_device_reports_a_communication_fault(tmp_path, broker, prefix, schemas):
    """Under twistd with backend everest, a device missing at start is generic/CommunicationFault (retried), not an exit."""
    import subprocess

    from tests.everest.fake_everest import FakeEverest
    from tests.test_twistd import twistd_command

    fake = FakeEverest(("tcp", "127.0.0.1", broker.port), prefix, "C", {}, None, schemas)
    log_path = tmp_path / "twistd.log"
    command = twistd_command("backend=everest", "device=nosuch4", "tls_security=prohibit", f"everest.mqtt_broker_port={broker.port}",
                             "everest.mqtt_broker_host=127.0.0.1", f"everest.mqtt_everest_prefix={prefix}", f"everest.module_id={DUT}")
    process = subprocess.Popen(command, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, cwd="/")
    try:
        fake.wait(lambda: fake.ready or process.poll() is not None, 30, "ModuleReady from twistd")
        assert fake.ready, log_path.read_text()
        fake.send_global_ready()
        raised = fake.wait(lambda: [e for kind, e in fake.errors if kind == "RaiseError"], 20, "CommunicationFault")
        assert raised[0]["type"] == "generic/CommunicationFault" and "nosuch4" in raised[0]["message"]
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(15)
        fake.disconnect()


def test_a_burst_of_commands_gets_every_result(start_module):
    """
    200 commands at once (EvseManager's present values at full rate): every
    one gets its result.  (With more than Mosquitto's 20 QoS 2 messages in
    flight per client, the broker silently dropped results.)
    """
    fake, module = start_module(dict(LOCAL, tls_security="prohibit"))
    module.wait_for(fake, "TCP port")
    ids = [fake.call("update_dc_present_values", {"present_voltage_current": {"evse_present_voltage": 400 + i % 50,
                                                                              "evse_present_current": 10}}) for i in range(200)]
    fake.wait(lambda: all(i in fake.results for i in ids), 60, "every result of the burst")
    assert all("error" not in fake.results[i] for i in ids)


def test_twistd_without_a_manager_answer_exits_with_status_1(tmp_path, broker, prefix):
    """Under twistd with backend everest, no answer to the config request (no manager) ends twistd with status 1 and a log line saying why."""
    import subprocess

    from tests.test_twistd import twistd_command

    log_path = tmp_path / "twistd.log"
    command = twistd_command("backend=everest", "tls_security=prohibit", f"everest.mqtt_broker_port={broker.port}",
                             "everest.mqtt_broker_host=127.0.0.1", f"everest.mqtt_everest_prefix={prefix}", f"everest.module_id={DUT}")
    with open(log_path, "w") as log:
        process = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd="/", timeout=60)
    text = log_path.read_text()
    assert process.returncode == 1, text
    assert "cannot run as an EVerest module" in text
