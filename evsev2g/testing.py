"""
Fakes for testing code that uses evsev2g, shipped so users can reuse them.

* :class:`RecordingSession` / :class:`RecordingSessionFactory`: sessions that
  record what the transport hands them and can answer through a callback.
* :class:`FakeSessionLink`: a connection as a session sees it, recording
  what the session sends and whether it closed or aborted.
* :class:`FakeSecurity`: a security provider with fixed credentials, or
  none.
* :func:`if_inet6_line`: one line of ``/proc/net/if_inet6``, to feed
  :func:`evsev2g.netif.parse_if_inet6` a made-up host.
* :class:`VarRecorder`: records the vars a charger seam publishes.
* :func:`dc_charger`: a charger seam set up like EvseManager's DC charger.
* :func:`din_request`, :func:`din_ev_status`, :func:`app_protocol_request`:
  DIN 70121 and app-handshake requests with sensible defaults.
* :class:`FakeCodec`: stands in for an EXI codec in session-logic tests.

Each fake declares its interface; the tests check it with ``verifyObject``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from typing import Any

from zope.interface import implementer

from evsev2g.charger import Charger
from evsev2g.errors import CertificatesUnavailable
from evsev2g.exi.message import Message
from evsev2g.interfaces import ISecurity, ISession, ISessionFactory, ISessionLink
from evsev2g.protocols.physical import physical_value
from evsev2g.security.credentials import TLSCredentials


@implementer(ISession)
class RecordingSession:
    """
    Records payloads and the end of its connection.

    :param link: the connection.
    :param respond: called as ``respond(session, payload_type, payload)``
        for each payload, or ``None``; use ``session.link`` to answer.
    """

    def __init__(self, link: ISessionLink, respond: Callable | None = None):
        self.link = link
        self.respond = respond
        self.payloads: list[tuple[int, bytes]] = []
        self.lost: list[str] = []
        #: what the transport's admission rule sees; tests set them
        self.handshaken = False
        self.charging = False

    def payload_received(self, payload_type: int, payload: bytes) -> None:
        """Record the payload, then call :attr:`respond`."""
        self.payloads.append((payload_type, payload))
        if self.respond is not None:
            self.respond(self, payload_type, payload)

    def connection_lost(self, reason: str) -> None:
        """Record the reason."""
        self.lost.append(reason)


@implementer(ISessionFactory)
class RecordingSessionFactory:
    """
    Makes :class:`RecordingSession` objects and keeps them in
    :attr:`sessions`, oldest first.

    :param respond: passed to every session.
    """

    def __init__(self, respond: Callable | None = None):
        self.respond = respond
        self.sessions: list[RecordingSession] = []

    def new_session(self, link: ISessionLink) -> RecordingSession:
        """:returns: a new recording session for ``link``."""
        session = RecordingSession(link, self.respond)
        self.sessions.append(session)
        return session


@implementer(ISessionLink)
class FakeSessionLink:
    """
    An :class:`~evsev2g.interfaces.ISessionLink` that records what the session
    does with it.

    :ivar sent: ``(payload_type, payload)`` pairs in order.
    :ivar closed: ``close()`` was called.
    :ivar aborted: ``abort()`` was called.
    """

    def __init__(self, peer=("fe80::1%veth0", 50000), secure: bool = False, lose_on_close: bool = True) -> None:
        """
        :param peer: what ``peer`` reports.
        :param secure: what ``secure`` reports.
        :param lose_on_close: ``close()`` tells the session the connection
            is lost at once; with ``False`` the test calls
            ``session.connection_lost`` itself, as a transport does when the
            orderly close ends seconds later.
        """
        self.peer = peer
        self.secure = secure
        self.lose_on_close = lose_on_close
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
            if self.session is not None and self.lose_on_close:
                self.session.connection_lost("closed by the SECC")

    def abort(self) -> None:
        """Record the abort and tell the session."""
        if not (self.closed or self.aborted):
            self.aborted = True
            if self.session is not None:
                self.session.connection_lost("aborted by the SECC")


@implementer(ISecurity)
class FakeSecurity:
    """
    A security provider with fixed answers.

    :param credentials: what :meth:`tls_server_credentials` returns, or
        ``None`` to raise :class:`CertificatesUnavailable` with ``problem``.
    :param problem: the reason given when there are no credentials.
    :param bundles: ``ca_type`` → path for :meth:`verify_file`.
    """

    def __init__(
        self,
        credentials: TLSCredentials | None = None,
        problem: str = "no certificates (FakeSecurity)",
        bundles: dict[str, Path] | None = None,
    ):
        self.credentials = credentials
        self.problem = problem
        self.bundles = bundles or {}
        self.validation = "Valid"
        self.verified: list = []
        self.ocsp: dict = {"ocsp_request_data_list": []}
        self.subscribers: list = []

    def tls_server_credentials(self) -> TLSCredentials:
        """:returns: the fixed credentials, or raises."""
        if self.credentials is None:
            raise CertificatesUnavailable(self.problem)
        return self.credentials

    def verify_file(self, ca_type: str) -> Path:
        """:returns: the fixed bundle path, or raises."""
        if ca_type not in self.bundles:
            raise CertificatesUnavailable(f"no {ca_type} root (FakeSecurity)")
        return self.bundles[ca_type]

    def verify_certificate(self, certificate_chain: str, certificate_types) -> str:
        """:returns: ``validation`` (default ``"Valid"``); the call is recorded in ``verified``."""
        self.verified.append((certificate_chain, list(certificate_types)))
        return self.validation

    def mo_ocsp_request_data(self, certificate_chain: str) -> dict:
        """:returns: ``ocsp`` (default: an empty list)."""
        return self.ocsp

    def v2g_ocsp_request_data(self) -> dict:
        """:returns: ``ocsp`` (default: an empty list)."""
        return self.ocsp

    def subscribe_store_updates(self, callback) -> Callable[[], None]:
        """Keep ``callback``; :meth:`store_updated` calls it."""
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback) if callback in self.subscribers else None

    def store_updated(self, update: dict) -> None:
        """Tell every subscriber about ``update`` (a ``CertificateStoreUpdate`` dict)."""
        for callback in list(self.subscribers):
            callback(update)


def if_inet6_line(interface: str, index: int, address: str, flags: int = 0x80) -> str:
    """
    :param interface: the interface name.
    :param index: its index.
    :param address: an IPv6 address.
    :param flags: address flags (0x80 permanent; 0x40 tentative).
    :returns: the line ``/proc/net/if_inet6`` would show for it.
    """
    parsed = ipaddress.IPv6Address(address)
    scope = 0x20 if parsed.is_link_local else 0x10 if parsed.is_loopback else 0x00
    return f"{parsed.packed.hex()} {index:02x} 40 {scope:02x} {flags:02x} {interface:>8}"


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


def dc_charger(clock, **overrides) -> Charger:
    """
    A :class:`~evsev2g.charger.Charger` set up the way EvseManager sets up a
    DC charger before a session (150–920 V, 0–250 A, 150 kW, DC_extended).

    :param clock: ``IReactorTime``.
    :param overrides: extra commands to run, ``name=arguments dict``.
    :returns: the charger.
    """
    charger = Charger(clock, name="test")
    charger.setup({"evse_id": "DE*TST*E1", "evse_id_din": "49A80737A45679"}, "None", False)
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

    def decode(self, data: bytes, complete: bool = False) -> Message:
        """
        :param complete: accepted as the real codec's (fakes are complete).
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


