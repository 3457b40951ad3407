"""
V2GTP over real TCP sockets on ::1: split, coalesced and bad frames, one
connection's error leaving the others alone.
"""

import pytest_twisted
from twisted.internet.threads import deferToThread

from evsev2g.testing import RecordingSessionFactory
from evsev2g.v2gtp import build_frame

from tests.listeners import EXI, ReadCounter, answer_and_close, echo, exchange_then_stop, start_listener
from tests.netclient import converse, read_then_linger, wait_until


@pytest_twisted.ensureDeferred
async def test_port_zero_picks_the_dynamic_range(reactor, loopback):
    """Port 0 means any free port in 49152-65535 (ISO 15118-2 Table 15)."""
    service = start_listener(reactor, loopback, RecordingSessionFactory())
    try:
        assert 49152 <= service.port_number <= 65535
        assert service.listening_port.getHost().host == "::1"
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_split_and_coalesced_frames(reactor, loopback):
    """Frames split over many TCP reads and several frames in one read all arrive whole, in order."""
    sessions = RecordingSessionFactory(echo)
    service = start_listener(reactor, loopback, sessions)
    try:
        frames = [build_frame(EXI, bytes([n]) * (n * 37 + 1)) for n in range(1, 6)]
        stream = b"".join(frames)
        split = [stream[:3], stream[3:11], stream[11:200], stream[200:]]
        counter = ReadCounter(service.factory)
        outcome = await deferToThread(converse, service.port_number, split, want=len(stream), after_each=counter.wait_for)
        assert outcome.received == stream
        counter.total = 0
        coalesced = await deferToThread(converse, service.port_number, [stream], want=len(stream))
        assert coalesced.received == stream
    finally:
        await service.stopService()
    assert [len(s.payloads) for s in sessions.sessions] == [5, 5]
    assert all(s.lost for s in sessions.sessions)


@pytest_twisted.ensureDeferred
async def test_bad_frame_closes_only_that_connection(reactor, loopback):
    """A bad header closes that connection without an answer; another connection goes on."""
    sessions = RecordingSessionFactory(echo)
    service = start_listener(reactor, loopback, sessions, max_payload=1000)
    try:
        port = service.port_number
        good = build_frame(EXI, b"ping")
        bad_cases = [
            bytes.fromhex("02fd800100000004") + b"ping",  # version / inverse
            bytes.fromhex("01fe700100000004") + b"ping",  # payload type
            bytes.fromhex("01fe8001000003e9"),  # 1001 > 1000 bytes
            bytes.fromhex("01fe800100000000"),  # length 0
        ]
        for bad in bad_cases:
            outcome = await deferToThread(converse, port, [good, bad], want=None, answers=[len(good), 0])
            assert outcome.received == good, bad.hex()
            assert outcome.ended in ("eof", "reset"), bad.hex()  # closed by the server, not our read timeout
        still_fine = await deferToThread(converse, port, [good, good], want=2 * len(good))
        assert still_fine.received == good + good
    finally:
        await service.stopService()
    assert [s.payloads for s in sessions.sessions][-1] == [(EXI, b"ping"), (EXI, b"ping")]


@pytest_twisted.ensureDeferred
async def test_orderly_close_over_a_real_socket(reactor, loopback):
    """
    close(): the EV reads the answer, then, after the close delay in which
    it could have closed first, our FIN; when the EV closes too, the session
    hears a clean close.
    """
    sessions = RecordingSessionFactory(answer_and_close)
    service = start_listener(reactor, loopback, sessions, fin_wait=5.0, close_delay=0.3)
    frame = build_frame(EXI, b"stop")
    received, until_eof, reset = await exchange_then_stop(
        service, read_then_linger, frame, until=lambda: sessions.sessions and sessions.sessions[0].lost
    )
    assert received == frame and 0.3 <= until_eof and not reset
    assert sessions.sessions[0].lost == ["closed cleanly"]


@pytest_twisted.ensureDeferred
async def test_orderly_close_gives_up_on_a_silent_ev(reactor, loopback):
    """An EV that keeps its side open after our FIN is dropped after the FIN wait."""
    sessions = RecordingSessionFactory(answer_and_close)
    service = start_listener(reactor, loopback, sessions, fin_wait=0.3, close_delay=0.1)
    frame = build_frame(EXI, b"stop")
    dropped = lambda: wait_until(lambda: bool(sessions.sessions and sessions.sessions[0].lost))  # noqa: E731
    received, _, reset = await exchange_then_stop(service, read_then_linger, frame, None, dropped)
    assert received == frame and reset
    assert sessions.sessions[0].lost == ["the EV did not close its side within 0.3 s"]
