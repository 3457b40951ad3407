"""
What the charger hears when a V2G session ends.

EvseManager relies on exactly one of ``dlink_terminate`` / ``dlink_error`` /
``dlink_pause`` after every session, and on ``hlc_session_failed`` with a
reason derived from the last request when the session did not end with a
successful SessionStop.  Unlike EvseV2G (whose suppression is dead code) we
do not publish ``hlc_session_failed`` after a stop the charger asked for
itself.  (``current_demand_finished`` and opening the contactors are the
state machine's, at once when the session ends:
:meth:`~evsev2g.interfaces.IProtocolStateMachine.end_energy_transfer`.)
"""

from __future__ import annotations

__all__ = ["FAILURE_REASON_BY_REQUEST", "failure_reason", "publish_session_end"]

#: hlc_session_failed reason by the last request seen (EvseV2G's grouping).
FAILURE_REASON_BY_REQUEST = {
    None: "ProtocolNegotiationFailed",
    "supportedAppProtocolReq": "ProtocolNegotiationFailed",
    "SessionSetupReq": "ProtocolNegotiationFailed",
    "ServiceDiscoveryReq": "ChargingParametersNotAccepted",
    "ServiceDetailReq": "ChargingParametersNotAccepted",
    "ChargeParameterDiscoveryReq": "ChargingParametersNotAccepted",
    "ServicePaymentSelectionReq": "AuthorizationFailed",
    "PaymentServiceSelectionReq": "AuthorizationFailed",
    "PaymentDetailsReq": "AuthorizationFailed",
    "ContractAuthenticationReq": "AuthorizationFailed",
    "AuthorizationReq": "AuthorizationFailed",
    "CertificateInstallationReq": "AuthorizationFailed",
    "CertificateUpdateReq": "AuthorizationFailed",
    "CableCheckReq": "EnergyTransferSetupFailed",
    "PreChargeReq": "EnergyTransferSetupFailed",
    "PowerDeliveryReq": "EnergyTransferSetupFailed",
    "CurrentDemandReq": "ChargingInterrupted",
    "ChargingStatusReq": "ChargingInterrupted",
    "MeteringReceiptReq": "ChargingInterrupted",
    "SessionStopReq": None,
    "WeldingDetectionReq": None,
}


def failure_reason(last_request: str | None, tls_failed: bool = False) -> str | None:
    """
    The ``hlc_session_failed`` reason for a session that ended without a
    successful SessionStop.

    :param last_request: body element name of the last request, or ``None``.
    :param tls_failed: the TLS handshake failed.
    :returns: a HlcSessionFailedReasonEnum value, or ``None`` for "nothing to
        report" (the EV was already stopping).
    """
    if tls_failed:
        return "FailedTLSHandshake"
    return FAILURE_REASON_BY_REQUEST.get(last_request, "UnexpectedSessionEnd")


def publish_session_end(charger, *, last_request, clean_stop, dlink="error", charger_stopped=False) -> None:
    """
    Publish the end-of-session vars on ``charger``.

    :param charger: the session's ``ICharger``.
    :param last_request: body element name of the last request, or ``None``.
    :param clean_stop: the session ended with a successful SessionStop.
    :param dlink: ``"terminate"``, ``"pause"`` or ``"error"`` (for an
        unclean end ``"error"`` is forced).
    :param charger_stopped: the charger had asked to stop
        (``stop_charging``/emergency): no ``hlc_session_failed``.
    :returns: ``None``.
    """
    if not clean_stop:
        reason = failure_reason(last_request)
        if reason is not None and not charger_stopped:
            charger.publish("hlc_session_failed", reason)
        dlink = "error"
    charger.publish("dlink_" + dlink)
