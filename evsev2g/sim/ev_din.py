"""
The EV simulator's DIN SPEC 70121 DC flow, the standard's EV side:
SessionSetup, ServiceDiscovery, ServicePaymentSelection (ExternalPayment),
ContractAuthentication until Finished, ChargeParameterDiscovery until
Finished, CableCheck until Finished, PreCharge until the SECC's voltage is
close to the battery's, PowerDelivery(ReadyToCharge), CurrentDemand until
the target state of charge, PowerDelivery(not ready), WeldingDetection,
SessionStop.

Timeouts are the EV's (DIN Table 75): 2 s per request, 0.25 s for
CurrentDemand; the Ongoing loops end after 60 s (V2G_EVCC_Ongoing_Timeout),
the cable check after 40 s, pre-charge after 7 s (:mod:`evsev2g.sim.ev_dc`).
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.protocols.din70121 import DIN_NAMESPACE
from evsev2g.sim.ev_dc import DCSteps
from evsev2g.sim.ev_session import number, pv, sleep
from evsev2g.sim.ev_settings import EVStop

__all__ = ["DINFlow"]

class DINFlow:
    """The DIN SPEC 70121 DC session (see the module docstring)."""

    #: The one protocol the EV offers in supportedAppProtocol (version 2.0).
    namespace = DIN_NAMESPACE

    def __init__(self, ev) -> None:
        """:param ev: the :class:`~evsev2g.sim.ev_session.SimulatedEV`."""
        self.ev = ev
        self.dc = DCSteps(ev)

    async def run(self) -> str:
        """The whole session; :returns: the reason for a clean end."""
        ev = self.ev
        s = ev.settings
        await ev.open()
        ev.enter("session setup")
        await ev.exchange("SessionSetupReq", Message("SessionSetupReq", EVCCID=s.evcc_id))
        discovery = await ev.exchange("ServiceDiscoveryReq", Message("ServiceDiscoveryReq"))
        if "ExternalPayment" not in discovery.PaymentOptions.getlist("PaymentOption"):
            raise EVStop(2, "the SECC does not offer ExternalPayment")
        service_id = discovery.ChargeService.ServiceTag.ServiceID
        await ev.exchange(
            "ServicePaymentSelectionReq",
            Message(
                "ServicePaymentSelectionReq",
                SelectedPaymentOption="ExternalPayment",
                SelectedServiceList=Message("SelectedServiceList", SelectedService=[Message("SelectedService", ServiceID=service_id)]),
            ),
        )

        ev.enter("authorization")
        await ev.poll("ContractAuthenticationReq", lambda: Message("ContractAuthenticationReq"), s.ongoing_timeout, "authorization")

        ev.enter("charge parameters")
        parameters = await ev.poll(
            "ChargeParameterDiscoveryReq", self._charge_parameters, s.ongoing_timeout, "charge parameter discovery"
        )
        ev.check_evse(parameters.DC_EVSEChargeParameter.DC_EVSEStatus)

        await self.dc.cable_check()
        await self.dc.pre_charge()
        await self._power_delivery(True)

        ev.enter("charging")
        await self._charge()

        ev.enter("stopping")
        await self._power_delivery(False)
        ev.enter("welding detection")
        body = await ev.exchange("WeldingDetectionReq", Message("WeldingDetectionReq", DC_EVStatus=ev.ev_status()))
        ev.voltage = number(body.EVSEPresentVoltage)
        ev.current = 0.0
        await ev.exchange("SessionStopReq", Message("SessionStopReq"))
        ev.enter("session stopped")
        return f"charged to {ev.soc:.1f} % and stopped cleanly"

    async def stop_after_problem(self, stop: EVStop) -> None:
        """The charger asked to stop (exit 3): end the session the DIN way."""
        if stop.code != 3:
            return
        if self.ev.state in ("charging", "pre-charge"):
            await self._power_delivery(False)
        await self.ev.exchange("SessionStopReq", Message("SessionStopReq"))

    def _charge_parameters(self) -> Message:
        return Message(
            "ChargeParameterDiscoveryReq", EVRequestedEnergyTransferType="DC_extended", DC_EVChargeParameter=self.dc.charge_parameter()
        )

    async def _power_delivery(self, ready: bool) -> None:
        ev = self.ev
        body = await ev.exchange(
            "PowerDeliveryReq",
            Message(
                "PowerDeliveryReq",
                ReadyToChargeState=ready,
                DC_EVPowerDeliveryParameter=Message(
                    "DC_EVPowerDeliveryParameter",
                    DC_EVStatus=ev.ev_status(),
                    BulkChargingComplete=not ready,
                    ChargingComplete=not ready,
                ),
            ),
        )
        if ready:
            ev.check_evse(body.DC_EVSEStatus)

    async def _charge(self) -> None:
        ev = self.ev
        s = ev.settings
        count = 0
        last_report = ev.reactor.seconds()
        ev.start_metering()
        while True:
            complete = ev.soc >= s.target_soc or bool(s.max_current_demands and count >= s.max_current_demands)
            body = await ev.exchange(
                "CurrentDemandReq",
                Message(
                    "CurrentDemandReq",
                    DC_EVStatus=ev.ev_status(),
                    EVTargetCurrent=pv(0 if complete else self.dc.target_current(), "A"),
                    BulkChargingComplete=complete,
                    ChargingComplete=complete,
                    RemainingTimeToFullSoC=pv(ev.remaining_seconds(100.0), "s"),
                    EVTargetVoltage=pv(ev.battery_voltage(), "V"),
                    **self.dc.current_demand_limits(),
                ),
                timeout=s.current_demand_timeout,
            )
            count += 1
            self.dc.take_present_values(body)
            ev.check_evse(body.DC_EVSEStatus)
            if complete:
                return
            now = ev.reactor.seconds()
            if now - last_report >= 1.0:
                last_report = now
                ev.report()
            await sleep(ev.reactor, s.current_demand_interval)
