"""
The EXI engine: schema-informed EXI for the V2G application-handshake,
DIN SPEC 70121 and ISO 15118-2 schemas, built from the XSDs at start-up.

Pure Python; nothing here imports Twisted.

    from evsev2g.exi import load_codec, ExiError, Message
    codec = load_codec("iso15118-2")
    msg = codec.decode(data)
"""

from evsev2g.exi.codec import Codec, Limits, load_codec
from evsev2g.exi.errors import ExiError, LimitExceeded, SchemaError
from evsev2g.exi.message import Message, Shape

__all__ = ["Codec", "ExiError", "LimitExceeded", "Limits", "Message", "SchemaError", "Shape", "load_codec"]
