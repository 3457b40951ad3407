"""
twistd plugin for evsev2g: ``twistd -n evsev2g --config FILE``.

Only a ServiceMaker lives here; ``evsev2g.tap`` is imported lazily when
twistd asks for the options or the service.
"""

from twisted.application.service import ServiceMaker

evsev2g = ServiceMaker(
    "evsev2g",
    "evsev2g.tap",
    "SECC for DIN SPEC 70121 and ISO 15118-2 (EVerest EvseV2G drop-in)",
    "evsev2g",
)
