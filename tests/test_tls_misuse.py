"""
TLS misuse against a whole SECC (TCP, TLS and SDP on ::1): a TLS 1.3-only
EV, TLS 1.0, cipher suites we do not serve, plain TCP to the TLS port,
garbage after the ClientHello, a handshake left half-done.  Each is closed
by the server with a log line naming its cause (the handshake that never
finishes, by the ``tls_timeout`` timer), while SDP answers and another EV
charges over TCP all along.  Raw ClientHellos are built here byte by byte,
so that no client library's policy decides what is sent.
"""

import os
import socket
import struct

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from evsev2g.sim.ev import EVSettings, run_ev
from evsev2g.sim.loopback import start_secc
from evsev2g.v2gtp import build_frame

from tests.netclient import ANY, Outcome, converse, sdp_ask, tls12_client_context, tls13_only_context

#: TLS cipher suite and extension numbers (IANA registry).
ECDHE_ECDSA_AES128_SHA256 = 0xC023
RSA_AES128_SHA = 0x002F
ECDHE_ECDSA_AES128_SHA = 0xC009
SUPPORTED_GROUPS, EC_POINT_FORMATS, SIGNATURE_ALGORITHMS = 0x000A, 0x000B, 0x000D
SECP256R1, ECDSA_SECP256R1_SHA256 = 0x0017, 0x0403


def extension(kind: int, data: bytes) -> bytes:
    """One ClientHello extension."""
    return struct.pack("!HH", kind, len(data)) + data


def client_hello(version: int = 0x0303, suites=(ECDHE_ECDSA_AES128_SHA256,)) -> bytes:
    """A ClientHello record for ``version`` offering ``suites``, P-256 and ECDSA-SHA256."""
    body = struct.pack("!H", version) + os.urandom(32) + b"\x00"
    body += struct.pack("!H", 2 * len(suites)) + b"".join(struct.pack("!H", suite) for suite in suites) + b"\x01\x00"
    extensions = (
        extension(SUPPORTED_GROUPS, struct.pack("!HH", 2, SECP256R1))
        + extension(EC_POINT_FORMATS, b"\x01\x00")
        + extension(SIGNATURE_ALGORITHMS, struct.pack("!HH", 2, ECDSA_SECP256R1_SHA256))
    )
    body += struct.pack("!H", len(extensions)) + extensions
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def raw(port, *chunks):
    """
    Send raw bytes to the TLS port, reading the server's first flight after
    the first chunk; then read until the server closes (the long read_for
    only keeps a broken server from hanging the test).
    """
    return converse(port, chunks, read_for=30.0, answers=[ANY] + [0] * (len(chunks) - 1))


def library(context_factory):
    """A client using Python's ssl module; returns the Outcome with ended = "refused" when the handshake fails."""

    def client(port):
        outcome = Outcome()
        with socket.create_connection(("::1", port), timeout=30.0) as sock:
            try:
                context_factory().wrap_socket(sock)
            except (ssl_errors()) as error:
                outcome.ended = f"refused: {error}"
        return outcome

    return client


def ssl_errors():
    """What a refused handshake raises in the client."""
    import ssl

    return (ssl.SSLError, ConnectionResetError, BrokenPipeError)


CASES = {
    "TLS 1.3 only": (lambda port: library(tls13_only_context)(port), "the EV offers no TLS 1.2"),
    "TLS 1.0": (lambda port: raw(port, client_hello(0x0301, (RSA_AES128_SHA, ECDHE_ECDSA_AES128_SHA))), "the EV offers no TLS 1.2"),
    "unsupported cipher suites": (
        lambda port: library(lambda: tls12_client_context(ciphers="ECDHE-RSA-AES128-GCM-SHA256"))(port),
        "no cipher suite in common",
    ),
    "plain TCP to the TLS port": (lambda port: raw(port, build_frame(0x8001, b"\x80\x00\xdb\xab")), "not TLS"),
    "garbage after the ClientHello": (lambda port: raw(port, client_hello(), b"\x00garbage\xff" * 8), "bytes that are not TLS records after the ClientHello"),
}


@pytest.fixture
def secc(reactor, test_pki):
    """A whole SECC on ::1: TCP, TLS (tls_timeout 1.5 s) and SDP on free ports."""
    running = start_secc(reactor, [
        "tls_security=allow", f"certs_dir={test_pki.directory}", "tls_port=0", "enable_sdp_server=true", "sdp_port=0",
        "tls_timeout=1500", "max_connections=8", "simulator.auth_delay_ms=50", "simulator.cable_check_ms=50",
    ])
    yield running
    pytest_twisted.blockon(running.service.stopService())


def ev(secc):
    """An EV charging a small battery over TCP."""
    return EVSettings(host=secc.host, port=secc.port, capacity_wh=50, start_soc=70, target_soc=75, max_current=100,
                      poll_interval=0.01, current_demand_interval=0.01)


@pytest.mark.parametrize("case", list(CASES))
@pytest_twisted.ensureDeferred
async def test_misuse_is_closed_with_its_cause_and_harms_nobody(reactor, secc, log_events, case):
    """The misusing client is closed by the server, the log names the cause, SDP answers and an EV charges meanwhile."""
    client, cause = CASES[case]
    tls_port = secc.service.tls.port_number
    charging = run_ev(reactor, ev(secc))
    outcome = await deferToThread(client, tls_port)
    assert outcome.ended != "timeout", case
    address, port, security = await deferToThread(sdp_ask, secc.service.sdp.port_number, 0x10)
    assert port == secc.port
    result = await charging
    assert result.code == 0, result.reason
    text = log_events.text()
    assert f"TLS handshake failed: {cause}" in text, text[-3000:]


@pytest_twisted.ensureDeferred
async def test_half_done_handshake_is_closed_at_tls_timeout(reactor, secc, log_events):
    """A ClientHello and then silence: the server closes at tls_timeout, saying so; SDP and a charging EV go on."""
    tls_port = secc.service.tls.port_number
    charging = run_ev(reactor, ev(secc))
    outcome = await deferToThread(raw, tls_port, client_hello())
    assert outcome.ended in ("eof", "reset")
    assert outcome.received.startswith(b"\x16\x03\x03")  # our ServerHello flight came first
    await deferToThread(sdp_ask, secc.service.sdp.port_number, 0x10)
    result = await charging
    assert result.code == 0, result.reason
    assert "dropping the connection: TLS handshake not finished within 1.5 s" in log_events.text()
