"""
What every V2G protocol state machine shares: the sequence pattern.

A state machine is a :class:`SequenceStateMachine` subclass that supplies

- a ``State`` enum (with at least ``HANDSHAKEN``, ``FAILED`` and
  ``STOPPED`` members) and the table of requests allowed after each
  response (:meth:`SequenceStateMachine.allowed`);
- the set of request names its schema has (:attr:`requests`) and those that
  belong to shutting down (:attr:`shutdown_path`: answered even while the
  charger is in emergency shutdown or has stopped, and all the EV may send
  after a FAILED response);
- one handler per request it serves, named after it (``_cable_check`` for
  CableCheckReq), returning ``(response body, close)`` or a ``Deferred``
  firing with that pair;
- :meth:`~SequenceStateMachine.failed_body`: the body of a FAILED answer.

The base does the rest, in the order ISO 15118-4 tests it: a request of the
schema at all (else the connection closes: nothing can be answered); allowed
in the state (FAILED_SequenceError, which wins over the session check); the
SessionID ([V2G2-460]: any mismatch, a zero one included); the charger's
emergency shutdown or expired stop request; then the handler.  Every
:class:`~evsev2g.responses.ProtocolError` a handler raises becomes the
response code of the one table in :mod:`evsev2g.responses`, and the
connection closes after it as that table and
``terminate_connection_on_failed_response`` say.

:class:`OngoingWait` is the one EVSEProcessing=Ongoing loop (start, poll,
time limit) that authorization, parameter discovery and cable check use.
"""

from __future__ import annotations

import re

from twisted.internet.defer import Deferred

from evsev2g.exi.message import Message
from evsev2g.protocols.context import ProtocolContext, Reply, body_name
from evsev2g.protocols.teardown import publish_session_end
from evsev2g.responses import (
    AuthorizationRejected,
    AuthorizationTimeout,
    ChargerStopped,
    EmergencyShutdown,
    ProtocolError,
    SequenceError,
    UnknownSession,
    closes_connection,
    response_code,
)

__all__ = ["OngoingWait", "SequenceStateMachine", "Handled"]

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")

#: What a handler returns: the response body and whether to close after it.
Handled = tuple[Message, bool]


class OngoingWait:
    """
    One EVSEProcessing=Ongoing loop: when it started, whether it is done,
    and the limit after which the SECC answers FAILED ([V2G2-712],
    [V2G2-713]).

    :ivar started: clock time of the first poll (or :meth:`begin`), else ``None``.
    """

    def __init__(self, clock, error: type[ProtocolError], what: str) -> None:
        """
        :param clock: ``IReactorTime``.
        :param error: the :class:`ProtocolError` raised when the limit passes.
        :param what: what is awaited, for the error's message.
        """
        self.clock = clock
        self.error = error
        self.what = what
        self.started: float | None = None

    def begin(self) -> bool:
        """
        Start the loop unless it runs already.

        :returns: ``True`` the first time (when the charger is to be asked).
        """
        if self.started is None:
            self.started = self.clock.seconds()
            return True
        return False

    def elapsed(self) -> float:
        """Seconds since :meth:`begin` (0 before)."""
        return 0.0 if self.started is None else self.clock.seconds() - self.started

    def poll(self, done: bool, limit: float | None) -> bool:
        """
        One request of the loop.

        :param done: what is awaited has arrived.
        :param limit: seconds the loop may last; ``None`` or 0: no limit.
        :returns: ``True`` when done (EVSEProcessing=Finished), ``False``
            to answer Ongoing.
        :raises ProtocolError: the loop's error once ``limit`` has passed.
        """
        self.begin()
        if done:
            return True
        if limit and self.elapsed() >= limit:
            raise self.error(f"{self.what} not done within {limit:g} s")
        return False

    def late(self, limit: float) -> bool:
        """Whether the loop has run longer than ``limit`` (no error)."""
        return self.started is not None and self.elapsed() > limit

    def reset(self) -> None:
        """Forget the loop (renegotiation starts it again)."""
        self.started = None


