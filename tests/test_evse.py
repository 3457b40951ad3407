"""Tests for :mod:`evsev2g.evse`: EVSE-lifetime state beside per-session state, one session per EVSE."""

from twisted.internet.task import Clock

from evsev2g.charger import Charger
from evsev2g.evse import EVSE_ATTRIBUTES, EVSEState


def test_evse_commands_persist_and_session_state_is_fresh():
    """Limits and capabilities set on the EVSE reach every session; authorization and stop stay with their session."""
    clock = Clock()
    evse = EVSEState(clock)
    evse.command("update_isolation_status", isolation_status="Valid")
    first = Charger(clock, "first", evse)
    first.take_evse(lambda reason: None)
    evse.command("authorization_response", authorization_status="Accepted", certificate_status="Accepted")
    evse.command("stop_charging", stop=True)
    evse.command("pause_charging", pause=True)
    assert first.authorized and first.stop_requested_at is not None and first.pause_requested
    first.release_evse()
    second = Charger(clock, "second", evse)
    second.take_evse(lambda reason: None)
    assert second.isolation_status == "Valid"
    assert second.authorized is None and second.stop_requested_at is None and not second.pause_requested


def test_session_commands_before_the_session_are_carried_or_dropped():
    """session_setup and an early authorization wait for the next session; a stop with no session is dropped."""
    clock = Clock()
    evse = EVSEState(clock)
    evse.command("authorization_response", authorization_status="Accepted", certificate_status="Accepted")
    evse.command("session_setup", payment_options=["Contract", "ExternalPayment"], supported_certificate_service=False,
                 central_contract_validation_allowed=True)
    evse.command("stop_charging", stop=True)
    charger = Charger(clock, "car", evse)
    assert charger.payment_options == ["ExternalPayment"]  # not before it takes the EVSE
    charger.take_evse(lambda reason: None)
    assert charger.payment_options == ["Contract", "ExternalPayment"] and charger.central_contract_validation_allowed
    assert charger.authorized is None  # session_setup forgot the earlier authorization
    assert charger.stop_requested_at is None


def test_a_newer_session_ends_the_older_one_first():
    """take: the older holder's release callback runs before the newer session holds the EVSE."""
    clock = Clock()
    evse = EVSEState(clock)
    order = []
    old, new = Charger(clock, "old", evse), Charger(clock, "new", evse)
    old.take_evse(lambda reason: order.append(("old released", evse.holder, reason)))
    new.take_evse(lambda reason: order.append("new released"))
    assert order == [("old released", None, "a newer session took the EVSE")]
    assert evse.holder is new and old.superseded and not new.superseded
    old.release_evse()  # the old session's end does not free the EVSE the new one holds
    assert evse.holder is new


def test_charger_attributes_delegate_to_the_evse():
    """Every EVSE attribute read or written on a charger is the EVSE's; a lone charger has an EVSE of its own."""
    clock = Clock()
    evse = EVSEState(clock)
    charger = Charger(clock, evse=evse)
    for name in EVSE_ATTRIBUTES:
        assert getattr(charger, name) is getattr(evse, name)
    charger.capabilities = None
    charger.update_ac_max_current(16)
    assert evse.ac_max_current == 16 and evse.capabilities is None
    assert Charger(clock).evse is not Charger(clock).evse


def test_emergency_lasts_until_the_session_it_hit_ends():
    """Error_EmergencyShutdown is EVSE state, forgotten when the holding session ends."""
    clock = Clock()
    evse = EVSEState(clock)
    charger = Charger(clock, evse=evse)
    charger.take_evse(lambda reason: None)
    evse.command("send_error", error="Error_EmergencyShutdown")
    evse.command("reset_error")
    assert charger.emergency
    charger.release_evse()
    assert not Charger(clock, evse=evse).emergency


def test_observers_see_evse_commands_from_outside():
    """A session observing its charger hears dlink_ready sent to the EVSE."""
    clock = Clock()
    evse = EVSEState(clock)
    charger = Charger(clock, evse=evse)
    seen = []
    stop = charger.observe(lambda name, arguments: seen.append((name, arguments)))
    evse.command("dlink_ready", value=False)
    stop()
    evse.command("dlink_ready", value=True)
    assert seen == [("dlink_ready", {"value": False})]
