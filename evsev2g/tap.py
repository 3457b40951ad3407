"""
``twistd evsev2g``: command-line options and makeService.

``twistd -n evsev2g --config FILE --set KEY=VALUE …`` reads the YAML file
(every key optional; see ``tap_config.yaml``), applies the overrides in
order, checks everything and resolves ``device``.  A bad value stops twistd
with one line naming the key and what it allows, and exit status 1.
"""

from __future__ import annotations

from twisted.python import usage

from evsev2g.backends import assemble, make_runtime, retries_servers
from evsev2g.config import Config, load_config
from evsev2g.errors import ConfigError, StartupError
from evsev2g.netif import ServingAddress, interface_names, read_addresses, resolve_device


class Options(usage.Options):
    """
    Options of ``twistd evsev2g``.

    After parsing, :attr:`config` is the checked :class:`Config` and
    :attr:`serving` the interface and address to serve on (``None`` when
    the device is missing and the backend retries the servers, resolving
    it at each attempt).
    """

    synopsis = "[--config FILE] [--set KEY=VALUE ...]"
    longdesc = (
        "SECC for DIN SPEC 70121 and ISO 15118-2, a drop-in for EVerest's EvseV2G. "
        "Keys and defaults: see tap_config.yaml. --set takes precedence over the file; "
        "relative paths in the file are relative to the file."
    )
    optParameters = [["config", "c", None, "YAML configuration file (default: every key at its default)"]]

    config: Config
    serving: ServingAddress | None

    def __init__(self):
        super().__init__()
        self["set"] = []

    def opt_set(self, assignment: str) -> None:
        """Override one configuration key: KEY=VALUE (repeatable; typed by the key)."""
        self["set"].append(assignment)

    opt_s = opt_set

    def postOptions(self) -> None:
        """
        Load and check the configuration, resolve the device.

        :raises SystemExit: with one line naming the key and what it
            allows, when anything is wrong.
        """
        try:
            self.config = load_config(self["config"], self["set"])
        except ConfigError as error:
            raise SystemExit(f"twistd evsev2g: {error}") from None
        try:
            self.serving = resolve_device(self.config.device, read_addresses(), interface_names())
        except ConfigError as error:
            if not retries_servers(self.config):
                raise SystemExit(f"twistd evsev2g: {error}") from None
            # The backend reports it (EVerest: generic/CommunicationFault) and retries.
            self.serving = None


def makeService(options: Options, reactor=None):
    """
    Build the service tree (only this function touches the global reactor):
    the backend plugin the ``backend`` key names, then the servers
    (:func:`evsev2g.backends.assemble`).

    :param options: parsed :class:`Options`.
    :param reactor: the reactor to use; the global one when ``None``.
    :returns: a ``MultiService`` with the TCP, TLS and SDP servers (and the
        backend's own service, such as the EVerest module's MQTT connection).
    :raises SystemExit: with one line when the service cannot be built
        (TLS forced without certificates …).
    """
    if reactor is None:
        from twisted.internet import reactor
    try:
        runtime = make_runtime(options.config, reactor)
        return assemble(options.config, reactor, runtime, options.serving)
    except (StartupError, ConfigError) as error:
        raise SystemExit(f"twistd evsev2g: {error}") from None
