"""
Admission and stage timers of :mod:`evsev2g.transport`: idle or hostile
peers cannot lock a real car out, a charging session is never dropped for a
newcomer, and every stage of a connection is bounded.  Unit tests on a fake
clock and transport first, then the same over real sockets with the EV
simulator and the real SECC.
"""

import pytest
import pytest_twisted
from twisted.internet.address import IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP6ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from evsev2g.sim.ev import EVSettings, run_ev
from evsev2g.sim.loopback import start_secc
from evsev2g.testing import RecordingSessionFactory
from evsev2g.transport import ConnectionRegistry, ConnectionSettings, V2GTPServerFactory
from evsev2g.v2gtp import build_frame
from tests.listeners import start_listener

EXI = 0x8001


class Link:
    """One connection on a fake transport and the clock it shares with the others."""

    def __init__(self, factory, port):
        self.connection = factory.buildProtocol(None)
        self.transport = StringTransport(peerAddress=IPv6Address("TCP", "fe80::1%veth0", port))
        self.connection.makeConnection(self.transport)
        self.sessions = factory.session_factory.sessions

    @property
    def session(self):
        """The recording session of this connection, if it got one."""
        return self.connection._session

    @property
    def dropped(self):
        """Whether the server dropped it."""
        return self.transport.disconnected or self.transport.disconnecting

    def lose(self):
        """Tell the connection its transport is gone, as Twisted does after a drop."""
        self.connection.connectionLost(Failure(ConnectionLost()))


def server(max_connections=4, io_timeout=10.0, secure=False):
    """A factory on a fake clock; returns (factory, clock)."""
    clock = Clock()
    settings = ConnectionSettings(secure, 100_000, max_connections, io_timeout)
    return V2GTPServerFactory(RecordingSessionFactory(), settings, ConnectionRegistry(), clock), clock


def test_full_house_of_fresh_connections_makes_room_for_the_next(log_events):
    """At the limit, the new connection is taken and the oldest one without an application handshake is dropped, saying why."""
    factory, clock = server()
    links = []
    for port in range(4):
        links.append(Link(factory, 50000 + port))
        clock.advance(1)
    newcomer = Link(factory, 50100)
    assert not newcomer.dropped and newcomer.session is not None
    assert links[0].dropped and not any(link.dropped for link in links[1:])
    assert "making room for [fe80::1%veth0]:50100 (max_connections 4): no application handshake yet" in log_events.text()
    links[0].lose()
    assert links[0].session is None and factory.session_factory.sessions[0].lost[0].startswith("making room")


def test_fresh_connections_go_before_handshaken_ones():
    """A connection past the application handshake is kept while a fresh one can go, even a younger fresh one."""
    factory, clock = server(max_connections=2)
    old = Link(factory, 50000)
    old.session.handshaken = True
    clock.advance(5)
    young = Link(factory, 50001)
    Link(factory, 50002)
    assert young.dropped and not old.dropped


def test_silent_longest_goes_among_handshaken_ones(log_events):
    """Without fresh connections, the handshaken one silent longest and not charging is dropped."""
    factory, clock = server(max_connections=3)
    links = [Link(factory, 50000 + n) for n in range(3)]
    for link in links:
        link.session.handshaken = True
    clock.advance(1)
    links[0].connection.dataReceived(build_frame(EXI, b"a"))
    clock.advance(1)
    links[2].connection.dataReceived(build_frame(EXI, b"b"))
    clock.advance(1)
    Link(factory, 50100)
    assert links[1].dropped and not links[0].dropped and not links[2].dropped
    assert "silent 3.0 s, not charging" in log_events.text()


