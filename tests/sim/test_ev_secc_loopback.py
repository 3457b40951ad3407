"""
The EV simulator against the real SECC in this process: real TCP on ::1,
real V2GTP framing, the real EXI codec, the DIN state machine and the
simulated charger.
"""

import socket

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP6ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from evsev2g.sim.ev import EVSettings, run_ev
from evsev2g.sim.loopback import start_secc
from evsev2g.testing import VarRecorder

FAST = [
    "simulator.auth_delay_ms=50",
    "simulator.cable_check_ms=50",
    "simulator.voltage_slew_rate=0",
    "simulator.current_slew_rate=0",
    "max_connections=16",
]


def quick_ev(secc, **overrides):
    """A small battery that fills in a second or so."""
    values = dict(host=secc.host, port=secc.port, capacity_wh=50, start_soc=70, target_soc=75, max_current=100, poll_interval=0.01, current_demand_interval=0.01)
    values.update(overrides)
    return EVSettings(**values)


def when_charging(secc, action):
    """An EV progress callback that does ``action(charger)`` once, when current flows."""
    done = []

    def progress(report):
        if report["state"] == "charging" and report["current"] > 0 and not done:
            done.append(True)
            for charger in list(secc.sessions.backend.evses):
                action(charger)

    return progress


class Recorders:
    """Records the vars of every session the backend sees."""

    def __init__(self, backend):
        self.sessions = []
        original = backend.session_started

        def started(charger):
            original(charger)
            self.sessions.append(VarRecorder(charger))

        backend.session_started = started


@pytest.fixture
def secc(reactor):
    """A running SECC on ::1 with fast simulator settings; stopped afterwards."""
    running = start_secc(reactor, FAST)
    yield running
    pytest_twisted.blockon(running.service.stopService())


@pytest_twisted.ensureDeferred
async def test_whole_din_session_over_tcp(reactor, secc):
    """A whole DIN DC session EV simulator ↔ SECC over TCP on ::1: clean, every answer fast, the charger told each step."""
    recorders = Recorders(secc.sessions.backend)
    result = await run_ev(reactor, quick_ev(secc))
    assert result.code == 0, result.reason
    assert result.soc >= 75 and result.energy_wh > 0
    assert result.states[-2:] == ["session stopped", "done"]
    for name in ("SessionSetupRes", "ContractAuthenticationRes", "CableCheckRes", "PreChargeRes", "CurrentDemandRes", "SessionStopRes"):
        assert result.latencies[name], name
    await secc.sessions.when_finished(1)
    names = recorders.sessions[0].names()
    for name in ("evcc_id", "require_auth_eim", "start_cable_check", "start_pre_charge", "current_demand_started",
                 "current_demand_finished", "dc_open_contactor", "dlink_terminate"):
        assert name in names, name
    assert "hlc_session_failed" not in names
    assert names.index("dc_open_contactor") < names.index("dlink_terminate")
    assert secc.sessions.sessions == set()


@pytest_twisted.ensureDeferred
async def test_emergency_stop_from_the_charger(reactor, secc):
    """send_error(Error_EmergencyShutdown) mid-charge: the EV sees it, stops (exit 3) and the session ends."""
    recorders = Recorders(secc.sessions.backend)

    act = when_charging(secc, lambda charger: charger.send_error("Error_EmergencyShutdown"))
    result = await run_ev(reactor, quick_ev(secc, capacity_wh=5000, target_soc=90), act)
    assert result.code in (2, 3), result.reason
    assert "EmergencyShutdown" in result.reason or "FAILED" in result.reason
    await secc.sessions.when_finished(1)
    names = recorders.sessions[0].names()
    assert "dc_open_contactor" in names and "current_demand_finished" in names


@pytest_twisted.ensureDeferred
async def test_charger_stop_uses_evse_shutdown(reactor, secc):
    """stop_charging mid-charge: the EV sees EVSE_Shutdown, stops the DIN way and the session ends with SessionStop."""
    recorders = Recorders(secc.sessions.backend)

    act = when_charging(secc, lambda charger: charger.stop_charging(True))
    result = await run_ev(reactor, quick_ev(secc, capacity_wh=5000, target_soc=90), act)
    assert result.code == 3 and "EVSE_Shutdown" in result.reason
    await secc.sessions.when_finished(1)
    names = recorders.sessions[0].names()
    assert names[-1] == "dlink_terminate"
    assert "hlc_session_failed" not in names


class Hang(Protocol):
    """Connects, sends half a V2GTP header and then nothing."""

    def connectionMade(self):
        """Send three bytes of a header, then nothing."""
        self.lost = Deferred()
        self.transport.write(b"\x01\xfe\x80")

    def connectionLost(self, reason):
        """Tell the test."""
        self.lost.callback(None)


