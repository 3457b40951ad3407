"""
The Contract path of the ISO 15118-2 state machine: Plug & Charge.

The machine looks this module up by name
(:data:`evsev2g.protocols.iso15118_2.contract.PNC_MODULE`) and calls
:class:`ContractPath` for everything Contract payment adds; the work is
done by :class:`~evsev2g.protocols.iso15118_2.pnc_session.PlugAndCharge`.

* Contract payment is offered over TLS only (the machine asks
  :attr:`ContractPath.supports_contract` and checks the link).
* The certificate service (ServiceID 2, ``ContractCertificate``; parameter
  set 1 Installation, 2 Update) is listed when ``session_setup`` says
  ``supported_certificate_service`` and the link is TLS (EvseV2G §8.4).
* CertificateInstallationRes / CertificateUpdateRes are the backend's, sent
  with its header Signature (``machine.reply_signature``).
* Signed SalesTariffs where a signing key exists (the test PKI's MO
  Sub-CA 2): each SAScheduleTuple of ChargeParameterDiscoveryRes gets a
  flat SalesTariff, signed in the header.

The Plug & Charge work (:class:`~evsev2g.protocols.iso15118_2.pnc_session.PlugAndCharge`,
contract chains, XML signatures) is imported and set up when an EV first
needs it; an EIM session over TLS, which is offered Contract and declines,
never loads it.
"""

from __future__ import annotations

from twisted.internet import defer

from evsev2g.exi import load_codec
from evsev2g.exi.message import Message
from evsev2g.responses import SequenceError, ServiceIDInvalid

__all__ = ["ContractPath", "CERTIFICATE_SERVICE_ID"]

#: ServiceID of the certificate service (ISO 15118-2 Table 105).
CERTIFICATE_SERVICE_ID = 2

#: ParameterSetID → the value of its "Service" parameter.
CERTIFICATE_PARAMETER_SETS = {1: "Installation", 2: "Update"}


def sales_tariff(identifier: str, tariff_id: int, duration: int) -> Message:
    """
    A flat SalesTariff for one schedule: one price level over the whole
    schedule (what the simulated backend sells; a real tariff would come
    from the backend).
    """
    return Message(
        "SalesTariff", attrs={"Id": identifier}, SalesTariffID=tariff_id, NumEPriceLevels=1,
        SalesTariffEntry=[Message("SalesTariffEntry", RelativeTimeInterval=Message("RelativeTimeInterval", start=0, duration=duration),
                                  EPriceLevel=1)],
    )


class ContractPath:
    """
    :param machine: the session's ISO 15118-2 state machine; its context
        gives the charger, clock, label, ``secure``, ``security`` and the
        ``verify_contract_cert_chain`` / ``auth_timeout_pnc`` settings.
    """

    #: Contract may be offered (over TLS).
    supports_contract = True

    def __init__(self, machine) -> None:
        self.machine = machine
        self.context = machine.context
        self._session = None

    @property
    def session(self):
        """The session's :class:`~evsev2g.protocols.iso15118_2.pnc_session.PlugAndCharge`, made on first use."""
        if self._session is None:
            from evsev2g.protocols.iso15118_2.pnc_session import PlugAndCharge

            context = self.context
            self._session = PlugAndCharge(
                context.charger,
                context.clock,
                load_codec("iso15118-2"),
                getattr(context, "security", None),
                verify_chain=getattr(context.settings, "verify_contract_cert_chain", False),
                auth_timeout=context.settings.auth_timeout_pnc,
                label=context.label,
            )
        return self._session

    def _header(self) -> Message:
        return self.machine.request.Header

    # -- services ----------------------------------------------------------------

    def services(self) -> list:
        """
        :returns: the certificate service entry when the charger offers it
            and the link is TLS, else nothing.
        """
        if not (self.context.secure and self.context.charger.supported_certificate_service):
            return []
        return [Message("Service", ServiceID=CERTIFICATE_SERVICE_ID, ServiceName="Certificate",
                        ServiceCategory="ContractCertificate", FreeService=True)]

    def service_detail(self, service_id: int) -> Message:
        """:returns: ServiceDetailRes of the certificate service: Installation and Update."""
        if service_id != CERTIFICATE_SERVICE_ID:
            raise ServiceIDInvalid(f"service {service_id} is not the contract path's")
        sets = [
            Message("ParameterSet", ParameterSetID=identifier,
                    Parameter=[Message("Parameter", attrs={"Name": "Service"}, stringValue=value)])
            for identifier, value in CERTIFICATE_PARAMETER_SETS.items()
        ]
        return Message("ServiceDetailRes", ResponseCode="OK", ServiceID=service_id,
                       ServiceParameterList=Message("ServiceParameterList", ParameterSet=sets))

    # -- requests --------------------------------------------------------------------

    def _contract_selected(self, name: str) -> None:
        """PaymentDetails and the certificate messages follow Contract payment only ([V2G2-538])."""
        if self.machine.payment_option != "Contract":
            raise SequenceError(f"{name} needs Contract payment; {self.machine.payment_option} was selected")

    def payment_details(self, body) -> defer.Deferred:
        """:returns: a Deferred firing ``(PaymentDetailsRes, False)``."""
        self._contract_selected("PaymentDetailsReq")
        return self.session.payment_details(body).addCallback(lambda reply: (reply, False))

    def certificate_installation(self, body) -> defer.Deferred:
        """:returns: a Deferred firing ``(CertificateInstallationRes, False)`` (the backend's, signed)."""
        return self._certificate(body, "Install", "CertificateInstallationRes")

    def certificate_update(self, body) -> defer.Deferred:
        """:returns: a Deferred firing ``(CertificateUpdateRes, False)`` (the backend's, signed)."""
        return self._certificate(body, "Update", "CertificateUpdateRes")

    def _certificate(self, body, action: str, response_name: str) -> defer.Deferred:
        self._contract_selected(response_name[:-3] + "Req")
        def relay(message: Message):
            self.machine.reply_signature = message.Header.get("Signature")
            return message.Body.get(response_name), False

        return self.session.certificate_request(self.machine.request, action).addCallback(relay)

    def sales_tariffs(self, schedule: Message, duration: int) -> Message:
        """
        On an authorized PnC session, with a tariff signer available (the
        provider's ``tariff_signer()``), give each SAScheduleTuple a
        SalesTariff signed with the MO Sub-CA 2 key; the header Signature
        goes out with ChargeParameterDiscoveryRes.

        :returns: ``schedule``, changed in place.
        """
        if self._session is None or self._session.chain is None:  # no contract accepted (yet)
            return schedule
        signer = getattr(self.session.security, "tariff_signer", None)
        signing = signer() if signer is not None else None
        if signing is None:
            return schedule
        from evsev2g.security import xmldsig

        _, key = signing
        tariffs = []
        for index, tuple_ in enumerate(schedule.getlist("SAScheduleTuple")):
            tariff = sales_tariff(f"tariff{index + 1}", tuple_.SAScheduleTupleID, duration)
            tuple_.set("SalesTariff", tariff)
            tariffs.append(tariff)
        if tariffs:
            self.machine.reply_signature = xmldsig.sign(self.session.codec, tariffs[:xmldsig.MAX_REFERENCES], key)
        return schedule

    def authorization(self, body) -> bool:
        """:returns: authorized (Finished) or not yet (Ongoing); raises the FAILED cases."""
        return self.session.authorization(body, self._header())

    def metering_receipt(self, body) -> None:
        """Checks the receipt's signature on a PnC session (none has started: nothing to check)."""
        if self._session is not None:
            self._session.metering_receipt(body, self._header())
