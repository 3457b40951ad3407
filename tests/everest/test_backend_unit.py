"""
The EVerest backend's own logic on a Clock, with a recording stand-in for
the MQTT module: the CommunicationSetup timer, var routing, one session per
EVSE, error raise/clear, interfaces.  (The wire and the broker are covered
by the tests against a real Mosquitto.)
"""

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from evsev2g.config import load_config
from evsev2g.everest.backend import EverestBackend, EverestBackendFactory
from evsev2g.everest.vas import EverestVAS
from evsev2g.interfaces import IBackendRuntime, IChargerBackendFactory, ISecurity, ISingleEVSEBackend, IValueAddedService
from evsev2g.protocols.apphandshake import load_protocol_versions
from evsev2g.protocols.context import ProtocolSettings
from evsev2g.session import SessionFactory, SessionSettings
from evsev2g.testing import FakeCodec, FakeSessionLink, app_protocol_request, din_request

DIN = "urn:din:70121:2012:MsgDef"


class RecordingModule:
    """What the backend uses of EverestModule, recorded."""

    class Settings:
        module_id = "iso15118_charger"

    def __init__(self):
        from twisted.application.service import Service

        self.settings = self.Settings()
        self.mqtt = Service()
        self.module_config = None
        self.global_ready = True
        self.vars, self.errors, self.calls, self.subscriptions = [], [], [], []

    def on_reconnected(self, hook):
        self.reconnected = hook

    def publish_var(self, impl, name, value):
        self.vars.append((impl, name, value))

    def raise_error(self, impl, error_type, message, description=""):
        self.errors.append(("raise", impl, error_type))

    def republish_errors(self):
        self.errors.append(("again",))

    def clear_error(self, impl, error_type):
        self.errors.append(("clear", impl, error_type))

    def subscribe_var(self, module_id, impl, name, callback):
        self.subscriptions.append((module_id, impl, name, callback))

    def call(self, module_id, impl, name, args, timeout=300):
        self.calls.append((module_id, impl, name, args))
        return succeed(None)


def make(*settings):
    clock = Clock()
    module = RecordingModule()
    backend = EverestBackend(load_config(None, ["backend=everest", *settings]), clock, module)
    return clock, module, backend


def test_interfaces():
    """The backend, its security provider and VAS providers declare and provide their interfaces."""
    clock, module, backend = make()
    assert verifyObject(ISingleEVSEBackend, backend) and verifyObject(IBackendRuntime, backend)
    assert verifyObject(ISecurity, backend.security)
    assert verifyObject(IValueAddedService, EverestVAS(module, "vas", "main"))
    assert verifyObject(IChargerBackendFactory, EverestBackendFactory())
    from evsev2g.backends import SimulatorBackendFactory, backend_names

    assert verifyObject(IChargerBackendFactory, SimulatorBackendFactory())
    assert verifyObject(IBackendRuntime, SimulatorBackendFactory().make(load_config(None, []), clock))
    assert backend_names() == ["everest", "simulator"]


def test_communication_setup_timer_publishes_dlink_error():
    """dlink_ready(true) with no V2G connection within the timer: dlink_error ([V2G2-714], [V2G2-716])."""
    clock, module, backend = make("timers.communication_setup_ms=2000")
    assert not backend.link_ready  # SDP stays silent until EvseManager's data link is up
    backend.evse.command("dlink_ready", value=True)
    assert backend.link_ready
    clock.advance(1.9)
    assert ("charger", "dlink_error", None) not in module.vars
    clock.advance(0.1)
    assert module.vars[-1] == ("charger", "dlink_error", None)


