"""
Whole DIN SPEC 70121 sessions through the EVerest module: the module
(``python -m evsev2g.everest``, broker on its unix socket) serves in one
network namespace, the EV simulator finds it with SDP from the other, and
the fake EvseManager drives the charger over a real Mosquitto: start-up
commands, ``dlink_ready``, authorization, cable check, present values.
Also: a second car gets none of the first car's state, and the broker
restarted in the middle of charging.
"""

import subprocess
import sys
import time

import pytest

from tests.test_netns import NetnsPair, prepared

pytestmark = pytest.mark.netns

SESSION_VARS = [
    "evcc_id", "require_auth_eim", "start_cable_check", "start_pre_charge", "current_demand_started",
    "current_demand_finished", "dc_open_contactor", "dlink_terminate",
]


@pytest.fixture
def pair():
    """A fresh veth pair between two namespaces, removed afterwards."""
    yield from prepared(NetnsPair("eb"))


def ev(pair, *extra):
    """The EV simulator in the EV namespace, finding the SECC with SDP."""
    return subprocess.Popen(
        ["ip", "netns", "exec", pair.ev_ns, sys.executable, "-m", "evsev2g.sim.ev", "--interface", pair.ev_if,
         "--capacity", "50", "--start-soc", "70", "--target-soc", "75", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def charge(fake, car, timeout=90):
    """Pump the fake EVerest (it reacts as EvseManager) until the EV is done; :returns: its output."""
    fake.wait(lambda: car.poll() is not None, timeout, "the EV to finish")
    out = car.stdout.read()
    assert car.returncode == 0, out
    assert "stopped cleanly" in out, out
    return out


def in_order(names, wanted):
    """Whether ``wanted`` appear in ``names`` in that order."""
    position = 0
    for name in names:
        if position < len(wanted) and name == wanted[position]:
            position += 1
    return position == len(wanted)


def config(pair, test_pki):
    return {"device": pair.secc_if, "tls_security": "allow", "log_v2g_messages": False}


def test_din_session_then_a_second_car_with_nothing_of_the_first(pair, start_module, test_pki):
    """
    Gen C over the unix socket: a whole DIN DC session driven by the fake
    EvseManager; the vars arrive in the session's order, each valid for the
    interface YAML.  Then a second car: EvseManager sends session_setup and
    dlink_ready again; the second car is asked for authorization anew
    (nothing of the first car carried over) and charges cleanly too.
    """
    fake, module = start_module(config(pair, test_pki), transport="unix", certs=test_pki.directory, netns=pair.secc_ns,
                                telemetry_id=7)
    module.wait_for(fake, "TCP port", timeout=30)
    fake.start_up()
    first = charge(fake, ev(pair, "--interval", "0.01"))
    fake.wait(lambda: "dlink_terminate" in fake.names(), 20, "dlink_terminate after the first car")
    assert in_order(fake.names(), SESSION_VARS), fake.names()
    assert fake.problems == []
    # Telemetry (enabled by the manager, id 7): de-duplicated blocks with EvseV2G's field names.
    electrical = [doc for block, doc in fake.telemetry if block == "V2G/7/ev_electrical"]
    assert electrical and electrical[-1]["charge_progress"] == "Stop" and electrical[-1]["connector_id"] == 7
    assert max(doc["battery_soc_percent"] for doc in electrical) >= 70
    strip = [{k: v for k, v in doc.items() if k != "timestamp"} for doc in electrical]
    assert all(a != b for a, b in zip(strip, strip[1:])), "a block was published twice unchanged"
    transport = [doc for block, doc in fake.telemetry if block == "V2G/7/transport"]
    assert transport[-1]["tcp_connection_established"] is False and transport[-1]["current_demand_requested"] is True
    # Between the cars: a stop and a pause for nobody are dropped, not kept for the next car.
    fake.call_ok("stop_charging", {"stop": True})
    fake.call_ok("pause_charging", {"pause": True})
    fake.vars.clear()
    fake.call_ok("session_setup", {"payment_options": ["ExternalPayment"], "supported_certificate_service": False,
                                   "central_contract_validation_allowed": False})
    fake.call_ok("dlink_ready", {"value": True})
    second = charge(fake, ev(pair, "--interval", "0.01"))
    fake.wait(lambda: "dlink_terminate" in fake.names(), 20, "dlink_terminate after the second car")
    assert in_order(fake.names(), SESSION_VARS), fake.names()
    assert fake.names().count("require_auth_eim") == 1
    assert "EV charging" in first and "EV charging" in second
    assert fake.problems == []
    assert "Traceback" not in module.log


def test_broker_restarted_while_charging(pair, start_module, broker, test_pki):
    """
    The broker stops in the middle of CurrentDemand and comes back: the DIN
    session goes on to a clean stop, the module reconnects and resubscribes
    (commands are answered again), republishes supported_app_protocols_secc,
    and the vars of the session's end, published while it was away or after,
    reach EvseManager.
    """
    fake, module = start_module(config(pair, test_pki), transport="unix", certs=test_pki.directory, netns=pair.secc_ns)
    module.wait_for(fake, "TCP port", timeout=30)
    fake.start_up()
    car = ev(pair, "--interval", "0.05", "--current-demands", "160")
    fake.wait(lambda: "current_demand_started" in fake.names() or car.poll() is not None, 60, "current_demand_started")
    before = len(fake.values("supported_app_protocols_secc"))
    assert car.poll() is None, "the car finished before the broker went away"
    broker.stop()
    time.sleep(1.0)
    broker.start()
    module.wait_for(fake, "reconnected", timeout=30)
    fake.wait(lambda: fake.client.is_connected(), 10, "the fake EVerest reconnects")
    assert fake.call_ok("update_dc_maximum_limits", {"maximum_limits": {
        "evse_maximum_current_limit": 150, "evse_maximum_power_limit": 90000, "evse_maximum_voltage_limit": 900}}) is None
    charge(fake, car)
    fake.wait(lambda: "dlink_terminate" in fake.names(), 30, "dlink_terminate after the restart")
    assert len(fake.values("supported_app_protocols_secc")) > before
    assert "current_demand_finished" in fake.names()
    assert fake.problems == []
    assert "Traceback" not in module.log


@pytest.mark.parametrize("mode", ["dc", "ac"])
def test_iso2_session_over_tls_with_certificates_from_evse_security(pair, start_module, test_pki, mode):
    """
    ISO 15118-2 (DC and AC) over TLS 1.2 through the module, Gen B: the TLS
    server serves the chain the fake EvseSecurity named, the EV checks it
    against the V2G root; AC contactors answered by the fake EvseManager.
    A certificate_store_update while charging reloads the TLS chain and the
    running TLS session goes on to a clean stop.
    """
    from evsev2g.security import layout

    fake, module = start_module(config(pair, test_pki), generation="B", transport="unix", certs=test_pki.directory,
                                netns=pair.secc_ns)
    module.wait_for(fake, "TLS port 64109", timeout=30)
    fake.start_up(ac=mode == "ac")
    car = subprocess.Popen(
        ["ip", "netns", "exec", pair.ev_ns, sys.executable, "-m", "evsev2g.sim.ev", "--interface", pair.ev_if,
         "--protocol", "iso15118-2", "--mode", mode, "--tls", "--v2g-root", str(test_pki.directory / layout.V2G_ROOT),
         "--capacity", "60", "--start-soc", "70", "--target-soc", "75", "--interval", "0.05", "--current-demands", "40"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    fake.wait(lambda: {"require_auth_eim", "v2g_setup_finished"} & set(fake.names()) or car.poll() is not None, 60, "the session under way")
    fake.store_update({"operation": "Installed", "leaf_certificate_type": "V2G"})
    module.wait_for(fake, "TLS server chain reloaded")
    assert car.poll() is None, "the car finished before the reload"
    charge(fake, car)
    fake.wait(lambda: "dlink_terminate" in fake.names(), 20, "dlink_terminate")
    names = fake.names()
    if mode == "dc":
        assert in_order(names, SESSION_VARS), names
    else:
        assert in_order(names, ["evcc_id", "require_auth_eim", "ac_close_contactor", "ac_open_contactor", "dlink_terminate"]), names
    assert "TLS 1.2" in module.log or "TLSv1.2" in module.log, module.log
    assert "ISO15118D2 agreed" in module.log
    assert fake.problems == []
    assert "Traceback" not in module.log
