"""
The file-based security provider: a certificate directory in the layout of
EVerest's EvseSecurity (:mod:`evsev2g.security.layout`), read as is.

The TLS chain is ``client/cso/CPO_CERT_CHAIN.pem`` (leaf, Sub-CA 2, Sub-CA 1),
or, when that file is absent, ``client/cso/SECC_LEAF.pem`` with the two CPO
Sub-CAs from ``ca/cso/``.  The key is ``client/cso/SECC_LEAF.key``; when it is
encrypted its password is the first line of ``SECC_LEAF_PASSWORD.txt`` beside
it.  The chain must lead to ``ca/v2g/V2G_ROOT_CA.pem``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

from zope.interface import implementer

from evsev2g.errors import CertificatesUnavailable
from evsev2g.interfaces import ISecurity
from evsev2g.security import layout
from evsev2g.security.credentials import (
    TLSCredentials,
    check_credentials,
    read_certificates,
    read_private_key,
)


def utc_now() -> datetime.datetime:
    """:returns: the current time, timezone-aware UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


@implementer(ISecurity)
class FileSecurity:
    """
    Certificates and keys from files under one directory.

    :param certs_dir: the directory (the ``certs_dir`` key).
    :param now: returns the current time; tests pass a fixed one.
    """

    def __init__(self, certs_dir: Path, now: Callable[[], datetime.datetime] = utc_now):
        self.certs_dir = Path(certs_dir)
        self._now = now

    def _path(self, relative) -> Path:
        """The absolute path of a layout entry."""
        return self.certs_dir / relative

    def _password(self) -> bytes | None:
        """The SECC key's password from its password file, or ``None``."""
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

    def tls_server_credentials(self) -> TLSCredentials:
        """
        :returns: the checked SECC chain and key.
        :raises CertificatesUnavailable: naming the missing or bad file.
        """
        if not self.certs_dir.is_dir():
            raise CertificatesUnavailable(f"{self.certs_dir} is not a directory")
        chain = self._chain()
        key = read_private_key(self._path(layout.SECC_LEAF_KEY), self._password())
        root = read_certificates(self.verify_file("V2G"))[0]
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