def test_communication_setup_met_or_cancelled():
    """A V2G connection in time, or dlink_ready(false), stops the timer."""
    from evsev2g.charger import Charger

    clock, module, backend = make("timers.communication_setup_ms=2000")
    backend.evse.command("dlink_ready", value=True)
    clock.advance(1)
    backend.session_started(Charger(clock, "car", backend.evse))
    backend.evse.command("dlink_ready", value=False)
    backend.evse.command("dlink_ready", value=True)
    backend.evse.command("dlink_ready", value=False)
    clock.advance(10)
    assert not [v for v in module.vars if v[1] == "dlink_error"]


def test_vars_go_to_their_implementation_and_app_protocols_are_repeated():
    """iso15118_extensions vars on extensions, the others on charger; supported_app_protocols_secc at setup and dlink_ready."""
    from evsev2g.charger import Charger

    clock, module, backend = make("supported_ISO15118_2=false")
    charger = Charger(clock, "car", backend.evse)
    backend.session_started(charger)
    charger.publish("service_renegotiation_supported", False)
    charger.publish("require_auth_eim")
    assert ("extensions", "service_renegotiation_supported", False) in module.vars
    assert ("charger", "require_auth_eim", None) in module.vars
    backend.evse.command("setup", evse_id={"evse_id": "DE*A*E1"}, sae_j2847_mode="None", debug_mode=False)
    backend.evse.command("dlink_ready", value=True)
    assert [v for v in module.vars if v[1] == "supported_app_protocols_secc"] == [
        ("charger", "supported_app_protocols_secc", {"app_protocols": ["DIN70121"]})
    ] * 2
    backend.session_ended(charger)
    charger.publish("require_auth_eim")
    assert module.vars.count(("charger", "require_auth_eim", None)) == 1


def test_fault_raised_and_cleared():
    """servers_failed raises generic/CommunicationFault on charger, servers_running clears it."""
    clock, module, backend = make()
    backend.servers_failed("no such device eth9")
    backend.servers_running()
    assert module.errors == [("raise", "charger", "generic/CommunicationFault"), ("clear", "charger", "generic/CommunicationFault")]


def test_command_results():
    """update_supported_app_protocols answers a bool; a bad argument raises ValueError (SchemaValidationError on the wire)."""
    import pytest

    clock, module, backend = make()
    assert backend._command("update_supported_app_protocols", {"supported_app_protocols": {"app_protocols": []}}) is False
    assert backend._command("reset_error", {}) is None
    with pytest.raises(ValueError):
        backend._command("dlink_ready", {"value": 1})


@implementer(ISingleEVSEBackend)
class OneEVSE:
    """A backend serving one EVSE that EvseManager has configured."""

    link_ready = True

    def __init__(self, clock):
        from evsev2g.testing import dc_charger

        self.evse = dc_charger(clock).evse
        self.started, self.ended = [], []

    def session_started(self, charger):
        self.started.append(charger)

    def session_ended(self, charger):
        self.ended.append(charger)


def test_a_newer_session_ends_the_older_one_on_one_evse():
    """
    Two connections on one EVSE: when the second reaches SessionSetup, the
    first is ended (energy transfer off, connection closed) before the
    second is answered; the first's end vars say nothing of dlink.
    """
    clock = Clock()
    codec = FakeCodec()
    backend = OneEVSE(clock)
    factory = SessionFactory(clock, backend, codec, lambda schema: codec, load_protocol_versions(),
                             SessionSettings(protocol=ProtocolSettings(), protocol_flags={"supported_DIN70121": True}),
                             new_session_id=lambda: b"\x01" * 8)
    sessions = []
    for _ in range(2):
        link = FakeSessionLink()
        session = factory.new_session(link)
        link.session = session
        session.payload_received(0x8001, codec.encode(app_protocol_request((DIN, 2, 0, 1, 1))))
        sessions.append((link, session))
    (old_link, old), (new_link, new) = sessions
    old.payload_received(0x8001, codec.encode(din_request("SessionSetupReq")))
    assert backend.evse.holder is old.charger
    new.payload_received(0x8001, codec.encode(din_request("SessionSetupReq")))
    assert old.ended and old_link.closed and old.charger.superseded
    assert backend.evse.holder is new.charger and not new.ended
    assert not new_link.closed


