"""
Telemetry of the EVerest module (``MQTT_PROTOCOL.md`` §7.5), category
``V2G`` as EvseV2G publishes it, built from what the sessions publish.

It runs only when the manager enables it: ``telemetry_enabled`` in the
module config and a ``telemetry_config`` id (the run config's ``telemetry:
{id: N}``).  Blocks go to ``{telemetry_prefix}V2G/<N>/<block>`` (the prefix
from the manager's retained ``{P}settings``, ``everest-telemetry/`` by
default) as raw JSON with ``timestamp``, ``connector_id`` and ``type`` (Gen
C; Gen B wraps the JSON text in an ``ExternalMQTT`` envelope).  With
``publish_telemetry_only_on_change`` (the default) a block goes out only
when one of its values changed.

Blocks and fields (EvseV2G's names; what our sessions tell):

- ``transport``: ``tcp_connection_established``, ``tcp_security_enable``,
  ``tcp_port_number``, ``authorization_requested``,
  ``cable_check_requested``, ``pre_charge_requested``,
  ``current_demand_requested``;
- ``ev_electrical``: ``charge_progress``, ``battery_soc_percent``,
  ``error_code``, ``maximum_current_A``, ``maximum_power_W``,
  ``maximum_voltage_V``, ``target_current_A``, ``target_voltage_V``,
  ``energy_request_Wh``, ``energy_capacity_Wh``;
- ``payment_service``: ``external_payment_requested``,
  ``contract_payment_requested``, ``certificate_install_requested``,
  ``certificate_update_requested``.

Every block starts from its defaults at each session.  EvseV2G's
``charger_status`` block and its internal state numbers are not published.
"""

from __future__ import annotations

import json
from typing import Any

from evsev2g.everest import wire

__all__ = ["Telemetry", "DEFAULT_PREFIX"]

DEFAULT_PREFIX = "everest-telemetry/"


def _defaults(tcp_port: int, tls: bool) -> dict[str, dict[str, Any]]:
    return {
        "transport": {
            "tcp_connection_established": False, "tcp_security_enable": tls, "tcp_port_number": tcp_port,
            "authorization_requested": False, "cable_check_requested": False, "pre_charge_requested": False,
            "current_demand_requested": False,
        },
        "ev_electrical": {
            "charge_progress": "Start", "battery_soc_percent": 0, "error_code": "NO_ERROR",
            "maximum_current_A": 0.0, "maximum_power_W": 0.0, "maximum_voltage_V": 0.0,
            "target_current_A": 0.0, "target_voltage_V": 0.0, "energy_request_Wh": 0.0, "energy_capacity_Wh": 0.0,
        },
        "payment_service": {
            "external_payment_requested": False, "contract_payment_requested": False,
            "certificate_install_requested": False, "certificate_update_requested": False,
        },
    }


#: Var → (block, {field: key in the payload, or a constant via a callable}).
_FLAGS = {
    "require_auth_eim": ("transport", "authorization_requested"),
    "require_auth_pnc": ("transport", "authorization_requested"),
    "start_cable_check": ("transport", "cable_check_requested"),
    "start_pre_charge": ("transport", "pre_charge_requested"),
    "current_demand_started": ("transport", "current_demand_requested"),
}
_FIELDS = {
    "dc_ev_status": {"battery_soc_percent": "dc_ev_ress_soc", "error_code": "dc_ev_error_code"},
    "dc_ev_maximum_limits": {"maximum_current_A": "dc_ev_maximum_current_limit", "maximum_power_W": "dc_ev_maximum_power_limit",
                             "maximum_voltage_V": "dc_ev_maximum_voltage_limit"},
    "dc_ev_target_voltage_current": {"target_voltage_V": "dc_ev_target_voltage", "target_current_A": "dc_ev_target_current"},
}


class Telemetry:
    """
    :param mqtt: the :class:`~evsev2g.everest.mqtt.ReactorMQTT`.
    :param clock: ``IReactorTime`` for the timestamps.
    :param connector_id: the run config's telemetry id.
    :param prefix: the telemetry prefix.
    :param generation: ``"B"`` or ``"C"``.
    :param only_on_change: ``publish_telemetry_only_on_change``.
    :param tcp_port: the TCP port served (``transport.tcp_port_number``).
    :param tls: whether TLS is offered.
    """

    def __init__(self, mqtt, clock, connector_id: int, prefix: str, generation: str, only_on_change: bool,
                 tcp_port: int, tls: bool) -> None:
        self.mqtt, self.clock = mqtt, clock
        self.connector_id = connector_id
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.generation = generation
        self.only_on_change = only_on_change
        self._port, self._tls = tcp_port, tls
        self.blocks = _defaults(tcp_port, tls)
        self._sent: dict[str, dict] = {}

    def session_started(self) -> None:
        """A new session: every block from its defaults, the connection up."""
        self.blocks = _defaults(self._port, self._tls)
        self._sent = {}
        self._set("transport", {"tcp_connection_established": True})

    def session_ended(self) -> None:
        """The session's connection is gone."""
        self._set("transport", {"tcp_connection_established": False})

    def var(self, name: str, payload) -> None:
        """A var of the session: the blocks it touches are updated (and published)."""
        if name in _FLAGS:
            block, field = _FLAGS[name]
            self._set(block, {field: True})
        elif name in _FIELDS and isinstance(payload, dict):
            changes = {field: payload[key] for field, key in _FIELDS[name].items() if key in payload}
            self._set("ev_electrical", changes)
        elif name == "dc_ev_energy_capacity":
            self._set("ev_electrical", {"energy_capacity_Wh": payload})
        elif name == "dc_ev_energy_request":
            self._set("ev_electrical", {"energy_request_Wh": payload})
        elif name == "current_demand_finished":
            self._set("ev_electrical", {"charge_progress": "Stop"})
        elif name == "selected_payment_option":
            self._set("payment_service", {"external_payment_requested": payload == "ExternalPayment",
                                          "contract_payment_requested": payload == "Contract"})
        elif name == "iso15118_certificate_request" and isinstance(payload, dict):
            action = payload.get("certificate_action")
            self._set("payment_service", {"certificate_install_requested": action == "Install",
                                          "certificate_update_requested": action == "Update"})

    def _set(self, block: str, changes: dict) -> None:
        self.blocks[block].update(changes)
        values = self.blocks[block]
        if self.only_on_change and self._sent.get(block) == values:
            return
        self._sent[block] = dict(values)
        document = {"timestamp": wire.timestamp(self.clock.seconds()), "connector_id": self.connector_id, "type": block, **values}
        text = json.dumps(document, separators=(",", ":"))
        topic = f"{self.prefix}V2G/{self.connector_id}/{block}"
        if self.generation == "B":
            self.mqtt.publish(topic, wire.envelope("ExternalMQTT", text))
        else:
            self.mqtt.publish(topic, text.encode("utf-8"))
