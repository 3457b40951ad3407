"""
The EV simulator's session core, shared by its DIN SPEC 70121 and ISO
15118-2 flows: discovery (SDP, asking for TLS when the EV wants it), the TCP
or TLS connection, the supportedAppProtocol handshake, one request/response
exchange with its timeout and FAILED check, the Ongoing poll, and the
battery the energy goes into.

A *flow* (:class:`~evsev2g.sim.ev_din.DINFlow`,
:class:`~evsev2g.sim.ev_iso2.ISO2Flow`) holds the protocol's sequence; it
calls :meth:`SimulatedEV.open` (again after a pause),
:meth:`SimulatedEV.exchange` and :meth:`SimulatedEV.poll`.  Every message
the EV sends is a :class:`~evsev2g.exi.message.Message` tree encoded by our
codec; numbers go through :mod:`evsev2g.protocols.physical`.
"""

from __future__ import annotations

import time
from typing import Callable

from twisted.internet.endpoints import TCP6ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater

from evsev2g.exi.message import Message
from evsev2g.protocols.physical import physical_value, to_number
from evsev2g.sim.ev_link import NO_TLS, TLS, EVLinkError, EVTLSCreator, SDPClient, V2GTPClient
from evsev2g.sim.ev_settings import EVResult, EVSettings, EVStop
from evsev2g.tls import FrameTLSClientEndpoint

__all__ = ["SimulatedEV", "pv", "number", "sleep"]

#: EVSEStatusCode values after which the EV stops (DIN and ISO-2 DC).
STOPPING_STATUS_CODES = ("EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction", "EVSE_UtilityInterruptEvent")


def pv(value: float, unit: str) -> Message:
    """:returns: the EV's PhysicalValue for ``value`` (finest multiplier that fits)."""
    return physical_value(value, unit)


def number(node) -> float:
    """:returns: a PhysicalValue's number, 0.0 when absent."""
    value = to_number(node)
    return 0.0 if value is None else float(value)


def sleep(clock, seconds: float):
    """:returns: a ``Deferred`` firing after ``seconds`` on ``clock``."""
    return deferLater(clock, seconds, lambda: None)


