"""
The TLS server (:mod:`evsev2g.tls` through :mod:`evsev2g.transport`) with
real handshakes on ::1 from Python's ``ssl`` client.
"""

import re
import ssl

import pytest
import pytest_twisted
from OpenSSL import SSL

from evsev2g.errors import StartupError
from evsev2g.security import layout
from evsev2g.testing import RecordingSessionFactory
from evsev2g.tls import CIPHER_SUITE, KEY_LOG_NAME, KeyLog, TLSServerCreator, build_context, key_log_path
from evsev2g.v2gtp import build_frame

from tests.listeners import EXI, answer_and_close, echo, exchange_then_stop, start_listener
from tests.netclient import converse, read_then_linger, tls12_client_context, tls13_only_context


def tls_listener(reactor, loopback, credentials, sessions, io_timeout=15.0, key_log=None, close_delay=2.0):
    """A started TLS listener on ::1 at a free dynamic port."""
    return start_listener(
        reactor, loopback, sessions, TLSServerCreator(credentials, key_log), io_timeout=io_timeout, close_delay=close_delay
    )


def test_context_settings(credentials):
    """The context asks no client certificate and sends the full chain below the root."""
    context = build_context(credentials)
    assert context.get_verify_mode() == SSL.VERIFY_NONE
    assert len(credentials.chain) == 3


@pytest_twisted.ensureDeferred
async def test_tls12_handshake_with_the_iso_suite(reactor, loopback, credentials, test_pki, log_events):
    """An EV limited to TLS 1.2, ECDHE-ECDSA-AES128-SHA256 and P-256 verifies our chain against the V2G root and talks V2GTP."""
    sessions = RecordingSessionFactory(echo)
    service = tls_listener(reactor, loopback, credentials, sessions)
    context = tls12_client_context(cafile=test_pki.path(layout.V2G_ROOT))
    frame = build_frame(EXI, b"\x80\x00\xdb\xab")
    outcome = await exchange_then_stop(service, converse, [frame], context=context, want=len(frame))
    assert outcome.tls == ("TLSv1.2", CIPHER_SUITE)
    assert outcome.received == frame
    assert outcome.ticket is False
    assert sessions.sessions[0].link.secure is True
    assert "TLS handshake done: TLSv1.2 ECDHE-ECDSA-AES128-SHA256 secp256r1" in log_events.text()


@pytest.mark.parametrize(
    "context_factory, what",
    [
        (tls13_only_context, "TLS 1.3 only"),
        (lambda: tls12_client_context(ciphers="ECDHE-RSA-AES128-GCM-SHA256"), "another cipher suite"),
        (lambda: tls12_client_context(curve="X25519"), "X25519 only"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_handshake_refused(reactor, loopback, credentials, context_factory, what):
    """A client without TLS 1.2, the ISO suite or P-256 cannot complete the handshake."""
    sessions = RecordingSessionFactory(echo)
    service = tls_listener(reactor, loopback, credentials, sessions)
    with pytest.raises(ssl.SSLError):
        await exchange_then_stop(service, converse, [build_frame(EXI, b"x")], context=context_factory())
    assert all(session.payloads == [] for session in sessions.sessions), what


@pytest_twisted.ensureDeferred
async def test_plain_tcp_to_the_tls_port_gets_no_v2gtp_answer(reactor, loopback, credentials):
    """A plain-TCP client speaking V2GTP to the TLS server is dropped; its bytes never reach a session."""
    sessions = RecordingSessionFactory(echo)
    service = tls_listener(reactor, loopback, credentials, sessions)
    frame = build_frame(EXI, b"plain")
    outcome = await exchange_then_stop(service, converse, [frame])
    assert outcome.ended in ("eof", "reset")
    assert frame not in outcome.received
    assert all(session.payloads == [] for session in sessions.sessions)


@pytest_twisted.ensureDeferred
async def test_key_log_lines_after_a_handshake(reactor, loopback, credentials, tmp_path):
    """With key logging, the session's secrets are in tls_session_keys.log in SSLKEYLOGFILE format, matching the client's own."""
    key_log = KeyLog(key_log_path(tmp_path))
    service = tls_listener(reactor, loopback, credentials, RecordingSessionFactory(echo), key_log=key_log)
    client_log = tmp_path / "client_keys.log"
    frame = build_frame(EXI, b"k")
    await exchange_then_stop(service, converse, [frame], context=tls12_client_context(keylog=client_log), want=len(frame))
    server_lines = (tmp_path / KEY_LOG_NAME).read_text().splitlines()
    assert server_lines and all(re.fullmatch(r"CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}", line) for line in server_lines)
    client_lines = [line for line in client_log.read_text().splitlines() if not line.startswith("#")]
    assert set(server_lines) == set(client_lines)
    assert (tmp_path / KEY_LOG_NAME).stat().st_mode & 0o777 == 0o600


def test_key_log_directory_must_exist(tmp_path):
    """Key logging into a directory that does not exist is a start-up error naming the key."""
    with pytest.raises(StartupError, match="tls_key_logging_path: .* is not a directory"):
        key_log_path(tmp_path / "absent")


@pytest_twisted.ensureDeferred
async def test_handshake_timeout_closes_an_idle_connection(reactor, loopback, credentials, log_events):
    """A TCP connection to the TLS port that never sends a ClientHello is closed after tls_timeout."""
    sessions = RecordingSessionFactory()
    service = tls_listener(reactor, loopback, credentials, sessions, io_timeout=0.3)
    outcome = await exchange_then_stop(service, converse, [], read_for=5.0)
    assert outcome.ended in ("eof", "reset")
    assert outcome.elapsed >= 0.25  # not before tls_timeout; that it ends at all is the server's doing
    assert sessions.sessions[0].lost == ["TLS handshake not finished within 0.3 s"]
    assert "dropping the connection: TLS handshake not finished within 0.3 s" in log_events.text()


@pytest_twisted.ensureDeferred
async def test_orderly_close_sends_the_answer_then_close_notify(reactor, loopback, credentials):
    """On TLS, close() flushes the answer and, after the close delay, ends with close_notify: the EV's end of stream."""
    sessions = RecordingSessionFactory(answer_and_close)
    service = tls_listener(reactor, loopback, credentials, sessions, close_delay=0.3)
    frame = build_frame(EXI, b"bye")
    received, until_eof, _ = await exchange_then_stop(service, read_then_linger, frame, tls12_client_context())
    assert received == frame
    assert until_eof >= 0.3
    assert len(sessions.sessions[0].lost) == 1
