"""
The service tree of one SECC: the TCP and TLS servers and the SDP server
under one ``MultiService``, built from a :class:`~evsev2g.config.Config`.

Listeners start before SDP, so SDP never announces a port that is not open
yet.  Which servers exist follows ``tls_security``: ``prohibit`` → TCP only;
``force`` → TLS only; ``allow`` → both, or TCP only when the security
provider has no usable certificate (said once in the log, with the command
that makes a test PKI).  ``force`` without a usable certificate refuses to
start with that same message.

SDP announces TLS only when a protocol the sessions can negotiate runs over
TLS: DIN SPEC 70121 never does ([V2G-DC-618]), so while it is the only one
served, an EV asking for TLS is given the TCP server (0x10) and goes on
with DIN instead of reaching a TLS server where no protocol can be agreed.
Only ``force`` (no TCP server) still announces TLS then, with a warning at
start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.application.service import MultiService, Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

import evsev2g
from evsev2g.config import Config
from evsev2g.errors import CertificatesUnavailable, StartupError
from evsev2g.interfaces import ISecurity, ISessionFactory
from evsev2g.memory import IdleTrim
from evsev2g.netif import ServingAddress
from evsev2g.sdp import Offers
from evsev2g.sdp_service import SDPProtocol, SDPService, always
from evsev2g.security.files import CERTS_CHECK_INTERVAL, FileSecurity
from evsev2g.security.reload import ReloadingTLSCreator
from evsev2g.tls import KeyLog, TLSServerCreator, key_log_path
from evsev2g.transport import (
    ConnectionRegistry,
    ConnectionSettings,
    V2GTPListenerService,
    V2GTPServerFactory,
)

log = Logger()


def no_certificates(config: Config, problem: str) -> str:
    """
    :param config: the configuration (for ``certs_dir``).
    :param problem: what the security provider found wrong.
    :returns: the one line saying so and how to make a test PKI.
    """
    return (
        f"no usable TLS server certificate in {config.certs_dir} ({problem}); "
        f"create a test PKI with: python -m evsev2g.pki create {config.certs_dir}"
    )


def tls_creator(config: Config, security: ISecurity) -> ReloadingTLSCreator | None:
    """
    The TLS connection creator, if TLS is wanted and possible.

    :param config: the configuration.
    :param security: the security provider.
    :returns: the creator, or ``None`` for ``prohibit`` and for ``allow``
        without a usable certificate (logged once).
    :raises StartupError: ``force`` without a usable certificate, or key
        logging into a directory that does not exist.
    """
    if config.tls_security == "prohibit":
        return None
    try:
        credentials = security.tls_server_credentials()
    except CertificatesUnavailable as error:
        message = no_certificates(config, str(error))
        if config.tls_security == "force":
            raise StartupError(f"tls_security is force, but {message}") from None
        log.warn("TLS server off, serving TCP only: {message}", message=message)
        return None
    key_log = None
    if config.tls_key_logging:
        key_log = KeyLog(key_log_path(config.tls_key_logging_path))
        log.warn("TLS key logging is on (testing only): secrets go to {path}", path=str(key_log.path))
    return ReloadingTLSCreator(security, key_log, credentials)


def _exit_on_startup_error(start: Callable[[], None]) -> None:
    """
    Run a start step; a :class:`StartupError` becomes one log line and exit
    status 1 (twistd has already begun logging, so no traceback is wanted).
    """
    try:
        start()
    except StartupError as error:
        log.critical("cannot start: {problem}", problem=str(error))
        raise SystemExit(1) from None


class CertificateWatch(Service):
    """
    Calls ``check`` at start and then every ``interval`` seconds while
    running (what Twisted's ``TimerService`` does: that module also brings
    ``ClientService`` and automat, half a megabyte a SECC never uses).

    :ivar call: ``(check, (), {})``, as ``TimerService`` keeps it.
    """

    name = "certificate-watch"

    def __init__(self, check: Callable[[], object], clock, interval: float = CERTS_CHECK_INTERVAL) -> None:
        self.call = (check, (), {})
        self.clock = clock
        self.interval = interval
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self.call[0])
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True).addErrback(
            lambda failure: log.failure("the certificate watch stopped", failure)
        )

    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return super().stopService()


class SECCService(MultiService):
    """
    The top-level service: owns the servers, reports start-up failures.

    :param config: the configuration.
    :param serving: the interface and address served.
    :param tls_protocols: the names of the protocols that can be agreed
        over TLS, or ``None`` when unknown (TLS is then announced whenever
        it runs).
    """

    def __init__(self, config: Config, serving: ServingAddress, tls_protocols: Sequence[str] | None = None):
        super().__init__()
        self.config = config
        self.serving = serving
        self.tls_protocols = None if tls_protocols is None else list(tls_protocols)
        self.tcp: V2GTPListenerService | None = None
        self.tls: V2GTPListenerService | None = None
        self.sdp: SDPService | None = None

    @property
    def tls_useful(self) -> bool:
        """Whether an EV could agree on any protocol over TLS (``True`` when unknown)."""
        return self.tls_protocols is None or bool(self.tls_protocols)

    def offers(self) -> Offers:
        """
        :returns: the servers running now, for SDP answers; the TLS server
            is left out while it is of no use and a TCP server runs.
        """
        tls = self.tls if self.tls_useful or self.tcp is None else None
        return Offers(
            self.serving.packed,
            self.tcp.port_number if self.tcp is not None else None,
            tls.port_number if tls is not None else None,
        )

    def privilegedStartService(self) -> None:
        """
        Open every port.

        :raises SystemExit: status 1 after logging one line, when a port
            cannot be opened.
        """
        _exit_on_startup_error(super().privilegedStartService)

    def startService(self) -> None:
        """
        Start the servers (opening ports not opened yet) and log where they are.

        :raises SystemExit: as :meth:`privilegedStartService`.
        """
        _exit_on_startup_error(super().startService)
        log.info(
            "evsev2g {version} on {interface} [{address}]: TCP port {tcp}, TLS port {tls}, SDP {sdp}",
            version=evsev2g.__version__, interface=self.serving.interface, address=self.serving.address,
            tcp=self.tcp.port_number if self.tcp is not None else "off",
            tls=self.tls.port_number if self.tls is not None else "off",
            sdp=f"UDP port {self.sdp.port_number}" if self.sdp is not None else "off",
        )
        if self.tls is not None and not self.tls_useful:
            why = "no enabled protocol runs over TLS (DIN SPEC 70121 never does, [V2G-DC-618])"
            if self.tcp is None:
                log.warn("tls_security is force, but {why}: no EV can agree on a protocol", why=why)
            else:
                log.info("{why}: SDP answers TCP to EVs that ask for TLS", why=why)


def build_service(
    config: Config,
    serving: ServingAddress,
    reactor,
    sessions: ISessionFactory,
    security: ISecurity | None = None,
    answering: Callable[[], bool] | None = None,
    tls_protocols: Sequence[str] | None = None,
) -> SECCService:
    """
    Assemble the SECC's services.

    :param config: the configuration.
    :param serving: the interface and address to serve on.
    :param reactor: provides ``IReactorTCP``, ``IReactorTime`` and
        ``IReactorSocket``.
    :param sessions: makes the session of each connection.
    :param security: the security provider (default: files in ``certs_dir``).
    :param answering: whether SDP answers right now; by default the session
        factory's ``link_ready`` when it has one (SDP answers only while the
        charger backend's data link is up, as EvseV2G gates SDP on
        ``dlink_ready``), else always.
    :param tls_protocols: the names of the protocols the sessions can agree
        over TLS; by default the session factory's ``tls_protocols()`` when
        it has one (``SessionFactory.tls_protocols()``), else ``None``:
        unknown.  An empty list keeps SDP from announcing TLS while a TCP
        server runs.
    :returns: the top-level service, not started.
    :raises StartupError: when TLS is forced but unusable, or key logging
        has nowhere to go.
    """
    if answering is None:
        answering = getattr(sessions, "link_ready", always)
    if tls_protocols is None and hasattr(sessions, "tls_protocols"):
        tls_protocols = sessions.tls_protocols()
    if security is None:  # the sessions' provider, so TLS and Plug & Charge see the same store
        security = getattr(sessions, "security", None) or FileSecurity(config.certs_dir)
    creator = tls_creator(config, security)
    top = SECCService(config, serving, tls_protocols)
    registry = ConnectionRegistry(idle=IdleTrim(reactor))

    def listener(port: int, tls: TLSServerCreator | None) -> V2GTPListenerService:
        """One TCP or TLS server under ``top``, sharing the connection registry."""
        settings = ConnectionSettings(
            secure=tls is not None,
            max_payload=config.v2gtp_max_payload,
            max_connections=config.max_connections,
            io_timeout=config.tls_timeout_seconds,
        )
        factory = V2GTPServerFactory(sessions, settings, registry, reactor)
        service = V2GTPListenerService(reactor, serving, port, factory, tls)
        service.setServiceParent(top)
        return service

    if config.tls_security != "force":
        top.tcp = listener(config.tcp_port, None)
    if creator is not None:
        top.tls = listener(config.tls_port, creator)
    if config.enable_sdp_server:
        top.sdp = SDPService(reactor, serving, config.sdp_port, SDPProtocol(serving, top.offers, answering))
        top.sdp.setServiceParent(top)
    if creator is not None and hasattr(security, "check_for_changes"):
        # a provider that polls its store (FileSecurity); a bridge pushes updates itself
        CertificateWatch(security.check_for_changes, reactor).setServiceParent(top)
    return top