class SimulatedEV:
    """
    One EV: discovers, connects, runs the flow of ``settings.protocol``.

    :ivar link: the present :class:`~evsev2g.sim.ev_link.V2GTPClient`.
    :ivar session_id: the SessionID in use (``b"\\x00"`` before SessionSetup).
    """

    def __init__(self, reactor, settings: EVSettings, codecs, progress: Callable[[dict], None]) -> None:
        """
        :param reactor: ``IReactorTCP``, ``IReactorUDP``, ``IReactorTime``.
        :param settings: :class:`EVSettings`.
        :param codecs: ``(handshake codec, protocol codec)``.
        :param progress: called with a dict at every step.
        """
        from evsev2g.sim.ev_din import DINFlow
        from evsev2g.sim.ev_iso2 import ISO2Flow

        self.reactor = reactor
        self.settings = settings
        self.handshake_codec, self.codec = codecs
        self.progress = progress
        self.soc = settings.start_soc
        self.energy_wh = 0.0
        self.voltage = 0.0
        self.current = 0.0
        self.state = "discovery"
        self.states: list[str] = []
        self.session_id = settings.session_id or b"\x00"
        self.latencies: dict[str, list[float]] = {}
        self.sent_at: dict[str, list[float]] = {}
        self.link: V2GTPClient | None = None
        self.last_response: Message | None = None
        self.result = EVResult(1, "")
        if settings.pnc:
            from evsev2g.sim.ev_iso2_pnc import PnCFlow

            self.flow = PnCFlow(self)
        else:
            self.flow = (ISO2Flow if settings.protocol == "iso15118-2" else DINFlow)(self)
        self._address: tuple[str, int] | None = None
        self._last_charge_time: float | None = None

    # -- progress ----------------------------------------------------------------

    def enter(self, state: str) -> None:
        """Note a new state and report it."""
        self.state = state
        self.states.append(state)
        self.report()


    def report(self) -> None:
        """Report the present values."""
        self.progress(
            {"state": self.state, "soc": self.soc, "voltage": self.voltage, "current": self.current, "energy_wh": self.energy_wh}
        )

    # -- the battery -----------------------------------------------------------

    def battery_voltage(self) -> float:
        """The battery's open-circuit voltage at the present SoC."""
        s = self.settings
        return s.empty_voltage + s.voltage_span * self.soc / 100.0

    def start_metering(self) -> None:
        """Energy flows from now on: start counting time."""
        self._last_charge_time = self.reactor.seconds()

    def absorb(self, power: float) -> None:
        """Put ``power`` (W) since the last call into the battery."""
        now = self.reactor.seconds()
        last = self._last_charge_time if self._last_charge_time is not None else now
        self._last_charge_time = now
        energy = max(0.0, power) * (now - last) / 3600.0
        self.energy_wh += energy
        self.soc = min(100.0, self.soc + 100.0 * energy / self.settings.capacity_wh)

    def remaining_seconds(self, soc: float) -> float:
        """Seconds to ``soc`` at the present power (at least 1 kW)."""
        power = max(self.voltage * self.current, 1000.0)
        return max(0.0, min(32767.0, (soc - self.soc) / 100.0 * self.settings.capacity_wh * 3600.0 / power))

    def ev_status(self) -> Message:
        """DC_EVStatus (DIN and ISO-2 share its mandatory content)."""
        return Message("DC_EVStatus", EVReady=True, EVErrorCode="NO_ERROR", EVRESSSOC=int(self.soc))

    def check_evse(self, status) -> None:
        """
        :raises EVStop: (3) when a DC_EVSEStatus says the charger stopped;
            EVSE_Shutdown with EVSENotification StopCharging is left to the
            flow (ISO-2: the EV ends or pauses the session as it chooses).
        """
        code = status.EVSEStatusCode if status is not None else "EVSE_Ready"
        if code == "EVSE_Shutdown" and status.get("EVSENotification") == "StopCharging":
            return
        if code in STOPPING_STATUS_CODES:
            raise EVStop(3, f"the charger reports {code}")

    # -- the wire ----------------------------------------------------------------

    async def _discover(self) -> tuple[str, int]:
        """:returns: the SECC's ``(host, port)``: the settings', or SDP's."""
        s = self.settings
        if s.host is not None:
            return s.host, s.port
        self.enter("discovery")
        wanted = TLS if s.tls else NO_TLS
        if s.interface == "lo":
            # lo carries no multicast: ask ::1 directly, as the SECC on lo answers.
            client = SDPClient(self.reactor, None, s.sdp_port, wanted, group="::1")
        else:
            client = SDPClient(self.reactor, s.interface, s.sdp_port, wanted)
        port = self.reactor.listenUDP(0, client, interface="::")
        try:
            host, tcp_port, security = await client.result
        finally:
            await port.stopListening()
        if security != wanted:
            offered = "TLS" if security == TLS else "TCP without TLS"
            raise EVStop(1, f"the SECC offers only {offered} at [{host}]:{tcp_port}; this EV wants {'TLS' if s.tls else 'TCP'}")
        return host, tcp_port

    async def open(self) -> None:
        """
        Connect (discovering the SECC the first time) and agree on the
        protocol in supportedAppProtocol.

        :raises EVStop: on connection, TLS or handshake problems.
        """
        s = self.settings
        if self._address is None:
            self._address = await self._discover()
        host, port = self._address
        self.enter("connecting")
        endpoint = TCP6ClientEndpoint(self.reactor, host, port, timeout=5)
        if s.tls:
            endpoint = FrameTLSClientEndpoint(EVTLSCreator(s.v2g_root, s.tls_key_log), endpoint)
        link = V2GTPClient(self.reactor, tls=s.tls)
        try:
            await connectProtocol(endpoint, link)
        except Exception as error:
            raise EVStop(1, f"cannot connect to [{host}]:{port}: {error}") from None
        self.link = link
        if s.tls:
            try:
                self.result.tls.append(await link.handshake_d)
            except EVLinkError as error:
                raise EVStop(1, f"TLS with [{host}]:{port} failed: {error}") from None
        await self.handshake()

    def rediscover(self) -> None:
        """Find the SECC with SDP again before the next connection (after a pause), unless given ``host``."""
        if self.settings.host is None:
            self._address = None

    async def handshake(self) -> None:
        """supportedAppProtocol offering the flow's protocol."""
        self.enter("handshake")
        offer = Message(
            "AppProtocol", ProtocolNamespace=self.flow.namespace, VersionNumberMajor=2, VersionNumberMinor=0, SchemaID=1, Priority=1
        )
        request = Message("supportedAppProtocolReq", AppProtocol=[offer])
        answer = await self.link.request(self.handshake_codec.encode(request), self.settings.msg_timeout)
        response = self.handshake_codec.decode(answer)
        if response.ResponseCode == "Failed_NoNegotiation" or response.get("SchemaID") != 1:
            raise EVStop(4, f"no protocol agreed ({response.ResponseCode})")

    async def exchange(self, name: str, body: Message, timeout: float | None = None, signature: Message | None = None) -> Message:
        """
        Send one request, return the response body (the whole response
        message is kept in :attr:`last_response`).

        :param name: the request element, e.g. ``SessionSetupReq``.
        :param body: its content.
        :param timeout: seconds to wait (default ``msg_timeout``).
        :param signature: a header ``Signature`` (PnC), or ``None``.
        :raises EVStop: (2) on a FAILED response code or an unexpected message.
        """
        header = Message("Header", SessionID=self.session_id)
        if signature is not None:
            header.set("Signature", signature)
        message = Message("V2G_Message", Header=header, Body=Message("Body", [(name, body)]))
        data = self.codec.encode(message)
        sent_at = time.time()
        started = time.perf_counter()
        answer = await self.link.request(data, timeout if timeout is not None else self.settings.msg_timeout)
        elapsed = time.perf_counter() - started
        response = self.codec.decode(answer)
        self.last_response = response
        expected = name[:-3] + "Res"
        children = response.Body.children
        if not children or children[0][0] != expected:
            got = children[0][0] if children else "an empty body"
            raise EVStop(2, f"expected {expected}, got {got}")
        self.latencies.setdefault(expected, []).append(elapsed)
        self.sent_at.setdefault(expected, []).append(sent_at)
        result = children[0][1]
        code = result.ResponseCode
        if code.startswith("FAILED"):
            raise EVStop(2, f"{expected}: {code}")
        if name == "SessionSetupReq":
            self.session_id = response.Header.SessionID
            self.result.session_setups.append((code, self.session_id))
        return result


    async def poll(self, name: str, build: Callable[[], Message], limit: float, what: str) -> Message:
        """Repeat a request while the SECC answers Ongoing (at most ``limit`` s)."""
        deadline = self.reactor.seconds() + limit
        while True:
            body = await self.exchange(name, build())
            if body.EVSEProcessing == "Finished":
                return body
            if self.reactor.seconds() >= deadline:
                raise EVStop(1, f"{what} still Ongoing after {limit:g} s")
            await sleep(self.reactor, self.settings.poll_interval)

    async def close(self) -> None:
        """Close the present connection, if any."""
        if self.link is not None and not self.link.closed:
            await self.link.close()

    # -- the session -----------------------------------------------------------

    async def run(self) -> EVResult:
        """
        Discover, connect, run the flow.

        :returns: the :class:`EVResult`.
        """
        try:
            reason = await self.flow.run()
            await self.close()
            return self._result(0, reason)
        except EVStop as stop:
            if self.link is not None and not self.link.closed:
                try:
                    await self.flow.stop_after_problem(stop)
                except (EVStop, EVLinkError):
                    pass
                await self.close()
            return self._result(stop.code, stop.reason)
        except EVLinkError as error:
            reason = str(error)
        except Exception as error:  # an answer we cannot read
            reason = f"unreadable answer from the SECC: {type(error).__name__}: {error}"
        await self.close()
        return self._result(1, reason)

    def _result(self, code: int, reason: str) -> EVResult:
        self.enter("done" if code == 0 else "aborted")
        result = self.result
        result.code, result.reason = code, reason
        result.soc, result.energy_wh = self.soc, self.energy_wh
        result.latencies, result.states, result.sent_at = self.latencies, self.states, self.sent_at
        return result
