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
