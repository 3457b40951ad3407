"""
Unit tests for :mod:`evsev2g.transport` with a fake clock and transport:
framing, the seam, closing, timers and limits.  Real sockets are in
``test_transport_sockets.py``.
"""

import errno
import random

import pytest
from twisted.internet.address import IPv6Address
from twisted.internet.error import CannotListenError, ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from evsev2g.errors import StartupError
from evsev2g.interfaces import ISecurity, ISession, ISessionFactory, ISessionLink
from evsev2g.ports import listen_in_range
from evsev2g.testing import FakeSecurity, FakeSessionLink, RecordingSession, RecordingSessionFactory
from evsev2g.transport import ConnectionRegistry, ConnectionSettings, V2GTPServerFactory
from evsev2g.v2gtp import build_frame

EXI = 0x8001
PEER = IPv6Address("TCP", "fe80::99%veth0", 50123)


class HalfClosingTransport(StringTransport):
    """A StringTransport that also records half-close and abort."""

    write_closed = False
    aborted = False

    def loseWriteConnection(self):
        """Record our FIN."""
        self.write_closed = True

    def abortConnection(self):
        """Record the abort."""
        self.aborted = True
        super().abortConnection()


def connect(secure=False, max_connections=4, registry=None, respond=None, io_timeout=15.0, fin_wait=3.0, close_delay=2.0):
    """A connection made on a fake transport; returns (connection, sessions, clock)."""
    clock = Clock()
    sessions = RecordingSessionFactory(respond)
    settings = ConnectionSettings(secure, 100, max_connections, io_timeout if secure else None, fin_wait, close_delay)
    factory = V2GTPServerFactory(sessions, settings, registry or ConnectionRegistry(), clock)
    connection = factory.buildProtocol(PEER)
    connection.makeConnection(HalfClosingTransport(peerAddress=PEER))
    return connection, sessions, clock


def lose(connection, reason=ConnectionDone):
    """Tell the connection its transport is gone."""
    connection.connectionLost(Failure(reason()))


def test_interfaces_are_provided():
    """The connection is an ISessionLink; the fakes provide their interfaces."""
    connection, sessions, _ = connect()
    verifyObject(ISessionLink, connection)
    verifyObject(ISessionFactory, sessions)
    verifyObject(ISession, sessions.sessions[0])
    verifyObject(ISessionLink, FakeSessionLink())
    verifyObject(ISecurity, FakeSecurity())


def test_one_session_per_connection_and_frames_in_order():
    """Split and coalesced frames reach the session whole, in order; the peer keeps its scope."""
    connection, sessions, _ = connect()
    [session] = sessions.sessions
    assert session.link is connection and connection.peer == ("fe80::99%veth0", 50123)
    data = build_frame(EXI, b"one") + build_frame(EXI, b"two") + build_frame(EXI, b"three")
    connection.dataReceived(data[:3])
    connection.dataReceived(data[3:20])
    connection.dataReceived(data[20:])
    assert session.payloads == [(EXI, b"one"), (EXI, b"two"), (EXI, b"three")]


def test_send_frames_the_payload():
    """send() writes header and payload."""
    connection, _, _ = connect()
    connection.send(b"\x80\x00")
    assert connection.transport.value() == build_frame(EXI, b"\x80\x00")


@pytest.mark.parametrize(
    "header, why",
    [
        ("02fd800100000001", "V2GTP: protocol version 0x02 / inverse 0xFD, expected 0x01 / 0xFE"),
        ("01fe123400000001", "V2GTP: payload type 0x1234 is not accepted here"),
        ("01fe800100000065", "V2GTP: payload length 101 bytes is above the maximum of 100"),
        ("01fe800100000000", "V2GTP: payload length 0"),
    ],
)
def test_bad_header_aborts_without_answer(header, why, log_events):
    """A bad header drops the connection with no bytes sent and a log line saying why."""
    connection, sessions, _ = connect()
    connection.dataReceived(build_frame(EXI, b"ok") + bytes.fromhex(header) + b"x")
    assert connection.transport.aborted
    assert connection.transport.value() == b""
    assert sessions.sessions[0].payloads == [(EXI, b"ok")]
    assert why in log_events.text()
    connection.dataReceived(build_frame(EXI, b"late"))
    lose(connection, ConnectionLost)
    assert sessions.sessions[0].lost == [why]
    assert sessions.sessions[0].payloads == [(EXI, b"ok")]


