"""A Clock-driven ISO 15118-2 state machine with a charger and a var recorder, for the ISO-2 tests."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from evsev2g.exi import load_codec
from evsev2g.protocols.context import ProtocolContext, ProtocolSettings
from evsev2g.protocols.iso15118_2 import ISO2StateMachine
from evsev2g.protocols.paused import PausedSessions
from evsev2g.testing import VarRecorder, dc_charger
from evsev2g.testing_iso2 import ac_charger, iso2_request

SID = bytes.fromhex("0102030405060708")
START = 1_700_000_000

_CODEC = []


def codec():
    """The real ISO 15118-2 codec (loaded once)."""
    if not _CODEC:
        _CODEC.append(load_codec("iso15118-2"))
    return _CODEC[0]


class Harness:
    """
    One ISO-2 state machine on a Clock; every response is encoded with the
    real codec (a body the schema refuses fails the test).
    """

    def __init__(self, dc=True, settings=None, clock=None, paused=None, services=None, secure=False, charger=None, new_id=SID, **commands):
        self.clock = clock or Clock()
        if clock is None:
            self.clock.advance(START)
        self.dc = dc
        make = dc_charger if dc else ac_charger
        self.charger = charger or make(self.clock, **commands)
        self.vars = VarRecorder(self.charger)
        extra = {}
        if services is not None:
            extra["services"] = services
        self.context = ProtocolContext(
            charger=self.charger,
            clock=self.clock,
            settings=settings or ProtocolSettings(),
            new_session_id=lambda: new_id,
            label="test",
            secure=secure,
            paused=paused if paused is not None else PausedSessions(),
            **extra,
        )
        self.machine = ISO2StateMachine(self.context)
        self.replies = []
        self.bodies = []

    def request(self, name, session_id=None, **fields):
        """The request ``name`` with our SessionID (zeros before SessionSetup)."""
        if session_id is None:
            session_id = self.machine.session_id or b"\x00"
        return iso2_request(name, session_id, dc=self.dc, **fields)

    def send(self, name, session_id=None, **fields):
        """Send one request and return (response code, body, reply); the reply must be synchronous."""
        reply = self.machine.handle(self.request(name, session_id, **fields))
        assert not isinstance(reply, Deferred), f"{name} answered with a Deferred"
        return self.unpack(reply)

    def send_deferred(self, name, session_id=None, **fields) -> Deferred:
        """Send one request whose answer may wait; the Deferred fires with (code, body, reply)."""
        reply = self.machine.handle(self.request(name, session_id, **fields))
        if not isinstance(reply, Deferred):
            reply = succeed(reply)
        return reply.addCallback(self.unpack)

    def unpack(self, reply):
        self.replies.append(reply)
        if reply.message is None:
            return None, None, reply
        decoded = codec().decode(codec().encode(reply.message))
        body = decoded.Body.children[0][1]
        self.bodies.append(body)
        return body.ResponseCode, body, reply

    def run(self, steps):
        """
        Run ``steps`` (names; ``"PowerDeliveryReq:Stop"`` names the
        ChargeProgress, ``"SessionStopReq:Pause"`` the ChargingSession),
        each answered OK, the charger agreeing to what is asked of it.
        """
        body = None
        for step in steps:
            name, _, progress = step.partition(":")
            fields = {("ChargingSession" if name == "SessionStopReq" else "ChargeProgress"): progress} if progress else {}
            if name == "AuthorizationReq" and self.charger.authorization_status is None:
                self.charger.authorization_response("Accepted", "NoCertificateAvailable")
            if name == "CableCheckReq":
                self.charger.update_isolation_status("Valid")
                self.charger.cable_check_finished(True)
            if name == "PowerDeliveryReq" and not self.dc and progress in ("", "Start"):
                self.charger.ac_contactor_closed(True)
            code, body, _ = self.send(name, **fields)
            assert code.startswith("OK"), (step, code)
        return body
