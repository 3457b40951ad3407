"""
The EV simulator: ``python -m evsev2g.sim.ev``.

It finds the SECC with SDP (or is given ``--host/--port``), negotiates DIN
SPEC 70121 in supportedAppProtocol and runs a whole DC session as an EV
would, following the standard's EV side: SessionSetup, ServiceDiscovery,
ServicePaymentSelection (ExternalPayment), ContractAuthentication until
Finished, ChargeParameterDiscovery until Finished, CableCheck until
Finished, PreCharge until the SECC's voltage is close to the battery's,
PowerDelivery(ReadyToCharge), CurrentDemand until the target state of charge,
PowerDelivery(not ready), WeldingDetection, SessionStop.

It prints its progress (state, SoC, voltage, current, energy) and exits 0
after a clean session, or non-zero with the reason:

== ==========================================================
0  clean session: target SoC reached, SessionStop answered OK
1  discovery, connection or timeout problem
2  the SECC answered FAILED
3  the charger stopped the session (EVSE_Shutdown or worse)
4  no protocol agreed in the handshake
== ==========================================================

From Python: :func:`run_ev` returns a ``Deferred`` firing with an
:class:`EVResult`; :class:`EVSettings` holds the knobs.

Timeouts are the EV's (DIN Table 75): 2 s per request, 0.25 s for
CurrentDemand; the Ongoing loops end after 60 s (V2G_EVCC_Ongoing_Timeout),
the cable check after 40 s, pre-charge after 7 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import TCP6ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater

from evsev2g.exi.message import Message
from evsev2g.sim.ev_link import NO_TLS, EVLinkError, SDPClient, V2GTPClient

__all__ = ["EVSettings", "EVResult", "EVStop", "run_ev", "main", "DIN_NAMESPACE"]

DIN_NAMESPACE = "urn:din:70121:2012:MsgDef"

#: EV-side timeouts (DIN SPEC 70121 Tables 75 and 76).
V2G_EVCC_MSG_TIMEOUT = 2.0
V2G_EVCC_CURRENT_DEMAND_TIMEOUT = 0.25
V2G_EVCC_ONGOING_TIMEOUT = 60.0
V2G_EVCC_CABLE_CHECK_TIMEOUT = 40.0
V2G_EVCC_PRE_CHARGE_TIMEOUT = 7.0

#: Pre-charge is done when the SECC's voltage is this close to the battery's (V).
PRE_CHARGE_TOLERANCE = 20.0


@dataclass
class EVSettings:
    """
    What the simulated EV is and does.

    :ivar host: SECC address (skip SDP), or ``None``.
    :ivar port: SECC TCP port with ``host``.
    :ivar interface: network interface for SDP (scope of ff02::1).
    :ivar sdp_port: the SECC's SDP port.
    :ivar start_soc: state of charge at plug-in, %.
    :ivar target_soc: stop charging at this SoC, %.
    :ivar capacity_wh: battery capacity, Wh.
    :ivar max_current: A the EV accepts.
    :ivar max_voltage: V the EV accepts.
    :ivar max_power: W the EV accepts.
    :ivar empty_voltage: battery voltage at 0 % (V); full adds ``voltage_span``.
    :ivar voltage_span: V between 0 % and 100 %.
    :ivar poll_interval: s between Ongoing polls and pre-charge requests.
    :ivar current_demand_interval: s between CurrentDemand requests.
    :ivar max_current_demands: stop after this many CurrentDemand (0 = SoC only).
    :ivar evcc_id: EVCCID (the EV's MAC, 6 bytes).
    :ivar msg_timeout: V2G_EVCC_Msg_Timeout.
    :ivar current_demand_timeout: CurrentDemand timeout.
    :ivar ongoing_timeout: V2G_EVCC_Ongoing_Timeout.
    """

    host: str | None = None
    port: int = 61341
    interface: str | None = None
    sdp_port: int = 15118
    start_soc: float = 30.0
    target_soc: float = 80.0
    capacity_wh: float = 60000.0
    max_current: float = 200.0
    max_voltage: float = 450.0
    max_power: float = 100000.0
    empty_voltage: float = 340.0
    voltage_span: float = 60.0
    poll_interval: float = 0.05
    current_demand_interval: float = 0.05
    max_current_demands: int = 0
    evcc_id: bytes = bytes.fromhex("02005e000001")
    msg_timeout: float = V2G_EVCC_MSG_TIMEOUT
    current_demand_timeout: float = V2G_EVCC_CURRENT_DEMAND_TIMEOUT
    ongoing_timeout: float = V2G_EVCC_ONGOING_TIMEOUT


@dataclass
class EVResult:
    """
    How the session went.

    :ivar code: the exit status (0 clean).
    :ivar reason: one line for people.
    :ivar soc: final state of charge, %.
    :ivar energy_wh: energy received, Wh.
    :ivar latencies: response times in s per response name.
    :ivar states: the states gone through, in order.
    """

    code: int
    reason: str
    soc: float = 0.0
    energy_wh: float = 0.0
    latencies: dict = field(default_factory=dict)
    states: list = field(default_factory=list)


class EVStop(Exception):
    """Ends the EV session early with an exit code and a reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _pv(number: float, unit: str) -> Message:
    """The EV's PhysicalValue: one decimal when it fits, else whole units, else tens …"""
    multiplier = -1
    scaled = round(number * 10)
    while not -32768 <= scaled <= 32767:
        multiplier += 1
        scaled = round(number / (10 ** multiplier))
    return Message("PhysicalValue", Multiplier=multiplier, Unit=unit, Value=scaled)


def _num(node) -> float:
    if node is None:
        return 0.0
    return node.Value * 10.0 ** (node.get("Multiplier") or 0)


class SimulatedEV:
    """One EV session over one connection (see the module docstring)."""

    def __init__(self, reactor, settings: EVSettings, codecs, progress: Callable[[dict], None]) -> None:
        """
        :param reactor: ``IReactorTCP``, ``IReactorUDP``, ``IReactorTime``.
        :param settings: :class:`EVSettings`.
        :param codecs: ``(handshake codec, DIN codec)``.
        :param progress: called with a dict at every step.
        """
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
        self.session_id = b"\x00"
        self.latencies: dict[str, list[float]] = {}
        self.link: V2GTPClient | None = None
        self._last_charge_time: float | None = None

    # -- helpers ---------------------------------------------------------------

    def _enter(self, state: str) -> None:
        self.state = state
        self.states.append(state)
        self._report()

    def _report(self) -> None:
        self.progress(
            {"state": self.state, "soc": self.soc, "voltage": self.voltage, "current": self.current, "energy_wh": self.energy_wh}
        )

    def battery_voltage(self) -> float:
        """The battery's open-circuit voltage at the present SoC."""
        s = self.settings
        return s.empty_voltage + s.voltage_span * self.soc / 100.0

    def ev_status(self) -> Message:
        """DC_EVStatus."""
        return Message("DC_EVStatus", EVReady=True, EVErrorCode="NO_ERROR", EVRESSSOC=int(self.soc))

    async def _exchange(self, name: str, body: Message, timeout: float | None = None) -> Message:
        """Send one request, return the response body; FAILED ends the session."""
        message = Message(
            "V2G_Message",
            Header=Message("Header", SessionID=self.session_id),
            Body=Message("Body", [(name, body)]),
        )
        data = self.codec.encode(message)
        started = time.perf_counter()
        answer = await self.link.request(data, timeout if timeout is not None else self.settings.msg_timeout)
        elapsed = time.perf_counter() - started
        response = self.codec.decode(answer)
        expected = name[:-3] + "Res"
        children = response.Body.children
        if not children or children[0][0] != expected:
            got = children[0][0] if children else "an empty body"
            raise EVStop(2, f"expected {expected}, got {got}")
        self.latencies.setdefault(expected, []).append(elapsed)
        result = children[0][1]
        code = result.ResponseCode
        if code.startswith("FAILED"):
            raise EVStop(2, f"{expected}: {code}")
        if name == "SessionSetupReq":
            self.session_id = response.Header.SessionID
        return result

    def _check_evse(self, status) -> None:
        code = status.EVSEStatusCode if status is not None else "EVSE_Ready"
        if code in ("EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction", "EVSE_UtilityInterruptEvent"):
            raise EVStop(3, f"the charger reports {code}")

    async def _poll(self, name: str, build: Callable[[], Message], limit: float, what: str) -> Message:
        """Repeat a request while the SECC answers Ongoing."""
        deadline = self.reactor.seconds() + limit
        while True:
            body = await self._exchange(name, build())
            if body.EVSEProcessing == "Finished":
                return body
            if self.reactor.seconds() >= deadline:
                raise EVStop(1, f"{what} still Ongoing after {limit:g} s")
            await deferLater(self.reactor, self.settings.poll_interval, lambda: None)

    # -- the session -----------------------------------------------------------

    async def run(self) -> EVResult:
        """
        Discover, connect, run the session.

        :returns: the :class:`EVResult`.
        """
        try:
            host, port = await self._discover()
            self._enter("connecting")
            endpoint = TCP6ClientEndpoint(self.reactor, host, port, timeout=5)
            link = V2GTPClient(self.reactor)
            try:
                await connectProtocol(endpoint, link)
            except Exception as error:
                raise EVStop(1, f"cannot connect to [{host}]:{port}: {error}") from None
            self.link = link
            await self._session()
            await self.link.close()
            return self._result(0, f"charged to {self.soc:.1f} % and stopped cleanly")
        except EVStop as stop:
            if self.link is not None and not self.link.closed:
                await self._stop_after_problem(stop)
            return self._result(stop.code, stop.reason)
        except EVLinkError as error:
            reason = str(error)
        except Exception as error:  # an answer we cannot read
            reason = f"unreadable answer from the SECC: {type(error).__name__}: {error}"
        if self.link is not None and not self.link.closed:
            await self.link.close()
        return self._result(1, reason)

    async def _stop_after_problem(self, stop: EVStop) -> None:
        if stop.code == 3:
            # The charger asked to stop: end the session the DIN way.
            try:
                if self.state in ("charging", "pre-charge"):
                    await self._power_delivery(False)
                await self._exchange("SessionStopReq", Message("SessionStopReq"))
            except (EVStop, EVLinkError):
                pass
        await self.link.close()

    def _result(self, code: int, reason: str) -> EVResult:
        self._enter("done" if code == 0 else "aborted")
        return EVResult(code, reason, self.soc, self.energy_wh, self.latencies, self.states)

    async def _discover(self) -> tuple[str, int]:
        s = self.settings
        if s.host is not None:
            return s.host, s.port
        self._enter("discovery")
        client = SDPClient(self.reactor, s.interface, s.sdp_port, NO_TLS)
        port = self.reactor.listenUDP(0, client, interface="::")
        try:
            host, tcp_port, security = await client.result
        finally:
            await port.stopListening()
        if security != NO_TLS:
            raise EVStop(1, f"the SECC offers only TLS at [{host}]:{tcp_port}; DIN 70121 runs on TCP")
        return host, tcp_port

    async def _session(self) -> None:
        s = self.settings
        self._enter("handshake")
        request = Message(
            "supportedAppProtocolReq",
            AppProtocol=[
                Message("AppProtocol", ProtocolNamespace=DIN_NAMESPACE, VersionNumberMajor=2, VersionNumberMinor=0, SchemaID=1, Priority=1)
            ],
        )
        answer = await self.link.request(self.handshake_codec.encode(request), s.msg_timeout)
        response = self.handshake_codec.decode(answer)
        if response.ResponseCode == "Failed_NoNegotiation" or response.get("SchemaID") != 1:
            raise EVStop(4, f"no protocol agreed ({response.ResponseCode})")

        self._enter("session setup")
        await self._exchange("SessionSetupReq", Message("SessionSetupReq", EVCCID=s.evcc_id))
        discovery = await self._exchange("ServiceDiscoveryReq", Message("ServiceDiscoveryReq"))
        if "ExternalPayment" not in discovery.PaymentOptions.getlist("PaymentOption"):
            raise EVStop(2, "the SECC does not offer ExternalPayment")
        service_id = discovery.ChargeService.ServiceTag.ServiceID
        await self._exchange(
            "ServicePaymentSelectionReq",
            Message(
                "ServicePaymentSelectionReq",
                SelectedPaymentOption="ExternalPayment",
                SelectedServiceList=Message("SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=service_id)]),
            ),
        )

        self._enter("authorization")
        await self._poll("ContractAuthenticationReq", lambda: Message("ContractAuthenticationReq"), s.ongoing_timeout, "authorization")

        self._enter("charge parameters")
        parameters = await self._poll(
            "ChargeParameterDiscoveryReq", self._charge_parameters, s.ongoing_timeout, "charge parameter discovery"
        )
        evse = parameters.DC_EVSEChargeParameter
        self.evse_max_current = _num(evse.EVSEMaximumCurrentLimit)
        self.evse_max_voltage = _num(evse.EVSEMaximumVoltageLimit)
        self._check_evse(evse.DC_EVSEStatus)

        self._enter("cable check")
        await self._poll(
            "CableCheckReq", lambda: Message("CableCheckReq", DC_EVStatus=self.ev_status()), V2G_EVCC_CABLE_CHECK_TIMEOUT, "cable check"
        )

        self._enter("pre-charge")
        await self._pre_charge()
        await self._power_delivery(True)

        self._enter("charging")
        await self._charge()

        self._enter("stopping")
        await self._power_delivery(False)
        self._enter("welding detection")
        body = await self._exchange("WeldingDetectionReq", Message("WeldingDetectionReq", DC_EVStatus=self.ev_status()))
        self.voltage = _num(body.EVSEPresentVoltage)
        self.current = 0.0
        await self._exchange("SessionStopReq", Message("SessionStopReq"))
        self._enter("session stopped")

    def _charge_parameters(self) -> Message:
        s = self.settings
        return Message(
            "ChargeParameterDiscoveryReq",
            EVRequestedEnergyTransferType="DC_extended",
            DC_EVChargeParameter=Message(
                "DC_EVChargeParameter",
                DC_EVStatus=self.ev_status(),
                EVMaximumCurrentLimit=_pv(s.max_current, "A"),
                EVMaximumPowerLimit=_pv(s.max_power, "W"),
                EVMaximumVoltageLimit=_pv(s.max_voltage, "V"),
                EVEnergyCapacity=_pv(s.capacity_wh, "Wh"),
                EVEnergyRequest=_pv(s.capacity_wh * max(0.0, s.target_soc - self.soc) / 100.0, "Wh"),
                FullSOC=100,
                BulkSOC=int(min(100, s.target_soc)),
            ),
        )

    async def _pre_charge(self) -> None:
        deadline = self.reactor.seconds() + V2G_EVCC_PRE_CHARGE_TIMEOUT
        target = self.battery_voltage()
        while True:
            body = await self._exchange(
                "PreChargeReq",
                Message("PreChargeReq", DC_EVStatus=self.ev_status(), EVTargetVoltage=_pv(target, "V"), EVTargetCurrent=_pv(2, "A")),
            )
            self._check_evse(body.DC_EVSEStatus)
            self.voltage = _num(body.EVSEPresentVoltage)
            self._report()
            if abs(self.voltage - target) <= PRE_CHARGE_TOLERANCE:
                return
            if self.reactor.seconds() >= deadline:
                raise EVStop(1, f"pre-charge reached {self.voltage:g} V of {target:g} V within {V2G_EVCC_PRE_CHARGE_TIMEOUT:g} s")
            await deferLater(self.reactor, self.settings.poll_interval, lambda: None)

    async def _power_delivery(self, ready: bool) -> None:
        body = await self._exchange(
            "PowerDeliveryReq",
            Message(
                "PowerDeliveryReq",
                ReadyToChargeState=ready,
                DC_EVPowerDeliveryParameter=Message(
                    "DC_EVPowerDeliveryParameter",
                    DC_EVStatus=self.ev_status(),
                    BulkChargingComplete=not ready,
                    ChargingComplete=not ready,
                ),
            ),
        )
        if ready:
            self._check_evse(body.DC_EVSEStatus)

    def _target_current(self) -> float:
        s = self.settings
        current = min(s.max_current, s.max_power / max(self.battery_voltage(), 1.0))
        remaining = s.target_soc - self.soc
        if remaining < 5.0:  # taper towards the target like a real battery
            current *= max(0.2, remaining / 5.0)
        return current

    async def _charge(self) -> None:
        s = self.settings
        count = 0
        last_report = self.reactor.seconds()
        self._last_charge_time = self.reactor.seconds()
        while True:
            complete = self.soc >= s.target_soc or (s.max_current_demands and count >= s.max_current_demands)
            body = await self._exchange(
                "CurrentDemandReq",
                Message(
                    "CurrentDemandReq",
                    DC_EVStatus=self.ev_status(),
                    EVTargetCurrent=_pv(0 if complete else self._target_current(), "A"),
                    EVMaximumVoltageLimit=_pv(s.max_voltage, "V"),
                    EVMaximumCurrentLimit=_pv(s.max_current, "A"),
                    EVMaximumPowerLimit=_pv(s.max_power, "W"),
                    BulkChargingComplete=bool(complete),
                    ChargingComplete=bool(complete),
                    RemainingTimeToFullSoC=_pv(self._remaining_seconds(100.0), "s"),
                    EVTargetVoltage=_pv(self.battery_voltage(), "V"),
                ),
                timeout=s.current_demand_timeout,
            )
            count += 1
            now = self.reactor.seconds()
            self.voltage = _num(body.EVSEPresentVoltage)
            self.current = _num(body.EVSEPresentCurrent)
            self._absorb(now)
            self._check_evse(body.DC_EVSEStatus)
            if complete:
                return
            if now - last_report >= 1.0:
                last_report = now
                self._report()
            await deferLater(self.reactor, s.current_demand_interval, lambda: None)

    def _absorb(self, now: float) -> None:
        dt = now - self._last_charge_time
        self._last_charge_time = now
        energy = self.voltage * self.current * dt / 3600.0
        self.energy_wh += energy
        self.soc = min(100.0, self.soc + 100.0 * energy / self.settings.capacity_wh)

    def _remaining_seconds(self, soc: float) -> float:
        power = max(self.voltage * self.current, 1000.0)
        return max(0.0, min(32767.0, (soc - self.soc) / 100.0 * self.settings.capacity_wh * 3600.0 / power))


def load_ev_codecs():
    """
    :returns: ``(handshake codec, DIN codec)`` from :mod:`evsev2g.exi`.
    """
    from evsev2g.exi import load_codec

    return load_codec("appHandshake"), load_codec("din70121")


def run_ev(reactor, settings: EVSettings, progress: Callable[[dict], None] = lambda report: None, codecs=None) -> Deferred:
    """
    Run one simulated EV session.

    :param reactor: the reactor.
    :param settings: :class:`EVSettings`.
    :param progress: called with ``{"state", "soc", "voltage", "current",
        "energy_wh"}`` at every step.
    :param codecs: ``(handshake codec, DIN codec)``; loaded when ``None``.
    :returns: a ``Deferred`` firing with an :class:`EVResult` (never failing
        for session problems; those are in the result).
    """
    ev = SimulatedEV(reactor, settings, codecs or load_ev_codecs(), progress)
    return ensureDeferred(ev.run()).addErrback(
        lambda failure: EVResult(1, f"EV simulator error: {failure.type.__name__}: {failure.getErrorMessage()}", ev.soc, ev.energy_wh, ev.latencies, ev.states)
    )


class ProgressPrinter:
    """Prints a line per state and about one per second while charging."""

    def __init__(self, out=sys.stdout, prefix: str = "EV", every: float = 1.0) -> None:
        """
        :param out: a text stream.
        :param prefix: the line prefix.
        :param every: seconds between lines within one state.
        """
        self.out = out
        self.prefix = prefix
        self.every = every
        self._state = None
        self._printed = 0.0

    def __call__(self, report: dict) -> None:
        """Print a progress line on a new state, else at most every ``every`` seconds."""
        now = time.monotonic()
        if report["state"] == self._state and now - self._printed < self.every:
            return
        self._state = report["state"]
        self._printed = now
        self.out.write(
            f"{self.prefix} {report['state']:<18} SoC {report['soc']:5.1f} %  {report['voltage']:6.1f} V"
            f"  {report['current']:6.1f} A  {report['energy_wh'] / 1000.0:7.3f} kWh\n"
        )
        self.out.flush()


def _parser() -> argparse.ArgumentParser:
    defaults = EVSettings()
    parser = argparse.ArgumentParser(prog="python -m evsev2g.sim.ev", description="Simulated DIN SPEC 70121 DC EV.")
    where = parser.add_argument_group("where the SECC is")
    where.add_argument("--host", help="SECC address (skips SDP); link-local addresses need %%interface")
    where.add_argument("--port", type=int, default=defaults.port, help="SECC TCP port with --host (default %(default)s)")
    where.add_argument("--interface", "-i", help="network interface for SDP discovery")
    where.add_argument("--sdp-port", type=int, default=defaults.sdp_port, help="SECC SDP port (default %(default)s)")
    ev = parser.add_argument_group("the EV")
    ev.add_argument("--start-soc", type=float, default=defaults.start_soc, help="SoC at plug-in, %% (default %(default)s)")
    ev.add_argument("--target-soc", type=float, default=defaults.target_soc, help="stop at this SoC, %% (default %(default)s)")
    ev.add_argument("--capacity", type=float, default=defaults.capacity_wh, help="battery capacity, Wh (default %(default)s)")
    ev.add_argument("--max-current", type=float, default=defaults.max_current, help="A (default %(default)s)")
    ev.add_argument("--max-voltage", type=float, default=defaults.max_voltage, help="V (default %(default)s)")
    ev.add_argument("--max-power", type=float, default=defaults.max_power, help="W (default %(default)s)")
    ev.add_argument("--interval", type=float, default=defaults.current_demand_interval, help="s between CurrentDemand requests (default %(default)s)")
    ev.add_argument("--current-demands", type=int, default=0, help="stop after this many CurrentDemand requests (0: at the target SoC)")
    ev.add_argument("--quiet", "-q", action="store_true", help="print only the result")
    return parser


def settings_from_arguments(arguments) -> EVSettings:
    """:returns: the :class:`EVSettings` the parsed command line asks for."""
    return EVSettings(
        host=arguments.host,
        port=arguments.port,
        interface=arguments.interface,
        sdp_port=arguments.sdp_port,
        start_soc=arguments.start_soc,
        target_soc=arguments.target_soc,
        capacity_wh=arguments.capacity,
        max_current=arguments.max_current,
        max_voltage=arguments.max_voltage,
        max_power=arguments.max_power,
        current_demand_interval=arguments.interval,
        max_current_demands=arguments.current_demands,
    )


def main(argv=None) -> int:
    """
    The command line.

    :param argv: arguments (default ``sys.argv[1:]``).
    :returns: the exit status.
    """
    arguments = _parser().parse_args(argv)
    if arguments.host is None and arguments.interface is None:
        _parser().error("give --interface for SDP discovery, or --host/--port")
    settings = settings_from_arguments(arguments)
    from twisted.internet import reactor

    outcome: list[EVResult] = []
    progress = (lambda report: None) if arguments.quiet else ProgressPrinter()

    def finish(result: EVResult) -> None:
        outcome.append(result)
        reactor.stop()

    reactor.callWhenRunning(lambda: run_ev(reactor, settings, progress).addCallback(finish))
    reactor.run()
    result = outcome[0] if outcome else EVResult(1, "interrupted")
    stream = sys.stdout if result.code == 0 else sys.stderr
    stream.write(f"EV result: {result.reason} (exit {result.code}; {result.energy_wh / 1000.0:.3f} kWh)\n")
    stream.flush()
    return result.code


if __name__ == "__main__":
    sys.exit(main())
