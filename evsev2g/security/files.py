"""
The file-based security provider: a certificate directory in the layout of
EVerest's EvseSecurity (:mod:`evsev2g.security.layout`), read as is.

The TLS chain is ``client/cso/CPO_CERT_CHAIN.pem`` (leaf, Sub-CA 2, Sub-CA 1),
or, when that file is absent, ``client/cso/SECC_LEAF.pem`` with the two CPO
Sub-CAs from ``ca/cso/``.  Without those names (EvseSecurity names leaves it
installs itself), the newest valid leaf in ``client/cso/`` whose key is a
``*.key`` file there is taken.  The key is ``client/cso/SECC_LEAF.key``; when it is
encrypted its password is the first line of ``SECC_LEAF_PASSWORD.txt`` beside
it.  The chain must lead to ``ca/v2g/V2G_ROOT_CA.pem``.

Contract chains are verified (:meth:`FileSecurity.verify_certificate`) with
:mod:`evsev2g.security.contract` against the MO and V2G bundles; OCSP
request data comes from :mod:`evsev2g.security.ocsp`.  Both are imported on
first use: a charger without Plug & Charge never loads them.

Changes: :meth:`FileSecurity.check_for_changes` compares each file's size,
modification time and inode with what it saw last and tells the
subscribers (:meth:`FileSecurity.subscribe_store_updates`) what changed, in
EvseSecurity's ``CertificateStoreUpdate`` shape; :meth:`FileSecurity.watch`
runs it periodically on an injected clock.  Replacing a file atomically
(write then rename) is what an installer should do; a half-written chain is
refused by the TLS server's reload, which keeps the old one.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

from zope.interface import implementer

from cryptography import x509
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from evsev2g.errors import CertificatesUnavailable
from evsev2g.interfaces import ISecurity
from evsev2g.responses import CertChainError, CertificateExpired, NoTrustedRoot
from evsev2g.security import layout
from evsev2g.security.credentials import (
    TLSCredentials,
    check_credentials,
    read_certificates,
    read_private_key,
    signed_by,
)

log = Logger()

#: Seconds between two looks at the certificate files while the service runs.
CERTS_CHECK_INTERVAL = 10.0

#: Which files make up each kind of store entry, for change detection:
#: (CertificateStoreUpdate key, type) → layout paths.
WATCHED = {
    ("leaf_certificate_type", "V2G"): (
        layout.SECC_LEAF, layout.SECC_LEAF_KEY, layout.SECC_LEAF_PASSWORD, layout.CPO_CERT_CHAIN,
        layout.CPO_SUB_CA1, layout.CPO_SUB_CA2, layout.SECC_LEAF.parent,  # the directory: leaves added or renamed
    ),
    ("ca_certificate_type", "V2G"): (layout.V2G_ROOT,),
    ("ca_certificate_type", "MO"): (layout.MO_ROOT, layout.MO_SUB_CA1, layout.MO_SUB_CA2),
    ("ca_certificate_type", "CSMS"): (layout.CSMS_ROOT,),
    ("ca_certificate_type", "MF"): (layout.MF_ROOT,),
}

#: ``verify_certificate``'s answer for each contract-chain failure.
_VALIDATION_RESULT = ((NoTrustedRoot, "IssuerNotFound"), (CertificateExpired, "Expired"), (CertChainError, "InvalidChain"))


def utc_now() -> datetime.datetime:
    """:returns: the current time, timezone-aware UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


