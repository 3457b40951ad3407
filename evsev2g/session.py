"""
The V2G communication session: one per TCP/TLS connection.

Each payload goes: EXI bytes → codec (the app-handshake schema first, then
the negotiated protocol's) → the protocol's state machine → response
message → codec → the link.  The session owns:

- V2G_SECC_Sequence_Timeout: no request for that long after a response was
  sent (or after the connection opened) ends the session and closes the
  connection ([V2G2-443], [V2G2-537]); the timer is stopped while a reply
  is being worked out;
- the store of paused ISO 15118-2 sessions (one per process, in the
  factory) and the value-added-service registry, handed to each state
  machine in its :class:`~evsev2g.protocols.context.ProtocolContext`;
- the failed-response policy carried out by the state machines' replies
  (close after FAILED_SequenceError/UnknownSession, or after any FAILED with
  ``terminate_connection_on_failed_response``);
- undecodable EXI: the connection closes and the log says why;
- ``dlink_ready(False)`` from the charger: the connection is dropped at once;
- the message log: every message received and sent can be logged as XML
  (``log_v2g_messages``) and is emitted as the ``v2g_messages`` var to whoever
  subscribes to it;
- the charger seam of the session (:class:`evsev2g.charger.Charger`), handed
  to the backend when the session starts and when it ends.

There is no artificial response delay (EvseV2G waits until 98 ms have
passed): answers go out as soon as they are built.  Everything runs on the
reactor thread and nothing blocks, so a hanging connection never delays
another session or SDP.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from evsev2g.charger import Charger
from evsev2g.interfaces import ISession, ISessionFactory, ISessionLink, ISingleEVSEBackend
from evsev2g.memory import release_free_memory
from evsev2g.protocols.apphandshake import configured_versions, enabled_versions, load_protocol_versions, negotiate
from evsev2g.protocols.context import NoServices, ProtocolContext, ProtocolSettings, Reply, body_name, random_session_id
from evsev2g.protocols.paused import PausedSessions
from evsev2g.protocols.teardown import publish_session_end
from evsev2g.responses import ISO15118_2
from evsev2g.timers import Timers, performance_time
from evsev2g.v2gtp import PayloadType, build_frame

__all__ = ["SessionSettings", "V2GSession", "SessionFactory", "build_session_factory"]

#: Responses that put a session in its energy-transfer phase (DC: from
#: CableCheck, AC: from PowerDelivery): from then on its connection is never
#: dropped to make room for a new one (:attr:`V2GSession.charging`).
ENERGY_TRANSFER_RESPONSES = frozenset(
    {"CableCheckRes", "PreChargeRes", "PowerDeliveryRes", "CurrentDemandRes", "ChargingStatusRes", "WeldingDetectionRes"}
)

#: Names of the V2gMessageId enumeration that differ from the element names.
_MESSAGE_IDS = {"supportedAppProtocolReq": "SupportedAppProtocolReq", "supportedAppProtocolRes": "SupportedAppProtocolRes"}


@dataclass(frozen=True)
class SessionSettings:
    """
    What sessions are configured with.

    :ivar protocol: :class:`~evsev2g.protocols.context.ProtocolSettings`.
    :ivar protocol_flags: ``{"supported_DIN70121": bool, …}``.
    :ivar log_messages: log every message as XML.
    """

    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    protocol_flags: dict = field(default_factory=dict)
    log_messages: bool = False


@implementer(ISession)
class V2GSession:
    """
    One V2G communication session, driven by its connection.

    :ivar charger: the session's :class:`~evsev2g.charger.Charger`.
    :ivar protocol: the negotiated :class:`~evsev2g.interfaces.IProtocolVersion`, or ``None``.
    :ivar machine: its state machine once negotiated.
    :ivar ended: no more payloads are handled.
    """

    log = Logger()

    def __init__(self, factory: "SessionFactory", link: ISessionLink) -> None:
        """
        :param factory: the factory (codecs, plugins, settings, backend, clock).
        :param link: the connection.
        """
        self.factory = factory
        self.link = link
        self.clock = factory.clock
        host, port = link.peer
        self.label = f"[{host}]:{port}"
        self.charger = Charger(self.clock, name=self.label, evse=factory.evse_for_session())
        self.protocol = None
        self.machine = None
        self.codec = factory.handshake_codec
        self.ended = False
        self._gone = False
        self._finished = False
        self._end_reason: str | None = None
        self._last_request: str | None = None
        self._timer = None
        self._energy_phase = False
        factory.backend.session_started(self.charger)
        # EvseV2G publishes this once when ready; a session-scoped seam
        # publishes it at each session start: every protocol configuration
        # enables, whatever update_supported_app_protocols restricts later.
        self.charger.publish(
            "supported_app_protocols_secc", {"app_protocols": [v.name for v in factory.configured_versions()]}
        )
        self._stop_observing = self.charger.observe(self._charger_command)
        self._arm_sequence_timer()

    # -- ISession -------------------------------------------------------------

    @property
    def handshaken(self) -> bool:
        """Whether a protocol was agreed (the application handshake is done)."""
        return self.machine is not None

    @property
    def charging(self) -> bool:
        """Whether the session reached its energy-transfer phase and has not ended."""
        return self._energy_phase and not self.ended

    def payload_received(self, payload_type: int, payload: bytes) -> None:
        """
        Handle one V2GTP payload; never raises.

        :param payload_type: the V2GTP payload type.
        :param payload: the EXI bytes.
        """
        if self.ended:
            return
        if payload_type != PayloadType.EXI:
            # [V2G2-800]: other payload types (ISO 15118-20 streams) are not ours; ignored.
            self.log.info(
                "{session}: ignoring V2GTP payload type 0x{kind:04X} ({size} bytes)",
                session=self.label,
                kind=payload_type,
                size=len(payload),
            )
            return
        # [V2G2-443]: the sequence timer runs from a response sent to the
        # next request; while a reply is being worked out it is stopped.
        self._stop_sequence_timer()
        started = self.clock.seconds()
        try:
            # complete: a request lacking mandatory content (non-strict EXI
            # lets a stream end an element early) is undecodable here too
            request = self.codec.decode(payload, complete=True)
        except Exception as error:
            self.log.warn(
                "{session}: undecodable EXI ({error}); closing. Payload: {hex}",
                session=self.label,
                error=str(error) or type(error).__name__,
                hex=payload.hex(),
            )
            self._end("undecodable EXI", close=True)
            return
        self._record("received", request, payload)
        try:
            if self.machine is None:
                self._handshake(request)
            else:
                if body_name(request) == "SessionSetupReq":
                    # One session per EVSE: an older one still holding it ends first.
                    self.charger.take_evse(self._superseded)
                reply = self.machine.handle(request)
                if isinstance(reply, Deferred):
                    reply.addCallback(self._send_reply, started)
                    reply.addErrback(self._machine_failed)
                else:
                    self._send_reply(reply, started)
        except Exception:
            self.log.failure("{session}: internal error handling a request; closing", session=self.label)
            self._end("internal error", close=True)

    def connection_lost(self, reason: str) -> None:
        """
        The connection is gone: publish the end-of-session vars and hand the
        charger back to the backend.

        :param reason: why, for the log.
        """
        self._gone = True
        if self.ended:
            self._finish()
            return
        # The EV went away (unplugged, crashed, gave up) before the session
        # ended: worth a warning when debugging a car.
        self.log.warn(
            "{session}: the connection ended before the session did ({reason}); last request {last}",
            session=self.label,
            reason=reason,
            last=self._last_request if self.machine is None else self.machine.last_request,
        )
        self._end(f"connection lost: {reason}", close=False)

    # -- steps ------------------------------------------------------------------

    def _handshake(self, request) -> None:
        self._handshake_reply(request)
        if not self.ended:
            self._arm_sequence_timer()

    def _handshake_reply(self, request) -> None:
        name = request.name
        self._last_request = name
        if name != "supportedAppProtocolReq":
            self.log.warn("{session}: first message is {name}, not supportedAppProtocolReq; closing", session=self.label, name=name)
            self._end("no app handshake", close=True)
            return
        factory = self.factory
        versions = enabled_versions(
            factory.versions, factory.settings.protocol_flags, self.charger, secure=bool(getattr(self.link, "secure", False))
        )
        charger = self.charger
        refuse = charger.emergency or charger.stop_requested_at is not None
        outcome = negotiate(request, versions, refuse=refuse)
        if charger.wants("ev_app_protocol") and outcome.offered:
            charger.publish("ev_app_protocol", {"Protocols": outcome.offered})
        self._send(outcome.response, "supportedAppProtocolRes")
        if outcome.failed:
            self.log.warn(
                "{session}: no protocol agreed (EV offers {offered}; enabled: {enabled}); closing",
                session=self.label,
                offered=[entry["protocol_namespace"] for entry in outcome.offered],
                enabled=[version.name for version in versions],
            )
            if charger.wants("selected_protocol"):
                charger.publish("selected_protocol", "None")
            self._end("protocol negotiation failed", close=True)
            return
        protocol = outcome.protocol
        self.protocol = protocol
        self.codec = factory.codec_for(protocol)
        context = ProtocolContext(
            charger=charger,
            clock=self.clock,
            settings=factory.settings.protocol,
            new_session_id=factory.new_session_id,
            log=self.log,
            label=self.label,
            secure=bool(getattr(self.link, "secure", False)),
            services=factory.services,
            paused=factory.paused,
            security=factory.security,
        )
        self.machine = protocol.new_state_machine(context)
        self.log.info(
            "{session}: {protocol} agreed ({code})", session=self.label, protocol=protocol.name, code=outcome.response.ResponseCode
        )
        if charger.wants("selected_protocol"):
            charger.publish("selected_protocol", getattr(protocol, "selected_protocol", protocol.name))

    def _send_reply(self, reply: Reply, started: float) -> None:
        if self.ended:
            return
        if reply.message is not None:
            self._send(reply.message, reply.name)
            elapsed = self.clock.seconds() - started
            limit = performance_time(reply.name, self.protocol is not None and self.protocol.name == ISO15118_2)
            if elapsed > limit:
                self.log.warn(
                    "{session}: {name} took {ms:.1f} ms (performance time {limit_ms:g} ms)",
                    session=self.label,
                    name=reply.name,
                    ms=elapsed * 1000,
                    limit_ms=limit * 1000,
                )
        if reply.close:
            self._end("session over" if not reply.failed else "closed after a FAILED response", close=True)
        elif not self.ended:
            self._arm_sequence_timer()

    def _machine_failed(self, failure) -> None:
        self.log.failure("{session}: the state machine failed; closing", failure, session=self.label)
        self._end("internal error", close=True)

    def _send(self, message, name: str) -> None:
        try:
            data = self.codec_for_response(message).encode(message)
        except Exception:
            self.log.failure("{session}: cannot encode {name}; closing", session=self.label, name=name)
            self._end("encoding failed", close=True)
            return
        self._record("sent", message, data)
        if name in ENERGY_TRANSFER_RESPONSES:
            self._energy_phase = True
        if not self._gone:
            self.link.send(data, PayloadType.EXI)

    def codec_for_response(self, message):
        """The codec a response is encoded with (the handshake's for its response)."""
        if message.name == "supportedAppProtocolRes":
            return self.factory.handshake_codec
        return self.codec

    def _record(self, direction: str, message, data: bytes) -> None:
        """Log the message as XML and emit ``v2g_messages`` when anybody listens."""
        charger = self.charger
        wanted = charger.wants("v2g_messages")
        if not (wanted or self.factory.settings.log_messages):
            return
        name = message.name
        if name == "V2G_Message":
            name = body_name(message) or "UnknownMessage"
        codec = self.codec_for_response(message) if direction == "sent" else self.codec
        try:
            xml = codec.to_xml(message).decode("utf-8")
        except Exception as error:
            xml = f"<!-- cannot render XML: {error} -->"
        if self.factory.settings.log_messages:
            self.log.info("{session}: {direction} {name}: {xml}", session=self.label, direction=direction, name=name, xml=xml)
        if wanted:
            message_id = _MESSAGE_IDS.get(name, name)
            # EvseV2G's ``exi`` fields carry the whole V2GTP frame.
            framed = build_frame(PayloadType.EXI, data)
            try:
                charger.publish(
                    "v2g_messages",
                    {"id": message_id, "xml": xml, "exi": framed.hex(), "exi_base64": base64.b64encode(framed).decode("ascii")},
                )
            except ValueError:
                charger.publish("v2g_messages", {"id": "UnknownMessage", "xml": xml, "exi": framed.hex()})

    # -- timers and the end -------------------------------------------------------

    def _arm_sequence_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self.factory.settings.protocol.timers.sequence_timeout)
        else:
            self._timer = self.clock.callLater(self.factory.settings.protocol.timers.sequence_timeout, self._sequence_timeout)

    def _stop_sequence_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _sequence_timeout(self) -> None:
        self._timer = None
        self.log.warn(
            "{session}: no request for {seconds:g} s (V2G_SECC_Sequence_Timeout); closing",
            session=self.label,
            seconds=self.factory.settings.protocol.timers.sequence_timeout,
        )
        self._end("V2G_SECC_Sequence_Timeout", close=True)

    def _charger_command(self, name: str, arguments: dict) -> None:
        if name == "dlink_ready" and not arguments["value"] and not self.ended:
            self.log.info("{session}: dlink_ready(false): dropping the connection", session=self.label)
            self._end("data link down", close=False)
            if not self._gone:
                self.link.abort()

    def _superseded(self, reason: str) -> None:
        """A newer session took the EVSE: output off first, then close."""
        if not self.ended:
            self.log.warn("{session}: {reason}; ending this session", session=self.label, reason=reason)
            self._end(reason, close=True)

    def _end(self, reason: str, close: bool) -> None:
        """
        Stop handling payloads and close if asked.  Energy stops at once
        (contactors open); the rest of the end (``hlc_session_failed``, one of
        ``dlink_*``, the charger handed back to the backend) is published once
        the connection is gone, as EvseV2G's teardown does: SLAC tearing the
        link down at ``dlink_terminate`` must not cut the EV off while it
        closes TCP.
        """
        self.ended = True
        if self._end_reason is None:
            self._end_reason = reason
        self._stop_sequence_timer()
        if self.machine is not None:
            self.machine.end_energy_transfer()
        if self._gone:
            self._finish()
        elif close:
            self.link.close()

    def _finish(self) -> None:
        """Publish the end of the session once; the connection is gone."""
        if self._finished:
            return
        self._finished = True
        self._stop_observing()
        self.charger.release_evse()
        if self.machine is not None:
            self.machine.finish(self._end_reason)
        else:
            publish_session_end(self.charger, last_request=self._last_request, clean_stop=False)
        self.factory.session_ended(self)


