"""
The simulated charger with Plug & Charge: the simulator backend, plus what
a CSMS does for PnC, over a test PKI (``python -m evsev2g.pki create``).

:class:`PnCSimulatedCharger` is a :class:`~evsev2g.sim.charger.SimulatedCharger`
whose sessions also

* offer Contract payment and, when the PKI holds the provisioning keys, the
  certificate service (``session_setup(["Contract", "ExternalPayment"],
  supported_certificate_service, central_contract_validation_allowed)``);
* answer ``require_auth_pnc`` with ``authorization_response`` after the
  simulator's ``auth_delay`` (Accepted, or what ``authorization_status``
  says);
* answer ``iso15118_certificate_request`` with a CertificateInstallationRes
  or CertificateUpdateRes of their own making
  (:class:`~evsev2g.sim.contract_provider.ContractProvider`) after
  ``certificate_delay`` seconds.
"""

from __future__ import annotations

from pathlib import Path

from twisted.logger import Logger

from evsev2g.errors import CertificatesUnavailable
from evsev2g.exi import load_codec
from evsev2g.pki import DEFAULT_EMAID
from evsev2g.sim.charger import SimulatedCharger, SimulatorSettings
from evsev2g.sim.contract_provider import ContractProvider, attach

__all__ = ["PnCSimulatedCharger"]


class PnCSimulatedCharger(SimulatedCharger):
    """
    :param clock: ``IReactorTime``.
    :param settings: the simulator's :class:`SimulatorSettings`.
    :param certs_dir: the test PKI; without the MO Sub-CA 2 key and the CPS
        chain no certificate service is offered.
    :param emaid: the eMAID of contracts installed by the simulated backend.
    :param certificate_delay: seconds the simulated backend takes per
        certificate request.
    :param central_validation: ``central_contract_validation_allowed``.
    """

    log = Logger()

    def __init__(self, clock, settings: SimulatorSettings | None = None, certs_dir: Path | None = None,
                 emaid: str = DEFAULT_EMAID, certificate_delay: float = 0.2, central_validation: bool = False):
        super().__init__(clock, settings)
        self.certificate_delay = certificate_delay
        self.central_validation = central_validation
        self.provider = None
        if certs_dir is not None:
            try:
                self.provider = ContractProvider(Path(certs_dir), load_codec("iso15118-2"), emaid)
            except CertificatesUnavailable as error:
                self.log.warn("simulated backend: no certificate service ({why})", why=str(error))
        self._subscriptions: dict = {}

    def session_started(self, charger) -> None:
        """The simulated EVSE, then Contract payment and the PnC answers."""
        super().session_started(charger)
        charger.session_setup(["Contract", "ExternalPayment"], self.provider is not None, self.central_validation)
        stops = [charger.subscribe(lambda name, payload: self._authorize_later(charger), names=["require_auth_pnc"])]
        if self.provider is not None:
            stops.append(attach(charger, self.provider, self.clock, self.certificate_delay))
        self._subscriptions[charger] = stops

    def _authorize_later(self, charger) -> None:
        status = self.settings.authorization_status
        certificate = "Accepted" if status == "Accepted" else "CertChainError"
        self.clock.callLater(self.settings.auth_delay, charger.authorization_response, status, certificate)

    def session_ended(self, charger) -> None:
        """End the PnC subscriptions, then the simulated EVSE."""
        for stop in self._subscriptions.pop(charger, []):
            stop()
        super().session_ended(charger)
