"""
evsev2g: the charger side (SECC) of DIN SPEC 70121 and ISO 15118-2 on Twisted.

A drop-in for EVerest's EvseV2G module: same configuration keys, same EVerest
interfaces, started on its own as ``twistd evsev2g``.
"""

__version__ = "0.1.0.dev0"
