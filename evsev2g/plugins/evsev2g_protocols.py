"""
The protocol-version plugins shipped with evsev2g.

ISO 15118-2 joins here when its state machine exists.
"""

from evsev2g.protocols.din70121 import DIN70121Version

din70121 = DIN70121Version()
