"""
The EV simulator's ISO 15118-2 Plug & Charge flow (Contract payment, over
TLS): the EIM flow of :mod:`evsev2g.sim.ev_iso2` with the Contract steps.

SessionSetup; ServiceDiscovery (Contract must be offered; with no contract,
or one expiring within 21 days, the certificate service too);
PaymentServiceSelection(Contract, the charge service and, when needed, the
certificate service with parameter set 1 Installation or 2 Update);
CertificateInstallation (signed with the OEM provisioning key) or
CertificateUpdate (signed with the old contract key), whose response the
EV checks (CPS chain to its V2G root, four signed references) and whose
encrypted key it decrypts; PaymentDetails with the contract chain; the
first AuthorizationReq with the GenChallenge, signed with the contract key,
then empty ones while the SECC answers Ongoing ([V2G2-684]); then charging
as with EIM, SalesTariffs in the schedule checked against the contract's
MO Sub-CA 2, MeteringReceipts signed with the contract key.

The EV's files (``settings.certs_dir``, :mod:`evsev2g.security.layout`
names): ``client/oem/OEM_LEAF.{pem,key}``, ``ca/v2g/V2G_ROOT_CA.pem`` and,
when it has one, ``client/mo/CONTRACT_CERT_CHAIN.pem`` with
``CONTRACT_LEAF.key``.  An installed or updated contract is kept for the
rest of the run (a pause and resume reuses it), not written to disk.
"""

from __future__ import annotations

import datetime

from evsev2g.exi.message import Message
from evsev2g.responses import ProtocolError
from evsev2g.security.contract import EXPIRES_SOON
from evsev2g.security import xmldsig
from evsev2g.sim import ev_pnc
from evsev2g.sim.ev_iso2 import ISO2Flow
from evsev2g.sim.ev_settings import EVStop

__all__ = ["PnCFlow", "CERTIFICATE_TIMEOUT"]

#: V2G_EVCC_Msg_Timeout of PaymentDetails, CertificateInstallation and
#: CertificateUpdate (ISO 15118-2 Table 109).
CERTIFICATE_TIMEOUT = 5.0

#: The certificate service and its parameter sets.
CERTIFICATE_SERVICE = 2
INSTALLATION, UPDATE = 1, 2


