"""
Giving freed memory back to the system when the charger goes idle.

A session's objects refer to one another (a state machine's handler table
holds its own bound methods, a charger its observers), so most of them are
freed by the cycle collector, whenever its next full collection comes; and
glibc's ``malloc`` keeps the heap pages freed objects used (TLS buffers,
large Python objects) mapped for the next allocation.  So a charger that
has served a car would stay larger than one that has not.
:class:`IdleTrim` runs a full collection and then asks ``malloc_trim(0)``
to return every whole free page once no connection has been open for
:data:`IDLE_TRIM_DELAY` seconds: the board's memory goes back to the other
EVerest modules between cars, and the pause falls when no car is served.

On a C library without ``malloc_trim`` (musl, macOS) only the collection runs.
"""

from __future__ import annotations

import functools
import gc

from twisted.logger import Logger

from evsev2g.timers import cancel_call

__all__ = ["IDLE_TRIM_DELAY", "IdleTrim", "release_free_memory"]

log = Logger()

#: Seconds without an open connection before the heap is trimmed.
IDLE_TRIM_DELAY = 5.0

@functools.cache
def _malloc_trim():
    """The C library's ``malloc_trim``, or ``None`` where it has none (looked up once)."""
    try:
        import ctypes  # noqa: PLC0415 - only when first needed

        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (ImportError, OSError):
        return None


def release_free_memory() -> bool:
    """
    :returns: whether the C library was asked to return free heap pages
        (``malloc_trim(0)``); ``False`` where it has no such call.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class IdleTrim:
    """
    Collects garbage and calls :func:`release_free_memory` once the last
    connection has been gone for ``delay`` seconds (a new connection in
    between cancels it).

    :param clock: ``IReactorTime``.
    :param delay: seconds.
    :param release: what to call (tests give their own).
    """

    def __init__(self, clock, delay: float = IDLE_TRIM_DELAY, release=release_free_memory) -> None:
        self.clock, self.delay, self.release = clock, delay, release
        self._pending = None

    def busy(self) -> None:
        """A connection was made: an idle trim waiting is not needed."""
        cancel_call(self._pending)
        self._pending = None

    def idle(self) -> None:
        """The last connection is gone: trim after the delay."""
        self.busy()
        self._pending = self.clock.callLater(self.delay, self._trim)

    def _trim(self) -> None:
        self._pending = None
        collected = gc.collect()
        if self.release():
            log.debug("idle: {objects} objects of ended sessions collected, free heap pages returned to the system",
                      objects=collected)
