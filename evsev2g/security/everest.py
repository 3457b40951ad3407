"""
The security provider of the EVerest backend: EvseSecurity over MQTT
(EVerest's ``evse_security`` interface).

:meth:`EverestSecurity.refresh` asks EvseSecurity, once at start-up and
again after every ``certificate_store_update``, for what must be at hand
synchronously (:class:`~evsev2g.interfaces.ISecurity`):

- ``get_all_valid_certificates_info(V2G, PEM, include_ocsp=true)``: the SECC
  chain and key files (EvseSecurity's own files, on this machine) and the
  V2G root, checked with :func:`~evsev2g.security.credentials.check_credentials`
  as the file provider does;
- ``get_verify_file`` for V2G, MO, CSMS and MF: the CA bundles.

The session-time questions (``verify_certificate``,
``get_mo_ocsp_request_data``, ``get_v2g_ocsp_request_data``) are command
calls whose Deferred result is returned as it is; they are bounded by
:data:`CALL_TIMEOUT`.  After a store update the fetched state is replaced
before the subscribers (the TLS server's
:class:`~evsev2g.security.reload.ReloadingTLSCreator`) hear of it, so the TLS
server reloads its chain without dropping running sessions.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from twisted.internet.defer import Deferred, DeferredList, fail
from twisted.logger import Logger
from zope.interface import implementer

from evsev2g.errors import CertificatesUnavailable
from evsev2g.interfaces import ISecurity
from evsev2g.security.credentials import TLSCredentials, check_credentials, read_certificates, read_private_key

__all__ = ["EverestSecurity", "CA_TYPES", "CALL_TIMEOUT"]

#: The CA bundles asked for (EVerest's CaCertificateType).
CA_TYPES = ("V2G", "MO", "CSMS", "MF")

#: Longest wait for EvseSecurity's answer (s): well inside the EV's 2 s per
#: message for the session-time calls would be ideal, but EvseSecurity may be
#: slow on first use; the callers bound their own waits.
CALL_TIMEOUT = 10.0


@implementer(ISecurity)
class EverestSecurity:
    """
    :param module: the :class:`~evsev2g.everest.module.EverestModule`.
    :param clock: ``IReactorTime`` (unused but for symmetry with tests).
    :param now: the current time, timezone-aware (tests pass a fixed one).
    :ivar peer: ``(module_id, implementation_id)`` of EvseSecurity, or ``None``.
    """

    log = Logger()

    def __init__(self, module, clock, now=lambda: datetime.datetime.now(datetime.timezone.utc)) -> None:
        self.module = module
        self.clock = clock
        self.peer: tuple[str, str] | None = None
        self._now = now
        self._credentials: TLSCredentials | None = None
        self._problem = "EvseSecurity has not been asked yet"
        self._bundles: dict[str, Path] = {}
        self._subscribers: list = []
        self._chain_path = ""

    def connect(self, module_id: str, impl: str) -> None:
        """Use EvseSecurity ``module_id``/``impl``; follow its store updates."""
        self.peer = (module_id, impl)
        self.module.subscribe_var(module_id, impl, "certificate_store_update", self._store_updated)

    def _call(self, name: str, args: dict) -> Deferred:
        if self.peer is None:
            return fail(CertificatesUnavailable("no evse_security module is connected (requirement 'security')"))
        return self.module.call(self.peer[0], self.peer[1], name, args, timeout=CALL_TIMEOUT)

    # -- fetching ------------------------------------------------------------------

    def refresh(self) -> Deferred:
        """
        Fetch the TLS chain and the CA bundles again.

        :returns: a ``Deferred`` firing with ``None`` when done (problems
            are logged and kept for :meth:`tls_server_credentials`).
        """
        chain = self._call("get_all_valid_certificates_info", {"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": True})
        chain.addCallbacks(self._got_chain, self._chain_failed)
        bundles = [self._call("get_verify_file", {"certificate_type": ca}).addCallbacks(self._got_bundle, self._bundle_failed, (ca,), None, (ca,)) for ca in CA_TYPES]
        return DeferredList([chain] + bundles, consumeErrors=True).addCallback(lambda _: None)

    def _got_chain(self, result) -> None:
        try:
            self._credentials = self._credentials_from(result)
            self._problem = ""
            self.log.info("EvseSecurity: TLS chain {path}", path=self._chain_path)
        except CertificatesUnavailable as error:
            self._credentials, self._problem = None, f"EvseSecurity: {error}"
            self.log.warn("{problem}", problem=self._problem)

    def _chain_failed(self, failure) -> None:
        self._credentials, self._problem = None, f"EvseSecurity did not give the TLS chain: {failure.getErrorMessage()}"
        self.log.warn("{problem}", problem=self._problem)

    def _credentials_from(self, result) -> TLSCredentials:
        if not isinstance(result, dict) or result.get("status") != "Accepted" or not result.get("info"):
            status = result.get("status") if isinstance(result, dict) else repr(result)
            raise CertificatesUnavailable(f"no valid V2G leaf (status {status})")
        problems = []
        for info in result["info"]:
            try:
                path = info.get("certificate") or info.get("certificate_single")
                if not path:
                    raise CertificatesUnavailable("no certificate path in the answer")
                self._chain_path = path
                chain = read_certificates(Path(path))
                password = info.get("password")
                key = read_private_key(Path(info["key"]), password.encode() if password else None)
                root_pem = info.get("certificate_root")
                root = None
                if root_pem:
                    from cryptography import x509

                    root = x509.load_pem_x509_certificate(root_pem.encode())
                return check_credentials(chain, key, root, self._now())
            except (CertificatesUnavailable, KeyError, ValueError, OSError) as error:
                problems.append(str(error))
        raise CertificatesUnavailable("; ".join(problems))

    def _got_bundle(self, path, ca: str) -> None:
        if isinstance(path, str) and path:
            self._bundles[ca] = Path(path)
        else:
            self._bundles.pop(ca, None)

    def _bundle_failed(self, failure, ca: str) -> None:
        self._bundles.pop(ca, None)
        self.log.info("EvseSecurity has no {ca} bundle: {problem}", ca=ca, problem=failure.getErrorMessage())

    def _store_updated(self, update) -> None:
        if not isinstance(update, dict):
            self.log.warn("certificate_store_update with a bad payload ignored: {payload!r}", payload=update)
            return
        self.log.info("EvseSecurity: certificate store updated ({update})", update=update)

        def tell(_):
            for callback in list(self._subscribers):
                try:
                    callback(update)
                except Exception:
                    self.log.failure("certificate store subscriber failed")

        self.refresh().addCallback(tell)

    # -- ISecurity -------------------------------------------------------------------

    def tls_server_credentials(self) -> TLSCredentials:
        """The chain fetched last, or :class:`CertificatesUnavailable` saying why there is none."""
        if self._credentials is None:
            raise CertificatesUnavailable(self._problem)
        return self._credentials

    def verify_file(self, ca_type: str) -> Path:
        """The bundle EvseSecurity named for ``ca_type``."""
        if ca_type not in CA_TYPES:
            raise ValueError(f"unknown CA type {ca_type!r}; known: {', '.join(CA_TYPES)}")
        try:
            return self._bundles[ca_type]
        except KeyError:
            raise CertificatesUnavailable(f"EvseSecurity named no {ca_type} bundle") from None

    def verify_certificate(self, certificate_chain: str, certificate_types):
        """EvseSecurity's ``verify_certificate``: a Deferred firing with a CertificateValidationResult."""
        return self._call("verify_certificate", {"certificate_chain": certificate_chain, "certificate_types": list(certificate_types)})

    def mo_ocsp_request_data(self, certificate_chain: str):
        """EvseSecurity's ``get_mo_ocsp_request_data``: a Deferred firing with an OCSPRequestDataList."""
        return self._call("get_mo_ocsp_request_data", {"certificate_chain": certificate_chain})

    def v2g_ocsp_request_data(self):
        """EvseSecurity's ``get_v2g_ocsp_request_data``: a Deferred firing with an OCSPRequestDataList."""
        return self._call("get_v2g_ocsp_request_data", {})

    def subscribe_store_updates(self, callback):
        """Hear of every ``certificate_store_update``, after the new state was fetched."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None
