"""
Services that own one listening port.

The port is opened in ``privilegedStartService`` (before twistd drops
privileges, which ``SO_BINDTODEVICE`` and reading root-only keys need), or
in ``startService`` when nobody called the former (tests, embedding), and
closed in ``stopService``, which returns a Deferred that fires when it is.
A port that cannot be opened is a :class:`~evsev2g.errors.StartupError`
with one line saying which port, where and why.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort

from evsev2g.errors import StartupError

#: How many random ports of the dynamic range are tried for port 0.
DYNAMIC_PORT_ATTEMPTS = 64


def listen_in_range(
    listen: Callable[[int], IListeningPort],
    port: int,
    port_range: tuple[int, int],
    what: str,
    rng: random.Random | None = None,
) -> IListeningPort:
    """
    Listen on a fixed port, or on any free port of a range for port 0.

    The kernel's own choice for port 0 lies in its ephemeral range
    (32768–60999 on Linux), which overlaps the IANA dynamic range only in
    part, so free ports are picked here instead.

    :param listen: opens a port, raising ``CannotListenError`` on failure.
    :param port: the configured port; 0 picks one from ``port_range``.
    :param port_range: lowest and highest port allowed for port 0.
    :param what: what is listening, for the error message.
    :param rng: the random source (tests pass a seeded one).
    :returns: the listening port.
    :raises StartupError: when no port could be opened.
    """
    if port:
        candidates = [port]
    else:
        low, high = port_range
        candidates = (rng or random.SystemRandom()).sample(range(low, high + 1), DYNAMIC_PORT_ATTEMPTS)
    *tries, last = candidates
    for candidate in tries:
        try:
            return listen(candidate)
        except CannotListenError as error:
            if getattr(error.socketError, "errno", None) != errno.EADDRINUSE:
                raise _cannot_listen(error, candidate, what) from None
    try:
        return listen(last)
    except CannotListenError as error:
        raise _cannot_listen(error, last, what) from None


def _cannot_listen(error: CannotListenError, port: int, what: str) -> StartupError:
    """The one-line start-up error for a port that could not be opened."""
    cause = error.socketError
    reason = getattr(cause, "strerror", None) or str(cause)
    return StartupError(f"{what}: cannot listen on [{error.interface or 'any address'}]:{port}: {reason}")


class PortService(Service):
    """
    A service owning one port, made by :meth:`open_port`.

    Subclasses implement :meth:`open_port`; :attr:`listening_port` is the
    opened port while the service runs.
    """

    listening_port: IListeningPort | None = None

    def open_port(self) -> IListeningPort:
        """
        :returns: the opened port.
        :raises StartupError: when it cannot be opened.
        """
        raise NotImplementedError

    def _ensure_open(self) -> None:
        """Open the port unless it is open already."""
        if self.listening_port is None:
            self.listening_port = self.open_port()

    def privilegedStartService(self) -> None:
        """Open the port while privileges last."""
        self._ensure_open()
        Service.privilegedStartService(self)

    def startService(self) -> None:
        """Open the port if :meth:`privilegedStartService` did not."""
        self._ensure_open()
        Service.startService(self)

    def stopService(self) -> Deferred:
        """
        :returns: a Deferred that fires when the port is closed.
        """
        Service.stopService(self)
        port, self.listening_port = self.listening_port, None
        if port is None:
            return succeed(None)
        return maybeDeferred(port.stopListening)

    @property
    def port_number(self) -> int | None:
        """The port number while open, else ``None``."""
        if self.listening_port is None:
            return None
        return self.listening_port.getHost().port
