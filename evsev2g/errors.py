"""
The exceptions of evsev2g, in one small hierarchy.

Each one carries a message written for the person reading the log or the
terminal: what was wrong and, where there is one, what would be right.
Mapping protocol errors to V2G response codes is not done here; that is the
session's table.
"""


class EvseV2GError(Exception):
    """Base class of every error evsev2g raises on purpose."""


class ConfigError(EvseV2GError):
    """
    A configuration value is unusable.

    ``str(error)`` is one line: where the value came from (when known), the
    key, and what is wrong and what is allowed.

    :param key: the dotted key name (``tls_security``, ``simulator.delay``),
        or ``"config"`` for errors that belong to no single key.
    :param problem: what is wrong and what is allowed.
    :param source: where the value came from (a file name or ``--set``), or
        ``None``.
    """

    def __init__(self, key: str, problem: str, source: str | None = None):
        super().__init__(key, problem, source)
        self.key = key
        self.problem = problem
        self.source = source

    def located(self, source: str) -> "ConfigError":
        """
        :param source: where the offending value came from.
        :returns: the same error, now naming its source.
        """
        return ConfigError(self.key, self.problem, source)

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.key}: {self.problem}"


class StartupError(EvseV2GError):
    """
    The service cannot start (no such interface, port in use, TLS forced
    without certificates …).  The message is one line for the operator.
    """


class CertificatesUnavailable(EvseV2GError):
    """
    The security provider has no usable TLS server chain and key.

    The message says which file is missing or why it is unusable.
    """


class ServiceUnavailable(EvseV2GError):
    """
    A value-added service cannot answer now: its ServiceID is not offered,
    or its provider raised, timed out or answered with the wrong shape
    (:meth:`evsev2g.vas.ServiceRegistry.parameter_sets`).

    :param service_id: the ServiceID asked for.
    :param reason: what went wrong, for the log.
    :param unknown: ``True`` when no provider offers ``service_id`` at all
        (ServiceDetailRes FAILED_ServiceIDInvalid), ``False`` when the
        provider failed.
    """

    def __init__(self, service_id: int, reason: str, unknown: bool = False):
        super().__init__(service_id, reason, unknown)
        self.service_id = service_id
        self.reason = reason
        self.unknown = unknown

    def __str__(self) -> str:
        return f"service {self.service_id}: {self.reason}"


class V2GTPError(EvseV2GError):
    """
    A V2GTP header breaks the rules; the stream cannot be trusted after it.

    The connection that carried it is closed without an answer.
    """


class BadHeader(V2GTPError):
    """Wrong protocol version, wrong inverse version or zero payload length."""


class UnknownPayloadType(V2GTPError):
    """The payload type is not one this endpoint accepts."""


class PayloadTooLarge(V2GTPError):
    """The announced payload length is above the configured maximum."""


class MalformedSDP(EvseV2GError):
    """An SDP datagram that must be dropped (wrong size, header or values)."""
