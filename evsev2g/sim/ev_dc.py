"""
The EV simulator's DC steps that DIN SPEC 70121 and ISO 15118-2 share:
CableCheck until Finished (at most 40 s), PreCharge until the SECC's
voltage is within 20 V of the battery's (at most 7 s), the current the
battery takes, the limits sent with every CurrentDemandReq, and reading the
present values back into the battery.
"""

from __future__ import annotations

from evsev2g.exi.message import Message
from evsev2g.sim.ev_session import number, pv, sleep
from evsev2g.sim.ev_settings import EVStop

__all__ = ["DCSteps", "V2G_EVCC_CABLE_CHECK_TIMEOUT", "V2G_EVCC_PRE_CHARGE_TIMEOUT", "PRE_CHARGE_TOLERANCE"]

V2G_EVCC_CABLE_CHECK_TIMEOUT = 40.0
V2G_EVCC_PRE_CHARGE_TIMEOUT = 7.0

#: Pre-charge is done when the SECC's voltage is this close to the battery's (V).
PRE_CHARGE_TOLERANCE = 20.0


class DCSteps:
    """The DC steps DIN and ISO-2 share: cable check, pre-charge, the EV's target current."""

    def __init__(self, ev) -> None:
        """:param ev: the :class:`~evsev2g.sim.ev_session.SimulatedEV`."""
        self.ev = ev

    async def cable_check(self) -> None:
        """CableCheck until Finished."""
        ev = self.ev
        ev.enter("cable check")
        await ev.poll(
            "CableCheckReq", lambda: Message("CableCheckReq", DC_EVStatus=ev.ev_status()), V2G_EVCC_CABLE_CHECK_TIMEOUT, "cable check"
        )

    async def pre_charge(self) -> None:
        """PreCharge until the SECC's voltage is within :data:`PRE_CHARGE_TOLERANCE` of the battery's."""
        ev = self.ev
        ev.enter("pre-charge")
        deadline = ev.reactor.seconds() + V2G_EVCC_PRE_CHARGE_TIMEOUT
        target = ev.battery_voltage()
        while True:
            body = await ev.exchange(
                "PreChargeReq",
                Message("PreChargeReq", DC_EVStatus=ev.ev_status(), EVTargetVoltage=pv(target, "V"), EVTargetCurrent=pv(2, "A")),
            )
            ev.check_evse(body.DC_EVSEStatus)
            ev.voltage = number(body.EVSEPresentVoltage)
            ev.report()
            if abs(ev.voltage - target) <= PRE_CHARGE_TOLERANCE:
                return
            if ev.reactor.seconds() >= deadline:
                raise EVStop(1, f"pre-charge reached {ev.voltage:g} V of {target:g} V within {V2G_EVCC_PRE_CHARGE_TIMEOUT:g} s")
            await sleep(ev.reactor, ev.settings.poll_interval)

    def charge_parameter(self) -> Message:
        """The DC_EVChargeParameter of ChargeParameterDiscoveryReq (the same elements in DIN and ISO-2)."""
        ev = self.ev
        s = ev.settings
        return Message(
            "DC_EVChargeParameter",
            DC_EVStatus=ev.ev_status(),
            EVMaximumCurrentLimit=pv(s.max_current, "A"),
            EVMaximumPowerLimit=pv(s.max_power, "W"),
            EVMaximumVoltageLimit=pv(s.max_voltage, "V"),
            EVEnergyCapacity=pv(s.capacity_wh, "Wh"),
            EVEnergyRequest=pv(s.capacity_wh * max(0.0, s.target_soc - ev.soc) / 100.0, "Wh"),
            FullSOC=100,
            BulkSOC=int(min(100, s.target_soc)),
        )

    def target_current(self) -> float:
        """The current the battery takes now (tapering near the target SoC)."""
        ev = self.ev
        s = ev.settings
        current = min(s.max_current, s.max_power / max(ev.battery_voltage(), 1.0))
        remaining = s.target_soc - ev.soc
        if remaining < 5.0:  # taper towards the target like a real battery
            current *= max(0.2, remaining / 5.0)
        return current

    def current_demand_limits(self) -> dict:
        """The EV's limits sent with every CurrentDemandReq."""
        s = self.ev.settings
        return {
            "EVMaximumVoltageLimit": pv(s.max_voltage, "V"),
            "EVMaximumCurrentLimit": pv(s.max_current, "A"),
            "EVMaximumPowerLimit": pv(s.max_power, "W"),
        }

    def take_present_values(self, body) -> None:
        """Read EVSEPresentVoltage/Current, put the energy into the battery."""
        ev = self.ev
        ev.voltage = number(body.EVSEPresentVoltage)
        ev.current = number(body.EVSEPresentCurrent)
        ev.absorb(ev.voltage * ev.current)
