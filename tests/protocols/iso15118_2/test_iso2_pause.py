"""
Tests of ISO 15118-2 pause and resume: the paused-session store (bounded,
expiring, consumed once) and the sessions that use it.
"""

from twisted.internet.task import Clock

from evsev2g.protocols.iso15118_2 import State
from evsev2g.protocols.paused import PausedSession, PausedSessions
from evsev2g.testing_iso2 import ISO2_DC_SESSION
from tests.protocols.iso15118_2.harness import SID, Harness, START

PAUSE = ISO2_DC_SESSION[:-1] + ("SessionStopReq:Pause",)
OTHER = bytes.fromhex("1112131415161718")


def paused_first(store, dc=True, clock=None):
    """A DC session that pauses into ``store``; returns its harness."""
    h = Harness(dc=dc, paused=store, clock=clock)
    h.run(PAUSE)
    h.machine.finish("test")
    return h


def test_pause_keeps_the_session_and_publishes_dlink_pause():
    """SessionStop(Pause) after welding detection: OK, close, dlink_pause, the session kept for its SessionID."""
    store = PausedSessions()
    h = paused_first(store)
    assert h.replies[-1].close and h.vars.names()[-1] == "dlink_pause"
    assert "hlc_session_failed" not in h.vars.names() and len(store) == 1


def test_same_ev_resumes_with_old_session_joined():
    """The same SessionID on a new connection: OK_OldSessionJoined, the payment option and schedule kept ([V2G2-740], [V2G2-741])."""
    store = PausedSessions()
    first = paused_first(store)
    first.clock.advance(600)
    h = Harness(paused=store, clock=first.clock, new_id=OTHER)
    code, _, _ = h.send("SessionSetupReq", session_id=SID)
    assert code == "OK_OldSessionJoined" and h.machine.session_id == SID
    _, body, _ = h.send("ServiceDiscoveryReq")
    assert body.PaymentOptionList.PaymentOption == ["ExternalPayment"]
    h.run(ISO2_DC_SESSION[2:5])
    [tuple_] = h.bodies[-1].SAScheduleList.SAScheduleTuple
    # The first schedule ran 3600 s (the EV's departure time) from its CPD; 600 s have passed.
    assert tuple_.PMaxSchedule.PMaxScheduleEntry[0].RelativeTimeInterval.duration == 3000
    h.run(ISO2_DC_SESSION[5:])
    assert len(store) == 0


def test_a_different_car_gets_a_fresh_session():
    """Another SessionID or zeros after a pause: OK_NewSessionEstablished, nothing of the paused session (EvseV2G leaks it)."""
    store = PausedSessions()
    first = paused_first(store)
    for presented in (OTHER, b"\x00"):
        h = Harness(paused=store, clock=first.clock, new_id=bytes.fromhex("2122232425262728"))
        code, _, _ = h.send("SessionSetupReq", session_id=presented)
        assert code == "OK_NewSessionEstablished" and h.machine.session_id != SID
        assert h.machine.resumed is None
    assert len(store) == 1
    h = Harness(paused=store, clock=first.clock, new_id=OTHER)
    assert h.send("SessionSetupReq", session_id=SID)[0] == "OK_OldSessionJoined"
    h2 = Harness(paused=store, clock=first.clock, new_id=OTHER)
    assert h2.send("SessionSetupReq", session_id=SID)[0] == "OK_NewSessionEstablished"


def test_pause_only_after_power_delivery_stop():
    """SessionStop(Pause) before charging: FAILED and close; nothing kept."""
    store = PausedSessions()
    h = Harness(paused=store)
    h.run(ISO2_DC_SESSION[:3])
    code, _, reply = h.send("SessionStopReq", ChargingSession="Pause")
    assert code == "FAILED" and reply.close and len(store) == 0


def test_store_is_bounded_and_expires():
    """At most `limit` entries (the oldest goes), none older than `max_age`, consumed once."""
    store = PausedSessions(limit=2, max_age=100)
    for index in range(3):
        store.keep(PausedSession(bytes([index + 1]) * 8, paused_at=index))
    assert len(store) == 2 and store.take(b"\x01" * 8, 10) is None
    assert store.take(b"\x02" * 8, 10).session_id == b"\x02" * 8
    assert store.take(b"\x02" * 8, 10) is None
    assert store.take(b"\x03" * 8, 103) is None and len(store) == 0


def test_pause_then_unknown_request_sessions_do_not_mix():
    """Two sessions pausing into one store resume each with their own SessionID."""
    store = PausedSessions()
    clock = Clock()
    clock.advance(START)
    a = Harness(paused=store, clock=clock, new_id=SID)
    a.run(PAUSE)
    b = Harness(paused=store, clock=clock, new_id=OTHER)
    b.run(PAUSE)
    for sid in (OTHER, SID):
        h = Harness(paused=store, clock=clock, new_id=b"\x33" * 8)
        assert h.send("SessionSetupReq", session_id=sid)[0] == "OK_OldSessionJoined"
        assert h.machine.session_id == sid and h.machine.state is State.SESSION_SET_UP