# -- value-added services ------------------------------------------------------
# (imported here so this section stays one hunk: FakeValueAddedService is a
# value-added-service provider with fixed answers, synchronous or held back)

from twisted.internet.defer import Deferred  # noqa: E402

from evsev2g.interfaces import IValueAddedService  # noqa: E402


@implementer(IValueAddedService)
class FakeValueAddedService:
    """
    A value-added-service provider with fixed answers that records what it
    is asked (:class:`~evsev2g.interfaces.IValueAddedService`).

    Synchronous by default; with ``asynchronous=True`` every call returns a
    ``Deferred`` that fires only when the test calls :meth:`release`, so
    tests can hold answers back past a timeout.

    :param name: the provider's name.
    :param services: the EVerest ``OfferedService`` dicts it offers (tests
        may set :attr:`services` to anything, to answer with a wrong shape).
    :param parameter_sets: ServiceID → the ``ParameterSet`` dicts it
        answers; an id not in it raises ``KeyError``.
    :param asynchronous: answer with held-back Deferreds.
    :ivar calls: ``(method, argument)`` pairs in call order.
    :ivar selections: the lists handed to ``selected_services``.
    """

    def __init__(self, name: str = "fake", services=(), parameter_sets=None, asynchronous: bool = False):
        self.name = name
        self.services = list(services)
        self.parameter_sets = dict(parameter_sets or {})
        self.asynchronous = asynchronous
        self.calls: list[tuple[str, Any]] = []
        self.selections: list[list[dict]] = []
        self._held: list[tuple[Deferred, Callable[[], Any]]] = []

    def _answer(self, compute: Callable[[], Any]):
        if not self.asynchronous:
            return compute()
        held = Deferred()
        self._held.append((held, compute))
        return held

    def release(self) -> None:
        """Fire every held-back answer (errback where computing it raises)."""
        held, self._held = self._held, []
        for deferred, compute in held:
            try:
                result = compute()
            except Exception as error:
                deferred.errback(error)
            else:
                deferred.callback(result)

    def offered_services(self):
        """:returns: :attr:`services` (or a Deferred of them)."""
        self.calls.append(("offered_services", None))
        return self._answer(lambda: list(self.services) if isinstance(self.services, list) else self.services)

    def get_service_parameters(self, service_id):
        """:returns: ``parameter_sets[service_id]`` (or a Deferred of it)."""
        self.calls.append(("get_service_parameters", service_id))
        return self._answer(lambda: self.parameter_sets[service_id])

    def selected_services(self, selected_services):
        """Record the selection in :attr:`selections`."""
        self.calls.append(("selected_services", selected_services))
        self.selections.append(list(selected_services))
        return self._answer(lambda: None)
