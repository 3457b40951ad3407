"""
Property test of the DIN state machine: any sequence of DIN requests, any
SessionIDs and any charger events in between never make it raise, and every
answer it gives encodes with the DIN schema.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from evsev2g.exi import load_codec
from evsev2g.protocols.context import ProtocolContext
from evsev2g.protocols.din70121 import REQUESTS, DINStateMachine
from evsev2g.testing import VarRecorder, dc_charger, din_request

SID = bytes.fromhex("a1a2a3a4a5a6a7a8")
CODEC = load_codec("din70121")

EVENTS = {
    "authorize": lambda c: c.authorization_response("Accepted", "NoCertificateAvailable"),
    "reject": lambda c: c.authorization_response("Blocked", "NoCertificateAvailable"),
    "cable ok": lambda c: (c.update_isolation_status("Valid"), c.cable_check_finished(True)),
    "isolation fault": lambda c: c.update_isolation_status("Fault"),
    "stop": lambda c: c.stop_charging(True),
    "emergency": lambda c: c.send_error("Error_EmergencyShutdown"),
    "reset": lambda c: c.reset_error(),
    "no power": lambda c: setattr(c, "capabilities", None),
}

steps = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from(sorted(REQUESTS)), st.sampled_from([SID, b"\x00", bytes(8), b"\x01\x02"])),
        st.tuples(st.just("event"), st.sampled_from(sorted(EVENTS)), st.none()),
        st.tuples(st.just("time"), st.sampled_from([0.5, 20.0, 61.0]), st.none()),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_any_sequence_is_answered_validly(sequence):
    """Whatever arrives in whatever order, the machine answers with a schema-valid message or closes; it never raises."""
    clock = Clock()
    charger = dc_charger(clock)
    VarRecorder(charger)
    machine = DINStateMachine(ProtocolContext(charger=charger, clock=clock, new_session_id=lambda: SID, label="property"))
    for kind, what, session_id in sequence:
        if kind == "event":
            EVENTS[what](charger)
            continue
        if kind == "time":
            clock.advance(what)
            continue
        reply = machine.handle(din_request(what, session_id))
        if reply.message is not None:
            CODEC.encode(reply.message)
        if reply.close:
            break
    machine.finish("end of test")
    assert machine.finished
