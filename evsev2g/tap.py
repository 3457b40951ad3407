"""
twistd glue: command-line options and makeService (placeholder until the
service skeleton lands).
"""

from twisted.application import service
from twisted.python import usage


class Options(usage.Options):
    """Options for ``twistd evsev2g``."""

    optParameters = [["config", "c", None, "YAML configuration file"]]


def makeService(options):
    """Build the top-level service."""
    return service.MultiService()
