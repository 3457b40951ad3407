"""
EVerest's MQTT wire format (protocol generations B and C), as plain
functions: topics, the ``{"msg_type", "data"}`` envelope, command results,
error objects.  No I/O here; :mod:`evsev2g.everest.module` uses it.

Generations (``../shared/everest/MQTT_PROTOCOL.md`` §0): B (releases
2025.12.0 … 2026.02.1) and C (``main`` since 2026-08) share topics and
envelopes and differ in the names of the config messages, and C adds
``{P}shutdown``.  There is no negotiation on the wire: the generation is a
setting (C by default).  Gen A (one topic per implementation, no envelope)
is not spoken.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "GENERATIONS",
    "Generation",
    "Topics",
    "envelope",
    "parse",
    "BadMessage",
    "result",
    "error_result",
    "error_object",
    "timestamp",
]


@dataclass(frozen=True)
class Generation:
    """
    One protocol generation.

    :ivar name: ``"B"`` or ``"C"``.
    :ivar config_request: msg_type of the config request.
    :ivar config_response: msg_type of the config response.
    :ivar has_shutdown: the manager may publish ``{P}shutdown``.
    """

    name: str
    config_request: str
    config_response: str
    has_shutdown: bool


#: The generations spoken, by name.
GENERATIONS = {
    "B": Generation("B", "GetConfig", "GetConfigResponse", False),
    "C": Generation("C", "ConfigurationRequest", "ConfigurationResponse", True),
}


class Topics:
    """
    The topics of one module.

    :param prefix: the EVerest prefix, with or without the trailing ``/``.
    :param module_id: our module id.
    """

    def __init__(self, prefix: str, module_id: str) -> None:
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.module_id = module_id

    def module(self, module_id: str | None = None) -> str:
        return f"{self.prefix}modules/{module_id or self.module_id}"

    @property
    def config_request(self) -> str:
        return f"{self.prefix}config/request"

    @property
    def config_response(self) -> str:
        return f"{self.module()}/response"

    @property
    def ready(self) -> str:
        return f"{self.module()}/ready"

    @property
    def global_ready(self) -> str:
        return f"{self.prefix}ready"

    @property
    def shutdown(self) -> str:
        return f"{self.prefix}shutdown"

    @property
    def metadata(self) -> str:
        return f"{self.module()}/metadata"

    def cmd(self, impl: str, name: str, module_id: str | None = None) -> str:
        """The topic a command of ``module_id`` (us by default) is called on."""
        return f"{self.module(module_id)}/impl/{impl}/cmd/{name}"

    def cmd_response(self, impl: str, name: str, caller: str, module_id: str | None = None) -> str:
        """The topic the callee answers ``caller`` on."""
        return f"{self.cmd(impl, name, module_id)}/response/{caller}"

    def var(self, impl: str, name: str, module_id: str | None = None) -> str:
        return f"{self.module(module_id)}/impl/{impl}/var/{name}"

    def error(self, impl: str, error_type: str) -> str:
        """``error_type`` is ``namespace/name``, e.g. ``generic/CommunicationFault``."""
        return f"{self.module()}/impl/{impl}/error/{error_type}"


class BadMessage(ValueError):
    """A payload that is not an EVerest message; the text says why."""


def envelope(msg_type: str, data: Any) -> bytes:
    """:returns: the UTF-8 JSON of ``{"msg_type": msg_type, "data": data}``."""
    return json.dumps({"msg_type": msg_type, "data": data}, separators=(",", ":")).encode("utf-8")


def parse(payload: bytes, expected: str | tuple[str, ...] | None = None) -> Any:
    """
    :param payload: an MQTT payload.
    :param expected: the msg_type(s) wanted, or ``None`` for any.
    :returns: the envelope's ``data``.
    :raises BadMessage: not UTF-8 JSON, not an envelope, or another msg_type.
    """
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BadMessage(f"not JSON: {error}") from None
    if not isinstance(message, dict) or "msg_type" not in message:
        raise BadMessage("not an EVerest envelope (no msg_type)")
    kind = message["msg_type"]
    if expected is not None:
        wanted = (expected,) if isinstance(expected, str) else expected
        if kind not in wanted:
            raise BadMessage(f"msg_type {kind!r}, expected {' or '.join(wanted)}")
    return message.get("data")


def result(call_id: str, origin: str, retval: Any) -> bytes:
    """A successful ``CmdResult``; ``origin`` is the callee (us)."""
    return envelope("CmdResult", {"type": "result", "data": {"id": call_id, "retval": retval, "origin": origin}})


def error_result(call_id: str, origin: str, kind: str, message: str) -> bytes:
    """
    A failed ``CmdResult``.

    :param kind: ``MessageParsingError``, ``SchemaValidationError`` or
        ``HandlerException`` (the framework's names).
    """
    return envelope(
        "CmdResult",
        {
            "type": "result",
            "data": {
                "id": call_id,
                "origin": origin,
                "error": {"__everest__error_type": kind, "__everest__error_msg": message},
            },
        },
    )


def timestamp(seconds: float) -> str:
    """RFC 3339 UTC with milliseconds, as the framework writes error timestamps."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def error_object(
    error_type: str,
    module_id: str,
    impl: str,
    message: str,
    description: str,
    seconds: float,
    state: str = "Active",
    error_uuid: str | None = None,
    severity: str = "Low",
) -> dict:
    """
    The error object raised or cleared (``MQTT_PROTOCOL.md`` §7.1).

    :param state: ``Active`` to raise, ``ClearedByModule`` to clear (same
        ``error_uuid`` as the raise).
    """
    return {
        "type": error_type,
        "sub_type": "",
        "message": message,
        "description": description,
        "severity": severity,
        "origin": {"module_id": module_id, "implementation_id": impl},
        "state": state,
        "timestamp": timestamp(seconds),
        "uuid": error_uuid or str(uuid.uuid4()),
        "vendor_id": "everest",
    }
