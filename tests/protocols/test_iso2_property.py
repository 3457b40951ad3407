"""
Property test of the ISO 15118-2 state machine: any sequence of ISO-2
requests (all seventeen, with their variants), any SessionIDs, charger
events, time passing, an EV that does not wait for a pending answer, and
connections that end and come back (to resume a paused session), on an AC
or a DC charger, over TCP or TLS, with a value-added-service registry of a
working, a slow and a raising provider: the machine never raises, every
answer it gives (at once or later) encodes with the ISO-2 schema, and once
it says close, that connection is over.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer

from evsev2g.exi import load_codec
from evsev2g.exi.message import Message
from evsev2g.interfaces import IValueAddedService
from evsev2g.protocols.context import ProtocolContext
from evsev2g.protocols.iso15118_2 import REQUESTS, ISO2StateMachine
from evsev2g.protocols.paused import PausedSessions
from evsev2g.testing import FakeValueAddedService, VarRecorder, dc_charger
from evsev2g.testing_iso2 import ISO2_AC_SESSION, ISO2_DC_SESSION, ac_charger, iso2_request
from evsev2g.vas import ServiceRegistry
from evsev2g.vas_internet import InternetAccess
from tests.protocols.test_din70121_property import EVENTS as DIN_EVENTS

SID = bytes.fromhex("a1a2a3a4a5a6a7a8")
CODEC = load_codec("iso15118-2")


@implementer(IValueAddedService)
class Raising:
    """A provider that raises everywhere."""

    name = "raising"

    def offered_services(self):
        """Raises after offering once (the first answer is kept)."""
        self.offered_services = self._raise
        return [{"service_id": 60009}]

    def _raise(self, *args):
        raise RuntimeError("provider bug")

    get_service_parameters = selected_services = _raise


#: DIN's charger events, and those only ISO-2 (AC, receipts, pauses) reacts to.
EVENTS = {
    **DIN_EVENTS,
    "contactor closed": lambda c: c.ac_contactor_closed(True),
    "contactor open": lambda c: c.ac_contactor_closed(False),
    "receipt": lambda c: c.receipt_is_required(True),
    "meter": lambda c: c.update_meter_info({"timestamp": "2026-12-05T08:00:00Z", "energy_Wh_import": {"total": 1234}, "meter_id": "M1"}),
    "pause": lambda c: c.pause_charging(True),
    "no energy": lambda c: c.no_energy_pause_charging("PauseAfterPrecharge"),
}

#: Body fields that make variants of a request.
VARIANTS = {
    "PowerDeliveryReq": [{"ChargeProgress": p} for p in ("Start", "Stop", "Renegotiate")] + [{"SAScheduleTupleID": 7}],
    "SessionStopReq": [{"ChargingSession": "Terminate"}, {"ChargingSession": "Pause"}],
    "ServiceDetailReq": [{"ServiceID": i} for i in (1, 2, 3, 60001, 60009, 99)],
    "PaymentServiceSelectionReq": [
        {
            "SelectedPaymentOption": option,
            "SelectedServiceList": Message(
                "SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=i, ParameterSetID=s) for i, s in chosen]
            ),
        }
        for option in ("ExternalPayment", "Contract")
        for chosen in ([(1, None)], [(1, None), (3, 4)], [(1, None), (60001, None), (60009, 1)], [(3, 3)], [(1, None), (77, None)])
    ],
    "ServiceDiscoveryReq": [{}, {"ServiceCategory": "Internet"}, {"ServiceScope": "nowhere"}],
}

requests = st.tuples(
    st.just("request"),
    st.sampled_from(sorted(REQUESTS)),
    st.sampled_from([SID, b"\x00", bytes(8), b"\x01\x02"]),
    st.integers(0, 30),
    st.booleans(),
)
steps = st.lists(
    st.one_of(
        requests,
        requests,
        st.tuples(st.just("event"), st.sampled_from(sorted(EVENTS)), st.none(), st.none(), st.none()),
        st.tuples(st.just("time"), st.sampled_from([0.5, 3.5, 20.0, 61.0]), st.none(), st.none(), st.none()),
        st.tuples(st.just("reconnect"), st.none(), st.none(), st.none(), st.none()),
    ),
    max_size=30,
)


class Connections:
    """Successive connections of one EV to one charger: a state machine each, sharing clock, charger, registry and paused sessions."""

    def __init__(self, dc: bool, secure: bool):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.charger = (dc_charger if dc else ac_charger)(self.clock)
        VarRecorder(self.charger)
        self.slow = FakeValueAddedService("slow", [{"service_id": 60001}], {60001: [{"set_id": 1, "parameters": [{"name": "x", "value": {"bool_value": True}}]}]}, asynchronous=True)
        self.services = ServiceRegistry([InternetAccess(), self.slow, Raising()], clock=self.clock)
        self.slow.release()
        self.paused = PausedSessions()
        self.secure = secure
        self.replies: list = []
        self.sent = 0
        self.machine = None
        self.connect()

    def connect(self) -> None:
        """End the current connection (if any) and open the next."""
        if self.machine is not None:
            self.machine.finish("connection closed")
        context = ProtocolContext(
            charger=self.charger, clock=self.clock, new_session_id=lambda: SID, label="property",
            secure=self.secure, services=self.services, paused=self.paused,
        )
        self.machine = ISO2StateMachine(context)
        self.closed = False

    def send(self, name: str, session_id: bytes, variant: int, dc: bool) -> None:
        """One request; its answer is checked when it comes (now or later)."""
        fields = VARIANTS.get(name, [{}])
        fields = fields[variant % len(fields)] if isinstance(variant, int) else variant
        self.sent += 1
        reply = self.machine.handle(iso2_request(name, session_id, dc=dc, **fields))
        connection = self.machine
        if isinstance(reply, Deferred):
            reply.addBoth(lambda result: self.answered(result, connection))
        else:
            self.answered(reply, connection)

    def session_prefix(self, count: int, dc: bool) -> None:
        """The first ``count`` steps of a whole EIM session, the charger agreeing at once, so that sequences start deep in the session too."""
        for step in (ISO2_DC_SESSION if dc else ISO2_AC_SESSION)[:count]:
            name, _, progress = step.partition(":")
            for event in {"AuthorizationReq": ["authorize"], "CableCheckReq": ["cable ok"], "PowerDeliveryReq": ["contactor closed"]}.get(name, []):
                EVENTS[event](self.charger)
            self.send(name, self.machine.session_id or b"\x00", {"ChargeProgress": progress} if progress else {}, dc)

    def answered(self, reply, connection) -> None:
        """Check one answer: a Reply (not a Failure) whose message encodes; close ends its connection."""
        assert not hasattr(reply, "getTraceback"), reply.getTraceback()
        self.replies.append(reply)
        if reply.message is not None:
            CODEC.decode(CODEC.encode(reply.message))
        if reply.close and connection is self.machine:
            self.closed = True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.booleans(), st.integers(0, len(ISO2_DC_SESSION)), steps)
def test_any_sequence_is_answered_validly(dc, secure, prefix, sequence):
    """Whatever arrives in whatever order, from however many connections, the machine answers schema-validly or closes, every request gets its answer in the end, and it never raises."""
    ev = Connections(dc, secure)
    ev.session_prefix(prefix, dc)
    for kind, what, session_id, variant, ac_fields in sequence:
        if kind == "event":
            EVENTS[what](ev.charger)
        elif kind == "time":
            ev.clock.advance(what)
            ev.slow.release()
        elif kind == "reconnect" or ev.closed:
            ev.connect()
        if kind == "request":
            sent = len(ev.replies)
            ev.send(what, session_id, variant, dc if not ac_fields else not dc)
            assert len(ev.replies) in (sent, sent + 1)
    ev.slow.release()
    ev.clock.advance(120)
    ev.slow.release()
    ev.machine.finish("end of test")
    assert ev.machine.finished
    assert len(ev.replies) == ev.sent, "a request was never answered"
