"""
An EVerest module on MQTT, native to Twisted: start-up handshake, provided
commands, vars, errors, calls to required modules.

The life of a module (``../shared/everest/MQTT_PROTOCOL.md`` §4, §9.1):

1. connect to the broker; read the manager's retained ``{P}module_names``
   when there is one (its msg_type tells the manager's protocol generation,
   which wins over the configured one); subscribe
   ``{P}modules/<id>/response`` and ask ``{P}config/request`` for the
   module config (5 s, asked twice, as the framework does); give up with
   :class:`ModuleError` otherwise;
2. subscribe every provided command, the required modules' vars and
   ``{P}ready`` (and, Gen C, ``{P}shutdown``); publish ``ModuleReady``;
3. on ``GlobalReady`` (once) the work starts: vars published before it are
   held back and go out then, since nobody could have subscribed yet.

Every command gets exactly one result: its return value, or a
``MessageParsingError`` / ``SchemaValidationError`` / ``HandlerException``
error naming what was wrong.  A payload that is not even JSON, or has no id
or origin to answer to, is logged and dropped (there is nobody to answer).
After a reconnection the active errors are raised again and the
``reconnected`` hooks run, so that EvseManager sees the state it needs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from evsev2g.everest import wire
from evsev2g.everest.mqtt import BrokerAddress, ReactorMQTT
from evsev2g.timers import cancel_call

__all__ = ["ModuleSettings", "EverestModule", "ModuleError", "CommandFailed", "SchemaError"]

#: How long a config request waits for its answer (s), and how often it is asked.
CONFIG_TIMEOUT, CONFIG_ATTEMPTS = 5.0, 2

#: The framework's caller-side command timeout (s).
CALL_TIMEOUT = 300.0

#: How long to wait after connecting for the manager's retained
#: ``{P}module_names``, whose msg_type tells its protocol generation (s).
DETECT_WAIT = 0.5


class ModuleError(Exception):
    """The module cannot run (no config from the manager …)."""


class CommandFailed(Exception):
    """
    A command we called answered with an error (or none in time).

    :ivar kind: the framework's error type (``HandlerException``, ``CmdTimeout`` …).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class SchemaError(ValueError):
    """A provided command's arguments do not match the interface."""


@dataclass(frozen=True)
class ModuleSettings:
    """
    Where the module is and who it is.

    :ivar module_id: our module id (``EV_MODULE``).
    :ivar prefix: the EVerest prefix (``EV_MQTT_EVEREST_PREFIX``).
    :ivar broker: the broker address.
    :ivar generation: ``"C"`` (default) or ``"B"``.
    :ivar module_name: our module (directory) name, for the metadata.
    """

    module_id: str
    prefix: str = "everest/"
    broker: BrokerAddress = BrokerAddress()
    generation: str = "C"
    module_name: str = "PyEvseV2G"


Handler = Callable[[str, dict], Any]


