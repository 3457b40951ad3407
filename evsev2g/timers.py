"""
SECC timers and limits, named after DIN SPEC 70121 (Tables 75–77) and
ISO 15118-2 (Tables 109 and 111).

All values are seconds.  The standards give the same figures for the SECC
side of both protocols unless noted.  :class:`Timers` bundles them so that a
deployment can override them from configuration (test benches shorten
them); the defaults are the standard's.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "V2G_SECC_SEQUENCE_TIMEOUT",
    "V2G_SECC_COMMUNICATION_SETUP_PERFORMANCE_TIME",
    "V2G_SECC_ONGOING_PERFORMANCE_TIME",
    "V2G_SECC_CABLE_CHECK_PERFORMANCE_TIME",
    "V2G_SECC_PRE_CHARGE_PERFORMANCE_TIME",
    "V2G_SECC_MSG_PERFORMANCE_TIME",
    "V2G_SECC_CURRENT_DEMAND_PERFORMANCE_TIME",
    "STOP_CHARGING_GRACE_TIME",
    "V2G_SECC_LONG_MSG_PERFORMANCE_TIME",
    "AC_CONTACTOR_CLOSE_TIME",
    "NO_ENERGY_PAUSE_NOTIFICATION_DELAY",
    "RENEGOTIATION_NOTIFICATION_DELAY",
    "performance_time",
    "Timers",
]

#: How long the SECC waits for the next request before it ends the session
#: and closes the connection ([V2G2-443], [V2G2-537]; DIN Table 76).
V2G_SECC_SEQUENCE_TIMEOUT = 60.0

#: From ``dlink_ready`` to an accepted TCP/TLS connection; on expiry the
#: SECC reports ``dlink_error`` ([V2G2-714], [V2G2-716], [V2G2-723]).
V2G_SECC_COMMUNICATION_SETUP_PERFORMANCE_TIME = 18.0

#: Longest EVSEProcessing=Ongoing loop the SECC may run before it answers
#: FAILED, inside the EV's 60 s V2G_EVCC_Ongoing_Timeout ([V2G2-712],
#: [V2G2-713]).  Applies to ChargeParameterDiscovery; authorization has its
#: own configurable bound (``auth_timeout_eim``).
V2G_SECC_ONGOING_PERFORMANCE_TIME = 55.0

#: Longest CableCheck loop, inside the EV's 40 s V2G_EVCC_CableCheck_Timeout
#: ([V2G2-700]…[V2G2-703]).
V2G_SECC_CABLE_CHECK_PERFORMANCE_TIME = 38.0

#: Time the SECC has to reach the EV's target voltage in PreCharge, inside
#: the EV's 7 s V2G_EVCC_PreCharge_Timeout ([V2G2-704]…[V2G2-707]).  The EV
#: decides; the SECC logs when it is late.
V2G_SECC_PRE_CHARGE_PERFORMANCE_TIME = 5.0

#: Time to answer any request but CurrentDemand (DIN Table 75, ISO
#: Table 109: 1.5 s; the EV waits 2 s).
V2G_SECC_MSG_PERFORMANCE_TIME = 1.5

#: Time to answer CurrentDemandReq (DIN Table 75, ISO Table 109: 25 ms;
#: the EV waits 250 ms).
V2G_SECC_CURRENT_DEMAND_PERFORMANCE_TIME = 0.025

#: Time to answer ServiceDetail, PaymentDetails, CertificateInstallation,
#: CertificateUpdate and PowerDelivery in ISO 15118-2 (Table 109: 4.5 s;
#: the EV waits 5 s).
V2G_SECC_LONG_MSG_PERFORMANCE_TIME = 4.5

#: ISO 15118-2 AC: after ``ac_close_contactor`` the charger has this long to
#: report ``ac_contactor_closed(true)``, else FAILED_ContactorError
#: ([V2G2-860], [V2G2-862], [V2G2-865]; EvseV2G's figure).
AC_CONTACTOR_CLOSE_TIME = 3.0

#: NotificationMaxDelay with a no-energy pause after pre-charge (IEC
#: 61851-23:2023 CC.3.5; EvseV2G's figure), in s.
NO_ENERGY_PAUSE_NOTIFICATION_DELAY = 300

#: NotificationMaxDelay of EVSENotification=ReNegotiation, in s (our
#: choice: the EV renegotiates at its next convenient point).
RENEGOTIATION_NOTIFICATION_DELAY = 60

#: After ``stop_charging(True)`` the EV gets this long to end the session
#: on its own (it sees EVSE_Shutdown, [V2G-DC-663]); afterwards every
#: response is FAILED.  EvseV2G's figure, not the standard's.
STOP_CHARGING_GRACE_TIME = 10.0


#: Requests answered within :data:`V2G_SECC_LONG_MSG_PERFORMANCE_TIME` in ISO 15118-2.
_LONG = frozenset({"ServiceDetailRes", "PaymentDetailsRes", "CertificateInstallationRes", "CertificateUpdateRes"})


def performance_time(response_name: str, iso: bool) -> float:
    """
    V2G_SECC_*_Performance_Time of one response.

    :param response_name: e.g. ``"CurrentDemandRes"``.
    :param iso: ISO 15118-2 (PowerDelivery and the others of :data:`_LONG`
        have 4.5 s there; DIN allows 1.5 s for all but CurrentDemand).
    :returns: seconds.
    """
    if response_name == "CurrentDemandRes":
        return V2G_SECC_CURRENT_DEMAND_PERFORMANCE_TIME
    if iso and (response_name in _LONG or response_name == "PowerDeliveryRes"):
        return V2G_SECC_LONG_MSG_PERFORMANCE_TIME
    return V2G_SECC_MSG_PERFORMANCE_TIME


@dataclass(frozen=True)
class Timers:
    """
    The timer values one SECC uses; defaults are the standard's.

    :ivar sequence_timeout: V2G_SECC_Sequence_Timeout.
    :ivar communication_setup: V2G_SECC_CommunicationSetup_Performance_Time.
    :ivar ongoing: V2G_SECC_Ongoing_Performance_Time.
    :ivar cable_check: V2G_SECC_CableCheck_Performance_Time.
    :ivar pre_charge: V2G_SECC_PreCharge_Performance_Time.
    :ivar stop_charging_grace: :data:`STOP_CHARGING_GRACE_TIME`.
    """

    sequence_timeout: float = V2G_SECC_SEQUENCE_TIMEOUT
    communication_setup: float = V2G_SECC_COMMUNICATION_SETUP_PERFORMANCE_TIME
    ongoing: float = V2G_SECC_ONGOING_PERFORMANCE_TIME
    cable_check: float = V2G_SECC_CABLE_CHECK_PERFORMANCE_TIME
    pre_charge: float = V2G_SECC_PRE_CHARGE_PERFORMANCE_TIME
    stop_charging_grace: float = STOP_CHARGING_GRACE_TIME

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"timer {name} must be positive, not {value!r}")


def cancel_call(call) -> None:
    """Cancel a delayed call (``IDelayedCall``) unless it is ``None``, has run or was cancelled already."""
    if call is not None and call.active():
        call.cancel()