@implementer(ISessionFactory)
class SessionFactory:
    """
    Makes a :class:`V2GSession` per connection and holds what they share:
    codecs, protocol plugins, settings, the charger backend, the clock.

    :ivar sessions: the live sessions.
    :ivar services: the value-added-service registry the state machines use.
    :ivar paused: the :class:`~evsev2g.protocols.paused.PausedSessions` of this process.
    """

    log = Logger()

    def __init__(
        self,
        clock,
        backend,
        handshake_codec,
        codec_loader: Callable[[str], object],
        versions,
        settings: SessionSettings | None = None,
        new_session_id: Callable[[], bytes] = random_session_id,
        services=None,
        security=None,
    ) -> None:
        """
        :param clock: ``IReactorTime``.
        :param backend: the :class:`~evsev2g.interfaces.IChargerBackend`.
        :param handshake_codec: the app-handshake codec.
        :param codec_loader: schema name → codec (called once per schema).
        :param versions: the protocol-version plugins.
        :param settings: :class:`SessionSettings`.
        :param new_session_id: SessionID source.
        :param services: the value-added-service registry (none by default).
        :param security: the :class:`~evsev2g.interfaces.ISecurity` provider
            the sessions use (Plug & Charge), or ``None``.
        """
        self.clock = clock
        self.backend = backend
        self.handshake_codec = handshake_codec
        self._codec_loader = codec_loader
        self._codecs: dict[str, object] = {}
        self.versions = list(versions)
        self.settings = settings or SessionSettings()
        self.new_session_id = new_session_id
        self.services = services if services is not None else NoServices()
        self.security = security
        #: paused ISO 15118-2 sessions of this process, by SessionID
        self.paused = PausedSessions()
        self.sessions: set[V2GSession] = set()
        self.finished = 0
        self._finish_waiters: list[tuple[int, Deferred]] = []

    def codec_for(self, protocol):
        """The codec of ``protocol``'s schema, loaded once."""
        codec = self._codecs.get(protocol.schema)
        if codec is None:
            codec = self._codecs[protocol.schema] = self._codec_loader(protocol.schema)
        return codec

    def configured_versions(self) -> list:
        """
        :returns: the protocol plugins the configuration enables
            (``supported_DIN70121`` …), whatever a charger restricts later.
        """
        return configured_versions(self.versions, self.settings.protocol_flags)

    def tls_protocols(self) -> list[str]:
        """
        :returns: the names of the enabled protocols that may run over TLS;
            empty while only DIN SPEC 70121 is served, which never does
            ([V2G-DC-618]), so SDP has no reason to announce TLS.
        """
        return [v.name for v in self.configured_versions() if v.allows_tls]

    def preload(self) -> None:
        """Load every plugin's codec now rather than at the first session."""
        for version in self.versions:
            self.codec_for(version)

    def new_session(self, link: ISessionLink) -> V2GSession:
        """:returns: the session of a new connection."""
        session = V2GSession(self, link)
        self.sessions.add(session)
        return session

    def session_ended(self, session: V2GSession) -> None:
        """A session published its end: hand its charger back to the backend."""
        self.sessions.discard(session)
        self.finished += 1
        try:
            self.backend.session_ended(session.charger)
        except Exception:
            self.log.failure("the charger backend failed at the end of {session}", session=session.label)
        ready = [d for count, d in self._finish_waiters if self.finished >= count]
        self._finish_waiters = [(count, d) for count, d in self._finish_waiters if self.finished < count]
        for waiter in ready:
            waiter.callback(self.finished)

    def when_finished(self, count: int) -> Deferred:
        """
        :param count: a number of sessions.
        :returns: a ``Deferred`` firing with :attr:`finished` once at least
            ``count`` sessions have ended completely (connection closed, end
            vars published, charger handed back to the backend).
        """
        if self.finished >= count:
            return succeed(self.finished)
        waiter: Deferred = Deferred()
        self._finish_waiters.append((count, waiter))
        return waiter

    def evse_for_session(self):
        """
        :returns: the EVSE a new session runs on: the backend's one EVSE
            (:class:`~evsev2g.interfaces.ISingleEVSEBackend`), else ``None``
            (an EVSE of the session's own).
        """
        if ISingleEVSEBackend.providedBy(self.backend):
            return self.backend.evse
        return None

    def link_ready(self) -> bool:
        """Whether SDP may answer: the backend's data link is up."""
        return bool(self.backend.link_ready)


