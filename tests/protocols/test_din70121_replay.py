"""
DIN request sequences captured from real cars, EV simulators and test
systems (``../shared/exi-vectors/real-world.jsonl``) replayed against the
DIN state machine, with the real EXI codec.

The vectors are de-duplicated across all captures (identical payloads are
kept once), so a capture's sequence may miss steps, typically the repeated
Ongoing polls or a SessionSetupReq identical to another capture's.  Such a
gap is filled with one generated request of the missing kind before the
captured request; every captured request must then be answered OK (the
charger behind the machine is ready at once) and every answer must encode
with the DIN schema.
"""

import json
import re
from collections import defaultdict

import pytest
from twisted.internet.task import Clock

from evsev2g.exi import load_codec
from evsev2g.protocols.context import ProtocolContext
from evsev2g.protocols.din70121 import ALLOWED, DINStateMachine
from evsev2g.testing import DIN_DC_SESSION, VarRecorder, dc_charger, din_request

#: The DIN DC sequence up to the charge loop, to fill de-duplication gaps.
ORDER = list(DIN_DC_SESSION[: DIN_DC_SESSION.index("CurrentDemandReq") + 1])


#: Response codes that follow from the request alone (not from the state
#: of the real charger's hardware): a replay must give the same.
PROTOCOL_CODES = {"FAILED_SequenceError", "FAILED_UnknownSession"}