class EverestModule:
    """
    One EVerest module instance over one MQTT connection.

    :ivar mqtt: the :class:`~evsev2g.everest.mqtt.ReactorMQTT` (an ``IService``).
    :ivar module_config: the manager's ``module_config`` once received.
    :ivar global_ready: ``GlobalReady`` arrived.
    """

    log = Logger()

    def __init__(self, reactor, settings: ModuleSettings, mqtt: ReactorMQTT | None = None) -> None:
        self.reactor = reactor
        self.settings = settings
        self.generation = wire.GENERATIONS[settings.generation]
        self.topics = wire.Topics(settings.prefix, settings.module_id)
        self.mqtt = mqtt if mqtt is not None else ReactorMQTT(reactor, settings.broker)
        self.module_config: dict | None = None
        #: the run config's telemetry id, when it has one
        self.telemetry_id: int | None = None
        #: the manager's telemetry prefix (``{P}settings``)
        self.telemetry_prefix = "everest-telemetry/"
        self.global_ready = False
        self._ready_waiters: list[Deferred] = []
        self._held: list[tuple[str, bytes]] = []
        self._errors: dict[tuple[str, str], dict] = {}
        self._calls: dict[str, tuple[Deferred, Any]] = {}
        self._response_topics: set[str] = set()
        self._reconnected: list[Callable[[], None]] = []
        self._shutdown: list[Callable[[], None]] = []
        self._connected_once: Deferred = Deferred()
        self.mqtt.when_connected(self._connected)

    # -- connection -------------------------------------------------------------

    def _connected(self, first: bool) -> None:
        if first:
            if not self._connected_once.called:
                self._connected_once.callback(None)
            return
        self.republish_errors()
        for hook in list(self._reconnected):
            try:
                hook()
            except Exception:
                self.log.failure("reconnection hook failed")

    def on_reconnected(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` after every reconnection to the broker."""
        self._reconnected.append(hook)

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` when the manager publishes ``{P}shutdown`` (Gen C)."""
        self._shutdown.append(hook)

    # -- 1. config ---------------------------------------------------------------

    def request_config(self) -> Deferred:
        """
        Ask the manager for our module config.

        :returns: a ``Deferred`` firing with the ``module_config`` dict, or
            failing with :class:`ModuleError` after two unanswered 5 s waits
            or an error answer.
        """
        done: Deferred = Deferred()
        state = {"attempt": 0, "timer": None, "wait": None}

        def answered(topic, payload):
            if done.called:
                return
            try:
                data = wire.parse(payload, self.generation.config_response)
                if not isinstance(data, dict):
                    raise wire.BadMessage("config response data is not an object")
                if data.get("status", "Ok") != "Ok":
                    raise ModuleError(f"the manager refused our config request: {data.get('status')} {data.get('status_info', '')}".strip())
                response = data.get("response") or {}
                config = (response.get("data") or {}).get("module_config")
                if not isinstance(config, dict):
                    raise wire.BadMessage("config response without module_config")
            except wire.BadMessage as error:
                self.log.warn("ignoring a bad config response on {topic}: {problem}", topic=topic, problem=str(error))
                return
            except ModuleError as error:
                cancel_call(state["timer"])
                done.errback(Failure(error))
                return
            cancel_call(state["timer"])
            self.module_config = config
            telemetry = (response.get("data") or {}).get("telemetry_config")
            if isinstance(telemetry, dict) and isinstance(telemetry.get("id"), int):
                self.telemetry_id = telemetry["id"]
            done.callback(config)

        def ask(_=None):
            cancel_call(state["wait"])
            state["wait"] = None
            if done.called:
                return
            if state["attempt"] >= CONFIG_ATTEMPTS:
                done.errback(Failure(ModuleError(f"no config from the manager after {CONFIG_ATTEMPTS} requests of {CONFIG_TIMEOUT:g} s")))
                return
            state["attempt"] += 1
            request = {"type": "Get", "origin": self.settings.module_id, "request": {"type": "Module"}}
            self.mqtt.publish(self.topics.config_request, wire.envelope(self.generation.config_request, request))
            state["timer"] = self.reactor.callLater(CONFIG_TIMEOUT, ask)

        def names(topic, payload):
            self._module_names(payload)
            if state["wait"] is not None:
                ask()

        def connected(_):
            state["wait"] = self.reactor.callLater(DETECT_WAIT, ask)

        self.mqtt.subscribe(self.topics.config_response, answered)
        self.mqtt.subscribe(self.topics.prefix + "settings", self._settings)
        self.mqtt.subscribe(self.topics.prefix + "module_names", names)
        self._connected_once.addCallback(connected)
        return done

    def _module_names(self, payload) -> None:
        """
        The manager's retained ``{P}module_names``: its msg_type tells the
        manager's generation (``MQTT_PROTOCOL.md`` §0).  When it is not the
        configured one, the manager's wins (a request in the other
        generation's names would make it exit).
        """
        if not payload:
            return
        try:
            kind = json.loads(payload.decode("utf-8")).get("msg_type")
        except (UnicodeDecodeError, ValueError, AttributeError):
            return
        for generation in wire.GENERATIONS.values():
            if kind == generation.config_response and generation is not self.generation:
                self.log.warn(
                    "the manager speaks EVerest MQTT generation {found} ({kind}), not the configured {configured}: using generation {found}",
                    found=generation.name, kind=kind, configured=self.generation.name,
                )
                self.generation = generation

    def _settings(self, topic, payload) -> None:
        """The manager's retained ``{P}settings``: the telemetry prefix."""
        if not payload:
            return  # cleared after start-up
        try:
            data = wire.parse(payload, tuple(g.config_response for g in wire.GENERATIONS.values()))
        except wire.BadMessage as error:
            self.log.warn("ignoring {topic}: {problem}", topic=topic, problem=str(error))
            return
        if isinstance(data, dict) and isinstance(data.get("telemetry_prefix"), str) and data["telemetry_prefix"]:
            self.telemetry_prefix = data["telemetry_prefix"]

    def connections(self, requirement: str) -> list[tuple[str, str]]:
        """
        :param requirement: a requirement id of our manifest (``security``).
        :returns: ``(module_id, implementation_id)`` of each module fulfilling it.
        """
        found = []
        for entry in ((self.module_config or {}).get("connections") or {}).get(requirement) or []:
            if isinstance(entry, dict) and entry.get("module_id") and entry.get("implementation_id"):
                found.append((entry["module_id"], entry["implementation_id"]))
        return found

    def config_values(self) -> dict[str, Any]:
        """:returns: the ``!module`` configuration parameters as ``{name: value}``."""
        params = ((self.module_config or {}).get("configuration_parameters") or {}).get("!module") or []
        return {p["name"]: p.get("value") for p in params if isinstance(p, dict) and "name" in p}

    # -- 2. provided commands, required vars, ready ------------------------------------

    def provide(self, impl: str, handler: Handler, commands) -> None:
        """
        Answer the commands of our implementation ``impl``.

        :param handler: ``handler(name, args)`` returns the result (or a
            Deferred); raising :class:`SchemaError` (or ``ValueError``)
            answers ``SchemaValidationError``, anything else
            ``HandlerException``.
        :param commands: the command names of the interface; others are
            answered with an error.
        """
        known = frozenset(commands)
        self.mqtt.subscribe(self.topics.cmd(impl, "+"), lambda topic, payload: self._command(impl, known, handler, topic, payload))

    def _command(self, impl, known, handler, topic: str, payload: bytes) -> None:
        name = topic.rsplit("/", 1)[-1]
        try:
            data = wire.parse(payload, "Cmd")
        except wire.BadMessage as error:
            self.log.warn("command {impl}.{name}: dropped, {problem} (no id to answer to)", impl=impl, name=name, problem=str(error))
            return
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("origin"), str) or not data["origin"]:
            self.log.warn("command {impl}.{name}: dropped, no id or origin to answer to: {data!r}", impl=impl, name=name, data=data)
            return
        call_id, origin = data["id"], data["origin"]
        reply_topic = self.topics.cmd_response(impl, name, origin)
        me = self.settings.module_id

        def fail(kind: str, message: str) -> None:
            self.log.warn("command {impl}.{name} from {origin}: {kind}: {message}", impl=impl, name=name, origin=origin, kind=kind, message=message)
            self.mqtt.publish(reply_topic, wire.error_result(call_id, me, kind, message))

        args = data.get("args", {})
        if args is None:
            args = {}
        if name not in known:
            fail("HandlerException", f"{impl} has no command {name!r}")
            return
        if not isinstance(args, dict):
            fail("MessageParsingError", f"args must be an object, not {type(args).__name__}")
            return

        def answered(value):
            self.mqtt.publish(reply_topic, wire.result(call_id, me, value))

        def failed(failure: Failure):
            if failure.check(SchemaError, ValueError):
                fail("SchemaValidationError", failure.getErrorMessage())
            else:
                self.log.failure("command {impl}.{name} failed", failure, impl=impl, name=name)
                fail("HandlerException", failure.getErrorMessage() or failure.type.__name__)

        maybeDeferred(handler, name, args).addCallbacks(answered, failed)

    def subscribe_var(self, module_id: str, impl: str, name: str, callback: Callable[[Any], None]) -> None:
        """Receive the var ``name`` of another module's implementation as ``callback(value)``."""

        def received(topic, payload):
            try:
                data = wire.parse(payload, "Var")
                if not isinstance(data, dict) or "data" not in data:
                    raise wire.BadMessage("var data without 'data'")
            except wire.BadMessage as error:
                self.log.warn("var {module}.{impl}.{name} ignored: {problem}", module=module_id, impl=impl, name=name, problem=str(error))
                return
            callback(data["data"])

        self.mqtt.subscribe(self.topics.var(impl, name, module_id), received)

    def signal_ready(self) -> Deferred:
        """
        Publish ``ModuleReady`` (after the subscriptions made so far).

        :returns: a ``Deferred`` firing at ``GlobalReady``.
        """
        self.mqtt.subscribe(self.topics.global_ready, self._global_ready)
        if self.generation.has_shutdown:
            self.mqtt.subscribe(self.topics.shutdown, self._shutdown_requested)
            self.mqtt.subscribe(f"{self.topics.module()}/config/set_request", self._set_request)
        self.mqtt.publish(self.topics.ready, wire.envelope("ModuleReady", True))
        return self.when_global_ready()

    def when_global_ready(self) -> Deferred:
        """:returns: a ``Deferred`` firing at (or since) ``GlobalReady``."""
        waiter: Deferred = Deferred()
        if self.global_ready:
            waiter.callback(None)
        else:
            self._ready_waiters.append(waiter)
        return waiter

    def _global_ready(self, topic, payload) -> None:
        try:
            data = wire.parse(payload, "GlobalReady")
        except wire.BadMessage as error:
            self.log.warn("ignoring {topic}: {problem}", topic=topic, problem=str(error))
            return
        if data is not True or self.global_ready:
            return
        self.global_ready = True
        self.log.info("EVerest: global ready")
        held, self._held = self._held, []
        for var_topic, payload in held:
            self.mqtt.publish(var_topic, payload)
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _set_request(self, topic, payload) -> None:
        """
        Gen C runtime config change (§7.4): every parameter of ours is
        ReadOnly, so each request is answered ``Rejected``.
        """
        try:
            data = wire.parse(payload, "ConfigurationRequest")
        except wire.BadMessage as error:
            self.log.warn("ignoring {topic}: {problem}", topic=topic, problem=str(error))
            return
        self.log.info("runtime config change refused (our parameters are ReadOnly): {request!r}", request=data)
        response = {"status": "Ok", "status_info": "", "type": "Set", "response": {"status": "Rejected"}}
        self.mqtt.publish(f"{self.topics.module()}/config/set_response", wire.envelope("ConfigurationResponse", response))

    def _shutdown_requested(self, topic, payload) -> None:
        self.log.info("EVerest: the manager asks us to shut down")
        for hook in list(self._shutdown):
            hook()

    # -- 3. vars, errors, calls ----------------------------------------------------------

    def _publish(self, topic: str, payload: bytes) -> None:
        """Publish now, or after ``GlobalReady`` when nobody can have subscribed yet (order kept)."""
        if self.global_ready:
            self.mqtt.publish(topic, payload)
        else:
            self._held.append((topic, payload))

    def publish_var(self, impl: str, name: str, value: Any) -> None:
        """Publish a var; held back until ``GlobalReady``."""
        self._publish(self.topics.var(impl, name), wire.envelope("Var", {"data": value}))

    def republish_errors(self) -> None:
        """Raise the active errors again (a subscriber that came late sees them)."""
        if self.global_ready:
            for key, error in self._errors.items():
                self.mqtt.publish(self.topics.error(*key), wire.envelope("RaiseError", error))

    def raise_error(self, impl: str, error_type: str, message: str, description: str = "") -> None:
        """Raise ``error_type`` (``namespace/name``) once; raising it again only updates nothing."""
        key = (impl, error_type)
        if key in self._errors:
            return
        error = wire.error_object(error_type, self.settings.module_id, impl, message, description, self.reactor.seconds())
        self._errors[key] = error
        self.log.warn("EVerest error raised: {type}: {message}", type=error_type, message=message)
        self._publish(self.topics.error(impl, error_type), wire.envelope("RaiseError", error))

    def clear_error(self, impl: str, error_type: str) -> None:
        """Clear ``error_type`` if it is active."""
        error = self._errors.pop((impl, error_type), None)
        if error is None:
            return
        cleared = dict(error, state="ClearedByModule", timestamp=wire.timestamp(self.reactor.seconds()))
        self.log.info("EVerest error cleared: {type}", type=error_type)
        self._publish(self.topics.error(impl, error_type), wire.envelope("ClearError", cleared))

    def active_errors(self) -> list[str]:
        """:returns: the types of the errors raised and not cleared."""
        return [error_type for _, error_type in self._errors]

    def call(self, module_id: str, impl: str, name: str, args: dict, timeout: float = CALL_TIMEOUT) -> Deferred:
        """
        Call a command of another module.

        :returns: a ``Deferred`` firing with ``retval``, or failing with
            :class:`CommandFailed` (an error answer, or none in ``timeout``).
        """
        me = self.settings.module_id
        response = self.topics.cmd_response(impl, name, me, module_id)
        if response not in self._response_topics:
            self._response_topics.add(response)
            self.mqtt.subscribe(response, self._call_answered)
        call_id = str(uuid.uuid4())
        done: Deferred = Deferred()

        def expired():
            self._calls.pop(call_id, None)
            done.errback(Failure(CommandFailed("CmdTimeout", f"{module_id}.{impl}.{name} did not answer in {timeout:g} s")))

        self._calls[call_id] = (done, self.reactor.callLater(timeout, expired))
        self.mqtt.publish(self.topics.cmd(impl, name, module_id), wire.envelope("Cmd", {"id": call_id, "args": args, "origin": me}))
        return done

    def _call_answered(self, topic, payload) -> None:
        try:
            data = wire.parse(payload, "CmdResult")
            inner = data["data"]
            call_id = inner["id"]
        except (wire.BadMessage, KeyError, TypeError) as error:
            self.log.warn("ignoring a bad command result on {topic}: {problem}", topic=topic, problem=str(error))
            return
        pending = self._calls.pop(call_id, None)
        if pending is None:
            return
        done, timer = pending
        cancel_call(timer)
        error = inner.get("error")
        if error is not None:
            kind = error.get("__everest__error_type", "HandlerException") if isinstance(error, dict) else "HandlerException"
            message = error.get("__everest__error_msg", "") if isinstance(error, dict) else str(error)
            done.errback(Failure(CommandFailed(kind, message)))
        else:
            done.callback(inner.get("retval"))
