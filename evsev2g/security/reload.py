"""
A TLS server creator that follows certificate changes.

:class:`ReloadingTLSCreator` serves each new TLS connection from the current
server context.  When the security provider reports a store update that
concerns the SECC chain (``leaf_certificate_type`` V2G) or the V2G root, it
asks the provider for the credentials again and, if they check out, builds
a new context.  Connections already running keep the ``SSL.Connection``
they were given, which holds the old context, so no session is dropped.
Unusable new credentials (a half-written chain, a key that does not match)
are logged and the old context stays in service.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.logger import Logger
from zope.interface import implementer

from evsev2g.errors import CertificatesUnavailable
from evsev2g.interfaces import ISecurity
from evsev2g.security.credentials import TLSCredentials, subject_line
from evsev2g.tls import KeyLog, build_context

#: The store updates that concern the TLS server.
CONCERNS_TLS = (("leaf_certificate_type", "V2G"), ("ca_certificate_type", "V2G"))


@implementer(IOpenSSLServerConnectionCreator)
class ReloadingTLSCreator:
    """
    :param security: the provider; its credentials are read now (so
        :class:`CertificatesUnavailable` propagates at start-up) and on
        every update concerning them.
    :param key_log: where to write session secrets, or ``None``.
    :param credentials: credentials already fetched, to avoid asking twice.
    """

    log = Logger()

    def __init__(self, security: ISecurity, key_log: KeyLog | None = None, credentials: TLSCredentials | None = None):
        self.security = security
        self.key_log = key_log
        self.credentials = credentials if credentials is not None else security.tls_server_credentials()
        self._context = build_context(self.credentials, key_log)
        self.reloads = 0
        self.unsubscribe = security.subscribe_store_updates(self.store_updated)

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        """:returns: a server-side connection on the current context."""
        return SSL.Connection(self._context, None)

    def store_updated(self, update: dict) -> None:
        """
        The provider's store-update callback.

        :param update: a ``CertificateStoreUpdate`` dict.
        """
        if not any(update.get(key) == value for key, value in CONCERNS_TLS):
            return
        self.reload()

    def reload(self) -> bool:
        """
        Read the credentials again and serve new connections with them.

        :returns: whether the new credentials are in service.
        """
        try:
            credentials = self.security.tls_server_credentials()
            context = build_context(credentials, self.key_log)
        except (CertificatesUnavailable, SSL.Error) as error:
            self.log.error("TLS certificates changed but are unusable, still serving the old chain: {problem}",
                           problem=str(error))
            return False
        self.credentials, self._context = credentials, context
        self.reloads += 1
        self.log.info("TLS server chain reloaded: {leaf}, valid until {until:%Y-%m-%d}; running sessions keep theirs",
                      leaf=subject_line(credentials.leaf), until=credentials.leaf.not_valid_after_utc)
        return True