@pytest_twisted.ensureDeferred
async def test_hanging_connection_delays_nobody(reactor, secc):
    """
    A connection that hangs mid-frame does not hold another EV's whole
    session up: the EV completes while the hanging one is still open.
    (Response times are bench/session_bench.py's figures.)
    """
    hanging = await connectProtocol(TCP6ClientEndpoint(reactor, secc.host, secc.port), Hang())
    result = await run_ev(reactor, quick_ev(secc))
    assert result.code == 0, result.reason
    assert not hanging.lost.called
    hanging.transport.abortConnection()
    await hanging.lost


@pytest_twisted.ensureDeferred
async def test_disconnect_mid_charge_then_new_session(reactor, secc):
    """The EV vanishing mid-charge ends that session (contactors opened, dlink_error); the next EV charges normally."""
    recorders = Recorders(secc.sessions.backend)
    settings = quick_ev(secc, capacity_wh=5000, target_soc=90)
    from evsev2g.sim import ev as ev_module

    ev = ev_module.SimulatedEV(reactor, settings, ev_module.load_ev_codecs(), lambda report: None)

    def vanish_when_charging(report):
        if report["state"] == "charging" and report["current"] > 0 and ev.link is not None and not ev.link.closed:
            ev.link.transport.abortConnection()

    ev.progress = vanish_when_charging
    result = await ev.run()
    assert result.code == 1
    await secc.sessions.when_finished(1)
    names = recorders.sessions[0].names()
    assert names[-4:] == ["current_demand_finished", "dc_open_contactor", "hlc_session_failed", "dlink_error"]
    assert recorders.sessions[0].payloads("hlc_session_failed") == ["ChargingInterrupted"]
    assert secc.sessions.backend.evses == {}
    again = await run_ev(reactor, quick_ev(secc))
    assert again.code == 0, again.reason


@pytest_twisted.ensureDeferred
async def test_several_evs_at_once(reactor, secc):
    """Five EVs charging at the same time on one SECC each get their whole session."""
    from twisted.internet.defer import gatherResults

    results = await gatherResults([run_ev(reactor, quick_ev(secc)) for _ in range(5)])
    assert [r.code for r in results] == [0] * 5, [r.reason for r in results]


def free_udp_port() -> int:
    """A UDP port on ::1 that is free right now (for the SECC's SDP server)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::1", 0))
        return probe.getsockname()[1]


@pytest_twisted.ensureDeferred
async def test_ev_on_interface_lo_discovers_the_secc(reactor):
    """``--interface lo`` (lo has no multicast) sends SDP to ::1, finds the SECC serving on lo and charges."""
    sdp_port = free_udp_port()
    running = start_secc(reactor, FAST + ["enable_sdp_server=true", f"sdp_port={sdp_port}"])
    try:
        settings = EVSettings(interface="lo", sdp_port=sdp_port, capacity_wh=50, start_soc=70, target_soc=75, poll_interval=0.01, current_demand_interval=0.01)
        result = await run_ev(reactor, settings)
        assert result.code == 0, result.reason
    finally:
        await running.service.stopService()


@pytest_twisted.ensureDeferred
async def test_sdp_on_loopback_then_session(reactor):
    """While another connection hangs mid-frame, the EV discovers the SECC with SDP (unicast to ::1 on lo) and charges."""
    sdp_port = free_udp_port()
    running = start_secc(reactor, FAST + ["enable_sdp_server=true", f"sdp_port={sdp_port}"])
    hanging = await connectProtocol(TCP6ClientEndpoint(reactor, running.host, running.port), Hang())
    try:
        from evsev2g.sim import ev as ev_module

        settings = EVSettings(sdp_port=sdp_port, capacity_wh=50, start_soc=70, target_soc=75, poll_interval=0.01, current_demand_interval=0.01)
        ev = ev_module.SimulatedEV(reactor, settings, ev_module.load_ev_codecs(), lambda report: None)

        async def discover_on_loopback():
            from evsev2g.sim.ev_link import NO_TLS, SDPClient

            client = SDPClient(reactor, None, sdp_port, NO_TLS, group="::1")
            port = reactor.listenUDP(0, client, interface="::1")
            try:
                host, tcp_port, security = await client.result
            finally:
                await port.stopListening()
            assert (host, security) == ("::1", 0x10)
            return host, tcp_port

        ev._discover = discover_on_loopback
        result = await ev.run()
        assert result.code == 0, result.reason
    finally:
        hanging.transport.abortConnection()
        await running.service.stopService()