class SequenceStateMachine:
    """
    The protocol-neutral part of a state machine (see the module docstring).

    :ivar state: the subclass's ``State``.
    :ivar session_id: our SessionID (``bytes``) once SessionSetupRes went out.
    :ivar last_request: body name of the last request handled.
    :ivar clean_stop: the session ended with SessionStopRes OK.
    :ivar dlink: the ``dlink_*`` var a clean end publishes (``"terminate"``
        or ``"pause"``).
    :ivar finished: :meth:`finish` ran.
    """

    #: :mod:`evsev2g.responses` protocol key.
    protocol: str = ""
    #: short protocol name for log lines.
    protocol_label: str = ""
    #: every request element of the schema.
    requests: frozenset = frozenset()
    #: requests that belong to shutting down.
    shutdown_path: frozenset = frozenset()
    #: the ``State`` enum of the subclass.
    State = None

    def __init__(self, context: ProtocolContext) -> None:
        """
        :param context: charger, clock, settings, session-id source, logger.
        """
        self.context = context
        self.charger = context.charger
        self.clock = context.clock
        self.settings = context.settings
        self.log = context.log
        self.state = self.State.HANDSHAKEN
        self.session_id: bytes | None = None
        self.last_request: str | None = None
        self.clean_stop = False
        self.dlink = "terminate"
        self.finished = False
        self.request: Message | None = None
        #: request name → handler, for every request with a ``_snake_case`` method
        self.handlers = {
            name: getattr(self, method)
            for name in self.requests
            if hasattr(self, method := "_" + _CAMEL.sub("_", name[:-3]).lower())
        }
        self.authorization_wait = OngoingWait(self.clock, AuthorizationTimeout, "authorization (auth_timeout_eim)")
        self._auth_requested = False
        self._setup_finished_published = False

    # -- what subclasses supply ---------------------------------------------

    def allowed(self) -> frozenset | set:
        """The requests allowed in the present state."""
        raise NotImplementedError

    def failed_body(self, response_name: str, code: str, request_body) -> Message:
        """
        The body of a FAILED answer.

        :param response_name: e.g. ``"CableCheckRes"``.
        :param code: the FAILED response code.
        :param request_body: the request's body.
        """
        raise NotImplementedError

    def end_energy_transfer(self) -> None:
        """Stop the energy transfer at once (see ``IProtocolStateMachine``)."""
        raise NotImplementedError

    # -- the one entry point ---------------------------------------------

    def handle(self, request: Message) -> Reply | Deferred:
        """
        Answer one request (checks in the order of the module docstring).

        :param request: a ``V2G_Message``.
        :returns: a :class:`Reply`, or a ``Deferred`` firing with one when the
            answer waits on the charger or a plugin; ``Reply.message`` is
            ``None`` when there is nothing to answer and the connection
            must close.
        """
        name = body_name(request)
        if name not in self.requests:
            self.log.warn(
                "{session}: {protocol} message {name!r} is not a request; closing",
                session=self.context.label,
                protocol=self.protocol_label,
                name=name,
            )
            return Reply(None, close=True, failed=True, name="")
        self.last_request = name
        self.request = request
        body = request.Body.get(name)
        response_name = name[:-3] + "Res"
        try:
            if name not in self.allowed():
                raise SequenceError(f"{name} not allowed {self.state.value}")
            if self.state is not self.State.HANDSHAKEN:
                received = request.Header.SessionID
                if received != self.session_id:
                    raise UnknownSession(f"SessionID {received.hex()} is not ours ({self.session_id.hex()})")
            if name not in self.shutdown_path:
                self.check_charger_go_ahead()
            handled = self.handlers[name](body)
        except ProtocolError as error:
            return self._failed(error, name, response_name, request, body)
        if isinstance(handled, Deferred):
            return handled.addCallbacks(
                self._reply, self._deferred_failed, (response_name,), {"request": request}, (name, response_name, request, body)
            )
        return self._reply(handled, response_name, request)

    def _reply(self, handled: Handled, response_name: str, request: Message) -> Reply:
        reply_body, close = handled
        return Reply(self.message(response_name, reply_body, request), close=close, name=response_name)

    def _deferred_failed(self, failure, name, response_name, request, body) -> Reply:
        # Anything but a ProtocolError is a bug: it reaches the session, which closes.
        failure.trap(ProtocolError)
        return self._failed(failure.value, name, response_name, request, body)

    def _failed(self, error: ProtocolError, name, response_name, request, body) -> Reply:
        code = response_code(error, self.protocol)
        close = closes_connection(error, self.settings.terminate_connection_on_failed_response)
        self.log.warn(
            "{session}: {request} answered {code}: {why}",
            session=self.context.label,
            request=name,
            code=code,
            why=str(error) or type(error).__name__,
        )
        reply_body = self.failed_body(response_name, code, body)
        if close:
            self.state = self.State.STOPPED
        elif self.state is not self.State.HANDSHAKEN:
            self.state = self.State.FAILED
        return Reply(self.message(response_name, reply_body, request), close=close, failed=True, name=response_name)

    def message(self, response_name: str, body: Message, request: Message) -> Message:
        """The response ``V2G_Message`` around ``body`` with our SessionID (the EV's before we have one)."""
        session_id = self.session_id
        if session_id is None:
            session_id = request.Header.SessionID
        return Message(
            "V2G_Message",
            Header=Message("Header", SessionID=session_id),
            Body=Message("Body", [(response_name, body)]),
        )

    def check_charger_go_ahead(self) -> None:
        """
        :raises EmergencyShutdown: ``send_error(Error_EmergencyShutdown)`` is active.
        :raises ChargerStopped: ``stop_charging(True)`` is older than its grace time.
        """
        charger = self.charger
        if charger.emergency:
            raise EmergencyShutdown("the charger reports an emergency shutdown")
        stop = charger.stop_requested_at
        if stop is not None and self.clock.seconds() - stop >= self.settings.timers.stop_charging_grace:
            raise ChargerStopped("the charger asked to stop and the EV did not end the session")

    # -- steps both protocols take alike --------------------------------------

    def publish_evcc_id(self, evcc_id: bytes | None) -> None:
        """``evcc_id`` as ``AA:BB:…`` when the EVCCID is a 6-byte MAC, else a log line."""
        evcc_id = evcc_id or b""
        if len(evcc_id) == 6:
            self.charger.publish("evcc_id", ":".join(f"{b:02X}" for b in evcc_id))
        else:
            self.log.info(
                "{session}: EVCCID {evccid} is not a 6-byte MAC; evcc_id not published",
                session=self.context.label,
                evccid=evcc_id.hex(),
            )

    def tolerate_profile(self, powers, pmax: float) -> None:
        """
        ChargingProfile entries above the offered PMax are logged, not
        refused (FAILED_ChargingProfileInvalid, [V2G2-478]): cars get
        schedules wrong, and EvseV2G does the same.

        :param powers: the entries' maximum power in W.
        :param pmax: the PMax offered in W.
        """
        for power in powers:
            if power > pmax:
                self.log.info(
                    "{session}: ChargingProfile entry {power} W exceeds PMax {pmax} W (tolerated)",
                    session=self.context.label,
                    power=power,
                    pmax=pmax,
                )
                return

    def publish_setup_finished(self) -> None:
        """``v2g_setup_finished``, once: the first PowerDelivery that starts the energy transfer."""
        if not self._setup_finished_published:
            self._setup_finished_published = True
            self.charger.publish("v2g_setup_finished")

    def eim_authorized(self) -> bool:
        """
        One poll of external identification: ``require_auth_eim`` on the
        first, then Ongoing until ``authorization_response``.

        :returns: ``True`` once Accepted (EVSEProcessing=Finished).
        :raises AuthorizationRejected: the answer was not Accepted.
        :raises AuthorizationTimeout: ``auth_timeout_eim`` (if not 0) passed
            since the payment selection (:attr:`authorization_wait` began).
        """
        if not self._auth_requested:
            self._auth_requested = True
            self.charger.publish("require_auth_eim")
        authorized = self.charger.authorized
        if authorized:
            return True
        if authorized is False:
            raise AuthorizationRejected(f"authorization {self.charger.authorization_status}")
        return self.authorization_wait.poll(False, self.settings.auth_timeout_eim)

    def charger_stopping(self) -> bool:
        """The charger asked to stop (``stop_charging(True)``) or is in emergency shutdown."""
        return self.charger.stop_requested_at is not None or self.charger.emergency

    # -- the end ---------------------------------------------------------------

    def finish(self, reason: str) -> None:
        """
        Publish the end-of-session vars once: whatever
        :meth:`end_energy_transfer` has not published yet,
        ``hlc_session_failed`` unless the session stopped cleanly or the
        charger stopped it, and ``dlink_terminate`` / ``dlink_pause`` (after
        SessionStop) or ``dlink_error``.

        :param reason: why the session ended, for the log.
        """
        if self.finished:
            return
        self.finished = True
        self.log.info(
            "{session}: {protocol} session ends ({reason}); last request {last}",
            session=self.context.label,
            protocol=self.protocol_label,
            reason=reason,
            last=self.last_request,
        )
        self.end_energy_transfer()
        publish_session_end(
            self.charger,
            last_request=self.last_request,
            clean_stop=self.clean_stop,
            dlink=self.dlink,
            charger_stopped=self.charger_stopping(),
        )