def test_a_charging_session_is_never_dropped_for_a_newcomer(log_events):
    """Charging sessions stay: the others make room, and when all are charging the newcomer is refused."""
    factory, clock = server(max_connections=2)
    charging = Link(factory, 50000)
    charging.connection.dataReceived(build_frame(EXI, b"CurrentDemandReq"))
    charging.session.handshaken = charging.session.charging = True
    clock.advance(100)  # silent longest of all: still kept
    other = Link(factory, 50001)
    other.session.handshaken = True
    third = Link(factory, 50002)
    assert other.dropped and not charging.dropped and not third.dropped
    other.lose()
    third.session.handshaken = third.session.charging = True
    refused = Link(factory, 50003)
    assert refused.dropped and refused.session is None
    assert not charging.dropped and not third.dropped
    assert "connection refused: all 2 open connections are charging" in log_events.text()


def test_connections_already_closing_do_not_count():
    """A connection in its orderly close no longer holds a place."""
    factory, _ = server(max_connections=1)
    closing = Link(factory, 50000)
    closing.session.handshaken = closing.session.charging = True
    closing.connection.close()
    newcomer = Link(factory, 50001)
    assert not newcomer.dropped and not closing.transport.disconnected


@pytest.mark.parametrize("secure", [False, True])
def test_first_message_timer(secure):
    """No whole V2GTP frame within io_timeout of connecting (TLS: of the handshake) drops the connection."""
    factory, clock = server(io_timeout=10.0, secure=secure)
    link = Link(factory, 50000)
    if secure:
        clock.advance(9)
        link.connection.handshakeCompleted()
    clock.advance(9.9)
    assert not link.dropped
    clock.advance(0.2)
    assert link.dropped
    link.lose()
    where = "the TLS handshake" if secure else "connecting"
    assert link.sessions[0].lost == [f"no V2GTP message within 10 s of {where}"]


def test_first_whole_frame_stops_the_first_message_timer():
    """After the first whole frame, only the session's sequence timer bounds silence."""
    factory, clock = server(io_timeout=10.0)
    link = Link(factory, 50000)
    link.connection.dataReceived(build_frame(EXI, b"hello"))
    clock.advance(1000)
    assert not link.dropped and clock.getDelayedCalls() == []


def test_byte_at_a_time_is_bounded_from_the_first_byte():
    """A peer trickling one byte a second cannot stretch a frame past io_timeout from its first byte."""
    factory, clock = server(io_timeout=10.0)
    link = Link(factory, 50000)
    link.connection.dataReceived(build_frame(EXI, b"first"))
    frame = build_frame(EXI, b"x" * 100)
    for byte in frame[:10]:
        link.connection.dataReceived(bytes([byte]))
        clock.advance(1.0)
    assert link.dropped
    link.lose()
    assert link.sessions[0].lost == ["a V2GTP frame not finished within 10 s of its first byte"]
    assert link.sessions[0].payloads == [(EXI, b"first")]


def test_header_without_payload_is_bounded():
    """A V2GTP header announcing a payload that never comes is dropped io_timeout later."""
    factory, clock = server(io_timeout=10.0)
    link = Link(factory, 50000)
    link.connection.dataReceived(build_frame(EXI, b"x" * 40)[:8])
    clock.advance(10.1)
    assert link.dropped


def test_an_ev_that_does_not_read_cannot_grow_our_buffer():
    """While the transport has paused us (write buffer full), a new request drops the connection at once."""
    factory, clock = server(io_timeout=10.0)
    link = Link(factory, 50000)
    link.connection.dataReceived(build_frame(EXI, b"one"))
    link.connection.pauseProducing()
    link.connection.dataReceived(build_frame(EXI, b"two"))
    assert link.dropped
    link.lose()
    assert link.sessions[0].payloads == [(EXI, b"one")]
    assert link.sessions[0].lost == ["the EV sends requests but does not read our answers"]


def test_a_full_write_buffer_must_drain_in_time():
    """A full write buffer that does not drain within io_timeout drops the connection; draining in time cancels that."""
    factory, clock = server(io_timeout=10.0)
    slow, stuck = Link(factory, 50000), Link(factory, 50001)
    for link in (slow, stuck):
        link.connection.dataReceived(build_frame(EXI, b"one"))
        link.connection.pauseProducing()
    clock.advance(5)
    slow.connection.resumeProducing()
    clock.advance(5.1)
    assert stuck.dropped and not slow.dropped
    stuck.lose()
    assert stuck.sessions[1].lost == ["the EV read none of our answers for 10 s"]