def test_environment_of_a_python_module():
    """EV_* as the manager sets them for a Python module; a missing broker or module id is one clear line."""
    import pytest

    from evsev2g.everest.__main__ import settings_from_environment

    tcp = settings_from_environment({"EV_MODULE": "v2g", "EV_MQTT_EVEREST_PREFIX": "everest/", "EV_MQTT_BROKER_HOST": "localhost",
                                     "EV_MQTT_BROKER_PORT": "1883"})
    assert (tcp.module_id, tcp.prefix, str(tcp.broker), tcp.generation) == ("v2g", "everest/", "localhost:1883", "C")
    unix = settings_from_environment({"EV_MODULE": "v2g", "EV_MQTT_BROKER_SOCKET_PATH": "/run/mqtt.sock", "EVSEV2G_EVEREST_GENERATION": "b"})
    assert (str(unix.broker), unix.generation) == ("unix:/run/mqtt.sock", "B")
    for environ, needle in (({}, "EV_MODULE"), ({"EV_MODULE": "v2g"}, "no broker"),
                            ({"EV_MODULE": "v2g", "EV_MQTT_BROKER_SOCKET_PATH": "/s", "EVSEV2G_EVEREST_GENERATION": "A"}, "B or C")):
        with pytest.raises(SystemExit, match=needle):
            settings_from_environment(environ)


def test_wire_envelopes():
    """Topics and envelopes as MQTT_PROTOCOL.md §3, §5, §7 give them; anything else is a BadMessage."""
    import json

    import pytest

    from evsev2g.everest import wire

    topics = wire.Topics("everest", "v2g")
    assert topics.cmd_response("charger", "setup", "evse_manager") == "everest/modules/v2g/impl/charger/cmd/setup/response/evse_manager"
    assert topics.error("charger", "generic/CommunicationFault") == "everest/modules/v2g/impl/charger/error/generic/CommunicationFault"
    assert json.loads(wire.result("1", "v2g", True)) == {"msg_type": "CmdResult", "data": {"type": "result", "data": {"id": "1", "retval": True, "origin": "v2g"}}}
    assert wire.parse(wire.envelope("Var", {"data": 1}), "Var") == {"data": 1}
    for payload, wanted in ((b"\\xff", None), (b"[1]", None), (b'{"data": 1}', None), (wire.envelope("Cmd", {}), "Var")):
        with pytest.raises(wire.BadMessage):
            wire.parse(payload, wanted)
    assert wire.timestamp(0.5) == "1970-01-01T00:00:00.500Z"


def test_telemetry_blocks_only_on_change():
    """Telemetry: V2G/<id>/<block> with timestamp, connector_id, type; unchanged blocks are not sent again unless asked."""
    import json

    from evsev2g.everest.telemetry import Telemetry

    class Sink:
        def __init__(self):
            self.sent = []

        def publish(self, topic, payload):
            self.sent.append((topic, payload))

    for only_on_change, expected in ((True, 3), (False, 4)):
        sink = Sink()
        telemetry = Telemetry(sink, Clock(), 2, "tele", "C", only_on_change, 61341, False)
        telemetry.session_started()
        telemetry.var("dc_ev_target_voltage_current", {"dc_ev_target_voltage": 400, "dc_ev_target_current": 10})
        telemetry.var("dc_ev_target_voltage_current", {"dc_ev_target_voltage": 400, "dc_ev_target_current": 10})
        telemetry.var("selected_payment_option", "ExternalPayment")
        assert len(sink.sent) == expected
        topic, payload = sink.sent[1]
        document = json.loads(payload)
        assert topic == "tele/V2G/2/ev_electrical" and document["type"] == "ev_electrical" and document["connector_id"] == 2
        assert (document["target_voltage_V"], document["target_current_A"]) == (400, 10)
    sink = Sink()
    Telemetry(sink, Clock(), 2, "tele/", "B", True, 61341, True).session_started()
    envelope = json.loads(sink.sent[0][1])
    assert envelope["msg_type"] == "ExternalMQTT" and json.loads(envelope["data"])["tcp_security_enable"] is True


