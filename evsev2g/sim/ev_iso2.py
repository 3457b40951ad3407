"""
The EV simulator's ISO 15118-2 flow with external identification (EIM), AC
or DC, over TCP or TLS — the standard's EV side (ISO 15118-2 §8.8.2, Figures
106/107):

SessionSetup (a new session, or the paused one's SessionID to resume it,
expecting OK_OldSessionJoined [V2G2-754]); ServiceDiscovery; ServiceDetail
for a value-added service the EV wants; PaymentServiceSelection
(ExternalPayment, the charge service and that service); Authorization until
Finished; ChargeParameterDiscovery until Finished (AC_EVChargeParameter or
DC_EVChargeParameter); DC: CableCheck, PreCharge; PowerDelivery(Start)
with the SAScheduleTupleID offered; the loop (AC: ChargingStatus, with
MeteringReceipt when ReceiptRequired; DC: CurrentDemand) until the target
SoC; PowerDelivery(Stop); DC: WeldingDetection; SessionStop(Terminate).

Besides the plain session, the EV can

* pause once after N loop requests: PowerDelivery(Stop), SessionStop(Pause),
  close, wait, reconnect with the same SessionID and run the sequence again
  from ServiceDiscovery ([V2G2-740]);
* renegotiate once after N loop requests: PowerDelivery(Renegotiate), then
  ChargeParameterDiscovery, for DC CableCheck and PreCharge, and
  PowerDelivery(Start) again ([V2G2-812]);
* follow the charger's EVSENotification: ReNegotiation as above,
  StopCharging by stopping (SessionStop Terminate, exit 3) or pausing, as
  ``on_stop_charging`` says (once; a second StopCharging ends the session).
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.protocols.iso15118_2 import ISO2_NAMESPACE
from evsev2g.sim.ev_dc import DCSteps
from evsev2g.sim.ev_session import number, pv, sleep
from evsev2g.sim.ev_settings import EVStop

__all__ = ["ISO2Flow", "ISO2_NAMESPACE"]


#: V2G_EVCC_Msg_Timeout of ServiceDetail and PowerDelivery (ISO 15118-2
#: Table 109; the others wait 2 s, CurrentDemand 0.25 s).
LONG_MSG_TIMEOUT = 5.0

#: The energy transfer mode the EV asks for, per ``mode``.
REQUESTED_MODE = {"ac": "AC_three_phase_core", "dc": "DC_extended"}

#: Loop requests between progress lines.
_REPORT_EVERY = 1.0


class Pause(Exception):
    """The EV pauses: leave the loop, stop the energy, SessionStop(Pause)."""


class ISO2Flow:
    """The ISO 15118-2 EIM session, AC or DC (see the module docstring)."""

    #: The one protocol the EV offers in supportedAppProtocol (version 2.0).
    namespace = ISO2_NAMESPACE

    def __init__(self, ev) -> None:
        """:param ev: the :class:`~evsev2g.sim.ev_session.SimulatedEV`."""
        self.ev = ev
        self.dc = DCSteps(ev)
        self.ac = ev.settings.mode == "ac"
        self.schedule_id = 1
        self.loop_count = 0
        self.pauses = 0
        self.renegotiations = 0
        self.evse_max_current = 0.0
        self.nominal_voltage = 230.0
        self.energy_flowing = False

    # -- the session -----------------------------------------------------------

    async def run(self) -> str:
        """The whole session, with pauses; :returns: the reason for a clean end."""
        ev = self.ev
        s = ev.settings
        while True:
            await ev.open()
            resuming = ev.session_id != b"\x00"
            await self._setup(resuming)
            try:
                await self._energy_transfer()
            except Pause as pause:
                await self._stop_energy(pause=True)
                await ev.exchange("SessionStopReq", Message("SessionStopReq", ChargingSession="Pause"))
                ev.enter("paused")
                await ev.close()
                self.pauses += 1
                if not s.resume:
                    return f"paused at {ev.soc:.1f} % ({pause})"
                await sleep(ev.reactor, s.pause_seconds)
                ev.rediscover()  # a new SDP, TCP (and TLS) connection
                continue
            await self._stop_energy(pause=False)
            await ev.exchange("SessionStopReq", Message("SessionStopReq", ChargingSession="Terminate"))
            ev.enter("session stopped")
            return f"charged to {ev.soc:.1f} % and stopped cleanly"

    async def _setup(self, resuming: bool) -> None:
        """SessionSetup … Authorization."""
        ev = self.ev
        discovery = await self._discover(resuming, "ExternalPayment")
        await self._select("ExternalPayment", discovery)
        ev.enter("authorization")
        await ev.poll("AuthorizationReq", lambda: Message("AuthorizationReq"), ev.settings.ongoing_timeout, "authorization")

    async def _discover(self, resuming: bool, payment: str) -> Message:
        """SessionSetup and ServiceDiscovery; :returns: the ServiceDiscoveryRes, checked to offer ``payment`` and the wanted mode."""
        ev = self.ev
        s = ev.settings
        ev.enter("session setup")
        setup = await ev.exchange("SessionSetupReq", Message("SessionSetupReq", EVCCID=s.evcc_id))
        if resuming and self.pauses and setup.ResponseCode != "OK_OldSessionJoined":
            raise EVStop(2, f"resuming the paused session got {setup.ResponseCode}")
        discovery = await ev.exchange("ServiceDiscoveryReq", Message("ServiceDiscoveryReq"))
        if payment not in discovery.PaymentOptionList.getlist("PaymentOption"):
            raise EVStop(2, f"the SECC does not offer {payment}")
        offered = discovery.ChargeService.SupportedEnergyTransferMode.getlist("EnergyTransferMode")
        wanted = REQUESTED_MODE[s.mode]
        if wanted not in offered:
            raise EVStop(2, f"the SECC offers {', '.join(offered)}, not {wanted}")
        return discovery

    async def _select(self, payment: str, discovery: Message, extra: tuple = ()) -> None:
        """PaymentServiceSelection: ``payment``, the charge service, ``extra`` SelectedServices and the wanted service."""
        selected = [Message("SelectedService", ServiceID=discovery.ChargeService.ServiceID), *extra]
        service = await self._value_added_service(discovery)
        if service is not None:
            selected.append(service)
        await self.ev.exchange(
            "PaymentServiceSelectionReq",
            Message(
                "PaymentServiceSelectionReq",
                SelectedPaymentOption=payment,
                SelectedServiceList=Message("SelectedServiceList", SelectedService=selected),
            ),
        )

    async def _value_added_service(self, discovery) -> Message | None:
        """ServiceDetail for the wanted service; :returns: its SelectedService, or ``None``."""
        ev = self.ev
        s = ev.settings
        if s.service_id is None:
            return None
        listed = discovery.get("ServiceList")
        ids = [service.ServiceID for service in listed.getlist("Service")] if listed is not None else []
        if s.service_id not in ids:
            raise EVStop(2, f"the SECC does not offer service {s.service_id} (offers {ids})")
        ev.enter("service detail")
        detail = await ev.exchange(
            "ServiceDetailReq", Message("ServiceDetailReq", ServiceID=s.service_id), timeout=max(s.msg_timeout, LONG_MSG_TIMEOUT)
        )
        parameters = detail.get("ServiceParameterList")
        sets = [p.ParameterSetID for p in parameters.getlist("ParameterSet")] if parameters is not None else []
        chosen = s.parameter_set_id if s.parameter_set_id is not None else (sets[0] if sets else None)
        if chosen is not None and chosen not in sets:
            raise EVStop(2, f"service {s.service_id} has no parameter set {chosen} (has {sets})")
        if (s.service_id, chosen) not in ev.result.selected_services:  # chosen again after a pause
            ev.result.selected_services.append((s.service_id, chosen))
        if chosen is None:
            return Message("SelectedService", ServiceID=s.service_id)
        return Message("SelectedService", ServiceID=s.service_id, ParameterSetID=chosen)

    async def _energy_transfer(self) -> None:
        """ChargeParameterDiscovery … the loop, with renegotiations."""
        ev = self.ev
        while True:
            await self._charge_parameters()
            if not self.ac:  # again after a renegotiation too (standards notes §6.3)
                await self.dc.cable_check()
                await self.dc.pre_charge()
            await self._power_delivery("Start")
            ev.enter("charging")
            if not await self._loop():
                return
            ev.enter("renegotiation")
            self.renegotiations += 1
            await self._power_delivery("Renegotiate")

    async def _charge_parameters(self) -> None:
        ev = self.ev
        ev.enter("charge parameters")
        body = await ev.poll(
            "ChargeParameterDiscoveryReq", self._charge_parameter_request, ev.settings.ongoing_timeout, "charge parameter discovery"
        )
        tuples = body.SAScheduleList.getlist("SAScheduleTuple") if body.get("SAScheduleList") is not None else []
        if not tuples:
            raise EVStop(2, "ChargeParameterDiscoveryRes without an SAScheduleList")
        self.schedule_id = tuples[0].SAScheduleTupleID
        if self.ac:
            evse = body.AC_EVSEChargeParameter
            self.nominal_voltage = number(evse.EVSENominalVoltage)
            self.evse_max_current = number(evse.EVSEMaxCurrent)
            self._check_ac(evse.AC_EVSEStatus)
        else:
            ev.check_evse(body.DC_EVSEChargeParameter.DC_EVSEStatus)

    def _charge_parameter_request(self) -> Message:
        ev = self.ev
        s = ev.settings
        if self.ac:
            parameter = Message(
                "AC_EVChargeParameter",
                DepartureTime=3600,
                EAmount=pv(s.capacity_wh * max(0.0, s.target_soc - ev.soc) / 100.0, "Wh"),
                EVMaxVoltage=pv(s.max_voltage, "V"),
                EVMaxCurrent=pv(s.ac_max_current, "A"),
                EVMinCurrent=pv(s.ac_min_current, "A"),
            )
            return Message("ChargeParameterDiscoveryReq", RequestedEnergyTransferMode=REQUESTED_MODE["ac"], AC_EVChargeParameter=parameter)
        parameter = self.dc.charge_parameter()
        return Message("ChargeParameterDiscoveryReq", RequestedEnergyTransferMode=REQUESTED_MODE["dc"], DC_EVChargeParameter=parameter)

    async def _power_delivery(self, progress: str) -> None:
        """PowerDelivery with ChargeProgress ``Start``, ``Stop`` or ``Renegotiate``."""
        ev = self.ev
        request = Message("PowerDeliveryReq", ChargeProgress=progress, SAScheduleTupleID=self.schedule_id)
        if not self.ac:
            done = progress != "Start"
            request.set(
                "DC_EVPowerDeliveryParameter",
                Message("DC_EVPowerDeliveryParameter", DC_EVStatus=ev.ev_status(), BulkChargingComplete=done, ChargingComplete=done),
            )
        body = await ev.exchange("PowerDeliveryReq", request, timeout=max(ev.settings.msg_timeout, LONG_MSG_TIMEOUT))
        self.energy_flowing = progress == "Start"
        if progress == "Start":
            if self.ac:
                self._check_ac(body.get("AC_EVSEStatus"))
            else:
                ev.check_evse(body.get("DC_EVSEStatus"))

    async def _stop_energy(self, pause: bool) -> None:
        """PowerDelivery(Stop) and, for DC, WeldingDetection."""
        ev = self.ev
        ev.enter("pausing" if pause else "stopping")
        if self.energy_flowing:
            await self._power_delivery("Stop")
        ev.current = 0.0
        if not self.ac:
            ev.enter("welding detection")
            body = await ev.exchange("WeldingDetectionReq", Message("WeldingDetectionReq", DC_EVStatus=ev.ev_status()))
            ev.voltage = number(body.EVSEPresentVoltage)

    async def stop_after_problem(self, stop: EVStop) -> None:
        """The charger asked to stop (exit 3): stop the energy, SessionStop(Terminate)."""
        if stop.code != 3:
            return
        if self.ev.state in ("charging", "pre-charge", "renegotiation"):
            await self._stop_energy(pause=False)
        await self.ev.exchange("SessionStopReq", Message("SessionStopReq", ChargingSession="Terminate"))

    # -- the loop ----------------------------------------------------------------

    async def _loop(self) -> bool:
        """
        ChargingStatus or CurrentDemand until the target SoC.

        :returns: ``True`` to renegotiate, ``False`` when charging is done.
        :raises Pause: when the EV pauses.
        """
        ev = self.ev
        s = ev.settings
        last_report = ev.reactor.seconds()
        ev.start_metering()
        while True:
            sent = self.loop_count
            if ev.soc >= s.target_soc or (s.max_current_demands and sent >= s.max_current_demands):
                return False
            if s.pause_after and not self.pauses and sent >= s.pause_after:
                raise Pause(f"after {sent} loop requests")
            if s.renegotiate_after and not self.renegotiations and sent >= s.renegotiate_after:
                return True
            status = await (self._charging_status() if self.ac else self._current_demand())
            self.loop_count += 1
            notification = status.EVSENotification if status is not None else "None"
            if notification != "None":
                ev.result.notifications.append(notification)
                if notification == "ReNegotiation":
                    return True
                if notification == "StopCharging":
                    if s.on_stop_charging == "pause" and not self.pauses:
                        raise Pause("the charger asked to stop charging")
                    raise EVStop(3, "the charger asked to stop charging (EVSENotification StopCharging)")
            now = ev.reactor.seconds()
            if now - last_report >= _REPORT_EVERY:
                last_report = now
                ev.report()
            await sleep(ev.reactor, s.current_demand_interval)

    def _check_ac(self, status) -> None:
        if status is not None and status.RCD:
            raise EVStop(3, "the charger reports a residual current (RCD)")

    def _meter(self, body) -> None:
        """Note a MeterInfo's reading and answer ReceiptRequired later."""
        meter = body.get("MeterInfo")
        if meter is not None and meter.get("MeterReading") is not None:
            self.ev.result.meter_readings.append(meter.MeterReading)

    async def _charging_status(self):
        """One ChargingStatus (AC); :returns: its AC_EVSEStatus."""
        ev = self.ev
        s = ev.settings
        body = await ev.exchange("ChargingStatusReq", Message("ChargingStatusReq"))  # 2 s, unlike CurrentDemand
        if body.get("EVSEMaxCurrent") is not None:
            self.evse_max_current = number(body.EVSEMaxCurrent)
        ev.current = min(s.ac_max_current, self.evse_max_current)
        if ev.current < s.ac_min_current:
            ev.current = 0.0
        ev.voltage = self.nominal_voltage
        ev.absorb(ev.voltage * ev.current * s.ac_phases)
        self._check_ac(body.AC_EVSEStatus)
        self._meter(body)
        if body.get("ReceiptRequired") and body.get("MeterInfo") is not None:
            await self._metering_receipt(body.MeterInfo, "AC_EVSEStatus")
        return body.AC_EVSEStatus

    async def _current_demand(self):
        """One CurrentDemand (DC); :returns: its DC_EVSEStatus."""
        ev = self.ev
        s = ev.settings
        body = await ev.exchange(
            "CurrentDemandReq",
            Message(
                "CurrentDemandReq",
                DC_EVStatus=ev.ev_status(),
                EVTargetCurrent=pv(self.dc.target_current(), "A"),
                BulkChargingComplete=False,
                ChargingComplete=False,
                RemainingTimeToFullSoC=pv(ev.remaining_seconds(100.0), "s"),
                EVTargetVoltage=pv(ev.battery_voltage(), "V"),
                **self.dc.current_demand_limits(),
            ),
            timeout=s.current_demand_timeout,
        )
        self.dc.take_present_values(body)
        ev.check_evse(body.DC_EVSEStatus)
        self._meter(body)
        if body.get("ReceiptRequired") and body.get("MeterInfo") is not None:
            await self._metering_receipt(body.MeterInfo, "DC_EVSEStatus")
        return body.DC_EVSEStatus

    async def _metering_receipt(self, meter, status: str) -> None:
        """
        MeteringReceipt for the MeterInfo just received (unsigned: EIM has
        no contract key; ReceiptRequired is meant for PnC, [V2G2-691]).
        """
        ev = self.ev
        body = await ev.exchange(
            "MeteringReceiptReq",
            Message("MeteringReceiptReq", SessionID=ev.session_id, SAScheduleTupleID=self.schedule_id, MeterInfo=meter),
        )
        ev.result.receipts += 1
        if status == "DC_EVSEStatus":
            ev.check_evse(body.get(status))