def captured_sessions(shared_dir):
    """
    The DIN captures as sessions: ``(file, our SessionID, [(request,
    expected code class)])`` in frame order.

    A session starts at a SessionSetupReq or SessionSetupRes, or with the
    first request after a SessionStopReq; the SECC's
    SessionID is the captured SessionSetupRes's when there is one, else the
    one the EV's requests carry.  The expected answer of a request is the
    captured response that follows it, when it is FAILED_SequenceError or
    FAILED_UnknownSession (the capture shows the charger deciding on the
    request itself); otherwise OK.
    """
    codec = load_codec("din70121")
    per_file = defaultdict(list)
    for line in (shared_dir / "exi-vectors" / "real-world.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["protocol"] != "din70121":
            continue
        match = re.match(r"(.*) \((?:pcap frame|Packet) #(\d+)\)$", row["source"])
        if not match:
            continue
        per_file[match.group(1)].append((int(match.group(2)), row["message"], codec.decode(bytes.fromhex(row["exi_hex"]))))
    sessions = []
    for source, rows in sorted(per_file.items()):
        rows.sort(key=lambda row: row[0])
        current = None
        for index, (frame, name, message) in enumerate(rows):
            if name == "SessionSetupReq" or (name == "SessionSetupRes" and (current is None or current[1] is not None)):
                current = [source.rsplit("/", 1)[-1], None, []]
                sessions.append(current)
            if name == "SessionSetupRes":
                current[1] = message.Header.SessionID
                continue
            if name.endswith("Res"):
                continue
            if current is None or (current[2] and name_of(current[2][-1][0]) == "SessionStopReq"):
                # requests after a SessionStop belong to the next session,
                # whose SessionSetup was de-duplicated away
                current = [source.rsplit("/", 1)[-1], None, []]
                sessions.append(current)
            expected = "OK"
            following = rows[index + 1] if index + 1 < len(rows) else None
            if following is not None and following[1] == name[:-3] + "Res":
                code = following[2].Body.children[0][1].ResponseCode
                if code in PROTOCOL_CODES:
                    expected = code
            current[2].append((message, expected))
    result = []
    for source, sid, requests in sessions:
        if not requests:
            continue
        if sid is None:
            named = [m for m, _ in requests if name_of(m) != "SessionSetupReq"]
            sid = named[0].Header.SessionID if named else bytes(8)
        result.append((source, sid, requests))
    return result


def ready_machine(sid):
    """A DIN state machine whose charger is ready for everything at once."""
    clock = Clock()
    charger = dc_charger(clock)
    charger.authorization_response("Accepted", "NoCertificateAvailable")
    charger.update_isolation_status("Valid")
    charger.cable_check_finished(True)
    charger.update_dc_present_values({"evse_present_voltage": 400, "evse_present_current": 10})
    VarRecorder(charger)
    machine = DINStateMachine(ProtocolContext(charger=charger, clock=clock, new_session_id=lambda: sid, label="replay"))
    return machine


def name_of(message):
    """The body element name of a V2G_Message."""
    return message.Body.children[0][0]


def fill_gap(machine, name, sid, codec):
    """Generated requests until ``name`` is allowed (de-duplication gaps)."""
    filled = 0
    while name not in ALLOWED[machine.state] and filled < len(ORDER):
        steps = [step for step in ORDER if step in ALLOWED[machine.state]]
        if not steps:
            break
        reply = machine.handle(din_request(steps[0], sid if machine.session_id else b"\x00"))
        codec.encode(reply.message)
        filled += 1
    return filled


def _step(request) -> int:
    name = name_of(request)
    if name == "PowerDeliveryReq" and not request.Body.PowerDeliveryReq.ReadyToChargeState:
        return len(ORDER)
    return ORDER.index(name) if name in ORDER else len(ORDER)


def _went_back(last, name) -> bool:
    return last is not None and name in ORDER and ORDER.index(name) < _step(last)


def test_real_world_sequences_replay(shared_dir):
    """
    Every captured DIN request gets the answer the capture allows: OK, or
    the FAILED_SequenceError / FAILED_UnknownSession the real charger gave
    (pyPLC sent PowerDelivery(ReadyToCharge=false) before CurrentDemand to an
    Alpitronic; it echoed a Tesla Supercharger's 4-byte SessionID wrongly).
    A capture going back in the sequence (PreCharge after PowerDelivery
    stop) is the next session of the same car whose SessionStop/SessionSetup
    were de-duplicated away: it is replayed on a fresh session.
    After such a closing answer the connection would be gone, so the rest of
    that capture is not replayed.  Every answer encodes with the DIN schema.
    """
    codec = load_codec("din70121")
    replayed = 0
    sources = set()
    protocol_failures = []
    for source, sid, requests in captured_sessions(shared_dir):
        machine = ready_machine(sid)
        last = None
        for request, expected in requests:
            name = name_of(request)
            if expected == "OK" and name not in ALLOWED[machine.state] and _went_back(last, name):
                # The capture goes back in the sequence: a new session whose
                # SessionStop and SessionSetup were de-duplicated away.
                machine = ready_machine(sid)
            last = request
            if name != "SessionSetupReq" and machine.session_id is None:
                fill_gap(machine, "ServiceDiscoveryReq", sid, codec)
            fill_gap(machine, name, sid, codec)
            reply = machine.handle(request)
            code = reply.message.Body.children[0][1].ResponseCode
            codec.encode(reply.message)
            replayed += 1
            sources.add(source)
            if expected == "OK":
                assert code.startswith("OK"), (source, name, code)
            else:
                assert code == expected, (source, name, code)
                protocol_failures.append((source, code))
                assert reply.close
                break
    assert replayed >= 200
    assert len(sources) >= 10
    assert {code for _, code in protocol_failures} == PROTOCOL_CODES


def test_captured_session_setup_ids_are_echoed(shared_dir):
    """Captures with a SessionSetupReq: the EV's SessionID (1 byte 0x00 or 8 zero bytes) starts a new session."""
    seen = set()
    for source, sid, requests in captured_sessions(shared_dir):
        first = requests[0][0]
        if name_of(first) != "SessionSetupReq":
            continue
        seen.add(first.Header.SessionID)
        machine = ready_machine(sid)
        reply = machine.handle(first)
        assert reply.message.Body.SessionSetupRes.ResponseCode == "OK_NewSessionEstablished"
        assert reply.message.Header.SessionID == sid
    assert seen, "no capture starts with SessionSetupReq"
