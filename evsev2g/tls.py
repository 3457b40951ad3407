"""
The TLS server context for ISO 15118-2 (§7.7.3.5; EvseV2G's
``tls_connection``): TLS 1.2 only, one cipher suite, P-256 only, server
authentication only.

* Protocol: TLS 1.2 as minimum and maximum; a TLS 1.3-only EV gets a
  ``protocol_version`` alert.
* Cipher suite: ``ECDHE-ECDSA-AES128-SHA256``
  (TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256), key exchange on secp256r1 only.
* **Deviation from ISO 15118-2:** the standard also names
  TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 (static ECDH).  OpenSSL removed
  static-ECDH suites in 1.1.0 and pyOpenSSL links a current OpenSSL, so that
  suite cannot be offered; an EV that offers only it cannot complete the
  handshake.  EVerest's EvseV2G has the same limitation.
* No client certificate is requested (ISO 15118-2 authenticates the
  contract in-band), no session tickets, no renegotiation, no compression.
* Key logging (``tls_key_logging``): every secret line OpenSSL reports is
  appended to ``<tls_key_logging_path>/tls_session_keys.log`` in
  SSLKEYLOGFILE format, which Wireshark reads.  Never to the normal log.

:class:`TLSServerCreator` is Twisted's ``IOpenSSLServerConnectionCreator``:
built once from checked credentials, it hands out one ``SSL.Connection`` per
accepted TCP connection.  (``CertificateOptions`` is not used: it cannot do
key logging or the curve limit without overriding a deprecated method.)
"""

from __future__ import annotations

import os
from pathlib import Path

from OpenSSL import SSL
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from zope.interface import implementer

from evsev2g.errors import StartupError
from evsev2g.security.credentials import TLSCredentials

#: The one TLS 1.2 cipher suite served (OpenSSL name).
CIPHER_SUITE = "ECDHE-ECDSA-AES128-SHA256"

#: The one curve for ECDHE and certificates.
CURVE = ec.SECP256R1()

#: The key log file's name inside ``tls_key_logging_path``.
KEY_LOG_NAME = "tls_session_keys.log"


class FrameTLSFactory(TLSMemoryBIOFactory):
    """
    TLS for V2GTP: each write is a whole frame, sent at once.

    Twisted's default TLS transport holds every write until the next
    reactor iteration to merge small writes into one record.  A V2G peer
    writes one frame per message and then waits for the answer, so there
    is nothing to merge and the hold only adds a loop iteration to every
    response (and, in the EV simulator, to every request).  The TCP
    transport underneath holds writes the same way; :mod:`evsev2g.write_now`
    removes that second hold.
    """

    protocol = TLSMemoryBIOProtocol


@implementer(IStreamClientEndpoint)
class FrameTLSClientEndpoint:
    """
    ``wrapClientTLS`` with :class:`FrameTLSFactory`: connects ``endpoint``
    and runs TLS over it, the application protocol seeing plain bytes.
    """

    def __init__(self, creator, endpoint) -> None:
        self._creator = creator
        self._endpoint = endpoint

    def connect(self, factory):
        """:returns: a Deferred firing with ``factory``'s protocol once the TCP connection is up."""
        wrapper = FrameTLSFactory(self._creator, True, factory)
        return self._endpoint.connect(wrapper).addCallback(lambda tls: tls.wrappedProtocol)


class KeyLog:
    """
    Appends OpenSSL's key-log lines to a file (SSLKEYLOGFILE format).

    The file is created with mode 0600 and opened per line, so it can be
    removed or rotated while the service runs.  Write errors are logged and
    never reach the handshake.

    :param path: the key log file.
    """

    log = Logger()

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, connection: SSL.Connection, line: bytes) -> None:
        """
        pyOpenSSL's keylog callback.

        :param connection: the connection the secret belongs to (unused).
        :param line: one key-log line without newline.
        """
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "ab") as file:
                file.write(line + b"\n")
        except OSError as error:
            self.log.error("TLS key log: cannot write {path}: {problem}", path=str(self.path), problem=error.strerror)


def key_log_path(directory: Path) -> Path:
    """
    :param directory: the ``tls_key_logging_path`` key.
    :returns: the key log file inside it.
    :raises StartupError: when the directory does not exist.
    """
    if not directory.is_dir():
        raise StartupError(f"tls_key_logging_path: {directory} is not a directory")
    return directory / KEY_LOG_NAME


def build_context(credentials: TLSCredentials, key_log: KeyLog | None = None) -> SSL.Context:
    """
    Make the server context.

    :param credentials: the checked chain and key.
    :param key_log: where to write session secrets, or ``None``.
    :returns: a ready :class:`OpenSSL.SSL.Context`.
    """
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.set_cipher_list(CIPHER_SUITE.encode())
    context.set_tmp_ecdh(CURVE)
    context.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_COMPRESSION)
    context.set_verify(SSL.VERIFY_NONE)
    context.use_certificate(credentials.leaf)
    for certificate in credentials.chain[1:]:
        context.add_extra_chain_cert(certificate)
    context.use_privatekey(credentials.key)
    context.check_privatekey()
    if key_log is not None:
        context.set_keylog_callback(key_log)
    context.set_info_callback(_note_progress)
    return context


#: OpenSSL's state string once the server has written its ServerHello.
_SERVER_HELLO = b"SSLv3/TLS write server hello"


def _note_progress(connection: SSL.Connection, where: int, ret: int) -> None:
    """Info callback: mark a connection whose ClientHello we answered (for :func:`hello_answered`)."""
    if where & SSL.SSL_CB_ACCEPT_LOOP and connection.get_state_string() == _SERVER_HELLO:
        connection.evsev2g_hello_answered = True


def hello_answered(connection: SSL.Connection) -> bool:
    """
    :param connection: a server-side connection, maybe failed.
    :returns: whether its ClientHello was accepted and answered, so that a
        failure came later in the handshake (the log then says "after the
        ClientHello" rather than "not TLS").
    """
    return getattr(connection, "evsev2g_hello_answered", False)


@implementer(IOpenSSLServerConnectionCreator)
class TLSServerCreator:
    """
    Hands a new TLS connection on one shared context to each TCP connection.

    :param credentials: the checked chain and key.
    :param key_log: where to write session secrets, or ``None``.
    """

    def __init__(self, credentials: TLSCredentials, key_log: KeyLog | None = None):
        self.credentials = credentials
        self.key_log = key_log
        self._context = build_context(credentials, key_log)

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        """
        :param tlsProtocol: Twisted's TLS protocol for the connection.
        :returns: a server-side :class:`OpenSSL.SSL.Connection`.
        """
        return SSL.Connection(self._context, None)


def describe_session(connection: SSL.Connection) -> dict:
    """
    :param connection: a connection whose handshake is complete.
    :returns: ``version``, ``cipher`` and ``group`` names, for the log.
    """
    return {
        "version": connection.get_protocol_version_name(),
        "cipher": connection.get_cipher_name(),
        "group": connection.get_group_name(),
    }