# -- real sockets ------------------------------------------------------------

FAST = [
    "simulator.auth_delay_ms=50",
    "simulator.cable_check_ms=50",
    "simulator.voltage_slew_rate=0",
    "simulator.current_slew_rate=0",
    "max_connections=4",
]


class Idle(Protocol):
    """Connects and says nothing; :attr:`lost` fires when the server drops it."""

    def __init__(self):
        self.lost = Deferred()

    def connectionLost(self, reason):
        """Tell the test."""
        self.lost.callback(None)


def ev_settings(secc, **overrides):
    """A small battery that charges for about a second."""
    values = dict(host=secc.host, port=secc.port, capacity_wh=50, start_soc=70, target_soc=75, max_current=100,
                  poll_interval=0.01, current_demand_interval=0.01)
    values.update(overrides)
    return EVSettings(**values)


@pytest.fixture
def secc(reactor):
    """A running SECC on ::1 with max_connections 4; stopped afterwards."""
    running = start_secc(reactor, FAST)
    yield running
    pytest_twisted.blockon(running.service.stopService())


async def idle_connections(reactor, secc, count):
    """``count`` connected idle peers."""
    endpoint = TCP6ClientEndpoint(reactor, secc.host, secc.port)
    return [await connectProtocol(endpoint, Idle()) for _ in range(count)]


@pytest_twisted.ensureDeferred
async def test_full_house_of_idle_connections_then_a_real_ev_charges(reactor, secc):
    """Four idle TCP connections fill max_connections; a real EV still connects and completes its session."""
    idle = await idle_connections(reactor, secc, 4)
    result = await run_ev(reactor, ev_settings(secc))
    assert result.code == 0, result.reason
    assert result.states[-2:] == ["session stopped", "done"]
    await idle[0].lost  # the oldest idle one made room
    for peer in idle:
        peer.transport.abortConnection()


@pytest_twisted.ensureDeferred
async def test_a_charging_session_survives_a_flood_of_connections(reactor, secc):
    """Forty new connections while an EV charges: each makes room among the newcomers; the EV completes its session."""
    flood = []
    started = Deferred()

    def progress(report):
        if report["state"] == "charging" and not started.called:
            started.callback(None)

    charging = run_ev(reactor, ev_settings(secc, capacity_wh=200), progress)
    await started
    flood = await idle_connections(reactor, secc, 40)
    result = await charging
    assert result.code == 0, result.reason
    assert result.states[-2:] == ["session stopped", "done"]
    for peer in flood[:-3]:
        await peer.lost
    for peer in flood:
        peer.transport.abortConnection()


def write_without_reading(port, frames):
    """Send frames and never read; returns how the server ended it ("reset", "eof") or None."""
    import socket

    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window from the start
    sock.settimeout(30)
    sock.connect(("::1", port))
    try:
        for frame in frames:
            sock.sendall(frame)
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except socket.timeout:
        return None
    finally:
        sock.close()
    return "sent all"


@pytest_twisted.ensureDeferred
async def test_an_ev_that_never_reads_is_dropped(reactor, loopback):
    """Over a real socket, an EV that sends requests and reads none of the (large) answers is dropped, not buffered for."""
    from tests.listeners import echo

    sessions = RecordingSessionFactory(echo)
    service = start_listener(reactor, loopback, sessions, max_payload=60_000)
    try:
        frame = build_frame(EXI, b"x" * 50_000)
        ended = await deferToThread(write_without_reading, service.port_number, [frame] * 200)
        for _ in range(10_000):  # an event loop turn each, not a clock
            if sessions.sessions and sessions.sessions[0].lost:
                break
            await deferToThread(lambda: None)
    finally:
        await service.stopService()
    assert sessions.sessions[0].lost == ["the EV sends requests but does not read our answers"]
    assert len(sessions.sessions[0].payloads) < 200
    assert ended in ("reset", "sent all")
