"""
Paused ISO 15118-2 sessions, waiting for their EV to come back.

SessionStopReq(ChargingSession=Pause) ends the connection; the same EV
comes back later on a new one (new SDP, new TCP/TLS) and presents its
SessionID in SessionSetupReq, which the SECC answers OK_OldSessionJoined
([V2G2-740]…[V2G2-743], [V2G2-756]).  This store, one per process (the
session factory's), keeps what such a session needs to resume, keyed by
SessionID:

- bounded in number (the oldest is dropped) and in age (entries older than
  ``max_age`` are forgotten), so a flood of pausing EVs cannot grow it;
- consumed once: a resume takes its entry out;
- nothing else reaches a session: an EV with another SessionID, or zeros,
  gets a fresh session (EvseV2G keeps a process-wide pause flag that leaks
  into the next car).

The store holds plain values, no objects of the paused session.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["PausedSession", "PausedSessions", "MAX_PAUSED_SESSIONS", "PAUSED_SESSION_MAX_AGE"]

#: At most this many paused sessions are kept (our choice; the standard
#: sets no figure).
MAX_PAUSED_SESSIONS = 16

#: A paused session is forgotten after this many seconds (our choice: a
#: car may sleep until its departure time, hours later).
PAUSED_SESSION_MAX_AGE = 12 * 3600.0


@dataclass
class PausedSession:
    """
    What a resuming session takes over.

    :ivar session_id: the SessionID.
    :ivar paused_at: clock time of the pause.
    :ivar payment_option: the payment option selected (the only one offered
        on resume, [V2G2-740]).
    :ivar energy_mode: the energy transfer mode the EV requested.
    :ivar values: protocol details (schedule, departure time …).
    """

    session_id: bytes
    paused_at: float
    payment_option: str | None = None
    energy_mode: str | None = None
    values: dict = field(default_factory=dict)


class PausedSessions:
    """The bounded, consume-once store (see the module docstring)."""

    def __init__(self, limit: int = MAX_PAUSED_SESSIONS, max_age: float = PAUSED_SESSION_MAX_AGE) -> None:
        """
        :param limit: most entries kept.
        :param max_age: seconds an entry is kept.
        """
        self.limit = limit
        self.max_age = max_age
        self._entries: OrderedDict[bytes, PausedSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def keep(self, paused: PausedSession) -> None:
        """Store ``paused``, dropping the oldest entries beyond :attr:`limit`."""
        self._entries.pop(paused.session_id, None)
        self._entries[paused.session_id] = paused
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def take(self, session_id: bytes, now: float) -> PausedSession | None:
        """
        :param session_id: the SessionID an EV presented.
        :param now: the clock time.
        :returns: the paused session (removed from the store), or ``None``
            when there is none or it is older than :attr:`max_age`.
        """
        self._expire(now)
        if not any(session_id):
            return None
        return self._entries.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for key in [key for key, entry in self._entries.items() if now - entry.paused_at > self.max_age]:
            del self._entries[key]
