"""Tests for :mod:`evsev2g.memory`: ended sessions are collected and the heap trimmed once the charger is idle."""

import ctypes
import gc
import weakref

from twisted.internet.task import Clock

from evsev2g.memory import IDLE_TRIM_DELAY, IdleTrim, release_free_memory
from evsev2g.transport import ConnectionRegistry


class Recorder:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return True


def test_trims_after_the_last_connection_has_been_gone_for_the_delay():
    """The trim runs IDLE_TRIM_DELAY s after the last connection closed, once."""
    clock, release = Clock(), Recorder()
    registry = ConnectionRegistry(idle=IdleTrim(clock, release=release))
    first, second = object(), object()
    registry.add(first)
    registry.add(second)
    registry.remove(first)
    clock.advance(IDLE_TRIM_DELAY * 2)
    assert release.calls == 0  # one is still open
    registry.remove(second)
    clock.advance(IDLE_TRIM_DELAY - 0.1)
    assert release.calls == 0
    clock.advance(0.2)
    assert release.calls == 1
    clock.advance(IDLE_TRIM_DELAY * 2)
    assert release.calls == 1


def test_a_new_connection_cancels_a_waiting_trim():
    """A car that connects within the delay is never slowed by a trim."""
    clock, release = Clock(), Recorder()
    registry = ConnectionRegistry(idle=IdleTrim(clock, release=release))
    connection = object()
    registry.add(connection)
    registry.remove(connection)
    clock.advance(IDLE_TRIM_DELAY / 2)
    registry.add(object())
    clock.advance(IDLE_TRIM_DELAY * 2)
    assert release.calls == 0 and not clock.getDelayedCalls()


def test_removing_an_unknown_connection_starts_nothing():
    """Only the end of an open connection counts."""
    clock, release = Clock(), Recorder()
    registry = ConnectionRegistry(idle=IdleTrim(clock, release=release))
    registry.remove(object())
    assert not clock.getDelayedCalls()


def test_release_free_memory_asks_glibc():
    """On glibc (this machine) malloc_trim is there and is called."""
    has_trim = getattr(ctypes.CDLL(None), "malloc_trim", None) is not None
    assert release_free_memory() is has_trim


class Session:
    """Stands for a session whose parts refer to one another."""

    def __init__(self):
        self.handlers = {"stop": self.stop}

    def stop(self):
        pass


def test_the_idle_trim_collects_what_ended_sessions_left():
    """Cyclic garbage of ended sessions is freed when the charger goes idle, not left for a later full collection."""
    clock, release = Clock(), Recorder()
    registry = ConnectionRegistry(idle=IdleTrim(clock, release=release))
    enabled = gc.isenabled()
    gc.disable()  # only the idle trim may collect here
    try:
        connection = object()
        registry.add(connection)
        ended = weakref.ref(Session())
        registry.remove(connection)
        assert ended() is not None  # a cycle: refcounting alone does not free it
        clock.advance(IDLE_TRIM_DELAY)
        assert ended() is None and release.calls == 1
    finally:
        if enabled:
            gc.enable()
