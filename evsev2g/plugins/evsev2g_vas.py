"""
The value-added-service providers shipped with evsev2g.

``internet_access`` is :class:`evsev2g.vas_internet.InternetAccess`
configured by the ``EVSEV2G_INTERNET_ACCESS*`` environment variables; it
offers nothing unless ``EVSEV2G_INTERNET_ACCESS`` names a protocol.  A
wrong variable is logged and the provider offers nothing.

Your own provider goes in a module like this one (see the README, "Writing
a value-added service").
"""

from twisted.logger import Logger

from evsev2g.errors import ConfigError
from evsev2g.vas_internet import InternetAccess

try:
    internet_access = InternetAccess.from_environment()
except ConfigError as error:
    Logger().error("internet access is not offered: {error}", error=str(error))
    internet_access = InternetAccess(protocols=())
