"""
The seam where Plug & Charge plugs into the ISO 15118-2 state machine.

Everything that depends on Contract payment goes through one object, the
machine's ``contract``: whether Contract may be offered, the services it
adds (the certificate service), PaymentDetails, CertificateInstallation and
CertificateUpdate, the checks of a Contract AuthorizationReq (challenge,
signature) and of a MeteringReceiptReq's signature.

Without Plug & Charge that object is :class:`EIMOnly`: Contract is never
offered, so PaymentDetails and the certificate messages are out of
sequence (FAILED_SequenceError, [V2G2-538]), and a MeteringReceipt has no
signature to check.  A module ``evsev2g.protocols.iso15118_2.pnc`` that
defines ``ContractPath(machine)`` with the same methods replaces it
(:func:`contract_path`); the handlers do not change.  The contract path
reads the whole request (header signature included) as ``machine.request``.
"""

from __future__ import annotations

import importlib

from evsev2g.responses import SequenceError

__all__ = ["EIMOnly", "contract_path", "PNC_MODULE"]

#: The module that brings the Contract path, when installed.
PNC_MODULE = "evsev2g.protocols.iso15118_2.pnc"


class EIMOnly:
    """The payment path of a set-up without Plug & Charge (external identification only)."""

    #: Contract may be offered (over TLS).
    supports_contract = False

    def __init__(self, machine) -> None:
        """:param machine: the ISO 15118-2 state machine."""
        self.machine = machine

    def services(self) -> list:
        """ServiceList entries of the contract path (the certificate service): none."""
        return []

    def service_detail(self, service_id: int):
        """ServiceDetailRes of one of :meth:`services` (never called here)."""
        raise SequenceError(f"service {service_id} belongs to Plug & Charge, which is not installed")

    def payment_details(self, body):
        """PaymentDetails needs Contract payment, never offered here: FAILED_SequenceError."""
        raise SequenceError("PaymentDetailsReq needs Contract payment; only ExternalPayment is served")

    def certificate_installation(self, body):
        """No certificate service offered: FAILED_SequenceError."""
        raise SequenceError("CertificateInstallationReq: no certificate service is offered")

    def certificate_update(self, body):
        """No certificate service offered: FAILED_SequenceError."""
        raise SequenceError("CertificateUpdateReq: no certificate service is offered")

    def authorization(self, body) -> bool:
        """A Contract AuthorizationReq (never reached: Contract is not offered)."""
        raise SequenceError("AuthorizationReq for Contract payment, which is not served")

    def metering_receipt(self, body) -> None:
        """EIM: a MeteringReceipt carries nothing to verify."""


def contract_path(machine):
    """
    :param machine: the ISO 15118-2 state machine.
    :returns: ``pnc.ContractPath(machine)`` when :data:`PNC_MODULE` is
        installed, else :class:`EIMOnly`.
    """
    try:
        module = importlib.import_module(PNC_MODULE)
    except ModuleNotFoundError as error:
        if error.name != PNC_MODULE:
            raise
        return EIMOnly(machine)
    return module.ContractPath(machine)