def utc_now() -> datetime.datetime:
    """:returns: the current time, timezone-aware UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


class PnCFlow(ISO2Flow):
    """
    :ivar contract: the EV's :class:`~evsev2g.sim.ev_pnc.EVContract`, or
        ``None`` until one is installed.
    :ivar certificate_actions: ``"Installation"`` / ``"Update"`` done, in order.
    :ivar payment_details_code: the last PaymentDetailsRes ResponseCode.
    :ivar tariffs_verified: signed SalesTariffs checked (MO Sub-CA 2).
    """

    def __init__(self, ev) -> None:
        super().__init__(ev)
        self.identity: ev_pnc.EVIdentity | None = None
        self.contract: ev_pnc.EVContract | None = None
        self.certificate_actions: list[str] = []
        self.payment_details_code: str | None = None
        self.tariffs_verified = 0

    async def run(self) -> str:
        """Read the EV's certificates (EVStop 1 saying which file is wrong), then the session."""
        directory = self.ev.settings.certs_dir
        if directory is None:
            raise EVStop(1, "Plug & Charge needs the EV's certificate directory (--certs-dir)")
        try:
            self.identity = ev_pnc.EVIdentity.from_directory(directory)
            self.contract = ev_pnc.EVContract.from_directory(directory)
        except Exception as error:  # a missing or unreadable file: say which
            raise EVStop(1, f"the EV's certificates in {directory} are unusable: {error}") from None
        return await super().run()

    def _certificate_action(self) -> int | None:
        """The certificate parameter set the EV needs now, or ``None``."""
        if self.contract is None:
            return INSTALLATION
        if self.contract.chain.leaf.not_valid_after_utc - utc_now() < EXPIRES_SOON:
            return UPDATE
        return None

    async def _setup(self, resuming: bool) -> None:
        """SessionSetup … Authorization with Contract payment."""
        ev = self.ev
        s = ev.settings
        discovery = await self._discover(resuming, "Contract")
        extra = ()
        action = self._certificate_action()
        if action is not None:
            listed = discovery.get("ServiceList")
            ids = [service.ServiceID for service in listed.getlist("Service")] if listed is not None else []
            if CERTIFICATE_SERVICE not in ids:
                raise EVStop(2, "the EV needs a contract certificate and the SECC offers no certificate service")
            extra = (Message("SelectedService", ServiceID=CERTIFICATE_SERVICE, ParameterSetID=action),)
        await self._select("Contract", discovery, extra)
        if action == INSTALLATION:
            await self._certificate("CertificateInstallationReq", *ev_pnc.install_request(ev.codec, self.identity))
        elif action == UPDATE:
            await self._certificate("CertificateUpdateReq", *ev_pnc.update_request(ev.codec, self.identity, self.contract))
        ev.enter("payment details")
        details = await ev.exchange("PaymentDetailsReq", Message(
            "PaymentDetailsReq", eMAID=self.contract.emaid, ContractSignatureCertChain=self.contract.cert_chain()),
            timeout=CERTIFICATE_TIMEOUT)
        self.payment_details_code = details.ResponseCode
        ev.enter("authorization")
        body, signature = ev_pnc.authorization_request(ev.codec, self.contract, details.GenChallenge)
        first = await ev.exchange("AuthorizationReq", body, signature=signature)
        if first.EVSEProcessing != "Finished":
            await ev.poll("AuthorizationReq", lambda: Message("AuthorizationReq"), s.ongoing_timeout, "authorization")

    async def _certificate(self, name: str, body: Message, signature: Message) -> None:
        """One CertificateInstallation / CertificateUpdate exchange; the new contract replaces the old."""
        ev = self.ev
        what = "installation" if name == "CertificateInstallationReq" else "update"
        ev.enter(f"certificate {what}")
        await ev.exchange(name, body, timeout=CERTIFICATE_TIMEOUT, signature=signature)
        try:
            self.contract = ev_pnc.accept_certificate_response(
                ev.codec, ev.last_response, self.identity, utc_now(), current=self.contract if what == "update" else None)
        except ProtocolError as error:
            raise EVStop(2, f"the certificate {what} response is not acceptable: {error}") from None
        self.certificate_actions.append(what.capitalize())

    async def _charge_parameters(self) -> None:
        """As with EIM; SalesTariffs in the schedule must be signed by the contract's MO Sub-CA 2."""
        await super()._charge_parameters()
        response = self.ev.last_response
        body = response.Body.ChargeParameterDiscoveryRes
        tariffs = [t.SalesTariff for t in body.SAScheduleList.getlist("SAScheduleTuple") if t.get("SalesTariff") is not None]
        if not tariffs:
            return
        if not self.contract.chain.sub_cas:
            raise EVStop(2, "signed SalesTariffs, but the contract chain has no MO Sub-CA to check them with")
        elements = {tariff.attrs.get("Id"): tariff for tariff in tariffs}
        try:
            xmldsig.verify(self.ev.codec, response.Header.get("Signature"), elements,
                           self.contract.chain.sub_cas[0].public_key(), required=list(elements))
        except ProtocolError as error:
            raise EVStop(2, f"the SalesTariff signature does not hold: {error}") from None
        self.tariffs_verified += len(tariffs)

    async def _metering_receipt(self, meter, status: str) -> None:
        """MeteringReceipt for the MeterInfo just received, signed with the contract key."""
        ev = self.ev
        body, signature = ev_pnc.metering_receipt_request(ev.codec, self.contract, ev.session_id, meter, self.schedule_id)
        response = await ev.exchange("MeteringReceiptReq", body, signature=signature)
        ev.result.receipts += 1
        if status == "DC_EVSEStatus":
            ev.check_evse(response.get(status))
