"""Tests for :mod:`evsev2g.sdp_service`: the SDP server."""

import pytest
import pytest_twisted
from twisted.internet.testing import FakeDatagramTransport
from twisted.internet.threads import deferToThread

from evsev2g.errors import StartupError
from evsev2g.netif import ServingAddress
from evsev2g.sdp import Offers, SDPRequest, Security, TransportProtocol, build_request, parse_response
from evsev2g.sdp_service import SDPProtocol, SDPService, open_sdp_socket

from tests.netclient import sdp_ask

SERVING = ServingAddress("veth0", 7, "fe80::1")
OFFERS = Offers(SERVING.packed, 61341, 64109)
TLS_REQUEST = build_request(SDPRequest(Security.TLS, TransportProtocol.TCP))


def build_protocol(answering=lambda: True, offers=OFFERS):
    """An SDPProtocol on a fake transport."""
    protocol = SDPProtocol(SERVING, lambda: offers, answering)
    protocol.makeConnection(FakeDatagramTransport())
    return protocol


def test_request_answered_unicast_with_scope():
    """A valid request is answered unicast to the sender, scoped to our interface [V2G2-139]."""
    protocol = build_protocol()
    protocol.datagramReceived(TLS_REQUEST, ("fe80::99", 50123))
    [(datagram, address)] = protocol.transport.written
    assert address == ("fe80::99%veth0", 50123)
    response = parse_response(datagram)
    assert (response.address, response.port, response.security) == (SERVING.packed, 64109, Security.TLS)


@pytest.mark.parametrize(
    "datagram",
    [b"", b"\x01\xfe\x90\x00", bytes.fromhex("01fe9000000000020000ff"), bytes.fromhex("01fe7000000000020000"),
     bytes.fromhex("fffe9000000000020000"), bytes.fromhex("01fe9000000000000000")],
)
def test_malformed_datagrams_are_logged_and_dropped(datagram, log_events):
    """Malformed datagrams get no answer and a warning; the next request is answered."""
    protocol = build_protocol()
    protocol.datagramReceived(datagram, ("fe80::99", 50123))
    assert protocol.transport.written == []
    assert "SDP: dropped a datagram from [fe80::99%veth0]:50123" in log_events.text()
    protocol.datagramReceived(TLS_REQUEST, ("fe80::99", 50123))
    assert len(protocol.transport.written) == 1


def test_answering_gate():
    """While the answering predicate says no (data link not ready), requests are ignored."""
    ready = [False]
    protocol = build_protocol(answering=lambda: ready[0])
    protocol.datagramReceived(TLS_REQUEST, ("fe80::99", 50123))
    assert protocol.transport.written == []
    ready[0] = True
    protocol.datagramReceived(TLS_REQUEST, ("fe80::99", 50123))
    assert len(protocol.transport.written) == 1


def test_nothing_to_offer_sends_nothing():
    """No server for the request: no answer."""
    protocol = build_protocol(offers=Offers(SERVING.packed, None, None))
    protocol.datagramReceived(TLS_REQUEST, ("fe80::99", 50123))
    assert protocol.transport.written == []


def test_errors_in_offers_never_escape(log_events):
    """An exception while answering is logged, not raised into the reactor."""

    def broken():
        raise RuntimeError("boom")

    protocol = SDPProtocol(SERVING, broken)
    protocol.makeConnection(FakeDatagramTransport())
    protocol.datagramReceived(TLS_REQUEST, ("fe80::99", 50123))
    [failure] = log_events.failures()
    assert failure["log_failure"].check(RuntimeError)


def test_open_socket_reports_the_failing_step():
    """An interface that is not there: StartupError naming the step."""
    with pytest.raises(StartupError, match=r"SDP server on nosuch0: SO_BINDTODEVICE nosuch0 failed: No such device"):
        open_sdp_socket(ServingAddress("nosuch0", 999, "fe80::1"), 0)


@pytest_twisted.ensureDeferred
async def test_real_socket_on_loopback(reactor, loopback):
    """On lo the adopted socket answers a unicast request to ::1 with address ::1."""
    protocol = SDPProtocol(loopback, lambda: Offers(loopback.packed, 50000, None))
    service = SDPService(reactor, loopback, 0, protocol)
    service.startService()
    try:
        address, port, security = await deferToThread(sdp_ask, service.port_number, Security.TLS)
        assert address == "::1"
        assert (port, security) == (50000, Security.NO_TLS)
    finally:
        await service.stopService()
    assert service.listening_port is None
