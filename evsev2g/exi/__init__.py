"""
The EXI engine: schema-informed EXI for the V2G application-handshake,
DIN SPEC 70121 and ISO 15118-2 schemas, built from the XSDs at start-up.

Pure Python; nothing here imports Twisted.
"""

from evsev2g.exi.message import Message, Shape

__all__ = ["Message", "Shape"]