def settings_from_config(config) -> SessionSettings:
    """
    :param config: the :class:`evsev2g.config.Config`.
    :returns: the :class:`SessionSettings` it asks for.
    """
    t = config.timers
    timers = Timers(
        sequence_timeout=t.sequence_timeout_ms / 1000.0,
        ongoing=t.ongoing_ms / 1000.0,
        cable_check=t.cable_check_ms / 1000.0,
        pre_charge=t.pre_charge_ms / 1000.0,
        stop_charging_grace=t.stop_charging_grace_ms / 1000.0,
    )
    protocol = ProtocolSettings(
        terminate_connection_on_failed_response=config.terminate_connection_on_failed_response,
        auth_timeout_eim=float(config.auth_timeout_eim),
        auth_timeout_pnc=float(config.auth_timeout_pnc),
        verify_contract_cert_chain=config.verify_contract_cert_chain,
        timers=timers,
    )
    flags = {"supported_DIN70121": config.supported_DIN70121, "supported_ISO15118_2": config.supported_ISO15118_2}
    return SessionSettings(protocol=protocol, protocol_flags=flags, log_messages=config.log_v2g_messages)


_log = Logger()


def build_session_factory(config, reactor, load_codec=None, backend=None, security=None, services=None) -> SessionFactory:
    """
    The one place ``makeService`` gets sessions from.

    :param config: the service configuration.
    :param reactor: the reactor (clock) the sessions use.
    :param load_codec: schema name → codec; :func:`evsev2g.exi.load_codec`
        when ``None``.
    :param backend: the :class:`~evsev2g.interfaces.IChargerBackend`; when
        ``None``, the backend plugin ``config.backend`` names makes one
        (:func:`evsev2g.backends.make_runtime`).  The tap passes the one it
        chose, with its security provider and service.
    :param security: the :class:`~evsev2g.interfaces.ISecurity` the sessions
        (Plug & Charge) and the TLS server use: the backend's own, or by
        default the files under ``certs_dir``.
    :param services: the value-added-service registry; by default one with
        the local providers found (:func:`evsev2g.vas.load_value_added_services`).
    :returns: a :class:`SessionFactory` with the backend, the protocol
        plugins found, and their codecs loaded.
    """
    versions = load_protocol_versions()
    if load_codec is None:
        from evsev2g.exi import codec as exi_codec

        load_codec = exi_codec.load_codec
        # Missing codec cache entries are built in child processes, in parallel: the
        # building (lxml, the compiler) peaks there, never in this long-running process.
        wanted = ["appHandshake", *(version.schema for version in versions)]
        for name, problem in exi_codec.prepare(wanted).items():
            _log.warn("EXI codec {name}: {problem}; it is built in this process", name=name, problem=problem)

    if backend is None:
        from evsev2g.backends import make_runtime

        runtime = make_runtime(config, reactor)
        backend = runtime.backend
        security = security if security is not None else runtime.security
    if security is None:
        from evsev2g.security.files import FileSecurity

        security = FileSecurity(config.certs_dir)
    if services is None:
        from evsev2g.vas import ServiceRegistry, load_value_added_services

        services = ServiceRegistry(load_value_added_services(), clock=reactor)
    factory = SessionFactory(
        reactor,
        backend,
        load_codec("appHandshake"),
        load_codec,
        versions,
        settings_from_config(config),
        services=services,
        security=security,
    )
    factory.preload()
    release_freed_memory()
    return factory


def release_freed_memory() -> None:
    """
    Settle memory once the codecs are loaded: collect, and move what exists
    now (grammars, generated code) out of the garbage collector's
    generations so that later collections during sessions stay short
    (``gc.freeze``; it frees nothing and hides nothing).  A codec built in
    this process (the codec cache off or its child build failed) leaves
    tens of MB of freed memory that glibc would keep: ``malloc_trim`` gives
    that back, once, at start (any later growth still shows); it is skipped
    where the C library has none (:func:`evsev2g.memory.release_free_memory`).
    """
    import gc

    gc.collect()
    gc.freeze()
    release_free_memory()
