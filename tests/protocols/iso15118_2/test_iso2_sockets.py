"""
Whole ISO 15118-2 sessions through the real SECC in this process: real TCP
(and TLS 1.2 with the ISO 15118-2 suite) on ::1, real V2GTP framing, the
real EXI codec, the session, the ISO-2 state machine and the simulated
charger (made an AC charger for the AC session).  The EV is a minimal
scripted client in a thread (blocking sockets); the full EV simulator is
tested in ``tests/sim``.
"""

import socket

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from evsev2g.exi import load_codec
from evsev2g.protocols.iso15118_2 import ISO2_NAMESPACE
from evsev2g.sim.loopback import start_secc
from evsev2g.testing import app_protocol_request
from evsev2g.testing_iso2 import ISO2_AC_SESSION, ISO2_DC_SESSION, iso2_request
from evsev2g.v2gtp import HEADER, PayloadType, build_frame
from tests.netclient import tls12_client_context

FAST = ["simulator.auth_delay_ms=20", "simulator.cable_check_ms=20", "simulator.voltage_slew_rate=0", "simulator.current_slew_rate=0"]


def _read_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def scripted_ev(port, steps, dc, context=None, session_id=b"\x00", ongoing_pause=0.02):
    """
    Run ``steps`` (``ISO2_*_SESSION`` style) as an EV over one connection,
    repeating a request while the SECC answers Ongoing.

    :returns: ``(answers, session_id)``: ``(request, ResponseCode,
        EVSEProcessing or None)`` per answer, and the SessionID.
    """
    import time

    handshake, iso2 = load_codec("appHandshake"), load_codec("iso15118-2")
    raw = socket.create_connection(("::1", port), timeout=10)
    sock = context.wrap_socket(raw) if context is not None else raw
    answers = []
    try:
        def exchange(codec, message):
            sock.sendall(build_frame(PayloadType.EXI, codec.encode(message)))
            _, _, _, length = HEADER.unpack(_read_exactly(sock, HEADER.size))
            return codec.decode(_read_exactly(sock, length))

        answer = exchange(handshake, app_protocol_request((ISO2_NAMESPACE, 2, 0, 1, 1)))
        answers.append(("supportedAppProtocolReq", answer.ResponseCode, None))
        for step in steps:
            name, _, progress = step.partition(":")
            fields = {("ChargingSession" if name == "SessionStopReq" else "ChargeProgress"): progress} if progress else {}
            for _ in range(500):
                response = exchange(iso2, iso2_request(name, session_id, dc=dc, **fields))
                body = response.Body.children[0][1]
                if name == "SessionSetupReq":
                    session_id = response.Header.SessionID
                processing = body.get("EVSEProcessing")
                if not (processing or "").startswith("Ongoing"):
                    break
                time.sleep(ongoing_pause)
            answers.append((step, body.ResponseCode, processing))
            if not body.ResponseCode.startswith("OK"):
                break
    finally:
        sock.close()
    return answers, session_id


def make_ac(secc):
    """Turn the simulated charger into an AC one that closes its contactor when asked."""
    backend = secc.sessions.backend
    original = backend.session_started

    def started(charger):
        original(charger)
        charger.set_charging_parameters({"ac_nominal_voltage": 230})
        charger.update_energy_transfer_modes(["AC_three_phase_core"])
        charger.update_ac_max_current(16)
        charger.subscribe(lambda name, _: charger.ac_contactor_closed(True), names=["ac_close_contactor"])

    backend.session_started = started


@pytest.mark.parametrize("dc", [False, True], ids=["AC", "DC"])
@pytest_twisted.ensureDeferred
async def test_whole_session_over_tcp(reactor, dc):
    """A whole ISO-2 EIM session over TCP on ::1: every answer OK, the session ends cleanly (dlink_terminate)."""
    secc = start_secc(reactor, FAST)
    seen = []
    original = secc.sessions.backend.session_ended
    secc.sessions.backend.session_ended = lambda charger: (seen.append(charger.last("dlink_terminate", "missing")), original(charger))
    if not dc:
        make_ac(secc)
    try:
        steps = ISO2_DC_SESSION if dc else ISO2_AC_SESSION
        answers, _ = await deferToThread(scripted_ev, secc.port, steps, dc)
        assert [code[:2] for _, code, _ in answers] == ["OK"] * (len(steps) + 1), answers
        await secc.sessions.when_finished(1)
        assert seen == [None]  # dlink_terminate was published (a null var)
    finally:
        await secc.service.stopService()


@pytest_twisted.ensureDeferred
async def test_pause_then_resume_on_a_new_connection(reactor):
    """
    SessionStop(Pause) ends the first connection (dlink_pause); the same EV
    comes back on a new connection with its SessionID, is answered
    OK_OldSessionJoined and charges again.
    """
    secc = start_secc(reactor, FAST)
    try:
        first = ISO2_DC_SESSION[:-1] + ("SessionStopReq:Pause",)
        answers, session_id = await deferToThread(scripted_ev, secc.port, first, True)
        assert all(code.startswith("OK") for _, code, _ in answers), answers
        await secc.sessions.when_finished(1)
        assert len(secc.sessions.paused) == 1
        answers, resumed_id = await deferToThread(scripted_ev, secc.port, ISO2_DC_SESSION, True, None, session_id)
        assert answers[1] == ("SessionSetupReq", "OK_OldSessionJoined", None)
        assert resumed_id == session_id and all(code.startswith("OK") for _, code, _ in answers), answers
        assert len(secc.sessions.paused) == 0
    finally:
        await secc.service.stopService()


@pytest_twisted.ensureDeferred
async def test_whole_session_over_tls(reactor, test_pki):
    """ISO-2 over TLS 1.2 (ECDHE-ECDSA-AES128-SHA256, P-256): a whole DC session, Contract not offered without PnC."""
    secc = start_secc(
        reactor,
        FAST + ["tls_security=force", f"certs_dir={test_pki.directory}", "tls_port=0"],
    )
    try:
        port = secc.service.tls.port_number
        answers, _ = await deferToThread(scripted_ev, port, ISO2_DC_SESSION, True, tls12_client_context())
        assert [code[:2] for _, code, _ in answers] == ["OK"] * (len(ISO2_DC_SESSION) + 1), answers
    finally:
        await secc.service.stopService()
