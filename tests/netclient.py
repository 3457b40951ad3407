"""
Blocking EV-side clients for real-socket tests, run in a thread so the
reactor keeps serving (``deferToThread``).  Plain ``socket``/``ssl``: no
evsev2g code on the EV side, so symmetric bugs cannot hide.
"""

import socket
import ssl
import struct
import time

TIMEOUT = 5.0

#: In ``converse(answers=...)``: read whatever one read gives (a TLS server's first flight).
ANY = -1


def tls12_client_context(cafile=None, ciphers="ECDHE-ECDSA-AES128-SHA256", curve="prime256v1", keylog=None):
    """
    An EV-like TLS client context: TLS 1.2 only, the ISO 15118-2 suite, P-256.

    :param cafile: the V2G root to verify the server chain, or ``None`` not to verify.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if cafile is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    context.set_ecdh_curve(curve)
    if keylog is not None:
        context.keylog_filename = str(keylog)
    return context


def tls13_only_context():
    """A client that speaks nothing but TLS 1.3."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    return context


class Outcome:
    """What a client saw: bytes received, how it ended, TLS details."""

    def __init__(self):
        self.received = b""
        self.ended = None  # "eof", "reset", "timeout"
        self.tls = None  # (version, cipher) after a handshake
        self.ticket = None
        self.elapsed = 0.0


def converse(port, chunks=(), context=None, read_for=TIMEOUT, want=None, host="::1", connect_only=False,
             after_each=None, answers=None):
    """
    Connect, send each chunk, then read until EOF, reset, timeout, or
    ``want`` bytes.  Nothing waits on the wall clock between chunks: a test
    that needs chunks to arrive as separate reads passes ``after_each``
    (called with the bytes sent so far; it returns once the server has read
    them, see :class:`tests.listeners.ReadCounter`), and one that needs the
    answer to a chunk before the next goes out passes ``answers`` (bytes to
    read after each chunk, or :data:`ANY`: whatever one read gives).  ``read_for`` only stops a client whose server
    never answers or closes, so that such a test fails instead of hanging.

    :returns: an :class:`Outcome`.
    """
    outcome = Outcome()
    start = time.monotonic()
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = raw
    try:
        if context is not None:
            sock = context.wrap_socket(raw)
            outcome.tls = (sock.version(), sock.cipher()[0])
            outcome.ticket = sock.session.has_ticket if sock.session is not None else None
        sent = 0
        sock.settimeout(read_for)
        for index, chunk in enumerate(chunks):
            sock.sendall(chunk)
            sent += len(chunk)
            if after_each is not None:
                after_each(sent)
            expected = answers[index] if answers is not None else 0
            if expected == ANY:
                outcome.received += sock.recv(65536)
                expected = 0
            while expected > 0:
                data = sock.recv(expected)
                if not data:
                    break
                outcome.received += data
                expected -= len(data)
        if connect_only:
            return outcome
        while want is None or len(outcome.received) < want:
            data = sock.recv(65536)
            if not data:
                outcome.ended = "eof"
                break
            outcome.received += data
    except (ConnectionResetError, BrokenPipeError):
        outcome.ended = "reset"
    except ssl.SSLEOFError:
        outcome.ended = "eof"
    except socket.timeout:
        outcome.ended = "timeout"
    finally:
        outcome.elapsed = time.monotonic() - start
        sock.close()
    return outcome


def read_then_linger(port, frame, context=None, linger=0.0):
    """
    Send one frame, read until the server's EOF, then keep our side open
    for ``linger`` seconds (or until ``linger()``, a wait for an event,
    returns), and report whether the server had dropped the
    connection by then (raw bytes sent after that are refused with a reset;
    the server is closing anyway, so they reach no session).

    :returns: ``(received, seconds until EOF, server_reset)``; the last is
        ``None`` on TLS, where it is not probed.
    """
    raw = socket.create_connection(("::1", port), timeout=TIMEOUT)
    sock = context.wrap_socket(raw) if context is not None else raw
    start = time.monotonic()
    sock.sendall(frame)
    received = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    except ssl.SSLEOFError:
        pass
    until_eof = time.monotonic() - start
    if callable(linger):
        linger()
    else:
        time.sleep(linger)
    reset = None
    if context is None:
        reset = False
        try:
            sock.send(b"\x00")  # on a connection the server dropped, this is refused (RST)
            time.sleep(0.1)
            sock.send(b"\x00")
        except (ConnectionResetError, BrokenPipeError):
            reset = True
    sock.close()
    return received, until_eof, reset


def sdp_ask(port, security):
    """
    An SDP exchange with the server on ::1: ask for ``security`` (0x00 TLS,
    0x10 no TLS) over TCP, resending after 250 ms as an EV does
    [V2G2-159], and check the answer's V2GTP header and transport byte.

    :returns: ``(address, port, security byte)`` as announced.
    """
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.25)
        request = bytes([0x01, 0xFE, 0x90, 0x00, 0, 0, 0, 2, security, 0x00])
        for _ in range(20):
            sock.sendto(request, ("::1", port))
            try:
                answer = sock.recv(64)
                break
            except socket.timeout:
                continue
        else:
            raise AssertionError("no SDP answer")
    assert answer[:8] == bytes.fromhex("01fe900100000014")
    address = socket.inet_ntop(socket.AF_INET6, answer[8:24])
    port_number, security_byte, transport = struct.unpack("!HBB", answer[24:28])
    assert transport == 0x00
    return address, port_number, security_byte


def wait_until(predicate, limit=30.0):
    """
    Block (in a client thread) until ``predicate()`` is true: a wait for an
    event the server makes happen; ``limit`` only turns a server that never
    does it into a failure rather than a hang.
    """
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the awaited event did not happen")
        time.sleep(0.01)
