"""
Fakes and builders for testing code that uses evsev2g, shipped with the
package so that users can reuse them.

Only pure-logic tests use these; everything that can run for real (sockets,
TLS, namespaces) is tested for real.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from evsev2g.charger import Charger
from evsev2g.exi.message import Message
from evsev2g.interfaces import ISessionLink
from evsev2g.protocols.physical import physical_value

__all__ = [
    "VarRecorder",
    "FakeSessionLink",
    "dc_charger",
    "din_request",
    "din_ev_status",
    "app_protocol_request",
    "DIN_DC_SESSION",
    "FakeCodec",
]


class VarRecorder:
    """
    Subscribes to a charger and records every var as ``(name, payload)``.

    :ivar events: the recorded pairs in order.
    """

    def __init__(self, charger) -> None:
        """:param charger: an ``ICharger`` to listen to."""
        self.events: list[tuple[str, Any]] = []
        charger.subscribe(self._record)

    def _record(self, name: str, payload: Any) -> None:
        self.events.append((name, payload))

    def names(self) -> list[str]:
        """The names of the recorded vars, in order."""
        return [name for name, _ in self.events]

    def payloads(self, name: str) -> list[Any]:
        """Every payload recorded for ``name``."""
        return [payload for each, payload in self.events if each == name]

    def clear(self) -> None:
        """Forget what was recorded."""
        self.events.clear()


@implementer(ISessionLink)
class FakeSessionLink:
    """
    An :class:`~evsev2g.interfaces.ISessionLink` that records what the session
    does with it.

    :ivar sent: ``(payload_type, payload)`` pairs in order.
    :ivar closed: ``close()`` was called.
    :ivar aborted: ``abort()`` was called.
    """

    def __init__(self, peer=("fe80::1%veth0", 50000), secure: bool = False) -> None:
        """
        :param peer: what ``peer`` reports.
        :param secure: what ``secure`` reports.
        """
        self.peer = peer
        self.secure = secure
        self.sent: list[tuple[int, bytes]] = []
        self.closed = False
        self.aborted = False
        self.session = None

    def send(self, payload: bytes, payload_type: int = 0x8001) -> None:
        """Record ``payload``."""
        if self.closed or self.aborted:
            raise RuntimeError("send() after close()/abort()")
        self.sent.append((payload_type, payload))

    def close(self) -> None:
        """Record the close and tell the session, as a transport would."""
        if not (self.closed or self.aborted):
            self.closed = True
            if self.session is not None:
                self.session.connection_lost("closed by the SECC")

    def abort(self) -> None:
        """Record the abort and tell the session."""
        if not (self.closed or self.aborted):
            self.aborted = True
            if self.session is not None:
                self.session.connection_lost("aborted by the SECC")


def dc_charger(clock, **overrides) -> Charger:
    """
    A :class:`~evsev2g.charger.Charger` set up the way EvseManager sets up a
    DC charger before a session (150–920 V, 0–250 A, 150 kW, DC_extended).

    :param clock: ``IReactorTime``.
    :param overrides: extra commands to run, ``name=arguments dict``.
    :returns: the charger.
    """
    charger = Charger(clock, name="test")
    charger.setup({"evse_id": "DE*TST*E1", "evse_id_din": "49*TST*1"}, "None", False)
    charger.session_setup(["ExternalPayment"], False, False)
    charger.set_powersupply_capabilities(
        {
            "bidirectional": False,
            "max_export_voltage_V": 920,
            "min_export_voltage_V": 150,
            "max_export_current_A": 250,
            "min_export_current_A": 0,
            "max_export_power_W": 150000,
            "current_regulation_tolerance_A": 5,
            "peak_current_ripple_A": 2,
        }
    )
    charger.update_energy_transfer_modes(["DC_extended"])
    for name, arguments in overrides.items():
        charger.command(name, **arguments)
    return charger


def din_ev_status(soc: int = 50, ready: bool = True, error: str = "NO_ERROR") -> Message:
    """A DC_EVStatus node."""
    return Message("DC_EVStatus", EVReady=ready, EVErrorCode=error, EVRESSSOC=soc)


def _pv(number: float, unit: str, name: str) -> Message:
    return physical_value(number, unit, name)


def din_request(name: str, session_id: bytes = b"\x00", **fields: Any) -> Message:
    """
    A DIN ``V2G_Message`` request with sensible defaults for ``name``'s
    mandatory fields; ``fields`` override or add body children.

    :param name: the request body name, e.g. ``"CableCheckReq"``.
    :param session_id: the header SessionID.
    :returns: the message.
    """
    defaults: dict[str, Any] = {
        "SessionSetupReq": {"EVCCID": bytes.fromhex("0a0b0c0d0e0f")},
        "ServiceDiscoveryReq": {},
        "ServicePaymentSelectionReq": {
            "SelectedPaymentOption": "ExternalPayment",
            "SelectedServiceList": Message("SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=1)]),
        },
        "ContractAuthenticationReq": {},
        "ChargeParameterDiscoveryReq": {
            "EVRequestedEnergyTransferType": "DC_extended",
            "DC_EVChargeParameter": Message(
                "DC_EVChargeParameter",
                DC_EVStatus=din_ev_status(),
                EVMaximumCurrentLimit=_pv(200, "A", "EVMaximumCurrentLimit"),
                EVMaximumPowerLimit=_pv(100000, "W", "EVMaximumPowerLimit"),
                EVMaximumVoltageLimit=_pv(450, "V", "EVMaximumVoltageLimit"),
                EVEnergyCapacity=_pv(60000, "Wh", "EVEnergyCapacity"),
                EVEnergyRequest=_pv(30000, "Wh", "EVEnergyRequest"),
                FullSOC=100,
                BulkSOC=80,
            ),
        },
        "CableCheckReq": {"DC_EVStatus": din_ev_status()},
        "PreChargeReq": {
            "DC_EVStatus": din_ev_status(),
            "EVTargetVoltage": _pv(400, "V", "EVTargetVoltage"),
            "EVTargetCurrent": _pv(2, "A", "EVTargetCurrent"),
        },
        "PowerDeliveryReq": {
            "ReadyToChargeState": True,
            "DC_EVPowerDeliveryParameter": Message(
                "DC_EVPowerDeliveryParameter", DC_EVStatus=din_ev_status(), ChargingComplete=False
            ),
        },
        "CurrentDemandReq": {
            "DC_EVStatus": din_ev_status(),
            "EVTargetCurrent": _pv(100, "A", "EVTargetCurrent"),
            "EVMaximumVoltageLimit": _pv(450, "V", "EVMaximumVoltageLimit"),
            "EVMaximumCurrentLimit": _pv(200, "A", "EVMaximumCurrentLimit"),
            "EVMaximumPowerLimit": _pv(100000, "W", "EVMaximumPowerLimit"),
            "BulkChargingComplete": False,
            "ChargingComplete": False,
            "RemainingTimeToFullSoC": _pv(1800, "s", "RemainingTimeToFullSoC"),
            "EVTargetVoltage": _pv(400, "V", "EVTargetVoltage"),
        },
        "WeldingDetectionReq": {"DC_EVStatus": din_ev_status()},
        "SessionStopReq": {},
        "ServiceDetailReq": {"ServiceID": 1},
        "ChargingStatusReq": {},
    }.get(name, {})
    body_fields = dict(defaults)
    body_fields.update(fields)
    return Message(
        "V2G_Message",
        Header=Message("Header", SessionID=session_id),
        Body=Message("Body", [(name, Message(name, **body_fields))]),
    )


#: The requests of a whole DIN DC session, in order (one of each loop).
DIN_DC_SESSION = (
    "SessionSetupReq",
    "ServiceDiscoveryReq",
    "ServicePaymentSelectionReq",
    "ContractAuthenticationReq",
    "ChargeParameterDiscoveryReq",
    "CableCheckReq",
    "PreChargeReq",
    "PowerDeliveryReq",
    "CurrentDemandReq",
    "PowerDeliveryReq:stop",
    "WeldingDetectionReq",
    "SessionStopReq",
)


def app_protocol_request(*entries: tuple[str, int, int, int, int]) -> Message:
    """
    A ``supportedAppProtocolReq``.

    :param entries: ``(namespace, major, minor, schema_id, priority)`` tuples.
    :returns: the message.
    """
    return Message(
        "supportedAppProtocolReq",
        AppProtocol=[
            Message(
                "AppProtocol",
                ProtocolNamespace=namespace,
                VersionNumberMajor=major,
                VersionNumberMinor=minor,
                SchemaID=schema_id,
                Priority=priority,
            )
            for namespace, major, minor, schema_id, priority in entries
        ],
    )


class FakeCodec:
    """
    Stands in for an EXI codec in unit tests of session logic: "encoding"
    a message gives a token it remembers, "decoding" a token gives the
    message back; anything else is undecodable.  The real codec is used
    wherever the test is about bytes.
    """

    def __init__(self) -> None:
        self._messages: dict[bytes, Message] = {}

    def encode(self, message: Message) -> bytes:
        """:returns: a token standing for ``message``."""
        token = b"fake-exi-%d" % len(self._messages)
        self._messages[token] = message
        return token

    def decode(self, data: bytes) -> Message:
        """
        :returns: the message ``data`` stands for.
        :raises ValueError: for bytes it never produced.
        """
        try:
            return self._messages[data]
        except KeyError:
            raise ValueError(f"undecodable: {data[:16].hex()}") from None

    def to_xml(self, message: Message) -> bytes:
        """:returns: a readable stand-in for the XML."""
        return f"<{message.name}/>".encode()