def test_orderly_close_half_closes_then_waits_for_the_fin():
    """close(): the data, 2 s for the EV to close first, then our FIN; the EV's FIN completes the close; no abort."""
    connection, sessions, clock = connect()
    connection.send(b"last")
    connection.close()
    clock.advance(1.9)
    assert not connection.transport.write_closed and not connection.transport.disconnecting
    clock.advance(0.2)
    assert connection.transport.write_closed and not connection.transport.aborted
    connection.send(b"too late")
    assert connection.transport.value() == build_frame(EXI, b"last")
    connection.readConnectionLost()
    assert connection.transport.disconnecting
    lose(connection)
    clock.advance(10)
    assert not connection.transport.aborted
    assert sessions.sessions[0].lost == ["closed cleanly"]


def assert_dropped_after(connection, sessions, clock, seconds, why):
    """The connection survives until just before ``seconds``, is dropped just after, and the session hears why."""
    clock.advance(seconds - 0.1)
    assert not connection.transport.aborted
    clock.advance(0.2)
    assert connection.transport.aborted
    lose(connection, ConnectionLost)
    assert sessions.sessions[0].lost == [why]


def test_ev_closing_first_after_our_last_answer_needs_no_fin_from_us_first():
    """
    An EV that closes within the 2 s after our last answer sends the first
    FIN, as cars want (EvseV2G's delay; Josev's EVCC closes after 5 s):
    we close at once, no half-close before it, no drop.
    """
    connection, sessions, clock = connect()
    connection.send(b"SessionStopRes")
    connection.close()
    clock.advance(1.0)
    connection.readConnectionLost()
    assert connection.transport.disconnecting and not connection.transport.write_closed
    lose(connection)
    clock.advance(10)
    assert not connection.transport.aborted
    assert sessions.sessions[0].lost == ["closed cleanly"]


def test_orderly_close_gives_up_after_fin_wait(log_events):
    """
    An EV that never sends its FIN (Josev's EVCC waits 5 s) is closed 2 s +
    3 s after the close (EvseV2G's waits) the ordinary way, not reset: it
    already has our FIN.  No fault after a finished session, so logged as
    information.
    """
    connection, sessions, clock = connect()
    connection.close()
    clock.advance(2.0)
    clock.advance(2.9)
    assert not connection.transport.disconnecting
    clock.advance(0.2)
    assert connection.transport.disconnecting and not connection.transport.aborted
    lose(connection)
    assert sessions.sessions[0].lost == ["the EV did not close its side within 3 s"]
    [event] = [event for event in log_events if "closing the connection" in event.get("log_format", "")]
    assert event["log_level"] == LogLevel.info


def test_close_of_an_ev_that_reads_nothing_ends_in_a_drop():
    """When even the ordinary close cannot finish (our data and FIN stuck), the connection is dropped one FIN wait later."""
    connection, sessions, clock = connect()
    connection.close()
    clock.advance(2.0)
    clock.advance(3.0)
    assert connection.transport.disconnecting and not connection.transport.aborted
    clock.advance(3.0)
    assert connection.transport.aborted
    lose(connection, ConnectionLost)
    assert sessions.sessions[0].lost == ["the EV did not close its side within 3 s"]


def test_tls_close_sends_close_notify():
    """On TLS, close() is the TLS layer's loseConnection (close_notify) after the close delay, bounded by the FIN wait."""
    connection, _, clock = connect(secure=True)
    connection.handshakeCompleted()
    connection.close()
    assert not connection.transport.disconnecting
    clock.advance(2.0)
    assert connection.transport.disconnecting and not connection.transport.write_closed
    clock.advance(3.1)
    assert connection.transport.aborted


def test_close_without_delay_sends_the_fin_at_once():
    """close_delay 0 (tests, labs) half-closes right away."""
    connection, _, _ = connect(close_delay=0)
    connection.close()
    assert connection.transport.write_closed


def test_ev_half_close_ends_the_connection():
    """The EV closing its side first makes us close ours."""
    connection, sessions, _ = connect()
    connection.readConnectionLost()
    assert connection.transport.disconnecting
    lose(connection)
    assert sessions.sessions[0].lost == ["closed cleanly"]


def test_handshake_timeout_with_clock():
    """A TLS connection whose handshake does not finish within tls_timeout is dropped."""
    connection, sessions, clock = connect(secure=True, io_timeout=15.0)
    assert_dropped_after(connection, sessions, clock, 15.0, "TLS handshake not finished within 15 s")


def test_handshake_completion_stops_the_timer():
    """After the handshake, silence between whole messages is not a transport matter."""
    connection, _, clock = connect(secure=True, io_timeout=15.0)
    clock.advance(5)
    connection.handshakeCompleted()
    connection.dataReceived(build_frame(EXI, b"whole"))
    clock.advance(100)
    assert not connection.transport.aborted
    assert clock.getDelayedCalls() == []