@implementer(ISecurity)
class FileSecurity:
    """
    Certificates and keys from files under one directory.

    :param certs_dir: the directory (the ``certs_dir`` key).
    :param now: returns the current time; tests pass a fixed one.
    :param password: the SECC key's password (EvseSecurity's
        ``private_key_password``); ``None`` reads the password file.
    """

    def __init__(
        self,
        certs_dir: Path,
        now: Callable[[], datetime.datetime] = utc_now,
        password: str | None = None,
    ):
        self.certs_dir = Path(certs_dir)
        self._now = now
        self._given_password = password
        self._subscribers: list[Callable[[dict], None]] = []
        self._seen = self._fingerprints()

    def _path(self, relative) -> Path:
        """The absolute path of a layout entry."""
        return self.certs_dir / relative

    def _password(self) -> bytes | None:
        """The SECC key's password: the one given, else from its password file, else ``None``."""
        if self._given_password:
            return self._given_password.encode()
        path = self._path(layout.SECC_LEAF_PASSWORD)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CertificatesUnavailable(f"cannot read {path}: {error.strerror}") from None
        lines = text.splitlines()
        return lines[0].encode() if lines and lines[0] else None

    def _chain(self) -> list:
        """The leaf and Sub-CAs as the TLS server sends them."""
        chain_file = self._path(layout.CPO_CERT_CHAIN)
        if chain_file.exists():
            return read_certificates(chain_file)
        leaf = read_certificates(self._path(layout.SECC_LEAF))[:1]
        subs = []
        for sub in (layout.CPO_SUB_CA2, layout.CPO_SUB_CA1):
            if self._path(sub).exists():
                subs += read_certificates(self._path(sub))[:1]
        return leaf + subs

    def _search_leaf(self) -> tuple[list, object]:
        """
        Without the fixed names, find the leaf as EvseSecurity does in its
        leaf directory: the newest valid non-CA certificate of a ``*.pem``
        there (with its chain, when the file holds one) whose key is one of
        the ``*.key`` files (encrypted ones with the password).

        :raises CertificatesUnavailable: when none has a matching key.
        """
        from evsev2g.security import contract  # its checks load on first use, with Plug & Charge

        directory = self._path(layout.SECC_LEAF).parent
        now, password = self._now(), self._password()
        keys = []
        for path in sorted(directory.glob("*.key")):
            try:
                keys.append(read_private_key(path, password))
            except CertificatesUnavailable:
                continue
        found = []
        for path in sorted(directory.glob("*.pem")):
            try:
                certificates = read_certificates(path)
            except CertificatesUnavailable:
                continue
            leaf = certificates[0]
            constraints = contract.constraints(leaf)
            if (constraints is not None and constraints.ca) or not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
                continue
            key = next((k for k in keys if k.public_key() == leaf.public_key()), None)
            if key is not None:
                found.append((leaf.not_valid_before_utc, str(path), certificates, key))
        if not found:
            raise CertificatesUnavailable(
                f"no {layout.SECC_LEAF.name} or {layout.CPO_CERT_CHAIN.name} in {directory}, and no valid leaf "
                f"there with a matching key ({len(keys)} readable key file(s))"
            )
        _, _, chain, key = max(found)
        if len(chain) == 1:
            chain = chain + [read_certificates(self._path(sub))[0]
                             for sub in (layout.CPO_SUB_CA2, layout.CPO_SUB_CA1) if self._path(sub).exists()]
        return chain, key

    def tls_server_credentials(self) -> TLSCredentials:
        """
        :returns: the checked SECC chain and key.
        :raises CertificatesUnavailable: naming the missing or bad file.
        """
        if not self.certs_dir.is_dir():
            raise CertificatesUnavailable(f"{self.certs_dir} is not a directory")
        if self._path(layout.CPO_CERT_CHAIN).exists() or self._path(layout.SECC_LEAF).exists():
            chain = self._chain()
            key = read_private_key(self._path(layout.SECC_LEAF_KEY), self._password())
        else:
            chain, key = self._search_leaf()
        roots = read_certificates(self.verify_file("V2G"))
        # The bundle may hold several V2G roots ([V2G2-878]): the one the chain names.
        root = next((r for r in roots if chain and signed_by(chain[-1], r)), roots[0])
        return check_credentials(chain, key, root, self._now())

    def verify_file(self, ca_type: str) -> Path:
        """
        :param ca_type: ``"V2G"``, ``"MO"``, ``"CSMS"`` or ``"MF"``.
        :returns: the path of that CA bundle.
        :raises CertificatesUnavailable: when the bundle file is absent.
        :raises ValueError: for an unknown ``ca_type``.
        """
        try:
            relative = layout.CA_BUNDLES[ca_type]
        except KeyError:
            raise ValueError(f"unknown CA type {ca_type!r}; known: {', '.join(layout.CA_BUNDLES)}") from None
        path = self._path(relative)
        if not path.is_file():
            raise CertificatesUnavailable(f"no {ca_type} root: {path} is missing")
        return path

    def tariff_signer(self):
        """
        The key that signs SalesTariffs, where the directory holds one: the
        MO Sub-CA 2 certificate and key (``ca/mo/MO_SUB_CA2.pem`` and
        ``.key``, a test PKI's; EvseSecurity keeps no MO keys, so this is
        not part of :class:`~evsev2g.interfaces.ISecurity`).

        :returns: ``(certificate, private key)``, or ``None``.
        """
        try:
            certificate = read_certificates(self._path(layout.MO_SUB_CA2))[0]
            key = read_private_key(self._path(layout.MO_SUB_CA2_KEY), None)
        except CertificatesUnavailable:
            return None
        if key.public_key() != certificate.public_key():
            log.warn("{path} does not belong to {cert}; SalesTariffs are not signed",
                     path=str(self._path(layout.MO_SUB_CA2_KEY)), cert=str(self._path(layout.MO_SUB_CA2)))
            return None
        return certificate, key

    def _anchors(self, ca_types) -> list[x509.Certificate]:
        """Every certificate in the installed bundles of these kinds."""
        from evsev2g.security import contract

        paths = []
        for ca_type in ca_types:
            try:
                paths.append(self.verify_file(ca_type))
            except CertificatesUnavailable:
                continue
        return contract.read_anchors(paths)

    def verify_certificate(self, certificate_chain: str, certificate_types) -> str:
        """
        :param certificate_chain: PEM, leaf first.
        :param certificate_types: e.g. ``["MO", "V2G"]``.
        :returns: a ``CertificateValidationResult`` string.
        """
        from evsev2g.security import contract

        try:
            certificates = x509.load_pem_x509_certificates(certificate_chain.encode())
        except ValueError:
            return "InvalidChain"
        certificates = [c for c in certificates if c.subject != c.issuer] or certificates
        if len(certificates) > 1 + contract.MAX_SUB_CAS:
            return "InvalidChain"
        chain = contract.ContractChain(certificates[0], tuple(certificates[1:]))
        try:
            contract.verify_chain(chain, self._anchors(certificate_types), self._now())
        except tuple(kind for kind, _ in _VALIDATION_RESULT) as error:
            return next(result for kind, result in _VALIDATION_RESULT if isinstance(error, kind))
        return "Valid"

    def mo_ocsp_request_data(self, certificate_chain: str) -> dict:
        """
        :param certificate_chain: PEM, contract leaf first.
        :returns: an ``OCSPRequestDataList``.
        """
        try:
            certificates = x509.load_pem_x509_certificates(certificate_chain.encode())
        except ValueError:
            return {"ocsp_request_data_list": []}
        from evsev2g.security import ocsp  # OCSP (cryptography's x509.ocsp) on first use

        return ocsp.request_data(certificates, self._anchors(("MO", "V2G")))

    def v2g_ocsp_request_data(self) -> dict:
        """:returns: the ``OCSPRequestDataList`` of the SECC chain."""
        try:
            credentials = self.tls_server_credentials()
        except CertificatesUnavailable:
            return {"ocsp_request_data_list": []}
        anchors = [credentials.root] if credentials.root is not None else []
        from evsev2g.security import ocsp

        return ocsp.request_data(credentials.chain, anchors)

    # -- changes ---------------------------------------------------------------

    def subscribe_store_updates(self, callback: Callable[[dict], None]) -> Callable[[], None]:
        """
        :param callback: gets one ``CertificateStoreUpdate`` dict per change.
        :returns: a callable ending the subscription.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _fingerprints(self) -> dict:
        """Per watched kind, the (size, mtime, inode) of each of its files (``None`` when absent)."""
        seen = {}
        for kind, paths in WATCHED.items():
            marks = []
            for relative in paths:
                try:
                    status = self._path(relative).stat()
                except OSError:
                    marks.append(None)
                else:
                    marks.append((status.st_size, status.st_mtime_ns, status.st_ino))
            seen[kind] = tuple(marks)
        return seen

    def check_for_changes(self) -> list[dict]:
        """
        Compare the watched files with what was seen last and tell the
        subscribers about each kind that changed.

        :returns: the ``CertificateStoreUpdate`` dicts sent.
        """
        now = self._fingerprints()
        updates = []
        for kind, marks in now.items():
            if marks == self._seen.get(kind):
                continue
            key, certificate_type = kind
            operation = "Deleted" if all(mark is None for mark in marks) else "Installed"
            updates.append({"operation": operation, key: certificate_type})
        self._seen = now
        for update in updates:
            log.info("certificate store: {operation} {what}", operation=update["operation"],
                     what=" ".join(f"{k}={v}" for k, v in update.items() if k != "operation"))
            for callback in list(self._subscribers):
                try:
                    callback(update)
                except Exception:
                    log.failure("certificate store update subscriber failed")
        return updates

    def watch(self, clock, interval: float = 5.0) -> LoopingCall:
        """
        Check for changes every ``interval`` seconds.

        :param clock: provides ``IReactorTime``.
        :returns: the running :class:`LoopingCall` (stop it to end watching).
        """
        loop = LoopingCall(self.check_for_changes)
        loop.clock = clock
        loop.start(interval, now=False)
        return loop
