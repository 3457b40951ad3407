"""
Every zope interface of evsev2g, in one place.

Implementations declare them with ``@implementer`` and the tests check each
one with ``zope.interface.verify.verifyObject``.

The transport/session seam
--------------------------
The transport (TCP or TLS, ``evsev2g.transport``) owns sockets and V2GTP
framing.  For every accepted connection it asks an :class:`ISessionFactory`
for an :class:`ISession` and hands it an :class:`ISessionLink`.  From then on
the transport calls :meth:`ISession.payload_received` once per complete,
well-formed V2GTP message and :meth:`ISession.connection_lost` once at the
end; the session answers through the link.  Neither side knows the other's
internals: the transport never sees EXI, the session never sees a socket.
"""

from zope.interface import Attribute, Interface

# -- transport / session seam ----------------------------------------------


class ISessionLink(Interface):
    """
    What a V2G communication session sees of its connection.

    One link per TCP or TLS connection.  All methods are called from the
    reactor thread.
    """

    peer = Attribute(
        "The EV's address as ``(host, port)``: ``host`` is a ``str`` and "
        "carries ``%scope`` for link-local addresses, ``port`` an ``int``."
    )
    secure = Attribute("``True`` when the connection is TLS, else ``False``.")

    def send(payload, payload_type=0x8001):
        """
        Frame one message with a V2GTP header and write it.

        :param payload: the message body, ``bytes`` (EXI for 0x8001).
        :param payload_type: the V2GTP payload type, an ``int``.
        :returns: ``None``.
        """

    def close():
        """
        End the connection in an orderly way after everything written so far
        has been sent.  Calling it more than once is harmless.

        :returns: ``None``; :meth:`ISession.connection_lost` follows.
        """

    def abort():
        """
        Drop the connection at once, discarding anything not yet sent.

        :returns: ``None``; :meth:`ISession.connection_lost` follows.
        """


class ISession(Interface):
    """
    One V2G communication session, driven by its connection.

    The session decides everything above V2GTP: which schema decodes a
    payload, which state machine answers it, when to close.
    """

    def payload_received(payload_type, payload):
        """
        One complete V2GTP message arrived.

        The transport has already checked the header (version, inverse
        version, payload type known, length within the configured maximum).

        :param payload_type: the V2GTP payload type, an ``int``.
        :param payload: the message body, ``bytes``.
        :returns: ``None``.  Must not raise: errors are the session's to
            log and answer.
        """

    def connection_lost(reason):
        """
        The connection is gone (closed by either side, aborted, timed out).
        Called exactly once; the link must not be used afterwards.

        :param reason: a short human-readable ``str`` for the log.
        :returns: ``None``.
        """


class ISessionFactory(Interface):
    """Makes the session for each new connection."""

    def new_session(link):
        """
        :param link: the new connection, an :class:`ISessionLink`.
        :returns: an :class:`ISession` bound to ``link``.
        """


# -- security provider ------------------------------------------------------


class ISecurity(Interface):
    """
    What evsev2g needs of EVerest's ``evse_security``: the TLS server's
    chain and key, and the CA bundles to verify against.

    The file-based provider (``evsev2g.security.files.FileSecurity``) reads
    a certificate directory in EvseSecurity's layout; an EVerest bridge
    provider would ask the EvseSecurity module.  Called from the reactor
    thread at start-up.
    """

    def tls_server_credentials():
        """
        The SECC's TLS server chain and key, checked and ready to use
        (EvseV2G asks ``get_all_valid_certificates_info`` for type V2G).

        :returns: an ``evsev2g.security.credentials.TLSCredentials``.
        :raises evsev2g.errors.CertificatesUnavailable: when there is no
            usable chain; the message says which file or certificate and why.
        """

    def verify_file(ca_type):
        """
        The CA bundle to verify certificates of a kind against (EvseSecurity's
        ``get_verify_file``).

        :param ca_type: ``"V2G"``, ``"MO"``, ``"CSMS"`` or ``"MF"`` (EVerest's
            ``CaCertificateType``).
        :returns: the bundle's path, a ``pathlib.Path`` to a PEM file.
        :raises evsev2g.errors.CertificatesUnavailable: when there is none.
        :raises ValueError: for an unknown ``ca_type``.
        """