def test_stalled_frame_times_out_on_tls():
    """A frame started but not finished within tls_timeout of its first byte drops the connection; more bytes do not restart the bound."""
    connection, sessions, clock = connect(secure=True, io_timeout=2.0)
    connection.handshakeCompleted()
    frame = build_frame(EXI, b"payload")
    connection.dataReceived(frame + frame[:4])
    clock.advance(1.5)
    connection.dataReceived(frame[4:9])
    assert_dropped_after(connection, sessions, clock, 0.5, "a V2GTP frame not finished within 2 s of its first byte")


def test_connection_limit_refuses_only_when_all_are_charging():
    """Beyond max_connections, a new connection is dropped at once, without a session, only when every open one is charging."""
    registry = ConnectionRegistry()
    first, sessions, _ = connect(max_connections=1, registry=registry)
    sessions.sessions[0].handshaken = sessions.sessions[0].charging = True
    second, second_sessions, _ = connect(max_connections=1, registry=registry)
    assert second.transport.aborted and second_sessions.sessions == []
    assert not first.transport.aborted
    lose(second, ConnectionLost)
    lose(first)
    third, third_sessions, _ = connect(max_connections=1, registry=registry)
    assert not third.transport.aborted and len(third_sessions.sessions) == 1


def test_session_that_raises_is_logged_and_dropped(log_events):
    """A session raising on a payload never reaches the reactor: logged, connection dropped."""

    def explode(session, payload_type, payload):
        raise ValueError("bug in the session")

    connection, sessions, _ = connect(respond=explode)
    connection.dataReceived(build_frame(EXI, b"x") + build_frame(EXI, b"y"))
    assert connection.transport.aborted
    assert sessions.sessions[0].payloads == [(EXI, b"x")]
    [failure] = log_events.failures()
    assert failure["log_failure"].check(ValueError)


def test_session_can_answer_and_close_from_payload_received():
    """A session answering then closing stops delivery of frames after that one."""

    def answer_and_close(session, payload_type, payload):
        session.link.send(b"bye")
        session.link.close()

    connection, sessions, clock = connect(respond=answer_and_close)
    connection.dataReceived(build_frame(EXI, b"stop") + build_frame(EXI, b"ignored"))
    connection.dataReceived(build_frame(EXI, b"during the close delay"))
    assert sessions.sessions[0].payloads == [(EXI, b"stop")]
    assert connection.transport.value() == build_frame(EXI, b"bye")
    clock.advance(2.0)
    assert connection.transport.write_closed


def test_connection_lost_reaches_the_session_once():
    """connection_lost is called exactly once, with a short reason."""
    connection, sessions, _ = connect()
    lose(connection, ConnectionLost)
    lose(connection, ConnectionLost)
    assert sessions.sessions[0].lost == ["connection lost"]


def test_abort_all_fires_when_connections_are_gone():
    """The registry's abort_all drops every connection and fires once all are lost."""
    registry = ConnectionRegistry()
    first, _, _ = connect(registry=registry)
    second, _, _ = connect(registry=registry)
    done = registry.abort_all()
    assert first.transport.aborted and second.transport.aborted
    fired = []
    done.addCallback(fired.append)
    lose(first, ConnectionLost)
    assert not fired
    lose(second, ConnectionLost)
    assert fired and registry.connections == set()


def test_recording_session_records():
    """The shipped RecordingSession records payloads and reasons."""
    link = FakeSessionLink()
    session = RecordingSession(link)
    session.payload_received(EXI, b"a")
    session.connection_lost("gone")
    assert (session.payloads, session.lost) == ([(EXI, b"a")], ["gone"])


def test_port_zero_retries_ports_in_use():
    """Port 0 tries random ports of the range until one is free; a fixed port in use is one StartupError line."""
    tried = []

    def listen(port):
        tried.append(port)
        if len(tried) < 3:
            raise CannotListenError("::1", port, OSError(errno.EADDRINUSE, "Address already in use"))
        return port

    assert listen_in_range(listen, 0, (50000, 50100), "TCP server", random.Random(1)) == tried[-1]
    assert len(tried) == 3 and all(50000 <= port <= 50100 for port in tried)
    tried.clear()
    with pytest.raises(StartupError, match=r"^TCP server: cannot listen on \[::1\]:50001: Address already in use$"):
        listen_in_range(listen, 50001, (50000, 50100), "TCP server")
    assert tried == [50001]