def test_vas_modules_join_the_registry():
    """Each connected ISO15118_vas module is a provider of the sessions' registry; offered_vas refreshes it, calls go to the module."""
    from evsev2g.vas import ServiceRegistry

    clock, module, backend = make()
    module.module_config = {"connections": {"iso15118_vas": [{"module_id": "vas1", "implementation_id": "main"}]}}
    module.connections = lambda requirement: [("vas1", "main")] if requirement == "iso15118_vas" else []
    module.provide = lambda *args: None
    module.on_shutdown = lambda hook: None
    module.signal_ready = lambda: succeed(None)
    module.telemetry_id = None
    registry = ServiceRegistry(clock=clock)
    backend.use_services(registry)
    backend._configured(module.module_config)
    (_, _, name, offered) = next(s for s in module.subscriptions if s[2] == "offered_vas")
    offered({"services": [{"service_id": 3, "service_name": "InternetAccess"}]})
    offered({"services": "nonsense"})  # logged and ignored, the last good list stays
    assert [service.service_id for service in registry.offered()] == [3]
    registry.parameter_sets(3)
    registry.select([{"service_id": 3, "parameter_set_id": 1}])
    assert [call[2] for call in module.calls] == ["get_service_parameters", "selected_services"]
    assert module.calls[0][:2] == ("vas1", "main") and module.calls[0][3] == {"service_id": 3}


def test_mqtt_queue_while_the_broker_is_away_is_bounded(log_events):
    """Messages published with no broker wait in paho's queue up to the limit; beyond, one error line, no exception."""
    from twisted.internet.testing import MemoryReactorClock

    from evsev2g.everest.mqtt import BrokerAddress, ReactorMQTT

    mqtt = ReactorMQTT(MemoryReactorClock(), BrokerAddress("127.0.0.1", 1))
    mqtt._client.max_queued_messages_set(3)
    for index in range(6):
        mqtt.publish("t", b"%d" % index)
    errors = [e for e in log_events if "wait for the broker" in e.get("log_format", "")]
    assert len(errors) == 1
    assert len(mqtt._client._out_messages) == 3


def test_module_holds_vars_and_errors_until_global_ready():
    """Vars and errors published before GlobalReady go out, in order, when it arrives (nobody could have subscribed)."""
    import json

    from evsev2g.everest import wire
    from evsev2g.everest.module import EverestModule, ModuleSettings

    class Wire:
        def __init__(self):
            self.sent, self.handlers = [], {}

        def when_connected(self, callback):
            pass

        def subscribe(self, topic, callback):
            self.handlers[topic] = callback

        def publish(self, topic, payload, retain=False):
            self.sent.append((topic, json.loads(payload)))

    mqtt = Wire()
    module = EverestModule(Clock(), ModuleSettings("v2g", "p/"), mqtt=mqtt)
    module.signal_ready()
    module.publish_var("charger", "supported_app_protocols_secc", {"app_protocols": ["DIN70121"]})
    module.raise_error("charger", "generic/CommunicationFault", "eth9 missing")
    assert [topic for topic, _ in mqtt.sent] == ["p/modules/v2g/ready"]
    mqtt.handlers["p/ready"]("p/ready", wire.envelope("GlobalReady", True))
    assert [topic for topic, _ in mqtt.sent][1:] == [
        "p/modules/v2g/impl/charger/var/supported_app_protocols_secc",
        "p/modules/v2g/impl/charger/error/generic/CommunicationFault",
    ]
    mqtt.handlers["p/ready"]("p/ready", wire.envelope("GlobalReady", True))  # again: nothing new
    assert len(mqtt.sent) == 3
