"""Tests for :mod:`evsev2g.charger`: the ISO15118_charger seam."""

import pytest
import yaml
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from evsev2g.charger import COMMANDS, VARS, Charger
from evsev2g.charger_types import ShapeError
from evsev2g.interfaces import ICharger
from evsev2g.testing import VarRecorder, dc_charger


def test_provides_icharger():
    """Charger provides ICharger."""
    assert verifyObject(ICharger, Charger(Clock()))


def test_every_command_has_a_method():
    """Every ISO15118_charger/iso15118_extensions command is a method with the interface's argument names."""
    import inspect

    for name, spec in COMMANDS.items():
        method = getattr(Charger, name)
        params = [p for p in inspect.signature(method).parameters if p != "self"]
        assert params == [arg for arg, _ in spec], name


def test_interface_yaml_commands_and_vars_are_all_covered(shared_dir):
    """The seam covers exactly the commands and vars of the EVerest interface files."""
    names_cmds, names_vars = set(), set()
    for file in ("ISO15118_charger.yaml", "iso15118_extensions.yaml"):
        doc = yaml.safe_load((shared_dir / "everest" / "interfaces" / file).read_text())
        names_cmds |= set(doc.get("cmds", {}))
        names_vars |= set(doc.get("vars", {}))
    assert names_cmds == set(COMMANDS)
    assert names_vars == set(VARS)


def test_commands_store_values():
    """Commands store their arguments for the state machines."""
    charger = dc_charger(Clock())
    charger.authorization_response("Accepted", "NoCertificateAvailable")
    charger.update_isolation_status("Valid")
    charger.update_dc_present_values({"evse_present_voltage": 400})
    assert charger.authorized is True
    assert charger.isolation_status == "Valid"
    assert charger.dc_present_values == {"evse_present_voltage": 400, "evse_present_current": 0}
    assert charger.dc_limit("max_export_current_A") == 250


def test_nominal_capability_preferred_and_present_limits_win():
    """dc_limit prefers the present limits, then nominal capability values."""
    charger = dc_charger(Clock())
    caps = dict(charger.capabilities, nominal_max_export_current_A=200)
    charger.set_powersupply_capabilities(caps)
    assert charger.dc_limit("max_export_current_A", "evse_maximum_current_limit") == 200
    charger.update_dc_maximum_limits(
        {"evse_maximum_current_limit": 120, "evse_maximum_power_limit": 50000, "evse_maximum_voltage_limit": 500}
    )
    assert charger.dc_limit("max_export_current_A", "evse_maximum_current_limit") == 120


@pytest.mark.parametrize(
    "name, arguments",
    [
        ("update_isolation_status", {"isolation_status": "Broken"}),
        ("session_setup", {"payment_options": [], "supported_certificate_service": False, "central_contract_validation_allowed": False}),
        ("update_dc_present_values", {"present_voltage_current": {"evse_present_voltage": 2000}}),
        ("update_dc_present_values", {"present_voltage_current": {"evse_present_current": 1}}),
        ("set_powersupply_capabilities", {"capabilities": {"bidirectional": False}}),
        ("stop_charging", {"stop": "yes"}),
        ("update_ac_max_current", {"max_current": True}),
        ("setup", {"evse_id": {"evse_id": "X", "colour": "red"}, "sae_j2847_mode": "None", "debug_mode": False}),
    ],
)
def test_bad_arguments_are_refused(name, arguments):
    """Arguments of the wrong shape raise ValueError naming the place and change nothing."""
    charger = Charger(Clock())
    before = dict(vars(charger))
    with pytest.raises(ValueError) as caught:
        charger.command(name, **arguments)
    assert name in str(caught.value)
    assert isinstance(caught.value, ShapeError)
    assert {k: v for k, v in vars(charger).items()} == before


def test_unknown_command_and_missing_argument():
    """Unknown commands and missing or extra arguments are refused."""
    charger = Charger(Clock())
    with pytest.raises(ValueError):
        charger.command("fly")
    with pytest.raises(ValueError):
        charger.command("stop_charging")
    with pytest.raises(ValueError):
        charger.command("stop_charging", stop=True, now=True)


def test_vars_reach_subscribers_with_shapes_checked():
    """Vars are delivered to subscribers; a payload of the wrong shape is a programming error."""
    charger = Charger(Clock())
    recorder = VarRecorder(charger)
    charger.publish("require_auth_eim")
    charger.publish("dc_ev_target_voltage_current", {"dc_ev_target_voltage": 400, "dc_ev_target_current": 10})
    assert recorder.events == [
        ("require_auth_eim", None),
        ("dc_ev_target_voltage_current", {"dc_ev_target_voltage": 400, "dc_ev_target_current": 10}),
    ]
    with pytest.raises(ValueError):
        charger.publish("dc_ev_target_voltage_current", {"dc_ev_target_voltage": 400})
    with pytest.raises(ValueError):
        charger.publish("evcc_id", "not-a-mac")
    with pytest.raises(ValueError):
        charger.publish("no_such_var")


