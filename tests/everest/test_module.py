"""
The EVerest module against a real Mosquitto and a fake EVerest written from
MQTT_PROTOCOL.md and the interface YAML: start-up, commands, vars, errors,
EvseSecurity, bad input.  The module runs as EVerest's manager starts a
Python module: ``python -m evsev2g.everest`` with the ``EV_*`` environment.
"""

import json

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
    for needle in ("not JSON", "expected Cmd", "no id or origin"):
        assert needle in module.log, needle
    assert module.process.poll() is None and "Traceback" not in module.log


def test_communication_fault_while_the_servers_cannot_start(start_module):
    """
    The TCP port is taken: generic/CommunicationFault is raised on charger
    (an error object as §7.1 describes), the module retries each second and
    clears it, same uuid, once the port is free.
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
    finally:
        holder.close()
    error = raised[0]
    assert error["type"] == "generic/CommunicationFault" and error["state"] == "Active"
    assert error["origin"] == {"module_id": DUT, "implementation_id": "charger"}
    assert error["severity"] in ("Low", "Medium", "High") and error["uuid"] and error["message"]
    cleared = fake.wait(lambda: [e for kind, e in fake.errors if kind == "ClearError"], 15, "ClearError")[0]
    assert cleared["uuid"] == error["uuid"] and cleared["state"] == "ClearedByModule"
    module.wait_for(fake, f"TCP port {port}")
    assert [kind for kind, _ in fake.errors] == ["RaiseError", "ClearError"]


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