def test_publish_on_change():
    """On-change vars are published when they differ from the last value of the session."""
    charger = Charger(Clock())
    recorder = VarRecorder(charger)
    assert charger.publish_on_change("dc_charging_complete", False)
    assert not charger.publish_on_change("dc_charging_complete", False)
    assert charger.publish_on_change("dc_charging_complete", True)
    assert recorder.payloads("dc_charging_complete") == [False, True]


def test_debug_vars_only_in_debug_mode_unless_asked_for():
    """v2g_messages & co reach all-var subscribers only in debug mode; a named subscription always gets them."""
    charger = Charger(Clock())
    everything = VarRecorder(charger)
    named = []
    charger.subscribe(lambda name, payload: named.append(name), names=["v2g_messages"])
    assert charger.wants("v2g_messages")
    charger.publish("v2g_messages", {"id": "SessionSetupReq"})
    assert everything.events == []
    assert named == ["v2g_messages"]
    charger.setup({"evse_id": "X"}, "None", True)
    charger.publish("v2g_messages", {"id": "SessionSetupRes"})
    assert everything.names() == ["v2g_messages"]


def test_wants_is_false_without_subscribers():
    """wants() lets callers skip costly payloads nobody receives."""
    charger = Charger(Clock())
    assert not charger.wants("v2g_messages")
    unsubscribe = charger.subscribe(lambda *a: None)
    assert charger.wants("dc_ev_status")
    assert not charger.wants("v2g_messages")
    unsubscribe()
    assert not charger.wants("dc_ev_status")


def test_failing_subscriber_does_not_stop_others():
    """A subscriber that raises is logged; the others still receive the var."""
    charger = Charger(Clock())

    def broken(name, payload):
        raise RuntimeError("boom")

    charger.subscribe(broken)
    recorder = VarRecorder(charger)
    charger.publish("start_cable_check")
    assert recorder.names() == ["start_cable_check"]


def test_observers_see_commands():
    """Observers hear every command after it took effect."""
    charger = Charger(Clock())
    seen = []
    stop = charger.observe(lambda name, args: seen.append((name, args, charger.link_ready)))
    charger.dlink_ready(True)
    stop()
    charger.dlink_ready(False)
    assert seen == [("dlink_ready", {"value": True}, True)]


def test_stop_charging_is_stamped_and_withdrawn():
    """stop_charging(True) records when; False withdraws it."""
    clock = Clock()
    clock.advance(7)
    charger = Charger(clock)
    charger.stop_charging(True)
    clock.advance(3)
    charger.stop_charging(True)
    assert charger.stop_requested_at == 7
    charger.stop_charging(False)
    assert charger.stop_requested_at is None


def test_reset_error_keeps_emergency():
    """reset_error clears errors except an emergency shutdown (it lasts for the session)."""
    charger = Charger(Clock())
    charger.send_error("Error_Malfunction")
    charger.send_error("Error_EmergencyShutdown")
    charger.reset_error()
    assert charger.errors == {"Error_EmergencyShutdown"}
    assert charger.emergency


def test_session_setup_forgets_old_authorization():
    """session_setup resets a previous authorization (no re-use across sessions)."""
    charger = dc_charger(Clock())
    charger.authorization_response("Accepted", "NoCertificateAvailable")
    charger.session_setup(["ExternalPayment", "Contract"], True, False)
    assert charger.authorized is None
    assert charger.payment_options == ["ExternalPayment", "Contract"]


def test_update_supported_app_protocols_result():
    """update_supported_app_protocols returns whether a protocol remains."""
    charger = Charger(Clock())
    assert charger.update_supported_app_protocols({"app_protocols": ["DIN70121"]}) is True
    assert charger.update_supported_app_protocols({"app_protocols": []}) is False


def test_two_chargers_are_independent():
    """Two sessions' chargers share nothing."""
    clock = Clock()
    first, second = dc_charger(clock), dc_charger(clock)
    first.send_error("Error_EmergencyShutdown")
    first.authorization_response("Accepted", "NoCertificateAvailable")
    first.publish_on_change("dc_charging_complete", True)
    assert not second.emergency and second.authorized is None
    assert second.last("dc_charging_complete") is None
